//! The attack suite: odorbot's own token (the shipped Role bound to its ServiceAccount in a
//! seeded namespace) tries each escalation a stolen token would, against the real API
//! server. What RBAC refuses is asserted refused (403). What it cannot refuse — Job `create`
//! and pod `patch` cannot be pinned — is asserted as the residual README's "Deploying" states,
//! always as a server-side dry run, so a change to the Role that closes or widens it shows here.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::support::cluster_seed::{Seeded, apply, seed};

/// A ServiceAccount the attacker would like to be: one the bot has no business with.
const VICTIM: &str = "victim";

fn dry_run() -> PostParams {
    PostParams {
        dry_run: true,
        ..PostParams::default()
    }
}

fn forbidden<T: std::fmt::Debug>(what: &str, r: Result<T, kube::Error>) {
    match r {
        Err(kube::Error::Api(st)) if st.code == 403 => {}
        other => panic!("{what}: expected 403, got {other:?}"),
    }
}

fn typed<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).unwrap()
}

/// A seeded namespace with a ServiceAccount to impersonate, a Deployment and a Secret odorbot
/// has nothing to do with, and the bot's raw client.
async fn target() -> (Seeded, Client) {
    let s = seed().await;
    apply(
        &s.admin,
        &s.ns,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": VICTIM}}),
    )
    .await;
    apply(
        &s.admin,
        &s.ns,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials"},
               "type": "Opaque", "stringData": {"password": "do-not-read"}}),
    )
    .await;
    apply(
        &s.admin,
        &s.ns,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "unmanaged"},
               "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "unmanaged"}},
                        "template": {"metadata": {"labels": {"app": "unmanaged"}},
                                     "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    )
    .await;
    let client = s.bot_client().await;
    (s, client)
}

fn pod_as(sa: &str) -> Pod {
    typed(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "attack"},
                 "spec": {"serviceAccountName": sa, "containers": [{"name": "c", "image": "x"}]}}),
    )
}

#[tokio::test]
async fn secrets_the_bot_does_not_need_cannot_be_read_listed_or_watched() {
    let (s, bot) = target().await;
    let secrets: Api<Secret> = Api::namespaced(bot, &s.ns);
    forbidden("get db-credentials", secrets.get("db-credentials").await);
    forbidden("list secrets", secrets.list(&ListParams::default()).await);
    forbidden(
        "watch secrets",
        secrets
            .watch(&kube::api::WatchParams::default(), "0")
            .await
            .map(drop),
    );
    // The rotation slots are written by name, never read (a patch's response is the one
    // way back to their data, and it holds only the key odorbot itself wrote).
    forbidden(
        "get a rotation slot",
        secrets.get("odordiff-api-keys-a").await,
    );
    forbidden(
        "patch a secret outside the Role",
        secrets
            .patch(
                "db-credentials",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {}})),
            )
            .await,
    );
    forbidden(
        "delete a rotation slot",
        secrets
            .delete("odordiff-api-keys-a", &DeleteParams::default())
            .await,
    );
}

#[tokio::test]
async fn no_secret_can_be_created_least_of_all_a_service_account_token() {
    let (s, bot) = target().await;
    let secrets: Api<Secret> = Api::namespaced(bot.clone(), &s.ns);
    let token = |name: &str| -> Secret {
        typed(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name,
                         "annotations": {"kubernetes.io/service-account.name": VICTIM}},
            "type": "kubernetes.io/service-account-token"}))
    };
    forbidden(
        "create a service-account-token Secret",
        secrets
            .create(&PostParams::default(), &token("attack-token"))
            .await,
    );
    // Not even under a release record's name, which the Role may `get` and `update`: a
    // rollback rewrites the existing records and creates none.
    forbidden(
        "create one named as an unused release record",
        secrets
            .create(
                &PostParams::default(),
                &token("sh.helm.release.v1.odordiff-2.v50"),
            )
            .await,
    );
    let record: Secret = typed(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "sh.helm.release.v1.odordiff-2.v51",
                     "labels": {"owner": "helm", "name": "odordiff-2"}},
        "type": "helm.sh/release.v1", "data": {"release": "e30="}}));
    forbidden(
        "create a Helm release record",
        secrets.create(&PostParams::default(), &record).await,
    );
    // Nor ask the API server for one directly.
    let sas: Api<ServiceAccount> = Api::namespaced(bot, &s.ns);
    let request: TokenRequest = typed(json!({"apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest", "spec": {"audiences": []}}));
    forbidden(
        "serviceaccounts/token",
        sas.create_token_request(VICTIM, &PostParams::default(), &request)
            .await,
    );
}

#[tokio::test]
async fn pods_cannot_be_created_exec_ed_or_deleted_and_a_job_is_the_stated_residual() {
    let (s, bot) = target().await;
    let pods: Api<Pod> = Api::namespaced(bot.clone(), &s.ns);
    forbidden(
        "create a pod as another service account",
        pods.create(&dry_run(), &pod_as(VICTIM)).await,
    );
    let running = s.pods("app=odordiff-api", 3).await;
    let name = running[0].metadata.name.clone().unwrap();
    forbidden(
        "delete a pod",
        pods.delete(&name, &DeleteParams::default()).await.map(drop),
    );
    // Authorization comes before the upgrade, so a plain POST is enough to be refused.
    let exec = http::Request::post(format!(
        "/api/v1/namespaces/{}/pods/{name}/exec?command=sh&stdout=true",
        s.ns
    ))
    .body(Vec::new())
    .unwrap();
    forbidden("exec into a pod", bot.request_text(exec).await);

    // Residual (README): `jobs: create` cannot be pinned; only the optional admission
    // policy (>= 1.30) holds Jobs to their CronJobs' templates. RBAC admits this dry run.
    let jobs: Api<Job> = Api::namespaced(bot, &s.ns);
    let job: Job = typed(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "attack"},
        "spec": {"template": {"spec": {"serviceAccountName": VICTIM, "restartPolicy": "Never",
                                        "containers": [{"name": "c", "image": "x"}]}}}}));
    jobs.create(&dry_run(), &job)
        .await
        .expect("the residual Job create (see README) is admitted");
    forbidden(
        "delete a job",
        jobs.delete("attack", &DeleteParams::default())
            .await
            .map(drop),
    );
}

#[tokio::test]
async fn a_pod_image_patch_is_the_stated_residual_and_its_service_account_stays() {
    let (s, bot) = target().await;
    let pods: Api<Pod> = Api::namespaced(bot, &s.ns);
    let running = s.pods("app=odordiff-api", 3).await;
    let name = running[0].metadata.name.clone().unwrap();
    let dry = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    // Residual (README, rbac.rs): RBAC cannot pin pod names, so `patch` admits an image.
    let image = json!({"spec": {"containers": [{"name": "odordiff-api", "image": "attacker:1"}]}});
    let patched = pods
        .patch(&name, &dry, &Patch::Strategic(image))
        .await
        .expect("the residual image patch (see README) is admitted");
    assert_eq!(
        patched.spec.unwrap().containers[0].image.as_deref(),
        Some("attacker:1")
    );
    // What bounds it: a pod's ServiceAccount and volumes are immutable.
    let sa = json!({"spec": {"serviceAccountName": VICTIM}});
    match pods.patch(&name, &dry, &Patch::Strategic(sa)).await {
        Err(kube::Error::Api(st)) => assert_eq!(st.code, 422, "{st:?}"),
        other => panic!("a pod's ServiceAccount changed: {other:?}"),
    }
}

#[tokio::test]
async fn deployments_odorbot_does_not_manage_and_rbac_itself_are_out_of_reach() {
    let (s, bot) = target().await;
    let deployments: Api<Deployment> = Api::namespaced(bot.clone(), &s.ns);
    let merge = Patch::Merge(json!({"spec": {"replicas": 1}}));
    forbidden(
        "patch an unmanaged deployment",
        deployments
            .patch("unmanaged", &PatchParams::default(), &merge)
            .await,
    );
    forbidden(
        "get an unmanaged deployment",
        deployments.get("unmanaged").await,
    );
    forbidden(
        "create a deployment",
        deployments
            .create(
                &dry_run(),
                &typed(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "attack"},
                "spec": {"selector": {"matchLabels": {"a": "b"}},
                         "template": {"metadata": {"labels": {"a": "b"}},
                                      "spec": {"serviceAccountName": VICTIM,
                                               "containers": [{"name": "c", "image": "x"}]}}}})),
            )
            .await,
    );
    let roles: Api<Role> = Api::namespaced(bot.clone(), &s.ns);
    forbidden(
        "widen its own Role",
        roles
            .patch(
                "odorbot",
                &PatchParams::default(),
                &Patch::Merge(json!({"rules": []})),
            )
            .await,
    );
    let bindings: Api<RoleBinding> = Api::namespaced(bot, &s.ns);
    forbidden(
        "bind a role",
        bindings
            .create(
                &dry_run(),
                &typed(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding", "metadata": {"name": "attack"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": "odorbot",
                              "namespace": s.ns}]})),
            )
            .await,
    );
}

#[tokio::test]
async fn nothing_in_another_namespace() {
    let (_s, bot) = target().await;
    for ns in ["default", "kube-system"] {
        forbidden(
            "list pods elsewhere",
            Api::<Pod>::namespaced(bot.clone(), ns)
                .list(&ListParams::default())
                .await,
        );
        forbidden(
            "list secrets elsewhere",
            Api::<Secret>::namespaced(bot.clone(), ns)
                .list(&ListParams::default())
                .await,
        );
        forbidden(
            "create a secret elsewhere",
            Api::<Secret>::namespaced(bot.clone(), ns)
                .create(
                    &dry_run(),
                    &typed(json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "attack"}})),
                )
                .await,
        );
        forbidden(
            "create a job elsewhere",
            Api::<Job>::namespaced(bot.clone(), ns)
                .create(
                    &dry_run(),
                    &typed(json!({"apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": "attack"},
                    "spec": {"template": {"spec": {"restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "x"}]}}}})),
                )
                .await,
        );
        forbidden(
            "patch a deployment elsewhere",
            Api::<Deployment>::namespaced(bot.clone(), ns)
                .patch(
                    "odordiff-api",
                    &PatchParams::default(),
                    &Patch::Merge(json!({})),
                )
                .await,
        );
    }
}
