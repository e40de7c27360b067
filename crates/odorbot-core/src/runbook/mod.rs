//! The runbook catalog: OdorDiff-2's operations runbook as data.
//!
//! `runbooks/odordiff-2.yaml` lists every alert (how to recognise it, its read-only
//! investigation, its destructive recovery, the signals a status update shows), every
//! procedure, saved query, checklist and maintenance list, the escalation matrix and the
//! contacts. Steps compose a closed set of typed [`actions`]; the file never holds a shell
//! command.
//!
//! Loading parses the YAML into [`raw`] structures, then [`compile()`] checks everything and
//! reports every problem at once with its location. The binary embeds the shipped file;
//! `runbook.path` in the configuration points at another.

pub mod actions;
mod catalog;
pub mod compile;
pub mod raw;
pub mod rbac;
pub mod render;
pub mod stored;
pub mod values;

#[cfg(test)]
mod seed_tests;

use std::fmt;
use std::path::Path;

pub use catalog::{
    Alert, Catalog, Cause, Checklist, Contacts, DeployTarget, EmergencyContact, Entry,
    EscalateAfter, Escalation, EscalationRule, ExternalResource, LiveSignal, LocalTime,
    Maintenance, Procedure, Protocol, ProtocolStep, Query, SECTION_IDS, Schedule, Service, Step,
    TeamContact, TraceQuery, Tracing, TracingUi, Vendor, Watch,
};
pub use compile::compile;

/// The shipped catalog's path in the repository, used in its error locations.
pub const DEFAULT_PATH: &str = "runbooks/odordiff-2.yaml";
const DEFAULT_TEXT: &str = include_str!("../../../../runbooks/odordiff-2.yaml");

/// One problem in a catalog, with where it is: `file: path.in.file` or `file:line:column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    pub location: String,
    pub message: String,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found in one catalog file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogErrors {
    pub file: String,
    pub errors: Vec<CatalogError>,
}

impl fmt::Display for CatalogErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "{n} runbook problem{} in {}:",
            if n == 1 { "" } else { "s" },
            self.file
        )?;
        for e in &self.errors {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CatalogErrors {}

/// The catalog shipped inside the binary.
///
/// # Errors
/// [`CatalogErrors`] if the shipped file does not compile (a test guards against it).
pub fn load_default() -> Result<Catalog, CatalogErrors> {
    load_str(DEFAULT_PATH, DEFAULT_TEXT)
}

/// The catalog at `path`, or the built-in one when there is none.
///
/// # Errors
/// As [`load`] and [`load_default`].
pub fn load_from(path: Option<&Path>) -> Result<Catalog, CatalogErrors> {
    match path {
        Some(p) => load(p),
        None => load_default(),
    }
}

/// Where [`load_from`] reads, for messages.
pub fn describe_source(path: Option<&Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => format!("{DEFAULT_PATH} (built in)"),
    }
}

/// A catalog from a file.
///
/// # Errors
/// [`CatalogErrors`]: the file cannot be read, or every problem in it.
pub fn load(path: &Path) -> Result<Catalog, CatalogErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CatalogErrors {
        file: file.clone(),
        errors: vec![CatalogError {
            location: file.clone(),
            message: format!("cannot be read: {e}"),
        }],
    })?;
    load_str(&file, &text)
}

/// A catalog from text; `file` names it in error locations.
///
/// # Errors
/// [`CatalogErrors`]: a YAML or structure error (with line and column), or every
/// problem the compiler finds (with its path in the file).
pub fn load_str(file: &str, text: &str) -> Result<Catalog, CatalogErrors> {
    let fail = |errors| CatalogErrors {
        file: file.to_owned(),
        errors,
    };
    let raw = serde_yaml_ng::from_str::<raw::RawCatalog>(text).map_err(|e| {
        let location = match e.location() {
            Some(l) => format!("{file}:{}:{}", l.line(), l.column()),
            None => file.to_owned(),
        };
        // The location is already in front; serde_yaml_ng repeats it in the message.
        let message = match e.location() {
            Some(l) => e
                .to_string()
                .replace(&format!(" at line {} column {}", l.line(), l.column()), ""),
            None => e.to_string(),
        };
        fail(vec![CatalogError { location, message }])
    })?;
    compile(raw).map_err(|errors| {
        fail(
            errors
                .into_iter()
                .map(|e| CatalogError {
                    location: format!("{file}: {}", e.location),
                    message: e.message,
                })
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::runbook::values::Severity;

    /// The policy in force by default is the runbook's matrix, for all four severities,
    /// and its protocol's 15-minute cadence.
    #[test]
    fn the_escalation_policy_is_the_runbooks_matrix() {
        let policy = load_default().unwrap().escalation_policy();
        assert_eq!(policy, crate::domain::escalation::Policy::runbook_example());
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_shipped_catalog_compiles() {
        let catalog = load_default().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(catalog.name(), "odordiff-2");
        assert_eq!(catalog.alerts().len(), 6);
        assert_eq!(catalog.procedures().len(), 10);
        let update = catalog.emergency_response().update_interval();
        assert_eq!(update, Some(std::time::Duration::from_secs(15 * 60)));
        let high = catalog.escalation().rule(Severity::High);
        assert_eq!(
            high.escalate_after,
            EscalateAfter::Unresolved(std::time::Duration::from_secs(1800))
        );
    }

    #[test]
    fn alerts_are_found_by_their_alertmanager_labels() {
        let catalog = load_default().unwrap();
        let found = |pairs: &[(&str, &str)]| {
            catalog
                .alert_for_labels(&labels(pairs))
                .map(|a| a.id.as_str().to_owned())
        };
        assert_eq!(
            found(&[
                ("alertname", "OdorDiffApiDown"),
                ("namespace", "odordiff"),
                ("severity", "page")
            ]),
            Some("api-service-down".to_owned())
        );
        assert_eq!(
            found(&[
                ("alertname", "OdorDiffDiskSpaceLow"),
                ("namespace", "odordiff")
            ]),
            Some("disk-space-low".to_owned())
        );
        assert_eq!(
            found(&[("alertname", "OdorDiffApiDown"), ("namespace", "staging")]),
            None
        );
        assert_eq!(found(&[("namespace", "odordiff")]), None);
        assert_eq!(found(&[]), None);
    }

    #[test]
    fn the_most_specific_alert_entry_wins() {
        let text = DEFAULT_TEXT.replacen(
            "      alertname: OdorDiffCacheHitRateLow\n      namespace: odordiff\n",
            "      alertname: OdorDiffApiDown\n      namespace: odordiff\n      component: edge\n",
            1,
        );
        let catalog = load_str("t.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
        let base = [("alertname", "OdorDiffApiDown"), ("namespace", "odordiff")];
        let pick = |extra: &[(&str, &str)]| {
            let mut l = labels(&base);
            l.extend(labels(extra));
            catalog.alert_for_labels(&l).unwrap().id.to_string()
        };
        assert_eq!(pick(&[]), "api-service-down");
        assert_eq!(pick(&[("component", "edge")]), "cache-hit-rate-low");
        assert_eq!(pick(&[("component", "core")]), "api-service-down");
    }

    #[test]
    fn every_entry_is_found_by_its_id_and_read_only_steps_need_no_input() {
        let catalog = load_default().unwrap();
        for entry in catalog.entries() {
            let found = catalog.entry(entry.id().as_str()).unwrap();
            assert_eq!(found.title(), entry.title());
            assert!(render::show(&catalog, entry.id().as_str()).is_some());
        }
        // `/odor diagnose` and the saved queries run at once, so nothing may be asked.
        let read_only = catalog
            .alerts()
            .iter()
            .flat_map(|a| &a.investigation)
            .chain(catalog.queries().iter().flat_map(|q| &q.steps));
        for step in read_only {
            assert!(!step.action.is_destructive(), "{}", step.title);
            step.bind(&BTreeMap::new())
                .unwrap_or_else(|e| panic!("{}: {e:?}", step.title));
        }
        for alert in catalog.alerts() {
            assert!(
                alert
                    .recovery
                    .iter()
                    .all(|s| s.action.is_destructive() && s.label.is_some())
            );
        }
        for id in SECTION_IDS {
            assert!(catalog.entry(id).is_none());
            assert!(render::show(&catalog, id).is_some(), "{id}");
        }
        assert!(render::show(&catalog, "no-such-entry").is_none());
    }

    #[test]
    fn yaml_and_structure_errors_carry_line_and_column() {
        let text = DEFAULT_TEXT.replacen(
            "    severity: critical\n",
            "    severity: critical\n    sevrity: high\n",
            1,
        );
        let line = text.lines().position(|l| l == "    sevrity: high").unwrap() + 1;
        let e = load_str("t.yaml", &text).unwrap_err();
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].location, format!("t.yaml:{line}:5"));
        assert!(
            e.errors[0].message.contains("unknown field `sevrity`"),
            "{e}"
        );
        assert!(!e.errors[0].message.contains(" at line "), "{e}");

        let e = load_str("t.yaml", "name: [unclosed\n").unwrap_err();
        assert!(e.errors[0].location.starts_with("t.yaml:"), "{e}");
        let e = load(Path::new("/nonexistent/runbook.yaml")).unwrap_err();
        assert!(
            e.to_string()
                .contains("/nonexistent/runbook.yaml: cannot be read"),
            "{e}"
        );
    }
}
