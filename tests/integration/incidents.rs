//! Incidents end to end: a real Alertmanager posting to the webhook, escalation pings
//! walking the roster, status updates at the cadence, restarts and two replicas.

use std::time::Duration;

use crate::support::alertmanager::{Alertmanager, one_alert_notification, post_notification};
use crate::support::bot::Bot;
use crate::support::fake_slack::{Call, FakeSlack};
use crate::support::http;

const TOKEN: &str = "test-alert-token-0123456789";
const CHANNEL: &str = "C0INCIDENT";
const WAIT: Duration = Duration::from_secs(20);

/// Incident settings with the escalation and cadence in seconds.
fn incidents_yaml(ack_secs: u32, status_secs: u32) -> String {
    format!(
        "approvals:\n  roles:\n    operator: [U0OPENER]\n\
         incidents:\n  channel: {CHANNEL}\n  timezone: Europe/London\n  scheduler_poll: 1s\n  status_every: {status_secs}s\n\
         \x20 roster:\n    primary: [U0PRIMARY]\n    secondary: [U0SECOND]\n    platform_lead: [S0PLATFORM]\n    incident_commander: [U0COMMANDER]\n\
         \x20 escalation:\n    critical: {{ack_within: {ack_secs}s}}\n    high: {{ack_within: {ack_secs}s, escalate_unresolved: {}s}}\n",
        ack_secs * 2
    )
}

async fn bot(fake: &FakeSlack, store: Option<&str>, ack_secs: u32, status_secs: u32) -> Bot {
    let bot = Bot::start_config(
        fake,
        store,
        &[("ODORBOT_ALERTS_TOKEN", TOKEN)],
        &incidents_yaml(ack_secs, status_secs),
    )
    .await;
    assert!(bot.wait_readyz(200, WAIT).await, "{}", bot.logs());
    bot
}

fn text(call: &Call) -> String {
    call.body.to_string()
}

/// Root messages posted in the incident channel (not in a thread).
fn roots(fake: &FakeSlack) -> Vec<Call> {
    fake.roots_in(CHANNEL)
}

/// Messages posted in threads (each test has one incident, so one thread).
fn thread(fake: &FakeSlack) -> Vec<String> {
    fake.calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 200 && c.body["thread_ts"].is_string())
        .map(|c| text(&c))
        .collect()
}

async fn wait_thread(fake: &FakeSlack, what: &str, n: usize) -> bool {
    fake.wait_until(WAIT, |f| {
        thread(f).iter().filter(|m| m.contains(what)).count() >= n
    })
    .await
}

const API_DOWN: [(&str, &str); 3] = [
    ("alertname", "OdorDiffApiDown"),
    ("namespace", "odordiff"),
    ("severity", "critical"),
];

/// The fake Slack, odorbot with slow escalation, and a real Alertmanager posting to it.
async fn api_down_rig() -> (FakeSlack, Bot, Alertmanager) {
    let fake = FakeSlack::start().await;
    let bot = bot(&fake, None, 300, 600).await;
    let am = Alertmanager::start(bot.admin, TOKEN).await;
    (fake, bot, am)
}

#[tokio::test]
async fn alertmanager_opens_one_incident_per_group_and_notes_the_resolution() {
    let (fake, bot, am) = api_down_rig().await;
    let labels = API_DOWN;
    am.alert(&labels, "API Service Down", false).await;
    assert!(
        fake.wait_until(WAIT, |f| !roots(f).is_empty()).await,
        "no incident opened\n{}",
        bot.logs()
    );
    let root = text(&roots(&fake)[0]);
    assert!(root.contains("INC-1 CRITICAL — API Service Down"), "{root}");
    assert!(
        wait_thread(&fake, "Page:* <@U0PRIMARY>", 1).await,
        "primary paged at once: {:?}",
        thread(&fake)
    );
    // Alertmanager repeats the group's notification (repeat_interval 2s): still one incident.
    am.alert(&labels, "API Service Down", false).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(roots(&fake).len(), 1, "{:?}", roots(&fake));
    am.alert(&labels, "API Service Down", true).await;
    assert!(
        wait_thread(&fake, "reports OdorDiffApiDown resolved", 1).await,
        "{:?}\n{}",
        thread(&fake),
        bot.logs()
    );
    assert!(wait_thread(&fake, "Resolve the incident?", 1).await);
    assert_eq!(roots(&fake).len(), 1);
}

/// Tomorrow's outage is not today's: an alert that resolved, whose incident was resolved,
/// and that fires again gets a new incident and a new page; until then, repeats are one.
#[tokio::test]
async fn an_alert_firing_again_after_its_incident_was_resolved_opens_a_new_one() {
    let (fake, bot, am) = api_down_rig().await;
    let labels = API_DOWN;
    let pages = |f: &FakeSlack| {
        thread(f)
            .iter()
            .filter(|m| m.contains("Page:* <@U0PRIMARY>"))
            .count()
    };
    am.alert(&labels, "API Service Down", false).await;
    assert!(
        fake.wait_until(WAIT, |f| pages(f) == 1).await,
        "{}",
        bot.logs()
    );
    am.alert(&labels, "API Service Down", true).await;
    assert!(wait_thread(&fake, "Resolve the incident?", 1).await);
    let d = fake
        .slash_command("U0PRIMARY", "C111", "resolve INC-1")
        .await;
    fake.wait_ack(&d, WAIT).await.unwrap();
    assert!(
        wait_thread(&fake, "resolved", 2).await,
        "{:?}",
        thread(&fake)
    );
    am.alert(&labels, "API Service Down", false).await;
    assert!(
        fake.wait_until(WAIT, |f| roots(f).len() == 2 && pages(f) == 2)
            .await,
        "the refire opened no incident: {:?}\n{}",
        roots(&fake).iter().map(text).collect::<Vec<_>>(),
        bot.logs()
    );
    assert!(text(&roots(&fake)[1]).contains("INC-2 CRITICAL"));
    // Alertmanager keeps repeating the new firing every 2 s: still two incidents, two pages.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!((roots(&fake).len(), pages(&fake)), (2, 2));
}

#[tokio::test]
async fn a_critical_incident_walks_the_roster_until_acknowledged() {
    let fake = FakeSlack::start().await;
    let _bot = bot(&fake, None, 2, 600).await;
    let d = fake
        .slash_command(
            "U0OPENER",
            "C111",
            "incident open critical checkout is down",
        )
        .await;
    fake.wait_ack(&d, WAIT).await.unwrap();
    assert!(
        wait_thread(&fake, "Page:* <@U0PRIMARY>", 1).await,
        "{:?}",
        thread(&fake)
    );
    assert!(
        wait_thread(&fake, "Escalated to Secondary on-call* <@U0SECOND>", 1).await,
        "{:?}",
        thread(&fake)
    );
    assert!(
        wait_thread(
            &fake,
            "Escalated to Platform lead* <!subteam^S0PLATFORM>",
            1
        )
        .await,
        "{:?}",
        thread(&fake)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let escalations = thread(&fake)
        .iter()
        .filter(|m| m.contains("⏫ *Escalated to"))
        .count();
    assert_eq!(
        escalations,
        2,
        "the roster ends at the platform lead: {:?}",
        thread(&fake)
    );
}

#[tokio::test]
async fn acknowledgement_stops_the_escalation() {
    let fake = FakeSlack::start().await;
    let _bot = bot(&fake, None, 3, 600).await;
    fake.slash_command(
        "U0OPENER",
        "C111",
        "incident open critical checkout is down",
    )
    .await;
    assert!(wait_thread(&fake, "Page:*", 1).await);
    let ack = fake.slash_command("U0PRIMARY", "C111", "ack INC-1").await;
    assert!(fake.reply_to(&ack, WAIT).await.is_some());
    assert!(
        wait_thread(&fake, "<@U0PRIMARY> acknowledged INC-1", 1).await,
        "{:?}",
        thread(&fake)
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !thread(&fake).iter().any(|m| m.contains("Escalated to")),
        "{:?}",
        thread(&fake)
    );
    // The root message was updated to show the owner.
    let updates = fake.calls_to("chat.update");
    assert!(
        updates.iter().any(|c| text(c).contains("acknowledged")),
        "{updates:?}"
    );
}

#[tokio::test]
async fn status_updates_come_at_the_cadence_and_a_human_update_clears_the_nudge() {
    let fake = FakeSlack::start().await;
    let _bot = bot(&fake, None, 300, 2).await;
    fake.slash_command("U0OPENER", "C111", "incident open high checkout is slow")
        .await;
    assert!(
        wait_thread(&fake, "Status of INC-1", 1).await,
        "{:?}",
        thread(&fake)
    );
    let first = thread(&fake)
        .into_iter()
        .find(|m| m.contains("Status of INC-1"))
        .unwrap();
    assert!(first.contains("high, open"), "{first}");
    assert!(first.contains("not acknowledged"), "{first}");
    assert!(first.contains("Live signals"), "{first}");
    assert!(
        first.contains("<@U0COMMANDER>: no human update"),
        "the commander is nudged: {first}"
    );
    fake.slash_command(
        "U0PRIMARY",
        "C111",
        "update INC-1 rolled back, watching the error rate",
    )
    .await;
    assert!(wait_thread(&fake, "Update from <@U0PRIMARY>", 1).await);
    let seen = thread(&fake)
        .iter()
        .filter(|m| m.contains("Status of INC-1"))
        .count();
    assert!(wait_thread(&fake, "Status of INC-1", seen + 1).await);
    let next = thread(&fake)
        .into_iter()
        .filter(|m| m.contains("Status of INC-1"))
        .nth(seen)
        .unwrap();
    assert!(
        !next.contains("no human update"),
        "a human update clears the nudge: {next}"
    );
    assert!(
        next.contains("rolled back, watching the error rate"),
        "actions since the last update: {next}"
    );
    fake.slash_command("U0PRIMARY", "C111", "resolve INC-1")
        .await;
    assert!(
        wait_thread(&fake, "resolved INC-1. Timeline", 1).await,
        "{:?}",
        thread(&fake)
    );
    let after = thread(&fake)
        .iter()
        .filter(|m| m.contains("Status of INC-1"))
        .count();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        thread(&fake)
            .iter()
            .filter(|m| m.contains("Status of INC-1"))
            .count(),
        after,
        "no updates once resolved"
    );
}

#[tokio::test]
async fn a_status_update_due_after_a_restart_still_comes_exactly_once() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let first = bot(&fake, Some(&store), 300, 6).await;
    fake.slash_command("U0OPENER", "C111", "incident open high checkout is slow")
        .await;
    assert!(wait_thread(&fake, "Pinged", 0).await && wait_thread(&fake, "<@U0PRIMARY>", 1).await);
    first.kill9().await;
    let second = bot(&fake, Some(&store), 300, 6).await;
    assert!(
        wait_thread(&fake, "Status of INC-1", 1).await,
        "{:?}\n{}",
        thread(&fake),
        second.logs()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The dead process may have been sending the page: its thread waits out that claim's
    // lease, so more than one period may have passed. Each period's update (they differ
    // in age) comes once, and the page too.
    let msgs = thread(&fake);
    let statuses: Vec<&String> = msgs
        .iter()
        .filter(|m| m.contains("Status of INC-1"))
        .collect();
    let distinct: std::collections::BTreeSet<&&String> = statuses.iter().collect();
    assert_eq!(distinct.len(), statuses.len(), "{msgs:?}");
    assert_eq!(
        msgs.iter().filter(|m| m.contains("needs an owner")).count(),
        1,
        "{msgs:?}"
    );
}

#[tokio::test]
async fn two_replicas_on_postgres_never_post_twice() {
    let db = crate::support::pg::TempDb::create().await;
    let fake = FakeSlack::start().await;
    let a = bot(&fake, Some(&db.url), 2, 2).await;
    let b = bot(&fake, Some(&db.url), 2, 2).await;
    fake.slash_command(
        "U0OPENER",
        "C111",
        "incident open critical checkout is down",
    )
    .await;
    assert!(
        wait_thread(&fake, "Escalated to Platform lead", 1).await,
        "{:?}",
        thread(&fake)
    );
    assert!(
        wait_thread(&fake, "Status of INC-1", 3).await,
        "{:?}",
        thread(&fake)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let msgs = thread(&fake);
    assert_eq!(
        msgs.iter()
            .filter(|m| m.contains("⏫ *Escalated to Secondary"))
            .count(),
        1,
        "{msgs:?}"
    );
    assert_eq!(
        msgs.iter()
            .filter(|m| m.contains("⏫ *Escalated to Platform lead"))
            .count(),
        1,
        "{msgs:?}"
    );
    assert_eq!(
        msgs.iter().filter(|m| m.contains("Page:*")).count(),
        1,
        "{msgs:?}"
    );
    // Status updates 2 s apart: never two for the same period.
    let times: Vec<std::time::Instant> = fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| text(c).contains("Status of INC-1"))
        .map(|c| c.at)
        .collect();
    for pair in times.windows(2) {
        assert!(
            pair[1].duration_since(pair[0]) >= Duration::from_millis(1500),
            "two updates at once: {times:?}"
        );
    }
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test]
async fn the_webhook_refuses_bad_input_with_reasons_and_writes_nothing() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let bot = Bot::start_config(
        &fake,
        Some(&store),
        &[("ODORBOT_ALERTS_TOKEN", TOKEN)],
        &format!(
            "{}  alerts_max_body_bytes: 2048\n",
            incidents_yaml(300, 600)
        ),
    )
    .await;
    assert!(bot.wait_readyz(200, WAIT).await, "{}", bot.logs());
    let url = bot.url("/alerts");
    let good = r#"{"version":"4","groupKey":"g","status":"firing","receiver":"odorbot","alerts":[{"status":"firing","labels":{"alertname":"X"},"annotations":{},"startsAt":"2026-11-27T07:00:00Z","fingerprint":"ab12"}]}"#;
    let bearer = format!("Bearer {TOKEN}");
    // (headers, body, expected status, expected reason)
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], good.into(), 401, "missing bearer token"),
        (
            vec![("authorization", "Bearer wrong-token-wrong-token")],
            good.into(),
            403,
            "wrong bearer token",
        ),
        (
            vec![("authorization", &bearer)],
            vec![b' '; 4096],
            413,
            "larger than 2048 bytes (incidents.alerts_max_body_bytes)",
        ),
        (
            vec![("authorization", &bearer)],
            b"{not json".to_vec(),
            400,
            "body is not JSON",
        ),
        (
            vec![("authorization", &bearer)],
            good.replace("\"4\"", "\"5\"").into(),
            400,
            "unsupported payload version \"5\"",
        ),
        (
            vec![("authorization", &bearer)],
            good.replace("ab12", "zz").into(),
            400,
            "alerts[0].fingerprint",
        ),
    ];
    for (headers, body, status, reason) in cases {
        let mut h = headers.clone();
        h.push(("content-type", "application/json"));
        let (got, text) = http::post(&url, &h, body)
            .await
            .expect("the webhook answers");
        assert_eq!(got, status, "{text}");
        assert!(text.contains(reason), "{text}");
    }
    let store = odorbot::store::Store::open(&secrecy::SecretString::from(store), 1)
        .await
        .unwrap();
    assert_eq!(
        store.open_work().await.unwrap().incidents,
        0,
        "nothing half-written"
    );
    assert!(
        store.inbox_errors().await.unwrap().is_empty(),
        "no refused body stored for the intake loop"
    );
    assert!(roots(&fake).is_empty());
}

/// The first checklist button id in a posted message: `checklist:<id>:0`.
fn checklist_id(call: &Call) -> String {
    let text = call.body.to_string();
    let start = text.find("checklist:").expect("a checklist button");
    let rest = &text[start + "checklist:".len()..];
    rest[..rest.find(':').unwrap()].to_owned()
}

#[tokio::test]
async fn resolving_posts_a_post_incident_checklist_whose_ticks_persist() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let first = bot(&fake, Some(&store), 300, 600).await;
    fake.slash_command("U0OPENER", "C111", "incident open high checkout is slow")
        .await;
    assert!(wait_thread(&fake, "<@U0PRIMARY>", 1).await);
    fake.slash_command("U0PRIMARY", "C111", "resolve").await;
    assert!(
        wait_thread(&fake, "Post-Incident Checklist (0/7 done)", 1).await,
        "{:?}",
        thread(&fake)
    );
    // The checklist follows the "resolved" timeline in the thread, never precedes it.
    let messages = thread(&fake);
    let at = |what: &str| {
        messages
            .iter()
            .position(|m| m.contains(what))
            .unwrap_or_else(|| panic!("{what:?} in {messages:?}"))
    };
    assert!(
        at("resolved INC-1. Timeline") < at("Post-Incident Checklist"),
        "{messages:?}"
    );
    let posted = fake
        .calls_to("chat.postMessage")
        .into_iter()
        .find(|c| text(c).contains("Post-Incident Checklist (0/7 done)"))
        .unwrap();
    let id = checklist_id(&posted);
    fake.block_action(
        "U0PRIMARY",
        CHANNEL,
        &format!("checklist:{id}:0"),
        "",
        "1700000000.000200",
    )
    .await;
    assert!(
        fake.wait_until(WAIT, |f| f
            .calls_to("chat.update")
            .iter()
            .any(|c| text(c).contains("(1/7 done)")))
            .await
    );
    // A restart later, another person ticks the next item: both ticks show.
    first.kill9().await;
    let _second = bot(&fake, Some(&store), 300, 600).await;
    fake.block_action(
        "U0SECOND",
        CHANNEL,
        &format!("checklist:{id}:1"),
        "",
        "1700000000.000200",
    )
    .await;
    let both = fake
        .wait_until(WAIT, |f| {
            f.calls_to("chat.update").iter().any(|c| {
                text(c).contains("(2/7 done)")
                    && text(c).contains("<@U0PRIMARY>")
                    && text(c).contains("<@U0SECOND>")
            })
        })
        .await;
    assert!(both, "{:?}", fake.calls_to("chat.update"));
}

#[tokio::test]
async fn maintenance_reminders_post_their_checklist_when_due_and_rearm() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let store = odorbot::store::Store::open(&secrecy::SecretString::from(url.clone()), 1)
        .await
        .unwrap();
    // The daily reminder fell due a moment ago.
    store
        .schedule("maintenance", "daily-tasks", jiff::Timestamp::now())
        .await
        .unwrap();
    let yaml = format!(
        "{}  maintenance_channel: C0MAINT\n",
        incidents_yaml(300, 600)
    );
    let bot = Bot::start_config(&fake, Some(&url), &[("ODORBOT_ALERTS_TOKEN", TOKEN)], &yaml).await;
    let posted = fake
        .wait_until(WAIT, |f| {
            f.calls_to("chat.postMessage").iter().any(|c| {
                c.body["channel"] == "C0MAINT"
                    && text(c).contains("Review monitoring dashboards for anomalies")
            })
        })
        .await;
    assert!(posted, "{}", bot.logs());
    // Re-armed for the next day at 09:00 London time; the other lists are armed too.
    let mut next = store.timers_for("daily-tasks").await.unwrap();
    for _ in 0..50 {
        if next.iter().all(|t| t.due > jiff::Timestamp::now()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        next = store.timers_for("daily-tasks").await.unwrap();
    }
    assert_eq!(next.len(), 1);
    let local = next[0]
        .due
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap());
    assert_eq!((local.hour(), local.minute()), (9, 0));
    assert!(next[0].due > jiff::Timestamp::now());
    for list in ["weekly-tasks", "monthly-tasks", "quarterly-tasks"] {
        assert_eq!(store.timers_for(list).await.unwrap().len(), 1, "{list}");
    }
}

/// A click can come before odorbot has recorded the checklist's ts (Slack answered the post
/// late, or not yet): the tick still shows, on the message that was clicked.
#[tokio::test]
async fn a_tick_before_the_checklists_ts_is_known_updates_the_clicked_message() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let _bot = bot(&fake, Some(&store), 300, 600).await;
    // Every post fails, so the checklist's message never gets a recorded ts.
    fake.fail_next("chat.postMessage", 10_000, 500);
    fake.slash_command("U0ASKER", "C0TEAM", "checklist pre-deployment")
        .await;
    let attempts = fake.wait_calls("chat.postMessage", 1, WAIT).await;
    let id = checklist_id(attempts.first().expect("a post attempt"));
    fake.block_action(
        "U0ASKER",
        "C0TEAM",
        &format!("checklist:{id}:0"),
        "",
        "1700000099.000100",
    )
    .await;
    let updated = fake
        .wait_until(WAIT, |f| {
            f.calls_to("chat.update").iter().any(|c| {
                c.body["ts"] == "1700000099.000100"
                    && c.body["channel"] == "C0TEAM"
                    && text(c).contains("(1/")
            })
        })
        .await;
    assert!(updated, "{:?}", fake.calls_to("chat.update"));
}

#[tokio::test]
async fn checklists_and_contacts_on_demand() {
    let fake = FakeSlack::start().await;
    let _bot = bot(&fake, None, 300, 600).await;
    fake.slash_command("U0ASKER", "C0TEAM", "checklist pre-deployment")
        .await;
    let posted = fake
        .wait_until(WAIT, |f| {
            f.calls_to("chat.postMessage")
                .iter()
                .any(|c| c.body["channel"] == "C0TEAM" && text(c).contains("Backup current state"))
        })
        .await;
    assert!(posted);
    let d = fake.slash_command("U0ASKER", "C0TEAM", "contacts").await;
    let reply = fake.reply_to(&d, WAIT).await.expect("a reply");
    for want in [
        "security@odordiff.ai",
        "dba@odordiff.ai",
        "https://status.odordiff.ai",
        "Cloudflare",
    ] {
        assert!(
            text(&reply).contains(want),
            "missing {want} in {}",
            text(&reply)
        );
    }
    let d = fake
        .slash_command("U0ASKER", "C0TEAM", "checklist nonsense")
        .await;
    let reply = fake.reply_to(&d, WAIT).await.expect("a reply");
    assert!(
        text(&reply).contains("one of pre-deployment, post-incident, disaster-recovery"),
        "{}",
        text(&reply)
    );
    // A name that is not found is echoed escaped: it notifies nobody, reorders nothing.
    let d = fake
        .slash_command("U0ASKER", "C0TEAM", "checklist <!channel>\u{202e}x")
        .await;
    let reply = text(&fake.reply_to(&d, WAIT).await.expect("a reply"));
    assert!(reply.contains("&lt;!channel&gt;"), "{reply}");
    assert!(!reply.contains("<!channel>"), "{reply}");
    assert!(!reply.contains('\u{202e}'), "{reply}");
}

#[tokio::test]
async fn the_post_update_button_opens_a_form_whose_text_lands_in_the_thread() {
    let fake = FakeSlack::start().await;
    let _bot = bot(&fake, None, 300, 600).await;
    fake.slash_command("U0OPENER", "C111", "incident open medium slow searches")
        .await;
    assert!(fake.wait_until(WAIT, |f| !roots(f).is_empty()).await);
    let root = text(&roots(&fake)[0]);
    let start = root
        .find("incident:update:")
        .unwrap_or_else(|| panic!("a Post update button in {root}"))
        + "incident:update:".len();
    let id = root[start..].split('"').next().unwrap().to_owned();
    fake.block_action(
        "U0PRIMARY",
        CHANNEL,
        &format!("incident:update:{id}"),
        "",
        "1700000000.000100",
    )
    .await;
    assert!(
        fake.wait_until(WAIT, |f| !f.calls_to("views.open").is_empty())
            .await,
        "a modal opened"
    );
    let view = text(&fake.calls_to("views.open")[0]);
    assert!(
        view.contains("incident-update") && view.contains(&id),
        "{view}"
    );
    fake.view_submission(
        "U0PRIMARY",
        "incident-update",
        &id,
        "index rebuilt, latency back to normal",
    )
    .await;
    assert!(
        wait_thread(
            &fake,
            "Update from <@U0PRIMARY>:* index rebuilt, latency back to normal",
            1
        )
        .await,
        "{:?}",
        thread(&fake)
    );
}

#[tokio::test]
async fn escalations_due_while_slack_is_down_arrive_after_a_restart_exactly_once() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let first = bot(&fake, Some(&store), 2, 600).await;
    fake.slash_command(
        "U0OPENER",
        "C111",
        "incident open critical checkout is down",
    )
    .await;
    assert!(wait_thread(&fake, "Page:*", 1).await);
    // Slack goes away; both escalations fall due meanwhile; then the process dies.
    fake.stop().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    first.kill9().await;
    fake.restart().await;
    let _second = bot(&fake, Some(&store), 2, 600).await;
    assert!(
        wait_thread(&fake, "⏫ *Escalated to Secondary on-call", 1).await,
        "{:?}",
        thread(&fake)
    );
    assert!(
        wait_thread(&fake, "⏫ *Escalated to Platform lead", 1).await,
        "{:?}",
        thread(&fake)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let msgs = thread(&fake);
    assert_eq!(
        msgs.iter()
            .filter(|m| m.contains("⏫ *Escalated to Secondary"))
            .count(),
        1,
        "{msgs:?}"
    );
    assert_eq!(
        msgs.iter()
            .filter(|m| m.contains("⏫ *Escalated to Platform lead"))
            .count(),
        1,
        "{msgs:?}"
    );
}

/// A sample's value in a `/metrics` scrape.
fn sample(scrape: &str, name: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.split(' ').next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Messages in the thread under the root message whose text contains `name`.
fn thread_of(fake: &FakeSlack, name: &str) -> Vec<Call> {
    let Some(ts) = fake.message_ts(|m| {
        m.get("thread_ts").is_none() && m["text"].as_str().is_some_and(|t| t.contains(name))
    }) else {
        return Vec::new();
    };
    fake.calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 200 && c.body["thread_ts"] == ts.as_str())
        .collect()
}

#[tokio::test]
async fn a_due_escalation_is_not_held_up_by_another_incidents_slow_root_message() {
    let fake = FakeSlack::start().await;
    let bot = bot(&fake, None, 2, 600).await;
    fake.slash_command("U0OPENER", "C111", "incident open critical payments down")
        .await;
    assert!(
        fake.wait_until(WAIT, |f| thread_of(f, "payments down")
            .iter()
            .any(|c| text(c).contains("Page:*")))
            .await,
        "{}",
        bot.logs()
    );
    let first_opened = std::time::Instant::now();
    // The second incident's root message takes eight seconds.
    fake.slow_next_roots(1, Duration::from_secs(8));
    fake.slash_command("U0OPENER", "C111", "incident open critical search down")
        .await;
    assert!(
        fake.wait_until(WAIT, |f| thread_of(f, "payments down")
            .iter()
            .any(|c| text(c).contains("Escalated to Secondary")))
            .await,
        "{}",
        bot.logs()
    );
    let escalated_after = first_opened.elapsed();
    assert!(
        escalated_after < Duration::from_secs(5),
        "escalated {escalated_after:?} after it was due in about 2 s"
    );
    assert_eq!(
        roots(&fake).len(),
        1,
        "escalated while the other root message was still being posted"
    );
    // Meanwhile the slow incident's escalation waits in the outbox for its root, and the
    // backlog gauges say so.
    let mut waiting = None;
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while waiting.is_none() && std::time::Instant::now() < until && roots(&fake).len() == 1 {
        let (_, body) = bot.get("/metrics").await.unwrap_or_default();
        let pending = sample(&body, "odorbot_outbox_pending").unwrap_or(0.0);
        let oldest = sample(&body, "odorbot_outbox_oldest_pending_seconds").unwrap_or(0.0);
        let overdue = sample(&body, "odorbot_timers_overdue");
        if pending >= 1.0 && oldest > 0.0 {
            waiting = Some((pending, oldest, overdue));
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let (_, _, overdue) = waiting.expect("the waiting escalation shows in odorbot_outbox_pending");
    assert_eq!(overdue, Some(0.0), "a timer in flight is not overdue");
    // The slow incident's page and its own escalation, due before its root existed, go
    // into its thread once the root is there.
    assert!(
        fake.wait_until(WAIT, |f| {
            let t = thread_of(f, "search down");
            t.iter().any(|c| text(c).contains("Page:*"))
                && t.iter().any(|c| text(c).contains("Escalated to Secondary"))
        })
        .await,
        "{:?}\n{}",
        thread(&fake),
        bot.logs()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let slow = thread_of(&fake, "search down");
    assert_eq!(
        slow.iter()
            .filter(|c| text(c).contains("Escalated to Secondary"))
            .count(),
        1,
        "{slow:?}"
    );
    assert_eq!(roots(&fake).len(), 2);
}

/// An alert's name is escaped once wherever it is shown: in the thread's note and in the
/// status update that lists it (the timeline keeps it as plain text).
#[tokio::test]
async fn alert_names_are_escaped_once_in_notes_and_status_updates() {
    let fake = FakeSlack::start().await;
    let bot = bot(&fake, None, 300, 2).await;
    let am = Alertmanager::start(bot.admin, TOKEN).await;
    let labels = [("alertname", "<!channel> & co"), ("severity", "high")];
    am.alert(&labels, "hostile name", false).await;
    assert!(
        wait_thread(&fake, "needs an owner", 1).await,
        "{}",
        bot.logs()
    );
    am.alert(&labels, "hostile name", true).await;
    let note = "Alertmanager reports &lt;!channel&gt; &amp; co resolved";
    assert!(
        wait_thread(&fake, note, 1).await,
        "{:?}\n{}",
        thread(&fake),
        bot.logs()
    );
    // The status update after it lists the note, escaped once.
    assert!(
        wait_thread(&fake, &format!("alert alertmanager — ✅ {note}"), 1).await,
        "{:?}",
        thread(&fake)
    );
    for line in thread(&fake) {
        assert!(!line.contains("&amp;lt;"), "escaped twice: {line}");
        assert!(!line.contains("<!channel>"), "not escaped: {line}");
    }
}

/// Notifications posted by the load tests below.
const STORM: usize = 200;
/// Incidents with their own root before a storm starts: the default threshold.
const ALONE: usize = 5;

/// Alert group `i` of a storm, one high alert each.
fn storm_alert(i: usize) -> String {
    one_alert_notification(
        &format!("storm{i}"),
        &format!("Storm{i}"),
        &format!("storm {i}"),
        i,
    )
}

/// Posts every body to the webhook, 16 at a time: each answer with how long it took.
async fn post_alerts(
    bot: &Bot,
    bodies: impl Iterator<Item = String>,
) -> Vec<(Option<(u16, String)>, Duration)> {
    use futures_util::StreamExt;
    futures_util::stream::iter(bodies)
        .map(|body| async move {
            let sent = std::time::Instant::now();
            let answer = post_notification(bot.url("/alerts"), TOKEN, body).await;
            (answer, sent.elapsed())
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Waits until the message `ts` is edited to read `wanted`.
async fn edited(fake: &FakeSlack, ts: &str, wanted: &str) -> bool {
    fake.wait_until(WAIT, |f| {
        f.calls_to("chat.update")
            .iter()
            .any(|c| c.body["ts"] == ts && text(c).contains(wanted))
    })
    .await
}

/// Root messages that Slack took.
fn posted_roots(fake: &FakeSlack) -> Vec<Call> {
    roots(fake)
        .into_iter()
        .filter(|c| c.status == 200)
        .collect()
}

/// Storm mode off and Slack's own pacing (one message a second per channel): 30 incidents
/// bring 60 messages, a minute of posting. An escalation that falls due meanwhile is a
/// page, and takes the next free slot ahead of the announcements still waiting: it is
/// posted within seconds of its due time, while roots of later incidents are still queued.
#[tokio::test]
async fn an_escalation_due_during_a_backlog_goes_ahead_of_the_announcements() {
    const LOAD: usize = 30;
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let yaml = incidents_yaml(8, 600).replace(
        "  scheduler_poll: 1s\n",
        "  scheduler_poll: 1s\n  storm: {threshold: 1000}\n",
    );
    let bot = Bot::start_config(
        &fake,
        Some(&store),
        &[("ODORBOT_ALERTS_TOKEN", TOKEN)],
        &yaml,
    )
    .await;
    assert!(bot.wait_readyz(200, WAIT).await, "{}", bot.logs());
    let started = std::time::Instant::now();
    for (answer, _) in post_alerts(&bot, (0..LOAD).map(storm_alert)).await {
        assert_eq!(answer.as_ref().map(|(s, _)| *s), Some(200), "{answer:?}");
    }
    let escalated = |f: &FakeSlack| {
        f.calls_to("chat.postMessage")
            .into_iter()
            .find(|c| c.status == 200 && text(c).contains("Escalated to Secondary"))
    };
    assert!(
        fake.wait_until(Duration::from_secs(40), |f| escalated(f).is_some())
            .await,
        "{} roots\n{}",
        posted_roots(&fake).len(),
        bot.logs()
    );
    let at = started.elapsed();
    let roots_then = posted_roots(&fake).len();
    // Due 8 s after the first incident opened; the scheduler looks every second.
    assert!(
        at < Duration::from_secs(14),
        "the first escalation came at {at:?}"
    );
    assert!(
        roots_then < LOAD,
        "announcements were still waiting: {roots_then} of {LOAD} roots posted"
    );
    eprintln!("first escalation at {at:?}, with {roots_then} of {LOAD} roots posted");
}

/// A storm at Slack's own pacing (one message a second per channel): 200 groups open 200
/// incidents; after the threshold's five, one summary root holds the rest, edited in place
/// as they join; its one page comes within ten seconds and its escalation on time, while
/// every incident is listed and can get its own thread. As the alerts clear the members
/// resolve, the summary shows the recovery and the storm is offered for resolving.
#[tokio::test]
async fn an_alert_storm_posts_one_summary_pages_once_and_recovers_visibly() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let bot = bot(&fake, Some(&store), 20, 600).await;
    let started = std::time::Instant::now();
    for (answer, _) in post_alerts(&bot, (0..STORM).map(storm_alert)).await {
        assert_eq!(answer.as_ref().map(|(s, _)| *s), Some(200), "{answer:?}");
    }
    let storm_root = |f: &FakeSlack| {
        posted_roots(f)
            .into_iter()
            .find(|c| text(c).contains("Alert storm"))
    };
    // The summary's root carries the page (a mention in a new message notifies).
    let page = "alert storm INC-6:";
    let paged = fake
        .wait_until(Duration::from_secs(10), |f| {
            storm_root(f).is_some_and(|c| text(&c).contains(page) && text(&c).contains("U0PRIMARY"))
        })
        .await;
    assert!(paged, "{:?}\n{}", thread(&fake), bot.logs());
    let to_page = started.elapsed();
    let ts = fake
        .message_ts(|m| m.to_string().contains("Alert storm"))
        .expect("the summary");
    let members = STORM - ALONE;
    let summary = format!("INC-6 Alert storm — {members} incidents, {members} open");
    assert!(
        edited(&fake, &ts, &summary).await,
        "{:?}\n{}",
        fake.calls_to("chat.update").last(),
        bot.logs()
    );
    let in_storm = |f: &FakeSlack, what: &str| {
        f.calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.status == 200 && c.body["thread_ts"] == ts && text(c).contains(what))
            .count()
    };
    // Unacknowledged past `ack_within` (20 s): the storm escalates, on time.
    assert!(
        fake.wait_until(Duration::from_secs(35), |f| in_storm(
            f,
            "Escalated to Secondary"
        ) == 1)
            .await,
        "{:?}\n{}",
        thread(&fake),
        bot.logs()
    );
    let to_escalation = started.elapsed();
    assert_eq!(
        in_storm(&fake, page),
        0,
        "one page for the storm's one severity, in its root"
    );
    assert_eq!(posted_roots(&fake).len(), ALONE + 1, "no root per member");

    // Every incident is listed; a member gets its own thread on demand, without a page.
    let d = fake.slash_command("U0OPENER", "C111", "incidents").await;
    let list = text(&fake.reply_to(&d, WAIT).await.expect("a reply"));
    assert!(
        list.contains(&format!("*{} open incidents*", STORM + 1)),
        "{list}"
    );
    assert!(
        list.contains("INC-7 high open") && list.contains("in storm INC-6"),
        "{list}"
    );
    let d = fake
        .slash_command("U0OPENER", "C111", "thread INC-100")
        .await;
    let reply = text(&fake.reply_to(&d, WAIT).await.expect("a reply"));
    assert!(reply.contains("INC-100 gets its own thread"), "{reply}");
    assert!(
        fake.wait_until(WAIT, |f| posted_roots(f)
            .iter()
            .any(|c| text(c).contains("INC-100 HIGH")))
            .await,
        "{}",
        bot.logs()
    );
    let own = fake
        .message_ts(|m| m.to_string().contains("INC-100 HIGH"))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pinged = fake
        .calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["thread_ts"] == own.as_str() && text(c).contains("needs an owner"))
        .count();
    assert_eq!(pinged, 0, "the storm paged for it already");

    // The alerts clear: members held by the storm resolve, the summary shows it.
    let cleared = (0..STORM).map(|i| storm_alert(i).replace("\"firing\"", "\"resolved\""));
    for (answer, _) in post_alerts(&bot, cleared).await {
        assert_eq!(answer.as_ref().map(|(s, _)| *s), Some(200), "{answer:?}");
    }
    let recovered = format!("*Resolved:* {} of {members}", members - 1);
    assert!(
        edited(&fake, &ts, &recovered).await,
        "{:?}\n{}",
        fake.calls_to("chat.update").last(),
        bot.logs()
    );
    let d = fake
        .slash_command("U0PRIMARY", "C111", "resolve INC-100")
        .await;
    assert!(fake.reply_to(&d, WAIT).await.is_some());
    assert!(
        fake.wait_until(WAIT, |f| in_storm(f, "INC-6 may be over") == 1)
            .await,
        "{:?}\n{}",
        thread(&fake),
        bot.logs()
    );
    eprintln!("storm of {STORM}: paged in {to_page:?}, escalated at {to_escalation:?}");
}

/// 200 one-alert groups posted 16 at a time, on SQLite, while applying notifications is
/// held at the failpoint: every post is answered 200 though nothing can be applied (the
/// webhook only stores), the inbox gauge counts them all; once the hold ends, each group
/// opens its incident, once, and the inbox empties.
#[tokio::test]
async fn a_storm_of_alerts_is_answered_at_once_and_applied_after() {
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let bot = Bot::start_sections(
        &fake,
        Some(&store),
        &[
            ("ODORBOT_ALERTS_TOKEN", TOKEN),
            ("ODORBOT_FAILPOINTS", "intake.after_claim=hold"),
        ],
        &[("slack", "  channel_rate_per_sec: 50\n  channel_burst: 50\n")],
        &incidents_yaml(300, 600),
    )
    .await;
    assert!(bot.wait_readyz(200, WAIT).await, "{}", bot.logs());
    let started = std::time::Instant::now();
    let answers = post_alerts(&bot, (0..STORM).map(storm_alert)).await;
    let posted = started.elapsed();
    let mut took: Vec<Duration> = answers.iter().map(|(_, d)| *d).collect();
    for (answer, _) in &answers {
        assert_eq!(answer.as_ref().map(|(s, _)| *s), Some(200), "{answer:?}");
    }
    took.sort_unstable();
    eprintln!(
        "{STORM} notifications answered in {posted:?}: p50 {:?}, p99 {:?}, max {:?}",
        took[STORM / 2],
        took[STORM * 99 / 100],
        took[STORM - 1]
    );
    assert!(roots(&fake).is_empty(), "nothing applied during the hold");
    let (_, scrape) = bot.get("/metrics").await.expect("metrics");
    assert_eq!(
        sample(&scrape, "odorbot_alert_inbox_pending"),
        Some(STORM as f64),
        "{scrape}"
    );
    assert!(sample(&scrape, "odorbot_alert_inbox_oldest_pending_seconds").unwrap() > 0.0);

    bot.failpoints("intake.after_claim=off").await;
    let store = odorbot::store::Store::open(&secrecy::SecretString::from(store), 1)
        .await
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let open = store.open_work().await.unwrap().incidents;
        let pending = store.inbox_errors().await.unwrap().len();
        // Each group's incident, and the storm that holds all but the first few.
        if open == STORM as i64 + 1 && pending == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "{open} incidents, {pending} notifications pending\n{}",
            bot.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let incidents = store.open_incidents().await.unwrap();
    // The threshold's worth alone, then one storm holds the rest.
    assert_eq!(incidents.len(), STORM + 1);
    let mut groups: Vec<String> = incidents
        .iter()
        .filter_map(|i| i.group_key.clone())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    assert_eq!(groups.len(), STORM, "one incident per group");
    assert!(
        fake.wait_until(WAIT, |f| roots(f).len() > ALONE).await,
        "{} roots\n{}",
        roots(&fake).len(),
        bot.logs()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        roots(&fake).len(),
        ALONE + 1,
        "a root each, then the storm's"
    );
    let (_, scrape) = bot.get("/metrics").await.expect("metrics");
    assert_eq!(sample(&scrape, "odorbot_alert_inbox_pending"), Some(0.0));
    store.close().await;
}
