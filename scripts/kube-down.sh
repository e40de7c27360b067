#!/usr/bin/env bash
# Stops what kube-up.sh and node-up.sh started (by their pid files), removes the node's
# containers, mounts, network namespaces, bridge, cgroups and log directories, restores the
# sysctls the kubelet changed, and drops the etcd data; keeps the credentials in the state dir and
# the binaries in the cache. Prints what it could not undo and exits 1 then.
set -euo pipefail

DIR=${ODORBOT_KUBE_DIR:-/tmp/odorbot-kube}
[[ -d $DIR ]] || exit 0
cd "$DIR"
N=$DIR/node
SOCK=$DIR/containerd/containerd.sock
problems=0

stop() { # name: by its pid file, only if the pid still runs our binary (pids get reused)
  local name=$1 pid
  [[ -s $name.pid ]] || return 0
  pid=$(<"$name.pid")
  if [[ $(ps -o args= -p "$pid" 2>/dev/null) == *"$name "* ]]; then
    kill "$pid"
    for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$name.pid"
}

# The node first: no kubelet restarting containers while they are removed.
stop kubelet
stop kube-scheduler
netns=() # the sandboxes' network namespaces, from containerd's own records
if [[ -s containerd.pid ]] && ctr --address "$SOCK" version >/dev/null 2>&1; then
  ctr=(ctr --address "$SOCK" -n k8s.io)
  for id in $("${ctr[@]}" containers ls -q 2>/dev/null); do
    while read -r ns; do netns+=("/run/netns/${ns##*/}"); done < <("${ctr[@]}" containers info "$id" 2>/dev/null |
      grep -o '"/var/run/netns/cni-[0-9a-f-]*"\|"/run/netns/cni-[0-9a-f-]*"' | tr -d '"' | sort -u)
  done
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do "${ctr[@]}" tasks kill -a -s SIGKILL "$id" 2>/dev/null || true; done
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    for ((i = 0; i < 40; i++)); do "${ctr[@]}" tasks delete "$id" >/dev/null 2>&1 && break; sleep 0.25; done
  done
  for id in $("${ctr[@]}" containers ls -q 2>/dev/null); do "${ctr[@]}" containers delete "$id" >/dev/null 2>&1 || true; done
fi
stop containerd
# Shims outlive containerd; ours are the ones naming our socket.
for p in /proc/[0-9]*; do
  args=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
  [[ $args == *containerd-shim*"$SOCK"* ]] && kill -9 "${p#/proc/}" 2>/dev/null || true
done

before() { [[ -s $N/before ]] && grep -qxF "$1" "$N/before"; }
mounted() { awk -v m="$1" '$5 == m {found = 1} END {exit !found}' /proc/self/mountinfo; }
unmount() { # every mount stacked on the path (a netns can be mounted twice)
  for ((i = 0; i < 10; i++)); do
    mounted "$1" || return 0
    umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
  done
}
# Network namespaces the CRI made (the sandboxes' veths go with them); others (podman's, say)
# are left alone.
for ns in $(printf '%s\n' "${netns[@]}" | sort -u); do
  [[ -e $ns ]] || continue
  unmount "$ns"
  rm -f "$ns" 2>/dev/null || { echo "kube-down: could not remove $ns" >&2; problems=1; }
done
# The /run/netns bind node-up.sh made, once nothing is mounted in it any more.
if [[ -s $N/before ]] && grep -qxF "made /run/netns" "$N/before" &&
  ! awk 'index($5, "/run/netns/") == 1 {found = 1} END {exit !found}' /proc/self/mountinfo; then
  unmount /run/netns
fi
# Every mount under the state dir (the kubelet's bind of its root dir onto itself, secret and
# token volumes, container root filesystems), deepest first.
mounts() { awk -v d="$DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r; }
for m in $(mounts); do unmount "$m"; done
if [[ -n $(mounts) ]]; then
  echo "kube-down: still mounted: $(mounts | tr '\n' ' ')" >&2
  problems=1
fi

if [[ -s $N/before ]]; then
  before "exists bridge" || ip link delete cni0 2>/dev/null || true
  for d in /sys/fs/cgroup/*/kubepods; do
    [[ -e $d ]] && ! before "exists $d" || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    if [[ -e $d ]]; then echo "kube-down: could not remove $d" >&2; problems=1; fi
  done
  before "exists /run/netns" || rmdir /run/netns 2>/dev/null || true
  # /var/lib/kubelet: 1.20 keeps its device-plugin socket there whatever the root dir.
  for d in /var/log/pods /var/log/containers /run/containerd /var/lib/kubelet; do
    if [[ -e $d ]] && ! before "exists $d"; then rm -rf "$d"; fi
  done
  # Sysctls the kubelet set (protectKernelDefaults: false), back to what they were.
  while read -r kind key value; do
    if [[ $kind == sysctl ]]; then sysctl -q -w "$key=$value"; fi
  done <"$N/before"
  rm -f "$N/before"
fi
if [[ -z $(mounts) ]]; then
  rm -rf "$DIR/containerd" "$DIR/kubelet" "$N"
fi

stop kube-controller-manager
stop kube-apiserver
stop etcd
if [[ -L etcd-data ]]; then
  rm -rf "$(readlink etcd-data)" etcd-data
fi
exit "$problems"
