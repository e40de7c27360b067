//! What a Helm rollback does to the release records, decided from their revisions and
//! statuses alone.
//!
//! odorbot rolls back *in place*: the target revision's record becomes `deployed` again and
//! the records deployed until then become `superseded`; no record is created. Creating one
//! would need `create` on Secrets, which RBAC cannot pin to a name, and with it odorbot's
//! token could mint a service-account token for any ServiceAccount. Helm copes with the
//! result: `helm upgrade` diffs against the deployed record (the target) and numbers its
//! revision after the newest record, and `helm history` shows the target as deployed with
//! odorbot's description.

use super::k8s::Change;

/// A record's status while the rollback applies the objects: Helm's own pending state,
/// which makes a concurrent `helm upgrade` stop rather than race it.
pub const PENDING: &str = "pending-rollback";

/// The record writes of one rollback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPlan {
    /// The revision whose manifest is applied.
    pub target: u64,
    /// The revision deployed before the rollback.
    pub from: u64,
    /// The newest record, held [`PENDING`] while the objects are applied (Helm checks the
    /// newest record for a running operation) and marked `failed` if they cannot be.
    pub lock: u64,
    /// Every record written after a successful apply, as (revision, status before, status
    /// after); the lock is among them even when its status ends where it began, and the
    /// target comes last, so a failure midway never leaves two records `deployed`.
    pub writes: Vec<(u64, String, String)>,
}

impl RecordPlan {
    /// Decides the rollback of a release whose records are `records` (revision and status,
    /// in any order) to `requested`, or by default to the newest revision below the
    /// deployed one.
    ///
    /// # Errors
    /// A sentence for the requester: no records, a Helm operation pending on the newest
    /// record, no revision before the deployed one, or an unknown target.
    pub fn decide(records: &[(u64, &str)], requested: Option<u64>) -> Result<Self, String> {
        let mut records = records.to_vec();
        records.sort_unstable_by_key(|r| r.0);
        let Some(&(lock, lock_status)) = records.last() else {
            return Err("the release has no revisions".into());
        };
        if lock_status.starts_with("pending") {
            return Err(format!(
                "revision {lock} is {lock_status}: a Helm operation is running or died \
                 midway; finish or roll it back with Helm first"
            ));
        }
        let from = records
            .iter()
            .rev()
            .find(|r| r.1 == "deployed")
            .map_or(lock, |r| r.0);
        let target = match requested {
            Some(t) => t,
            None => records
                .iter()
                .rev()
                .map(|r| r.0)
                .find(|&r| r < from)
                .ok_or_else(|| format!("there is no revision before revision {from}"))?,
        };
        if !records.iter().any(|r| r.0 == target) {
            let known: Vec<String> = records.iter().map(|r| r.0.to_string()).collect();
            return Err(format!(
                "there is no revision {target}; there are {}",
                known.join(", ")
            ));
        }
        let mut writes: Vec<(u64, String, String)> = records
            .iter()
            .filter(|&&(rev, status)| rev != target && (rev == lock || status == "deployed"))
            .map(|&(rev, status)| {
                let after = if status == "deployed" {
                    "superseded"
                } else {
                    status
                };
                (rev, status.to_owned(), after.to_owned())
            })
            .collect();
        let target_status = records.iter().find(|r| r.0 == target).map_or("", |r| r.1);
        writes.push((target, target_status.to_owned(), "deployed".to_owned()));
        Ok(Self {
            target,
            from,
            lock,
            writes,
        })
    }

    /// The description Helm shows for the target once it is deployed again.
    pub fn description(&self) -> String {
        format!("Rollback from revision {} by odorbot", self.from)
    }

    /// What the preview and the outcome list for the records: each status that changes,
    /// and the target's redeployment even when it was the deployed one.
    pub fn changes(&self, release: &str) -> Vec<Change> {
        let object = format!("HelmRelease/{release}");
        self.writes
            .iter()
            .filter(|(rev, before, after)| before != after || *rev == self.target)
            .map(|(rev, before, after)| {
                let after = if *rev == self.target {
                    format!("{after} ({})", self.description())
                } else {
                    after.clone()
                };
                Change::new(
                    object.clone(),
                    format!("revision {rev} status"),
                    Some(before.clone()),
                    Some(after),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(plan: &RecordPlan) -> Vec<(u64, &str, &str)> {
        plan.writes
            .iter()
            .map(|(r, b, a)| (*r, b.as_str(), a.as_str()))
            .collect()
    }

    #[test]
    fn the_default_target_is_the_revision_before_the_deployed_one() {
        let plan = RecordPlan::decide(&[(2, "deployed"), (1, "superseded")], None).expect("a plan");
        assert_eq!((plan.target, plan.from, plan.lock), (1, 2, 2));
        assert_eq!(
            writes(&plan),
            [(2, "deployed", "superseded"), (1, "superseded", "deployed")]
        );
        let lines: Vec<String> = plan
            .changes("odordiff-2")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "HelmRelease/odordiff-2 revision 2 status: deployed → superseded",
                "HelmRelease/odordiff-2 revision 1 status: superseded → deployed (Rollback from revision 2 by odorbot)",
            ]
        );
    }

    #[test]
    fn a_second_rollback_goes_one_further_back_and_forward_when_asked() {
        // After rolling 3 back to 2, revision 2 is deployed and 3 the newest record.
        let records = [(1, "superseded"), (2, "deployed"), (3, "superseded")];
        let plan = RecordPlan::decide(&records, None).expect("a plan");
        assert_eq!((plan.target, plan.from, plan.lock), (1, 2, 3));
        assert_eq!(
            writes(&plan),
            [
                (2, "deployed", "superseded"),
                (3, "superseded", "superseded"),
                (1, "superseded", "deployed"),
            ]
        );
        // The unchanged lock is written back but not listed.
        assert_eq!(plan.changes("r").len(), 2);
        let forward = RecordPlan::decide(&records, Some(3)).expect("a plan");
        assert_eq!(
            writes(&forward),
            [(2, "deployed", "superseded"), (3, "superseded", "deployed")]
        );
    }

    #[test]
    fn a_failed_upgrade_keeps_its_status_and_every_deployed_record_is_superseded() {
        let records = [
            (1, "deployed"),
            (2, "deployed"),
            (3, "failed"),
            (4, "failed"),
        ];
        let plan = RecordPlan::decide(&records, None).expect("a plan");
        assert_eq!((plan.target, plan.from, plan.lock), (1, 2, 4));
        assert_eq!(
            writes(&plan),
            [
                (2, "deployed", "superseded"),
                (4, "failed", "failed"),
                (1, "deployed", "deployed"),
            ]
        );
    }

    #[test]
    fn with_nothing_deployed_the_newest_record_is_where_it_rolls_from() {
        let plan = RecordPlan::decide(&[(1, "superseded"), (2, "failed")], None).expect("a plan");
        assert_eq!((plan.target, plan.from), (1, 2));
    }

    #[test]
    fn redeploying_the_deployed_revision_rewrites_only_it() {
        let plan =
            RecordPlan::decide(&[(1, "superseded"), (2, "deployed")], Some(2)).expect("a plan");
        assert_eq!(writes(&plan), [(2, "deployed", "deployed")]);
        assert_eq!(plan.changes("r").len(), 1, "the redeployment is listed");
    }

    #[test]
    fn refusals_say_why() {
        let err = |records: &[(u64, &str)], requested| {
            RecordPlan::decide(records, requested).expect_err("refused")
        };
        assert!(err(&[], None).contains("no revisions"));
        assert!(err(&[(1, "deployed")], None).contains("no revision before revision 1"));
        assert_eq!(
            err(&[(1, "superseded"), (2, "deployed")], Some(7)),
            "there is no revision 7; there are 1, 2"
        );
        let pending = err(&[(1, "deployed"), (2, "pending-upgrade")], None);
        assert!(
            pending.contains("revision 2 is pending-upgrade"),
            "{pending}"
        );
    }
}
