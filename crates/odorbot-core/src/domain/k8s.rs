//! Kubernetes results and inputs as plain data: what the cluster layer returns and accepts,
//! without any kube type, so rendering and validation stay pure and unit-tested.
//!
//! Inputs are parsed newtypes (a label selector, an annotation key, a quantity, ...): the
//! cluster layer only takes these, so malformed text never reaches the API server.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use thiserror::Error;

use super::view::escape;

/// Whether a destructive action only previews (`dryRun=All`) or really changes the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    DryRun,
    Execute,
}

impl Mode {
    pub fn is_dry_run(self) -> bool {
        self == Mode::DryRun
    }
}

/// One field of one object that a destructive action changes (or would change).
/// `None` means the field is absent on that side (added or removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `Kind/name`, e.g. `Deployment/odordiff-api`.
    pub object: String,
    /// A dotted path, e.g. `spec.replicas` or `spec.template.spec.containers[api].image`.
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    pub fn new(
        object: impl Into<String>,
        field: impl Into<String>,
        before: Option<String>,
        after: Option<String>,
    ) -> Self {
        Self {
            object: object.into(),
            field: field.into(),
            before,
            after,
        }
    }
}

/// How much of a value a person is shown; the fingerprint keeps all of it.
const SHOWN_CHARS: usize = 160;

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |v: &Option<String>| match v {
            None => "(none)".to_owned(),
            Some(text) if text.chars().count() > SHOWN_CHARS => {
                format!("{}…", text.chars().take(SHOWN_CHARS).collect::<String>())
            }
            Some(text) => text.clone(),
        };
        if self.field.is_empty() {
            write!(f, "{}: ", self.object)?;
        } else {
            write!(f, "{} {}: ", self.object, self.field)?;
        }
        write!(f, "{} → {}", side(&self.before), side(&self.after))
    }
}

/// What a destructive action changes: the server's dry run before approval, or the
/// changes really made after execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeReport {
    /// The catalog's action type, e.g. `scale`.
    pub action: &'static str,
    pub mode: Mode,
    pub changes: Vec<Change>,
    /// Facts worth a human's attention that are not field changes (e.g. what was left alone).
    pub notes: Vec<String>,
}

impl ChangeReport {
    pub fn new(action: &'static str, mode: Mode) -> Self {
        Self {
            action,
            mode,
            changes: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// What the approvers see: each change on a line, then the notes.
    pub fn preview(&self) -> String {
        let mut lines: Vec<String> = self.changes.iter().map(ToString::to_string).collect();
        lines.extend(self.notes.iter().map(|n| format!("note: {n}")));
        if lines.is_empty() {
            lines.push("no field would change".into());
        }
        lines.join("\n")
    }

    /// What an approval binds: every changed field with its whole value before and after.
    /// Execution is refused when a fresh dry run gives another fingerprint, so a change in
    /// the cluster (the before side) or in the target (the after side: another revision, a
    /// different template) both count as drift.
    pub fn fingerprint(&self) -> String {
        let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
        self.changes
            .iter()
            .map(|c| {
                format!(
                    "{} {}={} -> {}",
                    c.object,
                    c.field,
                    side(&c.before),
                    side(&c.after)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for ChangeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.mode {
            Mode::DryRun => "would change",
            Mode::Execute => "changed",
        };
        writeln!(f, "{} {verb}:", self.action)?;
        if self.changes.is_empty() {
            writeln!(f, "  nothing")?;
        }
        for c in &self.changes {
            writeln!(f, "  {c}")?;
        }
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        Ok(())
    }
}

/// The fields of two versions of an object that differ, as [`Change`]s. `status` and the
/// server-managed metadata are skipped: only what a person asked to change is shown.
/// Lists of named items (containers, env vars) are matched by name, not position.
/// A Secret's values are never shown: its `data` and `stringData` read as how many keys
/// changed, so no card, fingerprint or audit entry built from the changes holds one.
pub fn diff_objects(object: &str, before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    let empty = Value::Object(Default::default());
    let secret =
        object.starts_with("Secret/") || [before, after].iter().any(|v| v["kind"] == "Secret");
    let keys = union_keys(before, after);
    for key in keys {
        let b = before.get(&key).unwrap_or(&Value::Null);
        let a = after.get(&key).unwrap_or(&Value::Null);
        match key.as_str() {
            "status" | "apiVersion" | "kind" => {}
            "data" | "stringData" if secret => {
                let changed = union_keys(b, a)
                    .iter()
                    .filter(|k| b.get(k.as_str()) != a.get(k.as_str()))
                    .count();
                if changed > 0 {
                    let s = if changed == 1 { "" } else { "s" };
                    out.push(Change::new(
                        object,
                        key.as_str(),
                        Some("not shown".into()),
                        Some(format!("changed ({changed} key{s})")),
                    ));
                }
            }
            "metadata" => {
                for part in ["labels", "annotations"] {
                    let bm = b.get(part).unwrap_or(&empty);
                    let am = a.get(part).unwrap_or(&empty);
                    diff_value(object, &format!("metadata.{part}"), bm, am, &mut out);
                }
            }
            _ => diff_value(object, &key, b, a, &mut out),
        }
    }
    out
}

fn union_keys(a: &Value, b: &Value) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for v in [a, b] {
        if let Value::Object(m) = v {
            for k in m.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    keys
}

fn diff_value(object: &str, path: &str, before: &Value, after: &Value, out: &mut Vec<Change>) {
    if before == after {
        return;
    }
    let empty = Value::Object(Default::default());
    match (before, after) {
        // An added or removed map is shown key by key, like any other map change.
        (Value::Null, Value::Object(_)) => diff_value(object, path, &empty, after, out),
        (Value::Object(_), Value::Null) => diff_value(object, path, before, &empty, out),
        (Value::Object(_), Value::Object(_)) => {
            for key in union_keys(before, after) {
                let b = before.get(&key).unwrap_or(&Value::Null);
                let a = after.get(&key).unwrap_or(&Value::Null);
                diff_value(object, &join_path(path, &key), b, a, out);
            }
        }
        (Value::Array(b), Value::Array(a)) if all_named(b) && all_named(a) => {
            let mut names: Vec<&str> = b.iter().filter_map(item_name).collect();
            for n in a.iter().filter_map(item_name) {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            for n in names {
                let find = |list: &[Value]| {
                    list.iter()
                        .find(|v| item_name(v) == Some(n))
                        .cloned()
                        .unwrap_or(Value::Null)
                };
                diff_value(object, &format!("{path}[{n}]"), &find(b), &find(a), out);
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                diff_value(object, &format!("{path}[{i}]"), bv, av, out);
            }
        }
        _ => out.push(Change::new(object, path, render(before), render(after))),
    }
}

fn join_path(path: &str, key: &str) -> String {
    // Keys with dots or slashes (annotations, labels) are bracketed so the path stays readable.
    let key = if key.contains(['.', '/']) {
        format!("[{key}]")
    } else {
        key.to_owned()
    };
    if path.is_empty() {
        key
    } else if key.starts_with('[') {
        format!("{path}{key}")
    } else {
        format!("{path}.{key}")
    }
}

fn all_named(list: &[Value]) -> bool {
    !list.is_empty() && list.iter().all(|v| item_name(v).is_some())
}

fn item_name(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

/// A value as a person reads it: strings unquoted, structures as compact JSON, whole
/// (a [`Change`] shortens it only when shown). `None` for an absent (null) value.
pub fn render(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Replaces the tag (and drops any digest) of an image reference, keeping its repository:
/// `ghcr.io/o/api:1.4@sha256:…` with `1.5` gives `ghcr.io/o/api:1.5`.
pub fn image_with_tag(image: &str, tag: &ImageTag) -> String {
    format!("{}:{}", image_repository(image), tag.as_str())
}

/// Where an image reference comes from: the reference without its tag and digest.
pub fn image_repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A colon after the last slash separates the tag; one before it belongs to a registry port.
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].find(':') {
        Some(i) => &without_digest[..last_slash + i],
        None => without_digest,
    }
}

/// Whether `s` is an image repository as a catalog writes it: lower case, no tag, no digest.
pub fn is_image_repository(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && image_repository(s) == s
        && s.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b'-' | b'/' | b':')
        })
        && !s.starts_with(['.', '-', '/', ':'])
        && !s.ends_with(['/', ':'])
}

/// The image a container running `current` gets with `tag`, when `current` comes from the
/// `allowed` repository: a deploy changes the tag, never where the code comes from.
///
/// # Errors
/// [`InputError::Repository`] when the container runs an image from elsewhere.
pub fn retag(current: &str, tag: &ImageTag, allowed: &str) -> Result<String, InputError> {
    let running = image_repository(current);
    if running == allowed {
        Ok(image_with_tag(current, tag))
    } else {
        Err(InputError::Repository {
            running: running.to_owned(),
            allowed: allowed.to_owned(),
        })
    }
}

/// Why an input for a Kubernetes action was rejected; shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    #[error("label selector {0:?} is not of the form key=value[,key=value]")]
    Selector(String),
    #[error(
        "{0:?} is not a valid annotation or label key (optional DNS prefix, '/', then up to 63 of a-z A-Z 0-9 - _ .)"
    )]
    QualifiedName(String),
    #[error(
        "{0:?} is not a valid label value (up to 63 of a-z A-Z 0-9 - _ ., starting and ending alphanumeric)"
    )]
    LabelValue(String),
    #[error("{0:?} is not an image tag (up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -)")]
    ImageTag(String),
    #[error(
        "the container runs an image from {running}, not from the runbook's repository {allowed}: a deploy only changes the tag, so fix the image by hand first"
    )]
    Repository { running: String, allowed: String },
    #[error("{0:?} is not a Kubernetes quantity such as 500m, 2, 4Gi or 200Gi")]
    Quantity(String),
    #[error(
        "{0:?} is not an environment variable name (letters, digits, - _ ., not starting with a digit)"
    )]
    EnvName(String),
    #[error("{0:?} is not a Secret or ConfigMap key (up to 253 of a-z A-Z 0-9 - _ .)")]
    DataKey(String),
    #[error("{0:?} is not a resource name for limits (cpu, memory or ephemeral-storage)")]
    ResourceName(String),
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// A label value: empty, or up to 63 characters of `[A-Za-z0-9-_.]` with alphanumeric ends.
fn valid_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| is_alnum(b) || matches!(b, b'-' | b'_' | b'.'))
            && v.bytes().next().is_some_and(is_alnum)
            && v.bytes().last().is_some_and(is_alnum))
}

/// A qualified name (`prefix/name` or `name`), the form of label and annotation keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName(String);

impl QualifiedName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for QualifiedName {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InputError::QualifiedName(s.to_owned());
        let (prefix, name) = match s.rsplit_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, s),
        };
        if let Some(p) = prefix
            && p.parse::<super::ids::K8sName>().is_err()
        {
            return Err(bad());
        }
        if name.is_empty() || !valid_label_value(name) {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An equality-based label selector (`app=odordiff-api,tier=web`): the only form the
/// runbook uses, and one whose every part can be checked here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<(QualifiedName, String)>);

impl Selector {
    pub fn pairs(&self) -> &[(QualifiedName, String)] {
        &self.0
    }
}

impl Selector {
    /// Matches every pod: the empty selector.
    pub fn all() -> Self {
        Self(Vec::new())
    }
}

impl FromStr for Selector {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InputError::Selector(s.to_owned());
        let mut pairs = Vec::new();
        for part in s.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let v = v.strip_prefix('=').unwrap_or(v);
            let key: QualifiedName = k.trim().parse().map_err(|_| bad())?;
            let value = v.trim();
            if !valid_label_value(value) {
                return Err(InputError::LabelValue(value.to_owned()));
            }
            pairs.push((key, value.to_owned()));
        }
        Ok(Self(pairs))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&parts.join(","))
    }
}

/// An image tag, as Docker's reference grammar defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTag(String);

impl ImageTag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ImageTag {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes()
                .all(|b| is_alnum(b) || matches!(b, b'_' | b'.' | b'-'))
            && !s.starts_with(['.', '-']);
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InputError::ImageTag(s.to_owned()))
        }
    }
}

impl fmt::Display for ImageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Kubernetes resource quantity (`500m`, `2`, `4Gi`, `1.5G`), kept as written and
/// compared by its value in thousandths, which is exact for every suffix used in practice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    text: String,
    millis: u128,
}

impl Quantity {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value in thousandths of the unit (millicores for CPU, millibytes for memory).
    pub fn millis(&self) -> u128 {
        self.millis
    }
}

impl FromStr for Quantity {
    type Err = InputError;

    /// Stricter than what the API server emits, since this is what people and the
    /// catalog ask for: a plain decimal with at most three decimals, no `n`/`u` suffix and
    /// nothing below one milli-unit, and never zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InputError::Quantity(s.to_owned());
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(split);
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let malformed = whole.is_empty()
            || (number.contains('.') && frac.is_empty())
            || frac.len() > 3
            || matches!(suffix, "n" | "u")
            || (suffix == "m" && !frac.is_empty());
        if malformed {
            return Err(bad());
        }
        match parse_quantity_millis(s) {
            Some(millis) if millis > 0 => Ok(Self {
                text: s.to_owned(),
                millis,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A non-negative quantity in thousandths of its unit; `None` if it is malformed. Handles
/// the suffixes the API server emits (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`, the
/// binary `Ki`…`Ei`) and decimal fractions; exponents (`1e3`) are not accepted.
pub fn parse_quantity_millis(s: &str) -> Option<u128> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    // (multiplier, divisor) turning the number into thousandths.
    let (mul, div): (u128, u128) = match suffix {
        "n" => (1, 1_000_000),
        "u" => (1, 1_000),
        "m" => (1, 1),
        "" => (1_000, 1),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "T" => (1_000_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000_000, 1),
        "Ki" => (1_000 << 10, 1),
        "Mi" => (1_000 << 20, 1),
        "Gi" => (1_000 << 30, 1),
        "Ti" => (1_000 << 40, 1),
        "Pi" => (1_000 << 50, 1),
        "Ei" => (1_000 << 60, 1),
        _ => return None,
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() || int.len() > 20 || frac.len() > 9 {
        return None;
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_value: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let frac_scale = 10u128.pow(frac.len() as u32);
    let scaled = int
        .checked_mul(mul)?
        .checked_add(frac_value.checked_mul(mul)? / frac_scale)?;
    Some(scaled / div)
}

/// An environment variable name as the API server accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvName(String);

impl EnvName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EnvName {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=253).contains(&s.len())
            && s.bytes()
                .all(|b| is_alnum(b) || matches!(b, b'-' | b'_' | b'.'))
            && !s.starts_with(|c: char| c.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InputError::EnvName(s.to_owned()))
        }
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A key of a Secret's or ConfigMap's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DataKey(String);

impl DataKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DataKey {
    type Err = InputError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=253).contains(&s.len())
            && s.bytes()
                .all(|b| is_alnum(b) || matches!(b, b'-' | b'_' | b'.'))
            && s != "."
            && s != "..";
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InputError::DataKey(s.to_owned()))
        }
    }
}

impl fmt::Display for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Container resource limits: only `cpu`, `memory` and `ephemeral-storage`, each a quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLimits(BTreeMap<String, Quantity>);

impl ResourceLimits {
    /// # Errors
    /// [`InputError::ResourceName`] for any other resource, [`InputError::Quantity`] for a
    /// malformed value.
    pub fn new<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, InputError> {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if !matches!(name, "cpu" | "memory" | "ephemeral-storage") {
                return Err(InputError::ResourceName(name.to_owned()));
            }
            map.insert(name.to_owned(), value.parse()?);
        }
        if map.is_empty() {
            return Err(InputError::ResourceName(String::new()));
        }
        Ok(Self(map))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Quantity)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Whose logs to read: the pods matching a selector, or one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    Selector(Selector),
    Pod(super::ids::K8sName),
}

/// A `logs` request: like `kubectl logs --tail --since | grep`, always bounded.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub source: LogSource,
    /// Last lines per container; at most [`LogQuery::MAX_TAIL`].
    pub tail: Option<u32>,
    /// Only lines newer than this; at most [`LogQuery::MAX_SINCE`].
    pub since: Option<std::time::Duration>,
    /// Keep only the lines matching this regular expression.
    pub grep: Option<super::args::Filter>,
    /// The previous run of each container (`kubectl logs --previous`): what a container
    /// that restarted logged before it died.
    pub previous: bool,
}

impl LogQuery {
    pub const DEFAULT_TAIL: u32 = 100;
    pub const MAX_TAIL: u32 = 5000;
    pub const MAX_SINCE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
    /// Lines kept per container after filtering: what a Slack thread can carry.
    pub const MAX_LINES_PER_POD: usize = 500;
    /// Pods read for one selector; the rest are counted, not read.
    pub const MAX_PODS: usize = 10;
}

// ---------------------------------------------------------------------------------------
// Diagnostics: read-only results.
// ---------------------------------------------------------------------------------------

/// One pod as `kubectl get pods` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed` or `Unknown`.
    pub phase: String,
    /// The pod's Ready condition.
    pub ready: bool,
    pub ready_containers: usize,
    pub containers: usize,
    /// Restarts summed over the pod's containers.
    pub restarts: u32,
    /// The most telling waiting/terminated reason, e.g. `CrashLoopBackOff`.
    pub reason: Option<String>,
    pub created: Option<String>,
    /// Deleted and on its way out (`kubectl` shows `Terminating`): a rollout that replaced
    /// it can be complete while it still shuts down.
    pub terminating: bool,
}

/// A pod as `kubectl describe pod` shows the parts that matter during an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDescription {
    pub pod: PodInfo,
    /// `Ready=False (ContainersNotReady)` and the like.
    pub conditions: Vec<String>,
    pub containers: Vec<ContainerState>,
    /// The pod's most recent events, oldest first.
    pub events: Vec<EventInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub name: String,
    pub image: String,
    pub ready: bool,
    pub restarts: u32,
    /// `running since …`, `waiting: CrashLoopBackOff`, `terminated: Error (exit 1)`.
    pub state: String,
    /// Why the previous run ended, e.g. `OOMKilled (exit 137) at …`.
    pub last_termination: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInfo {
    /// The event's last occurrence, RFC 3339.
    pub time: Option<String>,
    /// `Normal` or `Warning`.
    pub kind: String,
    pub reason: String,
    /// `Pod/odordiff-api-…`.
    pub object: String,
    pub message: String,
    pub count: u32,
}

/// Log lines of one container, already bounded and filtered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLogs {
    pub pod: String,
    pub container: String,
    pub lines: Vec<String>,
    /// Lines were dropped to stay within the limits.
    pub truncated: bool,
    /// Why the logs could not be read (e.g. the container has not started).
    pub error: Option<String>,
}

/// The logs of the pods a [`LogQuery`] selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsReport {
    pub pods: Vec<PodLogs>,
    /// Pods that matched but were not read, beyond [`LogQuery::MAX_PODS`].
    pub omitted_pods: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointsInfo {
    pub service: String,
    /// `ip:port` of ready backends.
    pub ready: Vec<String>,
    pub not_ready: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutStatus {
    pub deployment: String,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// The rollout finished: the controller saw the latest spec and every replica is new
    /// and available.
    pub complete: bool,
    /// The progress deadline passed.
    pub failed: bool,
    /// `kubectl rollout status`'s sentence.
    pub message: String,
}

/// One revision of a Deployment: a ReplicaSet it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionInfo {
    pub revision: u64,
    pub replica_set: String,
    pub change_cause: Option<String>,
    pub images: Vec<String>,
    /// The revision whose template the Deployment currently runs.
    pub current: bool,
}

/// One revision of a Helm release, as `helm history` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmRevision {
    pub revision: u64,
    /// `deployed`, `superseded`, `failed`, `pending-rollback`…
    pub status: String,
    pub chart: String,
    pub app_version: String,
    pub description: String,
    pub updated: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpaInfo {
    pub name: String,
    pub target: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub target_cpu_percent: Option<i32>,
    pub current_cpu_percent: Option<i32>,
    pub current_replicas: i32,
    pub desired_replicas: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdbInfo {
    pub name: String,
    pub min_available: Option<String>,
    pub max_unavailable: Option<String>,
    pub current_healthy: i32,
    pub desired_healthy: i32,
    pub disruptions_allowed: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapEntry {
    pub key: String,
    /// The value, shortened when long.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvcInfo {
    pub name: String,
    pub phase: String,
    /// `spec.resources.requests.storage`.
    pub requested: Option<String>,
    /// `status.capacity.storage`: what the volume really has.
    pub capacity: Option<String>,
    pub storage_class: Option<String>,
    pub volume: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub name: String,
    pub secret: Option<String>,
    pub ready: Option<bool>,
    pub ready_message: Option<String>,
    pub not_after: Option<String>,
    pub renewal_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeleroBackup {
    pub name: String,
    pub phase: Option<String>,
    pub started: Option<String>,
    pub completed: Option<String>,
    pub expires: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VeleroRestore {
    pub name: String,
    pub backup: Option<String>,
    pub phase: Option<String>,
    pub started: Option<String>,
    pub completed: Option<String>,
}

/// A Velero Restore's progress, as its status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestoreProgress {
    /// `""` until Velero has picked the restore up.
    pub phase: String,
    pub items_restored: Option<i64>,
    pub total_items: Option<i64>,
    pub warnings: i64,
    pub errors: i64,
}

impl RestoreProgress {
    /// Velero's final phases: the restore changes no more.
    pub fn is_final(&self) -> bool {
        matches!(
            self.phase.as_str(),
            "Completed" | "PartiallyFailed" | "Failed" | "FailedValidation"
        )
    }

    /// The thread's report of test restore `name` into `target`; `None` for `waited`
    /// means it finished, else how long odorbot waited for it in vain.
    pub fn report(&self, name: &str, target: &str, waited: Option<&str>) -> String {
        let mark = match (self.phase.as_str(), self.errors, self.warnings) {
            ("Completed", 0, 0) => "✅",
            ("Completed" | "PartiallyFailed", ..) => "⚠️",
            _ => "🔴",
        };
        let items = match (self.items_restored, self.total_items) {
            (Some(done), Some(total)) => format!("{done} of {total} items restored"),
            (Some(done), None) => format!("{done} items restored"),
            _ => "no items reported".to_owned(),
        };
        let phase = if self.phase.is_empty() {
            "not started"
        } else {
            &self.phase
        };
        let head = match waited {
            None => format!("{mark} Test restore `{name}` {phase}"),
            Some(bound) => {
                format!("🔴 Test restore `{name}` did not finish within {bound} (phase {phase})")
            }
        };
        format!(
            "{head}: {items} into `{target}`, {} warnings, {} errors. Check the copy there, then `/odor backup cleanup {name}`.",
            self.warnings, self.errors
        )
    }
}

/// What the runbook's pre-deployment checks see before a deployment's image changes: its
/// pods, the namespace's disruption budgets and the autoscalers that scale it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreDeploy {
    pub pods: Vec<PodInfo>,
    pub pdbs: Vec<PdbInfo>,
    pub hpas: Vec<HpaInfo>,
}

/// Notes for scaling `deployment` to `replicas` where autoscalers scale it: one that keeps
/// it within bounds `replicas` lies outside sets it back within its sync period (15 s by
/// default), so the approver should know before approving. Zero is left alone: an
/// autoscaler stops scaling a target scaled to zero.
pub fn autoscaler_notes(hpas: &[HpaInfo], deployment: &str, replicas: u32) -> Vec<String> {
    let target = format!("Deployment/{deployment}");
    hpas.iter()
        .filter(|h| h.target == target && replicas > 0)
        .filter_map(|h| {
            let n = i64::from(replicas);
            let back = if n < i64::from(h.min_replicas) {
                h.min_replicas
            } else if n > i64::from(h.max_replicas) {
                h.max_replicas
            } else {
                return None;
            };
            Some(format!(
                "⚠️ HorizontalPodAutoscaler {} keeps {deployment} between {} and {} replicas: it will set {replicas} back to {back} within its sync period (15 s by default). Change its bounds first (`/odor hpa {} --min … --max …`).",
                h.name, h.min_replicas, h.max_replicas, h.name
            ))
        })
        .collect()
}

impl PreDeploy {
    /// Pods named when some are not ready: enough to act on, short enough for a card.
    const NAMED: usize = 3;

    /// The checks as notes of the request's dry run, so the approver sees them on the card.
    pub fn notes(&self, deployment: &str) -> Vec<String> {
        let pods: Vec<&PodInfo> = self.pods.iter().filter(|p| !p.terminating).collect();
        let ready = pods.iter().filter(|p| p.ready).count();
        let not_ready: Vec<String> = pods
            .iter()
            .filter(|p| !p.ready)
            .take(Self::NAMED)
            .map(|p| match &p.reason {
                Some(r) => format!("{} ({r})", p.name),
                None => p.name.clone(),
            })
            .collect();
        let mut out = vec![match (pods.len(), not_ready.is_empty()) {
            (0, _) => format!("pre-deployment: no pod of {deployment} is running"),
            (n, true) => format!("pre-deployment: {ready} of {n} pods of {deployment} ready"),
            (n, false) => format!(
                "⚠️ pre-deployment: {ready} of {n} pods of {deployment} ready; not ready: {}",
                not_ready.join(", ")
            ),
        }];
        if self.pdbs.is_empty() {
            out.push("pre-deployment: no PodDisruptionBudget in the namespace".into());
        }
        for b in &self.pdbs {
            let mark = if b.disruptions_allowed > 0 {
                ""
            } else {
                "⚠️ "
            };
            out.push(format!(
                "{mark}pre-deployment: PodDisruptionBudget {} allows {} disruptions ({} healthy, {} needed)",
                b.name, b.disruptions_allowed, b.current_healthy, b.desired_healthy
            ));
        }
        for h in &self.hpas {
            let cpu = match (h.current_cpu_percent, h.target_cpu_percent) {
                (Some(c), Some(t)) => format!(", CPU {c}% of a {t}% target"),
                (None, Some(t)) => format!(", CPU target {t}%"),
                _ => String::new(),
            };
            out.push(format!(
                "pre-deployment: HorizontalPodAutoscaler {} at {} replicas ({}–{}){cpu}",
                h.name, h.current_replicas, h.min_replicas, h.max_replicas
            ));
        }
        out
    }
}

/// A Job's progress, as its status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobProgress {
    pub active: i32,
    pub succeeded: i32,
    pub failed: i32,
    /// `Some(true)` once the Job is `Complete`, `Some(false)` once it is `Failed`.
    pub finished: Option<bool>,
    /// The `Failed` condition's reason and message, e.g. `BackoffLimitExceeded`.
    pub why: Option<String>,
}

impl JobProgress {
    /// Log lines a report quotes: enough to see why a suite failed, few enough for a thread.
    pub const LOG_TAIL: u32 = 20;

    pub fn is_final(&self) -> bool {
        self.finished.is_some()
    }

    /// The thread's report of Job `job` that `what` ("Smoke tests") started, with the tail
    /// of its pod's log; `None` for `waited` means it finished, else how long odorbot waited
    /// for it in vain.
    pub fn report(&self, what: &str, job: &str, log: &[String], waited: Option<&str>) -> String {
        let pods = format!(
            "{} active, {} succeeded, {} failed pods",
            self.active, self.succeeded, self.failed
        );
        let why = self
            .why
            .as_deref()
            .map(|w| format!(" ({})", escape(w)))
            .unwrap_or_default();
        let mut out = match (self.finished, waited) {
            (Some(true), _) => format!("✅ {what} passed: Job `{job}` complete, {pods}."),
            (Some(false), _) => format!("🔴 {what} failed: Job `{job}` failed{why}, {pods}."),
            (None, Some(bound)) => {
                format!("🔴 {what} did not finish within {bound}: Job `{job}` has {pods}.")
            }
            (None, None) => format!("⏳ {what}: Job `{job}` is running, {pods}."),
        };
        if log.is_empty() {
            out.push_str("\nIts pod logged nothing.");
        } else {
            // Backticks in a line would close the code block early.
            let shown: Vec<String> = log.iter().map(|l| l.replace("```", "'''")).collect();
            out.push_str(&format!(
                "\nLast lines of its log:\n```{}```",
                escape(&shown.join("\n"))
            ));
        }
        out
    }
}

/// Where test restores of namespace `ns` put their copy (a namespace name: at most 63).
pub fn restore_namespace(ns: &str) -> String {
    format!("{}-restore-test", &ns[..ns.len().min(49)])
}

/// The button under a finished test restore's report: a request to delete that restore.
pub fn restore_cleanup_button(restore: &str) -> super::view::Button {
    super::view::Button::new(
        "Clean up this test restore",
        format!("restorecleanup:{restore}"),
        super::view::ButtonStyle::Default,
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backups {
    pub backups: Vec<VeleroBackup>,
    pub restores: Vec<VeleroRestore>,
}

/// A part of a report that odorbot may not be allowed to read: the access review says
/// plainly what it could not see instead of failing as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readable<T> {
    Read(T),
    NotReadable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingInfo {
    pub name: String,
    /// `Role/x` or `ClusterRole/y`.
    pub role: String,
    /// `ServiceAccount/ns/name`, `User/name`, `Group/name`.
    pub subjects: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessReview {
    pub namespace: String,
    pub service_accounts: Readable<Vec<String>>,
    pub role_bindings: Readable<Vec<BindingInfo>>,
    /// Only those with a subject in the namespace.
    pub cluster_role_bindings: Readable<Vec<BindingInfo>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    pub pod: String,
    pub cpu_millicores: u64,
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceUsage {
    /// The cluster has no metrics.k8s.io API (no metrics-server).
    NotServed,
    Pods(Vec<PodUsage>),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scaling_outside_an_autoscalers_bounds_is_said_on_the_card() {
        let hpa = |target: &str| HpaInfo {
            name: "api-hpa".into(),
            target: target.into(),
            min_replicas: 3,
            max_replicas: 10,
            target_cpu_percent: Some(70),
            current_cpu_percent: None,
            current_replicas: 3,
            desired_replicas: 3,
        };
        let hpas = [hpa("Deployment/api"), hpa("Deployment/worker")];
        let below = autoscaler_notes(&hpas, "api", 1);
        assert_eq!(below.len(), 1, "{below:?}");
        assert!(
            below[0].starts_with("⚠️ HorizontalPodAutoscaler api-hpa keeps api between 3 and 10 replicas: it will set 1 back to 3"),
            "{below:?}"
        );
        assert!(autoscaler_notes(&hpas, "api", 12)[0].contains("set 12 back to 10"));
        assert!(autoscaler_notes(&hpas, "api", 5).is_empty());
        // Scaled to zero, an autoscaler leaves the target alone (the breach containment).
        assert!(autoscaler_notes(&hpas, "api", 0).is_empty());
        assert!(autoscaler_notes(&hpas, "billing", 1).is_empty());
    }

    fn report(after: &str) -> ChangeReport {
        let mut r = ChangeReport::new("rollback_deployment", Mode::DryRun);
        r.changes.push(Change::new(
            "Deployment/odordiff-api",
            "spec.template.spec.containers[api].image",
            Some("api:1.6.0".into()),
            Some(after.into()),
        ));
        r
    }

    #[test]
    fn a_restore_reports_its_phase_items_and_what_to_do_next() {
        let done = RestoreProgress {
            phase: "Completed".into(),
            items_restored: Some(42),
            total_items: Some(42),
            warnings: 0,
            errors: 0,
        };
        assert!(done.is_final());
        assert_eq!(
            done.report("test-restore-5", "odordiff-restore-test", None),
            "✅ Test restore `test-restore-5` Completed: 42 of 42 items restored into `odordiff-restore-test`, 0 warnings, 0 errors. Check the copy there, then `/odor backup cleanup test-restore-5`."
        );
        let partial = RestoreProgress {
            phase: "PartiallyFailed".into(),
            errors: 2,
            ..done.clone()
        };
        assert!(partial.report("r", "t", None).starts_with("⚠️"));
        let failed = RestoreProgress {
            phase: "Failed".into(),
            ..RestoreProgress::default()
        };
        assert!(failed.report("r", "t", None).starts_with("🔴"));
        let waiting = RestoreProgress {
            phase: "InProgress".into(),
            items_restored: Some(3),
            ..RestoreProgress::default()
        };
        assert!(!waiting.is_final());
        assert!(
            waiting.report("r", "t", Some("10m")).starts_with(
                "🔴 Test restore `r` did not finish within 10m (phase InProgress): 3 items restored"
            ),
            "{}",
            waiting.report("r", "t", Some("10m"))
        );
        assert!(!RestoreProgress::default().is_final());
    }

    #[test]
    fn a_job_report_says_pass_fail_or_timeout_and_quotes_the_log_escaped() {
        let log = vec![
            "smoke: GET /health ok".to_owned(),
            "smoke: failed <!channel> ```".to_owned(),
        ];
        let passed = JobProgress {
            succeeded: 1,
            finished: Some(true),
            ..JobProgress::default()
        };
        assert!(passed.is_final());
        let text = passed.report("Smoke tests", "s-1", &log[..1], None);
        assert_eq!(
            text,
            "✅ Smoke tests passed: Job `s-1` complete, 0 active, 1 succeeded, 0 failed pods.\nLast lines of its log:\n```smoke: GET /health ok```"
        );
        let failed = JobProgress {
            failed: 1,
            finished: Some(false),
            why: Some("BackoffLimitExceeded: Job has reached the specified backoff limit".into()),
            ..JobProgress::default()
        };
        let text = failed.report("Smoke tests", "s-1", &log, None);
        assert!(
            text.starts_with("🔴 Smoke tests failed: Job `s-1` failed (BackoffLimitExceeded: Job has reached the specified backoff limit), 0 active, 0 succeeded, 1 failed pods."),
            "{text}"
        );
        // Log lines are hostile input: no mention and no early end of the code block.
        assert!(
            text.ends_with("smoke: failed &lt;!channel&gt; '''```"),
            "{text}"
        );
        let running = JobProgress {
            active: 1,
            ..JobProgress::default()
        };
        assert!(!running.is_final());
        assert_eq!(
            running.report("Job", "s-1", &[], Some("10m")),
            "🔴 Job did not finish within 10m: Job `s-1` has 1 active, 0 succeeded, 0 failed pods.\nIts pod logged nothing."
        );
    }

    #[test]
    fn the_fingerprint_binds_the_target_as_well_as_the_state_before() {
        assert_eq!(
            report("api:1.5.0").fingerprint(),
            report("api:1.5.0").fingerprint()
        );
        // Same state before, another target revision: drift.
        assert_ne!(
            report("api:1.5.0").fingerprint(),
            report("api:1.4.0").fingerprint()
        );
        // Values are whole in the fingerprint even where the card shortens them.
        let long = |tail: &str| report(&format!("{}{tail}", "x".repeat(200)));
        assert!(long("a").preview().contains('…'));
        assert_ne!(long("a").fingerprint(), long("b").fingerprint());
    }

    #[test]
    fn diff_shows_only_the_fields_that_change() {
        let before = json!({
            "metadata": {"name": "api", "resourceVersion": "1", "annotations": {"a": "1"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "api", "image": "r/api:1.4", "env": [{"name": "K", "value": "x"}]},
                {"name": "side", "image": "r/side:1"}
            ]}}},
            "status": {"replicas": 3}
        });
        let after = json!({
            "metadata": {"name": "api", "resourceVersion": "2",
                "annotations": {"a": "1", "kubectl.kubernetes.io/restartedAt": "now"}},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [
                {"name": "api", "image": "r/api:1.5", "env": [{"name": "K", "value": "x"}]},
                {"name": "side", "image": "r/side:1"}
            ]}}},
            "status": {"replicas": 5}
        });
        let changes: Vec<String> = diff_objects("Deployment/api", &before, &after)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            changes,
            [
                "Deployment/api metadata.annotations[kubectl.kubernetes.io/restartedAt]: (none) → now",
                "Deployment/api spec.replicas: 3 → 5",
                "Deployment/api spec.template.spec.containers[api].image: r/api:1.4 → r/api:1.5",
            ]
        );
    }

    #[test]
    fn a_secrets_values_never_appear_in_a_diff_only_how_many_keys_changed() {
        let before =
            json!({"kind": "Secret", "data": {"a": "b2xkLWE=", "b": "b2xkLWI=", "c": "c2FtZQ=="}});
        let after = json!({"kind": "Secret",
            "data": {"a": "bmV3LWE=", "b": "bmV3LWI=", "c": "c2FtZQ==", "d": "bmV3LWQ="}});
        let changes = diff_objects("Secret/db", &before, &after);
        let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["Secret/db data: not shown → changed (3 keys)"]);
        let all = format!("{changes:?}");
        for value in ["b2xkLWE=", "bmV3LWE=", "bmV3LWQ=", "c2FtZQ=="] {
            assert!(!all.contains(value), "{all}");
        }
    }

    #[test]
    fn diff_of_equal_objects_is_empty() {
        let v = json!({"spec": {"a": [1, 2]}, "metadata": {"labels": {"x": "y"}}});
        assert!(diff_objects("X/y", &v, &v).is_empty());
    }

    #[test]
    fn a_deploy_retags_only_images_from_the_allowed_repository() {
        let tag: ImageTag = "1.6.1".parse().unwrap();
        let allowed = "registry.local:5000/odordiff/api";
        assert_eq!(
            retag("registry.local:5000/odordiff/api:1.6.0", &tag, allowed),
            Ok("registry.local:5000/odordiff/api:1.6.1".into())
        );
        assert_eq!(
            retag("registry.local:5000/odordiff/api@sha256:abc", &tag, allowed),
            Ok("registry.local:5000/odordiff/api:1.6.1".into())
        );
        let elsewhere = retag("docker.io/someone/api:1.6.0", &tag, allowed).unwrap_err();
        assert_eq!(
            elsewhere,
            InputError::Repository {
                running: "docker.io/someone/api".into(),
                allowed: allowed.into()
            }
        );
        // A repository that merely starts like the allowed one is another repository.
        assert!(retag("registry.local:5000/odordiff/api-evil:1", &tag, allowed).is_err());
        for good in [
            "ghcr.io/odordiff/odordiff-api",
            "registry.local:5000/a/b",
            "busybox",
        ] {
            assert!(is_image_repository(good), "{good}");
        }
        for bad in [
            "",
            "ghcr.io/a:1.0",
            "ghcr.io/a@sha256:1",
            "GHCR.io/a",
            "ghcr.io/a/",
            "a b",
        ] {
            assert!(!is_image_repository(bad), "{bad}");
        }
    }

    #[test]
    fn pre_deployment_checks_name_unready_pods_and_blocking_budgets() {
        let pod = |name: &str, ready: bool, reason: Option<&str>| PodInfo {
            name: name.into(),
            phase: "Running".into(),
            ready,
            ready_containers: usize::from(ready),
            containers: 1,
            restarts: 0,
            reason: reason.map(Into::into),
            created: None,
            terminating: false,
        };
        let mut gone = pod("api-old", false, None);
        gone.terminating = true;
        let checks = PreDeploy {
            pods: vec![
                pod("api-a", true, None),
                pod("api-b", false, Some("CrashLoopBackOff")),
                gone,
            ],
            pdbs: vec![PdbInfo {
                name: "api-pdb".into(),
                min_available: Some("2".into()),
                max_unavailable: None,
                current_healthy: 1,
                desired_healthy: 2,
                disruptions_allowed: 0,
            }],
            hpas: vec![HpaInfo {
                name: "api-hpa".into(),
                target: "Deployment/api".into(),
                min_replicas: 2,
                max_replicas: 10,
                target_cpu_percent: Some(70),
                current_cpu_percent: Some(41),
                current_replicas: 2,
                desired_replicas: 2,
            }],
        };
        assert_eq!(
            checks.notes("api"),
            [
                "⚠️ pre-deployment: 1 of 2 pods of api ready; not ready: api-b (CrashLoopBackOff)",
                "⚠️ pre-deployment: PodDisruptionBudget api-pdb allows 0 disruptions (1 healthy, 2 needed)",
                "pre-deployment: HorizontalPodAutoscaler api-hpa at 2 replicas (2–10), CPU 41% of a 70% target",
            ]
        );
        assert_eq!(
            PreDeploy::default().notes("api"),
            [
                "pre-deployment: no pod of api is running",
                "pre-deployment: no PodDisruptionBudget in the namespace"
            ]
        );
    }

    #[test]
    fn image_tags_replace_tag_and_digest_but_keep_registry_ports() {
        let tag: ImageTag = "1.6.0".parse().unwrap();
        for (image, want) in [
            ("ghcr.io/o/api:1.5.0", "ghcr.io/o/api:1.6.0"),
            ("ghcr.io/o/api", "ghcr.io/o/api:1.6.0"),
            ("localhost:5000/api:old", "localhost:5000/api:1.6.0"),
            ("localhost:5000/api", "localhost:5000/api:1.6.0"),
            ("r/api:1@sha256:abc", "r/api:1.6.0"),
            ("redis", "redis:1.6.0"),
        ] {
            assert_eq!(image_with_tag(image, &tag), want, "{image}");
        }
        for bad in ["", "-x", ".x", "a b", "a:b", &"x".repeat(129)] {
            assert!(bad.parse::<ImageTag>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quantities_compare_by_value() {
        let q = |s: &str| parse_quantity_millis(s);
        assert_eq!(q("500m"), Some(500));
        assert_eq!(q("2"), Some(2000));
        assert_eq!(q("1.5"), Some(1500));
        assert_eq!(q("100Gi"), Some(100 * 1000 * (1 << 30)));
        assert_eq!(q("12345678n"), Some(12));
        assert_eq!(q("1k"), Some(1_000_000));
        assert!(q("200Gi") > q("100Gi"));
        assert!(q("1Ti") > q("1000Gi"));
        for bad in [
            "",
            "Gi",
            "1.2.3",
            "-1",
            "1e3",
            "1 Gi",
            "abc",
            "1.0000000001",
        ] {
            assert_eq!(q(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn selectors_accept_equality_only() {
        let s: Selector = "app=odordiff-api, tier==web".parse().unwrap();
        assert_eq!(s.to_string(), "app=odordiff-api,tier=web");
        for bad in ["", "app", "app!=x", "app in (a)", "a=b c", "=x", "app=-x"] {
            assert!(bad.parse::<Selector>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn qualified_names_follow_the_key_grammar() {
        for ok in [
            "maintenance",
            "cert-manager.io/issue-temporary-certificate",
            "a_b.c",
        ] {
            assert!(ok.parse::<QualifiedName>().is_ok(), "{ok}");
        }
        for bad in ["", "/x", "Bad_Prefix/x", "x/", "-x", &"a".repeat(64), "a b"] {
            assert!(bad.parse::<QualifiedName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn env_names_data_keys_and_limits() {
        assert!("API_KEY".parse::<EnvName>().is_ok());
        assert!("1KEY".parse::<EnvName>().is_err());
        assert!("api-key".parse::<DataKey>().is_ok());
        assert!("a/b".parse::<DataKey>().is_err());
        assert!(ResourceLimits::new([("cpu", "2000m"), ("memory", "4Gi")]).is_ok());
        assert_eq!(
            ResourceLimits::new([("gpu", "1")]),
            Err(InputError::ResourceName("gpu".into()))
        );
        assert_eq!(
            ResourceLimits::new([("cpu", "lots")]),
            Err(InputError::Quantity("lots".into()))
        );
    }
}
