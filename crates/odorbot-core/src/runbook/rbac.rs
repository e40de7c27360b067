//! The Kubernetes access each action needs, declared beside the action set, and odorbot's
//! Role generated from it and from the catalog's `objects`.
//!
//! `manifests/base/role.yaml` is this module's output (`odorbot manifests role`); a test compares
//! the shipped file with it, so the Role can be neither wider nor narrower than the actions.
//! Where Kubernetes allows, a rule is pinned to the catalog's object names (`resourceNames`);
//! `create` and `list` cannot be pinned, nor can objects whose names are generated.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::Catalog;
use super::actions::ActionKind;

/// Helm revisions whose release records odorbot reads and writes by name; a release past
/// them needs this raised and the Role regenerated.
pub const HELM_PINNED_REVISIONS: u64 = 100;

/// Which objects of a resource a need covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Names {
    /// Any: the names are generated (pods, ReplicaSets, Jobs, Restores), or the verb
    /// (`create`, `list`) cannot be limited by name.
    Any,
    /// The catalog's `objects.<key>`, e.g. `deployments`.
    Objects(&'static str),
    /// The release records (`sh.helm.release.v1.<release>.v<n>`) of the catalog's
    /// `objects.helm_releases`, revisions 1 to [`HELM_PINNED_REVISIONS`].
    HelmRecords,
}

/// One permission an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub api_group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    pub names: Names,
}

/// A [`Need`] as a struct literal, so each action's list is a promoted constant.
macro_rules! need {
    ($group:expr, $resource:expr, $verbs:expr, $names:expr $(,)?) => {
        Need {
            api_group: $group,
            resource: $resource,
            verbs: $verbs,
            names: $names,
        }
    };
}

use Names::{Any, HelmRecords, Objects};

const DEPLOYMENTS: Names = Objects("deployments");
const CONFIGMAPS: Names = Objects("configmaps");
const HPAS: Names = Objects("horizontalpodautoscalers");
const PVCS: Names = Objects("persistentvolumeclaims");
const CRONJOBS: Names = Objects("cronjobs");

const GET_PATCH: &[&str] = &["get", "patch"];
const LIST: &[&str] = &["list"];

/// The catalog's `objects` keys and the resource each names.
pub const OBJECT_KINDS: &[(&str, &str)] = &[
    ("deployments", "Deployments"),
    ("services", "Services (their Endpoints)"),
    ("configmaps", "ConfigMaps"),
    ("persistentvolumeclaims", "PersistentVolumeClaims"),
    ("secrets", "Secrets"),
    (
        "rotated_secrets",
        "the two Secrets secret rotation alternates between (overwritten, never created)",
    ),
    ("horizontalpodautoscalers", "HorizontalPodAutoscalers"),
    ("cronjobs", "CronJobs"),
    ("networkpolicies", "NetworkPolicies"),
    (
        "quarantine_policies",
        "NetworkPolicies odorbot installs for quarantine (only read)",
    ),
    ("certificates", "cert-manager Certificates"),
    ("helm_releases", "Helm releases"),
];

impl ActionKind {
    /// The Kubernetes permissions this action's calls need (`src/cluster/`); probe and
    /// people actions need none.
    pub fn rbac(self) -> &'static [Need] {
        use ActionKind as K;
        match self {
            K::Pods => &[need!("", "pods", LIST, Any)],
            K::DescribePods => &[need!("", "pods", LIST, Any), need!("", "events", LIST, Any)],
            K::Logs => &[
                need!("", "pods", &["get", "list"], Any),
                need!("", "pods/log", &["get"], Any),
            ],
            K::Endpoints => &[need!("", "endpoints", &["get"], Objects("services"))],
            K::Events => &[need!("", "events", LIST, Any)],
            // The pods' logs and specs, the namespace's events and NetworkPolicies.
            K::CollectEvidence => &[
                need!("", "pods", LIST, Any),
                need!("", "pods/log", &["get"], Any),
                need!("", "events", LIST, Any),
                need!("networking.k8s.io", "networkpolicies", LIST, Any),
            ],
            K::RolloutStatus => &[need!("apps", "deployments", &["get"], DEPLOYMENTS)],
            K::RolloutHistory => &[
                need!("apps", "deployments", &["get"], DEPLOYMENTS),
                need!("apps", "replicasets", LIST, Any),
            ],
            K::HelmHistory => &[need!("", "secrets", &["get"], HelmRecords)],
            K::HpaStatus => &[need!(
                "autoscaling",
                "horizontalpodautoscalers",
                &["get"],
                HPAS
            )],
            K::PdbStatus => &[need!("policy", "poddisruptionbudgets", LIST, Any)],
            K::ConfigmapKeys => &[need!("", "configmaps", &["get"], CONFIGMAPS)],
            K::PvcStatus => &[
                need!("", "persistentvolumeclaims", LIST, Any),
                need!("", "persistentvolumeclaims", &["get"], PVCS),
            ],
            K::Certificates => &[need!("cert-manager.io", "certificates", LIST, Any)],
            K::Backups => &[
                need!("velero.io", "backups", LIST, Any),
                need!("velero.io", "restores", LIST, Any),
            ],
            K::AccessReview => &[
                need!("", "serviceaccounts", LIST, Any),
                need!("rbac.authorization.k8s.io", "rolebindings", LIST, Any),
            ],
            K::ResourceUsage => &[need!("metrics.k8s.io", "pods", LIST, Any)],
            K::DbConnections
            | K::DbSlowQueries
            | K::DbSizes
            | K::PgbouncerPools
            | K::DbConnectivity
            | K::CacheStats
            | K::CacheKeys
            | K::HttpMetric
            | K::ErrorBreakdown
            | K::HttpHealth
            | K::TlsCertificate
            | K::DiskUsage
            | K::Notify
            | K::Note
            | K::DbTerminateLong
            | K::DbVacuum => &[],
            K::RolloutRestart | K::SetResources | K::Annotate => {
                &[need!("apps", "deployments", GET_PATCH, DEPLOYMENTS)]
            }
            // The card shows the pre-deployment checks: pods, PDBs, the autoscalers.
            K::SetImage => &[
                need!("apps", "deployments", GET_PATCH, DEPLOYMENTS),
                need!("", "pods", &["list"], Any),
                need!("policy", "poddisruptionbudgets", LIST, Any),
                need!("autoscaling", "horizontalpodautoscalers", &["get"], HPAS),
            ],
            // The card says when an autoscaler will undo the new count.
            K::Scale => &[
                need!("apps", "deployments/scale", GET_PATCH, DEPLOYMENTS),
                need!("autoscaling", "horizontalpodautoscalers", &["get"], HPAS),
            ],
            // A replace guarded by resourceVersion.
            K::RollbackDeployment => &[
                need!("apps", "deployments", &["get", "update"], DEPLOYMENTS),
                need!("apps", "replicasets", LIST, Any),
            ],
            // Reads the records by name and rewrites their statuses in place (`update`;
            // domain::helm says why no record is created), then re-applies the chart's
            // objects the Role covers. No `create` on Secrets: it cannot be pinned, and with
            // it the token could mint a service-account token for any ServiceAccount.
            K::RollbackHelm => &[
                need!("", "secrets", &["get", "update"], HelmRecords),
                need!("apps", "deployments", GET_PATCH, DEPLOYMENTS),
                need!("", "configmaps", GET_PATCH, CONFIGMAPS),
                need!("autoscaling", "horizontalpodautoscalers", GET_PATCH, HPAS),
                need!(
                    "networking.k8s.io",
                    "networkpolicies",
                    GET_PATCH,
                    Objects("networkpolicies"),
                ),
            ],
            K::PatchHpa => &[need!(
                "autoscaling",
                "horizontalpodautoscalers",
                GET_PATCH,
                HPAS
            )],
            K::PatchConfigmap => &[need!("", "configmaps", GET_PATCH, CONFIGMAPS)],
            // A Job from a listed CronJob's template. `create` on Jobs cannot be pinned: the
            // token could run any pod as any ServiceAccount of the namespace; the optional
            // admission policy holds the Jobs to their CronJobs' templates. The Job is then
            // followed to its outcome (its generated name cannot be pinned either) and the
            // tail of its pod's log reported.
            K::JobFromCronjob | K::LogsCleanup | K::SmokeTests => &[
                need!("batch", "cronjobs", &["get"], CRONJOBS),
                need!("batch", "jobs", &["create", "get"], Any),
                need!("", "pods", &["list"], Any),
                need!("", "pods/log", &["get"], Any),
            ],
            K::ExpandPvc => &[need!("", "persistentvolumeclaims", GET_PATCH, PVCS)],
            // The pod's name is generated, so `patch` covers every pod: beyond the label it
            // needs, a patch can change any pod's labels and annotations (moving it into or
            // out of a Service or NetworkPolicy) and a container's image (running other code
            // with that pod's ServiceAccount). RBAC cannot narrow it; the optional admission
            // policy allows odorbot's pod patches to change only the `quarantine` label. The
            // quarantine policy is installed once and only read: default-deny-all is never
            // touched.
            K::QuarantinePod => &[
                need!("", "pods", GET_PATCH, Any),
                need!(
                    "networking.k8s.io",
                    "networkpolicies",
                    &["get"],
                    Objects("quarantine_policies"),
                ),
            ],
            K::UnquarantinePod => &[need!("", "pods", GET_PATCH, Any)],
            // Both secrets exist from install time; the idle one is overwritten by name, so
            // no `create` (which cannot be pinned) and no `delete`.
            K::RotateSecret => &[
                need!("", "secrets", &["patch"], Objects("rotated_secrets")),
                need!("apps", "deployments", GET_PATCH, DEPLOYMENTS),
            ],
            K::RenewCertificate => &[
                need!(
                    "cert-manager.io",
                    "certificates",
                    GET_PATCH,
                    Objects("certificates"),
                ),
                need!("", "secrets", &["delete"], Objects("secrets")),
            ],
            K::VeleroTestRestore => &[
                need!("velero.io", "backups", LIST, Any),
                // `get`: its progress is watched and reported after it is created.
                need!("velero.io", "restores", &["create", "get"], Any),
            ],
            K::VeleroRestoreCleanup => &[need!("velero.io", "restores", &["list", "delete"], Any)],
        }
    }
}

/// One rule of the generated Role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub api_group: &'static str,
    pub resource: &'static str,
    pub verbs: BTreeSet<&'static str>,
    /// `None`: not pinned.
    pub names: Option<Vec<String>>,
    /// The action types that need it, for the comment above it.
    pub actions: BTreeSet<&'static str>,
}

/// The Helm release record Secret of a revision, as Helm names it.
pub fn helm_record(release: &str, revision: u64) -> String {
    format!("sh.helm.release.v1.{release}.v{revision}")
}

/// The rules the given action kinds need, pinned to the catalog's objects, merged per
/// resource and name set, in a stable order.
pub fn rules(catalog: &Catalog, kinds: &[ActionKind]) -> Vec<Rule> {
    let mut merged: BTreeMap<(&str, &str, Names), Rule> = BTreeMap::new();
    for kind in kinds {
        for n in kind.rbac() {
            let names = match n.names {
                Any => None,
                Objects(key) => Some(catalog.objects(key).to_vec()),
                HelmRecords => Some(
                    catalog
                        .objects("helm_releases")
                        .iter()
                        .flat_map(|r| (1..=HELM_PINNED_REVISIONS).map(move |v| helm_record(r, v)))
                        .collect(),
                ),
            };
            let rule = merged
                .entry((n.api_group, n.resource, n.names))
                .or_insert_with(|| Rule {
                    api_group: n.api_group,
                    resource: n.resource,
                    verbs: BTreeSet::new(),
                    names,
                    actions: BTreeSet::new(),
                });
            rule.verbs.extend(n.verbs);
            rule.actions.insert(kind.tag());
        }
    }
    merged.into_values().collect()
}

const HEADER: &str = "\
# odorbot's least privilege in OdorDiff-2's namespace. GENERATED by `odorbot manifests role`
# from the actions' needs (crates/odorbot-core/src/runbook/rbac.rs) and the runbook catalog's
# `objects`; a test fails when this file differs, so edit those and regenerate.
#
# Each rule names the actions that need it. Rules are pinned by resourceNames wherever
# Kubernetes allows: `create` and `list` cannot be pinned, nor can objects with generated
# names (pods, ReplicaSets, Jobs, Velero restores).
#
# Deliberately absent: `list`/`watch` on Secrets (Helm's release records are read by name),
# `pods/exec`, any `delete` on workloads, and anything cluster-wide (access_review reports
# ClusterRoleBindings as not readable). Where Velero runs in its own namespace, bind a Role
# with the velero.io rules there.
#
# Wider than odorbot's use, because RBAC cannot pin them: `create` on Jobs (from the listed
# CronJobs) and `patch` on pods (the quarantine label). No `create` on Secrets: a Helm
# rollback rewrites the existing release records in place. README's Deploying section states
# what a stolen token can do with them;
# manifests/optional/admission-policy.yaml bounds them on clusters >= 1.30.
";

/// `manifests/base/role.yaml`: the Role for every action of the action set.
pub fn role_yaml(catalog: &Catalog) -> String {
    render(&rules(catalog, ActionKind::ALL))
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let items: Vec<String> = items
        .into_iter()
        .map(|i| {
            let i = i.as_ref();
            if i.is_empty() {
                "\"\"".to_owned()
            } else {
                i.to_owned()
            }
        })
        .collect();
    format!("[{}]", items.join(", "))
}

fn render(rules: &[Rule]) -> String {
    let mut out = String::from(HEADER);
    out.push_str(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: odorbot\n  \
         labels:\n    app.kubernetes.io/name: odorbot\nrules:\n",
    );
    for r in rules {
        let actions: Vec<&str> = r.actions.iter().copied().collect();
        let _ = writeln!(out, "  # {}", actions.join(", "));
        let _ = writeln!(out, "  - apiGroups: {}", list([r.api_group]));
        let _ = writeln!(out, "    resources: [{}]", r.resource);
        let _ = writeln!(out, "    verbs: {}", list(&r.verbs));
        match &r.names {
            None => {}
            Some(names) if names.len() <= 8 => {
                let _ = writeln!(out, "    resourceNames: {}", list(names));
            }
            Some(names) => {
                out.push_str("    resourceNames:\n");
                for n in names {
                    let _ = writeln!(out, "      - {n}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::load_default;

    /// Every need of every action shows in the Role: taking any one away changes it, so
    /// the comparison with the shipped file fails when an action's rule is removed.
    #[test]
    fn every_need_of_every_action_shows_in_the_role() {
        let catalog = load_default().unwrap();
        let full = role_yaml(&catalog);
        for kind in ActionKind::ALL.iter().filter(|k| !k.rbac().is_empty()) {
            let others: Vec<ActionKind> = ActionKind::ALL
                .iter()
                .copied()
                .filter(|k| k != kind)
                .collect();
            assert_ne!(render(&rules(&catalog, &others)), full, "{kind}");
        }
    }

    /// The shipped Role is exactly what the actions need: neither wider nor narrower.
    #[test]
    fn the_shipped_role_is_the_generated_one() {
        let shipped = include_str!("../../../../manifests/base/role.yaml");
        let generated = role_yaml(&load_default().unwrap());
        assert!(
            shipped == generated,
            "manifests/base/role.yaml differs from the Role the actions need; regenerate it with \
             `odorbot manifests role > manifests/base/role.yaml`"
        );
    }

    #[test]
    fn read_only_actions_never_need_a_write() {
        for kind in ActionKind::ALL.iter().filter(|k| !k.is_destructive()) {
            for n in kind.rbac() {
                assert!(
                    n.verbs.iter().all(|v| matches!(*v, "get" | "list")),
                    "{kind} needs {:?} on {}",
                    n.verbs,
                    n.resource
                );
            }
        }
    }

    #[test]
    fn helm_records_are_pinned_for_each_revision() {
        let catalog = load_default().unwrap();
        let rules = rules(&catalog, &[ActionKind::HelmHistory]);
        let names = rules[0].names.as_ref().unwrap();
        assert_eq!(names.len() as u64, HELM_PINNED_REVISIONS);
        assert_eq!(names[0], "sh.helm.release.v1.odordiff-2.v1");
        assert!(!names.iter().any(|n| n.ends_with(".v101")));
    }
}
