#!/usr/bin/env bash
# Prints what the test node may change on this host, one fact a line, so that two snapshots
# (before kube-up.sh, after kube-down.sh) can be compared: processes and mounts of the state
# dir, network namespaces and links, iptables rules, the sysctls the kubelet sets, the
# kubelet's cgroups and the directories Kubernetes 1.20 always uses.
#   host-state.sh [state dir]   (default $ODORBOT_KUBE_DIR or /tmp/odorbot-kube)
set -uo pipefail
DIR=${1:-${ODORBOT_KUBE_DIR:-/tmp/odorbot-kube}}

for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
  args=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
  cwd=$(readlink "$p/cwd" 2>/dev/null)
  if [[ $args == *"$DIR/"* || $cwd == "$DIR" || $cwd == "$DIR/"* ]] && [[ $args != *host-state.sh* ]]; then
    echo "process ${args:0:120}"
  fi
done
awk -v d="$DIR/" 'index($5, d) == 1 || $9 == "nsfs" || index($5, "/run/netns") == 1 {print "mount " $5 " " $9}' /proc/self/mountinfo | sort
ip -o link show 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print "link " $2}' | sort
if command -v iptables-save >/dev/null; then
  for t in iptables-save ip6tables-save; do
    "$t" 2>/dev/null | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//' | sed "s/^/$t /"
  done
fi
for k in vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward \
  net.ipv4.conf.all.forwarding net.ipv6.conf.all.forwarding; do
  echo "sysctl $k=$(sysctl -n "$k" 2>/dev/null)"
done
for d in /sys/fs/cgroup/*/kubepods /var/log/pods /var/log/containers /run/containerd /var/lib/kubelet; do
  [[ -e $d ]] && echo "exists $d"
done
exit 0
