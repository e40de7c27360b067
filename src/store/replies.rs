//! The reply queue: answers to slash commands and clicks wait here for their
//! `response_url`, so the worker that made one is free at once and a failed attempt or a
//! crash delays the answer instead of losing it. Claimed like the outbox.

use jiff::Timestamp;
use sqlx::Row;

use super::incidents::ms;
use super::{Store, StoreError};
use crate::domain::view::Message;
use crate::idgen::IdGen;

/// A reply waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReply {
    pub id: String,
    pub response_url: String,
    pub message: Message,
    pub replace_original: bool,
    /// Failed attempts so far.
    pub attempts: i64,
    /// When Slack issued the URL: it takes POSTs for 30 minutes from then.
    pub issued_at: Timestamp,
}

impl Store {
    /// Queues a reply through `response_url` (issued by Slack at `issued`), due now.
    ///
    /// # Errors
    /// The database error.
    pub async fn enqueue_reply(
        &self,
        response_url: &str,
        message: &Message,
        replace_original: bool,
        issued: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let id = IdGen::process().next("reply", now);
        let body =
            serde_json::to_string(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO replies (id, response_url, message, replace_original, attempts, issued_at_ms, created_at_ms, due_at_ms) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $6)",
        )
        .bind(id)
        .bind(response_url)
        .bind(body)
        .bind(i64::from(replace_original))
        .bind(ms(issued))
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` due replies for `owner` until `now + lease_ms`, oldest first.
    /// A reply whose claim lapsed (its sender died) is due again.
    ///
    /// # Errors
    /// The database error, or a reply that no longer deserializes.
    pub async fn claim_replies(
        &self,
        owner: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<PendingReply>, StoreError> {
        let rows = self
            .claim_due_rows(
                "replies",
                "1 = 1",
                "id",
                "id, response_url, message, replace_original, attempts, issued_at_ms",
                owner,
                now,
                lease_ms,
                limit,
            )
            .await?;
        let mut out: Vec<PendingReply> = rows
            .iter()
            .map(|r| {
                let body: String = r.try_get("message")?;
                Ok(PendingReply {
                    id: r.try_get("id")?,
                    response_url: r.try_get("response_url")?,
                    message: serde_json::from_str(&body)
                        .map_err(|e| StoreError::Corrupt(format!("reply message: {e}")))?,
                    replace_original: r.try_get::<i64, _>("replace_original")? != 0,
                    attempts: r.try_get("attempts")?,
                    issued_at: Timestamp::from_millisecond(r.try_get("issued_at_ms")?)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        // RETURNING does not promise an order; ids sort by creation.
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Slack took the reply, refused it, or its URL is dead: it leaves the queue.
    ///
    /// # Errors
    /// The database error.
    pub async fn reply_done(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM replies WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The attempt failed: tried again at `due`, by whichever replica claims it then.
    ///
    /// # Errors
    /// The database error.
    pub async fn reply_retry_at(&self, id: &str, due: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE replies SET attempts = attempts + 1, due_at_ms = $2, claimed_by = NULL, claimed_until_ms = NULL WHERE id = $1")
            .bind(id)
            .bind(ms(due))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replies still waiting, for tests.
    ///
    /// # Errors
    /// The database error.
    pub async fn replies_len(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM replies")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}
