//! Socket-mode ack latency: odorbot's real binary against a minimal raw acker (a few lines
//! on tokio-tungstenite with `TCP_NODELAY`), each on its own fake Slack speaking the
//! socket-mode wire format (hello, envelopes with `envelope_id`, `{"envelope_id":…}` acks),
//! interleaved round by round so both see the same machine at the same time.
//!
//! Per round and app: 2000 slash commands at 1000/s (p50, p99), 5000 at 2000/s and one
//! burst of 5000 (p99, how many were never acknowledged, how many odorbot answered busy).
//! The raw acker's figures are the floor this harness can resolve; the difference is the
//! figure to compare, since absolute times drift from run to run.
//!
//! Run with `cargo bench --bench socket_ack`. `SOCKET_ACK_ROUNDS` (default 3) sets the
//! rounds; `SOCKET_ACK_REPLIES=slow` makes odorbot's `response_url` answer after 1 s, as
//! a slow Slack would, and `SOCKET_ACK_REPLIES=failing` answers it 500 every time (the
//! replies wait in the store). odorbot's resident memory is read from `/proc`: idle after
//! start, and its peak over the whole run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::bot::Bot;
use support::fake_slack::{FakeOptions, FakeSlack};
use support::measure::percentile;
use tokio_tungstenite::tungstenite::Message;

/// How long after the last envelope of a pattern an ack still counts (Slack allows 3 s).
const ACK_WAIT: Duration = Duration::from_secs(5);
/// Socket connections per app, as odorbot keeps by default.
const CONNECTIONS: usize = 2;

#[derive(Clone, Copy)]
enum Pattern {
    /// `n` envelopes at `rate` per second.
    Paced { n: usize, rate: u64 },
    /// `n` envelopes as fast as the fake can send them.
    Burst { n: usize },
}

#[derive(Default, Clone, Copy)]
struct Figures {
    p50: Duration,
    p99: Duration,
    not_acked: usize,
    busy: usize,
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("SOCKET_ACK_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let replies = std::env::var("SOCKET_ACK_REPLIES").unwrap_or_else(|_| "fast".into());
    let slow = match replies.as_str() {
        "fast" | "failing" => false,
        "slow" => true,
        other => panic!("SOCKET_ACK_REPLIES={other}: fast, slow or failing"),
    };
    let options = FakeOptions {
        // Slack does not redeliver slash commands: one never acked is lost.
        redeliver_after: None,
        ..FakeOptions::default()
    };
    let raw_fake = FakeSlack::start_with(options.clone()).await;
    let bot_fake = FakeSlack::start_with(FakeOptions {
        response_delay: slow.then_some(Duration::from_secs(1)),
        ..options
    })
    .await;
    let urls: Vec<String> = (0..CONNECTIONS).map(|_| raw_fake.socket_url()).collect();
    // Its own thread and runtime, as if it were its own process like odorbot.
    std::thread::spawn(move || raw_acker(urls));
    if replies == "failing" {
        bot_fake.fail_always("response_url", 500);
    }
    // Logged as in production: the tests' debug lines would be measured too.
    let bot = Bot::start_sections(&bot_fake, None, &[], &[("log", "  filter: info\n")], "").await;
    assert!(
        raw_fake
            .wait_connections(CONNECTIONS, Duration::from_secs(20))
            .await,
        "raw acker connected"
    );
    assert!(
        bot_fake
            .wait_connections(CONNECTIONS, Duration::from_secs(20))
            .await,
        "odorbot connected\n{}",
        bot.logs()
    );
    assert!(bot.wait_readyz(200, Duration::from_secs(20)).await);
    let pid = bot.pid().expect("odorbot runs");
    // Idle: connected, ready, nothing asked yet.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = memory_kb(pid, "VmRSS");
    for fake in [&raw_fake, &bot_fake] {
        // Warm up: connections, the store's first writes, the allocator.
        run(fake, Pattern::Paced { n: 200, rate: 1000 }).await;
        drain(fake, replies == "failing").await;
    }

    let patterns = [
        Pattern::Paced {
            n: 2000,
            rate: 1000,
        },
        Pattern::Paced {
            n: 5000,
            rate: 2000,
        },
        Pattern::Burst { n: 5000 },
    ];
    let mut results: HashMap<(&str, usize), Vec<Figures>> = HashMap::new();
    for round in 0..rounds {
        for (p, pattern) in patterns.iter().enumerate() {
            // Alternate which goes first, so neither always runs on a warmer machine.
            let order = if (round + p) % 2 == 0 {
                [("raw", &raw_fake), ("odorbot", &bot_fake)]
            } else {
                [("odorbot", &bot_fake), ("raw", &raw_fake)]
            };
            for (app, fake) in order {
                let f = run(fake, *pattern).await;
                println!(
                    "round {} {:<8} {:<16} p50 {:>7.3} ms  p99 {:>7.3} ms  not acked {:>5}  busy {:>5}",
                    round + 1,
                    app,
                    label(*pattern),
                    ms(f.p50),
                    ms(f.p99),
                    f.not_acked,
                    f.busy
                );
                results.entry((app, p)).or_default().push(f);
                drain(fake, replies == "failing").await;
            }
        }
    }

    println!();
    println!(
        "socket_ack: medians of {rounds} interleaved rounds{}",
        match replies.as_str() {
            "slow" => " (odorbot's response_url answers after 1 s)",
            "failing" => " (odorbot's response_url answers 500)",
            _ => "",
        }
    );
    println!(
        "| app | 1000/s p50 | 1000/s p99 | 5000 at 2000/s: p99, not acked (busy) | burst of 5000: p99, not acked (busy) |"
    );
    println!("|---|---|---|---|---|");
    for app in ["odorbot", "raw"] {
        let m = |p: usize| median(&results[&(app, p)]);
        let (a, b, c) = (m(0), m(1), m(2));
        println!(
            "| {app} | {:.2} ms | {:.2} ms | {:.2} ms, {} ({}) | {:.2} ms, {} ({}) |",
            ms(a.p50),
            ms(a.p99),
            ms(b.p99),
            b.not_acked,
            b.busy,
            ms(c.p99),
            c.not_acked,
            c.busy
        );
    }
    // The log is coloured: the field's name and value are separated by escape codes.
    let logs = bot.logs();
    let opened: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("socket-mode WebSocket open"))
        .collect();
    let nodelay = !opened.is_empty()
        && opened
            .iter()
            .all(|l| l.contains("nodelay") && l.contains("Some(true)"));
    println!(
        "odorbot's {} socket-mode TCP streams have TCP_NODELAY set: {nodelay}",
        opened.len()
    );
    println!(
        "odorbot's resident memory: idle {:.1} MB, peak over the run {:.1} MB",
        mb(idle_rss),
        mb(memory_kb(pid, "VmHWM"))
    );
    if let Some((_, scrape)) = bot.get("/metrics").await {
        println!(
            "inside odorbot (frame read → ack written), all rounds: p50 ≤ {}, p99 ≤ {}, p99.9 ≤ {}, max ≤ {} (histogram bucket bounds)",
            bucket_quantile(&scrape, 0.50),
            bucket_quantile(&scrape, 0.99),
            bucket_quantile(&scrape, 0.999),
            bucket_quantile(&scrape, 1.0)
        );
    }
    let (status, _) = bot.terminate().await;
    assert!(status.success());
}

/// Sends one pattern of `/odor help` commands and measures their acks.
async fn run(fake: &FakeSlack, pattern: Pattern) -> Figures {
    let n = match pattern {
        Pattern::Paced { n, .. } | Pattern::Burst { n } => n,
    };
    let mut ids = Vec::with_capacity(n);
    match pattern {
        Pattern::Paced { rate, .. } => {
            let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
            for _ in 0..n {
                tick.tick().await;
                ids.push(fake.slash_command("U111", "C111", "help").await.envelope_id);
            }
        }
        Pattern::Burst { .. } => {
            for _ in 0..n {
                ids.push(fake.slash_command("U111", "C111", "help").await.envelope_id);
            }
        }
    }
    // Polled rather than woken on every ack, so the check does not compete with the
    // connections it measures.
    let until = Instant::now() + ACK_WAIT;
    while Instant::now() < until && !ids.iter().all(|id| fake.ack_count(id) > 0) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let acks = fake.acks();
    let first: HashMap<&str, _> = acks
        .iter()
        .rev()
        .map(|a| (a.envelope_id.as_str(), a))
        .collect();
    let mut latencies = Vec::with_capacity(n);
    let mut busy = 0;
    for id in &ids {
        if let Some(a) = first.get(id.as_str()) {
            latencies.push(a.latency);
            busy += usize::from(a.payload.is_some());
        }
    }
    latencies.sort();
    Figures {
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        not_acked: n - latencies.len(),
        busy,
    }
}

/// A `/proc/<pid>/status` figure in kB (`VmRSS` now, `VmHWM` the peak).
fn memory_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc readable");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Waits (at most 60 s) until every command odorbot took has been answered, so the next
/// pattern starts with an empty queue. The raw acker never replies, and failing replies
/// are never answered: nothing to wait for (a second for the workers to finish then).
async fn drain(fake: &FakeSlack, replies_fail: bool) {
    if fake.calls_to("auth.test").is_empty() {
        return;
    }
    if replies_fail {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    }
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let taken = fake.acks().iter().filter(|a| a.payload.is_none()).count();
        if fake.calls_to("response_url").len() >= taken {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The raw acker: each connection acknowledges every envelope the moment it is read.
fn raw_acker(urls: Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("raw acker runtime");
    rt.block_on(async move {
        let conns = urls.into_iter().map(|url| async move {
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
                .await
                .expect("raw acker connects");
            let (mut tx, mut rx) = ws.split();
            while let Some(Ok(msg)) = rx.next().await {
                let Message::Text(text) = msg else { continue };
                let frame: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                if let Some(id) = frame.get("envelope_id").and_then(Value::as_str) {
                    let ack = json!({ "envelope_id": id }).to_string();
                    if tx.send(Message::Text(ack.into())).await.is_err() {
                        return;
                    }
                }
            }
        });
        futures_util::future::join_all(conns).await;
    });
}

/// The upper bound of the `odorbot_envelope_ack_latency_seconds` bucket holding quantile `q`.
fn bucket_quantile(scrape: &str, q: f64) -> String {
    let buckets: Vec<(String, f64)> = scrape
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("odorbot_envelope_ack_latency_seconds_bucket{le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            Some((le.to_owned(), count.parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets.iter().find(|(_, n)| *n >= total * q).map_or_else(
        || "n/a".to_owned(),
        |(le, _)| match le.parse::<f64>() {
            Ok(secs) => format!("{:.3} ms", secs * 1000.0),
            Err(_) => le.clone(),
        },
    )
}

fn median(figures: &[Figures]) -> Figures {
    let mid = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mid_n = |mut v: Vec<usize>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    Figures {
        p50: mid(figures.iter().map(|f| f.p50).collect()),
        p99: mid(figures.iter().map(|f| f.p99).collect()),
        not_acked: mid_n(figures.iter().map(|f| f.not_acked).collect()),
        busy: mid_n(figures.iter().map(|f| f.busy).collect()),
    }
}

fn label(pattern: Pattern) -> String {
    match pattern {
        Pattern::Paced { n, rate } => format!("{n} at {rate}/s"),
        Pattern::Burst { n } => format!("burst of {n}"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
