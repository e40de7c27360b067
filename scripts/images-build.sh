#!/usr/bin/env bash
# Makes the test node's images without a registry and imports them into its containerd:
#   images-build.sh <containerd socket> <pause binary>
# One docker-archive tar holds every image: the pod sandbox (`k8s.gcr.io/pause:3.2`, the static
# pause binary) and OdorDiff-2's stand-ins, all one layer with the static binary of
# tests/images/standin.rs, each image's config choosing its role and behaviour with env vars. The
# names are the ones the seeded workloads use, so pods run them with the default pull policy and
# nothing is ever pulled.
set -euo pipefail
SOCK=$1 PAUSE=$2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

# The stand-in: one file, std only, so plain rustc builds it (no cargo, no shared target dir to
# wait for), linked statically against glibc (it needs no name service) with the host's
# toolchain. Cached by the source's hash.
src=$ROOT/tests/images/standin.rs
cache=${ODORBOT_CACHE:-$HOME/.cache/odorbot}/standin
STANDIN=$cache/odordiff-standin-$(sha256sum "$src" | cut -c1-16)
if [[ ! -x $STANDIN ]]; then
  mkdir -p "$cache"
  rustc --edition 2024 -C opt-level=s -C panic=abort -C strip=symbols -C target-feature=+crt-static \
    --target x86_64-unknown-linux-gnu -o "$STANDIN.tmp" "$src" >&2
  mv "$STANDIN.tmp" "$STANDIN"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

layer() { # name file-in-root source ; prints the layer's diff id (sha256 of the tar)
  mkdir -p "root-$1/tmp" && chmod 1777 "root-$1/tmp"
  install -m 0755 "$3" "root-$1/$2"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "root-$1" -cf "$1.tar" .
  local id
  id=$(sha256sum "$1.tar" | cut -d' ' -f1)
  mkdir -p "$id" && mv "$1.tar" "$id/layer.tar"
  echo "$id"
}
pause_layer=$(layer pause pause "$PAUSE")
standin_layer=$(layer standin odordiff "$STANDIN")

entries=()
image() { # layer entrypoint-json env-json tags...
  local id=$1 entrypoint=$2 envs=$3 config sum tags
  shift 3
  config=$(printf '{"architecture":"amd64","os":"linux","config":{"Env":%s,"Entrypoint":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"odorbot scripts/images-build.sh"}]}' \
    "$envs" "$entrypoint" "$id")
  sum=$(printf '%s' "$config" | sha256sum | cut -d' ' -f1)
  printf '%s' "$config" >"$sum.json"
  tags=$(printf '"%s",' "$@")
  entries+=("$(printf '{"Config":"%s.json","RepoTags":[%s],"Layers":["%s/layer.tar"]}' "$sum" "${tags%,}" "$id")")
}
std() { # role [VAR=value...] as a JSON env list
  local out='"PATH=/","ODORDIFF_ROLE='$1'"'
  shift
  for kv in "$@"; do out+=",\"$kv\""; done
  echo "[$out]"
}
run='["/odordiff"]'
image "$pause_layer" '["/pause"]' '["PATH=/"]' k8s.gcr.io/pause:3.2
for tag in 1.4.0 1.5.0 1.6.0 1.7.0; do
  image "$standin_layer" "$run" "$(std api ODORDIFF_VERSION=$tag)" "ghcr.io/odordiff/odordiff-api:$tag"
  image "$standin_layer" "$run" "$(std worker ODORDIFF_VERSION=$tag)" "ghcr.io/odordiff/odordiff-worker:$tag"
done
# Bad releases: one that crashes at start, one that never becomes ready, one that serves errors.
image "$standin_layer" "$run" "$(std api ODORDIFF_VERSION=1.6.1 ODORDIFF_FAIL=crash)" ghcr.io/odordiff/odordiff-api:1.6.1-crash
image "$standin_layer" "$run" "$(std api ODORDIFF_VERSION=1.6.2 ODORDIFF_FAIL=unready)" ghcr.io/odordiff/odordiff-api:1.6.2-unready
image "$standin_layer" "$run" "$(std api ODORDIFF_VERSION=1.6.3 ODORDIFF_FAIL=errors)" ghcr.io/odordiff/odordiff-api:1.6.3-errors
image "$standin_layer" "$run" "$(std smoke ODORDIFF_SMOKE=pass)" ghcr.io/odordiff/smoke-test:pass
image "$standin_layer" "$run" "$(std smoke ODORDIFF_SMOKE=fail)" ghcr.io/odordiff/smoke-test:fail
image "$standin_layer" "$run" "$(std job)" ghcr.io/odordiff/cache-warmer:1.2.0 \
  ghcr.io/odordiff/db-maintenance:3.1.0 docker.io/library/busybox:1.36
image "$standin_layer" "$run" "$(std idle)" docker.io/library/postgres:15 \
  docker.io/bitnami/pgbouncer:1.21.0 docker.io/library/redis:7

manifest=$(printf '%s,' "${entries[@]}")
printf '[%s]' "${manifest%,}" >manifest.json
configs=()
for f in *.json; do [[ $f == manifest.json ]] || configs+=("$f"); done
tar --owner=0 --group=0 --numeric-owner -cf images.tar manifest.json "${configs[@]}" ./*/layer.tar
ctr --address "$SOCK" -n k8s.io images import images.tar >&2
echo "images: ${#entries[@]} imported into $SOCK" >&2
