//! `/odor status` through the real binary and the fake Slack: envelope sent → reply posted
//! to its `response_url`, one command at a time (concurrent ones would share a gathering),
//! beside `/odor help` on the same bot as the floor (the same path without a probe).
//!
//! Two bots: one whose sources are all healthy (a real Prometheus scraping a test
//! exporter, the machine's Redis and PostgreSQL, a health URL, the test cluster's API
//! server when `ODORBOT_KUBECONFIG` names one), and one whose sources all accept a
//! connection and never answer. The second's figure to hold is `probes.deadline`.
//!
//! Run with `cargo bench --bench status` (`STATUS_BENCH_N`, default 200 commands each).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use support::bot::Bot;
use support::fake_slack::FakeSlack;
use support::measure::percentile;
use support::probe_servers::{Prometheus, black_hole, exporter, serve};

/// The slow bot's deadline (the tests' default is shorter).
const DEADLINE: &str = "4s";

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("STATUS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (target, _exporter) = exporter().await;
    let prometheus = Prometheus::start(target).await;
    assert!(
        prometheus
            .wait_for_samples(3, Duration::from_secs(30))
            .await,
        "Prometheus scrapes the exporter"
    );
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(|| async { "ok" }));
    let (health, _health) = serve(router).await;
    let (hole, _hole) = black_hole().await;

    let health_url = format!("http://{health}/");
    let mut healthy: Vec<(&str, String)> = vec![
        ("ODORBOT_PROMETHEUS_URL", prometheus.url.clone()),
        ("ODORBOT_REDIS_URL", "redis://127.0.0.1:6379".into()),
        (
            "ODORBOT_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/postgres".into(),
        ),
        ("ODORBOT_HEALTH_URL", health_url),
    ];
    let kube = std::env::var("ODORBOT_KUBECONFIG").ok();
    if let Some(path) = &kube {
        healthy.push(("KUBECONFIG", path.clone()));
        healthy.push(("ODORBOT_NAMESPACE", "default".into()));
    }
    let slow: Vec<(&str, String)> = vec![
        ("ODORBOT_PROMETHEUS_URL", format!("http://{hole}/")),
        ("ODORBOT_REDIS_URL", format!("redis://{hole}")),
        (
            "ODORBOT_POSTGRES_URL",
            format!("postgres://postgres@{hole}/x"),
        ),
        ("ODORBOT_HEALTH_URL", format!("http://{hole}/")),
    ];
    println!(
        "status: {n} commands each, one at a time; Kubernetes {}",
        if kube.is_some() {
            "from ODORBOT_KUBECONFIG"
        } else {
            "not configured"
        }
    );
    for (name, env) in [("healthy", &healthy), ("slow", &slow)] {
        let fake = FakeSlack::start().await;
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let bot = Bot::start_sections(
            &fake,
            None,
            &env,
            &[
                ("log", "  filter: warn\n"),
                (
                    "probes",
                    &format!("  timeout: 2s\n  deadline: {DEADLINE}\n"),
                ),
            ],
            "",
        )
        .await;
        assert!(
            fake.wait_connections(2, Duration::from_secs(20)).await,
            "{}",
            bot.logs()
        );
        // The slow sources take seconds a command: fewer of them say as much.
        let count = if name == "slow" { n.min(20) } else { n };
        let floor = round_trips(&fake, "help", count).await;
        let status = round_trips(&fake, "status", count).await;
        for (what, f) in [("/odor help", floor), ("/odor status", status)] {
            println!(
                "{name:<8} {what:<13} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  no reply {}",
                ms(f.p50),
                ms(f.p99),
                ms(f.max),
                f.missing
            );
        }
        if name == "slow" {
            println!("slow     probes.deadline {DEADLINE}");
        }
        let (exit, _) = bot.terminate().await;
        assert!(exit.success());
    }
}

#[derive(Clone, Copy)]
struct Figures {
    p50: Duration,
    p99: Duration,
    max: Duration,
    missing: usize,
}

/// `count` commands `/odor <text>`, each sent once the previous one's reply arrived.
async fn round_trips(fake: &FakeSlack, text: &str, count: usize) -> Figures {
    let mut took = Vec::with_capacity(count);
    let mut missing = 0;
    for _ in 0..count {
        let d = fake.slash_command("U111", "C111", text).await;
        match fake.reply_to(&d, Duration::from_secs(15)).await {
            Some(reply) => took.push(reply.at.saturating_duration_since(d.sent_at)),
            None => missing += 1,
        }
    }
    took.sort();
    Figures {
        p50: percentile(&took, 0.5),
        p99: percentile(&took, 0.99),
        max: took.last().copied().unwrap_or_default(),
        missing,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
