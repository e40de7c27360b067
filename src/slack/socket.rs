//! Socket mode: keeps several WebSocket connections to Slack open, translates every
//! envelope into an [`Inbound`], hands it to the engine and acknowledges it at once.
//!
//! Written on tokio-tungstenite rather than slack-morphism's listener because odorbot
//! needs what that listener does not give: the acknowledgement written the moment the
//! event is queued, a replacement connection opened *before* a refreshed one closes,
//! reconnects paced by Slack's disconnect reason (none on `link_disabled`), and a live
//! count of open connections for `/readyz`.
//!
//! Every envelope is acknowledged. Slack does not redeliver slash commands or
//! interactive payloads, so one left unacknowledged is lost; when the engine's queue is
//! full the ack itself carries a "busy, nothing was done" answer (a click is told so
//! through its `response_url`, from a small sender of its own, never the reader).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::api::SlackApi;
use super::reconnect::{self, Ended, Next};
use super::wire::{BUSY_CLICK, DisconnectReason, FrameMeaning, ack_frame, busy_answer, read_frame};
use crate::domain::view::Message;
use crate::engine::{Connection, InboundSink};
use crate::metrics::{Metrics, ReasonLabel, TypeLabel};
use crate::os::AckThread;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Busy notices for clicks waiting to be sent; beyond it a clicker is not told.
const NOTICE_QUEUE: usize = 1024;
/// Busy notices sent at once: enough for a burst, few enough never to crowd the workers'
/// Slack calls.
const NOTICE_SENDERS: usize = 8;
/// A busy notice is worth retrying only while the clicker still looks at the message.
const NOTICE_DEADLINE: Duration = Duration::from_secs(15);
/// Acks fed before one flush, at most: a burst's first ack waits for this many envelopes
/// to be queued (a few microseconds each), never for more.
const ACK_BATCH: usize = 32;

/// Connection facts shared with `/readyz` and `/odor status`.
#[derive(Debug, Default)]
pub struct SocketState {
    open: AtomicUsize,
    link_disabled: AtomicBool,
}

impl Connection for SocketState {
    fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn link_disabled(&self) -> bool {
        self.link_disabled.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
pub struct SocketSettings {
    pub connections: usize,
    pub ping_interval: Duration,
    pub max_backoff: Duration,
    /// How long a connection Slack asked us to replace keeps being read.
    pub drain_for: Duration,
}

pub struct SocketMode {
    api: Arc<SlackApi>,
    sink: Arc<dyn InboundSink>,
    metrics: Metrics,
    settings: SocketSettings,
    state: Arc<SocketState>,
    /// Set while envelopes are being answered busy, so the log says when that starts
    /// and ends rather than once per envelope.
    busy: AtomicBool,
}

/// What a connection's reader knows of it.
struct Link {
    /// Slack's `hello` arrived, and the connection counts as open.
    hello: bool,
    opened_at: Option<Instant>,
    /// Slack sent `disconnect` on it: it only acknowledges until it closes.
    draining: bool,
}

/// What a frame asks of the reader.
enum Step {
    Nothing,
    /// Write this ack (or busy answer) for an envelope of `kind`.
    Ack {
        frame: String,
        kind: &'static str,
    },
    End(End),
    /// Slack asked for this connection to be replaced; it is handed back to drain.
    Handover(DisconnectReason),
}

/// Why a connection stopped being the slot's live connection.
enum End {
    /// Slack sent `disconnect` (other than `link_disabled`); the old connection, handed
    /// back, keeps acknowledging in the background until Slack closes it, while the
    /// slot opens the next one when the reason allows.
    Disconnect(DisconnectReason, Box<Ws>),
    Dropped(&'static str),
    LinkDisabled,
    Cancelled,
}

/// Tells clickers that odorbot was too busy, through their `response_url`, off the
/// socket's reader and with bounded concurrency.
struct BusyNotices {
    tx: mpsc::Sender<String>,
}

impl BusyNotices {
    fn start(api: Arc<SlackApi>, cancel: &CancellationToken, tasks: &TaskTracker) -> Self {
        let (tx, rx) = mpsc::channel(NOTICE_QUEUE);
        tasks.spawn(Self::run(rx, api, cancel.clone(), tasks.clone()));
        Self { tx }
    }

    /// Queues a notice; never waits. `false` when too many are already waiting.
    fn tell(&self, response_url: String) -> bool {
        self.tx.try_send(response_url).is_ok()
    }

    async fn run(
        mut rx: mpsc::Receiver<String>,
        api: Arc<SlackApi>,
        cancel: CancellationToken,
        tasks: TaskTracker,
    ) {
        let permits = Arc::new(Semaphore::new(NOTICE_SENDERS));
        let message = Arc::new(Message::text(BUSY_CLICK));
        loop {
            let url = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                url = rx.recv() => match url {
                    Some(url) => url,
                    None => return,
                },
            };
            let permit = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let (api, message) = (api.clone(), message.clone());
            tasks.spawn(async move {
                // A failure is logged by `respond_within`; the click did nothing either way.
                let _ = api
                    .respond_within(&url, &message, false, NOTICE_DEADLINE)
                    .await;
                drop(permit);
            });
        }
        rx.close();
        let unsent = rx.len();
        if unsent > 0 {
            warn!(unsent, "shutting down: busy notices to clickers not sent");
        }
    }
}

impl SocketMode {
    pub fn new(
        api: Arc<SlackApi>,
        sink: Arc<dyn InboundSink>,
        metrics: Metrics,
        settings: SocketSettings,
        state: Arc<SocketState>,
    ) -> Self {
        Self {
            api,
            sink,
            metrics,
            settings,
            state,
            busy: AtomicBool::new(false),
        }
    }

    /// Starts the connection slots on `thread` with a runtime of their own, and the
    /// sender of busy notices on the engine's; they end when `cancel` fires, and `tracker`
    /// counts the socket thread until its last connection is closed.
    ///
    /// Why a thread of its own: on the engine's runtime a frame's read waits whenever
    /// every worker thread is busy answering commands, so the ack's tail grew with the
    /// load. Here a read only waits for the kernel to schedule this thread, which runs
    /// above the engine's threads ([`crate::os`]), and the engine's work reaches the
    /// socket only through the queue's `try_send`.
    ///
    /// # Errors
    /// The runtime could not be built or the thread is gone.
    pub fn spawn(
        self: Arc<Self>,
        thread: AckThread,
        cancel: &CancellationToken,
        tracker: &TaskTracker,
    ) -> std::io::Result<()> {
        let notices = Arc::new(BusyNotices::start(self.api.clone(), cancel, tracker));
        let token = tracker.token();
        let cancel = cancel.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        thread.run(move || {
            runtime.block_on(self.run_slots(cancel, notices));
            drop(token);
        })
    }

    /// Every slot, and the draining connections they hand off, until `cancel` fires.
    async fn run_slots(self: Arc<Self>, cancel: CancellationToken, notices: Arc<BusyNotices>) {
        let tasks = TaskTracker::new();
        for slot in 0..self.settings.connections {
            let this = self.clone();
            let (cancel, notices) = (cancel.clone(), notices.clone());
            tasks.spawn(this.slot(slot, cancel, tasks.clone(), notices));
        }
        tasks.close();
        tasks.wait().await;
    }

    async fn slot(
        self: Arc<Self>,
        slot: usize,
        cancel: CancellationToken,
        tasks: TaskTracker,
        notices: Arc<BusyNotices>,
    ) {
        let mut attempt = 0;
        while !cancel.is_cancelled() {
            let (ended, open_for) = match self.connect().await {
                Err(why) => {
                    warn!(slot, error = %why, "socket-mode connection failed");
                    (Ended::ConnectFailed, None)
                }
                Ok(ws) => {
                    let (end, open_for) = self.pump(ws, &cancel, None, &notices).await;
                    let ended = match end {
                        End::Disconnect(reason, old) => {
                            info!(
                                slot,
                                reason = reason.label(),
                                "Slack sent disconnect; the old connection drains"
                            );
                            let this = self.clone();
                            let (cancel, notices) = (cancel.clone(), notices.clone());
                            let until = Instant::now() + self.settings.drain_for;
                            tasks.spawn(async move {
                                let (end, _) =
                                    this.pump(*old, &cancel, Some(until), &notices).await;
                                debug!(
                                    slot,
                                    end = end.label(),
                                    "disconnected connection finished draining"
                                );
                            });
                            match reason {
                                DisconnectReason::RefreshRequested | DisconnectReason::Warning => {
                                    Ended::Refresh
                                }
                                DisconnectReason::TooManyWebsockets => Ended::TooManyWebsockets,
                                DisconnectReason::LinkDisabled => Ended::LinkDisabled,
                                DisconnectReason::Other => Ended::UnknownReason,
                            }
                        }
                        End::Dropped(why) => {
                            warn!(slot, why, "socket-mode connection lost");
                            Ended::Dropped
                        }
                        End::LinkDisabled => Ended::LinkDisabled,
                        End::Cancelled => return,
                    };
                    (ended, open_for)
                }
            };
            let plan = reconnect::plan(
                ended,
                attempt,
                open_for,
                self.settings.max_backoff,
                reconnect::random_jitter(),
            );
            attempt = plan.attempt;
            match plan.next {
                Next::Now => {}
                Next::After(wait) => {
                    info!(
                        slot,
                        attempt,
                        retry_in_ms = wait.as_millis() as u64,
                        "reconnecting after a backoff"
                    );
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Next::Stop => {
                    self.state.link_disabled.store(true, Ordering::Relaxed);
                    error!(
                        slot,
                        "Slack disabled socket mode for this app (link_disabled); not reconnecting"
                    );
                    return;
                }
            }
        }
    }

    async fn connect(&self) -> Result<Ws, String> {
        let url = self
            .api
            .open_socket_url()
            .await
            .map_err(|e| e.to_string())?;
        let ws = open_ws(&url).await?;
        info!(nodelay = ?tcp_nodelay(&ws).ok(), "socket-mode WebSocket open");
        Ok(ws)
    }

    /// Reads frames until the connection ends; returns why, and how long it was open
    /// after Slack's `hello`. With `drain_until`, the connection is one Slack sent
    /// `disconnect` on: it keeps acknowledging until Slack closes it or the time is up,
    /// and no longer counts as open.
    ///
    /// Frames that have already arrived are read before the acks written for them are
    /// flushed (at most [`ACK_BATCH`]), so a burst costs one write per batch, not one per
    /// envelope; a lone frame's ack is flushed at once.
    async fn pump(
        &self,
        ws: Ws,
        cancel: &CancellationToken,
        drain_until: Option<Instant>,
        notices: &BusyNotices,
    ) -> (End, Option<Duration>) {
        let (mut tx, mut rx) = ws.split();
        let mut link = Link {
            hello: false,
            opened_at: None,
            draining: drain_until.is_some(),
        };
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval(self.settings.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written: Vec<(Instant, &'static str)> = Vec::with_capacity(ACK_BATCH);
        // A frame read while batching that is not an envelope: handled after the flush.
        let mut stash = None;
        let end = 'read: loop {
            let first = if let Some(frame) = stash.take() {
                frame
            } else {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => break End::Cancelled,
                    () = sleep_until_opt(drain_until) => break End::Dropped("drain period over"),
                    frame = rx.next() => frame,
                    _ = ping.tick() => {
                        if last_heard.elapsed() > self.settings.ping_interval * 3 {
                            break End::Dropped("no answer to pings");
                        }
                        if tx.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                            break End::Dropped("ping could not be sent");
                        }
                        continue;
                    }
                }
            };
            last_heard = Instant::now();
            let mut next = Some(first);
            while let Some(frame) = next.take() {
                let text = match frame {
                    Some(Ok(WsMessage::Text(text))) => text,
                    Some(Ok(WsMessage::Close(_))) | None => {
                        break 'read End::Dropped("closed by Slack");
                    }
                    Some(Err(_)) => break 'read End::Dropped("read error"),
                    Some(Ok(_)) => continue,
                };
                let started = Instant::now();
                match self.on_frame(text.as_str(), &mut link, notices) {
                    Step::Nothing => {}
                    Step::Ack { frame, kind } => {
                        if tx.feed(WsMessage::Text(frame.into())).await.is_err() {
                            break 'read self.unacked();
                        }
                        written.push((started, kind));
                    }
                    Step::End(end) => {
                        if tx.flush().await.is_ok() {
                            self.acked(&mut written);
                        }
                        break 'read end;
                    }
                    Step::Handover(reason) => {
                        // The acks fed so far go out before the connection changes hands.
                        if tx.flush().await.is_err() {
                            break 'read self.unacked();
                        }
                        self.acked(&mut written);
                        let open_for = link.opened_at.map(|t| t.elapsed());
                        return match tx.reunite(rx) {
                            Ok(ws) => (End::Disconnect(reason, Box::new(ws)), open_for),
                            Err(_) => (
                                End::Dropped("connection could not be handed over"),
                                open_for,
                            ),
                        };
                    }
                }
                if written.len() < ACK_BATCH {
                    match rx.next().now_or_never() {
                        Some(Some(Ok(WsMessage::Text(text)))) => {
                            next = Some(Some(Ok(WsMessage::Text(text))));
                        }
                        // A close or an error ends the batch; the acks fed go out first.
                        Some(other) => stash = Some(other),
                        None => {}
                    }
                }
            }
            if tx.flush().await.is_err() {
                break self.unacked();
            }
            self.acked(&mut written);
        };
        if link.hello {
            self.count_open(-1);
        }
        if matches!(end, End::Cancelled) {
            let _ = tx.send(WsMessage::Close(None)).await;
        }
        (end, link.opened_at.map(|t| t.elapsed()))
    }

    /// What one text frame asks for; an envelope is offered to the engine here, so its
    /// ack (or busy answer) is decided before it is written.
    fn on_frame(&self, text: &str, link: &mut Link, notices: &BusyNotices) -> Step {
        match read_frame(text, SystemTime::now()) {
            Ok(FrameMeaning::Hello) => {
                if !link.hello && !link.draining {
                    link.hello = true;
                    link.opened_at = Some(Instant::now());
                    self.count_open(1);
                }
                Step::Nothing
            }
            Ok(FrameMeaning::Disconnect(DisconnectReason::LinkDisabled)) if !link.draining => {
                Step::End(End::LinkDisabled)
            }
            Ok(FrameMeaning::Disconnect(reason)) if !link.draining => {
                // Keep acknowledging on the old connection while the slot opens a new
                // one, so nothing falls into the gap.
                if link.hello {
                    link.hello = false;
                    self.count_open(-1);
                }
                Step::Handover(reason)
            }
            Ok(FrameMeaning::Disconnect(_)) => Step::Nothing,
            Ok(FrameMeaning::Event(inbound)) => {
                let kind = inbound.kind();
                self.metrics
                    .envelopes_received
                    .get_or_create(&TypeLabel { r#type: kind })
                    .inc();
                let envelope_id = inbound.envelope_id.clone();
                match self.sink.offer(*inbound) {
                    Ok(()) => {
                        self.note_busy(&envelope_id, kind, None, notices);
                        Step::Ack {
                            frame: ack_frame(&envelope_id),
                            kind,
                        }
                    }
                    // Slack would not redeliver it: answer now that nothing was done.
                    Err(inbound) => {
                        let answer = busy_answer(&inbound);
                        self.note_busy(&envelope_id, kind, Some(answer.tell), notices);
                        Step::Ack {
                            frame: answer.ack,
                            kind,
                        }
                    }
                }
            }
            Ok(FrameMeaning::Ignored { envelope_id, why }) => {
                debug!(envelope_id, why, "envelope acknowledged and ignored");
                self.metrics
                    .envelopes_received
                    .get_or_create(&TypeLabel { r#type: "ignored" })
                    .inc();
                Step::Ack {
                    frame: ack_frame(&envelope_id),
                    kind: "ignored",
                }
            }
            Err(e) => {
                warn!(error = %e, "unreadable socket-mode frame");
                Step::Nothing
            }
        }
    }

    /// Counts the acks just flushed, and how long each took from its frame's read.
    fn acked(&self, written: &mut Vec<(Instant, &'static str)>) {
        for (started, kind) in written.drain(..) {
            if kind != "ignored" {
                self.metrics
                    .envelopes_acked
                    .get_or_create(&TypeLabel { r#type: kind })
                    .inc();
                self.metrics
                    .ack_latency
                    .observe(started.elapsed().as_secs_f64());
            }
        }
    }

    /// An ack could not be written: the connection is gone.
    fn unacked(&self) -> End {
        self.metrics
            .envelopes_unacked
            .get_or_create(&ReasonLabel {
                reason: "connection_lost",
            })
            .inc();
        warn!("acks could not be written; the connection is gone");
        End::Dropped("ack could not be sent")
    }

    /// Counts a busy answer (`busy` is `Some`, holding a click's `response_url` to tell)
    /// and logs when answering busy starts and stops.
    fn note_busy(
        &self,
        envelope_id: &str,
        kind: &'static str,
        busy: Option<Option<String>>,
        notices: &BusyNotices,
    ) {
        let Some(tell) = busy else {
            if self.busy.swap(false, Ordering::Relaxed) {
                info!("engine queue has room again; envelopes are queued");
            }
            return;
        };
        self.metrics
            .envelopes_busy
            .get_or_create(&TypeLabel { r#type: kind })
            .inc();
        if !self.busy.swap(true, Ordering::Relaxed) {
            warn!(
                envelope_id,
                "engine queue full; answering envelopes busy (nothing done) until it drains"
            );
        }
        if let Some(url) = tell
            && !notices.tell(url)
        {
            warn!(
                envelope_id,
                "too many busy notices waiting; this clicker is not told"
            );
        }
    }

    fn count_open(&self, delta: i64) {
        let open = if delta > 0 {
            self.state.open.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.state.open.fetch_sub(1, Ordering::Relaxed) - 1
        };
        self.metrics.slack_connections.set(open as i64);
    }
}

impl End {
    fn label(&self) -> &'static str {
        match self {
            Self::Disconnect(reason, _) => reason.label(),
            Self::Dropped(why) => why,
            Self::LinkDisabled => "link_disabled",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Opens the WebSocket at `url` with `TCP_NODELAY` set: an ack is one small frame, and
/// with Nagle's algorithm on it would wait for the peer's TCP acknowledgement of the
/// previous segment — a round trip to Slack — whenever acks follow each other closely.
async fn open_ws(url: &str) -> Result<Ws, String> {
    // The URL is a one-time credential: never logged.
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(url, None, true),
    )
    .await
    .map_err(|_| "WebSocket handshake timed out".to_owned())?
    .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
    Ok(ws)
}

/// Whether `TCP_NODELAY` is set on the connection's TCP stream (TLS or not).
fn tcp_nodelay(ws: &Ws) -> std::io::Result<bool> {
    ws.get_ref().get_ref().nodelay()
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_socket_mode_websocket_has_tcp_nodelay_set() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            // Hold the connection until the client has looked at its socket.
            let _ = ws.next().await;
        });
        let ws = open_ws(&format!("ws://{addr}/link/?ticket=t"))
            .await
            .unwrap();
        assert!(tcp_nodelay(&ws).unwrap(), "TCP_NODELAY is off");
        drop(ws);
        server.await.unwrap();
    }
}
