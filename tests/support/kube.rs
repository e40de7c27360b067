//! The real kube-apiserver started by `scripts/kube-up.sh` (the README's test command
//! starts it; its admin kubeconfig path arrives in `ODORBOT_KUBECONFIG`).

use std::path::PathBuf;

pub fn kubeconfig() -> PathBuf {
    let path = std::env::var("ODORBOT_KUBECONFIG")
        .unwrap_or_else(|_| "/tmp/odorbot-kube/kubeconfig".to_owned());
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "no kubeconfig at {}: start the API server with scripts/kube-up.sh (scripts/test.sh does)",
        path.display()
    );
    path
}
