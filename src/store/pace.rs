//! The per-channel pacing shared between replicas (see migrations 0010 and 0013).

use std::time::Duration;

use jiff::Timestamp;

use super::incidents::ms;
use super::{Store, StoreError};
use crate::domain::outbox::Priority;

impl Store {
    /// Books `channel`'s next slot at `interval` spacing for a message of `priority`, if
    /// the slot starts within `tolerance` of now (the burst allowance) and no replica
    /// waits with a more urgent message: `Ok(None)` when booked, or when to ask again.
    /// Booking only the slots at hand keeps the shared schedule from running ahead, so
    /// each replica's own line still decides which of its messages takes the next one.
    /// A sender that has to wait records its priority (for two intervals, renewed at each
    /// try), so the replicas' lines together pick the most urgent message; the booking
    /// of a message at least that urgent clears it. One statement books, so racing
    /// replicas each get their own slot.
    ///
    /// # Errors
    /// The database error.
    pub async fn book_slot(
        &self,
        channel: &str,
        now: Timestamp,
        interval: Duration,
        tolerance: Duration,
        priority: Priority,
    ) -> Result<Option<Timestamp>, StoreError> {
        let step = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let slack = i64::try_from(tolerance.as_millis()).unwrap_or(i64::MAX);
        let now_ms = ms(now);
        let rank = priority.rank();
        let booked: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO channel_pace (channel, due_at_ms) VALUES ($1, $2 + $3) \
             ON CONFLICT (channel) DO UPDATE SET due_at_ms = \
             (CASE WHEN channel_pace.due_at_ms > $2 THEN channel_pace.due_at_ms ELSE $2 END) + $3, \
             waiting_rank = CASE WHEN channel_pace.waiting_rank >= $5 THEN NULL ELSE channel_pace.waiting_rank END, \
             waiting_until_ms = CASE WHEN channel_pace.waiting_rank >= $5 THEN NULL ELSE channel_pace.waiting_until_ms END \
             WHERE channel_pace.due_at_ms <= $2 + $4 AND (channel_pace.waiting_until_ms IS NULL \
             OR channel_pace.waiting_until_ms < $2 OR channel_pace.waiting_rank >= $5) \
             RETURNING due_at_ms",
        )
        .bind(channel)
        .bind(now_ms)
        .bind(step)
        .bind(slack)
        .bind(rank)
        .fetch_optional(&self.pool)
        .await?;
        if booked.is_some() {
            return Ok(None);
        }
        // Not booked, so the row exists: record this sender as waiting unless a more urgent
        // claim holds, and read the schedule back in the same statement.
        let (due, waiting, until): (i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "UPDATE channel_pace SET \
             waiting_rank = CASE WHEN waiting_until_ms IS NULL OR waiting_until_ms < $4 OR waiting_rank >= $2 \
             THEN $2 ELSE waiting_rank END, \
             waiting_until_ms = CASE WHEN waiting_until_ms IS NULL OR waiting_until_ms < $4 OR waiting_rank >= $2 \
             THEN $3 ELSE waiting_until_ms END \
             WHERE channel = $1 RETURNING due_at_ms, waiting_rank, waiting_until_ms",
        )
        .bind(channel)
        .bind(rank)
        .bind(now_ms.saturating_add(step.saturating_mul(2)))
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        let slot = due.saturating_sub(slack);
        // Held for a more urgent sender: look again when it has had the next slot.
        let held = waiting.is_some_and(|w| w < rank) && until.is_some_and(|u| u >= now_ms);
        let at = if held {
            slot.max(now_ms.saturating_add(step))
        } else {
            slot
        };
        Ok(Some(Timestamp::from_millisecond(at).unwrap_or(now)))
    }
}
