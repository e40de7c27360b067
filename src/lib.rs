//! odorbot: the OdorDiff-2 on-call team's runbook, run from Slack.
//!
//! Flow: [`slack::socket`] receives socket-mode envelopes, translates each into a
//! [`domain::inbound::Inbound`], enqueues it on the [`engine`] and acknowledges at once.
//! The engine's dispatcher claims the event's idempotency key in the [`store`], parses
//! the command with the pure [`domain`], carries out what it decides, and replies
//! through the rate-limited [`slack::api`] client. [`http`] serves health, readiness
//! and metrics. [`app`] wires it all under one cancellation token.
//!
//! - [`domain`]: pure types and decisions (command language, message model).
//! - [`config`]: layered configuration (YAML file, environment, secret files).
//! - [`store`]: SQLite or PostgreSQL through one code path and one set of migrations.
//! - [`runbook`]: the runbook catalog (alerts, procedures, checklists) as typed data,
//!   compiled from `runbooks/odordiff-2.yaml` with every problem reported at once.
//! - [`cluster`]: the Kubernetes API (kube-rs); the only module that imports kube.
//! - [`metrics`]: odorbot's own Prometheus metrics.

pub use odorbot_core::{domain, runbook};

pub mod app;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod probes;
pub mod slack;
pub mod store;
