//! A local HTTP stand-in for what the test API server cannot serve without kubelets and
//! metrics-server: pod logs (plain text, `tailLines` and `sinceSeconds` honoured) and
//! `metrics.k8s.io` (discovery plus a `PodMetricsList`), in the API server's formats.
//! Everything else answers 404 with a `Status`, as the API server does for an unknown
//! group. Every request is recorded, so tests can prove that bad input sent nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub const PODS: [&str; 2] = ["odordiff-api-7d9f8-abcde", "odordiff-api-7d9f8-fghij"];

/// One log line and how many seconds ago it was written.
const LOG: [(u64, &str); 6] = [
    (3000, "INFO  started worker pool size=8"),
    (1500, "ERROR upstream redis timeout after 2000ms"),
    (900, "INFO  GET /api/v1/generate 200 duration=120ms"),
    (400, "ERROR POST /api/v1/generate 500 duration=5400ms"),
    (120, "INFO  GET /health 200 duration=2ms"),
    (30, "WARN  slow request duration=1800ms"),
];

#[derive(Clone)]
struct Fake {
    requests: Arc<Mutex<Vec<String>>>,
    metrics_served: bool,
}

pub struct FakeKube {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeKube {
    /// Starts the fake; `metrics_served` decides whether `metrics.k8s.io` exists.
    pub async fn start(metrics_served: bool) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = Fake {
            requests: requests.clone(),
            metrics_served,
        };
        let app = Router::new()
            .route("/api/v1/namespaces/{ns}/pods", get(list_pods))
            .route("/api/v1/namespaces/{ns}/pods/{pod}", get(get_pod))
            .route("/api/v1/namespaces/{ns}/pods/{pod}/log", get(pod_log))
            .route("/apis/metrics.k8s.io/v1beta1", get(metrics_discovery))
            .route(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
                get(pod_metrics),
            )
            .route(
                "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
                get(slow_deployment),
            )
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(state.clone(), record))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            requests,
            server,
        }
    }

    /// A kube client for the fake (plain HTTP, no credentials).
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// The requests so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(
    State(fake): State<Fake>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let line = format!("{} {}", req.method(), req.uri());
    fake.requests.lock().unwrap().push(line);
    next.run(req).await
}

fn pod(ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": "odordiff-api"},
                     "annotations": {"kubectl.kubernetes.io/default-container": "odordiff-api"}},
        "spec": {"containers": [{"name": "istio-proxy", "image": "istio/proxyv2:1.20"},
                                {"name": "odordiff-api", "image": "ghcr.io/odordiff/odordiff-api:1.5.0"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "istio-proxy", "image": "istio/proxyv2:1.20", "imageID": "", "ready": true,
             "restartCount": 0, "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}},
            {"name": "odordiff-api", "image": "ghcr.io/odordiff/odordiff-api:1.5.0", "imageID": "",
             "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ]}
    })
}

async fn list_pods(Path(ns): Path<String>) -> Json<Value> {
    Json(json!({
        "apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"},
        "items": PODS.iter().map(|p| pod(&ns, p)).collect::<Vec<_>>()
    }))
}

async fn get_pod(Path((ns, name)): Path<(String, String)>) -> Response {
    if PODS.contains(&name.as_str()) {
        Json(pod(&ns, &name)).into_response()
    } else {
        status(404, "NotFound", &format!("pods \"{name}\" not found"))
    }
}

/// Plain text, like the kubelet's log endpoint behind the API server: `sinceSeconds`
/// first, then `tailLines`.
async fn pod_log(
    Path((_ns, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("container").map(String::as_str) != Some("odordiff-api") {
        return status(400, "BadRequest", "a container name must be specified");
    }
    let since: Option<u64> = q.get("sinceSeconds").and_then(|s| s.parse().ok());
    let tail: Option<usize> = q.get("tailLines").and_then(|s| s.parse().ok());
    let lines: Vec<String> = LOG
        .iter()
        .filter(|(age, _)| since.is_none_or(|s| *age <= s))
        .map(|(_, l)| format!("{name} {l}"))
        .collect();
    let skip = tail.map_or(0, |t| lines.len().saturating_sub(t));
    let mut body = lines[skip..].join("\n");
    body.push('\n');
    (StatusCode::OK, [("content-type", "text/plain")], body).into_response()
}

async fn metrics_discovery(State(fake): State<Fake>) -> Response {
    if !fake.metrics_served {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    Json(json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.k8s.io/v1beta1",
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]}
        ]
    }))
    .into_response()
}

async fn pod_metrics(State(fake): State<Fake>, Path(ns): Path<String>) -> Response {
    if !fake.metrics_served {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let item = |name: &str, api_cpu: &str, api_mem: &str| {
        json!({
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "odordiff-api"},
                         "creationTimestamp": "2025-01-01T00:00:00Z"},
            "timestamp": "2025-01-01T00:00:00Z", "window": "30s",
            "containers": [
                {"name": "odordiff-api", "usage": {"cpu": api_cpu, "memory": api_mem}},
                {"name": "istio-proxy", "usage": {"cpu": "1500000n", "memory": "10240Ki"}}
            ]
        })
    };
    Json(json!({
        "kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"selfLink": format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods")},
        "items": [item(PODS[0], "250m", "256Mi"), item(PODS[1], "1", "1Gi")]
    }))
    .into_response()
}

/// Never answers in time: for the timeout test.
async fn slow_deployment() -> Response {
    tokio::time::sleep(Duration::from_secs(10)).await;
    status(504, "Timeout", "too slow")
}

async fn not_found(uri: Uri) -> Response {
    status(
        404,
        "NotFound",
        &format!("the server could not find the requested resource ({uri})"),
    )
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure", "message": message, "reason": reason, "code": code})),
    )
        .into_response()
}
