//! Socket-mode frames on the wire, and their translation into [`Inbound`] events.
//!
//! Only the fields odorbot uses are read, so new fields Slack adds never break parsing.

use std::time::SystemTime;

use serde::Deserialize;
use thiserror::Error;

use crate::domain::ids::{ChannelId, UserId};
use crate::domain::inbound::{BlockAction, Inbound, InboundEvent, SlashCommand, ViewSubmission};
use crate::domain::view::code_span;

/// Any frame Slack sends on a socket-mode connection.
#[derive(Debug, Deserialize)]
pub struct Frame {
    #[serde(rename = "type")]
    pub kind: String,
    pub envelope_id: Option<String>,
    #[serde(default)]
    pub payload: serde_json::Value,
    /// For `disconnect`: `warning`, `refresh_requested` or `link_disabled`.
    pub reason: Option<String>,
    #[serde(default)]
    pub retry_attempt: u32,
}

/// What a frame means to the connection that received it.
#[derive(Debug)]
pub enum FrameMeaning {
    Hello,
    Disconnect(DisconnectReason),
    /// An envelope to enqueue, then acknowledge.
    Event(Box<Inbound>),
    /// An envelope odorbot has no use for (events it did not subscribe to, shortcuts):
    /// acknowledged so Slack does not redeliver it.
    Ignored {
        envelope_id: String,
        why: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// This connection closes in about ten seconds.
    Warning,
    /// Slack wants this connection replaced.
    RefreshRequested,
    /// Socket mode was turned off for the app: reconnecting cannot help.
    LinkDisabled,
    /// The app already has as many connections open as Slack allows.
    TooManyWebsockets,
    Other,
}

impl DisconnectReason {
    /// A bounded label for logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::RefreshRequested => "refresh_requested",
            Self::LinkDisabled => "link_disabled",
            Self::TooManyWebsockets => "too_many_websockets",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Error)]
pub enum WireError {
    #[error("frame is not JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{kind} envelope without envelope_id")]
    NoEnvelopeId { kind: String },
}

#[derive(Debug, Deserialize)]
struct RawSlashCommand {
    user_id: String,
    channel_id: String,
    #[serde(default)]
    text: String,
    response_url: String,
    trigger_id: String,
}

#[derive(Debug, Deserialize)]
struct RawBlockActions {
    #[serde(rename = "type")]
    kind: String,
    user: RawUser,
    trigger_id: Option<String>,
    channel: Option<RawId>,
    container: Option<RawContainer>,
    response_url: Option<String>,
    #[serde(default)]
    actions: Vec<RawAction>,
}

#[derive(Debug, Deserialize)]
struct RawUser {
    id: String,
}

#[derive(Debug, Deserialize)]
struct RawId {
    id: String,
}

#[derive(Debug, Deserialize)]
struct RawContainer {
    message_ts: Option<String>,
    channel_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawAction {
    action_id: String,
    value: Option<String>,
    action_ts: String,
}

/// Reads one text frame.
///
/// # Errors
/// [`WireError`] when the frame is not a socket-mode frame at all. An envelope whose
/// payload odorbot cannot use is [`FrameMeaning::Ignored`], not an error, because it
/// must still be acknowledged.
pub fn read_frame(text: &str, now: SystemTime) -> Result<FrameMeaning, WireError> {
    let frame: Frame = serde_json::from_str(text)?;
    match frame.kind.as_str() {
        "hello" => return Ok(FrameMeaning::Hello),
        "disconnect" => {
            let reason = match frame.reason.as_deref() {
                Some("warning") => DisconnectReason::Warning,
                Some("refresh_requested") => DisconnectReason::RefreshRequested,
                Some("link_disabled") => DisconnectReason::LinkDisabled,
                Some("too_many_websockets") => DisconnectReason::TooManyWebsockets,
                _ => DisconnectReason::Other,
            };
            return Ok(FrameMeaning::Disconnect(reason));
        }
        _ => {}
    }
    let envelope_id = frame
        .envelope_id
        .clone()
        .ok_or_else(|| WireError::NoEnvelopeId {
            kind: frame.kind.clone(),
        })?;
    let event = match frame.kind.as_str() {
        "slash_commands" => slash_command(frame.payload),
        "interactive" => block_action(frame.payload),
        other => Err(format!("{other} envelopes are not used")),
    };
    Ok(match event {
        Ok(event) => FrameMeaning::Event(Box::new(Inbound {
            envelope_id,
            received_at: now,
            event,
        })),
        Err(why) => FrameMeaning::Ignored { envelope_id, why },
    })
}

fn slash_command(payload: serde_json::Value) -> Result<InboundEvent, String> {
    let raw: RawSlashCommand =
        serde_json::from_value(payload).map_err(|e| format!("slash command payload: {e}"))?;
    Ok(InboundEvent::SlashCommand(SlashCommand {
        user: parse_id(&raw.user_id, "user_id")?,
        channel: parse_id(&raw.channel_id, "channel_id")?,
        text: raw.text,
        response_url: raw.response_url,
        trigger_id: raw.trigger_id,
    }))
}

fn block_action(payload: serde_json::Value) -> Result<InboundEvent, String> {
    let payload_view = payload.get("view").cloned();
    let raw: RawBlockActions =
        serde_json::from_value(payload).map_err(|e| format!("interactive payload: {e}"))?;
    if raw.kind == "view_submission" {
        return view_submission(raw.user.id, payload_view);
    }
    if raw.kind != "block_actions" {
        return Err(format!("{} interactions are not used", raw.kind));
    }
    let action = raw
        .actions
        .into_iter()
        .next()
        .ok_or("block_actions without actions")?;
    let channel = raw
        .channel
        .map(|c| c.id)
        .or_else(|| raw.container.as_ref().and_then(|c| c.channel_id.clone()))
        .map(|id| parse_id::<ChannelId>(&id, "channel"))
        .transpose()?;
    Ok(InboundEvent::BlockAction(BlockAction {
        user: parse_id::<UserId>(&raw.user.id, "user.id")?,
        channel,
        action_id: action.action_id,
        value: action.value,
        action_ts: action.action_ts,
        message_ts: raw.container.and_then(|c| c.message_ts),
        response_url: raw.response_url,
        trigger_id: raw.trigger_id,
    }))
}

#[derive(Debug, Deserialize)]
struct RawView {
    id: String,
    #[serde(default)]
    callback_id: String,
    #[serde(default)]
    private_metadata: String,
    #[serde(default)]
    state: serde_json::Value,
}

/// A submitted modal: the text of its `text` input block.
fn view_submission(user: String, view: Option<serde_json::Value>) -> Result<InboundEvent, String> {
    let view: RawView = serde_json::from_value(view.ok_or("view_submission without a view")?)
        .map_err(|e| format!("view_submission payload: {e}"))?;
    let text = view.state["values"]["text"]["text"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(InboundEvent::ViewSubmission(ViewSubmission {
        user: parse_id::<UserId>(&user, "user.id")?,
        view_id: view.id,
        callback_id: view.callback_id,
        private_metadata: view.private_metadata,
        text,
    }))
}

fn parse_id<T: std::str::FromStr<Err = crate::domain::ids::IdError>>(
    raw: &str,
    field: &str,
) -> Result<T, String> {
    raw.parse().map_err(|e| format!("{field} {e}"))
}

/// The acknowledgement frame for an envelope.
pub fn ack_frame(envelope_id: &str) -> String {
    serde_json::json!({ "envelope_id": envelope_id }).to_string()
}

/// What a button click that odorbot could not take is told, through its `response_url`.
pub const BUSY_CLICK: &str = ":hourglass: odorbot is busy right now, so that click did nothing. \
     Click again in a moment.";

/// How to answer an envelope the engine had no room for: the ack to write, and where
/// (if anywhere) to tell the person afterwards. Every such envelope is acknowledged,
/// because Slack does not redeliver slash commands or interactive payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyAnswer {
    /// The ack frame; a slash command's and a modal's carry the answer in `payload`.
    pub ack: String,
    /// A click's `response_url`, to be sent [`BUSY_CLICK`] off the socket's reader.
    pub tell: Option<String>,
}

/// The answer to an event odorbot is too busy to take. Pure, so what a busy person
/// reads is tested without a socket.
pub fn busy_answer(inbound: &Inbound) -> BusyAnswer {
    let id = inbound.envelope_id.as_str();
    match &inbound.event {
        // The ack's payload is the command's immediate reply (ephemeral: only the
        // person who typed it sees it), so the answer needs no Web API call at all.
        InboundEvent::SlashCommand(cmd) => {
            let typed = code_span(&format!("/odor {}", cmd.text.trim()));
            let text = format!(
                ":hourglass: odorbot is busy right now, so it did nothing with {typed}. \
                 Nothing was run or changed; try it again in a moment."
            );
            BusyAnswer {
                ack: serde_json::json!({
                    "envelope_id": id,
                    "payload": {"response_type": "ephemeral", "text": text},
                })
                .to_string(),
                tell: None,
            }
        }
        // The interactive ack's payload has no message for clicks; the response_url does.
        InboundEvent::BlockAction(action) => BusyAnswer {
            ack: ack_frame(id),
            tell: action.response_url.clone(),
        },
        // A modal acked with errors stays open, with the text typed, and says why.
        InboundEvent::ViewSubmission(_) => BusyAnswer {
            ack: serde_json::json!({
                "envelope_id": id,
                "payload": {
                    "response_action": "errors",
                    "errors": {MODAL_TEXT_BLOCK: "odorbot is busy right now, so nothing was posted. Submit again in a moment."},
                },
            })
            .to_string(),
            tell: None,
        },
    }
}

/// The `block_id` of the text input in odorbot's modals (see `SlackApi::open_text_modal`).
pub const MODAL_TEXT_BLOCK: &str = "text";

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> String {
        let path = format!("{}/tests/fixtures/slack/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn read(text: &str) -> FrameMeaning {
        read_frame(text, SystemTime::UNIX_EPOCH).unwrap()
    }

    #[test]
    fn slack_sdk_slash_command_envelopes_become_commands() {
        for name in [
            "slash_commands-java-sdk.json",
            "slash_commands-python-sdk.json",
        ] {
            let FrameMeaning::Event(inbound) = read(&fixture(&format!("socket-mode/{name}")))
            else {
                panic!("{name} not an event");
            };
            let InboundEvent::SlashCommand(cmd) = &inbound.event else {
                panic!("{name}")
            };
            assert!(!cmd.trigger_id.is_empty(), "{name}");
            assert!(cmd.response_url.starts_with("https://"), "{name}");
            assert!(inbound.idempotency_key().starts_with("cmd:"));
        }
    }

    #[test]
    fn slack_sdk_block_actions_become_button_clicks() {
        for name in [
            "interactive-block_actions-java-sdk.json",
            "interactive-block_actions-python-sdk.json",
        ] {
            let FrameMeaning::Event(inbound) = read(&fixture(&format!("socket-mode/{name}")))
            else {
                panic!("{name} not an event");
            };
            let InboundEvent::BlockAction(a) = &inbound.event else {
                panic!("{name}")
            };
            assert!(!a.action_id.is_empty(), "{name}");
            assert!(!a.action_ts.is_empty(), "{name}");
        }
    }

    #[test]
    fn hello_disconnect_and_unused_envelopes() {
        for name in [
            "hello-java-sdk.json",
            "hello-python-sdk.json",
            "hello-minimal-node-sdk.json",
        ] {
            assert!(
                matches!(
                    read(&fixture(&format!("socket-mode/{name}"))),
                    FrameMeaning::Hello
                ),
                "{name}"
            );
        }
        let cases = [
            (
                "disconnect-refresh_requested-node-sdk.json",
                DisconnectReason::RefreshRequested,
            ),
            (
                "disconnect-warning-node-sdk.json",
                DisconnectReason::Warning,
            ),
            (
                "disconnect-too_many_websockets-node-sdk.json",
                DisconnectReason::TooManyWebsockets,
            ),
        ];
        for (name, want) in cases {
            let FrameMeaning::Disconnect(got) = read(&fixture(&format!("socket-mode/{name}")))
            else {
                panic!("{name}");
            };
            assert_eq!(got, want, "{name}");
        }
        for name in [
            "events_api-app_mention-java-sdk.json",
            "interactive-shortcut-python-sdk.json",
        ] {
            assert!(
                matches!(
                    read(&fixture(&format!("socket-mode/{name}"))),
                    FrameMeaning::Ignored { .. }
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn hostile_ids_are_refused_but_still_acknowledged() {
        let frame = r#"{"type":"slash_commands","envelope_id":"e1","payload":{"user_id":"<!channel>","channel_id":"C1","text":"help","response_url":"https://x","trigger_id":"t"}}"#;
        let FrameMeaning::Ignored { envelope_id, why } = read(frame) else {
            panic!()
        };
        assert_eq!(envelope_id, "e1");
        assert!(why.contains("user_id"), "{why}");
        assert!(read_frame("not json", SystemTime::UNIX_EPOCH).is_err());
        assert!(read_frame(r#"{"type":"slash_commands"}"#, SystemTime::UNIX_EPOCH).is_err());
    }

    #[test]
    fn ack_frames_carry_the_envelope_id() {
        assert_eq!(ack_frame("abc\"d"), r#"{"envelope_id":"abc\"d"}"#);
    }

    fn event(frame: &str) -> Inbound {
        let FrameMeaning::Event(inbound) = read(frame) else {
            panic!("{frame}")
        };
        *inbound
    }

    #[test]
    fn a_busy_slash_command_is_answered_in_its_ack_echoing_the_command_safely() {
        let frame = r#"{"type":"slash_commands","envelope_id":"e7","accepts_response_payload":true,
            "payload":{"user_id":"U1","channel_id":"C1","text":" rollback `x` <!channel> ",
            "response_url":"https://hooks/r","trigger_id":"t"}}"#;
        let busy = busy_answer(&event(frame));
        assert_eq!(busy.tell, None, "the ack itself answers");
        let ack: serde_json::Value = serde_json::from_str(&busy.ack).unwrap();
        assert_eq!(ack["envelope_id"], "e7");
        assert_eq!(ack["payload"]["response_type"], "ephemeral");
        let text = ack["payload"]["text"].as_str().unwrap();
        assert!(text.contains("odorbot is busy"), "{text}");
        assert!(text.contains("did nothing"), "{text}");
        assert!(text.contains("try it again in a moment"), "{text}");
        assert!(
            text.contains("`/odor rollback 'x' &lt;!channel&gt;`"),
            "{text}"
        );
        assert!(!text.contains("<!channel>"), "{text}");
    }

    #[test]
    fn a_busy_click_is_acked_plainly_and_told_through_its_response_url() {
        let frame = r#"{"type":"interactive","envelope_id":"e8","payload":{"type":"block_actions",
            "user":{"id":"U1"},"response_url":"https://hooks/a","channel":{"id":"C1"},
            "actions":[{"action_id":"approve","action_ts":"1.2"}]}}"#;
        let busy = busy_answer(&event(frame));
        assert_eq!(busy.ack, ack_frame("e8"));
        assert_eq!(busy.tell.as_deref(), Some("https://hooks/a"));
        assert!(BUSY_CLICK.contains("did nothing"));
    }

    #[test]
    fn a_busy_modal_submission_stays_open_with_the_reason_on_its_text_input() {
        let frame = r#"{"type":"interactive","envelope_id":"e9","payload":{"type":"view_submission",
            "user":{"id":"U1"},"view":{"id":"V1","callback_id":"incident-update",
            "state":{"values":{"text":{"text":{"value":"hi"}}}}}}}"#;
        let busy = busy_answer(&event(frame));
        assert_eq!(busy.tell, None);
        let ack: serde_json::Value = serde_json::from_str(&busy.ack).unwrap();
        assert_eq!(ack["envelope_id"], "e9");
        assert_eq!(ack["payload"]["response_action"], "errors");
        let why = ack["payload"]["errors"][MODAL_TEXT_BLOCK].as_str().unwrap();
        assert!(
            why.contains("busy") && why.contains("nothing was posted"),
            "{why}"
        );
    }
}
