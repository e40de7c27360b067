//! The typed action an approval request carries, as the store keeps it.
//!
//! A request stores what its approver saw as a typed action, never the `/odor` text that
//! asked for it, so execution never parses user input again. The form is the catalog's own
//! step form with every value fixed — `{"version":1,"type":"scale","params":{…}}` — and it is
//! read back through the same compiler and checks as the catalog's steps: one grammar for
//! actions, whether they come from the runbook file or from the store.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use thiserror::Error;

use super::actions::{Action, Bound, Change, Classified, one_line};
use super::compile::compile_action;
use super::raw::RawAction;

/// The form's version. A reader refuses any other: a request stored by a newer odorbot is
/// reported, not guessed at.
pub const VERSION: u64 = 1;

/// Why a stored action could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoredActionError {
    #[error("the stored action is not JSON: {0}")]
    Json(String),
    #[error("the stored action has version {found:?}; this odorbot reads version {VERSION}")]
    Version { found: Option<u64> },
    #[error("the stored action does not fit the action set: {0}")]
    Shape(String),
    #[error("the stored action's values no longer pass their checks: {0}")]
    Invalid(String),
    #[error("the stored action {0} only reads; approvals hold changes")]
    NotAChange(String),
}

/// The stored form of a change: only changes are approved, so only they are stored.
pub fn to_stored(change: &Change) -> String {
    let action = change.action();
    let mut params = Map::new();
    for (name, value) in action.values() {
        // `limits.memory`, `data.<key>`: one level of nesting; a ConfigMap key may itself
        // hold dots, so only the first one nests.
        match name.split_once('.') {
            Some((outer, inner)) => {
                let slot = params
                    .entry(outer.to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = slot {
                    m.insert(inner.to_owned(), Value::String(value));
                }
            }
            None => {
                params.insert(name, Value::String(value));
            }
        }
    }
    let mut record = Map::new();
    record.insert("version".into(), Value::from(VERSION));
    record.insert("type".into(), Value::String(action.kind().tag().to_owned()));
    record.insert("params".into(), Value::Object(params));
    Value::Object(record).to_string()
}

/// Every problem found, on one line.
fn invalid(errors: &[impl ToString]) -> StoredActionError {
    StoredActionError::Invalid(one_line(errors))
}

/// Reads a stored action back, checking every value again.
///
/// # Errors
/// Not JSON, another version, a shape the action set does not have, or a value its type
/// now refuses.
pub fn from_stored(text: &str) -> Result<Change, StoredActionError> {
    let mut record: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| StoredActionError::Json(e.to_string()))?;
    let version = record.remove("version").and_then(|v| v.as_u64());
    if version != Some(VERSION) {
        return Err(StoredActionError::Version { found: version });
    }
    let raw: RawAction = serde_json::from_value(Value::Object(record))
        .map_err(|e| StoredActionError::Shape(e.to_string()))?;
    let template = compile_action(raw).map_err(|e| invalid(&e))?;
    let action: Action<Bound> = template.bind(&BTreeMap::new()).map_err(|e| invalid(&e))?;
    match action.classify() {
        Classified::Change(change) => Ok(change),
        Classified::Query(q) => Err(StoredActionError::NotAChange(q.action().describe())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::load_default;

    fn round_trip(change: &Change) {
        let text = to_stored(change);
        let back = from_stored(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(&back, change, "{text}");
    }

    /// Every change step of the shipped catalog that binds without a person's input (fixed
    /// values and defaults) survives the store unchanged, whatever its action; a query is
    /// never read back as something to approve.
    #[test]
    fn every_catalog_action_survives_the_store_unchanged() {
        let catalog = load_default().unwrap();
        let mut changes = 0;
        for step in catalog.all_steps() {
            if let Ok(Classified::Change(c)) =
                step.action.bind(&BTreeMap::new()).map(Action::classify)
            {
                round_trip(&c);
                changes += 1;
            }
        }
        assert!(
            changes > 15,
            "only {changes} change steps bound without input"
        );
        let query = r#"{"version":1,"type":"pods","params":{"selector":"app=odordiff-api"}}"#;
        assert!(matches!(
            from_stored(query),
            Err(StoredActionError::NotAChange(_))
        ));
    }

    #[test]
    fn nested_values_survive_the_store() {
        let stored = r#"{"version":1,"type":"set_resources","params":{"deployment":"postgres","container":"postgres","limits":{"memory":"4Gi","cpu":"2000m"}}}"#;
        let action = from_stored(stored).unwrap();
        round_trip(&action);
        let stored = r#"{"version":1,"type":"patch_configmap","params":{"configmap":"odordiff-config","data":{"cache.ttl":"300"}}}"#;
        round_trip(&from_stored(stored).unwrap());
    }

    /// The sessions a `db terminate-long` approval binds survive the store exactly.
    #[test]
    fn bound_sessions_survive_the_store() {
        let stored = r#"{"version":1,"type":"db_terminate_long","params":{"older_than":"5m","sessions":"102@1700000000000001,101@1700000000000000"}}"#;
        let change = from_stored(stored).unwrap();
        round_trip(&change);
        let Action::DbTerminateLong {
            sessions: Some(s), ..
        } = change.action()
        else {
            panic!("{change:?}");
        };
        let pids: Vec<i32> = s.get().iter().map(|b| b.pid).collect();
        assert_eq!(pids, [101, 102]);
        for bad in ["101", "101@", "@5", "-1@5", "1@2@3", "a@1"] {
            let text = stored.replace("102@1700000000000001,101@1700000000000000", bad);
            assert!(
                matches!(from_stored(&text), Err(StoredActionError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_stored_action_is_checked_again_and_other_versions_are_refused() {
        let bad =
            r#"{"version":1,"type":"scale","params":{"deployment":"Not_A_Name","replicas":"3"}}"#;
        assert!(matches!(
            from_stored(bad),
            Err(StoredActionError::Invalid(_))
        ));
        let newer =
            r#"{"version":2,"type":"scale","params":{"deployment":"odordiff-api","replicas":"3"}}"#;
        assert_eq!(
            from_stored(newer),
            Err(StoredActionError::Version { found: Some(2) })
        );
        let unknown = r#"{"version":1,"type":"rm_rf","params":{}}"#;
        assert!(matches!(
            from_stored(unknown),
            Err(StoredActionError::Shape(_))
        ));
        assert!(matches!(
            from_stored("scale 3"),
            Err(StoredActionError::Json(_))
        ));
    }
}
