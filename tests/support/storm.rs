//! Alert storms, shared by the storm tests and the `alert_storm` benchmark: the
//! notifications, and what the store and the fake Slack show of them.

use std::time::{Duration, Instant};

use super::fake_slack::FakeSlack;

/// The severities of a storm's groups, in turn.
pub const SEVERITIES: [&str; 3] = ["critical", "high", "medium"];

/// One Alertmanager 0.25 notification: group `g`, `n` firing alerts, severities cycling
/// through [`SEVERITIES`] by group.
pub fn group_notification(g: usize, n: usize) -> Vec<u8> {
    let severity = SEVERITIES[g % SEVERITIES.len()];
    let alerts: Vec<serde_json::Value> = (0..n)
        .map(|a| {
            serde_json::json!({
                "status": "firing",
                "labels": {"alertname": format!("Storm{g}"), "severity": severity, "pod": format!("api-{a}")},
                "annotations": {"summary": format!("storm group {g}, alert {a}")},
                "startsAt": "2026-12-02T07:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": format!("{g:04x}{a:04x}")
            })
        })
        .collect();
    serde_json::json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"Storm{g}\"}}"),
        "status": "firing",
        "receiver": "odorbot",
        "groupLabels": {"alertname": format!("Storm{g}")},
        "commonLabels": {"alertname": format!("Storm{g}"), "severity": severity},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "truncatedAlerts": 0,
        "alerts": alerts
    })
    .to_string()
    .into_bytes()
}

/// Waits until the alert inbox is empty (every notification applied), or `bound` after
/// `started`; returns when that was.
pub async fn wait_inbox_empty(url: &str, started: Instant, bound: Duration) -> Duration {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("the store opens");
    loop {
        let (pending,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM alert_inbox")
            .fetch_one(&pool)
            .await
            .expect("inbox counted");
        if pending == 0 || started.elapsed() >= bound {
            pool.close().await;
            return started.elapsed().min(bound);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Incidents (storms, which summarise them, not counted), and alerts recorded in them,
/// straight from the store.
pub async fn counts(url: &str) -> (i64, i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("the store opens");
    let (incidents,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM incidents WHERE storm IS NULL OR storm <> id")
            .fetch_one(&pool)
            .await
            .expect("incidents counted");
    let (alerts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM incident_alerts")
        .fetch_one(&pool)
        .await
        .expect("alerts counted");
    pool.close().await;
    (incidents, alerts)
}

pub struct StormTimings {
    /// When the storm's summary root was posted.
    pub summary: Option<Duration>,
    /// Per severity the storm holds, when its page was posted as a new message (an edit
    /// notifies nobody, so only `chat.postMessage` counts).
    pub pages: Vec<(&'static str, Option<Duration>)>,
}

/// From the fake Slack's record: when the storm summary and each severity's page came,
/// counted from `started`.
pub fn storm_timings(fake: &FakeSlack, started: Instant) -> StormTimings {
    let posted: Vec<(Instant, String)> = fake
        .calls_to("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 200 && !c.limited)
        .map(|c| (c.at, c.body.to_string()))
        .collect();
    let first = |matches: &dyn Fn(&str) -> bool| {
        posted
            .iter()
            .filter(|(_, text)| matches(text))
            .map(|(at, _)| at.saturating_duration_since(started))
            .min()
    };
    StormTimings {
        summary: first(&|t| t.contains("Alert storm —")),
        pages: SEVERITIES
            .iter()
            .map(|sev| {
                let line = format!(" {sev} incidents so far");
                (
                    *sev,
                    first(&|t| t.contains("alert storm INC-") && t.contains(&line)),
                )
            })
            .collect(),
    }
}
