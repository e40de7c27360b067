//! The per-channel pacing shared between replicas (see migration 0010).

use std::time::Duration;

use jiff::Timestamp;

use super::incidents::ms;
use super::{Store, StoreError};

impl Store {
    /// Books `channel`'s next slot at `interval` spacing if it starts within `tolerance`
    /// of now (the burst allowance): `Ok(None)` when booked, or when to ask again, since
    /// the replicas have booked it further ahead. Booking only the slots at hand keeps
    /// the shared schedule from running ahead, so each replica's own line still decides
    /// which of its messages takes the next one. One statement books, so racing replicas
    /// each get their own slot.
    ///
    /// # Errors
    /// The database error.
    pub async fn book_slot(
        &self,
        channel: &str,
        now: Timestamp,
        interval: Duration,
        tolerance: Duration,
    ) -> Result<Option<Timestamp>, StoreError> {
        let step = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let slack = i64::try_from(tolerance.as_millis()).unwrap_or(i64::MAX);
        let booked: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO channel_pace (channel, due_at_ms) VALUES ($1, $2 + $3) \
             ON CONFLICT (channel) DO UPDATE SET due_at_ms = \
             (CASE WHEN channel_pace.due_at_ms > $2 THEN channel_pace.due_at_ms ELSE $2 END) + $3 \
             WHERE channel_pace.due_at_ms <= $2 + $4 \
             RETURNING due_at_ms",
        )
        .bind(channel)
        .bind(ms(now))
        .bind(step)
        .bind(slack)
        .fetch_optional(&self.pool)
        .await?;
        if booked.is_some() {
            return Ok(None);
        }
        let (due,): (i64,) =
            sqlx::query_as("SELECT due_at_ms FROM channel_pace WHERE channel = $1")
                .bind(channel)
                .fetch_one(&self.pool)
                .await?;
        Ok(Some(
            Timestamp::from_millisecond(due.saturating_sub(slack)).unwrap_or(now),
        ))
    }
}
