//! The `/odor` language: one table of verbs drives parsing, help and error replies.
//!
//! Parsing is pure: text in, a typed [`Command`] or a [`ParseError`] out. A Kubernetes or
//! recovery verb is an alias for one of the runbook's typed actions: its row builds the
//! [`Action`] itself, with the objects it leaves out taken from the catalog's `service`
//! section and the objects it names held to the catalog's lists. Adding a verb means adding
//! a [`VerbSpec`] row; help follows by itself.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use thiserror::Error;

use super::access::Scope;
use super::args::{
    ArgKind, MAX_REPLICAS, MAX_REVISION, TokenizeError, Value, ValueError, tokenize,
};
use super::escalation::Severity;
use super::ids::K8sName;
use super::signals::{SIGNAL_NAMES, Signal};
use super::view::{code, code_span, escape};
use crate::runbook::Catalog;
use crate::runbook::actions::{Action, ActionKind, Bound, LogSource, ResourceLimits, one_line};
use crate::runbook::values::{ArgType, LabelSelector};

/// How a verb behaves, which decides where it is listed and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// About odorbot itself.
    Meta,
    /// Read-only: runs at once.
    Diagnostics,
    /// Destructive: a dry run now, execution after a second person approves.
    Recovery,
    /// Incidents: open, own, escalate, update, resolve.
    Incidents,
}

impl Group {
    fn title(self) -> &'static str {
        match self {
            Self::Meta => "odorbot",
            Self::Diagnostics => "Diagnostics (read-only, run at once)",
            Self::Recovery => {
                "Recovery (destructive: a dry run now; a second person approves the execution)"
            }
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
    /// more than one argument's worth of context, or the runbook's.
    build: fn(&Args, &Context<'_>) -> Result<Command, ParseError>,
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

/// What a verb's row consults beyond its arguments: the runbook, for the objects a
/// command leaves out and the lists the objects it names must be in, and the time, for the
/// names a request fixes (a Job created by hand).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub now_unix: i64,
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
    /// The open incidents, storm members with their storm.
    Incidents,
    /// One of the runbook's actions: a Kubernetes diagnostic runs at once; a change, with
    /// the reason given for it, is previewed and waits for a second person.
    Cluster {
        verb: &'static str,
        action: Action<Bound>,
        reason: Option<String>,
    },
    /// Every investigation step of a runbook alert.
    Diagnose { alert: String },
    /// Post a runbook checklist, interactive, in the channel.
    Checklist { name: String },
    /// Follow a runbook procedure as a guided thread, with its parameters (checked).
    Run {
        procedure: String,
        params: Vec<(String, String)>,
        reason: String,
        /// The incident the run works on (its evidence is kept under it); `None`: the only
        /// open one, if there is exactly one.
        incident: Option<i64>,
    },
    /// The runbook's contacts.
    Contacts,
    /// Pending approval requests.
    Approvals,
    /// The audit log since `since`, as Markdown or JSON.
    Audit { since: Duration, json: bool },
    /// The evidence kept for an incident: listed, and exported as a file (text or JSON).
    Evidence { number: Option<i64>, json: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentVerb {
    Ack,
    Escalate,
    Resolve,
    Timeline,
    /// Give a storm member its own thread.
    Thread,
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
    // The value's error can quote outside text (the regex crate's message, the value):
    // escaped like any echo.
    #[error("{} {} {}.\nUsage: {}", code(&format!("<{name}>")), code_span(given), escape(&error.to_string()), code(&verb.synopsis()))]
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
    /// A rule spanning several arguments, e.g. a destructive verb without `--reason`.
    #[error("{message}")]
    Rule { verb: &'static str, message: String },
    /// The runbook refuses the action the verb asks for; the reason quotes the value given.
    #[error("{}", escape(&error.to_string()))]
    Action {
        verb: &'static str,
        error: VerbError,
    },
}

impl ParseError {
    /// The verb the error concerns, as a bounded metrics label (`unknown` when none was
    /// recognised).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::UnknownVerb { .. } | Self::Tokenize(_) => "unknown",
            Self::MissingArgument { verb, .. }
            | Self::UnexpectedArgument { verb, .. }
            | Self::InvalidArgument { verb, .. }
            | Self::UnknownOption { verb, .. }
            | Self::MissingOptionValue { verb, .. }
            | Self::RepeatedOption { verb, .. } => verb.name,
            Self::Rule { verb, .. } | Self::Action { verb, .. } => verb,
        }
    }
}

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
        build: |_, _| Ok(Command::Status),
    },
    VerbSpec {
        name: "db",
        summary: "PostgreSQL connections by state, long-running and slowest statements, PgBouncer's pools, or a connection made as the API makes it, with a verdict.",
        group: Group::Diagnostics,
        args: &[ArgSpec {
            name: "view",
            kind: ArgKind::Choice(&[
                "connections",
                "slow-queries",
                "pools",
                "sizes",
                "connectivity",
                "terminate-long",
                "vacuum",
            ]),
            required: true,
            help: "what to show",
        }],
        options: &[
            OptSpec {
                name: "older-than",
                kind: Some(ArgKind::Duration {
                    min_secs: 1,
                    max_secs: 86_400,
                }),
                help: "for slow-queries and terminate-long: the age from which a running statement counts (default 5m)",
            },
            REASON,
        ],
        examples: &[
            "/odor db connections",
            "/odor db slow-queries --older-than 2m",
            "/odor db pools",
            "/odor db connectivity",
            "/odor db sizes",
        ],
        build: build_db,
    },
    VerbSpec {
        name: "cache",
        summary: "Redis hit rate, evictions and memory; with --pattern, a bounded key sample by SCAN.",
        group: Group::Diagnostics,
        args: &[
            ArgSpec {
                name: "view",
                kind: ArgKind::Choice(&["stats", "ttl", "warm"]),
                required: true,
                help: "stats; or ttl (set the cache TTL) or warm (run the cache-warming job), both destructive",
            },
            ArgSpec {
                name: "seconds",
                kind: ArgKind::Int {
                    min: 60,
                    max: 604_800,
                },
                required: false,
                help: "for ttl: the new TTL",
            },
        ],
        options: &[
            OptSpec {
                name: "pattern",
                kind: Some(ArgKind::Text { max_chars: 100 }),
                help: "a Redis glob such as `session:*`",
            },
            REASON,
        ],
        examples: &[
            "/odor cache stats",
            "/odor cache stats --pattern 'odor:*'",
            "/odor cache ttl 7200 --reason \"hit rate at 80%\"",
        ],
        build: build_cache,
    },
    VerbSpec {
        name: "disk",
        summary: "Usage of each persistent volume (or one, by claim) against the free-space threshold, and the largest container logs.",
        group: Group::Diagnostics,
        args: &[name_arg("pvc", false, "one PersistentVolumeClaim")],
        options: &[],
        examples: &["/odor disk", "/odor disk postgres-data-postgres-0"],
        build: |args, ctx| {
            query("disk", ctx, || {
                Ok(Action::DiskUsage {
                    pvc: name(args, "pvc"),
                })
            })
        },
    },
    VerbSpec {
        name: "certs",
        summary: "The public endpoint's TLS certificate: days left, issuer, names.",
        group: Group::Diagnostics,
        args: &[],
        options: &[],
        examples: &["/odor certs"],
        build: |_, _| Ok(Command::Certs),
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
        build: |args, _| match args.get("signal") {
            Some(Value::Word(name)) => Ok(Command::Metrics {
                signal: name.parse().expect("choices are signal names"),
            }),
            _ => unreachable!("a required argument is bound"),
        },
    },
    VerbSpec {
        name: "pods",
        summary: "Pods with phase, readiness and restarts: all of OdorDiff-2's, or one deployment's.",
        group: Group::Diagnostics,
        args: &[name_arg(
            "deployment",
            false,
            "the deployment (its `app` label)",
        )],
        options: &[],
        examples: &["/odor pods", "/odor pods odordiff-api"],
        build: |args, ctx| {
            query("pods", ctx, || {
                Ok(Action::Pods {
                    selector: match name(args, "deployment") {
                        Some(d) => app(&d)?,
                        None => val("")?,
                    },
                })
            })
        },
    },
    VerbSpec {
        name: "describe",
        summary: "Conditions, container states, last termination reasons and recent events of a deployment's failing pods.",
        group: Group::Diagnostics,
        args: &[name_arg("deployment", true, "the deployment")],
        options: &[OptSpec {
            name: "all",
            kind: None,
            help: "every pod, not only the failing ones",
        }],
        examples: &["/odor describe odordiff-api"],
        build: |args, ctx| {
            query("describe", ctx, || {
                Ok(Action::DescribePods {
                    selector: app(&required_name(args, "deployment"))?,
                    only_failing: args.get("all").is_none(),
                })
            })
        },
    },
    VerbSpec {
        name: "logs",
        summary: "Recent log lines of a deployment's pods (or one pod), filtered and bounded; `logs cleanup` runs the log clean-up job (destructive).",
        group: Group::Diagnostics,
        args: &[name_arg(
            "target",
            true,
            "a deployment, a pod with --pod, or `cleanup`",
        )],
        options: &[
            SINCE,
            OptSpec {
                name: "tail",
                kind: Some(ArgKind::Int { min: 1, max: 1000 }),
                help: "last lines per pod",
            },
            OptSpec {
                name: "grep",
                kind: Some(ArgKind::Regex),
                help: "keep matching lines, e.g. `ERROR` or `401|403`",
            },
            OptSpec {
                name: "pod",
                kind: None,
                help: "the target is a pod name",
            },
            OptSpec {
                name: "previous",
                kind: None,
                help: "the previous run of a container that restarted",
            },
            REASON,
        ],
        examples: &[
            "/odor logs odordiff-api --since 10m --grep ERROR",
            "/odor logs odordiff-api --previous --tail 50",
            "/odor logs odordiff-api --tail 100",
        ],
        build: |args, ctx| {
            let target = required_name(args, "target");
            if target.as_str() == "cleanup" && args.get("pod").is_none() {
                return change(args, "logs", ctx, || {
                    Ok(Action::LogsCleanup {
                        cronjob: ctx.catalog.service().logs_cleanup.clone(),
                        job_name: None,
                    })
                });
            }
            query("logs", ctx, || {
                Ok(Action::Logs {
                    source: if args.get("pod").is_some() {
                        LogSource::Pod(target)
                    } else {
                        LogSource::Selector(app(&target)?)
                    },
                    tail: int(args, "tail").map(number).transpose()?,
                    since: duration(args, "since"),
                    grep: match args.get("grep") {
                        Some(Value::Regex(f)) => Some(f.clone()),
                        _ => None,
                    },
                    previous: args.get("previous").is_some().then_some(true),
                })
            })
        },
    },
    VerbSpec {
        name: "events",
        summary: "The namespace's events, newest last.",
        group: Group::Diagnostics,
        args: &[],
        options: &[SINCE],
        examples: &["/odor events --since 1h"],
        build: |args, ctx| {
            query("events", ctx, || {
                Ok(Action::Events {
                    since: duration(args, "since"),
                })
            })
        },
    },
    VerbSpec {
        name: "endpoints",
        summary: "Ready and not-ready addresses of a service (default odordiff-api).",
        group: Group::Diagnostics,
        args: &[name_arg("service", false, "the service")],
        options: &[],
        examples: &["/odor endpoints"],
        build: |args, ctx| {
            query("endpoints", ctx, || {
                Ok(Action::Endpoints {
                    service: name(args, "service")
                        .unwrap_or_else(|| ctx.catalog.service().api.clone()),
                })
            })
        },
    },
    VerbSpec {
        name: "history",
        summary: "Rollout status and history of a deployment (ReplicaSet revisions), or the Helm release's revisions.",
        group: Group::Diagnostics,
        args: &[name_arg(
            "name",
            true,
            "a deployment, or the release odordiff-2",
        )],
        options: &[],
        examples: &["/odor history odordiff-api", "/odor history odordiff-2"],
        build: |args, ctx| {
            let name = required_name(args, "name");
            query("history", ctx, || {
                Ok(if is_release(ctx, &name) {
                    Action::HelmHistory { release: name }
                } else {
                    Action::RolloutHistory { deployment: name }
                })
            })
        },
    },
    VerbSpec {
        name: "top",
        summary: "CPU and memory of the pods, from metrics.k8s.io.",
        group: Group::Diagnostics,
        args: &[],
        options: &[],
        examples: &["/odor top"],
        build: |_, ctx| query("top", ctx, || Ok(Action::ResourceUsage { selector: None })),
    },
    VerbSpec {
        name: "errors",
        summary: "5xx answers by endpoint from Prometheus: rate and error ratio, the most errors first.",
        group: Group::Diagnostics,
        args: &[],
        options: &[OptSpec {
            name: "top",
            kind: Some(ArgKind::Int { min: 1, max: 50 }),
            help: "how many endpoints (default 5)",
        }],
        examples: &["/odor errors", "/odor errors --top 10"],
        build: |args, ctx| {
            query("errors", ctx, || {
                Ok(Action::ErrorBreakdown {
                    top: int(args, "top").map(number).transpose()?,
                })
            })
        },
    },
    VerbSpec {
        name: "backups",
        summary: "Velero backups and restores.",
        group: Group::Diagnostics,
        args: &[],
        options: &[],
        examples: &["/odor backups"],
        build: |_, ctx| query("backups", ctx, || Ok(Action::Backups)),
    },
    VerbSpec {
        name: "access-review",
        summary: "Service accounts and role bindings that concern the namespace.",
        group: Group::Diagnostics,
        args: &[],
        options: &[],
        examples: &["/odor access-review"],
        build: |_, ctx| query("access-review", ctx, || Ok(Action::AccessReview)),
    },
    VerbSpec {
        name: "diagnose",
        summary: "Every investigation step the runbook lists for an alert, e.g. api-service-down.",
        group: Group::Diagnostics,
        args: &[ArgSpec {
            name: "alert",
            kind: ArgKind::Text { max_chars: 60 },
            required: true,
            help: "the runbook alert id (see `odorbot runbook list`)",
        }],
        options: &[],
        examples: &["/odor diagnose api-service-down"],
        build: |args, _| {
            Ok(Command::Diagnose {
                alert: args.text("alert").unwrap_or_default().trim().to_owned(),
            })
        },
    },
    VerbSpec {
        name: "rollback",
        summary: "Roll a deployment, or the Helm release odordiff-2, back to the previous (or named) revision.",
        group: Group::Recovery,
        args: &[name_arg("target", true, "a deployment or odordiff-2")],
        options: &[
            OptSpec {
                name: "to",
                kind: Some(ArgKind::Int {
                    min: 1,
                    max: MAX_REVISION as i64,
                }),
                help: "the revision to return to (default: the previous one)",
            },
            REASON,
        ],
        examples: &[
            "/odor rollback odordiff-2 --reason \"5xx since the 14:00 deploy\"",
            "/odor rollback odordiff-api --to 41 --reason \"…\"",
        ],
        build: |args, ctx| {
            let target = required_name(args, "target");
            change(args, "rollback", ctx, || {
                let revision = int(args, "to").map(number).transpose()?;
                Ok(if is_release(ctx, &target) {
                    Action::RollbackHelm {
                        release: target,
                        revision,
                    }
                } else {
                    Action::RollbackDeployment {
                        deployment: target,
                        revision,
                    }
                })
            })
        },
    },
    VerbSpec {
        name: "restart",
        summary: "Rollout restart of a deployment.",
        group: Group::Recovery,
        args: &[name_arg("deployment", true, "the deployment")],
        options: &[REASON],
        examples: &["/odor restart pgbouncer --reason \"pool exhausted\""],
        build: |args, ctx| {
            change(args, "restart", ctx, || {
                Ok(Action::RolloutRestart {
                    deployment: required_name(args, "deployment"),
                    restarted_at: None,
                })
            })
        },
    },
    VerbSpec {
        name: "scale",
        summary: "Set a deployment's replicas (0 to 50).",
        group: Group::Recovery,
        args: &[
            name_arg("deployment", true, "the deployment"),
            ArgSpec {
                name: "replicas",
                kind: ArgKind::Int {
                    min: 0,
                    max: MAX_REPLICAS as i64,
                },
                required: true,
                help: "the new replica count",
            },
        ],
        options: &[REASON],
        examples: &["/odor scale odordiff-api 5 --reason \"CPU at 95%\""],
        build: |args, ctx| {
            change(args, "scale", ctx, || {
                Ok(Action::Scale {
                    deployment: required_name(args, "deployment"),
                    replicas: number(int(args, "replicas").unwrap_or(0))?,
                })
            })
        },
    },
    VerbSpec {
        name: "hpa",
        summary: "Change an autoscaler's min/max replicas or CPU target.",
        group: Group::Recovery,
        args: &[name_arg(
            "hpa",
            true,
            "the HorizontalPodAutoscaler, e.g. odordiff-api-hpa",
        )],
        options: &[
            OptSpec {
                name: "min",
                kind: Some(ArgKind::Int {
                    min: 1,
                    max: MAX_REPLICAS as i64,
                }),
                help: "minimum replicas",
            },
            OptSpec {
                name: "max",
                kind: Some(ArgKind::Int {
                    min: 1,
                    max: MAX_REPLICAS as i64,
                }),
                help: "maximum replicas",
            },
            OptSpec {
                name: "cpu",
                kind: Some(ArgKind::Int { min: 1, max: 100 }),
                help: "target CPU percent",
            },
            REASON,
        ],
        examples: &["/odor hpa odordiff-api-hpa --min 5 --reason \"p95 over 1s\""],
        build: |args, ctx| {
            let (min, max, cpu) = (int(args, "min"), int(args, "max"), int(args, "cpu"));
            if min.is_none() && max.is_none() && cpu.is_none() {
                return Err(rule(
                    "hpa",
                    "`hpa` needs at least one of `--min`, `--max`, `--cpu`.",
                ));
            }
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return Err(rule("hpa", &format!("`--min {lo}` is above `--max {hi}`.")));
            }
            change(args, "hpa", ctx, || {
                Ok(Action::PatchHpa {
                    hpa: required_name(args, "hpa"),
                    min_replicas: min.map(number).transpose()?,
                    max_replicas: max.map(number).transpose()?,
                    target_cpu_percent: cpu.map(number).transpose()?,
                })
            })
        },
    },
    VerbSpec {
        name: "resources",
        summary: "Set a container's memory and CPU limits, e.g. PostgreSQL's when its pool is exhausted.",
        group: Group::Recovery,
        args: &[
            name_arg("deployment", true, "the deployment"),
            name_arg("container", true, "the container in its pod template"),
        ],
        options: &[
            OptSpec {
                name: "memory",
                kind: Some(ArgKind::Text { max_chars: 20 }),
                help: "the memory limit, e.g. 4Gi",
            },
            OptSpec {
                name: "cpu",
                kind: Some(ArgKind::Text { max_chars: 20 }),
                help: "the CPU limit, e.g. 2000m or 2",
            },
            REASON,
        ],
        examples: &[
            "/odor resources postgres postgres --memory 4Gi --cpu 2000m --reason \"pool exhausted, memory at its limit\"",
        ],
        build: |args, ctx| {
            let (memory, cpu) = (args.text("memory"), args.text("cpu"));
            if memory.is_none() && cpu.is_none() {
                return Err(rule(
                    "resources",
                    "`resources` needs `--memory`, `--cpu` or both.",
                ));
            }
            change(args, "resources", ctx, || {
                Ok(Action::SetResources {
                    deployment: required_name(args, "deployment"),
                    container: required_name(args, "container"),
                    limits: ResourceLimits {
                        memory: memory.map(val).transpose()?,
                        cpu: cpu.map(val).transpose()?,
                    },
                })
            })
        },
    },
    VerbSpec {
        name: "deploy",
        summary: "Set a deployment's image tag: the container and the image repository are the runbook's (service.deploy); the card shows the pre-deployment checks.",
        group: Group::Recovery,
        args: &[
            name_arg("deployment", true, "the deployment"),
            ArgSpec {
                name: "tag",
                kind: ArgKind::Text { max_chars: 128 },
                required: true,
                help: "the image tag",
            },
        ],
        options: &[REASON],
        examples: &["/odor deploy odordiff-api 1.6.0 --reason \"release 1.6\""],
        build: |args, ctx| {
            let deployment = required_name(args, "deployment");
            let service = ctx.catalog.service();
            let Some(target) = service.deploy_target(&deployment) else {
                return Err(rule(
                    "deploy",
                    &format!(
                        "`{deployment}` is not one the runbook deploys; it deploys {}.",
                        service.deployable()
                    ),
                ));
            };
            change(args, "deploy", ctx, || {
                Ok(Action::SetImage {
                    deployment: deployment.clone(),
                    container: target.container.clone(),
                    tag: val(args.text("tag").unwrap_or_default())?,
                })
            })
        },
    },
    VerbSpec {
        name: "smoke",
        summary: "Run the smoke-test suite as a Job from its suspended CronJob; the thread gets pass or fail and the tail of its log.",
        group: Group::Recovery,
        args: &[],
        options: &[REASON],
        examples: &["/odor smoke --reason \"after deploying 1.6.0\""],
        build: |args, ctx| {
            change(args, "smoke", ctx, || {
                Ok(Action::SmokeTests {
                    cronjob: ctx.catalog.service().smoke_tests.clone(),
                    job_name: None,
                })
            })
        },
    },
    VerbSpec {
        name: "maintenance",
        summary: "Put the maintenance annotation on odordiff-api, or take it off.",
        group: Group::Recovery,
        args: &[choice("state", &["start", "end"], "start or end")],
        options: &[REASON],
        examples: &["/odor maintenance start --reason \"weekly vacuum\""],
        build: |args, ctx| {
            change(args, "maintenance", ctx, || {
                let on = matches!(args.get("state"), Some(Value::Word("start")));
                Ok(Action::Annotate {
                    deployment: ctx.catalog.service().api.clone(),
                    key: val("maintenance")?,
                    value: on.then(|| val("true")).transpose()?,
                })
            })
        },
    },
    VerbSpec {
        name: "pvc",
        summary: "Expand a PersistentVolumeClaim (never shrink).",
        group: Group::Recovery,
        args: &[
            choice("action", &["expand"], "expand"),
            name_arg("pvc", true, "the claim"),
            ArgSpec {
                name: "size",
                kind: ArgKind::Text { max_chars: 20 },
                required: true,
                help: "the new size, e.g. 200Gi",
            },
        ],
        options: &[REASON],
        examples: &["/odor pvc expand postgres-data-postgres-0 200Gi --reason \"disk 95% full\""],
        build: |args, ctx| {
            change(args, "pvc", ctx, || {
                Ok(Action::ExpandPvc {
                    pvc: required_name(args, "pvc"),
                    size: val(args.text("size").unwrap_or_default())?,
                })
            })
        },
    },
    VerbSpec {
        name: "backup",
        summary: "A Velero test restore of the newest (or named) backup into a scratch namespace, or the clean-up of test restores.",
        group: Group::Recovery,
        args: &[
            choice(
                "action",
                &["test-restore", "cleanup"],
                "test-restore or cleanup",
            ),
            name_arg(
                "name",
                false,
                "test-restore: the backup (default the newest completed); cleanup: the test restore (default every test-restore-…)",
            ),
        ],
        options: &[REASON],
        examples: &[
            "/odor backup test-restore --reason \"weekly backup verification\"",
            "/odor backup cleanup test-restore-1764748800 --reason \"verified\"",
        ],
        build: |args, ctx| {
            let cleanup = matches!(args.get("action"), Some(Value::Word("cleanup")));
            change(args, "backup", ctx, || {
                Ok(if cleanup {
                    Action::VeleroRestoreCleanup {
                        restore: name(args, "name"),
                    }
                } else {
                    Action::VeleroTestRestore {
                        backup: name(args, "name"),
                        restore: None,
                    }
                })
            })
        },
    },
    VerbSpec {
        name: "cert",
        summary: "Force cert-manager to renew the TLS certificate.",
        group: Group::Recovery,
        args: &[
            choice("action", &["renew"], "renew"),
            name_arg(
                "certificate",
                false,
                "the Certificate (default odordiff-tls)",
            ),
        ],
        options: &[REASON],
        examples: &["/odor cert renew --reason \"expires in 5 days\""],
        build: |args, ctx| {
            change(args, "cert", ctx, || {
                Ok(Action::RenewCertificate {
                    certificate: name(args, "certificate")
                        .unwrap_or_else(|| ctx.catalog.service().certificate.clone()),
                    // The certificate's own secret, read and bound when the request is made.
                    secret: None,
                })
            })
        },
    },
    VerbSpec {
        name: "contain",
        summary: "Suspected breach: scale odordiff-api to zero.",
        group: Group::Recovery,
        args: &[],
        options: &[REASON],
        examples: &["/odor contain --reason \"suspected breach, see #security\""],
        build: |args, ctx| {
            change(args, "contain", ctx, || {
                Ok(Action::Scale {
                    deployment: ctx.catalog.service().api.clone(),
                    replicas: val("0")?,
                })
            })
        },
    },
    VerbSpec {
        name: "quarantine",
        summary: "Label a pod quarantine=true: the installed quarantine NetworkPolicy (odorbot-quarantine) cuts all its traffic; no other policy changes.",
        group: Group::Recovery,
        args: &[name_arg("pod", true, "the suspicious pod")],
        options: &[REASON],
        examples: &[
            "/odor quarantine odordiff-api-7d9f-abcde --reason \"unexpected outbound traffic\"",
        ],
        build: |args, ctx| {
            change(args, "quarantine", ctx, || {
                Ok(Action::QuarantinePod {
                    pod: required_name(args, "pod"),
                    quarantine_policy: ctx.catalog.service().quarantine_policy.clone(),
                })
            })
        },
    },
    VerbSpec {
        name: "unquarantine",
        summary: "Remove a pod's quarantine label, so the quarantine NetworkPolicy no longer isolates it.",
        group: Group::Recovery,
        args: &[name_arg("pod", true, "the quarantined pod")],
        options: &[REASON],
        examples: &[
            "/odor unquarantine odordiff-api-7d9f-abcde --reason \"false alarm, see #security\"",
        ],
        build: |args, ctx| {
            change(args, "unquarantine", ctx, || {
                Ok(Action::UnquarantinePod {
                    pod: required_name(args, "pod"),
                })
            })
        },
    },
    VerbSpec {
        name: "secret",
        summary: "Rotate the API key: a new secret, the deployment pointed at it, the old one deleted.",
        group: Group::Recovery,
        args: &[choice("action", &["rotate"], "rotate")],
        options: &[REASON],
        examples: &["/odor secret rotate --reason \"quarterly rotation\""],
        // The rotation is the runbook's procedure step, as the catalog writes it.
        build: |args, ctx| {
            change(args, "secret", ctx, || {
                ctx.catalog
                    .all_steps()
                    .find(|s| s.action.kind() == ActionKind::RotateSecret)
                    .ok_or_else(|| {
                        VerbError::NotListed("the runbook has no secret rotation step".into())
                    })?
                    .bind(&BTreeMap::new())
                    .map_err(|errors| VerbError::Invalid(one_line(&errors)))
            })
        },
    },
    VerbSpec {
        name: "pgbouncer",
        summary: "Restart PgBouncer to reset its connections.",
        group: Group::Recovery,
        args: &[choice("action", &["restart"], "restart")],
        options: &[REASON],
        examples: &["/odor pgbouncer restart --reason \"clients waiting\""],
        build: |args, ctx| {
            change(args, "pgbouncer", ctx, || {
                Ok(Action::RolloutRestart {
                    deployment: ctx.catalog.service().pgbouncer.clone(),
                    restarted_at: None,
                })
            })
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
        build: |args, _| {
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
        args: &[INCIDENT],
        options: &[],
        examples: &["/odor ack INC-7"],
        build: |args, _| {
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
        args: &[INCIDENT],
        options: &[],
        examples: &["/odor escalate INC-7"],
        build: |args, _| {
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
        build: |args, _| {
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
        args: &[INCIDENT],
        options: &[],
        examples: &["/odor resolve INC-7"],
        build: |args, _| {
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
        args: &[INCIDENT],
        options: &[],
        examples: &["/odor timeline INC-7"],
        build: |args, _| {
            Ok(Command::Incident {
                verb: IncidentVerb::Timeline,
                number: incident_number(args),
            })
        },
    },
    VerbSpec {
        name: "incidents",
        summary: "The open incidents, each with its severity, state and age; members of an alert storm name their storm.",
        group: Group::Incidents,
        args: &[],
        options: &[],
        examples: &["/odor incidents"],
        build: |_, _| Ok(Command::Incidents),
    },
    VerbSpec {
        name: "thread",
        summary: "Give an incident of an alert storm its own thread, with its findings (acknowledging it does too).",
        group: Group::Incidents,
        args: &[ArgSpec {
            name: "incident",
            kind: ArgKind::Incident,
            required: true,
            help: "which incident",
        }],
        options: &[],
        examples: &["/odor thread INC-42"],
        build: |args, _| {
            Ok(Command::Incident {
                verb: IncidentVerb::Thread,
                number: incident_number(args),
            })
        },
    },
    VerbSpec {
        name: "approvals",
        summary: "Pending approval requests.",
        group: Group::Recovery,
        args: &[],
        options: &[],
        examples: &["/odor approvals"],
        build: |_, _| Ok(Command::Approvals),
    },
    VerbSpec {
        name: "audit",
        summary: "The audit log: every request, decision, execution and verification (Markdown, or JSON with --json).",
        group: Group::Recovery,
        args: &[],
        options: &[
            OptSpec {
                name: "since",
                kind: Some(ArgKind::Duration {
                    min_secs: 60,
                    max_secs: 90 * 86_400,
                }),
                help: "how far back (default 24h)",
            },
            JSON,
        ],
        examples: &["/odor audit --since 24h", "/odor audit --since 7d --json"],
        build: |args, _| {
            Ok(Command::Audit {
                since: duration(args, "since").unwrap_or(Duration::from_secs(86_400)),
                json: args.get("json").is_some(),
            })
        },
    },
    VerbSpec {
        name: "evidence",
        summary: "The evidence kept for an incident (logs, events, pod specs, NetworkPolicies, each with its SHA-256), listed here and exported as a file in this channel; every access is audited.",
        group: Group::Incidents,
        args: &[INCIDENT],
        options: &[JSON],
        examples: &["/odor evidence INC-7", "/odor evidence INC-7 --json"],
        build: |args, _| {
            Ok(Command::Evidence {
                number: incident_number(args),
                json: args.get("json").is_some(),
            })
        },
    },
    VerbSpec {
        name: "contacts",
        summary: "The runbook's contacts: team, vendors, external resources.",
        group: Group::Incidents,
        args: &[],
        options: &[],
        examples: &["/odor contacts"],
        build: |_, _| Ok(Command::Contacts),
    },
    VerbSpec {
        name: "checklist",
        summary: "Post a runbook checklist (pre-deployment, post-incident, disaster-recovery, or a maintenance list) to tick off here.",
        group: Group::Incidents,
        args: &[ArgSpec {
            name: "name",
            kind: ArgKind::Text { max_chars: 60 },
            required: true,
            help: "the checklist's id, e.g. pre-deployment",
        }],
        options: &[],
        examples: &["/odor checklist pre-deployment"],
        build: |args, _| {
            Ok(Command::Checklist {
                name: args.text("name").unwrap_or_default().trim().to_owned(),
            })
        },
    },
    VerbSpec {
        name: "run",
        summary: "Follow a runbook procedure step by step in a thread: read-only steps run when reached, change steps become approval requests; pause, resume or abandon it there.",
        group: Group::Incidents,
        args: &[ArgSpec {
            name: "procedure",
            kind: ArgKind::Text { max_chars: 300 },
            required: true,
            help: "the procedure's id, then its parameters as name=value",
        }],
        options: &[
            REASON,
            OptSpec {
                name: "incident",
                kind: Some(ArgKind::Incident),
                help: "the incident the run works on (default: the only open one)",
            },
        ],
        examples: &[
            "/odor run database-maintenance --reason \"weekly window\"",
            "/odor run suspected-security-breach pod=odordiff-api-7d4f9-x2x7q --incident INC-7 --reason \"unexpected outbound traffic\"",
            "/odor run standard-deployment tag=1.6.0 --reason \"release 1.6\"",
        ],
        build: build_run,
    },
    VerbSpec {
        name: "oncall",
        summary: "Who is on call, role by role.",
        group: Group::Incidents,
        args: &[],
        options: &[],
        examples: &["/odor oncall"],
        build: |_, _| Ok(Command::Oncall),
    },
];

/// An optional incident argument, the only open one when left out.
const INCIDENT: ArgSpec = ArgSpec {
    name: "incident",
    kind: ArgKind::Incident,
    required: false,
    help: "which incident (default: the only open one)",
};

const JSON: OptSpec = OptSpec {
    name: "json",
    kind: None,
    help: "export as JSON instead of text",
};

const REASON: OptSpec = OptSpec {
    name: "reason",
    kind: Some(ArgKind::Text { max_chars: 300 }),
    help: "why: required for every destructive step",
};

const SINCE: OptSpec = OptSpec {
    name: "since",
    kind: Some(ArgKind::Duration {
        min_secs: 1,
        max_secs: 7 * 86_400,
    }),
    help: "how far back",
};

const fn name_arg(name: &'static str, required: bool, help: &'static str) -> ArgSpec {
    ArgSpec {
        name,
        kind: ArgKind::Name,
        required,
        help,
    }
}

const fn choice(name: &'static str, words: &'static [&'static str], help: &'static str) -> ArgSpec {
    ArgSpec {
        name,
        kind: ArgKind::Choice(words),
        required: true,
        help,
    }
}

fn incident_number(args: &Args) -> Option<i64> {
    match args.get("incident") {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

fn build_db(args: &Args, ctx: &Context<'_>) -> Result<Command, ParseError> {
    let older_than = match args.get("older-than") {
        Some(Value::Duration(d)) => *d,
        _ => DEFAULT_LONG_RUNNING,
    };
    let view = match args.get("view") {
        Some(Value::Word("connections")) => DbView::Connections,
        Some(Value::Word("slow-queries")) => DbView::SlowQueries,
        Some(Value::Word("terminate-long")) => {
            return change(args, "db", ctx, || {
                Ok(Action::DbTerminateLong {
                    older_than,
                    sessions: None,
                })
            });
        }
        Some(Value::Word("vacuum")) => return change(args, "db", ctx, || Ok(Action::DbVacuum)),
        Some(Value::Word("connectivity")) => {
            return query("db", ctx, || Ok(Action::DbConnectivity));
        }
        Some(Value::Word("sizes")) => {
            return query("db", ctx, || Ok(Action::DbSizes { limit: None }));
        }
        _ => DbView::Pools,
    };
    Ok(Command::Db { view, older_than })
}

fn build_cache(args: &Args, ctx: &Context<'_>) -> Result<Command, ParseError> {
    let service = ctx.catalog.service();
    match args.get("view") {
        Some(Value::Word("ttl")) => match args.get("seconds") {
            Some(Value::Int(n)) => change(args, "cache", ctx, || {
                Ok(Action::PatchConfigmap {
                    configmap: service.config.clone(),
                    data: [(service.cache_ttl_key.clone(), val(&n.to_string())?)]
                        .into_iter()
                        .collect(),
                })
            }),
            _ => Err(rule(
                "cache",
                "`cache ttl` needs the new TTL in seconds, e.g. `/odor cache ttl 7200 --reason \"…\"`",
            )),
        },
        Some(Value::Word("warm")) => change(args, "cache", ctx, || {
            Ok(Action::JobFromCronjob {
                cronjob: service.cache_warming.clone(),
                // Unique per request, so a second warming does not collide with the first.
                job_name: val(&format!("manual-cache-warming-{}", ctx.now_unix))?,
            })
        }),
        _ => Ok(Command::Cache {
            pattern: args.text("pattern").map(str::to_owned),
        }),
    }
}

fn build_run(args: &Args, ctx: &Context<'_>) -> Result<Command, ParseError> {
    let text = args.text("procedure").unwrap_or_default();
    let mut words = text.split_whitespace();
    let id = words.next().unwrap_or_default();
    let Some(procedure) = ctx.catalog.procedure(id) else {
        let ids: Vec<String> = ctx
            .catalog
            .procedures()
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        return Err(rule(
            "run",
            &format!(
                "{} is not a runbook procedure; use one of {}.",
                code_span(id),
                ids.join(", ")
            ),
        ));
    };
    let mut params = Vec::new();
    for word in words {
        let Some((name, value)) = word.split_once('=') else {
            return Err(rule(
                "run",
                &format!(
                    "{} is not a parameter; give parameters as name=value.",
                    code_span(word)
                ),
            ));
        };
        if !procedure.params().iter().any(|p| p.name.as_str() == name) {
            return Err(rule(
                "run",
                &format!("{} has no parameter {}.", procedure.id, code_span(name)),
            ));
        }
        params.push((name.to_owned(), value.to_owned()));
    }
    // Every step binds now, so a bad value is refused before the run starts.
    let supplied: BTreeMap<String, String> = params.iter().cloned().collect();
    for step in &procedure.steps {
        step.bind(&supplied).map_err(|errors| {
            rule(
                "run",
                &format!(
                    "step “{}”: {}",
                    escape(&step.title),
                    escape(&one_line(&errors))
                ),
            )
        })?;
    }
    let Some(reason) = args.text("reason") else {
        return Err(rule(
            "run",
            "a procedure's change steps are approval requests, so it needs a reason: add `--reason \"…\"`.",
        ));
    };
    Ok(Command::Run {
        procedure: procedure.id.to_string(),
        params,
        reason: reason.to_owned(),
        incident: incident_number(args),
    })
}

fn rule(verb: &'static str, message: &str) -> ParseError {
    ParseError::Rule {
        verb,
        message: message.to_owned(),
    }
}

/// A change: refused without a reason, since every request says why.
fn change(
    args: &Args,
    verb: &'static str,
    ctx: &Context<'_>,
    action: impl FnOnce() -> Result<Action<Bound>, VerbError>,
) -> Result<Command, ParseError> {
    match args.text("reason") {
        Some(reason) => cluster(verb, ctx, action(), Some(reason.to_owned())),
        None => Err(rule(
            verb,
            &format!(
                "`{verb}` changes the cluster, so it needs a reason: add `--reason \"…\"` (a second person sees it when approving)."
            ),
        )),
    }
}

/// A query: runs at once.
fn query(
    verb: &'static str,
    ctx: &Context<'_>,
    action: impl FnOnce() -> Result<Action<Bound>, VerbError>,
) -> Result<Command, ParseError> {
    cluster(verb, ctx, action(), None)
}

/// Every object a command names must be one the catalog lists: the same names the
/// catalog's steps and the generated Role use.
fn cluster(
    verb: &'static str,
    ctx: &Context<'_>,
    action: Result<Action<Bound>, VerbError>,
    reason: Option<String>,
) -> Result<Command, ParseError> {
    let action = action
        .and_then(|a| match ctx.catalog.check_objects(&a) {
            Ok(()) => Ok(a),
            Err(why) => Err(VerbError::NotListed(why)),
        })
        .map_err(|error| ParseError::Action { verb, error })?;
    Ok(Command::Cluster {
        verb,
        action,
        reason,
    })
}

/// A value as the action's type reads it, with that type's bound.
fn val<T: ArgType>(text: &str) -> Result<T, VerbError> {
    T::parse_arg(text).map_err(|e| VerbError::Invalid(format!("{text:?} {e}")))
}

fn number<T: ArgType>(n: u32) -> Result<T, VerbError> {
    val(&n.to_string())
}

/// A deployment's pods, by its `app` label.
fn app(deployment: &K8sName) -> Result<LabelSelector, VerbError> {
    val(&format!("app={deployment}"))
}

/// Anything under `objects.helm_releases` is a release; every other name a deployment.
fn is_release(ctx: &Context<'_>, name: &K8sName) -> bool {
    ctx.catalog
        .objects("helm_releases")
        .iter()
        .any(|r| r == name.as_str())
}

fn name(args: &Args, key: &str) -> Option<K8sName> {
    match args.get(key) {
        Some(Value::Name(n)) => Some(n.clone()),
        _ => None,
    }
}

fn int(args: &Args, key: &str) -> Option<u32> {
    match args.get(key) {
        Some(Value::Int(n)) => u32::try_from(*n).ok(),
        _ => None,
    }
}

fn duration(args: &Args, key: &str) -> Option<Duration> {
    match args.get(key) {
        Some(Value::Duration(d)) => Some(*d),
        _ => None,
    }
}

fn required_name(args: &Args, key: &str) -> K8sName {
    name(args, key).expect("a required argument is bound")
}

fn build_help(args: &Args, _: &Context<'_>) -> Result<Command, ParseError> {
    let Some(topic) = args.text("command") else {
        return Ok(Command::Help { verb: None });
    };
    let topic = topic.trim().trim_start_matches("/odor").trim();
    let verb = find_verb(VERBS, topic).ok_or_else(|| unknown_verb_error(VERBS, topic))?;
    Ok(Command::Help { verb: Some(verb) })
}

/// Parses the text after `/odor` with the standard table, against the runbook.
///
/// # Errors
/// A [`ParseError`] describing the first problem found.
pub fn parse(text: &str, ctx: &Context<'_>) -> Result<Command, ParseError> {
    parse_with(VERBS, text, ctx)
}

/// Parses against any table; tests use tables of their own.
///
/// # Errors
/// A [`ParseError`] describing the first problem found.
pub fn parse_with(
    table: &'static [VerbSpec],
    text: &str,
    ctx: &Context<'_>,
) -> Result<Command, ParseError> {
    let tokens = tokenize(text)?;
    let Some((first, rest)) = tokens.split_first() else {
        return Ok(Command::Help { verb: None });
    };
    let verb = find_verb(table, first).ok_or_else(|| unknown_verb_error(table, first))?;
    let args = bind_args(verb, rest)?;
    (verb.build)(&args, ctx)
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
    /// Who may use it: the scope of what it reveals or does. `None` for a change, which
    /// the approval policy governs (who may request, who may approve).
    pub fn scope(&self) -> Option<Scope> {
        Some(match self {
            Self::Help { .. }
            | Self::Status
            | Self::Certs
            | Self::Metrics { .. }
            | Self::Oncall
            | Self::Contacts
            | Self::Checklist { .. }
            | Self::Approvals
            | Self::Incidents
            | Self::Incident {
                verb: IncidentVerb::Timeline,
                ..
            } => Scope::Read,
            // Counts and pools are the state; statement text is not.
            Self::Db {
                view: DbView::Connections | DbView::Pools,
                ..
            } => Scope::Read,
            Self::Db {
                view: DbView::SlowQueries,
                ..
            } => Scope::Sensitive,
            // A key sample can hold session ids.
            Self::Cache { pattern } => match pattern {
                None => Scope::Read,
                Some(_) => Scope::Sensitive,
            },
            // The investigation steps include logs, SQL and configuration values; a
            // procedure's change steps are requests the approval policy governs each.
            Self::Diagnose { .. }
            | Self::Audit { .. }
            | Self::Run { .. }
            | Self::Evidence { .. } => Scope::Sensitive,
            Self::IncidentOpen { .. }
            | Self::Update { .. }
            | Self::Incident {
                verb: IncidentVerb::Ack | IncidentVerb::Escalate | IncidentVerb::Thread,
                ..
            } => Scope::Respond,
            Self::Incident {
                verb: IncidentVerb::Resolve,
                ..
            } => Scope::Resolve,
            Self::Cluster {
                reason: Some(_), ..
            } => return None,
            Self::Cluster { action, .. } => action.kind().scope()?,
        })
    }

    /// The verb's name, used as a metrics label (bounded cardinality).
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Help { .. } => "help",
            Self::Status => "status",
            Self::Db { .. } => "db",
            Self::Cache { .. } => "cache",
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
            Self::Incident {
                verb: IncidentVerb::Thread,
                ..
            } => "thread",
            Self::Incidents => "incidents",
            Self::Update { .. } => "update",
            Self::Oncall => "oncall",
            Self::Cluster { verb, .. } => verb,
            Self::Diagnose { .. } => "diagnose",
            Self::Checklist { .. } => "checklist",
            Self::Run { .. } => "run",
            Self::Contacts => "contacts",
            Self::Approvals => "approvals",
            Self::Audit { .. } => "audit",
            Self::Evidence { .. } => "evidence",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::OnceLock;

    use super::*;
    use crate::domain::args::ArgKind;
    use crate::runbook::actions::Classified;
    use crate::runbook::{load_default, stored};

    fn ctx() -> Context<'static> {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        Context {
            catalog: CATALOG.get_or_init(|| load_default().unwrap()),
            now_unix: 1_700_000_000,
        }
    }

    fn shipped(text: &str) -> Result<Command, ParseError> {
        parse(text, &ctx())
    }

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
        build: |_, _| Ok(Command::Status),
    }];

    fn err(text: &str) -> ParseError {
        parse_with(TEST_VERBS, text, &ctx()).unwrap_err()
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

    /// Found by the `command` fuzz target: the regex crate's message says `<=`, and a
    /// value's own error quotes the value.
    #[test]
    fn errors_that_quote_outside_text_are_escaped() {
        for text in [
            "logs odordiff-api --grep \"[9-0]\"",
            "deploy odordiff-api <!channel> --reason x",
            "hpa odordiff-api-hpa --min <!here> --reason x",
        ] {
            let reply = shipped(text).unwrap_err().to_string();
            assert_eq!(
                crate::fuzzing::mrkdwn_problem(&reply),
                None,
                "{text}: {reply}"
            );
        }
        let reply = shipped("logs odordiff-api --grep \"[9-0]\"").unwrap_err();
        assert!(reply.to_string().contains("&lt;="), "{reply}");
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

    /// README's access table puts every verb's examples in the scope they parse to.
    #[test]
    fn the_readme_access_table_names_every_verb_in_its_scope() {
        let readme = include_str!("../../../../README.md");
        let row = |scope: Scope| {
            readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", scope.key())))
                .unwrap_or_else(|| panic!("README has no access row for {}", scope.key()))
        };
        let mut missing = Vec::new();
        for spec in VERBS {
            for example in spec.examples {
                let text = example.trim_start_matches("/odor ");
                let Some(scope) = shipped(text).ok().and_then(|c| c.scope()) else {
                    continue;
                };
                if !row(scope).contains(&format!("`{}", spec.name)) {
                    missing.push(format!("{} ({})", spec.name, scope.key()));
                }
            }
        }
        missing.dedup();
        assert!(
            missing.is_empty(),
            "README's access table lacks {missing:?}"
        );
    }

    #[test]
    fn a_run_names_a_procedure_and_binds_its_parameters_before_it_starts() {
        let Ok(Command::Run {
            procedure,
            params,
            reason,
            incident,
        }) = shipped("run standard-deployment tag=1.6.0 --reason \"release 1.6\"")
        else {
            panic!("not a run");
        };
        assert_eq!(
            (procedure.as_str(), params, reason.as_str(), incident),
            (
                "standard-deployment",
                vec![("tag".to_owned(), "1.6.0".to_owned())],
                "release 1.6",
                None
            )
        );
        let Ok(Command::Run { incident, .. }) = shipped(
            "run suspected-security-breach pod=odordiff-api-1 --incident INC-7 --reason \"egress\"",
        ) else {
            panic!("not a run");
        };
        assert_eq!(incident, Some(7));
        assert!(matches!(
            shipped("evidence INC-7 --json"),
            Ok(Command::Evidence {
                number: Some(7),
                json: true
            })
        ));
        let refused = |text: &str| match shipped(text) {
            Err(ParseError::Rule { message, .. }) => message,
            other => panic!("{text}: {other:?}"),
        };
        assert!(
            refused("run nightly --reason x").starts_with(
                "`nightly` is not a runbook procedure; use one of standard-deployment, "
            )
        );
        assert_eq!(
            refused("run standard-deployment tag --reason x"),
            "`tag` is not a parameter; give parameters as name=value."
        );
        assert_eq!(
            refused("run standard-deployment replicas=3 tag=1 --reason x"),
            "standard-deployment has no parameter `replicas`."
        );
        assert!(
            refused("run standard-deployment tag=-bad --reason x")
                .starts_with("step “Deploy the API”: tag: ")
        );
        assert!(refused("run standard-deployment tag=1.6.0").contains("needs a reason"));
        assert_eq!(
            shipped("run database-maintenance --reason \"weekly\"")
                .unwrap()
                .scope(),
            Some(Scope::Sensitive)
        );
    }

    #[test]
    fn shipped_verbs_parse() {
        assert!(matches!(shipped(""), Ok(Command::Help { verb: None })));
        assert!(matches!(shipped("help"), Ok(Command::Help { verb: None })));
        assert!(
            matches!(shipped("HELP Status"), Ok(Command::Help { verb: Some(v) }) if v.name == "status")
        );
        assert!(matches!(shipped("status"), Ok(Command::Status)));
        assert!(matches!(
            shipped("help bogus"),
            Err(ParseError::UnknownVerb { .. })
        ));
        assert!(matches!(
            shipped("status now"),
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

    /// Every action a `/odor` example asks for, as the parser builds it: the verb, whether
    /// the grammar asked for a reason, and the action.
    fn verb_actions() -> Vec<(String, &'static str, bool, Action<Bound>)> {
        let mut out = Vec::new();
        for spec in VERBS {
            for example in spec.examples {
                let text = example.trim_start_matches("/odor ").replace('…', "x");
                match shipped(&text) {
                    Ok(Command::Cluster {
                        verb,
                        action,
                        reason,
                    }) => out.push((text, verb, reason.is_some(), action)),
                    Err(e @ ParseError::Action { .. }) => panic!("{text}: {e}"),
                    _ => {}
                }
            }
        }
        out
    }

    /// The table of every verb example and every catalog step: each reaches one typed
    /// action whose kind agrees on whether it needs approval (the grammar asks for a
    /// reason exactly for changes), whose stored form reads back unchanged (what an
    /// approval executes), whose preview line renders, and whose policy verb is the verb
    /// that asked for it.
    #[test]
    fn every_verb_and_step_reaches_one_action_with_the_same_meaning() {
        let rows = verb_actions();
        assert!(rows.len() > 20, "{} examples", rows.len());
        for (text, verb, asked_reason, action) in &rows {
            assert_eq!(
                *asked_reason,
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
                let aliased = match *verb {
                    "pgbouncer" => "restart",
                    "contain" => "scale",
                    other => other,
                };
                assert_eq!(action.kind().policy_verb(), aliased, "{text}");
            }
        }
        let reached: BTreeSet<ActionKind> = rows
            .iter()
            .map(|(.., a)| a.kind())
            .chain(ctx().catalog.all_steps().map(|s| s.action.kind()))
            .collect();
        // No change is defined that neither a verb nor a runbook step can ask for.
        for kind in ActionKind::ALL.iter().filter(|k| k.is_destructive()) {
            assert!(reached.contains(kind), "{kind} is reached by nothing");
        }
    }

    /// Every command has an access rule: a scope, or (a change) the approval policy.
    #[test]
    fn every_command_has_an_access_rule() {
        for spec in VERBS {
            for example in spec.examples {
                let text = example.trim_start_matches("/odor ").replace('…', "x");
                let Ok(command) = shipped(&text) else {
                    continue;
                };
                let is_change = matches!(
                    &command,
                    Command::Cluster {
                        reason: Some(_),
                        ..
                    }
                );
                assert_eq!(command.scope().is_none(), is_change, "{text}");
            }
        }
        for (text, scope) in [
            ("help", Scope::Read),
            ("status", Scope::Read),
            ("pods", Scope::Read),
            ("events", Scope::Read),
            ("endpoints", Scope::Read),
            ("history odordiff-api", Scope::Read),
            ("contacts", Scope::Read),
            ("oncall", Scope::Read),
            ("incidents", Scope::Read),
            ("thread INC-3", Scope::Respond),
            ("db connections", Scope::Read),
            ("cache stats", Scope::Read),
            ("logs odordiff-api", Scope::Sensitive),
            ("describe odordiff-api", Scope::Sensitive),
            ("db slow-queries", Scope::Sensitive),
            ("cache stats --pattern 'session:*'", Scope::Sensitive),
            ("diagnose api-service-down", Scope::Sensitive),
            ("access-review", Scope::Sensitive),
            ("audit --json", Scope::Sensitive),
            ("incident open high slow", Scope::Respond),
            ("ack INC-1", Scope::Respond),
            ("escalate", Scope::Respond),
            ("update INC-1 rolled back", Scope::Respond),
            ("resolve INC-1", Scope::Resolve),
        ] {
            assert_eq!(shipped(text).unwrap().scope(), Some(scope), "{text}");
        }
    }

    /// Objects a command leaves out are the catalog's; objects it names must be listed.
    #[test]
    fn objects_come_from_the_catalog() {
        let service = ctx().catalog.service();
        match shipped("endpoints") {
            Ok(Command::Cluster {
                action: Action::Endpoints { service: s },
                ..
            }) => assert_eq!(s, service.api),
            other => panic!("{other:?}"),
        }
        match shipped("logs cleanup --reason r") {
            Ok(Command::Cluster {
                action: Action::LogsCleanup { cronjob, .. },
                ..
            }) => assert_eq!(cronjob, service.logs_cleanup),
            other => panic!("{other:?}"),
        }
        let e = shipped("restart no-such-thing --reason r").unwrap_err();
        assert!(
            matches!(
                e,
                ParseError::Action {
                    verb: "restart",
                    error: VerbError::NotListed(_)
                }
            ),
            "{e:?}"
        );
        let e = shipped("deploy odordiff-api 'a b' --reason r").unwrap_err();
        assert!(
            matches!(
                e,
                ParseError::Action {
                    error: VerbError::Invalid(_),
                    ..
                }
            ),
            "{e:?}"
        );
        // The grammar's rule comes first: no reason, no action built.
        assert!(matches!(
            shipped("restart no-such-thing"),
            Err(ParseError::Rule { .. })
        ));
    }

    /// `/odor resources` asks for exactly what the pool-exhausted alert's recovery button
    /// asks for, and refuses what it cannot mean.
    #[test]
    fn resources_asks_what_the_runbooks_recovery_step_asks() {
        let entry = ctx()
            .catalog
            .alert("database-connection-pool-exhausted")
            .unwrap();
        let step = entry
            .recovery
            .iter()
            .find(|s| s.action.kind() == ActionKind::SetResources)
            .expect("the runbook raises PostgreSQL's limits");
        let button = step.bind(&Default::default()).unwrap();
        match shipped("resources postgres postgres --memory 4Gi --cpu 2000m --reason r") {
            Ok(Command::Cluster {
                action,
                reason: Some(_),
                ..
            }) => assert_eq!(action, button),
            other => panic!("{other:?}"),
        }
        match shipped("resources postgres postgres --cpu 2 --reason r") {
            Ok(Command::Cluster {
                action: Action::SetResources { limits, .. },
                ..
            }) => {
                assert!(limits.memory.is_none());
                assert_eq!(limits.cpu.map(|q| q.to_string()).as_deref(), Some("2"));
            }
            other => panic!("{other:?}"),
        }
        for (text, wanted) in [
            ("resources postgres postgres --reason r", "needs `--memory`"),
            ("resources postgres postgres --memory 4Gi", "needs a reason"),
            (
                "resources postgres postgres --memory lots --reason r",
                "\"lots\"",
            ),
            (
                "resources no-such-thing postgres --memory 4Gi --reason r",
                "not one of the runbook's deployments",
            ),
            ("resources postgres --memory 4Gi --reason r", "container"),
        ] {
            let e = shipped(text).unwrap_err().to_string();
            assert!(e.contains(wanted), "{text}: {e}");
        }
    }

    /// One bound per value: the grammar, the value type and the catalog agree on the
    /// largest replica count and revision, and the catalog may narrow them, never widen.
    #[test]
    fn bounds_are_the_one_bound() {
        use crate::domain::args::{MAX_REPLICAS, MAX_REVISION};
        use crate::runbook::values::{Replicas, Revision};
        let reach = |text: &str| match shipped(&format!("{text} --reason r")) {
            Ok(Command::Cluster { .. }) => Ok(()),
            other => Err(format!("{other:?}")),
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
                let _ = shipped(&text);
                let _ = parse_with(TEST_VERBS, &text, &ctx());
            }

            #[test]
            fn word_salad_never_panics_and_replies_stay_safe(words in prop::collection::vec(word(), 0..12)) {
                let text = words.join(" ");
                for result in [shipped(&text), parse_with(TEST_VERBS, &text, &ctx())] {
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
