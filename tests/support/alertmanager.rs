//! A real Alertmanager (Debian's prometheus-alertmanager) whose webhook receiver is
//! odorbot's `POST /alerts`, with short grouping intervals for tests.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::bot::free_port;
use super::http;

pub struct Alertmanager {
    _child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub async fn start(webhook: SocketAddr, token: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: odorbot\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 2s\n\
                 receivers:\n  - name: odorbot\n    webhook_configs:\n      - url: http://{webhook}/alerts\n        send_resolved: true\n\
                 \x20       http_config:\n          authorization:\n            type: Bearer\n            credentials: {token}\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip: a single instance on loopback.
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("alertmanager.log")).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("Debian's prometheus-alertmanager is installed (scripts/probe-servers-up.sh)");
        let am = Alertmanager {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if matches!(
                http::get(&format!("{}/-/ready", am.url)).await,
                Some((200, _))
            ) {
                return am;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("Alertmanager did not become ready");
    }

    /// Fires (or, with `resolved`, ends) an alert through Alertmanager's API.
    pub async fn alert(&self, labels: &[(&str, &str)], summary: &str, resolved: bool) {
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        let mut alert =
            serde_json::json!({ "labels": labels, "annotations": { "summary": summary } });
        if resolved {
            alert["endsAt"] = serde_json::Value::from(jiff::Timestamp::now().to_string());
        }
        let body = serde_json::to_vec(&serde_json::json!([alert])).unwrap();
        let answer = http::post(
            &format!("{}/api/v2/alerts", self.url),
            &[("content-type", "application/json")],
            body,
        )
        .await;
        assert!(
            matches!(answer, Some((200, _))),
            "Alertmanager took the alert: {answer:?}"
        );
    }
}

/// Posts `body` to odorbot's webhook `url` as Alertmanager's webhook receiver does, with
/// the bearer `token`; the status and body of the answer.
pub async fn post_notification(
    url: String,
    token: &str,
    body: impl Into<Vec<u8>>,
) -> Option<(u16, String)> {
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    http::post(&url, &headers, body.into()).await
}

/// An Alertmanager (payload version 4) notification of one firing alert, the only one of
/// its group, with severity `high`; `fingerprint` is written in hexadecimal, as Alertmanager does.
pub fn one_alert_notification(
    group: &str,
    alertname: &str,
    summary: &str,
    fingerprint: usize,
) -> String {
    format!(
        r#"{{"version":"4","groupKey":"{group}","status":"firing","receiver":"odorbot","alerts":[{{"status":"firing","labels":{{"alertname":"{alertname}","severity":"high"}},"annotations":{{"summary":"{summary}"}},"startsAt":"2026-11-27T07:00:00Z","fingerprint":"{fingerprint:x}"}}]}}"#
    )
}
