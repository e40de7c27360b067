//! Alertmanager's webhook notification (payload version 4), read strictly: every field
//! odorbot relies on is checked before anything is written; fields Alertmanager adds
//! beyond these are tolerated.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;
use thiserror::Error;

const MAX_ALERTS: usize = 1000;
const MAX_TEXT: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Resolved => "resolved",
        }
    }
}

/// One notification for one alert group.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub group_key: String,
    pub status: AlertStatus,
    pub receiver: String,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub status: AlertStatus,
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Timestamp,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// Why a notification was refused; the text goes back in the 4xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AlertError {
    #[error("body is not JSON of the webhook's shape: {0}")]
    Json(String),
    #[error("unsupported payload version {0:?}: odorbot reads version \"4\"")]
    Version(String),
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    version: String,
    group_key: String,
    status: String,
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    alerts: Vec<RawAlert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAlert {
    status: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: String,
    fingerprint: String,
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> AlertError {
    AlertError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

fn status(field: &str, raw: &str) -> Result<AlertStatus, AlertError> {
    match raw {
        "firing" => Ok(AlertStatus::Firing),
        "resolved" => Ok(AlertStatus::Resolved),
        other => Err(invalid(
            field,
            format!("{other:?} is neither firing nor resolved"),
        )),
    }
}

fn bounded_map(field: &str, map: &BTreeMap<String, String>) -> Result<(), AlertError> {
    for (k, v) in map {
        if k.is_empty() || k.len() > 256 || v.len() > MAX_TEXT {
            return Err(invalid(format!("{field}.{k}"), "name or value too long"));
        }
    }
    Ok(())
}

/// Parses and checks a webhook body.
///
/// # Errors
/// [`AlertError`] naming the first field that is wrong and how.
pub fn parse(body: &[u8]) -> Result<Notification, AlertError> {
    // The version first, so a future payload gets the precise answer, not a shape error.
    let probe: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| AlertError::Json(e.to_string()))?;
    match probe.get("version").and_then(|v| v.as_str()) {
        Some("4") => {}
        Some(other) => return Err(AlertError::Version(other.to_owned())),
        None => return Err(invalid("version", "missing")),
    }
    let raw: Raw = serde_json::from_value(probe).map_err(|e| AlertError::Json(e.to_string()))?;
    if raw.version != "4" {
        return Err(AlertError::Version(raw.version));
    }
    if raw.group_key.is_empty() || raw.group_key.len() > 1024 {
        return Err(invalid("groupKey", "must be 1 to 1024 characters"));
    }
    let group_status = status("status", &raw.status)?;
    if raw.alerts.is_empty() {
        return Err(invalid("alerts", "is empty"));
    }
    if raw.alerts.len() > MAX_ALERTS {
        return Err(invalid(
            "alerts",
            format!("has {} alerts; at most {MAX_ALERTS}", raw.alerts.len()),
        ));
    }
    bounded_map("commonLabels", &raw.common_labels)?;
    bounded_map("commonAnnotations", &raw.common_annotations)?;
    let mut alerts = Vec::with_capacity(raw.alerts.len());
    for (i, a) in raw.alerts.into_iter().enumerate() {
        let at = |f: &str| format!("alerts[{i}].{f}");
        let alert_status = status(&at("status"), &a.status)?;
        if a.fingerprint.is_empty()
            || a.fingerprint.len() > 64
            || !a.fingerprint.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid(
                at("fingerprint"),
                "must be 1 to 64 hexadecimal digits",
            ));
        }
        if a.labels.get("alertname").is_none_or(String::is_empty) {
            return Err(invalid(at("labels.alertname"), "missing"));
        }
        bounded_map(&at("labels"), &a.labels)?;
        bounded_map(&at("annotations"), &a.annotations)?;
        let starts_at: Timestamp = a
            .starts_at
            .parse()
            .map_err(|_| invalid(at("startsAt"), "is not an RFC 3339 time"))?;
        alerts.push(Alert {
            status: alert_status,
            fingerprint: a.fingerprint,
            labels: a.labels,
            annotations: a.annotations,
            starts_at,
        });
    }
    Ok(Notification {
        group_key: raw.group_key,
        status: group_status,
        receiver: raw.receiver,
        common_labels: raw.common_labels,
        common_annotations: raw.common_annotations,
        alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification as Alertmanager 0.25 sends it, with its extra fields.
    const FIRING: &str = r#"{
      "receiver": "odorbot", "status": "firing",
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "OdorDiffApiDown", "namespace": "odordiff", "severity": "critical"},
        "annotations": {"summary": "API down"},
        "startsAt": "2026-11-27T07:00:00.123Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph", "fingerprint": "a1b2c3d4e5f60718"
      }],
      "groupLabels": {"alertname": "OdorDiffApiDown"},
      "commonLabels": {"alertname": "OdorDiffApiDown", "namespace": "odordiff"},
      "commonAnnotations": {"summary": "API down"},
      "externalURL": "http://alertmanager:9093", "version": "4",
      "groupKey": "{}:{alertname=\"OdorDiffApiDown\"}", "truncatedAlerts": 0
    }"#;

    #[test]
    fn alertmanager_notifications_parse() {
        let n = parse(FIRING.as_bytes()).unwrap();
        assert_eq!(n.status, AlertStatus::Firing);
        assert_eq!(n.group_key, "{}:{alertname=\"OdorDiffApiDown\"}");
        assert_eq!(n.alerts[0].name(), "OdorDiffApiDown");
        assert_eq!(
            n.alerts[0].starts_at,
            "2026-11-27T07:00:00.123Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn bad_notifications_say_what_is_wrong() {
        let with = |from: &str, to: &str| {
            parse(FIRING.replacen(from, to, 1).as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert!(
            parse(b"{not json")
                .unwrap_err()
                .to_string()
                .starts_with("body is not JSON")
        );
        assert_eq!(
            with("\"version\": \"4\"", "\"version\": \"5\""),
            "unsupported payload version \"5\": odorbot reads version \"4\""
        );
        assert_eq!(with("\"version\": \"4\",", ""), "version: missing");
        assert_eq!(
            with(
                "\"status\": \"firing\",\n      \"alerts\"",
                "\"status\": \"burning\",\n      \"alerts\""
            ),
            "status: \"burning\" is neither firing nor resolved"
        );
        assert_eq!(
            with("a1b2c3d4e5f60718", "not-hex!"),
            "alerts[0].fingerprint: must be 1 to 64 hexadecimal digits"
        );
        assert_eq!(
            with(
                "\"alertname\": \"OdorDiffApiDown\", \"namespace\"",
                "\"namespace\""
            ),
            "alerts[0].labels.alertname: missing"
        );
        assert_eq!(
            with("2026-11-27T07:00:00.123Z", "yesterday"),
            "alerts[0].startsAt: is not an RFC 3339 time"
        );
        assert!(
            with(
                "\"groupKey\": \"{}:{alertname=\\\"OdorDiffApiDown\\\"}\",",
                ""
            )
            .starts_with("body is not JSON")
        );
    }
}
