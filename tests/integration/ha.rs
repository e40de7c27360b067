//! Two odorbot processes configured exactly as `manifests/overlays/ha` configures its two
//! pods — the rendered Deployment's arguments and environment, the ConfigMap's file at the
//! mount path, the Secret's keys as the mounted files, `store-url` from the Secret — on one
//! PostgreSQL store: each approval executes once, each timer posts once.
//!
//! What differs from a pod, and why: mount paths become directories of a temporary folder;
//! the Slack API URL points at the fake Slack; each process gets its own admin port (pods
//! have their own addresses, these share the host's); the Kubernetes credentials are the
//! ServiceAccount's token in a kubeconfig (a pod reads the same token from its mount); and
//! the workspace's people, channel and short test timings are merged into the config file,
//! as an installer edits `manifests/base/odorbot.yaml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Value, json};

use crate::support::alertmanager::{one_alert_notification, post_notification};
use crate::support::bot::{Bot, free_port};
use crate::support::cluster_seed::{API_IMAGE, seed_two_revisions};
use crate::support::fake_slack::{APP_TOKEN, BOT_TOKEN, Call, FakeSlack};
use crate::support::manifests::{one, render};
use crate::support::pg::TempDb;
use crate::support::probe_servers::serve;

const WAIT: Duration = Duration::from_secs(60);
const CHANNEL: &str = "C0OPS";
const INCIDENTS: &str = "C0INCIDENT";

/// The installer's edits for this workspace, with timings short enough for a test.
fn workspace(health: &str) -> Value {
    json!({
        "slack": {"ping_interval": "1s", "reconnect_max_backoff": "1s"},
        "engine": {"shutdown_grace": "10s"},
        // No Prometheus here: the shipped in-cluster addresses would only wait for DNS.
        "probes": {"health_url": health, "tls_host": "127.0.0.1:9", "timeout": "1s", "deadline": "2s",
                   "prometheus_url": null, "metrics_url": null},
        "approvals": {
            "roles": {"operator": ["U0ALICE", "U0OPENER"], "approver": ["U0BOB", "U0CAROL"]},
            "expiry": "60s", "watch": "3s", "watch_every": "1s", "rollout_timeout": "60s",
            "lease": "3s", "cooldowns": {"rollback": "off"},
        },
        "incidents": {
            "channel": INCIDENTS, "timezone": "Europe/London", "scheduler_poll": "1s",
            "status_every": "2s",
            "roster": {"primary": ["U0PRIMARY"], "secondary": ["U0SECOND"],
                       "platform_lead": ["U0LEAD"], "incident_commander": ["U0COMMANDER"]},
            "escalation": {"critical": {"ack_within": "2s"}},
        },
        "log": {"format": "text", "filter": "info,odorbot=debug"},
    })
}

/// `patch` merged into `base`: maps key by key, anything else replaced; null removes.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// One replica's command line and environment, derived from the rendered overlay.
struct Replica {
    args: Vec<String>,
    env: Vec<(String, String)>,
    admin: SocketAddr,
    dir: tempfile::TempDir,
}

fn replica(overlay: &[Value], secret: &BTreeMap<&str, String>, ns: &str, health: &str) -> Replica {
    let deployment = one(overlay, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let dir = tempfile::tempdir().unwrap();
    // Each volume at a directory of our own, with the files the pod would see.
    let mut mounts: Vec<(String, String)> = Vec::new();
    for mount in container["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        let path = mount["mountPath"].as_str().unwrap().to_owned();
        let local = dir.path().join(name);
        std::fs::create_dir_all(&local).unwrap();
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap();
        if let Some(cm) = volume["configMap"]["name"].as_str() {
            let config = overlay
                .iter()
                .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == cm)
                .unwrap();
            for (file, text) in config["data"].as_object().unwrap() {
                std::fs::write(local.join(file), text.as_str().unwrap()).unwrap();
            }
        }
        if volume["secret"]["secretName"] == "odorbot" {
            for item in volume["secret"]["items"].as_array().unwrap() {
                let key = item["key"].as_str().unwrap();
                let value = secret
                    .get(key)
                    .unwrap_or_else(|| panic!("the Secret has no {key}"));
                std::fs::write(local.join(item["path"].as_str().unwrap()), value).unwrap();
            }
        }
        mounts.push((path, local.display().to_string()));
    }
    // Through markers, so a local path (under /tmp) is never rewritten by the `/tmp` mount.
    let localise = |s: &str| {
        let marked = mounts
            .iter()
            .enumerate()
            .fold(s.to_owned(), |s, (i, (path, _))| {
                s.replace(path.as_str(), &format!("\u{0}{i}\u{0}"))
            });
        mounts
            .iter()
            .enumerate()
            .fold(marked, |s, (i, (_, local))| {
                s.replace(&format!("\u{0}{i}\u{0}"), local)
            })
    };
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| localise(a.as_str().unwrap()))
        .collect();
    // The config file: the shipped one at its localised paths, plus the workspace's edits.
    let config_path = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1].clone())
        .expect("the Deployment passes --config");
    let mut config: Value =
        serde_yaml_ng::from_str(&localise(&std::fs::read_to_string(&config_path).unwrap()))
            .unwrap();
    merge(&mut config, &workspace(health));
    std::fs::write(&config_path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();

    let mut env = Vec::new();
    for e in container["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap().to_owned();
        let value = if let Some(v) = e["value"].as_str() {
            localise(v)
        } else if e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace" {
            ns.to_owned()
        } else if let Some(key) = e["valueFrom"]["secretKeyRef"]["key"].as_str() {
            assert_eq!(e["valueFrom"]["secretKeyRef"]["name"], "odorbot");
            secret[key].clone()
        } else {
            panic!("an env source this test cannot provide: {e}")
        };
        env.push((name, value));
    }
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    Replica {
        args,
        env,
        admin,
        dir,
    }
}

fn text(c: &Call) -> String {
    c.body.to_string()
}

/// Opens a critical incident and waits for its last escalation and three status updates.
async fn open_critical_until_escalated(fake: &FakeSlack, logs: &dyn Fn() -> String) {
    fake.slash_command(
        "U0OPENER",
        "C111",
        "incident open critical checkout is down",
    )
    .await;
    assert!(
        fake.wait_until(WAIT, |f| {
            !posts_containing(f, "Escalated to Platform lead").is_empty()
                && posts_containing(f, "Status of INC-1").len() >= 3
        })
        .await,
        "{:?}\n{}",
        fake.calls_to("chat.postMessage"),
        logs()
    );
}

/// Each escalation of INC-1 posted once; the times its status updates were posted.
fn escalated_once_and_status_times(fake: &FakeSlack, logs: &str) -> Vec<std::time::Instant> {
    for escalation in [
        "⏫ *Escalated to Secondary",
        "⏫ *Escalated to Platform lead",
    ] {
        assert_eq!(
            posts_containing(fake, escalation).len(),
            1,
            "{escalation} once\n{logs}"
        );
    }
    posts_containing(fake, "Status of INC-1")
        .into_iter()
        .map(|c| c.at)
        .collect()
}

fn posts_containing(fake: &FakeSlack, what: &str) -> Vec<Call> {
    fake.calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 200 && text(c).contains(what))
        .collect()
}

#[tokio::test]
async fn two_replicas_configured_as_the_ha_overlay_execute_each_approval_once_and_post_each_timer_once()
 {
    let s = seed_two_revisions().await;
    let (addr, _health) = serve(
        Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/ready", get(|| async { "ok" })),
    )
    .await;
    let health = format!("http://{addr}/");
    let db = TempDb::create().await;
    let fake = FakeSlack::start().await;
    let overlay = render("manifests/overlays/ha");
    assert_eq!(one(&overlay, "Deployment")["spec"]["replicas"], 2);
    let secret: BTreeMap<&str, String> = [
        ("app-token", APP_TOKEN.to_owned()),
        ("bot-token", BOT_TOKEN.to_owned()),
        ("alerts-token", "ha-test-alerts-token-0123456789".to_owned()),
        (
            "postgres-url",
            "postgres://nobody@127.0.0.1:9/none".to_owned(),
        ),
        (
            "pgbouncer-url",
            "postgres://pgbouncer@127.0.0.1:9/pgbouncer".to_owned(),
        ),
        (
            "app-database-url",
            "postgres://app@127.0.0.1:9/odordiff".to_owned(),
        ),
        ("redis-url", "redis://127.0.0.1:9".to_owned()),
        ("store-url", db.url.clone()),
    ]
    .into();
    let kubeconfig = s.bot_kubeconfig_path().to_str().unwrap().to_owned();
    let mut bots = Vec::new();
    for _ in 0..2 {
        let r = replica(&overlay, &secret, &s.ns, &health);
        let mut env = r.env.clone();
        env.push(("SLACK_API_URL".into(), format!("{}/", fake.api_url())));
        env.push(("ODORBOT_HTTP_LISTEN".into(), r.admin.to_string()));
        env.push(("KUBECONFIG".into(), kubeconfig.clone()));
        assert!(
            r.env
                .iter()
                .any(|(k, v)| k == "ODORBOT_STORE_URL" && v == &db.url),
            "the overlay's store-url reaches the process: {:?}",
            r.env
        );
        let bot = Bot::spawn_exact(&r.args, &env, r.admin, r.dir);
        assert!(
            bot.wait_readyz(200, Duration::from_secs(30)).await,
            "{}",
            bot.logs()
        );
        bots.push(bot);
    }
    let logs = || all_logs(&bots);

    // One approval, clicked twenty times by two approvers while both replicas listen.
    let d = fake
        .slash_command(
            "U0ALICE",
            CHANNEL,
            "rollback odordiff-api --reason \"bad deploy\"",
        )
        .await;
    let answer = text(&fake.reply_to(&d, WAIT).await.expect("a reply"));
    assert!(answer.contains("Requested"), "{answer}\n{}", logs());
    assert!(
        fake.wait_until(WAIT, |f| !posts_containing(f, "Approval needed").is_empty())
            .await
    );
    let card = text(&posts_containing(&fake, "Approval needed")[0]);
    let start = card.find("approval:approve:").unwrap() + "approval:approve:".len();
    let id = card[start..].split('"').next().unwrap().to_owned();
    for i in 0..20 {
        let user = ["U0BOB", "U0CAROL"][i % 2];
        let click = fake
            .block_action(
                user,
                CHANNEL,
                &format!("approval:approve:{id}"),
                "",
                "1700000000.000100",
            )
            .await;
        if i % 5 == 0 {
            fake.resend(&click).await;
        }
    }
    assert!(
        fake.wait_until(WAIT, |f| !posts_containing(f, "*succeeded*").is_empty())
            .await,
        "{}",
        logs()
    );

    // One critical incident: its escalations and status updates are timers in the store.
    open_critical_until_escalated(&fake, &logs).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let store = odorbot::store::Store::open(&secrecy::SecretString::from(db.url.clone()), 1)
        .await
        .unwrap();
    let executions = store
        .audit_since(jiff::Timestamp::UNIX_EPOCH)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "execute" && e.subject == id)
        .count();
    assert_eq!(executions, 1, "one execution for one approval");
    assert_eq!(posts_containing(&fake, "*succeeded*").len(), 1);
    let deployment: Deployment = s.api::<Deployment>().get("odordiff-api").await.unwrap();
    assert_eq!(
        deployment.spec.unwrap().template.spec.unwrap().containers[0].image,
        Some(format!("{API_IMAGE}:1.5.0"))
    );
    let times = escalated_once_and_status_times(&fake, &logs());
    for pair in times.windows(2) {
        assert!(
            pair[1].duration_since(pair[0]) >= Duration::from_millis(1500),
            "two status updates for one period: {times:?}"
        );
    }
    store.close().await;
    for bot in bots {
        let (status, _) = bot.terminate().await;
        assert!(status.success());
    }
    db.drop_db().await;
}

/// The incident settings of the slow-root test: a lease far shorter than the root post.
fn slow_root_yaml() -> String {
    format!(
        "approvals:\n  roles:\n    operator: [U0OPENER]\n\
         incidents:\n  channel: {INCIDENTS}\n  timezone: Europe/London\n  scheduler_poll: 1s\n  timer_lease: 1s\n  status_every: 2s\n\
         \x20 roster:\n    primary: [U0PRIMARY]\n    secondary: [U0SECOND]\n    platform_lead: [U0LEAD]\n    incident_commander: [U0COMMANDER]\n\
         \x20 escalation:\n    critical: {{ack_within: 2s}}\n"
    )
}

/// Root messages in the incident channel (no thread).
fn roots(fake: &FakeSlack) -> Vec<Call> {
    fake.roots_in(INCIDENTS)
}

#[tokio::test]
async fn two_replicas_whose_root_post_outlasts_the_lease_post_one_root_one_page_and_every_firing_once_in_its_thread()
 {
    let db = TempDb::create().await;
    let fake = FakeSlack::start().await;
    let mut bots = Vec::new();
    for _ in 0..2 {
        let bot = Bot::start_config(&fake, Some(&db.url), &[], &slow_root_yaml()).await;
        assert!(bot.wait_readyz(200, WAIT).await, "{}", bot.logs());
        bots.push(bot);
    }
    let logs = || all_logs(&bots);
    // Five seconds for the root: five leases, two escalations and two status periods.
    fake.slow_next_roots(2, Duration::from_secs(5));
    let opened = std::time::Instant::now();
    open_critical_until_escalated(&fake, &logs).await;
    let resolve = fake
        .slash_command("U0PRIMARY", "C111", "resolve INC-1")
        .await;
    assert!(fake.reply_to(&resolve, WAIT).await.is_some());
    assert!(
        fake.wait_until(WAIT, |f| !posts_containing(f, "resolved INC-1").is_empty())
            .await,
        "{}",
        logs()
    );
    // Whatever was queued is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let roots = roots(&fake);
    assert_eq!(roots.len(), 1, "one root message\n{}", logs());
    assert!(
        roots[0].at.duration_since(opened) >= Duration::from_secs(5),
        "the root was slow"
    );
    let threads: std::collections::BTreeSet<String> = fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 200)
        .filter_map(|c| c.body["thread_ts"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        threads.len(),
        1,
        "every message in the one thread: {threads:?}"
    );
    assert_eq!(posts_containing(&fake, "Page:*").len(), 1, "{}", logs());
    let times = escalated_once_and_status_times(&fake, &logs());
    let store = odorbot::store::Store::open(&secrecy::SecretString::from(db.url.clone()), 1)
        .await
        .unwrap();
    let incident = store.incident_by_number(1).await.unwrap().unwrap();
    let timeline = store.timeline(&incident.id).await.unwrap();
    let recorded = |kind: &str| timeline.iter().filter(|e| e.kind == kind).count();
    // Every firing the timeline records was delivered, the ones due before the root too.
    assert_eq!(recorded("status"), times.len(), "{timeline:?}");
    assert_eq!(recorded("escalated"), 2, "{timeline:?}");
    assert_eq!(store.outbox_len().await.unwrap(), 0);
    let before_root = timeline
        .iter()
        .filter(|e| e.kind == "status" || e.kind == "escalated")
        .filter(|e| e.at < incident.opened_at + jiff::SignedDuration::from_secs(4))
        .count();
    assert!(
        before_root >= 2,
        "firings fell due while the root was being posted: {timeline:?}"
    );
    store.close().await;
    drop(bots);
    db.drop_db().await;
}

/// Incidents opened by the load test's alerts.
const LOAD: usize = 200;

/// Two replicas on one PostgreSQL store pace the incident channel together: 40 incidents,
/// 20 through each, make 80 messages at 10 a second with a burst of 2, and Slack never sees
/// more than that rate from both together (each pacing alone would let 20 a second through).
#[tokio::test]
async fn two_replicas_share_the_channels_pacing() {
    const INCIDENTS_OPENED: usize = 40;
    let db = TempDb::create().await;
    let fake = FakeSlack::start().await;
    let token = "test-alert-token-0123456789";
    let bots = load_replicas(
        &fake,
        &db,
        token,
        "  channel_rate_per_sec: 10\n  channel_burst: 2\n",
    )
    .await;
    let posts = (0..INCIDENTS_OPENED).map(|i| {
        let body = one_alert_notification(&format!("pace{i}"), &format!("Pace{i}"), "pace", i);
        post_notification(bots[i % 2].url("/alerts"), token, body)
    });
    for answer in futures_util::future::join_all(posts).await {
        assert_eq!(answer.as_ref().map(|(s, _)| *s), Some(200), "{answer:?}");
    }
    let sent = |f: &FakeSlack| {
        let mut at: Vec<std::time::Instant> = f
            .calls_to("chat.postMessage")
            .iter()
            .filter(|c| c.status == 200 && c.body["channel"] == INCIDENTS)
            .map(|c| c.at)
            .collect();
        at.sort_unstable();
        at
    };
    assert!(
        fake.wait_until(Duration::from_secs(60), |f| sent(f).len()
            >= 2 * INCIDENTS_OPENED)
            .await,
        "{} messages\n{}",
        sent(&fake).len(),
        all_logs(&bots)
    );
    let at = sent(&fake);
    // The most messages Slack saw within any one second: the rate and the burst, and one
    // for an answer's timing jitter.
    let busiest = (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| t.duration_since(at[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    let span = at[at.len() - 1].duration_since(at[0]);
    eprintln!(
        "{} messages over {span:?}; at most {busiest} within a second",
        at.len()
    );
    assert!(busiest <= 13, "{busiest} messages within one second");
    assert!(
        span >= Duration::from_secs(7),
        "80 messages at 10/s took {span:?}"
    );
    db.drop_db().await;
}

/// Two replicas on `db` with the load settings, `slack` as their Slack section, ready.
async fn load_replicas(fake: &FakeSlack, db: &TempDb, token: &str, slack: &str) -> Vec<Bot> {
    let mut bots = Vec::new();
    for _ in 0..2 {
        let bot = Bot::start_sections(
            fake,
            Some(&db.url),
            &[("ODORBOT_ALERTS_TOKEN", token)],
            &[("slack", slack)],
            &load_yaml(),
        )
        .await;
        assert!(bot.wait_readyz(200, WAIT).await, "{}", bot.logs());
        bots.push(bot);
    }
    bots
}

/// The load tests' incident settings: status updates often enough that a couple of hundred
/// fall due together, and storm mode off (a threshold above the load): these tests are about
/// every incident's own thread; storms have theirs in `incidents.rs`.
fn load_yaml() -> String {
    format!(
        "incidents:\n  channel: {INCIDENTS}\n  timezone: Europe/London\n  scheduler_poll: 1s\n  status_every: 3s\n\
         \x20 storm: {{threshold: 1000}}\n\
         \x20 roster:\n    primary: [U0PRIMARY]\n    secondary: [U0SECOND]\n"
    )
}

/// Two replicas on one PostgreSQL take 200 alerts at once, 100 through each: every
/// incident gets one root, one page and its status updates once each, however the two
/// replicas' schedulers and outboxes share the timers due together.
#[tokio::test]
async fn two_replicas_under_a_burst_of_alerts_post_one_root_one_page_and_each_status_update_once() {
    let db = TempDb::create().await;
    let fake = FakeSlack::start().await;
    let token = "test-alert-token-0123456789";
    // Slack's pacing as loose as the config allows: one channel takes every root, so the
    // default one a second would take minutes.
    let mut bots = load_replicas(
        &fake,
        &db,
        token,
        "  channel_rate_per_sec: 50\n  channel_burst: 50\n",
    )
    .await;
    let logs = || all_logs(&bots);
    let started = std::time::Instant::now();
    let posts = (0..LOAD).map(|i| {
        let body = one_alert_notification(
            &format!("load{i}"),
            &format!("Load{i}"),
            &format!("load {i}"),
            i,
        );
        post_notification(bots[i % 2].url("/alerts"), token, body)
    });
    for answer in futures_util::future::join_all(posts).await {
        assert_eq!(answer.as_ref().map(|(s, _)| *s), Some(200), "{answer:?}");
    }
    let pages = |f: &FakeSlack| posts_containing(f, "needs an owner").len();
    assert!(
        fake.wait_until(WAIT, |f| roots(f).len() >= LOAD && pages(f) >= LOAD)
            .await,
        "{} roots, {} pages\n{}",
        roots(&fake).len(),
        pages(&fake),
        logs()
    );
    let opened = started.elapsed();
    // Two or more rounds of 200 status updates falling due together.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut stopped = Vec::new();
    for bot in bots.drain(..) {
        stopped.push(bot.terminate().await);
    }
    let store = odorbot::store::Store::open(&secrecy::SecretString::from(db.url.clone()), 1)
        .await
        .unwrap();
    let incidents = store.open_incidents().await.unwrap();
    assert_eq!(incidents.len(), LOAD, "one incident per alert");
    assert_eq!(roots(&fake).len(), LOAD, "one root each");
    let posted = fake.calls_to("chat.postMessage");
    let in_thread = |ts: &str, what: &str| {
        posted
            .iter()
            .filter(|c| c.status == 200 && c.body["thread_ts"] == ts && text(c).contains(what))
            .count()
    };
    let (mut recorded, mut delivered) = (0, 0);
    for incident in &incidents {
        let ts = incident.thread_ts.as_deref().expect("root posted");
        assert_eq!(
            in_thread(ts, "needs an owner"),
            1,
            "INC-{}",
            incident.number
        );
        let timeline = store.timeline(&incident.id).await.unwrap();
        let statuses = timeline.iter().filter(|e| e.kind == "status").count();
        let sent = in_thread(ts, "*Status of INC-");
        assert!(
            sent <= statuses,
            "INC-{}: {sent} status updates for {statuses} periods",
            incident.number
        );
        (recorded, delivered) = (recorded + statuses, delivered + sent);
    }
    // What is not delivered yet waits in the outbox: nothing was lost either.
    let pending = store.outbox_len().await.unwrap() as usize;
    assert_eq!(recorded, delivered + pending, "{stopped:?}");
    assert!(
        delivered >= LOAD,
        "at least a round of status updates went out: {delivered}"
    );
    eprintln!(
        "{LOAD} incidents: roots and pages in {opened:?}; {delivered} status updates delivered, {pending} pending at the stop"
    );
    store.close().await;
    db.drop_db().await;
}

/// Every replica's log, one after the other.
fn all_logs(bots: &[Bot]) -> String {
    bots.iter()
        .map(Bot::logs)
        .collect::<Vec<_>>()
        .join("\n-----\n")
}
