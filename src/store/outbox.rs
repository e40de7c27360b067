//! The outbox: must-send messages wait here until Slack accepted them, so a restart or a
//! Slack outage delays them but never loses them. Claimed like the timers.

use jiff::Timestamp;
use sqlx::Row;

use super::incidents::ms;
use super::{Store, StoreError};
use crate::domain::outbox::Priority;
use crate::domain::view::Message;
use crate::idgen::IdGen;

/// A message waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub id: String,
    pub channel: String,
    pub thread_ts: Option<String>,
    pub message: Message,
    pub attempts: i64,
    pub created_at: Timestamp,
    /// The thread it belongs in when that thread may not exist yet (`thread_ts` is then
    /// `None` and found at send time), or the thread root it is.
    pub belongs: Option<Belongs>,
    /// A send was under way before this claim: Slack may already have it.
    pub maybe_sent: bool,
    pub priority: Priority,
}

/// What a queued message belongs to, besides its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Belongs {
    /// The thread of this incident's root message.
    Incident(String),
    /// The thread of this approval request's card.
    Request(String),
    /// It is this request's card: once posted, its ts is the request's thread.
    CardOf(String),
    /// It is this checklist's message: once posted, its ts is recorded for its updates.
    ChecklistOf(String),
    /// It is this procedure run's root message: once posted, its ts is the run's thread.
    RunOf(String),
}

/// The columns that say what a row belongs to.
struct Columns<'a> {
    incident: Option<&'a str>,
    request: Option<&'a str>,
    card: i64,
    checklist: Option<&'a str>,
    run: Option<&'a str>,
}

impl Belongs {
    /// The `incident_id`, `request_id`, `card`, `checklist_id` and `run_id` columns.
    fn columns(belongs: Option<&Belongs>) -> Columns<'_> {
        let none = Columns {
            incident: None,
            request: None,
            card: 0,
            checklist: None,
            run: None,
        };
        match belongs {
            None => none,
            Some(Belongs::Incident(id)) => Columns {
                incident: Some(id),
                ..none
            },
            Some(Belongs::Request(id)) => Columns {
                request: Some(id),
                ..none
            },
            Some(Belongs::CardOf(id)) => Columns {
                request: Some(id),
                card: 1,
                ..none
            },
            Some(Belongs::ChecklistOf(id)) => Columns {
                checklist: Some(id),
                ..none
            },
            Some(Belongs::RunOf(id)) => Columns {
                run: Some(id),
                ..none
            },
        }
    }

    fn from_columns(
        incident: Option<String>,
        request: Option<String>,
        card: i64,
        checklist: Option<String>,
        run: Option<String>,
    ) -> Option<Self> {
        match (incident, request, checklist) {
            (Some(id), _, _) => Some(Belongs::Incident(id)),
            (None, Some(id), _) if card != 0 => Some(Belongs::CardOf(id)),
            (None, Some(id), _) => Some(Belongs::Request(id)),
            (None, None, Some(id)) => Some(Belongs::ChecklistOf(id)),
            (None, None, None) => run.map(Belongs::RunOf),
        }
    }
}

/// A message is claimed only when no older message of its thread that is at least as
/// urgent is pending (due later after a failure, waiting for its root, or claimed
/// elsewhere), so a retried message is never overtaken by its equals, and a page never
/// waits behind its thread's notes. Same thread: same channel and `thread_ts`, or the same
/// incident whose root it waits for; an approval request's messages wait for every older
/// one of the request whatever their priority, since they follow its card.
const IN_THREAD_ORDER: &str = "NOT EXISTS (SELECT 1 FROM outbox earlier WHERE earlier.id < outbox.id AND (\
     (earlier.priority <= outbox.priority AND ((earlier.channel = outbox.channel AND earlier.thread_ts = outbox.thread_ts) \
     OR earlier.incident_id = outbox.incident_id)) OR earlier.request_id = outbox.request_id))";

impl Store {
    /// Queues a message, due now.
    ///
    /// # Errors
    /// The database error.
    pub async fn enqueue(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        message: &Message,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.enqueue_for(channel, None, thread_ts, message, now, Priority::Routine)
            .await
    }

    /// Queues a message, due now, for what it `belongs` to. Without `thread_ts` (the root
    /// message is not posted yet) the sender finds the thread when it sends, and waits
    /// for it meanwhile.
    ///
    /// # Errors
    /// The database error.
    pub async fn enqueue_for(
        &self,
        channel: &str,
        belongs: Option<&Belongs>,
        thread_ts: Option<&str>,
        message: &Message,
        now: Timestamp,
        priority: Priority,
    ) -> Result<(), StoreError> {
        // Sorts by creation, which is the order claim_outgoing sends in.
        let id = IdGen::process().next("", now);
        let body =
            serde_json::to_string(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let Columns {
            incident,
            request,
            card,
            checklist,
            run,
        } = Belongs::columns(belongs);
        sqlx::query(
            "INSERT INTO outbox (id, channel, thread_ts, message, attempts, due_at_ms, created_at_ms, incident_id, request_id, card, checklist_id, priority, run_id) \
             VALUES ($1, $2, $3, $4, 0, $5, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(channel)
        .bind(thread_ts)
        .bind(body)
        .bind(ms(now))
        .bind(incident)
        .bind(request)
        .bind(card)
        .bind(checklist)
        .bind(priority.rank())
        .bind(run)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims due messages for `owner` until `now + lease_ms`, the most urgent first
    /// ([`Priority`]), then the oldest, in thread order (see [`IN_THREAD_ORDER`]).
    ///
    /// # Errors
    /// The database error, or a message that no longer deserializes.
    pub async fn claim_outgoing(
        &self,
        owner: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Outgoing>, StoreError> {
        let rows = self
            .claim_due_rows(
                "outbox",
                IN_THREAD_ORDER,
                "priority, id",
                "id, channel, thread_ts, message, attempts, created_at_ms, incident_id, request_id, card, checklist_id, sending, priority, run_id",
                owner,
                now,
                lease_ms,
                limit,
            )
            .await?;
        let mut out: Vec<Outgoing> = rows
            .iter()
            .map(|r| {
                let body: String = r.try_get("message")?;
                Ok(Outgoing {
                    id: r.try_get("id")?,
                    channel: r.try_get("channel")?,
                    thread_ts: r.try_get("thread_ts")?,
                    message: serde_json::from_str(&body)
                        .map_err(|e| StoreError::Corrupt(format!("outbox message: {e}")))?,
                    attempts: r.try_get("attempts")?,
                    created_at: Timestamp::from_millisecond(r.try_get("created_at_ms")?)
                        .unwrap_or(Timestamp::UNIX_EPOCH),
                    belongs: Belongs::from_columns(
                        r.try_get("incident_id")?,
                        r.try_get("request_id")?,
                        r.try_get("card")?,
                        r.try_get("checklist_id")?,
                        r.try_get("run_id")?,
                    ),
                    maybe_sent: r.try_get::<i64, _>("sending")? != 0,
                    priority: Priority::from_rank(r.try_get("priority")?),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        // RETURNING does not promise an order; ids sort by creation.
        out.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Slack took it (or refused it for good): it leaves the outbox.
    ///
    /// # Errors
    /// The database error.
    pub async fn sent(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM outbox WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Recorded before a send: from then on Slack may have the message whatever becomes
    /// of the sender (a timed-out attempt may have reached it too), until [`Store::sent`].
    ///
    /// # Errors
    /// The database error; the message must then not be sent.
    pub async fn sending(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET sending = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Tries again at `due` (Slack unreachable or rate limited past the attempt's deadline).
    ///
    /// # Errors
    /// The database error.
    pub async fn retry_at(&self, id: &str, due: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1, due_at_ms = $2, claimed_by = NULL, claimed_until_ms = NULL WHERE id = $1")
            .bind(id)
            .bind(ms(due))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The message waits for its incident's root message: it is looked at again at `due`,
    /// without counting as a failed attempt.
    ///
    /// # Errors
    /// The database error.
    pub async fn await_root(&self, id: &str, due: Timestamp) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET due_at_ms = $2, claimed_by = NULL, claimed_until_ms = NULL WHERE id = $1")
            .bind(id)
            .bind(ms(due))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Messages still waiting, for `/odor status` and tests.
    ///
    /// # Errors
    /// The database error.
    pub async fn outbox_len(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}
