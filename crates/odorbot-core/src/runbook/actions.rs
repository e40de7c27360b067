//! The closed set of actions a runbook step can take.
//!
//! A catalog step holds an [`Action<Template>`]: each parameter is either fixed by the
//! catalog or a typed placeholder ([`Input::Param`]) that a person fills in at request
//! time. [`Action::bind`] turns the template and the supplied values into an
//! [`Action<Bound>`], whose fields are plain checked values; that is what the cluster and
//! probe layers execute. Both forms are one enum, generic over the [`Stage`], so the set
//! of actions and their parameters is written down exactly once.

use crate::domain::access::Scope;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::domain::args::Filter;
use crate::domain::ids::K8sName;

use super::values::{
    AnnotationKey, AnnotationValue, ArgType, Backends, ConfigValue, DataKey, DbState, EnvName,
    HostName, HttpPath, ImageTag, KeyPattern, LabelSelector, LogTail, MetricSignal, NoteText,
    ParamName, Percent, Quantity, Replicas, Revision, RoleId, RowLimit, Stamp,
};

/// How far an action has come: what each parameter field holds.
pub trait Stage: Clone + Copy + fmt::Debug + PartialEq + 'static {
    type Val<T: ArgType>: Clone + fmt::Debug + PartialEq;

    /// A parameter as text, for humans.
    fn show<T: ArgType>(value: &Self::Val<T>) -> String;
}

/// As written in the catalog: fixed values and placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {}

/// Ready to execute: every parameter is a checked value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {}

/// Fields visited for their names only (rendering, listing parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {}

impl Stage for Template {
    type Val<T: ArgType> = Input<T>;

    fn show<T: ArgType>(value: &Input<T>) -> String {
        match value {
            Input::Fixed(v) => quoted(v.render()),
            Input::Param(p) => p.describe(),
        }
    }
}

impl Stage for Bound {
    type Val<T: ArgType> = T;

    fn show<T: ArgType>(value: &T) -> String {
        quoted(value.render())
    }
}

/// Empty values and values with spaces are quoted, so `name=value` reads unambiguously.
fn quoted(text: String) -> String {
    if text.is_empty() || text.contains(char::is_whitespace) {
        format!("{text:?}")
    } else {
        text
    }
}

impl Stage for Seen {
    type Val<T: ArgType> = ();

    fn show<T: ArgType>((): &()) -> String {
        String::new()
    }
}

/// A parameter of a catalog step.
#[derive(Debug, Clone, PartialEq)]
pub enum Input<T> {
    /// Decided by the catalog.
    Fixed(T),
    /// Supplied by the person who asks for the action.
    Param(Param<T>),
}

/// A request-time parameter with its bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Param<T> {
    /// The name a person fills in, e.g. `replicas`; steps of one entry that use the same
    /// name share the value.
    pub name: ParamName,
    /// Inclusive bounds, for ordered types only (counts, durations, quantities).
    pub min: Option<T>,
    pub max: Option<T>,
    /// Used when nothing is supplied.
    pub default: Option<T>,
    /// May be left out (only for parameters the action can do without, e.g. a
    /// rollback's revision: none means the previous one).
    pub optional: bool,
}

impl<T: ArgType> Param<T> {
    /// Checks a supplied value against the type and the bounds.
    ///
    /// # Errors
    /// What is wrong, as a predicate following the quoted value.
    pub fn accept(&self, raw: &str) -> Result<T, String> {
        let value = T::parse_arg(raw)?;
        if let Some(range) = self.bounds() {
            let key = value.order_key();
            let low = self.min.as_ref().and_then(ArgType::order_key);
            let high = self.max.as_ref().and_then(ArgType::order_key);
            let inside =
                key.is_some_and(|k| low.is_none_or(|l| k >= l) && high.is_none_or(|h| k <= h));
            if !inside {
                return Err(format!("is out of range: expected {range}"));
            }
        }
        Ok(value)
    }

    /// `1 to 20`, `at least 1m`, … or `None` when unbounded.
    pub fn bounds(&self) -> Option<String> {
        match (&self.min, &self.max) {
            (Some(l), Some(h)) => Some(format!("{} to {}", l.render(), h.render())),
            (Some(l), None) => Some(format!("at least {}", l.render())),
            (None, Some(h)) => Some(format!("at most {}", h.render())),
            (None, None) => None,
        }
    }

    /// `<replicas: 1 to 20, default 5>`: how a placeholder reads in a step.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.bounds() {
            parts.push(b);
        }
        if let Some(d) = &self.default {
            parts.push(format!("default {}", d.render()));
        }
        if self.optional {
            parts.push("optional".into());
        }
        if parts.is_empty() {
            format!("<{}>", self.name)
        } else {
            format!("<{}: {}>", self.name, parts.join(", "))
        }
    }
}

/// Declares the action kinds: the catalog's `type:` tag, whether the action changes
/// anything, and a one-line summary for help and the README.
macro_rules! action_kinds {
    ($($variant:ident = $tag:literal, $destructive:literal, $summary:literal;)+) => {
        /// Which action a step takes, without its parameters.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ActionKind {
            $($variant),+
        }

        impl ActionKind {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The `type:` tag in the catalog.
            pub fn tag(self) -> &'static str {
                match self {
                    $(Self::$variant => $tag),+
                }
            }

            /// Whether the action changes the cluster or the database, and therefore
            /// needs a second engineer's approval.
            pub fn is_destructive(self) -> bool {
                match self {
                    $(Self::$variant => $destructive),+
                }
            }

            pub fn summary(self) -> &'static str {
                match self {
                    $(Self::$variant => $summary),+
                }
            }
        }
    };
}

action_kinds! {
    Pods = "pods", false, "pods with phase, readiness and restarts";
    DescribePods = "describe_pods", false, "conditions, container states and events of pods";
    Logs = "logs", false, "recent log lines of pods, filtered and bounded";
    Endpoints = "endpoints", false, "ready and not-ready addresses of a service";
    Events = "events", false, "namespace events";
    RolloutStatus = "rollout_status", false, "whether a deployment's rollout has finished";
    RolloutHistory = "rollout_history", false, "a deployment's revisions";
    HelmHistory = "helm_history", false, "a Helm release's revisions";
    HpaStatus = "hpa_status", false, "a HorizontalPodAutoscaler's bounds and current state";
    PdbStatus = "pdb_status", false, "PodDisruptionBudgets and allowed disruptions";
    ConfigmapKeys = "configmap_keys", false, "keys and values of a ConfigMap, filtered";
    PvcStatus = "pvc_status", false, "PersistentVolumeClaims, capacity and phase";
    Certificates = "certificates", false, "cert-manager certificates and their expiry";
    Backups = "backups", false, "Velero backups and restores";
    AccessReview = "access_review", false, "service accounts and role bindings of the namespace";
    ResourceUsage = "resource_usage", false, "pod CPU and memory from metrics.k8s.io";
    DbConnections = "db_connections", false, "PostgreSQL connections by state";
    DbSlowQueries = "db_slow_queries", false, "the slowest statements by mean time";
    PgbouncerPools = "pgbouncer_pools", false, "PgBouncer pools (SHOW POOLS)";
    DbSizes = "db_sizes", false, "the largest relations, WAL and server log sizes, from PostgreSQL's own functions";
    DbConnectivity = "db_connectivity", false, "whether the database accepts the API's own connection";
    CacheStats = "cache_stats", false, "Redis hit rate, evictions and memory";
    CacheKeys = "cache_keys", false, "a bounded sample of Redis keys (SCAN)";
    HttpMetric = "http_metric", false, "one metric signal of the service";
    ErrorBreakdown = "error_breakdown", false, "5xx rate and error ratio per endpoint, worst first";
    HttpHealth = "http_health", false, "a health path of the public endpoint";
    TlsCertificate = "tls_certificate", false, "the TLS certificate a host serves and its dates";
    DiskUsage = "disk_usage", false, "volume usage against the free-space threshold";
    CollectEvidence = "collect_evidence", false, "keep pods' logs for a window, events, pod specs and NetworkPolicies as hashed evidence of the incident";
    Notify = "notify", false, "a page to a roster role";
    Note = "note", false, "guidance for people; odorbot does not automate this";
    RolloutRestart = "rollout_restart", true, "restart a deployment's pods";
    Scale = "scale", true, "set a deployment's replicas";
    RollbackDeployment = "rollback_deployment", true, "roll a deployment back to a revision";
    RollbackHelm = "rollback_helm", true, "roll the Helm release back to a revision";
    SetImage = "set_image", true, "set a container's image tag";
    PatchHpa = "patch_hpa", true, "change an autoscaler's bounds or CPU target";
    SetResources = "set_resources", true, "change a container's resource limits";
    PatchConfigmap = "patch_configmap", true, "set keys of a ConfigMap";
    JobFromCronjob = "job_from_cronjob", true, "start a Job from a CronJob";
    Annotate = "annotate", true, "set or remove an annotation on a deployment";
    ExpandPvc = "expand_pvc", true, "grow a PersistentVolumeClaim";
    QuarantinePod = "quarantine_pod", true, "label a pod so the quarantine NetworkPolicy isolates it";
    UnquarantinePod = "unquarantine_pod", true, "remove a pod's quarantine label";
    RotateSecret = "rotate_secret", true, "write a fresh key into the idle one of two secrets and point a container at it";
    RenewCertificate = "renew_certificate", true, "force cert-manager to reissue a certificate";
    VeleroTestRestore = "velero_test_restore", true, "restore a backup as a test";
    VeleroRestoreCleanup = "velero_restore_cleanup", true, "delete a test restore";
    DbTerminateLong = "db_terminate_long", true, "terminate backends running longer than a limit";
    DbVacuum = "db_vacuum", true, "VACUUM ANALYZE the database";
    LogsCleanup = "logs_cleanup", true, "run a log clean-up Job from its CronJob";
    SmokeTests = "smoke_tests", true, "run the smoke-test suite as a Job from its suspended CronJob and report pass or fail";
}

impl ActionKind {
    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.tag() == tag)
    }

    /// Who may run a query (its access rule); `None` for a change, which the approval
    /// policy governs. What can hold secrets or personal data is sensitive: log lines,
    /// pod specs and events, configuration values, statement text, cache keys, who holds
    /// which role.
    pub fn scope(self) -> Option<Scope> {
        use ActionKind as K;
        if self.is_destructive() {
            return None;
        }
        Some(match self {
            K::DescribePods
            | K::Logs
            | K::ConfigmapKeys
            | K::DbSlowQueries
            | K::CacheKeys
            | K::AccessReview
            | K::CollectEvidence => Scope::Sensitive,
            _ => Scope::Read,
        })
    }

    /// The `/odor` verb whose policy (who may request and approve, the cooldown) governs
    /// this action, however it was asked for: a typed command and a recovery button for
    /// the same action are one policy. Read-only kinds answer the verb that shows them.
    pub fn policy_verb(self) -> &'static str {
        use ActionKind as K;
        match self {
            K::Pods => "pods",
            K::DescribePods => "describe",
            K::Logs => "logs",
            K::Endpoints => "endpoints",
            K::Events => "events",
            K::RolloutStatus | K::RolloutHistory | K::HelmHistory => "history",
            K::HpaStatus | K::PatchHpa => "hpa",
            K::PdbStatus | K::ConfigmapKeys | K::Notify | K::Note => "diagnose",
            K::CollectEvidence => "evidence",
            K::PvcStatus | K::DiskUsage => "disk",
            K::Certificates | K::TlsCertificate | K::RenewCertificate => "cert",
            K::Backups | K::VeleroTestRestore | K::VeleroRestoreCleanup => "backup",
            K::AccessReview => "access-review",
            K::ResourceUsage => "top",
            K::DbConnections
            | K::DbSlowQueries
            | K::DbSizes
            | K::PgbouncerPools
            | K::DbConnectivity
            | K::DbTerminateLong
            | K::DbVacuum => "db",
            K::CacheStats | K::CacheKeys | K::PatchConfigmap | K::JobFromCronjob => "cache",
            K::HttpMetric | K::HttpHealth => "status",
            K::ErrorBreakdown => "errors",
            K::RolloutRestart => "restart",
            K::Scale => "scale",
            K::RollbackDeployment | K::RollbackHelm => "rollback",
            K::SetImage => "deploy",
            K::SetResources => "resources",
            K::Annotate => "maintenance",
            K::ExpandPvc => "pvc",
            K::QuarantinePod => "quarantine",
            K::UnquarantinePod => "unquarantine",
            K::RotateSecret => "secret",
            K::LogsCleanup => "logs",
            K::SmokeTests => "smoke",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// Where `logs` reads from.
#[derive(Debug, Clone, PartialEq)]
pub enum LogSource<S: Stage> {
    /// Every pod the selector matches.
    Selector(S::Val<LabelSelector>),
    /// One pod, by name.
    Pod(S::Val<K8sName>),
}

/// Container limits for `set_resources`; at least one is set.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceLimits<S: Stage> {
    pub memory: Option<S::Val<Quantity>>,
    pub cpu: Option<S::Val<Quantity>>,
}

/// One action with its parameters. Deployment, service and other object names are
/// within the configured namespace; odorbot acts nowhere else.
#[derive(Debug, Clone, PartialEq)]
pub enum Action<S: Stage> {
    // Read-only: Kubernetes.
    Pods {
        selector: S::Val<LabelSelector>,
    },
    DescribePods {
        selector: S::Val<LabelSelector>,
        /// Only pods that are not ready or not running, as on-call wants first.
        only_failing: S::Val<bool>,
    },
    Logs {
        source: LogSource<S>,
        tail: Option<S::Val<LogTail>>,
        since: Option<S::Val<Duration>>,
        grep: Option<S::Val<Filter>>,
        previous: Option<S::Val<bool>>,
    },
    Endpoints {
        service: S::Val<K8sName>,
    },
    Events {
        since: Option<S::Val<Duration>>,
    },
    RolloutStatus {
        deployment: S::Val<K8sName>,
    },
    RolloutHistory {
        deployment: S::Val<K8sName>,
    },
    HelmHistory {
        release: S::Val<K8sName>,
    },
    HpaStatus {
        hpa: S::Val<K8sName>,
    },
    PdbStatus,
    ConfigmapKeys {
        configmap: S::Val<K8sName>,
        grep: Option<S::Val<Filter>>,
    },
    PvcStatus {
        /// `None`: every claim in the namespace.
        pvc: Option<S::Val<K8sName>>,
    },
    Certificates,
    Backups,
    AccessReview,
    ResourceUsage {
        /// `None`: every pod in the namespace.
        selector: Option<S::Val<LabelSelector>>,
    },
    // Read-only: probes.
    DbConnections {
        /// `None`: all states, counted.
        state: Option<S::Val<DbState>>,
    },
    DbSlowQueries {
        limit: Option<S::Val<RowLimit>>,
    },
    DbSizes {
        /// How many relations to show; `None`: the default.
        limit: Option<S::Val<RowLimit>>,
    },
    PgbouncerPools,
    DbConnectivity,
    CacheStats,
    CacheKeys {
        pattern: S::Val<KeyPattern>,
        limit: Option<S::Val<RowLimit>>,
    },
    HttpMetric {
        signal: S::Val<MetricSignal>,
    },
    ErrorBreakdown {
        /// How many endpoints to show; `None`: the default.
        top: Option<S::Val<RowLimit>>,
    },
    HttpHealth {
        path: S::Val<HttpPath>,
    },
    TlsCertificate {
        host: S::Val<HostName>,
    },
    DiskUsage {
        /// `None`: every volume odorbot can see.
        pvc: Option<S::Val<K8sName>>,
    },
    /// Read-only for the cluster; what it reads is kept in odorbot's store.
    CollectEvidence {
        /// The pods whose logs, and specs, are kept.
        selector: S::Val<LabelSelector>,
        /// The window of logs and events; `None`: 24 hours.
        since: Option<S::Val<Duration>>,
    },
    // Read-only: people.
    Notify {
        role: S::Val<RoleId>,
    },
    Note {
        text: S::Val<NoteText>,
    },
    // Destructive.
    RolloutRestart {
        deployment: S::Val<K8sName>,
        /// The `restartedAt` stamp; fixed when a request is made
        /// ([`Action::with_names_fixed`]), so the approved value is the executed one.
        restarted_at: Option<S::Val<Stamp>>,
    },
    Scale {
        deployment: S::Val<K8sName>,
        replicas: S::Val<Replicas>,
    },
    RollbackDeployment {
        deployment: S::Val<K8sName>,
        /// `None`: the previous revision.
        revision: Option<S::Val<Revision>>,
    },
    RollbackHelm {
        release: S::Val<K8sName>,
        /// `None`: the previous revision.
        revision: Option<S::Val<Revision>>,
    },
    SetImage {
        deployment: S::Val<K8sName>,
        container: S::Val<K8sName>,
        tag: S::Val<ImageTag>,
    },
    PatchHpa {
        hpa: S::Val<K8sName>,
        min_replicas: Option<S::Val<Replicas>>,
        max_replicas: Option<S::Val<Replicas>>,
        target_cpu_percent: Option<S::Val<Percent>>,
    },
    SetResources {
        deployment: S::Val<K8sName>,
        container: S::Val<K8sName>,
        limits: ResourceLimits<S>,
    },
    PatchConfigmap {
        configmap: S::Val<K8sName>,
        data: BTreeMap<DataKey, S::Val<ConfigValue>>,
    },
    JobFromCronjob {
        cronjob: S::Val<K8sName>,
        job_name: S::Val<K8sName>,
    },
    Annotate {
        deployment: S::Val<K8sName>,
        key: S::Val<AnnotationKey>,
        /// `None` removes the annotation.
        value: Option<S::Val<AnnotationValue>>,
    },
    ExpandPvc {
        pvc: S::Val<K8sName>,
        size: S::Val<Quantity>,
    },
    QuarantinePod {
        pod: S::Val<K8sName>,
        /// The NetworkPolicy installed to deny all traffic of pods labelled
        /// `quarantine=true`; it is read, never changed.
        quarantine_policy: S::Val<K8sName>,
    },
    UnquarantinePod {
        pod: S::Val<K8sName>,
    },
    RotateSecret {
        deployment: S::Val<K8sName>,
        container: S::Val<K8sName>,
        /// The environment variable that carries the secret.
        env: S::Val<EnvName>,
        /// The key inside the secrets.
        key: S::Val<DataKey>,
        /// The two secrets, created at install time, that rotation alternates between: the
        /// one `env` does not read is overwritten in place, so odorbot never creates or
        /// deletes a Secret.
        secret_a: S::Val<K8sName>,
        secret_b: S::Val<K8sName>,
    },
    RenewCertificate {
        certificate: S::Val<K8sName>,
        /// The TLS secret cert-manager reissues. `None`: the certificate's own
        /// `spec.secretName`, read when a request is made and bound to it.
        secret: Option<S::Val<K8sName>>,
    },
    VeleroTestRestore {
        /// `None`: the newest backup.
        backup: Option<S::Val<K8sName>>,
        /// The Restore to create; a request fixes it when it is made
        /// ([`Action::with_names_fixed`]), so the approved name is the executed one.
        restore: Option<S::Val<K8sName>>,
    },
    VeleroRestoreCleanup {
        /// `None`: the test restore this request created.
        restore: Option<S::Val<K8sName>>,
    },
    DbTerminateLong {
        older_than: S::Val<Duration>,
        /// The sessions the approver saw; set when the request is made, and execution
        /// terminates only those that still run (the same pid and start), never a session
        /// that started later.
        sessions: Option<S::Val<Backends>>,
    },
    DbVacuum,
    LogsCleanup {
        cronjob: S::Val<K8sName>,
        /// The Job to create; fixed when a request is made, as for a test restore.
        job_name: Option<S::Val<K8sName>>,
    },
    SmokeTests {
        cronjob: S::Val<K8sName>,
        /// As for `logs_cleanup`.
        job_name: Option<S::Val<K8sName>>,
    },
}

/// Maps every parameter field of an action from one stage to another. Each traversal
/// (binding, rendering, listing parameters) is one implementation; the shape of the
/// actions is walked in one place, [`Action::try_map`].
trait StageMap<From: Stage> {
    type To: Stage;

    fn field<T: ArgType>(
        &mut self,
        name: &str,
        value: &From::Val<T>,
    ) -> Option<<Self::To as Stage>::Val<T>>;

    fn optional<T: ArgType>(
        &mut self,
        name: &str,
        value: Option<&From::Val<T>>,
    ) -> Option<Option<<Self::To as Stage>::Val<T>>> {
        match value {
            None => Some(None),
            Some(v) => self.field(name, v).map(Some),
        }
    }
}

impl<S: Stage> Action<S> {
    pub fn kind(&self) -> ActionKind {
        use ActionKind as K;
        match self {
            Self::Pods { .. } => K::Pods,
            Self::DescribePods { .. } => K::DescribePods,
            Self::Logs { .. } => K::Logs,
            Self::Endpoints { .. } => K::Endpoints,
            Self::Events { .. } => K::Events,
            Self::RolloutStatus { .. } => K::RolloutStatus,
            Self::RolloutHistory { .. } => K::RolloutHistory,
            Self::HelmHistory { .. } => K::HelmHistory,
            Self::HpaStatus { .. } => K::HpaStatus,
            Self::PdbStatus => K::PdbStatus,
            Self::ConfigmapKeys { .. } => K::ConfigmapKeys,
            Self::PvcStatus { .. } => K::PvcStatus,
            Self::Certificates => K::Certificates,
            Self::Backups => K::Backups,
            Self::AccessReview => K::AccessReview,
            Self::ResourceUsage { .. } => K::ResourceUsage,
            Self::DbConnections { .. } => K::DbConnections,
            Self::DbSlowQueries { .. } => K::DbSlowQueries,
            Self::DbSizes { .. } => K::DbSizes,
            Self::PgbouncerPools => K::PgbouncerPools,
            Self::DbConnectivity => K::DbConnectivity,
            Self::CacheStats => K::CacheStats,
            Self::CacheKeys { .. } => K::CacheKeys,
            Self::HttpMetric { .. } => K::HttpMetric,
            Self::ErrorBreakdown { .. } => K::ErrorBreakdown,
            Self::HttpHealth { .. } => K::HttpHealth,
            Self::TlsCertificate { .. } => K::TlsCertificate,
            Self::DiskUsage { .. } => K::DiskUsage,
            Self::CollectEvidence { .. } => K::CollectEvidence,
            Self::Notify { .. } => K::Notify,
            Self::Note { .. } => K::Note,
            Self::RolloutRestart { .. } => K::RolloutRestart,
            Self::Scale { .. } => K::Scale,
            Self::RollbackDeployment { .. } => K::RollbackDeployment,
            Self::RollbackHelm { .. } => K::RollbackHelm,
            Self::SetImage { .. } => K::SetImage,
            Self::PatchHpa { .. } => K::PatchHpa,
            Self::SetResources { .. } => K::SetResources,
            Self::PatchConfigmap { .. } => K::PatchConfigmap,
            Self::JobFromCronjob { .. } => K::JobFromCronjob,
            Self::Annotate { .. } => K::Annotate,
            Self::ExpandPvc { .. } => K::ExpandPvc,
            Self::QuarantinePod { .. } => K::QuarantinePod,
            Self::UnquarantinePod { .. } => K::UnquarantinePod,
            Self::RotateSecret { .. } => K::RotateSecret,
            Self::RenewCertificate { .. } => K::RenewCertificate,
            Self::VeleroTestRestore { .. } => K::VeleroTestRestore,
            Self::VeleroRestoreCleanup { .. } => K::VeleroRestoreCleanup,
            Self::DbTerminateLong { .. } => K::DbTerminateLong,
            Self::DbVacuum => K::DbVacuum,
            Self::LogsCleanup { .. } => K::LogsCleanup,
            Self::SmokeTests { .. } => K::SmokeTests,
        }
    }

    /// Whether the action changes anything (and so needs approval).
    pub fn is_destructive(&self) -> bool {
        self.kind().is_destructive()
    }

    /// Each set parameter as `(name, shown value)`, in declaration order; nested ones
    /// are dotted (`limits.memory`, `data.cache_ttl`). Placeholders show as
    /// `<name: bounds>`; empty values and values with spaces are quoted.
    pub fn fields(&self) -> Vec<(String, String)> {
        struct Show<S>(Vec<(String, String)>, std::marker::PhantomData<S>);
        impl<S: Stage> StageMap<S> for Show<S> {
            type To = Seen;
            fn field<T: ArgType>(&mut self, name: &str, value: &S::Val<T>) -> Option<()> {
                self.0.push((name.to_owned(), S::show::<T>(value)));
                Some(())
            }
        }
        let mut show = Show::<S>(Vec::new(), std::marker::PhantomData);
        let _ = self.try_map(&mut show);
        show.0
    }

    /// `scale deployment=odordiff-api replicas=5`: the action on one line.
    pub fn describe(&self) -> String {
        let mut out = self.kind().tag().to_owned();
        for (name, value) in self.fields() {
            out.push_str(&format!(" {name}={value}"));
        }
        out
    }

    /// Maps every field; `None` when the mapper refused one (after reporting it).
    fn try_map<M: StageMap<S>>(&self, m: &mut M) -> Option<Action<M::To>> {
        use Action as A;
        Some(match self {
            Self::Pods { selector } => A::Pods {
                selector: m.field("selector", selector)?,
            },
            Self::DescribePods {
                selector,
                only_failing,
            } => A::DescribePods {
                selector: m.field("selector", selector)?,
                only_failing: m.field("only_failing", only_failing)?,
            },
            Self::Logs {
                source,
                tail,
                since,
                grep,
                previous,
            } => A::Logs {
                source: match source {
                    LogSource::Selector(s) => LogSource::Selector(m.field("selector", s)?),
                    LogSource::Pod(p) => LogSource::Pod(m.field("pod", p)?),
                },
                tail: m.optional("tail", tail.as_ref())?,
                since: m.optional("since", since.as_ref())?,
                grep: m.optional("grep", grep.as_ref())?,
                previous: m.optional("previous", previous.as_ref())?,
            },
            Self::Endpoints { service } => A::Endpoints {
                service: m.field("service", service)?,
            },
            Self::Events { since } => A::Events {
                since: m.optional("since", since.as_ref())?,
            },
            Self::RolloutStatus { deployment } => A::RolloutStatus {
                deployment: m.field("deployment", deployment)?,
            },
            Self::RolloutHistory { deployment } => A::RolloutHistory {
                deployment: m.field("deployment", deployment)?,
            },
            Self::HelmHistory { release } => A::HelmHistory {
                release: m.field("release", release)?,
            },
            Self::HpaStatus { hpa } => A::HpaStatus {
                hpa: m.field("hpa", hpa)?,
            },
            Self::PdbStatus => A::PdbStatus,
            Self::ConfigmapKeys { configmap, grep } => A::ConfigmapKeys {
                configmap: m.field("configmap", configmap)?,
                grep: m.optional("grep", grep.as_ref())?,
            },
            Self::PvcStatus { pvc } => A::PvcStatus {
                pvc: m.optional("pvc", pvc.as_ref())?,
            },
            Self::Certificates => A::Certificates,
            Self::Backups => A::Backups,
            Self::AccessReview => A::AccessReview,
            Self::ResourceUsage { selector } => A::ResourceUsage {
                selector: m.optional("selector", selector.as_ref())?,
            },
            Self::DbConnections { state } => A::DbConnections {
                state: m.optional("state", state.as_ref())?,
            },
            Self::DbSlowQueries { limit } => A::DbSlowQueries {
                limit: m.optional("limit", limit.as_ref())?,
            },
            Self::DbSizes { limit } => A::DbSizes {
                limit: m.optional("limit", limit.as_ref())?,
            },
            Self::PgbouncerPools => A::PgbouncerPools,
            Self::DbConnectivity => A::DbConnectivity,
            Self::CacheStats => A::CacheStats,
            Self::CacheKeys { pattern, limit } => A::CacheKeys {
                pattern: m.field("pattern", pattern)?,
                limit: m.optional("limit", limit.as_ref())?,
            },
            Self::HttpMetric { signal } => A::HttpMetric {
                signal: m.field("signal", signal)?,
            },
            Self::ErrorBreakdown { top } => A::ErrorBreakdown {
                top: m.optional("top", top.as_ref())?,
            },
            Self::HttpHealth { path } => A::HttpHealth {
                path: m.field("path", path)?,
            },
            Self::TlsCertificate { host } => A::TlsCertificate {
                host: m.field("host", host)?,
            },
            Self::DiskUsage { pvc } => A::DiskUsage {
                pvc: m.optional("pvc", pvc.as_ref())?,
            },
            Self::CollectEvidence { selector, since } => A::CollectEvidence {
                selector: m.field("selector", selector)?,
                since: m.optional("since", since.as_ref())?,
            },
            Self::Notify { role } => A::Notify {
                role: m.field("role", role)?,
            },
            Self::Note { text } => A::Note {
                text: m.field("text", text)?,
            },
            Self::RolloutRestart {
                deployment,
                restarted_at,
            } => A::RolloutRestart {
                deployment: m.field("deployment", deployment)?,
                restarted_at: m.optional("restarted_at", restarted_at.as_ref())?,
            },
            Self::Scale {
                deployment,
                replicas,
            } => A::Scale {
                deployment: m.field("deployment", deployment)?,
                replicas: m.field("replicas", replicas)?,
            },
            Self::RollbackDeployment {
                deployment,
                revision,
            } => A::RollbackDeployment {
                deployment: m.field("deployment", deployment)?,
                revision: m.optional("revision", revision.as_ref())?,
            },
            Self::RollbackHelm { release, revision } => A::RollbackHelm {
                release: m.field("release", release)?,
                revision: m.optional("revision", revision.as_ref())?,
            },
            Self::SetImage {
                deployment,
                container,
                tag,
            } => A::SetImage {
                deployment: m.field("deployment", deployment)?,
                container: m.field("container", container)?,
                tag: m.field("tag", tag)?,
            },
            Self::PatchHpa {
                hpa,
                min_replicas,
                max_replicas,
                target_cpu_percent,
            } => A::PatchHpa {
                hpa: m.field("hpa", hpa)?,
                min_replicas: m.optional("min_replicas", min_replicas.as_ref())?,
                max_replicas: m.optional("max_replicas", max_replicas.as_ref())?,
                target_cpu_percent: m
                    .optional("target_cpu_percent", target_cpu_percent.as_ref())?,
            },
            Self::SetResources {
                deployment,
                container,
                limits,
            } => A::SetResources {
                deployment: m.field("deployment", deployment)?,
                container: m.field("container", container)?,
                limits: ResourceLimits {
                    memory: m.optional("limits.memory", limits.memory.as_ref())?,
                    cpu: m.optional("limits.cpu", limits.cpu.as_ref())?,
                },
            },
            Self::PatchConfigmap { configmap, data } => {
                let configmap = m.field("configmap", configmap)?;
                let mut mapped = BTreeMap::new();
                for (key, value) in data {
                    let v = m.field(&format!("data.{key}"), value)?;
                    mapped.insert(key.clone(), v);
                }
                A::PatchConfigmap {
                    configmap,
                    data: mapped,
                }
            }
            Self::JobFromCronjob { cronjob, job_name } => A::JobFromCronjob {
                cronjob: m.field("cronjob", cronjob)?,
                job_name: m.field("job_name", job_name)?,
            },
            Self::Annotate {
                deployment,
                key,
                value,
            } => A::Annotate {
                deployment: m.field("deployment", deployment)?,
                key: m.field("key", key)?,
                value: m.optional("value", value.as_ref())?,
            },
            Self::ExpandPvc { pvc, size } => A::ExpandPvc {
                pvc: m.field("pvc", pvc)?,
                size: m.field("size", size)?,
            },
            Self::QuarantinePod {
                pod,
                quarantine_policy,
            } => A::QuarantinePod {
                pod: m.field("pod", pod)?,
                quarantine_policy: m.field("quarantine_policy", quarantine_policy)?,
            },
            Self::UnquarantinePod { pod } => A::UnquarantinePod {
                pod: m.field("pod", pod)?,
            },
            Self::RotateSecret {
                deployment,
                container,
                env,
                key,
                secret_a,
                secret_b,
            } => A::RotateSecret {
                deployment: m.field("deployment", deployment)?,
                container: m.field("container", container)?,
                env: m.field("env", env)?,
                key: m.field("key", key)?,
                secret_a: m.field("secret_a", secret_a)?,
                secret_b: m.field("secret_b", secret_b)?,
            },
            Self::RenewCertificate {
                certificate,
                secret,
            } => A::RenewCertificate {
                certificate: m.field("certificate", certificate)?,
                secret: m.optional("secret", secret.as_ref())?,
            },
            Self::VeleroTestRestore { backup, restore } => A::VeleroTestRestore {
                backup: m.optional("backup", backup.as_ref())?,
                restore: m.optional("restore", restore.as_ref())?,
            },
            Self::VeleroRestoreCleanup { restore } => A::VeleroRestoreCleanup {
                restore: m.optional("restore", restore.as_ref())?,
            },
            Self::DbTerminateLong {
                older_than,
                sessions,
            } => A::DbTerminateLong {
                older_than: m.field("older_than", older_than)?,
                sessions: m.optional("sessions", sessions.as_ref())?,
            },
            Self::DbVacuum => A::DbVacuum,
            Self::LogsCleanup { cronjob, job_name } => A::LogsCleanup {
                cronjob: m.field("cronjob", cronjob)?,
                job_name: m.optional("job_name", job_name.as_ref())?,
            },
            Self::SmokeTests { cronjob, job_name } => A::SmokeTests {
                cronjob: m.field("cronjob", cronjob)?,
                job_name: m.optional("job_name", job_name.as_ref())?,
            },
        })
    }
}

/// A placeholder an action needs filled in, for prompts and buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    pub name: ParamName,
    /// The action field it fills, e.g. `replicas` or `data.cache_ttl`.
    pub field: String,
    /// What a value looks like.
    pub expected: String,
    /// `1 to 20`, when bounded.
    pub bounds: Option<String>,
    pub default: Option<String>,
    /// Whether the request can go ahead without it (it has a default or is optional).
    pub required: bool,
}

/// A supplied value that does not fit its placeholder, or a missing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindError {
    pub param: String,
    pub message: String,
}

/// Binding (or compiling) errors on one line, as replies and stored-action errors show them.
pub fn one_line(errors: &[impl ToString]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.param, self.message)
    }
}

/// The value of one placeholder, given what was supplied; `Ok(None)` for an optional
/// parameter left out.
fn resolve<T: ArgType>(
    supplied: &BTreeMap<String, String>,
    input: &Input<T>,
    optional_field: bool,
) -> Result<Option<T>, BindError> {
    let p = match input {
        Input::Fixed(v) => return Ok(Some(v.clone())),
        Input::Param(p) => p,
    };
    let error = |message: String| BindError {
        param: p.name.to_string(),
        message,
    };
    match supplied.get(p.name.as_str()) {
        Some(raw) => p
            .accept(raw)
            .map(Some)
            .map_err(|why| error(format!("{raw:?} {why}"))),
        None => match &p.default {
            Some(d) => Ok(Some(d.clone())),
            None if optional_field && p.optional => Ok(None),
            None => Err(error(format!("is required: {}", describe_expected(p)))),
        },
    }
}

/// A placeholder's own bounds say more than its type's.
fn describe_expected<T: ArgType>(p: &Param<T>) -> String {
    p.bounds().unwrap_or_else(T::expected)
}

impl Action<Template> {
    /// The placeholders this action needs filled in, each once.
    pub fn params(&self) -> Vec<ParamInfo> {
        struct List(Vec<ParamInfo>);
        impl List {
            fn add<T: ArgType>(&mut self, field: &str, input: &Input<T>, optional_field: bool) {
                let Input::Param(p) = input else { return };
                if self.0.iter().any(|i| i.name == p.name) {
                    return;
                }
                self.0.push(ParamInfo {
                    name: p.name.clone(),
                    field: field.to_owned(),
                    expected: T::expected(),
                    bounds: p.bounds(),
                    default: p.default.as_ref().map(ArgType::render),
                    required: p.default.is_none() && !(optional_field && p.optional),
                });
            }
        }
        impl StageMap<Template> for List {
            type To = Seen;
            fn field<T: ArgType>(&mut self, name: &str, value: &Input<T>) -> Option<()> {
                self.add(name, value, false);
                Some(())
            }
            fn optional<T: ArgType>(
                &mut self,
                name: &str,
                value: Option<&Input<T>>,
            ) -> Option<Option<()>> {
                if let Some(v) = value {
                    self.add(name, v, true);
                }
                Some(None)
            }
        }
        let mut list = List(Vec::new());
        let _ = self.try_map(&mut list);
        list.0
    }

    /// Fills in the placeholders from what a person supplied (by parameter name) and
    /// checks each value. Supplied values the action does not use are ignored, so one
    /// set of values can serve every step of a procedure.
    ///
    /// # Errors
    /// Every missing or invalid value, one [`BindError`] each.
    pub fn bind(
        &self,
        supplied: &BTreeMap<String, String>,
    ) -> Result<Action<Bound>, Vec<BindError>> {
        // A first pass visits every field and gathers all errors; the second builds.
        struct Check<'a>(&'a BTreeMap<String, String>, Vec<BindError>);
        impl StageMap<Template> for Check<'_> {
            type To = Seen;
            fn field<T: ArgType>(&mut self, _: &str, value: &Input<T>) -> Option<()> {
                if let Err(e) = resolve(self.0, value, false) {
                    self.1.push(e);
                }
                Some(())
            }
            fn optional<T: ArgType>(
                &mut self,
                _: &str,
                value: Option<&Input<T>>,
            ) -> Option<Option<()>> {
                if let Some(Err(e)) = value.map(|v| resolve(self.0, v, true)) {
                    self.1.push(e);
                }
                Some(None)
            }
        }
        struct Build<'a>(&'a BTreeMap<String, String>);
        impl StageMap<Template> for Build<'_> {
            type To = Bound;
            fn field<T: ArgType>(&mut self, _: &str, value: &Input<T>) -> Option<T> {
                resolve(self.0, value, false).ok().flatten()
            }
            fn optional<T: ArgType>(
                &mut self,
                _: &str,
                value: Option<&Input<T>>,
            ) -> Option<Option<T>> {
                match value {
                    None => Some(None),
                    Some(v) => resolve(self.0, v, true).ok(),
                }
            }
        }
        let mut check = Check(supplied, Vec::new());
        let _ = self.try_map(&mut check);
        if !check.1.is_empty() {
            return Err(check.1);
        }
        let bound = self.try_map(&mut Build(supplied)).ok_or_else(|| {
            vec![BindError {
                param: self.kind().tag().to_owned(),
                message: "could not be bound".into(),
            }]
        })?;
        bound.check().map_err(|message| {
            vec![BindError {
                param: self.kind().tag().to_owned(),
                message,
            }]
        })?;
        Ok(bound)
    }
}

impl Action<Bound> {
    /// Each set parameter as `(name, value)` in the catalog's own text form, unquoted, in
    /// declaration order; nested ones are dotted as in [`Action::fields`]. What
    /// [`super::stored`] writes, and what the catalog's parser reads back.
    pub fn values(&self) -> Vec<(String, String)> {
        struct Record(Vec<(String, String)>);
        impl StageMap<Bound> for Record {
            type To = Seen;
            fn field<T: ArgType>(&mut self, name: &str, value: &T) -> Option<()> {
                self.0.push((name.to_owned(), value.render()));
                Some(())
            }
        }
        let mut record = Record(Vec::new());
        let _ = self.try_map(&mut record);
        record.0
    }
}

/// Prefix of the Restores a test restore creates; the clean-up touches no other.
pub const TEST_RESTORE_PREFIX: &str = "test-restore-";

/// Kubernetes puts a Job's name in a label, so it is at most 63 characters.
pub const MAX_JOB_NAME: usize = 63;

/// `<cronjob>-manual-<unix time>`, within a Job name's length.
fn manual_job_name(cronjob: &K8sName, now_unix: i64) -> Option<K8sName> {
    let suffix = format!("-manual-{now_unix}");
    let keep = MAX_JOB_NAME.saturating_sub(suffix.len());
    let base: String = cronjob.as_str().chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end_matches(['-', '.']))
        .parse()
        .ok()
}

impl Action<Bound> {
    /// The Job an approved action started, which odorbot then follows to its outcome,
    /// and what the report calls it.
    pub fn started_job(&self) -> Option<(&'static str, &K8sName)> {
        match self {
            Self::JobFromCronjob { job_name, .. } => Some(("The Job", job_name)),
            Self::LogsCleanup { job_name, .. } => Some(("The log clean-up", job_name.as_ref()?)),
            Self::SmokeTests { job_name, .. } => Some(("Smoke tests", job_name.as_ref()?)),
            _ => None,
        }
    }

    /// Fills the names an action creates and that would otherwise depend on the clock at
    /// execution (`<cronjob>-manual-<unix time>`, `test-restore-<unix time>`). Called once,
    /// when a request is made: the dry run, the card, the drift check and the execution
    /// then all see one name.
    #[must_use]
    pub fn with_names_fixed(self, now_unix: i64) -> Self {
        match self {
            Self::LogsCleanup {
                cronjob,
                job_name: None,
            } => {
                let job_name = manual_job_name(&cronjob, now_unix);
                Self::LogsCleanup { cronjob, job_name }
            }
            Self::SmokeTests {
                cronjob,
                job_name: None,
            } => {
                let job_name = manual_job_name(&cronjob, now_unix);
                Self::SmokeTests { cronjob, job_name }
            }
            Self::VeleroTestRestore {
                backup,
                restore: None,
            } => Self::VeleroTestRestore {
                backup,
                restore: format!("{TEST_RESTORE_PREFIX}{now_unix}").parse().ok(),
            },
            Self::RolloutRestart {
                deployment,
                restarted_at: None,
            } => Self::RolloutRestart {
                deployment,
                restarted_at: Stamp::from_unix(now_unix),
            },
            other => other,
        }
    }
}

/// A bound action that only reads. It runs at once; nothing about it needs approval.
#[derive(Debug, Clone, PartialEq)]
pub struct Query(Action<Bound>);

/// A bound action that changes the cluster or the database. Only the two-person flow can
/// execute one: the approval store holds `Change`s and the runner executes nothing else,
/// so "only changes need approval" is a type, not a convention.
#[derive(Debug, Clone, PartialEq)]
pub struct Change(Action<Bound>);

/// A bound action, split by what it does.
#[derive(Debug, Clone, PartialEq)]
pub enum Classified {
    Query(Query),
    Change(Change),
}

impl Action<Bound> {
    /// Splits by kind; the kind table is the one place that says which actions change.
    pub fn classify(self) -> Classified {
        if self.is_destructive() {
            Classified::Change(Change(self))
        } else {
            Classified::Query(Query(self))
        }
    }
}

impl Query {
    pub fn action(&self) -> &Action<Bound> {
        &self.0
    }
}

impl Change {
    pub fn action(&self) -> &Action<Bound> {
        &self.0
    }

    /// See [`Action::with_names_fixed`]; a fixed change is still a change.
    #[must_use]
    pub fn with_names_fixed(self, now_unix: i64) -> Self {
        Self(self.0.with_names_fixed(now_unix))
    }

    /// Replaces the action with one the live system completed (bound sessions, a
    /// certificate's secret); refused when that would turn it into another kind.
    ///
    /// # Errors
    /// The completed action is of another kind.
    pub fn completed(self, f: impl FnOnce(Action<Bound>) -> Action<Bound>) -> Result<Self, String> {
        let kind = self.0.kind();
        let done = f(self.0);
        if done.kind() == kind {
            Ok(Self(done))
        } else {
            Err(format!("{kind} cannot become {}", done.kind()))
        }
    }
}

impl Action<Bound> {
    /// Rules that span several parameters, checked once every value is known.
    fn check(&self) -> Result<(), String> {
        if let Self::PatchHpa {
            min_replicas: Some(low),
            max_replicas: Some(high),
            ..
        } = self
            && low > high
        {
            return Err(format!(
                "min_replicas {} is above max_replicas {}",
                low.get(),
                high.get()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::runbook::raw::RawAction;

    fn name(s: &str) -> K8sName {
        s.parse().unwrap()
    }

    fn param<T>(n: &str) -> Param<T> {
        Param {
            name: ParamName::parse_arg(n).unwrap(),
            min: None,
            max: None,
            default: None,
            optional: false,
        }
    }

    fn supplied(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// What an action creates or stamps from the clock is fixed once, when a request is
    /// made; fixing again (at execution) changes nothing.
    #[test]
    fn names_and_stamps_are_fixed_once_when_a_request_is_made() {
        let cleanup = Action::<Bound>::LogsCleanup {
            cronjob: name("postgres-logs-cleanup"),
            job_name: None,
        }
        .with_names_fixed(1_700_000_000);
        let Action::LogsCleanup {
            job_name: Some(job),
            ..
        } = &cleanup
        else {
            panic!("{cleanup:?}");
        };
        assert_eq!(job.as_str(), "postgres-logs-cleanup-manual-1700000000");
        assert_eq!(cleanup.clone().with_names_fixed(1_800_000_000), cleanup);
        let restart = Action::<Bound>::RolloutRestart {
            deployment: name("odordiff-api"),
            restarted_at: None,
        }
        .with_names_fixed(1_700_000_000);
        assert_eq!(
            restart.values(),
            [
                ("deployment".to_owned(), "odordiff-api".to_owned()),
                ("restarted_at".to_owned(), "2023-11-14T22:13:20Z".to_owned())
            ]
        );
        assert_eq!(restart.clone().with_names_fixed(1_800_000_000), restart);
        let restore = Action::<Bound>::VeleroTestRestore {
            backup: None,
            restore: None,
        }
        .with_names_fixed(5);
        assert_eq!(
            restore.values(),
            [("restore".to_owned(), "test-restore-5".to_owned())]
        );
    }

    #[test]
    fn tags_are_unique_and_the_raw_form_knows_every_one() {
        let tags: BTreeSet<&str> = ActionKind::ALL.iter().map(|k| k.tag()).collect();
        assert_eq!(tags.len(), ActionKind::ALL.len());
        let read_only = ActionKind::ALL
            .iter()
            .filter(|k| !k.is_destructive())
            .count();
        assert_eq!((read_only, ActionKind::ALL.len() - read_only), (31, 21));
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::from_tag(kind.tag()), Some(*kind));
            // Parameters may be missing here, but the tag itself must be known.
            if let Err(e) = RawAction::from_step(kind.tag(), &serde_yaml_ng::Value::Null) {
                assert!(e.starts_with("missing field"), "{kind}: {e}");
            }
        }
        assert_eq!(ActionKind::from_tag("exec"), None);
    }

    #[test]
    fn the_readme_documents_every_action_type() {
        let readme = include_str!("../../../../README.md");
        let missing: Vec<&str> = ActionKind::ALL
            .iter()
            .map(|k| k.tag())
            .filter(|t| !readme.contains(&format!("`{t}`")))
            .collect();
        assert!(missing.is_empty(), "README.md does not list {missing:?}");
    }

    #[test]
    fn placeholders_bind_with_defaults_and_bounds() {
        let scale = Action::<Template>::Scale {
            deployment: Input::Fixed(name("odordiff-api")),
            replicas: Input::Param(Param {
                min: Some(Replicas::parse_arg("1").unwrap()),
                max: Some(Replicas::parse_arg("20").unwrap()),
                default: Some(Replicas::parse_arg("5").unwrap()),
                ..param("replicas")
            }),
        };
        assert_eq!(
            scale.describe(),
            "scale deployment=odordiff-api replicas=<replicas: 1 to 20, default 5>"
        );
        let bound = scale.bind(&supplied(&[])).unwrap();
        assert_eq!(bound.describe(), "scale deployment=odordiff-api replicas=5");
        let bound = scale.bind(&supplied(&[("replicas", "8")])).unwrap();
        assert!(matches!(bound, Action::Scale { replicas, .. } if replicas.get() == 8));
        let errors = scale.bind(&supplied(&[("replicas", "21")])).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "replicas: \"21\" is out of range: expected 1 to 20"
        );
        let errors = scale.bind(&supplied(&[("replicas", "five")])).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "replicas: \"five\" is not a whole number"
        );
    }

    #[test]
    fn optional_placeholders_may_be_left_out_and_required_ones_may_not() {
        let rollback = Action::<Template>::RollbackHelm {
            release: Input::Fixed(name("odordiff-2")),
            revision: Some(Input::Param(Param {
                optional: true,
                ..param("revision")
            })),
        };
        assert_eq!(
            rollback.bind(&supplied(&[])).unwrap(),
            Action::RollbackHelm {
                release: name("odordiff-2"),
                revision: None
            }
        );
        let info = &rollback.params()[0];
        assert!(!info.required);

        let image = Action::<Template>::SetImage {
            deployment: Input::Param(param("deployment")),
            container: Input::Fixed(name("odordiff-api")),
            tag: Input::Param(param("tag")),
        };
        let errors = image.bind(&supplied(&[("unused", "x")])).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                format!("deployment: is required: {}", K8sName::expected()),
                format!("tag: is required: {}", ImageTag::expected()),
            ]
        );
        let bound = image
            .bind(&supplied(&[
                ("deployment", "odordiff-api"),
                ("tag", "v2.3.1"),
            ]))
            .unwrap();
        assert_eq!(
            bound.describe(),
            "set_image deployment=odordiff-api container=odordiff-api tag=v2.3.1"
        );
    }

    #[test]
    fn rules_across_parameters_are_checked_after_binding() {
        let hpa = Action::<Template>::PatchHpa {
            hpa: Input::Fixed(name("odordiff-api-hpa")),
            min_replicas: Some(Input::Param(param("low"))),
            max_replicas: Some(Input::Param(param("high"))),
            target_cpu_percent: None,
        };
        let errors = hpa
            .bind(&supplied(&[("low", "9"), ("high", "3")]))
            .unwrap_err();
        assert_eq!(errors[0].message, "min_replicas 9 is above max_replicas 3");
        assert!(hpa.bind(&supplied(&[("low", "3"), ("high", "9")])).is_ok());
    }

    #[test]
    fn nested_fields_are_named_with_dots_and_listed_once() {
        let patch = Action::<Template>::PatchConfigmap {
            configmap: Input::Fixed(name("odordiff-config")),
            data: BTreeMap::from([
                (
                    DataKey::parse_arg("a").unwrap(),
                    Input::Param(param("ttl_secs")),
                ),
                (
                    DataKey::parse_arg("b").unwrap(),
                    Input::Param(param("ttl_secs")),
                ),
            ]),
        };
        let params = patch.params();
        assert_eq!(params.len(), 1);
        assert_eq!(params[0].field, "data.a");
        let bound = patch.bind(&supplied(&[("ttl_secs", "7200")])).unwrap();
        assert_eq!(
            bound.describe(),
            "patch_configmap configmap=odordiff-config data.a=7200 data.b=7200"
        );
        assert!(bound.is_destructive());
        assert_eq!(bound.kind(), ActionKind::PatchConfigmap);
    }
}
