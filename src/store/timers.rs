//! Due timers: one row per (kind, subject), claimed with a lease by exactly one replica
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has a single writer), so escalations
//! and status updates survive restarts and are never handled twice at once.

use jiff::Timestamp;
use sqlx::Row;

use super::incidents::ms;
use super::{Store, StoreError};
use crate::domain::timer::{Class, URGENT_KINDS};

/// A claimed timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub kind: String,
    pub subject: String,
    pub due: Timestamp,
}

fn row_to_timer(r: &sqlx::any::AnyRow) -> Result<Timer, StoreError> {
    Ok(Timer {
        kind: r.try_get("kind")?,
        subject: r.try_get("subject")?,
        due: Timestamp::from_millisecond(r.try_get("due_at_ms")?).unwrap_or(Timestamp::UNIX_EPOCH),
    })
}

/// The SQL condition for a class's kinds: constants of the core, never user input.
fn class_filter(class: Class) -> String {
    let kinds = URGENT_KINDS
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    match class {
        Class::Urgent => format!("kind IN ({kinds})"),
        Class::Routine => format!("kind NOT IN ({kinds})"),
    }
}

fn timer_id(kind: &str, subject: &str) -> String {
    format!("{kind}:{subject}")
}

impl Store {
    /// Sets (or moves) the timer for `(kind, subject)` to `due`. Moving it releases any
    /// claim; re-setting the same due time keeps the claim, so a replica recomputing an
    /// incident's timers never frees one that another replica is handling.
    ///
    /// # Errors
    /// The database error.
    pub async fn schedule(
        &self,
        kind: &str,
        subject: &str,
        due: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO timers (id, kind, subject, due_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET due_at_ms = excluded.due_at_ms, \
             claimed_by = CASE WHEN timers.due_at_ms = excluded.due_at_ms THEN timers.claimed_by END, \
             claimed_until_ms = CASE WHEN timers.due_at_ms = excluded.due_at_ms THEN timers.claimed_until_ms END",
        )
        .bind(timer_id(kind, subject))
        .bind(kind)
        .bind(subject)
        .bind(ms(due))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets the timer for `(kind, subject)` unless there is one: changes that come while
    /// it waits are all handled by the one firing.
    ///
    /// # Errors
    /// The database error.
    pub async fn schedule_if_absent(
        &self,
        kind: &str,
        subject: &str,
        due: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO timers (id, kind, subject, due_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(timer_id(kind, subject))
        .bind(kind)
        .bind(subject)
        .bind(ms(due))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the timer for `(kind, subject)`, if any.
    ///
    /// # Errors
    /// The database error.
    pub async fn cancel(&self, kind: &str, subject: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM timers WHERE id = $1")
            .bind(timer_id(kind, subject))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Claims up to `limit` due timers of `class` for `owner` until `now + lease_ms`,
    /// earliest due first. Each claimed row carries its own lease, which the firing renews
    /// ([`Store::renew`]) for as long as it runs.
    ///
    /// # Errors
    /// The database error.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: i64,
        class: Class,
    ) -> Result<Vec<Timer>, StoreError> {
        let rows = self
            .claim_due_rows(
                "timers",
                &class_filter(class),
                "due_at_ms",
                "kind, subject, due_at_ms",
                owner,
                now,
                lease_ms,
                limit,
            )
            .await?;
        rows.iter().map(row_to_timer).collect()
    }

    /// Extends `owner`'s lease on `timer` to `until`. `false` means the lease is lost:
    /// the timer was moved, finished, or taken over after the lease lapsed, and the
    /// firing must stop without posting.
    ///
    /// # Errors
    /// The database error.
    pub async fn renew(
        &self,
        timer: &Timer,
        owner: &str,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE timers SET claimed_until_ms = $4 \
             WHERE id = $1 AND claimed_by = $2 AND due_at_ms = $3",
        )
        .bind(timer_id(&timer.kind, &timer.subject))
        .bind(owner)
        .bind(ms(timer.due))
        .bind(ms(until))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A firing failed: the timer stays `owner`'s until `at`, then any replica may claim
    /// it again (sooner than a whole lease).
    ///
    /// # Errors
    /// The database error.
    pub async fn retry_timer(
        &self,
        timer: &Timer,
        owner: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.renew(timer, owner, at).await.map(drop)
    }

    /// Finishes a claimed timer that has no next occurrence. A timer rescheduled in the
    /// meantime (claim released) is left alone.
    ///
    /// # Errors
    /// The database error.
    pub async fn complete(&self, timer: &Timer, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM timers WHERE id = $1 AND claimed_by = $2 AND due_at_ms = $3")
            .bind(timer_id(&timer.kind, &timer.subject))
            .bind(owner)
            .bind(ms(timer.due))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The earliest time any timer of `class` can be claimed: its due time, or the end of
    /// the lease it is held under. The scheduler sleeps until then.
    ///
    /// # Errors
    /// The database error.
    pub async fn next_due(&self, class: Class) -> Result<Option<Timestamp>, StoreError> {
        let sql = format!(
            "SELECT MIN(CASE WHEN claimed_until_ms IS NOT NULL AND claimed_until_ms >= due_at_ms \
             THEN claimed_until_ms + 1 ELSE due_at_ms END) FROM timers WHERE {}",
            class_filter(class)
        );
        let (next,): (Option<i64>,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await?;
        Ok(next.and_then(|n| Timestamp::from_millisecond(n).ok()))
    }

    /// The timers set for `subject`, for tests and `/odor status`.
    ///
    /// # Errors
    /// The database error.
    pub async fn timers_for(&self, subject: &str) -> Result<Vec<Timer>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, subject, due_at_ms FROM timers WHERE subject = $1 ORDER BY due_at_ms",
        )
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_timer).collect()
    }
}
