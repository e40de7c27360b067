//! The compiled catalog: every id unique, every reference resolved, every parameter
//! typed. Built only by [`super::compile()`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use url::Url;

use crate::domain::args::format_duration;
use crate::domain::escalation::{Deadline, Policy, SeverityRule};
use crate::domain::ids::K8sName;

use super::actions::{Action, BindError, Bound, ParamInfo, Template};
use super::values::{
    DataKey, EntryId, Frequency, HttpPath, MetricSignal, Month, ProbeSignal, ProcedureCategory,
    QueryCategory, RoleId, Severity, Weekday,
};

/// The runbook as data.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(super) name: String,
    pub(super) source_document: String,
    pub(super) source_version: String,
    pub(super) time_zone: String,
    pub(super) emergency_response: Protocol,
    pub(super) escalation: Escalation,
    pub(super) contacts: Contacts,
    /// The objects odorbot acts on, by `objects` key (`deployments`, …).
    pub(super) objects: BTreeMap<String, Vec<String>>,
    pub(super) service: Service,
    pub(super) alerts: Vec<Alert>,
    pub(super) procedures: Vec<Procedure>,
    pub(super) queries: Vec<Query>,
    pub(super) tracing: Vec<Tracing>,
    pub(super) checklists: Vec<Checklist>,
    pub(super) maintenance: Vec<Maintenance>,
}

/// The objects verbs act on when a command names none: the runbook's, not the code's.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// The API deployment: `contain`, `maintenance`, readiness when an entry names none.
    pub api: K8sName,
    /// `pgbouncer restart`.
    pub pgbouncer: K8sName,
    /// The Helm release `rollback` and `history` treat as a release, not a deployment.
    pub helm_release: K8sName,
    /// The ConfigMap `cache ttl` sets, and the key it sets.
    pub config: K8sName,
    pub cache_ttl_key: DataKey,
    /// The CronJobs `cache warm`, `logs cleanup` and `smoke` start a Job from.
    pub cache_warming: K8sName,
    pub logs_cleanup: K8sName,
    pub smoke_tests: K8sName,
    /// The NetworkPolicy `quarantine` points at the quarantined pod.
    pub quarantine_policy: K8sName,
    /// The certificate `cert renew` renews when it names none.
    pub certificate: K8sName,
    /// What `deploy` may change: each deployment's container and image repository.
    pub deploy: Vec<DeployTarget>,
}

/// A deployment whose image tag `deploy` (and a `set_image` step) may set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployTarget {
    pub deployment: K8sName,
    /// The container whose image is set: named, never guessed from the deployment's name.
    pub container: K8sName,
    /// The image repository the running image must come from; only its tag changes.
    pub repository: String,
}

impl Service {
    /// How `deployment` is deployed, if the runbook lets it be.
    pub fn deploy_target(&self, deployment: &K8sName) -> Option<&DeployTarget> {
        self.deploy.iter().find(|t| &t.deployment == deployment)
    }

    /// The deployments `deploy` may change, for a refusal.
    pub fn deployable(&self) -> String {
        let names: Vec<&str> = self.deploy.iter().map(|t| t.deployment.as_str()).collect();
        if names.is_empty() {
            "none: the runbook's service.deploy is empty".into()
        } else {
            names.join(", ")
        }
    }
}

/// The status cadence when the protocol sets none (the runbook's own says 15 minutes).
const DEFAULT_STATUS_EVERY: Duration = Duration::from_secs(15 * 60);

/// Ids that name catalog sections rather than entries, for `odorbot runbook show`.
pub const SECTION_IDS: &[&str] = &["emergency-response", "escalation", "contacts"];

impl Catalog {
    /// The system the runbook is for, e.g. `odordiff-2`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The document transcribed, and its version.
    pub fn source(&self) -> (&str, &str) {
        (&self.source_document, &self.source_version)
    }

    /// The IANA time zone that maintenance schedules are written in.
    pub fn time_zone(&self) -> &str {
        &self.time_zone
    }

    pub fn emergency_response(&self) -> &Protocol {
        &self.emergency_response
    }

    pub fn escalation(&self) -> &Escalation {
        &self.escalation
    }

    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    pub fn procedures(&self) -> &[Procedure] {
        &self.procedures
    }

    pub fn queries(&self) -> &[Query] {
        &self.queries
    }

    pub fn tracing(&self) -> &[Tracing] {
        &self.tracing
    }

    pub fn checklists(&self) -> &[Checklist] {
        &self.checklists
    }

    pub fn maintenance(&self) -> &[Maintenance] {
        &self.maintenance
    }

    /// Every entry, alerts first, in file order within each kind.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.alerts
            .iter()
            .map(Entry::Alert)
            .chain(self.procedures.iter().map(Entry::Procedure))
            .chain(self.queries.iter().map(Entry::Query))
            .chain(self.tracing.iter().map(Entry::Tracing))
            .chain(self.checklists.iter().map(Entry::Checklist))
            .chain(self.maintenance.iter().map(Entry::Maintenance))
    }

    /// The entry with this id, of any kind (ids are unique across the catalog).
    /// The escalation policy the runbook sets: per severity, the matrix's response time,
    /// when it escalates unresolved and whether it pages at once; the status cadence from
    /// the emergency-response protocol. Configuration may override parts of it
    /// ([`Policy::with`]); nothing else supplies a default.
    pub fn escalation_policy(&self) -> Policy {
        let rule = |severity| {
            let r = self.escalation.rule(severity);
            SeverityRule {
                ack_within: r.response_time,
                escalate_unresolved: match r.escalate_after {
                    EscalateAfter::Immediately => None,
                    EscalateAfter::Unresolved(d) => Some(Deadline::After(d)),
                    EscalateAfter::UnresolvedBusinessDays(n) => Some(Deadline::BusinessDays(n)),
                },
                page_at_once: r.escalate_after == EscalateAfter::Immediately,
            }
        };
        Policy {
            critical: rule(Severity::Critical),
            high: rule(Severity::High),
            medium: rule(Severity::Medium),
            low: rule(Severity::Low),
            status_every: self
                .emergency_response
                .update_interval()
                .unwrap_or(DEFAULT_STATUS_EVERY),
        }
    }

    /// What verbs act on when a command names no object.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Checks that every object `action` names is one the runbook lists: a name typed into a
    /// command is held to the same list as the catalog's own steps and the Role.
    ///
    /// # Errors
    /// The first object that is not listed, as `"x" is not one of the runbook's
    /// certificates (odordiff-tls)`.
    pub fn check_objects(&self, action: &Action<Bound>) -> Result<(), String> {
        for (field, shown) in action.fields() {
            let Some(key) = super::compile::object_key(&field) else {
                continue;
            };
            let listed = self.objects(key);
            if !listed.contains(&shown) {
                return Err(format!(
                    "{shown:?} is not one of the runbook's {key} ({})",
                    listed.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The objects of one kind odorbot acts on (an `objects` key such as `deployments`),
    /// in the catalog's order; empty for a kind the catalog names none of.
    pub fn objects(&self, key: &str) -> &[String] {
        self.objects.get(key).map_or(&[], Vec::as_slice)
    }

    /// Every step of every alert (investigation and recovery), procedure and query.
    pub fn all_steps(&self) -> impl Iterator<Item = &Step> {
        let alerts = self
            .alerts
            .iter()
            .flat_map(|a| a.investigation.iter().chain(&a.recovery));
        let procedures = self.procedures.iter().flat_map(|p| &p.steps);
        let queries = self.queries.iter().flat_map(|q| &q.steps);
        alerts.chain(procedures).chain(queries)
    }

    pub fn entry(&self, id: &str) -> Option<Entry<'_>> {
        self.entries().find(|e| e.id().as_str() == id)
    }

    pub fn alert(&self, id: &str) -> Option<&Alert> {
        self.alerts.iter().find(|a| a.id.as_str() == id)
    }

    pub fn procedure(&self, id: &str) -> Option<&Procedure> {
        self.procedures.iter().find(|p| p.id.as_str() == id)
    }

    pub fn checklist(&self, id: &str) -> Option<&Checklist> {
        self.checklists.iter().find(|c| c.id.as_str() == id)
    }

    /// The runbook entry for an Alertmanager alert: among the alerts whose matchers all
    /// equal the alert's labels, the one with the most matchers (the most specific), the
    /// first in the file on a tie. `None` when no entry covers the alert.
    pub fn alert_for_labels(&self, labels: &BTreeMap<String, String>) -> Option<&Alert> {
        let mut best: Option<&Alert> = None;
        for alert in self.alerts.iter().filter(|a| a.matches(labels)) {
            if best.is_none_or(|b| alert.matchers.len() > b.matchers.len()) {
                best = Some(alert);
            }
        }
        best
    }

    /// The team contact that holds a roster role.
    pub fn role(&self, role: &str) -> Option<&TeamContact> {
        self.contacts.team.iter().find(|c| c.role.as_str() == role)
    }
}

/// Any catalog entry, for listing and lookup by id.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    Alert(&'a Alert),
    Procedure(&'a Procedure),
    Query(&'a Query),
    Tracing(&'a Tracing),
    Checklist(&'a Checklist),
    Maintenance(&'a Maintenance),
}

impl<'a> Entry<'a> {
    pub fn id(&self) -> &'a EntryId {
        match self {
            Self::Alert(e) => &e.id,
            Self::Procedure(e) => &e.id,
            Self::Query(e) => &e.id,
            Self::Tracing(e) => &e.id,
            Self::Checklist(e) => &e.id,
            Self::Maintenance(e) => &e.id,
        }
    }

    pub fn title(&self) -> &'a str {
        match self {
            Self::Alert(e) => &e.title,
            Self::Procedure(e) => &e.title,
            Self::Query(e) => &e.title,
            Self::Tracing(e) => &e.title,
            Self::Checklist(e) => &e.title,
            Self::Maintenance(e) => &e.title,
        }
    }

    /// The heading in the runbook document this entry transcribes.
    pub fn source_heading(&self) -> &'a str {
        match self {
            Self::Alert(e) => &e.source_heading,
            Self::Procedure(e) => &e.source_heading,
            Self::Query(e) => &e.source_heading,
            Self::Tracing(e) => &e.source_heading,
            Self::Checklist(e) => &e.source_heading,
            Self::Maintenance(e) => &e.source_heading,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Alert(_) => "alert",
            Self::Procedure(_) => "procedure",
            Self::Query(_) => "query",
            Self::Tracing(_) => "tracing",
            Self::Checklist(_) => "checklist",
            Self::Maintenance(_) => "maintenance",
        }
    }
}

/// One runbook alert: how to recognise it, what to look at, what may fix it.
#[derive(Debug, Clone)]
pub struct Alert {
    pub id: EntryId,
    pub title: String,
    pub source_heading: String,
    /// The severity an incident opened by this alert starts with.
    pub severity: Severity,
    /// Alertmanager labels that must all be equal; always includes `alertname`.
    pub matchers: BTreeMap<String, String>,
    pub symptoms: Vec<String>,
    /// Read-only steps, run by `/odor diagnose` and when the incident opens.
    pub investigation: Vec<Step>,
    pub common_causes: Vec<Cause>,
    /// Destructive steps, offered as buttons; each needs approval.
    pub recovery: Vec<Step>,
    /// What the 15-minute status update shows.
    pub signals: Vec<LiveSignal>,
    pub see_also: Vec<EntryId>,
}

impl Alert {
    /// Whether every matcher equals the label of the same name.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    }
}

#[derive(Debug, Clone)]
pub struct Cause {
    pub cause: String,
    pub solution: Option<String>,
}

/// One step: what it is for, and the action it takes.
#[derive(Debug, Clone)]
pub struct Step {
    pub title: String,
    /// Button text; set exactly for destructive steps.
    pub label: Option<String>,
    pub action: Action<Template>,
    /// Repeat the (read-only) step for a while, e.g. watch pods after a rollback.
    pub watch: Option<Watch>,
}

impl Step {
    /// The placeholders this step needs filled in.
    pub fn params(&self) -> Vec<ParamInfo> {
        self.action.params()
    }

    /// The step's action with the supplied values.
    ///
    /// # Errors
    /// Every missing or invalid value.
    pub fn bind(
        &self,
        supplied: &BTreeMap<String, String>,
    ) -> Result<Action<Bound>, Vec<BindError>> {
        self.action.bind(supplied)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub duration: Duration,
    pub every: Duration,
}

/// A reading a status update shows for an alert's incident.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveSignal {
    /// Ready replicas against desired.
    DeploymentReady(K8sName),
    Metric(MetricSignal),
    /// A health path of the public endpoint.
    Health(HttpPath),
    /// Free space on a volume claim.
    DiskUsage(K8sName),
    Probe(ProbeSignal),
}

impl fmt::Display for LiveSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeploymentReady(d) => write!(f, "deployment_ready {d}"),
            Self::Metric(m) => write!(f, "metric {m}"),
            Self::Health(p) => write!(f, "health {p}"),
            Self::DiskUsage(p) => write!(f, "disk_usage {p}"),
            Self::Probe(p) => write!(f, "probe {p}"),
        }
    }
}

/// An operational or security procedure: steps in order.
#[derive(Debug, Clone)]
pub struct Procedure {
    pub id: EntryId,
    pub title: String,
    pub source_heading: String,
    pub category: ProcedureCategory,
    pub summary: Option<String>,
    /// A checklist to go through before starting.
    pub checklist: Option<EntryId>,
    pub steps: Vec<Step>,
    pub see_also: Vec<EntryId>,
}

impl Procedure {
    /// Whether every step binds with no value from a person, so a button can start it.
    pub fn starts_without_params(&self) -> bool {
        self.steps.iter().all(|s| s.bind(&BTreeMap::new()).is_ok())
    }

    /// Every placeholder of every step, each once (steps share values by name).
    pub fn params(&self) -> Vec<ParamInfo> {
        let mut out: Vec<ParamInfo> = Vec::new();
        for info in self.steps.iter().flat_map(Step::params) {
            if !out.iter().any(|o| o.name == info.name) {
                out.push(info);
            }
        }
        out
    }
}

/// Saved read-only queries: metrics or logs.
#[derive(Debug, Clone)]
pub struct Query {
    pub id: EntryId,
    pub title: String,
    pub source_heading: String,
    pub category: QueryCategory,
    pub steps: Vec<Step>,
}

/// Tracing lives in Jaeger's UI; odorbot only links to it.
#[derive(Debug, Clone)]
pub struct Tracing {
    pub id: EntryId,
    pub title: String,
    pub source_heading: String,
    pub ui: TracingUi,
    pub queries: Vec<TraceQuery>,
}

#[derive(Debug, Clone)]
pub struct TracingUi {
    /// Where the query service runs, for the port-forward.
    pub namespace: K8sName,
    pub service: K8sName,
    pub port: u16,
    /// The UI's address once forwarded.
    pub url: Url,
}

#[derive(Debug, Clone)]
pub struct TraceQuery {
    pub title: String,
    pub service: String,
    pub operation: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub lookback: Duration,
}

impl TraceQuery {
    /// The Jaeger search page for this query under the UI's address.
    pub fn search_url(&self, ui: &Url) -> Url {
        let mut url = ui.clone();
        url.set_path("/search");
        {
            let mut q = url.query_pairs_mut();
            q.clear();
            q.append_pair("service", &self.service);
            if let Some(op) = &self.operation {
                q.append_pair("operation", op);
            }
            if !self.tags.is_empty() {
                // Jaeger takes tags as a JSON object.
                let tags = serde_json::to_string(&self.tags).unwrap_or_default();
                q.append_pair("tags", &tags);
            }
            q.append_pair("lookback", &format_duration(self.lookback));
        }
        url
    }
}

/// A checklist people work through; odorbot posts it.
#[derive(Debug, Clone)]
pub struct Checklist {
    pub id: EntryId,
    pub title: String,
    pub source_heading: String,
    pub items: Vec<String>,
    pub see_also: Vec<EntryId>,
}

/// A recurring maintenance list; odorbot reminds the team on its schedule.
#[derive(Debug, Clone)]
pub struct Maintenance {
    pub id: EntryId,
    pub title: String,
    pub source_heading: String,
    pub schedule: Schedule,
    pub items: Vec<String>,
    pub see_also: Vec<EntryId>,
}

/// A local time of day in the catalog's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime {
    pub hour: u8,
    pub minute: u8,
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

/// When a maintenance list is due, in the catalog's time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Daily {
        at: LocalTime,
    },
    Weekly {
        weekday: Weekday,
        at: LocalTime,
    },
    /// Days 1–28 only, so the day exists in every month.
    Monthly {
        day: u8,
        at: LocalTime,
    },
    /// The first `weekday` of each listed month.
    Quarterly {
        weekday: Weekday,
        months: Vec<Month>,
        at: LocalTime,
    },
}

impl Schedule {
    pub fn frequency(&self) -> Frequency {
        match self {
            Self::Daily { .. } => Frequency::Day,
            Self::Weekly { .. } => Frequency::Week,
            Self::Monthly { .. } => Frequency::Month,
            Self::Quarterly { .. } => Frequency::Quarter,
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Daily { at } => write!(f, "daily at {at}"),
            Self::Weekly { weekday, at } => write!(f, "every {weekday} at {at}"),
            Self::Monthly { day, at } => write!(f, "monthly on day {day} at {at}"),
            Self::Quarterly {
                weekday,
                months,
                at,
            } => {
                let months: Vec<&str> = months.iter().map(|m| m.as_str()).collect();
                write!(f, "first {weekday} of {} at {at}", months.join(", "))
            }
        }
    }
}

/// The immediate response protocol.
#[derive(Debug, Clone)]
pub struct Protocol {
    pub source_heading: String,
    pub steps: Vec<ProtocolStep>,
}

#[derive(Debug, Clone)]
pub struct ProtocolStep {
    pub text: String,
    /// A deadline, e.g. acknowledge within 5 minutes.
    pub within: Option<Duration>,
    /// A cadence, e.g. status updates every 15 minutes.
    pub every: Option<Duration>,
}

impl Protocol {
    /// How often status updates are due: the first cadence the protocol sets.
    pub fn update_interval(&self) -> Option<Duration> {
        self.steps.iter().find_map(|s| s.every)
    }
}

/// The escalation matrix and the roster order it walks.
#[derive(Debug, Clone)]
pub struct Escalation {
    pub source_heading: String,
    pub path: Vec<RoleId>,
    /// One rule per severity, in severity order.
    pub(super) rules: Vec<EscalationRule>,
}

impl Escalation {
    pub fn rules(&self) -> &[EscalationRule] {
        &self.rules
    }

    /// The rule for a severity; the compiler guarantees one per severity.
    pub fn rule(&self, severity: Severity) -> &EscalationRule {
        self.rules
            .iter()
            .find(|r| r.severity == severity)
            .unwrap_or(&self.rules[0])
    }
}

#[derive(Debug, Clone)]
pub struct EscalationRule {
    pub severity: Severity,
    /// Acknowledge within this.
    pub response_time: Duration,
    /// The matrix's own words.
    pub escalation: String,
    pub escalate_after: EscalateAfter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalateAfter {
    Immediately,
    /// Unresolved for this long.
    Unresolved(Duration),
    /// Unresolved for this many business days; the calendar is configuration.
    UnresolvedBusinessDays(u32),
}

impl fmt::Display for EscalateAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Immediately => f.write_str("immediately"),
            Self::Unresolved(d) => write!(f, "after {} unresolved", format_duration(*d)),
            Self::UnresolvedBusinessDays(1) => f.write_str("after 1 business day unresolved"),
            Self::UnresolvedBusinessDays(n) => write!(f, "after {n} business days unresolved"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Contacts {
    pub team: Vec<TeamContact>,
    /// The runbook's emergency list: team roles under the names it uses.
    pub emergency: Vec<EmergencyContact>,
    pub vendors: Vec<Vendor>,
    pub external: Vec<ExternalResource>,
}

/// A roster role and how to reach it. Configuration maps roles to Slack users.
#[derive(Debug, Clone)]
pub struct TeamContact {
    pub role: RoleId,
    pub name: String,
    /// As the runbook gives it (the seed's numbers are placeholders).
    pub phone: Option<String>,
    pub email: Option<String>,
    /// A Slack handle such as `@oncall-primary`, for people reading the runbook.
    pub slack: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EmergencyContact {
    pub role: RoleId,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Vendor {
    pub name: String,
    pub email: Option<String>,
    pub support: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ExternalResource {
    pub name: String,
    /// Checked as an http(s) URL, kept as written.
    pub url: String,
}
