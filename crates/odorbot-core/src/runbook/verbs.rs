//! The `/odor` verbs onto the runbook's actions: a verb is an alias for an action, with
//! the objects it names held to the catalog's lists and the objects it leaves out taken from
//! the catalog's `service` section. No object name is written here.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::domain::command::Intent;
use crate::domain::ids::K8sName;

use super::Catalog;
use super::actions::{Action, ActionKind, Bound, LogSource, one_line};
use super::values::{ArgType, LabelSelector};

/// Why a verb reaches no action.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerbError {
    /// A value the action's types refuse.
    #[error("{0}")]
    Invalid(String),
    /// An object the runbook does not list.
    #[error("{0}")]
    NotListed(String),
}

fn val<T: ArgType>(text: &str) -> Result<T, VerbError> {
    T::parse_arg(text).map_err(|e| VerbError::Invalid(format!("{text:?} {e}")))
}

fn app(deployment: &K8sName) -> Result<LabelSelector, VerbError> {
    val(&format!("app={deployment}"))
}

/// The runbook action a verb asks for. Objects the command does not name are the
/// catalog's (`service:`), and every object it names must be one the catalog lists: the
/// same names the catalog's steps and the generated Role use.
///
/// # Errors
/// A value the catalog's types refuse (e.g. an image tag with a space), or an object the
/// runbook does not list.
pub fn action_for(
    intent: &Intent,
    catalog: &Catalog,
    now_unix: i64,
) -> Result<Action<Bound>, VerbError> {
    let action = verb_action(intent, catalog, now_unix)?;
    catalog
        .check_objects(&action)
        .map_err(VerbError::NotListed)?;
    Ok(action)
}

fn verb_action(
    intent: &Intent,
    catalog: &Catalog,
    now_unix: i64,
) -> Result<Action<Bound>, VerbError> {
    use Action as A;
    let service = catalog.service();
    let is_release = |name: &K8sName| {
        catalog
            .objects("helm_releases")
            .iter()
            .any(|r| r == name.as_str())
    };
    Ok(match intent {
        Intent::Pods { deployment } => A::Pods {
            selector: match deployment {
                Some(d) => app(d)?,
                None => val("")?,
            },
        },
        Intent::Describe { deployment, all } => A::DescribePods {
            selector: app(deployment)?,
            only_failing: !*all,
        },
        Intent::Logs {
            target,
            pod,
            since,
            tail,
            grep,
            previous,
        } => A::Logs {
            source: if *pod {
                LogSource::Pod(target.clone())
            } else {
                LogSource::Selector(app(target)?)
            },
            tail: tail.map(|t| val(&t.to_string())).transpose()?,
            since: *since,
            grep: grep.clone(),
            previous: previous.then_some(true),
        },
        Intent::Events { since } => A::Events { since: *since },
        Intent::Endpoints { service } => A::Endpoints {
            service: service.clone(),
        },
        Intent::History { name } if is_release(name) => A::HelmHistory {
            release: name.clone(),
        },
        Intent::History { name } => A::RolloutHistory {
            deployment: name.clone(),
        },
        Intent::Top => A::ResourceUsage { selector: None },
        Intent::Backups => A::Backups,
        Intent::AccessReview => A::AccessReview,
        Intent::Rollback { target, revision } => {
            let revision = revision.map(|r| val(&r.to_string())).transpose()?;
            if is_release(target) {
                A::RollbackHelm {
                    release: target.clone(),
                    revision,
                }
            } else {
                A::RollbackDeployment {
                    deployment: target.clone(),
                    revision,
                }
            }
        }
        Intent::Restart { deployment } => A::RolloutRestart {
            deployment: deployment.clone(),
            restarted_at: None,
        },
        Intent::PgbouncerRestart => A::RolloutRestart {
            deployment: service.pgbouncer.clone(),
            restarted_at: None,
        },
        Intent::Scale {
            deployment,
            replicas,
        } => A::Scale {
            deployment: deployment.clone(),
            replicas: val(&replicas.to_string())?,
        },
        Intent::Contain => A::Scale {
            deployment: service.api.clone(),
            replicas: val("0")?,
        },
        Intent::Hpa { hpa, min, max, cpu } => A::PatchHpa {
            hpa: hpa.clone(),
            min_replicas: min.map(|v| val(&v.to_string())).transpose()?,
            max_replicas: max.map(|v| val(&v.to_string())).transpose()?,
            target_cpu_percent: cpu.map(|v| val(&v.to_string())).transpose()?,
        },
        Intent::Deploy { deployment, tag } => A::SetImage {
            deployment: deployment.clone(),
            container: deployment.clone(),
            tag: val(tag)?,
        },
        Intent::Maintenance { on } => A::Annotate {
            deployment: service.api.clone(),
            key: val("maintenance")?,
            value: on.then(|| val("true")).transpose()?,
        },
        Intent::PvcExpand { pvc, size } => A::ExpandPvc {
            pvc: pvc.clone(),
            size: val(size)?,
        },
        Intent::BackupTestRestore { backup } => A::VeleroTestRestore {
            backup: backup.clone(),
            restore: None,
        },
        Intent::CertRenew { certificate } => A::RenewCertificate {
            certificate: certificate
                .clone()
                .unwrap_or_else(|| service.certificate.clone()),
            // The certificate's own secret, read and bound when the request is made.
            secret: None,
        },
        Intent::Quarantine { pod } => A::QuarantinePod {
            pod: pod.clone(),
            network_policy: service.quarantine_policy.clone(),
        },
        // The rotation is the runbook's procedure step, as the catalog writes it.
        Intent::SecretRotate => catalog
            .all_steps()
            .find(|s| s.action.kind() == ActionKind::RotateSecret)
            .ok_or_else(|| VerbError::NotListed("the runbook has no secret rotation step".into()))?
            .bind(&BTreeMap::new())
            .map_err(|errors| VerbError::Invalid(one_line(&errors)))?,
        Intent::CacheTtl { seconds } => A::PatchConfigmap {
            configmap: service.config.clone(),
            data: [(service.cache_ttl_key.clone(), val(&seconds.to_string())?)]
                .into_iter()
                .collect(),
        },
        Intent::CacheWarm => A::JobFromCronjob {
            cronjob: service.cache_warming.clone(),
            // Unique per request, so a second warming does not collide with the first.
            job_name: val(&format!("manual-cache-warming-{now_unix}"))?,
        },
        Intent::DbTerminateLong { older_than } => A::DbTerminateLong {
            older_than: *older_than,
            sessions: None,
        },
        Intent::DbVacuum => A::DbVacuum,
        Intent::LogsCleanup => A::LogsCleanup {
            cronjob: service.logs_cleanup.clone(),
            job_name: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::command::{Command, VERBS, parse};
    use crate::runbook::actions::Classified;
    use crate::runbook::{load_default, stored};

    /// Every action a `/odor` example asks for, by the typed path a request takes.
    fn verb_actions() -> Vec<(String, Intent, Action<Bound>)> {
        let catalog = load_default().unwrap();
        let mut out = Vec::new();
        for verb in VERBS {
            for example in verb.examples {
                let text = example.trim_start_matches("/odor ").replace('…', "x");
                let Ok(Command::Cluster { intent, .. }) = parse(&text) else {
                    continue;
                };
                let action = action_for(&intent, &catalog, 1_700_000_000)
                    .unwrap_or_else(|e| panic!("{text}: {e}"));
                out.push((text, intent, action));
            }
        }
        out
    }

    /// The table of every verb example and every catalog step: each reaches one typed
    /// action whose kind agrees on whether it needs approval, whose stored form reads back
    /// unchanged (what an approval executes), whose preview line renders, and whose
    /// policy verb is the verb that asked for it.
    #[test]
    fn every_verb_and_step_reaches_one_action_with_the_same_meaning() {
        let rows = verb_actions();
        assert!(rows.len() > 20, "{} examples", rows.len());
        for (text, intent, action) in &rows {
            assert_eq!(
                intent.is_destructive(),
                action.is_destructive(),
                "{text}: approval needed by one and not the other"
            );
            // A change survives the store (what an approval executes); a query is run.
            if let Classified::Change(change) = action.clone().classify() {
                let fixed = change.with_names_fixed(1_700_000_000);
                assert_eq!(
                    stored::from_stored(&stored::to_stored(&fixed)).as_ref(),
                    Ok(&fixed),
                    "{text}"
                );
            }
            assert!(!action.describe().is_empty(), "{text}");
            if action.is_destructive() {
                assert_eq!(
                    action.kind().policy_verb(),
                    match intent {
                        Intent::PgbouncerRestart => "restart",
                        Intent::Contain => "scale",
                        Intent::CacheTtl { .. } | Intent::CacheWarm => "cache",
                        other => other.verb(),
                    },
                    "{text}"
                );
            }
        }
        let catalog = load_default().unwrap();
        let reached: BTreeSet<ActionKind> = rows
            .iter()
            .map(|(_, _, a)| a.kind())
            .chain(catalog.all_steps().map(|s| s.action.kind()))
            .collect();
        // No change is defined that neither a verb nor a runbook step can ask for.
        for kind in ActionKind::ALL.iter().filter(|k| k.is_destructive()) {
            assert!(reached.contains(kind), "{kind} is reached by nothing");
        }
    }

    /// One bound per value: the grammar, the value type and the catalog agree on the
    /// largest replica count and revision, and the catalog may narrow them, never widen.
    #[test]
    fn bounds_are_the_one_bound() {
        use crate::domain::args::{MAX_REPLICAS, MAX_REVISION};
        use crate::runbook::values::{Replicas, Revision};
        let catalog = load_default().unwrap();
        let reach = |text: &str| match parse(&format!("{text} --reason r")) {
            Ok(Command::Cluster { intent, .. }) => action_for(&intent, &catalog, 0).map(|_| ()),
            other => Err(VerbError::Invalid(format!("{other:?}"))),
        };
        assert_eq!(reach(&format!("scale odordiff-api {MAX_REPLICAS}")), Ok(()));
        assert!(reach(&format!("scale odordiff-api {}", MAX_REPLICAS + 1)).is_err());
        assert_eq!(
            reach(&format!("rollback odordiff-api --to {MAX_REVISION}")),
            Ok(())
        );
        assert!(reach(&format!("rollback odordiff-api --to {}", MAX_REVISION + 1)).is_err());
        assert!(Replicas::parse_arg(&MAX_REPLICAS.to_string()).is_ok());
        assert!(Replicas::parse_arg(&(MAX_REPLICAS + 1).to_string()).is_err());
        assert!(Revision::parse_arg(&MAX_REVISION.to_string()).is_ok());
        assert!(Revision::parse_arg(&(MAX_REVISION + 1).to_string()).is_err());
        // The catalog narrows (20 here) and cannot widen: its bounds are values of the type.
        let shipped = include_str!("../../../../runbooks/odordiff-2.yaml");
        let narrow = "replicas: {param: replicas, min: 1, max: 20, default: 5}";
        assert!(shipped.contains(narrow));
        let wide = shipped.replace(
            narrow,
            &narrow.replace("20", &(MAX_REPLICAS + 1).to_string()),
        );
        let errors = crate::runbook::load_str("t.yaml", &wide)
            .unwrap_err()
            .to_string();
        assert!(errors.contains("max"), "{errors}");
    }
}
