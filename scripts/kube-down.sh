#!/usr/bin/env bash
# Stops what kube-up.sh started (by its pid files) and drops the etcd data; keeps the credentials
# in the state dir and the binaries in the cache.
set -euo pipefail

DIR=${ODORBOT_KUBE_DIR:-/tmp/odorbot-kube}
[[ -d $DIR ]] || exit 0
cd "$DIR"

for name in kube-controller-manager kube-apiserver etcd; do # dependents first
  [[ -s $name.pid ]] || continue
  pid=$(<"$name.pid")
  # Only signal the pid if it still runs our binary (pids get reused).
  if [[ $(ps -o args= -p "$pid" 2>/dev/null) == *"$name "* ]]; then
    kill "$pid"
    for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$name.pid"
done

if [[ -L etcd-data ]]; then
  rm -rf "$(readlink etcd-data)" etcd-data
fi
