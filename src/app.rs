//! The composition root: builds every part from the configuration, owns every task
//! under one cancellation token, and shuts down within the grace period.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::cluster;
use crate::cluster::Cluster;
use crate::config::{Config, LogFormat};
use crate::engine::actions::Runner;
use crate::engine::approvals::Approvals;
use crate::engine::guide::Guide;
use crate::engine::incidents::Desk;
use crate::engine::intake::Intake;
use crate::engine::outbox::Outbox;
use crate::engine::people::People;
use crate::engine::replies::Replies;
use crate::engine::{Dispatcher, Parts};
use crate::http::{self, AdminState};
use crate::metrics::Metrics;
use crate::os::AckThread;
use crate::probes::Probes;
use crate::runbook;
use crate::slack::api::{ApiError, SlackApi};
use crate::slack::socket::{SocketMode, SocketSettings, SocketState};
use crate::store::{Backend, Store};
use crate::supervisor::{Beat, Supervisor};

/// Idempotency keys are kept this long; Slack redelivers within minutes.
const KEEP_EVENT_KEYS: Duration = Duration::from_secs(7 * 24 * 3600);

/// kube's HTTP layer logs every failed call as an ERROR of its own, without saying what
/// odorbot was doing; odorbot logs the failure once, with that context. A filter that
/// names kube's layer itself is left as it is.
const KUBE_HTTP_LAYER: &str = "kube_client::client::builder";

fn log_filter(configured: &str) -> String {
    if configured.contains(KUBE_HTTP_LAYER) {
        configured.to_owned()
    } else {
        format!("{configured},{KUBE_HTTP_LAYER}=off")
    }
}

/// Installs the global tracing subscriber (stderr; JSON or text).
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(&config.log.filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a collected log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The store's channel schedule as the Slack client's pacing shared between replicas.
struct StorePace(Store);

impl crate::slack::api::SharedPace for StorePace {
    fn book<'a>(
        &'a self,
        channel: &'a str,
        interval: Duration,
        tolerance: Duration,
        priority: crate::domain::outbox::Priority,
    ) -> futures_util::future::BoxFuture<'a, Option<Duration>> {
        Box::pin(async move {
            let now = jiff::Timestamp::now();
            match self
                .0
                .book_slot(channel, now, interval, tolerance, priority)
                .await
            {
                Ok(None) => None,
                Ok(Some(at)) => {
                    Some(Duration::try_from(at.duration_since(now)).unwrap_or_default())
                }
                Err(e) => {
                    warn!(error = %e, "cannot book the channel's pacing in the store; pacing alone");
                    None
                }
            }
        })
    }
}

/// Runs odorbot until SIGTERM or SIGINT; the socket-mode connections run on `acks`.
///
/// # Errors
/// Start-up failures (store, Slack credentials, the admin port), each with what to fix.
pub async fn run(config: Config, acks: AckThread) -> anyhow::Result<()> {
    #[cfg(debug_assertions)]
    crate::failpoint::configure_from_env().context("ODORBOT_FAILPOINTS")?;
    let metrics = Metrics::new();
    let store = Store::open(&config.store.url, config.store.max_connections)
        .await
        .context("cannot open the store (check store.url / ODORBOT_STORE_URL)")?;
    info!(backend = store.backend().name(), "store ready");
    let api = SlackApi::new(&config.slack, metrics.clone())?;
    // Replicas share a PostgreSQL store; SQLite serves one process, whose own pacing is
    // the whole channel's, so booking its slots in the store would only add a write a post.
    let api = Arc::new(match store.backend() {
        Backend::Postgres => api.with_shared_pacing(Arc::new(StorePace(store.clone()))),
        Backend::Sqlite => api,
    });
    match api.auth_test(Duration::from_secs(15)).await {
        Ok(me) => info!(team = %me.team_id, bot_user = %me.user_id, "authenticated with Slack"),
        Err(ApiError::Refused { code, .. }) => {
            bail!("Slack refused the bot token ({code}): check SLACK_BOT_TOKEN or its file")
        }
        // Slack may be briefly unreachable; the connection loop keeps trying.
        Err(e) => warn!(error = %e, "Slack not reachable yet; continuing"),
    }
    let listener = http::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
    info!(addr = %config.http.listen, "admin server listening");

    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let supervisor = Supervisor::new();
    let socket_state = Arc::new(SocketState::default());
    let catalog = Arc::new(
        runbook::load_from(config.runbook.path.as_deref())
            .map_err(|e| anyhow::anyhow!("the runbook catalog is invalid:\n{e}"))?,
    );
    let probes = Arc::new(Probes::new(&config.probes)?);
    // Without Kubernetes credentials odorbot still serves Slack; cluster verbs say why.
    let cluster = match Cluster::connect(&config.kubernetes).await {
        Ok(c) => Ok(Arc::new(c)),
        Err(e) => {
            warn!(error = %e, "no Kubernetes access; cluster verbs will say so");
            Err(e.to_string())
        }
    };
    let runner = Arc::new(Runner {
        cluster,
        probes: probes.clone(),
        catalog: catalog.clone(),
        metrics: metrics.clone(),
    });
    let outbox = Arc::new(Outbox::new(
        store.clone(),
        api.clone(),
        config.slack.resend_check,
        metrics.clone(),
    ));
    let replies = Arc::new(Replies::new(store.clone(), api.clone(), tasks.clone()));
    let people = Arc::new(People::new(
        api.clone(),
        config.approvals.roles.clone(),
        config.incidents.roster.clone(),
        config.approvals.group_cache_ttl,
    ));
    let approvals = Arc::new(Approvals::new(
        store.clone(),
        api.clone(),
        runner.clone(),
        config.approvals.clone(),
        tasks.clone(),
        outbox.clone(),
        people.clone(),
    ));
    let guide = Arc::new(Guide::new(
        store.clone(),
        api.clone(),
        runner.clone(),
        approvals.clone(),
        outbox.clone(),
        catalog.clone(),
        config.approvals.lease,
    ));
    let desk = Arc::new(Desk::new(
        store.clone(),
        api.clone(),
        runner.clone(),
        catalog.clone(),
        config.incidents.clone(),
        outbox.clone(),
    ));
    let intake = Arc::new(Intake::new(store.clone(), desk.clone()));
    let (dispatcher, queue) = Dispatcher::new(
        Parts {
            store: store.clone(),
            api: api.clone(),
            probes,
            desk: desk.clone(),
            runner,
            approvals: approvals.clone(),
            guide: guide.clone(),
            catalog,
            people,
            replies: replies.clone(),
            access: config.access.clone(),
            metrics: metrics.clone(),
            socket: socket_state.clone(),
            connections_wanted: config.slack.connections,
        },
        config.engine.queue_capacity,
    );
    let socket = Arc::new(SocketMode::new(
        api.clone(),
        Arc::new(dispatcher.handle()),
        metrics.clone(),
        SocketSettings {
            connections: config.slack.connections,
            ping_interval: config.slack.ping_interval,
            max_backoff: config.slack.reconnect_max_backoff,
            drain_for: Duration::from_secs(15),
        },
        socket_state.clone(),
    ));

    let admin = AdminState {
        metrics: metrics.clone(),
        store: store.clone(),
        socket: socket_state,
        desk: desk.clone(),
        intake: intake.clone(),
        loops: supervisor.clone(),
        alerts_token: config.incidents.alerts_token.clone(),
        alerts_max_body: config.incidents.alerts_max_body,
    };
    // The queue's receiver and the admin listener cannot be handed to a new loop: when
    // either dies, the process ends (and is restarted whole). The other loops keep their
    // work in the store, so a fresh loop resumes it: they are restarted.
    let admin_cancel = cancel.clone();
    supervisor.critical(&tasks, &cancel, "admin", async move {
        if let Err(e) = http::serve(listener, admin, admin_cancel).await {
            error!(error = %e, "admin server failed");
        }
    });
    supervisor.critical(
        &tasks,
        &cancel,
        "dispatcher",
        dispatcher.run(queue, config.engine.workers, cancel.clone(), tasks.clone()),
    );
    socket
        .spawn(acks, &cancel, &tasks)
        .context("cannot start the socket-mode thread")?;
    let (s, c) = (store.clone(), cancel.clone());
    supervisor.restart(&tasks, &cancel, "maintenance", move |beat| {
        prune_event_keys(s.clone(), c.clone(), beat)
    });
    if let Err(e) = desk.arm_maintenance().await {
        warn!(error = %e, "maintenance reminders not scheduled");
    }
    let (d, c) = (desk.clone(), cancel.clone());
    supervisor.restart(&tasks, &cancel, "scheduler", move |beat| {
        d.clone().run_scheduler(c.clone(), beat)
    });
    let (a, c) = (approvals.clone(), cancel.clone());
    supervisor.restart(&tasks, &cancel, "approvals", move |beat| {
        a.clone().run(c.clone(), beat)
    });
    let (g, c) = (guide.clone(), cancel.clone());
    supervisor.restart(&tasks, &cancel, "guide", move |beat| {
        g.clone().run(c.clone(), beat)
    });
    let (o, c) = (outbox.clone(), cancel.clone());
    supervisor.restart(&tasks, &cancel, "outbox", move |beat| {
        o.clone().run(c.clone(), beat)
    });
    let (r, c) = (replies.clone(), cancel.clone());
    supervisor.restart(&tasks, &cancel, "replies", move |beat| {
        r.clone().run(c.clone(), beat)
    });
    let (i, c) = (intake.clone(), cancel.clone());
    supervisor.restart(&tasks, &cancel, "intake", move |beat| {
        i.clone().run(c.clone(), beat)
    });

    let fatal = tokio::select! {
        () = shutdown_signal() => None,
        why = supervisor.fatal() => Some(why),
    };
    info!(
        grace_secs = config.engine.shutdown_grace.as_secs(),
        "shutting down: no new envelopes, finishing in-flight work"
    );
    cancel.cancel();
    tasks.close();
    if tokio::time::timeout(config.engine.shutdown_grace, tasks.wait())
        .await
        .is_err()
    {
        warn!(
            unfinished = tasks.len(),
            "grace period over; abandoning unfinished tasks"
        );
    }
    store.close().await;
    if let Some(why) = fatal {
        bail!("{why}");
    }
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops odorbot");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The store's housekeeping: forgets idempotency keys older than [`KEEP_EVENT_KEYS`].
async fn prune_event_keys(store: Store, cancel: CancellationToken, beat: Beat) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        crate::failpoint!("maintenance.tick");
        let cutoff = SystemTime::now() - KEEP_EVENT_KEYS;
        let cutoff_ms = cutoff
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        match store.prune_events(cutoff_ms).await {
            Ok(n) if n > 0 => info!(removed = n, "pruned old idempotency keys"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "pruning idempotency keys failed"),
        }
        beat.alive();
    }
}

/// One line of `odorbot check --online`.
pub struct CheckLine {
    pub what: &'static str,
    pub result: Result<String, String>,
}

/// Checks that the configured services answer: the store, Slack and the Kubernetes API.
pub async fn check_online(config: &Config) -> Vec<CheckLine> {
    let store = match Store::open(&config.store.url, 1).await {
        Ok(s) => {
            let r = s
                .ping()
                .await
                .map(|()| format!("{} reachable, migrations applied", s.backend().name()));
            s.close().await;
            r.map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    let slack = match SlackApi::new(&config.slack, Metrics::new()) {
        Ok(api) => api
            .auth_test(Duration::from_secs(5))
            .await
            .map(|me| format!("auth.test ok: team {}, bot user {}", me.team_id, me.user_id))
            .map_err(|e| {
                if e.is_auth() {
                    format!("auth: {e} (the bot token is not accepted)")
                } else {
                    e.to_string()
                }
            }),
        Err(e) => Err(e.to_string()),
    };
    let kube = match cluster::connect(&config.kubernetes).await {
        Ok(client) => {
            tokio::time::timeout(Duration::from_secs(10), cluster::server_version(&client))
                .await
                .map_err(|_| "no answer within 10s".to_owned())
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map(|v| format!("API server {v}"))
        }
        Err(e) => Err(e.to_string()),
    };
    vec![
        CheckLine {
            what: "store",
            result: store,
        },
        CheckLine {
            what: "slack",
            result: slack,
        },
        CheckLine {
            what: "kubernetes",
            result: kube,
        },
    ]
}
