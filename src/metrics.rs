//! odorbot's own metrics, served at `/metrics` in the Prometheus text format.
//! Names follow `odorbot_<thing>_<unit>`; every label has a small, fixed set of values.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

/// Every metric odorbot records; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub envelopes_received: Family<TypeLabel, Counter>,
    pub envelopes_acked: Family<TypeLabel, Counter>,
    /// Envelopes left unacknowledged on purpose (queue full), so Slack redelivers them.
    pub envelopes_unacked: Family<ReasonLabel, Counter>,
    pub ack_latency: Histogram,
    pub commands: Family<CommandLabels, Counter>,
    pub duplicates: Counter,
    pub slack_api_calls: Family<ApiLabels, Counter>,
    pub slack_connections: Gauge<i64, AtomicI64>,
}

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
        registry.register(
            "envelopes_unacked",
            "Envelopes deliberately left unacknowledged, by reason",
            envelopes_unacked.clone(),
        );
        // From 50 µs to about 1.6 s: acks are expected well under a millisecond.
        let ack_latency = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.000_05, 2.0, 16),
        );
        registry.register_with_unit(
            "envelope_ack_latency",
            "Time from reading an envelope to writing its acknowledgement",
            prometheus_client::registry::Unit::Seconds,
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
        Self {
            registry: Arc::new(registry),
            envelopes_received,
            envelopes_acked,
            envelopes_unacked,
            ack_latency,
            commands,
            duplicates,
            slack_api_calls,
            slack_connections,
        }
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
