//! The pure core: no I/O, no async, no clients. Parsing, decisions and the message model
//! live here and are tested as plain functions.

pub mod access;
pub mod alert;
pub mod approval;
pub mod args;
pub mod calendar;
pub mod checklist;
pub mod command;
pub mod diagnostics;
pub mod escalation;
pub mod evidence;
pub mod guide;
pub mod helm;
#[cfg(test)]
mod hostile_tests;
pub mod ids;
pub mod inbound;
pub mod incident;
pub mod intake;
pub mod k8s;
pub mod k8s_view;
pub mod outbox;
pub mod probe;
pub mod reply;
pub mod roster;
pub mod signals;
pub mod status;
pub mod storm;
pub mod timer;
pub mod view;
