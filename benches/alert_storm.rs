//! Alert storm: Alertmanager notifications posted to odorbot's real binary as fast as its
//! webhook accepts them, beside a minimal webhook (parse the JSON body, answer 200; on its
//! own thread and runtime) that is the floor this harness can resolve, in the same run.
//!
//! Per store (SQLite, then PostgreSQL): `ALERT_STORM_GROUPS` groups (default 500) of
//! `ALERT_STORM_ALERTS` alerts each (default 20), posted by `ALERT_STORM_CONCURRENCY`
//! clients (default 16) over kept-alive connections. Prints the webhook's p50/p99/max and
//! the floor's, answers other than 200, intake throughput, how long the intake loop took to
//! apply the inbox, then checks that every group is one incident with every alert recorded, and waits (at most `ALERT_STORM_DRAIN_SECS`,
//! default 300) until odorbot's posts stop: the time until the last post, how many, and
//! the most that went to the channel in any one second (Slack paces about one a second),
//! and when the storm summary and each severity's page were posted.
//!
//! Run with `cargo bench --bench alert_storm` (PostgreSQL on 127.0.0.1:5432, as the tests
//! use; `ALERT_STORM_STORES=sqlite` for SQLite only).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::bot::Bot;
use support::fake_slack::FakeSlack;
use support::measure::percentile;
use support::pg::TempDb;
use support::storm::{counts, group_notification, storm_timings, wait_inbox_empty};

const TOKEN: &str = "bench-alert-token-0123456789";
const CHANNEL: &str = "C0INCIDENTS";

type Http = Client<HttpConnector, Full<Bytes>>;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let groups = env_or("ALERT_STORM_GROUPS", 500);
    let per_group = env_or("ALERT_STORM_ALERTS", 20);
    let concurrency = env_or("ALERT_STORM_CONCURRENCY", 16);
    let drain = Duration::from_secs(env_or("ALERT_STORM_DRAIN_SECS", 300) as u64);
    let stores = std::env::var("ALERT_STORM_STORES").unwrap_or_else(|_| "sqlite,postgres".into());
    let bodies: Vec<Vec<u8>> = (0..groups)
        .map(|g| group_notification(g, per_group))
        .collect();
    let floor = floor_webhook();
    println!(
        "alert_storm: {groups} groups of {per_group} alerts ({} alerts), {concurrency} clients",
        groups * per_group
    );
    for store in stores.split(',') {
        let db = match store {
            "sqlite" => None,
            "postgres" => Some(TempDb::create().await),
            other => panic!("ALERT_STORM_STORES: {other} is neither sqlite nor postgres"),
        };
        let fake = FakeSlack::start().await;
        let bot = Bot::start_sections(
            &fake,
            db.as_ref().map(|d| d.url.as_str()),
            &[("ODORBOT_ALERTS_TOKEN", TOKEN)],
            &[("log", "  filter: warn\n")],
            &format!(
                "incidents:\n  channel: {CHANNEL}\n  timezone: Europe/London\n\
                 \x20 roster:\n    primary: [U0PRIMARY]\n    secondary: [U0SECOND]\n"
            ),
        )
        .await;
        assert!(
            bot.wait_readyz(200, Duration::from_secs(30)).await,
            "{}",
            bot.logs()
        );
        let floor_figures = post_all(&floor, &bodies, concurrency).await;
        let started = Instant::now();
        let figures = post_all(&bot.url("/alerts"), &bodies, concurrency).await;
        let row = |name: &str, f: &Intake| {
            println!(
                "{store:<8} {name:<8} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  not 200: {:>3}  {:>6.0} alerts/s  in {:.1} s",
                ms(f.p50),
                ms(f.p99),
                ms(f.max),
                f.refused,
                (groups * per_group) as f64 / f.wall.as_secs_f64(),
                f.wall.as_secs_f64()
            );
        };
        row("floor", &floor_figures);
        row("odorbot", &figures);

        // The webhook only stores a notification; the intake loop applies it after.
        let applied = wait_inbox_empty(&bot.store_url, started, drain).await;
        println!(
            "{store:<8} inbox applied {:.1} s after the first notification{}",
            applied.as_secs_f64(),
            if applied >= drain {
                " (notifications still waiting at the bound)"
            } else {
                ""
            }
        );
        let (incidents, alerts) = counts(&bot.store_url).await;
        println!(
            "{store:<8} incidents {incidents} of {groups} groups, alerts recorded {alerts} of {}",
            groups * per_group
        );
        let (last, posts, busiest) = wait_posts_stop(&fake, &bot, started, drain).await;
        println!(
            "{store:<8} posts to Slack: {posts}, the last {:.1} s after the first notification{}; at most {busiest} in one second",
            last.as_secs_f64(),
            if last >= drain {
                " (still posting at the bound)"
            } else {
                ""
            }
        );
        let storm = storm_timings(&fake, started);
        println!(
            "{store:<8} storm summary posted {}; pages per severity: {}",
            storm
                .summary
                .map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64())),
            storm
                .pages
                .iter()
                .map(|(sev, d)| format!(
                    "{sev} {}",
                    d.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let (status, _) = bot.terminate().await;
        assert!(status.success());
        if let Some(db) = db {
            db.drop_db().await;
        }
    }
}

struct Intake {
    p50: Duration,
    p99: Duration,
    max: Duration,
    refused: usize,
    wall: Duration,
}

/// Posts every body to `url` with `concurrency` requests in flight; Alertmanager would
/// retry a refused one, the benchmark counts it.
async fn post_all(url: &str, bodies: &[Vec<u8>], concurrency: usize) -> Intake {
    let client: Http = Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    let mut answers: Vec<(Duration, u16)> = futures_util::stream::iter(bodies)
        .map(|body| {
            let client = client.clone();
            async move {
                let req = axum::http::Request::post(url)
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.clone())))
                    .expect("a request");
                let sent = Instant::now();
                let status = match client.request(req).await {
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let _ = res.into_body().collect().await;
                        status
                    }
                    Err(_) => 0,
                };
                (sent.elapsed(), status)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    answers.sort();
    let took: Vec<Duration> = answers.iter().map(|a| a.0).collect();
    Intake {
        p50: percentile(&took, 0.50),
        p99: percentile(&took, 0.99),
        max: took.last().copied().unwrap_or_default(),
        refused: answers.iter().filter(|a| a.1 != 200).count(),
        wall,
    }
}

/// The floor: a webhook that reads and parses the body and answers 200, nothing more.
fn floor_webhook() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = listener.local_addr().expect("its address");
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("floor runtime");
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/alerts",
                axum::routing::post(|body: Bytes| async move {
                    match serde_json::from_slice::<serde_json::Value>(&body) {
                        Ok(_) => (axum::http::StatusCode::OK, "ok\n"),
                        Err(_) => (axum::http::StatusCode::BAD_REQUEST, "bad\n"),
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("floor serves");
        });
    });
    format!("http://{addr}/alerts")
}

/// Waits until odorbot has nothing left to post (outbox empty, no timer overdue) and
/// nothing was posted for 3 s, or `bound` after `started`. Returns when the last post
/// came, how many there were, and the most in any one second.
async fn wait_posts_stop(
    fake: &FakeSlack,
    bot: &Bot,
    started: Instant,
    bound: Duration,
) -> (Duration, usize, usize) {
    let posts = || {
        let mut at: Vec<Instant> = fake
            .calls()
            .into_iter()
            .filter(|c| {
                matches!(c.method.as_str(), "chat.postMessage" | "chat.update")
                    && c.status == 200
                    && !c.limited
            })
            .map(|c| c.at)
            .collect();
        at.sort();
        at
    };
    loop {
        let at = posts();
        let quiet = at
            .last()
            .is_none_or(|t| t.elapsed() > Duration::from_secs(3));
        let idle = match bot.get("/metrics").await {
            Some((_, scrape)) => {
                gauge(&scrape, "odorbot_outbox_pending") == Some(0.0)
                    && gauge(&scrape, "odorbot_alert_inbox_pending") == Some(0.0)
                    && gauge(&scrape, "odorbot_timers_overdue") == Some(0.0)
            }
            None => false,
        };
        if (quiet && idle) || started.elapsed() >= bound {
            let last = at
                .last()
                .map_or(Duration::ZERO, |t| t.saturating_duration_since(started));
            let busiest = at
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    at[i..]
                        .iter()
                        .take_while(|u| **u - *t < Duration::from_secs(1))
                        .count()
                })
                .max()
                .unwrap_or(0);
            return (last.min(bound), at.len(), busiest);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn gauge(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
