#!/usr/bin/env bash
# Runs every check and test of odorbot, starting what the tests need first. This is the
# README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services-up.sh
export ODORBOT_KUBECONFIG=${ODORBOT_KUBE_DIR:-/tmp/odorbot-kube}/kubeconfig

# The deployment tests render manifests/ with `kubectl kustomize` (Debian's kubectl is in
# kubernetes-client) and check the alerts with promtool (in prometheus, which
# services-up.sh installs for the probe tests).
if ! command -v kubectl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends kubernetes-client \
    || { apt-get update && apt-get install -y --no-install-recommends kubernetes-client; }
fi
# The container image the container tests run (the suite's one optimised build); installs
# podman and buildah when missing.
scripts/image.sh

cargo fmt --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
