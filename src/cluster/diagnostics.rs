//! Read-only actions: what an on-call engineer looks at first. Nothing here writes.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, PersistentVolumeClaim, Pod, PodTemplateSpec, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use serde_json::Value;

use super::{Cluster, ClusterError, Op, from_field};
use crate::domain::args::Filter;
use crate::domain::ids::K8sName;
use crate::domain::k8s::{
    AccessReview, BindingInfo, CertificateInfo, ConfigMapEntry, ContainerState, EndpointsInfo,
    EventInfo, HpaInfo, InputError, LogQuery, LogSource, LogsReport, PdbInfo, PodDescription,
    PodInfo, PodLogs, PodUsage, PreDeploy, PvcInfo, Readable, ResourceUsage, RevisionInfo,
    RolloutStatus, Selector, VeleroBackup, VeleroRestore, parse_quantity_millis,
};
use crate::domain::view::truncate;

/// Annotation the Deployment controller puts on ReplicaSets (and the Deployment).
pub(super) const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
const CHANGE_CAUSE_ANNOTATION: &str = "kubernetes.io/change-cause";
/// Recent events shown per pod in `describe_pods`.
const EVENTS_PER_POD: usize = 10;
/// Events returned by `events`: the newest ones.
const MAX_EVENTS: usize = 200;
/// Bytes read per container log request, whatever the line counts say.
const LOG_LIMIT_BYTES: i64 = 2 * 1024 * 1024;
const CONFIGMAP_VALUE_CHARS: usize = 200;

impl Cluster {
    /// `pods {selector}`: phase, readiness and restarts, like `kubectl get pods -l`.
    ///
    /// # Errors
    /// Any [`ClusterError`] of the list call (forbidden, unreachable, timeout).
    pub async fn pods(&self, selector: &Selector) -> Result<Vec<PodInfo>, ClusterError> {
        let pods = self.list_pods(Some(selector)).await?;
        Ok(pods.iter().map(pod_info).collect())
    }

    pub(super) async fn list_pods(
        &self,
        selector: Option<&Selector>,
    ) -> Result<Vec<Pod>, ClusterError> {
        let api: Api<Pod> = self.api();
        let lp = match selector {
            Some(s) => ListParams::default().labels(&s.to_string()),
            None => ListParams::default(),
        };
        let mut pods = self
            .call(Op::new("list", "pods"), api.list(&lp))
            .await?
            .items;
        pods.sort_by_key(|p| p.name_any());
        Ok(pods)
    }

    /// `describe_pods {selector, only_failing?}`: conditions, container states, the last
    /// termination reason and recent events of each pod.
    ///
    /// # Errors
    /// Any [`ClusterError`] of the pod or event list calls.
    pub async fn describe_pods(
        &self,
        selector: &Selector,
        only_failing: bool,
    ) -> Result<Vec<PodDescription>, ClusterError> {
        let pods = self.list_pods(Some(selector)).await?;
        let pods: Vec<Pod> = pods
            .into_iter()
            .filter(|p| !only_failing || is_failing(p))
            .collect();
        if pods.is_empty() {
            return Ok(Vec::new());
        }
        // One list of the namespace's events serves every pod.
        let events = self.list_events().await?;
        Ok(pods
            .iter()
            .map(|pod| {
                let name = pod.name_any();
                let mut mine: Vec<&Event> = events
                    .iter()
                    .filter(|e| {
                        e.involved_object.kind.as_deref() == Some("Pod")
                            && e.involved_object.name.as_deref() == Some(name.as_str())
                    })
                    .collect();
                mine.sort_by_key(|e| event_time(e));
                let skip = mine.len().saturating_sub(EVENTS_PER_POD);
                PodDescription {
                    pod: pod_info(pod),
                    conditions: pod_conditions(pod),
                    containers: container_states(pod),
                    events: mine.into_iter().skip(skip).map(event_info).collect(),
                }
            })
            .collect())
    }

    pub(super) async fn list_events(&self) -> Result<Vec<Event>, ClusterError> {
        let api: Api<Event> = self.api();
        Ok(self
            .call(Op::new("list", "events"), api.list(&ListParams::default()))
            .await?
            .items)
    }

    /// The last `lines` lines its pods logged, oldest first, for the report on a Job odorbot
    /// started; why they could not be read, as a line, when they could not.
    pub async fn job_log_tail(&self, job: &K8sName, lines: u32) -> Vec<String> {
        let query = match format!("job-name={job}").parse::<Selector>() {
            Ok(selector) => LogQuery {
                source: LogSource::Selector(selector),
                tail: Some(lines),
                since: None,
                grep: None,
                previous: false,
            },
            Err(e) => return vec![format!("(no log: {e})")],
        };
        match self.logs(&query).await {
            Ok(report) => report
                .pods
                .into_iter()
                .flat_map(|p| match p.error {
                    Some(e) => vec![format!("({}: {e})", p.pod)],
                    None => p.lines,
                })
                .collect(),
            Err(e) => vec![format!("(the log could not be read: {e})")],
        }
    }

    /// `logs {selector | pod, tail?, since?, grep?}`: the last lines of each selected pod's
    /// default container, filtered, within the bounds of [`LogQuery`].
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] for a tail or since beyond the bounds (before any
    /// call); errors of the pod list; forbidden or unreachable log reads. A pod whose logs
    /// cannot be read for another reason (not started yet) gets its own `error` instead.
    pub async fn logs(&self, query: &LogQuery) -> Result<LogsReport, ClusterError> {
        if let Some(t) = query.tail
            && !(1..=LogQuery::MAX_TAIL).contains(&t)
        {
            return Err(ClusterError::InvalidInput(format!(
                "tail must be between 1 and {} lines, not {t}",
                LogQuery::MAX_TAIL
            )));
        }
        if let Some(s) = query.since
            && (s.is_zero() || s > LogQuery::MAX_SINCE)
        {
            return Err(ClusterError::InvalidInput(format!(
                "since must be between 1s and {}h",
                LogQuery::MAX_SINCE.as_secs() / 3600
            )));
        }
        let api: Api<Pod> = self.api();
        let pods = match &query.source {
            LogSource::Pod(name) => vec![
                self.call(
                    Op::new("get", "pods").named(name.as_str()),
                    api.get(name.as_str()),
                )
                .await?,
            ],
            LogSource::Selector(s) => self.list_pods(Some(s)).await?,
        };
        let omitted_pods = pods.len().saturating_sub(LogQuery::MAX_PODS);
        // With a time window or a filter the window decides; otherwise a short tail.
        let tail = query
            .tail
            .or(if query.since.is_some() || query.grep.is_some() {
                None
            } else {
                Some(LogQuery::DEFAULT_TAIL)
            });
        let mut out = Vec::new();
        for pod in pods.iter().take(LogQuery::MAX_PODS) {
            out.push(self.pod_logs(&api, pod, tail, query).await?);
        }
        Ok(LogsReport {
            pods: out,
            omitted_pods,
        })
    }

    async fn pod_logs(
        &self,
        api: &Api<Pod>,
        pod: &Pod,
        tail: Option<u32>,
        query: &LogQuery,
    ) -> Result<PodLogs, ClusterError> {
        let name = pod.name_any();
        let container = default_container(pod);
        // A container that never ran has no log; the API server answers with an empty
        // body or an error depending on the version. Say why instead. (One waiting after
        // a crash has the log of its last run.)
        let has_run = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == container))
            .is_some_and(|c| {
                c.restart_count > 0 || c.state.as_ref().is_some_and(|s| s.waiting.is_none())
            });
        if !has_run {
            return Ok(PodLogs {
                pod: name,
                container,
                lines: Vec::new(),
                truncated: false,
                error: Some("the container has not started yet: no logs".into()),
            });
        }
        let restarted = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == container))
            .is_some_and(|c| c.restart_count > 0);
        if query.previous && !restarted {
            return Ok(PodLogs {
                pod: name,
                container,
                lines: Vec::new(),
                truncated: false,
                error: Some("the container has not restarted: no previous run".into()),
            });
        }
        let lp = LogParams {
            container: Some(container.clone()),
            tail_lines: tail.map(i64::from),
            since_seconds: query.since.map(|d| d.as_secs() as i64),
            limit_bytes: Some(LOG_LIMIT_BYTES),
            previous: query.previous,
            ..LogParams::default()
        };
        let text = match self.read_log(api, &name, &lp).await? {
            Ok(t) => t,
            Err(why) => {
                return Ok(PodLogs {
                    pod: name,
                    container,
                    lines: Vec::new(),
                    truncated: false,
                    error: Some(why),
                });
            }
        };
        let (lines, truncated) = filter_lines(&text, query.grep.as_ref());
        Ok(PodLogs {
            pod: name,
            container,
            lines,
            truncated,
            error: None,
        })
    }

    /// One container's log as `lp` asks, or why this container has none (not started, or
    /// the kubelet no longer keeps that run's log).
    ///
    /// # Errors
    /// A read that was forbidden or could not reach the API server: no other container's
    /// log would fare better.
    pub(super) async fn read_log(
        &self,
        api: &Api<Pod>,
        pod: &str,
        lp: &LogParams,
    ) -> Result<Result<String, String>, ClusterError> {
        let text = match self
            .call(Op::new("get", "pods/log").named(pod), api.logs(pod, lp))
            .await
        {
            Ok(t) => t,
            Err(
                e @ (ClusterError::Forbidden { .. }
                | ClusterError::Unreachable(_)
                | ClusterError::Unauthorized(_)),
            ) => return Err(e),
            Err(e) => return Ok(Err(e.to_string())),
        };
        Ok(match log_gone(&text) {
            Some(gone) => Err(format!(
                "the kubelet no longer has the log of that run ({gone})"
            )),
            None => Ok(text),
        })
    }

    /// `endpoints {service}`: the ready and not-ready backends behind a Service.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] when the Service has no Endpoints object.
    pub async fn endpoints(&self, service: &K8sName) -> Result<EndpointsInfo, ClusterError> {
        let api: Api<Endpoints> = self.api();
        let ep = self
            .call(
                Op::new("get", "endpoints").named(service.as_str()),
                api.get(service.as_str()),
            )
            .await?;
        let mut ready = Vec::new();
        let mut not_ready = Vec::new();
        for subset in ep.subsets.unwrap_or_default() {
            let ports: Vec<i32> = subset
                .ports
                .unwrap_or_default()
                .iter()
                .map(|p| p.port)
                .collect();
            let render = |ip: &str| -> Vec<String> {
                if ports.is_empty() {
                    vec![ip.to_owned()]
                } else {
                    ports.iter().map(|p| format!("{ip}:{p}")).collect()
                }
            };
            for a in subset.addresses.unwrap_or_default() {
                ready.extend(render(&a.ip));
            }
            for a in subset.not_ready_addresses.unwrap_or_default() {
                not_ready.extend(render(&a.ip));
            }
        }
        Ok(EndpointsInfo {
            service: service.to_string(),
            ready,
            not_ready,
        })
    }

    /// `events {since?}`: the namespace's events, oldest first, the newest
    /// [`MAX_EVENTS`] of them.
    ///
    /// # Errors
    /// Any [`ClusterError`] of the list call.
    pub async fn events(
        &self,
        since: Option<std::time::Duration>,
    ) -> Result<Vec<EventInfo>, ClusterError> {
        let mut events = self.list_events().await?;
        if let Some(since) = since {
            let cutoff = Timestamp::now().as_second() - since.as_secs() as i64;
            events.retain(|e| event_time(e).is_some_and(|t| t.as_second() >= cutoff));
        }
        events.sort_by_key(event_time);
        let skip = events.len().saturating_sub(MAX_EVENTS);
        Ok(events.iter().skip(skip).map(event_info).collect())
    }

    /// `rollout_status {deployment}`: `kubectl rollout status` without waiting.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for an unknown Deployment, and the call's errors.
    pub async fn rollout_status(
        &self,
        deployment: &K8sName,
    ) -> Result<RolloutStatus, ClusterError> {
        let d = self.get_deployment(deployment).await?;
        Ok(rollout_status(&d))
    }

    pub(super) async fn get_deployment(&self, name: &K8sName) -> Result<Deployment, ClusterError> {
        let api: Api<Deployment> = self.api();
        self.call(
            Op::new("get", "deployments").named(name.as_str()),
            api.get(name.as_str()),
        )
        .await
    }

    /// `rollout_history {deployment}`: the Deployment's ReplicaSets as revisions, oldest
    /// first, with change-cause and images.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for an unknown Deployment, and the calls' errors.
    pub async fn rollout_history(
        &self,
        deployment: &K8sName,
    ) -> Result<Vec<RevisionInfo>, ClusterError> {
        let d = self.get_deployment(deployment).await?;
        let current = d
            .annotations()
            .get(REVISION_ANNOTATION)
            .and_then(|r| r.parse::<u64>().ok());
        let sets = self.owned_replica_sets(&d).await?;
        Ok(sets
            .iter()
            .map(|(revision, rs)| RevisionInfo {
                revision: *revision,
                replica_set: rs.name_any(),
                change_cause: rs.annotations().get(CHANGE_CAUSE_ANNOTATION).cloned(),
                images: rs
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .map(template_images)
                    .unwrap_or_default(),
                current: Some(*revision) == current,
            })
            .collect())
    }

    /// The ReplicaSets the Deployment controls, by revision, oldest first.
    pub(super) async fn owned_replica_sets(
        &self,
        d: &Deployment,
    ) -> Result<Vec<(u64, ReplicaSet)>, ClusterError> {
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let selector = selector_of(d);
        let api: Api<ReplicaSet> = self.api();
        let list = self
            .call(
                Op::new("list", "replicasets"),
                api.list(&ListParams::default().labels(&selector)),
            )
            .await?;
        let mut sets: Vec<(u64, ReplicaSet)> = list
            .items
            .into_iter()
            .filter(|rs| rs.owner_references().iter().any(|o| o.uid == uid))
            .filter_map(|rs| {
                let rev = rs.annotations().get(REVISION_ANNOTATION)?.parse().ok()?;
                Some((rev, rs))
            })
            .collect();
        sets.sort_by_key(|(rev, _)| *rev);
        Ok(sets)
    }

    /// `hpa_status {hpa}`: bounds, target and current utilisation, replicas.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for an unknown HPA, and the call's errors.
    pub async fn hpa_status(&self, hpa: &K8sName) -> Result<HpaInfo, ClusterError> {
        let api: Api<HorizontalPodAutoscaler> = self.api();
        let h = self
            .call(
                Op::new("get", "horizontalpodautoscalers").named(hpa.as_str()),
                api.get(hpa.as_str()),
            )
            .await?;
        let spec = h.spec.unwrap_or_default();
        let status = h.status.unwrap_or_default();
        Ok(HpaInfo {
            name: hpa.to_string(),
            target: format!(
                "{}/{}",
                spec.scale_target_ref.kind, spec.scale_target_ref.name
            ),
            min_replicas: spec.min_replicas.unwrap_or(1),
            max_replicas: spec.max_replicas,
            target_cpu_percent: spec.target_cpu_utilization_percentage,
            current_cpu_percent: status.current_cpu_utilization_percentage,
            current_replicas: status.current_replicas,
            desired_replicas: status.desired_replicas,
        })
    }

    /// The runbook's pre-deployment checks for `deployment`: its pods (by its own
    /// selector), the namespace's PodDisruptionBudgets, and those of the autoscalers `hpas`
    /// that scale it. A cluster without PDBs served has none to report.
    ///
    /// # Errors
    /// The calls' errors.
    pub async fn pre_deploy(
        &self,
        deployment: &K8sName,
        hpas: &[String],
    ) -> Result<PreDeploy, ClusterError> {
        let d = self.get_deployment(deployment).await?;
        let selector = selector_of(&d);
        let selector: Selector = selector.parse().map_err(|e: InputError| {
            ClusterError::InvalidInput(format!("the selector of {deployment}: {e}"))
        })?;
        let pods = self.pods(&selector).await?;
        let pdbs = match self.pdb_status().await {
            Err(ClusterError::NotServed { .. }) => Vec::new(),
            other => other?,
        };
        Ok(PreDeploy {
            pods,
            pdbs,
            hpas: self.autoscalers_of(deployment, hpas).await?,
        })
    }

    /// Those of the autoscalers `hpas` (the catalog's) that scale `deployment`; one that
    /// does not exist is none.
    ///
    /// # Errors
    /// The calls' errors other than not found.
    pub async fn autoscalers_of(
        &self,
        deployment: &K8sName,
        hpas: &[String],
    ) -> Result<Vec<HpaInfo>, ClusterError> {
        let mut scaling = Vec::new();
        for name in hpas {
            let Ok(name) = name.parse::<K8sName>() else {
                continue;
            };
            let h = match self.hpa_status(&name).await {
                Err(ClusterError::NotFound { .. }) => continue,
                other => other?,
            };
            if h.target == format!("Deployment/{deployment}") {
                scaling.push(h);
            }
        }
        Ok(scaling)
    }

    /// `pdb_status {}`: every PodDisruptionBudget and how many disruptions it allows now.
    /// `policy/v1` where served, `policy/v1beta1` on clusters older than 1.21.
    ///
    /// # Errors
    /// [`ClusterError::NotServed`] when neither version is served, and the calls' errors.
    pub async fn pdb_status(&self) -> Result<Vec<PdbInfo>, ClusterError> {
        let ar = self
            .discover_any(&["policy/v1", "policy/v1beta1"], "poddisruptionbudgets")
            .await?;
        let api = self.dynamic_api(&ar, &self.namespace);
        let list = self
            .call(
                Op::new("list", "poddisruptionbudgets"),
                api.list(&ListParams::default()),
            )
            .await?;
        let mut out: Vec<PdbInfo> = list
            .items
            .iter()
            .map(|p| {
                let int = |v: &Value| v.as_i64().unwrap_or(0) as i32;
                let int_or_str = |v: &Value| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                };
                PdbInfo {
                    name: p.name_any(),
                    min_available: int_or_str(&p.data["spec"]["minAvailable"]),
                    max_unavailable: int_or_str(&p.data["spec"]["maxUnavailable"]),
                    current_healthy: int(&p.data["status"]["currentHealthy"]),
                    desired_healthy: int(&p.data["status"]["desiredHealthy"]),
                    disruptions_allowed: int(&p.data["status"]["disruptionsAllowed"]),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `configmap_keys {configmap, grep?}`: keys and (shortened) values, optionally only
    /// those whose `key=value` matches.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for an unknown ConfigMap, and the call's errors.
    pub async fn configmap_keys(
        &self,
        configmap: &K8sName,
        grep: Option<&Filter>,
    ) -> Result<Vec<ConfigMapEntry>, ClusterError> {
        let api: Api<ConfigMap> = self.api();
        let cm = self
            .call(
                Op::new("get", "configmaps").named(configmap.as_str()),
                api.get(configmap.as_str()),
            )
            .await?;
        Ok(cm
            .data
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, v)| grep.is_none_or(|g| g.is_match(&format!("{k}={v}"))))
            .map(|(key, value)| ConfigMapEntry {
                key,
                value: truncate(&value, CONFIGMAP_VALUE_CHARS),
            })
            .collect())
    }

    /// `pvc_status {pvc?}`: phase, requested size and real capacity of one or every claim.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for an unknown claim, and the calls' errors.
    pub async fn pvc_status(&self, pvc: Option<&K8sName>) -> Result<Vec<PvcInfo>, ClusterError> {
        let api: Api<PersistentVolumeClaim> = self.api();
        let claims = match pvc {
            Some(name) => vec![
                self.call(
                    Op::new("get", "persistentvolumeclaims").named(name.as_str()),
                    api.get(name.as_str()),
                )
                .await?,
            ],
            None => {
                self.call(
                    Op::new("list", "persistentvolumeclaims"),
                    api.list(&ListParams::default()),
                )
                .await?
                .items
            }
        };
        Ok(claims.iter().map(pvc_info).collect())
    }

    /// `certificates {}`: cert-manager Certificates with readiness, expiry and renewal.
    ///
    /// # Errors
    /// [`ClusterError::CrdNotInstalled`] without cert-manager, and the calls' errors.
    pub async fn certificates(&self) -> Result<Vec<CertificateInfo>, ClusterError> {
        let ar = self.crd("cert-manager.io/v1", "certificates").await?;
        let api = self.dynamic_api(&ar, &self.namespace);
        let list = self
            .call(
                Op::new("list", "certificates"),
                api.list(&ListParams::default()),
            )
            .await?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Ok(list
            .items
            .iter()
            .map(|c| {
                let ready = c.data["status"]["conditions"]
                    .as_array()
                    .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
                CertificateInfo {
                    name: c.name_any(),
                    secret: text(&c.data["spec"]["secretName"]),
                    ready: ready
                        .and_then(|r| r["status"].as_str())
                        .map(|s| s == "True"),
                    ready_message: ready.and_then(|r| text(&r["message"])),
                    not_after: text(&c.data["status"]["notAfter"]),
                    renewal_time: text(&c.data["status"]["renewalTime"]),
                }
            })
            .collect())
    }

    /// `backups {}`: Velero Backups (newest first) and Restores, with phase and times.
    ///
    /// # Errors
    /// [`ClusterError::CrdNotInstalled`] without Velero, and the calls' errors.
    pub async fn backups(&self) -> Result<crate::domain::k8s::Backups, ClusterError> {
        let backups = self.velero_list("backups").await?;
        let restores = self.velero_list("restores").await?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Ok(crate::domain::k8s::Backups {
            backups: backups
                .iter()
                .map(|b| VeleroBackup {
                    name: b.name_any(),
                    phase: text(&b.data["status"]["phase"]),
                    started: text(&b.data["status"]["startTimestamp"]),
                    completed: text(&b.data["status"]["completionTimestamp"]),
                    expires: text(&b.data["status"]["expiration"]),
                })
                .collect(),
            restores: restores
                .iter()
                .map(|r| VeleroRestore {
                    name: r.name_any(),
                    backup: text(&r.data["spec"]["backupName"]),
                    phase: text(&r.data["status"]["phase"]),
                    started: text(&r.data["status"]["startTimestamp"]),
                    completed: text(&r.data["status"]["completionTimestamp"]),
                })
                .collect(),
        })
    }

    /// Velero objects of one kind, newest first (by start time, else creation).
    pub(super) async fn velero_list(
        &self,
        plural: &'static str,
    ) -> Result<Vec<DynamicObject>, ClusterError> {
        let ar = self.crd("velero.io/v1", plural).await?;
        let api = self.dynamic_api(&ar, &self.velero_namespace);
        let mut items = self
            .call(Op::new("list", plural), api.list(&ListParams::default()))
            .await?
            .items;
        items.sort_by_key(|o| std::cmp::Reverse(velero_time(o)));
        Ok(items)
    }

    /// `access_review {}`: the namespace's service accounts, its RoleBindings, and the
    /// ClusterRoleBindings with a subject in it. Parts odorbot may not read are reported
    /// as such, not as a failure.
    ///
    /// # Errors
    /// Errors other than RBAC refusals (unreachable, timeout).
    pub async fn access_review(&self) -> Result<AccessReview, ClusterError> {
        let ns = self.namespace.as_str();
        let sa_api: Api<ServiceAccount> = self.api();
        let service_accounts = readable(
            self.call(
                Op::new("list", "serviceaccounts"),
                sa_api.list(&ListParams::default()),
            )
            .await
            .map(|l| l.items.iter().map(|s| s.name_any()).collect()),
        )?;
        let rb_api: Api<RoleBinding> = self.api();
        let role_bindings = readable(
            self.call(
                Op::new("list", "rolebindings"),
                rb_api.list(&ListParams::default()),
            )
            .await
            .map(|l| {
                l.items
                    .iter()
                    .map(|b| binding_info(&b.metadata, &b.role_ref, b.subjects.as_deref()))
                    .collect()
            }),
        )?;
        let crb_api: Api<ClusterRoleBinding> = Api::all(self.client.clone());
        let cluster_role_bindings = readable(
            self.call(
                Op::new("list", "clusterrolebindings (cluster-wide)"),
                crb_api.list(&ListParams::default()),
            )
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|b| {
                        b.subjects
                            .as_deref()
                            .unwrap_or_default()
                            .iter()
                            .any(|s| subject_in_namespace(s, ns))
                    })
                    .map(|b| binding_info(&b.metadata, &b.role_ref, b.subjects.as_deref()))
                    .collect()
            }),
        )?;
        Ok(AccessReview {
            namespace: ns.to_owned(),
            service_accounts,
            role_bindings,
            cluster_role_bindings,
        })
    }

    /// `resource_usage {selector?}`: CPU and memory per pod from `metrics.k8s.io`, or
    /// [`ResourceUsage::NotServed`] when the cluster has no metrics API.
    ///
    /// # Errors
    /// Errors of the discovery and list calls.
    pub async fn resource_usage(
        &self,
        selector: Option<&Selector>,
    ) -> Result<ResourceUsage, ClusterError> {
        let Some(found) = self.discover("metrics.k8s.io/v1beta1", "pods").await? else {
            return Ok(ResourceUsage::NotServed);
        };
        let api = self.dynamic_api(&found.resource, &self.namespace);
        let lp = match selector {
            Some(s) => ListParams::default().labels(&s.to_string()),
            None => ListParams::default(),
        };
        let list = self
            .call(Op::new("list", "pods.metrics.k8s.io"), api.list(&lp))
            .await?;
        let mut pods: Vec<PodUsage> = list
            .items
            .iter()
            .map(|m| {
                let (mut cpu, mut mem) = (0u128, 0u128);
                for c in m.data["containers"].as_array().into_iter().flatten() {
                    let q = |k: &str| {
                        c["usage"][k]
                            .as_str()
                            .and_then(parse_quantity_millis)
                            .unwrap_or(0)
                    };
                    cpu += q("cpu");
                    mem += q("memory");
                }
                PodUsage {
                    pod: m.name_any(),
                    cpu_millicores: u64::try_from(cpu).unwrap_or(u64::MAX),
                    memory_bytes: u64::try_from(mem / 1000).unwrap_or(u64::MAX),
                }
            })
            .collect();
        pods.sort_by(|a, b| a.pod.cmp(&b.pod));
        Ok(ResourceUsage::Pods(pods))
    }
}

/// An RBAC refusal becomes a "could not read" entry; anything else stays an error.
fn readable<T>(r: Result<T, ClusterError>) -> Result<Readable<T>, ClusterError> {
    match r {
        Ok(v) => Ok(Readable::Read(v)),
        Err(e @ ClusterError::Forbidden { .. }) => Ok(Readable::NotReadable(e.to_string())),
        Err(e) => Err(e),
    }
}

fn subject_in_namespace(s: &Subject, ns: &str) -> bool {
    match s.kind.as_str() {
        "ServiceAccount" => s.namespace.as_deref() == Some(ns),
        "Group" => s.name == format!("system:serviceaccounts:{ns}"),
        "User" => s.name.starts_with(&format!("system:serviceaccount:{ns}:")),
        _ => false,
    }
}

fn binding_info(meta: &ObjectMeta, role: &RoleRef, subjects: Option<&[Subject]>) -> BindingInfo {
    BindingInfo {
        name: meta.name.clone().unwrap_or_default(),
        role: format!("{}/{}", role.kind, role.name),
        subjects: subjects
            .unwrap_or_default()
            .iter()
            .map(|s| match &s.namespace {
                Some(ns) => format!("{}/{ns}/{}", s.kind, s.name),
                None => format!("{}/{}", s.kind, s.name),
            })
            .collect(),
    }
}

fn velero_time(o: &DynamicObject) -> String {
    o.data["status"]["startTimestamp"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            o.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        })
        .unwrap_or_default()
}

/// A Deployment's `matchLabels` as a label selector (`app=odordiff-api`).
fn selector_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

pub(super) fn pod_info(pod: &Pod) -> PodInfo {
    let status = pod.status.clone().unwrap_or_default();
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let ready = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let reason = statuses
        .iter()
        .find_map(|s| {
            let st = s.state.as_ref()?;
            st.waiting
                .as_ref()
                .and_then(|w| w.reason.clone())
                .or_else(|| st.terminated.as_ref().and_then(|t| t.reason.clone()))
        })
        .or(status.reason.clone());
    PodInfo {
        terminating: pod.metadata.deletion_timestamp.is_some(),
        name: pod.name_any(),
        phase: status.phase.clone().unwrap_or_else(|| "Unknown".into()),
        ready,
        ready_containers: statuses.iter().filter(|s| s.ready).count(),
        containers: pod.spec.as_ref().map_or(0, |s| s.containers.len()),
        restarts: statuses
            .iter()
            .map(|s| u32::try_from(s.restart_count).unwrap_or(0))
            .sum(),
        reason,
        created: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string()),
    }
}

/// Failing: neither ready nor finished successfully.
fn is_failing(pod: &Pod) -> bool {
    let info = pod_info(pod);
    !info.ready && info.phase != "Succeeded"
}

fn pod_conditions(pod: &Pod) -> Vec<String> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| match &c.reason {
                    Some(r) => format!("{}={} ({r})", c.type_, c.status),
                    None => format!("{}={}", c.type_, c.status),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn container_states(pod: &Pod) -> Vec<ContainerState> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    containers
        .iter()
        .map(|c| {
            let st = statuses.iter().find(|s| s.name == c.name);
            let state = match st.and_then(|s| s.state.as_ref()) {
                Some(s) if s.running.is_some() => {
                    let since = s.running.as_ref().and_then(|r| r.started_at.as_ref());
                    match since {
                        Some(t) => format!("running since {}", t.0),
                        None => "running".into(),
                    }
                }
                Some(s) if s.waiting.is_some() => {
                    let w = s.waiting.as_ref().and_then(|w| w.reason.clone());
                    format!("waiting: {}", w.unwrap_or_else(|| "unknown reason".into()))
                }
                Some(s) if s.terminated.is_some() => {
                    let t = s.terminated.as_ref().map(termination).unwrap_or_default();
                    format!("terminated: {t}")
                }
                _ => "not started".into(),
            };
            ContainerState {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                ready: st.is_some_and(|s| s.ready),
                restarts: st.map_or(0, |s| u32::try_from(s.restart_count).unwrap_or(0)),
                state,
                last_termination: st
                    .and_then(|s| s.last_state.as_ref())
                    .and_then(|l| l.terminated.as_ref())
                    .map(termination),
            }
        })
        .collect()
}

fn termination(t: &k8s_openapi::api::core::v1::ContainerStateTerminated) -> String {
    let mut s = format!(
        "{} (exit {})",
        t.reason.clone().unwrap_or_else(|| "unknown".into()),
        t.exit_code
    );
    if let Some(at) = &t.finished_at {
        s.push_str(&format!(" at {}", at.0));
    }
    s
}

pub(super) fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn event_info(e: &Event) -> EventInfo {
    EventInfo {
        time: event_time(e).map(|t| t.to_string()),
        kind: e.type_.clone().unwrap_or_else(|| "Normal".into()),
        reason: e.reason.clone().unwrap_or_default(),
        object: format!(
            "{}/{}",
            e.involved_object.kind.clone().unwrap_or_default(),
            e.involved_object.name.clone().unwrap_or_default()
        ),
        message: e.message.clone().unwrap_or_default(),
        count: e.count.map_or(1, |c| u32::try_from(c).unwrap_or(1)),
    }
}

/// The container `kubectl logs` would pick: the annotated default, else the first.
fn default_container(pod: &Pod) -> String {
    pod.annotations()
        .get("kubectl.kubernetes.io/default-container")
        .cloned()
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .map(|c| c.name.clone())
        })
        .unwrap_or_default()
}

/// The kubelet answers 200 with one line of its own when a run's log is gone (it keeps one
/// dead container per container, so a crash loop's run before last is collected, and its
/// file may already be unlinked): that line, not a log line.
fn log_gone(text: &str) -> Option<&str> {
    let line = text.trim();
    if line.contains('\n') {
        return None;
    }
    line.strip_prefix("unable to retrieve container logs for ")
        .or_else(|| {
            line.starts_with("failed to try resolving symlinks in path \"/var/log/pods/")
                .then_some(line)
        })
}

/// Keeps the matching lines, the last [`LogQuery::MAX_LINES_PER_POD`] of them.
fn filter_lines(text: &str, grep: Option<&Filter>) -> (Vec<String>, bool) {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| grep.is_none_or(|g| g.is_match(l)))
        .map(str::to_owned)
        .collect();
    let extra = lines.len().saturating_sub(LogQuery::MAX_LINES_PER_POD);
    lines.drain(..extra);
    (lines, extra > 0)
}

pub(super) fn template_images(t: &PodTemplateSpec) -> Vec<String> {
    t.spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| c.image.clone().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

fn pvc_info(c: &PersistentVolumeClaim) -> PvcInfo {
    let spec = c.spec.clone().unwrap_or_default();
    let status = c.status.clone().unwrap_or_default();
    PvcInfo {
        name: c.name_any(),
        phase: status.phase.unwrap_or_else(|| "Unknown".into()),
        requested: spec
            .resources
            .and_then(|r| r.requests)
            .and_then(|r| r.get("storage").map(|q| q.0.clone())),
        capacity: status
            .capacity
            .and_then(|c| c.get("storage").map(|q| q.0.clone())),
        storage_class: spec.storage_class_name,
        volume: spec.volume_name,
    }
}

/// `kubectl rollout status`'s judgement, without the waiting.
fn rollout_status(d: &Deployment) -> RolloutStatus {
    let name = d.name_any();
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let observed = d.metadata.generation.unwrap_or(0) <= status.observed_generation.unwrap_or(0);
    let deadline_exceeded = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
    let (complete, failed, message) = if !observed {
        (
            false,
            false,
            "waiting for the deployment spec update to be observed".to_owned(),
        )
    } else if deadline_exceeded {
        (
            false,
            true,
            format!("deployment {name:?} exceeded its progress deadline"),
        )
    } else if updated < desired {
        (
            false,
            false,
            format!("{updated} of {desired} new replicas have been updated"),
        )
    } else if total > updated {
        (
            false,
            false,
            format!("{} old replicas are pending termination", total - updated),
        )
    } else if available < updated {
        (
            false,
            false,
            format!("{available} of {updated} updated replicas are available"),
        )
    } else {
        (
            true,
            false,
            format!("deployment {name:?} successfully rolled out"),
        )
    };
    RolloutStatus {
        deployment: name,
        desired,
        updated,
        ready,
        available,
        complete,
        failed,
        message,
    }
}

/// Parses the `spec` of a dynamic object into its typed form (e.g. a CronJob's).
pub(super) fn typed_spec<T: serde::de::DeserializeOwned>(
    obj: &DynamicObject,
    what: &str,
) -> Result<T, ClusterError> {
    from_field(obj, "spec", what)
}

#[cfg(test)]
mod tests {
    use super::log_gone;

    #[test]
    fn the_kubelets_own_lines_about_a_gone_log_are_not_log_lines() {
        assert_eq!(
            log_gone("unable to retrieve container logs for containerd://ab12\n"),
            Some("containerd://ab12")
        );
        let unlinked = "failed to try resolving symlinks in path \"/var/log/pods/ns_pod_uid/api/0.log\": lstat /var/log/pods/ns_pod_uid/api/0.log: no such file or directory";
        assert_eq!(log_gone(unlinked), Some(unlinked));
        assert_eq!(log_gone("ERROR startup failed"), None);
        assert_eq!(
            log_gone("unable to retrieve container logs for x\nsecond line"),
            None
        );
    }
}
