//! Throwaway PostgreSQL databases on the machine's server, one per test, so tests run
//! in parallel without seeing each other's rows.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AnyPool, Executor};

/// The admin URL; `ODORBOT_TEST_PG` overrides the machine's default server.
pub fn admin_url() -> String {
    std::env::var("ODORBOT_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub struct TempDb {
    pub url: String,
    name: String,
}

impl TempDb {
    pub async fn create() -> TempDb {
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
        let admin = AnyPool::connect(&admin_url())
            .await
            .expect("PostgreSQL is reachable for tests");
        let create = format!("CREATE DATABASE {name}");
        admin
            .execute(sqlx::AssertSqlSafe(create))
            .await
            .expect("create test database");
        admin.close().await;
        let base = admin_url();
        let url = format!(
            "{}/{name}",
            base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b)
        );
        TempDb { url, name }
    }

    pub async fn drop_db(self) {
        let admin = AnyPool::connect(&admin_url())
            .await
            .expect("PostgreSQL is reachable for tests");
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = admin.execute(sqlx::AssertSqlSafe(drop)).await;
        admin.close().await;
    }
}
