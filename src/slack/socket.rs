//! Socket mode: keeps several WebSocket connections to Slack open, translates every
//! envelope into an [`Inbound`], hands it to the engine and acknowledges it at once.
//!
//! Written on tokio-tungstenite rather than slack-morphism's listener because odorbot
//! needs what that listener does not give: the acknowledgement written the moment the
//! event is queued (and withheld when the queue is full, so Slack redelivers), a
//! replacement connection opened *before* a refreshed one closes, no reconnect loop on
//! `link_disabled`, and a live count of open connections for `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::api::SlackApi;
use super::wire::{DisconnectReason, FrameMeaning, ack_frame, read_frame};
use crate::engine::{Connection, InboundSink};
use crate::metrics::{Metrics, ReasonLabel, TypeLabel};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
}

/// Why a connection stopped being the slot's live connection.
enum End {
    /// Slack asked for a replacement; the old connection, handed back, drains in the
    /// background while the slot connects anew.
    Replace(Box<Ws>),
    Dropped(&'static str),
    LinkDisabled,
    Cancelled,
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
        }
    }

    /// Starts one task per connection slot; they end when `cancel` fires.
    pub fn spawn(self: Arc<Self>, cancel: &CancellationToken, tracker: &TaskTracker) {
        for slot in 0..self.settings.connections {
            let this = self.clone();
            let cancel = cancel.clone();
            let tasks = tracker.clone();
            tracker.spawn(async move { this.slot(slot, cancel, tasks).await });
        }
    }

    async fn slot(self: Arc<Self>, slot: usize, cancel: CancellationToken, tasks: TaskTracker) {
        const FIRST_BACKOFF: Duration = Duration::from_millis(500);
        let mut backoff = FIRST_BACKOFF;
        while !cancel.is_cancelled() {
            let ws = match self.connect().await {
                Ok(ws) => ws,
                Err(why) => {
                    warn!(slot, error = %why, retry_in_ms = backoff.as_millis() as u64, "socket-mode connection failed");
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.settings.max_backoff);
                    continue;
                }
            };
            backoff = FIRST_BACKOFF;
            match self.pump(ws, &cancel, None).await {
                End::Replace(old) => {
                    info!(slot, "Slack asked for a new connection; replacing it");
                    let this = self.clone();
                    let cancel = cancel.clone();
                    let until = Instant::now() + self.settings.drain_for;
                    tasks.spawn(async move {
                        let end = this.pump(*old, &cancel, Some(until)).await;
                        debug!(
                            slot,
                            end = end.label(),
                            "replaced connection finished draining"
                        );
                    });
                }
                End::Dropped(why) => warn!(slot, why, "socket-mode connection lost; reconnecting"),
                End::LinkDisabled => {
                    self.state.link_disabled.store(true, Ordering::Relaxed);
                    error!(
                        slot,
                        "Slack disabled socket mode for this app (link_disabled); not reconnecting"
                    );
                    return;
                }
                End::Cancelled => return,
            }
        }
    }

    async fn connect(&self) -> Result<Ws, String> {
        let url = self
            .api
            .open_socket_url()
            .await
            .map_err(|e| e.to_string())?;
        // The URL is a one-time credential: never logged.
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        .map_err(|_| "WebSocket handshake timed out".to_owned())?
        .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
        Ok(ws)
    }

    /// Reads frames until the connection ends. With `drain_until`, the connection is
    /// one Slack asked us to replace: it keeps acknowledging until Slack closes it or
    /// the time is up, and no longer counts as open.
    async fn pump(&self, ws: Ws, cancel: &CancellationToken, drain_until: Option<Instant>) -> End {
        let (mut tx, mut rx) = ws.split();
        let mut hello = false;
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval(self.settings.ping_interval);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = loop {
            let frame = tokio::select! {
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
            };
            last_heard = Instant::now();
            let text = match frame {
                Some(Ok(WsMessage::Text(text))) => text,
                Some(Ok(WsMessage::Close(_))) | None => break End::Dropped("closed by Slack"),
                Some(Err(_)) => break End::Dropped("read error"),
                Some(Ok(_)) => continue,
            };
            match read_frame(text.as_str(), SystemTime::now()) {
                Ok(FrameMeaning::Hello) => {
                    if !hello && drain_until.is_none() {
                        hello = true;
                        self.count_open(1);
                    }
                }
                Ok(FrameMeaning::Disconnect(reason)) if drain_until.is_none() => {
                    if reason == DisconnectReason::LinkDisabled {
                        break End::LinkDisabled;
                    }
                    // Keep acknowledging on the old connection while the slot opens a
                    // new one, so nothing falls into the gap.
                    if hello {
                        self.count_open(-1);
                    }
                    match tx.reunite(rx) {
                        Ok(ws) => return End::Replace(Box::new(ws)),
                        Err(_) => return End::Dropped("connection could not be handed over"),
                    }
                }
                Ok(FrameMeaning::Disconnect(_)) => {}
                Ok(FrameMeaning::Event(inbound)) => {
                    let started = Instant::now();
                    let kind = inbound.kind();
                    let envelope_id = inbound.envelope_id.clone();
                    self.metrics
                        .envelopes_received
                        .get_or_create(&TypeLabel { r#type: kind })
                        .inc();
                    if self.sink.offer(*inbound).is_err() {
                        // Unacked on purpose: Slack redelivers, to us or to another replica.
                        self.metrics
                            .envelopes_unacked
                            .get_or_create(&ReasonLabel {
                                reason: "queue_full",
                            })
                            .inc();
                        warn!(
                            envelope_id,
                            "engine queue full; envelope left for redelivery"
                        );
                        continue;
                    }
                    if tx
                        .send(WsMessage::Text(ack_frame(&envelope_id).into()))
                        .await
                        .is_err()
                    {
                        break End::Dropped("ack could not be sent");
                    }
                    self.metrics
                        .envelopes_acked
                        .get_or_create(&TypeLabel { r#type: kind })
                        .inc();
                    self.metrics
                        .ack_latency
                        .observe(started.elapsed().as_secs_f64());
                }
                Ok(FrameMeaning::Ignored { envelope_id, why }) => {
                    debug!(envelope_id, why, "envelope acknowledged and ignored");
                    self.metrics
                        .envelopes_received
                        .get_or_create(&TypeLabel { r#type: "ignored" })
                        .inc();
                    if tx
                        .send(WsMessage::Text(ack_frame(&envelope_id).into()))
                        .await
                        .is_err()
                    {
                        break End::Dropped("ack could not be sent");
                    }
                }
                Err(e) => warn!(error = %e, "unreadable socket-mode frame"),
            }
        };
        if hello {
            self.count_open(-1);
        }
        if matches!(end, End::Cancelled) {
            let _ = tx.send(WsMessage::Close(None)).await;
        }
        end
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
            Self::Replace(_) => "replace",
            Self::Dropped(why) => why,
            Self::LinkDisabled => "link_disabled",
            Self::Cancelled => "cancelled",
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
