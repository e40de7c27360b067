//! The two-person rule end to end: the real binary, the fake Slack, the real API server
//! (as odorbot's ServiceAccount), and a local health endpoint.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use k8s_openapi::api::apps::v1::Deployment;
use odorbot::domain::k8s::{ImageTag, Mode};

use crate::support::alertmanager::post_notification;
use crate::support::bot::Bot;
use crate::support::cluster_seed::{
    API_IMAGE, CRASHING_TAG, SMOKE_FAIL, Seeded, apply, cronjob_resource, pod_ready, seed,
    seed_two_revisions, wait_for,
};
use crate::support::fake_slack::{Call, Delivery, FakeSlack};
use crate::support::probe_servers::serve;

const WAIT: Duration = Duration::from_secs(60);
const CHANNEL: &str = "C0OPS";

fn approvals_yaml(expiry_secs: u32) -> String {
    format!(
        "approvals:\n  roles:\n    operator: [U0ALICE, U0BOB]\n    approver: [U0BOB, S0APPROVERS]\n  expiry: {expiry_secs}s\n  watch: 3s\n  watch_every: 1s\n  rollout_timeout: 60s\n  lease: 3s\n  cooldowns: {{rollback: off}}\n"
    )
}

/// Whether odordiff-api's pod template carries a restart stamp (a restart executed).
async fn api_restarted(s: &Seeded) -> bool {
    let d: Deployment = s.api::<Deployment>().get("odordiff-api").await.unwrap();
    d.spec
        .and_then(|spec| spec.template.metadata)
        .and_then(|m| m.annotations)
        .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"))
}

async fn image(s: &Seeded) -> String {
    let d: Deployment = s.api::<Deployment>().get("odordiff-api").await.unwrap();
    d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

async fn start(fake: &FakeSlack, s: &Seeded, health: &str, store: Option<&str>) -> Bot {
    start_expiring(fake, s, health, store, 60).await
}

async fn start_expiring(
    fake: &FakeSlack,
    s: &Seeded,
    health: &str,
    store: Option<&str>,
    expiry_secs: u32,
) -> Bot {
    start_yaml(fake, s, health, store, &approvals_yaml(expiry_secs)).await
}

/// odorbot as the namespace's ServiceAccount with `yaml` as its configuration, ready.
async fn start_yaml(
    fake: &FakeSlack,
    s: &Seeded,
    health: &str,
    store: Option<&str>,
    yaml: &str,
) -> Bot {
    start_env(fake, s, health, store, yaml, &[]).await
}

/// [`start_yaml`] with more environment, e.g. failpoints.
async fn start_env(
    fake: &FakeSlack,
    s: &Seeded,
    health: &str,
    store: Option<&str>,
    yaml: &str,
    more: &[(&str, &str)],
) -> Bot {
    let kubeconfig = s.bot_kubeconfig_path().to_str().unwrap().to_owned();
    let mut env = vec![
        ("KUBECONFIG", kubeconfig.as_str()),
        ("ODORBOT_NAMESPACE", s.ns.as_str()),
        ("ODORBOT_HEALTH_URL", health),
    ];
    env.extend_from_slice(more);
    let bot = Bot::start_config(fake, store, &env, yaml).await;
    assert!(
        bot.wait_readyz(200, Duration::from_secs(20)).await,
        "{}",
        bot.logs()
    );
    bot
}

async fn health_server() -> (String, tokio::task::JoinHandle<()>) {
    let router = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(|| async { "ok" }));
    let (addr, task) = serve(router).await;
    (format!("http://{addr}/"), task)
}

fn text(c: &Call) -> String {
    c.body.to_string()
}

async fn reply(fake: &FakeSlack, d: &Delivery) -> String {
    text(&fake.reply_to(d, WAIT).await.expect("a reply"))
}

/// Asks for `command` as Alice and returns the request id from the card.
async fn request(fake: &FakeSlack, command: &str) -> String {
    let before = cards(fake).len();
    let d = fake.slash_command("U0ALICE", CHANNEL, command).await;
    let answer = reply(fake, &d).await;
    assert!(answer.contains("Requested"), "{answer}");
    assert!(fake.wait_until(WAIT, |f| cards(f).len() > before).await);
    request_id(&text(&cards(fake)[before]))
}

/// Sends `command` as Alice and returns the reply, for commands refused at request time.
async fn ask(fake: &FakeSlack, command: &str) -> String {
    let d = fake.slash_command("U0ALICE", CHANNEL, command).await;
    reply(fake, &d).await
}

/// The request id in a card's approve button.
fn request_id(card: &str) -> String {
    let start = card.find("approval:approve:").unwrap() + "approval:approve:".len();
    card[start..].split('"').next().unwrap().to_owned()
}

fn cards(fake: &FakeSlack) -> Vec<Call> {
    fake.calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.body["channel"] == CHANNEL && text(c).contains("Approval needed"))
        .collect()
}

async fn click(fake: &FakeSlack, user: &str, verb: &str, id: &str) -> String {
    let d = fake
        .block_action(
            user,
            CHANNEL,
            &format!("approval:{verb}:{id}"),
            "",
            "1700000000.000100",
        )
        .await;
    reply(fake, &d).await
}

/// Bob, the second person, approves request `id`.
async fn approve(fake: &FakeSlack, id: &str) {
    let answer = click(fake, "U0BOB", "approve", id).await;
    assert!(answer.contains("Recorded"), "{answer}");
}

/// Waits until `n` executions have posted their success.
async fn succeeded(fake: &FakeSlack, n: usize) -> bool {
    fake.wait_until(WAIT, |f| {
        f.calls_to("chat.postMessage")
            .iter()
            .filter(|c| text(c).contains("*succeeded*"))
            .count()
            >= n
    })
    .await
}

/// The whole audit log of the store at `url`, read while the bot runs.
async fn audit_log(url: &str) -> Vec<odorbot::store::approvals::AuditEntry> {
    let store = odorbot::store::Store::open(&secrecy::SecretString::from(url.to_owned()), 1)
        .await
        .unwrap();
    let audit = store
        .audit_since(jiff::Timestamp::UNIX_EPOCH)
        .await
        .unwrap();
    store.close().await;
    audit
}

/// Every message posted so far, as JSON text.
fn posts(fake: &FakeSlack) -> Vec<String> {
    fake.calls_to("chat.postMessage").iter().map(text).collect()
}

/// Waits at most `wait` for a posted message containing `what`.
async fn posted(fake: &FakeSlack, what: &str, wait: Duration) -> bool {
    fake.wait_until(wait, |f| {
        f.calls_to("chat.postMessage")
            .iter()
            .any(|c| text(c).contains(what))
    })
    .await
}

fn thread_has(fake: &FakeSlack, what: &str) -> bool {
    fake.calls_to("chat.postMessage")
        .iter()
        .any(|c| c.body["thread_ts"].is_string() && text(c).contains(what))
}

#[tokio::test]
async fn a_rollback_needs_a_second_person_and_is_verified() {
    let s = seed_two_revisions().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    fake.set_usergroup("S0APPROVERS", &["U0CAROL"]);
    let bot = start(&fake, &s, &health, None).await;
    assert_eq!(image(&s).await, format!("{API_IMAGE}:1.6.0"));

    let id = request(&fake, "rollback odordiff-api --reason \"5xx since 1.6.0\"").await;
    let card = text(&cards(&fake)[0]);
    for want in [
        "<@U0ALICE>",
        "5xx since 1.6.0",
        "1.6.0 → ",
        ":1.5.0",
        "Expires",
    ] {
        assert!(card.contains(want), "card lacks {want}: {card}");
    }
    let own = click(&fake, "U0ALICE", "approve", &id).await;
    assert!(own.contains("you cannot approve it"), "{own}");
    let outsider = click(&fake, "U0DAVE", "approve", &id).await;
    assert!(outsider.contains("only an approver"), "{outsider}");
    assert_eq!(
        image(&s).await,
        format!("{API_IMAGE}:1.6.0"),
        "nothing ran yet"
    );

    // The real node replaces the pods: the rolled-back ReplicaSet's become Ready.
    let cluster = s.bot().await;
    let ok = click(&fake, "U0BOB", "approve", &id).await;
    assert!(ok.contains("Recorded: approve"), "{ok}");
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "Watch over")).await,
        "{}",
        bot.logs()
    );
    assert_eq!(
        image(&s).await,
        format!("{API_IMAGE}:1.5.0"),
        "rolled back to the previous revision"
    );
    assert!(thread_has(&fake, "*succeeded*"));
    assert!(
        thread_has(&fake, "Rollout of `odordiff-api` complete"),
        "verification"
    );
    assert!(thread_has(&fake, "/health"), "health checked");
    assert!(
        thread_has(&fake, "Pods stayed Ready and health checks passed"),
        "final summary"
    );
    let history = cluster
        .rollout_history(&"odordiff-api".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(history.iter().filter(|h| h.current).count(), 1);
    let audit = reply(
        &fake,
        &fake
            .slash_command("U0BOB", CHANNEL, "audit --since 1h")
            .await,
    )
    .await;
    for kind in [
        "**request**",
        "**refused**",
        "**approve**",
        "**execute**",
        "**succeeded**",
        "**verify**",
        "**watch**",
    ] {
        assert!(audit.contains(kind), "audit lacks {kind}: {audit}");
    }
}

#[tokio::test]
async fn denied_cancelled_and_expired_requests_cannot_be_approved() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    fake.set_usergroup("S0APPROVERS", &["U0CAROL"]);
    let _bot = start_expiring(&fake, &s, &health, None, 10).await;

    let expiring = request(&fake, "restart odordiff-api --reason \"slow\"").await;
    let denied = request(&fake, "restart odordiff-worker --reason \"stuck\"").await;
    assert!(
        click(&fake, "U0BOB", "deny", &denied)
            .await
            .contains("Recorded: deny")
    );
    let late = click(&fake, "U0CAROL", "approve", &denied).await;
    assert!(
        late.contains("can no longer be decided: it was denied"),
        "{late}"
    );

    let cancelled = request(&fake, "scale odordiff-worker 2 --reason \"load\"").await;
    assert!(
        click(&fake, "U0BOB", "cancel", &cancelled)
            .await
            .contains("only the requester")
    );
    assert!(
        click(&fake, "U0ALICE", "cancel", &cancelled)
            .await
            .contains("Recorded: cancel")
    );
    assert!(
        click(&fake, "U0BOB", "approve", &cancelled)
            .await
            .contains("can no longer be decided: it was cancelled")
    );

    tokio::time::sleep(Duration::from_secs(11)).await;
    let expired = click(&fake, "U0BOB", "approve", &expiring).await;
    assert!(expired.contains("expired"), "{expired}");
    let pending = reply(
        &fake,
        &fake.slash_command("U0ALICE", CHANNEL, "approvals").await,
    )
    .await;
    assert!(
        pending.contains("No pending approval requests"),
        "{pending}"
    );
    let no_reason = reply(
        &fake,
        &fake
            .slash_command("U0ALICE", CHANNEL, "restart odordiff-worker")
            .await,
    )
    .await;
    assert!(no_reason.contains("needs a reason"), "{no_reason}");
    let not_operator = reply(
        &fake,
        &fake
            .slash_command("U0DAVE", CHANNEL, "restart odordiff-worker --reason x")
            .await,
    )
    .await;
    assert!(
        not_operator.contains("You may not request"),
        "{not_operator}"
    );
}

#[tokio::test]
async fn execution_is_refused_when_the_cluster_drifted_since_the_dry_run() {
    let s = seed_two_revisions().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let _bot = start(&fake, &s, &health, None).await;
    let id = request(&fake, "rollback odordiff-api --reason \"bad deploy\"").await;
    // Someone deploys 1.7.0 between the dry run and the approval.
    let cluster = s.bot().await;
    let api = "odordiff-api".parse().unwrap();
    cluster
        .set_image(
            &api,
            &api,
            &"1.7.0".parse().unwrap(),
            API_IMAGE,
            Mode::Execute,
        )
        .await
        .unwrap();
    // Let the controller finish that rollout, so the only difference is the drift.
    s.rolled_out_as_the_bot_sees_it(&cluster).await;
    click(&fake, "U0BOB", "approve", &id).await;
    let refused = fake
        .wait_until(WAIT, |f| {
            thread_has(f, "the cluster changed since the dry run")
        })
        .await;
    let thread: Vec<String> = fake.calls_to("chat.postMessage").iter().map(text).collect();
    assert!(refused, "{thread:?}");
    assert_eq!(
        image(&s).await,
        format!("{API_IMAGE}:1.7.0"),
        "nothing was rolled back"
    );
}

#[tokio::test]
async fn a_request_left_executing_by_a_dead_process_is_interrupted_not_rerun() {
    let s = seed_two_revisions().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    // A first process requests and is approved, then is killed (-9) while executing:
    // the state it leaves is an executing request whose lease lapses.
    let first = start(&fake, &s, &health, Some(&url)).await;
    let id = request(&fake, "rollback odordiff-api --reason \"bad deploy\"").await;
    first.kill9().await;
    let store = odorbot::store::Store::open(&secrecy::SecretString::from(url.clone()), 1)
        .await
        .unwrap();
    let r = store.request(&id).await.unwrap().unwrap();
    let now = jiff::Timestamp::now();
    assert!(
        store
            .transition(
                &r,
                odorbot::domain::approval::ApprovalState::Approved,
                &["U0BOB".to_owned()],
                now
            )
            .await
            .unwrap()
    );
    assert!(store.begin_execution(&id, now, now).await.unwrap());
    let _second = start(&fake, &s, &health, Some(&url)).await;
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "*Interrupted*"))
            .await
    );
    let r = store.request(&id).await.unwrap().unwrap();
    assert_eq!(
        r.state,
        odorbot::domain::approval::ApprovalState::Interrupted
    );
    assert!(thread_has(&fake, "What re-running would change now"));
    assert_eq!(
        image(&s).await,
        format!("{API_IMAGE}:1.6.0"),
        "never re-run by itself"
    );
}

#[tokio::test]
async fn a_hundred_racing_approvals_across_two_replicas_execute_once() {
    let s = seed_two_revisions().await;
    let (health, _h) = health_server().await;
    let db = crate::support::pg::TempDb::create().await;
    let fake = FakeSlack::start().await;
    fake.set_usergroup("S0APPROVERS", &["U0CAROL"]);
    let a = start(&fake, &s, &health, Some(&db.url)).await;
    let b = start(&fake, &s, &health, Some(&db.url)).await;
    let id = request(&fake, "rollback odordiff-api --reason \"bad deploy\"").await;
    let cluster = s.bot().await;
    let api: odorbot::domain::ids::K8sName = "odordiff-api".parse().unwrap();
    let revisions_before = cluster.rollout_history(&api).await.unwrap().len();
    let mut clicks = Vec::new();
    for i in 0..100 {
        let user = ["U0BOB", "U0CAROL"][i % 2];
        let d = fake
            .block_action(
                user,
                CHANNEL,
                &format!("approval:approve:{id}"),
                "",
                "1700000000.000100",
            )
            .await;
        if i % 10 == 0 {
            fake.resend(&d).await;
        }
        clicks.push(d);
    }
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "*succeeded*"))
            .await,
        "{}\n{}",
        a.logs(),
        b.logs()
    );
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
    assert_eq!(executions, 1);
    let history = cluster.rollout_history(&api).await.unwrap();
    assert!(
        history.len() <= revisions_before + 1,
        "one rollback at most: {history:?}"
    );
    assert_eq!(image(&s).await, format!("{API_IMAGE}:1.5.0"));
    assert_eq!(
        fake.calls()
            .iter()
            .filter(|c| c.method == "chat.postMessage" && text(c).contains("*succeeded*"))
            .count(),
        1
    );
    drop((a, b));
    store.close().await;
    db.drop_db().await;
}

const ALERTS_TOKEN: &str = "recovery-test-token-0123456789";

/// odorbot with an incident channel, ready for alerts.
async fn incident_bot(fake: &FakeSlack, s: &Seeded, health: &str) -> Bot {
    let kubeconfig = s.bot_kubeconfig_path().to_str().unwrap().to_owned();
    let yaml = format!(
        "{}incidents:\n  channel: {CHANNEL}\n  roster:\n    primary: [U0BOB]\n",
        approvals_yaml(120)
    );
    let bot = Bot::start_config(
        fake,
        None,
        &[
            ("KUBECONFIG", &kubeconfig),
            ("ODORBOT_NAMESPACE", &s.ns),
            ("ODORBOT_HEALTH_URL", health),
            ("ODORBOT_ALERTS_TOKEN", ALERTS_TOKEN),
        ],
        &yaml,
    )
    .await;
    assert!(
        bot.wait_readyz(200, Duration::from_secs(20)).await,
        "{}",
        bot.logs()
    );
    bot
}

/// Alertmanager's notification of one firing `alertname` in OdorDiff-2's namespace.
async fn fire(bot: &Bot, alertname: &str) {
    let alert = serde_json::json!({
        "version": "4", "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}"), "status": "firing", "receiver": "odorbot",
        "alerts": [{"status": "firing", "labels": {"alertname": alertname, "namespace": "odordiff"},
                    "annotations": {"summary": alertname}, "startsAt": "2026-11-27T07:00:00Z", "fingerprint": "abc123"}]
    });
    let (status, body) = post_notification(
        bot.url("/alerts"),
        ALERTS_TOKEN,
        serde_json::to_vec(&alert).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn recovery_buttons_in_an_incident_thread_become_approval_requests() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let bot = incident_bot(&fake, &s, &health).await;
    fire(&bot, "OdorDiffApiDown").await;
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "recovery:")).await,
        "{}",
        bot.logs()
    );
    let offer = fake
        .calls_to("chat.postMessage")
        .into_iter()
        .map(|c| text(&c))
        .find(|t| t.contains("recovery:"))
        .unwrap();
    assert!(
        offer.contains("rollout_restart deployment=odordiff-api"),
        "{offer}"
    );
    let start = offer.find("recovery:").unwrap();
    let button = offer[start..].split('"').next().unwrap().to_owned();
    let d = fake
        .block_action("U0ALICE", CHANNEL, &button, "", "1700000000.000300")
        .await;
    let answer = reply(&fake, &d).await;
    assert!(answer.contains("Requested `restart`"), "{answer}");
    assert!(
        fake.wait_until(WAIT, |f| cards(f)
            .iter()
            .any(|c| text(c).contains("restartedAt")))
            .await
    );
    let card = text(&cards(&fake)[0]);
    assert!(card.contains("recovery for INC-1"), "{card}");
}

/// `/health` and `/ready` of OdorDiff-2 as its Service would answer them: each request goes
/// to a Ready pod of odordiff-api on the real node (this cluster runs no kube-proxy).
async fn service_health(s: &Seeded) -> (String, tokio::task::JoinHandle<()>) {
    use k8s_openapi::api::core::v1::Pod;
    let pods: kube::Api<Pod> = s.api();
    let forward = move |path: &'static str| {
        let pods = pods.clone();
        move || {
            let pods = pods.clone();
            async move {
                let lp = kube::api::ListParams::default().labels("app=odordiff-api");
                let list = pods.list(&lp).await.map(|l| l.items).unwrap_or_default();
                let ip = list
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p))
                    .find_map(|p| p.status.as_ref()?.pod_ip.clone());
                let Some(ip) = ip else {
                    return (
                        http::StatusCode::SERVICE_UNAVAILABLE,
                        "no ready pod".to_owned(),
                    );
                };
                match crate::support::http::get(&format!("http://{ip}:8000{path}")).await {
                    Some((code, body)) => (
                        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::BAD_GATEWAY),
                        body,
                    ),
                    None => (http::StatusCode::BAD_GATEWAY, "no answer".to_owned()),
                }
            }
        }
    };
    let router = Router::new()
        .route("/health", get(forward("/health")))
        .route("/ready", get(forward("/ready")));
    let (addr, task) = serve(router).await;
    (format!("http://{addr}/"), task)
}

/// The headline flow on the real node: a bad release crash-loops, the API alert opens an
/// incident whose findings show the crash loop, the incident's rollback button becomes a
/// request that a second person approves, and odorbot's verification sees the rollout
/// complete with Ready pods, health green, and a quiet watch.
#[tokio::test]
async fn an_api_alert_on_a_crash_loop_ends_in_an_approved_verified_rollback() {
    let s = seed().await;
    s.rolled_out("odordiff-api", 90).await;
    let cluster = s.bot().await;
    let api: odorbot::domain::ids::K8sName = "odordiff-api".parse().unwrap();
    let bad: ImageTag = CRASHING_TAG.parse().unwrap();
    cluster
        .set_image(&api, &api, &bad, API_IMAGE, Mode::Execute)
        .await
        .unwrap();
    let selector: odorbot::domain::k8s::Selector = "app=odordiff-api".parse().unwrap();
    wait_for("the bad release to crash-loop", 90, || async {
        let pods = cluster.pods(&selector).await.ok()?;
        pods.iter()
            .any(|p| p.reason.as_deref() == Some("CrashLoopBackOff"))
            .then_some(())
    })
    .await;

    let (health, _h) = service_health(&s).await;
    let fake = FakeSlack::start().await;
    let bot = incident_bot(&fake, &s, &health).await;
    fire(&bot, "OdorDiffApiDown").await;

    // Findings: the crash loop, its exit code and the crashed run's own log line.
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "recovery:")).await,
        "{}",
        bot.logs()
    );
    let thread: Vec<String> = fake
        .calls_to("chat.postMessage")
        .iter()
        .filter(|c| c.body["thread_ts"].is_string())
        .map(text)
        .collect();
    let all = thread.join("\n");
    for want in [
        "Error (exit 3)",
        "startup failed: cannot run database migrations",
    ] {
        assert!(all.contains(want), "findings lack {want:?}: {all}");
    }
    // A crash-looping container waits in CrashLoopBackOff most of the time but is briefly
    // running or terminated between restarts: whichever moment the findings were read in,
    // they show a failing pod that has restarted.
    let restarted = all.split("\\n").any(|line| {
        line.contains("🔴")
            && line
                .split(" restarts")
                .next()
                .and_then(|head| head.rsplit(' ').next())
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n > 0)
    });
    assert!(restarted, "findings lack a restarted failing pod: {all}");
    let offer = thread.iter().find(|t| t.contains("recovery:")).unwrap();
    assert!(
        offer.contains("rollback_helm release=odordiff-2"),
        "{offer}"
    );

    // Alice asks for the Helm rollback with the incident's button; Bob approves.
    // The third recovery step of the runbook entry: the Helm rollback.
    let button = offer
        .split('"')
        .find(|t| t.starts_with("recovery:") && t.ends_with(":2"))
        .unwrap_or_else(|| panic!("no rollback button: {offer}"))
        .to_owned();
    let d = fake
        .block_action("U0ALICE", CHANNEL, &button, "", "1700000000.000400")
        .await;
    let answer = reply(&fake, &d).await;
    assert!(answer.contains("Requested `rollback`"), "{answer}");
    assert!(fake.wait_until(WAIT, |f| !cards(f).is_empty()).await);
    let card = text(&cards(&fake)[0]);
    assert!(
        card.contains("recovery for INC-1: Emergency rollback"),
        "{card}"
    );
    let id = request_id(&card);
    let ok = click(&fake, "U0BOB", "approve", &id).await;
    assert!(ok.contains("Recorded: approve"), "{ok}");
    assert!(
        fake.wait_until(Duration::from_secs(120), |f| thread_has(f, "Watch over"))
            .await,
        "{}",
        bot.logs()
    );

    // Real pods of revision 1 replaced the crashing one, all Ready.
    let pods = s.rolled_out("odordiff-api", 30).await;
    assert!(pods.iter().all(|p| {
        p.spec.as_ref().unwrap().containers[0].image.as_deref()
            == Some(format!("{API_IMAGE}:1.4.0").as_str())
    }));
    for want in [
        "*succeeded*",
        "✅ Rollout of `odordiff-api` complete: 3/3 ready.",
        "*Health after the change*",
        "✅ Pods stayed Ready and health checks passed.",
    ] {
        assert!(
            thread_has(&fake, want),
            "thread lacks {want:?}: {:?}",
            posts(&fake)
        );
    }
    assert!(
        !thread_has(&fake, "⚠️ Watch"),
        "no watch warnings after a rollback that really completed"
    );

    // The entry's procedure is offered too: its button starts it as a guided run for the
    // incident, whose first step asks for a request of its own. The release was just
    // rolled back to its first revision, so that request's dry run is refused, and the
    // run pauses saying why.
    let run = button_labelled(&fake, "Run: Emergency Rollback")
        .unwrap_or_else(|| panic!("no procedure button: {offer}"));
    let d = fake
        .block_action("U0ALICE", CHANNEL, &run, "", "1700000000.000400")
        .await;
    let answer = reply(&fake, &d).await;
    assert!(answer.contains("Started *Emergency Rollback*"), "{answer}");
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "🔴 Step 1: Immediate rollback failed: :warning: The dry run failed, so nothing was requested: invalid input: release odordiff-2: there is no revision before revision 1\\nThe run is paused"))
            .await,
        "{:?}",
        fake.calls_to("chat.postMessage")
            .iter()
            .map(text)
            .filter(|t| t.contains("Step") || t.contains("Procedure"))
            .collect::<Vec<_>>()
    );
}

/// A deploy of a release that crashes at start, approved and executed: the verification on
/// the real node says the rollout failed and which pods crash, and the watch reports them.
#[tokio::test]
async fn an_approved_deploy_of_a_crashing_release_is_reported_failed() {
    let s = seed().await;
    s.rolled_out("odordiff-api", 90).await;
    // A short progress deadline: the Deployment controller gives up within seconds.
    s.api::<Deployment>()
        .patch(
            "odordiff-api",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"progressDeadlineSeconds": 10}})),
        )
        .await
        .unwrap();
    let (health, _h) = service_health(&s).await;
    let fake = FakeSlack::start().await;
    let bot = start(&fake, &s, &health, None).await;
    let id = request(
        &fake,
        &format!("deploy odordiff-api {CRASHING_TAG} --reason \"release 1.6.1\""),
    )
    .await;
    // The runbook's pre-deployment checks are on the card the approver reads.
    let card = text(&cards(&fake)[0]);
    for want in [
        "pre-deployment: 3 of 3 pods of odordiff-api ready",
        "pre-deployment: PodDisruptionBudget odordiff-api-pdb allows 1 disruptions (3 healthy, 2 needed)",
        "pre-deployment: HorizontalPodAutoscaler odordiff-api-hpa at",
    ] {
        assert!(card.contains(want), "card lacks {want:?}: {card}");
    }
    let ok = click(&fake, "U0BOB", "approve", &id).await;
    assert!(ok.contains("Recorded: approve"), "{ok}");
    assert!(
        fake.wait_until(Duration::from_secs(120), |f| thread_has(f, "Watch over"))
            .await,
        "{}",
        bot.logs()
    );
    assert_eq!(image(&s).await, format!("{API_IMAGE}:{CRASHING_TAG}"));
    let failed = fake
        .calls_to("chat.postMessage")
        .iter()
        .map(text)
        .find(|t| t.contains("did not complete"))
        .unwrap_or_else(|| panic!("no failed verification: {}", bot.logs()));
    assert!(
        failed.contains("exceeded its progress deadline"),
        "{failed}"
    );
    // Caught between two crashes, the pod shows Running with its restarts counted.
    assert!(
        failed.contains("CrashLoopBackOff")
            || failed.contains("Error")
            || failed.contains("restarts)"),
        "{failed}"
    );
    assert!(!thread_has(&fake, "✅ Rollout of"));
    // The old pods kept serving: health stays green while the new pod crash-loops.
    assert!(thread_has(&fake, "*Health after the change*"));
    assert!(thread_has(&fake, "⚠️ Watch: not Running and Ready"));
    assert!(thread_has(&fake, "🔴 See the warnings above."));
    assert!(
        fake.wait_until(WAIT, |f| thread_has(
            f,
            "Next in the standard deployment: the smoke tests, `/odor smoke"
        ))
        .await
    );
    // What the runbook does not deploy, or from elsewhere, is refused before any call.
    let refused = ask(&fake, "deploy redis 7.2 --reason \"upgrade\"").await;
    assert!(
        refused.contains(
            "`redis` is not one the runbook deploys; it deploys odordiff-api, odordiff-worker."
        ),
        "{refused}"
    );
}

#[tokio::test]
async fn a_rollback_whose_target_revision_changed_is_refused_as_drift() {
    let s = seed_two_revisions().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let _bot = start(&fake, &s, &health, None).await;
    // The approver sees 1.6.0 → 1.5.0.
    let id = request(&fake, "rollback odordiff-api --reason \"bad deploy\"").await;
    let card = text(&cards(&fake)[0]);
    assert!(card.contains(":1.5.0"), "{card}");
    // Meanwhile 1.7.0 is deployed and then undone by hand: the deployment shows 1.6.0 again,
    // exactly as the approver saw it, but the previous revision is now 1.7.0.
    let cluster = s.bot().await;
    let api = "odordiff-api".parse().unwrap();
    for tag in ["1.7.0", "1.6.0"] {
        cluster
            .set_image(&api, &api, &tag.parse().unwrap(), API_IMAGE, Mode::Execute)
            .await
            .unwrap();
        s.rolled_out_as_the_bot_sees_it(&cluster).await;
    }
    assert_eq!(image(&s).await, format!("{API_IMAGE}:1.6.0"));
    click(&fake, "U0BOB", "approve", &id).await;
    let refused = fake
        .wait_until(WAIT, |f| {
            thread_has(f, "the cluster changed since the dry run")
        })
        .await;
    let thread: Vec<String> = fake.calls_to("chat.postMessage").iter().map(text).collect();
    assert!(refused, "{thread:?}");
    assert_eq!(
        image(&s).await,
        format!("{API_IMAGE}:1.6.0"),
        "not rolled back to a revision nobody approved"
    );
}

/// The admin's API for one kind in the seeded namespace.
fn dynamic(
    s: &Seeded,
    api_version: &str,
    kind: &str,
    plural: &str,
) -> kube::Api<kube::api::DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let ar = kube::api::ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    kube::Api::namespaced_with(s.admin.clone(), &s.ns, &ar)
}

/// The names of `kind`'s objects in the namespace that start with `prefix`.
async fn named(
    s: &Seeded,
    api_version: &str,
    kind: &str,
    plural: &str,
    prefix: &str,
) -> Vec<String> {
    use kube::ResourceExt;
    dynamic(s, api_version, kind, plural)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Clean-up Jobs and test restores are named when requested, so the approved dry run and
/// the execution agree on the name and the request executes instead of being refused as
/// drift. Once Velero finishes the test restore its outcome is reported in the thread;
/// `backup cleanup` then deletes it.
#[tokio::test]
async fn logs_cleanup_and_a_test_restore_execute_after_approval() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let _bot = start(&fake, &s, &health, None).await;
    for (command, done) in [
        ("logs cleanup --reason \"disk at 92%\"", 1),
        ("backup test-restore --reason \"quarterly check\"", 2),
    ] {
        let id = request(&fake, command).await;
        // Past the second in which it was requested: a name taken from the clock at
        // execution would now differ from the approved one.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(
            click(&fake, "U0BOB", "approve", &id)
                .await
                .contains("Recorded")
        );
        let thread = || posts(&fake);
        assert!(succeeded(&fake, done).await, "{command}: {:?}", thread());
    }
    let jobs = named(&s, "batch/v1", "Job", "jobs", "app-logs-cleanup-manual-").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let restores = named(&s, "velero.io/v1", "Restore", "restores", "test-restore-").await;
    assert_eq!(restores.len(), 1, "{restores:?}");
    // Velero (the test plays it) finishes the restore: odorbot reports it in the thread.
    let finished = serde_json::json!({"status": {"phase": "Completed",
        "progress": {"itemsRestored": 7, "totalItems": 7}, "warnings": 2, "errors": 0}});
    dynamic(&s, "velero.io/v1", "Restore", "restores")
        .patch(
            &restores[0],
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(finished),
        )
        .await
        .unwrap();
    let report = format!(
        "⚠️ Test restore `{}` Completed: 7 of 7 items restored into `{}-restore-test`, 2 warnings, 0 errors",
        restores[0], s.ns
    );
    assert!(posted(&fake, &report, WAIT).await, "{report}");

    // The clean-up deletes that test restore, and would touch no other Restore.
    let refused = ask(&fake, "backup cleanup nightly-restore --reason \"tidy\"").await;
    assert!(
        refused.contains("is not a test restore") && !refused.contains("Requested"),
        "{refused}"
    );
    // Velero (played by the test) filled the scratch namespace; the clean-up deletes it
    // too, through the one cluster-scoped grant, pinned to that namespace.
    s.grant_restore_namespace().await;
    let scratch = odorbot::domain::k8s::restore_namespace(&s.ns);
    apply(
        &s.admin,
        &s.ns,
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": scratch}}),
    )
    .await;
    s.remember_cluster_object("Namespace", scratch.clone());
    // The report's own button asks for exactly that clean-up.
    let button = button_labelled(&fake, "Clean up this test restore");
    assert_eq!(button, Some(format!("restorecleanup:{}", restores[0])));
    let d = fake
        .block_action(
            "U0ALICE",
            CHANNEL,
            &button.unwrap(),
            "",
            "1700000000.000900",
        )
        .await;
    let answer = reply(&fake, &d).await;
    assert!(answer.contains("Requested `backup`"), "{answer}");
    assert!(fake.wait_until(WAIT, |f| cards(f).len() == 3).await);
    let card = text(&cards(&fake)[2]);
    assert!(card.contains("clean-up button of test restore"), "{card}");
    assert!(
        card.contains(&format!("Namespace/{scratch}: present → deleted")),
        "{card}"
    );
    approve(&fake, &request_id(&card)).await;
    assert!(succeeded(&fake, 3).await);
    let left = named(&s, "velero.io/v1", "Restore", "restores", "test-restore-").await;
    assert!(left.is_empty(), "{left:?}");
    let gone = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(s.admin.clone())
        .get_opt(&scratch)
        .await
        .unwrap();
    assert!(
        gone.is_none_or(|n| n.metadata.deletion_timestamp.is_some()),
        "{scratch} left behind"
    );
}

/// The runbook's "Run smoke tests": `/odor smoke` becomes, once approved, a Job from the
/// suspended CronJob that runs the suite on the real node; odorbot follows it and reports
/// passed, and with the suite failing failed, each with the suite's own last log lines.
#[tokio::test]
async fn smoke_tests_run_as_a_job_and_report_pass_then_fail() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let _bot = start(&fake, &s, &health, None).await;
    let reported = |what: &'static str, from: &'static str| {
        let fake = &fake;
        async move {
            fake.wait_until(Duration::from_secs(120), |f| {
                f.calls_to("chat.postMessage")
                    .iter()
                    .any(|c| text(c).contains(what) && text(c).contains(from))
            })
            .await
        }
    };
    let id = request(&fake, "smoke --reason \"after deploying 1.6.0\"").await;
    approve(&fake, &id).await;
    assert!(
        reported(
            "✅ Smoke tests passed: Job `odordiff-smoke-tests-manual-",
            "smoke: passed (2 checks)"
        )
        .await,
        "{:?}",
        posts(&fake)
    );

    // The suite starts failing: the CronJob's template runs the failing image.
    let failing = serde_json::json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "odordiff-smoke-tests", "image": SMOKE_FAIL, "args": ["--run-once"]}]}}}}}});
    let cronjobs = cronjob_resource(&s.admin).await;
    kube::Api::<kube::api::DynamicObject>::namespaced_with(s.admin.clone(), &s.ns, &cronjobs)
        .patch(
            "odordiff-smoke-tests",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(failing),
        )
        .await
        .unwrap();
    let id = request(&fake, "smoke --reason \"again\"").await;
    approve(&fake, &id).await;
    assert!(
        reported(
            "🔴 Smoke tests failed: Job `odordiff-smoke-tests-manual-",
            "smoke: failed (1 of 2 checks)"
        )
        .await,
        "{:?}",
        posts(&fake)
    );
    let jobs = named(
        &s,
        "batch/v1",
        "Job",
        "jobs",
        "odordiff-smoke-tests-manual-",
    )
    .await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
}

/// The offer's button whose label is `label`, as its action id.
fn button_labelled(fake: &FakeSlack, label: &str) -> Option<String> {
    fake.calls_to("chat.postMessage").iter().find_map(|c| {
        c.body["blocks"].as_array()?.iter().find_map(|b| {
            b["elements"].as_array()?.iter().find_map(|e| {
                (e["text"]["text"] == label).then(|| e["action_id"].as_str().unwrap().to_owned())
            })
        })
    })
}

/// Waits for the recovery button labelled `label` in the incident thread and clicks it as
/// Alice; the reply she gets.
async fn click_recovery(fake: &FakeSlack, bot: &Bot, label: &str, ts: &str) -> String {
    assert!(
        fake.wait_until(WAIT, |f| button_labelled(f, label).is_some())
            .await,
        "no {label:?} button\n{}",
        bot.logs()
    );
    let button = button_labelled(fake, label).unwrap();
    let d = fake.block_action("U0ALICE", CHANNEL, &button, "", ts).await;
    reply(fake, &d).await
}

/// Each recovery button runs its own catalog step: the PostgreSQL one cleans up
/// PostgreSQL's logs, not the API's.
#[tokio::test]
async fn the_postgres_logs_button_runs_the_postgres_log_cleanup() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let bot = incident_bot(&fake, &s, &health).await;
    fire(&bot, "OdorDiffDiskSpaceLow").await;
    let answer = click_recovery(&fake, &bot, "Clean up PostgreSQL logs", "1700000000.000400").await;
    assert!(answer.contains("Requested `logs`"), "{answer}");
    assert!(fake.wait_until(WAIT, |f| !cards(f).is_empty()).await);
    let card = text(&cards(&fake)[0]);
    assert!(card.contains("postgres-logs-cleanup"), "{card}");
    let id = request_id(&card);
    approve(&fake, &id).await;
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "*succeeded*"))
            .await,
        "{}",
        bot.logs()
    );
    let postgres = named(
        &s,
        "batch/v1",
        "Job",
        "jobs",
        "postgres-logs-cleanup-manual-",
    )
    .await;
    assert_eq!(postgres.len(), 1, "{postgres:?}");
    let api = named(&s, "batch/v1", "Job", "jobs", "app-logs-cleanup").await;
    assert!(api.is_empty(), "the API's clean-up did not run: {api:?}");
}

/// PostgreSQL's container limits as they stand: (memory, cpu), and its image.
async fn postgres_limits(s: &Seeded) -> (Option<String>, Option<String>, String) {
    let d: Deployment = s.api::<Deployment>().get("postgres").await.unwrap();
    let c = d.spec.unwrap().template.spec.unwrap().containers.remove(0);
    let limits = c.resources.and_then(|r| r.limits).unwrap_or_default();
    let get = |k: &str| limits.get(k).map(|q| q.0.clone());
    (get("memory"), get("cpu"), c.image.unwrap())
}

/// The pool-exhausted runbook's "raise PostgreSQL's limits", by verb and by its recovery
/// button: each a two-person request whose dry run shows the new limits, which the
/// requester cannot approve; approved, the container has exactly those limits and
/// nothing else changed. A container the pod template does not have is refused.
#[tokio::test]
async fn postgres_limits_are_raised_by_verb_and_by_button_after_approval() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let bot = incident_bot(&fake, &s, &health).await;
    let (_, _, image) = postgres_limits(&s).await;

    let refused = ask(
        &fake,
        "resources postgres pgbouncer --memory 3Gi --reason \"pool exhausted\"",
    )
    .await;
    assert!(
        refused.contains("pgbouncer") && !refused.contains("Requested"),
        "{refused}"
    );

    let id = request(
        &fake,
        "resources postgres postgres --memory 3Gi --reason \"pool exhausted\"",
    )
    .await;
    let card = text(&cards(&fake)[0]);
    assert!(card.contains("3Gi"), "{card}");
    assert!(
        !click(&fake, "U0ALICE", "approve", &id)
            .await
            .contains("Recorded")
    );
    assert_eq!(
        postgres_limits(&s).await.0,
        None,
        "the dry run changed nothing"
    );
    approve(&fake, &id).await;
    assert!(succeeded(&fake, 1).await, "{}", bot.logs());
    assert_eq!(
        postgres_limits(&s).await,
        (Some("3Gi".into()), None, image.clone())
    );

    fire(&bot, "OdorDiffDbPoolExhausted").await;
    let answer = click_recovery(&fake, &bot, "Raise PostgreSQL limits", "1700000000.000500").await;
    assert!(answer.contains("Requested `resources`"), "{answer}");
    assert!(fake.wait_until(WAIT, |f| cards(f).len() >= 2).await);
    let card = text(&cards(&fake)[1]);
    // The API server keeps quantities in canonical form: the runbook's 2000m is 2.
    assert!(
        card.contains("limits.memory: 3Gi → 4Gi")
            && card.contains("limits.cpu: (none) → 2")
            && card.contains("recovery for INC-1"),
        "{card}"
    );
    let id = request_id(&card);
    approve(&fake, &id).await;
    assert!(succeeded(&fake, 2).await, "{}", bot.logs());
    assert_eq!(
        postgres_limits(&s).await,
        (Some("4Gi".into()), Some("2".into()), image)
    );
}

/// `db terminate-long` binds the sessions its approver saw: a long statement that started
/// after the preview is not terminated, though it is long-running by the time of approval.
#[tokio::test]
async fn terminate_long_terminates_exactly_the_previewed_sessions() {
    use crate::support::pg::{TempDb, session};
    use crate::support::probe_servers::pg_admin_url;
    let db = TempDb::create_on(&pg_admin_url(), "").await;
    let fake = FakeSlack::start().await;
    let bot = Bot::start_config(
        &fake,
        None,
        &[("ODORBOT_POSTGRES_URL", &db.url)],
        &approvals_yaml(60),
    )
    .await;
    assert!(
        bot.wait_readyz(200, Duration::from_secs(20)).await,
        "{}",
        bot.logs()
    );
    let seen = [
        session(&db.url, "SELECT pg_sleep(600)").await,
        session(&db.url, "SELECT pg_sleep(600)").await,
    ];
    tokio::time::sleep(Duration::from_secs(3)).await;
    let id = request(
        &fake,
        "db terminate-long --older-than 2s --reason \"pool full\"",
    )
    .await;
    let card = text(&cards(&fake)[0]);
    for (pid, _) in &seen {
        assert!(
            card.contains(&format!("would terminate pid {pid} ")),
            "{card}"
        );
    }
    // A third long statement starts after the approver looked, and by the approval it too
    // has run longer than 2s.
    let later = session(&db.url, "SELECT pg_sleep(600)").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    approve(&fake, &id).await;
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "*succeeded*"))
            .await,
        "{}",
        bot.logs()
    );
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    // pg_terminate_backend signals; the backend leaves pg_stat_activity once it has exited,
    // which on a loaded machine takes a moment.
    let mut alive: Vec<i32> = Vec::new();
    for _ in 0..100 {
        let rows: Vec<(i32,)> =
            sqlx::query_as("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                .fetch_all(&mut admin)
                .await
                .unwrap();
        alive = rows.into_iter().map(|(p,)| p).collect();
        if seen.iter().all(|(pid, _)| !alive.contains(pid)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (pid, _) in &seen {
        assert!(
            !alive.contains(pid),
            "previewed session {pid} is still running"
        );
    }
    assert!(alive.contains(&later.0), "the later session was left alone");
    sqlx::Connection::close(admin).await.unwrap();
    for (_, task) in seen.iter().chain([&later]) {
        task.abort();
    }
    drop(bot);
    db.drop_db().await;
}

/// A cooldown holds at execution as well as at request: of two restarts requested before
/// either ran, the second approved is refused.
#[tokio::test]
async fn a_cooldown_refuses_the_second_of_two_approved_requests() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let yaml = approvals_yaml(60).replace("{rollback: off}", "{rollback: off, restart: 10m}");
    let bot = start_yaml(&fake, &s, &health, None, &yaml).await;
    let first = request(&fake, "restart odordiff-api --reason \"stuck\"").await;
    let second = request(&fake, "restart odordiff-worker --reason \"stuck too\"").await;
    // Past the second of the request: the restart stamp the approver saw is the one
    // written, not the clock's at execution (which would read as drift).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        click(&fake, "U0BOB", "approve", &first)
            .await
            .contains("Recorded")
    );
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "*succeeded*"))
            .await,
        "{}",
        bot.logs()
    );
    assert!(
        click(&fake, "U0BOB", "approve", &second)
            .await
            .contains("Recorded")
    );
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "refused: `restart` ran"))
            .await,
        "{}",
        bot.logs()
    );
    // And a third is refused at once, when asked for.
    let d = fake
        .slash_command("U0ALICE", CHANNEL, "restart redis --reason \"again\"")
        .await;
    let answer = reply(&fake, &d).await;
    assert!(answer.contains("the cooldown is 10m"), "{answer}");
}

/// A change can succeed and leave the service unhealthy: the card says so, and the watch
/// posts the problem once rather than at every check.
#[tokio::test]
async fn a_deploy_whose_rollout_never_completes_says_so_on_the_card() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    // No pod of a tag nobody built ever becomes Ready.
    // Six checks, so a problem that persists would be posted several times if every check
    // posted.
    let yaml = approvals_yaml(60)
        .replace("rollout_timeout: 60s", "rollout_timeout: 2s")
        .replace("watch: 3s", "watch: 6s");
    let bot = start_yaml(&fake, &s, &health, None, &yaml).await;
    let id = request(
        &fake,
        "deploy odordiff-api 9.9.9-never-built --reason \"try\"",
    )
    .await;
    approve(&fake, &id).await;
    let updated = |f: &FakeSlack| {
        f.calls_to("chat.update")
            .iter()
            .map(text)
            .any(|t| t.contains("did not come back healthy"))
    };
    assert!(fake.wait_until(WAIT, updated).await, "{}", bot.logs());
    let card = fake
        .calls_to("chat.update")
        .iter()
        .map(text)
        .rfind(|t| t.contains("did not come back healthy"))
        .unwrap();
    assert!(card.contains("did not complete within 2s"), "{card}");
    assert!(card.contains("⚠️ Approval needed"), "{card}");
    let posted: Vec<String> = fake
        .calls_to("chat.postMessage")
        .iter()
        .map(text)
        .filter(|t| t.contains("⚠️ Watch"))
        .collect();
    let warnings = posted.len();
    // Six checks of a problem that persists: posted when it starts and then only when it
    // changes (on the real node, under load, the set of unready pods can change), never the
    // same warning twice in a row.
    assert!(warnings >= 1, "no warning over 6 checks");
    assert!(
        posted.windows(2).all(|w| w[0] != w[1]),
        "a warning repeated without a change: {posted:#?}"
    );
}

/// Object names are the runbook's data: a second certificate the runbook lists is renewed
/// with its own secret (read from the Certificate and bound to the request), under a Role
/// generated from that runbook; a certificate it does not list is refused before anything.
#[tokio::test]
async fn cert_renew_renews_a_second_certificate_the_runbook_lists() {
    let s = seed().await;
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runbooks/odordiff-2.yaml"
    ))
    .unwrap();
    let listed = shipped
        .replace(
            "certificates: [odordiff-tls]",
            "certificates: [odordiff-tls, admin-tls]",
        )
        .replace(
            "secrets: [odordiff-tls]",
            "secrets: [odordiff-tls, admin-tls-keys]",
        );
    assert_ne!(
        listed, shipped,
        "the shipped objects section changed; update this test"
    );
    let catalog = dir.path().join("runbook.yaml");
    std::fs::write(&catalog, &listed).unwrap();
    // The Role that runbook needs, as `odorbot manifests role` generates it.
    let out = std::process::Command::new(crate::support::bot::binary())
        .args(["manifests", "role", "--file"])
        .arg(&catalog)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let role: serde_json::Value = serde_yaml_ng::from_slice(&out.stdout).unwrap();
    apply(&s.admin, &s.ns, role).await;
    apply(
        &s.admin,
        &s.ns,
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "admin-tls-keys"},
               "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
    )
    .await;
    apply(
        &s.admin,
        &s.ns,
        serde_json::json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "admin-tls"},
               "spec": {"secretName": "admin-tls-keys", "dnsNames": ["admin.odordiff.ai"],
                        "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}}}),
    )
    .await;

    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let yaml = format!(
        "{}runbook:\n  path: {}\n",
        approvals_yaml(60),
        catalog.display()
    );
    let _bot = start_yaml(&fake, &s, &health, None, &yaml).await;

    let refused = ask(&fake, "cert renew other-tls --reason \"expiring\"").await;
    assert!(
        refused.contains("is not one of the runbook") && refused.contains("admin-tls"),
        "{refused}"
    );
    assert!(
        cards(&fake).is_empty(),
        "a card for an unlisted certificate"
    );

    let id = request(&fake, "cert renew admin-tls --reason \"expiring\"").await;
    let card = text(&cards(&fake)[0]);
    assert!(
        card.contains("Secret/admin-tls-keys: present → deleted"),
        "{card}"
    );
    approve(&fake, &id).await;
    assert!(
        posted(&fake, "*succeeded*", WAIT).await,
        "{:?}",
        posts(&fake)
    );
    let secrets = s.api::<k8s_openapi::api::core::v1::Secret>();
    assert!(secrets.get_opt("admin-tls-keys").await.unwrap().is_none());
    assert!(
        secrets.get_opt("odordiff-tls").await.unwrap().is_some(),
        "the other certificate's secret was left alone"
    );
}

/// A request the sweep took for dead while its pre-execution checks ran (its lease lapsed)
/// is interrupted and stays unexecuted: the executor checks its hold right before the change.
#[tokio::test]
async fn a_request_interrupted_during_its_checks_is_not_executed() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    // The lease is 3 s and the sweep runs every 3 s: an 8 s stall lets it lapse.
    let bot = start_env(
        &fake,
        &s,
        &health,
        None,
        &approvals_yaml(60),
        &[(
            "ODORBOT_FAILPOINTS",
            "approvals.before_execute=1*delay(8000)",
        )],
    )
    .await;
    let id = request(&fake, "restart odordiff-api --reason \"stuck\"").await;
    approve(&fake, &id).await;
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "*Interrupted*")
            && thread_has(f, "*Not executed*"))
            .await,
        "{}",
        bot.logs()
    );
    assert!(!thread_has(&fake, "*succeeded*"));
    assert!(
        !api_restarted(&s).await,
        "an interrupted request restarted the deployment"
    );
}

/// A process that dies between the approval and the start of execution leaves the request
/// approved; the next sweep (here by a fresh process on the same store) starts it, once.
#[tokio::test]
async fn an_approved_request_a_crash_left_unstarted_is_started_by_the_sweep() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let first = start_env(
        &fake,
        &s,
        &health,
        Some(&url),
        &approvals_yaml(60),
        &[("ODORBOT_FAILPOINTS", "approvals.start=crash")],
    )
    .await;
    let id = request(&fake, "restart odordiff-api --reason \"stuck\"").await;
    // The process may die before it answers the click.
    fake.block_action(
        "U0BOB",
        CHANNEL,
        &format!("approval:approve:{id}"),
        "",
        "1700000000.000100",
    )
    .await;
    let store = odorbot::store::Store::open(&secrecy::SecretString::from(url.clone()), 1)
        .await
        .unwrap();
    let (status, logs) = first
        .wait_exit(WAIT)
        .await
        .expect("the failpoint crashed the first process");
    assert!(!status.success(), "{logs}");
    let r = store.request(&id).await.unwrap().unwrap();
    assert_eq!(r.state, odorbot::domain::approval::ApprovalState::Approved);
    let _second = start(&fake, &s, &health, Some(&url)).await;
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "*succeeded*"))
            .await,
        "the approved request was never started"
    );
    assert!(
        api_restarted(&s).await,
        "restarted once the sweep started it"
    );
    let r = store.request(&id).await.unwrap().unwrap();
    assert_eq!(r.state, odorbot::domain::approval::ApprovalState::Succeeded);
}

/// Quarantine through the two-person flow labels the pod and changes no policy:
/// default-deny-all keeps covering every other pod and the installed quarantine policy
/// selects the suspect; unquarantine, approved the same way, takes the label off.
#[tokio::test]
async fn quarantine_and_unquarantine_change_only_the_pods_label() {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use kube::ResourceExt;

    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let bot = start(&fake, &s, &health, None).await;
    let suspect = s.pods("app=odordiff-api", 3).await[0].name_any();
    let pods: kube::Api<Pod> = s.api();
    let policies: kube::Api<NetworkPolicy> = s.api();
    let version = |p: &NetworkPolicy| p.metadata.resource_version.clone();
    let deny_all = version(&policies.get("default-deny-all").await.unwrap());
    let label = |want: Option<&'static str>| {
        let (pods, suspect) = (&pods, &suspect);
        async move {
            wait_for(&format!("quarantine label {want:?}"), 60, || async {
                let pod = pods.get(suspect).await.ok()?;
                (pod.labels().get("quarantine").map(String::as_str) == want).then_some(pod)
            })
            .await
        }
    };

    let id = request(
        &fake,
        &format!("quarantine {suspect} --reason \"unexpected outbound traffic\""),
    )
    .await;
    assert!(
        click(&fake, "U0BOB", "approve", &id)
            .await
            .contains("Recorded"),
        "{}",
        bot.logs()
    );
    let isolated = label(Some("true")).await;
    let quarantine = policies.get("odorbot-quarantine").await.unwrap();
    let selector = quarantine
        .spec
        .unwrap()
        .pod_selector
        .unwrap()
        .match_labels
        .unwrap();
    assert!(
        selector
            .iter()
            .all(|(k, v)| isolated.labels().get(k) == Some(v)),
        "odorbot-quarantine selects the pod"
    );
    assert_eq!(
        version(&policies.get("default-deny-all").await.unwrap()),
        deny_all,
        "default-deny-all is untouched"
    );

    let id = request(
        &fake,
        &format!("unquarantine {suspect} --reason \"false alarm\""),
    )
    .await;
    approve(&fake, &id).await;
    label(None).await;
    assert_eq!(
        version(&policies.get("default-deny-all").await.unwrap()),
        deny_all
    );
}

/// A Helm rollback to a revision holding a Service, a ServiceAccount, a Secret and a CronJob
/// besides the Deployments is refused at the dry run, naming those objects, and no request is
/// made; the Secret's values appear in no Slack call and nowhere in the audit log.
#[tokio::test]
async fn a_helm_rollback_beyond_the_role_is_refused_naming_the_kinds_and_leaks_no_secret() {
    use base64::Engine;

    let s = seed().await;
    let values = crate::support::cluster_seed::widen_helm_revision_one(&s).await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let _bot = start(&fake, &s, &health, None).await;

    let d = fake
        .slash_command(
            "U0ALICE",
            CHANNEL,
            "rollback odordiff-2 --to 1 --reason \"bad chart\"",
        )
        .await;
    let answer = reply(&fake, &d).await;
    for object in crate::support::cluster_seed::OUTSIDE_THE_ROLE {
        assert!(answer.contains(object), "{object} named in {answer}");
    }
    assert!(cards(&fake).is_empty(), "no approval request");
    let mut audit = String::new();
    for args in ["audit --since 1h", "audit --since 1h --json"] {
        let d = fake.slash_command("U0BOB", CHANNEL, args).await;
        audit.push_str(&reply(&fake, &d).await);
    }
    // The refusal is in the audit log, naming the objects, and no secret value is.
    for object in crate::support::cluster_seed::OUTSIDE_THE_ROLE {
        assert!(audit.contains(object), "{object} in the audit log: {audit}");
    }
    assert!(audit.contains("refused"), "{audit}");
    let calls: Vec<String> = fake.calls().iter().map(text).collect();
    for v in values {
        let b64 = base64::engine::general_purpose::STANDARD.encode(v);
        for haystack in calls.iter().chain([&audit]) {
            assert!(
                !haystack.contains(v) && !haystack.contains(&b64),
                "{v} leaked"
            );
        }
    }
}

/// Slack fails the card's first posts: the requester is told the card is on its way (not
/// that it is there), the card arrives through the outbox, and the outcome of an approval
/// given meanwhile waits for the card and goes into its thread.
#[tokio::test]
async fn a_card_slack_failed_to_take_arrives_later_and_its_outcome_goes_into_its_thread() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let bot = start(&fake, &s, &health, None).await;
    // More failures than one outbox attempt retries.
    fake.fail_next("chat.postMessage", 8, 503);
    let d = fake
        .slash_command(
            "U0ALICE",
            CHANNEL,
            "restart odordiff-api --reason \"stuck\"",
        )
        .await;
    let answer = reply(&fake, &d).await;
    assert!(answer.contains("its card is on its way"), "{answer}");
    assert!(fake.wait_until(WAIT, |f| !cards(f).is_empty()).await);
    let card = text(&cards(&fake)[0]);
    let id = request_id(&card);
    approve(&fake, &id).await;
    assert!(
        fake.wait_until(WAIT, |f| thread_has(f, "*succeeded*"))
            .await,
        "{}",
        bot.logs()
    );
    let posted: Vec<Call> = cards(&fake)
        .into_iter()
        .filter(|c| c.status == 200)
        .collect();
    assert_eq!(posted.len(), 1, "one card posted");
    assert!(
        cards(&fake).iter().any(|c| c.status == 503),
        "Slack failed the card first"
    );
}

/// The runbook's database maintenance followed as a guided thread on the real cluster and
/// PostgreSQL: each change is a request Bob approves (annotation, scale down, VACUUM, scale
/// up, annotation removed), the note is posted when reached, and a process killed in the
/// middle is replaced by one that resumes the run where it stood.
#[tokio::test]
async fn database_maintenance_runs_as_a_guided_thread_across_a_restart() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let db = crate::support::pg::TempDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let env = [("ODORBOT_POSTGRES_URL", db.url.as_str())];
    let yaml = approvals_yaml(120);
    let first = start_env(&fake, &s, &health, Some(&url), &yaml, &env).await;
    let started = ask(&fake, "run database-maintenance --reason \"weekly window\"").await;
    assert!(
        started.contains("Started *Database Maintenance*"),
        "{started}"
    );
    let deployment = || async { s.api::<Deployment>().get("odordiff-api").await.unwrap() };
    let annotated = |d: &Deployment| {
        d.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.get("maintenance").map(String::as_str) == Some("true"))
    };
    let replicas = |d: &Deployment| d.spec.as_ref().and_then(|s| s.replicas);
    // Approves the `n`th card (0-based) once it is posted, as Bob.
    let approve_card = |n: usize| {
        let fake = &fake;
        async move {
            assert!(
                fake.wait_until(WAIT, |f| cards(f).len() > n).await,
                "no card {n}: {:?}",
                posts(fake)
            );
            let id = request_id(&text(&cards(fake)[n]));
            let ok = click(fake, "U0BOB", "approve", &id).await;
            assert!(ok.contains("Recorded: approve"), "{ok}");
        }
    };

    approve_card(0).await;
    wait_for("the maintenance annotation", 60, || async {
        annotated(&deployment().await).then_some(())
    })
    .await;
    // The second step's card is up: this process dies before anyone approves it.
    assert!(fake.wait_until(WAIT, |f| cards(f).len() > 1).await);
    first.kill9().await;
    let _second = start_env(&fake, &s, &health, Some(&url), &yaml, &env).await;
    // The scale-down card says the autoscaler would undo it; the operator lowers its
    // minimum first, as the card asks.
    let card = text(&cards(&fake)[1]);
    assert!(
        card.contains("HorizontalPodAutoscaler odordiff-api-hpa keeps odordiff-api between 3 and 10 replicas: it will set 1 back to 3"),
        "{card}"
    );
    s.api::<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler>()
        .patch(
            "odordiff-api-hpa",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"minReplicas": 1}})),
        )
        .await
        .unwrap();
    approve_card(1).await;
    wait_for("odordiff-api scaled to 1", 90, || async {
        (replicas(&deployment().await) == Some(1)).then_some(())
    })
    .await;
    approve_card(2).await;
    assert!(
        posted(
            &fake,
            "VACUUM ANALYZE in the previous step has already updated",
            Duration::from_secs(90)
        )
        .await
    );
    approve_card(3).await;
    approve_card(4).await;
    assert!(
        posted(&fake, "✅ All 6 steps done.", Duration::from_secs(90)).await,
        "{:?}",
        posts(&fake)
    );
    let d = deployment().await;
    assert_eq!(replicas(&d), Some(3));
    assert!(
        !d.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("maintenance"))
    );
    // Five requests, one per change step: the one asked just before the kill was not
    // asked again by the process that took over.
    assert_eq!(cards(&fake).len(), 5);
    // The run's message ends showing every step done.
    let root = fake
        .calls_to("chat.update")
        .iter()
        .map(text)
        .rfind(|t| t.contains("Procedure: Database Maintenance"))
        .unwrap_or_default();
    assert!(root.contains("(6/6 steps, finished)"), "{root}");
    let audit = audit_log(&url).await;
    let kinds: Vec<&str> = audit
        .iter()
        .filter(|e| e.kind == "procedure")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(
        kinds.first().copied(),
        Some("started database-maintenance — reason: weekly window")
    );
    assert_eq!(kinds.last().copied(), Some("finished"));
}

/// The runbook's breach procedure on real containers: the evidence (the pods' logs, the
/// events, the pod specs, the NetworkPolicies) is kept under the incident with a SHA-256
/// per item before the containment deletes the pods; the security team is paged with the
/// list; quarantine and containment are requests Bob approves; `/odor evidence --json`
/// exports exactly what was hashed, and every access is in the audit log.
#[tokio::test]
async fn the_breach_procedure_keeps_hashed_evidence_pages_security_and_contains() {
    use odorbot::domain::evidence::sha256_hex;
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("odorbot.db").display());
    let yaml = format!(
        "{}incidents:\n  channel: {CHANNEL}\n  roster:\n    primary: [U0BOB]\n    security: [U0SEC]\n",
        approvals_yaml(120)
    );
    let _bot = start_yaml(&fake, &s, &health, Some(&url), &yaml).await;
    let pods = s.rolled_out("odordiff-api", 90).await;
    let pod = pods[0].metadata.name.clone().unwrap();
    let opened = ask(&fake, "incident open high \"unexpected outbound traffic\"").await;
    assert!(opened.contains("Opened INC-1"), "{opened}");

    let started = ask(
        &fake,
        &format!(
            "run suspected-security-breach pod={pod} --incident INC-1 --reason \"egress to an unknown host\""
        ),
    )
    .await;
    assert!(
        started.contains("Started *Suspected Security Breach*"),
        "{started}"
    );
    assert!(
        posted(&fake, "Evidence kept for INC-1", WAIT).await,
        "{:?}",
        posts(&fake)
    );
    let kept = posts(&fake)
        .into_iter()
        .find(|p| p.contains("Evidence kept for INC-1"))
        .unwrap();
    let log_item = format!("log/{pod}/odordiff-api");
    for item in [log_item.as_str(), "pod_specs", "events", "network_policies"] {
        assert!(kept.contains(item), "{item} not listed: {kept}");
    }
    // The page names the security team's people and carries the list.
    assert!(posted(&fake, "<@U0SEC>", WAIT).await, "{:?}", posts(&fake));
    let page = posts(&fake)
        .into_iter()
        .find(|p| p.contains("<@U0SEC>"))
        .unwrap();
    assert!(
        page.contains("Evidence kept") && page.contains(&log_item),
        "{page}"
    );

    // Quarantine, then containment: each a card Bob approves.
    for n in 0..2 {
        assert!(
            fake.wait_until(WAIT, |f| cards(f).len() > n).await,
            "no card {n}: {:?}",
            posts(&fake)
        );
        approve(&fake, &request_id(&text(&cards(&fake)[n]))).await;
    }
    assert!(
        posted(&fake, "✅ All 5 steps done.", Duration::from_secs(120)).await,
        "{:?}",
        posts(&fake)
    );
    let d: Deployment = s.api::<Deployment>().get("odordiff-api").await.unwrap();
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(0));

    // The export is what was hashed, and the hashes are the ones the thread listed.
    let listed = ask(&fake, "evidence INC-1 --json").await;
    assert!(listed.contains("Evidence for INC-1"), "{listed}");
    let files = fake.wait_files(1, WAIT).await;
    assert_eq!(files.len(), 1, "no export shared");
    assert_eq!(files[0].name, "evidence-inc-1.json");
    assert_eq!(files[0].channel.as_deref(), Some(CHANNEL));
    let export: serde_json::Value = serde_json::from_slice(&files[0].content).unwrap();
    let items = export["items"].as_array().unwrap();
    assert!(items.len() >= 4, "{export}");
    for item in items {
        let content = item["content"].as_str().unwrap();
        let hash = item["sha256"].as_str().unwrap();
        assert_eq!(hash, sha256_hex(content.as_bytes()), "{}", item["name"]);
        assert!(
            kept.contains(hash) && listed.contains(hash),
            "{hash} not listed"
        );
        assert_eq!(item["bytes"].as_u64(), Some(content.len() as u64));
    }
    let by_name = |name: &str| {
        items
            .iter()
            .find(|i| i["name"] == name)
            .and_then(|i| i["content"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    // The container's own output, with the kubelet's timestamps.
    let log = by_name(&log_item);
    assert!(log.contains("INFO odordiff-api 1.5.0 starting"), "{log}");
    assert!(log.starts_with("20"), "no timestamps: {log}");
    assert!(by_name("pod_specs").contains(&pod));
    assert!(by_name("network_policies").contains("odorbot-quarantine"));
    assert!(serde_json::from_str::<Vec<serde_json::Value>>(&by_name("events")).is_ok());

    let audit = audit_log(&url).await;
    let evidence: Vec<&str> = audit
        .iter()
        .filter(|e| e.kind == "evidence" && e.subject == "INC-1")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(evidence.len(), 2, "{evidence:?}");
    assert!(evidence[0].starts_with("collected by run ") && evidence[0].contains("sha256:"));
    assert!(evidence[1].starts_with("exported ") && evidence[1].ends_with("as JSON"));
    assert!(
        audit
            .iter()
            .any(|e| e.kind == "procedure" && e.detail == "paged the Security team")
    );
}

/// `/odor help` offers a button per procedure that needs no value; the click opens the
/// form asking why, and its submission starts the run in the click's channel, answered on
/// the click's `response_url`.
#[tokio::test]
async fn a_procedure_starts_from_the_help_buttons_with_the_reason_from_its_form() {
    let s = seed().await;
    let (health, _h) = health_server().await;
    let fake = FakeSlack::start().await;
    let _bot = start(&fake, &s, &health, None).await;
    let help = ask(&fake, "help").await;
    assert!(help.contains("runhelp:database-maintenance"), "{help}");
    assert!(!help.contains("runhelp:standard-deployment"), "{help}");

    let click = fake
        .block_action(
            "U0ALICE",
            CHANNEL,
            "runhelp:database-maintenance",
            "",
            "1700000000.000100",
        )
        .await;
    let opened = reply(&fake, &click).await;
    assert!(
        opened.contains("The form to start *Database Maintenance* is open"),
        "{opened}"
    );
    let views = fake.calls_to("views.open");
    assert_eq!(views.len(), 1);
    let view = crate::support::fake_slack::decode_view(&views[0].body);
    assert_eq!(view["callback_id"], "procedure-run");
    let metadata = view["private_metadata"].as_str().unwrap().to_owned();
    fake.view_submission("U0ALICE", "procedure-run", &metadata, "weekly window")
        .await;
    let path = format!(
        "/response/{}",
        click
            .response_url
            .as_deref()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
    );
    assert!(
        fake.wait_until(WAIT, |f| f.calls_to("response_url").iter().any(|c| c.path
            == path
            && text(c).contains("Started *Database Maintenance*")))
            .await,
        "{:?}",
        fake.calls_to("response_url")
    );
    assert!(
        posted(&fake, "Started by <@U0ALICE> — reason: weekly window", WAIT).await,
        "{:?}",
        posts(&fake)
    );
    // Its first change step is Alice's request, for Bob to approve.
    assert!(fake.wait_until(WAIT, |f| !cards(f).is_empty()).await);
}
