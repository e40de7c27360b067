#!/usr/bin/env bash
# Gives the test cluster of scripts/kube-up.sh (which calls this) a real node: containerd with its
# own root, state and socket under $ODORBOT_KUBE_DIR, a CNI bridge that leaves the host's
# forwarding and iptables alone, the test images (scripts/images-build.sh), and a kubelet on
# loopback. Records what it is about to change first (sysctls the kubelet sets, directories 1.20
# always uses), so scripts/kube-down.sh can put the host back as it was.
# Environment (from kube-up.sh): ODORBOT_KUBE_DIR, ODORBOT_KUBE_URL, ODORBOT_KUBE_BIN,
# ODORBOT_KUBE_NODE_NAME; ODORBOT_KUBELET_PORT (10250) and ODORBOT_KUBELET_HEALTHZ_PORT (10248).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${ODORBOT_KUBE_DIR:-/tmp/odorbot-kube}
URL=$ODORBOT_KUBE_URL BIN=$ODORBOT_KUBE_BIN NODE=$ODORBOT_KUBE_NODE_NAME
KUBELET_PORT=${ODORBOT_KUBELET_PORT:-10250}
HEALTHZ_PORT=${ODORBOT_KUBELET_HEALTHZ_PORT:-10248}
BRIDGE=cni0 SUBNET=10.244.0 # the bridge holds .1; pods get the rest
N=$DIR/node
cd "$DIR"

# A kubelet on this host already (another state dir's)? Two would fight over the host-global paths.
for pidfile in /tmp/odorbot-kube*/kubelet.pid; do
  [[ -s $pidfile && $pidfile != "$DIR/kubelet.pid" ]] || continue
  if [[ $(ps -o args= -p "$(<"$pidfile")" 2>/dev/null) == *kubelet* ]]; then
    echo "node: another test node runs ($pidfile); one node per host" >&2
    exit 1
  fi
done

mkdir -p "$N"/{cni/net.d,cni/ipam,seccomp,volume-plugins} "$DIR"/containerd "$DIR"/kubelet
# What the host looked like before the first start (kept over restarts until kube-down.sh).
if [[ ! -s $N/before ]]; then
  {
    for k in vm.overcommit_memory kernel.panic kernel.panic_on_oops; do echo "sysctl $k $(sysctl -n "$k")"; done
    for d in /var/log/pods /var/log/containers /run/containerd /run/netns /var/lib/kubelet; do [[ -e $d ]] && echo "exists $d"; done
    for d in /sys/fs/cgroup/*/kubepods; do [[ -e $d ]] && echo "exists $d"; done
    for ns in /run/netns/cni-*; do [[ -e $ns ]] && echo "netns $ns"; done
    ip link show "$BRIDGE" >/dev/null 2>&1 && echo "exists bridge"
    true
  } >"$N/before.tmp"
  mv "$N/before.tmp" "$N/before"
fi

# Network namespaces go in a shared bind mount of /run/netns, as iproute2 makes it: made first,
# it keeps every later tool's namespaces (podman's, say) in the same place instead of a bind
# mount on top that would hide ours.
if ! awk '$5 == "/run/netns" {found = 1} END {exit !found}' /proc/self/mountinfo; then
  mkdir -p /run/netns
  mount --bind /run/netns /run/netns
  mount --make-shared /run/netns
  echo "made /run/netns" >>"$N/before"
fi

# The bridge is ours, with the gateway address on the host side, so pod IPs are reachable from
# here; the plugin's isGateway/ipMasq stay off: no forwarding, no NAT rules, no default route.
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  ip addr add "$SUBNET.1/24" dev "$BRIDGE"
fi
ip link set "$BRIDGE" up
cat >"$N/cni/net.d/10-odorbot.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "odorbot",
 "plugins": [{"type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false,
              "hairpinMode": false, "promiscMode": false,
              "ipam": {"type": "host-local", "dataDir": "$N/cni/ipam",
                       "ranges": [[{"subnet": "$SUBNET.0/24", "gateway": "$SUBNET.1"}]]}}]}
EOF

SOCK=$DIR/containerd/containerd.sock
cat >"$N/containerd.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
# Plugins this node does not use, some with host-global paths of their own.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.gcr.io/pause:3.2"
  # Root here lacks CAP_SYS_RESOURCE: the negative oom_score_adj of sandboxes must be clamped.
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$N/cni/net.d"
EOF

start() { # name command... ; detached, own session, log and pid file in $DIR
  local name=$1; shift
  setsid "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}
wait_for() { # what seconds command...
  local what=$1 t=$2; shift 2
  for ((i = 0; i < t * 4; i++)); do
    "$@" && return 0
    kill -0 "$(<"$DIR/$what.pid")" 2>/dev/null || break
    sleep 0.25
  done
  echo "node: $what not ready (waited up to ${t}s); log $DIR/$what.log" >&2
  tail -n 20 "$DIR/$what.log" >&2
  exit 1
}

# Image pulls have nowhere to go: every image is imported below, and anything else fails at a
# closed loopback port instead of reaching a registry.
start containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
  containerd --config "$N/containerd.toml"
wait_for containerd 20 ctr --address "$SOCK" version >/dev/null
"$HERE/images-build.sh" "$SOCK" "$BIN/pause"

kubeconfig_node() {
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: odorbot
  cluster: {server: "$URL", certificate-authority: "$DIR/ca.crt"}
users:
- name: node
  user: {client-certificate: "$DIR/node-$NODE.crt", client-key: "$DIR/node-$NODE.key"}
contexts:
- name: odorbot
  context: {cluster: odorbot, user: node}
current-context: odorbot
EOF
}
kubeconfig_node >"$N/kubelet.kubeconfig"
cat >"$N/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $HEALTHZ_PORT
tlsCertFile: $DIR/kubelet-$NODE.crt
tlsPrivateKeyFile: $DIR/kubelet-$NODE.key
# Only holders of a certificate from the test CA (the apiserver) get in.
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $DIR/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
# Leave the host as found: no iptables chains, no DNS config from the host.
makeIPTablesUtilChains: false
protectKernelDefaults: false
resolvConf: ""
failSwapOn: false
# Bounds how long a deleted pod stays Terminating on 1.20 (it finalises at the next sync).
syncFrequency: 10s
serializeImagePulls: false
# Many tests run at once: status updates and events must not queue behind the default 5 qps.
kubeAPIQPS: 50
kubeAPIBurst: 100
# The test images exist only in this containerd: never collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
EOF

# AWS_EC2_METADATA_DISABLED: without it the in-tree ECR credential provider probes the cloud
# metadata address at start, traffic that must never leave this machine.
start kubelet env AWS_EC2_METADATA_DISABLED=true "$BIN/kubelet" \
  --config="$N/kubelet.yaml" --kubeconfig="$N/kubelet.kubeconfig" --hostname-override="$NODE" \
  --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" \
  --root-dir="$DIR/kubelet" --cert-dir="$N/pki" --seccomp-profile-root="$N/seccomp" \
  --volume-plugin-dir="$N/volume-plugins" --v=1
wait_for kubelet 30 curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$HEALTHZ_PORT/healthz"
echo "node: kubelet for $NODE up; containerd at $SOCK" >&2
