//! The engine: a bounded queue of inbound events and the dispatcher that processes
//! them. Listeners only enqueue; all work, and every reply, happens here.

pub mod actions;
pub mod approvals;
mod dispatcher;
pub mod incidents;
pub mod outbox;

pub use dispatcher::{Dispatcher, EngineHandle, Parts};
