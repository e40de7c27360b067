//! Replies for the Kubernetes diagnostics and dry-run previews: pure functions of the
//! results, bounded to what a Slack message can hold, saying how much was cut.

use super::k8s::{
    AccessReview, Backups, CertificateInfo, ChangeReport, EndpointsInfo, EventInfo, HelmRevision,
    LogsReport, Mode, PodDescription, PodInfo, Readable, ResourceUsage, RevisionInfo,
    RolloutStatus,
};
use super::view::{Block, Message, code_span, escape};

/// Lines shown of one listing before the rest is summarised.
const MAX_LINES: usize = 40;
/// Characters of log text per pod (a section holds 3000).
const MAX_LOG_CHARS: usize = 2500;

fn titled(title: &str, lines: Vec<String>) -> Message {
    let body = if lines.is_empty() {
        "Nothing found.".to_owned()
    } else {
        lines.join("\n")
    };
    Message {
        text: title.to_owned(),
        blocks: vec![Block::Header(title.to_owned()), Block::Section(body)],
    }
}

/// Keeps the first `MAX_LINES` lines and says how many more there were.
fn capped(mut lines: Vec<String>, what: &str) -> Vec<String> {
    if lines.len() > MAX_LINES {
        let cut = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("_… {cut} more {what} not shown_"));
    }
    lines
}

fn pod_line(p: &PodInfo) -> String {
    let mark = if p.ready { "✅" } else { "🔴" };
    let phase = if p.terminating {
        "Terminating"
    } else {
        &p.phase
    };
    let reason = p
        .reason
        .as_deref()
        .map(|r| format!(" — {}", escape(r)))
        .unwrap_or_default();
    format!(
        "{mark} {} {} {}/{} ready, {} restarts{reason}",
        code_span(&p.name),
        escape(phase),
        p.ready_containers,
        p.containers,
        p.restarts
    )
}

pub fn render_pods(scope: &str, pods: &[PodInfo]) -> Message {
    let ready = pods.iter().filter(|p| p.ready).count();
    let mut lines = vec![format!("*{ready} of {} ready*", pods.len())];
    lines.extend(capped(pods.iter().map(pod_line).collect(), "pods"));
    titled(&format!("Pods — {scope}"), lines)
}

pub fn render_descriptions(scope: &str, pods: &[PodDescription]) -> Message {
    let mut blocks = vec![Block::Header(format!("Describe — {scope}"))];
    if pods.is_empty() {
        blocks.push(Block::Section("No failing pods.".into()));
    }
    for d in pods.iter().take(10) {
        let mut lines = vec![pod_line(&d.pod)];
        if !d.conditions.is_empty() {
            lines.push(format!("Conditions: {}", escape(&d.conditions.join(", "))));
        }
        for c in &d.containers {
            let last = c
                .last_termination
                .as_deref()
                .map(|t| format!("; last terminated: {}", escape(t)))
                .unwrap_or_default();
            lines.push(format!(
                "• {} {}: {}, {} restarts{last}",
                code_span(&c.name),
                code_span(&c.image),
                escape(&c.state),
                c.restarts
            ));
        }
        for e in d.events.iter().rev().take(5) {
            lines.push(format!(
                "  {} {}: {}",
                escape(&e.kind),
                escape(&e.reason),
                escape(&e.message)
            ));
        }
        blocks.push(Block::Section(lines.join("\n")));
    }
    if pods.len() > 10 {
        blocks.push(Block::Context(format!(
            "… {} more pods not shown",
            pods.len() - 10
        )));
    }
    Message {
        text: format!("Describe — {scope}"),
        blocks,
    }
}

pub fn render_logs(scope: &str, report: &LogsReport) -> Message {
    let mut blocks = vec![Block::Header(format!("Logs — {scope}"))];
    for p in report.pods.iter().take(8) {
        let mut shown = String::new();
        let mut cut = 0;
        for line in &p.lines {
            if shown.len() + line.len() + 1 > MAX_LOG_CHARS {
                cut += 1;
                continue;
            }
            // Backticks would close the code block early.
            shown.push_str(&line.replace("```", "'''"));
            shown.push('\n');
        }
        let mut text = format!("*{}* ({})", escape(&p.pod), escape(&p.container));
        match &p.error {
            Some(e) => text.push_str(&format!("\n{}", escape(e))),
            None if p.lines.is_empty() => text.push_str("\nno matching lines"),
            None => text.push_str(&format!("\n```{}```", escape(&shown))),
        }
        if cut > 0 || p.truncated {
            text.push_str(&format!(
                "\n_… {cut} more lines cut; narrow with --tail, --since or --grep_"
            ));
        }
        blocks.push(Block::Section(text));
    }
    let omitted = report.omitted_pods + report.pods.len().saturating_sub(8);
    if omitted > 0 {
        blocks.push(Block::Context(format!("… {omitted} more pods not shown")));
    }
    if report.pods.is_empty() {
        blocks.push(Block::Section("No pods matched.".into()));
    }
    Message {
        text: format!("Logs — {scope}"),
        blocks,
    }
}

pub fn render_events(events: &[EventInfo]) -> Message {
    // Newest last, like `kubectl get events --sort-by=.metadata.creationTimestamp`.
    let lines = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}: {}{}",
                escape(e.time.as_deref().unwrap_or("-")),
                escape(&e.kind),
                escape(&e.reason),
                code_span(&e.object),
                escape(&e.message),
                if e.count > 1 {
                    format!(" (×{})", e.count)
                } else {
                    String::new()
                }
            )
        })
        .collect::<Vec<_>>();
    let skip = lines.len().saturating_sub(MAX_LINES);
    let mut shown: Vec<String> = lines.into_iter().skip(skip).collect();
    if skip > 0 {
        shown.insert(0, format!("_… {skip} older events not shown_"));
    }
    titled("Events", shown)
}

pub fn render_endpoints(e: &EndpointsInfo) -> Message {
    let mark = if e.ready.is_empty() { "🔴" } else { "✅" };
    titled(
        &format!("Endpoints — {}", e.service),
        vec![
            format!(
                "{mark} *{} ready*: {}",
                e.ready.len(),
                escape(&e.ready.join(", "))
            ),
            format!(
                "*{} not ready*: {}",
                e.not_ready.len(),
                escape(&e.not_ready.join(", "))
            ),
        ],
    )
}

pub fn render_rollout_history(
    deployment: &str,
    status: Option<&RolloutStatus>,
    revisions: &[RevisionInfo],
) -> Message {
    let mut lines = Vec::new();
    if let Some(s) = status {
        let mark = if s.failed {
            "🔴"
        } else if s.complete {
            "✅"
        } else {
            "⏳"
        };
        lines.push(format!(
            "{mark} {} ({} desired, {} updated, {} ready, {} available)",
            escape(&s.message),
            s.desired,
            s.updated,
            s.ready,
            s.available
        ));
    }
    lines.extend(capped(
        revisions
            .iter()
            .rev()
            .map(|r| {
                format!(
                    "{} r{} {} {}{}",
                    if r.current { "▶" } else { "•" },
                    r.revision,
                    code_span(&r.replica_set),
                    escape(&r.images.join(", ")),
                    r.change_cause
                        .as_deref()
                        .map(|c| format!(" — {}", escape(c)))
                        .unwrap_or_default()
                )
            })
            .collect(),
        "revisions",
    ));
    titled(&format!("Rollout history — {deployment}"), lines)
}

pub fn render_helm_history(release: &str, revisions: &[HelmRevision]) -> Message {
    let lines = revisions
        .iter()
        .rev()
        .map(|r| {
            format!(
                "• v{} {} {} ({}) {} — {}",
                r.revision,
                escape(&r.status),
                escape(&r.chart),
                escape(&r.app_version),
                escape(&r.updated),
                escape(&r.description)
            )
        })
        .collect();
    titled(
        &format!("Helm history — {release}"),
        capped(lines, "revisions"),
    )
}

pub fn certificate_lines(certs: &[CertificateInfo]) -> Vec<String> {
    certs
        .iter()
        .map(|c| {
            let mark = match c.ready {
                Some(true) => "✅",
                Some(false) => "🔴",
                None => "❔",
            };
            format!(
                "{mark} {} expires {}, renews {}{}",
                code_span(&c.name),
                escape(c.not_after.as_deref().unwrap_or("unknown")),
                escape(c.renewal_time.as_deref().unwrap_or("unknown")),
                c.ready_message
                    .as_deref()
                    .map(|m| format!(" — {}", escape(m)))
                    .unwrap_or_default()
            )
        })
        .collect()
}

pub fn render_backups(b: &Backups) -> Message {
    let mut lines = vec!["*Backups*".to_owned()];
    lines.extend(capped(
        b.backups
            .iter()
            .map(|x| {
                format!(
                    "• {} {} (started {}, completed {}, expires {})",
                    code_span(&x.name),
                    escape(x.phase.as_deref().unwrap_or("unknown")),
                    escape(x.started.as_deref().unwrap_or("-")),
                    escape(x.completed.as_deref().unwrap_or("-")),
                    escape(x.expires.as_deref().unwrap_or("-"))
                )
            })
            .collect(),
        "backups",
    ));
    lines.push("*Restores*".to_owned());
    lines.extend(capped(
        b.restores
            .iter()
            .map(|x| {
                format!(
                    "• {} from {} {}",
                    code_span(&x.name),
                    escape(x.backup.as_deref().unwrap_or("?")),
                    escape(x.phase.as_deref().unwrap_or("unknown"))
                )
            })
            .collect(),
        "restores",
    ));
    titled("Velero backups", lines)
}

fn readable<T>(what: &str, r: &Readable<Vec<T>>, line: impl Fn(&T) -> String) -> Vec<String> {
    match r {
        Readable::Read(items) => {
            let mut lines = vec![format!("*{what}* ({})", items.len())];
            lines.extend(capped(items.iter().map(line).collect(), "entries"));
            lines
        }
        Readable::NotReadable(why) => vec![format!("*{what}*: not readable — {}", escape(why))],
    }
}

pub fn render_access_review(a: &AccessReview) -> Message {
    let mut lines = readable("Service accounts", &a.service_accounts, |s: &String| {
        format!("• {}", code_span(s))
    });
    let binding = |b: &super::k8s::BindingInfo| {
        format!(
            "• {} → {}: {}",
            code_span(&b.name),
            escape(&b.role),
            escape(&b.subjects.join(", "))
        )
    };
    lines.extend(readable("Role bindings", &a.role_bindings, binding));
    lines.extend(readable(
        "Cluster role bindings for this namespace",
        &a.cluster_role_bindings,
        binding,
    ));
    titled(&format!("Access review — {}", a.namespace), lines)
}

pub fn render_usage(u: &ResourceUsage) -> Message {
    match u {
        ResourceUsage::NotServed => titled(
            "Resource usage",
            vec!["❔ unknown: this cluster serves no metrics.k8s.io API (is metrics-server installed?)".into()],
        ),
        ResourceUsage::Pods(pods) => titled(
            "Resource usage",
            capped(
                pods.iter()
                    .map(|p| format!("• {} {}m CPU, {}", code_span(&p.pod), p.cpu_millicores, super::diagnostics::human_bytes(p.memory_bytes)))
                    .collect(),
                "pods",
            ),
        ),
    }
}

/// A dry run's before/after, or an execution's result.
pub fn render_change(report: &ChangeReport, requested_by: &str, reason: Option<&str>) -> Message {
    let title = match report.mode {
        Mode::DryRun => format!("Dry run: {}", report.action),
        _ => format!("Done: {}", report.action),
    };
    let mut lines: Vec<String> = if report.changes.is_empty() {
        vec!["No field would change.".into()]
    } else {
        capped(
            report
                .changes
                .iter()
                .map(|c| format!("• {}", escape(&c.to_string())))
                .collect(),
            "changes",
        )
    };
    lines.extend(report.notes.iter().map(|n| format!("ℹ️ {}", escape(n))));
    let mut blocks = vec![
        Block::Header(title.clone()),
        Block::Section(lines.join("\n")),
    ];
    let mut context = format!("Requested by <@{requested_by}>");
    if let Some(r) = reason {
        context.push_str(&format!(" — reason: {}", escape(r)));
    }
    if report.mode == Mode::DryRun {
        context.push_str(". Nothing was changed: this is the API server's dry run (dryRun=All). Executing it needs a second person's approval.");
    }
    blocks.push(Block::Context(context));
    Message {
        text: title,
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::k8s::Change;

    fn pod(name: &str, ready: bool) -> PodInfo {
        PodInfo {
            name: name.into(),
            phase: "Running".into(),
            ready,
            ready_containers: usize::from(ready),
            containers: 1,
            restarts: 2,
            reason: None,
            created: None,
            terminating: false,
        }
    }

    fn all_text(m: &Message) -> String {
        m.blocks
            .iter()
            .map(|b| match b {
                Block::Header(t) | Block::Section(t) | Block::Context(t) => t.clone(),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn long_pod_lists_say_how_many_were_cut() {
        let pods: Vec<PodInfo> = (0..45)
            .map(|i| pod(&format!("api-{i}"), i % 2 == 0))
            .collect();
        let t = all_text(&render_pods("odordiff-api", &pods));
        assert!(t.contains("*23 of 45 ready*"), "{t}");
        assert!(t.contains("… 5 more pods not shown"), "{t}");
    }

    #[test]
    fn dry_runs_show_before_and_after_and_say_nothing_changed() {
        let mut report = ChangeReport::new("scale", Mode::DryRun);
        report.changes.push(Change::new(
            "Deployment/odordiff-api",
            "spec.replicas",
            Some("3".into()),
            Some("5".into()),
        ));
        let t = all_text(&render_change(&report, "U1", Some("traffic <spike>")));
        assert!(t.contains("Dry run: scale"), "{t}");
        assert!(
            t.contains("• Deployment/odordiff-api spec.replicas: 3 → 5"),
            "{t}"
        );
        assert!(t.contains("reason: traffic &lt;spike&gt;"), "{t}");
        assert!(t.contains("Nothing was changed"), "{t}");
    }

    #[test]
    fn logs_are_bounded_and_cannot_break_out_of_the_code_block() {
        let report = LogsReport {
            pods: vec![super::super::k8s::PodLogs {
                pod: "api-1".into(),
                container: "odordiff-api".into(),
                lines: (0..200)
                    .map(|i| format!("ERROR line {i} ``` <!here>"))
                    .collect(),
                truncated: false,
                error: None,
            }],
            omitted_pods: 0,
        };
        let t = all_text(&render_logs("odordiff-api", &report));
        assert!(t.contains("more lines cut"), "{t}");
        assert!(!t.contains("``` &lt;"), "{t}");
        assert!(!t.contains("<!here>"), "{t}");
    }
}
