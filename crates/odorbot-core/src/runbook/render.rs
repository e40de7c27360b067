//! The catalog as plain text, for `odorbot runbook list|show` and `odorbot check`.
//! Slack's rendering lives in `slack::render`; this is for terminals and CI logs.

use std::fmt::Write as _;

use crate::domain::args::format_duration;

use super::catalog::{Catalog, Entry, Step};

/// One line: what the catalog holds.
pub fn summary(catalog: &Catalog) -> String {
    let counts = [
        (catalog.alerts().len(), "alert"),
        (catalog.procedures().len(), "procedure"),
        (catalog.queries().len(), "query"),
        (catalog.tracing().len(), "tracing entry"),
        (catalog.checklists().len(), "checklist"),
        (catalog.maintenance().len(), "maintenance list"),
    ];
    let parts: Vec<String> = counts.iter().map(|(n, what)| plural(*n, what)).collect();
    format!("{}: {}", catalog.name(), parts.join(", "))
}

fn plural(n: usize, what: &str) -> String {
    match (n, what) {
        (1, _) => format!("1 {what}"),
        (_, "query") => format!("{n} queries"),
        (_, "tracing entry") => format!("{n} tracing entries"),
        _ => format!("{n} {what}s"),
    }
}

/// A table of every entry: kind, id, title, severity, step counts.
pub fn list(catalog: &Catalog) -> String {
    let header = ["KIND", "ID", "TITLE", "SEVERITY", "STEPS"].map(String::from);
    let mut rows = vec![header];
    for entry in catalog.entries() {
        let (severity, steps) = match entry {
            Entry::Alert(a) => (
                a.severity.to_string(),
                format!(
                    "{} investigation, {} recovery",
                    a.investigation.len(),
                    a.recovery.len()
                ),
            ),
            Entry::Procedure(p) => ("-".into(), plural(p.steps.len(), "step")),
            Entry::Query(q) => ("-".into(), plural(q.steps.len(), "step")),
            Entry::Tracing(t) => ("-".into(), plural(t.queries.len(), "query")),
            Entry::Checklist(c) => ("-".into(), plural(c.items.len(), "item")),
            Entry::Maintenance(m) => ("-".into(), plural(m.items.len(), "item")),
        };
        rows.push([
            entry.kind().to_owned(),
            entry.id().to_string(),
            entry.title().to_owned(),
            severity,
            steps,
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|col| {
            rows.iter()
                .map(|r| r[col].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (col, cell) in row.iter().enumerate() {
            if col + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[col]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Everything about one entry, or one of the sections in [`super::SECTION_IDS`];
/// `None` for an unknown id.
pub fn show(catalog: &Catalog, id: &str) -> Option<String> {
    let mut out = String::new();
    match id {
        "emergency-response" => emergency_response(catalog, &mut out),
        "escalation" => escalation(catalog, &mut out),
        "contacts" => contacts(catalog, &mut out),
        _ => match catalog.entry(id)? {
            Entry::Alert(a) => {
                let rule = catalog.escalation().rule(a.severity);
                let _ = writeln!(out, "alert {} — {}", a.id, a.title);
                let _ = writeln!(out, "source: {:?}", a.source_heading);
                let _ = writeln!(
                    out,
                    "severity: {} (acknowledge within {}; escalate {})",
                    a.severity,
                    format_duration(rule.response_time),
                    rule.escalate_after
                );
                let matchers: Vec<String> =
                    a.matchers.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(out, "matches alerts with: {}", matchers.join(", "));
                bullets(&mut out, "symptoms", &a.symptoms);
                steps(
                    &mut out,
                    "investigation (read-only, runs at once)",
                    &a.investigation,
                );
                if !a.common_causes.is_empty() {
                    let _ = writeln!(out, "common causes:");
                    for c in &a.common_causes {
                        match &c.solution {
                            Some(s) => {
                                let _ = writeln!(out, "  - {}: {s}", c.cause);
                            }
                            None => {
                                let _ = writeln!(out, "  - {}", c.cause);
                            }
                        }
                    }
                }
                steps(
                    &mut out,
                    "recovery (each needs a second engineer's approval)",
                    &a.recovery,
                );
                let signals: Vec<String> = a.signals.iter().map(ToString::to_string).collect();
                let _ = writeln!(out, "status updates show: {}", signals.join(", "));
                see_also(&mut out, &a.see_also);
            }
            Entry::Procedure(p) => {
                let _ = writeln!(out, "procedure {} — {}", p.id, p.title);
                let _ = writeln!(out, "source: {:?}", p.source_heading);
                let _ = writeln!(out, "category: {}", p.category);
                if let Some(s) = &p.summary {
                    let _ = writeln!(out, "{s}");
                }
                if let Some(c) = &p.checklist {
                    let _ = writeln!(out, "first: checklist {c}");
                }
                steps(&mut out, "steps", &p.steps);
                let params = p.params();
                if !params.is_empty() {
                    let _ = writeln!(out, "parameters asked at request time:");
                    for info in params {
                        let what = info.bounds.as_ref().unwrap_or(&info.expected);
                        let mut line = format!("  - {}: {what}", info.name);
                        if let Some(d) = &info.default {
                            let _ = write!(line, " (default {d})");
                        } else if !info.required {
                            line.push_str(" (optional)");
                        }
                        let _ = writeln!(out, "{line}");
                    }
                }
                see_also(&mut out, &p.see_also);
            }
            Entry::Query(q) => {
                let _ = writeln!(out, "query {} — {}", q.id, q.title);
                let _ = writeln!(out, "source: {:?}", q.source_heading);
                let _ = writeln!(out, "category: {}", q.category);
                steps(&mut out, "steps (read-only)", &q.steps);
            }
            Entry::Tracing(t) => {
                let _ = writeln!(out, "tracing {} — {}", t.id, t.title);
                let _ = writeln!(out, "source: {:?}", t.source_heading);
                let _ = writeln!(
                    out,
                    "Jaeger UI: port-forward service {} in namespace {} to port {}, then open {}",
                    t.ui.service, t.ui.namespace, t.ui.port, t.ui.url
                );
                let _ = writeln!(out, "queries:");
                for q in &t.queries {
                    let _ = writeln!(out, "  - {}: {}", q.title, q.search_url(&t.ui.url));
                }
            }
            Entry::Checklist(c) => {
                let _ = writeln!(out, "checklist {} — {}", c.id, c.title);
                let _ = writeln!(out, "source: {:?}", c.source_heading);
                checkboxes(&mut out, &c.items);
                see_also(&mut out, &c.see_also);
            }
            Entry::Maintenance(m) => {
                let _ = writeln!(out, "maintenance {} — {}", m.id, m.title);
                let _ = writeln!(out, "source: {:?}", m.source_heading);
                let _ = writeln!(out, "due: {} ({})", m.schedule, catalog.time_zone());
                checkboxes(&mut out, &m.items);
                see_also(&mut out, &m.see_also);
            }
        },
    }
    Some(out)
}

fn bullets(out: &mut String, title: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for item in items {
        let _ = writeln!(out, "  - {item}");
    }
}

fn checkboxes(out: &mut String, items: &[String]) {
    for item in items {
        let _ = writeln!(out, "  [ ] {item}");
    }
}

fn steps(out: &mut String, title: &str, steps: &[Step]) {
    if steps.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for (i, step) in steps.iter().enumerate() {
        let button = step
            .label
            .as_ref()
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {}. {}{button}", i + 1, step.title);
        let _ = writeln!(out, "       {}", step.action.describe());
        if let Some(w) = step.watch {
            let _ = writeln!(
                out,
                "       repeated every {} for {}",
                format_duration(w.every),
                format_duration(w.duration)
            );
        }
    }
}

fn see_also(out: &mut String, ids: &[super::values::EntryId]) {
    if ids.is_empty() {
        return;
    }
    let ids: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
    let _ = writeln!(out, "see also: {}", ids.join(", "));
}

fn emergency_response(catalog: &Catalog, out: &mut String) {
    let p = catalog.emergency_response();
    let _ = writeln!(out, "emergency response — {}", p.source_heading);
    for (i, s) in p.steps.iter().enumerate() {
        let _ = writeln!(out, "  {}. {}", i + 1, s.text);
    }
}

fn escalation(catalog: &Catalog, out: &mut String) {
    let e = catalog.escalation();
    let _ = writeln!(out, "escalation — {}", e.source_heading);
    for r in e.rules() {
        let _ = writeln!(
            out,
            "  {:<8}  respond within {:<4}  escalate {}  ({})",
            r.severity.name(),
            format_duration(r.response_time),
            r.escalate_after,
            r.escalation
        );
    }
    let path: Vec<&str> = e.path.iter().map(|r| r.as_str()).collect();
    let _ = writeln!(out, "escalation path: {}", path.join(" → "));
}

fn contacts(catalog: &Catalog, out: &mut String) {
    let c = catalog.contacts();
    let _ = writeln!(out, "team:");
    for t in &c.team {
        let reach: Vec<&str> = [&t.phone, &t.email, &t.slack]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let _ = writeln!(out, "  - {} ({}): {}", t.name, t.role, reach.join(", "));
    }
    if !c.emergency.is_empty() {
        let names: Vec<String> = c
            .emergency
            .iter()
            .map(|e| format!("{} ({})", e.label, e.role))
            .collect();
        let _ = writeln!(out, "emergency contacts: {}", names.join(", "));
    }
    if !c.vendors.is_empty() {
        let _ = writeln!(out, "vendors:");
        for v in &c.vendors {
            let how = v
                .email
                .as_ref()
                .or(v.support.as_ref())
                .map_or("", String::as_str);
            let _ = writeln!(out, "  - {}: {how}", v.name);
        }
    }
    if !c.external.is_empty() {
        let _ = writeln!(out, "external resources:");
        for x in &c.external {
            let _ = writeln!(out, "  - {}: {}", x.name, x.url);
        }
    }
}
