//! Fault injection through the real binary: failpoints (`ODORBOT_FAILPOINTS`, or
//! `PUT /debug/failpoints` at run time; debug builds only) make a step panic, fail,
//! crash or stall, and each test shows the end state: nothing lost, nothing doubled,
//! and readiness telling the truth meanwhile.

use std::time::Duration;

use serde_json::Value;

use crate::support::alertmanager::{one_alert_notification, post_notification};
use crate::support::bot::Bot;
use crate::support::fake_slack::FakeSlack;
use crate::support::storm::{counts, wait_inbox_empty};

const CHANNEL: &str = "C0INCIDENT";
const WAIT: Duration = Duration::from_secs(30);

fn incidents_yaml() -> String {
    format!(
        "approvals:\n  roles:\n    operator: [U0OPENER]\n\
         incidents:\n  channel: {CHANNEL}\n  timezone: Europe/London\n  scheduler_poll: 1s\n\
         \x20 roster:\n    primary: [U0PRIMARY]\n    secondary: [U0SECOND]\n"
    )
}

/// Messages posted in threads that Slack took.
/// odorbot on the incident config with `failpoints` armed, connected to the fake Slack.
async fn armed(fake: &FakeSlack, store: Option<&str>, failpoints: &str) -> Bot {
    let bot = Bot::start_config(
        fake,
        store,
        &[("ODORBOT_FAILPOINTS", failpoints)],
        &incidents_yaml(),
    )
    .await;
    assert!(fake.wait_connections(2, WAIT).await, "{}", bot.logs());
    bot
}

fn thread(fake: &FakeSlack) -> Vec<String> {
    fake.calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 200 && c.body["thread_ts"].is_string())
        .map(|c| c.body.to_string())
        .collect()
}

fn pages(fake: &FakeSlack) -> usize {
    thread(fake)
        .iter()
        .filter(|m| m.contains("<@U0PRIMARY> — INC-1 (high) needs an owner"))
        .count()
}

/// `odorbot_outbox_pending` from a scrape of `/metrics`.
async fn outbox_pending(bot: &Bot) -> Option<i64> {
    let (_, text) = bot.get("/metrics").await?;
    text.lines()
        .find_map(|l| l.strip_prefix("odorbot_outbox_pending "))
        .and_then(|v| v.trim().parse().ok())
}

async fn readyz(bot: &Bot) -> (u16, String) {
    bot.get("/readyz").await.unwrap_or((0, String::new()))
}

/// Polls until `cond` holds of `/readyz`'s answer.
async fn wait_readyz(bot: &Bot, mut cond: impl FnMut(u16, &str) -> bool) -> Option<(u16, String)> {
    let until = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < until {
        let (status, body) = readyz(bot).await;
        if cond(status, &body) {
            return Some((status, body));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The outbox loop panics in every round while the failpoint is armed: `/readyz` names it
/// as down the whole time, a page queued meanwhile waits in the store, and once the fault
/// is gone the restarted loop delivers that page exactly once and readiness returns.
#[tokio::test]
async fn a_panicking_outbox_is_restarted_and_still_delivers_its_page_exactly_once() {
    let fake = FakeSlack::start().await;
    let bot = armed(&fake, None, "outbox.tick=panic").await;
    let down = |status: u16, body: &str| {
        status == 503
            && body.contains("loop outbox: down")
            && body.contains("panicked: failpoint outbox.tick: injected panic")
    };
    // Once Slack is connected, the dead loop is the only thing wrong.
    let only_outbox = |status: u16, body: &str| {
        down(status, body) && !body.contains("slack:") && !body.contains("store:")
    };
    assert!(
        wait_readyz(&bot, only_outbox).await.is_some(),
        "readyz names the dead outbox\n{}",
        bot.logs()
    );

    fake.slash_command("U0OPENER", "C111", "incident open high checkout is slow")
        .await;
    // The root message goes straight to Slack; the page waits in the outbox.
    assert!(
        fake.wait_until(WAIT, |f| f.calls_to("chat.postMessage").iter().any(|c| {
            c.status == 200
                && c.body["channel"] == CHANNEL
                && c.body.get("thread_ts").is_none_or(Value::is_null)
        }))
        .await,
        "incident opened\n{}",
        bot.logs()
    );
    page_queued(&bot).await;
    assert_eq!(pages(&fake), 0, "no page while the outbox is down");
    let (status, body) = readyz(&bot).await;
    assert!(
        down(status, &body),
        "still down while armed: {status} {body}"
    );

    bot.failpoints("outbox.tick=off").await;
    assert!(
        wait_readyz(&bot, |status, _| status == 200).await.is_some(),
        "ready again once the restarted outbox completed a round\n{}",
        bot.logs()
    );
    let until = std::time::Instant::now() + WAIT;
    while outbox_pending(&bot).await != Some(0) {
        assert!(
            std::time::Instant::now() < until,
            "outbox drained\n{}",
            bot.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pages(&fake), 1, "{:?}", thread(&fake));
    let logs = bot.logs();
    assert!(
        logs.contains("background loop died: it panicked: failpoint outbox.tick: injected panic; restarting it")
            && logs.contains("background loop is running again"),
        "{logs}"
    );
}

/// The dispatcher owns the engine's queue, so it is not restarted in place: its death ends
/// the process with a clear line and a failure exit, for the orchestrator to restart.
#[tokio::test]
async fn a_dead_dispatcher_ends_the_process_with_a_clear_line() {
    let fake = FakeSlack::start().await;
    let bot = Bot::start_with(
        &fake,
        None,
        &[("ODORBOT_FAILPOINTS", "dispatcher.next=panic")],
    )
    .await;
    assert!(fake.wait_connections(2, WAIT).await, "{}", bot.logs());
    assert!(bot.wait_readyz(200, WAIT).await, "{}", bot.logs());
    fake.slash_command("U0ASKER", "C111", "help").await;
    let (status, logs) = bot
        .wait_exit(WAIT)
        .await
        .expect("odorbot ends when its dispatcher dies");
    assert!(!status.success(), "{status}");
    assert!(
        logs.contains(
            "critical loop dispatcher died: it panicked: failpoint dispatcher.next: injected panic; ending the process"
        ),
        "{logs}"
    );
}

const ALERTS_TOKEN: &str = "test-alert-token-0123456789";

/// A bot on `store` (`None`: its own) that takes alerts with [`ALERTS_TOKEN`], `failpoints` armed, ready.
async fn alert_bot(fake: &FakeSlack, store: Option<&str>, failpoints: &str) -> Bot {
    let bot = Bot::start_config(
        fake,
        store,
        &[
            ("ODORBOT_ALERTS_TOKEN", ALERTS_TOKEN),
            ("ODORBOT_FAILPOINTS", failpoints),
        ],
        &incidents_yaml(),
    )
    .await;
    assert!(bot.wait_readyz(200, WAIT).await, "{}", bot.logs());
    bot
}

/// An alert whose application fails after its key was claimed (a store hiccup, say) is
/// still answered 200 at once, since the webhook only stores it; the intake loop keeps the
/// notification, tries it again after its backoff and opens the incident and pages once:
/// the failed attempt did not leave a claim that makes the retry a duplicate. A further
/// delivery of the same notification is a duplicate.
#[tokio::test]
async fn an_alert_whose_intake_failed_after_the_claim_opens_on_the_retry() {
    let fake = FakeSlack::start().await;
    let token = ALERTS_TOKEN;
    let bot = alert_bot(&fake, None, "intake.after_claim=1*error").await;
    let body = r#"{"version":"4","groupKey":"g1","status":"firing","receiver":"odorbot","alerts":[{"status":"firing","labels":{"alertname":"OdorDiffApiDown","severity":"high"},"annotations":{"summary":"API down"},"startsAt":"2026-11-27T07:00:00Z","fingerprint":"ab12"}]}"#;
    let post = || post_notification(bot.url("/alerts"), token, body);
    let (status, text) = post().await.expect("the webhook answers");
    assert_eq!(status, 200, "{text}\n{}", bot.logs());
    assert!(
        fake.wait_until(WAIT, |f| pages(f) == 1).await,
        "{:?}\n{}",
        thread(&fake),
        bot.logs()
    );
    // The page came from the retry: the first application failed at the failpoint.
    let logs = bot.logs();
    assert!(
        logs.contains("alert notification not applied; kept in the inbox")
            && logs.contains("failpoint intake.after_claim"),
        "{logs}"
    );
    // Alertmanager delivers the same notification again: a duplicate, still one page.
    assert_eq!(post().await.map(|(s, _)| s), Some(200));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(pages(&fake), 1, "{:?}", thread(&fake));
    let second = fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body.to_string().contains("INC-2"))
        .count();
    assert_eq!(second, 0, "one incident only\n{}", bot.logs());
}

/// The process dies (as with `kill -9`) right after it claimed an alert's key and before
/// it opened anything: once the dead process's claim on the stored notification lapses, the
/// next process applies it again, and its own earlier key claim does not make the alert a
/// duplicate: the incident opens and pages, once.
#[tokio::test]
async fn an_alert_whose_applier_died_after_the_claim_opens_in_the_next_process() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let token = ALERTS_TOKEN;
    let start = async |failpoints: &str| alert_bot(&fake, Some(&store), failpoints).await;
    let first = start("intake.after_claim=1*crash").await;
    let body = r#"{"version":"4","groupKey":"g1","status":"firing","receiver":"odorbot","alerts":[{"status":"firing","labels":{"alertname":"OdorDiffApiDown","severity":"high"},"annotations":{"summary":"API down"},"startsAt":"2026-11-27T07:00:00Z","fingerprint":"ab12"}]}"#;
    let (status, text) = post_notification(first.url("/alerts"), token, body)
        .await
        .expect("the webhook answers");
    assert_eq!(status, 200, "{text}");
    let exited = first.wait_exit(WAIT).await;
    assert!(exited.is_some(), "the failpoint ends the process");
    assert_eq!(pages(&fake), 0);
    let second = start("intake.after_claim=off").await;
    // The stored notification's claim lapses after 30 s; then it is applied again.
    assert!(
        fake.wait_until(Duration::from_secs(60), |f| pages(f) == 1)
            .await,
        "{:?}\n{}",
        thread(&fake),
        second.logs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pages(&fake), 1, "{:?}", thread(&fake));
}

/// The process dies right after it applied a notification, before the inbox forgot it;
/// the next process announces the incident, which is then resolved, all within the dead
/// process's claim on the stored notification. When the claim lapses the notification is
/// applied again: its alert is found recorded, so nothing opens a second time: one
/// incident, one root, one page.
#[tokio::test]
async fn a_notification_applied_again_after_its_incident_was_resolved_opens_nothing() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let token = ALERTS_TOKEN;
    let start = async |failpoints: &str| alert_bot(&fake, Some(&store), failpoints).await;
    let first = start("intake.after_apply=1*crash").await;
    let body = one_alert_notification("g1", "OdorDiffApiDown", "API down", 0xab12);
    let (status, text) = post_notification(first.url("/alerts"), token, body)
        .await
        .expect("the webhook answers");
    assert_eq!(status, 200, "{text}");
    assert!(
        first.wait_exit(WAIT).await.is_some(),
        "the failpoint ends the process"
    );
    let second = start("intake.after_apply=off").await;
    assert!(
        fake.wait_until(WAIT, |f| pages(f) == 1).await,
        "{:?}\n{}",
        thread(&fake),
        second.logs()
    );
    let d = fake
        .slash_command("U0PRIMARY", "C111", "resolve INC-1")
        .await;
    assert!(fake.reply_to(&d, WAIT).await.is_some());
    let started = std::time::Instant::now();
    let waited = wait_inbox_empty(&store, started, Duration::from_secs(60)).await;
    assert!(waited < Duration::from_secs(60), "{}", second.logs());
    // The line is written after the inbox row is gone: wait for it.
    let applied_again = async || {
        second
            .logs()
            .lines()
            .any(|l| l.contains("alert notification applied") && l.contains("duplicates=1"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !applied_again().await && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        applied_again().await,
        "applied again, as a duplicate\n{}",
        second.logs()
    );
    let (incidents, alerts) = counts(&store).await;
    assert_eq!((incidents, alerts), (1, 1), "{}", second.logs());
    assert_eq!(fake.roots_in(CHANNEL).len(), 1);
    assert_eq!(pages(&fake), 1, "{:?}", thread(&fake));
}

/// Slack answers the page 429 with `Retry-After: 30`, longer than an outbox attempt: the
/// outbox keeps the page and does not ask again before those 30 s (its own backoff would
/// have tried after one), then delivers it exactly once.
#[tokio::test]
async fn a_page_rate_limited_for_longer_than_an_attempt_waits_out_the_retry_after() {
    let fake = FakeSlack::start().await;
    // The outbox is held (its loop panics) until the root is posted and the page queued,
    // so that the 429 meets the page, not the root.
    let bot = armed(&fake, None, "outbox.tick=panic").await;
    fake.slash_command("U0OPENER", "C111", "incident open high checkout is slow")
        .await;
    page_queued(&bot).await;
    let page_calls = |f: &FakeSlack| {
        f.calls_to("chat.postMessage")
            .into_iter()
            .filter(|c| c.body.to_string().contains("needs an owner"))
            .collect::<Vec<_>>()
    };
    fake.rate_limit_next("chat.postMessage", 1, 30);
    bot.failpoints("outbox.tick=off").await;
    assert!(
        fake.wait_until(WAIT, |f| !page_calls(f).is_empty()).await,
        "the outbox tried the page\n{}",
        bot.logs()
    );
    let limited = page_calls(&fake)[0].clone();
    assert!(limited.limited, "the first try met the 429");
    assert!(
        fake.wait_until(Duration::from_secs(45), |f| pages(f) == 1)
            .await,
        "page delivered after the Retry-After\n{}",
        bot.logs()
    );
    let calls = page_calls(&fake);
    assert_eq!(
        calls.len(),
        2,
        "asked once, then once more after 30 s: {calls:?}"
    );
    let waited = calls[1].at - limited.at;
    assert!(
        waited >= Duration::from_secs(30),
        "retried after {waited:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pages(&fake), 1);
}

/// Waits until the outbox is empty, then checks the page came once.
async fn drained_with_one_page(fake: &FakeSlack, bot: &Bot, within: Duration) {
    let until = std::time::Instant::now() + within;
    while outbox_pending(bot).await != Some(0) {
        assert!(
            std::time::Instant::now() < until,
            "outbox drained\n{}",
            bot.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pages(fake), 1, "{:?}\n{}", thread(fake), bot.logs());
}

/// Waits until a message (the page) waits in the outbox.
async fn page_queued(bot: &Bot) {
    let until = std::time::Instant::now() + WAIT;
    while outbox_pending(bot).await.unwrap_or(0) < 1 {
        assert!(
            std::time::Instant::now() < until,
            "page queued\n{}",
            bot.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens an incident and waits for its page to reach Slack.
async fn open_and_page(fake: &FakeSlack, bot: &Bot) {
    fake.slash_command("U0OPENER", "C111", "incident open high checkout is slow")
        .await;
    assert!(
        fake.wait_until(WAIT, |f| pages(f) >= 1).await,
        "paged\n{}",
        bot.logs()
    );
}

/// The bookkeeping after Slack took the page fails once: it is retried at once, and the
/// page leaves the outbox without being sent again.
#[tokio::test]
async fn a_page_whose_bookkeeping_failed_once_is_recorded_on_the_retry_not_resent() {
    let fake = FakeSlack::start().await;
    let bot = armed(&fake, None, "outbox.after_send=1*error").await;
    open_and_page(&fake, &bot).await;
    drained_with_one_page(&fake, &bot, WAIT).await;
    assert!(
        bot.logs()
            .contains("message sent but not yet recorded; retrying")
    );
}

/// Every try of the bookkeeping fails: the page stays in the outbox marked as sending,
/// and once its lease lapsed the next claim finds it in Slack (by the outbox id in its
/// metadata) and records it instead of posting it again.
#[tokio::test]
async fn a_page_whose_bookkeeping_kept_failing_is_found_in_slack_not_resent() {
    let fake = FakeSlack::start().await;
    let bot = armed(&fake, None, "outbox.after_send=3*error").await;
    open_and_page(&fake, &bot).await;
    assert_eq!(outbox_pending(&bot).await, Some(1), "kept while unrecorded");
    drained_with_one_page(&fake, &bot, WAIT).await;
    let logs = bot.logs();
    assert!(
        logs.contains("Slack already has the message; not sent again"),
        "{logs}"
    );
    assert!(
        !fake.calls_to("conversations.replies").is_empty(),
        "looked up in the incident's thread"
    );
}

/// The process dies right after Slack took the page, before recording it: a fresh
/// process on the same store finds the page in Slack once the claim lapsed, and does not
/// post it again.
#[tokio::test]
async fn a_page_sent_just_before_a_crash_is_found_in_slack_by_the_next_process_not_resent() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let first = armed(&fake, Some(&url), "outbox.after_send=crash").await;
    open_and_page(&fake, &first).await;
    let (status, logs) = first
        .wait_exit(WAIT)
        .await
        .expect("the failpoint crashed it");
    assert!(!status.success(), "{logs}");
    let second = Bot::start_config(&fake, Some(&url), &[], &incidents_yaml()).await;
    drained_with_one_page(&fake, &second, WAIT).await;
    assert!(
        second
            .logs()
            .contains("Slack already has the message; not sent again"),
        "{}",
        second.logs()
    );
}

/// With `slack.resend_check` off, a page whose bookkeeping kept failing is not looked up in
/// Slack: it is posted again once its lease lapsed (at least once, as `check` warns).
#[tokio::test]
async fn with_the_resend_check_off_a_page_whose_bookkeeping_kept_failing_comes_twice() {
    let fake = FakeSlack::start().await;
    let bot = Bot::start_sections(
        &fake,
        None,
        &[("ODORBOT_FAILPOINTS", "outbox.after_send=3*error")],
        &[("slack", "  resend_check: false\n")],
        &incidents_yaml(),
    )
    .await;
    assert!(fake.wait_connections(2, WAIT).await, "{}", bot.logs());
    open_and_page(&fake, &bot).await;
    assert!(
        fake.wait_until(WAIT, |f| pages(f) >= 2).await,
        "posted again\n{}",
        bot.logs()
    );
    assert!(
        fake.calls_to("conversations.history").is_empty()
            && fake.calls_to("conversations.replies").is_empty(),
        "no history lookup"
    );
}
