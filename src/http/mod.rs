//! The HTTP server: `/healthz` (alive), `/readyz` (Slack connected, store reachable, no
//! background loop down), `/metrics` (Prometheus text format) and `POST /alerts`
//! (Alertmanager's webhook); in debug builds also `/debug/failpoints` for the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use secrecy::SecretString;

use crate::engine::incidents::Desk;
use crate::engine::intake::Intake;
use crate::metrics::Metrics;

mod alerts;
use crate::engine::Connection;
use crate::store::Store;
use crate::supervisor::Supervisor;

/// What the admin endpoints look at.
#[derive(Clone)]
pub struct AdminState {
    pub metrics: Metrics,
    pub store: Store,
    pub socket: Arc<dyn Connection>,
    pub desk: Arc<Desk>,
    /// Where the webhook stores accepted notifications for the intake loop.
    pub intake: Arc<Intake>,
    /// The supervised background loops, so readiness names one that is down.
    pub loops: Supervisor,
    /// Alertmanager's bearer token; `None` keeps the webhook closed.
    pub alerts_token: Option<SecretString>,
    pub alerts_max_body: usize,
}

pub fn router(state: AdminState) -> Router {
    let alerts = Router::new()
        .route("/alerts", axum::routing::post(alerts::receive))
        .layer(axum::extract::DefaultBodyLimit::max(state.alerts_max_body));
    let router = Router::new()
        .merge(alerts)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    #[cfg(debug_assertions)]
    let router = router.route("/debug/failpoints", get(failpoints).put(arm_failpoints));
    router.with_state(state)
}

/// Debug builds: what is armed.
#[cfg(debug_assertions)]
async fn failpoints() -> String {
    crate::failpoint::list()
}

/// Debug builds: arms or disarms failpoints (`name=fault;…`, as `ODORBOT_FAILPOINTS`).
#[cfg(debug_assertions)]
async fn arm_failpoints(spec: String) -> (StatusCode, String) {
    match crate::failpoint::configure(&spec) {
        Ok(()) => (StatusCode::OK, crate::failpoint::list()),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if state.socket.open() == 0 {
        problems.push(if state.socket.link_disabled() {
            "slack: socket mode disabled for the app (link_disabled)".to_owned()
        } else {
            "slack: no socket-mode connection open".to_owned()
        });
    }
    match tokio::time::timeout(Duration::from_secs(1), state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => problems.push("store: unreachable".to_owned()),
        Err(_) => problems.push("store: no answer within 1s".to_owned()),
    }
    problems.extend(state.loops.down());
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", problems.join("\n")),
        )
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    // The store gauges are read at scrape time, so they are as fresh as the scrape and
    // cost nothing between scrapes; a store that does not answer in 1 s reads as down.
    let backlog = tokio::time::timeout(
        Duration::from_secs(1),
        state
            .store
            .backlog(jiff::Timestamp::now(), crate::metrics::OVERDUE_AFTER),
    )
    .await;
    match &backlog {
        Ok(Ok(b)) => state.metrics.observe_backlog::<()>(Ok(b)),
        _ => state.metrics.observe_backlog(Err(())),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Binds the admin listener; separate from [`serve`] so start-up fails fast on a
/// taken port and tests can learn the port.
///
/// # Errors
/// The bind error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `cancel` fires.
///
/// # Errors
/// An I/O error from the server.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}
