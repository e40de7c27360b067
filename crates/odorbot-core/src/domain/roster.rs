//! Who is on call: the runbook's roles mapped to Slack users and user groups.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::ids::{IdError, UserGroupId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Primary,
    Secondary,
    PlatformLead,
    Security,
    Dba,
    Netops,
    IncidentCommander,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Self::Primary,
        Self::Secondary,
        Self::PlatformLead,
        Self::Security,
        Self::Dba,
        Self::Netops,
        Self::IncidentCommander,
    ];

    /// The configuration key.
    pub fn key(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
            Self::PlatformLead => "platform_lead",
            Self::Security => "security",
            Self::Dba => "dba",
            Self::Netops => "netops",
            Self::IncidentCommander => "incident_commander",
        }
    }

    /// The role a catalog contact names (`platform-lead` is `platform_lead`).
    pub fn from_catalog(id: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.key().replace('_', "-") == id)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Primary => "Primary on-call",
            Self::Secondary => "Secondary on-call",
            Self::PlatformLead => "Platform lead",
            Self::Security => "Security team",
            Self::Dba => "Database administrator",
            Self::Netops => "Network operations",
            Self::IncidentCommander => "Incident commander",
        }
    }
}

/// The order an unacknowledged or unresolved incident walks.
pub const ESCALATION_PATH: [Role; 3] = [Role::Primary, Role::Secondary, Role::PlatformLead];

/// A person or a group to mention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    User(UserId),
    Group(UserGroupId),
}

impl Target {
    /// The mrkdwn that notifies them.
    pub fn mention(&self) -> String {
        match self {
            Self::User(u) => format!("<@{u}>"),
            Self::Group(g) => format!("<!subteam^{g}>"),
        }
    }
}

impl FromStr for Target {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('S') {
            s.parse().map(Self::Group)
        } else {
            s.parse().map(Self::User)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(u) => write!(f, "{u}"),
            Self::Group(g) => write!(f, "{g}"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    pub roles: BTreeMap<Role, Vec<Target>>,
}

impl Roster {
    pub fn targets(&self, role: Role) -> &[Target] {
        self.roles.get(&role).map_or(&[], Vec::as_slice)
    }

    /// Mentions for a role, or a plain note when nobody is configured for it.
    pub fn mention(&self, role: Role) -> String {
        let targets = self.targets(role);
        if targets.is_empty() {
            format!("_{} (nobody configured)_", role.title())
        } else {
            targets
                .iter()
                .map(Target::mention)
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_roles_name_roster_roles() {
        assert_eq!(
            Role::from_catalog("platform-lead"),
            Some(Role::PlatformLead)
        );
        assert_eq!(Role::from_catalog("security"), Some(Role::Security));
        assert_eq!(Role::from_catalog("platform_lead"), None);
    }

    #[test]
    fn targets_mention_users_and_groups() {
        assert_eq!("U111".parse::<Target>().unwrap().mention(), "<@U111>");
        assert_eq!(
            "S0614TZR7".parse::<Target>().unwrap().mention(),
            "<!subteam^S0614TZR7>"
        );
        assert!("C111".parse::<Target>().is_err());
        let mut roster = Roster::default();
        roster.roles.insert(
            Role::Primary,
            vec!["U1".parse().unwrap(), "S2".parse().unwrap()],
        );
        assert_eq!(roster.mention(Role::Primary), "<@U1> <!subteam^S2>");
        assert_eq!(
            roster.mention(Role::Dba),
            "_Database administrator (nobody configured)_"
        );
    }
}
