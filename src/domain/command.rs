//! The `/odor` language: one table of verbs drives parsing, help and error replies.
//!
//! Parsing is pure: text in, a typed [`Command`] or a [`ParseError`] out. Adding a verb
//! means adding a [`VerbSpec`] row and a [`Command`] variant; help follows by itself.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use thiserror::Error;

use super::args::{ArgKind, TokenizeError, Value, ValueError, tokenize};
use super::escalation::Severity;
use super::signals::{SIGNAL_NAMES, Signal};
use super::view::{code, code_span};

/// How a verb behaves, which decides where it is listed and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// About odorbot itself.
    Meta,
    /// Read-only: runs at once.
    Diagnostics,
    /// Incidents: open, own, escalate, update, resolve.
    Incidents,
}

impl Group {
    fn title(self) -> &'static str {
        match self {
            Self::Meta => "odorbot",
            Self::Diagnostics => "Diagnostics (read-only, run at once)",
            Self::Incidents => "Incidents",
        }
    }
}

/// A positional argument of a verb.
#[derive(Debug)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    pub help: &'static str,
}

/// A `--name value` option, or a `--name` flag when `kind` is `None`.
#[derive(Debug)]
pub struct OptSpec {
    pub name: &'static str,
    pub kind: Option<ArgKind>,
    pub help: &'static str,
}

/// One row of the command table.
#[derive(Debug)]
pub struct VerbSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub group: Group,
    pub args: &'static [ArgSpec],
    pub options: &'static [OptSpec],
    pub examples: &'static [&'static str],
    /// Turns checked arguments into the typed command; fails only on checks that need
    /// more than one argument's worth of context.
    build: fn(&Args) -> Result<Command, ParseError>,
}

impl VerbSpec {
    /// `/odor logs <deployment> [--since <duration>]`, generated from the row.
    pub fn synopsis(&self) -> String {
        let mut out = format!("/odor {}", self.name);
        for arg in self.args {
            let shown = match arg.kind {
                ArgKind::Text { .. } => format!("<{}>…", arg.name),
                _ => format!("<{}>", arg.name),
            };
            if arg.required {
                out.push_str(&format!(" {shown}"));
            } else {
                out.push_str(&format!(" [{shown}]"));
            }
        }
        for opt in self.options {
            match opt.kind {
                Some(_) => out.push_str(&format!(" [--{} <value>]", opt.name)),
                None => out.push_str(&format!(" [--{}]", opt.name)),
            }
        }
        out
    }
}

/// Checked arguments of one invocation, by name.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<&'static str, Value>,
}

impl Args {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        }
    }
}

/// A fully parsed command; every value inside is already valid.
#[derive(Debug, Clone)]
pub enum Command {
    /// `help` or `help <verb>`.
    Help { verb: Option<&'static VerbSpec> },
    /// The service's overall picture and odorbot's own health.
    Status,
    /// PostgreSQL and PgBouncer diagnostics.
    Db { view: DbView, older_than: Duration },
    /// Redis statistics, with a key sample when a pattern is given.
    Cache { pattern: Option<String> },
    /// Persistent volume usage.
    Disk,
    /// Certificates: the public endpoint's TLS certificate.
    Certs,
    /// One runbook signal with its verdict.
    Metrics { signal: Signal },
    /// Open an incident by hand.
    IncidentOpen { severity: Severity, title: String },
    /// Acknowledge, escalate, resolve or show the timeline of an incident (the only
    /// open one when none is named).
    Incident {
        verb: IncidentVerb,
        number: Option<i64>,
    },
    /// A human status update.
    Update { number: i64, text: String },
    /// Who is on call.
    Oncall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentVerb {
    Ack,
    Escalate,
    Resolve,
    Timeline,
}

/// What `/odor db` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbView {
    Connections,
    SlowQueries,
    Pools,
}

/// Default age from which a running statement counts as long-running (the runbook's
/// terminate query uses five minutes).
pub const DEFAULT_LONG_RUNNING: Duration = Duration::from_secs(300);

/// Everything that can be wrong with a command; each variant renders a reply saying what
/// was wrong and what is accepted.
#[derive(Debug, Error)]
pub enum ParseError {
    #[error("The command could not be read: {0}.")]
    Tokenize(#[from] TokenizeError),
    #[error("{}", unknown_verb(given, *suggestion))]
    UnknownVerb {
        given: String,
        suggestion: Option<&'static str>,
    },
    #[error("{} needs {}: {}.\nUsage: {}", code(verb.name), code(&format!("<{}>", arg.name)), arg.kind.describe(), code(&verb.synopsis()))]
    MissingArgument {
        verb: &'static VerbSpec,
        arg: &'static ArgSpec,
    },
    #[error("{} takes no further argument {}.\nUsage: {}", code(verb.name), code_span(given), code(&verb.synopsis()))]
    UnexpectedArgument {
        verb: &'static VerbSpec,
        given: String,
    },
    #[error("{} {} {error}.\nUsage: {}", code(&format!("<{name}>")), code_span(given), code(&verb.synopsis()))]
    InvalidArgument {
        verb: &'static VerbSpec,
        name: &'static str,
        given: String,
        error: ValueError,
    },
    #[error("{} has no option {}; it accepts {}.", code(verb.name), code_span(given), accepted_options(verb))]
    UnknownOption {
        verb: &'static VerbSpec,
        given: String,
    },
    #[error("{} needs a value: {}.", code(&format!("--{}", option.name)), option.kind.map(|k| k.describe()).unwrap_or_default())]
    MissingOptionValue {
        verb: &'static VerbSpec,
        option: &'static OptSpec,
    },
    #[error("{} is given more than once.", code(&format!("--{option}")))]
    RepeatedOption {
        verb: &'static VerbSpec,
        option: &'static str,
    },
}

fn unknown_verb(given: &str, suggestion: Option<&str>) -> String {
    let hint = suggestion
        .map(|s| format!(" Did you mean {}?", code(s)))
        .unwrap_or_default();
    format!(
        "{} is not an odorbot command.{hint} Try {} for the list.",
        code_span(given),
        code("/odor help")
    )
}

fn accepted_options(verb: &VerbSpec) -> String {
    if verb.options.is_empty() {
        return "none".into();
    }
    verb.options
        .iter()
        .map(|o| code(&format!("--{}", o.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The verbs odorbot understands, in the order help lists them.
pub static VERBS: &[VerbSpec] = &[
    VerbSpec {
        name: "help",
        summary: "List the commands, or explain one.",
        group: Group::Meta,
        args: &[ArgSpec {
            name: "command",
            kind: ArgKind::Text { max_chars: 40 },
            required: false,
            help: "the command to explain",
        }],
        options: &[],
        examples: &["/odor help", "/odor help status"],
        build: build_help,
    },
    VerbSpec {
        name: "status",
        summary: "The overall picture: error rate, p95 latency, request rate, health, database connections, cache hit rate; and odorbot's own Slack connections, store, open approvals and incidents, version.",
        group: Group::Meta,
        args: &[],
        options: &[],
        examples: &["/odor status"],
        build: |_| Ok(Command::Status),
    },
    VerbSpec {
        name: "db",
        summary: "PostgreSQL connections by state, long-running and slowest statements, or PgBouncer's pools, with a verdict.",
        group: Group::Diagnostics,
        args: &[ArgSpec {
            name: "view",
            kind: ArgKind::Choice(&["connections", "slow-queries", "pools"]),
            required: true,
            help: "what to show",
        }],
        options: &[OptSpec {
            name: "older-than",
            kind: Some(ArgKind::Duration {
                min_secs: 1,
                max_secs: 86_400,
            }),
            help: "for slow-queries: the age from which a running statement counts (default 5m)",
        }],
        examples: &[
            "/odor db connections",
            "/odor db slow-queries --older-than 2m",
            "/odor db pools",
        ],
        build: build_db,
    },
    VerbSpec {
        name: "cache",
        summary: "Redis hit rate, evictions and memory; with --pattern, a bounded key sample by SCAN.",
        group: Group::Diagnostics,
        args: &[ArgSpec {
            name: "view",
            kind: ArgKind::Choice(&["stats"]),
            required: true,
            help: "what to show",
        }],
        options: &[OptSpec {
            name: "pattern",
            kind: Some(ArgKind::Text { max_chars: 100 }),
            help: "a Redis glob such as `session:*`",
        }],
        examples: &["/odor cache stats", "/odor cache stats --pattern 'odor:*'"],
        build: |args| {
            Ok(Command::Cache {
                pattern: args.text("pattern").map(str::to_owned),
            })
        },
    },
    VerbSpec {
        name: "disk",
        summary: "Usage of the busiest persistent volume against the 10% free threshold.",
        group: Group::Diagnostics,
        args: &[],
        options: &[],
        examples: &["/odor disk"],
        build: |_| Ok(Command::Disk),
    },
    VerbSpec {
        name: "certs",
        summary: "The public endpoint's TLS certificate: days left, issuer, names.",
        group: Group::Diagnostics,
        args: &[],
        options: &[],
        examples: &["/odor certs"],
        build: |_| Ok(Command::Certs),
    },
    VerbSpec {
        name: "metrics",
        summary: "One runbook signal from Prometheus (or a /metrics scrape), with its verdict.",
        group: Group::Diagnostics,
        args: &[ArgSpec {
            name: "signal",
            kind: ArgKind::Choice(SIGNAL_NAMES),
            required: true,
            help: "which signal",
        }],
        options: &[],
        examples: &["/odor metrics error_rate", "/odor metrics p95_latency"],
        build: |args| match args.get("signal") {
            Some(Value::Word(name)) => Ok(Command::Metrics {
                signal: name.parse().expect("choices are signal names"),
            }),
            _ => unreachable!("a required argument is bound"),
        },
    },
    VerbSpec {
        name: "incident",
        summary: "Open an incident with its thread in the incident channel; on-call is pinged by severity.",
        group: Group::Incidents,
        args: &[
            ArgSpec {
                name: "action",
                kind: ArgKind::Choice(&["open"]),
                required: true,
                help: "what to do",
            },
            ArgSpec {
                name: "severity",
                kind: ArgKind::Choice(&["critical", "high", "medium", "low"]),
                required: true,
                help: "the runbook's severity",
            },
            ArgSpec {
                name: "title",
                kind: ArgKind::Text { max_chars: 150 },
                required: true,
                help: "what is happening",
            },
        ],
        options: &[],
        examples: &["/odor incident open high API p95 over 2s since the 14:00 deploy"],
        build: |args| {
            let severity = match args.get("severity") {
                Some(Value::Word(w)) => w.parse().expect("choices are severities"),
                _ => unreachable!("a required argument is bound"),
            };
            Ok(Command::IncidentOpen {
                severity,
                title: args.text("title").unwrap_or_default().to_owned(),
            })
        },
    },
    VerbSpec {
        name: "ack",
        summary: "Acknowledge an incident and own it; escalation stops.",
        group: Group::Incidents,
        args: &[ArgSpec {
            name: "incident",
            kind: ArgKind::Incident,
            required: false,
            help: "which incident (default: the only open one)",
        }],
        options: &[],
        examples: &["/odor ack INC-7"],
        build: |args| {
            Ok(Command::Incident {
                verb: IncidentVerb::Ack,
                number: incident_number(args),
            })
        },
    },
    VerbSpec {
        name: "escalate",
        summary: "Page the next person on the roster (primary → secondary → platform lead) now.",
        group: Group::Incidents,
        args: &[ArgSpec {
            name: "incident",
            kind: ArgKind::Incident,
            required: false,
            help: "which incident (default: the only open one)",
        }],
        options: &[],
        examples: &["/odor escalate INC-7"],
        build: |args| {
            Ok(Command::Incident {
                verb: IncidentVerb::Escalate,
                number: incident_number(args),
            })
        },
    },
    VerbSpec {
        name: "update",
        summary: "Post a human status update in the incident's thread (it clears the commander's nudge).",
        group: Group::Incidents,
        args: &[
            ArgSpec {
                name: "incident",
                kind: ArgKind::Incident,
                required: true,
                help: "which incident",
            },
            ArgSpec {
                name: "text",
                kind: ArgKind::Text { max_chars: 2000 },
                required: true,
                help: "the update",
            },
        ],
        options: &[],
        examples: &["/odor update INC-7 rolled back to r41, error rate falling"],
        build: |args| {
            Ok(Command::Update {
                number: incident_number(args).expect("a required argument is bound"),
                text: args.text("text").unwrap_or_default().to_owned(),
            })
        },
    },
    VerbSpec {
        name: "resolve",
        summary: "Resolve an incident: timers stop; the timeline is posted in the thread.",
        group: Group::Incidents,
        args: &[ArgSpec {
            name: "incident",
            kind: ArgKind::Incident,
            required: false,
            help: "which incident (default: the only open one)",
        }],
        options: &[],
        examples: &["/odor resolve INC-7"],
        build: |args| {
            Ok(Command::Incident {
                verb: IncidentVerb::Resolve,
                number: incident_number(args),
            })
        },
    },
    VerbSpec {
        name: "timeline",
        summary: "The incident's timeline as Markdown.",
        group: Group::Incidents,
        args: &[ArgSpec {
            name: "incident",
            kind: ArgKind::Incident,
            required: false,
            help: "which incident (default: the only open one)",
        }],
        options: &[],
        examples: &["/odor timeline INC-7"],
        build: |args| {
            Ok(Command::Incident {
                verb: IncidentVerb::Timeline,
                number: incident_number(args),
            })
        },
    },
    VerbSpec {
        name: "oncall",
        summary: "Who is on call, role by role.",
        group: Group::Incidents,
        args: &[],
        options: &[],
        examples: &["/odor oncall"],
        build: |_| Ok(Command::Oncall),
    },
];

fn incident_number(args: &Args) -> Option<i64> {
    match args.get("incident") {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

fn build_db(args: &Args) -> Result<Command, ParseError> {
    let view = match args.get("view") {
        Some(Value::Word("connections")) => DbView::Connections,
        Some(Value::Word("slow-queries")) => DbView::SlowQueries,
        _ => DbView::Pools,
    };
    let older_than = match args.get("older-than") {
        Some(Value::Duration(d)) => *d,
        _ => DEFAULT_LONG_RUNNING,
    };
    Ok(Command::Db { view, older_than })
}

fn build_help(args: &Args) -> Result<Command, ParseError> {
    let Some(topic) = args.text("command") else {
        return Ok(Command::Help { verb: None });
    };
    let topic = topic.trim().trim_start_matches("/odor").trim();
    let verb = find_verb(VERBS, topic).ok_or_else(|| unknown_verb_error(VERBS, topic))?;
    Ok(Command::Help { verb: Some(verb) })
}

/// Parses the text after `/odor` with the standard table.
///
/// # Errors
/// A [`ParseError`] describing the first problem found.
pub fn parse(text: &str) -> Result<Command, ParseError> {
    parse_with(VERBS, text)
}

/// Parses against any table; tests use tables of their own.
///
/// # Errors
/// A [`ParseError`] describing the first problem found.
pub fn parse_with(table: &'static [VerbSpec], text: &str) -> Result<Command, ParseError> {
    let tokens = tokenize(text)?;
    let Some((first, rest)) = tokens.split_first() else {
        return Ok(Command::Help { verb: None });
    };
    let verb = find_verb(table, first).ok_or_else(|| unknown_verb_error(table, first))?;
    let args = bind_args(verb, rest)?;
    (verb.build)(&args)
}

fn find_verb(table: &'static [VerbSpec], word: &str) -> Option<&'static VerbSpec> {
    table.iter().find(|v| v.name.eq_ignore_ascii_case(word))
}

fn unknown_verb_error(table: &'static [VerbSpec], given: &str) -> ParseError {
    ParseError::UnknownVerb {
        given: given.to_owned(),
        suggestion: suggest(table, given),
    }
}

/// The closest verb within two edits, for typos like `stauts`.
fn suggest(table: &'static [VerbSpec], given: &str) -> Option<&'static str> {
    let given = given.to_ascii_lowercase();
    if given.chars().count() > 40 {
        return None;
    }
    table
        .iter()
        .map(|v| (edit_distance(&given, v.name), v.name))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn bind_args(verb: &'static VerbSpec, tokens: &[String]) -> Result<Args, ParseError> {
    let mut args = Args::default();
    let mut positionals: Vec<&str> = Vec::new();
    let mut iter = tokens.iter();
    while let Some(token) = iter.next() {
        let Some(option_text) = token.strip_prefix("--").filter(|o| !o.is_empty()) else {
            positionals.push(token);
            continue;
        };
        let (name, inline_value) = match option_text.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (option_text, None),
        };
        let option = verb
            .options
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| ParseError::UnknownOption {
                verb,
                given: format!("--{name}"),
            })?;
        if args.values.contains_key(option.name) {
            return Err(ParseError::RepeatedOption {
                verb,
                option: option.name,
            });
        }
        let value = match option.kind {
            None => Value::Flag,
            Some(kind) => {
                let raw = inline_value
                    .or_else(|| iter.next().cloned())
                    .ok_or(ParseError::MissingOptionValue { verb, option })?;
                kind.parse(&raw)
                    .map_err(|error| invalid(verb, option.name, &raw, error))?
            }
        };
        args.values.insert(option.name, value);
    }

    let mut rest = positionals.into_iter();
    for spec in verb.args {
        let raw = match spec.kind {
            // Free text takes everything that is left.
            ArgKind::Text { .. } => {
                let joined = rest.by_ref().collect::<Vec<_>>().join(" ");
                (!joined.is_empty()).then_some(joined)
            }
            _ => rest.next().map(str::to_owned),
        };
        match raw {
            Some(raw) => {
                let value = spec
                    .kind
                    .parse(&raw)
                    .map_err(|error| invalid(verb, spec.name, &raw, error))?;
                args.values.insert(spec.name, value);
            }
            None if spec.required => {
                return Err(ParseError::MissingArgument { verb, arg: spec });
            }
            None => {}
        }
    }
    if let Some(extra) = rest.next() {
        return Err(ParseError::UnexpectedArgument {
            verb,
            given: extra.to_owned(),
        });
    }
    Ok(args)
}

fn invalid(
    verb: &'static VerbSpec,
    name: &'static str,
    raw: &str,
    error: ValueError,
) -> ParseError {
    ParseError::InvalidArgument {
        verb,
        name,
        given: raw.to_owned(),
        error,
    }
}

/// The help text for the whole table, or for one verb.
pub fn help_text(table: &'static [VerbSpec], verb: Option<&'static VerbSpec>) -> String {
    match verb {
        Some(v) => verb_help(v),
        None => {
            let mut out = String::from("*odorbot* runs the OdorDiff-2 runbook from Slack.\n");
            let mut groups: Vec<Group> = Vec::new();
            for v in table {
                if !groups.contains(&v.group) {
                    groups.push(v.group);
                }
            }
            for group in groups {
                out.push_str(&format!("\n*{}*\n", group.title()));
                for v in table.iter().filter(|v| v.group == group) {
                    out.push_str(&format!("• {} — {}\n", code(&v.synopsis()), v.summary));
                }
            }
            out.push_str(&format!(
                "\n{} explains one command.",
                code("/odor help <command>")
            ));
            out
        }
    }
}

fn verb_help(v: &VerbSpec) -> String {
    let mut out = format!("{}\n{}\n", code(&v.synopsis()), v.summary);
    if !v.args.is_empty() {
        out.push_str("\n*Arguments*\n");
        for a in v.args {
            let optional = if a.required { "" } else { " (optional)" };
            out.push_str(&format!(
                "• {}{optional}: {} — {}\n",
                code(&format!("<{}>", a.name)),
                a.help,
                a.kind.describe()
            ));
        }
    }
    if !v.options.is_empty() {
        out.push_str("\n*Options*\n");
        for o in v.options {
            let accepts = o
                .kind
                .map(|k| format!(" — {}", k.describe()))
                .unwrap_or_default();
            out.push_str(&format!(
                "• {}: {}{accepts}\n",
                code(&format!("--{}", o.name)),
                o.help
            ));
        }
    }
    if !v.examples.is_empty() {
        out.push_str("\n*Examples*\n");
        for e in v.examples {
            out.push_str(&format!("• {}\n", code(e)));
        }
    }
    out.trim_end().to_owned()
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Help { verb: None } => f.write_str("help"),
            Self::Help { verb: Some(v) } => write!(f, "help {}", v.name),
            other => f.write_str(other.verb()),
        }
    }
}

impl Command {
    /// The verb's name, used as a metrics label (bounded cardinality).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Help { .. } => "help",
            Self::Status => "status",
            Self::Db { .. } => "db",
            Self::Cache { .. } => "cache",
            Self::Disk => "disk",
            Self::Certs => "certs",
            Self::Metrics { .. } => "metrics",
            Self::IncidentOpen { .. } => "incident",
            Self::Incident {
                verb: IncidentVerb::Ack,
                ..
            } => "ack",
            Self::Incident {
                verb: IncidentVerb::Escalate,
                ..
            } => "escalate",
            Self::Incident {
                verb: IncidentVerb::Resolve,
                ..
            } => "resolve",
            Self::Incident {
                verb: IncidentVerb::Timeline,
                ..
            } => "timeline",
            Self::Update { .. } => "update",
            Self::Oncall => "oncall",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::args::ArgKind;

    /// A table exercising every argument kind, independent of the shipped verbs.
    static TEST_VERBS: &[VerbSpec] = &[VerbSpec {
        name: "logs",
        summary: "test verb",
        group: Group::Diagnostics,
        args: &[
            ArgSpec {
                name: "deployment",
                kind: ArgKind::Name,
                required: true,
                help: "which deployment",
            },
            ArgSpec {
                name: "replicas",
                kind: ArgKind::Int { min: 1, max: 20 },
                required: false,
                help: "how many",
            },
        ],
        options: &[
            OptSpec {
                name: "since",
                kind: Some(ArgKind::Duration {
                    min_secs: 1,
                    max_secs: 86_400,
                }),
                help: "how far back",
            },
            OptSpec {
                name: "grep",
                kind: Some(ArgKind::Regex),
                help: "filter",
            },
            OptSpec {
                name: "reason",
                kind: Some(ArgKind::Text { max_chars: 50 }),
                help: "why",
            },
            OptSpec {
                name: "previous",
                kind: None,
                help: "flag",
            },
        ],
        examples: &[],
        build: |_| Ok(Command::Status),
    }];

    fn err(text: &str) -> ParseError {
        parse_with(TEST_VERBS, text).unwrap_err()
    }

    #[test]
    fn every_argument_kind_binds_from_positionals_and_options() {
        let verb = &TEST_VERBS[0];
        let tokens: Vec<String> = tokenize(
            r#"odordiff-api 5 --since 10m --grep "401|403" --reason "bad deploy" --previous"#,
        )
        .unwrap();
        let args = bind_args(verb, &tokens).unwrap();
        assert!(
            matches!(args.get("deployment"), Some(Value::Name(n)) if n.as_str() == "odordiff-api")
        );
        assert!(matches!(args.get("replicas"), Some(Value::Int(5))));
        assert!(matches!(args.get("since"), Some(Value::Duration(d)) if d.as_secs() == 600));
        assert!(matches!(args.get("grep"), Some(Value::Regex(f)) if f.is_match("403")));
        assert_eq!(args.text("reason"), Some("bad deploy"));
        assert!(matches!(args.get("previous"), Some(Value::Flag)));
        let inline = tokenize("api --since=2h").unwrap();
        let args = bind_args(verb, &inline).unwrap();
        assert!(matches!(args.get("since"), Some(Value::Duration(d)) if d.as_secs() == 7200));
    }

    #[test]
    fn errors_say_what_was_wrong_and_what_is_accepted() {
        let cases: &[(&str, &str)] = &[
            (
                "logs",
                "`logs` needs `&lt;deployment&gt;`: a Kubernetes name",
            ),
            (
                "logs Odordiff",
                "`&lt;deployment&gt;` `Odordiff` must use only lowercase letters",
            ),
            (
                "logs api 50",
                "`&lt;replicas&gt;` `50` is out of range: expected a whole number from 1 to 20",
            ),
            (
                "logs api --since 10",
                "`&lt;since&gt;` `10` is not a duration",
            ),
            ("logs api --since", "`--since` needs a value: a duration"),
            (
                "logs api --grep (",
                "`&lt;grep&gt;` `(` is not a usable regular expression",
            ),
            (
                "logs api --tail 5",
                "`logs` has no option `--tail`; it accepts `--since`, `--grep`, `--reason`, `--previous`",
            ),
            (
                "logs api --since 1m --since 2m",
                "`--since` is given more than once",
            ),
            (
                "logs api 3 extra",
                "`logs` takes no further argument `extra`",
            ),
            (
                "lgos",
                "`lgos` is not an odorbot command. Did you mean `logs`?",
            ),
            (
                "frobnicate",
                "`frobnicate` is not an odorbot command. Try `/odor help`",
            ),
            (
                "logs \"open",
                "a quote opened at character 6 is never closed",
            ),
        ];
        for (input, want) in cases {
            let got = err(input).to_string();
            assert!(got.contains(want), "{input:?}: got {got:?}, want {want:?}");
        }
        assert!(
            err("logs")
                .to_string()
                .contains("Usage: `/odor logs &lt;deployment&gt; [&lt;replicas&gt;]")
        );
    }

    #[test]
    fn hostile_echoes_are_escaped_and_bounded() {
        let got = err("<!channel>").to_string();
        assert!(got.contains("&lt;!channel&gt;"), "{got}");
        assert!(!got.contains("<!channel>"));
        let long = "x".repeat(500);
        let got = err(&long).to_string();
        assert!(got.chars().count() < 200, "{}", got.len());
        let got = err("logs ``` --since 1m").to_string();
        assert!(!got.contains("````"), "{got}");
        let mixed = err("status\u{202e}").to_string();
        assert!(mixed.contains("is not an odorbot command"), "{mixed}");
    }

    #[test]
    fn shipped_verbs_parse() {
        assert!(matches!(parse(""), Ok(Command::Help { verb: None })));
        assert!(matches!(parse("help"), Ok(Command::Help { verb: None })));
        assert!(
            matches!(parse("HELP Status"), Ok(Command::Help { verb: Some(v) }) if v.name == "status")
        );
        assert!(matches!(parse("status"), Ok(Command::Status)));
        assert!(matches!(
            parse("help bogus"),
            Err(ParseError::UnknownVerb { .. })
        ));
        assert!(matches!(
            parse("status now"),
            Err(ParseError::UnexpectedArgument { .. })
        ));
    }

    #[test]
    fn help_is_generated_from_the_table() {
        let all = help_text(VERBS, None);
        for v in VERBS {
            assert!(all.contains(&code(&v.synopsis())), "{}", v.name);
            assert!(all.contains(v.summary));
        }
        let one = help_text(TEST_VERBS, Some(&TEST_VERBS[0]));
        assert!(one.contains("`--since`: how far back — a duration such as 90s"));
        assert!(
            one.contains("`&lt;replicas&gt;` (optional): how many — a whole number from 1 to 20")
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Words that steer the parser into every branch: verbs, options, quotes,
        /// numbers, durations, regexes, mentions and oddities.
        fn word() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("logs".to_owned()),
                Just("help".to_owned()),
                Just("status".to_owned()),
                Just("--since".to_owned()),
                Just("--grep".to_owned()),
                Just("--reason".to_owned()),
                Just("--previous".to_owned()),
                Just("--".to_owned()),
                Just("\"".to_owned()),
                Just("“".to_owned()),
                Just("<!channel>".to_owned()),
                Just("(a{99}){99}".to_owned()),
                "[a-z0-9.-]{0,70}",
                "-?[0-9]{1,25}",
                "[0-9]{1,6}[smhdx]{1,2}",
                any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn arbitrary_text_never_panics(text in any::<String>()) {
                let _ = parse(&text);
                let _ = parse_with(TEST_VERBS, &text);
            }

            #[test]
            fn word_salad_never_panics_and_replies_stay_safe(words in prop::collection::vec(word(), 0..12)) {
                let text = words.join(" ");
                for result in [parse(&text), parse_with(TEST_VERBS, &text)] {
                    if let Err(e) = result {
                        let reply = e.to_string();
                        prop_assert!(!reply.contains("<!"), "unescaped mention in {reply:?}");
                        prop_assert!(reply.chars().count() < 1000, "reply too long: {}", reply.len());
                    }
                }
            }
        }
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("status", "status"), 0);
        assert_eq!(edit_distance("stauts", "status"), 2);
        assert_eq!(edit_distance("statu", "status"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
