//! Destructive actions. Each takes a [`Mode`]: `DryRun` asks the API server to run the
//! whole request with `dryRun=All` (admission, validation, defaulting and RBAC included,
//! nothing persisted) and reports the fields that would change; `Execute` does it and
//! reports what changed. Both compute the change as a diff of the object before and the
//! object the server returned, so the preview shows exactly what the server would do.
//!
//! Multi-step actions (secret rotation, certificate renewal, quarantine) dry-run every step
//! before the first real one, so a refusal by RBAC or validation changes nothing; a failure
//! after that is reported as [`ClusterError::Partial`] with what was already done.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJobSpec, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, Pod, PodTemplateSpec, Secret,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::diagnostics::{REVISION_ANNOTATION, template_images, typed_spec};
use super::{Cluster, ClusterError, FIELD_MANAGER, Op, to_json};
use crate::domain::args::MAX_REPLICAS;
use crate::domain::ids::K8sName;
use crate::domain::k8s::{
    Change, ChangeReport, DataKey, EnvName, ImageTag, JobProgress, Mode, QualifiedName, Quantity,
    ResourceLimits, RestoreProgress, diff_objects, parse_quantity_millis, restore_namespace, retag,
};
use crate::runbook::actions::{MAX_JOB_NAME, TEST_RESTORE_PREFIX};

const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Marks a Job made by hand from a CronJob, as `kubectl create job --from` does.
const INSTANTIATE_ANNOTATION: &str = "cronjob.kubernetes.io/instantiate";
const QUARANTINE_LABEL: &str = "quarantine";
const TEMPORARY_CERT_ANNOTATION: &str = "cert-manager.io/issue-temporary-certificate";
const MAX_ANNOTATION_VALUE: usize = 1024;
const MAX_CONFIG_VALUE: usize = 64 * 1024;
/// Bytes of randomness in a rotated secret (rendered as twice as many hex digits).
const ROTATED_SECRET_BYTES: usize = 32;

/// `patch_hpa`'s changes; unset fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HpaPatch {
    pub min_replicas: Option<u32>,
    pub max_replicas: Option<u32>,
    pub target_cpu_percent: Option<u32>,
}

/// `rotate_secret`'s parameters: `env` in `container` of `deployment` reads key `key` from
/// one of two Secrets that exist from install time, `secret_a` or `secret_b`; a rotation
/// overwrites the other one and points `env` at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRotation {
    pub deployment: K8sName,
    pub container: K8sName,
    pub env: EnvName,
    pub key: DataKey,
    pub secret_a: K8sName,
    pub secret_b: K8sName,
}

fn patch_params(mode: Mode) -> PatchParams {
    PatchParams {
        dry_run: mode.is_dry_run(),
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

fn post_params(mode: Mode) -> PostParams {
    PostParams {
        dry_run: mode.is_dry_run(),
        field_manager: Some(FIELD_MANAGER.to_owned()),
    }
}

fn delete_params(mode: Mode) -> DeleteParams {
    DeleteParams {
        dry_run: mode.is_dry_run(),
        ..DeleteParams::default()
    }
}

fn now_rfc3339() -> String {
    // Whole seconds, like kubectl's RFC 3339 timestamps.
    Timestamp::from_second(Timestamp::now().as_second())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn invalid(msg: impl Into<String>) -> ClusterError {
    ClusterError::InvalidInput(msg.into())
}

/// A failure after some changes were made is reported with them.
fn after(done: &[Change], e: ClusterError) -> ClusterError {
    if done.is_empty() {
        e
    } else {
        ClusterError::Partial {
            done: done.to_vec(),
            failed: Box::new(e),
        }
    }
}

/// The named container of a pod template, or an error listing the ones it has.
fn container<'a>(
    template: Option<&'a PodTemplateSpec>,
    owner: &str,
    name: &K8sName,
) -> Result<&'a Container, ClusterError> {
    let containers = template
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    containers
        .iter()
        .find(|c| c.name == name.as_str())
        .ok_or_else(|| {
            let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
            invalid(format!(
                "{owner} has no container \"{name}\"; it has {}",
                names.join(", ")
            ))
        })
}

/// Container names are DNS labels: no dots, at most 63 characters.
fn check_dns_label(name: &K8sName, what: &str) -> Result<(), ClusterError> {
    if name.as_str().contains('.') || name.as_str().len() > 63 {
        return Err(invalid(format!(
            "{what} \"{name}\" must be a DNS label (no dots, at most 63 characters)"
        )));
    }
    Ok(())
}

impl Cluster {
    /// Reads an object, patches it (or dry-runs the patch) and returns the fields that
    /// differ between the object before and the one the server returned.
    async fn patch_and_diff<K>(
        &self,
        plural: &str,
        name: &K8sName,
        patch: Patch<Value>,
        mode: Mode,
    ) -> Result<Vec<Change>, ClusterError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + std::fmt::Debug,
    {
        let api: Api<K> = self.api();
        let n = name.as_str();
        let before = self
            .call(Op::new("get", plural).named(n), api.get(n))
            .await?;
        self.patch_known(&api, plural, &before, patch, mode).await
    }

    /// Like [`Cluster::patch_and_diff`] with the object already read.
    async fn patch_known<K>(
        &self,
        api: &Api<K>,
        plural: &str,
        before: &K,
        patch: Patch<Value>,
        mode: Mode,
    ) -> Result<Vec<Change>, ClusterError>
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Serialize
            + std::fmt::Debug,
    {
        let n = before.name_any();
        let after = self
            .call(
                Op::new("patch", plural).named(&n),
                api.patch(&n, &patch_params(mode), &patch),
            )
            .await?;
        Ok(diff_objects(
            &format!("{}/{n}", K::kind(&())),
            &to_json(before),
            &to_json(&after),
        ))
    }

    async fn patch_dynamic(
        &self,
        api: &Api<DynamicObject>,
        kind: &str,
        plural: &str,
        before: &DynamicObject,
        patch: Patch<Value>,
        mode: Mode,
    ) -> Result<Vec<Change>, ClusterError> {
        let n = before.name_any();
        let after = self
            .call(
                Op::new("patch", plural).named(&n),
                api.patch(&n, &patch_params(mode), &patch),
            )
            .await?;
        Ok(diff_objects(
            &format!("{kind}/{n}"),
            &to_json(before),
            &to_json(&after),
        ))
    }

    /// `rollout_restart {deployment}`: stamps the pod template with
    /// `kubectl.kubernetes.io/restartedAt`, so the controller replaces every pod.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`], [`ClusterError::Forbidden`] and the calls' other errors.
    pub async fn rollout_restart(
        &self,
        deployment: &K8sName,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        self.rollout_restart_at(deployment, &now_rfc3339(), mode)
            .await
    }

    /// [`Cluster::rollout_restart`] stamping `restarted_at` (RFC 3339), the value a request
    /// fixed when its dry run was shown.
    ///
    /// # Errors
    /// The calls' errors.
    pub async fn rollout_restart_at(
        &self,
        deployment: &K8sName,
        restarted_at: &str,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        let patch = json!({"spec": {"template": {"metadata": {"annotations": {
            RESTARTED_AT: restarted_at
        }}}}});
        let changes = self
            .patch_and_diff::<Deployment>("deployments", deployment, Patch::Merge(patch), mode)
            .await?;
        Ok(report("rollout_restart", mode, changes))
    }

    /// `scale {deployment, replicas}` through the `/scale` subresource; `0` is the
    /// runbook's containment.
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] beyond [`MAX_REPLICAS`] (before any
    /// call), and the calls' errors.
    pub async fn scale(
        &self,
        deployment: &K8sName,
        replicas: u32,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        self.check_replicas(replicas, 0, "replicas")?;
        let api: Api<Deployment> = self.api();
        let n = deployment.as_str();
        let before = self
            .call(
                Op::new("get", "deployments/scale").named(n),
                api.get_scale(n),
            )
            .await?;
        let after = self
            .call(
                Op::new("patch", "deployments/scale").named(n),
                api.patch_scale(
                    n,
                    &patch_params(mode),
                    &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                ),
            )
            .await?;
        // Read the typed field: the server omits `replicas` when it is zero.
        let count = |s: &k8s_openapi::api::autoscaling::v1::Scale| {
            s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
        };
        let (was, now) = (count(&before), count(&after));
        let changes = if was == now {
            Vec::new()
        } else {
            vec![Change::new(
                format!("Deployment/{n}"),
                "spec.replicas",
                Some(was.to_string()),
                Some(now.to_string()),
            )]
        };
        Ok(report("scale", mode, changes))
    }

    fn check_replicas(&self, n: u32, min: u32, what: &str) -> Result<(), ClusterError> {
        let max = MAX_REPLICAS;
        if n < min || n > max {
            return Err(invalid(format!(
                "{what} must be between {min} and {max}, not {n}"
            )));
        }
        Ok(())
    }

    /// `rollback_deployment {deployment, revision?}`: like `kubectl rollout undo`, the pod
    /// template of the previous (or the named) ReplicaSet revision becomes the
    /// Deployment's. The write is a replace carrying the resourceVersion that was read, so
    /// a concurrent change makes it fail with [`ClusterError::Conflict`].
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] for a paused Deployment or a revision that does not
    /// exist; [`ClusterError::Conflict`]; the calls' errors.
    pub async fn rollback_deployment(
        &self,
        deployment: &K8sName,
        revision: Option<u64>,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        let d = self.get_deployment(deployment).await?;
        if d.spec.as_ref().and_then(|s| s.paused) == Some(true) {
            return Err(invalid(format!(
                "deployment {deployment} is paused; resume it before rolling back"
            )));
        }
        let current: Option<u64> = d
            .annotations()
            .get(REVISION_ANNOTATION)
            .and_then(|r| r.parse().ok());
        let sets = self.owned_replica_sets(&d).await?;
        let target = match revision {
            Some(r) => sets.iter().find(|(rev, _)| *rev == r),
            None => sets.iter().rev().find(|(rev, _)| Some(*rev) != current),
        };
        let Some((target_rev, rs)) = target else {
            let known: Vec<String> = sets.iter().map(|(r, _)| r.to_string()).collect();
            return Err(invalid(match revision {
                Some(r) => format!(
                    "deployment {deployment} has no revision {r}; it has {}",
                    known.join(", ")
                ),
                None => format!("deployment {deployment} has no previous revision to roll back to"),
            }));
        };
        let mut template = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.clone())
            .unwrap_or_default();
        // The controller adds this label to each ReplicaSet's template; the Deployment's
        // own template never carries it.
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        let mut report = ChangeReport::new("rollback_deployment", mode);
        let live_template = d.spec.as_ref().map(|s| &s.template);
        if live_template == Some(&template) {
            report.notes.push(format!(
                "the current template already matches revision {target_rev}; nothing to do"
            ));
            return Ok(report);
        }
        let mut next = d.clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.template = template;
        }
        // Keep the target's change-cause, as `kubectl rollout undo` copies it.
        let annotations = next.metadata.annotations.get_or_insert_with(BTreeMap::new);
        match rs.annotations().get(CHANGE_CAUSE) {
            Some(cause) => annotations.insert(CHANGE_CAUSE.to_owned(), cause.clone()),
            None => annotations.remove(CHANGE_CAUSE),
        };
        let api: Api<Deployment> = self.api();
        let n = deployment.as_str();
        let written = self
            .call(
                Op::new("update", "deployments").named(n),
                api.replace(n, &post_params(mode), &next),
            )
            .await?;
        report.changes = diff_objects(&format!("Deployment/{n}"), &to_json(&d), &to_json(&written));
        report.notes.push(format!(
            "rolling back from revision {} to revision {target_rev} ({})",
            current.map_or_else(|| "?".into(), |c| c.to_string()),
            rs.name_any()
        ));
        Ok(report)
    }

    /// `set_image {deployment, container, tag}`: sets the tag of an image that comes from
    /// `repository`; the change-cause annotation records it for `rollout_history`.
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] for an unknown container or an image from another
    /// repository; the calls' errors.
    pub async fn set_image(
        &self,
        deployment: &K8sName,
        container_name: &K8sName,
        tag: &ImageTag,
        repository: &str,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        check_dns_label(container_name, "container")?;
        let d = self.get_deployment(deployment).await?;
        let c = container(
            d.spec.as_ref().map(|s| &s.template),
            &format!("deployment {deployment}"),
            container_name,
        )?;
        let image = retag(c.image.as_deref().unwrap_or_default(), tag, repository)
            .map_err(|e| invalid(e.to_string()))?;
        let patch = json!({
            "metadata": {"annotations": {
                CHANGE_CAUSE: format!("odorbot: set image {container_name}={image}")
            }},
            "spec": {"template": {"spec": {"containers": [
                {"name": container_name.as_str(), "image": image}
            ]}}}
        });
        let api: Api<Deployment> = self.api();
        let changes = self
            .patch_known(&api, "deployments", &d, Patch::Strategic(patch), mode)
            .await?;
        Ok(report("set_image", mode, changes))
    }

    /// `patch_hpa {hpa, min_replicas?, max_replicas?, target_cpu_percent?}` on
    /// `autoscaling/v1`, as the runbook's `kubectl patch hpa`.
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] for bounds outside `1..=max_replicas`, a minimum
    /// above the maximum (given or current), or a target outside 1–100 %; the calls' errors.
    pub async fn patch_hpa(
        &self,
        hpa: &K8sName,
        change: &HpaPatch,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        if *change == HpaPatch::default() {
            return Err(invalid(
                "patch_hpa needs min_replicas, max_replicas or target_cpu_percent",
            ));
        }
        if let Some(min) = change.min_replicas {
            self.check_replicas(min, 1, "min_replicas")?;
        }
        if let Some(max) = change.max_replicas {
            self.check_replicas(max, 1, "max_replicas")?;
        }
        if let (Some(min), Some(max)) = (change.min_replicas, change.max_replicas)
            && min > max
        {
            return Err(invalid(format!(
                "min_replicas {min} is above max_replicas {max}"
            )));
        }
        if let Some(t) = change.target_cpu_percent
            && !(1..=100).contains(&t)
        {
            return Err(invalid(format!(
                "target_cpu_percent must be between 1 and 100, not {t}"
            )));
        }
        let api: Api<HorizontalPodAutoscaler> = self.api();
        let n = hpa.as_str();
        let before = self
            .call(
                Op::new("get", "horizontalpodautoscalers").named(n),
                api.get(n),
            )
            .await?;
        let spec = before.spec.clone().unwrap_or_default();
        let min = change
            .min_replicas
            .map_or(spec.min_replicas.unwrap_or(1), |v| v as i32);
        let max = change.max_replicas.map_or(spec.max_replicas, |v| v as i32);
        if min > max {
            return Err(invalid(format!(
                "min_replicas {min} would exceed max_replicas {max}"
            )));
        }
        let mut fields = serde_json::Map::new();
        if let Some(v) = change.min_replicas {
            fields.insert("minReplicas".into(), json!(v));
        }
        if let Some(v) = change.max_replicas {
            fields.insert("maxReplicas".into(), json!(v));
        }
        if let Some(v) = change.target_cpu_percent {
            fields.insert("targetCPUUtilizationPercentage".into(), json!(v));
        }
        let patch = Patch::Merge(json!({ "spec": fields }));
        let changes = self
            .patch_known(&api, "horizontalpodautoscalers", &before, patch, mode)
            .await?;
        Ok(report("patch_hpa", mode, changes))
    }

    /// `set_resources {deployment, container, limits}`: the container's resource limits,
    /// as the runbook's strategic-merge patch.
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] for an unknown container; [`ClusterError::Rejected`]
    /// when the server refuses the limits (e.g. below the requests); the calls' errors.
    pub async fn set_resources(
        &self,
        deployment: &K8sName,
        container_name: &K8sName,
        limits: &ResourceLimits,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        check_dns_label(container_name, "container")?;
        let d = self.get_deployment(deployment).await?;
        container(
            d.spec.as_ref().map(|s| &s.template),
            &format!("deployment {deployment}"),
            container_name,
        )?;
        let limits: serde_json::Map<String, Value> = limits
            .iter()
            .map(|(k, v)| (k.to_owned(), json!(v.as_str())))
            .collect();
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": container_name.as_str(), "resources": {"limits": limits}}
        ]}}}});
        let api: Api<Deployment> = self.api();
        let changes = self
            .patch_known(&api, "deployments", &d, Patch::Strategic(patch), mode)
            .await?;
        Ok(report("set_resources", mode, changes))
    }

    /// `patch_configmap {configmap, data}`: merges the given keys into the ConfigMap.
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] for no data or an oversized value; the calls' errors.
    pub async fn patch_configmap(
        &self,
        configmap: &K8sName,
        data: &BTreeMap<DataKey, String>,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        if data.is_empty() {
            return Err(invalid("patch_configmap needs at least one key"));
        }
        if let Some((k, _)) = data.iter().find(|(_, v)| v.len() > MAX_CONFIG_VALUE) {
            return Err(invalid(format!(
                "the value of {k} is longer than {MAX_CONFIG_VALUE} bytes"
            )));
        }
        let data: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let changes = self
            .patch_and_diff::<ConfigMap>(
                "configmaps",
                configmap,
                Patch::Merge(json!({ "data": data })),
                mode,
            )
            .await?;
        Ok(report("patch_configmap", mode, changes))
    }

    /// `job_from_cronjob {cronjob, job_name}`: `kubectl create job --from=cronjob/…`: a Job
    /// with the CronJob's jobTemplate, owned by the CronJob, annotated as manual. CronJobs
    /// are read from `batch/v1` or, on clusters before 1.21, `batch/v1beta1`.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for an unknown CronJob, [`ClusterError::Conflict`] when
    /// the Job already exists, [`ClusterError::NotServed`]; the calls' errors.
    pub async fn job_from_cronjob(
        &self,
        cronjob: &K8sName,
        job_name: &K8sName,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        self.job_from_cronjob_as(cronjob, job_name, "job_from_cronjob", mode)
            .await
    }

    /// [`Cluster::job_from_cronjob`], reported as `action` (`logs_cleanup` runs its
    /// clean-up CronJob this way; no exec into application pods).
    ///
    /// # Errors
    /// As [`Cluster::job_from_cronjob`].
    pub async fn job_from_cronjob_as(
        &self,
        cronjob: &K8sName,
        job_name: &K8sName,
        action: &'static str,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        if job_name.as_str().len() > MAX_JOB_NAME {
            return Err(invalid(format!(
                "job name \"{job_name}\" is longer than {MAX_JOB_NAME} characters"
            )));
        }
        let ar = self
            .discover_any(&["batch/v1", "batch/v1beta1"], "cronjobs")
            .await?;
        let cj_api = self.dynamic_api(&ar, &self.namespace);
        let cj = self
            .call(
                Op::new("get", "cronjobs").named(cronjob.as_str()),
                cj_api.get(cronjob.as_str()),
            )
            .await?;
        let spec: CronJobSpec = typed_spec(&cj, "cronjob")?;
        let template = spec.job_template;
        let template_meta = template.metadata.unwrap_or_default();
        let mut annotations = template_meta.annotations.unwrap_or_default();
        annotations.insert(INSTANTIATE_ANNOTATION.to_owned(), "manual".to_owned());
        let job = Job {
            metadata: ObjectMeta {
                name: Some(job_name.to_string()),
                namespace: Some(self.namespace.to_string()),
                labels: template_meta.labels,
                annotations: Some(annotations),
                owner_references: Some(vec![OwnerReference {
                    api_version: ar.api_version.clone(),
                    kind: "CronJob".to_owned(),
                    name: cronjob.to_string(),
                    uid: cj.metadata.uid.clone().unwrap_or_default(),
                    controller: Some(true),
                    block_owner_deletion: None,
                }]),
                ..ObjectMeta::default()
            },
            spec: template.spec,
            status: None,
        };
        let api: Api<Job> = self.api();
        let created = self
            .call(
                Op::new("create", "jobs").named(job_name.as_str()),
                api.create(&post_params(mode), &job),
            )
            .await?;
        let images = created
            .spec
            .as_ref()
            .map(|s| template_images(&s.template))
            .unwrap_or_default();
        let mut r = ChangeReport::new(action, mode);
        r.changes.push(Change::new(
            format!("Job/{job_name}"),
            "",
            None,
            Some(format!(
                "created from CronJob/{cronjob} (image {})",
                images.join(", ")
            )),
        ));
        Ok(r)
    }

    /// `annotate {deployment, key, value?}`: sets the annotation, or removes it when no
    /// value is given (the runbook's maintenance flag).
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] for an oversized value; the calls' errors.
    pub async fn annotate(
        &self,
        deployment: &K8sName,
        key: &QualifiedName,
        value: Option<&str>,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        if value.is_some_and(|v| v.len() > MAX_ANNOTATION_VALUE) {
            return Err(invalid(format!(
                "annotation values are limited to {MAX_ANNOTATION_VALUE} bytes"
            )));
        }
        let patch = json!({"metadata": {"annotations": { key.as_str(): value }}});
        let changes = self
            .patch_and_diff::<Deployment>("deployments", deployment, Patch::Merge(patch), mode)
            .await?;
        let mut r = report("annotate", mode, changes);
        if r.changes.is_empty() {
            r.notes.push(match value {
                Some(v) => format!("{key} was already {v:?}"),
                None => format!("{key} was not set"),
            });
        }
        Ok(r)
    }

    /// `expand_pvc {pvc, size}`: raises the claim's storage request. Shrinking (or
    /// "expanding" to the same size) is refused: Kubernetes cannot shrink volumes.
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] when `size` is not larger than the current request;
    /// [`ClusterError::Rejected`] when the storage class does not allow expansion.
    pub async fn expand_pvc(
        &self,
        pvc: &K8sName,
        size: &Quantity,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        let api: Api<PersistentVolumeClaim> = self.api();
        let n = pvc.as_str();
        let before = self
            .call(
                Op::new("get", "persistentvolumeclaims").named(n),
                api.get(n),
            )
            .await?;
        let current = before
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.clone())
            .unwrap_or_default();
        let current_value = parse_quantity_millis(&current).unwrap_or(0);
        if size.millis() <= current_value {
            return Err(invalid(format!(
                "{pvc} requests {current}; {size} is not larger, and volumes cannot shrink"
            )));
        }
        let patch = json!({"spec": {"resources": {"requests": {"storage": size.as_str()}}}});
        let changes = self
            .patch_known(
                &api,
                "persistentvolumeclaims",
                &before,
                Patch::Merge(patch),
                mode,
            )
            .await?;
        Ok(report("expand_pvc", mode, changes))
    }

    /// `quarantine_pod {pod, network_policy}`: labels the pod `quarantine=true`, which the
    /// installed quarantine NetworkPolicy isolates. The policy is read, never changed: it
    /// must select exactly that label and deny both directions, or nothing is done.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for the pod or policy; [`ClusterError::Refused`] when the
    /// policy would not isolate the pod; the calls' errors.
    pub async fn quarantine_pod(
        &self,
        pod: &K8sName,
        network_policy: &K8sName,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        let policies: Api<NetworkPolicy> = self.api();
        let policy = self
            .call(
                Op::new("get", "networkpolicies").named(network_policy.as_str()),
                policies.get(network_policy.as_str()),
            )
            .await?;
        if let Some(why) = not_a_quarantine(&policy) {
            return Err(ClusterError::Refused(format!(
                "NetworkPolicy {network_policy} {why}; install manifests/base/quarantine-policy.yaml"
            )));
        }
        let mut r = self
            .label_pod(pod, json!("true"), "quarantine_pod", mode)
            .await?;
        r.notes.push(format!(
            "NetworkPolicy {network_policy} denies all ingress and egress of pods labelled \
             {QUARANTINE_LABEL}=true; no other policy is changed. `/odor unquarantine {pod}` \
             removes the label"
        ));
        Ok(r)
    }

    /// `unquarantine_pod {pod}`: removes the pod's `quarantine` label, so the quarantine
    /// policy no longer selects it.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] for the pod; the calls' errors.
    pub async fn unquarantine_pod(
        &self,
        pod: &K8sName,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        self.label_pod(pod, Value::Null, "unquarantine_pod", mode)
            .await
    }

    /// Sets (or, with `null`, removes) the pod's quarantine label.
    async fn label_pod(
        &self,
        pod: &K8sName,
        value: Value,
        action: &'static str,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        let pods: Api<Pod> = self.api();
        let before = self
            .call(
                Op::new("get", "pods").named(pod.as_str()),
                pods.get(pod.as_str()),
            )
            .await?;
        let patch = json!({"metadata": {"labels": {QUARANTINE_LABEL: value}}});
        let changes = self
            .patch_known(&pods, "pods", &before, Patch::Merge(patch), mode)
            .await?;
        Ok(report(action, mode, changes))
    }

    /// `rotate_secret {deployment, container, env, key, secret_a, secret_b}`: writes a fresh
    /// random value (32 bytes, hex; made here, never logged or returned) under `key` into
    /// whichever of the two secrets `env` does not read, then points `env` at it. The
    /// previous secret keeps the old value (pods not yet replaced still read it) until the
    /// next rotation overwrites it; nothing is created or deleted, so the Role grants only
    /// `patch` on the two names.
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] when the env var reads neither secret, or the idle one
    /// is used elsewhere in the pod template (overwriting it would change that);
    /// [`ClusterError::NotFound`] when the idle secret was not installed;
    /// [`ClusterError::Partial`] after a late failure.
    pub async fn rotate_secret(
        &self,
        rotation: &SecretRotation,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        let SecretRotation {
            deployment,
            container: container_name,
            env,
            key,
            secret_a,
            secret_b,
        } = rotation;
        check_dns_label(container_name, "container")?;
        if secret_a == secret_b {
            return Err(invalid("rotation needs two different secrets"));
        }
        let d = self.get_deployment(deployment).await?;
        let template = d.spec.as_ref().map(|s| &s.template);
        let c = container(
            template,
            &format!("deployment {deployment}"),
            container_name,
        )?;
        let active = c
            .env
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|e| e.name == env.as_str())
            .and_then(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
            .map(|r| r.name.as_str());
        let (active, idle) = match active {
            Some(a) if a == secret_a.as_str() => (secret_a, secret_b),
            Some(b) if b == secret_b.as_str() => (secret_b, secret_a),
            _ => {
                return Err(invalid(format!(
                    "{env} of container {container_name} reads from neither secret {secret_a} \
                     nor {secret_b}"
                )));
            }
        };
        if let Some(user) = other_users_of_secret(template, container_name, env, idle) {
            return Err(invalid(format!(
                "secret {idle} is also used by {user}; overwriting it would change that"
            )));
        }
        let env_patch = json!({"spec": {"template": {"spec": {"containers": [{
            "name": container_name.as_str(),
            "env": [{"name": env.as_str(), "valueFrom": {"secretKeyRef": {
                "name": idle.as_str(), "key": key.as_str()
            }}}]
        }]}}}});
        let secrets: Api<Secret> = self.api();
        let deployments: Api<Deployment> = self.api();
        let steps = |m: Mode| {
            let env_patch = env_patch.clone();
            let (secrets, deployments, d) = (&secrets, &deployments, &d);
            async move {
                let mut done = Vec::new();
                let value = random_hex(ROTATED_SECRET_BYTES)?;
                // A merge patch by name: the one write `patch` pinned to the two names allows.
                let patch = Patch::Merge(json!({"data": {
                    key.as_str(): ByteString(value.expose_secret().as_bytes().to_vec())
                }}));
                let written = self
                    .call(
                        Op::new("patch", "secrets").named(idle.as_str()),
                        secrets.patch(idle.as_str(), &patch_params(m), &patch),
                    )
                    .await;
                drop(patch);
                drop(value);
                // The patched object carries the value back: keep only that it was written.
                written.map(drop)?;
                done.push(Change::new(
                    format!("Secret/{idle}"),
                    format!("data.{key}"),
                    Some("previous key (not shown)".into()),
                    Some(format!(
                        "overwritten ({} random hex digits, not shown)",
                        ROTATED_SECRET_BYTES * 2
                    )),
                ));
                let env_changes = self
                    .patch_known(
                        deployments,
                        "deployments",
                        d,
                        Patch::Strategic(env_patch),
                        m,
                    )
                    .await
                    .map_err(|e| after(&done, e))?;
                done.extend(env_changes);
                Ok::<_, ClusterError>(done)
            }
        };
        let mut changes = steps(Mode::DryRun).await.map_err(|e| match e {
            ClusterError::Partial { failed, .. } => *failed,
            e => e,
        })?;
        if mode == Mode::Execute {
            changes = steps(Mode::Execute).await?;
            tracing::info!(
                namespace = %self.namespace, %deployment, from = %active, to = %idle,
                "rotated secret"
            );
        }
        Ok(report("rotate_secret", mode, changes))
    }

    /// `renew_certificate {certificate, secret}`: as the runbook, deletes the TLS secret
    /// and annotates the Certificate `cert-manager.io/issue-temporary-certificate=true`, so
    /// cert-manager issues a new one. The secret must be the Certificate's own.
    ///
    /// # Errors
    /// [`ClusterError::CrdNotInstalled`] without cert-manager; [`ClusterError::InvalidInput`]
    /// when `secret` is not the Certificate's `spec.secretName`; the calls' errors.
    /// The secret a certificate keeps its key pair in (`spec.secretName`).
    ///
    /// # Errors
    /// The certificate cannot be read, or names no valid secret.
    pub async fn certificate_secret(&self, certificate: &K8sName) -> Result<K8sName, ClusterError> {
        let ar = self.crd("cert-manager.io/v1", "certificates").await?;
        let cert = self
            .call(
                Op::new("get", "certificates").named(certificate.as_str()),
                self.dynamic_api(&ar, &self.namespace)
                    .get(certificate.as_str()),
            )
            .await?;
        cert.data["spec"]["secretName"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                invalid(format!(
                    "certificate {certificate} names no valid secretName"
                ))
            })
    }

    pub async fn renew_certificate(
        &self,
        certificate: &K8sName,
        secret: &K8sName,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        let ar = self.crd("cert-manager.io/v1", "certificates").await?;
        let certs = self.dynamic_api(&ar, &self.namespace);
        let cert = self
            .call(
                Op::new("get", "certificates").named(certificate.as_str()),
                certs.get(certificate.as_str()),
            )
            .await?;
        let owned = cert.data["spec"]["secretName"].as_str();
        if owned != Some(secret.as_str()) {
            return Err(invalid(format!(
                "certificate {certificate} stores its key pair in {}, not {secret}",
                owned.unwrap_or("(no secretName)")
            )));
        }
        let secrets: Api<Secret> = self.api();
        let patch = json!({"metadata": {"annotations": {TEMPORARY_CERT_ANNOTATION: "true"}}});
        let steps = |m: Mode| {
            let patch = patch.clone();
            let (secrets, certs, cert) = (&secrets, &certs, &cert);
            async move {
                let mut done = Vec::new();
                let deleted = self
                    .call_opt(
                        Op::new("delete", "secrets").named(secret.as_str()),
                        secrets.delete(secret.as_str(), &delete_params(m)),
                    )
                    .await?;
                done.push(Change::new(
                    format!("Secret/{secret}"),
                    "",
                    deleted.as_ref().map(|_| "present".to_owned()),
                    Some(
                        if deleted.is_some() {
                            "deleted"
                        } else {
                            "absent"
                        }
                        .to_owned(),
                    ),
                ));
                let more = self
                    .patch_dynamic(
                        certs,
                        "Certificate",
                        "certificates",
                        cert,
                        Patch::Merge(patch),
                        m,
                    )
                    .await
                    .map_err(|e| after(&done, e))?;
                done.extend(more);
                Ok::<_, ClusterError>(done)
            }
        };
        let mut changes = steps(Mode::DryRun).await.map_err(|e| match e {
            ClusterError::Partial { failed, .. } => *failed,
            e => e,
        })?;
        if mode == Mode::Execute {
            changes = steps(Mode::Execute).await?;
        }
        Ok(report("renew_certificate", mode, changes))
    }

    /// `velero_test_restore {backup?}`: a Velero Restore `test-restore-<unix time>` of the
    /// given backup, or of the newest completed one. The namespace is restored under
    /// `<namespace>-restore-test`, so a test can never overwrite or resurrect objects in
    /// the live namespace.
    ///
    /// # Errors
    /// [`ClusterError::CrdNotInstalled`] without Velero; [`ClusterError::NotFound`] when
    /// there is no such (or no completed) backup; the calls' errors.
    pub async fn velero_test_restore(
        &self,
        backup: Option<&K8sName>,
        restore: &K8sName,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        let backups = self.velero_list("backups").await?;
        let chosen = match backup {
            Some(b) => backups.iter().find(|o| o.name_any() == b.as_str()),
            None => backups
                .iter()
                .find(|o| o.data["status"]["phase"] == "Completed"),
        };
        let Some(chosen) = chosen else {
            return Err(ClusterError::NotFound {
                resource: "backups.velero.io".into(),
                name: backup.map_or_else(|| "(newest completed)".into(), ToString::to_string),
                namespace: self.velero_namespace.to_string(),
            });
        };
        let backup_name = chosen.name_any();
        let ar = self.crd("velero.io/v1", "restores").await?;
        let api = self.dynamic_api(&ar, &self.velero_namespace);
        if !restore.as_str().starts_with(TEST_RESTORE_PREFIX) {
            return Err(invalid(format!(
                "{restore} is not a test restore name (it must start with {TEST_RESTORE_PREFIX})"
            )));
        }
        let name = restore.to_string();
        let ns = self.namespace.as_str();
        let target = self.restore_target();
        let restore = DynamicObject::new(&name, &ar)
            .within(self.velero_namespace.as_str())
            .data(json!({"spec": {
                "backupName": backup_name,
                "includedNamespaces": [ns],
                "namespaceMapping": { ns: target },
            }}));
        self.call(
            Op::new("create", "restores").named(&name),
            api.create(&post_params(mode), &restore),
        )
        .await?;
        let mut r = ChangeReport::new("velero_test_restore", mode);
        r.changes.push(Change::new(
            format!("Restore/{name}"),
            "",
            None,
            Some(format!(
                "created from Backup/{backup_name}, restoring namespace {ns} into {target}"
            )),
        ));
        r.notes.push(format!(
            "the restored copy lives in namespace {target}; delete it after checking"
        ));
        Ok(r)
    }

    /// A Job's progress, from its status: what a Job odorbot started is followed by.
    ///
    /// # Errors
    /// The call's errors.
    pub async fn job_progress(&self, name: &K8sName) -> Result<JobProgress, ClusterError> {
        let api: Api<Job> = self.api();
        let job = self
            .call(
                Op::new("get", "jobs").named(name.as_str()),
                api.get(name.as_str()),
            )
            .await?;
        let status = job.status.unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        let holds = |kind: &str| {
            conditions
                .iter()
                .find(|c| c.type_ == kind && c.status == "True")
        };
        let (finished, why) = match (holds("Complete"), holds("Failed")) {
            (Some(_), _) => (Some(true), None),
            (None, Some(c)) => {
                let why = [c.reason.as_deref(), c.message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                (Some(false), (!why.is_empty()).then_some(why))
            }
            (None, None) => (None, None),
        };
        Ok(JobProgress {
            active: status.active.unwrap_or(0),
            succeeded: status.succeeded.unwrap_or(0),
            failed: status.failed.unwrap_or(0),
            finished,
            why,
        })
    }

    /// Where test restores put their copy of the namespace.
    pub fn restore_target(&self) -> String {
        restore_namespace(self.namespace.as_str())
    }

    /// A test restore's progress, from its status.
    ///
    /// # Errors
    /// [`ClusterError::CrdNotInstalled`] without Velero; the call's errors.
    pub async fn restore_progress(&self, name: &K8sName) -> Result<RestoreProgress, ClusterError> {
        let ar = self.crd("velero.io/v1", "restores").await?;
        let api = self.dynamic_api(&ar, &self.velero_namespace);
        let r = self
            .call(
                Op::new("get", "restores").named(name.as_str()),
                api.get(name.as_str()),
            )
            .await?;
        let status = &r.data["status"];
        Ok(RestoreProgress {
            phase: status["phase"].as_str().unwrap_or_default().to_owned(),
            items_restored: status["progress"]["itemsRestored"].as_i64(),
            total_items: status["progress"]["totalItems"].as_i64(),
            warnings: status["warnings"].as_i64().unwrap_or(0),
            errors: status["errors"].as_i64().unwrap_or(0),
        })
    }

    /// `velero_restore_cleanup {restore?}`: deletes the named test restore, or every
    /// Restore named `test-restore-…`, then the scratch namespace they restore into. Other
    /// Restores and namespaces are never touched.
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] for a name without the test prefix;
    /// [`ClusterError::CrdNotInstalled`] without Velero; the calls' errors.
    pub async fn velero_restore_cleanup(
        &self,
        restore: Option<&K8sName>,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        if let Some(r) = restore
            && !r.as_str().starts_with(TEST_RESTORE_PREFIX)
        {
            return Err(invalid(format!(
                "{r} is not a test restore (its name does not start with {TEST_RESTORE_PREFIX})"
            )));
        }
        let ar = self.crd("velero.io/v1", "restores").await?;
        let api = self.dynamic_api(&ar, &self.velero_namespace);
        let names: Vec<String> = match restore {
            Some(r) => vec![r.to_string()],
            None => self
                .velero_list("restores")
                .await?
                .iter()
                .map(ResourceExt::name_any)
                .filter(|n| n.starts_with(TEST_RESTORE_PREFIX))
                .collect(),
        };
        let mut r = ChangeReport::new("velero_restore_cleanup", mode);
        if names.is_empty() {
            r.notes.push("there are no test restores".into());
        }
        for name in names {
            self.call(
                Op::new("delete", "restores").named(&name),
                api.delete(&name, &delete_params(mode)),
            )
            .await
            .map_err(|e| after(&r.changes, e))?;
            r.changes.push(deleted(&format!("Restore/{name}")));
        }
        self.delete_restore_namespace(&mut r, mode).await?;
        Ok(r)
    }

    /// Deletes the scratch namespace of test restores into `r`, through the one
    /// cluster-scoped grant (`manifests/base/restore-clusterrole.yaml`); without it, says so
    /// and leaves the namespace.
    async fn delete_restore_namespace(
        &self,
        r: &mut ChangeReport,
        mode: Mode,
    ) -> Result<(), ClusterError> {
        let target = self.restore_target();
        let api: Api<Namespace> = Api::all(self.client.clone());
        let found = self
            .call(
                Op::new("get", "namespaces").named(&target),
                api.get(&target),
            )
            .await;
        match found {
            Ok(ns) if ns.metadata.deletion_timestamp.is_some() => {
                r.notes.push(format!("namespace {target} is already being deleted"));
            }
            Ok(_) => {
                self.call(
                    Op::new("delete", "namespaces").named(&target),
                    api.delete(&target, &delete_params(mode)),
                )
                .await
                .map_err(|e| after(&r.changes, e))?;
                r.changes.push(deleted(&format!("Namespace/{target}")));
            }
            Err(ClusterError::NotFound { .. }) => {
                r.notes.push(format!("namespace {target} does not exist"));
            }
            Err(ClusterError::Forbidden { .. }) => r.notes.push(format!(
                "namespace {target} was left: odorbot may not delete it (apply manifests/base/restore-clusterrole.yaml)"
            )),
            Err(e) => return Err(after(&r.changes, e)),
        }
        Ok(())
    }
}

/// A whole object deleted, as a change line: `<object>: present → deleted`.
fn deleted(object: &str) -> Change {
    Change::new(object, "", Some("present".into()), Some("deleted".into()))
}

fn report(action: &'static str, mode: Mode, changes: Vec<Change>) -> ChangeReport {
    let mut r = ChangeReport::new(action, mode);
    r.changes = changes;
    r
}

/// Where else the pod template uses `secret`, apart from the env var being rotated.
fn other_users_of_secret(
    template: Option<&PodTemplateSpec>,
    rotated_container: &K8sName,
    rotated_env: &EnvName,
    secret: &K8sName,
) -> Option<String> {
    let spec = template?.spec.as_ref()?;
    let s = secret.as_str();
    for v in spec.volumes.as_deref().unwrap_or_default() {
        if v.secret.as_ref().and_then(|x| x.secret_name.as_deref()) == Some(s) {
            return Some(format!("volume {}", v.name));
        }
    }
    let all = spec
        .init_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .chain(&spec.containers);
    for c in all {
        for e in c.env.as_deref().unwrap_or_default() {
            let rotated = c.name == rotated_container.as_str() && e.name == rotated_env.as_str();
            let uses = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .is_some_and(|r| r.name == s);
            if uses && !rotated {
                return Some(format!("env {} of container {}", e.name, c.name));
            }
        }
        for f in c.env_from.as_deref().unwrap_or_default() {
            if f.secret_ref.as_ref().is_some_and(|r| r.name == s) {
                return Some(format!("envFrom of container {}", c.name));
            }
        }
    }
    None
}

/// Fresh randomness from the operating system, hex-encoded, held as a secret so that
/// Debug and logs show nothing.
fn random_hex(bytes: usize) -> Result<SecretString, ClusterError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| invalid(format!("no randomness from the operating system: {e}")))?;
    let mut hex = String::with_capacity(bytes * 2);
    for b in &buf {
        hex.push_str(&format!("{b:02x}"));
    }
    buf.fill(0);
    Ok(SecretString::from(hex))
}

/// Why a NetworkPolicy would not isolate quarantined pods, or `None` when it would: it
/// selects exactly `quarantine=true` and, for both directions, allows nothing.
fn not_a_quarantine(policy: &NetworkPolicy) -> Option<&'static str> {
    let Some(spec) = &policy.spec else {
        return Some("has no spec");
    };
    let labels = spec
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref());
    let exact = labels.is_some_and(|l| {
        l.len() == 1 && l.get(QUARANTINE_LABEL).map(String::as_str) == Some("true")
    });
    let expressions = spec
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_expressions.as_ref())
        .is_some_and(|e| !e.is_empty());
    if !exact || expressions {
        return Some("does not select exactly quarantine=true");
    }
    let types = spec.policy_types.clone().unwrap_or_default();
    if !(types.iter().any(|t| t == "Ingress") && types.iter().any(|t| t == "Egress")) {
        return Some("does not cover both ingress and egress");
    }
    let allows = |rules: usize| rules > 0;
    if allows(spec.ingress.as_ref().map_or(0, Vec::len))
        || allows(spec.egress.as_ref().map_or(0, Vec::len))
    {
        return Some("allows some traffic");
    }
    None
}
