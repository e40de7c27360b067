//! The runbook catalog through the binary: `odorbot runbook list|show`, and `odorbot check`
//! failing on a broken catalog with every problem listed.

use std::path::Path;
use std::process::Command;

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/odordiff-2.yaml");

const TOKENS: &[(&str, &str)] = &[
    ("SLACK_APP_TOKEN", "xapp-1-A1-test"),
    ("SLACK_BOT_TOKEN", "xoxb-1-test"),
];

const ALERTS: &[&str] = &[
    "api-service-down",
    "database-connection-pool-exhausted",
    "high-error-rate",
    "high-response-time",
    "disk-space-low",
    "cache-hit-rate-low",
];

const PROCEDURES: &[&str] = &[
    "standard-deployment",
    "emergency-rollback",
    "manual-scaling",
    "autoscaling-configuration",
    "database-maintenance",
    "backup-verification",
    "ssl-certificate-renewal",
    "suspected-security-breach",
    "user-access-review",
    "rotate-secrets",
];

/// Runs the binary with only `env`; returns exit code, stdout and stderr.
fn odorbot(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_odorbot"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The shipped catalog with each `(from, to)` applied once, written to `dir`.
fn broken_catalog(dir: &Path, replacements: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(SHIPPED).unwrap();
    for (from, to) in replacements {
        assert!(
            text.contains(from),
            "{from:?} is not in the shipped catalog"
        );
        text = text.replacen(from, to, 1);
    }
    let path = dir.join("broken-runbook.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Four problems in four places, each found by a different check.
const BREAKAGES: &[(&str, &str)] = &[
    ("since: 10m, grep: ERROR}", "since: 10m, grep: \"ERROR(\"}"),
    (
        "type: rollout_restart\n        params: {deployment: pgbouncer}",
        "type: rollout_restar\n        params: {deployment: pgbouncer}",
    ),
    ("checklist: pre-deployment", "checklist: pre-deploy"),
    (
        "replicas: {param: replicas, min: 1, max: 20, default: 5}",
        "replicas: {param: replicas, min: 1, max: 200, default: 5}",
    ),
];

fn expected_errors(file: &str) -> Vec<String> {
    vec![
        format!(
            "{file}: alerts[2] (high-error-rate).investigation[1].params.grep: \"ERROR(\" is not a usable regular expression"
        ),
        format!(
            "{file}: alerts[1] (database-connection-pool-exhausted).recovery[0].type: \"rollout_restar\" is not an action type; did you mean \"rollout_restart\"?"
        ),
        format!(
            "{file}: procedures[0] (standard-deployment).checklist: \"pre-deploy\" is not a checklist"
        ),
        format!(
            "{file}: alerts[0] (api-service-down).recovery[1].params.replicas.max: \"200\" is out of range"
        ),
    ]
}

#[test]
fn runbook_list_shows_every_alert_and_procedure() {
    let (code, out, err) = odorbot(&["runbook", "list"], &[]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..2], ["KIND", "ID"], "{out}");
    let has = |kind: &str, id: &str| {
        rows.iter()
            .any(|r| r.len() > 2 && r[0] == kind && r[1] == id)
    };
    for id in ALERTS {
        assert!(has("alert", id), "alert {id} missing from:\n{out}");
    }
    for id in PROCEDURES {
        assert!(has("procedure", id), "procedure {id} missing from:\n{out}");
    }
    for id in ["pre-deployment", "post-incident", "disaster-recovery"] {
        assert!(has("checklist", id), "checklist {id} missing from:\n{out}");
    }
    let api = out
        .lines()
        .find(|l| l.contains("api-service-down"))
        .unwrap();
    assert!(
        api.contains("critical") && api.contains("5 investigation, 3 recovery"),
        "{api}"
    );
}

#[test]
fn runbook_show_lists_an_alerts_steps_in_order() {
    let (code, out, err) = odorbot(&["runbook", "show", "api-service-down"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("alert api-service-down — API Service Down\n"),
        "{out}"
    );
    assert!(
        out.contains("matches alerts with: alertname=OdorDiffApiDown, namespace=odordiff"),
        "{out}"
    );
    assert!(
        out.contains("severity: critical (acknowledge within 5m; escalate immediately)"),
        "{out}"
    );
    let steps = [
        "pods selector=app=odordiff-api",
        "describe_pods selector=app=odordiff-api only_failing=true",
        "logs selector=app=odordiff-api tail=100",
        "endpoints service=odordiff-api",
        "db_connectivity",
        "1. Restart failing pods [Restart odordiff-api]",
        "rollout_restart deployment=odordiff-api",
        "scale deployment=odordiff-api replicas=<replicas: 1 to 20, default 5>",
        "rollback_helm release=odordiff-2 revision=<revision: optional>",
        "status updates show: deployment_ready odordiff-api, health /health, metric error_rate",
    ];
    let mut from = 0;
    for step in steps {
        let at = out[from..]
            .find(step)
            .unwrap_or_else(|| panic!("{step:?} missing or out of order in:\n{out}"));
        from += at + step.len();
    }
}

#[test]
fn runbook_show_refuses_an_unknown_id() {
    let (code, out, err) = odorbot(&["runbook", "show", "api-servce-down"], &[]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("the runbook has no entry \"api-servce-down\""),
        "{err}"
    );
}

#[test]
fn check_fails_on_a_broken_runbook_listing_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = broken_catalog(dir.path(), BREAKAGES);
    let config = dir.path().join("odorbot.yaml");
    std::fs::write(&config, format!("runbook:\n  path: {file}\n")).unwrap();
    let (code, out, _) = odorbot(&["check", "--config", config.to_str().unwrap()], TOKENS);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("4 runbook problems in {file}:")),
        "{out}"
    );
    for want in expected_errors(&file) {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("  - {want}"))),
            "missing {want:?} in:\n{out}"
        );
    }

    // The environment names the file just as well.
    let mut env = TOKENS.to_vec();
    env.push(("ODORBOT_RUNBOOK", &file));
    let (code, out, _) = odorbot(&["check"], &env);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("4 runbook problems"), "{out}");
}

#[test]
fn check_shows_a_runbook_syntax_error_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = broken_catalog(
        dir.path(),
        &[(
            "    severity: high\n",
            "    severity: high\n    priority: p1\n",
        )],
    );
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l == "    priority: p1")
        .unwrap()
        + 1;
    let env = [TOKENS, &[("ODORBOT_RUNBOOK", file.as_str())]].concat();
    let (code, out, _) = odorbot(&["check"], &env);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("{file}:{line}:5: ")), "{out}");
    assert!(out.contains("unknown field `priority`"), "{out}");
}

#[test]
fn runbook_commands_read_another_file_and_report_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = broken_catalog(dir.path(), BREAKAGES);
    let (code, out, err) = odorbot(&["runbook", "list", "--file", &file], &[]);
    assert_eq!(code, 1, "{out}");
    for want in expected_errors(&file) {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    let (code, out, err) = odorbot(&["runbook", "show", "escalation", "--file", SHIPPED], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("escalation path: primary → secondary → platform-lead"),
        "{out}"
    );
}
