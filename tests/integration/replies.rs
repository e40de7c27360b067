//! Replies to slash commands and clicks go through a queue in the store and a sender of
//! their own: a slow or failing `response_url` holds no worker, a failed attempt is tried
//! again while the URL lives, and a reply outlives the process that made it.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::bot::Bot;
use crate::support::fake_slack::{Call, Delivery, FakeOptions, FakeSlack};
use crate::support::pg::TempDb;

const WAIT: Duration = Duration::from_secs(60);
const CHANNEL: &str = "C0INCIDENT";

/// Every POST to this delivery's `response_url`, in order.
fn posts(fake: &FakeSlack, d: &Delivery) -> Vec<Call> {
    let url = d.response_url.as_deref().expect("a response_url");
    let path = format!("/response/{}", url.rsplit('/').next().unwrap());
    fake.calls_to("response_url")
        .into_iter()
        .filter(|c| c.path == path)
        .collect()
}

/// The POSTs Slack took.
fn delivered(fake: &FakeSlack, d: &Delivery) -> Vec<Call> {
    posts(fake, d)
        .into_iter()
        .filter(|c| c.status == 200)
        .collect()
}

fn is_help(body: &Value) -> bool {
    body["text"]
        .as_str()
        .is_some_and(|t| t.contains("runs the OdorDiff-2 runbook"))
}

async fn connected(fake: &FakeSlack, bot: &Bot) {
    assert!(
        fake.wait_connections(2, WAIT).await,
        "two connections\n{}",
        bot.logs()
    );
}

/// `odorbot_replies_pending` from a scrape of `/metrics`.
async fn pending(bot: &Bot) -> Option<i64> {
    let (_, text) = bot.get("/metrics").await?;
    text.lines()
        .find_map(|l| l.strip_prefix("odorbot_replies_pending "))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until the reply queue is empty; the store is read at each scrape.
async fn drained(bot: &Bot) {
    let until = Instant::now() + WAIT;
    while pending(bot).await != Some(0) {
        assert!(
            Instant::now() < until,
            "reply queue drained\n{}",
            bot.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The worker used to retry a reply itself until the send deadline, then drop it; now a
/// reply refused with 500s for longer than that still arrives, once, when Slack takes it.
#[tokio::test]
async fn a_reply_refused_with_500s_for_longer_than_the_send_deadline_arrives_exactly_once() {
    let fake = FakeSlack::start().await;
    let bot =
        Bot::start_sections(&fake, None, &[], &[("slack", "  send_deadline: 3s\n")], "").await;
    connected(&fake, &bot).await;
    fake.fail_next("response_url", 5, 500);
    let d = fake.slash_command("U111", "C111", "help").await;
    assert!(
        fake.wait_until(WAIT, |f| !delivered(f, &d).is_empty())
            .await,
        "the reply arrives once Slack takes it: {:?}\n{}",
        posts(&fake, &d)
            .iter()
            .map(|c| c.status)
            .collect::<Vec<_>>(),
        bot.logs()
    );
    drained(&bot).await;
    let statuses: Vec<u16> = posts(&fake, &d).iter().map(|c| c.status).collect();
    assert_eq!(statuses, [500, 500, 500, 500, 500, 200]);
    assert!(is_help(&delivered(&fake, &d)[0].body));
}

/// With two workers and a `response_url` that answers after 4 s, five commands used to
/// hold both workers for 8 s before the sixth was even looked at; now the workers are
/// free as soon as each reply is queued, and every reply still arrives once.
#[tokio::test]
async fn slow_replies_hold_no_worker_so_the_next_command_is_processed_at_once() {
    let fake = FakeSlack::start_with(FakeOptions {
        response_delay: Some(Duration::from_secs(4)),
        ..FakeOptions::default()
    })
    .await;
    let incidents = format!(
        "approvals:\n  roles:\n    operator: [U0OPENER]\n\
         incidents:\n  channel: {CHANNEL}\n  scheduler_poll: 1s\n\
         \x20 roster:\n    primary: [U0PRIMARY]\n"
    );
    let bot = Bot::start_sections(
        &fake,
        None,
        &[],
        &[("engine", "  workers: 2\n")],
        &incidents,
    )
    .await;
    connected(&fake, &bot).await;
    let mut slow = Vec::new();
    for _ in 0..5 {
        slow.push(fake.slash_command("U111", "C111", "help").await);
    }
    let asked = Instant::now();
    let open = fake
        .slash_command("U0OPENER", "C111", "incident open high checkout is slow")
        .await;
    let root_posted = |f: &FakeSlack| {
        f.calls_to("chat.postMessage").iter().any(|c| {
            c.status == 200
                && c.body["channel"] == CHANNEL
                && c.body.get("thread_ts").is_none_or(Value::is_null)
        })
    };
    assert!(
        fake.wait_until(Duration::from_millis(3500), root_posted)
            .await,
        "the incident's root message within 3.5 s, not after the slow replies\n{}",
        bot.logs()
    );
    println!("root message {:?} after the command", asked.elapsed());
    let all = fake
        .wait_until(WAIT, |f| {
            slow.iter()
                .chain([&open])
                .all(|d| !delivered(f, d).is_empty())
        })
        .await;
    assert!(all, "every reply arrives\n{}", bot.logs());
    drained(&bot).await;
    for d in &slow {
        let got = posts(&fake, d);
        assert_eq!(got.len(), 1, "one POST each: {got:?}");
        assert!(is_help(&got[0].body));
    }
    assert_eq!(posts(&fake, &open).len(), 1);
}

/// `kill -9` while a reply waits for Slack to take it (Slack answers 500): the worker that
/// made it used to be the only one holding it. A fresh process on the same store sends
/// it once Slack is back, after the dead one's claim lapsed.
#[tokio::test]
async fn a_reply_pending_when_the_process_is_killed_is_delivered_once_by_the_next_one() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let first = Bot::start_with(&fake, Some(&store), &[]).await;
    connected(&fake, &first).await;
    fake.fail_next("response_url", 1000, 500);
    let d = fake.slash_command("U111", "C111", "help").await;
    assert!(
        fake.wait_until(WAIT, |f| !posts(f, &d).is_empty()).await,
        "the reply was tried\n{}",
        first.logs()
    );
    first.kill9().await;
    fake.clear_faults("response_url");
    let tried = posts(&fake, &d).len();
    assert!(delivered(&fake, &d).is_empty());

    let second = Bot::start_with(&fake, Some(&store), &[]).await;
    assert!(
        fake.wait_until(WAIT, |f| !delivered(f, &d).is_empty())
            .await,
        "the next process sends the reply\n{}",
        second.logs()
    );
    drained(&second).await;
    let after: Vec<u16> = posts(&fake, &d)[tried..].iter().map(|c| c.status).collect();
    assert_eq!(after, [200], "sent once by the second process");
    assert!(is_help(&delivered(&fake, &d)[0].body));
}

/// A crash (failpoint `replies.before_send`) after the reply was queued and claimed, before
/// any POST: on PostgreSQL, the next process takes the lapsed claim over and sends it once.
#[tokio::test]
async fn a_reply_claimed_by_a_process_that_crashed_before_sending_is_sent_once_by_the_next() {
    let fake = FakeSlack::start().await;
    let db = TempDb::create().await;
    let first = Bot::start_with(
        &fake,
        Some(&db.url),
        &[("ODORBOT_FAILPOINTS", "replies.before_send=crash")],
    )
    .await;
    connected(&fake, &first).await;
    let d = fake.slash_command("U111", "C111", "help").await;
    let (status, logs) = first
        .wait_exit(WAIT)
        .await
        .expect("the process crashes at the failpoint");
    assert!(!status.success());
    assert!(
        logs.contains("failpoint replies.before_send: injected crash"),
        "{logs}"
    );
    assert!(posts(&fake, &d).is_empty(), "nothing sent before the crash");

    let second = Bot::start_with(&fake, Some(&db.url), &[]).await;
    assert!(
        fake.wait_until(WAIT, |f| !delivered(f, &d).is_empty())
            .await,
        "the next process sends the reply\n{}",
        second.logs()
    );
    drained(&second).await;
    assert_eq!(posts(&fake, &d).len(), 1, "sent once");
    second.kill9().await;
    db.drop_db().await;
}

/// The store cannot take the reply (failpoint `replies.enqueue`): it is tried once at
/// once, off the worker, and arrives.
#[tokio::test]
async fn a_reply_the_store_cannot_take_is_tried_once_directly() {
    let fake = FakeSlack::start().await;
    let bot = Bot::start_with(
        &fake,
        None,
        &[("ODORBOT_FAILPOINTS", "replies.enqueue=1*error")],
    )
    .await;
    connected(&fake, &bot).await;
    let d = fake.slash_command("U111", "C111", "help").await;
    assert!(
        fake.wait_until(WAIT, |f| !delivered(f, &d).is_empty())
            .await,
        "{}",
        bot.logs()
    );
    assert_eq!(posts(&fake, &d).len(), 1);
    assert!(
        bot.logs()
            .contains("reply queue unavailable; trying the reply once directly"),
        "{}",
        bot.logs()
    );
}

/// A 404 (a used-up or unknown URL) is not going to change: one POST, a warning, and the
/// reply leaves the queue.
#[tokio::test]
async fn a_reply_refused_for_good_is_given_up_after_one_post() {
    let fake = FakeSlack::start().await;
    let bot = Bot::start(&fake).await;
    connected(&fake, &bot).await;
    fake.fail_next("response_url", 1, 404);
    let d = fake.slash_command("U111", "C111", "help").await;
    assert!(
        fake.wait_until(WAIT, |f| !posts(f, &d).is_empty()).await,
        "{}",
        bot.logs()
    );
    drained(&bot).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let statuses: Vec<u16> = posts(&fake, &d).iter().map(|c| c.status).collect();
    assert_eq!(statuses, [404], "not retried");
    assert!(
        bot.logs()
            .contains("Slack refused a reply through its response_url; dropped"),
        "{}",
        bot.logs()
    );
}
