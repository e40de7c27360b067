//! The Web API client against the fake Slack: posts, pacing per channel, and must-send
//! messages surviving rate limits and server errors; the fake's history and message
//! metadata held to the SDK payload fixtures, and odorbot finding its tagged messages.

use std::time::Duration;

use odorbot::config::{Config, env_from};
use odorbot::domain::ids::ChannelId;
use odorbot::domain::outbox::Priority;
use odorbot::domain::view::Message;
use odorbot::metrics::Metrics;
use odorbot::slack::api::{ApiError, SlackApi};
use serde_json::{Value, json};

use crate::support::fake_slack::{APP_TOKEN, BOT_TOKEN, FakeSlack};
use crate::support::http;

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

/// java-slack-sdk's shape samples (tests/fixtures/slack/README.md): every field its model
/// knows for the answer, with masked values.
const HISTORY_SAMPLE: &str =
    include_str!("../fixtures/slack/web-api/conversations.history-java-sdk.json");
const REPLIES_SAMPLE: &str =
    include_str!("../fixtures/slack/web-api/conversations.replies-java-sdk.json");
/// The `chat.postMessage` body python-slack-sdk's metadata test sends to Slack.
const METADATA_POST: &str =
    include_str!("../fixtures/slack/web-api/chat.postMessage-request-metadata-python-sdk.json");
const CHANNEL: &str = "C111";

/// A java-slack-sdk sample as its mock server serves it: the first `"ok": false,` flipped.
fn java_sample(text: &str) -> Value {
    serde_json::from_str(&text.replacen("\"ok\": false,", "\"ok\": true,", 1)).unwrap()
}

/// The python-slack-sdk fixture's metadata: a number and an array in its payload.
fn sdk_metadata() -> Value {
    let request: Value = serde_json::from_str(METADATA_POST).unwrap();
    request["metadata"].clone()
}

async fn send(fake: &FakeSlack, method: &str, content_type: &str, body: Vec<u8>) -> Value {
    let auth = format!("Bearer {BOT_TOKEN}");
    let headers = [("content-type", content_type), ("authorization", &auth)];
    let url = format!("{}/{method}", fake.api_url());
    let (status, text) = http::post(&url, &headers, body)
        .await
        .expect("the fake answers");
    assert_eq!(status, 200, "{method}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Calls a read method form-encoded, as Slack documents; the values need no escaping.
async fn read(fake: &FakeSlack, method: &str, args: &[(&str, &str)]) -> Value {
    let form: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let content_type = "application/x-www-form-urlencoded";
    let answer = send(fake, method, content_type, form.join("&").into_bytes()).await;
    assert_eq!(answer["ok"], true, "{method}: {answer}");
    answer
}

/// Posts `text` to [`CHANNEL`] with a JSON body, as the SDKs do; its `ts`.
async fn post(
    fake: &FakeSlack,
    text: &str,
    thread: Option<&str>,
    metadata: Option<&Value>,
) -> String {
    let mut body = json!({"channel": CHANNEL, "text": text});
    if let Some(thread) = thread {
        body["thread_ts"] = json!(thread);
    }
    if let Some(metadata) = metadata {
        body["metadata"] = metadata.clone();
    }
    let answer = send(
        fake,
        "chat.postMessage",
        "application/json",
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    answer["ts"].as_str().unwrap().to_owned()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every field of `ours` is in `sample` with the same JSON type, objects field by field
/// (arrays, and the free-form `event_payload`, by type only).
fn same_shape(ours: &Value, sample: &Value, path: &str) {
    assert_eq!(kind(ours), kind(sample), "{path}: {ours} against {sample}");
    if path.ends_with(".event_payload") {
        return;
    }
    if let (Value::Object(ours), Value::Object(sample)) = (ours, sample) {
        for (k, v) in ours {
            let path = format!("{path}.{k}");
            let Some(s) = sample.get(k) else {
                panic!("{path} is not in the SDK sample");
            };
            same_shape(v, s, &path);
        }
    }
}

/// The `ts` of each message of a page.
fn stamps(page: &Value) -> Vec<String> {
    let messages = page["messages"].as_array().expect("messages");
    messages
        .iter()
        .map(|m| m["ts"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn history_and_replies_answer_in_the_shape_of_the_sdk_samples() {
    let fake = FakeSlack::start().await;
    let metadata = sdk_metadata();
    let root = post(&fake, "root", None, Some(&metadata)).await;
    post(&fake, "plain", None, None).await;
    post(&fake, "reply", Some(&root), Some(&metadata)).await;
    let with = ("include_all_metadata", "true");
    let history = read(
        &fake,
        "conversations.history",
        &[("channel", CHANNEL), with],
    )
    .await;
    let replies = read(
        &fake,
        "conversations.replies",
        &[("channel", CHANNEL), ("ts", &root), with],
    )
    .await;
    let samples = [
        (&history, java_sample(HISTORY_SAMPLE), "history"),
        (&replies, java_sample(REPLIES_SAMPLE), "replies"),
    ];
    for (answer, sample, name) in samples {
        same_shape(answer, &sample, name);
        for field in [
            "/ok",
            "/messages",
            "/has_more",
            "/response_metadata/next_cursor",
        ] {
            let (ours, theirs) = (answer.pointer(field), sample.pointer(field));
            assert!(ours.is_some() && theirs.is_some(), "{name}{field}");
        }
        let model = &sample["messages"][0];
        let messages = answer["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2, "{name}: {answer}");
        for m in messages {
            same_shape(m, model, &format!("{name}.message"));
            let mut modelled = vec!["type", "user", "text", "ts"];
            if name == "replies" {
                modelled.extend(["thread_ts", "metadata"]);
            }
            for field in modelled {
                let (ours, theirs) = (m.get(field), model.get(field));
                assert!(ours.is_some() && theirs.is_some(), "{name}.{field}: {m}");
            }
        }
    }
    // Slack keeps the payload's JSON as posted, numbers and arrays included.
    assert_eq!(history["messages"][1]["metadata"], metadata);
    assert_eq!(replies["messages"][1]["metadata"], metadata);
    assert!(history["messages"][0].get("metadata").is_none());
}

#[tokio::test]
async fn metadata_is_left_out_unless_include_all_metadata_is_set() {
    let fake = FakeSlack::start().await;
    let metadata = sdk_metadata();
    let root = post(&fake, "root", None, Some(&metadata)).await;
    post(&fake, "reply", Some(&root), Some(&metadata)).await;
    let methods = [
        ("conversations.history", vec![("channel", CHANNEL)]),
        (
            "conversations.replies",
            vec![("channel", CHANNEL), ("ts", &root)],
        ),
    ];
    for (method, args) in methods {
        // python-slack-sdk sends booleans as `1`/`0`, slack-morphism as `true`.
        for (flag, shown) in [
            (None, false),
            (Some("false"), false),
            (Some("0"), false),
            (Some("true"), true),
            (Some("1"), true),
        ] {
            let mut args = args.clone();
            args.extend(flag.map(|f| ("include_all_metadata", f)));
            let page = read(&fake, method, &args).await;
            let messages = page["messages"].as_array().unwrap();
            assert!(!messages.is_empty(), "{method}");
            for m in messages {
                let expected = shown.then_some(&metadata);
                assert_eq!(m.get("metadata"), expected, "{method} {flag:?}: {m}");
            }
        }
    }
}

#[tokio::test]
async fn replies_come_root_first_and_oldest_first_history_newest_first() {
    let fake = FakeSlack::start().await;
    let a = post(&fake, "a", None, None).await;
    let b = post(&fake, "b", None, None).await;
    let r1 = post(&fake, "r1", Some(&a), None).await;
    let r2 = post(&fake, "r2", Some(&a), None).await;
    let c = post(&fake, "c", None, None).await;
    let r3 = post(&fake, "r3", Some(&a), None).await;
    let history = read(&fake, "conversations.history", &[("channel", CHANNEL)]).await;
    assert_eq!(
        stamps(&history),
        [&c, &b, &a].map(String::as_str),
        "top-level only, newest first"
    );
    let replies = read(
        &fake,
        "conversations.replies",
        &[("channel", CHANNEL), ("ts", &a)],
    )
    .await;
    assert_eq!(
        stamps(&replies),
        [&a, &r1, &r2, &r3].map(String::as_str),
        "root, then oldest first"
    );
    // As in Slack's answers: the parent carries its own ts as thread_ts and the count.
    for m in replies["messages"].as_array().unwrap() {
        assert_eq!(m["thread_ts"], json!(a), "{m}");
    }
    assert_eq!(replies["messages"][0]["reply_count"], 3);
    assert_eq!(history["messages"][2]["reply_count"], 3);
    assert!(
        history["messages"][0].get("thread_ts").is_none(),
        "no thread, no thread_ts"
    );
    let reply = &replies["messages"][1];
    assert_eq!(reply["parent_user_id"], replies["messages"][0]["user"]);
}

/// Follows `next_cursor` through `method` `limit` at a time; every page's ts in order.
async fn pages(fake: &FakeSlack, method: &str, thread: Option<&str>, limit: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let mut args = vec![("channel", CHANNEL), ("limit", limit)];
        args.extend(thread.map(|t| ("ts", t)));
        if !cursor.is_empty() {
            args.push(("cursor", &cursor));
        }
        let page = read(fake, method, &args).await;
        let count = stamps(&page).len();
        assert!(count <= limit.parse().unwrap(), "{page}");
        seen.extend(stamps(&page));
        let next = page["response_metadata"]["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        // As in the SDK samples: no more pages is `has_more: false` and an empty cursor.
        assert_eq!(page["has_more"], json!(!next.is_empty()), "{page}");
        if next.is_empty() {
            return seen;
        }
        cursor = next;
    }
    panic!("{method} kept paging");
}

#[tokio::test]
async fn paging_with_limit_and_cursor_returns_every_message_once() {
    let fake = FakeSlack::start().await;
    let mut roots = Vec::new();
    for i in 0..7 {
        roots.push(post(&fake, &format!("root {i}"), None, None).await);
    }
    let mut thread = vec![roots[0].clone()];
    for i in 0..4 {
        thread.push(post(&fake, &format!("reply {i}"), Some(&roots[0]), None).await);
    }
    roots.reverse();
    assert_eq!(
        pages(&fake, "conversations.history", None, "3").await,
        roots
    );
    assert_eq!(
        pages(&fake, "conversations.history", None, "100").await,
        roots
    );
    let replies = pages(&fake, "conversations.replies", Some(&thread[0]), "2").await;
    assert_eq!(replies, thread);
}

/// Posts a message tagged `tag` as the outbox does; its `ts`.
async fn tagged_post(
    api: &SlackApi,
    channel: &ChannelId,
    thread: Option<&str>,
    tag: &str,
) -> String {
    let message = Message::text(format!("tagged {tag}"));
    let deadline = Duration::from_secs(10);
    api.post_tagged(channel, thread, &message, tag, deadline, Priority::Routine)
        .await
        .unwrap()
}

#[tokio::test]
async fn find_tagged_finds_odorbots_messages_by_their_metadata() {
    let fake = FakeSlack::start().await;
    let api = api(&fake, BOT_TOKEN);
    let channel: ChannelId = CHANNEL.parse().unwrap();
    let root = tagged_post(&api, &channel, None, "ob-root").await;
    let reply = tagged_post(&api, &channel, Some(&root), "ob-reply").await;
    // More newer messages than one page of find_tagged's, so it has to page back.
    for i in 0..250 {
        post(&fake, &format!("newer {i}"), None, None).await;
    }
    let found = api.find_tagged(&channel, None, "ob-root").await.unwrap();
    assert_eq!(found, Some(root.clone()));
    let lookups = fake.calls_to("conversations.history");
    assert_eq!(lookups.len(), 2, "paged back once");
    assert!(
        lookups
            .iter()
            .all(|c| c.body["include_all_metadata"] == "true")
    );
    let found = api
        .find_tagged(&channel, Some(&root), "ob-reply")
        .await
        .unwrap();
    assert_eq!(found, Some(reply));
    let in_channel = api.find_tagged(&channel, None, "ob-reply").await.unwrap();
    assert_eq!(in_channel, None, "a reply is not in the channel's history");
    let missing = api
        .find_tagged(&channel, Some(&root), "ob-missing")
        .await
        .unwrap();
    assert_eq!(missing, None);
}

#[tokio::test]
async fn find_tagged_is_not_stopped_by_foreign_metadata() {
    let fake = FakeSlack::start().await;
    let api = api(&fake, BOT_TOKEN);
    let channel: ChannelId = CHANNEL.parse().unwrap();
    let ts = tagged_post(&api, &channel, None, "ob-1").await;
    // Another app's message, with the metadata python-slack-sdk's test posts to Slack.
    post(&fake, "procurement", None, Some(&sdk_metadata())).await;
    let found = api.find_tagged(&channel, None, "ob-1").await.unwrap();
    assert_eq!(found, Some(ts));
}
