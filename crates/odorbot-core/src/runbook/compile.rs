//! Raw catalog in, typed catalog out, or every problem with where it is.
//!
//! Each part is checked on its own and problems are collected rather than returned at the
//! first, so one run of `odorbot check` shows everything to fix. References between
//! entries are resolved at the end, when every id is known.

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use url::Url;

use crate::domain::args::parse_duration;
use crate::domain::ids::K8sName;
use crate::domain::k8s::is_image_repository;

use super::CatalogError;
use super::actions::{Action, ActionKind, Input, LogSource, Param, ResourceLimits, Template};
use super::catalog::{
    Alert, Catalog, Cause, Checklist, Contacts, DeployTarget, EmergencyContact, EscalateAfter,
    Escalation, EscalationRule, ExternalResource, LiveSignal, LocalTime, Maintenance, Procedure,
    Protocol, ProtocolStep, Query, SECTION_IDS, Schedule, Service, Step, TeamContact, TraceQuery,
    Tracing, TracingUi, Vendor, Watch,
};
use super::raw::{
    RawAction, RawAlert, RawArg, RawCatalog, RawChecklist, RawContacts, RawDeployTarget,
    RawEscalation, RawMaintenance, RawProcedure, RawProtocol, RawQuery, RawScalar, RawSchedule,
    RawService, RawSignal, RawStep, RawTracing,
};
use super::rbac::OBJECT_KINDS;
use super::values::{
    ArgType, DataKey, EntryId, Frequency, HttpPath, MetricSignal, Month, ParamName, ProbeSignal,
    ProcedureCategory, QueryCategory, Replicas, RoleId, Severity, Weekday,
};

/// Titles and list items are one line of at most this many characters.
const MAX_LINE: usize = 200;
/// Slack truncates button text beyond 75 characters.
const MAX_LABEL: usize = 75;
/// A summary or note may be a short paragraph.
const MAX_PARAGRAPH: usize = 1000;
/// Watching more often than this adds load without adding information.
const MIN_WATCH_INTERVAL: Duration = Duration::from_secs(10);

/// Compiles a parsed catalog. Locations in the errors are paths inside the file
/// (`alerts[2] (high-error-rate).investigation[1].params.grep`); the loader prefixes the
/// file name.
///
/// # Errors
/// Every problem found, each with its location.
pub fn compile(raw: RawCatalog) -> Result<Catalog, Vec<CatalogError>> {
    let mut c = Compiler::default();
    let name = c.line("name", &raw.name);
    let source_document = c.line("source_document", &raw.source_document);
    let source_version = c.line("source_version", &raw.source_version);
    let time_zone = c.time_zone("time_zone", &raw.time_zone);
    let emergency_response = c.protocol(&raw.emergency_response);
    let escalation = c.escalation(&raw.escalation);
    let contacts = c.contacts(&raw.contacts);
    let objects = c.objects(&raw.objects);
    let service = c.service(&raw.service, &objects);

    c.non_empty("alerts", raw.alerts.len());
    c.non_empty("procedures", raw.procedures.len());
    c.non_empty("checklists", raw.checklists.len());
    let alerts: Vec<Alert> = raw
        .alerts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| c.alert(i, a))
        .collect();
    let procedures: Vec<Procedure> = raw
        .procedures
        .iter()
        .enumerate()
        .filter_map(|(i, p)| c.procedure(i, p))
        .collect();
    let queries: Vec<Query> = raw
        .queries
        .iter()
        .enumerate()
        .filter_map(|(i, q)| c.query(i, q))
        .collect();
    let tracing: Vec<Tracing> = raw
        .tracing
        .iter()
        .enumerate()
        .filter_map(|(i, t)| c.tracing(i, t))
        .collect();
    let checklists: Vec<Checklist> = raw
        .checklists
        .iter()
        .enumerate()
        .filter_map(|(i, l)| c.checklist(i, l))
        .collect();
    let maintenance: Vec<Maintenance> = raw
        .maintenance
        .iter()
        .enumerate()
        .filter_map(|(i, m)| c.maintenance(i, m))
        .collect();
    let deploy = service.as_ref().map(|s| s.deploy.as_slice());
    c.objects_known(&objects, deploy, &raw, &alerts, &procedures, &queries);
    c.matchers_distinct(&raw.alerts);
    c.resolve_references();

    let escalation = match escalation {
        Some(e) if c.errors.is_empty() => e,
        None if c.errors.is_empty() => {
            c.error("escalation.matrix", "could not be compiled");
            return Err(c.errors);
        }
        _ => return Err(c.errors),
    };
    // A missing name was reported above, so the errors are not empty then.
    let Some(service) = service else {
        return Err(c.errors);
    };
    Ok(Catalog {
        name,
        source_document,
        source_version,
        time_zone,
        emergency_response,
        escalation,
        contacts,
        objects,
        service,
        alerts,
        procedures,
        queries,
        tracing,
        checklists,
        maintenance,
    })
}

/// Compiles one action written in the catalog's step form (`type:` and `params:`), outside
/// any entry: how a stored approval request gets its typed action back through the same
/// checks the catalog's own steps pass.
///
/// # Errors
/// Every problem found, each with its location under `action`.
pub fn compile_action(raw: RawAction) -> Result<Action<Template>, Vec<CatalogError>> {
    let mut c = Compiler::default();
    match c.action("action.params", raw) {
        Some(action) if c.errors.is_empty() => Ok(action),
        _ => {
            if c.errors.is_empty() {
                c.error("action", "could not be compiled");
            }
            Err(c.errors)
        }
    }
}

/// The `objects` key an action field's object name belongs to.
pub(super) fn object_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "deployment" => "deployments",
        "service" => "services",
        "configmap" => "configmaps",
        "pvc" => "persistentvolumeclaims",
        "hpa" => "horizontalpodautoscalers",
        "cronjob" => "cronjobs",
        "quarantine_policy" => "quarantine_policies",
        "certificate" => "certificates",
        "release" => "helm_releases",
        "secret" => "secrets",
        "secret_a" | "secret_b" => "rotated_secrets",
        _ => return None,
    })
}

/// What a reference must point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Entry,
    Checklist,
    Role,
}

/// Where steps sit decides which actions they may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Read-only only: runs without approval.
    Investigation,
    /// Destructive only: each step is an approval request.
    Recovery,
    /// Both, in order.
    Procedure,
    /// Read-only only.
    Query,
}

#[derive(Default)]
struct Compiler {
    errors: Vec<CatalogError>,
    /// Every entry id and section heading seen, with where, to report duplicates.
    ids: BTreeMap<String, String>,
    headings: BTreeMap<String, String>,
    checklist_ids: BTreeSet<String>,
    roles: BTreeSet<String>,
    /// References to resolve once every id is known: (location, target, id).
    references: Vec<(String, Target, String)>,
    /// Placeholders of the entry being compiled: name → (type, what it expects, where).
    params: BTreeMap<String, (TypeId, String, String)>,
}

impl Compiler {
    fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.errors.push(CatalogError {
            location: location.into(),
            message: message.into(),
        });
    }

    fn non_empty(&mut self, location: &str, len: usize) {
        if len == 0 {
            self.error(location, "must list at least one");
        }
    }

    /// One line of text: not blank, no control characters, bounded.
    fn text(&mut self, location: &str, raw: &str, max: usize, multi_line: bool) -> String {
        let len = raw.chars().count();
        if raw.trim().is_empty() {
            self.error(location, "is empty");
        } else if len > max {
            self.error(
                location,
                format!("is {len} characters long; at most {max} are allowed"),
            );
        } else if raw
            .chars()
            .any(|c| c.is_control() && !(multi_line && c == '\n'))
        {
            self.error(location, "contains a control character or a line break");
        }
        raw.to_owned()
    }

    /// The `objects` section: known kinds, valid names, none twice.
    fn objects(&mut self, raw: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for (key, names) in raw {
            let location = format!("objects.{key}");
            if !OBJECT_KINDS.iter().any(|(k, _)| k == key) {
                let known: Vec<&str> = OBJECT_KINDS.iter().map(|(k, _)| *k).collect();
                self.error(
                    location,
                    format!("is not a kind of object; use one of {}", known.join(", ")),
                );
                continue;
            }
            let mut kept: Vec<String> = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let at = format!("{location}[{i}]");
                if self.parse::<K8sName>(&at, name).is_none() {
                    continue;
                }
                if kept.contains(name) {
                    self.error(at, format!("{name:?} is listed twice"));
                    continue;
                }
                kept.push(name.clone());
            }
            out.insert(key.clone(), kept);
        }
        out
    }

    /// `service.deploy`: listed deployments, each once, with a container and a bare
    /// repository.
    fn deploy_targets(
        &mut self,
        raw: &[RawDeployTarget],
        objects: &BTreeMap<String, Vec<String>>,
    ) -> Option<Vec<DeployTarget>> {
        let mut out: Vec<DeployTarget> = Vec::new();
        let mut ok = true;
        for (i, t) in raw.iter().enumerate() {
            let at = format!("service.deploy[{i}]");
            let deployment = self.parse::<K8sName>(&format!("{at}.deployment"), &t.deployment);
            let container = self.parse::<K8sName>(&format!("{at}.container"), &t.container);
            let listed = objects
                .get("deployments")
                .is_some_and(|names| names.contains(&t.deployment));
            if deployment.is_some() && !listed {
                self.error(
                    format!("{at}.deployment"),
                    format!("{:?} is not listed under objects.deployments", t.deployment),
                );
            }
            if !is_image_repository(&t.repository) {
                self.error(
                    format!("{at}.repository"),
                    format!(
                        "{:?} is not an image repository (lower case, without a tag or digest)",
                        t.repository
                    ),
                );
            }
            if out.iter().any(|o| o.deployment.as_str() == t.deployment) {
                self.error(
                    format!("{at}.deployment"),
                    format!("{:?} is listed twice", t.deployment),
                );
                ok = false;
            }
            match (deployment, container) {
                (Some(deployment), Some(container))
                    if listed && is_image_repository(&t.repository) =>
                {
                    out.push(DeployTarget {
                        deployment,
                        container,
                        repository: t.repository.clone(),
                    });
                }
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The `service` section: each name valid and listed under its `objects` kind.
    fn service(
        &mut self,
        raw: &RawService,
        objects: &BTreeMap<String, Vec<String>>,
    ) -> Option<Service> {
        let mut name = |field: &str, key: &str, value: &str| {
            let at = format!("service.{field}");
            let parsed = self.parse::<K8sName>(&at, value)?;
            if !objects
                .get(key)
                .is_some_and(|names| names.iter().any(|n| n == value))
            {
                self.error(at, format!("{value:?} is not listed under objects.{key}"));
                return None;
            }
            Some(parsed)
        };
        let api = name("api", "deployments", &raw.api);
        let pgbouncer = name("pgbouncer", "deployments", &raw.pgbouncer);
        let helm_release = name("helm_release", "helm_releases", &raw.helm_release);
        let config = name("config", "configmaps", &raw.config);
        let cache_warming = name("cache_warming", "cronjobs", &raw.cache_warming);
        let logs_cleanup = name("logs_cleanup", "cronjobs", &raw.logs_cleanup);
        let smoke_tests = name("smoke_tests", "cronjobs", &raw.smoke_tests);
        let quarantine_policy = name(
            "quarantine_policy",
            "quarantine_policies",
            &raw.quarantine_policy,
        );
        let certificate = name("certificate", "certificates", &raw.certificate);
        let deploy = self.deploy_targets(&raw.deploy, objects);
        let cache_ttl_key = self.parse::<DataKey>("service.cache_ttl_key", &raw.cache_ttl_key);
        Some(Service {
            api: api?,
            pgbouncer: pgbouncer?,
            helm_release: helm_release?,
            config: config?,
            cache_ttl_key: cache_ttl_key?,
            cache_warming: cache_warming?,
            logs_cleanup: logs_cleanup?,
            smoke_tests: smoke_tests?,
            quarantine_policy: quarantine_policy?,
            certificate: certificate?,
            deploy: deploy?,
        })
    }

    /// Every object name a step fixes is one the `objects` section lists, so the Role
    /// generated from it covers every step; a `set_image` step sets the container
    /// `service.deploy` names for its deployment, as `/odor deploy` does.
    fn objects_known(
        &mut self,
        objects: &BTreeMap<String, Vec<String>>,
        deploy: Option<&[DeployTarget]>,
        raw: &RawCatalog,
        alerts: &[Alert],
        procedures: &[Procedure],
        queries: &[Query],
    ) {
        let mut steps: Vec<(String, &Step)> = Vec::new();
        // Entries that failed to compile are left out of these lists, so an entry's
        // index is found by its id in the raw order the other errors use.
        fn at<'a>(mut ids: impl Iterator<Item = &'a String>, id: &str) -> usize {
            ids.position(|r| r == id).unwrap_or_default()
        }
        for a in alerts {
            let n = at(raw.alerts.iter().map(|r| &r.id), a.id.as_str());
            for (i, s) in a.investigation.iter().enumerate() {
                steps.push((format!("alerts[{n}] ({}).investigation[{i}]", a.id), s));
            }
            for (i, s) in a.recovery.iter().enumerate() {
                steps.push((format!("alerts[{n}] ({}).recovery[{i}]", a.id), s));
            }
        }
        for p in procedures {
            let n = at(raw.procedures.iter().map(|r| &r.id), p.id.as_str());
            for (i, s) in p.steps.iter().enumerate() {
                steps.push((format!("procedures[{n}] ({}).steps[{i}]", p.id), s));
            }
        }
        for q in queries {
            let n = at(raw.queries.iter().map(|r| &r.id), q.id.as_str());
            for (i, s) in q.steps.iter().enumerate() {
                steps.push((format!("queries[{n}] ({}).steps[{i}]", q.id), s));
            }
        }
        for (location, step) in steps {
            if let (
                Some(deploy),
                Action::SetImage {
                    deployment: Input::Fixed(d),
                    container: Input::Fixed(c),
                    ..
                },
            ) = (deploy, &step.action)
            {
                match deploy.iter().find(|t| &t.deployment == d) {
                    None => self.error(
                        format!("{location}.params.deployment"),
                        format!("{:?} is not listed under service.deploy", d.as_str()),
                    ),
                    Some(t) if &t.container != c => self.error(
                        format!("{location}.params.container"),
                        format!(
                            "{:?} is not the container service.deploy names for {d} ({:?})",
                            c.as_str(),
                            t.container.as_str()
                        ),
                    ),
                    Some(_) => {}
                }
            }
            for (field, shown) in step.action.fields() {
                let Some(key) = object_key(&field) else {
                    continue;
                };
                // A placeholder's value comes from a person and is checked when bound.
                if shown.starts_with('<') {
                    continue;
                }
                if !objects.get(key).is_some_and(|names| names.contains(&shown)) {
                    self.error(
                        format!("{location}.params.{field}"),
                        format!("{shown:?} is not listed under objects.{key}"),
                    );
                }
            }
        }
    }

    fn line(&mut self, location: &str, raw: &str) -> String {
        self.text(location, raw, MAX_LINE, false)
    }

    fn lines(&mut self, location: &str, raw: &[String]) -> Vec<String> {
        raw.iter()
            .enumerate()
            .map(|(i, s)| self.line(&format!("{location}[{i}]"), s))
            .collect()
    }

    fn parse<T: ArgType>(&mut self, location: &str, raw: &str) -> Option<T> {
        match T::parse_arg(raw) {
            Ok(v) => Some(v),
            Err(why) => {
                self.error(location, format!("{raw:?} {why}"));
                None
            }
        }
    }

    fn duration(&mut self, location: &str, raw: &str) -> Option<Duration> {
        self.parse::<Duration>(location, raw)
    }

    fn scalar<T: ArgType>(&mut self, location: &str, raw: &RawScalar) -> Option<T> {
        if raw.fractional {
            self.error(
                location,
                format!(
                    "{} is read by YAML as a fractional number; quote it so it is kept exactly as written",
                    raw.text
                ),
            );
            return None;
        }
        self.parse(location, &raw.text)
    }

    /// An id that is also registered as unique across the catalog.
    fn entry_id(&mut self, location: &str, raw: &str) -> Option<EntryId> {
        let id = self.parse::<EntryId>(&format!("{location}.id"), raw)?;
        if SECTION_IDS.contains(&raw) {
            self.error(
                format!("{location}.id"),
                format!("{raw:?} names a catalog section; choose another id"),
            );
        }
        if let Some(first) = self.ids.get(raw) {
            let first = first.clone();
            self.error(
                format!("{location}.id"),
                format!("{raw:?} is already the id of {first}"),
            );
        } else {
            self.ids.insert(raw.to_owned(), location.to_owned());
        }
        Some(id)
    }

    fn heading(&mut self, location: &str, raw: &str) -> String {
        let heading = self.line(&format!("{location}.source_heading"), raw);
        if let Some(first) = self.headings.get(raw) {
            let first = first.clone();
            self.error(
                format!("{location}.source_heading"),
                format!("{raw:?} is already the source of {first}"),
            );
        } else {
            self.headings.insert(raw.to_owned(), location.to_owned());
        }
        heading
    }

    fn refer(&mut self, location: String, target: Target, raw: &str) {
        self.references.push((location, target, raw.to_owned()));
    }

    fn see_also(&mut self, location: &str, raw: &[String]) -> Vec<EntryId> {
        raw.iter()
            .enumerate()
            .filter_map(|(i, id)| {
                let at = format!("{location}.see_also[{i}]");
                self.refer(at.clone(), Target::Entry, id);
                self.parse(&at, id)
            })
            .collect()
    }

    fn resolve_references(&mut self) {
        for (location, target, id) in std::mem::take(&mut self.references) {
            let (known, what) = match target {
                Target::Entry => (self.ids.contains_key(&id), "catalog entry"),
                Target::Checklist => (self.checklist_ids.contains(&id), "checklist"),
                Target::Role => (self.roles.contains(&id), "role in contacts.team"),
            };
            if !known {
                self.error(location, format!("{id:?} is not a {what}"));
            }
        }
    }

    fn time_zone(&mut self, location: &str, raw: &str) -> String {
        // The shape of an IANA name; the scheduler resolves it against the time-zone
        // database of the machine it runs on.
        let ok = (1..=64).contains(&raw.len())
            && raw.split('/').all(|part| {
                part.starts_with(|c: char| c.is_ascii_uppercase())
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'))
            });
        if !ok {
            self.error(
                location,
                format!("{raw:?} is not a time zone name such as UTC or Europe/Berlin"),
            );
        }
        raw.to_owned()
    }

    fn protocol(&mut self, raw: &RawProtocol) -> Protocol {
        let at = "emergency_response";
        let source_heading = self.heading(at, &raw.source_heading);
        self.non_empty(&format!("{at}.steps"), raw.steps.len());
        let steps = raw
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let loc = format!("{at}.steps[{i}]");
                ProtocolStep {
                    text: self.line(&format!("{loc}.text"), &s.text),
                    within: s
                        .within
                        .as_ref()
                        .and_then(|w| self.duration(&format!("{loc}.within"), w)),
                    every: s
                        .every
                        .as_ref()
                        .and_then(|e| self.duration(&format!("{loc}.every"), e)),
                }
            })
            .collect();
        Protocol {
            source_heading,
            steps,
        }
    }

    fn escalation(&mut self, raw: &RawEscalation) -> Option<Escalation> {
        let at = "escalation";
        let source_heading = self.heading(at, &raw.source_heading);
        self.non_empty(&format!("{at}.path"), raw.path.len());
        let path: Vec<RoleId> = raw
            .path
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let loc = format!("{at}.path[{i}]");
                self.refer(loc.clone(), Target::Role, r);
                self.parse(&loc, r)
            })
            .collect();
        let mut rules: Vec<EscalationRule> = Vec::new();
        for (i, row) in raw.matrix.iter().enumerate() {
            let loc = format!("{at}.matrix[{i}]");
            let severity = self.parse::<Severity>(&format!("{loc}.severity"), &row.severity);
            let response_time = self.duration(&format!("{loc}.response_time"), &row.response_time);
            let escalation = self.line(&format!("{loc}.escalation"), &row.escalation);
            let escalate_after =
                self.escalate_after(&format!("{loc}.escalate_after"), &row.escalate_after);
            let (Some(severity), Some(response_time), Some(escalate_after)) =
                (severity, response_time, escalate_after)
            else {
                continue;
            };
            if rules.iter().any(|r| r.severity == severity) {
                self.error(
                    format!("{loc}.severity"),
                    format!("{severity} is already in the matrix"),
                );
                continue;
            }
            rules.push(EscalationRule {
                severity,
                response_time,
                escalation,
                escalate_after,
            });
        }
        for severity in Severity::ALL {
            // A row that names the severity but failed to compile is already reported.
            if !raw.matrix.iter().any(|r| r.severity == severity.name()) {
                self.error(
                    format!("{at}.matrix"),
                    format!("has no row for {severity}; every severity needs one"),
                );
            }
        }
        rules.sort_by_key(|r| r.severity);
        (rules.len() == Severity::ALL.len()).then_some(Escalation {
            source_heading,
            path,
            rules,
        })
    }

    fn escalate_after(&mut self, location: &str, raw: &str) -> Option<EscalateAfter> {
        if raw == "immediately" {
            return Some(EscalateAfter::Immediately);
        }
        let days = raw
            .strip_suffix(" business days")
            .or_else(|| raw.strip_suffix(" business day"));
        if let Some(n) = days {
            return match n.parse::<u32>() {
                Ok(n @ 1..=30) => Some(EscalateAfter::UnresolvedBusinessDays(n)),
                _ => {
                    self.error(location, format!("{raw:?} needs 1 to 30 business days"));
                    None
                }
            };
        }
        match parse_duration(raw) {
            Ok(d) => Some(EscalateAfter::Unresolved(d)),
            Err(_) => {
                self.error(
                    location,
                    format!(
                        "{raw:?} is not immediately, a duration such as 30m, or N business days"
                    ),
                );
                None
            }
        }
    }

    fn contacts(&mut self, raw: &RawContacts) -> Contacts {
        let at = "contacts";
        self.non_empty(&format!("{at}.team"), raw.team.len());
        let mut team = Vec::new();
        for (i, t) in raw.team.iter().enumerate() {
            let loc = format!("{at}.team[{i}]");
            let role = self.parse::<RoleId>(&format!("{loc}.role"), &t.role);
            if !self.roles.insert(t.role.clone()) {
                self.error(
                    format!("{loc}.role"),
                    format!("{:?} is listed twice", t.role),
                );
            }
            let name = self.line(&format!("{loc}.name"), &t.name);
            let phone = t
                .phone
                .as_ref()
                .map(|p| self.phone(&format!("{loc}.phone"), p));
            let email = t
                .email
                .as_ref()
                .map(|e| self.email(&format!("{loc}.email"), e));
            let slack = t
                .slack
                .as_ref()
                .map(|s| self.slack_handle(&format!("{loc}.slack"), s));
            if t.phone.is_none() && t.email.is_none() && t.slack.is_none() {
                self.error(&loc, "needs a phone, an email or a Slack handle");
            }
            if let Some(role) = role {
                team.push(TeamContact {
                    role,
                    name,
                    phone,
                    email,
                    slack,
                });
            }
        }
        let emergency = raw
            .emergency
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let loc = format!("{at}.emergency[{i}]");
                self.refer(format!("{loc}.role"), Target::Role, &e.role);
                let label = self.line(&format!("{loc}.label"), &e.label);
                Some(EmergencyContact {
                    role: self.parse(&format!("{loc}.role"), &e.role)?,
                    label,
                })
            })
            .collect();
        let vendors = raw
            .vendors
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let loc = format!("{at}.vendors[{i}]");
                if v.email.is_none() && v.support.is_none() {
                    self.error(&loc, "needs an email or where support is found");
                }
                Vendor {
                    name: self.line(&format!("{loc}.name"), &v.name),
                    email: v
                        .email
                        .as_ref()
                        .map(|e| self.email(&format!("{loc}.email"), e)),
                    support: v
                        .support
                        .as_ref()
                        .map(|s| self.line(&format!("{loc}.support"), s)),
                }
            })
            .collect();
        let external = raw
            .external
            .iter()
            .enumerate()
            .filter_map(|(i, x)| {
                let loc = format!("{at}.external[{i}]");
                let name = self.line(&format!("{loc}.name"), &x.name);
                self.url(&format!("{loc}.url"), &x.url)?;
                Some(ExternalResource {
                    name,
                    url: x.url.clone(),
                })
            })
            .collect();
        Contacts {
            team,
            emergency,
            vendors,
            external,
        }
    }

    fn phone(&mut self, location: &str, raw: &str) -> String {
        // Kept as written (the runbook's numbers are placeholders such as
        // +1-XXX-XXX-XXXX); only the characters a phone number uses are allowed.
        let ok = (3..=40).contains(&raw.len())
            && raw.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b' ' | b'(' | b')' | b'.')
            });
        if !ok {
            self.error(location, format!("{raw:?} is not a phone number"));
        }
        raw.to_owned()
    }

    fn email(&mut self, location: &str, raw: &str) -> String {
        let ok = raw.len() <= 254
            && raw.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty()
                    && !user.contains(char::is_whitespace)
                    && domain.contains('.')
                    && domain.parse::<K8sName>().is_ok()
            });
        if !ok {
            self.error(location, format!("{raw:?} is not an email address"));
        }
        raw.to_owned()
    }

    fn slack_handle(&mut self, location: &str, raw: &str) -> String {
        let ok = raw.strip_prefix('@').is_some_and(|h| {
            (1..=80).contains(&h.len())
                && h.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
                })
        });
        if !ok {
            self.error(
                location,
                format!("{raw:?} is not a Slack handle such as @oncall-primary"),
            );
        }
        raw.to_owned()
    }

    fn url(&mut self, location: &str, raw: &str) -> Option<Url> {
        match Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Some(u),
            _ => {
                self.error(location, format!("{raw:?} is not an http(s) URL"));
                None
            }
        }
    }

    fn alert(&mut self, i: usize, raw: &RawAlert) -> Option<Alert> {
        let at = format!("alerts[{i}] ({})", raw.id);
        self.params.clear();
        let id = self.entry_id(&at, &raw.id);
        let title = self.line(&format!("{at}.title"), &raw.title);
        let source_heading = self.heading(&at, &raw.source_heading);
        let severity = self.parse::<Severity>(&format!("{at}.severity"), &raw.severity);
        let matchers = self.matchers(&format!("{at}.matchers"), &raw.matchers);
        let symptoms = self.lines(&format!("{at}.symptoms"), &raw.symptoms);
        self.non_empty(&format!("{at}.investigation"), raw.investigation.len());
        let investigation = self.steps(
            &format!("{at}.investigation"),
            &raw.investigation,
            Section::Investigation,
        );
        let common_causes = raw
            .common_causes
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let loc = format!("{at}.common_causes[{j}]");
                Cause {
                    cause: self.line(&format!("{loc}.cause"), &c.cause),
                    solution: c
                        .solution
                        .as_ref()
                        .map(|s| self.line(&format!("{loc}.solution"), s)),
                }
            })
            .collect();
        let recovery = self.steps(&format!("{at}.recovery"), &raw.recovery, Section::Recovery);
        self.non_empty(&format!("{at}.signals"), raw.signals.len());
        let signals = raw
            .signals
            .iter()
            .enumerate()
            .filter_map(|(j, s)| self.signal(&format!("{at}.signals[{j}]"), s))
            .collect();
        let see_also = self.see_also(&at, &raw.see_also);
        Some(Alert {
            id: id?,
            title,
            source_heading,
            severity: severity?,
            matchers,
            symptoms,
            investigation,
            common_causes,
            recovery,
            signals,
            see_also,
        })
    }

    fn matchers(
        &mut self,
        location: &str,
        raw: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        for (name, value) in raw {
            let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !name_ok {
                self.error(
                    format!("{location}.{name}"),
                    "is not a Prometheus label name (letters, digits, '_', not starting with a digit)",
                );
            }
            if value.is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
                self.error(
                    format!("{location}.{name}"),
                    "must be one line of 1 to 200 characters",
                );
            }
        }
        // Without an alertname an entry would claim every alert of the namespace.
        if !raw.contains_key("alertname") {
            self.error(location, "must include alertname");
        }
        raw.clone()
    }

    fn matchers_distinct(&mut self, alerts: &[RawAlert]) {
        for (i, a) in alerts.iter().enumerate() {
            if let Some((j, b)) = alerts[..i]
                .iter()
                .enumerate()
                .find(|(_, b)| b.matchers == a.matchers)
            {
                self.error(
                    format!("alerts[{i}] ({}).matchers", a.id),
                    format!("are the same as those of alerts[{j}] ({}); an alert could not tell them apart", b.id),
                );
            }
        }
    }

    fn signal(&mut self, location: &str, raw: &RawSignal) -> Option<LiveSignal> {
        let given = [
            raw.deployment_ready.is_some(),
            raw.metric.is_some(),
            raw.health.is_some(),
            raw.disk_usage.is_some(),
            raw.probe.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.error(
                location,
                "needs exactly one of deployment_ready, metric, health, disk_usage, probe",
            );
            return None;
        }
        if let Some(d) = &raw.deployment_ready {
            return self
                .parse::<K8sName>(&format!("{location}.deployment_ready"), d)
                .map(LiveSignal::DeploymentReady);
        }
        if let Some(m) = &raw.metric {
            return self
                .parse::<MetricSignal>(&format!("{location}.metric"), m)
                .map(LiveSignal::Metric);
        }
        if let Some(p) = &raw.health {
            return self
                .parse::<HttpPath>(&format!("{location}.health"), p)
                .map(LiveSignal::Health);
        }
        if let Some(p) = &raw.disk_usage {
            return self
                .parse::<K8sName>(&format!("{location}.disk_usage"), p)
                .map(LiveSignal::DiskUsage);
        }
        let p = raw.probe.as_deref().unwrap_or_default();
        self.parse::<ProbeSignal>(&format!("{location}.probe"), p)
            .map(LiveSignal::Probe)
    }

    fn procedure(&mut self, i: usize, raw: &RawProcedure) -> Option<Procedure> {
        let at = format!("procedures[{i}] ({})", raw.id);
        self.params.clear();
        let id = self.entry_id(&at, &raw.id);
        let title = self.line(&format!("{at}.title"), &raw.title);
        let source_heading = self.heading(&at, &raw.source_heading);
        let category = self.parse::<ProcedureCategory>(&format!("{at}.category"), &raw.category);
        let summary = raw
            .summary
            .as_ref()
            .map(|s| self.text(&format!("{at}.summary"), s, MAX_PARAGRAPH, true));
        let checklist = raw.checklist.as_ref().and_then(|c| {
            let loc = format!("{at}.checklist");
            self.refer(loc.clone(), Target::Checklist, c);
            self.parse(&loc, c)
        });
        self.non_empty(&format!("{at}.steps"), raw.steps.len());
        let steps = self.steps(&format!("{at}.steps"), &raw.steps, Section::Procedure);
        let see_also = self.see_also(&at, &raw.see_also);
        Some(Procedure {
            id: id?,
            title,
            source_heading,
            category: category?,
            summary,
            checklist,
            steps,
            see_also,
        })
    }

    fn query(&mut self, i: usize, raw: &RawQuery) -> Option<Query> {
        let at = format!("queries[{i}] ({})", raw.id);
        self.params.clear();
        let id = self.entry_id(&at, &raw.id);
        let title = self.line(&format!("{at}.title"), &raw.title);
        let source_heading = self.heading(&at, &raw.source_heading);
        let category = self.parse::<QueryCategory>(&format!("{at}.category"), &raw.category);
        self.non_empty(&format!("{at}.steps"), raw.steps.len());
        let steps = self.steps(&format!("{at}.steps"), &raw.steps, Section::Query);
        Some(Query {
            id: id?,
            title,
            source_heading,
            category: category?,
            steps,
        })
    }

    fn tracing(&mut self, i: usize, raw: &RawTracing) -> Option<Tracing> {
        let at = format!("tracing[{i}] ({})", raw.id);
        let id = self.entry_id(&at, &raw.id);
        let title = self.line(&format!("{at}.title"), &raw.title);
        let source_heading = self.heading(&at, &raw.source_heading);
        let namespace = self.parse::<K8sName>(&format!("{at}.ui.namespace"), &raw.ui.namespace);
        let service = self.parse::<K8sName>(&format!("{at}.ui.service"), &raw.ui.service);
        let url = self.url(&format!("{at}.ui.url"), &raw.ui.url);
        if raw.ui.port == 0 {
            self.error(format!("{at}.ui.port"), "must be a port from 1 to 65535");
        }
        self.non_empty(&format!("{at}.queries"), raw.queries.len());
        let queries = raw
            .queries
            .iter()
            .enumerate()
            .filter_map(|(j, q)| {
                let loc = format!("{at}.queries[{j}]");
                let title = self.line(&format!("{loc}.title"), &q.title);
                let service = self.line(&format!("{loc}.service"), &q.service);
                let operation = q
                    .operation
                    .as_ref()
                    .map(|o| self.line(&format!("{loc}.operation"), o));
                for (k, v) in &q.tags {
                    self.line(&format!("{loc}.tags.{k}"), v);
                }
                Some(TraceQuery {
                    title,
                    service,
                    operation,
                    tags: q.tags.clone(),
                    lookback: self.duration(&format!("{loc}.lookback"), &q.lookback)?,
                })
            })
            .collect();
        Some(Tracing {
            id: id?,
            title,
            source_heading,
            ui: TracingUi {
                namespace: namespace?,
                service: service?,
                port: raw.ui.port,
                url: url?,
            },
            queries,
        })
    }

    fn checklist(&mut self, i: usize, raw: &RawChecklist) -> Option<Checklist> {
        let at = format!("checklists[{i}] ({})", raw.id);
        let id = self.entry_id(&at, &raw.id);
        self.checklist_ids.insert(raw.id.clone());
        let title = self.line(&format!("{at}.title"), &raw.title);
        let source_heading = self.heading(&at, &raw.source_heading);
        self.non_empty(&format!("{at}.items"), raw.items.len());
        let items = self.lines(&format!("{at}.items"), &raw.items);
        let see_also = self.see_also(&at, &raw.see_also);
        Some(Checklist {
            id: id?,
            title,
            source_heading,
            items,
            see_also,
        })
    }

    fn maintenance(&mut self, i: usize, raw: &RawMaintenance) -> Option<Maintenance> {
        let at = format!("maintenance[{i}] ({})", raw.id);
        let id = self.entry_id(&at, &raw.id);
        let title = self.line(&format!("{at}.title"), &raw.title);
        let source_heading = self.heading(&at, &raw.source_heading);
        let schedule = self.schedule(&format!("{at}.schedule"), &raw.schedule);
        self.non_empty(&format!("{at}.items"), raw.items.len());
        let items = self.lines(&format!("{at}.items"), &raw.items);
        let see_also = self.see_also(&at, &raw.see_also);
        Some(Maintenance {
            id: id?,
            title,
            source_heading,
            schedule: schedule?,
            items,
            see_also,
        })
    }

    fn schedule(&mut self, location: &str, raw: &RawSchedule) -> Option<Schedule> {
        let every = self.parse::<Frequency>(&format!("{location}.every"), &raw.every);
        let at = self.local_time(&format!("{location}.at"), &raw.at);
        let weekday = raw
            .weekday
            .as_ref()
            .and_then(|w| self.parse::<Weekday>(&format!("{location}.weekday"), w));
        let months: Option<Vec<Month>> = raw.months.as_ref().map(|ms| {
            ms.iter()
                .enumerate()
                .filter_map(|(i, m)| self.parse::<Month>(&format!("{location}.months[{i}]"), m))
                .collect()
        });
        // Without a frequency the other fields cannot be judged; `at` is checked either way.
        let every = every?;
        // Each frequency takes exactly the fields that pin it down.
        let (needs_weekday, needs_day, needs_months) = match every {
            Frequency::Day => (false, false, false),
            Frequency::Week => (true, false, false),
            Frequency::Month => (false, true, false),
            Frequency::Quarter => (true, false, true),
        };
        let mut ok = true;
        for (field, needed, given) in [
            ("weekday", needs_weekday, raw.weekday.is_some()),
            ("day", needs_day, raw.day.is_some()),
            ("months", needs_months, raw.months.is_some()),
        ] {
            if needed != given {
                ok = false;
                let verb = if needed { "needs" } else { "takes no" };
                self.error(location, format!("a schedule every {every} {verb} {field}"));
            }
        }
        let day = match raw.day {
            Some(d @ 1..=28) => d as u8,
            Some(d) => {
                self.error(
                    format!("{location}.day"),
                    format!(
                        "{d} is not a day from 1 to 28 (later days are missing in some months)"
                    ),
                );
                ok = false;
                1
            }
            None => 1,
        };
        if let Some(ms) = &months {
            let distinct: BTreeSet<_> = ms.iter().collect();
            if ms.len() != 4 || distinct.len() != 4 {
                self.error(
                    format!("{location}.months"),
                    "a quarterly schedule lists four different months",
                );
                ok = false;
            }
        }
        let at = at?;
        if !ok {
            return None;
        }
        Some(match every {
            Frequency::Day => Schedule::Daily { at },
            Frequency::Week => Schedule::Weekly {
                weekday: weekday?,
                at,
            },
            Frequency::Month => Schedule::Monthly { day, at },
            Frequency::Quarter => Schedule::Quarterly {
                weekday: weekday?,
                months: months?,
                at,
            },
        })
    }

    fn local_time(&mut self, location: &str, raw: &str) -> Option<LocalTime> {
        let parsed = raw.split_once(':').and_then(|(h, m)| {
            let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
            if !two_digits(h) || !two_digits(m) {
                return None;
            }
            let (hour, minute) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
            (hour < 24 && minute < 60).then_some(LocalTime { hour, minute })
        });
        if parsed.is_none() {
            self.error(
                location,
                format!("{raw:?} is not a time of day such as 09:00"),
            );
        }
        parsed
    }

    fn steps(&mut self, location: &str, raw: &[RawStep], section: Section) -> Vec<Step> {
        raw.iter()
            .enumerate()
            .filter_map(|(i, s)| self.step(&format!("{location}[{i}]"), s, section))
            .collect()
    }

    fn step(&mut self, location: &str, raw: &RawStep, section: Section) -> Option<Step> {
        let title = self.line(&format!("{location}.title"), &raw.title);
        let Some(kind) = ActionKind::from_tag(&raw.kind) else {
            let hint = closest_tag(&raw.kind)
                .map(|t| format!("; did you mean {t:?}?"))
                .unwrap_or_default();
            self.error(
                format!("{location}.type"),
                format!("{:?} is not an action type{hint}", raw.kind),
            );
            return None;
        };
        let destructive = kind.is_destructive();
        match section {
            Section::Investigation | Section::Query if destructive => {
                let place = if section == Section::Query { "query" } else { "investigation" };
                self.error(
                    format!("{location}.type"),
                    format!("{kind} changes the cluster; {place} steps must be read-only"),
                );
            }
            Section::Recovery if !destructive => self.error(
                format!("{location}.type"),
                format!("{kind} is read-only; recovery steps are actions that need approval (put it under investigation)"),
            ),
            _ => {}
        }
        let label = match (&raw.label, destructive) {
            (Some(l), true) => Some(self.text(&format!("{location}.label"), l, MAX_LABEL, false)),
            (None, true) => {
                self.error(
                    location,
                    "is destructive and needs a label for its approval button",
                );
                None
            }
            (Some(_), false) => {
                self.error(
                    format!("{location}.label"),
                    "only destructive steps have buttons; remove the label",
                );
                None
            }
            (None, false) => None,
        };
        let watch = raw.watch.as_ref().and_then(|w| {
            let loc = format!("{location}.watch");
            if destructive {
                self.error(&loc, "only read-only steps can be repeated");
            }
            let duration = self.duration(&format!("{loc}.for"), &w.duration);
            let every = self.duration(&format!("{loc}.every"), &w.every);
            let (duration, every) = (duration?, every?);
            if every < MIN_WATCH_INTERVAL || every >= duration {
                self.error(
                    &loc,
                    format!(
                        "every must be at least {}s and shorter than for",
                        MIN_WATCH_INTERVAL.as_secs()
                    ),
                );
            }
            Some(Watch { duration, every })
        });
        let params_at = format!("{location}.params");
        let raw_action = match RawAction::from_step(kind.tag(), &raw.params) {
            Ok(a) => a,
            Err(e) => {
                self.error(params_at, e);
                return None;
            }
        };
        let action = self.action(&params_at, raw_action)?;
        if let Action::Notify { role } = &action {
            match role {
                Input::Fixed(r) => {
                    self.refer(format!("{params_at}.role"), Target::Role, r.as_str());
                    // A notify step pages the role through the roster.
                    if crate::domain::roster::Role::from_catalog(r.as_str()).is_none() {
                        self.error(
                            format!("{params_at}.role"),
                            "is no roster role, so nobody could be paged",
                        );
                    }
                }
                Input::Param(_) => self.error(
                    format!("{params_at}.role"),
                    "is decided by the catalog, not at request time",
                ),
            }
        }
        Some(Step {
            title,
            label,
            action,
            watch,
        })
    }

    /// A parameter the action cannot do without.
    fn req<T: ArgType>(&mut self, params: &str, name: &str, raw: &RawArg) -> Option<Input<T>> {
        self.input(&format!("{params}.{name}"), raw, false)
    }

    /// The CronJob and optional Job name of an action that starts a Job by hand; both
    /// are checked before either error is returned.
    fn manual_job(
        &mut self,
        params: &str,
        cronjob: &RawArg,
        job_name: Option<&RawArg>,
    ) -> Option<(Input<K8sName>, Option<Input<K8sName>>)> {
        let cronjob = self.req(params, "cronjob", cronjob);
        let job_name = self.opt(params, "job_name", job_name);
        Some((cronjob?, job_name?))
    }

    /// A parameter the action can do without: `Some(None)` when absent.
    fn opt<T: ArgType>(
        &mut self,
        params: &str,
        name: &str,
        raw: Option<&RawArg>,
    ) -> Option<Option<Input<T>>> {
        match raw {
            None => Some(None),
            Some(r) => self.input(&format!("{params}.{name}"), r, true).map(Some),
        }
    }

    fn input<T: ArgType>(
        &mut self,
        location: &str,
        raw: &RawArg,
        optional_field: bool,
    ) -> Option<Input<T>> {
        let p = match raw {
            RawArg::Fixed(s) => return self.scalar(location, s).map(Input::Fixed),
            RawArg::Param(p) => p,
        };
        let name = self.parse::<ParamName>(&format!("{location}.param"), &p.param);
        let min = p
            .min
            .as_ref()
            .and_then(|v| self.scalar::<T>(&format!("{location}.min"), v));
        let max = p
            .max
            .as_ref()
            .and_then(|v| self.scalar::<T>(&format!("{location}.max"), v));
        let default = p
            .default
            .as_ref()
            .and_then(|v| self.scalar::<T>(&format!("{location}.default"), v));
        let bad_bound = p.min.is_some() && min.is_none()
            || p.max.is_some() && max.is_none()
            || p.default.is_some() && default.is_none();
        let name = name?;
        if bad_bound {
            return None;
        }
        let unordered = [&min, &max]
            .into_iter()
            .flatten()
            .any(|v| v.order_key().is_none());
        if unordered {
            self.error(
                location,
                format!(
                    "min and max apply to numbers, durations and quantities, not to {}",
                    T::expected()
                ),
            );
            return None;
        }
        if let (Some(l), Some(h)) = (&min, &max)
            && l.order_key() > h.order_key()
        {
            self.error(
                location,
                format!("min {} is above max {}", l.render(), h.render()),
            );
            return None;
        }
        if p.optional && !optional_field {
            self.error(
                format!("{location}.optional"),
                "this parameter cannot be left out; give a default instead",
            );
        }
        if p.optional && p.default.is_some() {
            self.error(
                format!("{location}.optional"),
                "a parameter with a default is never left out; drop one of them",
            );
        }
        let param = Param {
            name: name.clone(),
            min,
            max,
            default: None,
            optional: p.optional,
        };
        if let Some(d) = &default
            && let Err(why) = param.accept(&d.render())
        {
            self.error(
                format!("{location}.default"),
                format!("{} {why}", d.render()),
            );
        }
        // Steps of one entry share a value by name, so the name must mean one type.
        let type_id = TypeId::of::<T>();
        match self.params.get(name.as_str()) {
            Some((other, expected, first)) if *other != type_id => {
                let (expected, first) = (expected.clone(), first.clone());
                self.error(
                    format!("{location}.param"),
                    format!(
                        "{:?} is {expected} at {first}; use another name for {}",
                        name.as_str(),
                        T::expected()
                    ),
                );
            }
            Some(_) => {}
            None => {
                self.params.insert(
                    name.to_string(),
                    (type_id, T::expected(), location.to_owned()),
                );
            }
        }
        Some(Input::Param(Param { default, ..param }))
    }

    /// The typed action for its raw parameters; every bad parameter is reported.
    fn action(&mut self, p: &str, raw: RawAction) -> Option<Action<Template>> {
        use Action as A;
        use RawAction as R;
        Some(match raw {
            R::Pods { selector } => A::Pods {
                selector: self.req(p, "selector", &selector)?,
            },
            R::DescribePods {
                selector,
                only_failing,
            } => {
                let selector = self.req(p, "selector", &selector);
                let only_failing = self.opt(p, "only_failing", only_failing.as_ref());
                A::DescribePods {
                    selector: selector?,
                    only_failing: only_failing?.unwrap_or(Input::Fixed(false)),
                }
            }
            R::Logs {
                selector,
                pod,
                tail,
                since,
                grep,
                previous,
            } => {
                let source = match (selector, pod) {
                    (Some(s), None) => self.req(p, "selector", &s).map(LogSource::Selector),
                    (None, Some(pod)) => self.req(p, "pod", &pod).map(LogSource::Pod),
                    _ => {
                        self.error(p, "logs needs exactly one of selector and pod");
                        None
                    }
                };
                let tail = self.opt(p, "tail", tail.as_ref());
                let since = self.opt(p, "since", since.as_ref());
                let grep = self.opt(p, "grep", grep.as_ref());
                let previous = self.opt(p, "previous", previous.as_ref());
                A::Logs {
                    source: source?,
                    tail: tail?,
                    since: since?,
                    grep: grep?,
                    previous: previous?,
                }
            }
            R::Endpoints { service } => A::Endpoints {
                service: self.req(p, "service", &service)?,
            },
            R::Events { since } => A::Events {
                since: self.opt(p, "since", since.as_ref())?,
            },
            R::RolloutStatus { deployment } => A::RolloutStatus {
                deployment: self.req(p, "deployment", &deployment)?,
            },
            R::RolloutHistory { deployment } => A::RolloutHistory {
                deployment: self.req(p, "deployment", &deployment)?,
            },
            R::HelmHistory { release } => A::HelmHistory {
                release: self.req(p, "release", &release)?,
            },
            R::HpaStatus { hpa } => A::HpaStatus {
                hpa: self.req(p, "hpa", &hpa)?,
            },
            R::PdbStatus {} => A::PdbStatus,
            R::ConfigmapKeys { configmap, grep } => {
                let configmap = self.req(p, "configmap", &configmap);
                let grep = self.opt(p, "grep", grep.as_ref());
                A::ConfigmapKeys {
                    configmap: configmap?,
                    grep: grep?,
                }
            }
            R::PvcStatus { pvc } => A::PvcStatus {
                pvc: self.opt(p, "pvc", pvc.as_ref())?,
            },
            R::Certificates {} => A::Certificates,
            R::Backups {} => A::Backups,
            R::AccessReview {} => A::AccessReview,
            R::ResourceUsage { selector } => A::ResourceUsage {
                selector: self.opt(p, "selector", selector.as_ref())?,
            },
            R::DbConnections { state } => A::DbConnections {
                state: self.opt(p, "state", state.as_ref())?,
            },
            R::DbSlowQueries { limit } => A::DbSlowQueries {
                limit: self.opt(p, "limit", limit.as_ref())?,
            },
            R::DbSizes { limit } => A::DbSizes {
                limit: self.opt(p, "limit", limit.as_ref())?,
            },
            R::PgbouncerPools {} => A::PgbouncerPools,
            R::DbConnectivity {} => A::DbConnectivity,
            R::CacheStats {} => A::CacheStats,
            R::CacheKeys { pattern, limit } => {
                let pattern = self.req(p, "pattern", &pattern);
                let limit = self.opt(p, "limit", limit.as_ref());
                A::CacheKeys {
                    pattern: pattern?,
                    limit: limit?,
                }
            }
            R::HttpMetric { signal } => A::HttpMetric {
                signal: self.req(p, "signal", &signal)?,
            },
            R::ErrorBreakdown { top } => A::ErrorBreakdown {
                top: self.opt(p, "top", top.as_ref())?,
            },
            R::HttpHealth { path } => A::HttpHealth {
                path: self.req(p, "path", &path)?,
            },
            R::TlsCertificate { host } => A::TlsCertificate {
                host: self.req(p, "host", &host)?,
            },
            R::DiskUsage { pvc } => A::DiskUsage {
                pvc: self.opt(p, "pvc", pvc.as_ref())?,
            },
            R::CollectEvidence { selector, since } => {
                let selector = self.req(p, "selector", &selector);
                let since = self.opt(p, "since", since.as_ref());
                A::CollectEvidence {
                    selector: selector?,
                    since: since?,
                }
            }
            R::Notify { role } => A::Notify {
                role: self.req(p, "role", &role)?,
            },
            R::Note { text } => A::Note {
                text: self.req(p, "text", &text)?,
            },
            R::RolloutRestart {
                deployment,
                restarted_at,
            } => {
                let deployment = self.req(p, "deployment", &deployment);
                let restarted_at = self.opt(p, "restarted_at", restarted_at.as_ref());
                A::RolloutRestart {
                    deployment: deployment?,
                    restarted_at: restarted_at?,
                }
            }
            R::Scale {
                deployment,
                replicas,
            } => {
                let deployment = self.req(p, "deployment", &deployment);
                let replicas = self.req(p, "replicas", &replicas);
                A::Scale {
                    deployment: deployment?,
                    replicas: replicas?,
                }
            }
            R::RollbackDeployment {
                deployment,
                revision,
            } => {
                let deployment = self.req(p, "deployment", &deployment);
                let revision = self.opt(p, "revision", revision.as_ref());
                A::RollbackDeployment {
                    deployment: deployment?,
                    revision: revision?,
                }
            }
            R::RollbackHelm { release, revision } => {
                let release = self.req(p, "release", &release);
                let revision = self.opt(p, "revision", revision.as_ref());
                A::RollbackHelm {
                    release: release?,
                    revision: revision?,
                }
            }
            R::SetImage {
                deployment,
                container,
                tag,
            } => {
                let deployment = self.req(p, "deployment", &deployment);
                let container = self.req(p, "container", &container);
                let tag = self.req(p, "tag", &tag);
                A::SetImage {
                    deployment: deployment?,
                    container: container?,
                    tag: tag?,
                }
            }
            R::PatchHpa {
                hpa,
                min_replicas,
                max_replicas,
                target_cpu_percent,
            } => {
                let hpa = self.req(p, "hpa", &hpa);
                let min_replicas = self.opt::<Replicas>(p, "min_replicas", min_replicas.as_ref());
                let max_replicas = self.opt::<Replicas>(p, "max_replicas", max_replicas.as_ref());
                let target = self.opt(p, "target_cpu_percent", target_cpu_percent.as_ref());
                let (min_replicas, max_replicas, target) = (min_replicas?, max_replicas?, target?);
                if min_replicas.is_none() && max_replicas.is_none() && target.is_none() {
                    self.error(
                        p,
                        "patch_hpa needs at least one of min_replicas, max_replicas, target_cpu_percent",
                    );
                }
                if let (Some(Input::Fixed(low)), Some(Input::Fixed(high))) =
                    (&min_replicas, &max_replicas)
                    && low > high
                {
                    self.error(
                        p,
                        format!(
                            "min_replicas {} is above max_replicas {}",
                            low.get(),
                            high.get()
                        ),
                    );
                }
                A::PatchHpa {
                    hpa: hpa?,
                    min_replicas,
                    max_replicas,
                    target_cpu_percent: target,
                }
            }
            R::SetResources {
                deployment,
                container,
                limits,
            } => {
                let deployment = self.req(p, "deployment", &deployment);
                let container = self.req(p, "container", &container);
                let memory = self.opt(p, "limits.memory", limits.memory.as_ref());
                let cpu = self.opt(p, "limits.cpu", limits.cpu.as_ref());
                let (memory, cpu) = (memory?, cpu?);
                if memory.is_none() && cpu.is_none() {
                    self.error(format!("{p}.limits"), "needs memory, cpu or both");
                }
                A::SetResources {
                    deployment: deployment?,
                    container: container?,
                    limits: ResourceLimits { memory, cpu },
                }
            }
            R::PatchConfigmap { configmap, data } => {
                let configmap = self.req(p, "configmap", &configmap);
                if data.is_empty() {
                    self.error(format!("{p}.data"), "must set at least one key");
                }
                let mut typed = BTreeMap::new();
                let mut ok = true;
                for (key, value) in &data {
                    let k = self.parse(&format!("{p}.data"), key);
                    let v = self.req(p, &format!("data.{key}"), value);
                    match (k, v) {
                        (Some(k), Some(v)) => {
                            typed.insert(k, v);
                        }
                        _ => ok = false,
                    }
                }
                let configmap = configmap?;
                ok.then_some(())?;
                A::PatchConfigmap {
                    configmap,
                    data: typed,
                }
            }
            R::JobFromCronjob { cronjob, job_name } => {
                let cronjob = self.req(p, "cronjob", &cronjob);
                let job_name = self.req(p, "job_name", &job_name);
                A::JobFromCronjob {
                    cronjob: cronjob?,
                    job_name: job_name?,
                }
            }
            R::Annotate {
                deployment,
                key,
                value,
            } => {
                let deployment = self.req(p, "deployment", &deployment);
                let key = self.req(p, "key", &key);
                let value = self.opt(p, "value", value.as_ref());
                if let Some(Some(Input::Param(param))) = &value
                    && param.optional
                {
                    // Leaving it out would remove the annotation: a different action.
                    self.error(
                        format!("{p}.value.optional"),
                        "an omitted value would remove the annotation; write a separate step without value for that",
                    );
                }
                A::Annotate {
                    deployment: deployment?,
                    key: key?,
                    value: value?,
                }
            }
            R::ExpandPvc { pvc, size } => {
                let pvc = self.req(p, "pvc", &pvc);
                let size = self.req(p, "size", &size);
                A::ExpandPvc {
                    pvc: pvc?,
                    size: size?,
                }
            }
            R::QuarantinePod {
                pod,
                quarantine_policy,
            } => {
                let pod = self.req(p, "pod", &pod);
                let quarantine_policy = self.req(p, "quarantine_policy", &quarantine_policy);
                A::QuarantinePod {
                    pod: pod?,
                    quarantine_policy: quarantine_policy?,
                }
            }
            R::UnquarantinePod { pod } => A::UnquarantinePod {
                pod: self.req(p, "pod", &pod)?,
            },
            R::RotateSecret {
                deployment,
                container,
                env,
                key,
                secret_a,
                secret_b,
            } => {
                let deployment = self.req(p, "deployment", &deployment);
                let container = self.req(p, "container", &container);
                let env = self.req(p, "env", &env);
                let key = self.req(p, "key", &key);
                let secret_a = self.req(p, "secret_a", &secret_a);
                let secret_b = self.req(p, "secret_b", &secret_b);
                A::RotateSecret {
                    deployment: deployment?,
                    container: container?,
                    env: env?,
                    key: key?,
                    secret_a: secret_a?,
                    secret_b: secret_b?,
                }
            }
            R::RenewCertificate {
                certificate,
                secret,
            } => {
                let certificate = self.req(p, "certificate", &certificate);
                let secret = self.opt(p, "secret", secret.as_ref());
                A::RenewCertificate {
                    certificate: certificate?,
                    secret: secret?,
                }
            }
            R::VeleroTestRestore { backup, restore } => A::VeleroTestRestore {
                backup: self.opt(p, "backup", backup.as_ref())?,
                restore: self.opt(p, "restore", restore.as_ref())?,
            },
            R::VeleroRestoreCleanup { restore } => A::VeleroRestoreCleanup {
                restore: self.opt(p, "restore", restore.as_ref())?,
            },
            R::DbTerminateLong {
                older_than,
                sessions,
            } => {
                let older_than = self.req(p, "older_than", &older_than);
                let sessions = self.opt(p, "sessions", sessions.as_ref());
                A::DbTerminateLong {
                    older_than: older_than?,
                    sessions: sessions?,
                }
            }
            R::DbVacuum {} => A::DbVacuum,
            R::LogsCleanup { cronjob, job_name } => {
                let (cronjob, job_name) = self.manual_job(p, &cronjob, job_name.as_ref())?;
                A::LogsCleanup { cronjob, job_name }
            }
            R::SmokeTests { cronjob, job_name } => {
                let (cronjob, job_name) = self.manual_job(p, &cronjob, job_name.as_ref())?;
                A::SmokeTests { cronjob, job_name }
            }
        })
    }
}

/// The action tag nearest to a misspelt one, within a few edits.
fn closest_tag(given: &str) -> Option<&'static str> {
    if given.len() > 40 {
        return None;
    }
    ActionKind::ALL
        .iter()
        .map(|k| (edit_distance(given, k.tag()), k.tag()))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, t)| t)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use crate::runbook::load_str;

    const SHIPPED: &str = include_str!("../../../../runbooks/odordiff-2.yaml");

    /// The shipped catalog with each `(from, to)` applied once; the errors, as printed.
    fn errors_after(replacements: &[(&str, &str)]) -> Vec<String> {
        let mut text = SHIPPED.to_owned();
        for (from, to) in replacements {
            assert!(
                text.contains(from),
                "{from:?} is not in the shipped catalog"
            );
            text = text.replacen(from, to, 1);
        }
        match load_str("t.yaml", &text) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    struct Case {
        what: &'static str,
        replacements: &'static [(&'static str, &'static str)],
        errors: &'static [&'static str],
    }

    const CASES: &[Case] = &[
        Case {
            what: "a deploy target that is not listed, one listed twice and a repository with a tag",
            replacements: &[
                (
                    "{deployment: odordiff-worker, container: odordiff-worker, repository: ghcr.io/odordiff/odordiff-worker}",
                    "{deployment: billing, container: billing, repository: ghcr.io/odordiff/billing:1.0}",
                ),
                (
                    "    - {deployment: odordiff-api, container: odordiff-api, repository: ghcr.io/odordiff/odordiff-api}\n",
                    "    - {deployment: odordiff-api, container: odordiff-api, repository: ghcr.io/odordiff/odordiff-api}\n    - {deployment: odordiff-api, container: api, repository: ghcr.io/odordiff/odordiff-api}\n",
                ),
            ],
            errors: &[
                "t.yaml: service.deploy[1].deployment: \"odordiff-api\" is listed twice",
                "t.yaml: service.deploy[2].deployment: \"billing\" is not listed under objects.deployments",
                "t.yaml: service.deploy[2].repository: \"ghcr.io/odordiff/billing:1.0\" is not an image repository (lower case, without a tag or digest)",
            ],
        },
        Case {
            what: "a set_image step whose container is not the one service.deploy names",
            replacements: &[(
                "          deployment: odordiff-worker\n          container: odordiff-worker\n",
                "          deployment: odordiff-worker\n          container: worker\n",
            )],
            errors: &[
                "t.yaml: procedures[0] (standard-deployment).steps[3].params.container: \"worker\" is not the container service.deploy names for odordiff-worker (\"odordiff-worker\")",
            ],
        },
        Case {
            what: "a step naming an object the objects section does not list",
            replacements: &[(
                "type: rollout_restart\n        params: {deployment: pgbouncer}",
                "type: rollout_restart\n        params: {deployment: billing}",
            )],
            errors: &[
                "t.yaml: alerts[1] (database-connection-pool-exhausted).recovery[0].params.deployment: \"billing\" is not listed under objects.deployments",
            ],
        },
        Case {
            what: "an unknown kind of object and a name listed twice",
            replacements: &[
                (
                    "  configmaps: [odordiff-config]",
                    "  configmap: [odordiff-config]",
                ),
                (
                    "  networkpolicies: [default-deny-all]",
                    "  networkpolicies: [default-deny-all, default-deny-all]",
                ),
            ],
            errors: &[
                "t.yaml: objects.configmap: is not a kind of object; use one of deployments, services,",
                "t.yaml: objects.networkpolicies[1]: \"default-deny-all\" is listed twice",
                "t.yaml: service.config: \"odordiff-config\" is not listed under objects.configmaps",
                // The ConfigMap the steps name is then not listed.
                "t.yaml: alerts[5] (cache-hit-rate-low).investigation[1].params.configmap: \"odordiff-config\" is not listed under objects.configmaps",
                "t.yaml: alerts[5] (cache-hit-rate-low).recovery[0].params.configmap",
            ],
        },
        Case {
            what: "a regex that does not compile",
            replacements: &[("since: 10m, grep: ERROR}", "since: 10m, grep: \"ERROR(\"}")],
            errors: &[
                "t.yaml: alerts[2] (high-error-rate).investigation[1].params.grep: \"ERROR(\" is not a usable regular expression: unclosed group",
            ],
        },
        Case {
            what: "an unknown action type",
            replacements: &[(
                "type: rollout_restart\n        params: {deployment: pgbouncer}",
                "type: rollout_restar\n        params: {deployment: pgbouncer}",
            )],
            errors: &[
                "t.yaml: alerts[1] (database-connection-pool-exhausted).recovery[0].type: \"rollout_restar\" is not an action type; did you mean \"rollout_restart\"?",
            ],
        },
        Case {
            what: "a destructive step in an investigation",
            replacements: &[(
                "type: endpoints\n        params: {service: odordiff-api}",
                "type: rollout_restart\n        params: {deployment: odordiff-api}",
            )],
            errors: &[
                "t.yaml: alerts[0] (api-service-down).investigation[3].type: rollout_restart changes the cluster; investigation steps must be read-only",
                "t.yaml: alerts[0] (api-service-down).investigation[3]: is destructive and needs a label for its approval button",
            ],
        },
        Case {
            what: "a read-only step in a recovery",
            replacements: &[(
                "label: Restart PgBouncer\n        type: rollout_restart\n        params: {deployment: pgbouncer}",
                "type: pgbouncer_pools",
            )],
            errors: &[
                "t.yaml: alerts[1] (database-connection-pool-exhausted).recovery[0].type: pgbouncer_pools is read-only; recovery steps are actions that need approval (put it under investigation)",
            ],
        },
        Case {
            what: "a name that is not RFC 1123",
            replacements: &[(
                "params: {deployment: pgbouncer}",
                "params: {deployment: Pg_Bouncer}",
            )],
            errors: &[
                "t.yaml: alerts[1] (database-connection-pool-exhausted).recovery[0].params.deployment: \"Pg_Bouncer\" must use only lowercase letters a-z, digits 0-9, '-' and '.'",
            ],
        },
        Case {
            what: "a bound outside the type's range, and a default outside the bounds",
            replacements: &[
                (
                    "replicas: {param: replicas, min: 1, max: 20, default: 5}",
                    "replicas: {param: replicas, min: 1, max: 200, default: 50}",
                ),
                ("default: 7200}", "default: 30}"),
            ],
            errors: &[
                "t.yaml: alerts[0] (api-service-down).recovery[1].params.replicas.max: \"200\" is out of range: expected a whole number from 0 to 50",
                "t.yaml: alerts[5] (cache-hit-rate-low).recovery[0].params.data.cache_ttl.default: 30 is out of range: expected 60 to 86400",
            ],
        },
        Case {
            what: "a duration without its unit and a quantity with the wrong suffix",
            replacements: &[
                ("since: 10m,", "since: 10 minutes,"),
                (
                    "limits: {memory: 4Gi, cpu: 2000m}",
                    "limits: {memory: 4GB, cpu: 2000m}",
                ),
            ],
            errors: &[
                "t.yaml: alerts[2] (high-error-rate).investigation[1].params.since: \"10 minutes\" is not a duration",
                "t.yaml: alerts[1] (database-connection-pool-exhausted).recovery[2].params.limits.memory: \"4GB\" is not a quantity such as 200Gi, 512Mi, 2 or 500m",
            ],
        },
        Case {
            what: "references to entries, checklists and roles that do not exist",
            replacements: &[
                (
                    "see_also: [emergency-rollback]",
                    "see_also: [emergency-rollbak]",
                ),
                ("checklist: pre-deployment", "checklist: pre-deploy"),
                ("params: {role: security}", "params: {role: secops}"),
                (
                    "path: [primary, secondary, platform-lead]",
                    "path: [primary, second, platform-lead]",
                ),
            ],
            errors: &[
                "t.yaml: alerts[0] (api-service-down).see_also[0]: \"emergency-rollbak\" is not a catalog entry",
                "t.yaml: procedures[0] (standard-deployment).checklist: \"pre-deploy\" is not a checklist",
                "t.yaml: procedures[7] (suspected-security-breach).steps[1].params.role: \"secops\" is not a role in contacts.team",
                "t.yaml: procedures[7] (suspected-security-breach).steps[1].params.role: is no roster role, so nobody could be paged",
                "t.yaml: escalation.path[1]: \"second\" is not a role in contacts.team",
            ],
        },
        Case {
            what: "a duplicate id, heading and matcher set",
            replacements: &[
                ("id: manual-scaling", "id: standard-deployment"),
                (
                    "source_heading: Weekly Tasks",
                    "source_heading: Daily Tasks",
                ),
                (
                    "alertname: OdorDiffCacheHitRateLow",
                    "alertname: OdorDiffApiDown",
                ),
            ],
            errors: &[
                "t.yaml: procedures[2] (standard-deployment).id: \"standard-deployment\" is already the id of procedures[0] (standard-deployment)",
                "t.yaml: maintenance[1] (weekly-tasks).source_heading: \"Daily Tasks\" is already the source of maintenance[0] (daily-tasks)",
                "t.yaml: alerts[5] (cache-hit-rate-low).matchers: are the same as those of alerts[0] (api-service-down); an alert could not tell them apart",
            ],
        },
        Case {
            what: "empty required lists and a missing alertname",
            replacements: &[
                (
                    "signals:\n      - probe: cache_hit_rate\n      - metric: p95_latency",
                    "signals: []",
                ),
                ("      alertname: OdorDiffApiDown\n", ""),
                (
                    "    items:\n      - Document incident timeline\n      - Identify root cause\n      - Implement corrective measures\n      - Update monitoring/alerting\n      - Conduct post-mortem meeting\n      - Update runbooks with lessons learned\n      - Communicate resolution to stakeholders\n",
                    "    items: []\n",
                ),
            ],
            errors: &[
                "t.yaml: alerts[5] (cache-hit-rate-low).signals: must list at least one",
                "t.yaml: alerts[0] (api-service-down).matchers: must include alertname",
                "t.yaml: checklists[1] (post-incident).items: must list at least one",
            ],
        },
        Case {
            what: "an unknown parameter, a YAML fraction where text belongs, and a missing label",
            replacements: &[
                (
                    "params: {pvc: postgres-data-postgres-0}",
                    "params: {pvc: postgres-data-postgres-0, size: 1Gi}",
                ),
                (
                    "params: {deployment: odordiff-api, replicas: 1}",
                    "params: {deployment: odordiff-api, replicas: 1.5}",
                ),
                ("        label: Restart PgBouncer\n", ""),
            ],
            errors: &[
                "t.yaml: alerts[4] (disk-space-low).investigation[0].params: unknown field `size`, expected `pvc`",
                "t.yaml: procedures[4] (database-maintenance).steps[1].params.replicas: 1.5 is read by YAML as a fractional number; quote it so it is kept exactly as written",
                "t.yaml: alerts[1] (database-connection-pool-exhausted).recovery[0]: is destructive and needs a label for its approval button",
            ],
        },
        Case {
            what: "a schedule missing its weekday and a malformed time",
            replacements: &[(
                "{every: week, weekday: monday, at: \"09:00\"}",
                "{every: week, at: \"9am\"}",
            )],
            errors: &[
                "t.yaml: maintenance[1] (weekly-tasks).schedule.at: \"9am\" is not a time of day such as 09:00",
                "t.yaml: maintenance[1] (weekly-tasks).schedule: a schedule every week needs weekday",
            ],
        },
        Case {
            what: "one placeholder name used for two types",
            replacements: &[(
                "deployment: odordiff-worker\n          container: odordiff-worker",
                "deployment: {param: tag}\n          container: odordiff-worker",
            )],
            errors: &[
                "t.yaml: procedures[0] (standard-deployment).steps[3].params.deployment.param: \"tag\" is an image tag: letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-' at procedures[0] (standard-deployment).steps[2].params.tag; use another name for a Kubernetes name (lowercase letters, digits, '-', '.')",
            ],
        },
        Case {
            what: "bounds on a value that has no order",
            replacements: &[("tag: {param: tag}", "tag: {param: tag, min: \"1\"}")],
            errors: &[
                "t.yaml: procedures[0] (standard-deployment).steps[2].params.tag: min and max apply to numbers, durations and quantities, not to an image tag",
            ],
        },
        Case {
            what: "an escalation matrix without a severity",
            replacements: &[("    - severity: low\n", "    - severity: lowest\n")],
            errors: &[
                "t.yaml: escalation.matrix[3].severity: \"lowest\" is not one of critical, high, medium, low",
                "t.yaml: escalation.matrix: has no row for low; every severity needs one",
            ],
        },
    ];

    /// Cases whose breakages are independent, so together they must report the union.
    const TOGETHER: &[&str] = &[
        "a regex that does not compile",
        "an unknown action type",
        "a destructive step in an investigation",
        "a bound outside the type's range, and a default outside the bounds",
        "a duration without its unit and a quantity with the wrong suffix",
        "references to entries, checklists and roles that do not exist",
        "empty required lists and a missing alertname",
        "a schedule missing its weekday and a malformed time",
        "one placeholder name used for two types",
        "an escalation matrix without a severity",
    ];

    #[test]
    fn a_broken_catalog_reports_all_of_its_errors_at_once() {
        let cases: Vec<&Case> = TOGETHER
            .iter()
            .map(|what| CASES.iter().find(|c| c.what == *what).unwrap())
            .collect();
        let replacements: Vec<(&str, &str)> = cases
            .iter()
            .flat_map(|c| c.replacements.iter().copied())
            .collect();
        let got = errors_after(&replacements);
        let want: Vec<&str> = cases
            .iter()
            .flat_map(|c| c.errors.iter().copied())
            .collect();
        for w in &want {
            assert!(
                got.iter().any(|g| g.starts_with(w)),
                "missing {w:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
        assert!(got.len() >= 20);
    }

    #[test]
    fn each_broken_catalog_reports_exactly_its_errors_with_locations() {
        assert!(errors_after(&[]).is_empty(), "{:#?}", errors_after(&[]));
        let mut failures = Vec::new();
        for case in CASES {
            let got = errors_after(case.replacements);
            let missing: Vec<&&str> = case
                .errors
                .iter()
                .filter(|want| !got.iter().any(|g| g.starts_with(**want)))
                .collect();
            if !missing.is_empty() || got.len() != case.errors.len() {
                failures.push(format!(
                    "{}:\n  missing {missing:#?}\n  got {got:#?}",
                    case.what
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
