//! Inbound event → idempotency claim → domain decision → effects (replies).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::domain::access::{self, Policy, Scope};
use crate::domain::command::{self, Command, DbView, IncidentVerb, VERBS, help_text};
use crate::domain::diagnostics;
use crate::domain::evidence;
use crate::domain::ids::{ChannelId, K8sName, UserId};

use crate::domain::inbound::{BlockAction, Inbound, InboundEvent, SlashCommand, ViewSubmission};
use crate::domain::status::SelfStatus;
use crate::domain::view::{Block, escape};
use crate::domain::view::{Message, code_span};
use crate::engine::actions::Runner;
use crate::engine::approvals::Approvals;
use crate::engine::coalesce::Coalesce;
use crate::engine::guide::Guide;
use crate::engine::incidents::{Desk, DeskError};
use crate::engine::people::People;
use crate::engine::replies::Replies;
use crate::engine::{Connection, InboundSink};
use crate::metrics::{CommandLabels, Metrics};
use crate::probes::Probes;
use crate::runbook::Catalog;
use crate::runbook::actions::{Action, Bound, Classified};
use crate::slack::api::SlackApi;
use crate::store::Store;

/// Bound on store reads made while answering a command.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The listeners' side of the queue.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Inbound>,
}

impl EngineHandle {
    /// Events waiting to be processed.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

impl InboundSink for EngineHandle {
    fn offer(&self, inbound: Inbound) -> Result<(), Box<Inbound>> {
        self.tx
            .try_send(inbound)
            .map_err(|e| Box::new(e.into_inner()))
    }
}

/// What the dispatcher works with.
pub struct Parts {
    pub store: Store,
    pub api: Arc<SlackApi>,
    pub probes: Arc<Probes>,
    pub desk: Arc<Desk>,
    pub runner: Arc<Runner>,
    pub approvals: Arc<Approvals>,
    pub guide: Arc<Guide>,
    pub catalog: Arc<Catalog>,
    pub people: Arc<People>,
    /// Where every reply to a command or click goes: queued, never sent by the worker.
    pub replies: Arc<Replies>,
    pub access: Policy,
    pub metrics: Metrics,
    pub socket: Arc<dyn Connection>,
    /// Socket connections configured, for `/odor status`.
    pub connections_wanted: usize,
}

/// Processes inbound events with bounded concurrency.
pub struct Dispatcher {
    parts: Parts,
    started: Instant,
    queue: EngineHandle,
    /// `/odor status` asked by many at once is gathered once (the picture is the same for
    /// everyone; access rules were checked before).
    status: Coalesce<Message>,
}

impl std::ops::Deref for Dispatcher {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.parts
    }
}

impl Dispatcher {
    pub fn new(parts: Parts, queue_capacity: usize) -> (Arc<Self>, mpsc::Receiver<Inbound>) {
        let (tx, rx) = mpsc::channel(queue_capacity);
        let this = Self {
            parts,
            started: Instant::now(),
            queue: EngineHandle { tx },
            status: Coalesce::default(),
        };
        (Arc::new(this), rx)
    }

    pub fn handle(&self) -> EngineHandle {
        self.queue.clone()
    }

    /// Takes events off the queue until cancelled, then finishes what was already
    /// queued: those envelopes were acknowledged, so dropping them would lose them.
    pub async fn run(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Inbound>,
        workers: usize,
        cancel: CancellationToken,
        tasks: TaskTracker,
    ) {
        let permits = Arc::new(Semaphore::new(workers));
        loop {
            let inbound = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                next = rx.recv() => match next {
                    Some(i) => i,
                    None => break,
                },
            };
            crate::failpoint!("dispatcher.next");
            self.spawn_one(inbound, &permits, &tasks).await;
        }
        rx.close();
        let mut drained = 0;
        while let Some(inbound) = rx.recv().await {
            drained += 1;
            self.spawn_one(inbound, &permits, &tasks).await;
        }
        info!(drained, "dispatcher stopped taking events");
    }

    async fn spawn_one(
        self: &Arc<Self>,
        inbound: Inbound,
        permits: &Arc<Semaphore>,
        tasks: &TaskTracker,
    ) {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let this = self.clone();
        tasks.spawn(async move {
            this.process(inbound).await;
            drop(permit);
        });
    }

    /// Processes one event at most once, whichever process or connection received it.
    pub async fn process(&self, inbound: Inbound) {
        crate::failpoint!("dispatcher.process");
        let key = inbound.idempotency_key();
        let now_ms = unix_ms(inbound.received_at);
        match self
            .store
            .claim_event(&key, inbound.kind(), &inbound.envelope_id, now_ms)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                self.metrics.duplicates.inc();
                debug!(envelope_id = %inbound.envelope_id, key, "duplicate delivery skipped");
                return;
            }
            Err(e) => {
                // Without the claim, once-only cannot be promised: do nothing, say so.
                error!(envelope_id = %inbound.envelope_id, error = %e, "cannot record inbound event");
                let reply = Message::text(
                    ":x: odorbot cannot reach its store right now, so it did nothing. Try again in a minute.",
                );
                self.reply(response_url(&inbound.event), inbound.received_at, &reply)
                    .await;
                return;
            }
        }
        let issued = inbound.received_at;
        match &inbound.event {
            InboundEvent::SlashCommand(cmd) => self.on_command(cmd, issued).await,
            InboundEvent::BlockAction(action) => self.on_action(action, issued).await,
            InboundEvent::ViewSubmission(view) => self.on_view(view).await,
        }
    }

    /// A submitted "Post update" modal: the text becomes the incident's update.
    async fn on_view(&self, view: &ViewSubmission) {
        if view.callback_id == RUN_MODAL {
            return self.on_run_form(view).await;
        }
        if view.callback_id != UPDATE_MODAL {
            warn!(callback_id = %view.callback_id, "unrecognised modal submission");
            return;
        }
        let text = view.text.trim();
        if text.is_empty() {
            return;
        }
        // The button that opened the modal was checked in its channel; a submission has none.
        let anywhere = self.anywhere();
        if self
            .allowed(&anywhere, Scope::Respond, "update", &view.user, None)
            .await
            .is_err()
        {
            return;
        }
        let incident = match self.store.incident_by_id(&view.private_metadata).await {
            Ok(Some(i)) => i,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "incident for a submitted update not readable");
                return;
            }
        };
        if let Err(e) = self.desk.update(&incident, view.user.as_str(), text).await {
            warn!(incident = %incident.name(), error = %e, "update from a modal not posted");
        }
    }

    /// `issued`: when the command arrived, which is when its `response_url` began to live.
    async fn on_command(&self, cmd: &SlashCommand, issued: SystemTime) {
        let context = command::Context {
            catalog: &self.catalog,
            now_unix: unix_now(),
        };
        let (verb, outcome, reply) = match command::parse(&cmd.text, &context) {
            Ok(command) => {
                let verb = command.verb();
                let allowed = match command.scope() {
                    Some(scope) => {
                        self.allowed(&self.access, scope, verb, &cmd.user, Some(&cmd.channel))
                            .await
                    }
                    None => Ok(()),
                };
                match allowed {
                    Ok(()) => (verb, "ok", self.execute(command, cmd).await),
                    Err(denied) => (verb, "denied", denied),
                }
            }
            // The runbook refuses the action: one wording and one count with every failure.
            Err(command::ParseError::Action { verb, error }) => {
                info!(user = %cmd.user, error = %error, "command refused by the runbook");
                (verb, "rejected", self.runner.failed(verb, &error.into()))
            }
            Err(e) => {
                info!(user = %cmd.user, error = %e, "command rejected");
                (
                    e.verb(),
                    "rejected",
                    Message::text(format!(":warning: {e}")),
                )
            }
        };
        self.metrics
            .commands
            .get_or_create(&CommandLabels { verb, outcome })
            .inc();
        self.reply(Some(&cmd.response_url), issued, &reply).await;
    }

    async fn execute(&self, command: Command, cmd: &SlashCommand) -> Message {
        let (user, channel) = (&cmd.user, &cmd.channel);
        let p = &self.probes;
        match command {
            Command::IncidentOpen { severity, title } => {
                match self.desk.open(severity, &title, user.as_str()).await {
                    Ok(i) => Message::text(format!(
                        "Opened {} ({severity}); its thread is in the incident channel.",
                        i.name()
                    )),
                    Err(e) => desk_error(&e),
                }
            }
            Command::Incident { verb, number } => {
                let incident = match self.desk.find(number).await {
                    Ok(i) => i,
                    Err(e) => return desk_error(&e),
                };
                let result = match verb {
                    IncidentVerb::Ack => self.desk.ack(&incident, user.as_str()).await,
                    IncidentVerb::Escalate => {
                        self.desk
                            .escalate(&incident, user.as_str(), "escalated by hand")
                            .await
                    }
                    IncidentVerb::Resolve => self.desk.resolve(&incident, user.as_str()).await,
                    IncidentVerb::Thread => self.desk.give_thread(&incident).await,
                    IncidentVerb::Timeline => self
                        .desk
                        .timeline(&incident)
                        .await
                        .map(|md| format!("```{}```", escape(&md))),
                };
                result.map_or_else(|e| desk_error(&e), Message::text)
            }
            Command::Update { number, text } => {
                let result = match self.desk.find(Some(number)).await {
                    Ok(i) => self.desk.update(&i, user.as_str(), &text).await,
                    Err(e) => Err(e),
                };
                result.map_or_else(|e| desk_error(&e), Message::text)
            }
            Command::Oncall => Message::text(format!("*On call*\n{}", self.desk.oncall())),
            Command::Incidents => self
                .desk
                .list()
                .await
                .map_or_else(|e| desk_error(&e), Message::text),
            Command::Approvals => self.approvals.pending().await,
            Command::Audit { since, json } => self.approvals.audit_report(since, json).await,
            Command::Evidence { number, json } => self.evidence(number, json, user, channel).await,
            Command::Cluster { action, reason, .. } => match action.classify() {
                Classified::Query(query) => self.runner.run(&query).await,
                // With a reason, a change becomes a request; without one, its preview.
                Classified::Change(change) => match reason {
                    Some(reason) => {
                        self.approvals
                            .request(&cmd.text, &change, &reason, user, channel)
                            .await
                    }
                    None => self.runner.preview(&change, user.as_str()).await,
                },
            },
            Command::Diagnose { alert } => self.diagnose(&alert).await,
            Command::Contacts => Message::text(self.desk.contacts()),
            Command::Checklist { name } => self
                .desk
                .post_checklist(&name, channel, None, None)
                .await
                .map_or_else(|e| desk_error(&e), Message::text),
            Command::Run {
                procedure,
                params,
                reason,
                incident,
            } => {
                let incident = match incident {
                    None => None,
                    Some(n) => match self.desk.find(Some(n)).await {
                        Ok(i) => Some(i.id),
                        Err(e) => return desk_error(&e),
                    },
                };
                self.guide
                    .start(&procedure, params, incident, &reason, user, channel)
                    .await
            }
            Command::Help { verb } => {
                let mut help = Message::text(help_text(VERBS, verb));
                if verb.is_none() {
                    help.blocks
                        .extend(crate::domain::guide::help_buttons(&self.catalog));
                }
                help
            }
            Command::Status => {
                self.status
                    .run(|| async {
                        p.picture(self.self_status(), self.readiness())
                            .await
                            .render(&p.thresholds, &p.links)
                    })
                    .await
            }
            Command::Db {
                view: DbView::Connections,
                ..
            } => {
                let (counts, size) = tokio::join!(p.db_connections(), p.db_size());
                diagnostics::render_connections(&counts, &size, &p.links)
            }
            Command::Db {
                view: DbView::SlowQueries,
                older_than,
            } => {
                let (running, top) =
                    tokio::join!(p.db_long_running(older_than), p.db_top_statements(10));
                diagnostics::render_slow_queries(&running, older_than, &top, &p.links)
            }
            Command::Db {
                view: DbView::Pools,
                ..
            } => diagnostics::render_pools(&p.pgbouncer_pools().await, &p.links),
            Command::Cache { pattern } => {
                let (stats, keys) = tokio::join!(p.cache_stats(), async {
                    match &pattern {
                        Some(glob) => Some(p.cache_keys(glob, 20).await),
                        None => None,
                    }
                });
                diagnostics::render_cache(&stats, keys.as_ref(), &p.thresholds, &p.links)
            }
            Command::Certs => {
                // Bounded like every source of a reply: the API server's own bound is longer.
                let limit = p.reply_limit();
                let certificates = async {
                    match &self.runner.cluster {
                        Ok(c) => tokio::time::timeout(limit.after, c.certificates())
                            .await
                            .map_err(|_| limit.expired().to_string())
                            .and_then(|r| r.map_err(|e| e.to_string())),
                        Err(why) => Err(format!("Kubernetes is not available: {why}")),
                    }
                };
                let ((host, cert), certificates) = tokio::join!(p.tls(), certificates);
                let mut reply = diagnostics::render_tls(&host, &cert, &p.links);
                let lines = match certificates {
                    Ok(c) if c.is_empty() => {
                        "No cert-manager certificates in the namespace.".to_owned()
                    }
                    Ok(c) => format!(
                        "*cert-manager*\n{}",
                        crate::domain::k8s_view::certificate_lines(&c).join("\n")
                    ),
                    Err(why) => format!("❔ *cert-manager*: unknown: {}", escape(&why)),
                };
                reply.blocks.insert(2, Block::Section(lines));
                reply
            }
            Command::Metrics { signal } => {
                let (reading, source) = p.signal(signal).await;
                diagnostics::render_signal(signal, &reading, source, &p.thresholds, &p.links)
            }
        }
    }

    /// Runs every investigation step of a runbook alert, concurrently, and gathers the
    /// findings in one reply.
    async fn diagnose(&self, id: &str) -> Message {
        let Some(alert) = self.catalog.alert(id) else {
            let ids: Vec<String> = self
                .catalog
                .alerts()
                .iter()
                .map(|a| a.id.to_string())
                .collect();
            return Message::text(format!(
                ":warning: {} is not a runbook alert; one of {}.",
                code_span(id),
                ids.iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        self.runner.diagnose(alert, "odorbot").await
    }

    /// Ready pods of the runbook's deployments, each bounded by the probe timeout.
    async fn readiness(&self) -> Vec<crate::domain::diagnostics::Readiness> {
        let deployments = self.catalog.objects("deployments");
        let cluster = match &self.runner.cluster {
            Ok(c) => c,
            Err(why) => {
                let why = format!("Kubernetes is not available: {why}");
                return deployments
                    .iter()
                    .map(|d| (d.clone(), Err(why.clone())))
                    .collect();
            }
        };
        let limit = self.probes.reply_limit();
        let checks = deployments.iter().map(|d| async move {
            // The catalog checked every name when it compiled.
            let name: crate::domain::ids::K8sName = d.parse().expect("a valid name");
            let status =
                match tokio::time::timeout(limit.after, cluster.rollout_status(&name)).await {
                    Ok(status) => status.map_err(|e| e.to_string()),
                    Err(_) => Err(limit.expired().to_string()),
                };
            (d.clone(), status.map(|s| (s.ready, s.desired)))
        });
        futures_util::future::join_all(checks).await
    }

    async fn self_status(&self) -> SelfStatus {
        let store = match tokio::time::timeout(STORE_TIMEOUT, self.store.open_work()).await {
            Ok(Ok(open)) => Ok(open),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {}s", STORE_TIMEOUT.as_secs())),
        };
        SelfStatus {
            version: env!("CARGO_PKG_VERSION"),
            uptime: self.started.elapsed(),
            slack_connections: self.socket.open(),
            slack_connections_wanted: self.connections_wanted,
            store_backend: self.store.backend().name(),
            store,
            queue_depth: self.queue.depth(),
        }
    }

    async fn on_action(&self, action: &BlockAction, issued: SystemTime) {
        let reply = match action.action_id.split(':').collect::<Vec<_>>().as_slice() {
            ["incident", verb, id] => self.on_incident_button(verb, id, action).await,
            ["approval", verb, id] => self.approvals.on_button(verb, id, &action.user).await,
            ["recovery", id, index] => self.on_recovery_button(id, index, action).await,
            ["runstart", procedure, id] => self.on_run_button(procedure, id, action).await,
            ["runhelp", procedure] => self.on_help_run_button(procedure, action).await,
            ["restorecleanup", restore] => self.on_restore_cleanup_button(restore, action).await,
            ["run", ..] => match crate::domain::guide::parse_button(&action.action_id) {
                Some((control, id)) => self.guide.control(control, id, &action.user).await,
                None => Message::text(":warning: That run button is malformed; nothing was done."),
            },
            ["checklist", ..] => match crate::domain::checklist::parse_button(&action.action_id) {
                Some((id, index)) => self
                    .desk
                    .toggle_checklist(
                        id,
                        index,
                        action.user.as_str(),
                        action.channel.as_ref().zip(action.message_ts.as_deref()),
                    )
                    .await
                    .map_or_else(|e| desk_error(&e), Message::text),
                None => {
                    Message::text(":warning: That checklist button is malformed; nothing was done.")
                }
            },
            _ => {
                // A click on anything else is answered plainly and changes nothing.
                warn!(user = %action.user, action_id = %action.action_id, "unrecognised button");
                Message::text(format!(
                    ":warning: odorbot does not recognise the button {}; nothing was done.",
                    code_span(&action.action_id)
                ))
            }
        };
        self.reply(action.response_url.as_deref(), issued, &reply)
            .await;
    }

    /// A recovery button in an incident thread: the runbook step's own typed action becomes
    /// an approval request, through the same two-person flow as a typed command.
    async fn on_recovery_button(&self, id: &str, index: &str, action: &BlockAction) -> Message {
        let incident = match self.store.incident_by_id(id).await {
            Ok(Some(i)) => i,
            Ok(None) => return Message::text(":warning: That incident no longer exists."),
            Err(e) => return desk_error(&DeskError::Store(e)),
        };
        let Some(recovery) = index
            .parse()
            .ok()
            .and_then(|i| self.desk.recovery_action(&incident, i))
        else {
            return Message::text(
                ":warning: That recovery step is not available; nothing was done.",
            );
        };
        let Some(channel) = self.clicked_channel(action) else {
            return Message::text(":warning: No channel to post the approval card in.");
        };
        self.approvals
            .request(
                &recovery.asked,
                &recovery.change,
                &recovery.reason,
                &action.user,
                &channel,
            )
            .await
    }

    /// Where a click's card or run goes: the clicked message's channel, else the incident
    /// channel.
    fn clicked_channel(&self, action: &BlockAction) -> Option<ChannelId> {
        action
            .channel
            .clone()
            .or_else(|| self.desk.incident_channel().cloned())
    }

    /// The button under a test restore's report: a request to delete that restore.
    async fn on_restore_cleanup_button(&self, restore: &str, action: &BlockAction) -> Message {
        let Ok(name) = restore.parse::<K8sName>() else {
            return Message::text(":warning: That clean-up button is malformed; nothing was done.");
        };
        let cleanup = Action::<Bound>::VeleroRestoreCleanup {
            restore: Some(name.clone()),
        };
        let (Classified::Change(change), Some(channel)) =
            (cleanup.classify(), self.clicked_channel(action))
        else {
            return Message::text(":warning: No channel to post the approval card in.");
        };
        self.approvals
            .request(
                &format!("clean-up button of test restore {name}"),
                &change,
                &format!("clean up test restore {name} after checking it"),
                &action.user,
                &channel,
            )
            .await
    }

    /// A procedure offered in an incident's thread, started as a guided run for it.
    /// `/odor evidence`: the incident's evidence listed in the reply and exported as a file
    /// in the channel, off the worker; the access is audited first, whatever follows.
    async fn evidence(
        &self,
        number: Option<i64>,
        json: bool,
        user: &UserId,
        channel: &ChannelId,
    ) -> Message {
        let incident = match self.desk.find(number).await {
            Ok(i) => i,
            Err(e) => return desk_error(&e),
        };
        let name = incident.name();
        let items = match self.store.evidence(&incident.id).await {
            Ok(items) => items,
            Err(e) => return desk_error(&DeskError::Store(e)),
        };
        let form = if json { "JSON" } else { "text" };
        self.approvals
            .audit(
                user.as_str(),
                "evidence",
                &name,
                &format!("exported {} items as {form}", items.len()),
            )
            .await;
        if items.is_empty() {
            return evidence::render_list(&name, &items);
        }
        let at = jiff::Timestamp::now().as_millisecond();
        let body = evidence::export(&name, user.as_str(), at, &items, json);
        let file = evidence::file_name(&name, json);
        let comment = format!("Evidence for {name}, exported for <@{user}> ({form}).");
        let (api, channel) = (self.api.clone(), channel.clone());
        // A lost upload is asked for again; it is an export, and its access is audited.
        tokio::spawn(async move {
            if let Err(e) = api
                .upload_file(&channel, None, &file, body.into_bytes(), &comment)
                .await
            {
                warn!(error = %e, file, "evidence export not uploaded");
            }
        });
        evidence::render_list(&name, &items)
    }

    /// The access policy without its channel rule, for a modal's submission: Slack sends
    /// none, and the button that opened the modal was checked in its channel.
    fn anywhere(&self) -> Policy {
        Policy {
            channels: Vec::new(),
            ..self.access.clone()
        }
    }

    /// A click that starts a procedure answers to `/odor run`'s access rule, in its channel.
    async fn may_run(&self, action: &BlockAction) -> Result<(), Message> {
        self.allowed(
            &self.access,
            Scope::Sensitive,
            "run",
            &action.user,
            action.channel.as_ref(),
        )
        .await
    }

    /// A procedure button of `/odor help`: the form asking why opens; its submission starts
    /// the run (`on_view`), and the answer goes to this click's `response_url`.
    async fn on_help_run_button(&self, procedure: &str, action: &BlockAction) -> Message {
        if let Err(denied) = self.may_run(action).await {
            return denied;
        }
        let Some(p) = self.catalog.procedure(procedure) else {
            return Message::text(format!(":warning: No procedure {}.", code_span(procedure)));
        };
        let (Some(channel), Some(trigger)) = (self.clicked_channel(action), &action.trigger_id)
        else {
            return Message::text(format!(
                "Start it with `/odor run {} --reason \"…\"`.",
                p.id
            ));
        };
        let form = RunForm {
            procedure: p.id.to_string(),
            channel: channel.to_string(),
            response_url: action.response_url.clone(),
            clicked_ms: unix_ms(SystemTime::now()),
        };
        match self
            .api
            .open_text_modal(
                trigger,
                "Run a procedure",
                &format!(
                    "Why run {}? Each change step's request carries this reason.",
                    p.title
                ),
                RUN_MODAL,
                &form.encode(),
            )
            .await
        {
            Ok(()) => Message::text(format!("The form to start *{}* is open.", escape(&p.title))),
            Err(e) => desk_error(&DeskError::Slack(e.to_string())),
        }
    }

    /// A submitted procedure form: the run starts in the channel the button was in.
    async fn on_run_form(&self, view: &ViewSubmission) {
        let Some(form) = RunForm::decode(&view.private_metadata) else {
            warn!("a procedure form came back without its metadata");
            return;
        };
        let reason = view.text.trim();
        // The button was checked in its channel; the submission is checked again.
        let anywhere = self.anywhere();
        let reply = match (
            self.allowed(&anywhere, Scope::Sensitive, "run", &view.user, None)
                .await,
            form.channel.parse::<ChannelId>(),
        ) {
            (Err(denied), _) => denied,
            (_, Err(_)) => {
                Message::text(":warning: The form named no channel; nothing was started.")
            }
            (Ok(()), _) if reason.is_empty() => {
                Message::text(":warning: A run needs a reason; nothing was started.")
            }
            (Ok(()), Ok(channel)) => {
                self.guide
                    .start(
                        &form.procedure,
                        Vec::new(),
                        None,
                        reason,
                        &view.user,
                        &channel,
                    )
                    .await
            }
        };
        let clicked =
            UNIX_EPOCH + Duration::from_millis(u64::try_from(form.clicked_ms).unwrap_or(0));
        self.reply(form.response_url.as_deref(), clicked, &reply)
            .await;
    }

    async fn on_run_button(&self, procedure: &str, id: &str, action: &BlockAction) -> Message {
        let incident = match self.store.incident_by_id(id).await {
            Ok(Some(i)) => i,
            Ok(None) => return Message::text(":warning: That incident no longer exists."),
            Err(e) => return desk_error(&DeskError::Store(e)),
        };
        if let Err(denied) = self.may_run(action).await {
            return denied;
        }
        let Some(channel) = self.clicked_channel(action) else {
            return Message::text(":warning: No channel to post the run in.");
        };
        let reason = format!("{}: {}", incident.name(), incident.title);
        self.guide
            .start(
                procedure,
                Vec::new(),
                Some(incident.id.clone()),
                &reason,
                &action.user,
                &channel,
            )
            .await
    }

    async fn on_incident_button(&self, verb: &str, id: &str, action: &BlockAction) -> Message {
        let incident = match self.store.incident_by_id(id).await {
            Ok(Some(i)) => i,
            Ok(None) => return Message::text(":warning: That incident no longer exists."),
            Err(e) => return desk_error(&DeskError::Store(e)),
        };
        let scope = if verb == "resolve" {
            Scope::Resolve
        } else {
            Scope::Respond
        };
        if let Err(denied) = self
            .allowed(
                &self.access,
                scope,
                verb,
                &action.user,
                action.channel.as_ref(),
            )
            .await
        {
            return denied;
        }
        let user = action.user.as_str();
        let result = match verb {
            "ack" => self.desk.ack(&incident, user).await,
            "escalate" => {
                self.desk
                    .escalate(&incident, user, "escalated by hand")
                    .await
            }
            "resolve" => self.desk.resolve(&incident, user).await,
            "update" => match &action.trigger_id {
                Some(trigger) => self
                    .api
                    .open_text_modal(
                        trigger,
                        &format!("Update {}", incident.name()),
                        "What is happening now?",
                        UPDATE_MODAL,
                        &incident.id,
                    )
                    .await
                    .map(|()| "The update form is open.".to_owned())
                    .map_err(|e| DeskError::Slack(e.to_string())),
                None => Ok(format!(
                    "Post it with `/odor update {} &lt;text&gt;`.",
                    incident.name()
                )),
            },
            _ => Ok(format!(
                "odorbot does not recognise the incident button {}.",
                code_span(verb)
            )),
        };
        result.map_or_else(|e| desk_error(&e), Message::text)
    }

    /// Whether `user` may use `scope` here; a refusal is audited and is the reply, naming
    /// the role or channel needed.
    async fn allowed(
        &self,
        policy: &Policy,
        scope: Scope,
        verb: &str,
        user: &UserId,
        channel: Option<&ChannelId>,
    ) -> Result<(), Message> {
        let wanted = policy.grantees(scope);
        let held = self.people.which(user.as_str(), wanted).await;
        let Err(denial) = access::check(policy, scope, channel, |g| held.contains(&g)) else {
            return Ok(());
        };
        info!(user = %user, verb, scope = scope.key(), "command denied");
        let place = channel.map_or_else(String::new, |c| format!(" in {c}"));
        let detail = format!("{verb}{place}: {}", denial.audit_line());
        if let Err(e) = self
            .store
            .audit(
                jiff::Timestamp::now(),
                user.as_str(),
                "denied",
                verb,
                &detail,
            )
            .await
        {
            warn!(error = %e, "audit entry for a denial not written");
        }
        Err(Message::text(denial.reply(verb)))
    }

    /// Answers the person who acted, through the event's `response_url` (issued when the
    /// event arrived): queued for the reply sender, so the worker is free at once whatever
    /// Slack does with it.
    async fn reply(&self, url: Option<&str>, issued: SystemTime, reply: &Message) {
        if let Some(url) = url {
            let queued = self.replies.send(url, reply, false, issued).await;
            debug!(?queued, "reply handed on");
        }
    }
}

/// The `callback_id` of the "Post update" modal.
const UPDATE_MODAL: &str = "incident-update";
/// The `callback_id` of the form `/odor help`'s procedure buttons open.
const RUN_MODAL: &str = "procedure-run";

/// What a procedure form carries through Slack and back (`private_metadata`, at most 3000
/// characters): the procedure, where to post the run, and where to answer the click.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunForm {
    procedure: String,
    channel: String,
    response_url: Option<String>,
    /// When the click came, from which its `response_url` lives.
    clicked_ms: i64,
}

impl RunForm {
    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// Incident errors echo what was asked for (an incident, a checklist name): escaped.
fn desk_error(e: &DeskError) -> Message {
    Message::text(format!(":warning: {}", escape(&e.to_string())))
}

fn response_url(event: &InboundEvent) -> Option<&str> {
    match event {
        InboundEvent::SlashCommand(c) => Some(&c.response_url),
        InboundEvent::BlockAction(a) => a.response_url.as_deref(),
        InboundEvent::ViewSubmission(_) => None,
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
