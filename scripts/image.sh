#!/usr/bin/env bash
# Builds odorbot's container image, ghcr.io/odordiff/odorbot:<Cargo.toml version>, with
# podman (installed from Debian's packages when missing), buildah or docker.
#
#   scripts/image.sh            binary built here (Cargo profile `dist`), image assembled FROM scratch
#   scripts/image.sh --containerfile
#                               the multi-stage Containerfile (needs a registry for the
#                               Rust builder image; --build-arg BUILDER=… picks another)
#
# Environment: IMAGE (the tag), SOURCE (the repository URL for the OCI label),
# IMAGE_ARCHIVE=FILE also saves a docker-archive tar (e.g. for `ctr images import`),
# CARGO_TARGET_DIR as for cargo. Prints the image's size, user and layers at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
image=${IMAGE:-ghcr.io/odordiff/odorbot:$version}
source=${SOURCE:-https://github.com/odordiff/odorbot}
mode=host
case "${1:-}" in
  --containerfile) mode=containerfile ;;
  "") ;;
  *) echo "usage: $0 [--containerfile]" >&2; exit 2 ;;
esac

# The container tool: podman (with runc and cgroupfs, which work on hosts where crun
# and systemd cgroups do not), else buildah, else docker, but only a docker whose daemon
# answers: a docker client alone (as on these machines) cannot build anything.
docker_works() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }
if ! command -v podman >/dev/null && ! command -v buildah >/dev/null && ! docker_works; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends podman buildah \
      || { apt-get update && apt-get install -y --no-install-recommends podman buildah; }
  else
    echo "image.sh: no podman, buildah or docker; install one of them" >&2
    exit 1
  fi
fi
if command -v podman >/dev/null; then
  tool=(podman)
  [ -x /usr/sbin/runc ] && tool+=(--runtime /usr/sbin/runc)
  tool+=(--cgroup-manager=cgroupfs)
  # No intermediate images: the final stage is a COPY and metadata.
  build=("${tool[@]}" build --layers=false)
elif command -v buildah >/dev/null; then
  tool=(buildah)
  build=(buildah bud)
else
  tool=(docker)
  build=(docker build)
fi

# The image this tag named before, removed below once nothing refers to it.
previous=$("${tool[@]}" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)

labels=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source")

if [ "$mode" = containerfile ]; then
  "${build[@]}" -f Containerfile -t "$image" "${labels[@]}" .
else
  target=${CARGO_TARGET_DIR:-target}
  nice cargo build --profile dist --locked --bin odorbot
  context=$(mktemp -d)
  trap 'rm -rf "$context"' EXIT
  sh scripts/image-rootfs.sh "$target/dist/odorbot" "$context/rootfs"
  # The Containerfile's final stage, with the host-built root filesystem as its input.
  sed -n '/^FROM scratch/,$p' Containerfile \
    | sed 's#^COPY --from=build /rootfs/ /#COPY rootfs/ /#' >"$context/Containerfile"
  # --no-cache: only a COPY and metadata, and a cached step would keep an old revision label.
  "${build[@]}" --no-cache -f "$context/Containerfile" -t "$image" "${labels[@]}" "$context"
fi

if [ -n "${IMAGE_ARCHIVE:-}" ]; then
  case "${tool[0]}" in
    podman) "${tool[@]}" save --format docker-archive -o "$IMAGE_ARCHIVE" "$image" ;;
    buildah) buildah push "$image" "docker-archive:$IMAGE_ARCHIVE:$image" ;;
    docker) docker save -o "$IMAGE_ARCHIVE" "$image" ;;
  esac
fi

current=$("${tool[@]}" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  "${tool[@]}" rmi "$previous" >/dev/null 2>&1 || true
fi

echo "built $image (revision $revision)"
case "${tool[0]}" in
  podman | docker)
    "${tool[@]}" image inspect "$image" --format \
      'size {{.Size}} bytes; user {{.Config.User}}; layers {{len .RootFS.Layers}}; entrypoint {{.Config.Entrypoint}}'
    ;;
esac
