//! Who may use which command, and where. Every command falls in one [`Scope`] (changes are
//! governed by the approval policy instead); each scope is open to a list of [`Grantee`]s;
//! the check is a pure function of what the user is and where they asked.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::ids::ChannelId;

/// What a command reveals or does, which decides who may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The service's state: health, status, pods, events, endpoints, history, help,
    /// contacts, on-call.
    Read,
    /// What can hold secrets or personal data: log lines, SQL text, cache keys,
    /// configuration values, the investigation steps, access review, the audit export.
    Sensitive,
    /// Incident work that pages or silences people: open, acknowledge, escalate, update.
    Respond,
    /// Resolving an incident, which stops its escalation.
    Resolve,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Self::Read, Self::Sensitive, Self::Respond, Self::Resolve];

    /// The configuration key under `access.scopes`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Sensitive => "sensitive",
            Self::Respond => "respond",
            Self::Resolve => "resolve",
        }
    }

    /// Why the scope is guarded, for a refusal.
    fn why(self) -> &'static str {
        match self {
            Self::Read => "reads the service's state",
            Self::Sensitive => {
                "shows what can hold secrets or personal data (logs, SQL, cache keys, configuration, the audit log)"
            }
            Self::Respond => "pages or silences the on-call",
            Self::Resolve => "resolves an incident and stops its escalation",
        }
    }

    /// The defaults a security reviewer signs: reads for everyone in the configured
    /// channels, sensitive reads for operators, incident work for the roster and operators,
    /// resolving for the incident commander, the on-call and approvers.
    pub fn default_grantees(self) -> &'static [Grantee] {
        match self {
            Self::Read => &[Grantee::Anyone],
            Self::Sensitive => &[Grantee::Operator],
            Self::Respond => &[Grantee::Roster, Grantee::Operator],
            Self::Resolve => &[
                Grantee::IncidentCommander,
                Grantee::OnCall,
                Grantee::Approver,
            ],
        }
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|g| g.key() == s).ok_or_else(|| {
            format!(
                "{s:?} is not a scope; one of {}",
                Self::ALL.map(Self::key).join(", ")
            )
        })
    }
}

/// Someone a scope can be open to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grantee {
    /// Every member of the workspace (in the configured channels).
    Anyone,
    /// `approvals.roles.operator`.
    Operator,
    /// `approvals.roles.approver`.
    Approver,
    /// `approvals.roles.viewer`.
    Viewer,
    /// `approvals.roles.incident_commander` or the roster's incident commander.
    IncidentCommander,
    /// The roster's primary and secondary on-call.
    OnCall,
    /// Anyone in `incidents.roster`, whatever their role.
    Roster,
}

impl Grantee {
    pub const ALL: [Grantee; 7] = [
        Self::Anyone,
        Self::Operator,
        Self::Approver,
        Self::Viewer,
        Self::IncidentCommander,
        Self::OnCall,
        Self::Roster,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Anyone => "anyone",
            Self::Operator => "operator",
            Self::Approver => "approver",
            Self::Viewer => "viewer",
            Self::IncidentCommander => "incident_commander",
            Self::OnCall => "oncall",
            Self::Roster => "roster",
        }
    }
}

impl fmt::Display for Grantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Grantee {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|g| g.key() == s).ok_or_else(|| {
            format!(
                "{s:?} is not a role; one of {}",
                Self::ALL.map(Self::key).join(", ")
            )
        })
    }
}

/// Who may use each scope, and the channels commands are taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub scopes: BTreeMap<Scope, Vec<Grantee>>,
    /// Channels odorbot takes commands and clicks from; empty means any.
    pub channels: Vec<ChannelId>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            scopes: Scope::ALL
                .into_iter()
                .map(|s| (s, s.default_grantees().to_vec()))
                .collect(),
            channels: Vec::new(),
        }
    }
}

impl Policy {
    /// Who may use `scope`.
    pub fn grantees(&self, scope: Scope) -> &[Grantee] {
        self.scopes
            .get(&scope)
            .map_or(scope.default_grantees(), Vec::as_slice)
    }
}

/// Why a command is refused; each names what would allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Asked outside the channels odorbot takes commands from.
    Channel { allowed: Vec<ChannelId> },
    /// The user holds none of the roles the scope is open to.
    Role { scope: Scope, needs: Vec<Grantee> },
}

impl Denial {
    /// The reply, naming the role or channel needed.
    pub fn reply(&self, verb: &str) -> String {
        match self {
            Self::Channel { allowed } => format!(
                ":no_entry: `{verb}` is not taken in this channel; use {}. Nothing was done.",
                allowed
                    .iter()
                    .map(|c| format!("<#{c}>"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Role { scope, needs } => format!(
                ":no_entry: `{verb}` {}, so it needs one of these roles: {}. Nothing was done.",
                scope.why(),
                needs
                    .iter()
                    .map(|g| format!("`{g}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// A short line for the audit log.
    pub fn audit_line(&self) -> String {
        match self {
            Self::Channel { .. } => "outside the allowed channels".into(),
            Self::Role { scope, needs } => format!(
                "scope {} needs one of {}",
                scope.key(),
                needs.iter().map(|g| g.key()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Whether a user may use `scope` from `channel`. `holds` answers, for each grantee the
/// scope is open to, whether the user is one (`Anyone` always holds).
///
/// # Errors
/// The [`Denial`] naming the channel or the roles needed.
pub fn check(
    policy: &Policy,
    scope: Scope,
    channel: Option<&ChannelId>,
    holds: impl Fn(Grantee) -> bool,
) -> Result<(), Denial> {
    if !policy.channels.is_empty() && !channel.is_some_and(|c| policy.channels.contains(c)) {
        return Err(Denial::Channel {
            allowed: policy.channels.clone(),
        });
    }
    let needs = policy.grantees(scope);
    if needs.iter().any(|g| *g == Grantee::Anyone || holds(*g)) {
        return Ok(());
    }
    Err(Denial::Role {
        scope,
        needs: needs.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(s: &str) -> ChannelId {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_open_reads_to_anyone_and_guard_the_rest() {
        let p = Policy::default();
        let nobody = |_: Grantee| false;
        assert_eq!(check(&p, Scope::Read, None, nobody), Ok(()));
        for scope in [Scope::Sensitive, Scope::Respond, Scope::Resolve] {
            let denied = check(&p, scope, None, nobody).unwrap_err();
            assert_eq!(
                denied,
                Denial::Role {
                    scope,
                    needs: scope.default_grantees().to_vec()
                }
            );
        }
        let operator = |g: Grantee| g == Grantee::Operator;
        assert_eq!(check(&p, Scope::Sensitive, None, operator), Ok(()));
        assert_eq!(check(&p, Scope::Respond, None, operator), Ok(()));
        // An operator is not thereby someone who may resolve.
        assert!(check(&p, Scope::Resolve, None, operator).is_err());
        let on_call = |g: Grantee| matches!(g, Grantee::OnCall | Grantee::Roster);
        assert_eq!(check(&p, Scope::Resolve, None, on_call), Ok(()));
        assert!(check(&p, Scope::Sensitive, None, on_call).is_err());
    }

    #[test]
    fn channels_bound_every_scope_and_the_refusal_names_them() {
        let p = Policy {
            channels: vec![channel("C0OPS")],
            ..Policy::default()
        };
        let everyone = |_: Grantee| true;
        assert_eq!(
            check(&p, Scope::Read, Some(&channel("C0OPS")), everyone),
            Ok(())
        );
        let denied = check(&p, Scope::Read, Some(&channel("C0RANDOM")), everyone).unwrap_err();
        assert!(denied.reply("status").contains("<#C0OPS>"));
        // A click without a channel is not taken either when channels are set.
        assert!(check(&p, Scope::Read, None, everyone).is_err());
    }

    #[test]
    fn a_refusal_names_the_roles_needed() {
        let denied = check(&Policy::default(), Scope::Sensitive, None, |_| false).unwrap_err();
        let reply = denied.reply("logs");
        assert!(reply.contains("`logs`"), "{reply}");
        assert!(reply.contains("`operator`"), "{reply}");
        assert!(reply.contains("Nothing was done"), "{reply}");
        assert_eq!(denied.audit_line(), "scope sensitive needs one of operator");
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for g in Grantee::ALL {
            assert_eq!(g.key().parse::<Grantee>(), Ok(g));
        }
        for s in Scope::ALL {
            assert_eq!(s.key().parse::<Scope>(), Ok(s));
        }
        assert!(
            "operators"
                .parse::<Grantee>()
                .unwrap_err()
                .contains("operator")
        );
        assert!("reads".parse::<Scope>().is_err());
    }
}
