//! Shipping odorbot: `manifests/` (the base and `overlays/ha`) rendered by kustomize and
//! applied with a server-side dry run on the real API server; what the Deployment, Service,
//! NetworkPolicy and PodDisruptionBudget say; the install Secret as README creates it;
//! odorbot's own alerts through promtool; the Grafana dashboard against a scrape of
//! `/metrics`.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde_json::{Value, json};

use crate::support::bot::Bot;
use crate::support::cluster_seed::{admin_client, wait_for};
use crate::support::fake_slack::FakeSlack;
use crate::support::manifests::{kinds, named, one, render, repo_path};

/// The tag scripts/image.sh gives the image it builds.
const IMAGE: &str = concat!("ghcr.io/odordiff/odorbot:", env!("CARGO_PKG_VERSION"));
const RULES: &str = "manifests/monitoring/odorbot-rules.yaml";
const RULE_TESTS: &str = "tests/monitoring/odorbot-rules.test.yaml";
const DASHBOARD: &str = "manifests/monitoring/odorbot-dashboard.json";

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn pod_spec(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]
}

fn container(deployment: &Value) -> &Value {
    let containers = pod_spec(deployment)["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn pod_labels(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["metadata"]["labels"]
}

/// `(port, protocol)` of every port in a NetworkPolicy rule.
fn rule_ports(rule: &Value) -> BTreeSet<(i64, String)> {
    rule["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["port"].as_i64().unwrap(),
                p["protocol"].as_str().unwrap_or("TCP").to_owned(),
            )
        })
        .collect()
}

fn tcp(port: i64) -> (i64, String) {
    (port, "TCP".to_owned())
}

/// Is `resource` served in `group_version` by this API server?
async fn served(client: &Client, group_version: &str, resource: &str) -> bool {
    client
        .list_api_group_resources(group_version)
        .await
        .is_ok_and(|l| l.resources.iter().any(|r| r.name == resource))
}

/// Server-side applies every object with `dryRun=All`: the API server validates, defaults
/// and admits each one exactly as `kubectl apply --server-side` would, and stores nothing.
async fn dry_run_apply(client: &Client, objects: &[Value]) -> Vec<String> {
    let mut applied = Vec::new();
    for obj in objects {
        let mut obj = obj.clone();
        // The shipped PDB is policy/v1 (Kubernetes 1.21 on; 1.25 serves nothing else). The
        // test server is 1.20, which serves the same object as policy/v1beta1.
        if obj["apiVersion"] == "policy/v1"
            && !served(client, "policy/v1", "poddisruptionbudgets").await
        {
            obj["apiVersion"] = json!("policy/v1beta1");
        }
        let api_version = obj["apiVersion"].as_str().unwrap().to_owned();
        let kind = obj["kind"].as_str().unwrap().to_owned();
        let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let (ar, caps) =
            kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, &kind))
                .await
                .unwrap_or_else(|e| panic!("{api_version} {kind} is not served: {e}"));
        let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
            let ns = obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or_else(|| panic!("{kind}/{name} has no namespace"));
            Api::namespaced_with(client.clone(), ns, &ar)
        } else {
            Api::all_with(client.clone(), &ar)
        };
        let answer = api
            .patch(
                &name,
                &PatchParams::apply("odorbot-deploy-test").force().dry_run(),
                &Patch::Apply(&obj),
            )
            .await
            .unwrap_or_else(|e| panic!("dry-run apply of {kind}/{name} refused: {e}"));
        assert_eq!(answer.metadata.name.as_deref(), Some(name.as_str()));
        applied.push(format!("{kind}/{name}"));
    }
    applied
}

/// The namespace the kustomizations name; a dry run needs it to exist.
async fn ensure_namespace(client: &Client, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

/// The Prometheus Operator's PrometheusRule kind, so its object can be dry-run applied
/// (schema-less, like the other CRDs the tests install).
async fn ensure_prometheus_rule_crd(client: &Client) {
    let (ar, _) = kube::discovery::pinned_kind(
        client,
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
    )
    .await
    .unwrap();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "prometheusrules.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"plural": "prometheusrules", "singular": "prometheusrule",
                      "kind": "PrometheusRule", "listKind": "PrometheusRuleList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}],
        }
    }))
    .unwrap();
    match api.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating the PrometheusRule CRD: {e}"),
    }
    wait_for("prometheusrules served", 30, || async {
        served(client, "monitoring.coreos.com/v1", "prometheusrules")
            .await
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_rendered_base_overlay_and_rules_pass_a_server_side_dry_run_apply() {
    let client = admin_client().await;
    ensure_namespace(&client, "odordiff").await;
    ensure_prometheus_rule_crd(&client).await;
    for dir in ["manifests", "manifests/overlays/ha", "manifests/monitoring"] {
        let objects = render(dir);
        let applied = dry_run_apply(&client, &objects).await;
        assert_eq!(applied.len(), objects.len(), "{dir}: {applied:?}");
    }
    // Nothing was stored: the dry run only validated.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "odordiff");
    assert!(deployments.get_opt("odorbot").await.unwrap().is_none());
}

#[test]
fn the_base_runs_the_built_image_behind_the_admin_service_and_its_network_policy() {
    let base = render("manifests");
    assert_eq!(
        kinds(&base),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "NetworkPolicy",
            "PersistentVolumeClaim",
            "Role",
            "RoleBinding",
            "Secret",
            "Secret",
            "Service",
            "ServiceAccount"
        ]
    );
    let cluster_scoped = ["ClusterRole", "ClusterRoleBinding"];
    assert!(
        base.iter()
            .filter(|o| !cluster_scoped.contains(&o["kind"].as_str().unwrap_or_default()))
            .all(|o| o["metadata"]["namespace"] == "odordiff")
    );
    // The one cluster-scoped grant: the scratch namespace of test restores, by name.
    let scratch = odorbot::domain::k8s::restore_namespace("odordiff");
    assert_eq!(
        one(&base, "ClusterRole")["rules"],
        json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "delete"],
                "resourceNames": [scratch]}])
    );
    let binding = one(&base, "ClusterRoleBinding");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "odorbot", "namespace": "odordiff"}])
    );
    assert_eq!(
        binding["roleRef"]["name"],
        one(&base, "ClusterRole")["metadata"]["name"]
    );
    let deployment = one(&base, "Deployment");
    let c = container(deployment);
    assert_eq!(c["image"], IMAGE, "the image scripts/image.sh builds");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 9090, "protocol": "TCP"}])
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    let security = &pod_spec(deployment)["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["runAsUser"], 10001, "the image's numeric user");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod_spec(deployment)["serviceAccountName"], "odorbot");
    // The config the pod reads is the generated ConfigMap, by its hashed name.
    let config = one(&base, "ConfigMap");
    let volumes = pod_spec(deployment)["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["configMap"]["name"] == config["metadata"]["name"])
    );
    let pvc = one(&base, "PersistentVolumeClaim");
    assert!(
        volumes
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"])
    );

    // The Service: the admin port, where README's Alertmanager receiver posts.
    let service = one(&base, "Service");
    assert_eq!(service["spec"]["selector"], *pod_labels(deployment));
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 9090, "targetPort": "http", "protocol": "TCP"}])
    );
    let receiver = format!(
        "http://{}.{}:9090/alerts",
        service["metadata"]["name"].as_str().unwrap(),
        service["metadata"]["namespace"].as_str().unwrap()
    );
    assert!(
        read("README.md").contains(&receiver),
        "README's receiver posts to {receiver}"
    );

    // The NetworkPolicy: odorbot's pods, ingress only to the admin port, egress to DNS,
    // HTTPS (Slack, the API server's Service) and the probed services.
    let policy = named(&base, "NetworkPolicy", "odorbot");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        *pod_labels(deployment)
    );
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let ingress = policy["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(rule_ports(&ingress[0]), BTreeSet::from([tcp(9090)]));
    let egress: BTreeSet<(i64, String)> = policy["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(rule_ports)
        .collect();
    for port in [
        (53, "UDP".to_owned()),
        tcp(53),
        tcp(443),
        tcp(6443),
        tcp(5432),
        tcp(6379),
        tcp(8080),
        tcp(9090),
    ] {
        assert!(egress.contains(&port), "egress allows {port:?}: {egress:?}");
    }
    assert!(
        policy["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("ports").is_some()),
        "every egress rule is limited to ports"
    );
}

#[test]
fn the_ha_overlay_runs_two_replicas_on_postgres_with_a_disruption_budget() {
    let ha = render("manifests/overlays/ha");
    assert_eq!(
        kinds(&ha),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Secret",
            "Secret",
            "Service",
            "ServiceAccount"
        ],
        "no PVC: the store is PostgreSQL"
    );
    let deployment = one(&ha, "Deployment");
    assert_eq!(container(deployment)["image"], IMAGE);
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert_eq!(
        deployment["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    );
    let spec = pod_spec(deployment);
    assert!(
        spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.get("persistentVolumeClaim").is_none())
    );
    let env = container(deployment)["env"].as_array().unwrap();
    let store = env
        .iter()
        .find(|e| e["name"] == "ODORBOT_STORE_URL")
        .expect("the store URL");
    assert_eq!(
        store["valueFrom"]["secretKeyRef"],
        json!({"name": "odorbot", "key": "store-url"})
    );
    let anti = &spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0]["podAffinityTerm"];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        anti["labelSelector"]["matchLabels"],
        *pod_labels(deployment)
    );

    let pdb = one(&ha, "PodDisruptionBudget");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        *pod_labels(deployment)
    );

    // odorbot's own PostgreSQL may be outside the namespace: 5432 anywhere.
    let policy = named(&ha, "NetworkPolicy", "odorbot");
    assert!(
        policy["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.get("to").is_none() && rule_ports(r) == BTreeSet::from([tcp(5432)]))
    );
}

/// The keys README's `kubectl create secret generic odorbot` block puts in the Secret.
fn readme_secret_keys() -> BTreeSet<String> {
    let readme = read("README.md");
    let start = readme
        .find("kubectl -n odordiff create secret generic odorbot ")
        .expect("README creates the Secret odorbot");
    let mut keys = BTreeSet::new();
    for line in readme[start..].lines() {
        for arg in line.split_whitespace() {
            if let Some(rest) = arg
                .strip_prefix("--from-file=")
                .or_else(|| arg.strip_prefix("--from-literal="))
            {
                keys.insert(rest.split('=').next().unwrap().to_owned());
            }
        }
        if !line.trim_end().ends_with('\\') {
            break;
        }
    }
    keys
}

/// The keys of the Secret `odorbot` a Deployment reads: mounted items and env references.
fn secret_keys_read(deployment: &Value) -> BTreeSet<String> {
    let spec = pod_spec(deployment);
    let mut keys = BTreeSet::new();
    for v in spec["volumes"].as_array().unwrap() {
        if v["secret"]["secretName"] == "odorbot" {
            let items = v["secret"]["items"]
                .as_array()
                .expect("the mount lists its keys");
            keys.extend(items.iter().map(|i| i["key"].as_str().unwrap().to_owned()));
        }
    }
    for e in container(deployment)["env"].as_array().unwrap() {
        let r = &e["valueFrom"]["secretKeyRef"];
        if r["name"] == "odorbot" {
            keys.insert(r["key"].as_str().unwrap().to_owned());
        }
    }
    keys
}

#[test]
fn readme_creates_the_one_secret_with_every_key_the_deployments_read() {
    let base = render("manifests");
    let ha = render("manifests/overlays/ha");
    let base_keys = secret_keys_read(one(&base, "Deployment"));
    let ha_keys = secret_keys_read(one(&ha, "Deployment"));
    assert!(base_keys.is_subset(&ha_keys));
    assert_eq!(readme_secret_keys(), ha_keys);
    assert_eq!(
        ha_keys.difference(&base_keys).collect::<Vec<_>>(),
        ["store-url"]
    );
    // Every secret file the config names is one the Deployment mounts.
    let config = one(&base, "ConfigMap")["data"]["odorbot.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix = "/var/run/secrets/odorbot/";
    let named: BTreeSet<String> = config
        .match_indices(prefix)
        .map(|(i, _)| {
            config[i + prefix.len()..]
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(!named.is_empty());
    assert!(
        named.is_subset(&base_keys),
        "{named:?} ⊆ mounted {base_keys:?}"
    );
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo_path("."))
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool not found ({e}): install Debian's prometheus package (scripts/test.sh does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

fn yaml_file(rel: &str) -> Value {
    serde_yaml_ng::from_str(&read(rel)).unwrap()
}

fn rules() -> Vec<Value> {
    yaml_file(RULES)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .collect()
}

#[test]
fn promtool_checks_the_rules_and_unit_tests_every_alert() {
    promtool(&["check", "rules", RULES]);
    let out = promtool(&["test", "rules", RULE_TESTS]);
    assert!(out.contains("SUCCESS"), "{out}");

    let tests = yaml_file(RULE_TESTS);
    let alerts: Vec<String> = rules()
        .iter()
        .map(|r| r["alert"].as_str().expect("only alerting rules").to_owned())
        .collect();
    let docs = read("docs/alerts.md");
    for alert in &alerts {
        let cases: Vec<&Value> = tests["tests"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
            .filter(|c| c["alertname"] == alert.as_str())
            .collect();
        assert!(
            cases
                .iter()
                .any(|c| !c["exp_alerts"].as_array().unwrap().is_empty()),
            "a test where {alert} fires"
        );
        assert!(
            cases
                .iter()
                .any(|c| c["exp_alerts"].as_array().unwrap().is_empty()),
            "a test where {alert} stays quiet"
        );
        assert!(
            docs.contains(&format!("\n## {alert}\n")),
            "docs/alerts.md explains {alert}"
        );
    }
    for rule in rules() {
        let alert = rule["alert"].as_str().unwrap();
        assert_eq!(
            rule["annotations"]["runbook_url"],
            format!(
                "https://github.com/odordiff/odorbot/blob/main/docs/alerts.md#{}",
                alert.to_lowercase()
            )
        );
        assert!(rule["labels"]["severity"].is_string());
    }
}

#[test]
fn the_prometheus_rule_holds_the_plain_rules_files_groups() {
    let operator = render("manifests/monitoring");
    let rule = one(&operator, "PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["spec"]["groups"], yaml_file(RULES)["groups"]);
}

/// Every sample name a scrape can show, from its `# TYPE` lines: counters as `_total`,
/// histograms with `_bucket`, `_sum` and `_count`.
fn exported(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#") || words.next() != Some("TYPE") {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The `odorbot_…` metric names an expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\bodorbot_[a-z0-9_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_owned()).collect()
}

fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| dashboard_exprs(i, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_name_only_metrics_odorbot_exports() {
    let fake = FakeSlack::start().await;
    let bot = Bot::start(&fake).await;
    assert!(
        bot.wait_readyz(200, Duration::from_secs(20)).await,
        "{}",
        bot.logs()
    );
    // A command first: counters appear in a scrape once they have a labelled series.
    assert!(fake.wait_connections(2, Duration::from_secs(20)).await);
    let d = fake.slash_command("U0ALICE", "C0OPS", "help").await;
    assert!(fake.reply_to(&d, Duration::from_secs(20)).await.is_some());
    let (status, scrape) = bot.get("/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    let exported = exported(&scrape);
    assert!(scrape.contains("odorbot_store_up 1"), "{scrape}");
    assert!(scrape.contains("odorbot_outbox_pending 0"), "{scrape}");

    let dashboard: Value =
        serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is valid JSON");
    assert!(dashboard["title"].is_string());
    assert!(!dashboard["panels"].as_array().unwrap().is_empty());
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard names metrics odorbot does not export: {unknown:?}\n{scrape}"
    );
    for wanted in [
        "odorbot_envelopes_acked_total",
        "odorbot_envelope_ack_latency_seconds_bucket",
        "odorbot_commands_total",
        "odorbot_approvals",
        "odorbot_incidents_open",
        "odorbot_outbox_pending",
        "odorbot_outbox_oldest_pending_seconds",
        "odorbot_timers_overdue",
    ] {
        assert!(used.contains(wanted), "the dashboard shows {wanted}");
    }
    assert!(read("README.md").contains(DASHBOARD));

    let rule_metrics: BTreeSet<String> = rules()
        .iter()
        .flat_map(|r| metric_names(r["expr"].as_str().unwrap()))
        .collect();
    let unknown: Vec<&String> = rule_metrics.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the alerts name metrics odorbot does not export: {unknown:?}"
    );
    let (status, _) = bot.terminate().await;
    assert!(status.success());
}

/// The names under the catalog's `objects.<key>`.
fn catalog_objects(key: &str) -> Vec<String> {
    serde_json::from_value(yaml_file("runbooks/odordiff-2.yaml")["objects"][key].clone()).unwrap()
}

/// The optional admission policies cannot run here (Kubernetes 1.20 has no
/// ValidatingAdmissionPolicy), so this holds what can be held offline: the file parses, every
/// policy is bound, the Jobs policy covers exactly the catalog's CronJobs, and the pods
/// policy leaves only the quarantine label. (Secrets need none: the Role creates none.)
#[test]
fn the_optional_admission_policies_parse_and_name_the_catalogs_cronjobs() {
    let docs: Vec<Value> =
        serde_yaml_ng::Deserializer::from_str(&read("manifests/optional/admission-policy.yaml"))
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
    let policies: BTreeSet<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        policies,
        BTreeSet::from([
            "odorbot-jobs-from-cronjobs",
            "odorbot-pod-patches-only-quarantine",
        ])
    );
    let bindings: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ValidatingAdmissionPolicyBinding")
        .collect();
    assert_eq!(bindings.len() + policies.len(), docs.len());
    for b in &bindings {
        assert!(policies.contains(b["spec"]["policyName"].as_str().unwrap()));
        assert_eq!(b["spec"]["validationActions"], json!(["Deny"]));
    }

    let cronjobs = catalog_objects("cronjobs");
    let bound: Vec<String> = bindings
        .iter()
        .filter(|b| b["spec"]["policyName"] == "odorbot-jobs-from-cronjobs")
        .map(|b| b["spec"]["paramRef"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bound, cronjobs, "one binding per listed CronJob");
    let jobs = named(
        &docs,
        "ValidatingAdmissionPolicy",
        "odorbot-jobs-from-cronjobs",
    );
    let listed = format!("[\"{}\"]", cronjobs.join("\", \""));
    assert!(
        jobs["spec"]["validations"][0]["expression"]
            .as_str()
            .unwrap()
            .contains(&listed),
        "the owner check lists {listed}"
    );
    let pods = named(
        &docs,
        "ValidatingAdmissionPolicy",
        "odorbot-pod-patches-only-quarantine",
    );
    assert_eq!(
        pods["spec"]["validations"][0]["expression"],
        "object.spec == oldObject.spec"
    );
}

/// The Slack app asks for exactly the bot scopes the Web API methods odorbot calls need,
/// and README's setup names each: a new method without a decided scope fails here.
#[test]
fn the_slack_app_asks_for_the_scopes_its_methods_need_and_no_more() {
    // Each method in src/slack/api.rs, with the bot scope it needs (`None`: none, or an
    // app-level token).
    let scope_of = |method: &str| -> Option<Option<&str>> {
        Some(match method {
            "auth.test" | "apps.connections.open" | "views.open" | "response_url" => None,
            "chat.postMessage" | "chat.update" => Some("chat:write"),
            "usergroups.users.list" => Some("usergroups:read"),
            "conversations.history" | "conversations.replies" => Some("channels:history"),
            "files.getUploadURLExternal" | "files.upload" | "files.completeUploadExternal" => {
                Some("files:write")
            }
            _ => return None,
        })
    };
    let api = read("src/slack/api.rs");
    let called = regex::Regex::new(r#""((?:[a-z]+\.[a-zA-Z.]+)|response_url)""#).unwrap();
    let mut needed = BTreeSet::from(["commands".to_owned()]);
    for m in called.captures_iter(&api) {
        let method = &m[1];
        if method.starts_with("slack.com") || method.ends_with(".rs") {
            continue;
        }
        let scope = scope_of(method)
            .unwrap_or_else(|| panic!("{method}: which bot scope does it need? decide it here"));
        needed.extend(scope.map(str::to_owned));
    }
    // Private channels need the groups: twin of channels:history.
    if needed.contains("channels:history") {
        needed.insert("groups:history".to_owned());
    }
    let manifest: Value = serde_yaml_ng::from_str(&read("slack-app.yaml")).unwrap();
    let asked: BTreeSet<String> = manifest["oauth_config"]["scopes"]["bot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(asked, needed);
    let readme = read("README.md");
    let setup = &readme[readme.find("## Creating the Slack app").unwrap()..];
    let setup = &setup[..setup[3..].find("\n## ").unwrap_or(setup.len() - 3) + 3];
    for scope in &asked {
        assert!(
            setup.contains(&format!("`{scope}`")),
            "README's Slack setup does not name {scope}"
        );
    }
}
