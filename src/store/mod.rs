//! Persistence: SQLite (embedded default) or PostgreSQL (shared by replicas), through
//! sqlx's `Any` driver so both run the same SQL and the same migrations.
//!
//! SQL here sticks to what both engines accept: `$n` placeholders, TEXT and BIGINT,
//! `INSERT … ON CONFLICT DO NOTHING`.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use thiserror::Error;

use crate::domain::status::OpenWork;

pub mod approvals;
pub mod checklists;
pub mod evidence;
pub mod inbox;
pub mod incidents;
pub mod outbox;
pub mod pace;
pub mod replies;
pub mod runs;
pub mod timers;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the store URL must start with sqlite: or postgres://")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unexpected data in the store: {0}")]
    Corrupt(String),
    /// A write done together with others' (see [`Store::enqueue_alert`]) failed: the
    /// database's error, as text, since each of them is told.
    #[error("database error: {0}")]
    Shared(String),
}

/// What a read-then-write transaction serialises on (see [`Store::begin_write`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteLock {
    /// Opening an incident: the open incident of a group and the next number.
    IncidentNumbers = 1,
    /// Keeping a collection of evidence: all of its items or none.
    Evidence = 2,
}

impl WriteLock {
    /// The PostgreSQL advisory lock key: "odor" in the high half, so other users of the
    /// same database's advisory locks are unlikely to pick it.
    fn pg_key(self) -> i64 {
        (0x6f64_6f72_i64 << 32) | self as i64
    }
}

/// What waits in the store right now (see [`Store::backlog`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// Messages in the outbox, not yet taken by Slack.
    pub outbox_pending: i64,
    /// How long the oldest of them has waited; zero when the outbox is empty.
    pub outbox_oldest_age: Duration,
    /// Replies to commands and clicks waiting for their `response_url`.
    pub replies_pending: i64,
    /// Timers past their due time by more than the grace the caller gave, and unclaimed
    /// (or their claim lapsed): no replica is firing them.
    pub timers_overdue: i64,
    /// Approval requests by stored state name.
    pub approvals: Vec<(String, i64)>,
    /// Incidents not resolved.
    pub incidents_open: i64,
    /// Alertmanager notifications accepted by the webhook and not yet applied, and how
    /// long the oldest has waited.
    pub alert_inbox: inbox::InboxBacklog,
}

/// A handle to the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite: the write transactions of this process queue here, in order, rather than in
    /// SQLite's busy handler, which polls with growing sleeps (up to 100 ms each) and so
    /// makes a short insert wait behind others far longer than they take.
    write_gate: Arc<tokio::sync::Mutex<()>>,
    /// SQLite: alert notifications waiting for the write gate; whoever takes the gate next
    /// stores all of them in one transaction (see [`Store::enqueue_alert`]).
    inbox_queue: Arc<std::sync::Mutex<Vec<inbox::Queued>>>,
}

/// A transaction from [`Store::begin_write`]: on SQLite it holds this process's write
/// gate until it is committed, rolled back or dropped.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _gate: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// What [`Store::claim_event_for`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First seen: do the work.
    New,
    /// Claimed before by the same origin, whose applier died: finish the work.
    Again,
    /// Another origin did it.
    Duplicate,
}

impl Store {
    /// Connects (creating a SQLite file if needed) and applies pending migrations.
    ///
    /// # Errors
    /// [`StoreError`] when the URL is unsupported, the database is unreachable, or a
    /// migration fails.
    pub async fn open(url: &SecretString, max_connections: u32) -> Result<Self, StoreError> {
        install_default_drivers();
        let raw = url.expose_secret();
        let (backend, url) = if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            (Backend::Postgres, raw.to_owned())
        } else if raw.starts_with("sqlite:") {
            // Create the file on first run unless the URL chose a mode itself.
            let url = if raw.contains("mode=") || raw.contains(":memory:") {
                raw.to_owned()
            } else if raw.contains('?') {
                format!("{raw}&mode=rwc")
            } else {
                format!("{raw}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5));
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the writer; the busy timeout makes writers
            // queue instead of failing with SQLITE_BUSY (for transactions that read
            // before they write, only with `begin_write`). A page cache of 512 KiB per
            // connection instead of SQLite's 2 MB: a burst of stored replies filled every
            // pooled connection's cache, about 9 MB of the peak resident set.
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -512;")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            backend,
            write_gate: Arc::default(),
            inbox_queue: Arc::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction that reads and then writes on what it read, serialised with
    /// every other such transaction on `lock`, so what it read cannot change before it
    /// commits.
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock at the start, waiting up to the busy
    /// timeout for another writer; such transactions of this process first queue on the
    /// process's write gate, so they meet the busy handler only for other writers. A
    /// deferred `BEGIN` would read first and ask for the lock at the first write; under WAL that fails with `SQLITE_BUSY` at once when
    /// another connection committed after the read, and the busy timeout does not help.
    /// SQLite has one writer, so `lock` needs no more there. PostgreSQL: a
    /// transaction-scoped advisory lock on `lock`, so racers queue instead of reading the
    /// same rows and failing at a unique index.
    ///
    /// # Errors
    /// The database error (on SQLite also `SQLITE_BUSY` once the busy timeout passed).
    pub(crate) async fn begin_write(&self, lock: WriteLock) -> Result<WriteTx, StoreError> {
        match self.backend {
            Backend::Sqlite => {
                let gate = self.write_gate.clone().lock_owned().await;
                self.begin_gated(gate).await
            }
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(lock.pg_key())
                    .execute(&mut *tx)
                    .await?;
                Ok(WriteTx { tx, _gate: None })
            }
        }
    }

    /// SQLite: `BEGIN IMMEDIATE` under the write gate the caller took.
    async fn begin_gated(
        &self,
        gate: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<WriteTx, StoreError> {
        Ok(WriteTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _gate: Some(gate),
        })
    }

    /// Claims up to `limit` due, unclaimed rows of `table` for `owner` until
    /// `now + lease_ms`: one replica gets each row (`FOR UPDATE SKIP LOCKED` on PostgreSQL;
    /// SQLite has a single writer). The table needs `id`, `due_at_ms`, `claimed_by` and
    /// `claimed_until_ms`; `filter` is a constant SQL condition on its rows (`1 = 1` for all).
    #[allow(clippy::too_many_arguments)]
    async fn claim_due_rows(
        &self,
        table: &str,
        filter: &str,
        order: &str,
        returning: &str,
        owner: &str,
        now: jiff::Timestamp,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<sqlx::any::AnyRow>, StoreError> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE {table} SET claimed_by = $1, claimed_until_ms = $2 WHERE id IN (\
             SELECT id FROM {table} WHERE {filter} AND due_at_ms <= $3 AND (claimed_until_ms IS NULL OR claimed_until_ms < $3) \
             ORDER BY {order} LIMIT $4 {lock}) RETURNING {returning}"
        );
        let now_ms = now.as_millisecond();
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(now_ms + lease_ms)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// A cheap round trip, for readiness.
    ///
    /// # Errors
    /// The database error when the store cannot answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Records an inbound event's idempotency key. Returns `true` the first time the
    /// key is seen and `false` for every redelivery, across processes sharing the store.
    ///
    /// # Errors
    /// The database error; the caller must then not process the event.
    pub async fn claim_event(
        &self,
        key: &str,
        kind: &str,
        envelope_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO inbound_events (idempotency_key, kind, envelope_id, received_at_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(key)
        .bind(kind)
        .bind(envelope_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// As [`Store::claim_event`], except that a key claimed before by the same `origin`
    /// (the same stored notification, applied again because whoever applied it died
    /// between the claim and the end of the work) is [`Claim::Again`]: the work may or may
    /// not have been done, and is finished rather than lost. Another origin's claim is a
    /// [`Claim::Duplicate`].
    ///
    /// # Errors
    /// The database error; the caller must then not process the event.
    pub async fn claim_event_for(
        &self,
        key: &str,
        kind: &str,
        origin: &str,
        now_ms: i64,
    ) -> Result<Claim, StoreError> {
        if self.claim_event(key, kind, origin, now_ms).await? {
            return Ok(Claim::New);
        }
        let by: Option<(String,)> =
            sqlx::query_as("SELECT envelope_id FROM inbound_events WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match by {
            Some((by,)) if by == origin => Claim::Again,
            _ => Claim::Duplicate,
        })
    }

    /// Forgets one claimed key, because the work it stood for failed: the sender's retry is
    /// then processed instead of being taken for a duplicate.
    ///
    /// # Errors
    /// The database error.
    pub async fn release_event(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM inbound_events WHERE idempotency_key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets idempotency keys older than `before_ms`; Slack never redelivers that late.
    ///
    /// # Errors
    /// The database error.
    pub async fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM inbound_events WHERE received_at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Pending approvals and unresolved incidents, for `/odor status`.
    ///
    /// # Errors
    /// The database error.
    pub async fn open_work(&self) -> Result<OpenWork, StoreError> {
        let (approvals,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM approvals WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        let (incidents,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM incidents WHERE state <> 'resolved'")
                .fetch_one(&self.pool)
                .await?;
        Ok(OpenWork {
            approvals,
            incidents,
        })
    }

    /// What waits in the store, for odorbot's own metrics: the outbox, the reply queue,
    /// overdue timers, approval requests by state and unresolved incidents. A timer counts as overdue
    /// once it is `overdue_after` past its due time (the scheduler normally fires it
    /// within a second) and no replica holds it under a live lease.
    ///
    /// # Errors
    /// The database error, which the metrics show as the store being unreachable.
    pub async fn backlog(
        &self,
        now: jiff::Timestamp,
        overdue_after: Duration,
    ) -> Result<Backlog, StoreError> {
        let now_ms = now.as_millisecond();
        let (outbox_pending, oldest_ms): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(created_at_ms) FROM outbox")
                .fetch_one(&self.pool)
                .await?;
        let (replies_pending,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM replies")
            .fetch_one(&self.pool)
            .await?;
        // A timer whose firing runs holds a live, renewed lease: late, but being handled.
        let (timers_overdue,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM timers WHERE due_at_ms < $1 \
             AND (claimed_until_ms IS NULL OR claimed_until_ms < $2)",
        )
        .bind(now_ms - overdue_after.as_millis() as i64)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        let approvals: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM approvals GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let (incidents_open,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM incidents WHERE state <> 'resolved'")
                .fetch_one(&self.pool)
                .await?;
        let alert_inbox = self.inbox_backlog(now).await?;
        Ok(Backlog {
            alert_inbox,
            outbox_pending,
            outbox_oldest_age: oldest_ms.map_or(Duration::ZERO, |created| {
                Duration::from_millis(now_ms.saturating_sub(created).max(0) as u64)
            }),
            replies_pending,
            timers_overdue,
            approvals,
            incidents_open,
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
