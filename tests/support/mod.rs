//! Shared test rig: the fake Slack, throwaway databases, and a running odorbot.
#![allow(dead_code)]

pub mod alertmanager;
pub mod bot;
pub mod cluster_seed;
pub mod fake_kube;
pub mod fake_slack;
pub mod http;
pub mod kube;
pub mod manifests;
pub mod measure;
pub mod pg;
pub mod probe_servers;
pub mod storm;
