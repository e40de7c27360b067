//! Alert storms. When more incidents open in a short window than a channel can carry
//! (Slack paces a channel at about one message a second), later ones join one storm
//! incident instead of each posting a root, a ping and findings. The storm's root is a
//! summary edited in place as incidents join and resolve; it pages once per severity, and
//! its thread carries the status updates. Members still exist, are listed by
//! `/odor incidents`, and get their own thread on demand or when acknowledged.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::args::format_duration;
use super::escalation::{Policy, Severity};
use super::incident::{Incident, IncidentState, incident_buttons, severity_mark};
use super::roster::{Role, Roster};
use super::view::{Block, Message, escape, plain};

/// When incidents become a storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormPolicy {
    /// Incidents opened within `window` before a new one that make it a storm.
    pub threshold: usize,
    pub window: Duration,
    /// A storm stops taking members after this long without one.
    pub quiet: Duration,
}

impl Default for StormPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            window: Duration::from_secs(60),
            quiet: Duration::from_secs(300),
        }
    }
}

/// Where a newly opened incident goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Its own root message and pings, as always.
    Alone,
    /// Into the open storm with this id.
    Join(String),
    /// Into a new storm, opened with it.
    Start,
}

/// The open storm a new incident could join, as the store saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenStorm {
    pub id: String,
    /// When its latest member (or the storm itself) opened.
    pub last_joined: Timestamp,
}

/// Decides for an incident opened at `now`: `recent` is how many incidents (storms
/// excluded) opened in the policy's window before it.
pub fn admit(
    policy: &StormPolicy,
    recent: usize,
    storm: Option<&OpenStorm>,
    now: Timestamp,
) -> Admission {
    if let Some(s) = storm
        && now.duration_since(s.last_joined).unsigned_abs() <= policy.quiet
    {
        return Admission::Join(s.id.clone());
    }
    if recent >= policy.threshold {
        Admission::Start
    } else {
        Admission::Alone
    }
}

/// The earliest time of the window `recent` counts from.
pub fn window_start(policy: &StormPolicy, now: Timestamp) -> Timestamp {
    let back = jiff::SignedDuration::try_from(policy.window).unwrap_or(jiff::SignedDuration::MAX);
    now.checked_sub(back).unwrap_or(Timestamp::MIN)
}

/// How long the summary gathers joins and resolutions before one `chat.update`: edits are
/// rate-limited too (Tier 3), and a storm can bring hundreds a second.
pub const REFRESH: Duration = Duration::from_secs(3);

/// How many members the summary names; the rest are counted and listed on demand.
pub const NAMED: usize = 10;

/// A storm's members, counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub total: usize,
    pub resolved: usize,
    pub acknowledged: usize,
    /// Open (unresolved) members by severity.
    pub open_by_severity: BTreeMap<Severity, usize>,
    /// All members by (runbook entry or title, severity), most frequent first.
    pub by_alert: Vec<(String, Severity, usize)>,
    /// The first members by number: name, severity, title, state.
    pub first: Vec<(String, Severity, String, IncidentState)>,
}

impl Summary {
    pub fn of(members: &[Incident]) -> Summary {
        let mut sorted: Vec<&Incident> = members.iter().collect();
        sorted.sort_by_key(|i| i.number);
        let mut by_alert: BTreeMap<(String, Severity), usize> = BTreeMap::new();
        let mut s = Summary {
            total: sorted.len(),
            ..Summary::default()
        };
        for i in &sorted {
            let what = i.entry.clone().unwrap_or_else(|| i.title.clone());
            *by_alert.entry((what, i.severity)).or_default() += 1;
            match i.state {
                IncidentState::Resolved => s.resolved += 1,
                IncidentState::Acknowledged => s.acknowledged += 1,
                IncidentState::Open => {}
            }
            if i.state != IncidentState::Resolved {
                *s.open_by_severity.entry(i.severity).or_default() += 1;
            }
        }
        let mut by_alert: Vec<(String, Severity, usize)> = by_alert
            .into_iter()
            .map(|((what, sev), n)| (what, sev, n))
            .collect();
        by_alert.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0)));
        s.by_alert = by_alert;
        s.first = sorted
            .iter()
            .take(NAMED)
            .map(|i| (i.name(), i.severity, i.title.clone(), i.state))
            .collect();
        s
    }

    /// The worst severity among the open members.
    pub fn worst_open(&self) -> Option<Severity> {
        self.open_by_severity.keys().next().copied()
    }

    /// Every member resolved: the storm is over, bar a person saying so.
    pub fn all_resolved(&self) -> bool {
        self.total > 0 && self.resolved == self.total
    }
}

/// The severities the storm has not yet paged for, worst first: one page per severity per
/// storm, however many members bring it.
pub fn pages_due(summary: &Summary, paged: &[Severity]) -> Vec<Severity> {
    summary
        .open_by_severity
        .keys()
        .copied()
        .filter(|s| !paged.contains(s))
        .collect()
}

/// The severity the storm should hold: it never falls, and rises with its worst member, so
/// it escalates by the strictest rule among them.
pub fn raised(storm: Severity, summary: &Summary) -> Option<Severity> {
    summary.worst_open().filter(|w| *w < storm)
}

/// The timeline kind recording the storm's page for `severity`.
pub fn page_kind(severity: Severity) -> String {
    format!("storm-page-{}", severity.name())
}

/// What the summary and its edits show; `paged` are the severities paged so far. The
/// root carries the first page itself, so it needs no message of its own: a mention in
/// a new message notifies, and the same mention in an edit does not notify again.
pub struct SummaryView<'a> {
    pub storm: &'a Incident,
    pub summary: &'a Summary,
    pub paged: &'a [Severity],
    pub roster: &'a Roster,
    pub policy: &'a Policy,
    pub now: Timestamp,
}

/// The storm's root message: the summary, its pages, and the incident's buttons.
pub fn summary_message(v: &SummaryView<'_>) -> Message {
    let (storm, s, policy, now) = (v.storm, v.summary, v.policy, v.now);
    let open = s.total - s.resolved;
    let title = format!(
        "🌩 {} Alert storm — {} incidents, {open} open",
        storm.name(),
        s.total
    );
    let severities = Severity::ALL
        .iter()
        .filter_map(|sev| {
            let n = s.open_by_severity.get(sev).copied().unwrap_or(0);
            (n > 0).then(|| format!("{} {n} {}", severity_mark(*sev), sev.name()))
        })
        .collect::<Vec<_>>();
    let mut lines: Vec<String> = v
        .paged
        .iter()
        .map(|sev| {
            page_line(
                storm,
                *sev,
                s.open_by_severity.get(sev).copied().unwrap_or(0),
                v.roster,
                policy,
            )
        })
        .collect();
    lines.push(format!(
        "*Open by severity:* {}",
        if severities.is_empty() {
            "none".to_owned()
        } else {
            severities.join(" · ")
        }
    ));
    lines.push(format!(
        "*Resolved:* {} of {} · *acknowledged:* {}",
        s.resolved, s.total, s.acknowledged
    ));
    lines.push("*By alert*".into());
    lines.extend(
        s.by_alert
            .iter()
            .take(NAMED)
            .map(|(what, sev, n)| format!("• {} {} × {n}", severity_mark(*sev), escape(what))),
    );
    if s.by_alert.len() > NAMED {
        lines.push(format!("• … and {} more alerts", s.by_alert.len() - NAMED));
    }
    lines.push("*First incidents*".into());
    lines.extend(s.first.iter().map(|(name, sev, title, state)| {
        format!(
            "• {} {name} {} — {}",
            severity_mark(*sev),
            state.name(),
            escape(title)
        )
    }));
    let mut blocks = vec![
        Block::Header(plain(&title)),
        Block::Section(lines.join("\n")),
    ];
    if storm.state != IncidentState::Resolved {
        blocks.push(Block::Actions(incident_buttons(storm)));
        blocks.push(Block::Context(format!(
            "Every incident: `/odor incidents` · its own thread: `/odor thread INC-n` (or acknowledge it) · status every {} in this thread",
            format_duration(policy.status_every)
        )));
    }
    let age = now.duration_since(storm.opened_at).unsigned_abs();
    Message {
        text: format!(
            "{} ({} old)",
            escape(&title),
            format_duration(Duration::from_secs(age.as_secs()))
        ),
        blocks,
    }
}

/// The storm's page for one severity, in its own message (a severity that joined after
/// the root was posted).
pub fn storm_page(
    storm: &Incident,
    severity: Severity,
    count: usize,
    roster: &Roster,
    policy: &Policy,
) -> Message {
    Message::text(page_line(storm, severity, count, roster, policy))
}

/// The page for one severity: a page where the severity pages at once, a mention otherwise.
pub fn page_line(
    storm: &Incident,
    severity: Severity,
    count: usize,
    roster: &Roster,
    policy: &Policy,
) -> String {
    let whom = roster.mention(Role::Primary);
    if policy.rule(severity).page_at_once {
        format!(
            "🚨 *Page:* {whom} — alert storm {}: {count} {} incidents so far. Acknowledge the storm within {} or it escalates.",
            storm.name(),
            severity.name(),
            format_duration(policy.rule(storm.severity).ack_within)
        )
    } else {
        format!(
            "{whom} — alert storm {}: {count} {} incidents so far need an owner.",
            storm.name(),
            severity.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::incident::tests::incident;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_threshold_starts_a_storm_and_a_quiet_storm_takes_no_more() {
        let p = StormPolicy::default();
        let now = at("2026-12-03T10:00:00Z");
        assert_eq!(admit(&p, 4, None, now), Admission::Alone);
        assert_eq!(admit(&p, 5, None, now), Admission::Start);
        let storm = OpenStorm {
            id: "s1".into(),
            last_joined: at("2026-12-03T09:55:00Z"),
        };
        // Exactly `quiet` after the last join still joins; a moment later it does not.
        assert_eq!(
            admit(&p, 0, Some(&storm), now),
            Admission::Join("s1".into())
        );
        let later = at("2026-12-03T10:00:01Z");
        assert_eq!(admit(&p, 0, Some(&storm), later), Admission::Alone);
        assert_eq!(admit(&p, 9, Some(&storm), later), Admission::Start);
        assert_eq!(window_start(&p, now), at("2026-12-03T09:59:00Z"));
    }

    fn member(n: i64, sev: Severity, entry: &str, state: IncidentState) -> Incident {
        let mut i = incident();
        i.id = format!("i{n}");
        i.number = n;
        i.severity = sev;
        i.entry = Some(entry.into());
        i.title = format!("{entry} <{n}>");
        i.state = state;
        i
    }

    #[test]
    fn the_summary_counts_by_alert_and_severity_and_names_the_first() {
        let mut members: Vec<Incident> = (1..=14)
            .rev()
            .map(|n| {
                let sev = if n % 2 == 0 {
                    Severity::Critical
                } else {
                    Severity::High
                };
                let state = if n <= 3 {
                    IncidentState::Resolved
                } else {
                    IncidentState::Open
                };
                member(n, sev, if n % 2 == 0 { "api-down" } else { "disk" }, state)
            })
            .collect();
        members[0].state = IncidentState::Acknowledged;
        let s = Summary::of(&members);
        assert_eq!((s.total, s.resolved, s.acknowledged), (14, 3, 1));
        assert_eq!(s.open_by_severity[&Severity::Critical], 6);
        assert_eq!(s.open_by_severity[&Severity::High], 5);
        assert_eq!(s.worst_open(), Some(Severity::Critical));
        assert_eq!(
            s.by_alert,
            [
                ("api-down".to_owned(), Severity::Critical, 7),
                ("disk".to_owned(), Severity::High, 7)
            ]
        );
        assert_eq!(s.first.len(), NAMED);
        assert_eq!(s.first[0].0, "INC-1");
        let mut storm = incident();
        storm.number = 99;
        let m = summary_message(&SummaryView {
            storm: &storm,
            summary: &s,
            paged: &[Severity::Critical],
            roster: &Roster::default(),
            policy: &Policy::runbook_example(),
            now: at("2026-11-27T10:02:00Z"),
        });
        let all = format!("{m:?}");
        // The page is in the root itself.
        assert!(
            all.contains("alert storm INC-99: 6 critical incidents so far"),
            "{all}"
        );
        assert!(
            m.text
                .contains("INC-99 Alert storm — 14 incidents, 11 open"),
            "{}",
            m.text
        );
        assert!(all.contains("🔴 6 critical · 🟠 5 high"), "{all}");
        assert!(all.contains("*Resolved:* 3 of 14"), "{all}");
        // Titles are outside text: escaped.
        assert!(all.contains("api-down &lt;2&gt;"), "{all}");
        assert!(all.contains("incident:ack:i1"), "{all}");
        assert!(!s.all_resolved());
    }

    #[test]
    fn pages_once_per_severity_and_the_storm_severity_only_rises() {
        let members = [
            member(1, Severity::High, "a", IncidentState::Open),
            member(2, Severity::Critical, "b", IncidentState::Open),
            member(3, Severity::Low, "c", IncidentState::Resolved),
        ];
        let s = Summary::of(&members);
        assert_eq!(pages_due(&s, &[Severity::High]), [Severity::Critical]);
        assert!(pages_due(&s, &[Severity::High, Severity::Critical]).is_empty());
        assert_eq!(raised(Severity::High, &s), Some(Severity::Critical));
        assert_eq!(raised(Severity::Critical, &s), None);
        let done = Summary::of(&[member(1, Severity::Low, "a", IncidentState::Resolved)]);
        assert!(done.all_resolved());
        assert_eq!(raised(Severity::High, &done), None);
        assert!(!Summary::default().all_resolved());
    }

    #[test]
    fn a_critical_storm_page_pages_and_says_the_deadline() {
        let storm = incident();
        let p = Policy::runbook_example();
        let page = storm_page(&storm, Severity::Critical, 37, &Roster::default(), &p);
        assert!(
            page.text.starts_with("🚨") && page.text.contains("Page:"),
            "{}",
            page.text
        );
        assert!(page.text.contains("37 critical incidents"), "{}", page.text);
        let low = storm_page(&storm, Severity::Low, 2, &Roster::default(), &p);
        assert!(!low.text.contains("Page"), "{}", low.text);
        assert_eq!(page_kind(Severity::High), "storm-page-high");
    }
}
