//! Approval requests and the audit log. Each transition is a compare-and-set on the
//! state the caller saw, so exactly one of many racing clicks or replicas wins.

use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::incidents::ms;
use super::{Store, StoreError};
use crate::domain::approval::{ApprovalState, Request, Verification};
use crate::idgen::IdGen;

const COLUMNS: &str = "id, state, verb, command, action, verification, requester, reason, preview, fingerprint, approvals, required, channel, \
     message_ts, outcome, created_at_ms, expires_at_ms, lease_until_ms, updated_at_ms";

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn row_to_request(r: &AnyRow) -> Result<Request, StoreError> {
    let state: String = r.try_get("state")?;
    let approvals: String = r.try_get("approvals")?;
    Ok(Request {
        id: r.try_get("id")?,
        state: ApprovalState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("approval state {state:?}")))?,
        verb: r.try_get("verb")?,
        command: r.try_get("command")?,
        // Requests stored before the column existed have none; they cannot execute.
        action: r
            .try_get::<Option<String>, _>("action")?
            .unwrap_or_default(),
        requester: r.try_get("requester")?,
        reason: r.try_get("reason")?,
        preview: r.try_get("preview")?,
        fingerprint: r.try_get("fingerprint")?,
        approvals: serde_json::from_str(&approvals)
            .map_err(|e| StoreError::Corrupt(format!("approvals: {e}")))?,
        required: usize::try_from(r.try_get::<i64, _>("required")?).unwrap_or(1),
        created_at: ts(r.try_get("created_at_ms")?),
        expires_at: ts(r.try_get("expires_at_ms")?),
        channel: r.try_get("channel")?,
        message_ts: r.try_get("message_ts")?,
        outcome: r.try_get("outcome")?,
        verification: r
            .try_get::<Option<String>, _>("verification")?
            .as_deref()
            .and_then(Verification::from_text),
        lease_until: r.try_get::<Option<i64>, _>("lease_until_ms")?.map(ts),
        updated_at: ts(r.try_get("updated_at_ms")?),
    })
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub at_ms: i64,
    pub actor: String,
    pub kind: String,
    pub subject: String,
    pub detail: String,
}

impl Store {
    /// # Errors
    /// The database error.
    pub async fn create_request(&self, r: &Request) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO approvals (id, state, verb, command, requester, reason, preview, fingerprint, approvals, \
             required, channel, created_at_ms, expires_at_ms, updated_at_ms, action) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $12, $14)",
        )
        .bind(&r.id)
        .bind(r.state.name())
        .bind(&r.verb)
        .bind(&r.command)
        .bind(&r.requester)
        .bind(&r.reason)
        .bind(&r.preview)
        .bind(&r.fingerprint)
        .bind(serde_json::to_string(&r.approvals).unwrap_or_else(|_| "[]".into()))
        .bind(r.required as i64)
        .bind(&r.channel)
        .bind(ms(r.created_at))
        .bind(ms(r.expires_at))
        .bind(&r.action)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// # Errors
    /// The database error.
    pub async fn request(&self, id: &str) -> Result<Option<Request>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM approvals WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_request).transpose()
    }

    /// The newest request asked for with exactly `command`: a guided procedure's step
    /// names itself uniquely, so a driver that died after asking finds its request again.
    ///
    /// # Errors
    /// The database error.
    pub async fn request_asked(&self, command: &str) -> Result<Option<Request>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals WHERE command = $1 ORDER BY created_at_ms DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(command)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_request).transpose()
    }

    /// Requests in `state`, oldest first.
    ///
    /// # Errors
    /// The database error.
    pub async fn requests_in(&self, state: ApprovalState) -> Result<Vec<Request>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM approvals WHERE state = $1 ORDER BY created_at_ms");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(state.name())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_request).collect()
    }

    /// Moves `r` (as the caller read it) to `to` with `approvals`; `false` when somebody
    /// else changed it first.
    ///
    /// # Errors
    /// The database error.
    pub async fn transition(
        &self,
        r: &Request,
        to: ApprovalState,
        approvals: &[String],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE approvals SET state = $2, approvals = $3, updated_at_ms = $4 \
             WHERE id = $1 AND state = $5 AND approvals = $6",
        )
        .bind(&r.id)
        .bind(to.name())
        .bind(serde_json::to_string(approvals).unwrap_or_else(|_| "[]".into()))
        .bind(ms(now))
        .bind(r.state.name())
        .bind(serde_json::to_string(&r.approvals).unwrap_or_else(|_| "[]".into()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `approved → executing`, holding a lease; `false` when another click or replica
    /// already started it. This is the exactly-once gate.
    ///
    /// # Errors
    /// The database error.
    pub async fn begin_execution(
        &self,
        id: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE approvals SET state = 'executing', lease_until_ms = $2, updated_at_ms = $3 \
             WHERE id = $1 AND state = 'approved'",
        )
        .bind(id)
        .bind(ms(lease_until))
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends the lease of an executing request; `false` when it is no longer executing
    /// (the sweep took it for dead).
    ///
    /// # Errors
    /// The database error.
    pub async fn renew_lease(&self, id: &str, lease_until: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE approvals SET lease_until_ms = $2 WHERE id = $1 AND state = 'executing'",
        )
        .bind(id)
        .bind(ms(lease_until))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a request from `from` with `to` and the outcome text.
    ///
    /// # Errors
    /// The database error.
    pub async fn finish_request(
        &self,
        id: &str,
        from: ApprovalState,
        to: ApprovalState,
        outcome: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE approvals SET state = $3, outcome = $4, lease_until_ms = NULL, updated_at_ms = $5 \
             WHERE id = $1 AND state = $2",
        )
        .bind(id)
        .bind(from.name())
        .bind(to.name())
        .bind(outcome)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records what the verification after a succeeded change found.
    ///
    /// # Errors
    /// The database error.
    pub async fn set_verification(&self, id: &str, v: &Verification) -> Result<(), StoreError> {
        sqlx::query("UPDATE approvals SET verification = $2 WHERE id = $1")
            .bind(id)
            .bind(v.to_text())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// # Errors
    /// The database error.
    pub async fn set_request_ts(&self, id: &str, ts: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE approvals SET message_ts = $2 WHERE id = $1")
            .bind(id)
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Executing requests whose executor's lease lapsed: it died mid-way.
    ///
    /// # Errors
    /// The database error.
    pub async fn lapsed_executions(&self, now: Timestamp) -> Result<Vec<Request>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals WHERE state = 'executing' AND (lease_until_ms IS NULL OR lease_until_ms < $1)"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ms(now))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_request).collect()
    }

    /// The last time another request than `id` for `verb` began executing (or finished
    /// successfully): what an executing request's cooldown is measured from.
    ///
    /// # Errors
    /// The database error.
    pub async fn last_execution_besides(
        &self,
        verb: &str,
        id: &str,
    ) -> Result<Option<Timestamp>, StoreError> {
        let (at,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(updated_at_ms) FROM approvals \
             WHERE verb = $1 AND id <> $2 AND state IN ('executing', 'succeeded')",
        )
        .bind(verb)
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(at.map(ts))
    }

    /// Appends to the audit log.
    ///
    /// # Errors
    /// The database error.
    pub async fn audit(
        &self,
        at: Timestamp,
        actor: &str,
        kind: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let id = IdGen::process().next("", at);
        sqlx::query("INSERT INTO audit (id, at_ms, actor, kind, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(ms(at))
            .bind(actor)
            .bind(kind)
            .bind(subject)
            .bind(detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The audit log since `since`, oldest first.
    ///
    /// # Errors
    /// The database error.
    pub async fn audit_since(&self, since: Timestamp) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT at_ms, actor, kind, subject, detail FROM audit WHERE at_ms >= $1 ORDER BY at_ms, id")
            .bind(ms(since))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at_ms: r.try_get("at_ms")?,
                    actor: r.try_get("actor")?,
                    kind: r.try_get("kind")?,
                    subject: r.try_get("subject")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
