//! The real odorbot binary against the fake Slack: socket mode, acks, replies through
//! the Web API, redelivery, reconnects, readiness, metrics and shutdown.

use std::time::Duration;

use serde_json::Value;

use crate::support::bot::Bot;
use crate::support::fake_slack::{Call, Delivery, FakeSlack};

const WAIT: Duration = Duration::from_secs(15);

/// A bot with both of its socket connections open.
async fn running() -> (FakeSlack, Bot) {
    let fake = FakeSlack::start().await;
    let bot = Bot::start(&fake).await;
    assert!(
        fake.wait_connections(2, WAIT).await,
        "two connections open\n{}",
        bot.logs()
    );
    assert!(bot.wait_readyz(200, WAIT).await, "ready\n{}", bot.logs());
    (fake, bot)
}

/// Every reply sent to this delivery's `response_url`.
fn replies_to(fake: &FakeSlack, d: &Delivery) -> Vec<Call> {
    let url = d
        .response_url
        .as_deref()
        .expect("slash commands carry a response_url");
    let path = url
        .split_once("/response/")
        .map(|(_, n)| format!("/response/{n}"))
        .unwrap();
    fake.calls_to("response_url")
        .into_iter()
        .filter(|c| c.path == path)
        .collect()
}

async fn reply_to(fake: &FakeSlack, d: &Delivery) -> Value {
    let found = fake
        .wait_until(WAIT, |f| !replies_to(f, d).is_empty())
        .await;
    assert!(found, "no reply to {}", d.envelope_id);
    replies_to(fake, d).remove(0).body
}

fn all_text(body: &Value) -> String {
    // The fallback text plus every text field in the blocks: what a person would read.
    let mut out = body["text"].as_str().unwrap_or_default().to_owned();
    collect_text(&body["blocks"], &mut out);
    out
}

fn collect_text(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("text", Value::String(s)) => {
                        out.push('\n');
                        out.push_str(s);
                    }
                    _ => collect_text(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, out)),
        _ => {}
    }
}

#[tokio::test]
async fn help_is_acknowledged_and_answered_through_the_web_api() {
    let (fake, bot) = running().await;
    let d = fake.slash_command("U111", "C111", "help").await;
    let ack = fake.wait_ack(&d, WAIT).await.expect("help is acknowledged");
    assert!(
        ack.payload.is_none(),
        "the ack carries no reply: {:?}",
        ack.payload
    );
    let reply = reply_to(&fake, &d).await;
    let text = all_text(&reply);
    assert!(
        text.contains("odorbot runs the OdorDiff-2 runbook"),
        "{text}"
    );
    assert!(text.contains("/odor status"), "{text}");
    assert!(text.contains("/odor help [&lt;command&gt;…]"), "{text}");
    assert_eq!(reply["replace_original"], Value::Bool(false));

    let d = fake.slash_command("U111", "C111", "help status").await;
    let text = all_text(&reply_to(&fake, &d).await);
    assert!(
        text.contains("Slack connections, store, open approvals and incidents"),
        "{text}"
    );

    let d = fake.slash_command("U111", "C111", "status").await;
    let text = all_text(&reply_to(&fake, &d).await);
    assert!(text.contains("odorbot is healthy"), "{text}");
    assert!(text.contains("2 of 2 socket connections open"), "{text}");
    assert!(text.contains("sqlite reachable"), "{text}");
    assert!(fake.side_effects().is_empty(), "{:?}", fake.side_effects());
    drop(bot);
}

#[tokio::test]
async fn unknown_and_malformed_commands_get_specific_replies_and_change_nothing() {
    let (fake, _bot) = running().await;
    let cases = [
        ("bogus", "`bogus` is not an odorbot command"),
        ("stauts", "Did you mean `status`?"),
        (
            "help rollbak-now",
            "`rollbak-now` is not an odorbot command",
        ),
        (
            "status --verbose",
            "`status` has no option `--verbose`; it accepts none",
        ),
        ("status now", "`status` takes no further argument `now`"),
        (
            "help \"unclosed",
            "a quote opened at character 6 is never closed",
        ),
        (
            "<!channel> please",
            "`&lt;!channel&gt;` is not an odorbot command",
        ),
    ];
    let mut sent = Vec::new();
    for (text, _) in &cases {
        sent.push(fake.slash_command("U111", "C111", text).await);
    }
    for ((input, want), d) in cases.iter().zip(&sent) {
        let text = all_text(&reply_to(&fake, d).await);
        assert!(text.contains(want), "{input:?}: want {want:?} in {text}");
        assert!(
            !text.contains("<!channel>"),
            "{input:?}: mention echoed raw: {text}"
        );
    }
    assert!(fake.side_effects().is_empty(), "{:?}", fake.side_effects());
}

#[tokio::test]
async fn the_same_envelope_delivered_twice_is_answered_once() {
    let (fake, bot) = running().await;
    let d = fake.slash_command("U111", "C111", "help").await;
    fake.wait_ack(&d, WAIT).await.expect("first delivery acked");
    reply_to(&fake, &d).await;
    fake.resend(&d).await;
    assert!(
        fake.wait_until(WAIT, |f| f.ack_count(&d.envelope_id) >= 2)
            .await,
        "redelivery acked"
    );
    // Give a wrongly-doubled reply time to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(replies_to(&fake, &d).len(), 1);
    let (_, metrics) = bot.get("/metrics").await.unwrap();
    assert!(
        metrics.contains("odorbot_inbound_duplicates_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn reconnects_after_refresh_and_drops_without_losing_or_doubling_envelopes() {
    let (fake, bot) = running().await;
    let opened_before = fake.connections_opened();
    let mut sent = Vec::new();
    fake.disconnect("refresh_requested").await;
    for i in 0..20 {
        sent.push(
            fake.slash_command("U111", "C111", if i % 2 == 0 { "help" } else { "status" })
                .await,
        );
    }
    assert!(
        fake.wait_until(WAIT, |f| f.connections_opened() > opened_before)
            .await,
        "replacement opened"
    );
    assert!(
        fake.wait_connections(2, WAIT).await,
        "back to two connections"
    );

    fake.drop_connections().await;
    for _ in 0..20 {
        sent.push(fake.slash_command("U111", "C111", "help").await);
    }
    assert!(
        fake.wait_connections(2, WAIT).await,
        "reconnected after the drop\n{}",
        bot.logs()
    );

    for d in &sent {
        assert!(
            fake.wait_ack(d, WAIT).await.is_some(),
            "{} never acked\n{}",
            d.envelope_id,
            bot.logs()
        );
        reply_to(&fake, d).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for d in &sent {
        assert_eq!(
            replies_to(&fake, d).len(),
            1,
            "{} answered more than once",
            d.envelope_id
        );
    }
    assert!(fake.unacked().is_empty(), "unacked: {:?}", fake.unacked());
}

#[tokio::test]
async fn readyz_follows_slack_going_away_and_coming_back() {
    let (fake, bot) = running().await;
    assert_eq!(bot.get("/healthz").await.unwrap().0, 200);
    fake.stop().await;
    assert!(bot.wait_readyz(503, WAIT).await, "unready without Slack");
    let (_, body) = bot.get("/readyz").await.unwrap();
    assert!(
        body.contains("slack: no socket-mode connection open"),
        "{body}"
    );
    assert_eq!(bot.get("/healthz").await.unwrap().0, 200, "still alive");
    fake.restart().await;
    assert!(
        bot.wait_readyz(200, WAIT).await,
        "ready again\n{}",
        bot.logs()
    );
    let d = fake.slash_command("U111", "C111", "status").await;
    reply_to(&fake, &d).await;
}

#[tokio::test]
async fn metrics_count_envelopes_commands_and_api_calls() {
    let (fake, bot) = running().await;
    let ok = fake.slash_command("U111", "C111", "help").await;
    let bad = fake.slash_command("U111", "C111", "bogus").await;
    reply_to(&fake, &ok).await;
    reply_to(&fake, &bad).await;
    // The bot counts a reply once Slack has answered it, a moment after the fake saw it, and
    // a connection once its hello is read, a moment after the fake opened it.
    let want_last = [
        "odorbot_slack_api_calls_total{method=\"response_url\",status=\"ok\"} 2",
        "odorbot_slack_connections 2",
    ];
    let mut scrape = bot.get("/metrics").await.unwrap();
    for _ in 0..50 {
        if want_last.iter().all(|w| scrape.1.contains(w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        scrape = bot.get("/metrics").await.unwrap();
    }
    let (status, body) = scrape;
    assert_eq!(status, 200);
    for want in [
        "odorbot_envelopes_received_total{type=\"slash_commands\"} 2",
        "odorbot_envelopes_acked_total{type=\"slash_commands\"} 2",
        "odorbot_envelope_ack_latency_seconds_count 2",
        "odorbot_commands_total{verb=\"help\",outcome=\"ok\"} 1",
        "odorbot_commands_total{verb=\"unknown\",outcome=\"rejected\"} 1",
        "odorbot_slack_api_calls_total{method=\"auth.test\",status=\"ok\"} 1",
        "odorbot_slack_api_calls_total{method=\"response_url\",status=\"ok\"} 2",
        "odorbot_slack_connections 2",
    ] {
        assert!(body.contains(want), "missing {want}\n{body}");
    }
}

#[tokio::test]
async fn replies_survive_rate_limits_and_server_errors() {
    let (fake, bot) = running().await;
    fake.rate_limit_next("response_url", 1, 1);
    fake.fail_next("response_url", 2, 503);
    let d = fake.slash_command("U111", "C111", "help").await;
    let found = fake
        .wait_until(WAIT, |f| replies_to(f, &d).iter().any(|c| c.status == 200))
        .await;
    assert!(found, "reply delivered after 429 and 503s\n{}", bot.logs());
    let statuses: Vec<u16> = replies_to(&fake, &d).iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 503, 503, 200]);
}

#[tokio::test]
async fn sigterm_stops_cleanly_with_exit_zero() {
    let (fake, bot) = running().await;
    let d = fake.slash_command("U111", "C111", "help").await;
    reply_to(&fake, &d).await;
    let (status, logs) = bot.terminate().await;
    assert!(status.success(), "{status}\n{logs}");
    assert!(logs.contains("stopped"), "{logs}");
    assert!(
        !logs.contains(crate::support::fake_slack::BOT_TOKEN),
        "a token reached the logs"
    );
    assert!(
        !logs.contains(crate::support::fake_slack::APP_TOKEN),
        "a token reached the logs"
    );
}
