//! The two-person rule as a pure state machine: who may decide, and what each decision
//! does to a request. The requester can never approve their own request; nothing in the
//! configuration reaches this rule.

use jiff::Timestamp;
use thiserror::Error;

use super::view::{Block, Button, ButtonStyle, Message, escape};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    Approved,
    Executing,
    Succeeded,
    Failed,
    Denied,
    Cancelled,
    Expired,
    /// The process died while executing; odorbot never re-runs it by itself.
    Interrupted,
}

impl ApprovalState {
    pub const ALL: [ApprovalState; 9] = [
        Self::Pending,
        Self::Approved,
        Self::Executing,
        Self::Succeeded,
        Self::Failed,
        Self::Denied,
        Self::Cancelled,
        Self::Expired,
        Self::Interrupted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Executing => "executing",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Denied => "denied",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// A request for a destructive step, as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: String,
    pub state: ApprovalState,
    /// The verb, for policy and cooldowns (`rollback`, `scale`, …).
    pub verb: String,
    /// What asked for it, for people: the `/odor` text or the recovery button. Shown on the
    /// card and in the audit log; never parsed.
    pub command: String,
    /// The typed action the approvers approve, in `runbook::stored` form: what executes.
    pub action: String,
    pub requester: String,
    pub reason: String,
    /// The dry run's changes, one per line: what the approvers saw and approve.
    pub preview: String,
    /// The changed fields with their values before, to detect drift at execution.
    pub fingerprint: String,
    pub approvals: Vec<String>,
    pub required: usize,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub channel: String,
    pub message_ts: Option<String>,
    /// What happened when it ran, or why it was refused.
    pub outcome: Option<String>,
    /// After a change that succeeded: whether the service came back healthy.
    pub verification: Option<Verification>,
    /// While executing: until when the executor holds it. A lapsed lease means the
    /// executor died.
    pub lease_until: Option<Timestamp>,
    /// The last change of state (an approval, the start of execution, the outcome).
    pub updated_at: Timestamp,
}

/// What the verification after a change found: the rollout, the health checks and the
/// watch. A change can succeed and still leave the service unhealthy; the card says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub ok: bool,
    /// One line per finding, e.g. `rollout of odordiff-api did not complete within 5m`.
    pub findings: Vec<String>,
}

impl Verification {
    /// The stored form: `ok` or `failed` on the first line, then the findings.
    pub fn to_text(&self) -> String {
        let mut lines = vec![if self.ok { "ok" } else { "failed" }.to_owned()];
        lines.extend(self.findings.iter().cloned());
        lines.join("\n")
    }

    /// Reads [`Verification::to_text`] back; `None` for anything else.
    pub fn from_text(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let ok = match lines.next()? {
            "ok" => true,
            "failed" => false,
            _ => return None,
        };
        Some(Self {
            ok,
            findings: lines.map(str::to_owned).collect(),
        })
    }
}

/// One look at a deployment during the watch after a change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchReading {
    /// Pods not Running and Ready (or why the pods could not be read).
    pub unhealthy: Vec<String>,
    pub health_failing: bool,
}

impl WatchReading {
    pub fn is_healthy(&self) -> bool {
        self.unhealthy.is_empty() && !self.health_failing
    }

    /// The state that matters to people: how many pods are unhealthy, and health.
    fn state(&self) -> (usize, bool) {
        (self.unhealthy.len(), self.health_failing)
    }
}

/// What the watch posts after a reading: the first problem, each change of state (more or
/// fewer unhealthy pods, health failing or passing), and the recovery; nothing while the
/// state holds, so a problem is not repeated at every check.
pub fn watch_post(previous: Option<&WatchReading>, now: &WatchReading) -> Option<String> {
    let before = previous.map_or((0, false), WatchReading::state);
    if before == now.state() {
        return None;
    }
    if now.is_healthy() {
        return Some("✅ Watch: pods Running and Ready, health checks passing again.".into());
    }
    let mut parts = Vec::new();
    if !now.unhealthy.is_empty() {
        parts.push(format!(
            "not Running and Ready: {}",
            now.unhealthy.join(", ")
        ));
    }
    if now.health_failing {
        parts.push("health checks failing".into());
    }
    Some(format!("⚠️ Watch: {}", parts.join("; ")))
}

/// Someone's decision on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `is_approver`: the user holds the approver role for this verb.
    Approve {
        user: String,
        is_approver: bool,
    },
    Deny {
        user: String,
        is_approver: bool,
    },
    Cancel {
        user: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApprovalError {
    #[error("you asked for this, so you cannot approve it: a second person must")]
    SelfApproval,
    #[error("only an approver for `{0}` can decide on this request")]
    NotApprover(String),
    #[error("only the requester (or an approver) can cancel it")]
    NotRequester,
    /// Decided already: what became of it, so a late clicker learns whether it ran.
    #[error("this request can no longer be decided: {0}")]
    Closed(String),
    #[error("this request expired; ask again")]
    Expired,
    #[error("you already approved this request")]
    AlreadyApproved,
}

/// The state a decision leads to, with the approvals after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: ApprovalState,
    pub approvals: Vec<String>,
}

/// How long a verb must still wait after its last execution, or `None` when it may run at
/// `now`. Checked when a request is made and again just before it executes, so two
/// requests approved inside one cooldown do not both run.
pub fn cooldown_left(
    cooldown: std::time::Duration,
    last_execution: Option<Timestamp>,
    now: Timestamp,
) -> Option<std::time::Duration> {
    let last = last_execution?;
    let since = now.duration_since(last);
    let cooldown = jiff::SignedDuration::try_from(cooldown).ok()?;
    let left = cooldown.checked_sub(since)?;
    (left.is_positive())
        .then(|| std::time::Duration::try_from(left).ok())
        .flatten()
}

/// What became of a request that is no longer pending, in a sentence: who approved it
/// and when, and whether it ran.
pub fn what_became_of(r: &Request) -> String {
    let approved = || {
        let who: Vec<String> = r.approvals.iter().map(|u| format!("<@{u}>")).collect();
        format!(
            "approved by {} ({} UTC)",
            if who.is_empty() {
                "nobody".to_owned()
            } else {
                who.join(", ")
            },
            r.updated_at.strftime("%H:%M")
        )
    };
    match r.state {
        ApprovalState::Pending => "it is waiting for approval".into(),
        ApprovalState::Approved => format!("it was {} and is about to run", approved()),
        ApprovalState::Executing => format!("it was {} and is running now", approved()),
        ApprovalState::Succeeded => {
            format!("it was {} and has already run: it succeeded", approved())
        }
        ApprovalState::Failed => format!("it was {} and has already run: it failed", approved()),
        ApprovalState::Interrupted => format!(
            "it was {} and was interrupted: it is not re-run by itself",
            approved()
        ),
        ApprovalState::Denied => "it was denied".into(),
        ApprovalState::Cancelled => "it was cancelled".into(),
        ApprovalState::Expired => "it expired without enough approvals; ask again".into(),
    }
}

/// Applies `decision` to `request` at `now`.
///
/// # Errors
/// [`ApprovalError`] when the decision is not allowed; the request is then unchanged.
pub fn decide(
    request: &Request,
    decision: &Decision,
    now: Timestamp,
) -> Result<Transition, ApprovalError> {
    if request.state != ApprovalState::Pending {
        return Err(ApprovalError::Closed(what_became_of(request)));
    }
    if now >= request.expires_at {
        return Err(ApprovalError::Expired);
    }
    match decision {
        Decision::Approve { user, is_approver } => {
            // First, and unconditionally: no role, setting or count lets a requester
            // approve their own request.
            if *user == request.requester {
                return Err(ApprovalError::SelfApproval);
            }
            if !is_approver {
                return Err(ApprovalError::NotApprover(request.verb.clone()));
            }
            if request.approvals.contains(user) {
                return Err(ApprovalError::AlreadyApproved);
            }
            let mut approvals = request.approvals.clone();
            approvals.push(user.clone());
            let to = if approvals.len() >= request.required.max(1) {
                ApprovalState::Approved
            } else {
                ApprovalState::Pending
            };
            Ok(Transition { to, approvals })
        }
        Decision::Deny { user, is_approver } => {
            if !is_approver && *user != request.requester {
                return Err(ApprovalError::NotApprover(request.verb.clone()));
            }
            Ok(Transition {
                to: ApprovalState::Denied,
                approvals: request.approvals.clone(),
            })
        }
        Decision::Cancel { user } => {
            if *user != request.requester {
                return Err(ApprovalError::NotRequester);
            }
            Ok(Transition {
                to: ApprovalState::Cancelled,
                approvals: request.approvals.clone(),
            })
        }
    }
}

/// What the periodic sweep does to a request nobody is deciding on or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Its executor's lease lapsed: the process died mid-way. It ends `interrupted`,
    /// announced, and is never re-run by odorbot itself (a person decides).
    Interrupt,
    /// Pending past its expiry: it ends `expired` and can no longer be approved.
    Expire,
    /// Approved but never started for longer than a lease (the process died between the
    /// approval and the start): it is started now. Starting is the atomic
    /// `approved → executing` step, so it still runs at most once.
    Resume,
}

impl Sweep {
    pub fn to(self) -> ApprovalState {
        match self {
            Self::Interrupt => ApprovalState::Interrupted,
            Self::Expire => ApprovalState::Expired,
            Self::Resume => ApprovalState::Executing,
        }
    }

    /// The outcome recorded on the request and shown on its card.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Interrupt => {
                "interrupted: odorbot stopped while executing; it will not run this again by itself"
            }
            Self::Expire => "expired before approval",
            Self::Resume => "approved but not started; started by the sweep",
        }
    }
}

/// The sweep's rule for one request at `now`; `lease` is how long an executor may take to
/// start a request it was handed.
pub fn sweep(r: &Request, now: Timestamp, lease: std::time::Duration) -> Option<Sweep> {
    match r.state {
        ApprovalState::Executing if r.lease_until.is_none_or(|l| l < now) => Some(Sweep::Interrupt),
        ApprovalState::Pending if r.expires_at <= now => Some(Sweep::Expire),
        ApprovalState::Approved
            if jiff::SignedDuration::try_from(lease)
                .is_ok_and(|l| now.duration_since(r.updated_at) > l) =>
        {
            Some(Sweep::Resume)
        }
        _ => None,
    }
}

/// Action ids of the card's buttons: `approval:<verb>:<id>`.
pub fn button_id(verb: &str, id: &str) -> String {
    format!("approval:{verb}:{id}")
}

fn mark(r: &Request) -> &'static str {
    if r.verification.as_ref().is_some_and(|v| !v.ok) {
        return "⚠️";
    }
    match r.state {
        ApprovalState::Pending => "⏳",
        ApprovalState::Approved | ApprovalState::Executing => "⚙️",
        ApprovalState::Succeeded => "✅",
        ApprovalState::Failed | ApprovalState::Interrupted => "🔴",
        ApprovalState::Denied | ApprovalState::Cancelled | ApprovalState::Expired => "⛔",
    }
}

/// The approval card: who, what, why, the dry run, the expiry, and the buttons while it
/// can still be decided.
pub fn card(r: &Request) -> Message {
    let title = format!("{} Approval needed: {}", mark(r), r.verb);
    let approvals = if r.approvals.is_empty() {
        "none yet".to_owned()
    } else {
        r.approvals
            .iter()
            .map(|u| format!("<@{u}>"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut blocks = vec![
        Block::Header(title.clone()),
        Block::Fields(vec![
            ("Requested by".into(), format!("<@{}>", r.requester)),
            ("State".into(), r.state.name().into()),
            (
                "Command".into(),
                format!("`{}`", escape(&r.command.replace('`', "'"))),
            ),
            ("Reason".into(), escape(&r.reason)),
            (
                "Approvals".into(),
                format!("{approvals} ({} needed)", r.required.max(1)),
            ),
            (
                "Expires".into(),
                r.expires_at.strftime("%H:%M:%S UTC").to_string(),
            ),
        ]),
        Block::Section(format!(
            "*Dry run (what will change)*\n{}",
            escape(&r.preview)
        )),
    ];
    if let Some(outcome) = &r.outcome {
        blocks.push(Block::Section(format!("*Outcome*\n{}", escape(outcome))));
    }
    if let Some(v) = &r.verification {
        let verdict = if v.ok {
            "✅ the service came back healthy"
        } else {
            "🔴 the change succeeded, but the service did not come back healthy"
        };
        let mut text = format!("*Verification*: {verdict}");
        for f in &v.findings {
            text.push_str(&format!("\n• {}", escape(f)));
        }
        blocks.push(Block::Section(text));
    }
    if r.state == ApprovalState::Pending {
        blocks.push(Block::Actions(vec![
            Button::new("Approve", button_id("approve", &r.id), ButtonStyle::Primary),
            Button::new("Deny", button_id("deny", &r.id), ButtonStyle::Danger),
            Button::new("Cancel", button_id("cancel", &r.id), ButtonStyle::Default),
        ]));
        blocks.push(Block::Context(
            "A different person with the approver role must approve; the requester cannot.".into(),
        ));
    }
    Message {
        text: title,
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        let t: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();
        Request {
            id: "a1".into(),
            state: ApprovalState::Pending,
            verb: "rollback".into(),
            command: "rollback odordiff-2 --reason \"bad deploy\"".into(),
            action: r#"{"version":1,"type":"rollback_helm","params":{"release":"odordiff-2"}}"#
                .into(),
            requester: "UA".into(),
            reason: "bad deploy".into(),
            preview: "Deployment/odordiff-api image: 1.5 → 1.4".into(),
            fingerprint: "Deployment/odordiff-api image=1.5".into(),
            approvals: vec![],
            required: 1,
            created_at: t,
            expires_at: "2026-11-27T10:15:00Z".parse().unwrap(),
            channel: "C1".into(),
            message_ts: None,
            outcome: None,
            verification: None,
            lease_until: None,
            updated_at: t,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_sweep_interrupts_lapsed_executions_and_expires_late_requests() {
        let sweep = |r: &Request, now| sweep(r, now, std::time::Duration::from_secs(30));
        let pending = request();
        assert_eq!(sweep(&pending, at("2026-11-27T10:14:59Z")), None);
        assert_eq!(
            sweep(&pending, at("2026-11-27T10:15:00Z")),
            Some(Sweep::Expire)
        );
        let executing = Request {
            state: ApprovalState::Executing,
            lease_until: Some(at("2026-11-27T10:05:00Z")),
            ..request()
        };
        // Held: the executor lives. Lapsed, or never set: it died.
        assert_eq!(sweep(&executing, at("2026-11-27T10:04:59Z")), None);
        assert_eq!(
            sweep(&executing, at("2026-11-27T10:05:01Z")),
            Some(Sweep::Interrupt)
        );
        let unleased = Request {
            lease_until: None,
            ..executing.clone()
        };
        assert_eq!(
            sweep(&unleased, at("2026-11-27T10:00:01Z")),
            Some(Sweep::Interrupt)
        );
        // An executing request past its approval expiry is still interrupted, not expired;
        // and settled requests are left alone.
        assert_eq!(
            sweep(&executing, at("2026-11-27T11:00:00Z")),
            Some(Sweep::Interrupt)
        );
        // Approved and never started: resumed once a lease has passed, not before.
        let approved = Request {
            state: ApprovalState::Approved,
            updated_at: at("2026-11-27T10:01:00Z"),
            ..request()
        };
        assert_eq!(sweep(&approved, at("2026-11-27T10:01:30Z")), None);
        assert_eq!(
            sweep(&approved, at("2026-11-27T10:01:31Z")),
            Some(Sweep::Resume)
        );
        for state in [
            ApprovalState::Succeeded,
            ApprovalState::Failed,
            ApprovalState::Denied,
            ApprovalState::Cancelled,
            ApprovalState::Expired,
            ApprovalState::Interrupted,
        ] {
            let r = Request { state, ..request() };
            assert_eq!(sweep(&r, at("2026-11-28T00:00:00Z")), None, "{state:?}");
        }
        assert_eq!(Sweep::Interrupt.to(), ApprovalState::Interrupted);
        assert_eq!(Sweep::Expire.to(), ApprovalState::Expired);
    }

    #[test]
    fn the_watch_posts_a_problem_once_then_only_changes() {
        let ok = WatchReading::default();
        let one = WatchReading {
            unhealthy: vec!["api-1".into()],
            health_failing: false,
        };
        let health = WatchReading {
            unhealthy: vec!["api-1".into()],
            health_failing: true,
        };
        assert_eq!(
            watch_post(None, &ok),
            None,
            "healthy from the start: silent"
        );
        let first = watch_post(Some(&ok), &one).unwrap();
        assert!(first.contains("not Running and Ready: api-1"), "{first}");
        // The same problem at the next check (even with another pod name): nothing.
        let renamed = WatchReading {
            unhealthy: vec!["api-2".into()],
            health_failing: false,
        };
        assert_eq!(watch_post(Some(&one), &renamed), None);
        assert!(
            watch_post(Some(&one), &health)
                .unwrap()
                .contains("health checks failing")
        );
        assert!(
            watch_post(Some(&health), &ok)
                .unwrap()
                .contains("passing again")
        );
    }

    #[test]
    fn a_failed_verification_shows_on_the_card() {
        let mut r = request();
        r.state = ApprovalState::Succeeded;
        r.outcome = Some("Deployment/odordiff-api image: 1.6.0 → 1.5.0".into());
        r.verification = Some(Verification {
            ok: false,
            findings: vec!["rollout of odordiff-api did not complete within 5m".into()],
        });
        let message = card(&r);
        assert!(
            message.text.starts_with("⚠️ Approval needed"),
            "{}",
            message.text
        );
        let text = format!("{message:?}");
        assert!(text.contains("did not come back healthy"), "{text}");
        assert!(text.contains("did not complete within 5m"), "{text}");
        let stored = r.verification.as_ref().unwrap().to_text();
        assert_eq!(Verification::from_text(&stored), r.verification);
        assert_eq!(Verification::from_text("maybe"), None);
    }

    #[test]
    fn a_cooldown_runs_from_the_last_execution() {
        let ten = std::time::Duration::from_secs(600);
        let last = at("2026-11-27T10:00:00Z");
        assert_eq!(cooldown_left(ten, None, last), None, "never ran");
        assert_eq!(
            cooldown_left(ten, Some(last), at("2026-11-27T10:04:00Z")),
            Some(std::time::Duration::from_secs(360))
        );
        assert_eq!(
            cooldown_left(ten, Some(last), at("2026-11-27T10:10:00Z")),
            None
        );
        assert_eq!(
            cooldown_left(ten, Some(last), at("2026-11-27T11:00:00Z")),
            None
        );
        assert_eq!(
            cooldown_left(std::time::Duration::ZERO, Some(last), last),
            None,
            "no cooldown"
        );
    }

    fn approve(user: &str, is_approver: bool) -> Decision {
        Decision::Approve {
            user: user.into(),
            is_approver,
        }
    }

    #[test]
    fn the_requester_can_never_approve_even_as_an_approver() {
        let r = request();
        assert_eq!(
            decide(&r, &approve("UA", true), at("2026-11-27T10:01:00Z")),
            Err(ApprovalError::SelfApproval)
        );
        let mut many = request();
        many.required = 2;
        many.approvals = vec!["UB".into()];
        assert_eq!(
            decide(&many, &approve("UA", true), at("2026-11-27T10:01:00Z")),
            Err(ApprovalError::SelfApproval)
        );
    }

    #[test]
    fn a_second_approver_approves() {
        let t = decide(&request(), &approve("UB", true), at("2026-11-27T10:01:00Z")).unwrap();
        assert_eq!(t.to, ApprovalState::Approved);
        assert_eq!(t.approvals, ["UB"]);
    }

    #[test]
    fn a_late_click_learns_who_approved_and_whether_it_ran() {
        let mut r = request();
        r.approvals = vec!["UB".into()];
        r.updated_at = "2026-11-27T14:02:00Z".parse().unwrap();
        r.state = ApprovalState::Succeeded;
        let late = decide(&r, &approve("UC", true), r.updated_at)
            .unwrap_err()
            .to_string();
        assert_eq!(
            late,
            "this request can no longer be decided: it was approved by <@UB> (14:02 UTC) and has already run: it succeeded"
        );
        r.state = ApprovalState::Executing;
        assert!(what_became_of(&r).ends_with("is running now"));
    }

    #[test]
    fn non_approvers_and_late_or_closed_decisions_are_refused() {
        let now = at("2026-11-27T10:01:00Z");
        assert_eq!(
            decide(&request(), &approve("UC", false), now),
            Err(ApprovalError::NotApprover("rollback".into()))
        );
        assert_eq!(
            decide(&request(), &approve("UB", true), at("2026-11-27T10:15:00Z")),
            Err(ApprovalError::Expired)
        );
        for state in [
            ApprovalState::Denied,
            ApprovalState::Cancelled,
            ApprovalState::Expired,
            ApprovalState::Approved,
            ApprovalState::Succeeded,
        ] {
            let mut r = request();
            r.state = state;
            assert_eq!(
                decide(&r, &approve("UB", true), now),
                Err(ApprovalError::Closed(what_became_of(&r))),
                "{state:?}"
            );
        }
    }

    #[test]
    fn several_approvals_when_configured_and_no_double_votes() {
        let mut r = request();
        r.required = 2;
        let t = decide(&r, &approve("UB", true), at("2026-11-27T10:01:00Z")).unwrap();
        assert_eq!(t.to, ApprovalState::Pending);
        r.approvals = t.approvals;
        assert_eq!(
            decide(&r, &approve("UB", true), at("2026-11-27T10:02:00Z")),
            Err(ApprovalError::AlreadyApproved)
        );
        assert_eq!(
            decide(&r, &approve("UC", true), at("2026-11-27T10:02:00Z"))
                .unwrap()
                .to,
            ApprovalState::Approved
        );
    }

    #[test]
    fn deny_and_cancel() {
        let now = at("2026-11-27T10:01:00Z");
        assert_eq!(
            decide(
                &request(),
                &Decision::Deny {
                    user: "UB".into(),
                    is_approver: true
                },
                now
            )
            .unwrap()
            .to,
            ApprovalState::Denied
        );
        assert!(
            decide(
                &request(),
                &Decision::Deny {
                    user: "UC".into(),
                    is_approver: false
                },
                now
            )
            .is_err()
        );
        assert_eq!(
            decide(&request(), &Decision::Cancel { user: "UA".into() }, now)
                .unwrap()
                .to,
            ApprovalState::Cancelled
        );
        assert_eq!(
            decide(&request(), &Decision::Cancel { user: "UB".into() }, now),
            Err(ApprovalError::NotRequester)
        );
    }

    #[test]
    fn the_card_shows_everything_and_buttons_only_while_pending() {
        let m = card(&request());
        let text = format!("{:?}", m.blocks);
        for want in [
            "<@UA>",
            "bad deploy",
            "1.5 → 1.4",
            "approval:approve:a1",
            "approval:deny:a1",
            "approval:cancel:a1",
            "10:15:00 UTC",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
        let mut done = request();
        done.state = ApprovalState::Succeeded;
        assert!(
            !card(&done)
                .blocks
                .iter()
                .any(|b| matches!(b, Block::Actions(_)))
        );
    }
}
