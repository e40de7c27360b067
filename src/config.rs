//! Configuration in layers: defaults, then the YAML file, then environment variables;
//! secrets from the environment or from files (Kubernetes secrets), never from the file.
//!
//! Loading compiles a raw, all-optional structure into [`Config`] and reports every
//! problem at once, each with its location.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

#[cfg(test)]
mod keys;
pub use crate::cluster::KubernetesConfig;
use crate::domain::access::{Grantee, Policy, Scope};
use crate::domain::args::parse_duration;
use crate::domain::calendar::Calendar;
use crate::domain::escalation::{Deadline, PolicyOverrides, RuleOverride, Severity};
use crate::domain::ids::{ChannelId, K8sName};
use crate::domain::roster::{Role, Roster, Target};
use crate::domain::signals::{Links, Thresholds};
use crate::domain::storm::StormPolicy;
pub use crate::probes::ProbesConfig;
use crate::runbook::actions::ActionKind;
pub use crate::slack::api::SlackConfig;

/// Slack's public Web API endpoint.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api/";
pub const DEFAULT_STORE_URL: &str = "sqlite://odorbot.db";

/// The compiled configuration; every value is valid.
#[derive(Debug, Clone)]
pub struct Config {
    pub slack: SlackConfig,
    pub store: StoreConfig,
    pub http: HttpConfig,
    pub engine: EngineConfig,
    pub kubernetes: KubernetesConfig,
    pub probes: ProbesConfig,
    pub incidents: IncidentsConfig,
    pub approvals: ApprovalsConfig,
    /// Who may use which command (changes: `approvals`), and in which channels.
    pub access: Policy,
    pub runbook: RunbookConfig,
    pub log: LogConfig,
}

/// The two-person rule's policy. The rule itself (the requester never approves their
/// own request) is not configurable and lives in the domain.
#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    /// `operator`, `approver`, `viewer`, `incident_commander` → Slack users and groups.
    pub roles: BTreeMap<String, Vec<Target>>,
    /// Per verb: the roles that may request and the roles that may approve.
    pub actions: BTreeMap<String, (Vec<String>, Vec<String>)>,
    /// Approvals needed (at least one, never the requester's).
    pub required: usize,
    pub expiry: Duration,
    /// Where destructive verbs may be requested; empty means anywhere.
    pub channels: Vec<ChannelId>,
    /// Per verb: the least time between two executions.
    pub cooldowns: BTreeMap<String, Duration>,
    /// How long a rollout may take before verification calls it failed.
    pub rollout_timeout: Duration,
    /// How long pods and health are watched after a rollback, restart, deploy or scale.
    pub watch: Duration,
    pub watch_every: Duration,
    /// The executor's lease; a lapsed one marks the request interrupted.
    pub lease: Duration,
    /// How long user-group membership is cached.
    pub group_cache_ttl: Duration,
}

pub const ROLES: [&str; 4] = ["operator", "approver", "viewer", "incident_commander"];

/// Incidents: where their threads live, who is on call, the escalation matrix, and the
/// Alertmanager webhook.
#[derive(Debug, Clone)]
pub struct IncidentsConfig {
    /// The incident channel; alerts open no incident without it.
    pub channel: Option<ChannelId>,
    /// Where the runbook's maintenance checklists are posted.
    pub maintenance_channel: Option<ChannelId>,
    pub calendar: Calendar,
    pub roster: Roster,
    /// What configuration changes in the runbook's escalation matrix and cadence.
    pub escalation: PolicyOverrides,
    /// How often the scheduler looks for due timers set by other replicas.
    pub scheduler_poll: Duration,
    /// How long a claimed timer stays this replica's without a renewal. Each firing renews
    /// its own lease three times per term while it runs, so a slow Slack never hands the
    /// timer to another replica; a replica that dies loses its timers after one lease.
    pub timer_lease: Duration,
    /// Bearer token Alertmanager must send to `POST /alerts`; without one the webhook
    /// answers 503, never unauthenticated.
    pub alerts_token: Option<SecretString>,
    pub alerts_max_body: usize,
    /// When alert-opened incidents become one storm instead of a root message each.
    pub storm: StormPolicy,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://path` or `postgres://…`; may carry a password, hence secret.
    pub url: SecretString,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `/healthz`, `/readyz`, `/metrics` and, later, the Alertmanager webhook.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Events waiting to be processed; beyond it envelopes are acknowledged with a busy
    /// answer and not done (Slack redelivers neither slash commands nor clicks).
    pub queue_capacity: usize,
    /// Events processed concurrently.
    pub workers: usize,
    /// How long shutdown waits for in-flight work.
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct RunbookConfig {
    /// A runbook catalog file; unset means the catalog built into the binary.
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter directive, e.g. `info,odorbot=debug`.
    pub filter: String,
}

/// One problem, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub location: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Every problem found while loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} configuration problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    slack: RawSlack,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    kubernetes: RawKubernetes,
    #[serde(default)]
    probes: RawProbes,
    #[serde(default)]
    incidents: RawIncidents,
    #[serde(default)]
    approvals: RawApprovals,
    #[serde(default)]
    access: RawAccess,
    #[serde(default)]
    runbook: RawRunbook,
    #[serde(default)]
    log: RawLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    #[serde(default)]
    roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    actions: BTreeMap<String, RawActionPolicy>,
    required: Option<i64>,
    expiry: Option<String>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    cooldowns: BTreeMap<String, String>,
    rollout_timeout: Option<String>,
    watch: Option<String>,
    watch_every: Option<String>,
    lease: Option<String>,
    group_cache_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    scopes: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActionPolicy {
    request: Option<Vec<String>>,
    approve: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIncidents {
    channel: Option<String>,
    maintenance_channel: Option<String>,
    timezone: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    roster: BTreeMap<String, Vec<String>>,
    status_every: Option<String>,
    scheduler_poll: Option<String>,
    timer_lease: Option<String>,
    #[serde(default)]
    escalation: BTreeMap<String, RawRule>,
    alerts_token_file: Option<PathBuf>,
    alerts_max_body_bytes: Option<i64>,
    #[serde(default)]
    storm: RawStorm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorm {
    threshold: Option<i64>,
    window: Option<String>,
    quiet: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    ack_within: Option<String>,
    escalate_unresolved: Option<String>,
    escalate_unresolved_business_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProbes {
    prometheus_url: Option<String>,
    metrics_url: Option<String>,
    job: Option<String>,
    endpoint_label: Option<String>,
    rate_window: Option<String>,
    postgres_url_file: Option<PathBuf>,
    pgbouncer_url_file: Option<PathBuf>,
    app_database_url_file: Option<PathBuf>,
    redis_url_file: Option<PathBuf>,
    redis_ca_file: Option<String>,
    health_url: Option<String>,
    tls_host: Option<String>,
    timeout: Option<String>,
    deadline: Option<String>,
    error_rate_max_percent: Option<f64>,
    p95_max_ms: Option<i64>,
    disk_free_min_percent: Option<f64>,
    cache_hit_min_percent: Option<f64>,
    dashboard_url: Option<String>,
    logs_url: Option<String>,
    traces_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    api_url: Option<String>,
    app_token_file: Option<PathBuf>,
    bot_token_file: Option<PathBuf>,
    connections: Option<i64>,
    ping_interval: Option<String>,
    reconnect_max_backoff: Option<String>,
    channel_rate_per_sec: Option<i64>,
    channel_burst: Option<i64>,
    send_deadline: Option<String>,
    resend_check: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
    max_connections: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    queue_capacity: Option<i64>,
    workers: Option<i64>,
    shutdown_grace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    namespace: Option<String>,
    kubeconfig: Option<PathBuf>,
    velero_namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunbook {
    path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<String>,
    filter: Option<String>,
}

/// The environment variables odorbot reads, with what each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("SLACK_APP_TOKEN", "app-level token (xapp-…)"),
    ("SLACK_APP_TOKEN_FILE", "file holding the app-level token"),
    ("SLACK_BOT_TOKEN", "bot token (xoxb-…)"),
    ("SLACK_BOT_TOKEN_FILE", "file holding the bot token"),
    ("SLACK_API_URL", "slack.api_url"),
    ("ODORBOT_STORE_URL", "store.url"),
    ("ODORBOT_HTTP_LISTEN", "http.listen"),
    ("ODORBOT_NAMESPACE", "kubernetes.namespace"),
    ("ODORBOT_PROMETHEUS_URL", "probes.prometheus_url"),
    ("ODORBOT_METRICS_URL", "probes.metrics_url"),
    (
        "ODORBOT_POSTGRES_URL",
        "PostgreSQL URL for the probes (or _FILE)",
    ),
    (
        "ODORBOT_PGBOUNCER_URL",
        "PgBouncer admin console URL (or _FILE)",
    ),
    (
        "ODORBOT_APP_DATABASE_URL",
        "the API's own database URL, for the connectivity test (or _FILE)",
    ),
    (
        "ODORBOT_REDIS_URL",
        "Redis URL for the probes, redis:// or rediss:// (or _FILE)",
    ),
    ("ODORBOT_REDIS_CA_FILE", "probes.redis_ca_file"),
    ("ODORBOT_HEALTH_URL", "probes.health_url"),
    ("ODORBOT_TLS_HOST", "probes.tls_host"),
    ("ODORBOT_INCIDENT_CHANNEL", "incidents.channel"),
    (
        "ODORBOT_ALERTS_TOKEN",
        "bearer token for POST /alerts (or _FILE)",
    ),
    ("ODORBOT_RUNBOOK", "runbook.path"),
    ("ODORBOT_LOG_FORMAT", "log.format"),
    ("ODORBOT_LOG", "log.filter"),
];

/// A secret is a token or a URL; a file far longer than that is a wrong path, and one
/// without an end (`/dev/zero`) must not exhaust memory at start-up.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

fn read_secret_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "longer than {MAX_SECRET_FILE_BYTES} bytes"
        )));
    }
    Ok(text)
}

enum Secret {
    Found(String, String),
    Unset,
    Unreadable,
}

/// Collects errors while compiling, each tagged with where it came from.
struct Compiler<'a> {
    file: String,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<ConfigError>,
}

impl Compiler<'_> {
    fn error(&mut self, location: String, message: impl Into<String>) {
        self.errors.push(ConfigError {
            location,
            message: message.into(),
        });
    }

    fn at(&self, key: &str) -> String {
        format!("{}: {key}", self.file)
    }

    /// The value of `key`: the environment variable wins over the file.
    fn layered(&self, env_var: &str, key: &str, file: Option<String>) -> Option<(String, String)> {
        match (self.env)(env_var).filter(|v| !v.is_empty()) {
            Some(v) => Some((v, format!("environment {env_var}"))),
            None => file.map(|v| (v, self.at(key))),
        }
    }

    fn duration(
        &mut self,
        key: &str,
        raw: Option<String>,
        default: Duration,
        range: (u64, u64),
    ) -> Duration {
        let Some(raw) = raw else { return default };
        match parse_duration(&raw) {
            Ok(d) if (range.0..=range.1).contains(&d.as_secs()) => d,
            Ok(_) => {
                self.error(
                    self.at(key),
                    format!("{raw:?} is out of range ({}s to {}s)", range.0, range.1),
                );
                default
            }
            Err(e) => {
                self.error(self.at(key), format!("{raw:?} {e}"));
                default
            }
        }
    }

    fn number(&mut self, key: &str, raw: Option<i64>, default: i64, range: (i64, i64)) -> i64 {
        match raw {
            None => default,
            Some(n) if (range.0..=range.1).contains(&n) => n,
            Some(n) => {
                self.error(
                    self.at(key),
                    format!("{n} is out of range ({} to {})", range.0, range.1),
                );
                default
            }
        }
    }

    /// A secret from `VAR`, else the file named by `VAR_FILE`, else the file path in the
    /// config, with where it came from.
    fn secret(&mut self, var: &str, file: Option<PathBuf>) -> Secret {
        if let Some(v) = (self.env)(var).filter(|v| !v.is_empty()) {
            return Secret::Found(v, format!("environment {var}"));
        }
        let Some(path) = (self.env)(&format!("{var}_FILE"))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or(file)
        else {
            return Secret::Unset;
        };
        let location = format!("secret file {}", path.display());
        match read_secret_file(&path) {
            Ok(v) => Secret::Found(v.trim().to_owned(), location),
            Err(e) => {
                self.error(location, format!("cannot be read: {e}"));
                Secret::Unreadable
            }
        }
    }

    /// A path the configuration names, which must be a readable file: a typo is found by
    /// `odorbot check`, not by the first call that needs the file.
    fn file(&mut self, path: Option<(String, String)>) -> Option<PathBuf> {
        let (path, location) = path?;
        let path = PathBuf::from(path);
        // The type first: opening a FIFO would block start-up until something writes to it.
        if let Err(e) = std::fs::metadata(&path)
            .and_then(|m| {
                if m.is_file() {
                    Ok(())
                } else {
                    Err(std::io::Error::other("not a file"))
                }
            })
            .and_then(|()| std::fs::File::open(&path).map(drop))
        {
            self.error(location, format!("{}: cannot be read: {e}", path.display()));
        }
        Some(path)
    }

    /// A Slack token, required, with the prefix its kind must have.
    fn token(&mut self, var: &str, key: &str, file: Option<PathBuf>, prefix: &str) -> SecretString {
        let (value, location) = match self.secret(var, file) {
            Secret::Found(value, location) => (value, location),
            Secret::Unreadable => return SecretString::from(String::new()),
            Secret::Unset => {
                self.error(
                    self.at(key),
                    format!("no Slack token: set {var}, {var}_FILE, or {key} (a path)"),
                );
                return SecretString::from(String::new());
            }
        };
        if !value.starts_with(prefix) || value.len() < prefix.len() + 4 {
            // Never echo the value itself: it may be a real credential in the wrong place.
            self.error(location, format!("does not look like a {prefix}… token"));
        }
        SecretString::from(value)
    }

    /// Slack users and user groups, each checked; bad entries are reported at `key[i]`.
    fn targets(&mut self, key: &str, raw: &[String]) -> Vec<Target> {
        let mut parsed = Vec::new();
        for (i, t) in raw.iter().enumerate() {
            match t.parse::<Target>() {
                Ok(target) => parsed.push(target),
                Err(e) => self.error(self.at(&format!("{key}[{i}]")), format!("{t:?} {e}")),
            }
        }
        parsed
    }

    /// An optional URL that may carry a password (database, Redis), hence secret.
    fn secret_url(
        &mut self,
        var: &str,
        file: Option<PathBuf>,
        schemes: &[&str],
    ) -> Option<SecretString> {
        let Secret::Found(value, location) = self.secret(var, file) else {
            return None;
        };
        let scheme_ok = value
            .split_once("://")
            .is_some_and(|(scheme, _)| schemes.contains(&scheme));
        if !scheme_ok {
            self.error(location, format!("must be a {} URL", schemes.join(" or ")));
            return None;
        }
        Some(SecretString::from(value))
    }

    /// An optional public URL (no credentials in it).
    fn url(&mut self, env_var: &str, key: &str, raw: Option<String>) -> Option<Url> {
        let (v, location) = self.layered(env_var, key, raw)?;
        match Url::parse(&v) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.password().is_none() => Some(u),
            _ => {
                self.error(
                    location,
                    format!("{v:?} is not an http(s) URL without credentials"),
                );
                None
            }
        }
    }
}

impl Config {
    /// Loads the configuration from an optional YAML file and the environment.
    ///
    /// # Errors
    /// [`ConfigErrors`] listing every problem found, each with its location.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        let (file, raw) = match path {
            None => ("defaults".to_owned(), Raw::default()),
            Some(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| {
                    ConfigErrors(vec![ConfigError {
                        location: name.clone(),
                        message: format!("cannot be read: {e}"),
                    }])
                })?;
                (name.clone(), parse_yaml(&name, &text)?)
            }
        };
        Self::compile_raw(file, raw, env)
    }

    /// Loads from YAML text; `name` stands for the file in error locations. What
    /// [`Config::load`] does once it has read the file, and what the fuzz target runs.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_str(
        name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        Self::compile_raw(name.to_owned(), parse_yaml(name, text)?, env)
    }

    fn compile_raw(
        file: String,
        raw: Raw,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigErrors> {
        let mut c = Compiler {
            file,
            env,
            errors: Vec::new(),
        };
        let config = compile(&mut c, raw);
        if c.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(c.errors))
        }
    }

    /// Loads with the process environment.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_env(path: Option<&Path>) -> Result<Self, ConfigErrors> {
        Self::load(path, &|k| std::env::var(k).ok())
    }
}

fn parse_yaml(name: &str, text: &str) -> Result<Raw, ConfigErrors> {
    if text.trim().is_empty() {
        return Ok(Raw::default());
    }
    serde_yaml_ng::from_str::<Raw>(text).map_err(|e| {
        let location = match e.location() {
            Some(l) => format!("{name}:{}:{}", l.line(), l.column()),
            None => name.to_owned(),
        };
        let mut message = e.to_string();
        if message.contains("token") && message.contains("unknown field") {
            message.push_str(" (tokens never go in the config file: use SLACK_APP_TOKEN/SLACK_BOT_TOKEN, their _FILE variants, or app_token_file/bot_token_file)");
        }
        ConfigErrors(vec![ConfigError { location, message }])
    })
}

fn compile(c: &mut Compiler<'_>, raw: Raw) -> Config {
    let slack = compile_slack(c, raw.slack);
    let store_url = match c.layered("ODORBOT_STORE_URL", "store.url", raw.store.url) {
        None => DEFAULT_STORE_URL.to_owned(),
        Some((url, location)) => {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                c.error(
                    location,
                    "must start with sqlite:, postgres:// or postgresql://",
                );
            }
            url
        }
    };
    let store = StoreConfig {
        url: SecretString::from(store_url),
        max_connections: c.number(
            "store.max_connections",
            raw.store.max_connections,
            8,
            (1, 100),
        ) as u32,
    };
    let listen = match c.layered("ODORBOT_HTTP_LISTEN", "http.listen", raw.http.listen) {
        None => SocketAddr::from(([0, 0, 0, 0], 9090)),
        Some((v, location)) => v.parse().unwrap_or_else(|_| {
            c.error(
                location,
                format!("{v:?} is not an address such as 0.0.0.0:9090"),
            );
            SocketAddr::from(([0, 0, 0, 0], 9090))
        }),
    };
    let engine = EngineConfig {
        queue_capacity: c.number(
            "engine.queue_capacity",
            raw.engine.queue_capacity,
            4096,
            (16, 1_000_000),
        ) as usize,
        workers: c.number("engine.workers", raw.engine.workers, 32, (1, 1024)) as usize,
        shutdown_grace: c.duration(
            "engine.shutdown_grace",
            raw.engine.shutdown_grace,
            Duration::from_secs(20),
            (1, 300),
        ),
    };
    let namespace = match c.layered(
        "ODORBOT_NAMESPACE",
        "kubernetes.namespace",
        raw.kubernetes.namespace,
    ) {
        None => "odordiff"
            .parse()
            .expect("default namespace is a valid name"),
        Some((v, location)) => v.parse::<K8sName>().unwrap_or_else(|e| {
            c.error(location, format!("{v:?} {e}"));
            "odordiff"
                .parse()
                .expect("default namespace is a valid name")
        }),
    };
    let velero_namespace = match raw.kubernetes.velero_namespace {
        None => namespace.clone(),
        Some(v) => v.parse::<K8sName>().unwrap_or_else(|e| {
            c.error(c.at("kubernetes.velero_namespace"), format!("{v:?} {e}"));
            namespace.clone()
        }),
    };
    let kubernetes = KubernetesConfig {
        velero_namespace,
        namespace,
        kubeconfig: c.file(
            raw.kubernetes
                .kubeconfig
                .map(|p| (p.display().to_string(), c.at("kubernetes.kubeconfig"))),
        ),
    };
    let probes = compile_probes(c, raw.probes, &kubernetes.namespace);
    let incidents = compile_incidents(c, raw.incidents);
    let approvals = compile_approvals(c, raw.approvals);
    let access = compile_access(c, raw.access);
    // The file itself is compiled by `runbook::load`, which reports its own problems.
    let runbook = RunbookConfig {
        path: c
            .layered(
                "ODORBOT_RUNBOOK",
                "runbook.path",
                raw.runbook.path.map(|p| p.display().to_string()),
            )
            .map(|(p, _)| PathBuf::from(p)),
    };
    let format = match c.layered("ODORBOT_LOG_FORMAT", "log.format", raw.log.format) {
        None => LogFormat::Json,
        Some((v, location)) => match v.as_str() {
            "json" => LogFormat::Json,
            "text" => LogFormat::Text,
            _ => {
                c.error(location, format!("{v:?} is not json or text"));
                LogFormat::Json
            }
        },
    };
    let filter = c
        .layered("ODORBOT_LOG", "log.filter", raw.log.filter)
        .map_or_else(|| "info".to_owned(), |(v, _)| v);
    Config {
        slack,
        store,
        http: HttpConfig { listen },
        engine,
        kubernetes,
        probes,
        incidents,
        approvals,
        access,
        runbook,
        log: LogConfig { format, filter },
    }
}

fn compile_access(c: &mut Compiler<'_>, raw: RawAccess) -> Policy {
    let mut policy = Policy {
        channels: channel_list(c, "access.channels", &raw.channels),
        ..Policy::default()
    };
    for (key, names) in raw.scopes {
        let at = format!("access.scopes.{key}");
        let scope = match key.parse::<Scope>() {
            Ok(s) => s,
            Err(e) => {
                c.error(c.at(&at), e);
                continue;
            }
        };
        if names.is_empty() {
            c.error(
                c.at(&at),
                "is empty, so nobody could use these commands; list `anyone` or roles",
            );
        }
        let grantees = names
            .iter()
            .filter_map(|n| match n.parse::<Grantee>() {
                Ok(g) => Some(g),
                Err(e) => {
                    c.error(c.at(&at), e);
                    None
                }
            })
            .collect();
        policy.scopes.insert(scope, grantees);
    }
    policy
}

fn channel_list(c: &mut Compiler<'_>, key: &str, raw: &[String]) -> Vec<ChannelId> {
    let mut channels = Vec::new();
    for (i, ch) in raw.iter().enumerate() {
        match ch.parse::<ChannelId>() {
            Ok(id) => channels.push(id),
            Err(e) => c.error(c.at(&format!("{key}[{i}]")), format!("{ch:?} {e}")),
        }
    }
    channels
}

fn compile_approvals(c: &mut Compiler<'_>, raw: RawApprovals) -> ApprovalsConfig {
    let mut roles = BTreeMap::new();
    for (role, targets) in raw.roles {
        if !ROLES.contains(&role.as_str()) {
            c.error(
                c.at(&format!("approvals.roles.{role}")),
                format!("is not a role; one of {}", ROLES.join(", ")),
            );
            continue;
        }
        let parsed = c.targets(&format!("approvals.roles.{role}"), &targets);
        roles.insert(role, parsed);
    }
    // A key that names no change would leave that change on the defaults without a word.
    let changes = change_verbs();
    let known = |c: &mut Compiler<'_>, section: &str, verb: &str| {
        let ok = changes.contains(&verb);
        if !ok {
            c.error(
                c.at(&format!("approvals.{section}.{verb}")),
                format!(
                    "{verb:?} is not a verb that changes anything; one of {}",
                    changes.join(", ")
                ),
            );
        }
        ok
    };
    let mut actions = BTreeMap::new();
    for (verb, policy) in raw.actions {
        if !known(c, "actions", &verb) {
            continue;
        }
        if policy.approve.as_ref().is_some_and(Vec::is_empty) {
            c.error(
                c.at(&format!("approvals.actions.{verb}.approve")),
                "is empty; a change needs a second person with an approving role",
            );
        }
        let mut check = |list: Option<Vec<String>>, what: &str, default: &[&str]| -> Vec<String> {
            let list = list.unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect());
            for r in &list {
                if !ROLES.contains(&r.as_str()) {
                    c.error(
                        c.at(&format!("approvals.actions.{verb}.{what}")),
                        format!("{r:?} is not a role; one of {}", ROLES.join(", ")),
                    );
                }
            }
            list
        };
        let request = check(policy.request, "request", &DEFAULT_REQUESTERS);
        let approve = check(policy.approve, "approve", &DEFAULT_APPROVERS);
        actions.insert(verb, (request, approve));
    }
    let channels = channel_list(c, "approvals.channels", &raw.channels);
    let mut cooldowns = BTreeMap::new();
    cooldowns.insert("rollback".to_owned(), Duration::from_secs(600));
    for (verb, d) in raw.cooldowns {
        if !known(c, "cooldowns", &verb) {
            continue;
        }
        let key = format!("approvals.cooldowns.{verb}");
        // `off` turns a cooldown off (durations are never zero).
        let d = if d == "off" {
            Duration::ZERO
        } else {
            c.duration(&key, Some(d), Duration::ZERO, (1, 86_400))
        };
        cooldowns.insert(verb, d);
    }
    ApprovalsConfig {
        roles,
        actions,
        required: c.number("approvals.required", raw.required, 1, (1, 5)) as usize,
        expiry: c.duration(
            "approvals.expiry",
            raw.expiry,
            Duration::from_secs(900),
            (10, 86_400),
        ),
        channels,
        cooldowns,
        rollout_timeout: c.duration(
            "approvals.rollout_timeout",
            raw.rollout_timeout,
            Duration::from_secs(300),
            (1, 3600),
        ),
        watch: c.duration(
            "approvals.watch",
            raw.watch,
            Duration::from_secs(900),
            (1, 86_400),
        ),
        watch_every: c.duration(
            "approvals.watch_every",
            raw.watch_every,
            Duration::from_secs(30),
            (1, 3600),
        ),
        lease: c.duration(
            "approvals.lease",
            raw.lease,
            Duration::from_secs(60),
            (1, 3600),
        ),
        group_cache_ttl: c.duration(
            "approvals.group_cache_ttl",
            raw.group_cache_ttl,
            Duration::from_secs(300),
            (1, 86_400),
        ),
    }
}

/// Who may request a destructive step when the configuration does not say.
/// The verbs whose policy governs a change (`ActionKind::policy_verb`), sorted.
fn change_verbs() -> Vec<&'static str> {
    let mut verbs: Vec<&str> = ActionKind::ALL
        .iter()
        .filter(|k| k.is_destructive())
        .map(|k| k.policy_verb())
        .collect();
    verbs.sort_unstable();
    verbs.dedup();
    verbs
}

pub const DEFAULT_REQUESTERS: [&str; 3] = ["operator", "approver", "incident_commander"];
/// Who may approve one when the configuration does not say.
pub const DEFAULT_APPROVERS: [&str; 2] = ["approver", "incident_commander"];

fn compile_incidents(c: &mut Compiler<'_>, raw: RawIncidents) -> IncidentsConfig {
    let channel_at = |c: &mut Compiler<'_>, value: Option<(String, String)>| {
        let (v, location) = value?;
        v.parse::<ChannelId>()
            .map_err(|e| c.error(location, format!("{v:?} {e}")))
            .ok()
    };
    let channel = {
        let v = c.layered("ODORBOT_INCIDENT_CHANNEL", "incidents.channel", raw.channel);
        channel_at(c, v)
    };
    let maintenance_channel = {
        let v = raw
            .maintenance_channel
            .map(|v| (v, c.at("incidents.maintenance_channel")));
        channel_at(c, v)
    };
    let tz_name = raw.timezone.unwrap_or_else(|| "UTC".to_owned());
    let tz = jiff::tz::TimeZone::get(&tz_name).unwrap_or_else(|_| {
        c.error(
            c.at("incidents.timezone"),
            format!("{tz_name:?} is not a time zone name such as Europe/London"),
        );
        jiff::tz::TimeZone::UTC
    });
    let mut holidays = Vec::new();
    for (i, h) in raw.holidays.iter().enumerate() {
        match h.parse::<jiff::civil::Date>() {
            Ok(d) => holidays.push(d),
            Err(_) => c.error(
                c.at(&format!("incidents.holidays[{i}]")),
                format!("{h:?} is not a date such as 2026-12-25"),
            ),
        }
    }
    let mut roster = Roster::default();
    for (key, targets) in raw.roster {
        let Some(role) = Role::ALL.into_iter().find(|r| r.key() == key) else {
            let keys: Vec<&str> = Role::ALL.iter().map(|r| r.key()).collect();
            c.error(
                c.at(&format!("incidents.roster.{key}")),
                format!("is not a role; one of {}", keys.join(", ")),
            );
            continue;
        };
        let parsed = c.targets(&format!("incidents.roster.{key}"), &targets);
        roster.roles.insert(role, parsed);
    }
    // Only what is configured is kept: the runbook's matrix is the default, applied when
    // the catalog is loaded.
    let mut escalation = PolicyOverrides {
        status_every: raw.status_every.map(|every| {
            c.duration(
                "incidents.status_every",
                Some(every),
                Duration::from_secs(900),
                (1, 86_400),
            )
        }),
        rules: Vec::new(),
    };
    for (key, rule) in raw.escalation {
        let Ok(severity) = key.parse::<Severity>() else {
            c.error(
                c.at(&format!("incidents.escalation.{key}")),
                "is not a severity; one of critical, high, medium, low",
            );
            continue;
        };
        let base = format!("incidents.escalation.{key}");
        let mut o = RuleOverride::default();
        if rule.ack_within.is_some() {
            o.ack_within = Some(c.duration(
                &format!("{base}.ack_within"),
                rule.ack_within,
                Duration::from_secs(300),
                (1, 7 * 86_400),
            ));
        }
        if let Some(raw) = rule.escalate_unresolved {
            let d = c.duration(
                &format!("{base}.escalate_unresolved"),
                Some(raw),
                Duration::from_secs(1800),
                (1, 30 * 86_400),
            );
            o.escalate_unresolved = Some(Deadline::After(d));
        }
        if let Some(days) = rule.escalate_unresolved_business_days {
            let n = c.number(
                &format!("{base}.escalate_unresolved_business_days"),
                Some(days),
                1,
                (1, 30),
            );
            o.escalate_unresolved = Some(Deadline::BusinessDays(n as u32));
        }
        escalation.rules.push((severity, o));
    }
    let alerts_token = match c.secret("ODORBOT_ALERTS_TOKEN", raw.alerts_token_file) {
        Secret::Found(v, location) => {
            if v.len() < 16 {
                c.error(
                    location,
                    "is shorter than 16 characters; use a long random token",
                );
            }
            Some(SecretString::from(v))
        }
        Secret::Unset | Secret::Unreadable => None,
    };
    if alerts_token.is_some() && channel.is_none() {
        c.error(
            c.at("incidents.channel"),
            "is required when the alert webhook has a token: alerts open incidents there",
        );
    }
    IncidentsConfig {
        channel,
        maintenance_channel,
        calendar: Calendar::new(tz, holidays),
        roster,
        escalation,
        scheduler_poll: c.duration(
            "incidents.scheduler_poll",
            raw.scheduler_poll,
            Duration::from_secs(5),
            (1, 300),
        ),
        timer_lease: c.duration(
            "incidents.timer_lease",
            raw.timer_lease,
            Duration::from_secs(30),
            (1, 600),
        ),
        alerts_token,
        alerts_max_body: c.number(
            "incidents.alerts_max_body_bytes",
            raw.alerts_max_body_bytes,
            1 << 20,
            (1024, 16 << 20),
        ) as usize,
        storm: compile_storm(c, raw.storm),
    }
}

fn compile_storm(c: &mut Compiler<'_>, raw: RawStorm) -> StormPolicy {
    let d = StormPolicy::default();
    StormPolicy {
        threshold: c.number(
            "incidents.storm.threshold",
            raw.threshold,
            d.threshold as i64,
            (1, 1000),
        ) as usize,
        window: c.duration("incidents.storm.window", raw.window, d.window, (1, 3600)),
        quiet: c.duration("incidents.storm.quiet", raw.quiet, d.quiet, (1, 86_400)),
    }
}

fn compile_probes(c: &mut Compiler<'_>, raw: RawProbes, namespace: &K8sName) -> ProbesConfig {
    let percent = |c: &mut Compiler<'_>, key: &str, v: Option<f64>, default: f64| match v {
        None => default,
        Some(p) if (0.0..=100.0).contains(&p) => p / 100.0,
        Some(p) => {
            c.error(c.at(key), format!("{p} is not a percentage (0 to 100)"));
            default
        }
    };
    let defaults = Thresholds::default();
    let thresholds = Thresholds {
        error_rate_max: percent(
            c,
            "probes.error_rate_max_percent",
            raw.error_rate_max_percent,
            defaults.error_rate_max,
        ),
        p95_max_secs: c.number("probes.p95_max_ms", raw.p95_max_ms, 1000, (1, 600_000)) as f64
            / 1000.0,
        disk_free_min: percent(
            c,
            "probes.disk_free_min_percent",
            raw.disk_free_min_percent,
            defaults.disk_free_min,
        ),
        cache_hit_min: percent(
            c,
            "probes.cache_hit_min_percent",
            raw.cache_hit_min_percent,
            defaults.cache_hit_min,
        ),
    };
    // Unset means not configured: nothing is probed, and the reply says which key to set.
    let tls_host = match c.layered("ODORBOT_TLS_HOST", "probes.tls_host", raw.tls_host) {
        None => None,
        Some((v, location)) => {
            let host = v.rsplit_once(':').map_or(v.as_str(), |(h, _)| h);
            if host.is_empty()
                || !host
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ".-".contains(ch))
            {
                c.error(location, format!("{v:?} is not a host or host:port"));
                None
            } else {
                Some(v)
            }
        }
    };
    let job = raw.job.unwrap_or_else(|| "odordiff-api".to_owned());
    if !job
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || "-_.:".contains(ch))
    {
        c.error(
            c.at("probes.job"),
            format!("{job:?} is not a job label value"),
        );
    }
    let endpoint_label = raw.endpoint_label.unwrap_or_else(|| "endpoint".to_owned());
    if !crate::domain::signals::is_label_name(&endpoint_label) {
        c.error(
            c.at("probes.endpoint_label"),
            format!("{endpoint_label:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
        );
    }
    let health_url = c.url("ODORBOT_HEALTH_URL", "probes.health_url", raw.health_url);
    let link = |c: &mut Compiler<'_>, key: &str, raw: Option<String>, default: Option<&str>| {
        let raw = raw.or(default.map(str::to_owned))?;
        c.url("", key, Some(raw)).map(String::from)
    };
    ProbesConfig {
        prometheus_url: c.url(
            "ODORBOT_PROMETHEUS_URL",
            "probes.prometheus_url",
            raw.prometheus_url,
        ),
        metrics_url: c.url("ODORBOT_METRICS_URL", "probes.metrics_url", raw.metrics_url),
        job,
        endpoint_label,
        namespace: namespace.to_string(),
        rate_window: c.duration(
            "probes.rate_window",
            raw.rate_window,
            Duration::from_secs(300),
            (10, 86_400),
        ),
        postgres_url: c.secret_url(
            "ODORBOT_POSTGRES_URL",
            raw.postgres_url_file,
            &["postgres", "postgresql"],
        ),
        pgbouncer_url: c.secret_url(
            "ODORBOT_PGBOUNCER_URL",
            raw.pgbouncer_url_file,
            &["postgres", "postgresql"],
        ),
        app_database_url: c.secret_url(
            "ODORBOT_APP_DATABASE_URL",
            raw.app_database_url_file,
            &["postgres", "postgresql"],
        ),
        redis_url: c.secret_url(
            "ODORBOT_REDIS_URL",
            raw.redis_url_file,
            &["redis", "rediss"],
        ),
        redis_ca_file: {
            let path = c.layered(
                "ODORBOT_REDIS_CA_FILE",
                "probes.redis_ca_file",
                raw.redis_ca_file,
            );
            c.file(path)
        },
        health_url,
        tls_host,
        timeout: c.duration(
            "probes.timeout",
            raw.timeout,
            Duration::from_secs(3),
            (1, 60),
        ),
        deadline: c.duration(
            "probes.deadline",
            raw.deadline,
            Duration::from_secs(8),
            (1, 120),
        ),
        thresholds,
        links: Links {
            dashboard: link(
                c,
                "probes.dashboard_url",
                raw.dashboard_url,
                Some("https://grafana.odordiff.ai"),
            ),
            logs: link(
                c,
                "probes.logs_url",
                raw.logs_url,
                Some("https://logs.odordiff.ai"),
            ),
            traces: link(c, "probes.traces_url", raw.traces_url, None),
        },
    }
}

fn compile_slack(c: &mut Compiler<'_>, raw: RawSlack) -> SlackConfig {
    let api_url = match c.layered("SLACK_API_URL", "slack.api_url", raw.api_url) {
        None => Url::parse(DEFAULT_SLACK_API_URL).expect("default URL parses"),
        Some((v, location)) => match Url::parse(&v) {
            Ok(u) if matches!(u.scheme(), "https" | "http") => u,
            _ => {
                c.error(location, format!("{v:?} is not an http(s) URL"));
                Url::parse(DEFAULT_SLACK_API_URL).expect("default URL parses")
            }
        },
    };
    SlackConfig {
        api_url,
        app_token: c.token(
            "SLACK_APP_TOKEN",
            "slack.app_token_file",
            raw.app_token_file,
            "xapp-",
        ),
        bot_token: c.token(
            "SLACK_BOT_TOKEN",
            "slack.bot_token_file",
            raw.bot_token_file,
            "xoxb-",
        ),
        connections: c.number("slack.connections", raw.connections, 2, (2, 10)) as usize,
        ping_interval: c.duration(
            "slack.ping_interval",
            raw.ping_interval,
            Duration::from_secs(10),
            (1, 300),
        ),
        reconnect_max_backoff: c.duration(
            "slack.reconnect_max_backoff",
            raw.reconnect_max_backoff,
            Duration::from_secs(30),
            (1, 600),
        ),
        channel_rate_per_sec: c.number(
            "slack.channel_rate_per_sec",
            raw.channel_rate_per_sec,
            1,
            (1, 50),
        ) as u32,
        channel_burst: c.number("slack.channel_burst", raw.channel_burst, 3, (1, 50)) as u32,
        send_deadline: c.duration(
            "slack.send_deadline",
            raw.send_deadline,
            Duration::from_secs(600),
            (1, 86_400),
        ),
        resend_check: raw.resend_check.unwrap_or(true),
    }
}

/// A map-backed environment, for tests and `check`.
pub fn env_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use secrecy::ExposeSecret;

    use super::*;

    const TOKENS: &[(&str, &str)] = &[
        ("SLACK_APP_TOKEN", "xapp-1-abc"),
        ("SLACK_BOT_TOKEN", "xoxb-123-abc"),
    ];

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn tokens_alone_start_on_defaults() {
        let c = Config::load(None, &env_from(TOKENS)).unwrap();
        assert_eq!(c.slack.api_url.as_str(), DEFAULT_SLACK_API_URL);
        assert_eq!(c.store.url.expose_secret(), DEFAULT_STORE_URL);
        assert_eq!(c.slack.connections, 2);
        assert_eq!(c.kubernetes.namespace.as_str(), "odordiff");
        assert_eq!(c.kubernetes.velero_namespace.as_str(), "odordiff");
        assert_eq!(c.slack.bot_token.expose_secret(), "xoxb-123-abc");
    }

    /// The runbook's matrix is the default, so configuration keeps only what it sets.
    #[test]
    fn escalation_keeps_only_what_is_configured() {
        let c = Config::load(None, &env_from(TOKENS)).unwrap();
        assert_eq!(c.incidents.escalation, PolicyOverrides::default());
        let f = file(
            "incidents:\n  status_every: 5m\n  escalation:\n    high: {ack_within: 1m}\n    low: {escalate_unresolved_business_days: 2}\n",
        );
        let c = Config::load(Some(f.path()), &env_from(TOKENS)).unwrap();
        let o = &c.incidents.escalation;
        assert_eq!(o.status_every, Some(Duration::from_secs(300)));
        assert_eq!(
            o.rules,
            [
                (
                    Severity::High,
                    RuleOverride {
                        ack_within: Some(Duration::from_secs(60)),
                        escalate_unresolved: None,
                    }
                ),
                (
                    Severity::Low,
                    RuleOverride {
                        ack_within: None,
                        escalate_unresolved: Some(Deadline::BusinessDays(2)),
                    }
                ),
            ]
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let f = file("slack:\n  api_url: http://file.example/api/\nstore:\n  url: sqlite://a.db\n");
        let mut pairs = TOKENS.to_vec();
        pairs.push(("SLACK_API_URL", "http://127.0.0.1:1/api/"));
        let c = Config::load(Some(f.path()), &env_from(&pairs)).unwrap();
        assert_eq!(c.slack.api_url.as_str(), "http://127.0.0.1:1/api/");
        assert_eq!(c.store.url.expose_secret(), "sqlite://a.db");
    }

    #[test]
    fn runbook_path_comes_from_the_file_or_the_environment() {
        let c = Config::load(None, &env_from(TOKENS)).unwrap();
        assert_eq!(c.runbook.path, None);
        let f = file("runbook:\n  path: runbooks/odordiff-2.yaml\n");
        let c = Config::load(Some(f.path()), &env_from(TOKENS)).unwrap();
        assert_eq!(
            c.runbook.path.as_deref(),
            Some(Path::new("runbooks/odordiff-2.yaml"))
        );
        let mut pairs = TOKENS.to_vec();
        pairs.push(("ODORBOT_RUNBOOK", "/etc/odorbot/runbook.yaml"));
        let c = Config::load(Some(f.path()), &env_from(&pairs)).unwrap();
        assert_eq!(
            c.runbook.path.as_deref(),
            Some(Path::new("/etc/odorbot/runbook.yaml"))
        );
    }

    #[test]
    fn tokens_come_from_files() {
        let app = file("xapp-1-from-file\n");
        let f = file(&format!(
            "slack:\n  app_token_file: {}\n",
            app.path().display()
        ));
        let c = Config::load(
            Some(f.path()),
            &env_from(&[("SLACK_BOT_TOKEN", "xoxb-1-xyz0")]),
        )
        .unwrap();
        assert_eq!(c.slack.app_token.expose_secret(), "xapp-1-from-file");
    }

    #[test]
    fn a_secret_file_without_an_end_is_refused_not_read_whole() {
        let errs = Config::load_str(
            "t.yaml",
            "slack:\n  app_token_file: /dev/zero\n",
            &env_from(&[("SLACK_BOT_TOKEN", "xoxb-1-xyz0")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            errs.contains("secret file /dev/zero: cannot be read: longer than 65536 bytes"),
            "{errs}"
        );
    }

    #[test]
    fn a_named_file_that_is_a_fifo_is_refused_without_opening_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("kube-config");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Opening the FIFO would block this test for good; refusing it returns at once.
        let errs = Config::load_str(
            "t.yaml",
            &format!("kubernetes:\n  kubeconfig: {}\n", fifo.display()),
            &env_from(TOKENS),
        )
        .unwrap_err()
        .to_string();
        assert!(errs.contains("not a file"), "{errs}");
    }

    #[test]
    fn every_error_is_reported_with_its_location() {
        let f = file(
            "slack:\n  api_url: ftp://x\n  connections: 40\n  ping_interval: soon\nstore:\n  url: mysql://db\nengine:\n  workers: 0\nkubernetes:\n  namespace: Odor_Diff\n  velero_namespace: Velero_NS\nlog:\n  format: xml\nprobes:\n  endpoint_label: \"path}\"\n",
        );
        let errs =
            Config::load(Some(f.path()), &env_from(&[("SLACK_BOT_TOKEN", "nope")])).unwrap_err();
        let text = errs.to_string();
        let name = f.path().display().to_string();
        for want in [
            format!("{name}: slack.api_url: \"ftp://x\" is not an http(s) URL"),
            format!("{name}: slack.app_token_file: no Slack token"),
            "environment SLACK_BOT_TOKEN: does not look like a xoxb-… token".to_owned(),
            format!("{name}: slack.connections: 40 is out of range (2 to 10)"),
            format!("{name}: slack.ping_interval: \"soon\" is not a duration"),
            format!("{name}: store.url: must start with sqlite:"),
            format!("{name}: engine.workers: 0 is out of range"),
            format!("{name}: kubernetes.namespace: \"Odor_Diff\" must use only lowercase"),
            format!("{name}: kubernetes.velero_namespace: \"Velero_NS\" must use only lowercase"),
            format!("{name}: log.format: \"xml\" is not json or text"),
            format!("{name}: probes.endpoint_label: \"path}}\" is not a Prometheus label name"),
        ] {
            assert!(text.contains(&want), "missing {want:?} in\n{text}");
        }
        assert_eq!(errs.0.len(), 11, "{text}");
        assert!(!text.contains("nope"), "a token value leaked: {text}");
    }

    /// Every path the configuration names must be a readable file, found by `check`.
    #[test]
    fn paths_that_name_no_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(&format!(
            "kubernetes:\n  kubeconfig: {d}/kube-config\nprobes:\n  redis_ca_file: {d}\n  redis_url_file: {d}/redis-url\n",
            d = dir.path().display()
        ));
        let text = Config::load(Some(f.path()), &env_from(TOKENS))
            .unwrap_err()
            .to_string();
        let name = f.path().display().to_string();
        for want in [
            format!(
                "{name}: kubernetes.kubeconfig: {}/kube-config: cannot be read",
                dir.path().display()
            ),
            // A directory is not a file.
            format!(
                "{name}: probes.redis_ca_file: {}: cannot be read",
                dir.path().display()
            ),
            format!(
                "secret file {}/redis-url: cannot be read",
                dir.path().display()
            ),
        ] {
            assert!(text.contains(&want), "missing {want:?} in\n{text}");
        }
        std::fs::write(dir.path().join("kube-config"), "apiVersion: v1\n").unwrap();
        let f = file(&format!(
            "kubernetes:\n  kubeconfig: {}/kube-config\n",
            dir.path().display()
        ));
        assert!(Config::load(Some(f.path()), &env_from(TOKENS)).is_ok());
    }

    /// Policy is strict: a typo or an empty list is an error with its location, never a
    /// silent fall back to the defaults.
    #[test]
    fn policy_typos_and_empty_lists_are_errors() {
        let f = file(
            "approvals:\n  actions:\n    rolback: {approve: [approver]}\n    restart: {approve: []}\n  cooldowns: {scal: 5m}\naccess:\n  channels: [nope]\n  scopes:\n    reads: [anyone]\n    sensitive: [operators]\n    respond: []\n",
        );
        let errs = Config::load(Some(f.path()), &env_from(TOKENS)).unwrap_err();
        let text = errs.to_string();
        for want in [
            "approvals.actions.rolback: \"rolback\" is not a verb that changes anything; one of",
            "approvals.actions.restart.approve: is empty",
            "approvals.cooldowns.scal: \"scal\" is not a verb",
            "access.channels[0]: \"nope\"",
            "access.scopes.reads: \"reads\" is not a scope",
            "access.scopes.sensitive: \"operators\" is not a role",
            "access.scopes.respond: is empty",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert_eq!(errs.0.len(), 7, "{text}");
        let f =
            file("access:\n  channels: [C0OPS]\n  scopes:\n    sensitive: [operator, viewer]\n");
        let c = Config::load(Some(f.path()), &env_from(TOKENS)).unwrap();
        assert_eq!(
            c.access.grantees(Scope::Sensitive),
            [Grantee::Operator, Grantee::Viewer]
        );
        assert_eq!(
            c.access.grantees(Scope::Resolve),
            Scope::Resolve.default_grantees()
        );
        assert_eq!(c.access.channels[0].as_str(), "C0OPS");
    }

    #[test]
    fn an_alert_token_needs_an_incident_channel() {
        let mut pairs = TOKENS.to_vec();
        pairs.push(("ODORBOT_ALERTS_TOKEN", "a-long-enough-alert-token"));
        let errs = Config::load(None, &env_from(&pairs)).unwrap_err();
        assert_eq!(errs.0.len(), 1, "{errs}");
        assert!(errs.0[0].location.ends_with("incidents.channel"), "{errs}");
        pairs.push(("ODORBOT_INCIDENT_CHANNEL", "C0INCIDENTS"));
        let c = Config::load(None, &env_from(&pairs)).unwrap();
        assert_eq!(c.incidents.channel.unwrap().as_str(), "C0INCIDENTS");
        assert_eq!(c.approvals.required, 1);
        assert_eq!(c.approvals.cooldowns["rollback"], Duration::from_secs(600));
    }

    #[test]
    fn syntax_errors_and_unknown_keys_have_line_and_column() {
        let f = file("slack:\n  connections: [1\n");
        let errs = Config::load(Some(f.path()), &env_from(TOKENS)).unwrap_err();
        assert!(errs.0[0].location.contains(':'), "{errs}");
        let f = file("slack:\n  bot_token: xoxb-secret-value\n");
        let errs = Config::load(Some(f.path()), &env_from(TOKENS)).unwrap_err();
        let text = errs.to_string();
        assert!(text.contains(":2:"), "{text}");
        assert!(
            text.contains("tokens never go in the config file"),
            "{text}"
        );
        assert!(!text.contains("xoxb-secret-value"), "{text}");
    }
}
