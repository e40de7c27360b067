//! odorbot: the OdorDiff-2 on-call team's runbook, run from Slack.
//!
//! Two crates. `odorbot-core` (re-exported here as [`domain`] and [`runbook`]) is pure: the
//! `/odor` language, the runbook catalog and its typed actions (with each action's
//! Kubernetes needs, from which `manifests/base/role.yaml` is generated), the approval and
//! incident rules as functions of an explicit clock, and the message model. This crate holds
//! the adapters and the wiring.
//!
//! Flow of `/odor rollback`: [`slack::socket`] translates the envelope into a
//! [`domain::inbound::Inbound`], enqueues it on the [`engine`] and acknowledges at once. The
//! engine's dispatcher claims its idempotency key in the [`store`] and parses it
//! ([`domain::command`]): the verb's row builds the runbook's typed action, with the
//! catalog's objects; [`engine::approvals`] checks the policy, fixes what the action takes from
//! the clock or the live system, runs the dry run and stores the typed action
//! ([`runbook::stored`]) with the card. A second person's click passes
//! [`domain::approval::decide`]; the executor reads the stored action back, checks the
//! cooldown and the drift fingerprint, and runs it through [`cluster`], then verifies.
//! Every answer to the person who typed or clicked is queued in the store and sent through
//! its `response_url` by [`engine::replies`], so no worker waits on Slack; messages for
//! channels and threads go through [`engine::outbox`].
//!
//! Flow of an alert: [`http`]'s `POST /alerts` checks the token and the body
//! ([`domain::alert::parse`]), stores it in the alert inbox ([`store::inbox`]) and answers;
//! [`engine::intake`] claims it from there and hands it to the incident desk
//! ([`engine::incidents`]), which plans it ([`domain::intake`]) and opens or updates the
//! group's incident.
//!
//! - [`config`]: layered configuration (YAML file, environment, secret files); it builds
//!   each adapter's settings.
//! - [`store`]: SQLite or PostgreSQL through one code path and one set of migrations.
//! - [`cluster`]: the Kubernetes API (kube-rs); the only module that imports kube.
//! - [`probes`]: Prometheus, PostgreSQL/PgBouncer, Redis, HTTP health and TLS.
//! - [`slack`]: socket mode, the Web API client and Block Kit rendering.
//! - [`http`]: health, readiness, metrics and the Alertmanager webhook.
//! - [`metrics`]: odorbot's own Prometheus metrics.
//! - [`idgen`]: ids unique across replicas (a random node per process, not its pid).
//! - [`os`]: the malloc arena cap and the ack thread's priority, set at start-up.
//! - [`supervisor`]: the background loops, restarted or ending the process when they die,
//!   and which of them is down, for `/readyz`.
//! - `failpoint` (debug builds only): faults injected at named steps, for tests.

pub use odorbot_core::{domain, runbook};

pub mod app;
pub mod cluster;
pub mod config;
pub mod engine;
#[cfg(debug_assertions)]
pub mod failpoint;
#[doc(hidden)]
pub mod fuzzing;
/// Release builds: a failpoint is nothing (see `failpoint` in a debug build).
#[cfg(not(debug_assertions))]
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {};
    ($name:literal, $err:ident => $on_error:expr) => {};
}
pub mod http;
pub mod idgen;
pub mod metrics;
pub mod netcause;
pub mod os;
pub mod probes;
pub mod slack;
pub mod store;
pub mod supervisor;
