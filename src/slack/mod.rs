//! Everything Slack: the socket-mode listener, the Web API client and Block Kit
//! rendering. The only module that imports slack-morphism.

pub mod api;
mod limiter;
pub mod reconnect;
pub mod render;
pub mod socket;
pub mod wire;
