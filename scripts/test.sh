#!/usr/bin/env bash
# Runs every check and test of odorbot, starting what the tests need first. This is the
# README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services-up.sh
export ODORBOT_KUBECONFIG=${ODORBOT_KUBE_DIR:-/tmp/odorbot-kube}/kubeconfig

cargo fmt --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
