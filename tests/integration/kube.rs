//! kube-rs against the real kube-apiserver.

use odorbot::cluster;
use odorbot::config::KubernetesConfig;

use crate::support::kube::kubeconfig;

#[tokio::test]
async fn kube_rs_reads_the_real_api_servers_version() {
    let config = KubernetesConfig::new("odordiff".parse().unwrap(), Some(kubeconfig()));
    let client = cluster::connect(&config).await.unwrap();
    let version = cluster::server_version(&client).await.unwrap();
    assert!(version.starts_with("v1.20"), "{version}");
}
