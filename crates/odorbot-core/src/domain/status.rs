//! `/odor status`: odorbot's own picture of its health, rendered as a message.

use std::time::Duration;

use super::args::format_duration;
use super::view::{Block, Message, escape};

/// What the engine gathered; each part may be unknown, with the reason.
#[derive(Debug, Clone)]
pub struct SelfStatus {
    pub version: &'static str,
    pub uptime: Duration,
    /// Socket-mode connections that have received `hello` and are open now.
    pub slack_connections: usize,
    /// How many connections odorbot tries to keep open.
    pub slack_connections_wanted: usize,
    pub store_backend: &'static str,
    /// Open counts from the store, or why they could not be read.
    pub store: Result<OpenWork, String>,
    /// Events waiting in the engine's queue.
    pub queue_depth: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenWork {
    pub approvals: i64,
    pub incidents: i64,
}

impl SelfStatus {
    pub fn render(&self) -> Message {
        let slack = format!(
            "{} {} of {} socket connections open",
            mark(self.slack_connections > 0),
            self.slack_connections,
            self.slack_connections_wanted
        );
        let (store, approvals, incidents) = match &self.store {
            Ok(open) => (
                format!("{} {} reachable", mark(true), self.store_backend),
                open.approvals.to_string(),
                open.incidents.to_string(),
            ),
            Err(reason) => (
                format!(
                    "{} {} unreachable: {}",
                    mark(false),
                    self.store_backend,
                    escape(reason)
                ),
                "unknown".into(),
                "unknown".into(),
            ),
        };
        let healthy = self.slack_connections > 0 && self.store.is_ok();
        let headline = if healthy {
            "odorbot is healthy"
        } else {
            "odorbot is degraded"
        };
        Message {
            text: format!("{headline} (v{})", self.version),
            blocks: vec![
                Block::Header(headline.into()),
                Block::Fields(vec![
                    ("Slack".into(), slack),
                    ("Store".into(), store),
                    ("Pending approvals".into(), approvals),
                    ("Open incidents".into(), incidents),
                    ("Queue".into(), format!("{} waiting", self.queue_depth)),
                    (
                        "Version".into(),
                        format!("{} (up {})", self.version, format_duration(self.uptime)),
                    ),
                ]),
            ],
        }
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(store: Result<OpenWork, String>, connections: usize) -> SelfStatus {
        SelfStatus {
            version: "0.1.0",
            uptime: Duration::from_secs(3720),
            slack_connections: connections,
            slack_connections_wanted: 2,
            store_backend: "sqlite",
            store,
            queue_depth: 3,
        }
    }

    #[test]
    fn healthy_status_shows_counts() {
        let m = status(
            Ok(OpenWork {
                approvals: 2,
                incidents: 1,
            }),
            2,
        )
        .render();
        assert_eq!(m.text, "odorbot is healthy (v0.1.0)");
        let Block::Fields(fields) = &m.blocks[1] else {
            panic!("fields")
        };
        assert_eq!(fields[0].1, "✅ 2 of 2 socket connections open");
        assert_eq!(fields[2].1, "2");
        assert_eq!(fields[3].1, "1");
        assert_eq!(fields[5].1, "0.1.0 (up 1h2m)");
    }

    #[test]
    fn unreachable_store_is_unknown_with_escaped_reason() {
        let m = status(Err("pool <timed out>".into()), 1).render();
        assert_eq!(m.text, "odorbot is degraded (v0.1.0)");
        let Block::Fields(fields) = &m.blocks[1] else {
            panic!("fields")
        };
        assert_eq!(fields[1].1, "❌ sqlite unreachable: pool &lt;timed out&gt;");
        assert_eq!(fields[2].1, "unknown");
    }
}
