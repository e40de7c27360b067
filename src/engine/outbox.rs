//! Sends the outbox: must-send messages leave the store only once Slack accepted them
//! (or refused them for good), so an outage or a restart delays them, never loses them.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::domain::ids::ChannelId;
use crate::domain::incident::IncidentState;
use crate::domain::outbox::{Priority, retry_wait};
use crate::domain::timer::{Route, ThreadState, plus, route};
use crate::domain::view::Message;
use crate::idgen::IdGen;
use crate::metrics::Metrics;
use crate::slack::api::{ApiError, SlackApi};
use crate::store::Store;
use crate::store::outbox::{Belongs, Outgoing};
use crate::supervisor::Beat;

/// One attempt's budget; after it the message waits in the store for the next one.
const ATTEMPT: Duration = Duration::from_secs(5);
/// Tries of the bookkeeping after a successful send (100 ms, doubling, between them).
const BOOKKEEPING_TRIES: usize = 3;
/// Messages in flight at once: a slow Slack holds one of them, not the whole outbox, and
/// the channel's pacing line (`slack::limiter`) picks the most urgent among them.
const SENDERS: usize = 4;
/// How long shutdown waits for sends in flight.
const DRAIN: Duration = Duration::from_secs(5);
/// A claim lasts well past an attempt, so no other replica sends it meanwhile; short, so
/// a message whose sender died waits little.
const LEASE: Duration = Duration::from_secs(15);

/// Why the bookkeeping after a send failed.
#[derive(Debug, thiserror::Error)]
enum Bookkeeping {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[cfg(debug_assertions)]
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
}

/// What became of a message handed to the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// In the store: it is sent as soon as Slack takes it.
    InOutbox,
    /// The store could not take it, so it was posted at once.
    Sent,
    /// Neither the store nor Slack took it.
    Lost,
}

pub struct Outbox {
    store: Store,
    api: Arc<SlackApi>,
    owner: String,
    wake: Notify,
    /// `slack.resend_check`: look a possibly sent message up in Slack before re-sending.
    resend_check: bool,
    metrics: Metrics,
}

impl Outbox {
    pub fn new(store: Store, api: Arc<SlackApi>, resend_check: bool, metrics: Metrics) -> Self {
        Self {
            store,
            api,
            resend_check,
            metrics,
            // Unique per instance, not only per process: leases are held by name.
            owner: IdGen::process().next("outbox-", Timestamp::now()),
            wake: Notify::new(),
        }
    }

    /// Queues a message for `channel` (in `thread` when given) and wakes the sender.
    /// Falls back to sending at once if the store cannot take it.
    pub async fn send(
        &self,
        channel: &ChannelId,
        thread: Option<&str>,
        message: &Message,
        priority: Priority,
    ) {
        self.queue(channel, None, thread, message, priority).await;
    }

    /// Queues a message for `incident`'s thread. Without `thread` (its root message is not
    /// posted yet) it waits in the outbox until the root exists, then goes into its thread.
    pub async fn send_in_thread(
        &self,
        channel: &ChannelId,
        incident: &str,
        thread: Option<&str>,
        message: &Message,
        priority: Priority,
    ) {
        let belongs = Belongs::Incident(incident.to_owned());
        self.queue(channel, Some(&belongs), thread, message, priority)
            .await;
    }

    /// Queues approval request `request`'s card; once Slack took it, its ts is recorded
    /// as the request's thread, where the request's messages queued meanwhile then go.
    pub async fn send_card(&self, channel: &ChannelId, request: &str, card: &Message) -> Queued {
        let belongs = Belongs::CardOf(request.to_owned());
        self.queue(channel, Some(&belongs), None, card, Priority::Routine)
            .await
    }

    /// Queues checklist `list`'s message; once Slack took it, its ts is recorded so that
    /// ticking an item updates it. In a thread it keeps its place after what was queued
    /// there before (an incident's "resolved" timeline, say).
    pub async fn send_checklist(
        &self,
        channel: &ChannelId,
        thread: Option<&str>,
        list: &str,
        message: &Message,
    ) -> Queued {
        let belongs = Belongs::ChecklistOf(list.to_owned());
        self.queue(channel, Some(&belongs), thread, message, Priority::Routine)
            .await
    }

    /// Queues procedure run `run`'s root message; once Slack took it, its ts is recorded
    /// as the run's thread, and the run's steps begin.
    pub async fn send_run_root(&self, channel: &ChannelId, run: &str, message: &Message) -> Queued {
        let belongs = Belongs::RunOf(run.to_owned());
        self.queue(channel, Some(&belongs), None, message, Priority::Routine)
            .await
    }

    /// Queues a message for `request`'s card thread (`thread`, or the card's once posted).
    pub async fn send_in_request_thread(
        &self,
        channel: &ChannelId,
        request: &str,
        thread: Option<&str>,
        message: &Message,
    ) {
        let belongs = Belongs::Request(request.to_owned());
        self.queue(channel, Some(&belongs), thread, message, Priority::Routine)
            .await;
    }

    /// Stores the message and wakes the sender; if the store cannot take it, sends it at
    /// once (without a store there is no waiting for a root either).
    async fn queue(
        &self,
        channel: &ChannelId,
        belongs: Option<&Belongs>,
        thread: Option<&str>,
        message: &Message,
        priority: Priority,
    ) -> Queued {
        let now = Timestamp::now();
        match self
            .store
            .enqueue_for(channel.as_str(), belongs, thread, message, now, priority)
            .await
        {
            Ok(()) => {
                self.wake.notify_one();
                Queued::InOutbox
            }
            Err(e) => {
                warn!(error = %e, ?belongs, "outbox unavailable; sending directly");
                match self
                    .api
                    .post_message_as(channel, thread, message, priority)
                    .await
                {
                    Ok(ts) => {
                        self.posted(belongs, &ts).await;
                        Queued::Sent
                    }
                    Err(e) => {
                        error!(error = %e, ?belongs, "message lost: neither the outbox nor Slack took it");
                        Queued::Lost
                    }
                }
            }
        }
    }

    /// Records the ts of a message others refer to: a card's becomes its request's thread,
    /// a checklist's is where ticks update it.
    async fn record_ts(
        &self,
        belongs: Option<&Belongs>,
        ts: &str,
    ) -> Result<(), crate::store::StoreError> {
        match belongs {
            Some(Belongs::CardOf(request)) => self.store.set_request_ts(request, ts).await,
            Some(Belongs::ChecklistOf(list)) => self.store.set_checklist_ts(list, ts).await,
            Some(Belongs::RunOf(run)) => self.store.set_run_ts(run, ts).await,
            _ => Ok(()),
        }
    }

    /// Bookkeeping after a message was sent directly (the store could not take it).
    async fn posted(&self, belongs: Option<&Belongs>, ts: &str) {
        if let Err(e) = self.record_ts(belongs, ts).await {
            // A card's thread messages then wait out their patience and go into the channel.
            warn!(?belongs, error = %e, "message posted but its ts not recorded");
        }
    }

    /// Where a claimed message goes now: its own thread, or its incident's or request's
    /// once that thread's root message exists.
    async fn route(&self, out: &Outgoing) -> Result<Route, crate::store::StoreError> {
        let root = match (&out.thread_ts, &out.belongs) {
            (None, Some(Belongs::Incident(id))) => self.store.incident_by_id(id).await?.map(|i| {
                let resolved = i.state == IncidentState::Resolved;
                (i.thread_ts, resolved)
            }),
            (None, Some(Belongs::Request(id))) => self
                .store
                .request(id)
                .await?
                // A card is posted whatever became of its request.
                .map(|r| (r.message_ts, false)),
            _ => None,
        };
        let state = root.as_ref().map(|(root, resolved)| ThreadState {
            root: root.as_deref(),
            resolved: *resolved,
        });
        Ok(route(
            out.thread_ts.as_deref(),
            state,
            out.created_at,
            Timestamp::now(),
        ))
    }

    /// Sends one claimed message, unless Slack has it already, and records the outcome.
    async fn deliver(&self, out: Outgoing) {
        let Ok(channel) = out.channel.parse::<ChannelId>() else {
            let _ = self.store.sent(&out.id).await;
            return;
        };
        let thread = match self.route(&out).await {
            Ok(Route::Post { thread }) => thread,
            Ok(Route::AwaitRoot { retry_at }) => {
                debug!(belongs = ?out.belongs, "message waits for its thread's root message");
                let _ = self.store.await_root(&out.id, retry_at).await;
                return;
            }
            Err(e) => {
                // Its lease lapses and it is tried again; nothing is lost.
                warn!(error = %e, "cannot look up the message's thread");
                return;
            }
        };
        if out.thread_ts.is_none()
            && matches!(
                out.belongs,
                Some(Belongs::Incident(_) | Belongs::Request(_))
            )
            && thread.is_none()
        {
            warn!(belongs = ?out.belongs, "the thread has no root message; posting in the channel");
        }
        let thread = thread.as_deref();
        let outcome = match self
            .found_in_slack(&channel, thread, &out.id, out.maybe_sent)
            .await
        {
            Ok(Some(ts)) => Ok(ts),
            Ok(None) => self.attempt(&out, &channel, thread).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(ts) => {
                self.record_sent(&out, &ts).await;
                self.delivered(out.priority, out.created_at);
            }
            Err(ApiError::Refused { code, .. }) => {
                error!(channel = %out.channel, code, "Slack refused a must-send message; dropped");
                let _ = self.store.sent(&out.id).await;
            }
            Err(e) => {
                let retry_after = match &e {
                    ApiError::GaveUp { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let wait = retry_wait(out.attempts, retry_after);
                warn!(error = %e, retry_in_s = wait.as_secs(), "message kept in the outbox");
                let due = plus(Timestamp::now(), wait);
                let _ = self.store.retry_at(&out.id, due).await;
            }
        }
    }

    /// Slack took a message of `priority` queued at `queued`: how long it waited.
    pub fn delivered(&self, priority: Priority, queued: Timestamp) {
        self.metrics.outbox_waited(priority, queued);
    }

    /// When an earlier send of the message tagged `tag` may have reached Slack
    /// (`maybe_sent`: its sender died or lost the answer), the `ts` Slack has it under;
    /// `None` when it has to be sent, which is also the answer with `slack.resend_check`
    /// off (at least once, then).
    ///
    /// # Errors
    /// [`ApiError`] when Slack cannot be asked: whether it has the message is unknown,
    /// so it must not be sent now.
    pub async fn found_in_slack(
        &self,
        channel: &ChannelId,
        thread: Option<&str>,
        tag: &str,
        maybe_sent: bool,
    ) -> Result<Option<String>, ApiError> {
        if !(maybe_sent && self.resend_check) {
            return Ok(None);
        }
        let found = self.api.find_tagged(channel, thread, tag).await?;
        if found.is_some() {
            debug!(tag, "Slack already has the message; not sent again");
        }
        Ok(found)
    }

    /// Records that a send is under way, then sends, tagged with the outbox id so that
    /// Slack can be asked about it if its outcome is lost.
    async fn attempt(
        &self,
        out: &Outgoing,
        channel: &ChannelId,
        thread: Option<&str>,
    ) -> Result<String, ApiError> {
        if let Err(e) = self.store.sending(&out.id).await {
            return Err(ApiError::GaveUp {
                method: "chat.postMessage",
                attempts: 0,
                last: format!("not sent: cannot record the send first: {e}"),
                retry_after: None,
            });
        }
        self.api
            .post_tagged(
                channel,
                thread,
                &out.message,
                &out.id,
                ATTEMPT,
                out.priority,
            )
            .await
    }

    /// The bookkeeping after Slack took `out` (its card's ts, its removal), retried a few
    /// times; if it still fails the message stays marked as sending, and whoever claims it
    /// next finds it in Slack instead of posting it again.
    async fn record_sent(&self, out: &Outgoing, ts: &str) {
        let mut wait = Duration::from_millis(100);
        for _ in 0..BOOKKEEPING_TRIES {
            match self.bookkeep(out, ts).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(id = %out.id, error = %e, "message sent but not yet recorded; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
        error!(id = %out.id, "message sent but not recorded; it is looked up in Slack before any re-send");
    }

    async fn bookkeep(&self, out: &Outgoing, ts: &str) -> Result<(), Bookkeeping> {
        crate::failpoint!("outbox.after_send", e => return Err(e.into()));
        self.record_ts(out.belongs.as_ref(), ts).await?;
        self.store.sent(&out.id).await?;
        Ok(())
    }

    /// Sends due messages until cancelled, up to [`SENDERS`] at once, the most urgent
    /// claimed first; `beat` hears of every round.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken, beat: Beat) {
        let mut sending: JoinSet<()> = JoinSet::new();
        loop {
            if cancel.is_cancelled() {
                return drain(sending).await;
            }
            crate::failpoint!("outbox.tick");
            while sending.try_join_next().is_some() {}
            let room = SENDERS.saturating_sub(sending.len());
            let batch = if room == 0 {
                Vec::new()
            } else {
                self.store
                    // Each claim is covered by its own lease.
                    .claim_outgoing(
                        &self.owner,
                        Timestamp::now(),
                        LEASE.as_millis() as i64,
                        room as i64,
                    )
                    .await
                    .unwrap_or_else(|e| {
                        warn!(error = %e, "cannot read the outbox");
                        Vec::new()
                    })
            };
            let busy = !batch.is_empty();
            for out in batch {
                let me = self.clone();
                sending.spawn(async move { me.deliver(out).await });
            }
            beat.alive();
            if busy && sending.len() < SENDERS {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return drain(sending).await,
                () = self.wake.notified() => {}
                Some(_) = sending.join_next(), if !sending.is_empty() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// At shutdown, sends in flight get a moment to finish; what is cut off stays marked as
/// sending, and whoever claims it next looks it up in Slack before sending again.
async fn drain(mut sending: JoinSet<()>) {
    let all = async { while sending.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN, all).await.is_err() {
        warn!("outbox sends still in flight at shutdown were cut off");
    }
}
