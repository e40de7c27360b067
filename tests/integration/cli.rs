//! `odorbot check`: every problem of a broken configuration at once, with locations.

use std::process::Command;

fn check(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_odorbot"))
        .arg("check")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const TOKENS: &[(&str, &str)] = &[
    ("SLACK_APP_TOKEN", "xapp-1-A1-test"),
    ("SLACK_BOT_TOKEN", "xoxb-1-test"),
];

#[test]
fn check_reports_every_error_of_a_broken_config_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "slack:\n  api_url: not a url\n  connections: 0\nstore:\n  url: redis://x\nhttp:\n  listen: everywhere\nengine:\n  shutdown_grace: forever\nkubernetes:\n  namespace: -bad-\n",
    )
    .unwrap();
    let (code, out) = check(
        &["--config", path.to_str().unwrap()],
        &[("SLACK_BOT_TOKEN", "xoxb-1-test")],
    );
    assert_eq!(code, 1, "{out}");
    let file = path.display().to_string();
    for want in [
        "7 configuration problems".to_owned(),
        format!("{file}: slack.api_url"),
        format!("{file}: slack.app_token_file: no Slack token"),
        format!("{file}: slack.connections: 0 is out of range"),
        format!("{file}: store.url: must start with sqlite:"),
        format!("{file}: http.listen: \"everywhere\" is not an address"),
        format!("{file}: engine.shutdown_grace: \"forever\" is not a duration"),
        format!("{file}: kubernetes.namespace: \"-bad-\""),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn check_passes_on_tokens_and_defaults() {
    let (code, out) = check(&[], TOKENS);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "configuration: ok");
    assert!(
        lines[1].starts_with(
            "runbook: ok (runbooks/odordiff-2.yaml (built in): odordiff-2: 6 alerts, 10 procedures"
        ),
        "{out}"
    );
}

#[test]
fn check_shows_syntax_errors_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yaml");
    std::fs::write(&path, "slack:\n  conections: 2\n").unwrap();
    let (code, out) = check(&["--config", path.to_str().unwrap()], TOKENS);
    assert_eq!(code, 1);
    assert!(out.contains("typo.yaml:2:"), "{out}");
    assert!(out.contains("conections"), "{out}");
}

/// Policy is strict through the binary too: a mistyped verb under `approvals.actions` and an
/// approver list that lets anyone approve are reported with their location, and check fails.
#[test]
fn check_reports_a_mistyped_approval_verb_and_an_empty_approver_list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        "approvals:\n  actions:\n    rolback: {approve: [approver]}\n    restart: {approve: []}\n",
    )
    .unwrap();
    let (code, out) = check(&["--config", path.to_str().unwrap()], TOKENS);
    assert_eq!(code, 1, "{out}");
    let file = path.display().to_string();
    for want in [
        format!(
            "{file}: approvals.actions.rolback: \"rolback\" is not a verb that changes anything"
        ),
        format!("{file}: approvals.actions.restart.approve: is empty"),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn check_says_when_resends_may_come_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odorbot.yaml");
    std::fs::write(&path, "slack:\n  resend_check: false\n").unwrap();
    let (code, out) = check(&["--config", path.to_str().unwrap()], TOKENS);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("note: slack.resend_check is off"), "{out}");
    assert!(out.contains("may appear twice"), "{out}");
    let (_, out) = check(&[], TOKENS);
    assert!(!out.contains("resend_check"), "{out}");
}

#[test]
fn the_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/odorbot.example.yaml");
    let (code, out) = check(&["--config", path], TOKENS);
    assert_eq!(code, 0, "{out}");
}

/// `--online` reaches the fake Slack, a SQLite store and the real API server.
async fn check_online(fake_url: &str, bot_token: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("check.db").display());
    let kubeconfig = crate::support::kube::kubeconfig();
    let api = format!("{fake_url}/");
    let env = [
        ("SLACK_APP_TOKEN", crate::support::fake_slack::APP_TOKEN),
        ("SLACK_BOT_TOKEN", bot_token),
        ("SLACK_API_URL", api.as_str()),
        ("ODORBOT_STORE_URL", store.as_str()),
        ("KUBECONFIG", kubeconfig.to_str().unwrap()),
    ];
    // The fake Slack runs on this test's runtime, so the child is awaited, not blocked on.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_odorbot"))
        .args(["check", "--online"])
        .env_clear()
        .envs(env)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn check_online_reaches_slack_the_store_and_kubernetes() {
    let fake = crate::support::fake_slack::FakeSlack::start().await;
    let (code, out) = check_online(&fake.api_url(), crate::support::fake_slack::BOT_TOKEN).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("store: ok (sqlite reachable, migrations applied)"),
        "{out}"
    );
    assert!(out.contains("slack: ok (auth.test ok: team T111"), "{out}");
    assert!(out.contains("kubernetes: ok (API server v1.20"), "{out}");
    assert_eq!(fake.calls_to("auth.test").len(), 1);
}

/// Each failure names its cause: no answer, a refused connection, a failed TLS handshake.
#[tokio::test]
async fn check_online_names_the_cause_when_slack_cannot_be_reached() {
    // Accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    // HTTPS to a server that speaks plain HTTP.
    let fake = crate::support::fake_slack::FakeSlack::start().await;
    let tls_url = fake.api_url().replacen("http://", "https://", 1);
    for (url, cause) in [
        (silent_url.as_str(), "timeout: no answer within 5s"),
        (closed_url.as_str(), "connection refused"),
        (tls_url.as_str(), "TLS failed"),
    ] {
        let (code, out) = check_online(url, crate::support::fake_slack::BOT_TOKEN).await;
        assert_eq!(code, 1, "{out}");
        let line = out
            .lines()
            .find(|l| l.starts_with("slack: FAILED"))
            .unwrap_or_default();
        assert!(line.contains(cause), "{url}: {cause} in {out}");
    }
    held.abort();
}

#[tokio::test]
async fn check_online_fails_when_slack_refuses_the_token() {
    let fake = crate::support::fake_slack::FakeSlack::start().await;
    let (code, out) = check_online(&fake.api_url(), "xoxb-wrong-token").await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("slack: FAILED: auth: Slack refused auth.test: invalid_auth"),
        "{out}"
    );
    assert!(!out.contains("xoxb-wrong-token"), "{out}");
    assert!(out.contains("store: ok"), "{out}");
}
