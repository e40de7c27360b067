//! The Kubernetes API through kube-rs; the only module that imports kube.

use thiserror::Error;

use crate::config::KubernetesConfig;

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot load Kubernetes credentials: {0}")]
    Config(String),
    #[error("Kubernetes API error: {0}")]
    Api(#[from] kube::Error),
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
    kube::Client::try_from(kube_config).map_err(ClusterError::Api)
}

/// The API server's version, e.g. `v1.20.2`: proof that it answers and trusts us.
///
/// # Errors
/// [`ClusterError::Api`] when the server cannot be reached or refuses the request.
pub async fn server_version(client: &kube::Client) -> Result<String, ClusterError> {
    Ok(client.apiserver_version().await?.git_version)
}
