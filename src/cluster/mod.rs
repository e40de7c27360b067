//! The Kubernetes API through kube-rs; the only module that imports kube.
//!
//! [`Cluster`] holds a client and the one namespace odorbot may act in. It has one async
//! method per runbook action: read-only diagnostics in `diagnostics`, destructive actions in
//! `actions` (each with a server-side dry run), Helm release storage in `helm`. Results
//! are the plain data of [`crate::domain::k8s`]. Every request is bounded by a timeout and
//! every failure becomes a [`ClusterError`] that says what was refused and why.
//!
//! The version skew with older clusters is handled by discovery where kinds moved:
//! CronJobs (`batch/v1` or `batch/v1beta1`), PodDisruptionBudgets (`policy/v1` or
//! `policy/v1beta1`); CRDs (cert-manager, Velero) and `metrics.k8s.io` are discovered too,
//! so an absent API is a specific error rather than a 404 on some object.

mod actions;
mod diagnostics;
mod evidence;
mod helm;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ApiResource, DynamicObject};
use serde::de::DeserializeOwned;
use thiserror::Error;

use crate::domain::ids::K8sName;
use crate::domain::k8s::Change;

pub use actions::{HpaPatch, SecretRotation};
pub use evidence::EvidenceReads;
pub use helm::HELM_PINNED_REVISIONS;

/// The field manager of every write: server-side apply and the managed-fields history
/// show odorbot's changes under one name.
pub const FIELD_MANAGER: &str = "odorbot";

/// Why a Kubernetes call failed, in the terms a person can act on.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot load Kubernetes credentials: {0}")]
    Config(String),
    /// Rejected before any request was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{resource} {name:?} not found in namespace {namespace}")]
    NotFound {
        resource: String,
        name: String,
        namespace: String,
    },
    /// The API server's RBAC refused the request: odorbot's Role does not allow it.
    #[error("forbidden by RBAC: odorbot may not {verb} {resource}{} in namespace {namespace} ({message})", name.as_ref().map(|n| format!(" {n:?}")).unwrap_or_default())]
    Forbidden {
        verb: String,
        resource: String,
        name: Option<String>,
        namespace: String,
        message: String,
    },
    /// The API group/version of a custom resource is not served: its CRD is not installed.
    #[error("{kind} ({api}) is not served by this cluster: is its CRD installed?")]
    CrdNotInstalled { api: String, kind: String },
    /// A built-in API that odorbot needs is served in no version it knows.
    #[error("{resource} is not served by this cluster in any of {versions}")]
    NotServed { resource: String, versions: String },
    #[error("the Kubernetes API server cannot be reached: {0}")]
    Unreachable(String),
    #[error("{what} got no answer within {after:?}")]
    Timeout { what: String, after: Duration },
    /// The object changed underneath (stale resourceVersion) or already exists.
    #[error("conflict on {what}: {message}")]
    Conflict { what: String, message: String },
    /// The API server validated the request and said no (422, 400…).
    #[error("the API server rejected {what}: {message}")]
    Rejected { what: String, message: String },
    #[error("the API server did not accept odorbot's credentials: {0}")]
    Unauthorized(String),
    /// The live objects are not what the action relies on; nothing was changed.
    #[error("refused: {0}; nothing was changed")]
    Refused(String),
    /// A multi-step action failed part-way; `done` lists what had already changed.
    #[error("{failed} (already done: {})", done.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Partial {
        done: Vec<Change>,
        failed: Box<ClusterError>,
    },
    #[error("Kubernetes API error during {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
}

impl From<kube::Error> for ClusterError {
    fn from(e: kube::Error) -> Self {
        classify(&Op::new("call", "the API server"), "", e)
    }
}

/// Where the cluster is, built by the configuration.
#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    /// OdorDiff-2's namespace; odorbot acts nowhere else.
    pub namespace: K8sName,
    /// A kubeconfig file; unset means `KUBECONFIG` or the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Where Velero's Backups and Restores live; the namespace above unless configured.
    pub velero_namespace: K8sName,
}

impl KubernetesConfig {
    /// `namespace` with Velero's objects in it too.
    pub fn new(namespace: K8sName, kubeconfig: Option<PathBuf>) -> Self {
        Self {
            velero_namespace: namespace.clone(),
            namespace,
            kubeconfig,
        }
    }
}

/// Bounds that the runbook's numbers must respect, and how long any one call may take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deadline of each API request.
    pub call_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(15),
        }
    }
}

/// The cluster as odorbot may touch it: one client, one namespace.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    /// OdorDiff-2's namespace; every namespaced call goes here and nowhere else.
    namespace: K8sName,
    /// Where Velero's Backups and Restores live (Velero's install namespace, often
    /// `velero`); the application's namespace unless configured.
    velero_namespace: K8sName,
    limits: Limits,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("namespace", &self.namespace)
            .field("velero_namespace", &self.velero_namespace)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    pub fn new(client: kube::Client, namespace: K8sName) -> Self {
        Self {
            client,
            velero_namespace: namespace.clone(),
            namespace,
            limits: Limits::default(),
        }
    }

    /// Connects with [`connect`] and acts in the configured namespace.
    ///
    /// # Errors
    /// [`ClusterError::Config`] when no usable credentials are found.
    pub async fn connect(config: &KubernetesConfig) -> Result<Self, ClusterError> {
        Ok(Self::new(connect(config).await?, config.namespace.clone())
            .with_velero_namespace(config.velero_namespace.clone()))
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn with_velero_namespace(mut self, namespace: K8sName) -> Self {
        self.velero_namespace = namespace;
        self
    }

    pub fn namespace(&self) -> &K8sName {
        &self.namespace
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), self.namespace.as_str())
    }

    fn dynamic_api(&self, resource: &ApiResource, namespace: &K8sName) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace.as_str(), resource)
    }

    /// Runs one API request under the call timeout and turns its failure into a
    /// [`ClusterError`] naming the verb and resource.
    async fn call<T, F>(&self, op: Op<'_>, fut: F) -> Result<T, ClusterError>
    where
        F: Future<Output = Result<T, kube::Error>>,
    {
        match tokio::time::timeout(self.limits.call_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(&op, self.namespace.as_str(), e)),
            Err(_) => Err(ClusterError::Timeout {
                what: op.to_string(),
                after: self.limits.call_timeout,
            }),
        }
    }

    /// Like [`Cluster::call`], but a 404 is `None` rather than an error.
    async fn call_opt<T, F>(&self, op: Op<'_>, fut: F) -> Result<Option<T>, ClusterError>
    where
        F: Future<Output = Result<T, kube::Error>>,
    {
        match self.call(op, fut).await {
            Ok(v) => Ok(Some(v)),
            Err(ClusterError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Finds how the API server serves `plural` in `group_version` (e.g. `velero.io/v1`,
    /// `restores`); `None` when that group/version or resource is not served.
    async fn discover(
        &self,
        group_version: &str,
        plural: &str,
    ) -> Result<Option<Discovered>, ClusterError> {
        self.discover_where(group_version, |r| r.name == plural)
            .await
    }

    /// Like [`Cluster::discover`], by kind (`Deployment`) rather than plural.
    async fn discover_kind(
        &self,
        group_version: &str,
        kind: &str,
    ) -> Result<Option<Discovered>, ClusterError> {
        // Subresources (`deployments/status`) share their parent's kind: skip them.
        self.discover_where(group_version, |r| r.kind == kind && !r.name.contains('/'))
            .await
    }

    async fn discover_where(
        &self,
        group_version: &str,
        matches: impl Fn(&k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource) -> bool,
    ) -> Result<Option<Discovered>, ClusterError> {
        let op = Op::new("discover", "API resources").named(group_version);
        let client = self.client.clone();
        let gv = group_version.to_owned();
        let list = self
            .call(op, async move {
                if gv == "v1" {
                    client.list_core_api_resources("v1").await
                } else {
                    client.list_api_group_resources(&gv).await
                }
            })
            .await;
        let list = match list {
            Ok(l) => l,
            // 503: an aggregated API (metrics-server) registered but unavailable.
            Err(ClusterError::NotFound { .. }) => return Ok(None),
            Err(ClusterError::Api { source, .. }) if status_code(&source) == Some(503) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let (group, version) = match group_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), group_version.to_owned()),
        };
        Ok(list
            .resources
            .into_iter()
            .find(|r| matches(r))
            .map(|r| Discovered {
                resource: ApiResource {
                    group,
                    version,
                    api_version: group_version.to_owned(),
                    kind: r.kind,
                    plural: r.name,
                },
                namespaced: r.namespaced,
            }))
    }

    /// The first of `group_versions` that serves `plural`.
    async fn discover_any(
        &self,
        group_versions: &[&str],
        plural: &str,
    ) -> Result<ApiResource, ClusterError> {
        for gv in group_versions {
            if let Some(d) = self.discover(gv, plural).await? {
                return Ok(d.resource);
            }
        }
        Err(ClusterError::NotServed {
            resource: plural.to_owned(),
            versions: group_versions.join(", "),
        })
    }

    /// A custom resource's API, or [`ClusterError::CrdNotInstalled`].
    async fn crd(&self, group_version: &str, plural: &str) -> Result<ApiResource, ClusterError> {
        match self.discover(group_version, plural).await? {
            Some(d) => Ok(d.resource),
            None => Err(ClusterError::CrdNotInstalled {
                api: group_version.to_owned(),
                kind: plural.to_owned(),
            }),
        }
    }
}

struct Discovered {
    resource: ApiResource,
    namespaced: bool,
}

/// What a request does, for error messages: `patch deployments "odordiff-api"`.
#[derive(Debug, Clone, Copy)]
struct Op<'a> {
    verb: &'static str,
    resource: &'a str,
    name: Option<&'a str>,
}

impl<'a> Op<'a> {
    fn new(verb: &'static str, resource: &'a str) -> Self {
        Self {
            verb,
            resource,
            name: None,
        }
    }

    fn named(mut self, name: &'a str) -> Self {
        self.name = Some(name);
        self
    }
}

impl std::fmt::Display for Op<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(n) = self.name {
            write!(f, " {n:?}")?;
        }
        Ok(())
    }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

fn classify(op: &Op<'_>, namespace: &str, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(status) => {
            let message = status.message.clone();
            let named = op
                .name
                .map(str::to_owned)
                .or_else(|| status.details.as_ref().map(|d| d.name.clone()));
            match status.code {
                404 => ClusterError::NotFound {
                    resource: op.resource.to_owned(),
                    name: named.unwrap_or_default(),
                    namespace: namespace.to_owned(),
                },
                403 => ClusterError::Forbidden {
                    verb: op.verb.to_owned(),
                    resource: op.resource.to_owned(),
                    name: named,
                    namespace: namespace.to_owned(),
                    message,
                },
                401 => ClusterError::Unauthorized(message),
                409 => ClusterError::Conflict {
                    what: op.to_string(),
                    message,
                },
                400 | 422 => ClusterError::Rejected {
                    what: op.to_string(),
                    message,
                },
                _ => ClusterError::Api {
                    what: op.to_string(),
                    source: kube::Error::Api(status),
                },
            }
        }
        kube::Error::HyperError(e) => ClusterError::Unreachable(error_chain(&e)),
        kube::Error::Service(e) => ClusterError::Unreachable(error_chain(e.as_ref())),
        kube::Error::RustlsTls(e) => ClusterError::Unreachable(error_chain(&e)),
        other => ClusterError::Api {
            what: op.to_string(),
            source: other,
        },
    }
}

/// An error and its causes on one line: hyper's top-level message alone ("client error
/// (Connect)") does not say that the connection was refused.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Serializes a typed object for diffing; k8s-openapi types always serialize.
fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Reads a typed view (e.g. `CronJobSpec`) out of a dynamic object's field.
fn from_field<T: DeserializeOwned>(
    obj: &DynamicObject,
    field: &str,
    what: &str,
) -> Result<T, ClusterError> {
    let value = obj.data.get(field).cloned().unwrap_or_default();
    serde_json::from_value(value).map_err(|e| ClusterError::Rejected {
        what: what.to_owned(),
        message: format!("unexpected {field}: {e}"),
    })
}

/// A client for the configured cluster: the kubeconfig from the configuration, else
/// `KUBECONFIG` or `~/.kube/config`, else the in-cluster service account.
///
/// # Errors
/// [`ClusterError::Config`] when no usable credentials are found.
pub async fn connect(config: &KubernetesConfig) -> Result<kube::Client, ClusterError> {
    let kube_config = match &config.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Config(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| ClusterError::Config(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ClusterError::Config(e.to_string()))?,
    };
    kube::Client::try_from(kube_config).map_err(|e| ClusterError::Config(e.to_string()))
}

/// The API server's version, e.g. `v1.20.2`: proof that it answers and trusts us.
///
/// # Errors
/// [`ClusterError::Unreachable`], [`ClusterError::Unauthorized`] and the like when the
/// server cannot be reached or refuses the request.
pub async fn server_version(client: &kube::Client) -> Result<String, ClusterError> {
    Ok(client.apiserver_version().await?.git_version)
}
