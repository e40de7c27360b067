//! The shipped catalog against the runbook it transcribes: every alert, procedure,
//! checklist and maintenance list of the seed has an entry, and the words people rely on
//! (checklist items, causes, contacts, the escalation matrix) are the seed's own.
//!
//! The seed is the repository's copy, `tests/fixtures/seed/operations-runbook.md`, so the
//! suite passes from a clone alone.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::actions::{Action, Bound, Classified, LogSource};
use super::values::ArgType;
use super::{Catalog, Entry, Step, load_default};

/// The seed, split into what the tests compare.
struct Seed {
    /// Every heading outside code blocks, with its level (2 to 4).
    headings: Vec<(u8, String)>,
    /// Checklist items (`- [ ] …`) by their `###` heading.
    items: BTreeMap<String, Vec<String>>,
    /// Code block lines by their `###` heading.
    blocks: BTreeMap<String, Vec<String>>,
    /// Prose lines (outside code) by their `####` heading.
    prose: BTreeMap<String, Vec<String>>,
    /// Every line outside code blocks, by `###` heading.
    section_lines: BTreeMap<String, Vec<String>>,
}

/// The repository's copy of the seed runbook.
fn seed_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/seed/operations-runbook.md");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the seed runbook {}: {e}", path.display()))
}

fn seed() -> Seed {
    let text = seed_text();
    let mut seed = Seed {
        headings: Vec::new(),
        items: BTreeMap::new(),
        blocks: BTreeMap::new(),
        prose: BTreeMap::new(),
        section_lines: BTreeMap::new(),
    };
    let (mut in_code, mut h3, mut h4) = (false, String::new(), String::new());
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            seed.blocks
                .entry(h3.clone())
                .or_default()
                .push(line.to_owned());
            continue;
        }
        let level = line.bytes().take_while(|b| *b == b'#').count();
        if (2..=4).contains(&level) && line.as_bytes().get(level) == Some(&b' ') {
            let title = line[level + 1..].trim().to_owned();
            match level {
                2 => {
                    h3.clear();
                    h4.clear();
                }
                3 => {
                    h3 = title.clone();
                    h4.clear();
                }
                _ => h4 = title.clone(),
            }
            seed.headings.push((level as u8, title));
            continue;
        }
        if let Some(item) = line.strip_prefix("- [ ] ") {
            seed.items
                .entry(h3.clone())
                .or_default()
                .push(item.trim().to_owned());
        }
        seed.section_lines
            .entry(h3.clone())
            .or_default()
            .push(line.to_owned());
        if !h4.is_empty() {
            seed.prose
                .entry(h4.clone())
                .or_default()
                .push(line.to_owned());
        }
    }
    seed
}

fn catalog() -> Catalog {
    load_default().unwrap_or_else(|e| panic!("{e}"))
}

fn by_heading<'a>(catalog: &'a Catalog, heading: &str) -> Option<Entry<'a>> {
    catalog.entries().find(|e| e.source_heading() == heading)
}

/// The `###` headings under a `##` heading whose text contains `h2`.
fn h3s_under(seed: &Seed, h2: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for (level, title) in &seed.headings {
        match level {
            2 => inside = title.contains(h2),
            3 if inside => out.push(title.clone()),
            _ => {}
        }
    }
    out
}

#[test]
fn every_alert_and_procedure_of_the_seed_has_an_entry() {
    let (seed, catalog) = (seed(), catalog());
    let h4s: Vec<&String> = seed
        .headings
        .iter()
        .filter(|(l, _)| *l == 4)
        .map(|(_, t)| t)
        .collect();
    let mut missing = Vec::new();
    let mut seed_alerts = 0;
    for heading in &h4s {
        let entry = by_heading(&catalog, heading);
        let fits = if heading.starts_with("ALERT: ") {
            seed_alerts += 1;
            matches!(entry, Some(Entry::Alert(_)))
        } else {
            matches!(
                entry,
                Some(Entry::Procedure(_) | Entry::Query(_) | Entry::Tracing(_))
            )
        };
        if !fits {
            missing.push(heading.as_str());
        }
    }
    assert!(
        missing.is_empty(),
        "seed headings without a fitting entry: {missing:?}"
    );
    assert_eq!(seed_alerts, 6, "the seed's alerts were not all found");
    assert_eq!(
        catalog.alerts().len(),
        seed_alerts,
        "alerts not in the seed"
    );
    for procedure in [
        "Standard Deployment",
        "Emergency Rollback",
        "Manual Scaling",
        "Auto-scaling Configuration",
        "Database Maintenance",
        "Database Backup Verification",
        "SSL Certificate Renewal",
        "Suspected Security Breach",
        "User Access Review",
        "Rotate Secrets",
    ] {
        assert!(
            h4s.iter().any(|h| *h == procedure),
            "{procedure} is not a seed heading"
        );
        assert!(
            matches!(by_heading(&catalog, procedure), Some(Entry::Procedure(_))),
            "{procedure} has no procedure entry"
        );
    }
}

#[test]
fn every_checklist_and_maintenance_list_has_an_entry_with_the_seed_items() {
    let (seed, catalog) = (seed(), catalog());
    let checklists = h3s_under(&seed, "Checklists");
    let maintenance = h3s_under(&seed, "Maintenance Tasks");
    assert_eq!(checklists.len(), 3, "{checklists:?}");
    assert_eq!(maintenance.len(), 4, "{maintenance:?}");
    for heading in checklists.iter().chain(&maintenance) {
        let items = match by_heading(&catalog, heading) {
            Some(Entry::Checklist(c)) => &c.items,
            Some(Entry::Maintenance(m)) => &m.items,
            other => panic!("{heading}: no checklist or maintenance entry ({other:?})"),
        };
        let want = &seed.items[heading];
        assert_eq!(items, want, "{heading}: items differ from the seed");
    }
    // And every checkbox anywhere in the seed is somewhere in the catalog.
    let all: Vec<&String> = catalog
        .checklists()
        .iter()
        .flat_map(|c| &c.items)
        .chain(catalog.maintenance().iter().flat_map(|m| &m.items))
        .collect();
    for item in seed.items.values().flatten() {
        assert!(all.contains(&item), "{item:?} is not in the catalog");
    }
}

#[test]
fn alert_symptoms_and_causes_are_the_seeds() {
    let (seed, catalog) = (seed(), catalog());
    for alert in catalog.alerts() {
        let prose = &seed.prose[&alert.source_heading];
        let symptoms: Vec<String> = prose
            .iter()
            .filter_map(|l| l.strip_prefix("**Symptoms**: "))
            .flat_map(|s| s.split(", "))
            .map(str::to_lowercase)
            .collect();
        let ours: Vec<String> = alert.symptoms.iter().map(|s| s.to_lowercase()).collect();
        assert_eq!(ours, symptoms, "{}: symptoms", alert.id);
        // `- **Cause**: solution` or `- Cause`.
        let causes: Vec<(String, Option<String>)> = prose
            .iter()
            .filter_map(|l| l.strip_prefix("- "))
            .map(
                |c| match c.strip_prefix("**").and_then(|c| c.split_once("**: ")) {
                    Some((cause, solution)) => (cause.to_owned(), Some(solution.to_owned())),
                    None => (c.to_owned(), None),
                },
            )
            .collect();
        let ours: Vec<(String, Option<String>)> = alert
            .common_causes
            .iter()
            .map(|c| (c.cause.clone(), c.solution.clone()))
            .collect();
        assert_eq!(ours, causes, "{}: common causes", alert.id);
    }
}

#[test]
fn contacts_are_the_seeds_exactly() {
    let (seed, catalog) = (seed(), catalog());
    let contacts = catalog.contacts();
    for section in [
        "Emergency Contacts",
        "Team Contacts",
        "Vendor Contacts",
        "External Resources",
    ] {
        let lines = &seed.blocks[section];
        assert!(!lines.is_empty(), "{section} is empty in the seed");
        for line in lines {
            let (name, rest) = line.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
            // `value (Slack: @handle)` → value and handle.
            let (value, handle) = match rest.split_once(" (Slack: ") {
                Some((v, h)) => (v, Some(h.trim_end_matches(')'))),
                None => (rest, None),
            };
            let found = match section {
                "Emergency Contacts" => contacts
                    .emergency
                    .iter()
                    .find(|e| e.label == name)
                    .and_then(|e| catalog.role(e.role.as_str()))
                    .map(|t| (vec![t.phone.clone(), t.email.clone()], t.slack.clone())),
                "Team Contacts" => contacts
                    .team
                    .iter()
                    .find(|t| t.name == name)
                    .map(|t| (vec![t.phone.clone(), t.email.clone()], t.slack.clone())),
                "Vendor Contacts" => contacts
                    .vendors
                    .iter()
                    .find(|v| v.name == name)
                    .map(|v| (vec![v.email.clone(), v.support.clone()], None)),
                _ => contacts
                    .external
                    .iter()
                    .find(|x| x.name == name)
                    .map(|x| (vec![Some(x.url.clone())], None)),
            };
            let (values, slack) = found.unwrap_or_else(|| panic!("{section}: no contact {name:?}"));
            assert!(
                values.iter().flatten().any(|v| v == value),
                "{section}: {name:?} should have {value:?}, has {values:?}"
            );
            if let Some(h) = handle {
                assert_eq!(
                    slack.as_deref(),
                    Some(h),
                    "{section}: {name:?}'s Slack handle"
                );
            }
        }
    }
}

#[test]
fn the_escalation_matrix_and_protocol_are_the_seeds() {
    let (seed, catalog) = (seed(), catalog());
    let rows: Vec<Vec<String>> = seed.section_lines["Escalation Matrix"]
        .iter()
        .filter(|l| l.starts_with('|') && !l.starts_with("|--") && !l.contains("Severity"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let rules = catalog.escalation().rules();
    for (row, rule) in rows.iter().zip(rules) {
        assert_eq!(row[0].to_lowercase(), rule.severity.name());
        // "5 minutes", "1 hour", "4 hours" against the parsed duration.
        let (n, unit) = row[1].split_once(' ').unwrap();
        let unit_secs = if unit.starts_with("minute") { 60 } else { 3600 };
        let secs = n.parse::<u64>().unwrap() * unit_secs;
        assert_eq!(rule.response_time.as_secs(), secs, "{row:?}");
        assert_eq!(row[2], rule.escalation, "{row:?}");
    }
    let steps: Vec<String> = seed.blocks["Immediate Response Protocol"]
        .iter()
        .filter_map(|l| l.split_once(". ").map(|(_, t)| t.to_owned()))
        .collect();
    let ours: Vec<String> = catalog
        .emergency_response()
        .steps
        .iter()
        .map(|s| s.text.clone())
        .collect();
    assert_eq!(ours, steps);
}

/// One step of the seed: a `# …` comment in a code block of a `####` section (only the
/// numbered ones where the block numbers its steps) with the commands under it, and
/// whether it sits under the section's recovery (or optimization) actions.
#[derive(Debug)]
struct SeedStep {
    heading: String,
    text: String,
    code: Vec<String>,
    recovery: bool,
}

fn numbered(comment: &str) -> Option<&str> {
    comment
        .split_once(". ")
        .filter(|(n, _)| n.parse::<u32>().is_ok())
        .map(|(_, rest)| rest)
}

fn seed_steps() -> Vec<SeedStep> {
    let text = seed_text();
    let (mut out, mut h4, mut recovery, mut in_code) = (Vec::new(), String::new(), false, false);
    // The block's comments, each with the lines under it.
    let mut block: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            if in_code && !h4.is_empty() {
                // A numbered block's unnumbered comments are details of its steps.
                let any_numbered = block.iter().any(|(c, _)| numbered(c).is_some());
                for (c, code) in block.drain(..) {
                    match (any_numbered, numbered(&c)) {
                        (true, None) => {
                            if let Some(last) = out.last_mut() {
                                let last: &mut SeedStep = last;
                                last.code.extend(code);
                            }
                        }
                        (_, step) => out.push(SeedStep {
                            heading: h4.clone(),
                            text: step.unwrap_or(&c).trim().to_owned(),
                            code,
                            recovery,
                        }),
                    }
                }
            }
            block.clear();
            in_code = !in_code;
            continue;
        }
        if in_code {
            match line.trim_start().strip_prefix("# ") {
                Some(c) => block.push((c.trim().to_owned(), Vec::new())),
                None if !line.trim().is_empty() => {
                    if let Some((_, code)) = block.last_mut() {
                        code.push(line.trim().to_owned());
                    }
                }
                None => {}
            }
            continue;
        }
        if let Some(h) = line.strip_prefix("#### ") {
            (h4, recovery) = (h.trim().to_owned(), false);
        } else if line.starts_with("## ") || line.starts_with("### ") {
            h4.clear();
        } else if line.starts_with("**Recovery Actions**")
            || line.starts_with("**Optimization Actions**")
        {
            recovery = true;
        } else if line.starts_with("**Investigation Steps**") {
            recovery = false;
        }
    }
    out
}

/// Seed steps whose catalog step is worded differently: the seed's words, and the titles
/// of the catalog steps that serve them.
const RENAMED: &[(&str, &[&str])] = &[
    (
        "Identify large files",
        &["Identify large files and log file sizes"],
    ),
    (
        "Check log file sizes",
        &["Identify large files and log file sizes"],
    ),
    (
        "Deploy using Helm",
        &["Deploy the API", "Deploy the worker"],
    ),
    ("Verify deployment", &["Verify deployment", "Verify health"]),
    (
        "Check application health",
        &["Check application health", "Check application readiness"],
    ),
    (
        "Collect evidence",
        &["Collect evidence (logs, events, pod specs, NetworkPolicies)"],
    ),
    (
        "List all service accounts",
        &["List service accounts and review RBAC permissions"],
    ),
    (
        "Review RBAC permissions",
        &["List service accounts and review RBAC permissions"],
    ),
    (
        "Generate new API keys",
        &[
            "Generate new API keys, update the application (the previous key is overwritten next time)",
        ],
    ),
    (
        "Update application to use new keys",
        &[
            "Generate new API keys, update the application (the previous key is overwritten next time)",
        ],
    ),
    // odorbot never deletes a Secret: the idle one of the two is overwritten next time.
    (
        "Remove old secrets",
        &[
            "Generate new API keys, update the application (the previous key is overwritten next time)",
        ],
    ),
];

/// Seed steps odorbot serves without a step of their own, and how.
const SERVED_OTHERWISE: &[(&str, &str)] = &[
    // Every request, approval and execution of the deployment is in the audit log, and the
    // run's start with its reason: the seed's `echo … >> /tmp/deployment-log.txt`.
    ("Create deployment record", "the audit log"),
    // The Jaeger UI is the *Traces* link of `/odor status` and incident messages
    // (`probes.traces_url`); the trace queries are the tracing entry's, as search URLs.
    ("Access Jaeger UI", "probes.traces_url"),
];

/// The catalog's steps for one seed step: same title, a title that specifies it
/// (`Check downstream services (Redis)`), or a renaming above.
fn served_by<'a>(steps: &'a [Step], seed: &str) -> Vec<(usize, &'a Step)> {
    let renamed: Vec<&str> = RENAMED
        .iter()
        .filter(|(s, _)| *s == seed)
        .flat_map(|(_, titles)| titles.iter().copied())
        .collect();
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.title == seed
                || s.title.starts_with(&format!("{seed} ("))
                || renamed.contains(&s.title.as_str())
        })
        .collect()
}

/// The `/odor` command that asks for a query step's action, for the kinds query entries
/// use; `None` for a note, which is a reminder.
fn command_for(action: &Action<Bound>) -> Option<String> {
    Some(match action {
        Action::HttpMetric { signal } => format!("metrics {}", signal.render()),
        Action::ResourceUsage { selector: None } => "top".into(),
        Action::DiskUsage { pvc: Some(pvc) } => format!("disk {pvc}"),
        Action::Logs {
            source: LogSource::Selector(selector),
            since,
            grep,
            tail: None,
            previous: None,
        } => {
            let app = selector.render();
            let app = app.strip_prefix("app=").unwrap_or(&app).to_owned();
            let mut c = format!("logs {app}");
            if let Some(s) = since {
                c.push_str(&format!(" --since {}", s.render()));
            }
            if let Some(g) = grep {
                c.push_str(&format!(" --grep \"{}\"", g.render()));
            }
            c
        }
        Action::Note { .. } => return None,
        other => panic!(
            "a query step of kind {} has no command here yet",
            other.kind()
        ),
    })
}

/// The seed's Jaeger lines against the tracing entry: the UI's address and each field of
/// the common query.
fn tracing_serves(t: &super::Tracing, text: &str) -> Result<Vec<String>, String> {
    let query = |ok: &dyn Fn(&super::TraceQuery) -> bool| {
        t.queries
            .iter()
            .find(|q| ok(q))
            .map(|q| vec![format!("trace search {}", q.search_url(&t.ui.url))])
            .ok_or_else(|| format!("no trace query has {text:?}"))
    };
    if let Some(url) = text.strip_prefix("Then visit: ") {
        return if t.ui.url.as_str().trim_end_matches('/') == url {
            Ok(vec![url.to_owned()])
        } else {
            Err(format!("the UI is at {}", t.ui.url))
        };
    }
    if text == "Common trace queries:" {
        return query(&|_| true);
    }
    let (field, value) = text
        .strip_prefix("- ")
        .and_then(|f| f.split_once(": "))
        .ok_or_else(|| format!("{text:?} is no trace query field"))?;
    let value = value.trim();
    match field {
        "Service" => query(&|q| q.service == value),
        "Operation" => query(&|q| q.operation.as_deref() == Some(value)),
        "Tags" => {
            let tag = value.split_whitespace().next().unwrap_or_default();
            let (k, v) = tag.split_once('=').unwrap_or((tag, ""));
            query(&|q| q.tags.get(k).map(String::as_str) == Some(v))
        }
        "Lookback" if value == "Last hour" => {
            query(&|q| q.lookback == std::time::Duration::from_secs(3600))
        }
        _ => Err(format!("{text:?} is no known trace query field")),
    }
}

/// README's typed substitutes name every seed step that shells out, in the seed's words.
#[test]
fn readme_names_the_typed_substitute_of_every_shell_step() {
    let readme = include_str!("../../../../README.md");
    let start = readme
        .find("### Typed substitutes for the seed's shell")
        .expect("README has the typed substitutes");
    let section = &readme[start..];
    let section = &section[..section[4..].find("\n## ").map_or(section.len(), |e| e + 4)];
    let named: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| seed steps"))
        .filter_map(|l| l.split(" | ").next())
        .flat_map(|cell| cell.trim_start_matches("| ").split(", "))
        .collect();
    let shell: Vec<SeedStep> = seed_steps()
        .into_iter()
        .filter(|s| s.code.iter().any(|l| SHELL.iter().any(|m| l.contains(m))))
        .collect();
    assert!(shell.len() > 40, "{}", shell.len());
    let missing: Vec<String> = shell
        .iter()
        .filter(|s| !named.contains(&s.text.as_str()))
        .map(|s| format!("{} / {}", s.heading, s.text))
        .collect();
    assert!(
        missing.is_empty(),
        "README's typed substitutes lack {missing:?}"
    );
}

/// What in a seed command is a shell, not a typed API call.
const SHELL: &[&str] = &[
    "kubectl exec",
    "psql",
    "redis-cli",
    "curl ",
    "find ",
    "du -",
    "df -",
    "echo ",
    "helm upgrade",
    "kubectl run",
    "kubectl cp",
    "velero ",
    "openssl",
    "| grep",
    "tail -",
    "kubectl patch",
    "kubectl port-forward",
    "watch ",
];

#[test]
fn every_step_of_the_seed_is_served_by_a_verb_a_button_or_a_procedure_step() {
    use crate::domain::command::{Command, Context, parse};
    let catalog = catalog();
    let ctx = Context {
        catalog: &catalog,
        now_unix: 1_800_000_000,
    };
    let sample: BTreeMap<String, String> = [
        ("tag", "1.6.0"),
        ("api_replicas", "5"),
        ("worker_replicas", "3"),
        ("pod", "odordiff-api-7d4f9-x2x7q"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let steps = seed_steps();
    assert!(
        steps.len() > 90,
        "the seed's steps were not found: {}",
        steps.len()
    );
    let mut unserved = Vec::new();
    let mut served = 0;
    for seed in &steps {
        if SERVED_OTHERWISE.iter().any(|(s, _)| *s == seed.text) {
            served += 1;
            continue;
        }
        let how: Result<Vec<String>, String> = match by_heading(&catalog, &seed.heading) {
            Some(Entry::Alert(a)) => {
                let list = if seed.recovery {
                    &a.recovery
                } else {
                    &a.investigation
                };
                let found = served_by(list, &seed.text);
                if found.is_empty() {
                    Err("no catalog step".into())
                } else if seed.recovery {
                    // Each recovery step is a button in the incident thread: it binds
                    // without a value from a person, and it is a change.
                    found
                        .iter()
                        .map(
                            |(i, s)| match s.bind(&BTreeMap::new()).map(|a| a.classify()) {
                                Ok(Classified::Change(_)) => {
                                    Ok(format!("button recovery:<incident>:{i}"))
                                }
                                other => Err(format!("{}: no button ({other:?})", s.title)),
                            },
                        )
                        .collect()
                } else {
                    let diagnose = format!("diagnose {}", a.id);
                    match parse(&diagnose, &ctx) {
                        Ok(Command::Diagnose { .. }) => found
                            .iter()
                            .map(|(_, s)| match s.bind(&BTreeMap::new()) {
                                Ok(_) => Ok(format!("/odor {diagnose}")),
                                Err(e) => Err(format!("{}: does not bind: {e:?}", s.title)),
                            })
                            .collect(),
                        other => Err(format!("{diagnose}: {other:?}")),
                    }
                }
            }
            Some(Entry::Procedure(p)) => {
                let found = served_by(&p.steps, &seed.text);
                let params: String = p
                    .params()
                    .iter()
                    .filter_map(|q| {
                        sample
                            .get(q.name.as_str())
                            .map(|v| format!(" {}={v}", q.name))
                    })
                    .collect();
                let run = format!("run {}{params} --reason \"seed step\"", p.id);
                match (found.is_empty(), parse(&run, &ctx)) {
                    (true, _) => Err("no procedure step".into()),
                    (false, Ok(Command::Run { .. })) => Ok(found
                        .iter()
                        .map(|(i, _)| format!("/odor {run}, step {}", i + 1))
                        .collect()),
                    (false, other) => Err(format!("{run}: {other:?}")),
                }
            }
            Some(Entry::Query(q)) => {
                let found = served_by(&q.steps, &seed.text);
                if found.is_empty() {
                    Err("no query step".into())
                } else {
                    found
                        .iter()
                        .map(|(_, s)| {
                            let action = s.bind(&BTreeMap::new()).map_err(|e| format!("{e:?}"))?;
                            let Some(command) = command_for(&action) else {
                                return Ok("a reminder (note)".to_owned());
                            };
                            match parse(&command, &ctx) {
                                Ok(Command::Cluster { action: asked, .. }) if asked == action => {
                                    Ok(format!("/odor {command}"))
                                }
                                Ok(Command::Metrics { .. })
                                    if matches!(action, Action::HttpMetric { .. }) =>
                                {
                                    Ok(format!("/odor {command}"))
                                }
                                other => Err(format!(
                                    "/odor {command} asks for {other:?}, not {action:?}"
                                )),
                            }
                        })
                        .collect()
                }
            }
            Some(Entry::Tracing(t)) => tracing_serves(t, &seed.text),
            other => Err(format!("no fitting entry ({other:?})")),
        };
        match how {
            Ok(ways) if !ways.is_empty() => served += 1,
            Ok(_) => unserved.push(format!(
                "{} / {}: nothing serves it",
                seed.heading, seed.text
            )),
            Err(why) => unserved.push(format!("{} / {}: {why}", seed.heading, seed.text)),
        }
    }
    assert!(
        unserved.is_empty(),
        "seed steps not served:\n{}",
        unserved.join("\n")
    );
    // No renaming outlives the seed step it was for.
    for seed in RENAMED
        .iter()
        .map(|(s, _)| s)
        .chain(SERVED_OTHERWISE.iter().map(|(s, _)| s))
    {
        assert!(
            steps.iter().any(|st| st.text == *seed),
            "{seed:?} is no seed step"
        );
    }
    assert_eq!(served, steps.len());
}
