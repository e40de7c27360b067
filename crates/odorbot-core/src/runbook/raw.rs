//! The catalog file as written: serde structures that reject unknown keys, with strings
//! where the compiler checks meaning. Nothing here is trusted; [`super::compile()`] turns it
//! into a [`super::Catalog`] or a list of every problem.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_yaml_ng::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCatalog {
    /// The system the runbook is for, e.g. `odordiff-2`.
    pub name: String,
    /// The document the catalog transcribes, and its version, so drift can be spotted.
    pub source_document: String,
    pub source_version: String,
    /// The IANA time zone of maintenance schedules, e.g. `UTC` or `Europe/Berlin`.
    pub time_zone: String,
    pub emergency_response: RawProtocol,
    pub escalation: RawEscalation,
    pub contacts: RawContacts,
    /// The objects odorbot acts on, by kind (`deployments: [odordiff-api, …]`): its Role is
    /// pinned to these names, and every name a step uses must be one of them.
    #[serde(default)]
    pub objects: BTreeMap<String, Vec<String>>,
    pub service: RawService,
    #[serde(default)]
    pub alerts: Vec<RawAlert>,
    #[serde(default)]
    pub procedures: Vec<RawProcedure>,
    #[serde(default)]
    pub queries: Vec<RawQuery>,
    #[serde(default)]
    pub tracing: Vec<RawTracing>,
    #[serde(default)]
    pub checklists: Vec<RawChecklist>,
    #[serde(default)]
    pub maintenance: Vec<RawMaintenance>,
}

/// The objects a verb acts on when the command names none (`/odor contain`, `/odor
/// maintenance start`, …); each is one the `objects` section lists.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub api: String,
    pub pgbouncer: String,
    pub helm_release: String,
    pub config: String,
    pub cache_ttl_key: String,
    pub cache_warming: String,
    pub logs_cleanup: String,
    pub smoke_tests: String,
    pub quarantine_policy: String,
    pub certificate: String,
    #[serde(default)]
    pub deploy: Vec<RawDeployTarget>,
}

/// A deployment `/odor deploy` may set the tag of: its container, and the one repository
/// its image may come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeployTarget {
    pub deployment: String,
    pub container: String,
    pub repository: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProtocol {
    pub source_heading: String,
    #[serde(default)]
    pub steps: Vec<RawProtocolStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProtocolStep {
    pub text: String,
    /// A deadline the step sets, e.g. acknowledge within `5m`.
    pub within: Option<String>,
    /// A cadence the step sets, e.g. status updates every `15m`.
    pub every: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    pub source_heading: String,
    /// Roster roles in the order escalation walks them.
    #[serde(default)]
    pub path: Vec<String>,
    #[serde(default)]
    pub matrix: Vec<RawEscalationRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalationRow {
    pub severity: String,
    pub response_time: String,
    /// The matrix's own words.
    pub escalation: String,
    /// `immediately`, a duration (`30m`), or `N business day(s)`.
    pub escalate_after: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContacts {
    #[serde(default)]
    pub team: Vec<RawTeamContact>,
    #[serde(default)]
    pub emergency: Vec<RawEmergencyContact>,
    #[serde(default)]
    pub vendors: Vec<RawVendor>,
    #[serde(default)]
    pub external: Vec<RawExternal>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeamContact {
    pub role: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub slack: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmergencyContact {
    pub role: String,
    /// How the emergency list names the role, which may differ from the team list.
    pub label: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVendor {
    pub name: String,
    pub email: Option<String>,
    /// Where support is found when there is no address, e.g. a console.
    pub support: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExternal {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    pub id: String,
    pub title: String,
    pub source_heading: String,
    pub severity: String,
    /// Alertmanager labels that all must be equal for an alert to be this entry.
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    #[serde(default)]
    pub symptoms: Vec<String>,
    #[serde(default)]
    pub investigation: Vec<RawStep>,
    #[serde(default)]
    pub common_causes: Vec<RawCause>,
    #[serde(default)]
    pub recovery: Vec<RawStep>,
    #[serde(default)]
    pub signals: Vec<RawSignal>,
    #[serde(default)]
    pub see_also: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCause {
    pub cause: String,
    pub solution: Option<String>,
}

/// One live signal; exactly one key is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignal {
    pub deployment_ready: Option<String>,
    pub metric: Option<String>,
    pub health: Option<String>,
    pub disk_usage: Option<String>,
    pub probe: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub title: String,
    /// The action's tag; checked by the compiler so that an unknown one is reported with
    /// the others instead of ending the parse.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub params: Value,
    /// Button text; destructive steps only.
    pub label: Option<String>,
    /// Repeat a read-only step, e.g. watch pods for 15 minutes after a rollback.
    pub watch: Option<RawWatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatch {
    #[serde(rename = "for")]
    pub duration: String,
    pub every: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProcedure {
    pub id: String,
    pub title: String,
    pub source_heading: String,
    pub category: String,
    pub summary: Option<String>,
    /// A checklist to go through first.
    pub checklist: Option<String>,
    #[serde(default)]
    pub steps: Vec<RawStep>,
    #[serde(default)]
    pub see_also: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    pub id: String,
    pub title: String,
    pub source_heading: String,
    pub category: String,
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    pub id: String,
    pub title: String,
    pub source_heading: String,
    pub ui: RawTracingUi,
    #[serde(default)]
    pub queries: Vec<RawTraceQuery>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracingUi {
    pub namespace: String,
    pub service: String,
    pub port: u16,
    /// Where the UI answers once port-forwarded.
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraceQuery {
    pub title: String,
    pub service: String,
    pub operation: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub lookback: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChecklist {
    pub id: String,
    pub title: String,
    pub source_heading: String,
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(default)]
    pub see_also: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    pub id: String,
    pub title: String,
    pub source_heading: String,
    pub schedule: RawSchedule,
    #[serde(default)]
    pub items: Vec<String>,
    #[serde(default)]
    pub see_also: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// `day`, `week`, `month` or `quarter`.
    pub every: String,
    /// Local time `HH:MM` in the catalog's time zone.
    pub at: String,
    /// Weekly and quarterly: the day of the week.
    pub weekday: Option<String>,
    /// Monthly: the day of the month.
    pub day: Option<i64>,
    /// Quarterly: the months, e.g. `[jan, apr, jul, oct]`.
    pub months: Option<Vec<String>>,
}

/// A parameter as written: a plain value, or a `{param: …}` placeholder.
#[derive(Debug, Clone)]
pub enum RawArg {
    Fixed(RawScalar),
    Param(RawParam),
}

/// A scalar as text. YAML reads `1.10` as the number 1.1, so fractional numbers are
/// flagged and refused where text is expected instead of silently changing.
#[derive(Debug, Clone)]
pub struct RawScalar {
    pub text: String,
    pub fractional: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    pub param: String,
    pub min: Option<RawScalar>,
    pub max: Option<RawScalar>,
    pub default: Option<RawScalar>,
    #[serde(default)]
    pub optional: bool,
}

impl RawScalar {
    fn from_value<E: de::Error>(value: Value) -> Result<Self, E> {
        match value {
            Value::String(text) => Ok(Self {
                text,
                fractional: false,
            }),
            Value::Bool(b) => Ok(Self {
                text: b.to_string(),
                fractional: false,
            }),
            Value::Number(n) => Ok(Self {
                fractional: n.is_f64(),
                text: n.to_string(),
            }),
            Value::Null => Err(E::custom("expected a value, found nothing")),
            Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => {
                Err(E::custom("expected a single value (text or a number)"))
            }
        }
    }
}

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?)
    }
}

impl<'de> Deserialize<'de> for RawArg {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            v @ Value::Mapping(_) => serde_yaml_ng::from_value(v)
                .map(RawArg::Param)
                .map_err(|e| <D::Error as de::Error>::custom(format!("in a placeholder: {e}"))),
            v => RawScalar::from_value(v).map(RawArg::Fixed),
        }
    }
}

/// Limits for `set_resources`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub memory: Option<RawArg>,
    pub cpu: Option<RawArg>,
}

/// A step's action: the `type:` tag selects the variant, `params:` holds its fields. The
/// field names are the catalog's parameter names.
#[derive(Debug, Deserialize)]
#[serde(
    tag = "type",
    content = "params",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum RawAction {
    Pods {
        selector: RawArg,
    },
    DescribePods {
        selector: RawArg,
        only_failing: Option<RawArg>,
    },
    Logs {
        selector: Option<RawArg>,
        pod: Option<RawArg>,
        tail: Option<RawArg>,
        since: Option<RawArg>,
        grep: Option<RawArg>,
        previous: Option<RawArg>,
    },
    Endpoints {
        service: RawArg,
    },
    Events {
        since: Option<RawArg>,
    },
    RolloutStatus {
        deployment: RawArg,
    },
    RolloutHistory {
        deployment: RawArg,
    },
    HelmHistory {
        release: RawArg,
    },
    HpaStatus {
        hpa: RawArg,
    },
    PdbStatus {},
    ConfigmapKeys {
        configmap: RawArg,
        grep: Option<RawArg>,
    },
    PvcStatus {
        pvc: Option<RawArg>,
    },
    Certificates {},
    Backups {},
    AccessReview {},
    ResourceUsage {
        selector: Option<RawArg>,
    },
    DbConnections {
        state: Option<RawArg>,
    },
    DbSlowQueries {
        limit: Option<RawArg>,
    },
    DbSizes {
        limit: Option<RawArg>,
    },
    PgbouncerPools {},
    DbConnectivity {},
    CacheStats {},
    CacheKeys {
        pattern: RawArg,
        limit: Option<RawArg>,
    },
    HttpMetric {
        signal: RawArg,
    },
    ErrorBreakdown {
        top: Option<RawArg>,
    },
    HttpHealth {
        path: RawArg,
    },
    TlsCertificate {
        host: RawArg,
    },
    DiskUsage {
        pvc: Option<RawArg>,
    },
    CollectEvidence {
        selector: RawArg,
        since: Option<RawArg>,
    },
    Notify {
        role: RawArg,
    },
    Note {
        text: RawArg,
    },
    RolloutRestart {
        deployment: RawArg,
        restarted_at: Option<RawArg>,
    },
    Scale {
        deployment: RawArg,
        replicas: RawArg,
    },
    RollbackDeployment {
        deployment: RawArg,
        revision: Option<RawArg>,
    },
    RollbackHelm {
        release: RawArg,
        revision: Option<RawArg>,
    },
    SetImage {
        deployment: RawArg,
        container: RawArg,
        tag: RawArg,
    },
    PatchHpa {
        hpa: RawArg,
        min_replicas: Option<RawArg>,
        max_replicas: Option<RawArg>,
        target_cpu_percent: Option<RawArg>,
    },
    SetResources {
        deployment: RawArg,
        container: RawArg,
        limits: RawLimits,
    },
    PatchConfigmap {
        configmap: RawArg,
        data: BTreeMap<String, RawArg>,
    },
    JobFromCronjob {
        cronjob: RawArg,
        job_name: RawArg,
    },
    Annotate {
        deployment: RawArg,
        key: RawArg,
        value: Option<RawArg>,
    },
    ExpandPvc {
        pvc: RawArg,
        size: RawArg,
    },
    QuarantinePod {
        pod: RawArg,
        quarantine_policy: RawArg,
    },
    UnquarantinePod {
        pod: RawArg,
    },
    RotateSecret {
        deployment: RawArg,
        container: RawArg,
        env: RawArg,
        key: RawArg,
        secret_a: RawArg,
        secret_b: RawArg,
    },
    RenewCertificate {
        certificate: RawArg,
        secret: Option<RawArg>,
    },
    VeleroTestRestore {
        backup: Option<RawArg>,
        restore: Option<RawArg>,
    },
    VeleroRestoreCleanup {
        restore: Option<RawArg>,
    },
    DbTerminateLong {
        older_than: RawArg,
        sessions: Option<RawArg>,
    },
    DbVacuum {},
    LogsCleanup {
        cronjob: RawArg,
        job_name: Option<RawArg>,
    },
    SmokeTests {
        cronjob: RawArg,
        job_name: Option<RawArg>,
    },
}

impl RawAction {
    /// Reads a step's `params` for the action named by `tag`.
    ///
    /// # Errors
    /// serde's message: an unknown or missing parameter, or a value of the wrong shape.
    pub fn from_step(tag: &str, params: &Value) -> Result<Self, String> {
        let params = match params {
            Value::Null => Value::Mapping(Default::default()),
            Value::Mapping(_) => params.clone(),
            _ => return Err("params must be a mapping of parameter names to values".into()),
        };
        let mut step = serde_yaml_ng::Mapping::new();
        step.insert(Value::from("type"), Value::from(tag));
        step.insert(Value::from("params"), params);
        serde_yaml_ng::from_value(Value::Mapping(step)).map_err(|e| e.to_string())
    }
}
