//! Sends the outbox: must-send messages leave the store only once Slack accepted them
//! (or refused them for good), so an outage or a restart delays them, never loses them.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::domain::ids::ChannelId;
use crate::domain::incident::IncidentState;
use crate::domain::timer::{Route, ThreadState, route};
use crate::domain::view::Message;
use crate::idgen::IdGen;
use crate::slack::api::{ApiError, SlackApi};
use crate::store::Store;
use crate::store::outbox::Outgoing;
use crate::supervisor::Beat;

/// One attempt's budget; after it the message waits in the store for the next one.
const ATTEMPT: Duration = Duration::from_secs(5);
/// A claim lasts well past an attempt, so no other replica sends it meanwhile; short, so
/// a message whose sender died waits little.
const LEASE: Duration = Duration::from_secs(15);

pub struct Outbox {
    store: Store,
    api: Arc<SlackApi>,
    owner: String,
    wake: Notify,
}

impl Outbox {
    pub fn new(store: Store, api: Arc<SlackApi>) -> Self {
        Self {
            store,
            api,
            // Unique per instance, not only per process: leases are held by name.
            owner: IdGen::process().next("outbox-", Timestamp::now()),
            wake: Notify::new(),
        }
    }

    /// Queues a message for `channel` (in `thread` when given) and wakes the sender.
    /// Falls back to sending at once if the store cannot take it.
    pub async fn send(&self, channel: &ChannelId, thread: Option<&str>, message: &Message) {
        self.queue(channel, None, thread, message).await;
    }

    /// Queues a message for `incident`'s thread. Without `thread` (its root message is not
    /// posted yet) it waits in the outbox until the root exists, then goes into its thread.
    pub async fn send_in_thread(
        &self,
        channel: &ChannelId,
        incident: &str,
        thread: Option<&str>,
        message: &Message,
    ) {
        self.queue(channel, Some(incident), thread, message).await;
    }

    /// Stores the message and wakes the sender; if the store cannot take it, sends it at
    /// once (without a store there is no waiting for a root either).
    async fn queue(
        &self,
        channel: &ChannelId,
        incident: Option<&str>,
        thread: Option<&str>,
        message: &Message,
    ) {
        match self
            .store
            .enqueue_for(
                channel.as_str(),
                incident,
                thread,
                message,
                Timestamp::now(),
            )
            .await
        {
            Ok(()) => self.wake.notify_one(),
            Err(e) => {
                warn!(error = %e, ?incident, "outbox unavailable; sending directly");
                if let Err(e) = self.api.post_message(channel, thread, message).await {
                    error!(error = %e, ?incident, "message lost: neither the outbox nor Slack took it");
                }
            }
        }
    }

    /// Where a claimed message goes now: its own thread, or its incident's once the root
    /// message exists.
    async fn route(&self, out: &Outgoing) -> Result<Route, crate::store::StoreError> {
        let incident = match (&out.thread_ts, &out.incident_id) {
            (None, Some(id)) => self.store.incident_by_id(id).await?,
            _ => None,
        };
        let state = incident.as_ref().map(|i| ThreadState {
            root: i.thread_ts.as_deref(),
            resolved: i.state == IncidentState::Resolved,
        });
        Ok(route(
            out.thread_ts.as_deref(),
            state,
            out.created_at,
            Timestamp::now(),
        ))
    }

    /// Sends due messages until cancelled; `beat` hears of every completed round.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken, beat: Beat) {
        loop {
            if cancel.is_cancelled() {
                return;
            }
            crate::failpoint!("outbox.tick");
            let batch = self
                .store
                // One at a time: each claim is covered by its own lease.
                .claim_outgoing(&self.owner, Timestamp::now(), LEASE.as_millis() as i64, 1)
                .await
                .unwrap_or_else(|e| {
                    warn!(error = %e, "cannot read the outbox");
                    Vec::new()
                });
            let busy = !batch.is_empty();
            for out in batch {
                let Ok(channel) = out.channel.parse::<ChannelId>() else {
                    let _ = self.store.sent(&out.id).await;
                    continue;
                };
                let thread = match self.route(&out).await {
                    Ok(Route::Post { thread }) => thread,
                    Ok(Route::AwaitRoot { retry_at }) => {
                        debug!(incident = ?out.incident_id, "message waits for its incident's root message");
                        let _ = self.store.await_root(&out.id, retry_at).await;
                        continue;
                    }
                    Err(e) => {
                        // Its lease lapses and it is tried again; nothing is lost.
                        warn!(error = %e, "cannot look up the message's incident thread");
                        continue;
                    }
                };
                if out.thread_ts.is_none() && out.incident_id.is_some() && thread.is_none() {
                    warn!(incident = ?out.incident_id, "the incident has no root message; posting in the channel");
                }
                match self
                    .api
                    .post_message_within(&channel, thread.as_deref(), &out.message, ATTEMPT)
                    .await
                {
                    Ok(_) => {
                        let _ = self.store.sent(&out.id).await;
                    }
                    Err(ApiError::Refused { code, .. }) => {
                        error!(channel = %out.channel, code, "Slack refused a must-send message; dropped");
                        let _ = self.store.sent(&out.id).await;
                    }
                    Err(e) => {
                        let wait = Duration::from_secs(
                            2u64.saturating_pow(out.attempts.clamp(0, 8) as u32),
                        )
                        .min(Duration::from_secs(300));
                        warn!(error = %e, retry_in_s = wait.as_secs(), "message kept in the outbox");
                        let due = Timestamp::now()
                            .checked_add(jiff::SignedDuration::try_from(wait).unwrap_or_default())
                            .unwrap_or(Timestamp::MAX);
                        let _ = self.store.retry_at(&out.id, due).await;
                    }
                }
            }
            beat.alive();
            if busy {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
