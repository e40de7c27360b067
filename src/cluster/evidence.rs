//! `collect_evidence`: reads what a breach investigation keeps, whole and as the API
//! server returns it. The bounds and hashing are the core's (`domain::evidence`); nothing
//! here writes to the cluster.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams, LogParams};

use super::diagnostics::event_time;
use super::{Cluster, ClusterError, Op, to_json};
use crate::domain::evidence::{Kind, MAX_ITEM_BYTES, Read, redact_pod};
use crate::domain::k8s::Selector;

/// Pods whose logs one collection reads; the specs of all of them are kept.
const MAX_LOG_PODS: usize = 20;

/// What was read, and what could not be (a container that never ran has no log).
pub struct EvidenceReads {
    pub reads: Vec<Read>,
    pub notes: Vec<String>,
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

impl Cluster {
    /// The logs of the selected pods' containers over `since` (with timestamps), the
    /// namespace's events of that window, the pods' specs (literal environment values
    /// redacted) and every NetworkPolicy of the namespace.
    ///
    /// # Errors
    /// A list call that failed, or a log read that was forbidden or could not reach the
    /// API server; a single container's unreadable log is a note instead.
    pub async fn evidence(
        &self,
        selector: &Selector,
        since: Duration,
    ) -> Result<EvidenceReads, ClusterError> {
        let pods = self.list_pods(Some(selector)).await?;
        let mut reads = Vec::new();
        let mut notes = Vec::new();
        if pods.len() > MAX_LOG_PODS {
            notes.push(format!(
                "{} pods match; the logs of the first {MAX_LOG_PODS} by name are kept",
                pods.len()
            ));
        }
        let api: Api<Pod> = self.api();
        for pod in pods.iter().take(MAX_LOG_PODS) {
            let name = pod.name_any();
            let containers = pod.spec.iter().flat_map(|s| &s.containers);
            for container in containers {
                match self
                    .container_log(&api, &name, &container.name, since)
                    .await?
                {
                    Ok(read) => reads.push(read),
                    Err(why) => notes.push(format!("{name}/{}: {why}", container.name)),
                }
            }
        }
        let specs: Vec<serde_json::Value> = pods.iter().map(|p| redact_pod(to_json(p))).collect();
        reads.push(Read {
            name: "pod_specs".into(),
            kind: Kind::PodSpecs,
            content: pretty(&serde_json::Value::Array(specs)),
            truncated: false,
        });
        let cutoff = Timestamp::now().as_second() - since.as_secs() as i64;
        let mut events = self.list_events().await?;
        events.retain(|e| event_time(e).is_some_and(|t| t.as_second() >= cutoff));
        events.sort_by_key(event_time);
        reads.push(Read {
            name: "events".into(),
            kind: Kind::Events,
            content: pretty(&serde_json::Value::Array(
                events.iter().map(to_json).collect(),
            )),
            truncated: false,
        });
        let policies: Api<NetworkPolicy> = self.api();
        let mut list = self
            .call(
                Op::new("list", "networkpolicies"),
                policies.list(&ListParams::default()),
            )
            .await?
            .items;
        for p in &mut list {
            p.metadata.managed_fields = None;
        }
        reads.push(Read {
            name: "network_policies".into(),
            kind: Kind::NetworkPolicies,
            content: pretty(&serde_json::Value::Array(
                list.iter().map(to_json).collect(),
            )),
            truncated: false,
        });
        Ok(EvidenceReads { reads, notes })
    }

    /// One container's log over the window, or why there is none.
    async fn container_log(
        &self,
        api: &Api<Pod>,
        pod: &str,
        container: &str,
        since: Duration,
    ) -> Result<Result<Read, String>, ClusterError> {
        let lp = LogParams {
            container: Some(container.to_owned()),
            since_seconds: Some(since.as_secs() as i64),
            // One byte more than is kept tells a cut log from one that fits.
            limit_bytes: Some(MAX_ITEM_BYTES as i64 + 1),
            timestamps: true,
            ..LogParams::default()
        };
        let text = match self.read_log(api, pod, &lp).await? {
            Ok(t) => t,
            Err(why) => return Ok(Err(why)),
        };
        Ok(Ok(Read {
            name: format!("log/{pod}/{container}"),
            kind: Kind::Log,
            truncated: text.len() > MAX_ITEM_BYTES,
            content: text,
        }))
    }
}
