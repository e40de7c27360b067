//! PostgreSQL and PgBouncer, over SQL: connections, long-running and top statements,
//! database size, the pools; and the two maintenance actions the runbook names.

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row};

use super::{Limit, ProbeError, TIMEOUT_KEY};
use crate::domain::diagnostics::{
    AppConnection, ConnectionCounts, PoolStats, SlowStatement, TopStatements,
};

/// odorbot's sessions carry this name, so it never terminates its own backends.
pub const APPLICATION_NAME: &str = "odorbot";

/// The cause, short and never with the URL (it may hold a password). `limit` is the
/// bound a pool waits for a connection.
fn reason(e: &sqlx::Error, limit: Limit) -> ProbeError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.as_ref() {
                "28P01" | "28000" => ProbeError::Auth,
                _ => ProbeError::Server {
                    server: "PostgreSQL",
                    message: format!(
                        "{} ({code})",
                        db.message().chars().take(160).collect::<String>()
                    ),
                },
            }
        }
        sqlx::Error::Io(_) => ProbeError::Unreachable,
        sqlx::Error::PoolTimedOut => limit.expired(),
        sqlx::Error::Tls(e) => ProbeError::Tls(e.to_string().chars().take(160).collect()),
        sqlx::Error::Protocol(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::TypeNotFound { .. } => {
            ProbeError::Protocol(e.to_string().chars().take(160).collect())
        }
        other => ProbeError::Server {
            server: "PostgreSQL",
            message: other.to_string().chars().take(160).collect(),
        },
    }
}

/// Connection options from a secret URL, with odorbot's sessions named as its own.
fn options(
    url: &SecretString,
    what: &'static str,
    key: &'static str,
) -> Result<PgConnectOptions, ProbeError> {
    Ok(PgConnectOptions::from_str(url.expose_secret())
        .map_err(|_| unparsable(what, key))?
        .application_name(APPLICATION_NAME))
}

/// The service's PostgreSQL.
#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    limit: Limit,
}

impl Postgres {
    /// A lazy pool: nothing connects until a probe runs, so start-up never waits on it.
    ///
    /// # Errors
    /// When the URL cannot be parsed.
    pub fn new(url: &SecretString, timeout: Duration) -> Result<Self, ProbeError> {
        let options = options(url, "PostgreSQL", "ODORBOT_POSTGRES_URL")?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(timeout)
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            limit: Limit::new(timeout, TIMEOUT_KEY),
        })
    }

    /// Connections by state against `max_connections`.
    ///
    /// # Errors
    /// A short reason.
    pub async fn connections(&self) -> Result<ConnectionCounts, ProbeError> {
        let rows = sqlx::query(
            "SELECT COALESCE(state, 'background'), count(*)::bigint FROM pg_stat_activity \
             WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| reason(&e, self.limit))?;
        let (max,): (i32,) =
            sqlx::query_as("SELECT setting::int FROM pg_settings WHERE name = 'max_connections'")
                .fetch_one(&self.pool)
                .await
                .map_err(|e| reason(&e, self.limit))?;
        Ok(ConnectionCounts {
            by_state: rows
                .iter()
                .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1)))
                .collect(),
            max: i64::from(max),
        })
    }

    /// Statements in the service's database running longer than `older_than`, oldest
    /// first (never odorbot's own).
    ///
    /// # Errors
    /// A short reason.
    pub async fn long_running(
        &self,
        older_than: Duration,
    ) -> Result<Vec<SlowStatement>, ProbeError> {
        let rows = sqlx::query(
            "SELECT pid, COALESCE(usename, ''), COALESCE(state, ''), \
             EXTRACT(EPOCH FROM now() - query_start)::float8, left(query, 200), \
             (EXTRACT(EPOCH FROM backend_start) * 1000000)::int8 \
             FROM pg_stat_activity \
             WHERE state <> 'idle' AND backend_type = 'client backend' AND pid <> pg_backend_pid() \
             AND datname = current_database() \
             AND query_start < now() - make_interval(secs => $1) \
             ORDER BY query_start LIMIT 20",
        )
        .bind(older_than.as_secs_f64())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| reason(&e, self.limit))?;
        Ok(rows.iter().map(slow_statement).collect())
    }

    /// The slowest statements by mean time, from `pg_stat_statements`.
    ///
    /// # Errors
    /// A short reason; a missing extension is said plainly.
    pub async fn top_statements(&self, limit: i64) -> Result<TopStatements, ProbeError> {
        let result = sqlx::query(
            // The service's database only: pg_stat_statements covers the whole server,
            // where other databases' statements would crowd out the service's own.
            "SELECT left(query, 200), calls, mean_exec_time, total_exec_time \
             FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             ORDER BY mean_exec_time DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await;
        match result {
            Ok(rows) => Ok(TopStatements::Rows(
                rows.iter()
                    .map(|r| (r.get::<String, _>(0), r.get::<i64, _>(1), r.get::<f64, _>(2), r.get::<f64, _>(3)))
                    .collect(),
            )),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => Ok(TopStatements::Missing(
                "the pg_stat_statements extension is not installed in this database (CREATE EXTENSION pg_stat_statements)".into(),
            )),
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("55000") => Ok(TopStatements::Missing(
                "pg_stat_statements is installed but not loaded (add it to shared_preload_libraries)".into(),
            )),
            Err(e) => Err(reason(&e, self.limit)),
        }
    }

    /// The current database's size in bytes.
    ///
    /// # Errors
    /// A short reason.
    pub async fn database_size(&self) -> Result<i64, ProbeError> {
        let (size,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| reason(&e, self.limit))?;
        Ok(size)
    }

    /// The largest user relations by total size (table, indexes and TOAST).
    ///
    /// # Errors
    /// A short reason.
    pub async fn largest_relations(&self, limit: i64) -> Result<Vec<(String, i64)>, ProbeError> {
        sqlx::query_as(
            "SELECT n.nspname || '.' || c.relname, pg_total_relation_size(c.oid) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'm') \
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' \
             ORDER BY 2 DESC, 1 LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| reason(&e, self.limit))
    }

    /// Files and bytes in the WAL directory (`waldir`) or the log directory, from
    /// `pg_ls_waldir()` / `pg_ls_logdir()` (superuser or `pg_monitor`).
    ///
    /// # Errors
    /// A short reason, such as the permission the role lacks.
    pub async fn dir_size(&self, waldir: bool) -> Result<(i64, i64), ProbeError> {
        let sql = if waldir {
            "SELECT count(*), COALESCE(sum(size), 0)::bigint FROM pg_ls_waldir()"
        } else {
            "SELECT count(*), COALESCE(sum(size), 0)::bigint FROM pg_ls_logdir()"
        };
        sqlx::query_as(sql)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| reason(&e, self.limit))
    }

    /// Terminates exactly the given sessions (pid and start time) that are still client
    /// backends of the service's database running a statement longer than `older_than`;
    /// never odorbot's own, never a later session that reuses a pid. Returns what was
    /// terminated.
    ///
    /// # Errors
    /// A short reason.
    pub async fn terminate_sessions(
        &self,
        sessions: &[(i32, i64)],
        older_than: Duration,
    ) -> Result<Vec<SlowStatement>, ProbeError> {
        let (pids, starts): (Vec<i32>, Vec<i64>) = sessions.iter().copied().unzip();
        let rows = sqlx::query(
            // The call sits in the select list, which runs only for rows the WHERE kept:
            // as a WHERE condition the planner could evaluate it before the filters.
            "SELECT pid, COALESCE(usename, ''), COALESCE(state, ''), \
             EXTRACT(EPOCH FROM now() - query_start)::float8, left(query, 200), \
             (EXTRACT(EPOCH FROM backend_start) * 1000000)::int8, pg_terminate_backend(pid) \
             FROM pg_stat_activity \
             WHERE state <> 'idle' AND backend_type = 'client backend' AND pid <> pg_backend_pid() \
             AND datname = current_database() AND application_name <> $2 \
             AND query_start < now() - make_interval(secs => $1) \
             AND (pid, (EXTRACT(EPOCH FROM backend_start) * 1000000)::int8) IN \
                 (SELECT * FROM unnest($3::int4[], $4::int8[]))",
        )
        .bind(older_than.as_secs_f64())
        .bind(APPLICATION_NAME)
        .bind(pids)
        .bind(starts)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| reason(&e, self.limit))?;
        Ok(rows
            .iter()
            .filter(|r| r.get::<bool, _>(6))
            .map(slow_statement)
            .collect())
    }

    /// `VACUUM ANALYZE` of the whole database.
    ///
    /// # Errors
    /// A short reason.
    pub async fn vacuum_analyze(&self) -> Result<(), ProbeError> {
        sqlx::raw_sql("VACUUM ANALYZE")
            .execute(&self.pool)
            .await
            .map_err(|e| reason(&e, self.limit))?;
        Ok(())
    }
}

fn slow_statement(r: &PgRow) -> SlowStatement {
    SlowStatement {
        pid: r.get(0),
        user: r.get(1),
        state: r.get(2),
        running_secs: r.get(3),
        query: r.get(4),
        started_micros: r.get(5),
    }
}

/// PgBouncer's admin console, which speaks only the simple query protocol and refuses
/// startup parameters it does not know.
#[derive(Clone)]
pub struct PgBouncer {
    options: PgConnectOptions,
    limit: Limit,
}

/// The API's database connection, as the API makes it: typically through PgBouncer in
/// transaction mode, as the application's role. A fresh connection each time, as a new
/// API pod would make, so a refused login or a full pool shows.
pub struct AppDatabase {
    options: PgConnectOptions,
    limit: Limit,
}

impl AppDatabase {
    /// # Errors
    /// When the URL cannot be parsed.
    pub fn new(url: &SecretString, timeout: Duration) -> Result<Self, ProbeError> {
        let options = options(url, "The API's database", "ODORBOT_APP_DATABASE_URL")?
            .statement_cache_capacity(0);
        Ok(Self {
            options,
            limit: Limit::new(timeout, TIMEOUT_KEY),
        })
    }

    /// Host and port the connection goes to; never the user or the password.
    pub fn via(&self) -> String {
        format!("{}:{}", self.options.get_host(), self.options.get_port())
    }

    /// Connects, asks who it is, and disconnects.
    ///
    /// # Errors
    /// A short reason: refused credentials, unreachable, the server's own refusal.
    pub async fn check(&self) -> Result<AppConnection, ProbeError> {
        let started = std::time::Instant::now();
        let mut conn = PgConnection::connect_with(&self.options)
            .await
            .map_err(|e| reason(&e, self.limit))?;
        // The simple protocol: PgBouncer in transaction mode hands each transaction any
        // server connection, where a named prepared statement may already exist.
        let row = sqlx::raw_sql("SELECT current_user::text, current_database()::text")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| reason(&e, self.limit))?;
        let took = started.elapsed();
        let text = |i: usize| {
            row.try_get::<String, _>(i)
                .map_err(|e| reason(&e, self.limit))
        };
        let (user, database) = (text(0)?, text(1)?);
        let _ = conn.close().await;
        Ok(AppConnection {
            user,
            database,
            took,
        })
    }
}

impl PgBouncer {
    /// # Errors
    /// When the URL cannot be parsed.
    pub fn new(url: &SecretString, timeout: Duration) -> Result<Self, ProbeError> {
        let options = options(url, "PgBouncer", "ODORBOT_PGBOUNCER_URL")?
            .extra_float_digits(None)
            .statement_cache_capacity(0);
        Ok(Self {
            options,
            limit: Limit::new(timeout, TIMEOUT_KEY),
        })
    }

    /// `SHOW POOLS` and `SHOW STATS`, summarised per database.
    ///
    /// # Errors
    /// A short reason.
    pub async fn pools(&self) -> Result<Vec<PoolStats>, ProbeError> {
        let work = async {
            let mut conn = PgConnection::connect_with(&self.options)
                .await
                .map_err(|e| reason(&e, self.limit))?;
            let pools = sqlx::raw_sql("SHOW POOLS")
                .fetch_all(&mut conn)
                .await
                .map_err(|e| reason(&e, self.limit))?;
            let stats = sqlx::raw_sql("SHOW STATS")
                .fetch_all(&mut conn)
                .await
                .map_err(|e| reason(&e, self.limit))?;
            let _ = conn.close().await;
            Ok::<_, ProbeError>((pools, stats))
        };
        let (pools, stats) = tokio::time::timeout(self.limit.after, work)
            .await
            .map_err(|_| self.limit.expired())??;
        let text = |r: &PgRow, col: &str| r.try_get_unchecked::<String, _>(col).unwrap_or_default();
        let num = |r: &PgRow, col: &str| text(r, col).parse::<i64>().unwrap_or(0);
        let mut out: Vec<PoolStats> = Vec::new();
        for r in &pools {
            let database = text(r, "database");
            if database == "pgbouncer" {
                continue;
            }
            let stat = stats.iter().find(|s| text(s, "database") == database);
            out.push(PoolStats {
                database,
                user: text(r, "user"),
                clients_active: num(r, "cl_active"),
                clients_waiting: num(r, "cl_waiting"),
                servers_active: num(r, "sv_active"),
                servers_idle: num(r, "sv_idle"),
                max_wait_secs: num(r, "maxwait") as f64 + num(r, "maxwait_us") as f64 / 1e6,
                pool_mode: text(r, "pool_mode"),
                avg_query_us: stat.map_or(0, |s| num(s, "avg_query_time")),
            });
        }
        Ok(out)
    }
}

fn unparsable(what: &'static str, key: &'static str) -> ProbeError {
    ProbeError::BadConfig {
        what,
        key,
        why: "the URL cannot be parsed".into(),
    }
}
