//! Shared test rig: the fake Slack, throwaway databases, and a running odorbot.
#![allow(dead_code)]

pub mod pg;
