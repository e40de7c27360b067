//! The Web API client against the fake Slack: posts, pacing per channel, and must-send
//! messages surviving rate limits and server errors.

use std::time::Duration;

use odorbot::config::{Config, env_from};
use odorbot::domain::view::Message;
use odorbot::metrics::Metrics;
use odorbot::slack::api::{ApiError, SlackApi};

use crate::support::fake_slack::{APP_TOKEN, BOT_TOKEN, FakeSlack};

fn api(fake: &FakeSlack, bot_token: &str) -> SlackApi {
    let url = format!("{}/", fake.api_url());
    let env = env_from(&[
        ("SLACK_APP_TOKEN", APP_TOKEN),
        ("SLACK_BOT_TOKEN", bot_token),
        ("SLACK_API_URL", &url),
    ]);
    let config = Config::load(None, &env).unwrap();
    SlackApi::new(&config.slack, Metrics::new()).unwrap()
}

#[tokio::test]
async fn messages_are_posted_with_text_and_blocks() {
    let fake = FakeSlack::start().await;
    let api = api(&fake, BOT_TOKEN);
    let channel = "C111".parse().unwrap();
    let ts = api
        .post_message(&channel, None, &Message::text("*hello* `world`"))
        .await
        .unwrap();
    let reply = api
        .post_message(&channel, Some(&ts), &Message::text("in thread"))
        .await
        .unwrap();
    assert_ne!(ts, reply);
    let calls = fake.calls_to("chat.postMessage");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].token.as_deref(), Some(BOT_TOKEN));
    assert_eq!(calls[0].body["channel"], "C111");
    assert_eq!(calls[0].body["text"], "hello world");
    assert_eq!(
        calls[0].body["blocks"][0]["text"]["text"],
        "*hello* `world`"
    );
    assert_eq!(calls[1].body["thread_ts"], ts.as_str());
}

#[tokio::test]
async fn a_must_send_message_survives_429_and_5xx() {
    let fake = FakeSlack::start().await;
    let api = api(&fake, BOT_TOKEN);
    fake.rate_limit_next("chat.postMessage", 1, 1);
    fake.fail_next("chat.postMessage", 2, 502);
    let channel = "C111".parse().unwrap();
    api.post_message(&channel, None, &Message::text("escalation"))
        .await
        .unwrap();
    let statuses: Vec<u16> = fake
        .calls_to("chat.postMessage")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [429, 502, 502, 200]);
    // Retry-After was honoured: the retry came no sooner than a second after the 429.
    let calls = fake.calls_to("chat.postMessage");
    assert!(calls[1].at.duration_since(calls[0].at) >= Duration::from_millis(950));
}

#[tokio::test]
async fn posts_to_one_channel_are_paced_after_a_short_burst() {
    let fake = FakeSlack::start().await;
    let api = api(&fake, BOT_TOKEN);
    let busy = "C111".parse().unwrap();
    let other = "C222".parse().unwrap();
    for i in 0..5 {
        api.post_message(&busy, None, &Message::text(format!("update {i}")))
            .await
            .unwrap();
    }
    api.post_message(&other, None, &Message::text("elsewhere"))
        .await
        .unwrap();
    let calls = fake.calls_to("chat.postMessage");
    let first = calls[0].at;
    // Burst of 3, then one a second: the 4th and 5th wait about 1 s and 2 s.
    assert!(calls[3].at.duration_since(first) >= Duration::from_millis(900));
    assert!(calls[4].at.duration_since(first) >= Duration::from_millis(1900));
    // Another channel is not held up by the busy one.
    assert!(calls[5].at.duration_since(calls[4].at) < Duration::from_millis(500));
}

#[tokio::test]
async fn a_refused_token_fails_fast_without_leaking_it() {
    let fake = FakeSlack::start().await;
    let api = api(&fake, "xoxb-revoked-token-value");
    let err = api.auth_test(Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, ApiError::Refused { .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("invalid_auth"), "{text}");
    assert!(!text.contains("xoxb-revoked-token-value"), "{text}");
    assert_eq!(
        fake.calls_to("auth.test").len(),
        1,
        "permanent errors are not retried"
    );
}
