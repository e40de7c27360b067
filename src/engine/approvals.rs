//! The two-person flow: a destructive verb becomes a request with its dry run on a card;
//! a second person approves; odorbot executes exactly once, refusing if the cluster
//! drifted from what the approver saw; then verifies and watches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tracing::{info, warn};

use crate::config::{ApprovalsConfig, DEFAULT_APPROVERS, DEFAULT_REQUESTERS};
use crate::domain::approval::{
    self, ApprovalError, ApprovalState, Decision, Request, Sweep, Verification, WatchReading, card,
    cooldown_left, decide, watch_post,
};
use crate::domain::diagnostics::HealthCheck;
use crate::domain::ids::{ChannelId, K8sName, UserId};
use crate::domain::k8s::{JobProgress, RestoreProgress, restore_cleanup_button};
use crate::domain::view::{Block, Message, escape};
use crate::engine::actions::Runner;
use crate::engine::failure::Failure;
use crate::engine::outbox::{Outbox, Queued};
use crate::engine::people::People;
use crate::engine::plus;
use crate::runbook::actions::{Action, Bound, Change};
use crate::runbook::stored;
use crate::slack::api::SlackApi;
use crate::store::Store;

fn now() -> Timestamp {
    Timestamp::now()
}

pub struct Approvals {
    /// Executions and their watches run here, not in the click's handler, so the approver
    /// gets an answer at once and no worker waits out a 15-minute watch.
    tasks: tokio_util::task::TaskTracker,
    store: Store,
    api: Arc<SlackApi>,
    runner: Arc<Runner>,
    outbox: Arc<Outbox>,
    config: ApprovalsConfig,
    people: Arc<People>,
}

impl Approvals {
    pub fn new(
        store: Store,
        api: Arc<SlackApi>,
        runner: Arc<Runner>,
        config: ApprovalsConfig,
        tasks: tokio_util::task::TaskTracker,
        outbox: Arc<Outbox>,
        people: Arc<People>,
    ) -> Self {
        Self {
            tasks,
            outbox,
            store,
            api,
            runner,
            config,
            people,
        }
    }

    fn roles_for(&self, verb: &str, approve: bool) -> Vec<String> {
        match self.config.actions.get(verb) {
            Some((request, approvers)) => if approve { approvers } else { request }.clone(),
            None => if approve {
                &DEFAULT_APPROVERS[..]
            } else {
                &DEFAULT_REQUESTERS[..]
            }
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        }
    }

    /// A destructive action, typed or from a recovery button: checks the policy, runs the
    /// dry run, posts the card. `asked` is what asked for it, for people; the request
    /// stores `action` itself, and that is what executes.
    pub async fn request(
        &self,
        asked: &str,
        change: &Change,
        reason: &str,
        user: &UserId,
        channel: &ChannelId,
    ) -> Message {
        match self
            .make_request(asked, change, reason, user, channel)
            .await
        {
            Ok((_, reply)) | Err(reply) => reply,
        }
    }

    /// Whether `user` may request `verb` (a guided procedure checks before it starts).
    pub fn people(&self) -> &People {
        &self.people
    }

    pub async fn may_request(&self, user: &UserId, verb: &str) -> bool {
        self.people
            .has_role(user.as_str(), &self.roles_for(verb, false))
            .await
    }

    /// [`Approvals::request`], with the request's id when one was made; the reply says why
    /// when none was.
    pub async fn make_request(
        &self,
        asked: &str,
        change: &Change,
        reason: &str,
        user: &UserId,
        channel: &ChannelId,
    ) -> Result<(String, Message), Message> {
        let verb = change.action().kind().policy_verb();
        if !self.config.channels.is_empty() && !self.config.channels.contains(channel) {
            let allowed: Vec<String> = self
                .config
                .channels
                .iter()
                .map(|c| format!("<#{c}>"))
                .collect();
            return Err(Message::text(format!(
                ":no_entry: Destructive steps are not allowed here; use {}.",
                allowed.join(", ")
            )));
        }
        if !self
            .people
            .has_role(user.as_str(), &self.roles_for(verb, false))
            .await
        {
            return Err(Message::text(format!(
                ":no_entry: You may not request `{verb}`; it needs one of these roles: {}.",
                self.roles_for(verb, false).join(", ")
            )));
        }
        if let Some(why) = self.cooling_down(verb, "").await {
            return Err(Message::text(format!(":hourglass: {why} Ask again later.")));
        }
        let created = now();
        let action = change.clone().with_names_fixed(created.as_second());
        let action = match self.runner.bind_targets(action).await {
            Ok(a) => a,
            Err(why) => {
                return Err(self
                    .refused(
                        user,
                        asked,
                        "Could not see what this would act on, so nothing was requested",
                        &why,
                    )
                    .await);
            }
        };
        if let Action::DbTerminateLong {
            older_than,
            sessions: Some(s),
        } = action.action()
            && s.get().is_empty()
        {
            return Err(Message::text(format!(
                "No statement has run longer than {}; there is nothing to terminate, so nothing was requested.",
                crate::domain::args::format_duration(*older_than)
            )));
        }
        let report = match self.runner.card_dry_run(&action).await {
            Ok(r) => r,
            Err(why) => {
                return Err(self
                    .refused(
                        user,
                        asked,
                        "The dry run failed, so nothing was requested",
                        &why,
                    )
                    .await);
            }
        };
        let (preview, fingerprint) = (report.preview(), report.fingerprint());
        let request = Request {
            id: crate::idgen::IdGen::process().next("req", created),
            state: ApprovalState::Pending,
            verb: verb.to_owned(),
            command: asked.to_owned(),
            action: stored::to_stored(&action),
            requester: user.to_string(),
            reason: reason.to_owned(),
            preview,
            fingerprint,
            approvals: Vec::new(),
            required: self.config.required,
            created_at: created,
            expires_at: plus(created, self.config.expiry),
            channel: channel.to_string(),
            message_ts: None,
            outcome: None,
            verification: None,
            lease_until: None,
            updated_at: created,
        };
        if let Err(e) = self.store.create_request(&request).await {
            return Err(Message::text(format!(
                ":x: The request could not be recorded, so nothing was requested: {e}"
            )));
        }
        self.audit(
            user.as_str(),
            "request",
            &request.id,
            &format!("{asked} — reason: {reason}"),
        )
        .await;
        // Through the outbox, so a Slack hiccup delays the card instead of losing it.
        let card_is = match self
            .outbox
            .send_card(channel, &request.id, &card(&request))
            .await
        {
            Queued::InOutbox => "on its way to this channel",
            Queued::Sent => "posted in this channel",
            Queued::Lost => {
                return Err(Message::text(format!(
                    ":x: Requested `{verb}`, but neither Slack nor the store took its card, so nobody can approve it and it expires unapproved in {}; try again shortly.",
                    crate::domain::args::format_duration(self.config.expiry)
                )));
            }
        };
        let reply = Message::text(format!(
            "Requested `{verb}`; its card is {card_is}, where a second person with the approver role must approve it (expires in {}).",
            crate::domain::args::format_duration(self.config.expiry)
        ));
        Ok((request.id, reply))
    }

    /// Why `verb` may not run now because of its cooldown (measured from the last
    /// execution of another request than `id`), or `None`.
    async fn cooling_down(&self, verb: &str, id: &str) -> Option<String> {
        let cooldown = *self.config.cooldowns.get(verb)?;
        let last = self.store.last_execution_besides(verb, id).await.ok()??;
        let now = now();
        cooldown_left(cooldown, Some(last), now)?;
        Some(format!(
            "`{verb}` ran {} ago; the cooldown is {}.",
            crate::domain::incident::age(last, now),
            crate::domain::args::format_duration(cooldown)
        ))
    }

    /// Approve, Deny or Cancel from the card.
    pub async fn on_button(self: &Arc<Self>, verb: &str, id: &str, user: &UserId) -> Message {
        let request = match self.store.request(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Message::text(":warning: That request no longer exists."),
            Err(e) => return Message::text(format!(":x: {e}")),
        };
        let is_approver = self
            .people
            .has_role(user.as_str(), &self.roles_for(&request.verb, true))
            .await;
        let decision = match verb {
            "approve" => Decision::Approve {
                user: user.to_string(),
                is_approver,
            },
            "deny" => Decision::Deny {
                user: user.to_string(),
                is_approver,
            },
            "cancel" => Decision::Cancel {
                user: user.to_string(),
            },
            _ => return Message::text(":warning: Unknown approval button; nothing was done."),
        };
        let transition = match decide(&request, &decision, now()) {
            Ok(t) => t,
            Err(ApprovalError::Expired) => {
                if self
                    .store
                    .transition(&request, ApprovalState::Expired, &request.approvals, now())
                    .await
                    .unwrap_or(false)
                {
                    self.audit("odorbot", "expire", &request.id, "expired before approval")
                        .await;
                    self.refresh_card(&request.id).await;
                }
                return Message::text(format!(":no_entry: {}", ApprovalError::Expired));
            }
            Err(e) => {
                self.audit(user.as_str(), "refused", &request.id, &e.to_string())
                    .await;
                return Message::text(format!(":no_entry: {e}"));
            }
        };
        match self
            .store
            .transition(&request, transition.to, &transition.approvals, now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Message::text(
                    "Someone decided on this request at the same moment; look at the card.",
                );
            }
            Err(e) => return Message::text(format!(":x: {e}")),
        }
        self.audit(user.as_str(), verb, &request.id, transition.to.name())
            .await;
        self.refresh_card(&request.id).await;
        if transition.to == ApprovalState::Approved {
            let this = self.clone();
            let id = request.id.clone();
            self.tasks.spawn(async move { this.execute(&id).await });
        }
        Message::text(format!("Recorded: {verb}."))
    }

    /// Runs an approved request once: the `approved → executing` compare-and-set admits
    /// exactly one caller, whatever the clicks, redeliveries or replicas.
    async fn execute(&self, id: &str) {
        // Between the approval and the start: a crash here leaves the request approved.
        crate::failpoint!("approvals.start");
        if !self
            .store
            .begin_execution(id, plus(now(), self.config.lease), now())
            .await
            .unwrap_or(false)
        {
            return;
        }
        let Ok(Some(request)) = self.store.request(id).await else {
            return;
        };
        // A cooldown holds at execution too: two requests approved within one cooldown
        // must not both run.
        if let Some(why) = self.cooling_down(&request.verb, id).await {
            self.audit("odorbot", "refuse", id, "cooldown").await;
            self.finish(&request, ApprovalState::Failed, &format!("refused: {why}"))
                .await;
            return;
        }
        self.audit("odorbot", "execute", id, &request.action).await;
        // Exactly the typed action the approver saw; the requester's text is not read.
        let action = match stored::from_stored(&request.action) {
            Ok(a) => a,
            Err(why) => {
                self.runner.count(&Failure::Stored(why.clone()));
                self.finish(
                    &request,
                    ApprovalState::Failed,
                    &format!("nothing was done: {why}"),
                )
                .await;
                return;
            }
        };
        // The approver approved exactly these changes from exactly this state.
        match self.runner.dry_run(&action).await {
            Ok(report) => {
                let fingerprint = report.fingerprint();
                if fingerprint != request.fingerprint {
                    let outcome = format!(
                        "refused: the cluster changed since the dry run the approver saw.\nThen:\n{}\nNow:\n{}",
                        request.fingerprint, fingerprint
                    );
                    self.audit("odorbot", "refuse", id, "drift").await;
                    self.finish(&request, ApprovalState::Failed, &outcome).await;
                    return;
                }
            }
            Err(why) => {
                self.runner.count(&why);
                self.finish(
                    &request,
                    ApprovalState::Failed,
                    &format!("refused: the check before executing failed: {why}"),
                )
                .await;
                return;
            }
        }
        crate::failpoint!("approvals.before_execute");
        // The hold is checked, not assumed, right before the change: a request the sweep
        // took for dead while the checks ran is interrupted, and it stays unexecuted.
        match self
            .store
            .renew_lease(id, plus(now(), self.config.lease))
            .await
        {
            Ok(true) => {}
            held => {
                let why = match held {
                    Err(e) => format!("its lease could not be renewed ({e})"),
                    _ => "odorbot lost its hold on it while checking".to_owned(),
                };
                self.audit("odorbot", "refuse", id, &why).await;
                self.thread(
                    &request,
                    &format!("⚠️ *Not executed*: {}; nothing was done.", escape(&why)),
                )
                .await;
                return;
            }
        }
        let keep_lease = async {
            loop {
                tokio::time::sleep(self.config.lease / 3).await;
                match self
                    .store
                    .renew_lease(id, plus(now(), self.config.lease))
                    .await
                {
                    Ok(true) => {}
                    // The change is under way and cannot be taken back half-done; the
                    // outcome below says whether its record could still be written.
                    Ok(false) => warn!(request = id, "lease lost while executing"),
                    Err(e) => warn!(request = id, error = %e, "lease not renewed"),
                }
            }
        };
        let result = tokio::select! {
            r = self.runner.execute(&action) => r,
            () = keep_lease => unreachable!("the lease loop never ends"),
        };
        match result {
            Ok(report) => {
                self.finish(&request, ApprovalState::Succeeded, &report.preview())
                    .await;
                info!(request = id, verb = %request.verb, "approved request executed");
                if let Some(deployment) =
                    verified_deployment(action.action(), &self.runner.catalog.service().api)
                {
                    self.verify(&request, deployment).await;
                }
                if matches!(action.action(), Action::SetImage { .. }) {
                    // The runbook's step 5, which changes the cluster too (a Job), so it is
                    // a request of its own.
                    self.thread(
                        &request,
                        "Next in the standard deployment: the smoke tests, `/odor smoke --reason \"…\"`.",
                    )
                    .await;
                }
                if let Action::VeleroTestRestore {
                    restore: Some(restore),
                    ..
                } = action.action()
                {
                    self.follow_restore(&request, restore).await;
                }
                if let Some((what, job)) = action.action().started_job() {
                    self.follow_job(&request, what, job).await;
                }
            }
            Err(why) => {
                self.runner.count(&why);
                self.finish(&request, ApprovalState::Failed, &format!("failed: {why}"))
                    .await
            }
        }
    }

    async fn finish(&self, request: &Request, to: ApprovalState, outcome: &str) {
        let from = ApprovalState::Executing;
        let recorded = self
            .store
            .finish_request(&request.id, from, to, outcome, now())
            .await;
        // The audit log has the outcome either way; the thread says when the card could
        // not follow, rather than announcing a state the request does not have.
        self.audit("odorbot", to.name(), &request.id, outcome).await;
        self.refresh_card(&request.id).await;
        let note = match recorded {
            Ok(true) => String::new(),
            Ok(false) => "\n⚠️ The request was no longer executing (the sweep took it for dead), so its card keeps that state.".into(),
            Err(e) => format!("\n⚠️ The request's record could not be updated: {}", escape(&e.to_string())),
        };
        self.thread(
            request,
            &format!("*{}*: {}{note}", to.name(), escape(outcome)),
        )
        .await;
    }

    /// Reads `progress` every second until it is final or `rollout_timeout` has passed:
    /// the last reading, and how long odorbot waited in vain if it never became final.
    async fn follow<T: Default, F: Future<Output = Option<T>>>(
        &self,
        progress: impl Fn() -> F,
        is_final: impl Fn(&T) -> bool,
    ) -> (T, Option<String>) {
        let deadline = Instant::now() + self.config.rollout_timeout;
        let mut last = T::default();
        loop {
            if let Some(p) = progress().await {
                last = p;
                if is_final(&last) {
                    return (last, None);
                }
            }
            if Instant::now() >= deadline {
                let bound = crate::domain::args::format_duration(self.config.rollout_timeout);
                return (last, Some(bound));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Follows a test restore to a final phase and reports it in the card's thread: items
    /// restored, warnings, errors, and the clean-up.
    async fn follow_restore(&self, request: &Request, restore: &K8sName) {
        let Ok(cluster) = &self.runner.cluster else {
            return;
        };
        let progress = || async { cluster.restore_progress(restore).await.ok() };
        let (last, waited) = self.follow(progress, RestoreProgress::is_final).await;
        let target = cluster.restore_target();
        let report = last.report(restore.as_str(), &target, waited.as_deref());
        self.audit("odorbot", "verify", &request.id, &report).await;
        // Finished or not, the restore is odorbot's to delete: the button asks for it.
        let message = Message {
            text: report.clone(),
            blocks: vec![
                Block::Section(report),
                Block::Actions(vec![restore_cleanup_button(restore.as_str())]),
            ],
        };
        self.thread_message(request, &message).await;
    }

    /// Follows a Job odorbot started to completion or failure and reports it in the card's
    /// thread with the tail of its pod's log: the smoke tests' pass or fail.
    async fn follow_job(&self, request: &Request, what: &str, job: &K8sName) {
        let Ok(cluster) = &self.runner.cluster else {
            return;
        };
        let progress = || async { cluster.job_progress(job).await.ok() };
        let (last, waited) = self.follow(progress, JobProgress::is_final).await;
        let log = cluster.job_log_tail(job, JobProgress::LOG_TAIL).await;
        self.report(
            request,
            &last.report(what, job.as_str(), &log, waited.as_deref()),
        )
        .await;
    }

    /// A verification's report: in the card's thread and in the audit log.
    async fn report(&self, request: &Request, report: &str) {
        self.thread(request, report).await;
        self.audit("odorbot", "verify", &request.id, report).await;
    }

    /// Waits for the rollout, checks `/health` and `/ready`, then watches the pods and
    /// health: the thread gets each finding and every change of state (not a warning per
    /// check), and the card gets the verdict.
    async fn verify(&self, request: &Request, deployment: K8sName) {
        let Ok(cluster) = &self.runner.cluster else {
            return;
        };
        let mut findings = Vec::new();
        let deadline = Instant::now() + self.config.rollout_timeout;
        let mut rolled_out = false;
        let mut status = None;
        while Instant::now() < deadline {
            if let Ok(s) = cluster.rollout_status(&deployment).await {
                if s.complete {
                    rolled_out = true;
                    self.thread(
                        request,
                        &format!(
                            "✅ Rollout of `{deployment}` complete: {}/{} ready.",
                            s.ready, s.desired
                        ),
                    )
                    .await;
                    break;
                }
                let failed = s.failed;
                status = Some(s);
                if failed {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let selector = format!("app={deployment}")
            .parse()
            .unwrap_or_else(|_| crate::domain::k8s::Selector::all());
        if !rolled_out {
            let why = status.map_or_else(String::new, |s| format!(" {}.", s.message));
            // What on-call would look at next: the pods that are not Ready, and why.
            let stuck: Vec<String> = cluster
                .pods(&selector)
                .await
                .unwrap_or_default()
                .iter()
                .filter(|p| !p.terminating && !p.ready)
                .map(|p| {
                    format!(
                        "`{}` {}{} ({} restarts)",
                        p.name,
                        p.phase,
                        p.reason
                            .as_deref()
                            .map(|r| format!(" {r}"))
                            .unwrap_or_default(),
                        p.restarts
                    )
                })
                .collect();
            let stuck = if stuck.is_empty() {
                String::new()
            } else {
                format!(" Not Ready: {}.", stuck.join(", "))
            };
            let finding = format!(
                "rollout of {deployment} did not complete within {}",
                crate::domain::args::format_duration(self.config.rollout_timeout)
            );
            self.thread(
                request,
                &format!("🔴 {}.{why}{stuck}", capitalise(&finding)),
            )
            .await;
            findings.push(finding);
        }
        let health = self.runner.probes.health().await;
        if health.iter().any(HealthCheck::failing) {
            findings.push("health checks failing after the change".into());
        }
        let health = self.health_lines().await;
        self.thread(
            request,
            &format!("*Health after the change*\n{}", health.join("\n")),
        )
        .await;
        self.audit(
            "odorbot",
            "verify",
            &request.id,
            &format!("rollout complete: {rolled_out}"),
        )
        .await;
        let watch_until = Instant::now() + self.config.watch;
        let (mut checks, mut problems) = (0, 0);
        let mut last: Option<WatchReading> = None;
        while Instant::now() < watch_until {
            tokio::time::sleep(self.config.watch_every).await;
            checks += 1;
            let reading = WatchReading {
                unhealthy: match cluster.pods(&selector).await {
                    // Pods of the replaced ReplicaSet may still shut down: not a problem.
                    Ok(p) => p
                        .iter()
                        .filter(|p| !(p.terminating || p.ready && p.phase == "Running"))
                        .map(|p| p.name.clone())
                        .collect(),
                    Err(e) => vec![e.to_string()],
                },
                health_failing: self
                    .runner
                    .probes
                    .health()
                    .await
                    .iter()
                    .any(HealthCheck::failing),
            };
            if !reading.is_healthy() {
                problems += 1;
            }
            if let Some(post) = watch_post(last.as_ref(), &reading) {
                self.thread(request, &escape(&post)).await;
            }
            last = Some(reading);
        }
        if problems > 0 {
            findings.push(format!(
                "{problems} of {checks} watch checks found problems"
            ));
        }
        let summary = format!(
            "*Watch over* ({}): {checks} checks, {problems} with problems. {}",
            crate::domain::args::format_duration(self.config.watch),
            if problems == 0 {
                "✅ Pods stayed Ready and health checks passed."
            } else {
                "🔴 See the warnings above."
            }
        );
        self.thread(request, &summary).await;
        self.audit(
            "odorbot",
            "watch",
            &request.id,
            &format!("{checks} checks, {problems} problems"),
        )
        .await;
        let verification = Verification {
            ok: findings.is_empty(),
            findings,
        };
        if let Err(e) = self
            .store
            .set_verification(&request.id, &verification)
            .await
        {
            warn!(request = %request.id, error = %e, "verification not recorded");
        }
        self.refresh_card(&request.id).await;
    }

    async fn health_lines(&self) -> Vec<String> {
        self.runner
            .probes
            .health()
            .await
            .iter()
            .map(HealthCheck::line)
            .collect()
    }

    /// Marks requests whose executor died as interrupted and reports what the cluster
    /// shows now; never re-runs them. Also expires pending requests past their time, and
    /// starts approved requests a dead process never started.
    pub async fn recover(self: &Arc<Self>) {
        let at = now();
        // The store's queries narrow the candidates; the rule in the core decides.
        let mut candidates = match self.store.lapsed_executions(at).await {
            Ok(lapsed) => lapsed,
            Err(e) => {
                warn!(error = %e, "cannot look for interrupted executions");
                Vec::new()
            }
        };
        for state in [ApprovalState::Pending, ApprovalState::Approved] {
            match self.store.requests_in(state).await {
                Ok(found) => candidates.extend(found),
                Err(e) => warn!(error = %e, state = state.name(), "cannot sweep requests"),
            }
        }
        for r in candidates {
            let Some(sweep) = approval::sweep(&r, at, self.config.lease) else {
                continue;
            };
            // Another replica swept it first, or the store failed: the next sweep retries.
            match sweep {
                Sweep::Interrupt => {
                    let done = self
                        .store
                        .finish_request(&r.id, r.state, sweep.to(), sweep.outcome(), at)
                        .await;
                    if !done.unwrap_or(false) {
                        continue;
                    }
                    self.audit("odorbot", "interrupted", &r.id, &r.command)
                        .await;
                    self.refresh_card(&r.id).await;
                    let found = self.what_the_cluster_shows(&r).await;
                    self.thread(&r, &format!("🔴 *Interrupted*: odorbot stopped while executing `{}`. It will not re-run it. What re-running would change now:\n{found}", escape(&r.command))).await;
                }
                Sweep::Expire => {
                    let done = self
                        .store
                        .transition(&r, sweep.to(), &r.approvals, at)
                        .await;
                    if !done.unwrap_or(false) {
                        continue;
                    }
                    self.audit("odorbot", "expire", &r.id, sweep.outcome())
                        .await;
                    self.refresh_card(&r.id).await;
                }
                // `execute` starts it with the atomic step; a racing replica gets nothing.
                Sweep::Resume => {
                    let this = self.clone();
                    self.tasks.spawn(async move { this.execute(&r.id).await });
                }
            }
        }
    }

    async fn what_the_cluster_shows(&self, r: &Request) -> String {
        match stored::from_stored(&r.action) {
            Ok(action) => match self.runner.dry_run(&action).await {
                Ok(report) => report.preview(),
                Err(why) => why.to_string(),
            },
            Err(why) => why.to_string(),
        }
    }

    /// Runs [`Approvals::recover`] now and then until cancelled.
    pub async fn run(
        self: Arc<Self>,
        cancel: tokio_util::sync::CancellationToken,
        beat: crate::supervisor::Beat,
    ) {
        loop {
            crate::failpoint!("approvals.tick");
            self.recover().await;
            beat.alive();
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(5).min(self.config.lease)) => {}
            }
        }
    }

    /// `/odor approvals`.
    pub async fn pending(&self) -> Message {
        match self.store.requests_in(ApprovalState::Pending).await {
            Ok(list) if list.is_empty() => Message::text("No pending approval requests."),
            Ok(list) => Message::text(format!(
                "*Pending approval requests*\n{}",
                list.iter()
                    .map(|r| format!(
                        "• `{}` by <@{}> — {} (expires {})",
                        escape(&r.command.replace('`', "'")),
                        r.requester,
                        escape(&r.reason),
                        r.expires_at.strftime("%H:%M UTC")
                    ))
                    .collect::<Vec<_>>()
                    .join("\n")
            )),
            Err(e) => Message::text(format!(":x: {e}")),
        }
    }

    /// `/odor audit`: Markdown, or JSON for export.
    pub async fn audit_report(&self, since: Duration, json: bool) -> Message {
        let from = Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(since).unwrap_or_default())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let entries = match self.store.audit_since(from).await {
            Ok(e) => e,
            Err(e) => return Message::text(format!(":x: {e}")),
        };
        let body = if json {
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        } else {
            let mut md = format!(
                "# Audit log, last {}\n\n",
                crate::domain::args::format_duration(since)
            );
            for e in &entries {
                let at = Timestamp::from_millisecond(e.at_ms)
                    .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                md.push_str(&format!(
                    "- {at} UTC **{}** {} `{}`: {}\n",
                    e.kind,
                    e.actor,
                    e.subject,
                    e.detail.replace('\n', " ")
                ));
            }
            md
        };
        Message::text(format!("```{}```", escape(&body.replace("```", "'''"))))
    }

    /// A change refused before any request existed (its targets or its dry run failed):
    /// counted, written to the audit log, and told to the requester.
    async fn refused(&self, user: &UserId, asked: &str, what: &str, why: &Failure) -> Message {
        self.runner.count(why);
        let why = why.to_string();
        self.audit(user.as_str(), "refused", asked, &format!("{what}: {why}"))
            .await;
        Message::text(format!(":warning: {what}: {}", escape(&why)))
    }

    pub(crate) async fn audit(&self, actor: &str, kind: &str, subject: &str, detail: &str) {
        if let Err(e) = self.store.audit(now(), actor, kind, subject, detail).await {
            warn!(error = %e, kind, subject, "audit entry not written");
        }
        // Requests and their results are actions on any open incident: its timeline and
        // status updates list them.
        if matches!(
            kind,
            "request"
                | "approve"
                | "deny"
                | "cancel"
                | "succeeded"
                | "failed"
                | "refuse"
                | "interrupted"
                | "procedure"
        ) && let Ok(open) = self.store.open_incidents().await
        {
            let text = format!(
                "{kind} {subject}: {}",
                detail.lines().next().unwrap_or_default()
            );
            for incident in open {
                let _ = self
                    .store
                    .add_timeline(&incident.id, now(), "action", actor, &text)
                    .await;
            }
        }
    }

    async fn refresh_card(&self, id: &str) {
        let Ok(Some(r)) = self.store.request(id).await else {
            return;
        };
        if let (Ok(channel), Some(ts)) = (r.channel.parse::<ChannelId>(), &r.message_ts)
            && let Err(e) = self.api.update_message(&channel, ts, &card(&r)).await
        {
            warn!(request = id, error = %e, "approval card not updated");
        }
    }

    async fn thread(&self, r: &Request, text: &str) {
        self.thread_message(r, &Message::text(text)).await;
    }

    async fn thread_message(&self, r: &Request, message: &Message) {
        let Ok(Some(fresh)) = self.store.request(&r.id).await else {
            return;
        };
        // Outcomes, verification and watch reports must arrive: through the outbox, which
        // holds them until the card exists when it is not posted yet.
        if let Ok(channel) = fresh.channel.parse::<ChannelId>() {
            self.outbox
                .send_in_request_thread(&channel, &fresh.id, fresh.message_ts.as_deref(), message)
                .await;
        }
    }
}

/// The deployment a verified step changes: rollbacks, restarts, deploys, new limits (a
/// new pod template, so a rollout) and scales.
fn verified_deployment(action: &Action<Bound>, api: &K8sName) -> Option<K8sName> {
    match action {
        // A Helm rollback is verified on the release's API deployment.
        Action::RollbackHelm { .. } => Some(api.clone()),
        Action::RollbackDeployment { deployment, .. }
        | Action::RolloutRestart { deployment, .. }
        | Action::SetImage { deployment, .. }
        | Action::SetResources { deployment, .. } => Some(deployment.clone()),
        Action::Scale {
            deployment,
            replicas,
        } if replicas.get() > 0 => Some(deployment.clone()),
        _ => None,
    }
}

fn capitalise(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        .map(|first| first.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
