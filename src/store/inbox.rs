//! The alert inbox: Alertmanager notifications the webhook accepted, waiting for the intake
//! loop to apply them. A row leaves only once applied, so a failure delays a notification
//! and a crash hands it to another replica; neither loses it. Claimed like the outbox, with
//! the order of a group kept: a row is claimable only when no older row of its group is
//! in the inbox (due later after a failure, or claimed elsewhere).

use std::time::Duration;

use jiff::Timestamp;
use sqlx::Row;

use super::incidents::ms;
use super::{Backend, Store, StoreError};

/// Alertmanager sends a group's notifications in order, and the later ones assume the
/// earlier ones (a resolution after its firing): a row waits while an older one of its
/// group is pending. Different groups are independent.
const IN_GROUP_ORDER: &str = "NOT EXISTS (SELECT 1 FROM alert_inbox older \
     WHERE older.group_key = alert_inbox.group_key AND older.id < alert_inbox.id)";

/// SQLite: a notification waiting for the write gate, and its caller.
#[derive(Debug)]
pub(crate) struct Queued {
    group_key: String,
    body: String,
    received_at_ms: i64,
    done: tokio::sync::oneshot::Sender<Result<i64, String>>,
}

/// A notification taken from the inbox to be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxAlert {
    /// Its place in the inbox: the order of arrival.
    pub id: i64,
    pub group_key: String,
    /// The body as the webhook received (and validated) it.
    pub body: String,
    /// Failed applications before this claim.
    pub attempts: i64,
    pub received_at: Timestamp,
}

/// The inbox at a glance, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboxBacklog {
    /// Notifications accepted and not yet applied.
    pub pending: i64,
    /// How long the oldest of them has waited; zero when the inbox is empty.
    pub oldest_age: Duration,
}

impl Store {
    /// Puts a validated notification of `group_key` into the inbox, due at once, with an id
    /// greater than that of every notification stored before this call began, on any
    /// replica: so a group's next notification, which Alertmanager sends only once the
    /// previous one was answered, sorts after it. SQLite: the next value of the inbox's
    /// counter, in a write transaction (one writer) that stores the other notifications
    /// waiting for it too. PostgreSQL: the inserting
    /// transaction's own id, which increases across sessions and takes no lock, so
    /// concurrent webhooks do not queue behind each other's commits.
    ///
    /// # Errors
    /// The database error; nothing is stored then.
    pub async fn enqueue_alert(
        &self,
        group_key: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        match self.backend {
            Backend::Sqlite => self.enqueue_alert_sqlite(group_key, body, now).await,
            Backend::Postgres => {
                // txid_current() is 64 bits (epoch and xid): it never wraps around.
                let (id,): (i64,) = sqlx::query_as(
                    "INSERT INTO alert_inbox (id, group_key, body, received_at_ms, attempts, due_at_ms) \
                     VALUES (txid_current(), $1, $2, $3, 0, $3) RETURNING id",
                )
                .bind(group_key)
                .bind(body)
                .bind(ms(now))
                .fetch_one(&self.pool)
                .await?;
                Ok(id)
            }
        }
    }

    /// SQLite: group commit. The notification joins the queue, then its caller waits for
    /// the write gate; whoever takes the gate first stores everything queued by then in one
    /// transaction and tells each caller its id (or the error). Under a storm one
    /// transaction stores many, instead of each waiting for its own turn.
    async fn enqueue_alert_sqlite(
        &self,
        group_key: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let (done, stored) = tokio::sync::oneshot::channel();
        self.inbox_queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Queued {
                group_key: group_key.to_owned(),
                body: body.to_owned(),
                received_at_ms: ms(now),
                done,
            });
        let gate = self.write_gate.clone().lock_owned().await;
        let batch =
            std::mem::take(&mut *self.inbox_queue.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            // An earlier holder of the gate stored it (or failed to: the answer is waiting).
            drop(gate);
        } else {
            match self.store_batch(gate, &batch).await {
                Ok(ids) => {
                    for (q, id) in batch.into_iter().zip(ids) {
                        let _ = q.done.send(Ok(id));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    for q in batch {
                        let _ = q.done.send(Err(why.clone()));
                    }
                }
            }
        }
        match stored.await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(why)) => Err(StoreError::Shared(why)),
            // The writer of its batch was cancelled mid-transaction: nothing of it stored.
            Err(_) => Err(StoreError::Shared(
                "the transaction storing the notification was abandoned".into(),
            )),
        }
    }

    /// One transaction for `batch`, under the gate: ids from the counter, in queue order.
    async fn store_batch(
        &self,
        gate: tokio::sync::OwnedMutexGuard<()>,
        batch: &[Queued],
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.begin_gated(gate).await?;
        let (last,): (i64,) =
            sqlx::query_as("UPDATE alert_inbox_ids SET last_id = last_id + $1 RETURNING last_id")
                .bind(batch.len() as i64)
                .fetch_one(&mut *tx)
                .await?;
        let first = last - batch.len() as i64 + 1;
        let mut ids = Vec::with_capacity(batch.len());
        for (q, id) in batch.iter().zip(first..) {
            sqlx::query(
                "INSERT INTO alert_inbox (id, group_key, body, received_at_ms, attempts, due_at_ms) \
                 VALUES ($1, $2, $3, $4, 0, $4)",
            )
            .bind(id)
            .bind(&q.group_key)
            .bind(&q.body)
            .bind(q.received_at_ms)
            .execute(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Claims up to `limit` due notifications for `owner` until `now + lease_ms`, oldest
    /// first, never one whose group has an older notification still in the inbox: so at
    /// most one per group, and a group's notifications in the order they arrived. One whose
    /// claim lapsed (its applier died) is due again.
    ///
    /// # Errors
    /// The database error.
    pub async fn claim_alerts(
        &self,
        owner: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<InboxAlert>, StoreError> {
        let rows = self
            .claim_due_rows(
                "alert_inbox",
                IN_GROUP_ORDER,
                "id",
                "id, group_key, body, attempts, received_at_ms",
                owner,
                now,
                lease_ms,
                limit,
            )
            .await?;
        let mut out: Vec<InboxAlert> = rows
            .iter()
            .map(|r| {
                Ok(InboxAlert {
                    id: r.try_get("id")?,
                    group_key: r.try_get("group_key")?,
                    body: r.try_get("body")?,
                    attempts: r.try_get("attempts")?,
                    received_at: Timestamp::from_millisecond(r.try_get("received_at_ms")?)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        // RETURNING does not promise an order.
        out.sort_by_key(|a| a.id);
        Ok(out)
    }

    /// Extends `owner`'s claim on notification `id` to `until` while it is being applied.
    /// Returns `false` when the claim is no longer `owner`'s.
    ///
    /// # Errors
    /// The database error.
    pub async fn renew_alert(
        &self,
        id: i64,
        owner: &str,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE alert_inbox SET claimed_until_ms = $3 WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(ms(until))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Notification `id` was applied: it leaves the inbox, and the next of its group becomes
    /// claimable. Only `owner`'s claim is finished; returns `false` when the row was not
    /// (another replica took it over after the lease lapsed, and finishes it itself).
    ///
    /// # Errors
    /// The database error; the row stays, and is applied again (a no-op) after its lease.
    pub async fn finish_alert(&self, id: i64, owner: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM alert_inbox WHERE id = $1 AND claimed_by = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Applying notification `id` failed with `error`: it is tried again at `due`, by
    /// whichever replica claims it then; its group waits behind it meanwhile. Returns
    /// `false` when the claim was no longer `owner`'s.
    ///
    /// # Errors
    /// The database error; the row is then claimable again once the lease lapses.
    pub async fn retry_alert(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        due: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE alert_inbox SET attempts = attempts + 1, last_error = $3, due_at_ms = $4, \
             claimed_by = NULL, claimed_until_ms = NULL WHERE id = $1 AND claimed_by = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(error)
        .bind(ms(due))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many notifications wait and how long the oldest has, at `now`.
    ///
    /// # Errors
    /// The database error.
    pub async fn inbox_backlog(&self, now: Timestamp) -> Result<InboxBacklog, StoreError> {
        let (pending, oldest_ms): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(received_at_ms) FROM alert_inbox")
                .fetch_one(&self.pool)
                .await?;
        Ok(InboxBacklog {
            pending,
            oldest_age: oldest_ms.map_or(Duration::ZERO, |received| {
                Duration::from_millis(ms(now).saturating_sub(received).max(0) as u64)
            }),
        })
    }

    /// The last error and attempts of each notification still in the inbox, oldest first,
    /// for tests and diagnosis.
    ///
    /// # Errors
    /// The database error.
    pub async fn inbox_errors(&self) -> Result<Vec<(i64, i64, Option<String>)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, attempts, last_error FROM alert_inbox ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
