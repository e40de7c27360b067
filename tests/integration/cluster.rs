//! Every runbook action and diagnostic against the real API server and its node, as
//! odorbot's ServiceAccount bound by `manifests/`' Role (real containers: `node.rs`);
//! `metrics.k8s.io`, which no metrics-server serves here, and the exact parameters of log
//! reads against a fake that speaks the API server's formats. Each test seeds its own
//! `odordiff-<random>` namespace.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Event, ObjectReference, PersistentVolumeClaim, Pod, Secret,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use odorbot::cluster::{Cluster, ClusterError, HpaPatch, Limits, SecretRotation};
use odorbot::domain::args::Filter;
use odorbot::domain::ids::K8sName;
use odorbot::domain::k8s::{
    Change, ChangeReport, DataKey, HelmRevision, LogQuery, LogSource, Mode, Readable,
    ResourceUsage, Selector,
};
use serde_json::json;

use crate::support::cluster_seed::{
    self, API_IMAGE, OLD_API_KEY, OUTSIDE_THE_ROLE, RELEASE, Seeded, apply, helm_manifest,
    helm_secret_decode, seed, wait_for, widen_helm_revision_one,
};
use crate::support::fake_kube::{FakeKube, PODS};

fn n(s: &str) -> K8sName {
    s.parse().unwrap()
}

fn sel(s: &str) -> Selector {
    s.parse().unwrap()
}

fn lines(r: &ChangeReport) -> Vec<String> {
    r.changes.iter().map(Change::to_string).collect()
}

/// What a change to a Deployment would alter: its spec (with the generation the API server
/// bumps for it), labels and annotations. Unlike the resourceVersion, the controller's
/// status writes leave it alone.
/// What odorbot's actions may change, without what the deployment controller writes on
/// its own schedule (the revision annotation follows a rollout some time after it starts).
fn shape(d: &Deployment) -> impl PartialEq + std::fmt::Debug {
    let mut annotations = d.metadata.annotations.clone().unwrap_or_default();
    annotations.remove("deployment.kubernetes.io/revision");
    (
        d.metadata.generation,
        d.spec.clone(),
        d.metadata.labels.clone(),
        annotations,
    )
}

fn rv<K: kube::Resource>(k: &K) -> String {
    k.meta().resource_version.clone().unwrap()
}

async fn deployment(s: &Seeded, name: &str) -> Deployment {
    s.api::<Deployment>().get(name).await.unwrap()
}

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

/// Waits until the real node has rolled the Deployment out, as the bot sees it too.
async fn settle(s: &Seeded, bot: &Cluster, name: &str) {
    s.rolled_out(name, 90).await;
    let status = bot.rollout_status(&n(name)).await.unwrap();
    assert!(status.complete, "{status:?}");
}

#[tokio::test]
async fn diagnostics_read_the_seeded_namespace_as_the_bot() {
    let s = seed().await;
    let bot = s.bot().await;
    // A canary whose image this node does not have (and may not pull): it never starts.
    apply(
        &s.admin,
        &s.ns,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "odordiff-canary", "labels": {"app": "odordiff-canary"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "odordiff-canary"}},
                "template": {"metadata": {"labels": {"app": "odordiff-canary"}},
                    "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "odordiff-api",
                        "image": format!("{API_IMAGE}:0.0.0-absent"), "imagePullPolicy": "Never"}]}}}}),
    )
    .await;
    let pods = s.rolled_out("odordiff-api", 90).await;
    let first = pods[0].name_any();
    s.api::<Event>()
        .create(
            &PostParams::default(),
            &Event {
                metadata: ObjectMeta {
                    name: Some(format!("{first}.backoff")),
                    ..ObjectMeta::default()
                },
                involved_object: ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some(first.clone()),
                    namespace: Some(s.ns.clone()),
                    ..ObjectReference::default()
                },
                reason: Some("BackOff".into()),
                message: Some("Back-off restarting failed container".into()),
                type_: Some("Warning".into()),
                count: Some(4),
                last_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::now())),
                ..Event::default()
            },
        )
        .await
        .unwrap();
    let api = sel("app=odordiff-api");

    // Real pods on the node: running, ready, none failing.
    let infos = bot.pods(&api).await.unwrap();
    assert_eq!(infos.len(), 3, "{infos:?}");
    assert!(
        infos.iter().all(|p| p.phase == "Running" && p.ready),
        "{infos:?}"
    );
    assert!(bot.describe_pods(&api, true).await.unwrap().is_empty());
    let ready = bot.describe_pods(&api, false).await.unwrap();
    assert!(ready.iter().all(|d| d.pod.ready && d.containers[0].ready));
    assert!(ready[0].conditions.contains(&"Ready=True".to_owned()));
    assert!(
        ready
            .iter()
            .all(|d| d.containers[0].state.starts_with("running since")),
        "{ready:?}"
    );
    let described = ready.iter().find(|d| d.pod.name == first).unwrap();
    let backoff = described
        .events
        .iter()
        .find(|e| e.reason == "BackOff")
        .unwrap();
    assert_eq!(backoff.count, 4);
    // The scheduler's event for the pod (the kubelet's may lag behind under load).
    assert!(
        described.events.iter().any(|e| e.reason == "Scheduled"),
        "{:?}",
        described.events
    );

    // The canary: pending, failing, and without logs (its own error, not a failed action).
    let canary = sel("app=odordiff-canary");
    let waiting = wait_for("the canary to be refused its image", 60, || async {
        let d = bot.describe_pods(&canary, true).await.ok()?;
        d.into_iter()
            .find(|d| d.containers[0].state == "waiting: ErrImageNeverPull")
    })
    .await;
    assert_eq!(waiting.pod.phase, "Pending");
    assert!(!waiting.pod.ready);
    let logs = bot
        .logs(&LogQuery {
            previous: false,
            source: LogSource::Pod(n(&waiting.pod.name)),
            tail: Some(10),
            since: None,
            grep: None,
        })
        .await
        .unwrap();
    assert_eq!(
        logs.pods[0].error.as_deref(),
        Some("the container has not started yet: no logs")
    );

    let status = bot.rollout_status(&n("odordiff-api")).await.unwrap();
    assert!(status.complete, "{status:?}");
    assert_eq!((status.desired, status.available), (3, 3));
    assert!(status.message.contains("successfully rolled out"));

    let redis = bot.endpoints(&n("redis")).await.unwrap();
    assert_eq!(redis.ready, ["10.244.1.5:6379"]);
    assert_eq!(redis.not_ready, ["10.244.1.6:6379"]);

    let events = bot.events(Some(Duration::from_secs(600))).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.reason == "BackOff" && e.kind == "Warning")
    );
    assert!(
        events.iter().any(|e| e.reason == "ScalingReplicaSet"),
        "{events:?}"
    );
    let times: Vec<k8s_openapi::jiff::Timestamp> = events
        .iter()
        .filter_map(|e| e.time.as_ref()?.parse().ok())
        .collect();
    assert_eq!(times.len(), events.len());
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "sorted by time");

    let history = bot.rollout_history(&n("odordiff-api")).await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].current);
    assert_eq!(history[0].images, [format!("{API_IMAGE}:1.5.0")]);

    let helm = bot.helm_history(&n(RELEASE)).await.unwrap();
    let summary: Vec<(u64, &str, &str)> = helm
        .iter()
        .map(|h| (h.revision, h.status.as_str(), h.description.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "superseded", "Install complete"),
            (2, "deployed", "Upgrade complete")
        ]
    );
    assert_eq!(helm[1].chart, "odordiff-2-2.5.0");
    assert_eq!(helm[1].app_version, "1.5.0");

    let hpa = bot.hpa_status(&n("odordiff-api-hpa")).await.unwrap();
    assert_eq!(
        (hpa.min_replicas, hpa.max_replicas, hpa.target_cpu_percent),
        (3, 10, Some(70))
    );
    assert_eq!(hpa.target, "Deployment/odordiff-api");

    let pdbs = bot.pdb_status().await.unwrap();
    assert_eq!(pdbs[0].name, "odordiff-api-pdb");
    assert_eq!(pdbs[0].min_available.as_deref(), Some("2"));

    let cache = Filter::new("^cache").unwrap();
    let keys = bot
        .configmap_keys(&n("odordiff-config"), Some(&cache))
        .await
        .unwrap();
    let keys: Vec<(&str, &str)> = keys
        .iter()
        .map(|e| (e.key.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        keys,
        [("cache_max_entries", "100000"), ("cache_ttl", "3600")]
    );

    let pvcs = bot.pvc_status(None).await.unwrap();
    assert_eq!(pvcs[0].name, "postgres-data-postgres-0");
    assert_eq!(pvcs[0].requested.as_deref(), Some("100Gi"));

    let certs = bot.certificates().await.unwrap();
    assert_eq!(certs[0].ready, Some(true));
    assert_eq!(certs[0].not_after.as_deref(), Some("2026-03-01T00:00:00Z"));
    assert_eq!(certs[0].secret.as_deref(), Some("odordiff-tls"));

    let backups = bot.backups().await.unwrap();
    let names: Vec<&str> = backups.backups.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(
        names,
        ["daily-20250103", "daily-20250102", "daily-20250101"]
    );
    assert_eq!(backups.backups[0].phase.as_deref(), Some("PartiallyFailed"));
    assert_eq!(
        backups.restores[0].backup.as_deref(),
        Some("daily-20250101")
    );

    // access_review: ClusterRoleBindings are outside the namespaced Role.
    let review = bot.access_review().await.unwrap();
    let Readable::Read(accounts) = &review.service_accounts else {
        panic!("{review:?}")
    };
    assert!(accounts.contains(&"odorbot".to_owned()) && accounts.contains(&"default".to_owned()));
    let Readable::Read(bindings) = &review.role_bindings else {
        panic!("{review:?}")
    };
    assert_eq!(bindings[0].role, "Role/odorbot");
    assert_eq!(
        bindings[0].subjects,
        [format!("ServiceAccount/{}/odorbot", s.ns)]
    );
    let Readable::NotReadable(why) = &review.cluster_role_bindings else {
        panic!("{review:?}")
    };
    assert!(
        why.contains("forbidden by RBAC") && why.contains("clusterrolebindings"),
        "{why}"
    );
    // An admin who grants the read gets the ClusterRoleBindings about this namespace.
    let reader = format!("odorbot-crb-reader-{}", s.ns);
    s.remember_cluster_object("ClusterRole", reader.clone());
    s.remember_cluster_object("ClusterRoleBinding", reader.clone());
    apply(&s.admin, &s.ns, json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": reader},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"], "verbs": ["list"]}]})).await;
    apply(
        &s.admin,
        &s.ns,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": reader},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reader},
        "subjects": [{"kind": "ServiceAccount", "name": "odorbot", "namespace": s.ns}]}),
    )
    .await;
    let review = wait_for("the ClusterRoleBinding to take effect", 10, || async {
        let r = bot.access_review().await.ok()?;
        matches!(r.cluster_role_bindings, Readable::Read(_)).then_some(r)
    })
    .await;
    let Readable::Read(crbs) = review.cluster_role_bindings else {
        unreachable!()
    };
    assert_eq!(
        crbs.len(),
        1,
        "only bindings with a subject in the namespace: {crbs:?}"
    );
    assert_eq!(crbs[0].role, format!("ClusterRole/{reader}"));

    // The test API server has no metrics-server.
    assert_eq!(
        bot.resource_usage(None).await.unwrap(),
        ResourceUsage::NotServed
    );
}

#[tokio::test]
async fn scale_restart_and_annotate_preview_then_change_the_deployment() {
    let s = seed().await;
    let bot = s.bot().await;
    let api = n("odordiff-api");
    let before = deployment(&s, "odordiff-api").await;

    let dry = bot.scale(&api, 5, Mode::DryRun).await.unwrap();
    assert_eq!(
        dry.to_string(),
        "scale would change:\n  Deployment/odordiff-api spec.replicas: 3 → 5\n"
    );
    assert_eq!(shape(&deployment(&s, "odordiff-api").await), shape(&before));
    let done = bot.scale(&api, 5, Mode::Execute).await.unwrap();
    assert_eq!(
        lines(&done),
        ["Deployment/odordiff-api spec.replicas: 3 → 5"]
    );
    let after = deployment(&s, "odordiff-api").await;
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(5));

    let dry = bot.rollout_restart(&api, Mode::DryRun).await.unwrap();
    assert_eq!(dry.changes.len(), 1, "{dry}");
    assert_eq!(
        dry.changes[0].field,
        "spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]"
    );
    assert_eq!(dry.changes[0].before, None);
    assert_eq!(shape(&deployment(&s, "odordiff-api").await), shape(&after));
    bot.rollout_restart(&api, Mode::Execute).await.unwrap();
    let restarted = deployment(&s, "odordiff-api").await;
    let template_annotations = restarted
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert!(template_annotations.contains_key("kubectl.kubernetes.io/restartedAt"));
    // The node really restarts the pods; the controller's revision bump would otherwise
    // land between the next read and its dry run.
    settle(&s, &bot, "odordiff-api").await;

    let key = "maintenance".parse().unwrap();
    let dry = bot
        .annotate(&api, &key, Some("true"), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(
        lines(&dry),
        ["Deployment/odordiff-api metadata.annotations.maintenance: (none) → true"]
    );
    assert!(
        !deployment(&s, "odordiff-api")
            .await
            .annotations()
            .contains_key("maintenance")
    );
    bot.annotate(&api, &key, Some("true"), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        deployment(&s, "odordiff-api").await.annotations()["maintenance"],
        "true"
    );
    let off = bot.annotate(&api, &key, None, Mode::Execute).await.unwrap();
    assert_eq!(
        lines(&off),
        ["Deployment/odordiff-api metadata.annotations.maintenance: true → (none)"]
    );
    assert!(
        !deployment(&s, "odordiff-api")
            .await
            .annotations()
            .contains_key("maintenance")
    );
    let again = bot.annotate(&api, &key, None, Mode::Execute).await.unwrap();
    assert!(again.changes.is_empty() && again.notes[0].contains("was not set"));

    // Containment: scale to zero.
    let contained = bot
        .scale(&n("odordiff-worker"), 0, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        lines(&contained),
        ["Deployment/odordiff-worker spec.replicas: 2 → 0"]
    );
    assert_eq!(
        deployment(&s, "odordiff-worker")
            .await
            .spec
            .unwrap()
            .replicas,
        Some(0)
    );
}

#[tokio::test]
async fn set_image_then_rollback_restores_the_previous_revisions_template() {
    let s = seed().await;
    let bot = s.bot().await;
    let api = n("odordiff-api");
    settle(&s, &bot, "odordiff-api").await;
    let before = deployment(&s, "odordiff-api").await;

    let tag = "1.6.0".parse().unwrap();
    let dry = bot
        .set_image(&api, &n("odordiff-api"), &tag, API_IMAGE, Mode::DryRun)
        .await
        .unwrap();
    assert!(lines(&dry).contains(&format!(
        "Deployment/odordiff-api spec.template.spec.containers[odordiff-api].image: {API_IMAGE}:1.5.0 → {API_IMAGE}:1.6.0"
    )), "{dry}");
    assert_eq!(shape(&deployment(&s, "odordiff-api").await), shape(&before));
    let err = bot
        .set_image(&api, &n("sidecar"), &tag, API_IMAGE, Mode::DryRun)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::InvalidInput(ref m) if m.contains("has no container \"sidecar\"")),
        "{err}"
    );
    // Only the tag changes, and only of an image from the runbook's repository.
    let err = bot
        .set_image(&api, &api, &tag, "ghcr.io/elsewhere/api", Mode::DryRun)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::InvalidInput(ref m) if m.contains(&format!("runs an image from {API_IMAGE}, not from the runbook's repository ghcr.io/elsewhere/api"))),
        "{err}"
    );

    bot.set_image(&api, &n("odordiff-api"), &tag, API_IMAGE, Mode::Execute)
        .await
        .unwrap();
    settle(&s, &bot, "odordiff-api").await;
    let history = bot.rollout_history(&api).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(history[1].current && !history[0].current);
    assert_eq!(
        history[1].change_cause.as_deref(),
        Some(format!("odorbot: set image odordiff-api={API_IMAGE}:1.6.0").as_str())
    );
    let rev1: ReplicaSet = s
        .api::<ReplicaSet>()
        .get(&history[0].replica_set)
        .await
        .unwrap();
    let mut rev1_template = rev1.spec.unwrap().template.unwrap();
    rev1_template
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .remove("pod-template-hash");

    let live = deployment(&s, "odordiff-api").await;
    let dry = bot
        .rollback_deployment(&api, None, Mode::DryRun)
        .await
        .unwrap();
    assert!(lines(&dry).contains(&format!(
        "Deployment/odordiff-api spec.template.spec.containers[odordiff-api].image: {API_IMAGE}:1.6.0 → {API_IMAGE}:1.5.0"
    )), "{dry}");
    assert!(
        dry.notes[0].contains("from revision 2 to revision 1"),
        "{dry}"
    );
    assert_eq!(shape(&deployment(&s, "odordiff-api").await), shape(&live));

    let err = bot
        .rollback_deployment(&api, Some(9), Mode::DryRun)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::InvalidInput(ref m) if m.contains("no revision 9; it has 1, 2")),
        "{err}"
    );

    bot.rollback_deployment(&api, None, Mode::Execute)
        .await
        .unwrap();
    let rolled = deployment(&s, "odordiff-api").await;
    assert_eq!(rolled.spec.as_ref().unwrap().template, rev1_template);
    settle(&s, &bot, "odordiff-api").await;
    let history = bot.rollout_history(&api).await.unwrap();
    let current = history.iter().find(|h| h.current).unwrap();
    assert_eq!(
        current.revision, 3,
        "the old ReplicaSet is reused as revision 3"
    );
    assert_eq!(current.images, [format!("{API_IMAGE}:1.5.0")]);
    // Nothing left to undo to the same template.
    let noop = bot
        .rollback_deployment(&api, Some(3), Mode::DryRun)
        .await
        .unwrap();
    assert!(noop.changes.is_empty() && noop.notes[0].contains("already matches"));
}

/// A chart whose revision also holds a Service, a ServiceAccount, a Secret and a CronJob: the
/// Role lets a rollback patch none of them, so the dry run refuses, naming each, before any
/// object is read or applied — and the Secret's values appear nowhere in what it returns.
#[tokio::test]
async fn helm_rollback_refuses_a_revision_with_kinds_outside_the_role_naming_them() {
    let s = seed().await;
    let bot = s.bot().await;
    let secrets: Api<Secret> = s.api();
    let values = widen_helm_revision_one(&s).await;
    let before = deployment(&s, "odordiff-api").await;

    for mode in [Mode::DryRun, Mode::Execute] {
        let err = bot
            .rollback_helm(&n(RELEASE), Some(1), mode)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ClusterError::InvalidInput(_)), "{text}");
        for kind in OUTSIDE_THE_ROLE {
            assert!(text.contains(kind), "{kind} named in {text}");
        }
        assert!(text.contains("nothing is applied"), "{text}");
        for v in values {
            assert!(!format!("{text} {err:?}").contains(v));
        }
    }
    let statuses: Vec<String> = bot
        .helm_history(&n(RELEASE))
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.status)
        .collect();
    assert_eq!(
        statuses,
        ["superseded", "deployed"],
        "no release record written"
    );
    assert_eq!(shape(&deployment(&s, "odordiff-api").await), shape(&before));
    assert!(secrets.get_opt("odordiff-db").await.unwrap().is_none());
}

/// An apply that fails leaves the newest record `failed` (as Helm marks its own failed
/// rollback), the target untouched and nothing `pending`; the next rollback then goes ahead.
#[tokio::test]
async fn a_helm_rollback_whose_apply_fails_marks_the_newest_record_failed() {
    let s = seed().await;
    let bot = s.bot().await;
    let release = n(RELEASE);
    let before = deployment(&s, "odordiff-api").await;
    odorbot::failpoint::configure("helm.apply=1*error").unwrap();
    let err = bot
        .rollback_helm(&release, None, Mode::Execute)
        .await
        .unwrap_err();
    let ClusterError::Partial { done, .. } = &err else {
        panic!("{err}");
    };
    let done: Vec<String> = done.iter().map(ToString::to_string).collect();
    assert_eq!(
        done,
        [
            "HelmRelease/odordiff-2 revision 2 status: deployed → pending-rollback",
            "HelmRelease/odordiff-2 revision 2 status: pending-rollback → failed",
        ]
    );
    let history = bot.helm_history(&release).await.unwrap();
    let rows: Vec<(&str, &str)> = history
        .iter()
        .map(|h| (h.status.as_str(), h.description.as_str()))
        .collect();
    assert_eq!(rows[0].0, "superseded");
    assert_eq!(rows[1].0, "failed");
    assert!(rows[1].1.starts_with("Rollback to 1 failed: "), "{rows:?}");
    assert_eq!(shape(&deployment(&s, "odordiff-api").await), shape(&before));

    bot.rollback_helm(&release, None, Mode::Execute)
        .await
        .unwrap();
    let statuses: Vec<String> = bot
        .helm_history(&release)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.status)
        .collect();
    assert_eq!(statuses, ["deployed", "failed"]);
    assert_eq!(
        image_of(&deployment(&s, "odordiff-api").await),
        format!("{API_IMAGE}:1.4.0")
    );
}

/// The rollback rewrites the records in place (no `create` on Secrets in the Role): revision 1
/// deployed again, revision 2 superseded, no revision 3; the objects follow revision 1.
#[tokio::test]
async fn helm_rollback_redeploys_the_target_record_in_place_and_restores_the_manifest() {
    let s = seed().await;
    let bot = s.bot().await;
    let release = n(RELEASE);
    let secrets: Api<Secret> = s.api();
    let name = |r: u64| format!("sh.helm.release.v1.{RELEASE}.v{r}");
    let before = deployment(&s, "odordiff-api").await;
    assert_eq!(image_of(&before), format!("{API_IMAGE}:1.5.0"));
    let v1_before = secrets.get(&name(1)).await.unwrap();

    let dry = bot
        .rollback_helm(&release, None, Mode::DryRun)
        .await
        .unwrap();
    let text = lines(&dry);
    for want in [
        format!("Deployment/odordiff-api spec.template.spec.containers[odordiff-api].image: {API_IMAGE}:1.5.0 → {API_IMAGE}:1.4.0"),
        "Deployment/odordiff-api spec.template.spec.containers[odordiff-api].env[LOG_LEVEL].value: debug → info".into(),
        "Deployment/odordiff-worker spec.template.spec.containers[odordiff-worker].image: ghcr.io/odordiff/odordiff-worker:1.5.0 → ghcr.io/odordiff/odordiff-worker:1.4.0".into(),
        "HelmRelease/odordiff-2 revision 2 status: deployed → superseded".into(),
        "HelmRelease/odordiff-2 revision 1 status: superseded → deployed (Rollback from revision 2 by odorbot)".into(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in {dry}");
    }
    assert_eq!(shape(&deployment(&s, "odordiff-api").await), shape(&before));
    assert_eq!(
        helm_secret_decode(&secrets.get(&name(2)).await.unwrap())["info"]["status"],
        "deployed"
    );

    let done = bot
        .rollback_helm(&release, None, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(done.mode, Mode::Execute);
    assert!(
        secrets.get_opt(&name(3)).await.unwrap().is_none(),
        "no record created"
    );
    let v1 = secrets.get(&name(1)).await.unwrap();
    assert_eq!(v1.type_.as_deref(), Some("helm.sh/release.v1"));
    let labels = v1.labels();
    assert_eq!(
        (
            labels["name"].as_str(),
            labels["owner"].as_str(),
            labels["status"].as_str(),
            labels["version"].as_str()
        ),
        (RELEASE, "helm", "deployed", "1")
    );
    let body = helm_secret_decode(&v1);
    let was = helm_secret_decode(&v1_before);
    assert_eq!(body["version"], 1);
    assert_eq!(body["info"]["status"], "deployed");
    assert_eq!(
        body["info"]["description"],
        "Rollback from revision 2 by odorbot"
    );
    assert_ne!(body["info"]["last_deployed"], was["info"]["last_deployed"]);
    assert_eq!(
        body["info"]["first_deployed"],
        was["info"]["first_deployed"]
    );
    assert_eq!(body["manifest"], helm_manifest(1));
    assert_eq!(body["chart"], was["chart"]);
    let v2 = secrets.get(&name(2)).await.unwrap();
    assert_eq!(v2.labels()["status"], "superseded");
    assert_eq!(helm_secret_decode(&v2)["info"]["status"], "superseded");

    // The live objects now match revision 1's manifest.
    let api = deployment(&s, "odordiff-api").await;
    assert_eq!(image_of(&api), format!("{API_IMAGE}:1.4.0"));
    let env = api
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .env
        .clone()
        .unwrap();
    assert_eq!(env[1].value.as_deref(), Some("info"));
    assert_eq!(
        image_of(&deployment(&s, "odordiff-worker").await),
        "ghcr.io/odordiff/odordiff-worker:1.4.0"
    );
    let statuses =
        |h: Vec<HelmRevision>| -> Vec<String> { h.into_iter().map(|h| h.status).collect() };
    assert_eq!(
        statuses(bot.helm_history(&release).await.unwrap()),
        ["deployed", "superseded"]
    );

    // Nothing is older than revision 1; forward to 2 is a rollback by `--to`.
    let err = bot
        .rollback_helm(&release, None, Mode::DryRun)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::InvalidInput(ref m) if m.contains("no revision before revision 1")),
        "{err}"
    );
    bot.rollback_helm(&release, Some(2), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        statuses(bot.helm_history(&release).await.unwrap()),
        ["superseded", "deployed"]
    );
    assert_eq!(
        image_of(&deployment(&s, "odordiff-api").await),
        format!("{API_IMAGE}:1.5.0")
    );

    let err = bot
        .rollback_helm(&release, Some(7), Mode::DryRun)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::InvalidInput(ref m) if m.contains("no revision 7")),
        "{err}"
    );
    let err = bot
        .rollback_helm(&n("other-release"), None, Mode::DryRun)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::Forbidden { .. }),
        "names outside the Role: {err}"
    );
}

#[tokio::test]
async fn hpa_configmap_resources_and_volume_patches() {
    let s = seed().await;
    let bot = s.bot().await;
    let hpa = n("odordiff-api-hpa");
    let hpas: Api<HorizontalPodAutoscaler> = s.api();
    let before = hpas.get("odordiff-api-hpa").await.unwrap();
    let five = HpaPatch {
        min_replicas: Some(5),
        ..HpaPatch::default()
    };
    let dry = bot.patch_hpa(&hpa, &five, Mode::DryRun).await.unwrap();
    assert_eq!(
        lines(&dry),
        ["HorizontalPodAutoscaler/odordiff-api-hpa spec.minReplicas: 3 → 5"]
    );
    assert_eq!(
        rv(&hpas.get("odordiff-api-hpa").await.unwrap()),
        rv(&before)
    );
    let all = HpaPatch {
        min_replicas: Some(4),
        max_replicas: Some(20),
        target_cpu_percent: Some(60),
    };
    bot.patch_hpa(&hpa, &all, Mode::Execute).await.unwrap();
    let spec = hpas.get("odordiff-api-hpa").await.unwrap().spec.unwrap();
    assert_eq!(
        (
            spec.min_replicas,
            spec.max_replicas,
            spec.target_cpu_utilization_percentage
        ),
        (Some(4), 20, Some(60))
    );
    for bad in [
        HpaPatch {
            min_replicas: Some(0),
            ..HpaPatch::default()
        },
        HpaPatch {
            max_replicas: Some(51),
            ..HpaPatch::default()
        },
        HpaPatch {
            min_replicas: Some(8),
            max_replicas: Some(6),
            ..HpaPatch::default()
        },
        HpaPatch {
            target_cpu_percent: Some(150),
            ..HpaPatch::default()
        },
        HpaPatch::default(),
    ] {
        let err = bot.patch_hpa(&hpa, &bad, Mode::DryRun).await.unwrap_err();
        assert!(
            matches!(err, ClusterError::InvalidInput(_)),
            "{bad:?}: {err}"
        );
    }

    let cms: Api<ConfigMap> = s.api();
    let cm_before = cms.get("odordiff-config").await.unwrap();
    let data = BTreeMap::from([("cache_ttl".parse::<DataKey>().unwrap(), "7200".to_owned())]);
    let dry = bot
        .patch_configmap(&n("odordiff-config"), &data, Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(
        lines(&dry),
        ["ConfigMap/odordiff-config data.cache_ttl: 3600 → 7200"]
    );
    assert_eq!(
        rv(&cms.get("odordiff-config").await.unwrap()),
        rv(&cm_before)
    );
    bot.patch_configmap(&n("odordiff-config"), &data, Mode::Execute)
        .await
        .unwrap();
    let cm = cms.get("odordiff-config").await.unwrap().data.unwrap();
    assert_eq!(
        (cm["cache_ttl"].as_str(), cm["log_level"].as_str()),
        ("7200", "info")
    );

    let limits =
        odorbot::domain::k8s::ResourceLimits::new([("memory", "4Gi"), ("cpu", "2000m")]).unwrap();
    let pg_before = deployment(&s, "postgres").await;
    let dry = bot
        .set_resources(&n("postgres"), &n("postgres"), &limits, Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(
        lines(&dry),
        [
            "Deployment/postgres spec.template.spec.containers[postgres].resources.limits.cpu: (none) → 2",
            "Deployment/postgres spec.template.spec.containers[postgres].resources.limits.memory: (none) → 4Gi",
        ]
    );
    assert_eq!(shape(&deployment(&s, "postgres").await), shape(&pg_before));
    bot.set_resources(&n("postgres"), &n("postgres"), &limits, Mode::Execute)
        .await
        .unwrap();
    let pg = deployment(&s, "postgres").await;
    let got = pg.spec.unwrap().template.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap()
        .limits
        .unwrap();
    assert_eq!(
        (got["memory"].0.as_str(), got["cpu"].0.as_str()),
        ("4Gi", "2")
    );

    // Expansion needs a bound claim; the PV controller binds the pre-bound pair.
    let pvcs: Api<PersistentVolumeClaim> = s.api();
    wait_for("the database claim to bind", 60, || async {
        let c = pvcs.get("postgres-data-postgres-0").await.ok()?;
        (c.status?.phase.as_deref() == Some("Bound")).then_some(())
    })
    .await;
    let pvc = n("postgres-data-postgres-0");
    let pvc_before = pvcs.get("postgres-data-postgres-0").await.unwrap();
    let size = "200Gi".parse().unwrap();
    let dry = bot.expand_pvc(&pvc, &size, Mode::DryRun).await.unwrap();
    assert_eq!(
        lines(&dry),
        [
            "PersistentVolumeClaim/postgres-data-postgres-0 spec.resources.requests.storage: 100Gi → 200Gi"
        ]
    );
    assert_eq!(
        rv(&pvcs.get("postgres-data-postgres-0").await.unwrap()),
        rv(&pvc_before)
    );
    bot.expand_pvc(&pvc, &size, Mode::Execute).await.unwrap();
    let requested = bot.pvc_status(Some(&pvc)).await.unwrap()[0]
        .requested
        .clone();
    assert_eq!(requested.as_deref(), Some("200Gi"));
    for smaller in ["150Gi", "200Gi", "0.1Ti"] {
        let err = bot
            .expand_pvc(&pvc, &smaller.parse().unwrap(), Mode::DryRun)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClusterError::InvalidInput(ref m) if m.contains("cannot shrink")),
            "{smaller}: {err}"
        );
    }
}

#[tokio::test]
async fn jobs_from_cronjobs_carry_the_template_owner_and_manual_mark() {
    let s = seed().await;
    let bot = s.bot().await;
    let jobs: Api<Job> = s.api();
    let dry = bot
        .job_from_cronjob(
            &n("cdn-cache-warming"),
            &n("cache-warming-emergency"),
            Mode::DryRun,
        )
        .await
        .unwrap();
    assert_eq!(
        lines(&dry),
        [
            "Job/cache-warming-emergency: (none) → created from CronJob/cdn-cache-warming (image ghcr.io/odordiff/cache-warmer:1.2.0)"
        ]
    );
    assert!(
        jobs.get_opt("cache-warming-emergency")
            .await
            .unwrap()
            .is_none()
    );

    bot.job_from_cronjob(
        &n("cdn-cache-warming"),
        &n("cache-warming-emergency"),
        Mode::Execute,
    )
    .await
    .unwrap();
    let job = jobs.get("cache-warming-emergency").await.unwrap();
    assert_eq!(
        job.annotations()["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    assert_eq!(job.labels()["app"], "cdn-cache-warming");
    let owner = &job.owner_references()[0];
    let cronjobs = cluster_seed::cronjob_resource(&s.admin).await;
    let cj_api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(s.admin.clone(), &s.ns, &cronjobs);
    let cj = cj_api.get("cdn-cache-warming").await.unwrap();
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.api_version.as_str(),
            owner.controller
        ),
        (
            "CronJob",
            "cdn-cache-warming",
            cronjobs.api_version.as_str(),
            Some(true)
        )
    );
    assert_eq!(Some(&owner.uid), cj.metadata.uid.as_ref());
    let container = &job
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    let want = &cj.data["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container.image.as_deref(), want["image"].as_str());
    assert_eq!(
        container.args.as_ref().unwrap()[0],
        want["args"][0].as_str().unwrap()
    );
    assert_eq!(job.spec.as_ref().unwrap().backoff_limit, Some(1));

    let err = bot
        .job_from_cronjob(
            &n("cdn-cache-warming"),
            &n("cache-warming-emergency"),
            Mode::Execute,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Conflict { .. }), "{err}");

    let cleanup = bot
        .job_from_cronjob_as(
            &n("app-logs-cleanup"),
            &n("app-logs-cleanup-manual-1700000000"),
            "logs_cleanup",
            Mode::Execute,
        )
        .await
        .unwrap();
    assert_eq!(cleanup.action, "logs_cleanup");
    let made: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .filter(|n| n.starts_with("app-logs-cleanup-manual-"))
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
}

/// Quarantine labels the pod and nothing else: the installed quarantine policy isolates it,
/// default-deny-all keeps covering every other pod, and unquarantine takes the label off.
#[tokio::test]
async fn quarantine_labels_the_pod_and_changes_no_policy() {
    let s = seed().await;
    let bot = s.bot().await;
    let pods = s.pods("app=odordiff-api", 3).await;
    let suspect = pods[0].name_any();
    let policies: Api<NetworkPolicy> = s.api();
    let pod_api: Api<Pod> = s.api();
    let deny_all = policies.get("default-deny-all").await.unwrap();
    let quarantine = policies.get("odorbot-quarantine").await.unwrap();
    let labelled = |p: &Pod| p.labels().get("quarantine").cloned();

    let dry = bot
        .quarantine_pod(&n(&suspect), &n("odorbot-quarantine"), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(
        lines(&dry),
        [format!(
            "Pod/{suspect} metadata.labels.quarantine: (none) → true"
        )]
    );
    assert!(
        dry.notes[0].contains("no other policy is changed"),
        "{:?}",
        dry.notes
    );
    assert_eq!(labelled(&pod_api.get(&suspect).await.unwrap()), None);

    bot.quarantine_pod(&n(&suspect), &n("odorbot-quarantine"), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(
        labelled(&pod_api.get(&suspect).await.unwrap()).as_deref(),
        Some("true")
    );
    for (name, before) in [
        ("default-deny-all", &deny_all),
        ("odorbot-quarantine", &quarantine),
    ] {
        assert_eq!(rv(&policies.get(name).await.unwrap()), rv(before), "{name}");
    }
    // A policy that would not isolate the pod (this one selects every pod) is refused.
    let refused = bot
        .quarantine_pod(
            &n(&pods[1].name_any()),
            &n("default-deny-all"),
            Mode::DryRun,
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("does not select exactly quarantine=true"),
        "{refused}"
    );

    bot.unquarantine_pod(&n(&suspect), Mode::Execute)
        .await
        .unwrap();
    assert_eq!(labelled(&pod_api.get(&suspect).await.unwrap()), None);
    assert_eq!(
        rv(&policies.get("default-deny-all").await.unwrap()),
        rv(&deny_all)
    );
}

/// Collects everything logged (at every level, kube's and hyper's included) on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Which secret and key the API's `API_KEY` reads.
async fn api_key_ref(s: &Seeded) -> (String, String) {
    let d = deployment(s, "odordiff-api").await;
    let env = d.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let r = env[0].value_from.clone().unwrap().secret_key_ref.unwrap();
    (r.name, r.key)
}

async fn api_key_in(secrets: &Api<Secret>, name: &str) -> Option<String> {
    let data = secrets.get(name).await.unwrap().data.unwrap_or_default();
    data.get("api-key")
        .map(|v| String::from_utf8(v.0.clone()).unwrap())
}

#[tokio::test]
async fn rotate_secret_alternates_between_two_secrets_without_revealing_the_key() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = seed().await;
    let bot = s.bot().await;
    let secrets: Api<Secret> = s.api();
    let (a, b) = ("odordiff-api-keys-a", "odordiff-api-keys-b");
    let rotation = SecretRotation {
        deployment: n("odordiff-api"),
        container: n("odordiff-api"),
        env: "API_KEY".parse().unwrap(),
        key: "api-key".parse().unwrap(),
        secret_a: n(a),
        secret_b: n(b),
    };
    let before = deployment(&s, "odordiff-api").await;
    let dry = bot.rotate_secret(&rotation, Mode::DryRun).await.unwrap();
    assert_eq!(
        lines(&dry),
        [
            "Secret/odordiff-api-keys-b data.api-key: previous key (not shown) → overwritten (64 random hex digits, not shown)",
            "Deployment/odordiff-api spec.template.spec.containers[odordiff-api].env[API_KEY].valueFrom.secretKeyRef.name: odordiff-api-keys-a → odordiff-api-keys-b",
        ]
    );
    assert_eq!(api_key_in(&secrets, b).await, None);
    assert_eq!(shape(&deployment(&s, "odordiff-api").await), shape(&before));

    // Three rotations in a row: each writes the idle secret, points the API at it and
    // leaves the previous one (still holding the previous key) in place.
    let mut seen = vec![OLD_API_KEY.to_owned()];
    let mut reports = vec![format!("{dry:?}")];
    for (round, (from, to)) in [(a, b), (b, a), (a, b)].into_iter().enumerate() {
        let done = bot.rotate_secret(&rotation, Mode::Execute).await.unwrap();
        let changed = lines(&done);
        for line in [
            format!(
                "Secret/{to} data.api-key: previous key (not shown) → overwritten (64 random hex digits, not shown)"
            ),
            format!(
                "Deployment/odordiff-api spec.template.spec.containers[odordiff-api].env[API_KEY].valueFrom.secretKeyRef.name: {from} → {to}"
            ),
        ] {
            assert!(changed.contains(&line), "round {round}: {changed:?}");
        }
        assert_eq!(
            api_key_ref(&s).await,
            (to.to_owned(), "api-key".to_owned()),
            "round {round}"
        );
        let value = api_key_in(&secrets, to).await.unwrap();
        assert_eq!(value.len(), 64);
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!seen.contains(&value), "round {round}: a fresh key");
        assert_eq!(
            api_key_in(&secrets, from).await.as_ref(),
            seen.last(),
            "round {round}: the previous secret is kept, not deleted"
        );
        seen.push(value);
        reports.push(format!("{done:?}"));
        reports.push(done.to_string());
    }

    // No value appears in any result, rendering or log line (nor in base64).
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains(b), "the capture works: {}", logs.len());
    reports.push(logs);
    for value in &seen[1..] {
        let b64 = {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(value)
        };
        for haystack in &reports {
            assert!(!haystack.contains(value.as_str()) && !haystack.contains(&b64));
        }
    }

    // An env var that reads neither secret is refused before any change.
    let other = SecretRotation {
        secret_a: n("x-keys-a"),
        secret_b: n("x-keys-b"),
        ..rotation
    };
    let err = bot.rotate_secret(&other, Mode::Execute).await.unwrap_err();
    assert!(
        matches!(err, ClusterError::InvalidInput(ref m) if m.contains("reads from neither secret x-keys-a nor x-keys-b")),
        "{err}"
    );
}

#[tokio::test]
async fn certificate_renewal_and_velero_test_restores() {
    let s = seed().await;
    let bot = s.bot().await;
    let secrets: Api<Secret> = s.api();
    let certs =
        cluster_seed::dynamic(&s.admin, &s.ns, "cert-manager.io", "v1", "Certificate").await;
    let cert_before = certs.get("odordiff-tls").await.unwrap();

    let dry = bot
        .renew_certificate(&n("odordiff-tls"), &n("odordiff-tls"), Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(
        lines(&dry),
        [
            "Secret/odordiff-tls: present → deleted",
            "Certificate/odordiff-tls metadata.annotations[cert-manager.io/issue-temporary-certificate]: (none) → true",
        ]
    );
    assert!(secrets.get_opt("odordiff-tls").await.unwrap().is_some());
    assert_eq!(
        rv(&certs.get("odordiff-tls").await.unwrap()),
        rv(&cert_before)
    );
    let err = bot
        .renew_certificate(&n("odordiff-tls"), &n("odordiff-api-keys-a"), Mode::Execute)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::InvalidInput(ref m) if m.contains("not odordiff-api-keys-a")),
        "{err}"
    );
    assert!(
        secrets
            .get_opt("odordiff-api-keys-a")
            .await
            .unwrap()
            .is_some()
    );

    bot.renew_certificate(&n("odordiff-tls"), &n("odordiff-tls"), Mode::Execute)
        .await
        .unwrap();
    assert!(secrets.get_opt("odordiff-tls").await.unwrap().is_none());
    let cert = certs.get("odordiff-tls").await.unwrap();
    assert_eq!(
        cert.annotations()["cert-manager.io/issue-temporary-certificate"],
        "true"
    );

    let restores = cluster_seed::dynamic(&s.admin, &s.ns, "velero.io", "v1", "Restore").await;
    let count = || async {
        restores
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
    };
    let dry = bot
        .velero_test_restore(None, &n("test-restore-1"), Mode::DryRun)
        .await
        .unwrap();
    assert!(
        lines(&dry)[0].contains("created from Backup/daily-20250102"),
        "the newest completed backup: {dry}"
    );
    assert_eq!(count().await, 1);
    let done = bot
        .velero_test_restore(None, &n("test-restore-2"), Mode::Execute)
        .await
        .unwrap();
    let first = done.changes[0]
        .object
        .trim_start_matches("Restore/")
        .to_owned();
    let restore = restores.get(&first).await.unwrap();
    assert!(first.starts_with("test-restore-"));
    assert_eq!(restore.data["spec"]["backupName"], "daily-20250102");
    assert_eq!(
        restore.data["spec"]["namespaceMapping"][&s.ns],
        format!("{}-restore-test", s.ns)
    );
    bot.velero_test_restore(
        Some(&n("daily-20250101")),
        &n("test-restore-3"),
        Mode::Execute,
    )
    .await
    .unwrap();
    assert_eq!(count().await, 3);
    let err = bot
        .velero_test_restore(
            Some(&n("no-such-backup")),
            &n("test-restore-4"),
            Mode::DryRun,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::NotFound { .. }), "{err}");

    let err = bot
        .velero_restore_cleanup(Some(&n("restore-incident-42")), Mode::Execute)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::InvalidInput(_)), "{err}");
    let dry = bot
        .velero_restore_cleanup(None, Mode::DryRun)
        .await
        .unwrap();
    assert_eq!(dry.changes.len(), 2, "{dry}");
    assert_eq!(count().await, 3);
    bot.velero_restore_cleanup(None, Mode::Execute)
        .await
        .unwrap();
    let left: Vec<String> = restores
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(left, ["restore-incident-42"]);
}

#[tokio::test]
async fn actions_outside_the_role_are_refused_and_reported_clearly() {
    let s = seed().await;
    let bot = s.bot().await;
    let raw = s.bot_client().await;

    // Straight to the API server: deleting a Deployment or reading Secrets is not granted.
    let deployments: Api<Deployment> = Api::namespaced(raw.clone(), &s.ns);
    let err = deployments
        .delete("odordiff-api", &DeleteParams::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref st) if st.code == 403),
        "{err}"
    );
    let secrets: Api<Secret> = Api::namespaced(raw.clone(), &s.ns);
    for e in [
        secrets
            .get("odordiff-api-keys-a")
            .await
            .map(drop)
            .unwrap_err(),
        secrets
            .list(&ListParams::default())
            .await
            .map(drop)
            .unwrap_err(),
    ] {
        assert!(
            matches!(e, kube::Error::Api(ref st) if st.code == 403),
            "{e}"
        );
    }

    // Through odorbot: objects the Role does not name are refused with a clear message.
    apply(
        &s.admin,
        &s.ns,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "billing"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "billing"}},
            "template": {"metadata": {"labels": {"app": "billing"}},
                "spec": {"containers": [{"name": "billing", "image": "billing:1"}]}}}}),
    )
    .await;
    let err = bot.rollout_status(&n("billing")).await.unwrap_err();
    match &err {
        ClusterError::Forbidden {
            verb,
            resource,
            name,
            ..
        } => {
            assert_eq!((verb.as_str(), resource.as_str()), ("get", "deployments"));
            assert_eq!(name.as_deref(), Some("billing"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().starts_with(&format!(
            "forbidden by RBAC: odorbot may not get deployments \"billing\" in namespace {}",
            s.ns
        )),
        "{err}"
    );
    let err = bot.scale(&n("billing"), 2, Mode::DryRun).await.unwrap_err();
    assert!(
        matches!(err, ClusterError::Forbidden { ref resource, .. } if resource == "deployments/scale"),
        "{err}"
    );
    let err = bot
        .configmap_keys(&n("kube-root-ca.crt"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Forbidden { .. }), "{err}");
    // Under pinned names an unknown Deployment is refused before the server looks for it;
    // with wider rights (the admin) it is a plain "not found".
    let err = bot.rollout_status(&n("nope")).await.unwrap_err();
    assert!(matches!(err, ClusterError::Forbidden { .. }), "{err}");
    let admin = Cluster::new(s.admin.clone(), n(&s.ns));
    let err = admin.rollout_status(&n("nope")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("deployments \"nope\" not found in namespace {}", s.ns)
    );

    // A multi-step action whose last step is forbidden changes nothing: every step is
    // dry-run first. Here the old secret is not one odorbot may delete.
    apply(
        &s.admin,
        &s.ns,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db-credentials"}, "stringData": {"password": "pw"}}),
    )
    .await;
    s.api::<Deployment>()
        .patch(
            "odordiff-api",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{
                "name": "odordiff-api",
                "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}]
            }]}}}})),
        )
        .await
        .unwrap();
    // The controller's revision bump for that patch must land before the comparison's base.
    settle(&s, &bot, "odordiff-api").await;
    let before = deployment(&s, "odordiff-api").await;
    let rotation = SecretRotation {
        deployment: n("odordiff-api"),
        container: n("odordiff-api"),
        env: "DB_PASSWORD".parse().unwrap(),
        key: "password".parse().unwrap(),
        secret_a: n("db-credentials"),
        secret_b: n("db-credentials-2"),
    };
    let err = bot
        .rotate_secret(&rotation, Mode::Execute)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClusterError::Forbidden { ref verb, ref resource, .. } if verb == "patch" && resource == "secrets"),
        "{err}"
    );
    assert!(
        s.api::<Secret>()
            .get_opt("db-credentials-2")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(shape(&deployment(&s, "odordiff-api").await), shape(&before));
}

#[tokio::test]
async fn logs_are_bounded_filtered_and_read_from_the_default_container() {
    let fake = FakeKube::start(false).await;
    let bot = Cluster::new(fake.client(), n("odordiff"));
    let query = |tail, since, grep: Option<&str>| LogQuery {
        previous: false,
        source: LogSource::Selector(sel("app=odordiff-api")),
        tail,
        since,
        grep: grep.map(|g| Filter::new(g).unwrap()),
    };
    let report = bot.logs(&query(Some(2), None, None)).await.unwrap();
    assert_eq!(report.pods.len(), 2);
    assert_eq!(report.pods[0].container, "odordiff-api");
    assert_eq!(
        report.pods[0].lines,
        [
            format!("{} INFO  GET /health 200 duration=2ms", PODS[0]),
            format!("{} WARN  slow request duration=1800ms", PODS[0]),
        ]
    );
    // --since=10m | grep ERROR
    let report = bot
        .logs(&query(None, Some(Duration::from_secs(600)), Some("ERROR")))
        .await
        .unwrap();
    assert_eq!(
        report.pods[1].lines,
        [format!(
            "{} ERROR POST /api/v1/generate 500 duration=5400ms",
            PODS[1]
        )]
    );
    // A regex over durations, as the runbook's slow-request search.
    let report = bot
        .logs(&query(None, None, Some(r"duration=[0-9]{4,}ms")))
        .await
        .unwrap();
    assert_eq!(
        report.pods[0].lines,
        [
            format!(
                "{} ERROR POST /api/v1/generate 500 duration=5400ms",
                PODS[0]
            ),
            format!("{} WARN  slow request duration=1800ms", PODS[0]),
        ]
    );
    let requests = fake.requests();
    assert!(
        requests.iter().any(|r| r.contains("/log?")
            && r.contains("container=odordiff-api")
            && r.contains("tailLines=2")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("sinceSeconds=600")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| !r.contains("/log") || r.contains("limitBytes=")),
        "always bounded"
    );
    // Without tail, since or grep: a short tail, not the whole log.
    bot.logs(&query(None, None, None)).await.unwrap();
    assert!(fake.requests().last().unwrap().contains("tailLines=100"));

    let one = bot
        .logs(&LogQuery {
            previous: false,
            source: LogSource::Pod(n(PODS[1])),
            tail: Some(1),
            since: None,
            grep: None,
        })
        .await
        .unwrap();
    assert_eq!(one.pods.len(), 1);
    assert_eq!(one.pods[0].lines.len(), 1);
}

#[tokio::test]
async fn resource_usage_sums_pod_metrics_when_served() {
    let fake = FakeKube::start(true).await;
    let bot = Cluster::new(fake.client(), n("odordiff"));
    let ResourceUsage::Pods(pods) = bot
        .resource_usage(Some(&sel("app=odordiff-api")))
        .await
        .unwrap()
    else {
        panic!("metrics are served")
    };
    assert_eq!(pods[0].pod, PODS[0]);
    assert_eq!(pods[0].cpu_millicores, 251, "250m + 1500000n");
    assert_eq!(pods[0].memory_bytes, 256 * 1024 * 1024 + 10240 * 1024);
    assert_eq!(pods[1].cpu_millicores, 1001);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.contains("labelSelector=app%3Dodordiff-api"))
    );

    let unserved = FakeKube::start(false).await;
    let bot = Cluster::new(unserved.client(), n("odordiff"));
    assert_eq!(
        bot.resource_usage(None).await.unwrap(),
        ResourceUsage::NotServed
    );
}

#[tokio::test]
async fn a_cluster_without_velero_or_cert_manager_gets_a_specific_error() {
    let fake = FakeKube::start(false).await;
    let bot = Cluster::new(fake.client(), n("odordiff"));
    let err = bot.backups().await.unwrap_err();
    assert!(
        matches!(err, ClusterError::CrdNotInstalled { ref api, .. } if api == "velero.io/v1"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "backups (velero.io/v1) is not served by this cluster: is its CRD installed?"
    );
    let err = bot
        .velero_test_restore(None, &n("test-restore-5"), Mode::DryRun)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::CrdNotInstalled { .. }), "{err}");
    let err = bot.certificates().await.unwrap_err();
    assert!(
        matches!(err, ClusterError::CrdNotInstalled { ref api, .. } if api == "cert-manager.io/v1"),
        "{err}"
    );
    // Only discovery was asked; no object request was made.
    assert!(
        fake.requests()
            .iter()
            .all(|r| r == "GET /apis/velero.io/v1" || r == "GET /apis/cert-manager.io/v1"),
        "{:?}",
        fake.requests()
    );
}

#[tokio::test]
async fn invalid_input_never_reaches_the_api_server() {
    // Names and other inputs are parsed before a Cluster can be called at all.
    assert!("Odordiff_API".parse::<K8sName>().is_err());
    assert!("api;rm -rf".parse::<K8sName>().is_err());
    assert!("app in (a,b)".parse::<Selector>().is_err());
    assert!(
        "1.6.0 latest"
            .parse::<odorbot::domain::k8s::ImageTag>()
            .is_err()
    );
    assert!("lots".parse::<odorbot::domain::k8s::Quantity>().is_err());

    // Numbers and combinations are checked by the Cluster before any request.
    let fake = FakeKube::start(false).await;
    let bot = Cluster::new(fake.client(), n("odordiff"));
    let api = n("odordiff-api");
    let over = odorbot::domain::args::MAX_REPLICAS + 1;
    let errors = [
        bot.scale(&api, over, Mode::Execute).await.unwrap_err(),
        bot.patch_hpa(
            &n("odordiff-api-hpa"),
            &HpaPatch {
                max_replicas: Some(over),
                ..HpaPatch::default()
            },
            Mode::Execute,
        )
        .await
        .unwrap_err(),
        bot.patch_hpa(
            &n("odordiff-api-hpa"),
            &HpaPatch {
                min_replicas: Some(5),
                max_replicas: Some(2),
                ..HpaPatch::default()
            },
            Mode::Execute,
        )
        .await
        .unwrap_err(),
        bot.set_image(
            &api,
            &n("a.b"),
            &"1.0".parse().unwrap(),
            API_IMAGE,
            Mode::Execute,
        )
        .await
        .unwrap_err(),
        bot.patch_configmap(&n("odordiff-config"), &BTreeMap::new(), Mode::Execute)
            .await
            .unwrap_err(),
        bot.velero_restore_cleanup(Some(&n("prod-restore")), Mode::Execute)
            .await
            .unwrap_err(),
        bot.logs(&LogQuery {
            previous: false,
            source: LogSource::Pod(n("p")),
            tail: Some(0),
            since: None,
            grep: None,
        })
        .await
        .unwrap_err(),
        bot.logs(&LogQuery {
            previous: false,
            source: LogSource::Pod(n("p")),
            tail: None,
            since: Some(Duration::from_secs(30 * 86400)),
            grep: None,
        })
        .await
        .unwrap_err(),
        bot.rotate_secret(
            &SecretRotation {
                deployment: api.clone(),
                container: api.clone(),
                env: "API_KEY".parse().unwrap(),
                key: "k".parse().unwrap(),
                secret_a: n("same"),
                secret_b: n("same"),
            },
            Mode::Execute,
        )
        .await
        .unwrap_err(),
        bot.helm_history(&n(&"r".repeat(60))).await.unwrap_err(),
    ];
    for e in &errors {
        assert!(matches!(e, ClusterError::InvalidInput(_)), "{e}");
    }
    assert_eq!(
        errors[0].to_string(),
        "invalid input: replicas must be between 0 and 50, not 51"
    );
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn an_unreachable_or_silent_api_server_is_reported_not_hung_on() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let bot = Cluster::new(kube::Client::try_from(config).unwrap(), n("odordiff"));
    let err = bot.rollout_status(&n("odordiff-api")).await.unwrap_err();
    assert!(matches!(err, ClusterError::Unreachable(_)), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("connect"), "{err}");

    let fake = FakeKube::start(false).await;
    let bot = Cluster::new(fake.client(), n("odordiff")).with_limits(Limits {
        call_timeout: Duration::from_millis(300),
    });
    let started = std::time::Instant::now();
    let err = bot.rollout_status(&n("odordiff-api")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        err.to_string(),
        "get deployments \"odordiff-api\" got no answer within 300ms"
    );
}
