//! Who someone is: the roles the configuration gives to Slack users and user groups
//! (`approvals.roles`) and the on-call roster (`incidents.roster`). Group membership is
//! read from Slack and cached; membership that cannot be read grants nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::domain::access::Grantee;
use crate::domain::roster::{Role, Roster, Target};
use crate::slack::api::SlackApi;

pub struct People {
    api: Arc<SlackApi>,
    roles: BTreeMap<String, Vec<Target>>,
    roster: Roster,
    group_cache_ttl: Duration,
    /// User-group members, cached: `group → (fetched, members)`.
    groups: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

impl People {
    pub fn new(
        api: Arc<SlackApi>,
        roles: BTreeMap<String, Vec<Target>>,
        roster: Roster,
        group_cache_ttl: Duration,
    ) -> Self {
        Self {
            api,
            roles,
            roster,
            group_cache_ttl,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `user` holds one of the approval `roles`, directly or through a user group.
    /// Mentions of the roster's people for a role (a note when nobody is configured).
    pub fn mention(&self, role: Role) -> String {
        self.roster.mention(role)
    }

    pub async fn has_role(&self, user: &str, roles: &[String]) -> bool {
        for role in roles {
            let targets = self.roles.get(role).map_or(&[][..], Vec::as_slice);
            if self.among(user, targets).await {
                return true;
            }
        }
        false
    }

    /// The grantees among `wanted` that `user` is.
    pub async fn which(&self, user: &str, wanted: &[Grantee]) -> BTreeSet<Grantee> {
        let mut held = BTreeSet::new();
        for g in wanted {
            if self.is(user, *g).await {
                held.insert(*g);
            }
        }
        held
    }

    async fn is(&self, user: &str, grantee: Grantee) -> bool {
        let role = |key: &str| vec![key.to_owned()];
        match grantee {
            Grantee::Anyone => true,
            Grantee::Operator | Grantee::Approver | Grantee::Viewer => {
                self.has_role(user, &role(grantee.key())).await
            }
            Grantee::IncidentCommander => {
                self.has_role(user, &role(grantee.key())).await
                    || self
                        .among(user, self.roster.targets(Role::IncidentCommander))
                        .await
            }
            Grantee::OnCall => {
                self.in_roster(user, &[Role::Primary, Role::Secondary])
                    .await
            }
            Grantee::Roster => self.in_roster(user, &Role::ALL).await,
        }
    }

    async fn in_roster(&self, user: &str, roles: &[Role]) -> bool {
        for r in roles {
            if self.among(user, self.roster.targets(*r)).await {
                return true;
            }
        }
        false
    }

    async fn among(&self, user: &str, targets: &[Target]) -> bool {
        for target in targets {
            match target {
                Target::User(u) if u.as_str() == user => return true,
                Target::User(_) => {}
                Target::Group(g) => {
                    if self
                        .group_members(g.as_str())
                        .await
                        .iter()
                        .any(|m| m == user)
                    {
                        return true;
                    }
                }
            }
        }
        false
    }

    async fn group_members(&self, group: &str) -> Vec<String> {
        let cached = |this: &Self| {
            this.groups
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(group)
                .filter(|(at, _)| at.elapsed() < this.group_cache_ttl)
                .map(|(_, members)| members.clone())
        };
        if let Some(members) = cached(self) {
            return members;
        }
        match self.api.usergroup_members(group).await {
            Ok(members) => {
                self.groups
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(group.to_owned(), (Instant::now(), members.clone()));
                members
            }
            Err(e) => {
                // Unknown membership grants nothing.
                warn!(group, error = %e, "user group members not readable");
                Vec::new()
            }
        }
    }
}
