//! Sends the outbox: must-send messages leave the store only once Slack accepted them
//! (or refused them for good), so an outage or a restart delays them, never loses them.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::domain::ids::ChannelId;
use crate::domain::view::Message;
use crate::idgen::IdGen;
use crate::slack::api::{ApiError, SlackApi};
use crate::store::Store;
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
        match self
            .store
            .enqueue(channel.as_str(), thread, message, Timestamp::now())
            .await
        {
            Ok(()) => self.wake.notify_one(),
            Err(e) => {
                warn!(error = %e, "outbox unavailable; sending directly");
                if let Err(e) = self.api.post_message(channel, thread, message).await {
                    error!(error = %e, "message lost: neither the outbox nor Slack took it");
                }
            }
        }
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
                match self
                    .api
                    .post_message_within(&channel, out.thread_ts.as_deref(), &out.message, ATTEMPT)
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
