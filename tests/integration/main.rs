//! odorbot's integration tests: one binary, real servers where this machine can run
//! them, fakes (under `tests/support`) only for Slack.

#[path = "../support/mod.rs"]
mod support;

mod access;
mod ack_path;
mod approvals;
mod attack;
mod cli;
mod cluster;
mod cluster_verbs;
mod container;
mod deploy;
mod e2e;
mod faults;
mod ha;
mod incidents;
mod kube;
mod node;
mod probes;
mod replies;
mod runbook;
mod slack_api;
mod store;
mod storms;
