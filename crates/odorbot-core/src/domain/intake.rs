//! What an Alertmanager notification does, decided before anything is written: one plan
//! per alert, with the idempotency key that makes a redelivery a no-op and a refire a
//! new event; and when a notification that failed to apply is tried again.

use std::collections::BTreeMap;
use std::time::Duration;

use super::alert::{Alert, AlertStatus, Notification};
use super::escalation::Severity;
use super::incident::NewIncident;
use super::outbox::doubling;

/// The longest a notification that failed to apply waits in the inbox before its next
/// attempt: short, since its whole group waits behind it.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// How long a notification waits after `attempts` failed applications (this one included
/// is `attempts + 1`): one second, doubling, up to [`MAX_RETRY_WAIT`]. It is never given
/// up: a failure is the store's or a bug's, and the notification must not be lost.
pub fn retry_wait(attempts: i64) -> Duration {
    doubling(attempts, Duration::from_secs(1), MAX_RETRY_WAIT)
}

/// The runbook entry an alert's labels select: its id and default severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryFacts {
    pub id: String,
    pub severity: Severity,
}

/// What one alert of a notification does.
#[derive(Debug, Clone)]
pub struct AlertPlan {
    /// Claimed before the effect and released when the effect fails, so a retry by
    /// Alertmanager is processed again rather than answered as a duplicate.
    pub key: String,
    pub step: AlertStep,
}

#[derive(Debug, Clone)]
pub enum AlertStep {
    /// Open an incident for the group, or, when one is open already (the store decides
    /// that atomically), note the alert in it. Notes are plain text, stored as such in
    /// the timeline and escaped once wherever they are shown.
    Fire { new: NewIncident, note: String },
    /// Note the resolution in the group's open incident, if there is one.
    Resolve { note: String },
}

/// The idempotency key of one alert state. `startsAt` is part of it: Alertmanager repeats a
/// firing with the same start (a duplicate), while an alert that resolved and fires again
/// starts anew and must page again, however soon.
pub fn alert_key(group_key: &str, alert: &Alert) -> String {
    format!(
        "alert:{group_key}:{}:{}:{}",
        alert.fingerprint,
        alert.starts_at.as_millisecond(),
        alert.status.name()
    )
}

fn label<'a>(n: &'a Notification, alert: &'a Alert, name: &str) -> Option<&'a String> {
    alert.labels.get(name).or_else(|| n.common_labels.get(name))
}

/// One plan per alert, in the notification's order. `entry_for` finds the runbook entry
/// whose matchers the labels satisfy.
pub fn plan(
    n: &Notification,
    entry_for: impl Fn(&BTreeMap<String, String>) -> Option<EntryFacts>,
) -> Vec<AlertPlan> {
    n.alerts
        .iter()
        .map(|alert| {
            let step = match alert.status {
                AlertStatus::Firing => {
                    let entry = entry_for(&alert.labels);
                    // A `severity` label that names one wins over the entry's default.
                    let severity = label(n, alert, "severity")
                        .and_then(|s| s.parse::<Severity>().ok())
                        .or_else(|| entry.as_ref().map(|e| e.severity))
                        .unwrap_or(Severity::High);
                    let title = alert
                        .annotations
                        .get("summary")
                        .or_else(|| n.common_annotations.get("summary"))
                        .cloned()
                        .unwrap_or_else(|| alert.name().to_owned());
                    AlertStep::Fire {
                        new: NewIncident {
                            severity,
                            title,
                            entry: entry.map(|e| e.id),
                            group_key: Some(n.group_key.clone()),
                            opened_by: "alertmanager".into(),
                        },
                        note: format!("🔔 Alert {} firing ({}).", alert.name(), alert.fingerprint),
                    }
                }
                AlertStatus::Resolved => AlertStep::Resolve {
                    note: format!("✅ Alertmanager reports {} resolved.", alert.name()),
                },
            };
            AlertPlan {
                key: alert_key(&n.group_key, alert),
                step,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;

    fn alert(status: AlertStatus, starts: &str, labels: &[(&str, &str)]) -> Alert {
        Alert {
            status,
            fingerprint: "a1b2c3d4".into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            annotations: BTreeMap::new(),
            starts_at: starts.parse::<Timestamp>().unwrap(),
        }
    }

    fn notification(alerts: Vec<Alert>) -> Notification {
        Notification {
            group_key: "{}:{alertname=\"OdorDiffApiDown\"}".into(),
            status: alerts[0].status,
            receiver: "odorbot".into(),
            common_labels: BTreeMap::new(),
            common_annotations: [("summary".to_owned(), "API down".to_owned())].into(),
            alerts,
        }
    }

    fn api_entry(labels: &BTreeMap<String, String>) -> Option<EntryFacts> {
        (labels.get("alertname").map(String::as_str) == Some("OdorDiffApiDown")).then(|| {
            EntryFacts {
                id: "api-service-down".into(),
                severity: Severity::Critical,
            }
        })
    }

    fn fire(plan: &AlertPlan) -> &NewIncident {
        match &plan.step {
            AlertStep::Fire { new, .. } => new,
            AlertStep::Resolve { .. } => panic!("expected a firing plan"),
        }
    }

    #[test]
    fn a_failed_application_is_retried_soon_then_at_most_a_minute_apart() {
        for (attempts, secs) in [(0, 1), (1, 2), (2, 4), (5, 32), (6, 60), (40, 60)] {
            assert_eq!(
                retry_wait(attempts),
                Duration::from_secs(secs),
                "{attempts}"
            );
        }
    }

    #[test]
    fn a_firing_alert_opens_an_incident_of_its_entry() {
        let n = notification(vec![alert(
            AlertStatus::Firing,
            "2026-11-27T07:00:00Z",
            &[("alertname", "OdorDiffApiDown")],
        )]);
        let plans = plan(&n, api_entry);
        let new = fire(&plans[0]);
        assert_eq!(new.severity, Severity::Critical);
        assert_eq!(new.entry.as_deref(), Some("api-service-down"));
        assert_eq!(new.title, "API down");
        assert_eq!(new.group_key.as_deref(), Some(n.group_key.as_str()));
        assert_eq!(new.opened_by, "alertmanager");
    }

    #[test]
    fn a_severity_label_wins_and_unknown_alerts_are_high() {
        let labelled = notification(vec![alert(
            AlertStatus::Firing,
            "2026-11-27T07:00:00Z",
            &[("alertname", "OdorDiffApiDown"), ("severity", "low")],
        )]);
        assert_eq!(fire(&plan(&labelled, api_entry)[0]).severity, Severity::Low);
        let unknown = notification(vec![alert(
            AlertStatus::Firing,
            "2026-11-27T07:00:00Z",
            &[("alertname", "SomethingElse"), ("severity", "page")],
        )]);
        let new = fire(&plan(&unknown, api_entry)[0]).clone();
        assert_eq!((new.severity, new.entry), (Severity::High, None));
    }

    #[test]
    fn a_repeat_of_the_same_firing_is_a_duplicate_and_a_refire_is_new() {
        let first = alert(AlertStatus::Firing, "2026-11-27T07:00:00Z", &[]);
        let repeat = first.clone();
        let resolved = Alert {
            status: AlertStatus::Resolved,
            ..first.clone()
        };
        // Tomorrow, after the incident was resolved: the same fingerprint, a new start.
        let refire = alert(AlertStatus::Firing, "2026-11-28T07:00:00Z", &[]);
        let g = "{}:{alertname=\"OdorDiffApiDown\"}";
        assert_eq!(alert_key(g, &first), alert_key(g, &repeat));
        assert_ne!(alert_key(g, &first), alert_key(g, &resolved));
        assert_ne!(alert_key(g, &first), alert_key(g, &refire));
        assert_ne!(alert_key(g, &first), alert_key("{}:{other}", &first));
    }

    #[test]
    fn a_resolution_is_noted_in_plain_text() {
        let n = notification(vec![alert(
            AlertStatus::Resolved,
            "2026-11-27T07:00:00Z",
            &[("alertname", "<!channel>")],
        )]);
        match &plan(&n, api_entry)[0].step {
            // Plain: escaped once, where it is shown (the thread, a status update).
            AlertStep::Resolve { note } => {
                assert_eq!(note, "✅ Alertmanager reports <!channel> resolved.");
            }
            AlertStep::Fire { .. } => panic!("expected a resolution"),
        }
    }
}
