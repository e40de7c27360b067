//! OdorDiff-2 in miniature on the real API server: a fresh `odordiff-<random>` namespace
//! per test, seeded with the admin identity, with odorbot's ServiceAccount, Role and
//! RoleBinding applied from `manifests/`. [`Seeded::bot`] is a [`Cluster`] acting as that
//! ServiceAccount, so the tests prove the shipped Role is enough. Dropping the [`Seeded`]
//! deletes the namespace and the cluster-scoped objects made for it.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::discovery::Scope;
use odorbot::cluster::Cluster;
use odorbot::config::KubernetesConfig;
use serde::Deserialize;
use serde_json::{Value, json};

use super::kube::kubeconfig;

pub const RELEASE: &str = "odordiff-2";
pub const API_IMAGE: &str = "ghcr.io/odordiff/odordiff-api";
/// The image tags of Helm revisions 1 and 2; the live Deployment runs revision 2's.
pub const TAGS: [&str; 2] = ["1.4.0", "1.5.0"];
pub const OLD_API_KEY: &str = "old-key-value-0001";
/// Images of the test node (scripts/images-build.sh): a release that crashes at start, one
/// that never gets ready, and the smoke test's two outcomes.
pub const CRASHING_TAG: &str = "1.6.1-crash";
pub const UNREADY_TAG: &str = "1.6.2-unready";
pub const SMOKE_PASS: &str = "ghcr.io/odordiff/smoke-test:pass";
pub const SMOKE_FAIL: &str = "ghcr.io/odordiff/smoke-test:fail";
const SEED_MANAGER: &str = "odorbot-test-seed";

/// The admin client of the test API server.
pub async fn admin_client() -> Client {
    let config = KubernetesConfig::new("default".parse().unwrap(), Some(kubeconfig()));
    odorbot::cluster::connect(&config).await.unwrap()
}

/// Polls `check` every 200 ms until it yields a value, or panics after `secs`.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Server-side applies any object (resolved by discovery) as the seeding admin.
pub async fn apply(client: &Client, ns: &str, mut obj: Value) -> DynamicObject {
    // Server-side apply on 1.20 needs each port's `protocol` (its list key) spelled out.
    add_port_protocols(&mut obj);
    let api_version = obj["apiVersion"].as_str().unwrap().to_owned();
    let kind = obj["kind"].as_str().unwrap().to_owned();
    let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("discovering {api_version} {kind}: {e}"));
    let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
        obj["metadata"]["namespace"] = json!(ns);
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    };
    api.patch(
        &name,
        &PatchParams::apply(SEED_MANAGER).force(),
        &Patch::Apply(&obj),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {kind}/{name}: {e}"))
}

fn add_port_protocols(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "ports" {
                    for p in child.as_array_mut().into_iter().flatten() {
                        if p.get("protocol").is_none() {
                            p["protocol"] = json!("TCP");
                        }
                    }
                }
                add_port_protocols(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(add_port_protocols),
        _ => {}
    }
}

/// Like [`apply`], but leaves an existing cluster-scoped object alone (CRDs, the storage
/// class), since parallel tests share them.
async fn ensure(client: &Client, obj: Value) {
    let api_version = obj["apiVersion"].as_str().unwrap().to_owned();
    let kind = obj["kind"].as_str().unwrap().to_owned();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let (ar, _) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let dynamic: DynamicObject = serde_json::from_value(obj).unwrap();
    match api.create(&PostParams::default(), &dynamic).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating {kind}: {e}"),
    }
}

/// The dynamic API of a kind in a namespace, e.g. `("batch", "v1beta1", "CronJob")`.
pub async fn dynamic(
    client: &Client,
    ns: &str,
    group: &str,
    version: &str,
    kind: &str,
) -> Api<DynamicObject> {
    let (ar, _) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .unwrap();
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// The served CronJob version: `batch/v1` from Kubernetes 1.21, `batch/v1beta1` before.
pub async fn cronjob_resource(client: &Client) -> ApiResource {
    for gv in ["batch/v1", "batch/v1beta1"] {
        if let Ok(list) = client.list_api_group_resources(gv).await
            && let Some(r) = list.resources.iter().find(|r| r.name == "cronjobs")
        {
            let (g, v) = gv.split_once('/').unwrap();
            return ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(g, v, &r.kind),
                "cronjobs",
            );
        }
    }
    panic!("no CronJob API is served");
}

/// A namespace seeded with OdorDiff-2's objects; deleted on drop.
pub struct Seeded {
    pub ns: String,
    pub admin: Client,
    /// A kubeconfig with the bot ServiceAccount's token (for [`Seeded::bot`]).
    bot_kubeconfig: tempfile::NamedTempFile,
    /// Cluster-scoped objects made for this namespace: `(kind, name)`.
    cluster_scoped: Mutex<Vec<(&'static str, String)>>,
}

impl Seeded {
    /// odorbot's [`Cluster`] authenticated as the `odorbot` ServiceAccount, connected the
    /// way the product connects (a kubeconfig file).
    pub async fn bot(&self) -> Cluster {
        Cluster::connect(&self.bot_config()).await.unwrap()
    }

    fn bot_config(&self) -> KubernetesConfig {
        KubernetesConfig::new(
            self.ns.parse().unwrap(),
            Some(self.bot_kubeconfig.path().to_owned()),
        )
    }

    /// A raw kube client with the bot's identity, for requests `Cluster` never makes.
    pub async fn bot_client(&self) -> Client {
        odorbot::cluster::connect(&self.bot_config()).await.unwrap()
    }

    /// The bot's kubeconfig file, for running the odorbot binary as the ServiceAccount.
    pub fn bot_kubeconfig_path(&self) -> &std::path::Path {
        self.bot_kubeconfig.path()
    }

    pub fn remember_cluster_object(&self, kind: &'static str, name: String) {
        self.cluster_scoped.lock().unwrap().push((kind, name));
    }

    /// odorbot's cluster-scoped grant as shipped, for this namespace's scratch namespace
    /// (the shipped files name odordiff's), under names unique to this seed.
    pub async fn grant_restore_namespace(&self) {
        let name = format!("odorbot-restore-test-{}", self.ns);
        let mut role = manifest_file("restore-clusterrole.yaml", &self.ns);
        role["metadata"]["name"] = json!(name);
        role["rules"][0]["resourceNames"] =
            json!([odorbot::domain::k8s::restore_namespace(&self.ns)]);
        let mut binding = manifest_file("restore-clusterrolebinding.yaml", &self.ns);
        binding["metadata"]["name"] = json!(name);
        binding["roleRef"]["name"] = json!(name);
        for (kind, mut obj) in [("ClusterRole", role), ("ClusterRoleBinding", binding)] {
            if let Some(m) = obj["metadata"].as_object_mut() {
                m.remove("namespace");
            }
            apply(&self.admin, &self.ns, obj).await;
            self.remember_cluster_object(kind, name.clone());
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.admin.clone(), &self.ns)
    }

    /// Waits until `n` pods match `selector`, then returns them.
    pub async fn pods(&self, selector: &str, n: usize) -> Vec<Pod> {
        let api: Api<Pod> = self.api();
        let lp = ListParams::default().labels(selector);
        wait_for(&format!("{n} pods {selector}"), 60, || async {
            let pods = api.list(&lp).await.ok()?.items;
            let live: Vec<Pod> = pods
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            (live.len() == n).then_some(live)
        })
        .await
    }

    /// Waits until the real node has rolled odordiff-api out, and `bot` sees it complete.
    pub async fn rolled_out_as_the_bot_sees_it(&self, bot: &Cluster) {
        self.rolled_out("odordiff-api", 90).await;
        let api = "odordiff-api".parse().unwrap();
        let status = bot.rollout_status(&api).await.unwrap();
        assert!(status.complete, "{status:?}");
    }

    /// Waits until the Deployment's rollout is complete on the real node (as `kubectl rollout
    /// status` judges it) and its live pods are the updated ones, all Ready; returns them.
    pub async fn rolled_out(&self, name: &str, secs: u64) -> Vec<Pod> {
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = self.api();
        let pods: Api<Pod> = self.api();
        let lp = ListParams::default().labels(&format!("app={name}"));
        wait_for(
            &format!("{name} rolled out with Ready pods"),
            secs,
            || async {
                let d = deployments.get(name).await.ok()?;
                let want = d.spec.as_ref()?.replicas.unwrap_or(1);
                let st = d.status.as_ref()?;
                let done = d.metadata.generation <= st.observed_generation
                    && st.updated_replicas == Some(want)
                    && st.available_replicas == Some(want)
                    && st.replicas == Some(want);
                if !done {
                    return None;
                }
                // 1.20 reports a rollout done while old pods still terminate: skip those.
                let live: Vec<Pod> = pods
                    .list(&lp)
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .collect();
                let ready = live.iter().all(pod_ready);
                (ready && live.len() == want as usize).then_some(live)
            },
        )
        .await
    }
}

/// The pod's Ready condition is True.
pub fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

impl Drop for Seeded {
    fn drop(&mut self) {
        // Runs outside the test's runtime (which may be the one being dropped), on its own.
        let ns = self.ns.clone();
        let extra = std::mem::take(&mut *self.cluster_scoped.lock().unwrap());
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = admin_client().await;
                let dp = DeleteParams::background();
                let _ = Api::<Namespace>::all(admin.clone()).delete(&ns, &dp).await;
                for (kind, name) in extra {
                    let _ = match kind {
                        "PersistentVolume" => {
                            Api::<k8s_openapi::api::core::v1::PersistentVolume>::all(admin.clone())
                                .delete(&name, &dp)
                                .await
                                .map(drop)
                        }
                        "ClusterRoleBinding" => {
                            Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(
                                admin.clone(),
                            )
                            .delete(&name, &dp)
                            .await
                            .map(drop)
                        }
                        "ClusterRole" => {
                            Api::<k8s_openapi::api::rbac::v1::ClusterRole>::all(admin.clone())
                                .delete(&name, &dp)
                                .await
                                .map(drop)
                        }
                        "Namespace" => Api::<Namespace>::all(admin.clone())
                            .delete(&name, &dp)
                            .await
                            .map(drop),
                        _ => Ok(()),
                    };
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Revision `n` (1 or 2) of the odordiff-2 chart's rendered manifest.
pub fn helm_manifest(revision: usize) -> String {
    let tag = TAGS[revision - 1];
    let log_level = if revision == 1 { "info" } else { "debug" };
    format!(
        r#"---
# Source: odordiff-2/templates/api.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odordiff-api
  labels:
    app: odordiff-api
    app.kubernetes.io/managed-by: Helm
  annotations:
    meta.helm.sh/release-name: odordiff-2
spec:
  replicas: 3
  selector:
    matchLabels:
      app: odordiff-api
  template:
    metadata:
      labels:
        app: odordiff-api
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: odordiff-api
          image: {API_IMAGE}:{tag}
          env:
            - name: API_KEY
              valueFrom:
                secretKeyRef:
                  name: odordiff-api-keys-a
                  key: api-key
            - name: LOG_LEVEL
              value: {log_level}
          ports:
            - containerPort: 8000
          readinessProbe:
            httpGet:
              path: /ready
              port: 8000
            periodSeconds: 1
            failureThreshold: 1
---
# Source: odordiff-2/templates/worker.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: odordiff-worker
  labels:
    app: odordiff-worker
    app.kubernetes.io/managed-by: Helm
spec:
  replicas: 2
  selector:
    matchLabels:
      app: odordiff-worker
  template:
    metadata:
      labels:
        app: odordiff-worker
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: odordiff-worker
          image: ghcr.io/odordiff/odordiff-worker:{tag}
"#
    )
}

/// The release JSON Helm stores for revision `n`.
pub fn helm_release(ns: &str, revision: usize, status: &str) -> Value {
    let tag = TAGS[revision - 1];
    json!({
        "name": RELEASE,
        "namespace": ns,
        "version": revision,
        "info": {
            "first_deployed": "2025-01-10T10:00:00Z",
            "last_deployed": format!("2025-01-1{revision}T10:00:00Z"),
            "deleted": "",
            "description": if revision == 1 { "Install complete" } else { "Upgrade complete" },
            "status": status,
            "notes": "",
        },
        "chart": {
            "metadata": {"apiVersion": "v2", "name": RELEASE, "version": format!("2.{}.0", revision + 3), "appVersion": tag},
            "templates": [],
            "values": {},
        },
        "config": {"image": {"tag": tag}},
        "manifest": helm_manifest(revision),
        "hooks": [],
    })
}

/// Helm's storage encoding, written independently of the product's: gzip, then base64.
pub fn helm_secret_data(release: &Value) -> String {
    use base64::Engine;
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(release.to_string().as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap())
}

/// The objects [`widen_helm_revision_one`] adds, none of a kind the Role lets a rollback change.
pub const OUTSIDE_THE_ROLE: [&str; 4] = [
    "Service/odordiff-api",
    "ServiceAccount/odordiff-api",
    "Secret/odordiff-db",
    "CronJob/app-logs-cleanup",
];

/// Rewrites Helm revision 1 of the seeded release as a real chart's: a Service, a
/// ServiceAccount, a Secret with three keys and a CronJob besides the Deployments. Returns
/// the Secret's values, for tests to look for where they must never appear.
pub async fn widen_helm_revision_one(s: &Seeded) -> [&'static str; 3] {
    let values = [
        "s3cr3t-user-value",
        "s3cr3t-password-value",
        "s3cr3t-token-value",
    ];
    let extra = format!(
        r#"---
apiVersion: v1
kind: Service
metadata:
  name: odordiff-api
spec:
  selector: {{app: odordiff-api}}
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: odordiff-api
---
apiVersion: v1
kind: Secret
metadata:
  name: odordiff-db
stringData: {{user: {}, password: {}, token: {}}}
---
# batch/v1beta1: the test cluster is Kubernetes 1.20.
apiVersion: batch/v1beta1
kind: CronJob
metadata:
  name: app-logs-cleanup
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{{name: c, image: x}}]
"#,
        values[0], values[1], values[2]
    );
    let secrets: Api<Secret> = s.api();
    let record = format!("sh.helm.release.v1.{RELEASE}.v1");
    let mut stored = secrets.get(&record).await.unwrap();
    let mut body = helm_secret_decode(&stored);
    body["manifest"] = json!(format!("{}{extra}", helm_manifest(1)));
    stored.data = None;
    stored.string_data = Some(std::collections::BTreeMap::from([(
        "release".to_owned(),
        helm_secret_data(&body),
    )]));
    secrets
        .replace(&record, &kube::api::PostParams::default(), &stored)
        .await
        .unwrap();
    values
}

pub fn helm_secret_decode(secret: &Secret) -> Value {
    use base64::Engine;
    use std::io::Read;
    let data = &secret.data.as_ref().unwrap()["release"].0;
    let zipped = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(zipped.as_slice())
        .read_to_string(&mut json)
        .unwrap();
    serde_json::from_str(&json).unwrap()
}

fn manifest_objects(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Cluster-wide prerequisites shared by every test: the CRDs and an expandable
/// storage class. Creating them is idempotent; each test waits until they are served.
async fn ensure_cluster_prerequisites(admin: &Client) {
    let crd = |group: &str, kind: &str, plural: &str| {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind,
                          "listKind": format!("{kind}List")},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}],
            }
        })
    };
    for (group, kind, plural) in [
        ("cert-manager.io", "Certificate", "certificates"),
        ("velero.io", "Backup", "backups"),
        ("velero.io", "Restore", "restores"),
    ] {
        ensure(admin, crd(group, kind, plural)).await;
        wait_for(&format!("{plural}.{group} served"), 30, || async {
            let list = admin
                .list_api_group_resources(&format!("{group}/v1"))
                .await
                .ok()?;
            list.resources
                .iter()
                .any(|r| r.name == plural)
                .then_some(())
        })
        .await;
    }
    ensure(
        admin,
        json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "odordiff-expandable"},
            "provisioner": "kubernetes.io/no-provisioner",
            "allowVolumeExpansion": true,
            "volumeBindingMode": "Immediate",
        }),
    )
    .await;
}

/// The seeded workloads run on a real node: say so at once when the cluster has none.
async fn ensure_ready_node(admin: &Client) {
    let nodes = Api::<k8s_openapi::api::core::v1::Node>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing the test cluster's nodes: {e}"));
    let ready = nodes.items.iter().any(|n| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    assert!(
        ready,
        "the test cluster has no Ready node (kubelet + containerd): start it with scripts/kube-up.sh \
         (scripts/test.sh does; ODORBOT_KUBE_NODE=0 leaves the node out)"
    );
}

/// Reads `manifests/base/<file>` into an object with the namespace substituted.
fn manifest_file(file: &str, ns: &str) -> Value {
    let path = format!("{}/manifests/base/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: Value = serde_yaml_ng::from_str(&text).unwrap();
    v["metadata"]["namespace"] = json!(ns);
    if let Some(subjects) = v.get_mut("subjects").and_then(Value::as_array_mut) {
        for s in subjects {
            s["namespace"] = json!(ns);
        }
    }
    v
}

/// A seeded namespace with odordiff-api at 1.6.0 over an earlier 1.5.0 revision, rolled
/// out on the real node.
pub async fn seed_two_revisions() -> Seeded {
    let s = seed().await;
    let bot = s.bot().await;
    let api = "odordiff-api".parse().unwrap();
    let tag: odorbot::domain::k8s::ImageTag = "1.6.0".parse().unwrap();
    bot.set_image(
        &api,
        &api,
        &tag,
        API_IMAGE,
        odorbot::domain::k8s::Mode::Execute,
    )
    .await
    .unwrap();
    s.rolled_out_as_the_bot_sees_it(&bot).await;
    s
}

/// Seeds a fresh namespace; see the module documentation.
pub async fn seed() -> Seeded {
    let admin = admin_client().await;
    ensure_ready_node(&admin).await;
    ensure_cluster_prerequisites(&admin).await;
    let ns = format!("odordiff-{}", random_suffix());
    let seeded = Seeded {
        ns: ns.clone(),
        admin: admin.clone(),
        bot_kubeconfig: tempfile::NamedTempFile::new().unwrap(),
        cluster_scoped: Mutex::new(Vec::new()),
    };
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await;

    // odorbot's identity, exactly as shipped.
    for file in ["serviceaccount.yaml", "role.yaml", "rolebinding.yaml"] {
        apply(&admin, &ns, manifest_file(file, &ns)).await;
    }
    // Pods are admitted only once the token controller has set up the default account.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    wait_for("the default service account's token", 30, || async {
        let sa = sas.get_opt("default").await.ok()??;
        sa.secrets.filter(|s| !s.is_empty()).map(drop)
    })
    .await;

    let secret = |name: &str, type_: &str, data: Value| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
               "type": type_, "stringData": data})
    };
    apply(
        &admin,
        &ns,
        secret(
            "odordiff-api-keys-a",
            "Opaque",
            json!({"api-key": OLD_API_KEY}),
        ),
    )
    .await;
    // Rotation's other slot, installed empty as manifests/base/api-key-secrets.yaml does.
    apply(
        &admin,
        &ns,
        secret("odordiff-api-keys-b", "Opaque", json!({})),
    )
    .await;
    apply(
        &admin,
        &ns,
        secret(
            "odordiff-tls",
            "kubernetes.io/tls",
            json!({"tls.crt": "not a real cert", "tls.key": "not a real key"}),
        ),
    )
    .await;

    // Helm history: revision 1 superseded, revision 2 deployed; the live objects are 2's.
    for (revision, status) in [(1, "superseded"), (2, "deployed")] {
        let body = helm_release(&ns, revision, status);
        apply(
            &admin,
            &ns,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": format!("sh.helm.release.v1.{RELEASE}.v{revision}"),
                    "labels": {"name": RELEASE, "owner": "helm", "status": status,
                               "version": revision.to_string()}},
                "type": "helm.sh/release.v1",
                "stringData": {"release": helm_secret_data(&body)},
            }),
        )
        .await;
    }
    for obj in manifest_objects(&helm_manifest(2)) {
        apply(&admin, &ns, obj).await;
    }
    for (name, image, port) in [
        ("postgres", "postgres:15", 5432),
        ("pgbouncer", "bitnami/pgbouncer:1.21.0", 6432),
        ("redis", "redis:7", 6379),
    ] {
        apply(
            &admin,
            &ns,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"terminationGracePeriodSeconds": 1,
                            "containers": [{"name": name, "image": image,
                            "ports": [{"containerPort": port}]}]}}}
            }),
        )
        .await;
    }
    for (name, port) in [
        ("odordiff-api", 8000),
        ("odordiff-worker", 8001),
        ("postgres", 5432),
        ("pgbouncer", 6432),
    ] {
        apply(
            &admin,
            &ns,
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                   "spec": {"selector": {"app": name}, "ports": [{"port": port}]}}),
        )
        .await;
    }
    // Redis's Service has no selector, so its Endpoints are ours to write (the endpoints
    // controller would overwrite them otherwise): one ready backend, one not ready.
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis"},
               "spec": {"ports": [{"port": 6379}]}}),
    )
    .await;
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "redis"},
               "subsets": [{"addresses": [{"ip": "10.244.1.5"}],
                            "notReadyAddresses": [{"ip": "10.244.1.6"}],
                            "ports": [{"port": 6379}]}]}),
    )
    .await;
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "odordiff-api-hpa"},
               "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "odordiff-api"},
                        "minReplicas": 3, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70}}),
    )
    .await;
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "odordiff-config"},
               "data": {"cache_ttl": "3600", "cache_max_entries": "100000", "log_level": "info"}}),
    )
    .await;
    let cj = cronjob_resource(&admin).await;
    // The smoke test runs once and fails at once: its outcome is the Job's.
    for (name, image, backoff, restart) in [
        (
            "cdn-cache-warming",
            "ghcr.io/odordiff/cache-warmer:1.2.0",
            1,
            "OnFailure",
        ),
        (
            "database-performance-monitoring",
            "ghcr.io/odordiff/db-maintenance:3.1.0",
            1,
            "OnFailure",
        ),
        ("app-logs-cleanup", "busybox:1.36", 1, "OnFailure"),
        ("postgres-logs-cleanup", "busybox:1.36", 1, "OnFailure"),
        ("odordiff-smoke-tests", SMOKE_PASS, 0, "Never"),
    ] {
        apply(
            &admin,
            &ns,
            json!({"apiVersion": cj.api_version, "kind": "CronJob", "metadata": {"name": name},
                   "spec": {"schedule": "0 3 * * *",
                       // Suspended so the controller never starts Jobs of its own mid-test.
                       "suspend": true,
                       "jobTemplate": {"metadata": {"labels": {"app": name}},
                           "spec": {"backoffLimit": backoff, "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                                   "containers": [{"name": name, "image": image, "args": ["--run-once"]}]}}}}}}),
        )
        .await;
    }
    // The database volume, bound to a PV made for it so it can be expanded.
    let pv = format!("pv-{ns}");
    seeded.remember_cluster_object("PersistentVolume", pv.clone());
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
               "spec": {"capacity": {"storage": "100Gi"}, "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "odordiff-expandable",
                        "persistentVolumeReclaimPolicy": "Retain",
                        "hostPath": {"path": format!("/tmp/{pv}")},
                        "claimRef": {"namespace": ns, "name": "postgres-data-postgres-0"}}}),
    )
    .await;
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "postgres-data-postgres-0"},
               "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "odordiff-expandable",
                        "volumeName": pv, "resources": {"requests": {"storage": "100Gi"}}}}),
    )
    .await;
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
               "metadata": {"name": "default-deny-all"},
               "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
    )
    .await;
    // odorbot's quarantine policy, exactly as shipped.
    let quarantine: serde_json::Value =
        serde_yaml_ng::from_str(include_str!("../../manifests/base/quarantine-policy.yaml"))
            .unwrap();
    apply(&admin, &ns, quarantine).await;
    let pdb_version = if admin.list_api_group_resources("policy/v1").await.is_ok() {
        "policy/v1"
    } else {
        "policy/v1beta1"
    };
    apply(
        &admin,
        &ns,
        json!({"apiVersion": pdb_version, "kind": "PodDisruptionBudget",
               "metadata": {"name": "odordiff-api-pdb"},
               "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "odordiff-api"}}}}),
    )
    .await;
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "odordiff-tls"},
               "spec": {"secretName": "odordiff-tls", "dnsNames": ["api.odordiff.ai"],
                        "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
               "status": {"conditions": [{"type": "Ready", "status": "True", "message": "Certificate is up to date and has not expired"}],
                          "notAfter": "2026-03-01T00:00:00Z", "renewalTime": "2026-01-30T00:00:00Z"}}),
    )
    .await;
    for (name, phase, start) in [
        ("daily-20250101", "Completed", "2025-01-01T02:00:00Z"),
        ("daily-20250102", "Completed", "2025-01-02T02:00:00Z"),
        ("daily-20250103", "PartiallyFailed", "2025-01-03T02:00:00Z"),
    ] {
        apply(
            &admin,
            &ns,
            json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name},
                   "spec": {"includedNamespaces": [ns]},
                   "status": {"phase": phase, "startTimestamp": start, "completionTimestamp": start,
                              "expiration": "2025-02-01T02:00:00Z"}}),
        )
        .await;
    }
    apply(
        &admin,
        &ns,
        json!({"apiVersion": "velero.io/v1", "kind": "Restore", "metadata": {"name": "restore-incident-42"},
               "spec": {"backupName": "daily-20250101"},
               "status": {"phase": "Completed", "startTimestamp": "2025-01-05T00:00:00Z"}}),
    )
    .await;

    // The bot's token: on 1.20 the token controller writes it into a Secret.
    let token = wait_for("the odorbot service account's token", 30, || async {
        let sa = sas.get_opt("odorbot").await.ok()??;
        let name = sa.secrets?.first()?.name.clone()?;
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
        let s = secrets.get_opt(&name).await.ok()??;
        let token = s.data?.get("token")?.0.clone();
        String::from_utf8(token).ok()
    })
    .await;
    write_bot_kubeconfig(&seeded, &token);
    seeded
}

/// The admin kubeconfig with the user swapped for the bot's token.
fn write_bot_kubeconfig(seeded: &Seeded, token: &str) {
    let admin_config: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(kubeconfig()).unwrap()).unwrap();
    let cluster = &admin_config["clusters"][0]["cluster"];
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "odorbot", "user": {"token": token}}],
        "contexts": [{"name": "odorbot", "context": {"cluster": "test", "user": "odorbot", "namespace": seeded.ns}}],
        "current-context": "odorbot",
    });
    std::fs::write(
        seeded.bot_kubeconfig.path(),
        serde_yaml_ng::to_string(&config).unwrap(),
    )
    .unwrap();
}
