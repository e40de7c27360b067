//! Alert storms, a slow Slack and crashes, each case run twice: on two replicas sharing
//! one PostgreSQL, and on one replica with its SQLite file. Alerts go to the real
//! binary's webhook; what reached Slack is read off the fake Slack's record, and what was
//! decided off the store.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use crate::support::alertmanager::{one_alert_notification, post_notification};
use crate::support::bot::Bot;
use crate::support::fake_slack::{Call, FakeSlack};
use crate::support::pg::TempDb;
use crate::support::storm::{SEVERITIES, counts, group_notification, storm_timings};

const TOKEN: &str = "test-alert-token-0123456789";
const CHANNEL: &str = "C0STORMS";
const WAIT: Duration = Duration::from_secs(30);
/// Webhook clients posting at once, as in the measurements that opened these cases.
const CLIENTS: usize = 16;
/// How late the slow Slack answers `chat.postMessage`.
const SLOW: Duration = Duration::from_secs(4);
/// Failpoints that stall a standby replica's sending: it is alive and connected, and takes
/// over only when told to (after the active replica was killed).
const STANDBY: &str = "scheduler.tick=hold;outbox.tick=hold";

/// Where the replicas keep their state.
enum Kept {
    Postgres(TempDb),
    /// The directory holding the SQLite file, outliving each replica.
    Sqlite(tempfile::TempDir),
}

/// The replicas of one case, the fake Slack they post to and the store they share.
struct Rig {
    fake: FakeSlack,
    kept: Kept,
    url: String,
    slack: String,
    yaml: String,
    bots: Vec<Bot>,
}

/// The incident settings of a case: storm mode from `threshold` incidents a minute, the
/// critical and high `ack_within`, the status cadence, and a short timer lease, so that a
/// killed replica's timers are taken over within seconds.
fn incidents_yaml(threshold: usize, ack_secs: u32, status_secs: u32) -> String {
    format!(
        "approvals:\n  roles:\n    operator: [U0OPENER]\n\
         incidents:\n  channel: {CHANNEL}\n  timezone: Europe/London\n  scheduler_poll: 1s\n  timer_lease: 3s\n  status_every: {status_secs}s\n\
         \x20 storm: {{threshold: {threshold}}}\n\
         \x20 roster:\n    primary: [U0PRIMARY]\n    secondary: [U0SECOND]\n    platform_lead: [U0LEAD]\n    incident_commander: [U0COMMANDER]\n\
         \x20 escalation:\n    critical: {{ack_within: {ack_secs}s}}\n    high: {{ack_within: {ack_secs}s}}\n"
    )
}

impl Rig {
    /// Two replicas on a fresh PostgreSQL database.
    async fn postgres(slack: &str, yaml: String) -> Rig {
        Self::start(Kept::Postgres(TempDb::create().await), 2, slack, yaml, &[]).await
    }

    /// One replica on a SQLite file.
    async fn sqlite(slack: &str, yaml: String) -> Rig {
        Self::start(
            Kept::Sqlite(tempfile::tempdir().unwrap()),
            1,
            slack,
            yaml,
            &[],
        )
        .await
    }

    /// As [`Rig::postgres`], the second replica a stalled standby (see [`STANDBY`]).
    async fn postgres_with_standby(slack: &str, yaml: String) -> Rig {
        let kept = Kept::Postgres(TempDb::create().await);
        let mut rig = Self::start(kept, 1, slack, yaml, &[]).await;
        let standby = rig.replica(&[("ODORBOT_FAILPOINTS", STANDBY)]).await;
        rig.bots.push(standby);
        rig
    }

    async fn start(
        kept: Kept,
        replicas: usize,
        slack: &str,
        yaml: String,
        env: &[(&str, &str)],
    ) -> Rig {
        let url = match &kept {
            Kept::Postgres(db) => db.url.clone(),
            Kept::Sqlite(dir) => format!("sqlite://{}", dir.path().join("odorbot.db").display()),
        };
        let mut rig = Rig {
            fake: FakeSlack::start().await,
            kept,
            url,
            slack: slack.to_owned(),
            yaml,
            bots: Vec::new(),
        };
        for _ in 0..replicas {
            let bot = rig.replica(env).await;
            rig.bots.push(bot);
        }
        rig
    }

    /// One more replica on the rig's store, ready.
    async fn replica(&self, env: &[(&str, &str)]) -> Bot {
        let mut all = vec![("ODORBOT_ALERTS_TOKEN", TOKEN)];
        all.extend_from_slice(env);
        let bot = Bot::start_sections(
            &self.fake,
            Some(&self.url),
            &all,
            &[("slack", &self.slack)],
            &self.yaml,
        )
        .await;
        assert!(bot.wait_readyz(200, WAIT).await, "{}", bot.logs());
        bot
    }

    fn logs(&self) -> String {
        self.bots
            .iter()
            .map(Bot::logs)
            .collect::<Vec<_>>()
            .join("\n-----\n")
    }

    async fn store(&self) -> odorbot::store::Store {
        odorbot::store::Store::open(&secrecy::SecretString::from(self.url.clone()), 1)
            .await
            .unwrap()
    }

    /// Posts every body to the webhook, [`CLIENTS`] at a time, spread over the replicas:
    /// each first answer and how long it took.
    async fn post_alerts(&self, bodies: Vec<Vec<u8>>) -> Vec<(Option<u16>, Duration)> {
        let urls: Vec<String> = self.bots.iter().map(|b| b.url("/alerts")).collect();
        futures_util::stream::iter(bodies.into_iter().enumerate())
            .map(|(i, body)| {
                let url = urls[i % urls.len()].clone();
                async move {
                    let sent = Instant::now();
                    let answer = post_notification(url, TOKEN, body).await;
                    (answer.map(|(s, _)| s), sent.elapsed())
                }
            })
            .buffer_unordered(CLIENTS)
            .collect()
            .await
    }

    /// Kills the active replica (the first) while Slack holds the answer to a message it
    /// took that `matches`: whoever posted it cannot know it arrived. The next replica (the
    /// standby on PostgreSQL, released; a new process on SQLite) carries on from the store.
    async fn kill_while_sending(&mut self, what: &str, matches: impl Fn(&Call) -> bool) {
        let pending = |f: &FakeSlack| {
            f.calls_to("chat.postMessage")
                .iter()
                .any(|c| c.status == 200 && c.at.elapsed() < SLOW / 2 && matches(c))
        };
        assert!(
            self.fake.wait_until(Duration::from_secs(60), pending).await,
            "no {what} was on its way\n{}",
            self.logs()
        );
        self.bots.remove(0).kill9().await;
        match self.kept {
            Kept::Postgres(_) => {
                self.bots[0]
                    .failpoints("scheduler.tick=off;outbox.tick=off")
                    .await;
                let standby = self.replica(&[("ODORBOT_FAILPOINTS", STANDBY)]).await;
                self.bots.push(standby);
            }
            Kept::Sqlite(_) => {
                let next = self.replica(&[]).await;
                self.bots.push(next);
            }
        }
    }

    /// Releases any standby, so that every replica works.
    async fn release_standby(&self) {
        if matches!(self.kept, Kept::Postgres(_)) {
            for bot in &self.bots {
                bot.failpoints("scheduler.tick=off;outbox.tick=off").await;
            }
        }
    }

    async fn finish(self) {
        drop(self.bots);
        if let Kept::Postgres(db) = self.kept {
            db.drop_db().await;
        }
    }
}

/// Messages Slack took (answered 200).
fn taken(fake: &FakeSlack) -> Vec<Call> {
    fake.calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 200)
        .collect()
}

/// The tag a message was posted with (its `metadata.event_payload`): the outbox row, or
/// `root:<incident>` for a root message.
fn tag(call: &Call) -> Option<String> {
    let metadata = match &call.body["metadata"] {
        Value::String(s) => serde_json::from_str(s).ok()?,
        other => other.clone(),
    };
    (metadata["event_type"] == "odorbot_outbox")
        .then(|| {
            metadata["event_payload"]["outbox_id"]
                .as_str()
                .map(str::to_owned)
        })
        .flatten()
}

fn text(call: &Call) -> String {
    call.body.to_string()
}

/// The `n` critical groups (every third of the storm notifications), one alert each.
fn critical_groups(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| group_notification(i * SEVERITIES.len(), 1))
        .collect()
}

/// Waits until incidents 1 to `n` exist and each has its root message recorded: the
/// replicas that carried on found or posted every root.
async fn roots_recorded(rig: &Rig, n: i64) {
    let store = rig.store().await;
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let mut rooted = 0;
        for number in 1..=n {
            let incident = store.incident_by_number(number).await.unwrap();
            rooted += usize::from(incident.is_some_and(|i| i.thread_ts.is_some()));
        }
        if rooted == n as usize {
            break;
        }
        assert!(
            Instant::now() < until,
            "{rooted} of {n} roots\n{}",
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    store.close().await;
}

/// Resolves incidents 1 to `n` as their primary, then waits until the outbox has
/// nothing left for Slack.
async fn resolve_and_drain(rig: &Rig, n: i64) {
    for number in 1..=n {
        let d = rig
            .fake
            .slash_command("U0PRIMARY", "C111", &format!("resolve INC-{number}"))
            .await;
        assert!(
            rig.fake.reply_to(&d, WAIT).await.is_some(),
            "{}",
            rig.logs()
        );
    }
    let store = rig.store().await;
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let open = store.open_incidents().await.unwrap().len();
        if open == 0 && store.outbox_len().await.unwrap() == 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "{open} open, outbox {}: {:?}\n{}",
            store.outbox_len().await.unwrap(),
            store
                .open_incidents()
                .await
                .unwrap()
                .iter()
                .map(|i| (i.number, i.group_key.clone(), i.thread_ts.clone()))
                .collect::<Vec<_>>(),
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    store.close().await;
    // Answers still on their way.
    tokio::time::sleep(SLOW + Duration::from_secs(1)).await;
}

/// Each of incidents 1 to `n` has one root message, and every firing its timeline records
/// (the page, each escalation, each status update) is in its thread: at least once, and
/// more only by the one firing each of the `crashes` may have cut between its message and
/// its record. No message went to Slack twice: every message carries its tag, and no tag
/// is taken twice.
async fn each_firing_delivered_once(rig: &Rig, n: i64, crashes: usize) {
    let taken = taken(&rig.fake);
    let mut tags: BTreeMap<String, usize> = BTreeMap::new();
    for call in &taken {
        let tag = tag(call).unwrap_or_else(|| panic!("posted untagged: {}", text(call)));
        *tags.entry(tag).or_default() += 1;
    }
    let twice: Vec<_> = tags.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "posted more than once: {twice:?}");
    let store = rig.store().await;
    assert!(
        store.incident_by_number(n + 1).await.unwrap().is_none(),
        "one incident per group"
    );
    for number in 1..=n {
        let incident = store.incident_by_number(number).await.unwrap().unwrap();
        let root = format!("root:{}", incident.id);
        assert_eq!(tags.get(&root), Some(&1), "INC-{number}'s root");
        let ts = incident
            .thread_ts
            .as_deref()
            .expect("its root was recorded");
        let timeline = store.timeline(&incident.id).await.unwrap();
        for (kind, what) in [
            ("ping", "*Page:*"),
            ("escalated", "⏫ *Escalated to"),
            ("status", "*Status of INC-"),
        ] {
            let recorded = timeline.iter().filter(|e| e.kind == kind).count();
            let delivered = taken
                .iter()
                // The resolution's message quotes the timeline.
                .filter(|c| c.body["thread_ts"] == ts && !text(c).contains(" resolved INC-"))
                .filter(|c| text(c).contains(what))
                .count();
            assert!(
                delivered >= recorded && delivered <= recorded + crashes,
                "INC-{number}: {recorded} {kind} recorded, {delivered} delivered\n{timeline:?}"
            );
        }
    }
    assert_eq!(
        taken
            .iter()
            .filter(|c| c.body["thread_ts"].is_null())
            .count(),
        n as usize,
        "one root each"
    );
    store.close().await;
}

// --- 200 one-alert groups at once --------------------------------------------------------

/// 200 one-alert groups, 16 at a time: every first attempt is answered 200 and each group
/// opens its incident, numbered 1 to 200 without a gap (storm mode off: this is about
/// opening incidents under concurrency).
async fn a_burst_opens_every_incident_at_the_first_attempt(rig: Rig) {
    const GROUPS: usize = 200;
    let bodies = (0..GROUPS)
        .map(|i| {
            one_alert_notification(&format!("burst{i}"), &format!("Burst{i}"), "burst", i)
                .into_bytes()
        })
        .collect();
    for (answer, _) in rig.post_alerts(bodies).await {
        assert_eq!(answer, Some(200), "{}", rig.logs());
    }
    let store = rig.store().await;
    let until = Instant::now() + Duration::from_secs(120);
    while store.open_incidents().await.unwrap().len() < GROUPS {
        assert!(Instant::now() < until, "{}", rig.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let incidents = store.open_incidents().await.unwrap();
    let mut numbers: Vec<i64> = incidents.iter().map(|i| i.number).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=GROUPS as i64).collect::<Vec<_>>());
    let mut groups: Vec<_> = incidents
        .iter()
        .filter_map(|i| i.group_key.clone())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    assert_eq!(groups.len(), GROUPS, "one incident per group");
    assert!(store.inbox_errors().await.unwrap().is_empty());
    store.close().await;
    rig.finish().await;
}

const FAST_SLACK: &str = "  channel_rate_per_sec: 50\n  channel_burst: 50\n";

#[tokio::test]
async fn postgres_two_replicas_open_each_of_200_concurrent_groups_at_the_first_attempt() {
    let rig = Rig::postgres(FAST_SLACK, incidents_yaml(1000, 600, 600)).await;
    a_burst_opens_every_incident_at_the_first_attempt(rig).await;
}

#[tokio::test]
async fn sqlite_one_replica_opens_each_of_200_concurrent_groups_at_the_first_attempt() {
    let rig = Rig::sqlite(FAST_SLACK, incidents_yaml(1000, 600, 600)).await;
    a_burst_opens_every_incident_at_the_first_attempt(rig).await;
}

// --- 10 000 alerts in 500 groups ---------------------------------------------------------

/// 10 000 alerts in 500 groups, 16 clients, at Slack's own pacing (one message a second in
/// the channel): every post is answered 200; the storm's summary and a page for each
/// severity come within 10 s; the storm escalates on time while the rest is still being
/// applied and posted; in the end 500 incidents hold every alert, and the channel got
/// the threshold's roots and the summary, not a root per incident.
async fn a_storm_of_10_000_alerts(rig: Rig) {
    const GROUPS: usize = 500;
    const ALERTS: usize = 20;
    const ACK: Duration = Duration::from_secs(20);
    let bodies = (0..GROUPS).map(|g| group_notification(g, ALERTS)).collect();
    let started = Instant::now();
    let answers = rig.post_alerts(bodies).await;
    let posted = started.elapsed();
    for (answer, _) in &answers {
        assert_eq!(*answer, Some(200), "{}", rig.logs());
    }
    let paged = |f: &FakeSlack| {
        let t = storm_timings(f, started);
        t.summary.is_some() && t.pages.iter().all(|(_, at)| at.is_some())
    };
    assert!(
        rig.fake.wait_until(Duration::from_secs(30), paged).await,
        "{}",
        rig.logs()
    );
    let timings = storm_timings(&rig.fake, started);
    let summary = timings.summary.unwrap();
    assert!(summary <= Duration::from_secs(10), "summary at {summary:?}");
    for (severity, at) in &timings.pages {
        let at = at.unwrap();
        assert!(at <= Duration::from_secs(10), "{severity} paged at {at:?}");
    }
    let summary_ts = rig
        .fake
        .message_ts(|m| m["thread_ts"].is_null() && m.to_string().contains("Alert storm"))
        .expect("the summary");
    let escalated = |f: &FakeSlack| {
        taken(f).into_iter().find(|c| {
            c.body["thread_ts"] == summary_ts.as_str() && text(c).contains("Escalated to")
        })
    };
    assert!(
        rig.fake
            .wait_until(ACK + Duration::from_secs(30), |f| escalated(f).is_some())
            .await,
        "{}",
        rig.logs()
    );
    let escalation = escalated(&rig.fake).unwrap().at.duration_since(started);
    let store = rig.store().await;
    let backlog = store.outbox_len().await.unwrap();
    // Every incident that opened before the storm escalates at the same moment, and the
    // channel takes one message a second: those that went first are the only wait.
    let ahead = taken(&rig.fake)
        .iter()
        .filter(|c| text(c).contains("Escalated to") && c.at.duration_since(started) < escalation)
        .count() as u64;
    // Due `ack_within` after the storm opened (before its summary was posted), which came
    // within the posting of the notifications and their first applications; the
    // scheduler looks every second, and the channel's next slot may be a second away.
    let due_by = posted + ACK + Duration::from_secs(2);
    assert!(
        escalation >= ACK && escalation <= due_by + Duration::from_secs(ahead + 1),
        "escalated at {escalation:?} after {ahead} other escalations, due by {due_by:?}"
    );
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let (incidents, alerts) = counts(&rig.url).await;
        if incidents == GROUPS as i64 && alerts == (GROUPS * ALERTS) as i64 {
            break;
        }
        assert!(
            Instant::now() < until,
            "{incidents} incidents, {alerts} alerts\n{}",
            rig.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let applied = started.elapsed();
    let roots = taken(&rig.fake)
        .into_iter()
        .filter(|c| c.body["thread_ts"].is_null())
        .count();
    assert_eq!(roots, 5 + 1, "the threshold's roots, then the summary's");
    eprintln!(
        "{} alerts posted in {posted:?}; summary {summary:?}, pages {:?}, escalation {escalation:?} (after {ahead} others; {backlog} messages queued then), all applied {applied:?}",
        GROUPS * ALERTS,
        timings.pages
    );
    store.close().await;
    rig.finish().await;
}

#[tokio::test]
async fn postgres_two_replicas_weather_a_storm_of_10_000_alerts() {
    a_storm_of_10_000_alerts(Rig::postgres("", incidents_yaml(5, 20, 600)).await).await;
}

#[tokio::test]
async fn sqlite_one_replica_weathers_a_storm_of_10_000_alerts() {
    a_storm_of_10_000_alerts(Rig::sqlite("", incidents_yaml(5, 20, 600)).await).await;
}

// --- a slow, failing Slack ---------------------------------------------------------------

/// Slack takes 4 s to answer each post and fails one in five with a 500; six critical
/// incidents escalate and get status updates for half a minute, then are resolved. Every
/// firing the store records reached its thread once, nothing twice.
async fn a_slow_slack_gets_every_firing_once(rig: Rig) {
    const OPENED: usize = 6;
    rig.fake.slow_posts(Some(SLOW));
    rig.fake.fail_every("chat.postMessage", 5, 500);
    for (answer, _) in rig.post_alerts(critical_groups(OPENED)).await {
        assert_eq!(answer, Some(200), "{}", rig.logs());
    }
    roots_recorded(&rig, OPENED as i64).await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    resolve_and_drain(&rig, OPENED as i64).await;
    each_firing_delivered_once(&rig, OPENED as i64, 0).await;
    rig.finish().await;
}

const PACED: &str = "  channel_rate_per_sec: 20\n  channel_burst: 20\n";

#[tokio::test]
async fn postgres_two_replicas_deliver_every_firing_once_through_a_slow_failing_slack() {
    a_slow_slack_gets_every_firing_once(Rig::postgres(PACED, incidents_yaml(1000, 4, 8)).await)
        .await;
}

#[tokio::test]
async fn sqlite_one_replica_delivers_every_firing_once_through_a_slow_failing_slack() {
    a_slow_slack_gets_every_firing_once(Rig::sqlite(PACED, incidents_yaml(1000, 4, 8)).await).await;
}

// --- kill -9 while sending ---------------------------------------------------------------

/// The slow, failing Slack again, and the active replica killed twice: once while Slack
/// holds the answers to root messages, once while it holds a thread message's. Whoever
/// carries on asks Slack before sending what may have arrived: one root per incident, no
/// message twice, every recorded firing delivered.
async fn kill_9_while_sending_posts_nothing_twice(mut rig: Rig) {
    const OPENED: usize = 6;
    rig.fake.slow_posts(Some(SLOW));
    rig.fake.fail_every("chat.postMessage", 5, 500);
    for (answer, _) in rig.post_alerts(critical_groups(OPENED)).await {
        assert_eq!(answer, Some(200), "{}", rig.logs());
    }
    rig.kill_while_sending("root message", |c| c.body["thread_ts"].is_null())
        .await;
    rig.kill_while_sending("thread message", |c| c.body["thread_ts"].is_string())
        .await;
    rig.release_standby().await;
    roots_recorded(&rig, OPENED as i64).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    resolve_and_drain(&rig, OPENED as i64).await;
    each_firing_delivered_once(&rig, OPENED as i64, 2).await;
    rig.finish().await;
}

#[tokio::test]
async fn postgres_replicas_killed_while_sending_post_nothing_twice() {
    let rig = Rig::postgres_with_standby(PACED, incidents_yaml(1000, 4, 8)).await;
    kill_9_while_sending_posts_nothing_twice(rig).await;
}

#[tokio::test]
async fn sqlite_replicas_killed_while_sending_post_nothing_twice() {
    let rig = Rig::sqlite(PACED, incidents_yaml(1000, 4, 8)).await;
    kill_9_while_sending_posts_nothing_twice(rig).await;
}

// --- the backlog series ------------------------------------------------------------------

/// A sample from a scrape: `series` is the name with its labels, as exposed.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Every replica's scrape of `/metrics`.
async fn scrapes(rig: &Rig) -> Vec<String> {
    let mut all = Vec::new();
    for bot in &rig.bots {
        all.push(bot.get("/metrics").await.expect("metrics").1);
    }
    all
}

/// Waits until every replica's scrape satisfies `ok`; the scrapes then.
async fn scrapes_until(rig: &Rig, bound: Duration, ok: impl Fn(&str) -> bool) -> Vec<String> {
    let until = Instant::now() + bound;
    loop {
        let all = scrapes(rig).await;
        if all.iter().all(|s| ok(s)) {
            return all;
        }
        assert!(Instant::now() < until, "{all:?}\n{}", rig.logs());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The series odorbot's own alerts read, against the store: with every replica's outbox
/// held, a critical incident's page waits and `odorbot_outbox_pending` counts it while
/// `odorbot_outbox_oldest_pending_seconds` ages; with the schedulers held too, its
/// escalation falls a minute overdue and `odorbot_timers_overdue` shows it; released, all
/// three return to 0, and `odorbot_outbox_wait_seconds` holds how long each page waited.
async fn the_backlog_series_follow_the_store(rig: Rig) {
    const PENDING: &str = "odorbot_outbox_pending";
    const OLDEST: &str = "odorbot_outbox_oldest_pending_seconds";
    const OVERDUE: &str = "odorbot_timers_overdue";
    const PAGES: &str = "odorbot_outbox_wait_seconds_count{priority=\"page\"}";
    const PAGE_WAIT: &str = "odorbot_outbox_wait_seconds_sum{priority=\"page\"}";
    for bot in &rig.bots {
        bot.failpoints("outbox.tick=hold").await;
    }
    let all = scrapes(&rig).await;
    for s in &all {
        assert_eq!(sample(s, PAGES), Some(0.0), "exported from the start: {s}");
    }
    for (answer, _) in rig.post_alerts(critical_groups(1)).await {
        assert_eq!(answer, Some(200), "{}", rig.logs());
    }
    // The root is the announcement's own post; the page goes through the held outbox.
    let store = rig.store().await;
    let until = Instant::now() + WAIT;
    while store.outbox_len().await.unwrap() < 1 {
        assert!(Instant::now() < until, "{}", rig.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let queued = Instant::now();
    for bot in &rig.bots {
        bot.failpoints("scheduler.tick=hold").await;
    }
    let held = scrapes_until(&rig, WAIT, |s| {
        sample(s, PENDING) == Some(1.0) && sample(s, OLDEST).is_some_and(|a| a >= 2.0)
    })
    .await;
    for s in &held {
        let age = sample(s, OLDEST).unwrap();
        assert!(age <= queued.elapsed().as_secs_f64() + 1.0, "{age} s old");
        assert_eq!(
            sample(s, OVERDUE),
            Some(0.0),
            "the escalation is not due yet"
        );
    }
    // Due 10 s after opening; overdue a minute after that, with no scheduler to fire it.
    scrapes_until(&rig, Duration::from_secs(90), |s| {
        sample(s, OVERDUE) == Some(1.0)
    })
    .await;
    assert_eq!(store.outbox_len().await.unwrap(), 1);
    for bot in &rig.bots {
        bot.failpoints("scheduler.tick=off").await;
    }
    // The escalation fires, late, and its page waits behind the held outbox too.
    scrapes_until(&rig, WAIT, |s| {
        sample(s, PENDING) == Some(2.0) && sample(s, OVERDUE) == Some(0.0)
    })
    .await;
    let waited = queued.elapsed().as_secs_f64();
    for bot in &rig.bots {
        bot.failpoints("outbox.tick=off").await;
    }
    let drained = scrapes_until(&rig, WAIT, |s| {
        sample(s, PENDING) == Some(0.0) && sample(s, OLDEST) == Some(0.0)
    })
    .await;
    assert_eq!(store.outbox_len().await.unwrap(), 0);
    // Each replica counts the pages it sent.
    let pages: f64 = drained.iter().filter_map(|s| sample(s, PAGES)).sum();
    let wait: f64 = drained.iter().filter_map(|s| sample(s, PAGE_WAIT)).sum();
    assert_eq!(pages, 2.0, "the opening page and the escalation");
    assert!(
        wait >= waited,
        "the first page waited {waited} s: {wait} s in all"
    );
    store.close().await;
    rig.finish().await;
}

#[tokio::test]
async fn postgres_two_replicas_report_the_shared_backlog() {
    let rig = Rig::postgres(FAST_SLACK, incidents_yaml(1000, 10, 600)).await;
    the_backlog_series_follow_the_store(rig).await;
}

#[tokio::test]
async fn sqlite_one_replica_reports_its_backlog() {
    let rig = Rig::sqlite(FAST_SLACK, incidents_yaml(1000, 10, 600)).await;
    the_backlog_series_follow_the_store(rig).await;
}
