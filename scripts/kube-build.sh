#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubelet from Debian
# bookworm's `kubernetes` source package (no Kubernetes release can be downloaded here), and the
# pause binary of the pod sandbox image from the same tree, statically; caches them outside the
# repository. A cache holding only some of them (an older version of this script built two) gets
# the missing ones built. Installs the node's runtime from Debian too (containerd, runc, the CNI
# plugins). Prints the directory holding the binaries on stdout; everything else goes to stderr.
set -euo pipefail

VERSION=1.20.5+really1.20.2-1.1+deb12u1 # bookworm's source version; also the cache key
ROOT=${ODORBOT_CACHE:-$HOME/.cache/odorbot}/kubernetes-$VERSION
BIN=$ROOT/bin
TARGETS=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
have_all() {
  local b
  for b in "${TARGETS[@]}" pause; do [[ -x $BIN/$b ]] || return 1; done
  hash etcd openssl curl containerd ctr /usr/sbin/runc gcc 2>/dev/null && [[ -x /usr/lib/cni/bridge ]]
}
if have_all; then
  echo "$BIN"
  exit 0
fi
exec 3>&1 1>&2 # keep stdout for the result only

# Toolchain and runtime pieces from Debian.
pkgs=(golang-go golang-github-modern-go-reflect2-dev etcd-server etcd-client rsync make openssl curl ca-certificates
  gcc libc6-dev containerd runc containernetworking-plugins iproute2 util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  # etcd-server's maintainer scripts would start a daemon on :2379; forbid service starts while
  # installing (the tests run their own etcd). A policy-rc.d already present is left as it is.
  policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" ||
    { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
  [[ -z $policy ]] || rm -f "$policy"
  # Under systemd the units would still come up (and at every boot): stop and disable them.
  if [[ -d /run/systemd/system ]]; then systemctl disable --now etcd.service containerd.service || true; fi
fi

# Fetch the source through a private apt configuration, leaving /etc/apt and the system's lists alone.
APT=$ROOT/apt
mkdir -p "$APT"/{lists/partial,cache/archives/partial,parts} "$ROOT/dl"
# The source comes from the Debian mirror this machine already uses for bookworm's binaries.
mirror=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v -- '-security' | head -n1)
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[[ -n $mirror ]] || { echo "kube-build: no bookworm mirror in the apt configuration" >&2; exit 1; }
echo "deb-src $mirror bookworm main" >"$APT/sources.list"
aptopts=(-o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts="$APT/parts"
  -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache" -o APT::Sandbox::User=root) # _apt can't write here
orig=$ROOT/dl/kubernetes_${VERSION%%-*}.orig.tar.gz
if [[ ! -s $orig ]]; then
  apt-get "${aptopts[@]}" update
  (cd "$ROOT/dl" && apt-get "${aptopts[@]}" source --download-only "kubernetes=$VERSION")
fi

# Kubernetes 1.20 only builds in GOPATH mode, so the tree lives at $GOPATH/src/k8s.io/kubernetes.
export GOPATH=$ROOT/gopath GOCACHE=$ROOT/gocache GO111MODULE=off GOPROXY=off CGO_ENABLED=0
SRC=$GOPATH/src/k8s.io/kubernetes
if [[ ! -f $SRC/.odorbot-unpacked ]]; then
  rm -rf "$SRC" && mkdir -p "$SRC"
  tar -xzf "$orig" -C "$SRC" --strip-components=1
  # reflect2 1.0.1 makes the apiserver panic under Go >= 1.18 on POSTs (json-iterator nil
  # pointer); swap in 1.0.2. Old files go first: 1.0.1's go_above_17.go etc. clash with 1.0.2.
  r2=$SRC/vendor/github.com/modern-go/reflect2
  rm -f "$r2"/*.go "$r2"/*.s
  find /usr/share/gocode/src/github.com/modern-go/reflect2 -maxdepth 1 \( -name '*.go' -o -name '*.s' \) \
    ! -name '*_test.go' -exec cp {} "$r2"/ \;
  touch "$SRC/.odorbot-unpacked"
fi

mkdir -p "$BIN"
build=()
for b in "${TARGETS[@]}"; do [[ -x $BIN/$b ]] || build+=("cmd/$b"); done
if ((${#build[@]})); then
  make -C "$SRC" WHAT="${build[*]}"
  for b in "${build[@]#cmd/}"; do
    install -m 0755 "$SRC/_output/bin/$b" "$BIN/$b.tmp" && mv "$BIN/$b.tmp" "$BIN/$b"
  done
fi
# The pod sandbox's process: the tree's own pause.c, static so the image needs nothing else.
if [[ ! -x $BIN/pause ]]; then
  gcc -Os -static -DVERSION=odorbot -o "$BIN/pause.tmp" "$SRC/build/pause/linux/pause.c" && mv "$BIN/pause.tmp" "$BIN/pause"
fi
echo "$BIN" >&3
