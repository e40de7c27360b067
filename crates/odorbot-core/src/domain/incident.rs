//! Incidents: the record, its transitions' rules, and the messages about it.

use jiff::Timestamp;

use super::args::format_duration;
use super::escalation::{IncidentClock, Policy, Severity};
use super::ids::{ChannelId, UserId};
use super::roster::{ESCALATION_PATH, Role, Roster};
use super::view::{Block, Button, ButtonStyle, Message, escape, plain};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentState {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Acknowledged, Self::Resolved]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// What opening an incident needs.
#[derive(Debug, Clone)]
pub struct NewIncident {
    pub severity: Severity,
    pub title: String,
    /// The runbook entry it follows, e.g. `api-service-down`.
    pub entry: Option<String>,
    /// Alertmanager's group key, for deduplication.
    pub group_key: Option<String>,
    /// A Slack user id, or `alertmanager`.
    pub opened_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: String,
    pub number: i64,
    pub state: IncidentState,
    pub severity: Severity,
    pub title: String,
    pub entry: Option<String>,
    pub group_key: Option<String>,
    pub opened_by: String,
    pub opened_at: Timestamp,
    pub channel: Option<ChannelId>,
    pub thread_ts: Option<String>,
    pub owner: Option<String>,
    pub acked_at: Option<Timestamp>,
    pub acked_by: Option<String>,
    pub resolved_at: Option<Timestamp>,
    pub resolved_by: Option<String>,
    pub step: usize,
    pub step_at: Timestamp,
    pub last_status_at: Option<Timestamp>,
    pub last_human_update_at: Option<Timestamp>,
    /// The storm it belongs to: a member's storm incident, or its own id for a storm.
    pub storm: Option<String>,
    /// When a storm member got its own thread (on demand or acknowledged).
    pub detached_at: Option<Timestamp>,
}

impl Incident {
    /// A storm incident: its root is the storm's summary.
    pub fn is_storm(&self) -> bool {
        self.storm.as_deref() == Some(self.id.as_str())
    }

    /// A storm member without its own thread: the storm speaks and pages for it, so
    /// nothing is posted about it alone.
    pub fn held_by_storm(&self) -> bool {
        self.storm.is_some() && !self.is_storm() && self.detached_at.is_none()
    }

    /// The short name people use: `INC-7`.
    pub fn name(&self) -> String {
        format!("INC-{}", self.number)
    }

    pub fn clock(&self) -> IncidentClock {
        IncidentClock {
            severity: self.severity,
            opened_at: self.opened_at,
            acked_at: self.acked_at,
            resolved_at: self.resolved_at,
            step: self.step,
            step_at: self.step_at,
        }
    }

    /// Who holds it on the escalation path now.
    pub fn holder(&self) -> Role {
        ESCALATION_PATH[self.step.min(ESCALATION_PATH.len() - 1)]
    }
}

/// One thing that happened to an incident.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    pub at: Timestamp,
    /// `opened`, `alert`, `ping`, `escalated`, `acknowledged`, `update`, `status`,
    /// `action`, `resolved`.
    pub kind: String,
    pub actor: String,
    pub text: String,
}

pub use super::args::parse_incident_number as parse_number;

pub fn severity_mark(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "🔴",
        Severity::High => "🟠",
        Severity::Medium => "🟡",
        Severity::Low => "🔵",
    }
}

/// A mention when `user` is a Slack user id, else the name escaped (`alertmanager`): a
/// prefix alone would let `U1> <!channel` through as a control.
fn who(user: &str) -> String {
    match user.parse::<UserId>() {
        Ok(id) => format!("<@{id}>"),
        Err(_) => escape(user),
    }
}

/// Age as people say it: `4m`, `2h5m`.
pub fn age(from: Timestamp, now: Timestamp) -> String {
    let secs = (now.as_second() - from.as_second()).max(0) as u64;
    super::args::format_duration(std::time::Duration::from_secs(secs))
}

/// Action ids of the incident buttons: `incident:<verb>:<id>`.
pub fn button_id(verb: &str, incident: &Incident) -> String {
    format!("incident:{verb}:{}", incident.id)
}

/// The root message of an incident's thread.
pub fn root_message(i: &Incident, policy: &Policy, now: Timestamp) -> Message {
    let title = format!(
        "{} {} {} — {}",
        severity_mark(i.severity),
        i.name(),
        i.severity.name().to_uppercase(),
        i.title
    );
    let owner = i
        .owner
        .as_deref()
        .map_or_else(|| "unassigned".to_owned(), who);
    let mut fields = vec![
        ("Severity".to_owned(), i.severity.name().to_owned()),
        ("State".to_owned(), i.state.name().to_owned()),
        ("Owner".to_owned(), owner),
        (
            "Runbook".to_owned(),
            i.entry.as_deref().map_or_else(|| "none".to_owned(), escape),
        ),
        (
            "Opened".to_owned(),
            format!("{} ago by {}", age(i.opened_at, now), who(&i.opened_by)),
        ),
    ];
    if let (Some(at), Some(by)) = (i.acked_at, &i.acked_by) {
        fields.push((
            "Acknowledged".to_owned(),
            format!("by {} after {}", who(by), age(i.opened_at, at)),
        ));
    }
    if let (Some(at), Some(by)) = (i.resolved_at, &i.resolved_by) {
        fields.push((
            "Resolved".to_owned(),
            format!("by {} after {}", who(by), age(i.opened_at, at)),
        ));
    }
    let mut blocks = vec![Block::Header(plain(&title)), Block::Fields(fields)];
    if i.state != IncidentState::Resolved {
        blocks.push(Block::Actions(incident_buttons(i)));
        blocks.push(Block::Context(format!(
            "Updates: `/odor update {} &lt;text&gt;` · status every {} in this thread",
            i.name(),
            format_duration(policy.status_every)
        )));
    }
    Message {
        text: escape(&title),
        blocks,
    }
}

/// The buttons of an unresolved incident's root message.
pub fn incident_buttons(i: &Incident) -> Vec<Button> {
    let mut buttons = Vec::new();
    if i.acked_at.is_none() {
        buttons.push(Button::new(
            "Acknowledge",
            button_id("ack", i),
            ButtonStyle::Primary,
        ));
    }
    buttons.push(Button::new(
        "Escalate",
        button_id("escalate", i),
        ButtonStyle::Default,
    ));
    buttons.push(Button::new(
        "Post update",
        button_id("update", i),
        ButtonStyle::Default,
    ));
    buttons.push(Button::new(
        "Resolve",
        button_id("resolve", i),
        ButtonStyle::Danger,
    ));
    buttons
}

/// How many incidents `/odor incidents` lists; the rest are counted.
pub const LISTED: usize = 50;

/// `/odor incidents`: the unresolved incidents, storm members marked with their storm.
pub fn incident_list(open: &[Incident], now: Timestamp) -> String {
    if open.is_empty() {
        return "No incident is open.".to_owned();
    }
    let numbers: std::collections::BTreeMap<&str, i64> =
        open.iter().map(|i| (i.id.as_str(), i.number)).collect();
    let mut lines = vec![format!("*{} open incidents*", open.len())];
    lines.extend(open.iter().take(LISTED).map(|i| {
        let place = if i.is_storm() {
            " — *alert storm*".to_owned()
        } else if i.held_by_storm() {
            let storm = i.storm.as_deref().and_then(|s| numbers.get(s));
            storm.map_or_else(
                || " · in a storm".to_owned(),
                |n| format!(" · in storm INC-{n}"),
            )
        } else {
            String::new()
        };
        format!(
            "• {} {} {} {}, {} old — {}{place}",
            severity_mark(i.severity),
            i.name(),
            i.severity.name(),
            i.state.name(),
            age(i.opened_at, now),
            escape(&i.title)
        )
    }));
    if open.len() > LISTED {
        lines.push(format!("… and {} more", open.len() - LISTED));
    }
    lines.join("\n")
}

/// The ping when an incident opens: a page for critical, a mention otherwise.
pub fn opening_ping(i: &Incident, roster: &Roster, policy: &Policy, page: bool) -> Message {
    let whom = roster.mention(Role::Primary);
    let text = if page {
        format!(
            "🚨 *Page:* {whom} — {} is critical. Acknowledge within {} or it escalates.",
            i.name(),
            format_duration(policy.rule(i.severity).ack_within)
        )
    } else {
        format!(
            "{whom} — {} ({}) needs an owner.",
            i.name(),
            i.severity.name()
        )
    };
    Message::text(text)
}

/// The ping when the roster moves on.
pub fn escalation_ping(i: &Incident, to: Role, roster: &Roster, reason: &str) -> Message {
    Message::text(format!(
        "⏫ *Escalated to {}* {}: {} is {reason}.",
        to.title(),
        roster.mention(to),
        i.name()
    ))
}

/// The periodic status update in the thread.
pub struct StatusUpdate<'a> {
    pub incident: &'a Incident,
    pub now: Timestamp,
    /// Live signals, already rendered as verdict lines.
    pub signals: Vec<String>,
    /// What happened since the previous update.
    pub since_last: Vec<TimelineEntry>,
    /// Mention of the incident commander, when nobody posted an update in the period.
    pub nudge: Option<String>,
}

impl StatusUpdate<'_> {
    pub fn render(&self) -> Message {
        let i = self.incident;
        let owner = i
            .owner
            .as_deref()
            .map_or_else(|| "nobody yet".to_owned(), who);
        let acked = match (i.acked_at, &i.acked_by) {
            (Some(at), Some(by)) => {
                format!("acknowledged by {} after {}", who(by), age(i.opened_at, at))
            }
            _ => format!("*not acknowledged* — {} holds it", i.holder().title()),
        };
        let mut lines = vec![format!(
            "*Status of {}* — {} open, {}, {}; owner {owner}; {acked}.",
            i.name(),
            age(i.opened_at, self.now),
            i.severity.name(),
            i.state.name()
        )];
        if !self.signals.is_empty() {
            lines.push("*Live signals*".into());
            lines.extend(self.signals.iter().cloned());
        }
        let actions: Vec<&TimelineEntry> = self
            .since_last
            .iter()
            .filter(|e| e.kind != "status")
            .collect();
        if actions.is_empty() {
            lines.push("*Since the last update:* nothing recorded.".into());
        } else {
            lines.push("*Since the last update*".into());
            lines.extend(
                actions
                    .iter()
                    .map(|e| format!("• {} {} — {}", e.kind, who(&e.actor), escape(&e.text))),
            );
        }
        if let Some(ic) = &self.nudge {
            lines.push(format!("👋 {ic}: no human update in this period — please post one with `/odor update {} &lt;text&gt;`.", i.name()));
        }
        Message::text(lines.join("\n"))
    }
}

/// The timeline as Markdown, for export and for the closing post.
pub fn timeline_markdown(i: &Incident, entries: &[TimelineEntry]) -> String {
    let mut out = format!("# {} — {} ({})\n\n", i.name(), i.title, i.severity.name());
    for e in entries {
        out.push_str(&format!(
            "- {} **{}** {}: {}\n",
            e.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            e.kind,
            e.actor,
            e.text.replace('\n', " ")
        ));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn incident() -> Incident {
        let t: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();
        Incident {
            id: "i1".into(),
            number: 7,
            state: IncidentState::Open,
            severity: Severity::Critical,
            title: "API <down>".into(),
            entry: Some("api-service-down".into()),
            group_key: None,
            opened_by: "alertmanager".into(),
            opened_at: t,
            channel: None,
            thread_ts: None,
            owner: None,
            acked_at: None,
            acked_by: None,
            resolved_at: None,
            resolved_by: None,
            step: 0,
            step_at: t,
            last_status_at: None,
            last_human_update_at: None,
            storm: None,
            detached_at: None,
        }
    }

    #[test]
    fn the_root_message_shows_state_and_buttons() {
        let i = incident();
        let now: Timestamp = "2026-11-27T10:04:00Z".parse().unwrap();
        let policy = Policy::runbook_example();
        let m = root_message(&i, &policy, now);
        assert_eq!(m.text, "🔴 INC-7 CRITICAL — API &lt;down&gt;");
        // The cadence and the deadline are the configured ones, not "every few minutes".
        assert!(format!("{:?}", m.blocks).contains("status every 15m in this thread"));
        let page = opening_ping(&i, &Roster::default(), &policy, true);
        assert!(
            page.text.contains("Acknowledge within 5m or it escalates"),
            "{}",
            page.text
        );
        let Block::Actions(buttons) = &m.blocks[2] else {
            panic!("{:?}", m.blocks)
        };
        let ids: Vec<&str> = buttons.iter().map(|b| b.action_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "incident:ack:i1",
                "incident:escalate:i1",
                "incident:update:i1",
                "incident:resolve:i1"
            ]
        );
        let mut resolved = incident();
        resolved.state = IncidentState::Resolved;
        assert!(
            !root_message(&resolved, &Policy::runbook_example(), now)
                .blocks
                .iter()
                .any(|b| matches!(b, Block::Actions(_)))
        );
    }

    #[test]
    fn the_list_marks_storms_and_their_members_and_is_bounded() {
        let now: Timestamp = "2026-11-27T10:04:00Z".parse().unwrap();
        assert_eq!(incident_list(&[], now), "No incident is open.");
        let mut storm = incident();
        storm.id = "s".into();
        storm.number = 8;
        storm.storm = Some("s".into());
        let mut held = incident();
        held.id = "m".into();
        held.number = 9;
        held.storm = Some("s".into());
        let mut own = held.clone();
        own.number = 10;
        own.detached_at = Some(now);
        let text = incident_list(&[incident(), storm, held, own], now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "*4 open incidents*");
        assert!(lines[1].ends_with("— API &lt;down&gt;"), "{}", lines[1]);
        assert!(
            lines[1].contains("INC-7 critical open, 4m old"),
            "{}",
            lines[1]
        );
        assert!(lines[2].ends_with("*alert storm*"), "{}", lines[2]);
        assert!(lines[3].ends_with("in storm INC-8"), "{}", lines[3]);
        assert!(!lines[4].contains("storm"), "{}", lines[4]);
        let many: Vec<Incident> = (1..=LISTED as i64 + 3)
            .map(|n| Incident {
                number: n,
                ..incident()
            })
            .collect();
        let text = incident_list(&many, now);
        assert_eq!(text.lines().count(), LISTED + 2);
        assert!(text.ends_with("… and 3 more"));
    }

    #[test]
    fn numbers_parse_in_every_spelling() {
        assert_eq!(parse_number("INC-7"), Some(7));
        assert_eq!(parse_number("inc-12"), Some(12));
        assert_eq!(parse_number("3"), Some(3));
        assert_eq!(parse_number("INC-0"), None);
        assert_eq!(parse_number("x"), None);
    }
}
