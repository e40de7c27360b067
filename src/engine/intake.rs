//! Applies the alert inbox: the webhook only validates a notification and stores it (so
//! Alertmanager's answer never waits for the incident work); this loop claims stored
//! notifications with a lease, applies each through the incident desk, and deletes it once
//! applied. A failure keeps the row and tries it again later
//! ([`crate::domain::intake::retry_wait`]); a replica that dies leaves its claims to lapse,
//! and any replica applies them again, which the desk's per-alert idempotency keys make
//! harmless. Different groups are applied side by side, one group's notifications in order.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::domain::alert;
use crate::domain::intake::retry_wait;
use crate::engine::incidents::Desk;
use crate::engine::plus;
use crate::idgen::IdGen;
use crate::store::inbox::InboxAlert;
use crate::store::{Backend, Store, StoreError};
use crate::supervisor::Beat;

/// Notifications applied at once (each of a different group) on PostgreSQL. SQLite has
/// one writer, and writers that find it busy poll with growing sleeps: applying several at
/// once there only adds waits, for them and for the webhook's inserts. One at a time.
const CONCURRENCY_POSTGRES: usize = 8;
const CONCURRENCY_SQLITE: usize = 1;
/// A claim outlasts an application by far and is renewed while it runs (every third of
/// it), so no other replica applies the same row meanwhile; short, so that a row whose
/// applier died waits little.
const LEASE: Duration = Duration::from_secs(30);
/// How often the inbox is looked at without a local wake-up: what other replicas' webhooks
/// stored, and rows due again after a failure.
const POLL: Duration = Duration::from_secs(1);

pub struct Intake {
    store: Store,
    desk: Arc<Desk>,
    /// This instance's name on claims: leases are held by name.
    owner: String,
    /// Rung by the webhook of this replica when it stored a notification.
    wake: Notify,
    /// How many notifications are applied at once.
    concurrency: usize,
}

impl Intake {
    pub fn new(store: Store, desk: Arc<Desk>) -> Self {
        Self {
            concurrency: match store.backend() {
                Backend::Sqlite => CONCURRENCY_SQLITE,
                Backend::Postgres => CONCURRENCY_POSTGRES,
            },
            store,
            desk,
            owner: IdGen::process().next("intake-", Timestamp::now()),
            wake: Notify::new(),
        }
    }

    /// Stores a validated notification of `group_key` (its raw `body`) and wakes the loop.
    /// Once this returns, the notification is not lost: Alertmanager may be answered.
    ///
    /// # Errors
    /// The store's error; nothing was stored, and Alertmanager should retry.
    pub async fn accept(&self, group_key: &str, body: &str) -> Result<i64, StoreError> {
        let id = self
            .store
            .enqueue_alert(group_key, body, Timestamp::now())
            .await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Parses and applies one stored notification.
    async fn apply_body(&self, row: &InboxAlert) -> Result<(), String> {
        // The webhook parsed this very body before storing it; a failure here means the
        // parser changed under a stored row, and the row waits for a fix, not the bin.
        let n = alert::parse(row.body.as_bytes()).map_err(|e| format!("unreadable body: {e}"))?;
        let origin = format!("inbox:{}", row.id);
        let outcome = self
            .desk
            .on_alert(&n, &origin)
            .await
            .map_err(|e| e.to_string())?;
        let waited_ms = Timestamp::now()
            .duration_since(row.received_at)
            .as_millis()
            .max(0) as u64;
        info!(
            group = %n.group_key,
            inbox_id = row.id,
            opened = ?outcome.opened,
            updated = ?outcome.updated,
            duplicates = outcome.duplicates,
            waited_ms,
            "alert notification applied"
        );
        Ok(())
    }

    /// Applies one claimed row, renewing its lease meanwhile, then deletes it or, on
    /// failure, schedules its next attempt.
    async fn apply(self: Arc<Self>, row: InboxAlert) {
        let work = self.apply_body(&row);
        tokio::pin!(work);
        let mut renew = tokio::time::interval(LEASE / 3);
        renew.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = renew.tick() => {
                    match self.store.renew_alert(row.id, &self.owner, plus(Timestamp::now(), LEASE)).await {
                        Ok(true) => {}
                        Ok(false) => warn!(inbox_id = row.id, "alert notification's claim was taken over while it was applied"),
                        Err(e) => warn!(inbox_id = row.id, error = %e, "cannot renew the claim on an alert notification"),
                    }
                }
            }
        };
        if result.is_ok() {
            // Between the effect and the inbox's delete: a crash here applies it again.
            crate::failpoint!("intake.after_apply");
        }
        match result {
            Ok(()) => match self.store.finish_alert(row.id, &self.owner).await {
                Ok(true) => {}
                Ok(false) => {
                    warn!(
                        inbox_id = row.id,
                        "applied alert notification was claimed elsewhere meanwhile"
                    )
                }
                // Applied again after the lease: a no-op by the alerts' keys.
                Err(e) => {
                    warn!(inbox_id = row.id, error = %e, "applied alert notification not removed from the inbox")
                }
            },
            Err(why) => {
                let wait = retry_wait(row.attempts);
                warn!(
                    inbox_id = row.id,
                    group = %row.group_key,
                    attempts = row.attempts + 1,
                    retry_in_ms = wait.as_millis() as u64,
                    error = %why,
                    "alert notification not applied; kept in the inbox"
                );
                let due = plus(Timestamp::now(), wait);
                if let Err(e) = self.store.retry_alert(row.id, &self.owner, &why, due).await {
                    // The row stays claimed: it is tried again once the lease lapses.
                    error!(inbox_id = row.id, error = %e, "cannot record an alert notification's failure");
                }
            }
        }
    }

    /// Claims what there is room for and starts applying it; returns how many it started.
    async fn claim_into(self: &Arc<Self>, running: &mut JoinSet<()>) -> usize {
        let room = self.concurrency.saturating_sub(running.len());
        if room == 0 {
            return 0;
        }
        let batch = self
            .store
            .claim_alerts(
                &self.owner,
                Timestamp::now(),
                LEASE.as_millis() as i64,
                room as i64,
            )
            .await
            .unwrap_or_else(|e| {
                warn!(error = %e, "cannot read the alert inbox");
                Vec::new()
            });
        let started = batch.len();
        for row in batch {
            debug!(inbox_id = row.id, group = %row.group_key, "applying alert notification");
            running.spawn(self.clone().apply(row));
        }
        started
    }

    /// Applies the inbox until cancelled; `beat` hears of every completed round. At
    /// shutdown the applications under way are finished, not abandoned.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken, beat: Beat) {
        let mut running = JoinSet::new();
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let started = self.claim_into(&mut running).await;
            beat.alive();
            if started > 0 && running.len() < self.concurrency {
                // More may be claimable (the next of a group just finished, say).
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Err(e) = done {
                        // Its claim lapses and the row is applied again.
                        error!(error = %e, "applying an alert notification failed");
                    }
                }
            }
        }
        while let Some(done) = running.join_next().await {
            if let Err(e) = done {
                error!(error = %e, "applying an alert notification failed");
            }
        }
    }
}
