//! Guided procedures: carries out what `domain::guide` decides. A run's root message lists
//! its steps; read-only steps run when reached and post their findings in its thread, and
//! change steps become approval requests (the two-person flow, pre-filled from the
//! procedure's parameters). The run lives in the store, so a restart or another replica
//! continues it; one replica drives a run at a time, under a lease.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::domain::evidence::{self, Collection};
use crate::domain::guide::{Control, Next, Run};
use crate::domain::ids::{ChannelId, UserId};
use crate::domain::incident::Incident;
use crate::domain::outbox::Priority;
use crate::domain::roster::Role;
use crate::domain::view::{Block, Message, escape};
use crate::engine::actions::Runner;
use crate::engine::approvals::Approvals;
use crate::engine::outbox::{Outbox, Queued};
use crate::engine::plus;
use crate::idgen::IdGen;
use crate::runbook::actions::{Action, Classified};
use crate::runbook::values::LabelSelector;
use crate::runbook::{Catalog, Procedure};
use crate::slack::api::SlackApi;
use crate::store::Store;
use crate::store::runs::StoredRun;
use crate::supervisor::Beat;

/// How often runs are looked at when nothing wakes the loop.
const ROUND: Duration = Duration::from_secs(1);
/// The window of logs and events `collect_evidence` keeps when its step names none: the
/// runbook's `--since=24h`.
const EVIDENCE_WINDOW: Duration = Duration::from_secs(24 * 3600);

pub struct Guide {
    store: Store,
    api: Arc<SlackApi>,
    runner: Arc<Runner>,
    approvals: Arc<Approvals>,
    outbox: Arc<Outbox>,
    catalog: Arc<Catalog>,
    owner: String,
    /// How long a replica holds the runs it drives (`approvals.lease`); renewed every round.
    lease: Duration,
    wake: Notify,
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn now_ms() -> i64 {
    now().as_millisecond()
}

impl Guide {
    pub fn new(
        store: Store,
        api: Arc<SlackApi>,
        runner: Arc<Runner>,
        approvals: Arc<Approvals>,
        outbox: Arc<Outbox>,
        catalog: Arc<Catalog>,
        lease: Duration,
    ) -> Self {
        Self {
            store,
            api,
            runner,
            approvals,
            outbox,
            catalog,
            owner: IdGen::process().next("guide-", now()),
            lease,
            wake: Notify::new(),
        }
    }

    /// `/odor run <procedure> …`: checks that `user` may request every change step, records
    /// the run and posts its root message; the loop takes it from there. The run works on
    /// `incident` (an id), or else on the only open incident, if there is one.
    pub async fn start(
        &self,
        procedure: &str,
        params: Vec<(String, String)>,
        incident: Option<String>,
        reason: &str,
        user: &UserId,
        channel: &ChannelId,
    ) -> Message {
        let Some(p) = self.catalog.procedure(procedure) else {
            return Message::text(format!(":warning: No procedure {}.", escape(procedure)));
        };
        let mut refused = Vec::new();
        for step in p.steps.iter().filter(|s| s.action.is_destructive()) {
            let verb = step.action.kind().policy_verb();
            if !refused.contains(&verb) && !self.approvals.may_request(user, verb).await {
                refused.push(verb);
            }
        }
        if !refused.is_empty() {
            return Message::text(format!(
                ":no_entry: {} has steps you may not request ({}), so it was not started.",
                escape(&p.title),
                refused.join(", ")
            ));
        }
        let incident = match incident {
            Some(id) => Some(id),
            None => match self.store.open_incidents().await {
                Ok(open) if open.len() == 1 => Some(open[0].id.clone()),
                _ => None,
            },
        };
        let at = now();
        let mut run = Run::start(
            IdGen::process().next("run", at),
            p,
            params,
            reason,
            user.as_str(),
            at.as_millisecond(),
        );
        run.incident = incident;
        if let Err(e) = self.store.create_run(&run, channel.as_str(), at).await {
            return Message::text(format!(
                ":x: The run could not be recorded, so it was not started: {e}"
            ));
        }
        self.audit(
            user.as_str(),
            &run.id,
            &format!("started {} — reason: {reason}", p.id),
        )
        .await;
        match self
            .outbox
            .send_run_root(channel, &run.id, &run.render())
            .await
        {
            Queued::Lost => Message::text(
                ":x: The run was recorded, but neither Slack nor the store took its message, so it cannot start (its steps go in that message's thread); start it again.",
            ),
            _ => {
                self.wake.notify_one();
                Message::text(format!(
                    "Started *{}* (`{}`): its steps follow in the thread of its message in this channel.",
                    escape(&p.title),
                    run.id
                ))
            }
        }
    }

    /// Pause, Resume or Abandon from the run's message.
    pub async fn control(&self, control: Control, id: &str, user: &UserId) -> Message {
        let verb = control.name();
        if !self.approvals.may_request(user, "run").await {
            return Message::text(format!(
                ":no_entry: You may not {verb} a procedure run; it needs a role that may request changes."
            ));
        }
        let at = now();
        let stored = match self
            .store
            .update_run(id, at, |r| {
                r.control(control, user.as_str(), at.as_millisecond())
            })
            .await
        {
            Ok(Some(Ok(s))) => s,
            Ok(Some(Err(why))) => return Message::text(format!(":warning: {}", escape(&why))),
            Ok(None) => return Message::text(":warning: That run no longer exists."),
            Err(e) => return Message::text(format!(":x: {e}")),
        };
        self.audit(user.as_str(), id, &format!("{verb}d")).await;
        self.refresh(&stored).await;
        self.say(&stored, &format!("<@{user}> {verb}d the run."))
            .await;
        self.wake.notify_one();
        Message::text(format!("Recorded: {verb}."))
    }

    /// Drives the runs this replica holds until cancelled; `beat` hears of every round.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken, beat: Beat) {
        loop {
            if cancel.is_cancelled() {
                return;
            }
            let at = now();
            match self
                .store
                .claim_runs(&self.owner, at, plus(at, self.lease))
                .await
            {
                Ok(runs) => {
                    for stored in runs {
                        self.advance(stored).await;
                    }
                }
                Err(e) => warn!(error = %e, "cannot read the procedure runs"),
            }
            beat.alive();
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(ROUND) => {}
            }
        }
    }

    /// Carries a run forward as far as it goes without waiting for people.
    async fn advance(&self, mut stored: StoredRun) {
        let Some(procedure) = self.catalog.procedure(&stored.run.procedure) else {
            warn!(run = %stored.run.id, "the run's procedure is no longer in the runbook");
            return;
        };
        let started = tokio::time::Instant::now();
        // Within the lease: a long run of queries goes on in the next round.
        while started.elapsed() < self.lease / 2 {
            let next = stored.run.next();
            let Some(updated) = self.step(&stored, procedure, next).await else {
                return;
            };
            stored = updated;
        }
    }

    /// Carries out one decision; the run as written after it, or `None` when the run
    /// waits (for people, or after a failure to write).
    async fn step(
        &self,
        stored: &StoredRun,
        procedure: &Procedure,
        next: Next,
    ) -> Option<StoredRun> {
        let run = &stored.run;
        let at = now_ms();
        match next {
            Next::Idle => None,
            Next::Finish => {
                let done = self.save(stored, move |r| Ok(r.finished(at))).await?;
                self.say(&done, &format!("✅ All {} steps done.", run.steps.len()))
                    .await;
                self.audit("odorbot", &run.id, "finished").await;
                None
            }
            Next::Query(i) => {
                let step = &procedure.steps[i];
                let supplied: BTreeMap<String, String> = run.params.iter().cloned().collect();
                let note = match step.bind(&supplied).map(|a| a.classify()) {
                    Ok(Classified::Query(q)) => {
                        // Evidence and pages act on odorbot's store and on people; every
                        // other query is the runner's.
                        let answer = match q.action() {
                            Action::CollectEvidence { selector, since } => {
                                self.collect(stored, i, selector, since.as_ref()).await
                            }
                            Action::Notify { role } => self.page(stored, role.as_str()).await,
                            _ => self.runner.answer(&q).await.map(|m| (m, Priority::Routine)),
                        };
                        self.say(
                            stored,
                            &format!("*Step {}: {}*", i + 1, escape(&step.title)),
                        )
                        .await;
                        match answer {
                            Ok((findings, priority)) => {
                                self.send(stored, &findings, priority).await;
                                Ok("findings in the thread".to_owned())
                            }
                            // A check that could not be made is not passed over.
                            Err(why) => {
                                self.post(stored, &why).await;
                                Err("its check could not be made (why is above)".to_owned())
                            }
                        }
                    }
                    Ok(Classified::Change(_)) => Err("the step changes things".to_owned()),
                    Err(errors) => Err(crate::runbook::actions::one_line(&errors)),
                };
                let saved = match note {
                    Ok(note) => self.save(stored, move |r| Ok(r.done(i, at, &note))).await?,
                    Err(why) => self.fail(stored, i, &why).await?,
                };
                Some(saved)
            }
            Next::Request(i) => self.request(stored, procedure, i).await,
            Next::Await { step, request } => {
                let r = match self.store.request(&request).await {
                    Ok(Some(r)) => r,
                    Ok(None) => {
                        return self
                            .fail(stored, step, "its request no longer exists")
                            .await;
                    }
                    Err(e) => {
                        warn!(run = %run.id, error = %e, "request of a run not readable");
                        return None;
                    }
                };
                let state = r.state;
                let moved = run.on_request(step, at, state)?;
                let saved = self
                    .save(stored, move |r| {
                        Ok(r.on_request(step, at, state).unwrap_or(r))
                    })
                    .await?;
                let title = escape(&run.steps[step].title);
                let line = match moved.state {
                    crate::domain::guide::RunState::Paused => format!(
                        "🔴 Step {}: {title} — its request ended {}; the run is paused. *Resume* asks again, *Abandon* ends the run.",
                        step + 1,
                        state.name()
                    ),
                    _ => format!("✅ Step {}: {title} — approved and executed.", step + 1),
                };
                self.say(&saved, &line).await;
                Some(saved)
            }
        }
    }

    /// A change step: its approval request, pre-filled from the run's parameters and asked
    /// for in the starter's name. A request already made for this step in this state of
    /// the run (by a replica that died before recording it) is taken, never made twice.
    async fn request(
        &self,
        stored: &StoredRun,
        procedure: &Procedure,
        i: usize,
    ) -> Option<StoredRun> {
        let run = &stored.run;
        let step = &procedure.steps[i];
        let asked = format!(
            "/odor run {}: step {} “{}” (run {}.{})",
            run.procedure,
            i + 1,
            step.title,
            run.id,
            stored.version
        );
        let at = now_ms();
        if let Ok(Some(existing)) = self.store.request_asked(&asked).await {
            let id = existing.id;
            return self
                .save(stored, move |r| Ok(r.requested(i, at, &id)))
                .await;
        }
        let supplied: BTreeMap<String, String> = run.params.iter().cloned().collect();
        let change = match step.bind(&supplied).map(|a| a.classify()) {
            Ok(Classified::Change(c)) => c,
            Ok(Classified::Query(_)) => {
                return self.fail(stored, i, "the step changes nothing").await;
            }
            Err(errors) => {
                return self
                    .fail(stored, i, &crate::runbook::actions::one_line(&errors))
                    .await;
            }
        };
        let (Ok(user), Ok(channel)) = (
            run.starter.parse::<UserId>(),
            stored.channel.parse::<ChannelId>(),
        ) else {
            return self
                .fail(stored, i, "the run's starter or channel does not read")
                .await;
        };
        let reason = format!("{} — {}", run.reason, procedure.title);
        match self
            .approvals
            .make_request(&asked, &change, &reason, &user, &channel)
            .await
        {
            Ok((id, _)) => {
                let saved = self
                    .save(stored, {
                        let id = id.clone();
                        move |r| Ok(r.requested(i, at, &id))
                    })
                    .await?;
                self.say(
                    &saved,
                    &format!(
                        "⏳ Step {}: {} needs a second person: approve request `{id}` on its card in this channel.",
                        i + 1,
                        escape(&step.title)
                    ),
                )
                .await;
                Some(saved)
            }
            Err(reply) => self.fail(stored, i, &reply.text).await,
        }
    }

    /// Step `i` failed: the run pauses, and the thread says why.
    async fn fail(&self, stored: &StoredRun, i: usize, why: &str) -> Option<StoredRun> {
        let at = now_ms();
        let owned = why.to_owned();
        let saved = self
            .save(stored, move |r| Ok(r.failed(i, at, &owned)))
            .await?;
        self.say(
            &saved,
            &format!(
                "🔴 Step {}: {} failed: {}\nThe run is paused: *Resume* tries the step again, *Abandon* ends the run.",
                i + 1,
                escape(&stored.run.steps[i].title),
                escape(why)
            ),
        )
        .await;
        self.audit(
            "odorbot",
            &stored.run.id,
            &format!("step {} failed: {why}", i + 1),
        )
        .await;
        Some(saved)
    }

    /// Writes a transition (re-applied on a fresh read when a person changed the run
    /// meanwhile) and shows the run's new state on its message.
    async fn save(
        &self,
        stored: &StoredRun,
        change: impl Fn(Run) -> Result<Run, String>,
    ) -> Option<StoredRun> {
        match self.store.update_run(&stored.run.id, now(), change).await {
            Ok(Some(Ok(saved))) => {
                self.refresh(&saved).await;
                Some(saved)
            }
            Ok(_) => None,
            Err(e) => {
                warn!(run = %stored.run.id, error = %e, "run not written");
                None
            }
        }
    }

    /// The run's message shows its current state; it is best effort, as the thread has
    /// every step.
    async fn refresh(&self, stored: &StoredRun) {
        let (Ok(channel), Some(ts)) = (stored.channel.parse::<ChannelId>(), &stored.ts) else {
            return;
        };
        if let Err(e) = self
            .api
            .update_message(&channel, ts, &stored.run.render())
            .await
        {
            warn!(run = %stored.run.id, error = %e, "run message not updated");
        }
    }

    async fn say(&self, stored: &StoredRun, text: &str) {
        self.post(stored, &Message::text(text.to_owned())).await;
    }

    async fn post(&self, stored: &StoredRun, message: &Message) {
        self.send(stored, message, Priority::Routine).await;
    }

    /// Into the run's thread, through the outbox.
    async fn send(&self, stored: &StoredRun, message: &Message, priority: Priority) {
        let Ok(channel) = stored.channel.parse::<ChannelId>() else {
            return;
        };
        self.outbox
            .send(&channel, stored.ts.as_deref(), message, priority)
            .await;
    }

    /// The incident the run works on: the one it was started for, or else the only open
    /// one now.
    async fn incident(&self, stored: &StoredRun) -> Result<Incident, Message> {
        let found = match &stored.run.incident {
            Some(id) => self
                .store
                .incident_by_id(id)
                .await
                .map(|i| i.into_iter().collect()),
            None => self.store.open_incidents().await,
        };
        let mut found: Vec<Incident> = found.map_err(|e| Message::text(format!(":x: {e}")))?;
        match found.len() {
            1 => Ok(found.remove(0)),
            0 if stored.run.incident.is_some() => Err(Message::text(
                ":warning: The run's incident no longer exists.",
            )),
            n => Err(Message::text(format!(
                ":warning: The evidence needs an incident to be kept under, and {} open; open one or start the run with `--incident INC-n`, then *Resume*.",
                if n == 0 {
                    "none is".to_owned()
                } else {
                    format!("{n} are")
                }
            ))),
        }
    }

    /// `collect_evidence`: reads the evidence, keeps it under the run's incident with a
    /// hash per item, audits that, and lists it. A step retried after a crash keeps the
    /// first copy (the collection is the run's step).
    async fn collect(
        &self,
        stored: &StoredRun,
        i: usize,
        selector: &LabelSelector,
        since: Option<&Duration>,
    ) -> Result<(Message, Priority), Message> {
        let incident = self.incident(stored).await?;
        let since = since.copied().unwrap_or(EVIDENCE_WINDOW);
        let read = self.runner.read_evidence(selector, since).await?;
        let run = &stored.run;
        let collection = Collection::keep(read.reads, &run.starter, now_ms());
        let id = format!("{}.{}", run.id, i + 1);
        self.store
            .keep_evidence(&incident.id, &id, &collection.kept)
            .await
            .map_err(|e| Message::text(format!(":x: The evidence could not be kept: {e}")))?;
        let hashes: Vec<String> = collection
            .kept
            .iter()
            .map(|item| format!("{} sha256:{}", item.name, item.sha256))
            .collect();
        self.approvals
            .audit(
                &run.starter,
                "evidence",
                &incident.name(),
                &format!(
                    "collected by run {} ({} items): {}",
                    run.id,
                    collection.kept.len(),
                    hashes.join(", ")
                ),
            )
            .await;
        let mut message = evidence::render_collected(&incident.name(), &collection);
        if !read.notes.is_empty() {
            message
                .blocks
                .push(Block::Context(escape(&read.notes.join("; "))));
        }
        Ok((message, Priority::Routine))
    }

    /// `notify`: pages the role's roster people in the run's thread, with the evidence kept
    /// for the run's incident so far.
    async fn page(&self, stored: &StoredRun, role: &str) -> Result<(Message, Priority), Message> {
        let Some(role) = Role::from_catalog(role) else {
            return Err(Message::text(format!(
                ":warning: {} is no roster role; nobody was paged.",
                escape(role)
            )));
        };
        let run = &stored.run;
        let items = match self.incident(stored).await {
            Ok(incident) => self
                .store
                .evidence_list(&incident.id)
                .await
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let what = format!("{} (run {}): {}", run.title, run.id, run.reason);
        let mention = self.approvals.people().mention(role);
        let text = if role == Role::Security {
            evidence::page_text(&mention, &what, &items)
        } else {
            format!("📣 *{}* {mention}: {}", role.title(), escape(&what))
        };
        self.audit("odorbot", &run.id, &format!("paged the {}", role.title()))
            .await;
        Ok((Message::text(text), Priority::Page))
    }

    async fn audit(&self, actor: &str, run: &str, detail: &str) {
        self.approvals.audit(actor, "procedure", run, detail).await;
    }
}
