//! The Kubernetes verbs through the real binary: read-only ones answer at once,
//! destructive ones show the API server's dry run and change nothing, as the
//! ServiceAccount that `manifests/` binds.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;

use crate::support::bot::Bot;
use crate::support::cluster_seed::seed;
use crate::support::fake_slack::FakeSlack;

const WAIT: Duration = Duration::from_secs(30);

async fn reply(fake: &FakeSlack, text: &str) -> String {
    let d = fake.slash_command("U0ASKER", "C111", text).await;
    let body = fake
        .reply_to(&d, WAIT)
        .await
        .unwrap_or_else(|| panic!("no reply to {text:?}"))
        .body;
    // Read the JSON back as the text a person sees.
    serde_json::to_string(&body).unwrap().replace("\\n", "\n")
}

#[tokio::test]
async fn cluster_verbs_answer_and_dry_runs_change_nothing() {
    let seeded = seed().await;
    let fake = FakeSlack::start().await;
    let kubeconfig = seeded.bot_kubeconfig_path().to_str().unwrap().to_owned();
    let bot = Bot::start_config(
        &fake,
        None,
        &[("KUBECONFIG", &kubeconfig), ("ODORBOT_NAMESPACE", &seeded.ns)],
        "approvals:\n  roles:\n    operator: [U0ASKER]\n    approver: [U0OTHER]\n  cooldowns: {rollback: off}\n",
    )
    .await;
    assert!(fake.wait_connections(2, WAIT).await, "{}", bot.logs());
    let deployments: kube::Api<Deployment> = seeded.api();
    let before = deployments.get("odordiff-api").await.unwrap();

    let cases: &[(&str, &[&str])] = &[
        ("pods odordiff-api", &["Pods — app=odordiff-api", "ready"]),
        ("history odordiff-api", &["Rollout history — odordiff-api"]),
        ("history odordiff-2", &["Helm history — odordiff-2", "v2"]),
        ("endpoints", &["Endpoints — odordiff-api"]),
        ("events --since 1h", &["Events"]),
        (
            "scale odordiff-api 5 --reason \"load test\"",
            &["Requested `scale`", "second person"],
        ),
        (
            "restart odordiff-api --reason \"stuck workers\"",
            &["Requested `restart`"],
        ),
        (
            "rollback odordiff-2 --reason \"5xx after deploy\"",
            &["Requested `rollback`"],
        ),
        (
            "maintenance start --reason \"vacuum\"",
            &["Requested `maintenance`"],
        ),
        (
            "cache ttl 7200 --reason \"hit rate low\"",
            &["Requested `cache`"],
        ),
        (
            "hpa odordiff-api-hpa --min 5 --reason \"p95\"",
            &["Requested `hpa`"],
        ),
        ("scale odordiff-api 5", &["needs a reason: add `--reason"]),
        (
            "scale odordiff-api 51 --reason x",
            &["is out of range: expected a whole number from 0 to 50"],
        ),
        (
            "scale Odordiff --reason x",
            &["must use only lowercase letters"],
        ),
        (
            "hpa odordiff-api-hpa --min 9 --max 3 --reason x",
            &["is above `--max 3`"],
        ),
        ("diagnose api-service-down", &["Diagnose — ", "1. "]),
        (
            "diagnose no-such-alert",
            &["is not a runbook alert; one of", "api-service-down"],
        ),
    ];
    for (text, wants) in cases {
        let got = reply(&fake, text).await;
        for want in *wants {
            assert!(
                got.contains(want),
                "{text:?}: missing {want:?} in\n{got}\n{}",
                bot.logs()
            );
        }
    }
    // Each request's card carries the API server's dry run of exactly what would change.
    // Cards go through the outbox, paced per channel: they may still be on their way.
    let cards = |f: &FakeSlack| -> Vec<String> {
        f.calls_to("chat.postMessage")
            .into_iter()
            .map(|c| c.body.to_string())
            .filter(|t| t.contains("Approval needed"))
            .collect()
    };
    let wants = [
        "spec.replicas: 3 → 5",
        "restartedAt",
        "cache_ttl",
        "minReplicas",
        "maintenance",
    ];
    let all_shown = |f: &FakeSlack| {
        let cards = cards(f);
        wants.iter().all(|w| cards.iter().any(|c| c.contains(w)))
    };
    assert!(
        fake.wait_until(Duration::from_secs(30), all_shown).await,
        "not every dry run on a card: {:?}",
        cards(&fake)
    );
    let after = deployments.get("odordiff-api").await.unwrap();
    // The spec is what a dry run would have changed (the controller still writes status).
    assert_eq!(
        before.metadata.generation, after.metadata.generation,
        "dry runs changed the deployment"
    );
    assert_eq!(before.spec, after.spec, "dry runs changed the deployment");
    drop(bot);
}

/// A failed Kubernetes call is logged once, by odorbot, with what it was for; kube's HTTP
/// layer does not add an ERROR of its own for every call.
#[tokio::test]
async fn a_failed_kubernetes_call_is_logged_once_with_its_context() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let kubeconfig = kubeconfig_to(dir.path(), closed.local_addr().unwrap());
    drop(closed);
    let fake = FakeSlack::start().await;
    let bot = Bot::start_with(&fake, None, &[("KUBECONFIG", kubeconfig.to_str().unwrap())]).await;
    assert!(fake.wait_connections(2, WAIT).await, "{}", bot.logs());
    let text = reply(&fake, "pods odordiff-api").await;
    assert!(text.contains("cannot be reached"), "{text}");
    let logs = bot.logs();
    let failures: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("Kubernetes call failed"))
        .collect();
    assert_eq!(failures.len(), 1, "{logs}");
    assert!(failures[0].contains("\"Pods\""), "{logs}");
    assert!(
        !logs
            .lines()
            .any(|l| l.contains("kube_client") && l.contains("ERROR")),
        "{logs}"
    );
}

/// A kubeconfig for an API server at `addr` (one that is down or never answers).
fn kubeconfig_to(dir: &std::path::Path, addr: std::net::SocketAddr) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{addr}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: test-token\ncontexts:\n- name: x\n  context: {{cluster: c, user: u, namespace: odordiff}}\ncurrent-context: x\n"
        ),
    )
    .unwrap();
    path
}

/// A reply is bounded by `probes.deadline` (2 s in the tests' config) as a whole, even
/// where no source of its own is shorter: cert-manager's list against an API server that
/// accepts and never answers (its calls are bounded by 15 s).
#[tokio::test]
async fn a_reply_from_a_silent_api_server_comes_within_the_deadline() {
    let (hole, _hole) = crate::support::probe_servers::black_hole().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_to(dir.path(), hole);
    let fake = FakeSlack::start().await;
    let bot = Bot::start_with(&fake, None, &[("KUBECONFIG", kubeconfig.to_str().unwrap())]).await;
    assert!(fake.wait_connections(2, WAIT).await, "{}", bot.logs());
    for verb in ["certs", "status"] {
        let started = std::time::Instant::now();
        let text = reply(&fake, verb).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(3500),
            "{verb}: {took:?}: {text}"
        );
        assert!(
            text.contains("probes."),
            "{verb}: the bound is named: {text}"
        );
    }
}
