//! A fake Slack for the integration tests and the benchmarks: the Web API over HTTP and socket
//! mode over WebSocket, both served by axum on one loopback port, in the wire format that
//! Slack documents and the SDK fixtures in `tests/fixtures/slack/` show.
//!
//! A test plays Slack's side (deliver slash commands and button clicks, send `disconnect`, drop
//! sockets, rate-limit or fail a method, take Slack away and bring it back) and asserts on what
//! the bot did: acks and their latency, and every Web API and `response_url` call in order.
//! Everything lives on 127.0.0.1; every wait is bounded; dropping the `FakeSlack` ends its tasks.

// Each test binary and benchmark includes this file and uses a different part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, Query, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// App-level token that `apps.connections.open` expects.
pub const APP_TOKEN: &str = "xapp-1-A111-fake";
/// Bot token that every other Web API method expects.
pub const BOT_TOKEN: &str = "xoxb-fake-bot-token";
pub const APP_ID: &str = "A111";
pub const TEAM_ID: &str = "T111";
pub const BOT_USER_ID: &str = "U0BOT";
pub const BOT_ID: &str = "B111";
/// The slash command that `slash_command` types (odorbot's manifest registers `/odor`).
pub const COMMAND: &str = "/odor";

/// Slack accepts at most this many POSTs to one `response_url`.
const RESPONSE_URL_USES: usize = 5;
/// Unacked envelopes are redelivered at most this many times.
const MAX_REDELIVERIES: u32 = 3;
/// A bot that stops reading must not wedge a connection task forever.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a closing socket waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_millis(500);
/// How long `stop` waits for the HTTP server to finish in-flight requests.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// Web API methods the fake implements; anything else is `unknown_method`, as on Slack.
const METHODS: &[&str] = &[
    "apps.connections.open",
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "views.open",
    "usergroups.users.list",
    "users.info",
    "conversations.info",
    "conversations.history",
    "conversations.replies",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
];

#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// An envelope not acked within this is resent (same `envelope_id`, `retry_attempt` + 1,
    /// `retry_reason` "timeout"), preferably on another connection, at most 3 times. `None`
    /// turns redelivery off (benchmarks).
    pub redeliver_after: Option<Duration>,
    /// After a `warning` or `refresh_requested` disconnect the fake closes the socket this much
    /// later (Slack waits about 10 s; tests need less).
    pub disconnect_grace: Duration,
    /// `false` leaves `num_connections` out of `hello`, like the node SDK's minimal fixture
    /// (slack-morphism's model requires the field, so its listener then rejects the frame).
    pub hello_num_connections: bool,
    /// Every `response_url` POST is answered this much later (a slow Slack).
    pub response_delay: Option<Duration>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            redeliver_after: Some(Duration::from_secs(3)),
            disconnect_grace: Duration::from_millis(200),
            hello_num_connections: true,
            response_delay: None,
        }
    }
}

/// What the fake delivered: the ids a test needs to find the bot's reactions.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub envelope_id: String,
    pub trigger_id: Option<String>,
    pub response_url: Option<String>,
    pub sent_at: Instant,
}

/// One ack frame received from the bot.
#[derive(Debug, Clone)]
pub struct Ack {
    pub envelope_id: String,
    /// The ack's `payload` (a slash command's immediate reply), if any.
    pub payload: Option<Value>,
    /// From the envelope's first send to this ack's receipt (zero for an id the fake never sent).
    pub latency: Duration,
    pub at: Instant,
}

/// One Web API or `response_url` request, as received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The Web API method, or "response_url".
    pub method: String,
    /// JSON body, or form body / query string decoded to an object of strings.
    pub body: Value,
    /// The bearer token; never set for `response_url`.
    pub token: Option<String>,
    pub path: String,
    pub at: Instant,
    /// Answered 429 by `rate_limit_next`.
    pub limited: bool,
    /// The HTTP status the fake answered.
    pub status: u16,
}

pub struct FakeSlack {
    inner: Arc<Inner>,
}

struct Inner {
    opts: FakeOptions,
    /// Fixed at the first bind so that `restart` comes back on the same port.
    addr: SocketAddr,
    state: Mutex<State>,
    /// Bumped after every recorded change, so that the `wait_*` calls wake up.
    changed: watch::Sender<u64>,
    /// Set when the `FakeSlack` is dropped: every background task watches it and ends.
    closing: watch::Sender<bool>,
    /// While set, `response_url` POSTs wait unanswered (see `hold_responses`).
    responses_held: watch::Sender<bool>,
    /// `None` while stopped.
    server: Mutex<Option<Server>>,
}

struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// What a connection task is told to do. Unbounded: only the test itself feeds it.
enum Out {
    Text(String),
    /// Send a close frame, then end.
    Close,
    /// End without a close frame: the TCP connection just goes away.
    Kill,
}

#[derive(Clone, Copy)]
enum Fault {
    RateLimit(u64),
    Status(u16),
}

struct Conn {
    tx: mpsc::UnboundedSender<Out>,
    /// A `disconnect` was sent: no new envelopes go there while another connection is open.
    draining: bool,
}

struct Sent {
    frame: Value,
    first_sent: Option<Instant>,
    last_conn: Option<u64>,
    /// No connection was open: delivered to the next one that says hello.
    pending: bool,
}

#[derive(Default)]
struct State {
    seq: u64,
    ts_seq: u64,
    calls: Vec<Call>,
    /// Issued tickets and whether a socket already used them.
    tickets: HashMap<String, bool>,
    conns: BTreeMap<u64, Conn>,
    opened: usize,
    rr: usize,
    envelopes: HashMap<String, Sent>,
    sent_order: Vec<String>,
    acks: Vec<Ack>,
    /// Per envelope id: index of its first ack in `acks`, and how many acks came; keeps the
    /// lookups O(1) for benchmarks that send thousands of envelopes.
    first_ack: HashMap<String, usize>,
    ack_counts: HashMap<String, usize>,
    other_frames: Vec<String>,
    disconnects: Vec<String>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// Methods that fail every time, after any queued faults.
    failing: HashMap<String, Fault>,
    /// Methods that fail on every n-th call: (n, the fault, calls so far).
    every_nth: HashMap<String, (usize, Fault, usize)>,
    /// While set, every `chat.postMessage` is taken at once and answered this late.
    post_delay: Option<Duration>,
    usergroups: HashMap<String, Vec<String>>,
    response_posts: HashMap<String, usize>,
    /// Delays for the next root messages (`chat.postMessage` without `thread_ts`), one each.
    root_delays: VecDeque<Duration>,
    /// Posted messages by ts, (channel, message), so that a button click can carry its message.
    messages: HashMap<String, (String, Value)>,
    /// Files whose upload URL was handed out, by file id: the name, the announced length
    /// and, once posted to the URL, the bytes.
    uploads: HashMap<String, (String, usize, Option<Vec<u8>>)>,
    /// Files shared by `files.completeUploadExternal`, in order.
    files: Vec<SharedFile>,
}

/// A file shared in a channel, as Slack would show it.
#[derive(Debug, Clone)]
pub struct SharedFile {
    pub id: String,
    pub name: String,
    pub title: String,
    pub channel: Option<String>,
    pub thread_ts: Option<String>,
    pub comment: Option<String>,
    pub content: Vec<u8>,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        Self::start_with(FakeOptions::default()).await
    }

    pub async fn start_with(opts: FakeOptions) -> FakeSlack {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("fake slack: bind");
        let addr = listener.local_addr().expect("fake slack: local addr");
        let inner = Arc::new(Inner {
            opts,
            addr,
            state: Mutex::new(State::default()),
            changed: watch::channel(0).0,
            closing: watch::channel(false).0,
            responses_held: watch::channel(false).0,
            server: Mutex::new(None),
        });
        inner.serve(listener);
        FakeSlack { inner }
    }

    /// `http://127.0.0.1:PORT/api`; method M is at `{api_url}/M`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.inner.addr)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Open socket-mode connections (hello sent, not yet closed).
    pub fn connections(&self) -> usize {
        self.inner.st().conns.len()
    }

    /// Connections that ever got a hello.
    pub fn connections_opened(&self) -> usize {
        self.inner.st().opened
    }

    /// Polls `cond` after every change until it holds or `timeout` passes.
    pub async fn wait_until(&self, timeout: Duration, mut cond: impl FnMut(&Self) -> bool) -> bool {
        let mut changes = self.inner.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return cond(self),
            }
        }
    }

    /// Waits for the first reply posted to this delivery's `response_url`.
    pub async fn reply_to(&self, d: &Delivery, timeout: Duration) -> Option<Call> {
        let url = d.response_url.as_deref()?;
        let path = format!("/response/{}", url.rsplit('/').next()?);
        let find = |f: &Self| {
            f.calls_to("response_url")
                .into_iter()
                .find(|c| c.path == path)
        };
        self.wait_until(timeout, |f| find(f).is_some()).await;
        find(self)
    }

    /// Waits until at least `n` connections are open.
    pub async fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |f| f.connections() >= n).await
    }

    /// Delivers a `/odor {text}` slash command from `user_id` in `channel_id`.
    pub async fn slash_command(&self, user_id: &str, channel_id: &str, text: &str) -> Delivery {
        let base = self.base_url();
        let envelope = {
            let mut st = self.inner.st();
            let n = st.next_seq();
            json!({
                "envelope_id": envelope_id(n),
                "payload": {
                    "token": "verification-token",
                    "team_id": TEAM_ID,
                    "team_domain": "fake-workspace",
                    "channel_id": channel_id,
                    "channel_name": channel_name(channel_id),
                    "user_id": user_id,
                    "user_name": user_name(user_id),
                    "command": COMMAND,
                    "text": text,
                    "api_app_id": APP_ID,
                    // Slash-command fields are form fields at heart: Slack sends this one as a string.
                    "is_enterprise_install": "false",
                    "response_url": format!("{base}/response/{n}"),
                    "trigger_id": trigger_id(n),
                },
                "type": "slash_commands",
                "accepts_response_payload": true,
                "retry_attempt": 0,
                "retry_reason": "",
            })
        };
        self.send_envelope(envelope).await
    }

    /// Delivers a click by `user_id` on button `action_id` of the message at `message_ts`. If the
    /// bot posted that message here, the payload carries its text and blocks, and the button's
    /// block_id and text.
    pub async fn block_action(
        &self,
        user_id: &str,
        channel_id: &str,
        action_id: &str,
        value: &str,
        message_ts: &str,
    ) -> Delivery {
        let base = self.base_url();
        let envelope = {
            let mut st = self.inner.st();
            let n = st.next_seq();
            let action_ts = st.next_ts();
            let message = st.messages.get(message_ts).map(|(_, m)| m.clone());
            let message = message.unwrap_or_else(|| {
                json!({"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID,
                       "text": "", "ts": message_ts, "team": TEAM_ID})
            });
            let (block_id, button_text) = message
                .get("blocks")
                .and_then(|b| find_button(b, action_id))
                .unwrap_or_else(|| {
                    let text = json!({"type": "plain_text", "text": "Button", "emoji": true});
                    (json!("fake-block"), text)
                });
            json!({
                "envelope_id": envelope_id(n),
                "payload": {
                    "type": "block_actions",
                    "user": {"id": user_id, "username": user_name(user_id),
                             "name": user_name(user_id), "team_id": TEAM_ID},
                    "api_app_id": APP_ID,
                    "token": "verification-token",
                    "container": {"type": "message", "message_ts": message_ts,
                                  "channel_id": channel_id, "is_ephemeral": false},
                    "trigger_id": trigger_id(n),
                    "team": {"id": TEAM_ID, "domain": "fake-workspace"},
                    "enterprise": null,
                    "is_enterprise_install": false,
                    "channel": {"id": channel_id, "name": channel_name(channel_id)},
                    "message": message,
                    "state": {"values": {}},
                    "response_url": format!("{base}/response/{n}"),
                    "actions": [{
                        "action_id": action_id,
                        "block_id": block_id,
                        "text": button_text,
                        "value": value,
                        "type": "button",
                        "action_ts": action_ts,
                    }],
                },
                "type": "interactive",
                "accepts_response_payload": false,
                "retry_attempt": 0,
                "retry_reason": "",
            })
        };
        self.send_envelope(envelope).await
    }

    /// Delivers any envelope (an `envelope_id` is added if missing) on one open connection, round
    /// robin; with none open it waits for the next hello. Arms redelivery.
    /// Delivers the submission of a one-input modal (block and action `text`, as odorbot
    /// builds them) from `user_id`.
    pub async fn view_submission(
        &self,
        user_id: &str,
        callback_id: &str,
        private_metadata: &str,
        text: &str,
    ) -> Delivery {
        let n = self.inner.st().next_seq();
        self.send_envelope(json!({
            "envelope_id": envelope_id(n),
            "type": "interactive",
            "accepts_response_payload": true,
            "payload": {
                "type": "view_submission",
                "user": {"id": user_id, "username": user_name(user_id), "team_id": TEAM_ID},
                "view": {
                    "id": format!("V{n:08}"),
                    "callback_id": callback_id,
                    "private_metadata": private_metadata,
                    "state": {"values": {"text": {"text": {"type": "plain_text_input", "value": text}}}}
                }
            }
        }))
        .await
    }

    pub async fn send_envelope(&self, mut envelope: Value) -> Delivery {
        let sent_at = Instant::now();
        let obj = envelope
            .as_object_mut()
            .expect("fake slack: envelope must be an object");
        let delivery = {
            let mut st = self.inner.st();
            let id = match obj.get("envelope_id").and_then(Value::as_str) {
                Some(id) => id.to_owned(),
                None => {
                    let id = envelope_id(st.next_seq());
                    obj.insert("envelope_id".into(), json!(id));
                    id
                }
            };
            let payload_str = |k: &str| {
                let v = obj.get("payload").and_then(|p| p.get(k));
                v.and_then(Value::as_str).map(str::to_owned)
            };
            let delivery = Delivery {
                envelope_id: id.clone(),
                trigger_id: payload_str("trigger_id"),
                response_url: payload_str("response_url"),
                sent_at,
            };
            let sent = Sent {
                frame: envelope,
                first_sent: None,
                last_conn: None,
                pending: true,
            };
            if st.envelopes.insert(id.clone(), sent).is_none() {
                st.sent_order.push(id.clone());
            }
            st.deliver(&id, None);
            delivery
        };
        self.inner.bump();
        self.arm_redelivery(delivery.envelope_id.clone());
        delivery
    }

    /// Delivers the very same envelope again, as Slack does after a timeout.
    pub async fn resend(&self, d: &Delivery) {
        let mut st = self.inner.st();
        if let Some(sent) = st.envelopes.get_mut(&d.envelope_id) {
            mark_retry(&mut sent.frame);
            st.deliver(&d.envelope_id, None);
        }
        drop(st);
        self.inner.bump();
    }

    /// The first ack for `d`, waiting at most `timeout`.
    pub async fn wait_ack(&self, d: &Delivery, timeout: Duration) -> Option<Ack> {
        let id = d.envelope_id.as_str();
        self.wait_until(timeout, |f| f.first_ack(id).is_some())
            .await;
        self.first_ack(id)
    }

    /// Every ack received, duplicates included, in arrival order.
    pub fn acks(&self) -> Vec<Ack> {
        self.inner.st().acks.clone()
    }

    pub fn ack_count(&self, envelope_id: &str) -> usize {
        self.inner
            .st()
            .ack_counts
            .get(envelope_id)
            .copied()
            .unwrap_or(0)
    }

    /// Envelope ids sent but never acked, in send order.
    pub fn unacked(&self) -> Vec<String> {
        let st = self.inner.st();
        let unacked = st
            .sent_order
            .iter()
            .filter(|id| !st.first_ack.contains_key(*id));
        unacked.cloned().collect()
    }

    /// Text frames from the bot that were not acks.
    pub fn other_frames(&self) -> Vec<String> {
        self.inner.st().other_frames.clone()
    }

    /// Reasons of the `disconnect` frames sent, in order.
    pub fn disconnects(&self) -> Vec<String> {
        self.inner.st().disconnects.clone()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.st().calls.clone()
    }

    /// Files shared so far, in order.
    pub fn files(&self) -> Vec<SharedFile> {
        self.inner.st().files.clone()
    }

    /// Waits for at least `n` shared files; returns them all (fewer on timeout).
    pub async fn wait_files(&self, n: usize, timeout: Duration) -> Vec<SharedFile> {
        self.wait_until(timeout, |f| f.inner.st().files.len() >= n)
            .await;
        self.files()
    }

    /// Calls other than connecting and replying: what "changes nothing" rules out.
    pub fn side_effects(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .map(|c| c.method)
            .filter(|m| {
                !matches!(
                    m.as_str(),
                    "response_url" | "auth.test" | "apps.connections.open"
                )
            })
            .collect()
    }

    /// Root messages Slack took in `channel` (not in a thread).
    pub fn roots_in(&self, channel: &str) -> Vec<Call> {
        self.calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| {
                c.status == 200
                    && c.body["channel"] == channel
                    && c.body.get("thread_ts").is_none_or(Value::is_null)
            })
            .collect()
    }

    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let st = self.inner.st();
        st.calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Waits for at least `n` calls to `method`; returns them all (fewer on timeout).
    pub async fn wait_calls(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        let count = |f: &Self| {
            f.inner
                .st()
                .calls
                .iter()
                .filter(|c| c.method == method)
                .count()
        };
        self.wait_until(timeout, |f| count(f) >= n).await;
        self.calls_to(method)
    }

    /// Sends `disconnect` on the oldest open connection. For `warning` and `refresh_requested`
    /// the fake closes it `disconnect_grace` later, like Slack; for any other reason (e.g.
    /// `link_disabled`) at once. `apps.connections.open` keeps answering normally.
    pub async fn disconnect(&self, reason: &str) {
        let frame = json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}});
        let tx = {
            let mut st = self.inner.st();
            let oldest = st
                .conns
                .iter()
                .find(|(_, c)| !c.draining)
                .map(|(id, _)| *id);
            let Some(conn) = oldest.and_then(|id| st.conns.get_mut(&id)) else {
                return;
            };
            conn.draining = true;
            let _ = conn.tx.send(Out::Text(frame.to_string()));
            let tx = conn.tx.clone();
            st.disconnects.push(reason.to_owned());
            tx
        };
        self.inner.bump();
        if !matches!(reason, "warning" | "refresh_requested") {
            let _ = tx.send(Out::Close);
            return;
        }
        let grace = self.inner.opts.disconnect_grace;
        let mut closing = self.inner.closing.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(grace) => { let _ = tx.send(Out::Close); }
                _ = closing.wait_for(|c| *c) => {}
            }
        });
    }

    /// Drops every open socket abruptly: no close frame, the TCP connection just ends.
    pub async fn drop_connections(&self) {
        self.inner.kill_connections();
    }

    /// The next `times` calls to `method` answer 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, method: &str, times: usize, retry_after_secs: u64) {
        self.inner
            .push_fault(method, times, Fault::RateLimit(retry_after_secs));
    }

    /// The next `times` calls to `method` answer HTTP `status` with a non-JSON body.
    /// `method` may also be "response_url".
    pub fn fail_next(&self, method: &str, times: usize, status: u16) {
        self.inner.push_fault(method, times, Fault::Status(status));
    }

    /// Every call to `method` from now on is answered `status`, until [`Self::clear_faults`].
    pub fn fail_always(&self, method: &str, status: u16) {
        self.inner
            .st()
            .failing
            .insert(method.to_owned(), Fault::Status(status));
    }

    /// Every `n`-th call to `method` from now on is answered HTTP `status` (and not taken),
    /// until [`Self::clear_faults`]: a Slack failing one call in `n`.
    pub fn fail_every(&self, method: &str, n: usize, status: u16) {
        self.inner
            .st()
            .every_nth
            .insert(method.to_owned(), (n.max(1), Fault::Status(status), 0));
    }

    /// Forgets the faults still waiting for `method`: from now on it answers normally.
    pub fn clear_faults(&self, method: &str) {
        let mut st = self.inner.st();
        st.faults.remove(method);
        st.failing.remove(method);
        st.every_nth.remove(method);
    }

    /// From now on every `chat.postMessage` is taken (posted, recorded, in the history) at
    /// once and answered `delay` late, as a slow Slack that did the work before answering:
    /// a client that gives up or dies meanwhile does not know the message is there.
    /// `None` answers at once again.
    pub fn slow_posts(&self, delay: Option<Duration>) {
        self.inner.st().post_delay = delay;
    }

    /// The next `times` root messages (`chat.postMessage` without `thread_ts`) are answered
    /// `delay` late: a slow Slack for exactly the post an incident's thread hangs on. Each is
    /// recorded, and gets its `ts`, when it is answered.
    pub fn slow_next_roots(&self, times: usize, delay: Duration) {
        self.inner
            .st()
            .root_delays
            .extend(std::iter::repeat_n(delay, times));
    }

    /// The `ts` of a message the fake holds (as posted, or as last updated) that `matches`.
    pub fn message_ts(&self, matches: impl Fn(&Value) -> bool) -> Option<String> {
        let st = self.inner.st();
        st.messages
            .iter()
            .find(|(_, (_, m))| matches(m))
            .map(|(ts, _)| ts.clone())
    }

    /// Members of user group `id` for `usergroups.users.list`.
    pub fn set_usergroup(&self, id: &str, users: &[&str]) {
        let users = users.iter().map(|u| (*u).to_owned()).collect();
        self.inner.st().usergroups.insert(id.to_owned(), users);
    }

    /// From now on `response_url` POSTs wait unanswered until `release_responses`: whoever
    /// replies is stuck on Slack, as in an outage. Each POST is recorded when it is answered.
    pub fn hold_responses(&self) {
        self.inner.responses_held.send_replace(true);
    }

    /// Answers the held `response_url` POSTs and stops holding new ones.
    pub fn release_responses(&self) {
        self.inner.responses_held.send_replace(false);
    }

    /// A one-time socket-mode URL, as `apps.connections.open` would hand out (for a client
    /// that speaks only the WebSocket side, such as the benchmark's raw acker).
    pub fn socket_url(&self) -> String {
        let mut st = self.inner.st();
        let ticket = format!("fake-ticket-{}", st.next_seq());
        st.tickets.insert(ticket.clone(), false);
        format!("ws://{}/link/?ticket={ticket}", self.inner.addr)
    }

    /// Slack goes away: every socket drops and the port refuses connections.
    pub async fn stop(&self) {
        let server = self.inner.server_slot().take();
        self.inner.kill_connections();
        if let Some(Server { stop, mut task }) = server {
            let _ = stop.send(());
            if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    /// Slack comes back on the same port, with everything recorded so far.
    pub async fn restart(&self) {
        if self.inner.server_slot().is_some() {
            return;
        }
        // The old listener's port can take a moment to be free again.
        let mut tries = 0;
        let listener = loop {
            match bind(self.inner.addr) {
                Ok(l) => break l,
                Err(e) if tries >= 50 => panic!("fake slack: rebind {}: {e}", self.inner.addr),
                Err(_) => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.inner.serve(listener);
    }

    fn first_ack(&self, envelope_id: &str) -> Option<Ack> {
        let st = self.inner.st();
        st.first_ack.get(envelope_id).map(|i| st.acks[*i].clone())
    }

    fn arm_redelivery(&self, id: String) {
        let Some(after) = self.inner.opts.redeliver_after else {
            return;
        };
        let inner = self.inner.clone();
        let mut closing = inner.closing.subscribe();
        tokio::spawn(async move {
            for _ in 0..MAX_REDELIVERIES {
                tokio::select! {
                    _ = tokio::time::sleep(after) => {}
                    _ = closing.wait_for(|c| *c) => return,
                }
                let mut st = inner.st();
                if st.first_ack.contains_key(&id) {
                    return;
                }
                let Some(sent) = st.envelopes.get_mut(&id) else {
                    return;
                };
                // Never delivered yet: it goes out with the next hello, no retry to count.
                if sent.pending {
                    continue;
                }
                mark_retry(&mut sent.frame);
                let avoid = sent.last_conn;
                st.deliver(&id, avoid);
            }
        });
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        // The server, sockets and timers all hold the inner state: tell them to end.
        self.inner.closing.send_replace(true);
    }
}

impl Inner {
    fn st(&self) -> MutexGuard<'_, State> {
        // A panicking test must not turn every later call into a poison panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn server_slot(&self) -> MutexGuard<'_, Option<Server>> {
        self.server.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn serve(self: &Arc<Self>, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        let mut closing = self.closing.subscribe();
        let app = router(self.clone());
        let task = tokio::spawn(async move {
            let signal = async move {
                tokio::select! {
                    _ = stopped => {}
                    _ = closing.wait_for(|c| *c) => {}
                }
            };
            // Graceful shutdown drops the listener (connections are refused) and closes idle
            // keep-alive connections, so a pooled HTTP client sees Slack go away too.
            // Nagle's algorithm off, as on Slack's edge and any server tuned for latency:
            // with it on, an envelope written while the previous one is unacknowledged
            // waits for the bot's delayed ACK (40 ms), and the harness would measure that.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(signal)
                .await;
        });
        *self.server_slot() = Some(Server { stop, task });
    }

    fn kill_connections(&self) {
        let conns = std::mem::take(&mut self.st().conns);
        for conn in conns.values() {
            let _ = conn.tx.send(Out::Kill);
        }
        self.bump();
    }

    fn push_fault(&self, method: &str, times: usize, fault: Fault) {
        let mut st = self.st();
        let queue = st.faults.entry(method.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Records a text frame from the bot: an ack if it carries an `envelope_id` and no `type`.
    fn on_frame(&self, text: &str) {
        let now = Instant::now();
        let mut st = self.st();
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(mut m))
                if m.get("envelope_id").is_some_and(Value::is_string)
                    && !m.contains_key("type") =>
            {
                let envelope_id = m["envelope_id"].as_str().unwrap_or_default().to_owned();
                let first = st.envelopes.get(&envelope_id).and_then(|s| s.first_sent);
                let latency = first.map_or(Duration::ZERO, |t| now.duration_since(t));
                let payload = m.remove("payload");
                let index = st.acks.len();
                st.first_ack.entry(envelope_id.clone()).or_insert(index);
                *st.ack_counts.entry(envelope_id.clone()).or_default() += 1;
                st.acks.push(Ack {
                    envelope_id,
                    payload,
                    latency,
                    at: now,
                });
            }
            _ => st.other_frames.push(text.to_owned()),
        }
        drop(st);
        self.bump();
    }
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Unique, increasing message timestamps in Slack's "seconds.micros" form.
    fn next_ts(&mut self) -> String {
        self.ts_seq += 1;
        let n = self.ts_seq;
        format!("{}.{:06}", 1_700_000_000 + n / 10_000, (n % 10_000) * 100)
    }

    fn take_fault(&mut self, method: &str) -> Option<Fault> {
        let nth = self
            .every_nth
            .get_mut(method)
            .and_then(|(n, fault, calls)| {
                *calls += 1;
                (*calls % *n == 0).then_some(*fault)
            });
        self.faults
            .get_mut(method)
            .and_then(VecDeque::pop_front)
            .or_else(|| self.failing.get(method).copied())
            .or(nth)
    }

    /// Sends envelope `id` on an open connection (round robin, avoiding `avoid` if another is
    /// open); with none open it stays pending until the next hello.
    fn deliver(&mut self, id: &str, avoid: Option<u64>) {
        let open: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.draining)
            .map(|(k, _)| *k)
            .collect();
        let others: Vec<u64> = open.iter().copied().filter(|k| Some(*k) != avoid).collect();
        let pool = if others.is_empty() { open } else { others };
        self.rr = self.rr.wrapping_add(1);
        let target = pool.get(self.rr % pool.len().max(1)).copied();
        let Some(sent) = self.envelopes.get_mut(id) else {
            return;
        };
        let conn = target.and_then(|k| self.conns.get(&k).map(|c| (k, c)));
        match conn {
            Some((k, c)) if c.tx.send(Out::Text(sent.frame.to_string())).is_ok() => {
                sent.pending = false;
                sent.first_sent.get_or_insert_with(Instant::now);
                sent.last_conn = Some(k);
            }
            _ => sent.pending = true,
        }
    }

    /// Answers a Web API call that passed fault injection.
    fn answer(
        &mut self,
        method: &str,
        token: Option<&str>,
        args: &Value,
        addr: SocketAddr,
    ) -> Value {
        if !METHODS.contains(&method) {
            return err("unknown_method");
        }
        let wanted = if method == "apps.connections.open" {
            APP_TOKEN
        } else {
            BOT_TOKEN
        };
        match token {
            None => return err("not_authed"),
            Some(t) if t != wanted => return err("invalid_auth"),
            Some(_) => {}
        }
        let arg = |k: &str| {
            args.get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        match method {
            "apps.connections.open" => {
                let ticket = format!("fake-ticket-{}", self.next_seq());
                self.tickets.insert(ticket.clone(), false);
                json!({"ok": true, "url": format!("ws://{addr}/link/?ticket={ticket}")})
            }
            "auth.test" => json!({
                "ok": true, "url": "https://fake-workspace.slack.com/", "team": "Fake Workspace",
                "user": "odorbot", "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
                "is_enterprise_install": false,
            }),
            "chat.postMessage" => {
                let Some(channel) = arg("channel") else {
                    return err("channel_not_found");
                };
                let fields = ["text", "blocks", "attachments"];
                if fields.iter().all(|k| args.get(*k).is_none()) {
                    return err("no_text");
                }
                let ts = self.next_ts();
                let mut msg = json!({"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID,
                    "text": arg("text").unwrap_or_default(), "ts": ts, "team": TEAM_ID});
                for k in ["blocks", "attachments"] {
                    if let Some(v) = args.get(k) {
                        msg[k] = decode_nested(v);
                    }
                }
                if let Some(thread_ts) = arg("thread_ts") {
                    msg["thread_ts"] = json!(thread_ts);
                }
                if let Some(metadata) = args.get("metadata") {
                    msg["metadata"] = decode_nested(metadata);
                }
                self.messages
                    .insert(ts.clone(), (channel.clone(), msg.clone()));
                json!({"ok": true, "channel": channel, "ts": ts, "message": msg})
            }
            "chat.update" => {
                let Some(channel) = arg("channel") else {
                    return err("channel_not_found");
                };
                let ts = arg("ts").unwrap_or_default();
                let Some((_, msg)) = self.messages.get_mut(&ts) else {
                    return err("message_not_found");
                };
                if let Some(text) = args.get("text") {
                    msg["text"] = text.clone();
                }
                for k in ["blocks", "attachments"] {
                    if let Some(v) = args.get(k) {
                        msg[k] = decode_nested(v);
                    }
                }
                let text = msg.get("text").cloned().unwrap_or(json!(""));
                json!({"ok": true, "channel": channel, "ts": ts, "text": text, "message": msg})
            }
            "chat.postEphemeral" => match (arg("channel"), arg("user")) {
                (None, _) => err("channel_not_found"),
                (_, None) => err("user_not_found"),
                _ => json!({"ok": true, "message_ts": self.next_ts()}),
            },
            "views.open" => {
                let view = args.get("view").map(decode_nested);
                let (Some(_), Some(Value::Object(mut view))) = (arg("trigger_id"), view) else {
                    return err("invalid_arguments");
                };
                // Slack answers with the view as opened, plus its identity and empty state.
                let id = format!("V{:08}", self.next_seq());
                let extra = json!({"id": id, "team_id": TEAM_ID, "state": {"values": {}},
                    "hash": format!("{}.fake", self.next_ts()), "previous_view_id": null,
                    "root_view_id": id, "app_id": APP_ID, "bot_id": BOT_ID});
                view.extend(
                    extra
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                json!({"ok": true, "view": view})
            }
            "usergroups.users.list" => {
                let group = arg("usergroup").unwrap_or_default();
                match self.usergroups.get(&group) {
                    Some(users) => json!({"ok": true, "users": users}),
                    None => err("no_such_subteam"),
                }
            }
            "users.info" => match arg("user") {
                Some(id) => json!({"ok": true, "user": {
                    "id": id, "team_id": TEAM_ID, "name": user_name(&id),
                    "real_name": format!("User {id}"), "tz": "Europe/London",
                    "deleted": false, "is_bot": id == BOT_USER_ID,
                }}),
                None => err("user_not_found"),
            },
            "conversations.info" => match arg("channel") {
                Some(id) => json!({"ok": true, "channel": {
                    "id": id, "name": channel_name(&id), "name_normalized": channel_name(&id),
                    "created": 1_700_000_000, "is_channel": true, "is_group": false, "is_im": false,
                    "is_private": false, "is_archived": false, "is_member": true,
                }}),
                None => err("channel_not_found"),
            },
            "conversations.history" | "conversations.replies" => {
                let Some(channel) = arg("channel") else {
                    return err("channel_not_found");
                };
                let thread = arg("ts");
                if method == "conversations.replies" && thread.is_none() {
                    return err("thread_not_found");
                }
                self.history(&channel, thread.as_deref(), &arg)
            }
            // Slack's upload flow: a URL for the bytes, then the share.
            "files.getUploadURLExternal" => {
                let length = arg("length").and_then(|l| l.parse::<usize>().ok());
                let (Some(name), Some(length)) = (arg("filename"), length) else {
                    return err("invalid_arguments");
                };
                let id = format!("F{:010}", self.next_seq());
                self.uploads.insert(id.clone(), (name, length, None));
                json!({"ok": true, "upload_url": format!("http://{addr}/upload/{id}"), "file_id": id})
            }
            "files.completeUploadExternal" => {
                let files = args.get("files").map(decode_nested);
                let Some(Value::Array(files)) = files else {
                    return err("invalid_arguments");
                };
                let mut shared = Vec::new();
                for f in &files {
                    let id = f["id"].as_str().unwrap_or_default().to_owned();
                    let Some((name, _, Some(content))) = self.uploads.get(&id).cloned() else {
                        return err("file_not_found");
                    };
                    let title = f["title"].as_str().unwrap_or(&name).to_owned();
                    shared.push(json!({"id": id, "name": name, "title": title}));
                    self.files.push(SharedFile {
                        id,
                        name,
                        title,
                        channel: arg("channel_id"),
                        thread_ts: arg("thread_ts"),
                        comment: arg("initial_comment"),
                        content,
                    });
                }
                json!({"ok": true, "files": shared})
            }
            _ => err("unknown_method"),
        }
    }

    /// A page of `conversations.history` (top-level messages, newest first) or, with
    /// `thread`, of `conversations.replies` (the root, then its replies, oldest first).
    /// As on Slack, `metadata` is left out unless `include_all_metadata` is true (or `1`,
    /// as the Python SDK sends booleans); `limit` (default 100) and `cursor` page through;
    /// a thread's parent carries `thread_ts` (its own ts) and `reply_count`, and each reply
    /// `parent_user_id`, as in Slack's documented answers and the SDK samples.
    fn history(
        &self,
        channel: &str,
        thread: Option<&str>,
        arg: &dyn Fn(&str) -> Option<String>,
    ) -> Value {
        let mut msgs: Vec<&Value> = self
            .messages
            .iter()
            .filter(|(ts, (c, m))| {
                c == channel
                    && match thread {
                        Some(root) => ts.as_str() == root || m["thread_ts"] == root,
                        None => m["thread_ts"].is_null(),
                    }
            })
            .map(|(_, (_, m))| m)
            .collect();
        msgs.sort_by(|a, b| a["ts"].as_str().cmp(&b["ts"].as_str()));
        if thread.is_none() {
            msgs.reverse();
        }
        let mut reply_counts: HashMap<&str, usize> = HashMap::new();
        for (c, m) in self.messages.values() {
            if let Some(root) = m["thread_ts"].as_str().filter(|_| c == channel) {
                *reply_counts.entry(root).or_default() += 1;
            }
        }
        let with_metadata = matches!(arg("include_all_metadata").as_deref(), Some("true" | "1"));
        let limit: usize = arg("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(100)
            .max(1);
        let start: usize = arg("cursor")
            .and_then(|c| c.strip_prefix("page:")?.parse().ok())
            .unwrap_or(0);
        let page: Vec<Value> = msgs
            .iter()
            .skip(start)
            .take(limit)
            .map(|m| {
                let mut m = (*m).clone();
                let ts = m["ts"].as_str().unwrap_or_default().to_owned();
                if let Some(n) = reply_counts.get(ts.as_str()) {
                    m["thread_ts"] = json!(ts);
                    m["reply_count"] = json!(n);
                } else if let Some(root) =
                    m["thread_ts"].as_str().and_then(|r| self.messages.get(r))
                {
                    m["parent_user_id"] = root.1["user"].clone();
                }
                if !with_metadata && let Some(o) = m.as_object_mut() {
                    o.remove("metadata");
                }
                m
            })
            .collect();
        let has_more = start + page.len() < msgs.len();
        let next = if has_more {
            format!("page:{}", start + page.len())
        } else {
            String::new()
        };
        json!({"ok": true, "messages": page, "has_more": has_more,
            "response_metadata": {"next_cursor": next}})
    }
}

fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        // slack-morphism calls the read methods (auth.test, users.info, ...) with GET.
        .route("/api/{method}", any(web_api))
        .route("/response/{n}", post(response_url))
        .route("/upload/{id}", post(upload))
        .route("/link/", get(link))
        .route("/link", get(link))
        .with_state(inner)
}

async fn web_api(
    AxState(inner): AxState<Arc<Inner>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut args = decode_body(&headers, &body);
    if let (Some(q), Some(obj)) = (query, args.as_object_mut()) {
        for (k, v) in parse_form(&q) {
            obj.entry(k).or_insert(v);
        }
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let root = method == "chat.postMessage"
        && args
            .get("thread_ts")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
    let delay = if root {
        inner.st().root_delays.pop_front()
    } else {
        None
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let (response, late) = {
        let mut st = inner.st();
        let fault = st.take_fault(&method);
        let response = match fault {
            Some(f) => fault_response(f),
            None => json_response(&st.answer(&method, token.as_deref(), &args, inner.addr)),
        };
        let late = st.post_delay.filter(|_| method == "chat.postMessage");
        let path = format!("/api/{method}");
        let response = record(&inner, st, method, path, args, token, fault, response);
        (response, late)
    };
    if let Some(late) = late {
        tokio::time::sleep(late).await;
    }
    response
}

/// Records a call as answered and wakes the waiters.
#[allow(clippy::too_many_arguments)]
fn record(
    inner: &Inner,
    mut st: MutexGuard<'_, State>,
    method: String,
    path: String,
    body: Value,
    token: Option<String>,
    fault: Option<Fault>,
    response: Response,
) -> Response {
    st.calls.push(Call {
        method,
        body,
        token,
        path,
        at: Instant::now(),
        limited: matches!(fault, Some(Fault::RateLimit(_))),
        status: response.status().as_u16(),
    });
    drop(st);
    inner.bump();
    response
}

async fn response_url(
    AxState(inner): AxState<Arc<Inner>>,
    Path(n): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut held = inner.responses_held.subscribe();
    let mut closing = inner.closing.subscribe();
    tokio::select! {
        _ = held.wait_for(|h| !*h) => {}
        _ = closing.wait_for(|c| *c) => {}
    }
    if let Some(delay) = inner.opts.response_delay {
        tokio::time::sleep(delay).await;
    }
    let mut st = inner.st();
    let fault = st.take_fault("response_url");
    let response = match fault {
        Some(f) => fault_response(f),
        None => {
            let uses = st.response_posts.entry(n.clone()).or_default();
            *uses += 1;
            if *uses > RESPONSE_URL_USES {
                (StatusCode::NOT_FOUND, "used_url").into_response()
            } else {
                ([(header::CONTENT_TYPE, "text/html")], "ok").into_response()
            }
        }
    };
    let body = decode_body(&headers, &body);
    record(
        &inner,
        st,
        "response_url".into(),
        format!("/response/{n}"),
        body,
        None,
        fault,
        response,
    )
}

/// An upload URL from `files.getUploadURLExternal`: takes the bytes once, of the length
/// announced, and answers as Slack does (`OK - <length>`, plain text).
async fn upload(
    AxState(inner): AxState<Arc<Inner>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut st = inner.st();
    let fault = st.take_fault("files.upload");
    let response = match (fault, st.uploads.get_mut(&id)) {
        (Some(f), _) => fault_response(f),
        (None, Some((_, length, content))) if *length == body.len() && content.is_none() => {
            *content = Some(body.to_vec());
            (
                [(header::CONTENT_TYPE, "text/plain")],
                format!("OK - {}", body.len()),
            )
                .into_response()
        }
        (None, _) => (StatusCode::NOT_FOUND, "invalid upload").into_response(),
    };
    let recorded = json!({"bytes": body.len()});
    record(
        &inner,
        st,
        "files.upload".into(),
        format!("/upload/{id}"),
        recorded,
        None,
        fault,
        response,
    )
}

/// The socket-mode endpoint: each ticket from `apps.connections.open` opens one socket.
async fn link(
    AxState(inner): AxState<Arc<Inner>>,
    Query(query): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let ticket = query.get("ticket").map(String::as_str).unwrap_or_default();
    let fresh = match inner.st().tickets.get_mut(ticket) {
        Some(used) if !*used => {
            *used = true;
            true
        }
        _ => false,
    };
    if !fresh {
        return (StatusCode::UNAUTHORIZED, "invalid or used ticket").into_response();
    }
    ws.on_upgrade(move |socket| run_connection(inner, socket))
}

async fn run_connection(inner: Arc<Inner>, mut ws: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (id, hello) = {
        let mut st = inner.st();
        let mut hello = json!({
            "type": "hello",
            "num_connections": st.conns.len() + 1,
            "debug_info": {"host": "fake", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        });
        if let (false, Some(h)) = (inner.opts.hello_num_connections, hello.as_object_mut()) {
            h.remove("num_connections");
        }
        (st.next_seq(), hello)
    };
    if !send(&mut ws, Message::Text(hello.to_string().into())).await {
        return;
    }
    {
        // Stopped while this socket was opening: Slack is gone, so is the socket.
        if inner.server_slot().is_none() {
            return;
        }
        let mut st = inner.st();
        st.conns.insert(
            id,
            Conn {
                tx,
                draining: false,
            },
        );
        st.opened += 1;
        let pending: Vec<String> = st
            .sent_order
            .iter()
            .filter(|e| st.envelopes[*e].pending)
            .cloned()
            .collect();
        for envelope in pending {
            st.deliver(&envelope, None);
        }
    }
    inner.bump();
    let mut closing = inner.closing.subscribe();
    enum Event {
        Out(Option<Out>),
        In(Option<Result<Message, axum::Error>>),
        Shutdown,
    }
    loop {
        let event = tokio::select! {
            out = rx.recv() => Event::Out(out),
            msg = ws.recv() => Event::In(msg),
            _ = closing.wait_for(|c| *c) => Event::Shutdown,
        };
        match event {
            Event::Out(Some(Out::Text(text))) => {
                if !send(&mut ws, Message::Text(text.into())).await {
                    break;
                }
            }
            Event::Out(Some(Out::Close)) => {
                inner.st().conns.remove(&id);
                inner.bump();
                let frame = CloseFrame {
                    code: close_code::NORMAL,
                    reason: "".into(),
                };
                if send(&mut ws, Message::Close(Some(frame))).await {
                    // Let the client answer the close handshake; acks sent meanwhile still count.
                    let _ = tokio::time::timeout(CLOSE_WAIT, async {
                        while let Some(Ok(msg)) = ws.recv().await {
                            if let Message::Text(text) = msg {
                                inner.on_frame(text.as_str());
                            }
                        }
                    })
                    .await;
                }
                break;
            }
            Event::Out(Some(Out::Kill) | None) | Event::Shutdown => break,
            Event::In(Some(Ok(Message::Text(text)))) => inner.on_frame(text.as_str()),
            Event::In(Some(Ok(Message::Binary(bytes)))) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                inner.st().other_frames.push(text);
            }
            // tungstenite answers pings by itself while we keep reading.
            Event::In(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Event::In(Some(Ok(Message::Close(_)) | Err(_)) | None) => break,
        }
    }
    // Dropping `ws` here closes the TCP connection (without a close frame unless sent above).
    inner.st().conns.remove(&id);
    inner.bump();
}

async fn send(ws: &mut WebSocket, msg: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, ws.send(msg)).await,
        Ok(Ok(()))
    )
}

/// A listener that can be bound again on the same port right after `stop`.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn err(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

fn json_response(body: &Value) -> Response {
    let content_type = [(header::CONTENT_TYPE, "application/json; charset=utf-8")];
    (content_type, body.to_string()).into_response()
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimit(secs) => {
            let headers = [
                (header::RETRY_AFTER, secs.to_string()),
                (
                    header::CONTENT_TYPE,
                    "application/json; charset=utf-8".to_owned(),
                ),
            ];
            (
                StatusCode::TOO_MANY_REQUESTS,
                headers,
                err("ratelimited").to_string(),
            )
                .into_response()
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = format!("fake slack: injected HTTP {code}");
            (status, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
        }
    }
}

/// A JSON body as sent; a form body (or none) as an object of strings.
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Value {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if content_type.is_some_and(|t| t.starts_with("application/json")) {
        return serde_json::from_slice(body)
            .unwrap_or_else(|_| json!({"_unparsed": String::from_utf8_lossy(body)}));
    }
    Value::Object(parse_form(&String::from_utf8_lossy(body)))
}

fn parse_form(s: &str) -> Map<String, Value> {
    let pairs = s.split('&').filter(|p| !p.is_empty());
    pairs
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), Value::String(percent_decode(v)))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Form clients send `blocks`/`view` as JSON text; keep them as JSON either way.
/// The `view` of a recorded `views.open` call, whichever encoding the bot sent it in.
pub fn decode_view(body: &Value) -> Value {
    body.get("view").map(decode_nested).unwrap_or(Value::Null)
}

fn decode_nested(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        _ => v.clone(),
    }
}

/// The block_id and text of the button `action_id` in `blocks` (actions or section accessory).
fn find_button(blocks: &Value, action_id: &str) -> Option<(Value, Value)> {
    let is_it = |e: &Value| e.get("action_id").and_then(Value::as_str) == Some(action_id);
    blocks.as_array()?.iter().find_map(|block| {
        let elements = block.get("elements").and_then(Value::as_array);
        let in_actions = elements.and_then(|els| els.iter().find(|e| is_it(e)));
        let element = in_actions.or_else(|| block.get("accessory").filter(|e| is_it(e)))?;
        let block_id = block
            .get("block_id")
            .cloned()
            .unwrap_or(json!("fake-block"));
        Some((
            block_id,
            element.get("text").cloned().unwrap_or(Value::Null),
        ))
    })
}

/// Marks a frame as Slack's redelivery of it.
fn mark_retry(frame: &mut Value) {
    let attempt = frame
        .get("retry_attempt")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    frame["retry_attempt"] = json!(attempt + 1);
    frame["retry_reason"] = json!("timeout");
}

fn envelope_id(n: u64) -> String {
    format!("{n:08x}-fa4e-4000-8000-{n:012x}")
}

fn trigger_id(n: u64) -> String {
    format!("{n}.111.{n:032x}")
}

fn channel_name(id: &str) -> String {
    format!("channel-{}", id.to_lowercase())
}

fn user_name(id: &str) -> String {
    format!("user-{}", id.to_lowercase())
}
