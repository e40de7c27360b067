//! The pure core: no I/O, no async, no clients. Parsing, decisions and the message model
//! live here and are tested as plain functions.

pub mod args;
pub mod command;
pub mod ids;
pub mod inbound;
pub mod k8s;
pub mod status;
pub mod view;
