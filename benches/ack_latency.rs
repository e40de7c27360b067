//! Envelope → ack latency of the real binary: 2000 slash-command envelopes at 1000/s from
//! the fake Slack, over two socket-mode connections. Prints percentiles and lost envelopes.
//!
//! Run with `cargo bench --bench ack_latency`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::bot::Bot;
use support::fake_slack::{FakeOptions, FakeSlack};

const ENVELOPES: usize = 2000;
const RATE_PER_SEC: u64 = 1000;

#[tokio::main]
async fn main() {
    // No redelivery: an envelope the bot fails to ack must show up as lost.
    let fake = FakeSlack::start_with(FakeOptions {
        redeliver_after: None,
        ..FakeOptions::default()
    })
    .await;
    let bot = Bot::start(&fake).await;
    assert!(
        fake.wait_connections(2, Duration::from_secs(20)).await,
        "bot connected"
    );
    assert!(
        bot.wait_readyz(200, Duration::from_secs(20)).await,
        "bot ready"
    );

    // Warm up: first connections, first store writes.
    for _ in 0..50 {
        let d = fake.slash_command("U111", "C111", "help").await;
        fake.wait_ack(&d, Duration::from_secs(5)).await;
    }

    let mut ids = Vec::with_capacity(ENVELOPES);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_SEC));
    let started = Instant::now();
    for i in 0..ENVELOPES {
        tick.tick().await;
        let text = if i % 2 == 0 { "help" } else { "status" };
        ids.push(fake.slash_command("U111", "C111", text).await.envelope_id);
    }
    let sent_in = started.elapsed();
    fake.wait_until(Duration::from_secs(10), |f| {
        ids.iter().all(|id| f.ack_count(id) > 0)
    })
    .await;

    let acks = fake.acks();
    let mut latencies: Vec<Duration> = ids
        .iter()
        .filter_map(|id| {
            acks.iter()
                .find(|a| &a.envelope_id == id)
                .map(|a| a.latency)
        })
        .collect();
    let lost = ENVELOPES - latencies.len();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "ack_latency: {ENVELOPES} envelopes sent in {:.2}s ({:.0}/s)",
        sent_in.as_secs_f64(),
        ENVELOPES as f64 / sent_in.as_secs_f64()
    );
    println!(
        "ack_latency: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms, lost {lost}",
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    if let Some((_, metrics)) = bot.get("/metrics").await {
        let value = |name: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let (sum, count) = (
            value("odorbot_envelope_ack_latency_seconds_sum"),
            value("odorbot_envelope_ack_latency_seconds_count"),
        );
        if count > 0.0 {
            println!(
                "ack_latency: inside odorbot (frame read → ack written) mean {:.3} ms over {count} envelopes",
                sum / count * 1000.0
            );
        }
    }
    let (status, _) = bot.terminate().await;
    assert!(status.success());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
