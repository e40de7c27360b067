//! Throwaway PostgreSQL databases on the machine's server, one per test, so tests run
//! in parallel without seeing each other's rows.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AnyPool, Connection, Executor, PgConnection};

/// The admin URL; `ODORBOT_TEST_PG` overrides the machine's default server.
pub fn admin_url() -> String {
    std::env::var("ODORBOT_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub struct TempDb {
    pub url: String,
    name: String,
    admin: String,
}

impl TempDb {
    /// A database on the machine's PostgreSQL.
    pub async fn create() -> TempDb {
        Self::create_on(&admin_url(), "").await
    }

    /// A database on the server behind `admin` (e.g. the probe tests' instance), with
    /// extra `CREATE DATABASE` options such as `TEMPLATE template0`.
    pub async fn create_on(admin: &str, options: &str) -> TempDb {
        static N: AtomicU32 = AtomicU32::new(0);
        sqlx::any::install_default_drivers();
        let name = format!(
            "odorbot_t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let admin_url = admin.to_owned();
        let admin = AnyPool::connect(&admin_url)
            .await
            .expect("PostgreSQL is reachable for tests");
        let create = format!("CREATE DATABASE {name} {options}");
        admin
            .execute(sqlx::AssertSqlSafe(create))
            .await
            .expect("create test database");
        admin.close().await;
        let url = format!(
            "{}/{name}",
            admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b)
        );
        TempDb {
            url,
            name,
            admin: admin_url,
        }
    }

    pub async fn drop_db(self) {
        let admin = AnyPool::connect(&self.admin)
            .await
            .expect("PostgreSQL is reachable for tests");
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = admin.execute(sqlx::AssertSqlSafe(drop)).await;
        admin.close().await;
    }
}

/// A connection to the test database that runs `sql` in the background.
pub async fn session(url: &str, sql: &'static str) -> (i32, tokio::task::JoinHandle<()>) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = sqlx::raw_sql(sql).execute(&mut conn).await;
        // Keep the connection (idle) until the test ends.
        std::future::pending::<()>().await;
    });
    (pid, task)
}
