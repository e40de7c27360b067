#!/usr/bin/env bash
# Runs every check and test of odorbot, starting what the tests need first. This is the
# README's test command; .ci/run calls it.
#
# A test cluster this command starts (scripts/kube-up.sh: control plane and a real node) is
# stopped again at the end (scripts/kube-down.sh), and the host is then compared with a
# snapshot taken before the start (scripts/host-state.sh): leftover processes, mounts, network
# namespaces, links, iptables rules, sysctls or directories fail the run. A cluster that was
# already running is left running and the host check is skipped; so is the stop with
# ODORBOT_KUBE_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

export ODORBOT_KUBE_DIR=${ODORBOT_KUBE_DIR:-/tmp/odorbot-kube}
running() { [[ -s $ODORBOT_KUBE_DIR/kube-apiserver.pid ]] && kill -0 "$(<"$ODORBOT_KUBE_DIR/kube-apiserver.pid")" 2>/dev/null; }
own_cluster=0
if ! running && [[ ${ODORBOT_KUBE_KEEP:-0} != 1 ]]; then
  own_cluster=1
  # A cluster that died (or a run that was killed) leaves its node behind: mounts, the bridge,
  # cgroups, changed sysctls. Put the host back first, so the snapshot is of the host itself
  # and the check at the end compares like with like.
  if [[ -d $ODORBOT_KUBE_DIR ]]; then
    echo "test: a stopped test cluster's state is in $ODORBOT_KUBE_DIR; cleaning up after it first" >&2
    scripts/kube-down.sh || true
  fi
  before=$(mktemp)
  scripts/host-state.sh >"$before"
fi
finish() {
  local rc=$?
  if ((own_cluster)); then
    scripts/kube-down.sh || rc=1
    if diff <(cat "$before") <(scripts/host-state.sh) >"$before.diff"; then
      echo "host check: the host is as found (no leftover processes, mounts, namespaces, links, iptables rules, sysctls or directories)" >&2
    else
      echo "host check: FAILED, the host differs from before the test cluster started (< before, > after):" >&2
      cat "$before.diff" >&2
      rc=1
    fi
    rm -f "$before" "$before.diff"
  fi
  exit "$rc"
}
trap finish EXIT

scripts/services-up.sh
export ODORBOT_KUBECONFIG=$ODORBOT_KUBE_DIR/kubeconfig

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
rustfmt --edition 2024 --check tests/images/standin.rs
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
