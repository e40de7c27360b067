//! The typed values that runbook actions take: each parses from the text a catalog or a
//! person supplies, or says precisely why not.
//!
//! Everything here is pure. The types are what the cluster and probe layers receive, so a
//! value that reaches them has already been checked.

use std::fmt;
use std::time::Duration;

use crate::domain::args::{ArgKind, Filter, Value, format_duration, parse_duration};
use crate::domain::ids::K8sName;

/// A value type that can fill an action parameter, fixed in the catalog or supplied at
/// request time.
pub trait ArgType: Sized + Clone + fmt::Debug + PartialEq + 'static {
    /// What a value looks like, for errors and prompts.
    fn expected() -> String;

    /// Parses one value.
    ///
    /// # Errors
    /// A predicate such as `is not a duration: …`, meant to follow the quoted input.
    fn parse_arg(raw: &str) -> Result<Self, String>;

    /// The value as a person would type it; `parse_arg(render(v)) == v`.
    fn render(&self) -> String;

    /// A number that orders values, for types whose placeholders may carry `min`/`max`
    /// (counts, durations, quantities). `None` for types without a meaningful order.
    fn order_key(&self) -> Option<i128> {
        None
    }
}

/// One PostgreSQL backend as it was seen: its pid and when it started (microseconds since
/// the Unix epoch). A pid alone is reused by later sessions; with its start time it names
/// exactly one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    pub pid: i32,
    pub started_micros: i64,
}

/// The backends an approval binds (`db terminate-long` terminates these and no others),
/// written `pid@start,pid@start`; sorted, at most [`Backends::MAX`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Backends(Vec<Backend>);

impl Backends {
    /// As many as the preview lists.
    pub const MAX: usize = 20;

    /// # Errors
    /// More than [`Backends::MAX`].
    pub fn new(mut list: Vec<Backend>) -> Result<Self, String> {
        if list.len() > Self::MAX {
            return Err(format!("lists more than {} sessions", Self::MAX));
        }
        list.sort();
        list.dedup();
        Ok(Self(list))
    }

    pub fn get(&self) -> &[Backend] {
        &self.0
    }
}

impl ArgType for Backends {
    fn expected() -> String {
        format!("up to {} sessions as pid@start,pid@start", Self::MAX)
    }
    fn parse_arg(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Ok(Self::default());
        }
        let list = raw
            .split(',')
            .map(|one| {
                let bad = || format!("has {one:?}, not pid@start");
                let (pid, start) = one.split_once('@').ok_or_else(bad)?;
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if !(digits(pid) && digits(start)) {
                    return Err(bad());
                }
                Ok(Backend {
                    pid: pid.parse().map_err(|_| bad())?,
                    started_micros: start.parse().map_err(|_| bad())?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Self::new(list)
    }
    fn render(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{}@{}", b.pid, b.started_micros))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A moment to the second in RFC 3339 (`2026-12-01T10:00:00Z`), such as the
/// `restartedAt` a restart stamps on its pods' template: fixed when a request is made, so
/// the approved dry run and the execution write the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(jiff::Timestamp);

impl Stamp {
    /// The whole second `unix` seconds after the epoch; `None` out of range.
    pub fn from_unix(unix: i64) -> Option<Self> {
        jiff::Timestamp::from_second(unix).ok().map(Self)
    }
}

impl ArgType for Stamp {
    fn expected() -> String {
        "a UTC time such as 2026-12-01T10:00:00Z".into()
    }
    fn parse_arg(raw: &str) -> Result<Self, String> {
        let t: jiff::Timestamp = raw
            .parse()
            .map_err(|_| "is not a UTC time such as 2026-12-01T10:00:00Z".to_owned())?;
        if t.subsec_nanosecond() != 0 || !raw.ends_with('Z') {
            return Err("is not a UTC time to the second, such as 2026-12-01T10:00:00Z".into());
        }
        Ok(Self(t))
    }
    fn render(&self) -> String {
        self.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
    fn order_key(&self) -> Option<i128> {
        Some(i128::from(self.0.as_second()))
    }
}

impl ArgType for K8sName {
    fn expected() -> String {
        ArgKind::Name.describe()
    }
    fn parse_arg(raw: &str) -> Result<Self, String> {
        raw.parse().map_err(|e| format!("{e}"))
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl ArgType for Duration {
    fn expected() -> String {
        "a duration such as 90s, 10m or 2h".into()
    }
    fn parse_arg(raw: &str) -> Result<Self, String> {
        parse_duration(raw).map_err(|e| e.to_string())
    }
    fn render(&self) -> String {
        format_duration(*self)
    }
    fn order_key(&self) -> Option<i128> {
        Some(i128::from(self.as_secs()))
    }
}

impl ArgType for Filter {
    fn expected() -> String {
        ArgKind::Regex.describe()
    }
    fn parse_arg(raw: &str) -> Result<Self, String> {
        Filter::new(raw).map_err(|e| e.to_string())
    }
    fn render(&self) -> String {
        self.as_str().to_owned()
    }
}

impl ArgType for bool {
    fn expected() -> String {
        "true or false".into()
    }
    fn parse_arg(raw: &str) -> Result<Self, String> {
        match raw {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("is not true or false".into()),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

/// Declares a whole-number newtype with inclusive bounds that hold for every use of it;
/// a placeholder may narrow them further.
macro_rules! bounded_count {
    ($(#[$doc:meta])* $name:ident, $min:literal ..= $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u32);

        impl $name {
            pub const MIN: u32 = $min;
            pub const MAX: u32 = $max;

            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl ArgType for $name {
            fn expected() -> String {
                Self::kind().describe()
            }
            fn parse_arg(raw: &str) -> Result<Self, String> {
                match Self::kind().parse(raw) {
                    // The bounds fit in u32, so the conversion cannot fail.
                    Ok(Value::Int(n)) => Ok(Self(u32::try_from(n).unwrap_or(Self::MAX))),
                    Ok(_) => Err("is not a whole number".into()),
                    Err(e) => Err(e.to_string()),
                }
            }
            fn render(&self) -> String {
                self.0.to_string()
            }
            fn order_key(&self) -> Option<i128> {
                Some(i128::from(self.0))
            }
        }

        impl $name {
            fn kind() -> ArgKind {
                ArgKind::Int {
                    min: i64::from(Self::MIN),
                    max: i64::from(Self::MAX),
                }
            }
        }
    };
}

bounded_count!(
    /// A Deployment's replica count. Zero is allowed: containment scales the API to zero.
    Replicas, 0..=crate::domain::args::MAX_REPLICAS
);
bounded_count!(
    /// A rollout or Helm revision; revisions start at 1.
    Revision, 1..=crate::domain::args::MAX_REVISION
);
bounded_count!(
    /// Log lines to fetch per pod; enough to see a crash, small enough for a Slack thread.
    LogTail, 1..=1000
);
bounded_count!(
    /// Rows or keys returned by a probe.
    RowLimit, 1..=1000
);
bounded_count!(
    /// A percentage target, such as an HPA's CPU utilisation.
    Percent, 1..=100
);

/// Declares a string newtype checked by a predicate.
macro_rules! checked_text {
    ($(#[$doc:meta])* $name:ident, $expected:expr, $check:expr) => {
        checked_text!($(#[$doc])* $name, $expected, $check, |_| None);
    };
    ($(#[$doc:meta])* $name:ident, $expected:expr, $check:expr, $order:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ArgType for $name {
            fn expected() -> String {
                String::from($expected)
            }
            fn parse_arg(raw: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(raw).map(|()| Self(raw.to_owned()))
            }
            fn render(&self) -> String {
                self.0.clone()
            }
            fn order_key(&self) -> Option<i128> {
                let order: fn(&Self) -> Option<i128> = $order;
                order(self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_text!(
    /// A path on the service's public endpoint, such as `/health`. No query, no `..`:
    /// probes only read fixed health paths.
    HttpPath,
    "a path such as /health: '/', then letters, digits, '-', '_', '.', '~', '/'",
    |s| {
        let ok = s.starts_with('/')
            && s.len() <= 200
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'))
            && !s.contains("//")
            && !s.split('/').any(|seg| seg == ".." || seg == ".");
        if ok { Ok(()) } else { Err(format!("is not {}", HttpPath::expected())) }
    }
);

checked_text!(
    /// A DNS host name such as `api.odordiff.ai` (RFC 1123, lowercase).
    HostName,
    "a host name such as api.odordiff.ai",
    |s| s.parse::<K8sName>().map(|_| ()).map_err(|e| e.to_string())
);

checked_text!(
    /// A value written into a ConfigMap: one line of printable text. A value made only of
    /// digits orders as a number, so a placeholder for a setting such as a TTL in seconds
    /// can carry bounds.
    ConfigValue,
    "one line of text, at most 1024 characters",
    |s| single_line(s, 1024),
    |v| {
        let digits = !v.0.is_empty() && v.0.len() <= 18 && v.0.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| v.0.parse().ok()).flatten()
    }
);

checked_text!(
    /// An annotation value; short, one line.
    AnnotationValue,
    "one line of text, at most 256 characters",
    |s| {
        if s.is_empty() {
            return Ok(());
        }
        single_line(s, 256)
    }
);

checked_text!(
    /// A Redis `SCAN MATCH` glob such as `session:*`: bounded, no whitespace.
    KeyPattern,
    "a key pattern such as session:* (at most 100 characters, no spaces)",
    |s| {
        let ok = (1..=100).contains(&s.chars().count())
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok { Ok(()) } else { Err(format!("is not {}", KeyPattern::expected())) }
    }
);

checked_text!(
    /// Guidance shown to people, for what odorbot deliberately does not automate.
    NoteText,
    "text of at most 1000 characters",
    |s| {
        let len = s.chars().count();
        if s.trim().is_empty() {
            Err("is empty".into())
        } else if len > 1000 {
            Err(format!("is {len} characters long; at most 1000 are allowed"))
        } else if s.chars().any(|c| c.is_control() && c != '\n') {
            Err("contains a control character".into())
        } else {
            Ok(())
        }
    }
);

fn single_line(s: &str, max: usize) -> Result<(), String> {
    let len = s.chars().count();
    if len > max {
        Err(format!(
            "is {len} characters long; at most {max} are allowed"
        ))
    } else if s.chars().any(char::is_control) {
        Err("must be one line without control characters".into())
    } else {
        Ok(())
    }
}

/// Declares an id in kebab case: lowercase words joined by single hyphens.
macro_rules! kebab_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        checked_text!(
            $(#[$doc])*
            $name,
            concat!("a ", $what, " in kebab case such as api-service-down (at most 63 characters)"),
            |s| {
                let ok = (1..=63).contains(&s.len())
                    && s.split('-').all(|w| {
                        !w.is_empty()
                            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    });
                if ok { Ok(()) } else { Err(format!("is not {}", $name::expected())) }
            }
        );
    };
}

kebab_id!(
    /// The id of a catalog entry: an alert, procedure, query, checklist, …
    EntryId,
    "catalog id"
);
kebab_id!(
    /// A roster role such as `primary` or `security`; configuration maps it to people.
    RoleId,
    "role id"
);

checked_text!(
    /// The name of a request-time parameter, e.g. `replicas` or `ttl_secs`.
    ParamName,
    "a parameter name: lowercase letters, digits and '_', starting with a letter, at most 32",
    |s| {
        let ok = (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok { Ok(()) } else { Err(format!("is not {}", ParamName::expected())) }
    }
);

/// Declares a closed set of words, each with its catalog spelling.
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
        }

        impl ArgType for $name {
            fn expected() -> String {
                let words: Vec<&str> = Self::ALL.iter().map(|w| w.as_str()).collect();
                format!("one of {}", words.join(", "))
            }
            fn parse_arg(raw: &str) -> Result<Self, String> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|w| w.as_str() == raw)
                    .ok_or_else(|| format!("is not {}", Self::expected()))
            }
            fn render(&self) -> String {
                self.as_str().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum!(
    /// A signal read from the service's metrics (a Prometheus query or a `/metrics` scrape;
    /// the probes decide which).
    MetricSignal {
        /// `http_requests_total`, per second.
        RequestRate = "request_rate",
        /// The 95th percentile of `http_request_duration_seconds`.
        P95Latency = "p95_latency",
        /// The share of 5xx responses in `http_requests_total`.
        ErrorRate = "error_rate",
        /// `http_connections_active`.
        ActiveConnections = "active_connections",
        /// `odordiff_daily_active_users`.
        DailyActiveUsers = "daily_active_users",
        /// `odordiff_generation_requests_total`.
        GenerationRequests = "generation_requests",
        /// `odordiff_generation_success_total`.
        GenerationSuccess = "generation_success",
        /// Persistent volume usage.
        VolumeUsage = "volume_usage",
    }
);

word_enum!(
    /// A `pg_stat_activity.state`, in catalog spelling.
    DbState {
        Active = "active",
        Idle = "idle",
        IdleInTransaction = "idle_in_transaction",
        IdleInTransactionAborted = "idle_in_transaction_aborted",
        FastpathFunctionCall = "fastpath_function_call",
        Disabled = "disabled",
    }
);

impl DbState {
    /// The state as PostgreSQL writes it in `pg_stat_activity`.
    pub fn as_pg(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Idle => "idle",
            Self::IdleInTransaction => "idle in transaction",
            Self::IdleInTransactionAborted => "idle in transaction (aborted)",
            Self::FastpathFunctionCall => "fastpath function call",
            Self::Disabled => "disabled",
        }
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters (alphanumerics at both ends; `-`, `_`, `.` inside).
fn check_label_key(key: &str) -> Result<(), String> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            prefix
                .parse::<K8sName>()
                .map_err(|e| format!("has a key prefix {prefix:?} that {e}"))?;
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err(format!("has an empty key in {key:?}"));
    }
    check_label_word(name).map_err(|why| format!("has a key {key:?} that {why}"))
}

/// A label value: empty, or a name-like word of at most 63 characters.
fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_label_word(value).map_err(|why| format!("has a label value {value:?} that {why}"))
}

fn check_label_word(w: &str) -> Result<(), &'static str> {
    if w.len() > 63 {
        return Err("is longer than 63 characters");
    }
    if !w
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may use only letters, digits, '-', '_' and '.'");
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !alnum(w.bytes().next()) || !alnum(w.bytes().last()) {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

checked_text!(
    /// An annotation key: an optional DNS-subdomain prefix and `/`, then a name.
    AnnotationKey,
    "an annotation key such as maintenance or example.com/owner",
    check_label_key
);

/// One clause of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Requirement {
    fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        match self {
            Self::Exists(k) => labels.contains_key(k),
            Self::NotExists(k) => !labels.contains_key(k),
            Self::Equals(k, v) => labels.get(k) == Some(v),
            Self::NotEquals(k, v) => labels.get(k) != Some(v),
            Self::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Self::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exists(k) => write!(f, "{k}"),
            Self::NotExists(k) => write!(f, "!{k}"),
            Self::Equals(k, v) => write!(f, "{k}={v}"),
            Self::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Self::In(k, vs) => write!(f, "{k} in ({})", vs.join(",")),
            Self::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(",")),
        }
    }
}

/// A Kubernetes label selector such as `app=odordiff-api` or `tier in (api,worker)`,
/// with every key and value checked. The empty selector selects every pod of the
/// namespace, as it does for the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether it selects everything in the namespace.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether a set of labels is selected; the cluster layer's fakes and tests use this.
    pub fn matches(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    fn parse_requirement(part: &str) -> Result<Requirement, String> {
        if let Some((left, rest)) = part.split_once('(') {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("has an unclosed set in {part:?}"))?;
            let mut words = left.split_whitespace();
            let (Some(key), Some(op), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!(
                    "has a set clause {part:?} that is not `key in (a,b)`"
                ));
            };
            check_label_key(key)?;
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
            for v in &values {
                check_label_value(v)?;
            }
            return match op {
                "in" => Ok(Requirement::In(key.to_owned(), values)),
                "notin" => Ok(Requirement::NotIn(key.to_owned(), values)),
                _ => Err(format!(
                    "has an unknown set operator {op:?} (use in or notin)"
                )),
            };
        }
        let split = |op: &str| part.split_once(op).map(|(k, v)| (k.trim(), v.trim()));
        let requirement = if let Some((k, v)) = split("!=") {
            Requirement::NotEquals(k.to_owned(), v.to_owned())
        } else if let Some((k, v)) = split("==").or_else(|| split("=")) {
            Requirement::Equals(k.to_owned(), v.to_owned())
        } else if let Some(k) = part.strip_prefix('!') {
            Requirement::NotExists(k.trim().to_owned())
        } else {
            Requirement::Exists(part.to_owned())
        };
        match &requirement {
            Requirement::Equals(k, v) | Requirement::NotEquals(k, v) => {
                check_label_key(k)?;
                check_label_value(v)?;
            }
            Requirement::Exists(k) | Requirement::NotExists(k) => check_label_key(k)?,
            Requirement::In(..) | Requirement::NotIn(..) => {}
        }
        Ok(requirement)
    }
}

impl ArgType for LabelSelector {
    fn expected() -> String {
        "a label selector such as app=odordiff-api (clauses joined by ',')".into()
    }

    fn parse_arg(raw: &str) -> Result<Self, String> {
        if raw.len() > 1000 {
            return Err("is longer than 1000 characters".into());
        }
        if raw.trim().is_empty() {
            return Ok(Self {
                requirements: Vec::new(),
            });
        }
        // Commas separate clauses except inside a set's parentheses.
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0_u32, 0);
        for (i, c) in raw.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    parts.push(&raw[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&raw[start..]);
        let requirements = parts
            .into_iter()
            .map(|p| {
                let p = p.trim();
                if p.is_empty() {
                    Err("has an empty clause".to_owned())
                } else {
                    Self::parse_requirement(p)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { requirements })
    }

    fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical form the API server's `labelSelector` parameter takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

// The Kubernetes value types are the cluster layer's own: one definition, parsed the same
// way in the catalog, in commands and at the API boundary.
pub use crate::domain::k8s::{DataKey, EnvName, ImageTag, Quantity};

/// Lets a type that parses from text fill an action parameter.
macro_rules! arg_from_str {
    ($name:ty, $expected:expr, $order:expr) => {
        impl ArgType for $name {
            fn expected() -> String {
                String::from($expected)
            }
            fn parse_arg(raw: &str) -> Result<Self, String> {
                raw.parse().map_err(|_| format!("is not {}", $expected))
            }
            fn render(&self) -> String {
                self.to_string()
            }
            fn order_key(&self) -> Option<i128> {
                let order: fn(&Self) -> Option<i128> = $order;
                order(self)
            }
        }
    };
}

arg_from_str!(
    ImageTag,
    "an image tag: letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-'",
    |_| None
);
arg_from_str!(
    EnvName,
    "an environment variable name: letters, digits, '-', '_', '.', not starting with a digit",
    |_| None
);
arg_from_str!(
    DataKey,
    "a data key: letters, digits, '-', '_', '.'; at most 253",
    |_| None
);
arg_from_str!(
    Quantity,
    "a quantity such as 200Gi, 512Mi, 2 or 500m",
    |q| i128::try_from(q.millis()).ok()
);

/// How urgent an alert or incident is: the incident desk's own type, so the catalog's
/// default severities and the escalation matrix speak of the same thing.
pub use crate::domain::escalation::Severity;

impl ArgType for Severity {
    fn expected() -> String {
        "one of critical, high, medium, low".into()
    }
    fn parse_arg(raw: &str) -> Result<Self, String> {
        raw.parse()
            .map_err(|_| format!("is not {}", Self::expected()))
    }
    fn render(&self) -> String {
        self.name().to_owned()
    }
}

word_enum!(
    /// The runbook section a procedure comes from.
    ProcedureCategory {
        Deployment = "deployment",
        Scaling = "scaling",
        Database = "database",
        Certificates = "certificates",
        Security = "security",
    }
);

word_enum!(
    /// What a saved query reads.
    QueryCategory {
        Metrics = "metrics",
        Logs = "logs",
    }
);

word_enum!(
    /// A probe reading that a status update can show, beyond metrics.
    ProbeSignal {
        DbConnections = "db_connections",
        PgbouncerPools = "pgbouncer_pools",
        CacheHitRate = "cache_hit_rate",
        CertificateExpiry = "certificate_expiry",
    }
);

word_enum!(
    /// How often a maintenance list recurs.
    Frequency {
        Day = "day",
        Week = "week",
        Month = "month",
        Quarter = "quarter",
    }
);

word_enum!(
    Weekday {
        Monday = "monday",
        Tuesday = "tuesday",
        Wednesday = "wednesday",
        Thursday = "thursday",
        Friday = "friday",
        Saturday = "saturday",
        Sunday = "sunday",
    }
);

word_enum!(
    Month {
        Jan = "jan",
        Feb = "feb",
        Mar = "mar",
        Apr = "apr",
        May = "may",
        Jun = "jun",
        Jul = "jul",
        Aug = "aug",
        Sep = "sep",
        Oct = "oct",
        Nov = "nov",
        Dec = "dec",
    }
);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn label_selectors_parse_to_their_canonical_form() {
        let cases = [
            ("app=odordiff-api", "app=odordiff-api"),
            ("app==odordiff-api", "app=odordiff-api"),
            (" app = redis , tier!=cache ", "app=redis,tier!=cache"),
            (
                "app.kubernetes.io/name=odordiff",
                "app.kubernetes.io/name=odordiff",
            ),
            (
                "tier in (api, worker),!canary",
                "tier in (api,worker),!canary",
            ),
            ("release notin (old)", "release notin (old)"),
            ("quarantine", "quarantine"),
            ("", ""),
        ];
        for (raw, canonical) in cases {
            let s = LabelSelector::parse_arg(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}"));
            assert_eq!(s.to_string(), canonical, "{raw:?}");
            assert_eq!(LabelSelector::parse_arg(&s.render()).unwrap(), s);
        }
        assert!(LabelSelector::parse_arg("").unwrap().is_everything());
    }

    #[test]
    fn label_selectors_refuse_bad_keys_values_and_syntax() {
        for bad in [
            "app=odordiff api",
            "App_=x",
            "-app=x",
            "app=-x",
            "Bad_Prefix.io/app=x",
            "/app=x",
            "app=x,",
            "tier in (a,b",
            "tier within (a)",
            "app=x;rm -rf",
            &format!("app={}", "a".repeat(64)),
        ] {
            assert!(
                LabelSelector::parse_arg(bad).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn label_selectors_match_like_the_api_server() {
        let s = LabelSelector::parse_arg("app=odordiff-api,tier in (a,b),!canary").unwrap();
        assert!(s.matches(&labels(&[("app", "odordiff-api"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[("app", "odordiff-api"), ("tier", "c")])));
        assert!(!s.matches(&labels(&[
            ("app", "odordiff-api"),
            ("tier", "a"),
            ("canary", "")
        ])));
        assert!(
            LabelSelector::parse_arg("x notin (y)")
                .unwrap()
                .matches(&labels(&[]))
        );
        assert!(
            LabelSelector::parse_arg("")
                .unwrap()
                .matches(&labels(&[("a", "b")]))
        );
    }

    #[test]
    fn quantities_parse_and_order_exactly() {
        let q = |s: &str| Quantity::parse_arg(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(q("2000m").millis(), q("2").millis());
        assert_eq!(q("1Ki").millis(), 1024 * 1000);
        assert_eq!(q("1.5Gi").millis(), 3 * (1 << 29) * 1000);
        assert!(q("200Gi").order_key() > q("100Gi").order_key());
        assert!(q("1Ti").order_key() > q("999Gi").order_key());
        assert!(q("4Gi").order_key() > q("4G").order_key());
        assert_eq!(q("512Mi").render(), "512Mi");
        for bad in [
            "", "Gi", "-1Gi", "1e3", "1.Gi", ".5", "1.2345", "10 Gi", "10gi", "0", "0.0001",
        ] {
            assert!(Quantity::parse_arg(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            Quantity::parse_arg("0.5m").unwrap_err(),
            "is not a quantity such as 200Gi, 512Mi, 2 or 500m"
        );
    }

    #[test]
    fn bounded_counts_keep_to_their_range() {
        assert_eq!(Replicas::parse_arg("0").unwrap().get(), 0);
        assert_eq!(Replicas::parse_arg("50").unwrap().get(), 50);
        assert_eq!(
            Replicas::parse_arg("51").unwrap_err(),
            "is out of range: expected a whole number from 0 to 50"
        );
        assert!(Revision::parse_arg("0").is_err());
        assert!(Percent::parse_arg("+5").is_err());
        assert!(LogTail::parse_arg("1001").is_err());
    }

    /// Whether a parser takes a value.
    type Accepts = fn(&str) -> bool;

    #[test]
    fn text_types_accept_what_their_kind_allows() {
        let ok: &[(&str, Accepts)] = &[
            ("v2.3.1", |s| ImageTag::parse_arg(s).is_ok()),
            ("1.10", |s| ImageTag::parse_arg(s).is_ok()),
            ("/health", |s| HttpPath::parse_arg(s).is_ok()),
            ("/api/v1/ready", |s| HttpPath::parse_arg(s).is_ok()),
            ("api.odordiff.ai", |s| HostName::parse_arg(s).is_ok()),
            ("API_KEY", |s| EnvName::parse_arg(s).is_ok()),
            ("cache_ttl", |s| DataKey::parse_arg(s).is_ok()),
            ("maintenance", |s| AnnotationKey::parse_arg(s).is_ok()),
            ("example.com/owner", |s| AnnotationKey::parse_arg(s).is_ok()),
            ("session:*", |s| KeyPattern::parse_arg(s).is_ok()),
            ("api-service-down", |s| EntryId::parse_arg(s).is_ok()),
            ("ttl_secs", |s| ParamName::parse_arg(s).is_ok()),
        ];
        for (raw, accepts) in ok {
            assert!(accepts(raw), "{raw:?} was refused");
        }
        let bad: &[(&str, Accepts)] = &[
            ("-v2", |s| ImageTag::parse_arg(s).is_ok()),
            ("sha256:abc", |s| ImageTag::parse_arg(s).is_ok()),
            ("health", |s| HttpPath::parse_arg(s).is_ok()),
            ("/../etc/passwd", |s| HttpPath::parse_arg(s).is_ok()),
            ("/health?x=1", |s| HttpPath::parse_arg(s).is_ok()),
            ("https://api.odordiff.ai", |s| {
                HostName::parse_arg(s).is_ok()
            }),
            ("1KEY", |s| EnvName::parse_arg(s).is_ok()),
            ("a b", |s| DataKey::parse_arg(s).is_ok()),
            ("..", |s| DataKey::parse_arg(s).is_ok()),
            ("two words", |s| KeyPattern::parse_arg(s).is_ok()),
            ("Api-Down", |s| EntryId::parse_arg(s).is_ok()),
            ("api--down", |s| EntryId::parse_arg(s).is_ok()),
            ("-api", |s| RoleId::parse_arg(s).is_ok()),
            ("Replicas", |s| ParamName::parse_arg(s).is_ok()),
            ("line\nbreak", |s| ConfigValue::parse_arg(s).is_ok()),
            ("   ", |s| NoteText::parse_arg(s).is_ok()),
        ];
        for (raw, accepts) in bad {
            assert!(!accepts(raw), "{raw:?} was accepted");
        }
    }

    #[test]
    fn config_values_order_only_when_numeric() {
        assert_eq!(
            ConfigValue::parse_arg("7200").unwrap().order_key(),
            Some(7200)
        );
        assert_eq!(ConfigValue::parse_arg("7200s").unwrap().order_key(), None);
        assert_eq!(
            K8sName::parse_arg("odordiff-api").unwrap().order_key(),
            None
        );
    }

    #[test]
    fn words_round_trip_and_list_the_choices() {
        for s in MetricSignal::ALL {
            assert_eq!(MetricSignal::parse_arg(&s.render()), Ok(*s));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse_arg(s.name()), Ok(s));
        }
        assert_eq!(
            Severity::parse_arg("urgent").unwrap_err(),
            "is not one of critical, high, medium, low"
        );
        assert_eq!(DbState::IdleInTransaction.as_pg(), "idle in transaction");
    }
}
