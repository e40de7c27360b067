//! The engine: a bounded queue of inbound events and the dispatcher that processes
//! them. Listeners only enqueue; all work happens here, and every reply is queued here
//! for the reply sender ([`replies`]).

pub mod actions;
pub mod approvals;
mod coalesce;
mod dispatcher;
pub mod failure;
pub mod guide;
pub mod incidents;
pub mod intake;
pub mod outbox;
pub mod people;
pub mod replies;

pub use dispatcher::{Dispatcher, EngineHandle, Parts};

use crate::domain::inbound::Inbound;

pub(crate) use crate::domain::timer::plus;

/// The port a listener hands events to: the engine's queue. `offer` must not block.
/// Slack's socket-mode listener implements nothing of the engine and the engine imports
/// nothing of the listener; both meet here.
pub trait InboundSink: Send + Sync + 'static {
    /// Enqueues the event, or hands it back when the queue is full.
    ///
    /// # Errors
    /// The event itself, when it could not be queued.
    fn offer(&self, inbound: Inbound) -> Result<(), Box<Inbound>>;
}

/// What the engine and the health endpoints read of the connection to Slack.
pub trait Connection: Send + Sync + 'static {
    /// Connections that said `hello` and have not been asked to go away.
    fn open(&self) -> usize;
    /// Slack turned socket mode off for the app; the listener stopped reconnecting.
    fn link_disabled(&self) -> bool;
}
