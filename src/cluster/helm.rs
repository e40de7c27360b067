//! Helm 3 release storage, read and written the way Helm does, without Helm.
//!
//! Helm keeps revision N of release R in the Secret `sh.helm.release.v1.R.vN` (type
//! `helm.sh/release.v1`, labels `name`, `owner=helm`, `status`, `version`); its
//! `data.release` is base64 of the gzip of the release JSON. Helm finds them by *listing*
//! Secrets, which RBAC cannot restrict by name and would let odorbot read every Secret in
//! the namespace. odorbot instead reads them by name, one `get` each, and its Role pins
//! those names for revisions 1..=[`HELM_PINNED_REVISIONS`].
//!
//! A rollback applies the target revision's manifest again (server-side apply with force,
//! where Helm uses a three-way merge) and records it in place: the target's record becomes
//! `deployed` again and the deployed ones `superseded`, all by `update` on those names, so
//! the Role grants no `create` on Secrets ([`RecordPlan`] says why and decides the writes).

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::join_all;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Cluster, ClusterError, FIELD_MANAGER, Op, to_json};
use crate::domain::helm::{PENDING, RecordPlan};
use crate::domain::ids::K8sName;
use crate::domain::k8s::{Change, ChangeReport, HelmRevision, Mode, diff_objects};
use crate::runbook::actions::ActionKind;

/// Helm revisions whose release Secrets odorbot's Role reads and writes by name (the Role
/// is generated from it).
pub use crate::runbook::rbac::HELM_PINNED_REVISIONS;
const RELEASE_TYPE: &str = "helm.sh/release.v1";
/// Helm's own limit on release names.
const MAX_RELEASE_NAME: usize = 53;
/// Probing reads this many revisions at a time; a whole batch missing after some were
/// found ends the search (Helm prunes the oldest, so revisions are contiguous).
const PROBE_BATCH: u64 = 10;
/// A release larger than this once decompressed is refused rather than read.
const MAX_RELEASE_BYTES: u64 = 32 * 1024 * 1024;

/// One stored revision: the Secret and its decoded release JSON.
#[derive(Clone)]
struct Stored {
    revision: u64,
    secret: Secret,
    release: Value,
}

impl Stored {
    fn status(&self) -> &str {
        self.release["info"]["status"].as_str().unwrap_or("unknown")
    }
}

pub(super) fn secret_name(release: &K8sName, revision: u64) -> String {
    crate::runbook::rbac::helm_record(release.as_str(), revision)
}

/// The release JSON inside `data.release`: base64, then gzip (which Helm always uses;
/// plain JSON is accepted too, as Helm does).
pub(super) fn decode_release(data: &[u8]) -> Result<Value, String> {
    let raw = STANDARD
        .decode(data)
        .map_err(|e| format!("release data is not base64: {e}"))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_RELEASE_BYTES)
            .read_to_end(&mut out)
            .map_err(|e| format!("release data is not valid gzip: {e}"))?;
        out
    } else {
        raw
    };
    serde_json::from_slice(&json).map_err(|e| format!("release data is not JSON: {e}"))
}

pub(super) fn encode_release(release: &Value) -> Vec<u8> {
    let json = serde_json::to_vec(release).unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(&json);
    let zipped = gz.finish().unwrap_or_default();
    STANDARD.encode(zipped).into_bytes()
}

/// The objects of a multi-document YAML manifest, empty documents skipped.
pub(super) fn manifest_objects(manifest: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(manifest) {
        let v = Value::deserialize(doc).map_err(|e| format!("manifest is not valid YAML: {e}"))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Spells out `protocol: TCP` on port list items that omit it. TCP is the API's default
/// anyway, but server-side apply on Kubernetes 1.20 and older rejects a `ports` item
/// without its list key (`containerPort`+`protocol`), and Helm charts rarely write it.
pub(super) fn default_port_protocols(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "ports"
                    && let Value::Array(items) = child
                {
                    for item in items.iter_mut() {
                        if let Value::Object(port) = item
                            && (port.contains_key("containerPort") || port.contains_key("port"))
                            && !port.contains_key("protocol")
                        {
                            port.insert("protocol".into(), json!("TCP"));
                        }
                    }
                }
                default_port_protocols(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(default_port_protocols),
        _ => {}
    }
}

fn object_id(v: &Value) -> String {
    format!(
        "{}/{}",
        v["kind"].as_str().unwrap_or("?"),
        v["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The stored Secret rewritten with a new status, as Helm's storage update does, and with
/// `info` telling what happened when (description, `last_deployed`).
fn with_status(stored: &Stored, status: &str, info: Option<(String, &str)>) -> Secret {
    let mut body = stored.release.clone();
    body["info"]["status"] = json!(status);
    if let Some((description, at)) = info {
        body["info"]["description"] = json!(description);
        body["info"]["last_deployed"] = json!(at);
    }
    let mut secret = stored.secret.clone();
    let labels = secret.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert("status".into(), status.into());
    labels.insert(
        "modifiedAt".into(),
        Timestamp::now().as_second().to_string(),
    );
    secret.data = Some(BTreeMap::from([(
        "release".to_owned(),
        ByteString(encode_release(&body)),
    )]));
    secret
}

/// A manifest object resolved against discovery, ready to apply in our namespace.
struct Planned {
    id: String,
    name: String,
    resource: ApiResource,
    object: Value,
}

impl Cluster {
    /// `helm_history {release}`: the stored revisions, oldest first, as `helm history`.
    ///
    /// # Errors
    /// [`ClusterError::NotFound`] when no revision is stored; [`ClusterError::Forbidden`]
    /// when the Role does not pin the release's Secret names; the calls' errors.
    pub async fn helm_history(&self, release: &K8sName) -> Result<Vec<HelmRevision>, ClusterError> {
        let stored = self.helm_revisions(release).await?;
        Ok(stored
            .iter()
            .map(|s| {
                let r = &s.release;
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                HelmRevision {
                    revision: s.revision,
                    status: s.status().to_owned(),
                    chart: format!(
                        "{}-{}",
                        text(&r["chart"]["metadata"]["name"]),
                        text(&r["chart"]["metadata"]["version"])
                    ),
                    app_version: text(&r["chart"]["metadata"]["appVersion"]),
                    description: text(&r["info"]["description"]),
                    updated: text(&r["info"]["last_deployed"]),
                }
            })
            .collect())
    }

    /// Every stored revision of `release`, oldest first, read by name.
    async fn helm_revisions(&self, release: &K8sName) -> Result<Vec<Stored>, ClusterError> {
        if release.as_str().len() > MAX_RELEASE_NAME {
            return Err(ClusterError::InvalidInput(format!(
                "Helm release names have at most {MAX_RELEASE_NAME} characters"
            )));
        }
        let api: Api<Secret> = self.api();
        let mut found: Vec<Stored> = Vec::new();
        let mut start = 1;
        while start <= HELM_PINNED_REVISIONS {
            let end = (start + PROBE_BATCH - 1).min(HELM_PINNED_REVISIONS);
            let names: Vec<(u64, String)> = (start..=end)
                .map(|r| (r, secret_name(release, r)))
                .collect();
            let reads = join_all(
                names
                    .iter()
                    .map(|(_, n)| self.call_opt(Op::new("get", "secrets").named(n), api.get(n))),
            )
            .await;
            let mut hits = 0;
            for ((revision, name), read) in names.into_iter().zip(reads) {
                let Some(secret) = read? else { continue };
                if secret.type_.as_deref() != Some(RELEASE_TYPE) {
                    continue;
                }
                let data = secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get("release"))
                    .map(|b| b.0.clone())
                    .unwrap_or_default();
                let release = decode_release(&data).map_err(|message| ClusterError::Rejected {
                    what: format!("Helm release secret {name}"),
                    message,
                })?;
                hits += 1;
                found.push(Stored {
                    revision,
                    secret,
                    release,
                });
            }
            if hits == 0 && !found.is_empty() {
                break;
            }
            start = end + 1;
        }
        if found.is_empty() {
            return Err(ClusterError::NotFound {
                resource: "Helm release".into(),
                name: release.to_string(),
                namespace: self.namespace.to_string(),
            });
        }
        Ok(found)
    }

    /// `rollback_helm {release, revision?}`: `helm rollback` to the previous or the named
    /// revision, in place ([`RecordPlan`]: no release record is created). The dry run
    /// applies every manifest object with `dryRun=All` and shows the field changes plus the
    /// record statuses that would change. Execution dry-runs all of that first, holds the
    /// newest record `pending-rollback`, applies the manifest, then writes the statuses;
    /// if the apply fails, the newest record is marked `failed`, as Helm marks its own.
    ///
    /// Objects only in the current revision are left in place (Helm would delete them);
    /// they are listed in the notes. Hooks are not run.
    ///
    /// # Errors
    /// [`ClusterError::InvalidInput`] for an unknown target revision, a Helm operation
    /// pending, a manifest object outside the namespace, of an unserved kind or of a kind
    /// the Role does not let a rollback patch (all such objects named);
    /// [`ClusterError::Partial`] when the apply fails midway.
    pub async fn rollback_helm(
        &self,
        release: &K8sName,
        revision: Option<u64>,
        mode: Mode,
    ) -> Result<ChangeReport, ClusterError> {
        let stored = self.helm_revisions(release).await?;
        let statuses: Vec<(u64, &str)> = stored.iter().map(|s| (s.revision, s.status())).collect();
        let plan = RecordPlan::decide(&statuses, revision)
            .map_err(|m| ClusterError::InvalidInput(format!("release {release}: {m}")))?;
        let record = |rev: u64| {
            stored
                .iter()
                .find(|s| s.revision == rev)
                .expect("the plan names stored revisions")
        };
        let target = record(plan.target);
        let manifest = target.release["manifest"].as_str().unwrap_or_default();
        let planned = self.plan_manifest(manifest).await.map_err(|e| match e {
            ClusterError::InvalidInput(m) => {
                ClusterError::InvalidInput(format!("revision {} of {release}: {m}", plan.target))
            }
            e => e,
        })?;

        let mut report = ChangeReport::new("rollback_helm", mode);
        // Preview: every object applied with dryRun=All (also proves RBAC allows it).
        for p in &planned {
            report
                .changes
                .extend(self.apply_planned(p, Mode::DryRun).await?);
        }
        report.changes.extend(plan.changes(release.as_str()));
        let target_ids: Vec<String> = planned.iter().map(|p| p.id.clone()).collect();
        let from = record(plan.from);
        if let Ok(current_objects) =
            manifest_objects(from.release["manifest"].as_str().unwrap_or_default())
        {
            for id in current_objects.iter().map(object_id) {
                if !target_ids.contains(&id) {
                    report.notes.push(format!(
                        "{id} is only in revision {}; it is left in place",
                        plan.from
                    ));
                }
            }
        }

        let now = Timestamp::now().to_string();
        let written = |rev: u64, status: &str| {
            let mut info = None;
            if rev == plan.target {
                info = Some((plan.description(), now.as_str()));
            }
            with_status(record(rev), status, info)
        };
        let secrets: Api<Secret> = self.api();
        // The record writes, dry-run: catches a missing permission before any change.
        for (rev, _, after) in &plan.writes {
            self.replace_secret(&secrets, &written(*rev, after), Mode::DryRun)
                .await?;
        }
        if mode == Mode::DryRun {
            return Ok(report);
        }

        let lock = record(plan.lock);
        let lock_status = lock.status().to_owned();
        let mut held = self
            .replace_secret(&secrets, &with_status(lock, PENDING, None), Mode::Execute)
            .await?;
        let mut done = vec![Change::new(
            format!("HelmRelease/{release}"),
            format!("revision {} status", plan.lock),
            Some(lock_status),
            Some(PENDING.into()),
        )];
        let mut applied = Vec::new();
        for p in &planned {
            let outcome = async {
                crate::failpoint!("helm.apply", e => return Err(ClusterError::Unreachable(e.to_string())));
                self.apply_planned(p, Mode::Execute).await
            };
            match outcome.await {
                Ok(c) => applied.extend(c),
                Err(e) => {
                    done.extend(applied);
                    let description = format!("Rollback to {} failed: {e}", plan.target);
                    let failed = Stored {
                        secret: held,
                        ..lock.clone()
                    };
                    let marked = self
                        .replace_secret(
                            &secrets,
                            &with_status(&failed, "failed", Some((description, &now))),
                            Mode::Execute,
                        )
                        .await;
                    if marked.is_ok() {
                        done.push(Change::new(
                            format!("HelmRelease/{release}"),
                            format!("revision {} status", plan.lock),
                            Some(PENDING.into()),
                            Some("failed".into()),
                        ));
                    }
                    return Err(ClusterError::Partial {
                        done,
                        failed: Box::new(e),
                    });
                }
            }
        }
        done.extend(applied.iter().cloned());
        for (rev, _, after) in &plan.writes {
            let mut secret = written(*rev, after);
            if *rev == plan.lock {
                // The pending write moved its resourceVersion on.
                secret.metadata.resource_version = held.metadata.resource_version.take();
            }
            self.replace_secret(&secrets, &secret, Mode::Execute)
                .await
                .map_err(|e| ClusterError::Partial {
                    done: done.clone(),
                    failed: Box::new(e),
                })?;
        }
        report.mode = Mode::Execute;
        report.changes = applied;
        report.changes.extend(plan.changes(release.as_str()));
        Ok(report)
    }

    async fn replace_secret(
        &self,
        api: &Api<Secret>,
        secret: &Secret,
        mode: Mode,
    ) -> Result<Secret, ClusterError> {
        let name = secret.name_any();
        self.call(
            Op::new("update", "secrets").named(&name),
            api.replace(&name, &post(mode), secret),
        )
        .await
    }

    /// Resolves every manifest object by discovery and checks it belongs in our namespace
    /// and is of a kind the Role lets a rollback patch. Any other kind refuses the whole
    /// manifest before a single dry run, so a Secret's data is never read, diffed or shown.
    async fn plan_manifest(&self, manifest: &str) -> Result<Vec<Planned>, ClusterError> {
        let objects = manifest_objects(manifest).map_err(ClusterError::InvalidInput)?;
        if objects.is_empty() {
            return Err(ClusterError::InvalidInput("the manifest is empty".into()));
        }
        let ns = self.namespace.as_str();
        let mut planned = Vec::new();
        let mut outside = Vec::new();
        for mut object in objects {
            let id = object_id(&object);
            let (Some(api_version), Some(kind), Some(name)) = (
                object["apiVersion"].as_str().map(str::to_owned),
                object["kind"].as_str().map(str::to_owned),
                object["metadata"]["name"].as_str().map(str::to_owned),
            ) else {
                return Err(ClusterError::InvalidInput(format!(
                    "manifest object {id} lacks apiVersion, kind or metadata.name"
                )));
            };
            let Some(found) = self.discover_kind(&api_version, &kind).await? else {
                return Err(ClusterError::InvalidInput(format!(
                    "{id}: {kind} in {api_version} is not served by this cluster"
                )));
            };
            if !found.namespaced {
                return Err(ClusterError::InvalidInput(format!(
                    "{id} is cluster-scoped; odorbot only acts in namespace {ns}"
                )));
            }
            let granted = ActionKind::RollbackHelm.rbac().iter().any(|n| {
                n.verbs.contains(&"patch")
                    && n.api_group == found.resource.group
                    && n.resource == found.resource.plural
            });
            if !granted {
                outside.push(id);
                continue;
            }
            default_port_protocols(&mut object);
            match object["metadata"]["namespace"].as_str() {
                None => object["metadata"]["namespace"] = json!(ns),
                Some(n) if n == ns => {}
                Some(n) => {
                    return Err(ClusterError::InvalidInput(format!(
                        "{id} is in namespace {n}; odorbot only acts in namespace {ns}"
                    )));
                }
            }
            planned.push(Planned {
                id,
                name,
                resource: found.resource,
                object,
            });
        }
        if !outside.is_empty() {
            return Err(ClusterError::InvalidInput(format!(
                "it holds {} of a kind odorbot's Role does not let a rollback change, so \
                 nothing is applied; roll it back with Helm",
                outside.join(", ")
            )));
        }
        Ok(planned)
    }

    /// Server-side applies one manifest object (forcing ownership, as a rollback must
    /// win over whoever changed those fields since) and returns the changed fields.
    async fn apply_planned(&self, p: &Planned, mode: Mode) -> Result<Vec<Change>, ClusterError> {
        let api: Api<DynamicObject> = self.dynamic_api(&p.resource, &self.namespace);
        let plural = p.resource.plural.as_str();
        let live = self
            .call_opt(Op::new("get", plural).named(&p.name), api.get(&p.name))
            .await?;
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        pp.dry_run = mode.is_dry_run();
        let applied = self
            .call(
                Op::new("patch", plural).named(&p.name),
                api.patch(&p.name, &pp, &Patch::Apply(&p.object)),
            )
            .await?;
        Ok(match live {
            Some(live) => diff_objects(&p.id, &to_json(&live), &to_json(&applied)),
            None => vec![Change::new(p.id.clone(), "", None, Some("created".into()))],
        })
    }
}

fn post(mode: Mode) -> PostParams {
    PostParams {
        dry_run: mode.is_dry_run(),
        field_manager: Some(FIELD_MANAGER.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_data_round_trips_through_gzip_and_base64() {
        let release = json!({"name": "odordiff-2", "version": 3, "info": {"status": "deployed"}});
        let encoded = encode_release(&release);
        // Helm's form: base64 text whose bytes start with the gzip magic once decoded.
        let raw = STANDARD.decode(&encoded).unwrap();
        assert_eq!(&raw[..2], &[0x1f, 0x8b]);
        assert_eq!(decode_release(&encoded).unwrap(), release);
        let plain = STANDARD.encode(br#"{"version":1}"#);
        assert_eq!(decode_release(plain.as_bytes()).unwrap()["version"], 1);
        assert!(decode_release(b"not base64!").is_err());
    }

    #[test]
    fn manifests_split_into_objects_and_skip_empty_documents() {
        let m = "---\n# Source: odordiff-2/templates/api.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: odordiff-api\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: odordiff-config\n";
        let objects = manifest_objects(m).unwrap();
        let ids: Vec<String> = objects.iter().map(object_id).collect();
        assert_eq!(
            ids,
            ["Deployment/odordiff-api", "ConfigMap/odordiff-config"]
        );
        assert!(manifest_objects("a: [").is_err());
    }

    #[test]
    fn ports_get_their_default_protocol_spelled_out() {
        let mut v = json!({"spec": {"template": {"spec": {"containers": [{"name": "a",
            "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}]}}}});
        default_port_protocols(&mut v);
        let ports = &v["spec"]["template"]["spec"]["containers"][0]["ports"];
        assert_eq!(ports[0]["protocol"], "TCP");
        assert_eq!(ports[1]["protocol"], "UDP");
    }
}
