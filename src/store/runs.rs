//! Guided procedure runs. The run is one JSON value written by compare-and-set on its
//! version; the replica that drives a run holds a claim on it with a lease.

use jiff::Timestamp;
use sqlx::Row;

use super::incidents::ms;
use super::{Store, StoreError};
use crate::domain::guide::Run;

/// A run as stored: its state, where its thread is, and the version a write must match.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub run: Run,
    pub channel: String,
    pub ts: Option<String>,
    pub version: i64,
}

fn body(run: &Run) -> Result<String, StoreError> {
    serde_json::to_string(run).map_err(|e| StoreError::Corrupt(format!("run {}: {e}", run.id)))
}

impl Store {
    /// Records a new run (its root message not yet posted).
    ///
    /// # Errors
    /// The database error.
    pub async fn create_run(
        &self,
        run: &Run,
        channel: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO procedure_runs (id, procedure, channel, state, body, version, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
        )
        .bind(&run.id)
        .bind(&run.procedure)
        .bind(channel)
        .bind(run.state.name())
        .bind(body(run)?)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Remembers where the run's root message was posted.
    ///
    /// # Errors
    /// The database error.
    pub async fn set_run_ts(&self, id: &str, ts: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE procedure_runs SET ts = $2 WHERE id = $1")
            .bind(id)
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// # Errors
    /// The database error, or a stored run that no longer reads.
    pub async fn run(&self, id: &str) -> Result<Option<StoredRun>, StoreError> {
        let row =
            sqlx::query("SELECT channel, ts, body, version FROM procedure_runs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(r) = row else { return Ok(None) };
        let text: String = r.try_get("body")?;
        Ok(Some(StoredRun {
            run: serde_json::from_str(&text)
                .map_err(|e| StoreError::Corrupt(format!("run {id}: {e}")))?,
            channel: r.try_get("channel")?,
            ts: r.try_get("ts")?,
            version: r.try_get("version")?,
        }))
    }

    /// Applies `change` to the run and writes it if nobody wrote it meanwhile, reading
    /// again and re-applying otherwise. `Ok(None)` for an unknown run; `Err` from `change`
    /// (a refusal) is returned as `Ok(Some(Err))`, and nothing is written.
    ///
    /// # Errors
    /// The database error, or a run that kept changing under five attempts.
    pub async fn update_run<F>(
        &self,
        id: &str,
        now: Timestamp,
        change: F,
    ) -> Result<Option<Result<StoredRun, String>>, StoreError>
    where
        F: Fn(Run) -> Result<Run, String>,
    {
        for _ in 0..5 {
            let Some(stored) = self.run(id).await? else {
                return Ok(None);
            };
            let next = match change(stored.run.clone()) {
                Ok(next) => next,
                Err(why) => return Ok(Some(Err(why))),
            };
            let written = sqlx::query(
                "UPDATE procedure_runs SET body = $3, state = $4, version = version + 1, updated_at_ms = $5 \
                 WHERE id = $1 AND version = $2",
            )
            .bind(id)
            .bind(stored.version)
            .bind(body(&next)?)
            .bind(next.state.name())
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
            if written.rows_affected() == 1 {
                return Ok(Some(Ok(StoredRun {
                    run: next,
                    version: stored.version + 1,
                    ..stored
                })));
            }
        }
        Err(StoreError::Corrupt(format!(
            "run {id} kept changing under five attempts"
        )))
    }

    /// Claims for `owner` until `until` the running runs whose root message is posted and
    /// that nobody else holds, and returns them.
    ///
    /// # Errors
    /// The database error.
    pub async fn claim_runs(
        &self,
        owner: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<StoredRun>, StoreError> {
        let ids: Vec<String> = sqlx::query(
            "SELECT id FROM procedure_runs WHERE state = 'running' AND ts IS NOT NULL \
             AND (claimed_by IS NULL OR claimed_by = $1 OR claimed_until_ms < $2) ORDER BY id",
        )
        .bind(owner)
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for id in ids {
            let won = sqlx::query(
                "UPDATE procedure_runs SET claimed_by = $2, claimed_until_ms = $3 \
                 WHERE id = $1 AND (claimed_by IS NULL OR claimed_by = $2 OR claimed_until_ms < $4)",
            )
            .bind(&id)
            .bind(owner)
            .bind(ms(until))
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
            if won.rows_affected() == 1
                && let Some(run) = self.run(&id).await?
            {
                out.push(run);
            }
        }
        Ok(out)
    }
}
