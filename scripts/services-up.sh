#!/usr/bin/env bash
# Makes sure the servers odorbot's tests use are running on loopback: PostgreSQL (trust auth on
# 127.0.0.1:5432), the probe tests' servers (scripts/probe-servers-up.sh) and the Kubernetes
# control plane (scripts/kube-up.sh). Installs what is missing
# from Debian's packages. Idempotent: running services are left alone.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "$@" || { apt-get update && apt-get install -y --no-install-recommends "$@"; }
}

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    apt_install postgresql
    # A package install authenticates loopback by password; the tests connect as postgres
    # without one, as on the machines this project runs on.
    hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 40); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p 5432
fi

"$HERE/probe-servers-up.sh"
"$HERE/kube-up.sh"
