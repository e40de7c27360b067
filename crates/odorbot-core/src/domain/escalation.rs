//! The runbook's escalation matrix and status cadence as pure functions of an incident's
//! clock and `now`: what is due next, and when. The scheduler stores the due times.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;

use super::calendar::Calendar;
use super::timer::plus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Self::Critical, Self::High, Self::Medium, Self::Low];

    pub fn name(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| "is not a severity; one of critical, high, medium, low".to_owned())
    }
}

/// When an unresolved incident escalates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    After(Duration),
    BusinessDays(u32),
}

/// One row of the escalation matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeverityRule {
    /// Acknowledge within this, or the next person on the roster is paged.
    pub ack_within: Duration,
    /// Unresolved this long after the last page, the next person is paged.
    pub escalate_unresolved: Option<Deadline>,
    /// Page (not just mention) the first on-call person the moment it opens.
    pub page_at_once: bool,
}

/// The matrix, per severity, plus the status cadence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub critical: SeverityRule,
    pub high: SeverityRule,
    pub medium: SeverityRule,
    pub low: SeverityRule,
    /// A status update this often in the thread while the incident is open.
    pub status_every: Duration,
}

/// What configuration changes in the runbook's matrix: each value set replaces the
/// runbook's, everything unset keeps it. The runbook is the one default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOverrides {
    pub status_every: Option<Duration>,
    pub rules: Vec<(Severity, RuleOverride)>,
}

/// One severity's overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleOverride {
    pub ack_within: Option<Duration>,
    pub escalate_unresolved: Option<Deadline>,
}

impl Policy {
    /// The policy in force: this one (the runbook's) with the configured overrides.
    #[must_use]
    pub fn with(mut self, overrides: &PolicyOverrides) -> Self {
        if let Some(every) = overrides.status_every {
            self.status_every = every;
        }
        for (severity, o) in &overrides.rules {
            let rule = self.rule_mut(*severity);
            if let Some(ack) = o.ack_within {
                rule.ack_within = ack;
            }
            if let Some(deadline) = o.escalate_unresolved {
                rule.escalate_unresolved = Some(deadline);
            }
        }
        self
    }

    fn rule_mut(&mut self, severity: Severity) -> &mut SeverityRule {
        match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
        }
    }

    /// The shipped runbook's matrix, for tests of the rules that use a policy: critical
    /// 5 min and page at once; high 15 min, escalate after 30 min unresolved; medium 1 h
    /// and 2 h; low 4 h and one business day. At run time the policy comes from the
    /// catalog (`Catalog::escalation_policy`).
    #[cfg(test)]
    pub(crate) fn runbook_example() -> Self {
        let min = |m: u64| Duration::from_secs(m * 60);
        Self {
            critical: SeverityRule {
                ack_within: min(5),
                escalate_unresolved: None,
                page_at_once: true,
            },
            high: SeverityRule {
                ack_within: min(15),
                escalate_unresolved: Some(Deadline::After(min(30))),
                page_at_once: false,
            },
            medium: SeverityRule {
                ack_within: min(60),
                escalate_unresolved: Some(Deadline::After(min(120))),
                page_at_once: false,
            },
            low: SeverityRule {
                ack_within: min(240),
                escalate_unresolved: Some(Deadline::BusinessDays(1)),
                page_at_once: false,
            },
            status_every: min(15),
        }
    }
}

impl Policy {
    pub fn rule(&self, severity: Severity) -> &SeverityRule {
        match severity {
            Severity::Critical => &self.critical,
            Severity::High => &self.high,
            Severity::Medium => &self.medium,
            Severity::Low => &self.low,
        }
    }
}

/// What the escalation functions need to know about an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentClock {
    pub severity: Severity,
    pub opened_at: Timestamp,
    pub acked_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// Roster steps taken so far: 0 while the first person (primary) holds it.
    pub step: usize,
    /// When the current holder was paged.
    pub step_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    NotAcknowledged,
    NotResolved,
}

/// The next escalation: when, why, and to which roster step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    pub due: Timestamp,
    pub why: Why,
    pub to_step: usize,
}

/// The next roster step due for `clock`, if any: none once resolved or when the roster
/// (`roster_len` steps) is exhausted. An unacknowledged incident moves on every
/// `ack_within`; an acknowledged but unresolved one per `escalate_unresolved`.
pub fn next_escalation(
    clock: &IncidentClock,
    policy: &Policy,
    calendar: &Calendar,
    roster_len: usize,
) -> Option<Escalation> {
    if clock.resolved_at.is_some() || clock.step + 1 >= roster_len {
        return None;
    }
    let rule = policy.rule(clock.severity);
    let unacked = clock
        .acked_at
        .is_none()
        .then(|| (plus(clock.step_at, rule.ack_within), Why::NotAcknowledged));
    let unresolved = rule.escalate_unresolved.map(|deadline| {
        let due = match deadline {
            Deadline::After(d) => plus(clock.step_at, d),
            Deadline::BusinessDays(n) => calendar.add_business_days(clock.step_at, n),
        };
        (due, Why::NotResolved)
    });
    [unacked, unresolved]
        .into_iter()
        .flatten()
        .min_by_key(|(due, _)| *due)
        .map(|(due, why)| Escalation {
            due,
            why,
            to_step: clock.step + 1,
        })
}

/// When the next status update is due: every `status_every` after the last one (or
/// after opening), while open.
pub fn next_status_update(
    clock: &IncidentClock,
    last_update: Option<Timestamp>,
    policy: &Policy,
) -> Option<Timestamp> {
    if clock.resolved_at.is_some() {
        return None;
    }
    Some(plus(
        last_update.unwrap_or(clock.opened_at),
        policy.status_every,
    ))
}

/// Whether a status update should nudge the incident commander: no human update was
/// posted since the previous status update (or since opening).
pub fn needs_nudge(last_human_update: Option<Timestamp>, period_start: Timestamp) -> bool {
    last_human_update.is_none_or(|t| t < period_start)
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    use super::*;

    const ROSTER: usize = 3; // primary → secondary → platform lead

    fn calendar() -> Calendar {
        Calendar::new(
            TimeZone::get("Europe/London").unwrap(),
            vec![date(2026, 12, 25)],
        )
    }

    fn t(h: i8, m: i8) -> Timestamp {
        // Tuesday 1 December 2026, London (GMT).
        date(2026, 12, 1)
            .at(h, m, 0, 0)
            .to_zoned(TimeZone::get("Europe/London").unwrap())
            .unwrap()
            .timestamp()
    }

    fn clock(severity: Severity) -> IncidentClock {
        IncidentClock {
            severity,
            opened_at: t(10, 0),
            acked_at: None,
            resolved_at: None,
            step: 0,
            step_at: t(10, 0),
        }
    }

    fn next(c: &IncidentClock) -> Option<Escalation> {
        next_escalation(c, &Policy::runbook_example(), &calendar(), ROSTER)
    }

    #[test]
    fn critical_walks_the_roster_every_five_minutes_until_acknowledged() {
        let mut c = clock(Severity::Critical);
        assert!(Policy::runbook_example().critical.page_at_once);
        assert_eq!(
            next(&c),
            Some(Escalation {
                due: t(10, 5),
                why: Why::NotAcknowledged,
                to_step: 1
            })
        );
        c.step = 1;
        c.step_at = t(10, 5);
        assert_eq!(
            next(&c),
            Some(Escalation {
                due: t(10, 10),
                why: Why::NotAcknowledged,
                to_step: 2
            })
        );
        c.step = 2;
        assert_eq!(next(&c), None, "the platform lead is the end of the roster");
        let mut acked = clock(Severity::Critical);
        acked.acked_at = Some(t(10, 2));
        assert_eq!(
            next(&acked),
            None,
            "acknowledgement stops a critical's escalation"
        );
    }

    #[test]
    fn high_escalates_at_fifteen_unacknowledged_and_thirty_unresolved() {
        let mut c = clock(Severity::High);
        assert_eq!(next(&c).unwrap().due, t(10, 15));
        c.acked_at = Some(t(10, 3));
        assert_eq!(
            next(&c),
            Some(Escalation {
                due: t(10, 30),
                why: Why::NotResolved,
                to_step: 1
            })
        );
        c.resolved_at = Some(t(10, 20));
        assert_eq!(next(&c), None);
    }

    #[test]
    fn medium_uses_one_and_two_hours() {
        let mut c = clock(Severity::Medium);
        assert_eq!(
            next(&c).unwrap(),
            Escalation {
                due: t(11, 0),
                why: Why::NotAcknowledged,
                to_step: 1
            }
        );
        c.acked_at = Some(t(10, 30));
        assert_eq!(
            next(&c).unwrap(),
            Escalation {
                due: t(12, 0),
                why: Why::NotResolved,
                to_step: 1
            }
        );
    }

    #[test]
    fn low_escalates_after_four_hours_or_one_business_day() {
        let mut c = clock(Severity::Low);
        assert_eq!(
            next(&c).unwrap(),
            Escalation {
                due: t(14, 0),
                why: Why::NotAcknowledged,
                to_step: 1
            }
        );
        c.acked_at = Some(t(10, 10));
        let tz = TimeZone::get("Europe/London").unwrap();
        let wednesday = date(2026, 12, 2)
            .at(10, 0, 0, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp();
        assert_eq!(
            next(&c).unwrap(),
            Escalation {
                due: wednesday,
                why: Why::NotResolved,
                to_step: 1
            }
        );
        // Opened on Christmas Eve (a Thursday) afternoon: Christmas is a holiday, then the
        // weekend, so the next business day is Monday the 28th.
        let eve = date(2026, 12, 24)
            .at(15, 0, 0, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp();
        c.opened_at = eve;
        c.step_at = eve;
        let monday = date(2026, 12, 28)
            .at(15, 0, 0, 0)
            .to_zoned(tz)
            .unwrap()
            .timestamp();
        assert_eq!(next(&c).unwrap().due, monday);
    }

    #[test]
    fn status_updates_follow_the_cadence_and_stop_when_resolved() {
        let mut c = clock(Severity::High);
        let p = Policy::runbook_example();
        assert_eq!(next_status_update(&c, None, &p), Some(t(10, 15)));
        assert_eq!(next_status_update(&c, Some(t(10, 15)), &p), Some(t(10, 30)));
        c.resolved_at = Some(t(10, 40));
        assert_eq!(next_status_update(&c, Some(t(10, 30)), &p), None);
    }

    #[test]
    fn a_human_update_in_the_period_clears_the_nudge() {
        assert!(needs_nudge(None, t(10, 0)));
        assert!(needs_nudge(Some(t(9, 59)), t(10, 0)));
        assert!(!needs_nudge(Some(t(10, 7)), t(10, 0)));
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = Policy::runbook_example();
        assert_eq!(base.clone().with(&PolicyOverrides::default()), base);
        let o = PolicyOverrides {
            status_every: Some(Duration::from_secs(300)),
            rules: vec![(
                Severity::High,
                RuleOverride {
                    ack_within: Some(Duration::from_secs(60)),
                    escalate_unresolved: None,
                },
            )],
        };
        let p = base.clone().with(&o);
        assert_eq!(p.status_every, Duration::from_secs(300));
        assert_eq!(p.high.ack_within, Duration::from_secs(60));
        assert_eq!(p.high.escalate_unresolved, base.high.escalate_unresolved);
        assert_eq!(
            (p.critical, p.medium, p.low),
            (base.critical, base.medium, base.low)
        );
    }

    #[test]
    fn severities_parse() {
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("sev1".parse::<Severity>().is_err());
    }
}
