//! The incident desk: alerts and commands open and move incidents; the scheduler's timers
//! page along the roster and post status updates. Every post lands in the incident's
//! thread; every change is recorded in its timeline.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use thiserror::Error;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::IncidentsConfig;
use crate::domain::alert::Notification;
use crate::domain::calendar::{Recurrence, next_occurrence};
use crate::domain::diagnostics::verdict_line;
use crate::domain::escalation::{
    Policy, Severity, Why, needs_nudge, next_escalation, next_status_update,
};
use crate::domain::ids::{ChannelId, K8sName};
use crate::domain::incident::{
    Incident, IncidentState, NewIncident, StatusUpdate, escalation_ping, incident_list,
    opening_ping, root_message, timeline_markdown,
};
use crate::domain::intake::{self, AlertStep, EntryFacts};
use crate::domain::outbox::Priority;
use crate::domain::roster::{ESCALATION_PATH, Role};
use crate::domain::signals::{Verdict, signal_row};
use crate::domain::storm::{self, Summary};
use crate::domain::timer::{
    ANNOUNCE, Class, ESCALATE, MAINTENANCE, STATUS, STORM, free_slots, plus, renew_every, sleep_for,
};
use crate::domain::view::{Block, Button, ButtonStyle, Message, code_span, escape};
use crate::engine::actions::Runner;
use crate::engine::outbox::{Outbox, Queued};
use crate::probes::{Probes, STATUS_SIGNALS};
use crate::runbook::actions::{Change, Classified};
use crate::runbook::values::ArgType;
use crate::runbook::{Catalog, LiveSignal};
use crate::slack::api::SlackApi;
use crate::store::timers::Timer;
use crate::store::{Claim, Store, StoreError};
use jiff::civil::Weekday;

/// Timers fired at once by one replica; routine ones leave a reserve for pages
/// ([`free_slots`]).
const FIRING_BOUND: usize = 8;
/// A failed firing is tried again this much later (by any replica).
const RETRY: Duration = Duration::from_secs(5);
/// One attempt at the root message; after it the announcement is retried, its lease
/// renewed all the while, so no other replica posts a second root meanwhile.
const ROOT_ATTEMPT: Duration = Duration::from_secs(30);
/// How long shutdown waits for firings in flight before it leaves them to their leases.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum DeskError {
    #[error("incidents.channel is not configured, so no incident thread can be opened")]
    NoChannel,
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("no open incident {0}")]
    NotFound(String),
    #[error("{0}")]
    Ambiguous(String),
    #[error("Slack: {0}")]
    Slack(String),
    /// The timer's lease was lost (moved, finished or taken over): stop, post nothing.
    #[error("the timer's lease was lost")]
    LeaseLost,
    #[cfg(debug_assertions)]
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
}

/// What an alert notification did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AlertOutcome {
    pub opened: Vec<String>,
    pub updated: Vec<String>,
    pub duplicates: usize,
}

pub struct Desk {
    store: Store,
    api: Arc<SlackApi>,
    probes: Arc<Probes>,
    config: IncidentsConfig,
    /// The escalation matrix and cadence in force: the runbook's, with the configured
    /// overrides. The one source at run time.
    policy: Policy,
    catalog: Arc<Catalog>,
    runner: Arc<Runner>,
    outbox: Arc<Outbox>,
    /// This replica's name on timer claims.
    owner: String,
    wake: Notify,
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// A recovery step a button asks for.
pub struct Recovery {
    /// What asked for it, for the card and the audit log.
    pub asked: String,
    pub reason: String,
    pub change: Change,
}

/// The runbook entry's recovery steps as buttons; a click becomes an approval request.
fn recovery_offer(
    incident: &Incident,
    entry: &crate::runbook::Alert,
    catalog: &crate::runbook::Catalog,
) -> Message {
    let title = format!(
        "Recovery actions for {} (each needs a second person's approval)",
        entry.title
    );
    let mut blocks = vec![Block::Section(format!("*{}*", escape(&title)))];
    let mut buttons = Vec::new();
    for (i, step) in entry.recovery.iter().enumerate() {
        let bound = step.bind(&Default::default()).ok();
        let label = escape(step.label.as_deref().unwrap_or(&step.title));
        // The action exactly as the button requests it.
        blocks.push(Block::Section(format!(
            "• {label} — {}",
            code_span(&step.action.describe())
        )));
        // Every step that needs no value from a person gets its button.
        if bound.is_some() {
            buttons.push(Button::new(
                step.label.clone().unwrap_or_else(|| step.title.clone()),
                format!("recovery:{}:{i}", incident.id),
                ButtonStyle::Default,
            ));
        }
    }
    // The procedures the entry points to, as guided runs, when they need no parameter.
    for procedure in entry
        .see_also
        .iter()
        .filter_map(|id| catalog.procedure(id.as_str()))
        .filter(|p| p.starts_without_params())
    {
        blocks.push(Block::Section(format!(
            "• Follow *{}* step by step in a thread",
            escape(&procedure.title)
        )));
        buttons.push(Button::new(
            format!("Run: {}", procedure.title),
            format!("runstart:{}:{}", procedure.id, incident.id),
            ButtonStyle::Default,
        ));
    }
    if !buttons.is_empty() {
        blocks.push(Block::Actions(buttons));
    }
    Message {
        text: title,
        blocks,
    }
}

impl Desk {
    /// Recovery step `index` of the incident's runbook entry as the typed action its
    /// button asks for, with the catalog's own object names.
    pub fn recovery_action(&self, incident: &Incident, index: usize) -> Option<Recovery> {
        let entry = self.catalog.alert(incident.entry.as_deref()?)?;
        let step = entry.recovery.get(index)?;
        // Recovery steps are changes (the catalog compiler sees to it).
        let Classified::Change(change) = step.bind(&Default::default()).ok()?.classify() else {
            return None;
        };
        Some(Recovery {
            asked: format!(
                "recovery button “{}” in {}",
                step.label.as_deref().unwrap_or(&step.title),
                incident.name()
            ),
            reason: format!("recovery for {}: {}", incident.name(), step.title),
            change,
        })
    }

    pub fn incident_channel(&self) -> Option<&ChannelId> {
        self.config.channel.as_ref()
    }

    pub fn new(
        store: Store,
        api: Arc<SlackApi>,
        runner: Arc<Runner>,
        catalog: Arc<Catalog>,
        config: IncidentsConfig,
        outbox: Arc<Outbox>,
    ) -> Self {
        // Unique per instance, not only per process: leases are held by name.
        let owner = crate::idgen::IdGen::process().next("scheduler-", Timestamp::now());
        Self {
            store,
            api,
            probes: runner.probes.clone(),
            policy: catalog.escalation_policy().with(&config.escalation),
            config,
            catalog,
            runner,
            outbox,
            owner,
            wake: Notify::new(),
        }
    }

    /// Handles one Alertmanager notification; each alert state is processed once.
    /// `origin` names the stored notification: applied again after its applier died, its
    /// own earlier claims do not make its alerts duplicates.
    ///
    /// # Errors
    /// [`DeskError`] when there is no incident channel or the store fails.
    pub async fn on_alert(
        &self,
        n: &Notification,
        origin: &str,
    ) -> Result<AlertOutcome, DeskError> {
        if self.config.channel.is_none() {
            return Err(DeskError::NoChannel);
        }
        let mut outcome = AlertOutcome::default();
        let entry_for = |labels: &BTreeMap<String, String>| {
            self.catalog.alert_for_labels(labels).map(|e| EntryFacts {
                id: e.id.to_string(),
                severity: e.severity,
            })
        };
        let mut offer_resolve = None;
        for (plan, alert) in intake::plan(n, entry_for).into_iter().zip(&n.alerts) {
            let claim = self
                .store
                .claim_event_for(&plan.key, "alert", origin, now().as_millisecond())
                .await?;
            let again = match claim {
                Claim::New => false,
                Claim::Duplicate => {
                    outcome.duplicates += 1;
                    continue;
                }
                Claim::Again => true,
            };
            if again && let Some(done) = self.store.incident_with_alert(alert).await? {
                // The first applier recorded it, and may have died before announcing: the
                // incident is finished, never opened a second time (it may be resolved by now).
                self.finish_opening(&done).await?;
                outcome.duplicates += 1;
                continue;
            }
            match self
                .carry_out(plan.step, &n.group_key, alert, again, &mut outcome)
                .await
            {
                Ok(resolved) => offer_resolve = offer_resolve.or(resolved),
                Err(e) => {
                    // Not done, so not claimed: Alertmanager's retry must find it new.
                    if let Err(release) = self.store.release_event(&plan.key).await {
                        warn!(error = %release, key = %plan.key, "cannot release an alert's key");
                    }
                    return Err(e);
                }
            }
        }
        // One offer per notification, however many of its alerts cleared. A storm member
        // without its own thread has nowhere to ask: once its whole group cleared, it is
        // resolved, and the storm's summary shows the recovery.
        if let Some(incident) = offer_resolve {
            if incident.held_by_storm() {
                if n.status == crate::domain::alert::AlertStatus::Resolved {
                    self.resolve(&incident, "alertmanager").await?;
                }
            } else {
                self.offer_resolve(&incident).await;
            }
        }
        Ok(outcome)
    }

    /// An incident a notification applied again found: the announcement its first applier
    /// may not have scheduled (the incident's, or for a member held by a storm, the storm's)
    /// is scheduled unless it is there or done. Announcing is idempotent, so a second one
    /// posts nothing twice.
    async fn finish_opening(&self, incident: &Incident) -> Result<(), DeskError> {
        let announced = match &incident.storm {
            Some(storm) if incident.held_by_storm() => self.store.incident_by_id(storm).await?,
            _ => Some(incident.clone()),
        };
        let Some(announced) = announced else {
            return Ok(());
        };
        if announced.state == IncidentState::Resolved || announced.thread_ts.is_some() {
            return Ok(());
        }
        self.store
            .schedule_if_absent(ANNOUNCE, &announced.id, now())
            .await?;
        self.schedule(&announced).await
    }

    /// One alert's plan; a resolution returns its incident, to be offered for resolving.
    /// `again`: an earlier application of the same notification may have done part of it.
    async fn carry_out(
        &self,
        step: AlertStep,
        group_key: &str,
        alert: &crate::domain::alert::Alert,
        again: bool,
        outcome: &mut AlertOutcome,
    ) -> Result<Option<Incident>, DeskError> {
        // The window between the claim and the effect: a fault here must not lose the alert.
        crate::failpoint!("intake.after_claim", e => return Err(e.into()));
        match step {
            AlertStep::Fire { new, note } => {
                let opened = self
                    .store
                    .open_in_storm(&new, now(), Some(&self.config.storm))
                    .await?;
                let incident = opened.incident;
                self.store.record_alert(&incident.id, alert, now()).await?;
                if opened.created {
                    match &opened.storm {
                        None => self.announce(&incident).await?,
                        Some((storm, started)) => {
                            if *started {
                                warn!(storm = %storm.name(), "alert storm: incidents join one summary");
                                self.announce(storm).await?;
                            }
                            self.storm_changed(storm.id.as_str()).await?;
                        }
                    }
                    outcome.opened.push(incident.name());
                } else {
                    if again {
                        self.finish_opening(&incident).await?;
                    }
                    self.note(&incident, "alert", "alertmanager", &note).await?;
                    outcome.updated.push(incident.name());
                }
                Ok(None)
            }
            AlertStep::Resolve { note } => {
                let Some(incident) = self.open_for_group(group_key).await? else {
                    return Ok(None);
                };
                self.store.record_alert(&incident.id, alert, now()).await?;
                self.note(&incident, "alert", "alertmanager", &note).await?;
                outcome.updated.push(incident.name());
                Ok(Some(incident))
            }
        }
    }

    async fn offer_resolve(&self, incident: &Incident) {
        let (Some(channel), Some(ts)) = (&incident.channel, &incident.thread_ts) else {
            return;
        };
        let offer = Message {
            text: format!("{} may be over: resolve it?", incident.name()),
            blocks: vec![
                Block::Section(format!(
                    "The alerts of {} have cleared. Resolve the incident?",
                    incident.name()
                )),
                Block::Actions(vec![Button::new(
                    "Resolve",
                    crate::domain::incident::button_id("resolve", incident),
                    ButtonStyle::Danger,
                )]),
            ],
        };
        self.post(channel, Some(ts), &offer, Priority::Routine)
            .await;
    }

    async fn open_for_group(&self, group_key: &str) -> Result<Option<Incident>, DeskError> {
        Ok(self
            .store
            .open_incidents()
            .await?
            .into_iter()
            .find(|i| i.group_key.as_deref() == Some(group_key)))
    }

    /// Opens an incident by hand (`/odor incident open`).
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn open(
        &self,
        severity: Severity,
        title: &str,
        user: &str,
    ) -> Result<Incident, DeskError> {
        if self.config.channel.is_none() {
            return Err(DeskError::NoChannel);
        }
        let new = NewIncident {
            severity,
            title: title.to_owned(),
            entry: None,
            group_key: None,
            opened_by: user.to_owned(),
        };
        let (incident, _) = self.store.open_incident(&new, now()).await?;
        self.announce(&incident).await?;
        Ok(incident)
    }

    /// Sets the incident's timers, the first of them due now: the announcement (root
    /// message and opening ping) is a timer too, so a crash right after the incident is
    /// written still gets it posted.
    async fn announce(&self, incident: &Incident) -> Result<(), DeskError> {
        self.store.schedule(ANNOUNCE, &incident.id, now()).await?;
        info!(incident = %incident.name(), severity = %incident.severity, "incident opened");
        self.schedule(incident).await
    }

    /// Posts `incident`'s root message, tagged so that Slack can be asked for it: a firing
    /// after one that may have posted it (and died, or lost the answer, before its ts was
    /// recorded) looks for it in the channel first, so a crash never brings a second root.
    async fn post_root(
        &self,
        incident: &Incident,
        channel: &ChannelId,
        root: &Message,
        priority: Priority,
    ) -> Result<String, DeskError> {
        let tag = format!("root:{}", incident.id);
        let first = self
            .store
            .claim_event(&tag, "root", &incident.id, now().as_millisecond())
            .await?;
        let slack = |e: crate::slack::api::ApiError| DeskError::Slack(e.to_string());
        let found = self
            .outbox
            .found_in_slack(channel, None, &tag, !first)
            .await
            .map_err(slack)?;
        if let Some(ts) = found {
            info!(incident = %incident.name(), "its root message was posted before; not posted again");
            return Ok(ts);
        }
        let ts = self
            .api
            .post_tagged(channel, None, root, &tag, ROOT_ATTEMPT, priority)
            .await
            .map_err(slack)?;
        self.outbox.delivered(priority, incident.opened_at);
        Ok(ts)
    }

    /// Posts the root message (once) and the opening ping (once), under the announcement
    /// timer's lease: `held` is confirmed before each effect, and a lease lost while the
    /// root is being posted stops the firing.
    async fn post_announcement(&self, incident: &Incident, held: &Held) -> Result<(), DeskError> {
        let channel = incident
            .channel
            .clone()
            .or_else(|| self.config.channel.clone())
            .ok_or(DeskError::NoChannel)?;
        // A storm's severities paged so far, when its root was just built.
        let (ts, paged) = match &incident.thread_ts {
            Some(ts) => (ts.clone(), None),
            None => {
                held.confirm().await?;
                let (root, root_priority, paged) = if incident.is_storm() {
                    // The root carries the first page: claimed and recorded here, it is
                    // in the root however often posting it is retried.
                    let summary = Summary::of(&self.store.storm_members(&incident.id).await?);
                    let paged = self.storm_paged(incident).await?;
                    let paged = self
                        .page_storm(incident, &summary, paged, &channel, None)
                        .await?;
                    let root = self.summary_of(incident, &summary, &paged);
                    (root, Priority::Page, Some(paged))
                } else {
                    let root = root_message(incident, &self.policy, now());
                    (root, Priority::Routine, None)
                };
                let posted = tokio::select! {
                    r = self.post_root(incident, &channel, &root, root_priority) => r,
                    () = held.lost.cancelled() => return Err(DeskError::LeaseLost),
                };
                let ts = posted?;
                if self
                    .store
                    .set_thread(&incident.id, channel.as_str(), &ts)
                    .await?
                {
                    (ts, paged)
                } else {
                    // Another firing's root got there first; the thread is its.
                    warn!(incident = %incident.name(), "a second root message was posted; using the first");
                    let first = self
                        .store
                        .incident_by_id(&incident.id)
                        .await?
                        .and_then(|i| i.thread_ts)
                        .unwrap_or(ts);
                    (first, None)
                }
            }
        };
        if incident.is_storm() {
            // Severities that joined while the root was being posted.
            let summary = Summary::of(&self.store.storm_members(&incident.id).await?);
            let paged = match paged {
                Some(paged) => paged,
                None => self.storm_paged(incident).await?,
            };
            held.confirm().await?;
            self.page_storm(incident, &summary, paged, &channel, Some(&ts))
                .await?;
            return Ok(());
        }
        // A storm member given its own thread was paged through the storm.
        let pinged = incident.storm.is_some()
            || self
                .store
                .timeline(&incident.id)
                .await?
                .iter()
                .any(|e| e.kind == "ping");
        if !pinged {
            held.confirm().await?;
            let page = self.policy.rule(incident.severity).page_at_once;
            let ping = opening_ping(incident, &self.config.roster, &self.policy, page);
            self.post(&channel, Some(&ts), &ping, Priority::Page).await;
            let who = self
                .config
                .roster
                .targets(Role::Primary)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            let what = if page {
                "Paged primary"
            } else {
                "Pinged primary"
            };
            self.store
                .add_timeline(
                    &incident.id,
                    now(),
                    "ping",
                    "odorbot",
                    &format!("{what} {who}"),
                )
                .await?;
        }
        let investigated = self
            .store
            .timeline(&incident.id)
            .await?
            .iter()
            .any(|e| e.kind == "findings");
        if let Some(entry) = incident
            .entry
            .as_deref()
            .and_then(|id| self.catalog.alert(id))
            && !investigated
        {
            // The runbook's investigation steps, run at once; their findings in the thread.
            let findings = self.runner.diagnose(entry, "odorbot").await;
            held.confirm().await?;
            self.post(&channel, Some(&ts), &findings, Priority::Findings)
                .await;
            let offer = recovery_offer(incident, entry, &self.catalog);
            self.post(&channel, Some(&ts), &offer, Priority::Findings)
                .await;
            let note = format!(
                "Ran the {} investigation steps of {}",
                entry.investigation.len(),
                entry.id
            );
            self.store
                .add_timeline(&incident.id, now(), "findings", "odorbot", &note)
                .await?;
        }
        Ok(())
    }

    /// Sets (or clears) the incident's escalation and status timers from its clock.
    async fn schedule(&self, incident: &Incident) -> Result<(), DeskError> {
        let clock = incident.clock();
        match next_escalation(
            &clock,
            &self.policy,
            &self.config.calendar,
            ESCALATION_PATH.len(),
        ) {
            Some(e) => self.store.schedule(ESCALATE, &incident.id, e.due).await?,
            None => self.store.cancel(ESCALATE, &incident.id).await?,
        }
        match next_status_update(&clock, incident.last_status_at, &self.policy) {
            Some(due) => self.store.schedule(STATUS, &incident.id, due).await?,
            None => self.store.cancel(STATUS, &incident.id).await?,
        }
        self.wake.notify_one();
        Ok(())
    }

    /// Finds the incident a command means: the named one, or the only open one.
    ///
    /// # Errors
    /// [`DeskError::NotFound`] or [`DeskError::Ambiguous`].
    pub async fn find(&self, number: Option<i64>) -> Result<Incident, DeskError> {
        if let Some(n) = number {
            return self
                .store
                .incident_by_number(n)
                .await?
                .ok_or_else(|| DeskError::NotFound(format!("INC-{n}")));
        }
        let mut open = self.store.open_incidents().await?;
        match open.len() {
            0 => Err(DeskError::NotFound("(none is open)".into())),
            1 => Ok(open.remove(0)),
            n => {
                // A storm can hold hundreds: name a few, `/odor incidents` lists them all.
                let mut names: Vec<String> = open.iter().take(10).map(Incident::name).collect();
                if n > names.len() {
                    names.push(format!("… {} more in `/odor incidents`", n - names.len()));
                }
                Err(DeskError::Ambiguous(format!(
                    "{n} incidents are open ({}); name one, e.g. `{}`",
                    names.join(", "),
                    open[0].name()
                )))
            }
        }
    }

    /// Acknowledges; returns the reply for the person.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn ack(&self, incident: &Incident, user: &str) -> Result<String, DeskError> {
        let Some(updated) = self.store.acknowledge(&incident.id, user, now()).await? else {
            return Ok(format!(
                "{} is already acknowledged or resolved; nothing changed.",
                incident.name()
            ));
        };
        let updated = self.own_thread(updated).await?;
        self.refresh_root(&updated).await;
        self.thread(
            &updated,
            &format!(
                "👍 <@{user}> acknowledged {} and owns it; escalation stops.",
                updated.name()
            ),
        )
        .await;
        self.schedule(&updated).await?;
        Ok(format!("You acknowledged {}.", updated.name()))
    }

    /// Escalates to the next person on the roster now.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn escalate(
        &self,
        incident: &Incident,
        actor: &str,
        why: &str,
    ) -> Result<String, DeskError> {
        let incident = &self.own_thread(incident.clone()).await?;
        if incident.step + 1 >= ESCALATION_PATH.len() {
            return Ok(format!(
                "{} is already with the {}, the end of the roster.",
                incident.name(),
                ESCALATION_PATH[incident.step].title()
            ));
        }
        let to = ESCALATION_PATH[incident.step + 1];
        let text = format!("Escalated to {} ({why})", to.title());
        let Some(updated) = self
            .store
            .escalate(&incident.id, incident.step, actor, &text, now())
            .await?
        else {
            return Ok(format!(
                "{} moved on meanwhile; nothing changed.",
                incident.name()
            ));
        };
        self.thread_msg(
            &updated,
            &escalation_ping(&updated, to, &self.config.roster, why),
            Priority::Page,
        )
        .await;
        self.schedule(&updated).await?;
        Ok(format!(
            "{} escalated to the {}.",
            updated.name(),
            to.title()
        ))
    }

    /// A human update, posted in the thread and recorded.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn update(
        &self,
        incident: &Incident,
        user: &str,
        text: &str,
    ) -> Result<String, DeskError> {
        let incident = &self.own_thread(incident.clone()).await?;
        self.store
            .add_timeline(&incident.id, now(), "update", user, text)
            .await?;
        self.store.mark_human_update(&incident.id, now()).await?;
        self.thread(
            incident,
            &format!("📝 *Update from <@{user}>:* {}", escape(text)),
        )
        .await;
        Ok(format!("Update posted in {}'s thread.", incident.name()))
    }

    /// Resolves: timers stop; the timeline and the post-incident checklist go in the thread.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn resolve(&self, incident: &Incident, user: &str) -> Result<String, DeskError> {
        let Some(updated) = self.store.resolve(&incident.id, user, now()).await? else {
            return Ok(format!("{} is already resolved.", incident.name()));
        };
        self.schedule(&updated).await?;
        if updated.is_storm() {
            // Nothing else speaks for the members still held by the storm.
            for m in self.store.storm_members(&updated.id).await? {
                if m.held_by_storm() && m.state != IncidentState::Resolved {
                    self.store.resolve(&m.id, user, now()).await?;
                }
            }
        } else if let Some(storm) = &updated.storm {
            self.storm_changed(storm).await?;
        }
        self.refresh_root(&updated).await;
        let entries = self.store.timeline(&updated.id).await?;
        let md = timeline_markdown(&updated, &entries);
        self.thread(
            &updated,
            &format!(
                "✅ <@{user}> resolved {}. Timeline:\n```{}```",
                updated.name(),
                escape(&md)
            ),
        )
        .await;
        if let (Some(channel), Some(ts)) = (&updated.channel, &updated.thread_ts)
            && let Err(e) = self
                .post_checklist("post-incident", channel, Some(ts), Some(&updated.id))
                .await
        {
            warn!(incident = %updated.name(), error = %e, "post-incident checklist not posted");
        }
        Ok(format!("You resolved {}.", updated.name()))
    }

    /// The timeline as Markdown.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn timeline(&self, incident: &Incident) -> Result<String, DeskError> {
        Ok(timeline_markdown(
            incident,
            &self.store.timeline(&incident.id).await?,
        ))
    }

    /// Posts a runbook checklist or maintenance list as an interactive checklist.
    ///
    /// # Errors
    /// [`DeskError`] when the list is unknown, or Slack or the store fails.
    pub async fn post_checklist(
        &self,
        name: &str,
        channel: &ChannelId,
        thread: Option<&str>,
        incident: Option<&str>,
    ) -> Result<String, DeskError> {
        let (title, items) = if let Some(c) = self.catalog.checklist(name) {
            (c.title.clone(), c.items.clone())
        } else if let Some(m) = self
            .catalog
            .maintenance()
            .iter()
            .find(|m| m.id.as_str() == name)
        {
            (m.title.clone(), m.items.clone())
        } else {
            let mut names: Vec<String> = self
                .catalog
                .checklists()
                .iter()
                .map(|c| c.id.to_string())
                .collect();
            names.extend(self.catalog.maintenance().iter().map(|m| m.id.to_string()));
            return Err(DeskError::NotFound(format!(
                "checklist {name:?}; one of {}",
                names.join(", ")
            )));
        };
        let list = self
            .store
            .create_checklist(name, &title, &items, incident, channel.as_str(), now())
            .await?;
        // Through the outbox: in a thread it keeps its place after what was queued there.
        match self
            .outbox
            .send_checklist(channel, thread, &list.id, &list.render())
            .await
        {
            Queued::Lost => Err(DeskError::Slack(
                "neither the store nor Slack took the checklist".into(),
            )),
            Queued::InOutbox | Queued::Sent => Ok(format!("Posted the {title}.")),
        }
    }

    /// Ticks or unticks a checklist item and updates the message.
    ///
    /// `clicked` is the message the button was on, as the click reported it: a click can
    /// arrive before the sender has recorded the message's ts, and the tick must show anyway.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn toggle_checklist(
        &self,
        id: &str,
        index: usize,
        user: &str,
        clicked: Option<(&ChannelId, &str)>,
    ) -> Result<String, DeskError> {
        let Some((list, channel, ts)) = self
            .store
            .toggle_checklist_item(id, index, user, now())
            .await?
        else {
            return Err(DeskError::NotFound(format!("checklist item {index}")));
        };
        let recorded = channel.parse::<ChannelId>().ok().zip(ts);
        let target = recorded.or_else(|| clicked.map(|(c, ts)| (c.clone(), ts.to_owned())));
        if let Some((channel, ts)) = target
            && let Err(e) = self.api.update_message(&channel, &ts, &list.render()).await
        {
            warn!(checklist = id, error = %e, "checklist message not updated");
        }
        let state = if list.done[index].is_some() {
            "ticked"
        } else {
            "unticked"
        };
        Ok(format!("You {state} “{}”.", list.items[index]))
    }

    /// Sets a timer for every maintenance list that has none, at its next occurrence.
    ///
    /// # Errors
    /// The store's error.
    pub async fn arm_maintenance(&self) -> Result<(), DeskError> {
        if self.config.maintenance_channel.is_none() {
            return Ok(());
        }
        for m in self.catalog.maintenance() {
            if self.store.timers_for(m.id.as_str()).await?.is_empty() {
                let due = self.next_maintenance(m, now());
                self.store.schedule(MAINTENANCE, m.id.as_str(), due).await?;
            }
        }
        self.wake.notify_one();
        Ok(())
    }

    fn next_maintenance(&self, m: &crate::runbook::Maintenance, after: Timestamp) -> Timestamp {
        use crate::runbook::Schedule;
        let weekday = |w: &crate::runbook::values::Weekday| match w.render().as_str() {
            "monday" => Weekday::Monday,
            "tuesday" => Weekday::Tuesday,
            "wednesday" => Weekday::Wednesday,
            "thursday" => Weekday::Thursday,
            "friday" => Weekday::Friday,
            "saturday" => Weekday::Saturday,
            _ => Weekday::Sunday,
        };
        const MONTHS: [&str; 12] = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        let (rec, at) = match &m.schedule {
            Schedule::Daily { at } => (Recurrence::Daily, at),
            Schedule::Weekly { weekday: w, at } => (Recurrence::Weekly(weekday(w)), at),
            Schedule::Monthly { day, at } => (Recurrence::Monthly(*day as i8), at),
            Schedule::Quarterly {
                weekday: w,
                months,
                at,
            } => {
                let months = months
                    .iter()
                    .filter_map(|m| {
                        MONTHS
                            .iter()
                            .position(|n| *n == m.render())
                            .map(|i| i as i8 + 1)
                    })
                    .collect();
                (Recurrence::Quarterly(weekday(w), months), at)
            }
        };
        next_occurrence(
            &rec,
            at.hour as i8,
            at.minute as i8,
            after,
            &self.config.calendar.tz,
        )
    }

    /// The runbook's contacts, with the roster's Slack mentions.
    pub fn contacts(&self) -> String {
        let c = self.catalog.contacts();
        let mut lines = vec!["*Team*".to_owned()];
        lines.extend(c.team.iter().map(|t| {
            let how: Vec<String> = [&t.phone, &t.email, &t.slack]
                .into_iter()
                .flatten()
                .map(|v| escape(v))
                .collect();
            format!("• *{}*: {}", escape(&t.name), how.join(" · "))
        }));
        lines.push("*Vendors*".to_owned());
        lines.extend(c.vendors.iter().map(|v| {
            let how: Vec<String> = [&v.email, &v.support]
                .into_iter()
                .flatten()
                .map(|v| escape(v))
                .collect();
            format!("• *{}*: {}", escape(&v.name), how.join(" · "))
        }));
        lines.push("*External resources*".to_owned());
        lines.extend(
            c.external
                .iter()
                .map(|e| format!("• <{}|{}>", e.url, escape(&e.name))),
        );
        lines.join("\n")
    }

    /// Who is on call, by role.
    pub fn oncall(&self) -> String {
        Role::ALL
            .iter()
            .map(|r| format!("• *{}*: {}", r.title(), self.config.roster.mention(*r)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn note(
        &self,
        incident: &Incident,
        kind: &str,
        actor: &str,
        text: &str,
    ) -> Result<(), DeskError> {
        self.store
            .add_timeline(&incident.id, now(), kind, actor, text)
            .await?;
        self.thread(incident, &escape(text)).await;
        Ok(())
    }

    async fn thread(&self, incident: &Incident, text: &str) {
        self.thread_msg(incident, &Message::text(text), Priority::Routine)
            .await;
    }

    /// Queues `message` for the incident's thread. Before its root message exists the
    /// outbox holds it and sends it into the thread once the root is there: what the
    /// timeline records as posted is never dropped for want of a thread.
    async fn thread_msg(&self, incident: &Incident, message: &Message, priority: Priority) {
        if incident.held_by_storm() {
            // Its timeline has it; the storm's summary counts it. A thread of its own
            // comes on demand (`/odor thread`) or when it is acknowledged.
            return;
        }
        let Some(channel) = incident
            .channel
            .clone()
            .or_else(|| self.config.channel.clone())
        else {
            warn!(incident = %incident.name(), "no incident channel; thread message not queued");
            return;
        };
        self.outbox
            .send_in_thread(
                &channel,
                &incident.id,
                incident.thread_ts.as_deref(),
                message,
                priority,
            )
            .await;
    }

    async fn refresh_root(&self, incident: &Incident) {
        let (Some(channel), Some(ts)) = (&incident.channel, &incident.thread_ts) else {
            return;
        };
        let root = match self.root_for(incident).await {
            Ok(root) => root,
            Err(e) => {
                warn!(incident = %incident.name(), error = %e, "root message not rendered");
                return;
            }
        };
        if let Err(e) = self.api.update_message(channel, ts, &root).await {
            warn!(incident = %incident.name(), error = %e, "root message not updated");
        }
    }

    /// The root message as it should read now: a storm's is its summary.
    async fn root_for(&self, incident: &Incident) -> Result<Message, DeskError> {
        if incident.is_storm() {
            let summary = Summary::of(&self.store.storm_members(&incident.id).await?);
            let paged = self.storm_paged(incident).await?;
            return Ok(self.summary_of(incident, &summary, &paged));
        }
        Ok(root_message(incident, &self.policy, now()))
    }

    fn summary_of(&self, storm: &Incident, summary: &Summary, paged: &[Severity]) -> Message {
        storm::summary_message(&storm::SummaryView {
            storm,
            summary,
            paged,
            roster: &self.config.roster,
            policy: &self.policy,
            now: now(),
        })
    }

    /// The severities a storm has paged for, from its timeline.
    async fn storm_paged(&self, storm: &Incident) -> Result<Vec<Severity>, DeskError> {
        let timeline = self.store.timeline(&storm.id).await?;
        Ok(Severity::ALL
            .into_iter()
            .filter(|s| timeline.iter().any(|e| e.kind == storm::page_kind(*s)))
            .collect())
    }

    /// The open incidents (`/odor incidents`).
    ///
    /// # Errors
    /// The store's error.
    pub async fn list(&self) -> Result<String, DeskError> {
        Ok(incident_list(&self.store.open_incidents().await?, now()))
    }

    /// `/odor thread`: a storm member's own thread.
    ///
    /// # Errors
    /// [`DeskError`].
    pub async fn give_thread(&self, incident: &Incident) -> Result<String, DeskError> {
        if !incident.held_by_storm() {
            return Ok(format!(
                "{} already has its own thread; nothing changed.",
                incident.name()
            ));
        }
        let updated = self.own_thread(incident.clone()).await?;
        self.store
            .add_timeline(
                &updated.id,
                now(),
                "thread",
                "odorbot",
                "Given its own thread",
            )
            .await?;
        Ok(format!(
            "{} gets its own thread in the incident channel, with its findings.",
            updated.name()
        ))
    }

    /// A storm member leaves the storm's silence: its root, findings and timers follow
    /// (not its opening page: the storm paged for it). Others are returned unchanged.
    async fn own_thread(&self, incident: Incident) -> Result<Incident, DeskError> {
        if !incident.held_by_storm() || incident.state == IncidentState::Resolved {
            return Ok(incident);
        }
        if self.store.detach(&incident.id, now()).await? {
            self.announce(&incident).await?;
        }
        if let Some(storm) = &incident.storm {
            self.storm_changed(storm).await?;
        }
        Ok(self
            .store
            .incident_by_id(&incident.id)
            .await?
            .unwrap_or(incident))
    }

    /// A member joined, left or changed: the summary is edited (and new severities paged)
    /// within [`storm::REFRESH`], once for everything that happened meanwhile.
    async fn storm_changed(&self, storm: &str) -> Result<(), DeskError> {
        let due = plus(now(), storm::REFRESH);
        self.store.schedule_if_absent(STORM, storm, due).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// The storm timer: the summary edited in place, its severity raised to its worst
    /// member's, and a page for each severity not paged yet.
    async fn refresh_storm(&self, storm: &Incident, timer: &Timer) -> Result<(), DeskError> {
        let (Some(channel), Some(ts)) = (storm.channel.clone(), storm.thread_ts.clone()) else {
            // Its root is being posted, with everything there is by then; look again.
            let due = plus(now(), storm::REFRESH);
            self.store.schedule(STORM, &storm.id, due).await?;
            return Ok(());
        };
        // Gone first: a change from now on sets a new timer, so none is missed.
        self.store.complete(timer, &self.owner).await?;
        let result = self.refresh_storm_now(storm, &channel, &ts).await;
        if result.is_err() {
            self.storm_changed(&storm.id).await?;
        }
        result
    }

    async fn refresh_storm_now(
        &self,
        storm: &Incident,
        channel: &ChannelId,
        ts: &str,
    ) -> Result<(), DeskError> {
        let members = self.store.storm_members(&storm.id).await?;
        let summary = Summary::of(&members);
        let mut storm = storm.clone();
        if let Some(worse) = storm::raised(storm.severity, &summary) {
            self.store.set_severity(&storm.id, worse, now()).await?;
            self.store
                .add_timeline(
                    &storm.id,
                    now(),
                    "severity",
                    "odorbot",
                    &format!("Severity raised to {worse} by its members"),
                )
                .await?;
            storm.severity = worse;
            self.schedule(&storm).await?;
        }
        let paged = self.storm_paged(&storm).await?;
        let paged = self
            .page_storm(&storm, &summary, paged, channel, Some(ts))
            .await?;
        let root = self.summary_of(&storm, &summary, &paged);
        if let Err(e) = self.api.update_message(channel, ts, &root).await {
            warn!(storm = %storm.name(), error = %e, "storm summary not updated");
        }
        if summary.all_resolved()
            && self
                .store
                .claim_event(
                    &format!("storm-over:{}", storm.id),
                    "storm",
                    &storm.id,
                    now().as_millisecond(),
                )
                .await?
        {
            self.offer_resolve(&storm).await;
        }
        Ok(())
    }

    /// One page per severity per storm: each claimed once in the store, so replicas and
    /// repeated refreshes page once. In the thread `ts`, or, before the root is posted
    /// (`None`), recorded for the root to carry. Given the severities `paged` already,
    /// returns them with those paged now.
    async fn page_storm(
        &self,
        storm: &Incident,
        summary: &Summary,
        mut paged: Vec<Severity>,
        channel: &ChannelId,
        ts: Option<&str>,
    ) -> Result<Vec<Severity>, DeskError> {
        for severity in storm::pages_due(summary, &paged) {
            let key = format!("storm-page:{}:{severity}", storm.id);
            if !self
                .store
                .claim_event(&key, "storm", &storm.id, now().as_millisecond())
                .await?
            {
                continue;
            }
            let count = summary
                .open_by_severity
                .get(&severity)
                .copied()
                .unwrap_or(0);
            if let Some(ts) = ts {
                let page =
                    storm::storm_page(storm, severity, count, &self.config.roster, &self.policy);
                self.post(channel, Some(ts), &page, Priority::Page).await;
            }
            let who = self.config.roster.mention(Role::Primary);
            self.store
                .add_timeline(
                    &storm.id,
                    now(),
                    &storm::page_kind(severity),
                    "odorbot",
                    &format!("Paged primary {who} for {count} {severity} incidents"),
                )
                .await?;
            paged.push(severity);
        }
        paged.sort();
        Ok(paged)
    }

    async fn post(
        &self,
        channel: &crate::domain::ids::ChannelId,
        thread: Option<&str>,
        message: &Message,
        priority: Priority,
    ) {
        // Pings, escalations and status updates must arrive: through the outbox.
        self.outbox.send(channel, thread, message, priority).await;
    }

    /// Runs due timers until cancelled. Each claimed timer fires in its own task under its
    /// own lease, renewed while it runs, at most [`FIRING_BOUND`] at once; escalations and
    /// announcements are claimed first and always find a slot, so a slow post never holds
    /// up a page. Sleeps until the earliest claimable time, a local change, a firing's end
    /// or the poll interval (other replicas' timers).
    pub async fn run_scheduler(
        self: Arc<Self>,
        cancel: CancellationToken,
        beat: crate::supervisor::Beat,
    ) {
        let mut urgent: JoinSet<()> = JoinSet::new();
        let mut routine: JoinSet<()> = JoinSet::new();
        let lease_ms = self.config.timer_lease.as_millis() as i64;
        loop {
            crate::failpoint!("scheduler.tick");
            while let Some(done) = urgent.try_join_next() {
                reaped(done);
            }
            while let Some(done) = routine.try_join_next() {
                reaped(done);
            }
            for class in [Class::Urgent, Class::Routine] {
                let slots = free_slots(FIRING_BOUND, urgent.len(), routine.len());
                let (room, set) = match class {
                    Class::Urgent => (slots.urgent, &mut urgent),
                    Class::Routine => (slots.routine, &mut routine),
                };
                if room == 0 {
                    continue;
                }
                match self
                    .store
                    .claim_due(&self.owner, now(), lease_ms, room as i64, class)
                    .await
                {
                    Ok(timers) => {
                        for timer in timers {
                            set.spawn(self.clone().run_timer(timer));
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot claim timers"),
                }
            }
            let poll = self.config.scheduler_poll;
            let slots = free_slots(FIRING_BOUND, urgent.len(), routine.len());
            let mut next = None;
            for (class, room) in [
                (Class::Urgent, slots.urgent),
                (Class::Routine, slots.routine),
            ] {
                // A class without room waits for a firing to end, not for its due times.
                if room > 0
                    && let Ok(Some(at)) = self.store.next_due(class).await
                {
                    next = Some(next.map_or(at, |n: Timestamp| n.min(at)));
                }
            }
            let sleep = sleep_for(next, now(), poll);
            beat.alive();
            tokio::select! {
                () = cancel.cancelled() => {
                    drain(urgent, routine).await;
                    return;
                }
                () = tokio::time::sleep(sleep) => {}
                () = self.wake.notified() => {}
                Some(done) = urgent.join_next(), if !urgent.is_empty() => reaped(done),
                Some(done) = routine.join_next(), if !routine.is_empty() => reaped(done),
            }
        }
    }

    /// One timer's firing, holding its lease until it ends. A failure leaves the timer
    /// to be claimed again after [`RETRY`]; a lost lease ends it without a word more.
    async fn run_timer(self: Arc<Self>, timer: Timer) {
        let held = Held::start(
            self.store.clone(),
            timer.clone(),
            self.owner.clone(),
            self.config.timer_lease,
        );
        let result = self.fire(&timer, &held).await;
        drop(held);
        match result {
            Ok(()) => {}
            Err(DeskError::LeaseLost) => {
                warn!(kind = %timer.kind, subject = %timer.subject, "lost the timer's lease; another replica fires it")
            }
            Err(e) => {
                warn!(kind = %timer.kind, subject = %timer.subject, error = %e, retry_in_s = RETRY.as_secs(), "timer failed; it is retried");
                let at = plus(now(), RETRY);
                if let Err(e) = self.store.retry_timer(&timer, &self.owner, at).await {
                    warn!(error = %e, "cannot set the retry; the timer is retried after its lease");
                }
            }
        }
    }

    async fn fire(&self, timer: &Timer, held: &Held) -> Result<(), DeskError> {
        if timer.kind == MAINTENANCE {
            let Some(m) = self
                .catalog
                .maintenance()
                .iter()
                .find(|m| m.id.as_str() == timer.subject)
            else {
                self.store.complete(timer, &self.owner).await?;
                return Ok(());
            };
            if let Some(channel) = &self.config.maintenance_channel {
                held.confirm().await?;
                self.post_checklist(m.id.as_str(), channel, None, None)
                    .await?;
            }
            let next = self.next_maintenance(m, now().max(timer.due));
            self.store
                .schedule(MAINTENANCE, m.id.as_str(), next)
                .await?;
            return Ok(());
        }
        let Some(incident) = self.store.incident_by_id(&timer.subject).await? else {
            self.store.complete(timer, &self.owner).await?;
            return Ok(());
        };
        if incident.state == IncidentState::Resolved {
            self.store.complete(timer, &self.owner).await?;
            return Ok(());
        }
        match timer.kind.as_str() {
            STORM => self.refresh_storm(&incident, timer).await?,
            ANNOUNCE => {
                self.post_announcement(&incident, held).await?;
                self.store.complete(timer, &self.owner).await?;
            }
            ESCALATE => {
                let due = next_escalation(
                    &incident.clock(),
                    &self.policy,
                    &self.config.calendar,
                    ESCALATION_PATH.len(),
                );
                match due {
                    Some(e) if e.due <= now() => {
                        let why = match e.why {
                            Why::NotAcknowledged => "not acknowledged in time",
                            Why::NotResolved => "not resolved in time",
                        };
                        held.confirm().await?;
                        self.escalate(&incident, "odorbot", why).await?;
                    }
                    // The clock moved (acknowledged, escalated by hand): just re-arm.
                    _ => self.schedule(&incident).await?,
                }
            }
            STATUS => {
                // Due by the incident as it is now, not as whoever armed the timer read it.
                match next_status_update(&incident.clock(), incident.last_status_at, &self.policy) {
                    Some(due) if due <= now() => {
                        held.confirm().await?;
                        self.status_update(&incident).await?
                    }
                    _ => self.schedule(&incident).await?,
                }
            }
            other => warn!(kind = other, "unknown timer kind"),
        }
        Ok(())
    }

    /// Ready replicas of the deployments the incident's runbook entry watches (the API
    /// when it names none).
    async fn readiness_lines(&self, incident: &Incident) -> Vec<String> {
        let mut deployments: Vec<K8sName> = incident
            .entry
            .as_deref()
            .and_then(|id| self.catalog.alert(id))
            .map(|e| {
                e.signals
                    .iter()
                    .filter_map(|s| match s {
                        LiveSignal::DeploymentReady(d) => Some(d.clone()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if deployments.is_empty() {
            deployments.push(self.catalog.service().api.clone());
        }
        let Ok(cluster) = &self.runner.cluster else {
            return vec![verdict_line(
                "Deployments",
                "",
                &Verdict::Unknown("Kubernetes is not available".into()),
            )];
        };
        let checks = deployments
            .iter()
            .map(|d| async move { (d, cluster.rollout_status(d).await) });
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .map(|(d, status)| match status {
                Ok(s) => {
                    let value = format!("{}/{} ready", s.ready, s.desired);
                    let verdict = if s.ready >= s.desired && s.desired > 0 {
                        Verdict::Ok(s.message.clone())
                    } else {
                        Verdict::Breach(s.message.clone())
                    };
                    verdict_line(d.as_str(), &value, &verdict)
                }
                Err(e) => verdict_line(d.as_str(), "", &Verdict::Unknown(e.to_string())),
            })
            .collect()
    }

    async fn status_update(&self, incident: &Incident) -> Result<(), DeskError> {
        let t = now();
        // One post per period, however many replicas or stale timers reach this point.
        if !self
            .store
            .claim_status_update(&incident.id, incident.last_status_at, t)
            .await?
        {
            let fresh = self.store.incident_by_id(&incident.id).await?;
            return self.schedule(fresh.as_ref().unwrap_or(incident)).await;
        }
        let period_start = incident.last_status_at.unwrap_or(incident.opened_at);
        let since_last: Vec<_> = self
            .store
            .timeline(&incident.id)
            .await?
            .into_iter()
            .filter(|e| e.at >= period_start)
            .collect();
        let mut signals = self.readiness_lines(incident).await;
        signals.extend(self.probes.signals(&STATUS_SIGNALS).await.into_iter().map(
            |(signal, reading, source)| {
                let (verdict, value) =
                    signal_row(signal, &reading, source, &self.probes.thresholds);
                verdict_line(signal.title(), &value, &verdict)
            },
        ));
        let nudge = needs_nudge(incident.last_human_update_at, period_start)
            .then(|| self.config.roster.mention(Role::IncidentCommander));
        let update = StatusUpdate {
            incident,
            now: t,
            signals,
            since_last,
            nudge,
        };
        self.thread_msg(incident, &update.render(), Priority::Status)
            .await;
        self.store
            .add_timeline(&incident.id, t, "status", "odorbot", "Status update posted")
            .await?;
        let refreshed = self
            .store
            .incident_by_id(&incident.id)
            .await?
            .unwrap_or_else(|| incident.clone());
        self.schedule(&refreshed).await
    }
}

/// A claimed timer's lease, renewed in the background while its firing runs (three
/// times per term); the renewal stops when this is dropped. A renewal that finds the
/// timer no longer ours marks the lease lost.
struct Held {
    store: Store,
    timer: Timer,
    owner: String,
    lease: Duration,
    /// Cancelled once a renewal found the lease lost.
    lost: CancellationToken,
    renewer: tokio::task::JoinHandle<()>,
}

fn lease_end(lease: Duration) -> Timestamp {
    plus(now(), lease)
}

impl Held {
    fn start(store: Store, timer: Timer, owner: String, lease: Duration) -> Self {
        let lost = CancellationToken::new();
        let renewer = tokio::spawn({
            let (store, timer, owner, lost) =
                (store.clone(), timer.clone(), owner.clone(), lost.clone());
            async move {
                loop {
                    tokio::time::sleep(renew_every(lease)).await;
                    match store.renew(&timer, &owner, lease_end(lease)).await {
                        Ok(true) => {}
                        Ok(false) => {
                            lost.cancel();
                            return;
                        }
                        // The next renewal may still come in time; a lapsed lease that
                        // another replica took shows as lost then.
                        Err(e) => {
                            warn!(kind = %timer.kind, subject = %timer.subject, error = %e, "cannot renew a timer's lease")
                        }
                    }
                }
            }
        });
        Self {
            store,
            timer,
            owner,
            lease,
            lost,
            renewer,
        }
    }

    /// Renews the lease now: the fence before each of a firing's effects, so nothing is
    /// posted for a timer another replica may be firing.
    ///
    /// # Errors
    /// [`DeskError::LeaseLost`], or the store's error.
    async fn confirm(&self) -> Result<(), DeskError> {
        if self.lost.is_cancelled() {
            return Err(DeskError::LeaseLost);
        }
        if self
            .store
            .renew(&self.timer, &self.owner, lease_end(self.lease))
            .await?
        {
            Ok(())
        } else {
            self.lost.cancel();
            Err(DeskError::LeaseLost)
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn reaped(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        warn!(error = %e, "a timer's firing ended abnormally; it is retried after its lease");
    }
}

/// Shutdown: firings in flight get [`DRAIN`] to finish; the rest are left to their
/// leases, which lapse, and fire again on a replica that runs.
async fn drain(mut urgent: JoinSet<()>, mut routine: JoinSet<()>) {
    let all = async {
        while let Some(done) = urgent.join_next().await {
            reaped(done);
        }
        while let Some(done) = routine.join_next().await {
            reaped(done);
        }
    };
    if tokio::time::timeout(DRAIN, all).await.is_err() {
        warn!(
            unfinished = urgent.len() + routine.len(),
            "timer firings still running at shutdown; their leases lapse and they fire again"
        );
    }
}
