//! The shipped catalog against the runbook it transcribes: every alert, procedure,
//! checklist and maintenance list of the seed has an entry, and the words people rely on
//! (checklist items, causes, contacts, the escalation matrix) are the seed's own.
//!
//! The seed is the repository's copy, `tests/fixtures/seed/operations-runbook.md`, so the
//! suite passes from a clone alone.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Catalog, Entry, load_default};

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

fn seed() -> Seed {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/seed/operations-runbook.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the seed runbook {}: {e}", path.display()));
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
