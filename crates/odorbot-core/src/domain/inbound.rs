//! What arrives from outside, already translated from the wire: the engine's input.

use std::time::SystemTime;

use super::ids::{ChannelId, UserId};

/// One inbound event, enqueued by a listener and processed by the dispatcher.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Slack's envelope id; every redelivery of the envelope carries the same one.
    pub envelope_id: String,
    pub received_at: SystemTime,
    pub event: InboundEvent,
}

#[derive(Debug, Clone)]
pub enum InboundEvent {
    /// `/odor …` typed by a user.
    SlashCommand(SlashCommand),
    /// A button clicked on one of odorbot's messages.
    BlockAction(BlockAction),
    /// A modal odorbot opened, submitted.
    ViewSubmission(ViewSubmission),
}

#[derive(Debug, Clone)]
pub struct ViewSubmission {
    pub user: UserId,
    pub view_id: String,
    pub callback_id: String,
    /// What odorbot stored in the modal when opening it (e.g. an incident id).
    pub private_metadata: String,
    /// The text of the modal's `text` input.
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct SlashCommand {
    pub user: UserId,
    pub channel: ChannelId,
    /// Everything after `/odor`, as typed.
    pub text: String,
    /// Where replies go; works in channels the bot is not a member of.
    pub response_url: String,
    /// Unique per invocation: the idempotency key across redeliveries.
    pub trigger_id: String,
}

#[derive(Debug, Clone)]
pub struct BlockAction {
    /// The clicker: the identity approvals are checked against.
    pub user: UserId,
    pub channel: Option<ChannelId>,
    pub action_id: String,
    pub value: Option<String>,
    pub action_ts: String,
    pub message_ts: Option<String>,
    pub response_url: Option<String>,
    /// For opening a modal in answer (valid three seconds).
    pub trigger_id: Option<String>,
}

impl Inbound {
    /// The key under which this event is processed at most once.
    pub fn idempotency_key(&self) -> String {
        match &self.event {
            InboundEvent::SlashCommand(c) => format!("cmd:{}", c.trigger_id),
            InboundEvent::BlockAction(a) => {
                format!("act:{}:{}:{}", a.action_ts, a.user, a.action_id)
            }
            InboundEvent::ViewSubmission(v) => format!("view:{}:{}", v.view_id, v.user),
        }
    }

    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self.event {
            InboundEvent::SlashCommand(_) => "slash_commands",
            InboundEvent::BlockAction(_) | InboundEvent::ViewSubmission(_) => "interactive",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn button_keys_combine_action_ts_user_and_action() {
        let event = Inbound {
            envelope_id: "e1".into(),
            received_at: SystemTime::UNIX_EPOCH,
            event: InboundEvent::BlockAction(BlockAction {
                user: "U1".parse().unwrap(),
                channel: None,
                action_id: "approve".into(),
                value: None,
                action_ts: "1700.1".into(),
                message_ts: None,
                response_url: None,
                trigger_id: None,
            }),
        };
        assert_eq!(event.idempotency_key(), "act:1700.1:U1:approve");
    }
}
