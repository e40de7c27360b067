//! The socket-mode ack path under overload: every envelope is acknowledged, whatever the
//! engine's queue holds, because Slack does not redeliver slash commands or clicks.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::bot::Bot;
use crate::support::fake_slack::{Ack, Delivery, FakeOptions, FakeSlack};

const ENVELOPES: usize = 5000;
/// The engine's smallest settings: one worker and a 16-event queue.
const ENGINE: &str = "  workers: 1\n  queue_capacity: 16\n";
/// What the engine can hold: the queue, the event in the worker, and the one the
/// dispatcher took off the queue while it waits for the worker.
const ENGINE_HOLDS: usize = 16 + 1 + 1;
const WAIT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Command,
    Click,
    Event,
}

fn kind_of(i: usize) -> Kind {
    if i % 100 == 50 {
        Kind::Event
    } else if i % 25 == 24 {
        Kind::Click
    } else {
        Kind::Command
    }
}

fn metric(scrape: &str, line_start: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn response_path(d: &Delivery) -> String {
    let url = d.response_url.as_deref().expect("a response_url");
    format!("/response/{}", url.rsplit('/').next().unwrap())
}

#[tokio::test]
async fn every_one_of_5000_envelopes_is_acknowledged_and_those_beyond_a_full_queue_are_answered_busy()
 {
    // Slack does not redeliver slash commands or clicks; neither does this fake here.
    let fake = FakeSlack::start_with(FakeOptions {
        redeliver_after: None,
        ..FakeOptions::default()
    })
    .await;
    let bot = Bot::start_tuned(&fake, None, &[], ENGINE, "").await;
    assert!(
        fake.wait_connections(2, Duration::from_secs(20)).await,
        "two connections\n{}",
        bot.logs()
    );
    assert!(bot.wait_readyz(200, Duration::from_secs(20)).await);

    // The slow handler path: the one worker is stuck on the first event (failpoint
    // `dispatcher.process` held) and the queue behind it fills and stays full; Slack is
    // stuck too, so the busy notices to clickers wait on it.
    bot.failpoints("dispatcher.process=hold").await;
    fake.hold_responses();
    let mut sent = Vec::with_capacity(ENVELOPES);
    for i in 0..ENVELOPES {
        let d = match kind_of(i) {
            Kind::Command => fake.slash_command("U111", "C111", "help").await,
            Kind::Click => {
                fake.block_action("U111", "C111", "not-a-button", "v", "1700000000.000100")
                    .await
            }
            Kind::Event => {
                fake.send_envelope(json!({
                    "type": "events_api",
                    "accepts_response_payload": false,
                    "retry_attempt": 0,
                    "retry_reason": "",
                    "payload": {"type": "event_callback", "team_id": "T111", "api_app_id": "A111",
                        "event": {"type": "app_mention", "user": "U111", "text": "<@U0BOT> hi",
                                  "ts": "1700000000.000200", "channel": "C111"}},
                }))
                .await
            }
        };
        sent.push((kind_of(i), d));
    }
    let all_acked = fake.wait_until(WAIT, |f| f.unacked().is_empty()).await;
    let unacked = fake.unacked();
    assert!(
        all_acked,
        "{} of {ENVELOPES} envelopes never acknowledged\n{}",
        unacked.len(),
        bot.logs()
    );
    let acks = fake.acks();
    assert_eq!(acks.len(), ENVELOPES, "each envelope acknowledged once");
    let ack_of: HashMap<&str, &Ack> = acks.iter().map(|a| (a.envelope_id.as_str(), a)).collect();

    let mut busy_commands = Vec::new();
    let mut taken_commands = Vec::new();
    for (kind, d) in &sent {
        match (kind, &ack_of[d.envelope_id.as_str()].payload) {
            (Kind::Command, Some(payload)) => {
                assert_eq!(payload["response_type"], "ephemeral", "{payload}");
                let text = payload["text"].as_str().unwrap_or_default();
                assert!(
                    text.contains("odorbot is busy")
                        && text.contains("did nothing")
                        && text.contains("`/odor help`")
                        && text.contains("try it again in a moment"),
                    "{text}"
                );
                busy_commands.push(d);
            }
            (Kind::Command, None) => taken_commands.push(d),
            (_, Some(payload)) => panic!("{kind:?} acked with a payload: {payload}"),
            (_, None) => {}
        }
    }
    let commands = sent.iter().filter(|(k, _)| *k == Kind::Command).count();
    let clicks: Vec<&Delivery> = sent
        .iter()
        .filter(|(k, _)| *k == Kind::Click)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(busy_commands.len() + taken_commands.len(), commands);

    // The worker and Slack go on: the taken commands get their replies and every click
    // its answer — the busy notice, or, for a click the engine took (the two connections
    // are read concurrently, so an early click can find room), the engine's own reply.
    bot.failpoints("dispatcher.process=off").await;
    fake.release_responses();
    let replied = |f: &FakeSlack, path: &str| {
        f.calls_to("response_url")
            .into_iter()
            .filter(|c| c.path == path && c.status == 200)
            .collect::<Vec<_>>()
    };
    let done = fake
        .wait_until(WAIT, |f| {
            taken_commands
                .iter()
                .chain(clicks.iter())
                .all(|d| !replied(f, &response_path(d)).is_empty())
        })
        .await;
    assert!(
        done,
        "replies and busy notices not all sent\n{}",
        bot.logs()
    );
    let text_of = |c: &crate::support::fake_slack::Call| {
        c.body["text"].as_str().unwrap_or_default().to_owned()
    };
    let (mut busy_clicks, mut taken_clicks) = (0, 0);
    for d in &clicks {
        let texts: Vec<String> = replied(&fake, &response_path(d))
            .iter()
            .map(text_of)
            .collect();
        if texts[0].contains("odorbot is busy") {
            busy_clicks += 1;
            // Told busy, and nothing else: the engine never saw it.
            for text in &texts {
                assert!(text.contains("that click did nothing"), "{texts:?}");
            }
        } else {
            taken_clicks += 1;
            assert!(
                texts
                    .iter()
                    .all(|t| t.contains("does not recognise the button")),
                "{texts:?}"
            );
        }
    }
    for d in &taken_commands {
        let text = text_of(&replied(&fake, &response_path(d))[0]);
        assert!(
            !text.contains("busy"),
            "a taken command answered busy: {text}"
        );
    }
    println!(
        "{ENVELOPES} envelopes, all acknowledged once: {} commands taken, {} answered busy in \
         the ack; {taken_clicks} clicks taken, {busy_clicks} told busy; {} events acked",
        taken_commands.len(),
        busy_commands.len(),
        sent.iter().filter(|(k, _)| *k == Kind::Event).count(),
    );
    let taken = taken_commands.len() + taken_clicks;
    assert!(
        (1..=ENGINE_HOLDS).contains(&taken),
        "the engine took {taken} events; it holds at most {ENGINE_HOLDS}"
    );
    assert!(busy_clicks > 0 && busy_commands.len() > ENVELOPES / 2);

    // The busy ones did nothing: the engine processed exactly the taken commands, and no
    // busy command got a reply besides its ack.
    let (_, scrape) = bot.get("/metrics").await.unwrap();
    assert_eq!(
        metric(&scrape, "odorbot_commands_total{"),
        taken_commands.len() as f64,
        "{scrape}"
    );
    let busy_paths: HashSet<String> = busy_commands.iter().map(|d| response_path(d)).collect();
    let stray: Vec<Value> = fake
        .calls_to("response_url")
        .into_iter()
        .filter(|c| busy_paths.contains(&c.path))
        .map(|c| c.body)
        .collect();
    assert!(stray.is_empty(), "busy commands got replies: {stray:?}");
    let others = fake.side_effects();
    assert!(others.is_empty(), "Web API calls: {others:?}");

    // And the busy answers are counted.
    let events = sent.iter().filter(|(k, _)| *k == Kind::Event).count();
    for (line, want) in [
        (
            "odorbot_envelopes_busy_total{type=\"slash_commands\"}",
            busy_commands.len(),
        ),
        (
            "odorbot_envelopes_busy_total{type=\"interactive\"}",
            busy_clicks,
        ),
        (
            "odorbot_envelopes_acked_total{type=\"slash_commands\"}",
            commands,
        ),
        (
            "odorbot_envelopes_acked_total{type=\"interactive\"}",
            clicks.len(),
        ),
        ("odorbot_envelopes_received_total{type=\"ignored\"}", events),
        ("odorbot_envelopes_unacked_total{", 0),
    ] {
        assert_eq!(metric(&scrape, line), want as f64, "{line}\n{scrape}");
    }
}
