//! Incidents, their alerts and timeline. Every state change is a compare-and-set, so
//! replicas racing on the same click or timer change an incident once.

use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, WriteLock};
use crate::domain::alert::Alert;
use crate::domain::escalation::Severity;
use crate::domain::incident::{Incident, IncidentState, NewIncident, TimelineEntry};
use crate::domain::storm::{self, Admission, OpenStorm, StormPolicy};
use crate::idgen::IdGen;

const COLUMNS: &str = "id, number, state, severity, title, entry, group_key, opened_by, opened_at_ms, \
     channel, thread_ts, owner, acked_at_ms, acked_by, resolved_at_ms, resolved_by, step, step_at_ms, \
     last_status_at_ms, last_human_update_at_ms, storm, detached_at_ms";

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn row_to_incident(r: &AnyRow) -> Result<Incident, StoreError> {
    let opt_ts = |col: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(r.try_get::<Option<i64>, _>(col)?.map(ts))
    };
    let state: String = r.try_get("state")?;
    let severity: String = r.try_get("severity")?;
    Ok(Incident {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        state: IncidentState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("incident state {state:?}")))?,
        severity: severity
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("incident severity {severity:?}")))?,
        title: r.try_get("title")?,
        entry: r.try_get("entry")?,
        group_key: r.try_get("group_key")?,
        opened_by: r.try_get("opened_by")?,
        opened_at: ts(r.try_get("opened_at_ms")?),
        channel: r
            .try_get::<Option<String>, _>("channel")?
            .and_then(|c| c.parse().ok()),
        thread_ts: r.try_get("thread_ts")?,
        owner: r.try_get("owner")?,
        acked_at: opt_ts("acked_at_ms")?,
        acked_by: r.try_get("acked_by")?,
        resolved_at: opt_ts("resolved_at_ms")?,
        resolved_by: r.try_get("resolved_by")?,
        step: usize::try_from(r.try_get::<i64, _>("step")?).unwrap_or(0),
        step_at: ts(r.try_get("step_at_ms")?),
        last_status_at: opt_ts("last_status_at_ms")?,
        last_human_update_at: opt_ts("last_human_update_at_ms")?,
        storm: r.try_get("storm")?,
        detached_at: opt_ts("detached_at_ms")?,
    })
}

impl Store {
    /// Opens an incident, or returns the open one for the same Alertmanager group.
    /// Returns the incident and whether this call created it.
    ///
    /// # Errors
    /// The database error.
    pub async fn open_incident(
        &self,
        new: &NewIncident,
        now: Timestamp,
    ) -> Result<(Incident, bool), StoreError> {
        let o = self.open_in_storm(new, now, None).await?;
        Ok((o.incident, o.created))
    }

    /// [`Store::open_incident`], with a new incident admitted to a storm by `policy`
    /// (decided where openings are serialised, so racing replicas start one storm).
    ///
    /// # Errors
    /// The database error.
    pub async fn open_in_storm(
        &self,
        new: &NewIncident,
        now: Timestamp,
        policy: Option<&StormPolicy>,
    ) -> Result<Opened, StoreError> {
        // Openings are serialised (see `begin_write`), so the group check and the next
        // number are read where no other opening can commit in between: numbers have no
        // gaps. The retry covers a writer that does not serialise, such as an older
        // replica during a rolling upgrade: its loser finds the winner's row next time.
        for _ in 0..3 {
            let mut tx = self.begin_write(WriteLock::IncidentNumbers).await?;
            if let Some(key) = &new.group_key {
                let sql = format!(
                    "SELECT {COLUMNS} FROM incidents WHERE group_key = $1 AND state <> 'resolved'"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = row {
                    let existing = row_to_incident(&row)?;
                    tx.commit().await?;
                    return Ok(Opened {
                        incident: existing,
                        created: false,
                        storm: None,
                    });
                }
            }
            let admission = match policy {
                Some(p) => admission_in(&mut tx, p, now).await?,
                None => Admission::Alone,
            };
            let (next,): (i64,) =
                sqlx::query_as("SELECT COALESCE(MAX(number), 0) + 1 FROM incidents")
                    .fetch_one(&mut *tx)
                    .await?;
            let (storm_id, number, started) = match &admission {
                Admission::Alone => (None, next, false),
                Admission::Join(id) => (Some(id.clone()), next, false),
                Admission::Start => {
                    let id = format!("inc{next}-{}", now.as_millisecond());
                    let storm = NewIncident {
                        severity: new.severity,
                        title: "Alert storm".into(),
                        entry: None,
                        group_key: None,
                        opened_by: "odorbot".into(),
                    };
                    let why = policy.map_or_else(String::new, |p| {
                        format!(
                            "Opened: alert storm ({} incidents within {}s)",
                            p.threshold + 1,
                            p.window.as_secs()
                        )
                    });
                    match insert_in(&mut tx, &id, next, &storm, Some(&id), now, &why).await {
                        Ok(()) => {}
                        Err(StoreError::Database(sqlx::Error::Database(e)))
                            if e.is_unique_violation() =>
                        {
                            tx.rollback().await?;
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                    (Some(id), next + 1, true)
                }
            };
            let id = format!("inc{number}-{}", now.as_millisecond());
            let opened = format!("Opened: {}", new.title);
            match insert_in(&mut tx, &id, number, new, storm_id.as_deref(), now, &opened).await {
                Ok(()) => {}
                Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                    tx.rollback().await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            tx.commit().await?;
            let vanished = || StoreError::Corrupt("new incident vanished".into());
            let incident = self.incident_by_id(&id).await?.ok_or_else(vanished)?;
            let storm = match storm_id {
                Some(s) => Some((
                    self.incident_by_id(&s).await?.ok_or_else(vanished)?,
                    started,
                )),
                None => None,
            };
            return Ok(Opened {
                incident,
                created: true,
                storm,
            });
        }
        Err(StoreError::Corrupt(
            "could not open the incident after three attempts".into(),
        ))
    }

    /// A storm's members (the storm itself excluded), by number.
    ///
    /// # Errors
    /// The database error.
    pub async fn storm_members(&self, storm: &str) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE storm = $1 AND id <> $1 ORDER BY number"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(storm)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_incident).collect()
    }

    /// Gives a storm member its own thread, once: `false` when it had one (or is no member).
    ///
    /// # Errors
    /// The database error.
    pub async fn detach(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET detached_at_ms = $2, updated_at_ms = $2 \
             WHERE id = $1 AND storm IS NOT NULL AND storm <> id AND detached_at_ms IS NULL",
        )
        .bind(id)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a storm's severity (it only rises: see `domain::storm::raised`).
    ///
    /// # Errors
    /// The database error.
    pub async fn set_severity(
        &self,
        id: &str,
        severity: Severity,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE incidents SET severity = $2, updated_at_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(severity.name())
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// # Errors
    /// The database error.
    pub async fn incident_by_id(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_incident).transpose()
    }

    /// # Errors
    /// The database error.
    pub async fn incident_by_number(&self, number: i64) -> Result<Option<Incident>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE number = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(number)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_incident).transpose()
    }

    /// Unresolved incidents, oldest first.
    ///
    /// # Errors
    /// The database error.
    pub async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM incidents WHERE state <> 'resolved' ORDER BY number");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_incident).collect()
    }

    /// Records where the incident's thread is, once: `false` when it already had one.
    ///
    /// # Errors
    /// The database error.
    pub async fn set_thread(
        &self,
        id: &str,
        channel: &str,
        thread_ts: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET channel = $2, thread_ts = $3 WHERE id = $1 AND thread_ts IS NULL",
        )
        .bind(id)
        .bind(channel)
        .bind(thread_ts)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Acknowledges an open, unacknowledged incident; `None` when it already was (or is
    /// resolved), so a double click acknowledges once.
    ///
    /// # Errors
    /// The database error.
    pub async fn acknowledge(
        &self,
        id: &str,
        user: &str,
        now: Timestamp,
    ) -> Result<Option<Incident>, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET state = 'acknowledged', acked_at_ms = $3, acked_by = $2, owner = $2, updated_at_ms = $3 \
             WHERE id = $1 AND state = 'open' AND acked_at_ms IS NULL",
        )
        .bind(id)
        .bind(user)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        self.changed(
            id,
            done.rows_affected(),
            now,
            "acknowledged",
            user,
            "Acknowledged",
        )
        .await
    }

    /// Moves the incident one step along the roster, if it is still at `from_step`.
    ///
    /// # Errors
    /// The database error.
    pub async fn escalate(
        &self,
        id: &str,
        from_step: usize,
        actor: &str,
        why: &str,
        now: Timestamp,
    ) -> Result<Option<Incident>, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET step = step + 1, step_at_ms = $3, updated_at_ms = $3 \
             WHERE id = $1 AND step = $2 AND state <> 'resolved'",
        )
        .bind(id)
        .bind(from_step as i64)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        self.changed(id, done.rows_affected(), now, "escalated", actor, why)
            .await
    }

    /// Resolves an unresolved incident; `None` when it already was.
    ///
    /// # Errors
    /// The database error.
    pub async fn resolve(
        &self,
        id: &str,
        user: &str,
        now: Timestamp,
    ) -> Result<Option<Incident>, StoreError> {
        let done = sqlx::query(
            "UPDATE incidents SET state = 'resolved', resolved_at_ms = $3, resolved_by = $2, updated_at_ms = $3 \
             WHERE id = $1 AND state <> 'resolved'",
        )
        .bind(id)
        .bind(user)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        self.changed(id, done.rows_affected(), now, "resolved", user, "Resolved")
            .await
    }

    async fn changed(
        &self,
        id: &str,
        rows: u64,
        now: Timestamp,
        kind: &str,
        actor: &str,
        text: &str,
    ) -> Result<Option<Incident>, StoreError> {
        if rows == 0 {
            return Ok(None);
        }
        self.add_timeline(id, now, kind, actor, text).await?;
        self.incident_by_id(id).await
    }

    /// Notes a status update a person wrote (it clears the nudge).
    ///
    /// # Errors
    /// The database error.
    pub async fn mark_human_update(&self, id: &str, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE incidents SET last_human_update_at_ms = $2, updated_at_ms = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the status update of the period that began at `period_of` (the last update,
    /// `None` for none yet) by moving the incident's last status time to `now`; `false` when
    /// another replica, or a timer re-armed from a stale read, took it first.
    ///
    /// # Errors
    /// The database error.
    pub async fn claim_status_update(
        &self,
        id: &str,
        period_of: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        // -1 stands for "no update yet": the comparison stays one portable equality.
        let done = sqlx::query(
            "UPDATE incidents SET last_status_at_ms = $2 \
             WHERE id = $1 AND COALESCE(last_status_at_ms, -1) = $3",
        )
        .bind(id)
        .bind(ms(now))
        .bind(period_of.map_or(-1, ms))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records an alert of the incident's group; returns whether its state changed.
    ///
    /// # Errors
    /// The database error.
    pub async fn record_alert(
        &self,
        incident_id: &str,
        alert: &Alert,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO incident_alerts (incident_id, fingerprint, alertname, status, starts_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status, updated_at_ms = excluded.updated_at_ms \
             WHERE incident_alerts.status <> excluded.status",
        )
        .bind(incident_id)
        .bind(&alert.fingerprint)
        .bind(alert.name())
        .bind(alert.status.name())
        .bind(ms(alert.starts_at))
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The incident that already recorded this state of `alert` (the same alert, by
    /// fingerprint and start; for a resolution, recorded as resolved), if any: what a
    /// notification applied again finds when its first applier got that far.
    ///
    /// # Errors
    /// The database error.
    pub async fn incident_with_alert(&self, alert: &Alert) -> Result<Option<Incident>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM incidents WHERE id = (SELECT incident_id FROM incident_alerts \
             WHERE fingerprint = $1 AND starts_at_ms = $2 AND (status = $3 OR $3 = 'firing') \
             ORDER BY updated_at_ms DESC LIMIT 1)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&alert.fingerprint)
            .bind(ms(alert.starts_at))
            .bind(alert.status.name())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_incident).transpose()
    }

    /// # Errors
    /// The database error.
    pub async fn add_timeline(
        &self,
        incident_id: &str,
        at: Timestamp,
        kind: &str,
        actor: &str,
        text: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        add_timeline_in(&mut conn, incident_id, at, kind, actor, text).await
    }

    /// The incident's timeline, oldest first.
    ///
    /// # Errors
    /// The database error.
    pub async fn timeline(&self, incident_id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let rows = sqlx::query("SELECT at_ms, kind, actor, text FROM timeline WHERE incident_id = $1 ORDER BY at_ms, id")
            .bind(incident_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TimelineEntry {
                    at: ts(r.try_get("at_ms")?),
                    kind: r.try_get("kind")?,
                    actor: r.try_get("actor")?,
                    text: r.try_get("text")?,
                })
            })
            .collect()
    }
}

async fn add_timeline_in(
    conn: &mut sqlx::AnyConnection,
    incident_id: &str,
    at: Timestamp,
    kind: &str,
    actor: &str,
    text: &str,
) -> Result<(), StoreError> {
    let id = IdGen::process().next(&format!("{incident_id}-"), at);
    sqlx::query("INSERT INTO timeline (id, incident_id, at_ms, kind, actor, text) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(incident_id)
        .bind(ms(at))
        .bind(kind)
        .bind(actor)
        .bind(text)
        .execute(conn)
        .await?;
    Ok(())
}

/// What [`Store::open_in_storm`] did.
#[derive(Debug, Clone)]
pub struct Opened {
    pub incident: Incident,
    /// `false`: the group's open incident was returned.
    pub created: bool,
    /// The storm it joined, and whether it started with this incident.
    pub storm: Option<(Incident, bool)>,
}

/// The storm decision for an incident opened now, from what the store holds.
async fn admission_in(
    conn: &mut sqlx::AnyConnection,
    policy: &StormPolicy,
    now: Timestamp,
) -> Result<Admission, StoreError> {
    let (recent,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM incidents WHERE opened_at_ms >= $1 AND (storm IS NULL OR storm <> id)",
    )
    .bind(ms(storm::window_start(policy, now)))
    .fetch_one(&mut *conn)
    .await?;
    let open: Option<(String, i64)> = sqlx::query_as(
        "SELECT s.id, COALESCE((SELECT MAX(m.opened_at_ms) FROM incidents m WHERE m.storm = s.id), s.opened_at_ms) \
         FROM incidents s WHERE s.storm = s.id AND s.state <> 'resolved' ORDER BY s.number DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let open = open.map(|(id, last)| OpenStorm {
        id,
        last_joined: ts(last),
    });
    Ok(storm::admit(
        policy,
        usize::try_from(recent).unwrap_or(0),
        open.as_ref(),
        now,
    ))
}

/// Inserts one incident and its "opened" timeline entry.
async fn insert_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    number: i64,
    new: &NewIncident,
    storm: Option<&str>,
    now: Timestamp,
    opened: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO incidents (id, number, state, severity, title, entry, group_key, opened_by, \
         opened_at_ms, updated_at_ms, step, step_at_ms, storm) \
         VALUES ($1, $2, 'open', $3, $4, $5, $6, $7, $8, $8, 0, $8, $9)",
    )
    .bind(id)
    .bind(number)
    .bind(new.severity.name())
    .bind(&new.title)
    .bind(new.entry.as_deref())
    .bind(new.group_key.as_deref())
    .bind(&new.opened_by)
    .bind(ms(now))
    .bind(storm)
    .execute(&mut *conn)
    .await?;
    add_timeline_in(conn, id, now, "opened", &new.opened_by, opened).await
}
