//! The probes against real servers: Prometheus scraping a test exporter, a dedicated
//! PostgreSQL with pg_stat_statements and generated load, PgBouncer, the machine's Redis,
//! HTTP health and a TLS server; and every source down, slow or refusing credentials.

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use odorbot::config::{Config, env_from};
use odorbot::domain::diagnostics::HealthCheck;
use odorbot::domain::signals::{Signal, Source, Verdict, judge, judge_cache_hit_rate};
use odorbot::probes::{Limit, ProbeError, Probes};
use sqlx::{Connection, PgConnection};

use crate::support::pg::{TempDb, session};
use crate::support::probe_servers::{
    Prometheus, black_hole, closed_addr, exporter, pg_admin_url, pgbouncer_admin_url,
    pgbouncer_app_url, redis_cmds, redis_tls, serve, tls_server,
};

/// Probes configured from environment-style pairs, with test timeouts.
fn probes(pairs: &[(&str, &str)]) -> Probes {
    probes_with(pairs, "")
}

/// The picture as `/odor status` renders it, every block's text in one string.
fn rendered(picture: &odorbot::domain::diagnostics::Picture, p: &Probes) -> String {
    picture
        .render(&p.thresholds, &p.links)
        .blocks
        .iter()
        .map(|b| format!("{b:?}"))
        .collect()
}

fn probes_with(pairs: &[(&str, &str)], extra_yaml: &str) -> Probes {
    let mut all = vec![
        ("SLACK_APP_TOKEN", "xapp-1-test-x"),
        ("SLACK_BOT_TOKEN", "xoxb-1-test-x"),
    ];
    all.extend_from_slice(pairs);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odorbot.yaml");
    let yaml = format!(
        "probes:\n  timeout: 2s\n  deadline: 4s\n  health_url: http://127.0.0.1:9/\n  tls_host: 127.0.0.1:9\n{extra_yaml}"
    );
    std::fs::write(&file, yaml).unwrap();
    let config = Config::load(Some(&file), &env_from(&all)).unwrap();
    Probes::new(&config.probes).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Sends `/odor <command>` as Alice and returns the reply's body ("" when none came).
async fn ask(fake: &crate::support::fake_slack::FakeSlack, command: &str) -> String {
    let d = fake.slash_command("U0ALICE", "C111", command).await;
    fake.reply_to(&d, Duration::from_secs(30))
        .await
        .map(|c| c.body.to_string())
        .unwrap_or_default()
}

/// The test exporter, a Prometheus scraping it with enough samples for a 10 s `rate()`,
/// and probes reading that Prometheus with that window.
async fn scraped_exporter() -> (Prometheus, tokio::task::JoinHandle<()>, Probes) {
    let (target, exporter) = exporter().await;
    let prom = Prometheus::start(target).await;
    // rate() needs its whole window filled to give the true rate: a 10s window, 13 scrapes.
    assert!(
        prom.wait_for_samples(13, Duration::from_secs(40)).await,
        "Prometheus scraped the exporter"
    );
    let p = probes_with(
        &[("ODORBOT_PROMETHEUS_URL", &prom.url)],
        "  rate_window: 10s\n",
    );
    (prom, exporter, p)
}

#[tokio::test]
async fn promql_answers_match_the_exporters_known_values() {
    let (_prom, _exporter, p) = scraped_exporter().await;
    let got = p.signals(&Signal::ALL).await;
    let value = |s: Signal| got.iter().find(|(g, _, _)| *g == s).unwrap().1.clone();
    assert!(
        close(value(Signal::ErrorRate).unwrap(), 0.02),
        "{:?}",
        value(Signal::ErrorRate)
    );
    assert!(
        close(value(Signal::P95Latency).unwrap(), 1.5),
        "{:?}",
        value(Signal::P95Latency)
    );
    assert!(
        close(value(Signal::GenerationSuccess).unwrap(), 0.9),
        "{:?}",
        value(Signal::GenerationSuccess)
    );
    assert_eq!(value(Signal::ActiveConnections), Ok(42.0));
    assert_eq!(value(Signal::DailyActiveUsers), Ok(1234.0));
    // 100 requests a scrape, one scrape a second.
    let rate = value(Signal::RequestRate).unwrap();
    assert!((80.0..=120.0).contains(&rate), "{rate}");
    // The fullest volume of the service's namespace, not another namespace's.
    assert!(
        close(value(Signal::VolumeUsage).unwrap(), 0.95),
        "{:?}",
        value(Signal::VolumeUsage)
    );
    let disk = p.disk().await;
    let volumes: Vec<(String, Option<f64>)> = disk
        .volumes
        .unwrap()
        .iter()
        .map(|v| (v.pvc.clone(), v.used_ratio()))
        .collect();
    assert_eq!(
        volumes,
        [
            ("postgres-data-postgres-0".to_owned(), Some(0.95)),
            ("redis-data".to_owned(), Some(0.1))
        ]
    );
    let mut logs = disk.logs.unwrap();
    logs.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        logs,
        [
            ("odordiff-api-1".to_owned(), 6.0 * 1024.0 * 1024.0),
            ("postgres-0".to_owned(), 2.0 * 1024.0 * 1024.0)
        ]
    );
    assert!(
        got.iter()
            .all(|(_, _, source)| *source == Source::Prometheus)
    );
    let t = p.thresholds;
    assert!(matches!(
        judge(Signal::ErrorRate, &value(Signal::ErrorRate), &t),
        Verdict::Breach(_)
    ));
    assert!(matches!(
        judge(Signal::P95Latency, &value(Signal::P95Latency), &t),
        Verdict::Breach(_)
    ));
}

/// The error breakdown against Prometheus scraping the exporter's known values: the
/// endpoints with 5xx, most errors first, with their exact ratios; `--top` bounds it; and
/// `/odor errors` and the High Error Rate runbook's first investigation step show it.
/// `/odor disk <pvc>` shows that volume by name and the largest container logs.
#[tokio::test]
async fn errors_by_endpoint_and_disk_by_claim_show_the_exporters_known_values() {
    use crate::support::bot::Bot;
    use crate::support::fake_slack::FakeSlack;

    let (prom, _exporter, p) = scraped_exporter().await;
    let rows = p.error_breakdown(5).await.unwrap();
    let endpoints: Vec<&str> = rows.iter().map(|r| r.endpoint.as_str()).collect();
    assert_eq!(endpoints, ["/generate", "/search"], "{rows:?}");
    assert!(close(rows[0].ratio().unwrap(), 0.03), "{rows:?}");
    assert!(close(rows[1].ratio().unwrap(), 0.5 / 30.0), "{rows:?}");
    // 1.5 errors a scrape, a scrape a second.
    assert!((1.2..=1.8).contains(&rows[0].errors), "{rows:?}");
    assert_eq!(p.error_breakdown(1).await.unwrap().len(), 1);
    // A label the series do not have: every 5xx is one unnamed row, not an error.
    let by_route = probes_with(
        &[("ODORBOT_PROMETHEUS_URL", &prom.url)],
        "  rate_window: 10s\n  endpoint_label: route\n",
    );
    let rows = by_route.error_breakdown(5).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(close(rows[0].ratio().unwrap(), 0.02), "{rows:?}");

    let fake = FakeSlack::start().await;
    let bot = Bot::start_sections(
        &fake,
        None,
        &[("ODORBOT_PROMETHEUS_URL", &prom.url)],
        &[("probes", "  rate_window: 10s\n")],
        "approvals:\n  roles:\n    operator: [U0ALICE]\n",
    )
    .await;
    for command in ["errors --top 1", "diagnose high-error-rate"] {
        let reply = ask(&fake, command).await;
        assert!(
            reply.contains("*`/generate`*: 3.00% of") && reply.contains("over 10s"),
            "{command}: {reply}\n{}",
            bot.logs()
        );
        assert_eq!(
            reply.contains("`/search`"),
            command.starts_with("diagnose"),
            "{command}: {reply}"
        );
    }
    // One volume by its claim's name, with the largest container logs.
    let reply = ask(&fake, "disk postgres-data-postgres-0").await;
    assert!(
        reply.contains("🔴 *`postgres-data-postgres-0`*: 95.00% used (95.0 GiB of 100.0 GiB)")
            && !reply.contains("redis-data")
            && reply.contains("• `odordiff-api-1`: 6.0 MiB"),
        "{reply}"
    );
}

/// The connectivity test connects as the API does: through PgBouncer as `app`, and says
/// whom it connected as and where; a refused login (straight to PostgreSQL with a wrong
/// password) is a breach that never shows the password; unset, it says which key to set.
#[tokio::test]
async fn connectivity_is_tested_the_way_the_api_connects() {
    use crate::support::bot::Bot;
    use crate::support::fake_slack::FakeSlack;
    use odorbot::domain::diagnostics::render_connectivity;

    let url = pgbouncer_app_url();
    let p = probes(&[("ODORBOT_APP_DATABASE_URL", &url)]);
    let (via, result) = p.app_connectivity().await;
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    assert_eq!(via, Some(format!("127.0.0.1:{port}")));
    let c = result.unwrap();
    assert_eq!((c.user.as_str(), c.database.as_str()), ("app", "postgres"));

    let wrong = pg_admin_url().replacen("postgres@", "app:wrong-secret@", 1);
    let p = probes(&[("ODORBOT_APP_DATABASE_URL", &wrong)]);
    let (via, result) = p.app_connectivity().await;
    assert_eq!(result, Err(ProbeError::Auth));
    let shown = format!(
        "{:?}",
        render_connectivity(&result, via.as_deref(), &p.links).blocks
    );
    assert!(
        shown.contains("🔴") && shown.contains("credentials refused"),
        "{shown}"
    );
    assert!(
        !shown.contains("wrong-secret"),
        "a password leaked: {shown}"
    );

    let (_, unset) = probes(&[]).app_connectivity().await;
    assert!(
        unset
            .unwrap_err()
            .to_string()
            .contains("probes.app_database_url_file")
    );

    let fake = FakeSlack::start().await;
    let bot =
        Bot::start_sections(&fake, None, &[("ODORBOT_APP_DATABASE_URL", &url)], &[], "").await;
    let reply = ask(&fake, "db connectivity").await;
    assert!(
        reply.contains(&format!(
            "✅ *Connection as the API makes it*: `app` to `postgres` through `127.0.0.1:{port}`"
        )),
        "{reply}\n{}",
        bot.logs()
    );
}

#[tokio::test]
async fn a_scrape_of_metrics_stands_in_when_prometheus_is_down() {
    let (target, _exporter) = exporter().await;
    let metrics = format!("http://{target}/metrics");
    let prometheus = format!("http://{}/", closed_addr());
    let p = probes(&[
        ("ODORBOT_PROMETHEUS_URL", &prometheus),
        ("ODORBOT_METRICS_URL", &metrics),
    ]);
    let (error_rate, source) = p.signal(Signal::ErrorRate).await;
    assert!(close(error_rate.unwrap(), 0.02));
    assert_eq!(source, Source::Scrape);
    let (rate, _) = p.signal(Signal::RequestRate).await;
    let why = rate.unwrap_err();
    assert!(
        matches!(&why, ProbeError::Fallback { primary, scrape }
            if *primary.as_ref() == ProbeError::Unreachable
                && matches!(scrape.as_ref(), ProbeError::Unsupported(_))),
        "{why:?}"
    );
    assert!(why.to_string().contains("needs Prometheus"), "{why}");
}

#[tokio::test]
async fn postgres_terminates_exactly_the_long_sessions_the_approver_saw() {
    let db = TempDb::create_on(&pg_admin_url(), "").await;
    let p = probes(&[("ODORBOT_POSTGRES_URL", &db.url)]);
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(session(&db.url, "SELECT 1").await);
    }
    let long = [
        session(&db.url, "SELECT pg_sleep(600)").await,
        session(&db.url, "SELECT pg_sleep(600)").await,
    ];
    tokio::time::sleep(Duration::from_secs(3)).await;
    let short = [
        session(&db.url, "SELECT pg_sleep(60)").await,
        session(&db.url, "SELECT pg_sleep(60)").await,
    ];
    tokio::time::sleep(Duration::from_millis(300)).await;

    let counts = p.db_connections().await.unwrap();
    let state = |s: &str| {
        counts
            .by_state
            .iter()
            .find(|(st, _)| st == s)
            .map_or(0, |(_, n)| *n)
    };
    assert!(state("idle") >= 3, "{counts:?}");
    assert!(state("active") >= 4, "{counts:?}");
    assert_eq!(counts.max, 100);

    let running = p.db_long_running(Duration::from_secs(2)).await.unwrap();
    let mut pids: Vec<i32> = running.iter().map(|s| s.pid).collect();
    pids.sort();
    let mut want = vec![long[0].0, long[1].0];
    want.sort();
    assert_eq!(pids, want, "only the long sessions are long-running");

    // What an approver saw: these two sessions, by pid and start.
    let bound: Vec<(i32, i64)> = running.iter().map(|s| (s.pid, s.started_micros)).collect();
    // A third long statement starts after the preview and is long-running by execution.
    let later = session(&db.url, "SELECT pg_sleep(600)").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now_running = p.db_long_running(Duration::from_secs(2)).await.unwrap();
    assert!(
        now_running.iter().any(|s| s.pid == later.0),
        "{now_running:?}"
    );
    // A bound pid with another start time is another session: left alone too.
    let mut with_stale = bound.clone();
    with_stale.push((later.0, 1));
    let killed = p
        .db_terminate_sessions(&with_stale, Duration::from_secs(2))
        .await
        .unwrap();
    let mut killed: Vec<i32> = killed.iter().map(|s| s.pid).collect();
    killed.sort();
    assert_eq!(killed, want, "exactly the two sessions the approver saw");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    let alive: Vec<(i32,)> =
        sqlx::query_as("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    let alive: Vec<i32> = alive.into_iter().map(|(p,)| p).collect();
    for (pid, _) in idle.iter().chain(short.iter()).chain([&later]) {
        assert!(alive.contains(pid), "session {pid} survived");
    }
    for (pid, _) in &long {
        assert!(!alive.contains(pid), "long session {pid} was terminated");
    }
    admin.close().await.unwrap();
    for (_, task) in idle
        .iter()
        .chain(short.iter())
        .chain(long.iter())
        .chain([&later])
    {
        task.abort();
    }
    p.db_vacuum(Duration::from_secs(60)).await.unwrap();
    db.drop_db().await;
}

#[tokio::test]
async fn top_statements_come_from_pg_stat_statements_or_say_it_is_missing() {
    let db = TempDb::create_on(&pg_admin_url(), "").await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE odor_probe_marker (n int); SELECT count(*) FROM odor_probe_marker, pg_sleep(0.05);")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let p = probes(&[("ODORBOT_POSTGRES_URL", &db.url)]);
    match p.db_top_statements(200).await.unwrap() {
        odorbot::domain::diagnostics::TopStatements::Rows(rows) => {
            assert!(
                rows.iter().any(|(q, ..)| q.contains("odor_probe_marker")),
                "{rows:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(p.db_size().await.unwrap() > 0);
    db.drop_db().await;

    // A database made from template0 has no pg_stat_statements view.
    let bare = TempDb::create_on(&pg_admin_url(), "TEMPLATE template0").await;
    let p = probes(&[("ODORBOT_POSTGRES_URL", &bare.url)]);
    match p.db_top_statements(10).await.unwrap() {
        odorbot::domain::diagnostics::TopStatements::Missing(why) => {
            assert!(why.contains("not installed"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    bare.drop_db().await;
}

/// `db_sizes` from PostgreSQL's own functions: a table of known size is the largest
/// relation with its index counted; the WAL directory has files; the probe server keeps no
/// log directory, which is said, not hidden. A role without `pg_monitor` is told why.
#[tokio::test]
async fn db_sizes_show_the_largest_relations_and_the_wal() {
    let db = TempDb::create_on(&pg_admin_url(), "").await;
    let mut c = PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE events (id bigint PRIMARY KEY, body text); \
         INSERT INTO events SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g; \
         CREATE TABLE small (id int);",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let (expected,): (i64,) = sqlx::query_as("SELECT pg_total_relation_size('events')")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let p = probes(&[("ODORBOT_POSTGRES_URL", &db.url)]);
    let sizes = p.db_sizes(10).await;
    let relations = sizes.relations.unwrap();
    assert_eq!(relations[0], ("public.events".to_owned(), expected));
    assert!(expected > 4_000_000, "{expected}");
    assert!(relations.iter().any(|(n, _)| n == "public.small"));
    let (files, bytes) = sizes.wal.unwrap();
    assert!(files >= 1 && bytes > 0, "{files} {bytes}");
    assert!(sizes.database.unwrap() > expected);
    // logging_collector is off on the probe server: no log directory, said as such.
    assert!(sizes.logs.is_err(), "{:?}", sizes.logs);

    sqlx::raw_sql("DROP ROLE IF EXISTS sizes_probe; CREATE ROLE sizes_probe LOGIN")
        .execute(&mut c)
        .await
        .unwrap();
    let plain = db.url.replacen("postgres@", "sizes_probe@", 1);
    let sizes = probes(&[("ODORBOT_POSTGRES_URL", &plain)])
        .db_sizes(10)
        .await;
    let why = sizes.wal.unwrap_err().to_string();
    assert!(why.contains("permission denied"), "{why}");
    sqlx::raw_sql("DROP ROLE sizes_probe")
        .execute(&mut c)
        .await
        .ok();
    drop(c);
    db.drop_db().await;
}

#[tokio::test]
async fn pgbouncer_pools_show_waiting_clients() {
    let db = TempDb::create_on(&pg_admin_url(), "").await;
    // Through PgBouncer (pool size 5): seven slow clients leave two waiting.
    let through = db.url.replace(":55432/", ":56432/");
    let mut clients = Vec::new();
    for _ in 0..7 {
        let url = through.clone();
        clients.push(tokio::spawn(async move {
            if let Ok(mut c) = PgConnection::connect(&url).await {
                let _ = sqlx::raw_sql("SELECT pg_sleep(4)").execute(&mut c).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p = probes(&[("ODORBOT_PGBOUNCER_URL", &pgbouncer_admin_url())]);
    let pools = p.pgbouncer_pools().await.unwrap();
    let name = db.url.rsplit('/').next().unwrap();
    let pool = pools
        .iter()
        .find(|pool| pool.database == name)
        .unwrap_or_else(|| panic!("{pools:?}"));
    assert_eq!(pool.servers_active, 5, "{pool:?}");
    assert_eq!(pool.clients_waiting, 2, "{pool:?}");
    for c in clients {
        let _ = c.await;
    }
    db.drop_db().await;
}

#[tokio::test]
async fn redis_hit_rate_is_computed_from_known_hits_and_misses() {
    let prefix = format!("odorbot-test-{}", std::process::id());
    let mut cmds: Vec<Vec<String>> = vec![vec!["CONFIG".into(), "RESETSTAT".into()]];
    for i in 0..9 {
        cmds.push(vec!["SET".into(), format!("{prefix}:{i}"), "v".into()]);
    }
    for round in 0..10 {
        for i in 0..9 {
            cmds.push(vec!["GET".into(), format!("{prefix}:{i}")]);
        }
        cmds.push(vec!["GET".into(), format!("{prefix}:missing-{round}")]);
    }
    let refs: Vec<Vec<&str>> = cmds
        .iter()
        .map(|c| c.iter().map(String::as_str).collect())
        .collect();
    let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
    redis_cmds("127.0.0.1:6379", &slices).await;

    let p = probes(&[("ODORBOT_REDIS_URL", "redis://127.0.0.1:6379")]);
    let stats = p.cache_stats().await.unwrap();
    assert_eq!((stats.hits, stats.misses), (90, 10));
    assert!(matches!(
        judge_cache_hit_rate(stats.hits, stats.misses, &p.thresholds),
        Verdict::Ok(_)
    ));
    let mut keys = p.cache_keys(&format!("{prefix}:*"), 5).await.unwrap();
    assert_eq!(keys.len(), 5, "bounded sample");
    keys.sort();
    assert!(keys.iter().all(|k| k.starts_with(&prefix)));
    let del: Vec<String> = (0..9).map(|i| format!("{prefix}:{i}")).collect();
    let mut cmd = vec!["DEL"];
    cmd.extend(del.iter().map(String::as_str));
    redis_cmds("127.0.0.1:6379", &[&cmd]).await;
}

#[tokio::test]
async fn health_endpoints_and_tls_expiry_are_read() {
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/ready",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "warming up") }),
        );
    let (addr, _server) = serve(router).await;
    let dir = tempfile::tempdir().unwrap();
    let (tls, _tls) = tls_server(dir.path(), 30).await;
    let p = probes(&[
        ("ODORBOT_HEALTH_URL", &format!("http://{addr}/")),
        ("ODORBOT_TLS_HOST", &format!("localhost:{}", tls.port())),
    ]);
    let checks = p.health().await;
    let status = |i: usize| {
        let c: &HealthCheck = &checks[i];
        (c.path.as_str(), c.answer.as_ref().unwrap().status)
    };
    assert_eq!(status(0), ("/health", 200));
    assert_eq!(status(1), ("/ready", 503));
    assert!(matches!(checks[1].verdict(), Verdict::Breach(_)));
    // Each row is named by its path, so a failing one says which it is.
    assert!(
        checks[1].line().contains("*/ready*"),
        "{}",
        checks[1].line()
    );
    let (host, cert) = p.tls().await;
    let cert = cert.unwrap();
    assert!(host.starts_with("localhost:"));
    let days = cert.seconds_left / 86_400;
    assert!((29..=30).contains(&days), "{cert:?}");
    assert!(
        cert.names.contains(&"localhost".to_owned())
            && cert.names.contains(&"127.0.0.1".to_owned()),
        "{cert:?}"
    );
    assert!(cert.issuer.contains("odorbot-test"), "{cert:?}");
    assert!(matches!(cert.verdict(), Verdict::Ok(_)));
}

#[tokio::test]
async fn down_slow_and_refusing_sources_are_unknown_and_the_rest_still_answers_in_time() {
    let (hole, _hole) = black_hole().await;
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(|| async { "ok" }));
    let (health, _server) = serve(router).await;
    let db = TempDb::create_on(&pg_admin_url(), "").await;
    let wrong_password = db
        .url
        .replace("postgres://postgres@", "postgres://app:wrong@");
    let p = probes(&[
        // Slow: accepts and never answers.
        ("ODORBOT_PROMETHEUS_URL", &format!("http://{hole}/")),
        ("ODORBOT_REDIS_URL", &format!("redis://{hole}")),
        // Down: nothing listens.
        (
            "ODORBOT_PGBOUNCER_URL",
            &format!("postgres://pgbouncer@{}/pgbouncer", closed_addr()),
        ),
        // Refusing credentials.
        ("ODORBOT_POSTGRES_URL", &wrong_password),
        ("ODORBOT_HEALTH_URL", &format!("http://{health}/")),
    ]);
    let started = Instant::now();
    let picture = p
        .picture(async { self_status() }, async { Vec::new() })
        .await;
    let took = started.elapsed();
    assert!(
        took < p.deadline + Duration::from_secs(1),
        "the picture came within its deadline ({took:?})"
    );
    // Each reason names the bound that applied: Prometheus has 60% of probes.timeout (2s).
    let prometheus_limit = Limit::new(Duration::from_millis(1200), "60% of probes.timeout");
    for (signal, reading, _) in &picture.signals {
        assert_eq!(
            reading.as_ref().unwrap_err(),
            &prometheus_limit.expired(),
            "{signal}: {reading:?}"
        );
    }
    assert_eq!(
        picture.cache.as_ref().unwrap_err(),
        &Limit::new(Duration::from_secs(2), "probes.timeout").expired()
    );
    assert_eq!(picture.db.as_ref().unwrap_err(), &ProbeError::Auth);
    assert!(
        picture
            .health
            .iter()
            .all(|h| h.answer.as_ref().is_ok_and(|a| a.status == 200)),
        "{:?}",
        picture.health
    );
    let pools = p.pgbouncer_pools().await.unwrap_err();
    assert_eq!(pools, ProbeError::Unreachable);
    let text = rendered(&picture, &p);
    assert!(text.contains("unknown: credentials refused"), "{text}");
    assert!(
        text.contains("unknown: no answer within 1.2s (60% of probes.timeout)"),
        "{text}"
    );
    assert!(
        text.contains("unknown: no answer within 2s (probes.timeout)"),
        "{text}"
    );
    assert!(!text.contains("wrong"), "a password leaked: {text}");
    db.drop_db().await;
}

/// `/odor status` answers within `probes.deadline` whichever sources are slow: each of
/// Prometheus, Redis, PostgreSQL, the health URL and the deployments' readiness (which the
/// caller bounds by `reply_limit`) slow or not, 32 combinations at once. Readiness and the
/// probes run side by side: one after the other, 2 s + 4 s would overrun the 4 s deadline.
#[tokio::test]
async fn the_status_deadline_holds_with_every_combination_of_slow_sources() {
    let (hole, _hole) = black_hole().await;
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(|| async { "ok" }));
    let (health, _server) = serve(router).await;
    let slow = format!("http://{hole}/");
    let fine_health = format!("http://{health}/");
    let slow_pg = format!("postgres://postgres@{hole}/x");
    let slow_redis = format!("redis://{hole}");
    let runs = (0u8..32).map(|mask| {
        let (slow, fine_health, slow_pg, slow_redis) = (&slow, &fine_health, &slow_pg, &slow_redis);
        async move {
            let mut env: Vec<(&str, &str)> = Vec::new();
            if mask & 1 != 0 {
                env.push(("ODORBOT_PROMETHEUS_URL", slow));
            }
            if mask & 2 != 0 {
                env.push(("ODORBOT_REDIS_URL", slow_redis));
            }
            if mask & 4 != 0 {
                env.push(("ODORBOT_POSTGRES_URL", slow_pg));
            }
            env.push((
                "ODORBOT_HEALTH_URL",
                if mask & 8 != 0 { slow } else { fine_health },
            ));
            let p = probes(&env);
            let kube_slow = mask & 16 != 0;
            let limit = p.reply_limit();
            let readiness = async move {
                if kube_slow {
                    tokio::time::sleep(limit.after).await;
                    vec![("odordiff-api".to_owned(), Err(limit.expired().to_string()))]
                } else {
                    vec![("odordiff-api".to_owned(), Ok((1, 1)))]
                }
            };
            let started = Instant::now();
            let picture = p.picture(async { self_status() }, readiness).await;
            (mask, started.elapsed(), p.deadline, picture)
        }
    });
    for (mask, took, deadline, picture) in futures_util::future::join_all(runs).await {
        assert!(
            took < deadline + Duration::from_millis(500),
            "slow sources {mask:05b}: {took:?} against a {deadline:?} deadline"
        );
        assert_eq!(
            picture.deployments[0].1.is_err(),
            mask & 16 != 0,
            "{mask:05b}"
        );
    }
}

/// Many `/odor status` at once (everyone during an incident) are gathered once: a health
/// URL answering in 1 s is asked once for eight concurrent commands, and each of the eight
/// gets the full picture. A status asked afterwards is gathered afresh.
#[tokio::test]
async fn concurrent_status_commands_share_one_gathering() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::support::bot::Bot;
    use crate::support::fake_slack::FakeSlack;

    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let router = Router::new()
        .route(
            "/health",
            get(move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    "ok"
                }
            }),
        )
        .route("/ready", get(|| async { "ok" }));
    let (health, _server) = serve(router).await;
    let health_url = format!("http://{health}/");
    let fake = FakeSlack::start().await;
    let bot = Bot::start_config(&fake, None, &[("ODORBOT_HEALTH_URL", &health_url)], "").await;
    assert!(
        fake.wait_connections(2, Duration::from_secs(15)).await,
        "{}",
        bot.logs()
    );
    let sent = futures_util::future::join_all(
        (0..8).map(|_| fake.slash_command("U111", "C111", "status")),
    )
    .await;
    for d in &sent {
        let reply = fake
            .reply_to(d, Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("no status reply\n{}", bot.logs()));
        assert!(reply.body.to_string().contains("/health"), "{}", reply.body);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "one gathering for eight commands"
    );
    let again = fake.slash_command("U111", "C111", "status").await;
    assert!(
        fake.reply_to(&again, Duration::from_secs(20))
            .await
            .is_some()
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "a later status is gathered afresh"
    );
}

fn self_status() -> odorbot::domain::status::SelfStatus {
    odorbot::domain::status::SelfStatus {
        version: "test",
        uptime: Duration::from_secs(1),
        slack_connections: 2,
        slack_connections_wanted: 2,
        store_backend: "sqlite",
        store: Ok(odorbot::domain::status::OpenWork {
            approvals: 0,
            incidents: 0,
        }),
        queue_depth: 0,
    }
}

/// The diagnostics verbs through the real binary and the fake Slack.
#[tokio::test]
async fn diagnostics_verbs_answer_in_slack_with_verdicts() {
    use crate::support::bot::Bot;
    use crate::support::fake_slack::FakeSlack;

    let (target, _exporter) = exporter().await;
    let db = TempDb::create_on(&pg_admin_url(), "").await;
    let dir = tempfile::tempdir().unwrap();
    let (tls, _tls) = tls_server(dir.path(), 10).await;
    let fake = FakeSlack::start().await;
    let metrics = format!("http://{target}/metrics");
    let tls_host = format!("localhost:{}", tls.port());
    let pgbouncer = pgbouncer_admin_url();
    let bot = Bot::start_config(
        &fake,
        None,
        &[
            ("ODORBOT_METRICS_URL", &metrics),
            ("ODORBOT_POSTGRES_URL", &db.url),
            ("ODORBOT_PGBOUNCER_URL", &pgbouncer),
            ("ODORBOT_REDIS_URL", "redis://127.0.0.1:6379"),
            ("ODORBOT_TLS_HOST", &tls_host),
        ],
        // Statement text and key samples are for operators.
        "approvals:\n  roles:\n    operator: [U111]\n",
    )
    .await;
    assert!(
        fake.wait_connections(2, Duration::from_secs(15)).await,
        "{}",
        bot.logs()
    );

    let cases: &[(&str, &[&str])] = &[
        (
            "metrics error_rate",
            &[
                "🔴 *Error rate (5xx)*: 2.00% since start, from /metrics (threshold 1%)",
                "/metrics scrape",
            ],
        ),
        (
            "metrics request_rate",
            &["unknown: Prometheus is not configured", "needs Prometheus"],
        ),
        (
            "db connections",
            &["*Connections*", "max_connections", "Database size:"],
        ),
        (
            "db slow-queries --older-than 1m",
            &["*Running longer than 1m*", "pg_stat_statements"],
        ),
        ("db pools", &["PgBouncer pools"]),
        ("cache stats", &["*Cache hit rate*", "Evicted keys"]),
        (
            "certs",
            &[
                "🔴 *TLS certificate of localhost:",
                "days left: renew now",
                "Issuer: CN=odorbot-test",
            ],
        ),
        (
            "disk",
            &["unknown: Prometheus is not configured (probes.prometheus_url)"],
        ),
        (
            "status",
            &[
                "🔴 *Error rate (5xx)*: 2.00%",
                "🔴 *p95 latency*: 1500 ms",
                "*Database connections*",
                "odorbot is healthy",
            ],
        ),
        (
            "db tables",
            &["expected one of connections, slow-queries, pools"],
        ),
        (
            "metrics latency",
            &["expected one of request_rate, p95_latency"],
        ),
        (
            "db slow-queries --older-than 2d",
            &["is out of range: expected a duration such as 90s, 10m or 2h, from 1s to 1d"],
        ),
    ];
    let mut sent = Vec::new();
    for (text, _) in cases {
        sent.push(fake.slash_command("U111", "C111", text).await);
    }
    for ((text, wants), d) in cases.iter().zip(&sent) {
        let url = d.response_url.clone().unwrap();
        let path = format!("/response/{}", url.rsplit('/').next().unwrap());
        let found = fake
            .wait_until(Duration::from_secs(20), |f| {
                f.calls_to("response_url").iter().any(|c| c.path == path)
            })
            .await;
        assert!(found, "no reply to {text:?}\n{}", bot.logs());
        let reply = fake
            .calls_to("response_url")
            .into_iter()
            .find(|c| c.path == path)
            .unwrap()
            .body
            .to_string();
        for want in *wants {
            let want_json = serde_json::to_string(want).unwrap();
            let want_json = &want_json[1..want_json.len() - 1];
            assert!(
                reply.contains(want_json),
                "{text:?}: missing {want:?} in {reply}"
            );
        }
    }
    drop(bot);
    db.drop_db().await;
}

#[tokio::test]
async fn http_probes_bound_the_body_and_name_tls_failures() {
    // Over the 8 MiB bound: refused, not read to the end.
    let big = "x".repeat(9 * 1024 * 1024);
    let router = Router::new()
        .route("/metrics", get(move || async move { big.clone() }))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(|| async { "ok" }));
    let (addr, _server) = serve(router).await;
    let metrics = format!("http://{addr}/metrics");
    let p = probes(&[("ODORBOT_METRICS_URL", &metrics)]);
    let (reading, _) = p.signal(Signal::ErrorRate).await;
    match reading {
        Err(ProbeError::Fallback { scrape, .. }) => {
            assert!(
                matches!(scrape.as_ref(), ProbeError::Protocol(why) if why.contains("8 MiB")),
                "{scrape:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A certificate no root vouches for is a TLS failure, not "unreachable".
    let dir = tempfile::tempdir().unwrap();
    let (tls, _tls) = tls_server(dir.path(), 30).await;
    let p = probes(&[(
        "ODORBOT_HEALTH_URL",
        &format!("https://localhost:{}/", tls.port()),
    )]);
    let checks = p.health().await;
    assert_eq!(
        checks.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(),
        ["/health", "/ready"]
    );
    for check in &checks {
        assert!(matches!(check.answer, Err(ProbeError::Tls(_))), "{check:?}");
    }
    let p = probes(&[("ODORBOT_HEALTH_URL", &format!("http://{addr}/"))]);
    assert!(p.health().await.iter().all(|h| h.answer.is_ok()));
}

#[tokio::test]
async fn redis_over_tls_with_an_acl_user_and_its_failures_by_cause() {
    let (port, ca) = redis_tls();
    let ca_file = ca.to_str().unwrap();
    // The tests' admin user writes the keys; the probe's user may only INFO and SCAN.
    let prefix = format!("odorbot-tls-test-{}", std::process::id());
    let admin = redis::Client::build_with_tls(
        format!("rediss://admin:odorbot-admin-password@localhost:{port}"),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(&ca).expect("scripts/probe-servers-up.sh made the CA")),
        },
    )
    .unwrap();
    let mut conn = admin.get_multiplexed_async_connection().await.unwrap();
    for i in 0..9 {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}:{i}"))
            .arg("v")
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    let url = format!("rediss://odorbot:odorbot-probe-password@localhost:{port}");
    let p = probes(&[
        ("ODORBOT_REDIS_URL", &url),
        ("ODORBOT_REDIS_CA_FILE", ca_file),
    ]);
    let stats = p.cache_stats().await.unwrap();
    assert!(stats.used_memory > 0, "{stats:?}");
    let keys = p.cache_keys(&format!("{prefix}:*"), 5).await.unwrap();
    assert_eq!(keys.len(), 5, "bounded sample: {keys:?}");
    assert!(keys.iter().all(|k| k.starts_with(&prefix)), "{keys:?}");

    // A wrong password is refused credentials, and the password is in no reason.
    let wrong = format!("rediss://odorbot:not-the-password@localhost:{port}");
    let p = probes(&[
        ("ODORBOT_REDIS_URL", &wrong),
        ("ODORBOT_REDIS_CA_FILE", ca_file),
    ]);
    assert_eq!(p.cache_stats().await, Err(ProbeError::Auth));
    // Without the CA no root vouches for the server: a TLS failure, not "unreachable".
    let p = probes(&[("ODORBOT_REDIS_URL", &url)]);
    let why = p.cache_stats().await.unwrap_err();
    assert!(matches!(why, ProbeError::Tls(_)), "{why:?}");
    assert!(!why.to_string().contains("odorbot-probe-password"), "{why}");
    // TLS asked of the plain Redis: it reads the handshake as an unfinished command and
    // never answers, so the reason is the bound that applied.
    let p = probes(&[
        ("ODORBOT_REDIS_URL", "rediss://localhost:6379"),
        ("ODORBOT_REDIS_CA_FILE", ca_file),
    ]);
    assert_eq!(
        p.cache_stats().await,
        Err(Limit::new(Duration::from_secs(2), "probes.timeout").expired())
    );

    let mut del = redis::cmd("DEL");
    for i in 0..9 {
        del.arg(format!("{prefix}:{i}"));
    }
    let _: () = del.query_async(&mut conn).await.unwrap();
}

#[tokio::test]
async fn unconfigured_probes_say_so_by_key_and_reach_out_to_nothing() {
    let env = [
        ("SLACK_APP_TOKEN", "xapp-1-test-x"),
        ("SLACK_BOT_TOKEN", "xoxb-1-test-x"),
    ];
    let config = Config::load(None, &env_from(&env)).unwrap();
    assert_eq!(config.probes.health_url, None);
    assert_eq!(config.probes.tls_host, None);
    let p = Probes::new(&config.probes).unwrap();
    let started = Instant::now();
    let health = p.health().await;
    assert_eq!(
        health,
        [HealthCheck {
            path: "Health".into(),
            answer: Err(ProbeError::not_configured(
                "The service URL",
                "probes.health_url"
            ))
        }]
    );
    let (host, cert) = p.tls().await;
    assert_eq!(host, "");
    assert_eq!(
        cert,
        Err(ProbeError::not_configured(
            "The TLS host",
            "probes.tls_host"
        ))
    );
    let picture = p
        .picture(async { self_status() }, async { Vec::new() })
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "nothing was waited for"
    );
    let text = rendered(&picture, &p);
    for want in [
        "unknown: The service URL is not configured (probes.health_url)",
        "unknown: PostgreSQL is not configured (ODORBOT_POSTGRES_URL)",
        "unknown: Redis is not configured (ODORBOT_REDIS_URL)",
        "unknown: Prometheus is not configured (probes.prometheus_url)",
    ] {
        assert!(text.contains(want), "missing {want:?} in {text}");
    }
    let certs = odorbot::domain::diagnostics::render_tls(&host, &cert, &p.links);
    assert!(
        format!("{:?}", certs.blocks).contains("The TLS host is not configured (probes.tls_host)"),
        "{certs:?}"
    );
}
