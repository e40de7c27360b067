//! odorbot's own metrics, served at `/metrics` in the Prometheus text format.
//! Names follow `odorbot_<thing>_<unit>`; every label has a small, fixed set of values.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::approval::ApprovalState;
use crate::domain::outbox::Priority;
use crate::store::Backlog;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub verb: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub method: &'static str,
    pub status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PriorityLabel {
    pub priority: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

/// Every metric odorbot records; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub envelopes_received: Family<TypeLabel, Counter>,
    pub envelopes_acked: Family<TypeLabel, Counter>,
    /// Envelopes whose ack could not be written (the connection broke first); Slack
    /// does not redeliver slash commands or clicks, so these were lost.
    pub envelopes_unacked: Family<ReasonLabel, Counter>,
    /// Envelopes acknowledged with a "busy, nothing was done" answer because the engine
    /// queue was full.
    pub envelopes_busy: Family<TypeLabel, Counter>,
    pub ack_latency: Histogram,
    pub commands: Family<CommandLabels, Counter>,
    pub duplicates: Counter,
    /// Actions that could not be carried out, by [`crate::engine::failure::Failure`] kind.
    pub failures: Family<KindLabel, Counter>,
    pub slack_api_calls: Family<ApiLabels, Counter>,
    pub slack_connections: Gauge<i64, AtomicI64>,
    /// 1 when the store answered the last scrape's queries, 0 when it did not.
    pub store_up: Gauge<i64, AtomicI64>,
    /// Must-send messages waiting for Slack (read from the store at each scrape, like
    /// the gauges below, so every replica reports the shared store's state).
    pub outbox_pending: Gauge<i64, AtomicI64>,
    pub outbox_oldest_pending: Gauge<f64, AtomicU64>,
    /// How long a message waited, from being queued to Slack taking it, by priority: the
    /// time a page waited for its turn in the channel's pacing.
    pub outbox_wait: Family<PriorityLabel, Histogram>,
    /// Alertmanager notifications the webhook accepted and the intake loop has not
    /// applied yet, and the age of the oldest of them.
    pub alert_inbox_pending: Gauge<i64, AtomicI64>,
    pub alert_inbox_oldest_pending: Gauge<f64, AtomicU64>,
    /// Replies to commands and clicks waiting for their `response_url`.
    pub replies_pending: Gauge<i64, AtomicI64>,
    /// Timers more than [`OVERDUE_AFTER`] past due: no replica's scheduler is firing them.
    pub timers_overdue: Gauge<i64, AtomicI64>,
    pub approvals: Family<StateLabel, Gauge<i64, AtomicI64>>,
    pub incidents_open: Gauge<i64, AtomicI64>,
}

/// How late a timer may fire before it counts as overdue; the scheduler wakes at the
/// due time, so anything this late means it is not running or cannot claim.
pub const OVERDUE_AFTER: Duration = Duration::from_secs(60);

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("odorbot");
        let envelopes_received = Family::<TypeLabel, Counter>::default();
        registry.register(
            "envelopes_received",
            "Socket-mode envelopes received, by type",
            envelopes_received.clone(),
        );
        let envelopes_acked = Family::<TypeLabel, Counter>::default();
        registry.register(
            "envelopes_acked",
            "Socket-mode envelopes acknowledged, by type",
            envelopes_acked.clone(),
        );
        let envelopes_unacked = Family::<ReasonLabel, Counter>::default();
        // Exported as 0 from the start, so the first one shows in increase() and alerts.
        drop(envelopes_unacked.get_or_create(&ReasonLabel {
            reason: "connection_lost",
        }));
        registry.register(
            "envelopes_unacked",
            "Envelopes whose acknowledgement could not be written, by reason",
            envelopes_unacked.clone(),
        );
        let envelopes_busy = Family::<TypeLabel, Counter>::default();
        for r#type in ["slash_commands", "interactive"] {
            drop(envelopes_busy.get_or_create(&TypeLabel { r#type }));
        }
        registry.register(
            "envelopes_busy",
            "Envelopes acknowledged with a busy answer (engine queue full, nothing done), by type",
            envelopes_busy.clone(),
        );
        // From 50 µs to about 1.6 s: acks are expected well under a millisecond.
        let ack_latency = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 16),
        );
        registry.register_with_unit(
            "envelope_ack_latency",
            "Time from reading an envelope to writing its acknowledgement",
            Unit::Seconds,
            ack_latency.clone(),
        );
        let commands = Family::<CommandLabels, Counter>::default();
        registry.register(
            "commands",
            "Slash commands processed, by verb and outcome",
            commands.clone(),
        );
        let duplicates = Counter::default();
        registry.register(
            "inbound_duplicates",
            "Redelivered inbound events recognised and skipped",
            duplicates.clone(),
        );
        let failures = Family::<KindLabel, Counter>::default();
        registry.register(
            "action_failures",
            "Actions that could not be carried out, by kind of failure",
            failures.clone(),
        );
        for kind in crate::engine::failure::Failure::kinds() {
            // Every kind shows from the first scrape, at zero.
            drop(failures.get_or_create(&KindLabel { kind }));
        }
        let slack_api_calls = Family::<ApiLabels, Counter>::default();
        registry.register(
            "slack_api_calls",
            "Slack Web API calls, by method and status",
            slack_api_calls.clone(),
        );
        let slack_connections = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "slack_connections",
            "Open socket-mode connections",
            slack_connections.clone(),
        );
        let store_up = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "store_up",
            "1 when the store answered the last scrape, 0 when it did not",
            store_up.clone(),
        );
        let outbox_pending = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "outbox_pending",
            "Must-send messages waiting in the outbox for Slack",
            outbox_pending.clone(),
        );
        let outbox_oldest_pending = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "outbox_oldest_pending",
            "Age of the oldest message in the outbox; 0 when it is empty",
            Unit::Seconds,
            outbox_oldest_pending.clone(),
        );
        // From 50 ms to about 27 minutes.
        let outbox_wait = Family::<PriorityLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.05, 2.0, 16,
            ))
        });
        for p in Priority::ALL {
            // Every priority shows from the first scrape, so a page's wait can be alerted on.
            drop(outbox_wait.get_or_create(&PriorityLabel { priority: p.name() }));
        }
        registry.register_with_unit(
            "outbox_wait",
            "Time from queueing a must-send message to Slack taking it, by priority",
            Unit::Seconds,
            outbox_wait.clone(),
        );
        let alert_inbox_pending = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "alert_inbox_pending",
            "Alertmanager notifications accepted by the webhook and not yet applied",
            alert_inbox_pending.clone(),
        );
        let alert_inbox_oldest_pending = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "alert_inbox_oldest_pending",
            "Age of the oldest notification in the alert inbox; 0 when it is empty",
            Unit::Seconds,
            alert_inbox_oldest_pending.clone(),
        );
        let replies_pending = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "replies_pending",
            "Replies to slash commands and clicks waiting to go through their response_url",
            replies_pending.clone(),
        );
        let timers_overdue = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "timers_overdue",
            "Timers (escalations, status updates, reminders) more than a minute past due and held by no replica",
            timers_overdue.clone(),
        );
        let approvals = Family::<StateLabel, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "approvals",
            "Approval requests in the store, by state",
            approvals.clone(),
        );
        let incidents_open = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "incidents_open",
            "Incidents not yet resolved",
            incidents_open.clone(),
        );
        Self {
            registry: Arc::new(registry),
            envelopes_received,
            envelopes_acked,
            envelopes_unacked,
            envelopes_busy,
            ack_latency,
            commands,
            duplicates,
            failures,
            slack_api_calls,
            slack_connections,
            store_up,
            outbox_pending,
            outbox_oldest_pending,
            outbox_wait,
            alert_inbox_pending,
            alert_inbox_oldest_pending,
            replies_pending,
            timers_overdue,
            approvals,
            incidents_open,
        }
    }

    /// Records what the store holds, or that it did not answer: the store gauges then
    /// keep their last values and `store_up` drops to 0.
    pub fn observe_backlog<E>(&self, backlog: Result<&Backlog, E>) {
        let Ok(b) = backlog else {
            self.store_up.set(0);
            return;
        };
        self.store_up.set(1);
        self.outbox_pending.set(b.outbox_pending);
        self.outbox_oldest_pending
            .set(b.outbox_oldest_age.as_secs_f64());
        self.alert_inbox_pending.set(b.alert_inbox.pending);
        self.alert_inbox_oldest_pending
            .set(b.alert_inbox.oldest_age.as_secs_f64());
        self.replies_pending.set(b.replies_pending);
        self.timers_overdue.set(b.timers_overdue);
        self.incidents_open.set(b.incidents_open);
        // Every state is always exported, so a state that empties shows 0, not a gap.
        for state in ApprovalState::ALL {
            let n = b
                .approvals
                .iter()
                .filter(|(s, _)| s == state.name())
                .map(|(_, n)| *n)
                .sum();
            self.approvals
                .get_or_create(&StateLabel {
                    state: state.name(),
                })
                .set(n);
        }
    }

    /// A message of `priority`, queued at `queued`, was taken by Slack now.
    pub fn outbox_waited(&self, priority: Priority, queued: jiff::Timestamp) {
        let waited = jiff::Timestamp::now().duration_since(queued);
        self.outbox_wait
            .get_or_create(&PriorityLabel {
                priority: priority.name(),
            })
            .observe(waited.as_secs_f64().max(0.0));
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::inbox::InboxBacklog;

    fn sample(text: &str, name: &str) -> Option<String> {
        text.lines()
            .find(|l| l.split(' ').next() == Some(name))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    }

    #[test]
    fn the_store_backlog_becomes_gauges_with_every_approval_state() {
        let m = Metrics::new();
        let backlog = Backlog {
            outbox_pending: 3,
            outbox_oldest_age: Duration::from_millis(42_500),
            replies_pending: 6,
            timers_overdue: 2,
            approvals: vec![("pending".into(), 4), ("succeeded".into(), 7)],
            incidents_open: 1,
            alert_inbox: InboxBacklog {
                pending: 12,
                oldest_age: Duration::from_millis(1_250),
            },
        };
        m.observe_backlog::<()>(Ok(&backlog));
        let text = m.encode();
        assert_eq!(sample(&text, "odorbot_store_up").as_deref(), Some("1"));
        assert_eq!(
            sample(&text, "odorbot_outbox_pending").as_deref(),
            Some("3")
        );
        assert_eq!(
            sample(&text, "odorbot_outbox_oldest_pending_seconds").as_deref(),
            Some("42.5")
        );
        assert_eq!(
            sample(&text, "odorbot_replies_pending").as_deref(),
            Some("6")
        );
        assert_eq!(
            sample(&text, "odorbot_alert_inbox_pending").as_deref(),
            Some("12")
        );
        assert_eq!(
            sample(&text, "odorbot_alert_inbox_oldest_pending_seconds").as_deref(),
            Some("1.25")
        );
        assert_eq!(
            sample(&text, "odorbot_timers_overdue").as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&text, "odorbot_incidents_open").as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&text, "odorbot_approvals{state=\"pending\"}").as_deref(),
            Some("4")
        );
        assert_eq!(
            sample(&text, "odorbot_approvals{state=\"expired\"}").as_deref(),
            Some("0")
        );
    }

    #[test]
    fn an_unreachable_store_sets_store_up_to_zero_and_keeps_the_last_backlog() {
        let m = Metrics::new();
        let backlog = Backlog {
            outbox_pending: 5,
            outbox_oldest_age: Duration::ZERO,
            replies_pending: 0,
            timers_overdue: 0,
            approvals: vec![],
            incidents_open: 0,
            alert_inbox: InboxBacklog::default(),
        };
        m.observe_backlog::<()>(Ok(&backlog));
        m.observe_backlog(Err("connection refused"));
        let text = m.encode();
        assert_eq!(sample(&text, "odorbot_store_up").as_deref(), Some("0"));
        assert_eq!(
            sample(&text, "odorbot_outbox_pending").as_deref(),
            Some("5")
        );
    }
}
