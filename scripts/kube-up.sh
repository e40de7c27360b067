#!/usr/bin/env bash
# Starts a throwaway one-node Kubernetes on loopback for odorbot's tests, detached, with state in
# $ODORBOT_KUBE_DIR: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and a real node
# (scripts/node-up.sh: containerd and a kubelet, the test images imported) unless
# ODORBOT_KUBE_NODE=0. Writes $DIR/kubeconfig and $DIR/env. Does nothing if it is already up
# (with its node Ready). Every fresh start gets an empty etcd. scripts/kube-down.sh undoes it all.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${ODORBOT_KUBE_DIR:-/tmp/odorbot-kube}
PORT=${ODORBOT_KUBE_PORT:-16443}
ETCD_PORT=${ODORBOT_ETCD_PORT:-23790} # not 2379/2380, so a system etcd cannot clash
URL=https://127.0.0.1:$PORT
mkdir -p "$DIR" && cd "$DIR"

WITH_NODE=${ODORBOT_KUBE_NODE:-1}
# The node's name must resolve to 127.0.0.1 (the apiserver reaches the kubelet by it).
NODE=$(hostname)
[[ $(getent ahostsv4 "$NODE" | awk 'NR == 1 {print $1}') == 127.0.0.1 ]] || NODE=localhost

api() { curl -sf --max-time 2 --cacert ca.crt -H "Authorization: Bearer $(<admin.token)" "$URL$1"; }
ready() { [[ -s admin.token ]] && [[ $(api /readyz) == ok ]]; }
node_ready() { api "/api/v1/nodes/$NODE" | tr -d ' \n' | grep -q '"type":"Ready","status":"True"'; }
if ready; then
  if [[ $WITH_NODE != 1 ]] || node_ready; then
    echo "kube: already up at $URL; source $DIR/env" >&2
    exit 0
  fi
  echo "kube: the control plane at $URL runs without a Ready node: restarting it with one" >&2
fi
BIN=$("$HERE/kube-build.sh") # builds (once) or just prints the cached binaries' directory
"$HERE/kube-down.sh"         # clear leftovers of an earlier, broken start

# Credentials are made once per state dir (each when missing), so tokens stay stable across restarts.
if [[ ! -s ca.crt ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=odorbot-test-ca \
    -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.crt 2>/dev/null
fi
cert() { # name subject extendedKeyUsage [subjectAltName]: a key and a certificate signed by the CA
  [[ -s $1.crt ]] && return
  openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  { echo 'basicConstraints=CA:FALSE' 'keyUsage=digitalSignature,keyEncipherment' "extendedKeyUsage=$3"
    [[ -z ${4:-} ]] || echo "subjectAltName=$4"; } | tr ' ' '\n' >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
    -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr"
}
cert server /CN=kube-apiserver serverAuth IP:127.0.0.1,DNS:localhost
# The apiserver's identity towards the kubelet (logs, exec), and the kubelet's two certificates.
cert kubelet-client /O=system:masters/CN=kube-apiserver-kubelet-client clientAuth
cert "node-$NODE" "/O=system:nodes/CN=system:node:$NODE" clientAuth
cert "kubelet-$NODE" "/CN=$NODE" serverAuth "DNS:$NODE,DNS:localhost,IP:127.0.0.1"
if [[ ! -s sa.key ]]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub
fi
for who in admin test controller-manager scheduler; do [[ -s $who.token ]] || openssl rand -hex 24 >"$who.token"; done
# token,user,uid,"groups": an admin, an unprivileged identity for RBAC tests, the KCM, the scheduler.
{ echo "$(<admin.token),odorbot-admin,odorbot-admin,system:masters"
  echo "$(<test.token),odorbot-test,odorbot-test"
  echo "$(<controller-manager.token),system:kube-controller-manager,kcm,system:masters"
  echo "$(<scheduler.token),system:kube-scheduler,kube-scheduler"; } >tokens.csv
chmod 600 ./*.key ./*.token tokens.csv

kubeconfig() { # user token file
  cat >"$3" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: odorbot
  cluster:
    server: $URL
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $1
  user:
    token: $2
contexts:
- name: odorbot
  context:
    cluster: odorbot
    user: $1
current-context: odorbot
EOF
  chmod 600 "$3"
}
kubeconfig odorbot-admin "$(<admin.token)" kubeconfig
kubeconfig system:kube-controller-manager "$(<controller-manager.token)" controller-manager.kubeconfig
kubeconfig system:kube-scheduler "$(<scheduler.token)" scheduler.kubeconfig

start() { # name command... ; detached, own session, log and pid file in $DIR
  local name=$1; shift
  setsid "$@" </dev/null >"$name.log" 2>&1 &
  echo $! >"$name.pid"
}
wait_for() { # what seconds command...
  local what=$1 t=$2; shift 2
  for ((i = 0; i < t * 2; i++)); do
    "$@" && return 0
    kill -0 "$(<"$what.pid")" 2>/dev/null || break # it died: no point in waiting
    sleep 0.5
  done
  echo "kube: $what not ready (waited up to ${t}s); logs in $DIR" >&2
  tail -n 20 "$DIR"/*.log >&2
  exit 1
}

# A fresh, fsync-cheap data dir (tmpfs when there is one) on every start: tests get a clean cluster.
ln -sfn "$(mktemp -d -p "$([[ -w /dev/shm ]] && echo /dev/shm || echo "$DIR")" odorbot-etcd.XXXXXX)" etcd-data
start etcd etcd --name odorbot --data-dir "$DIR/etcd-data/" --logger=zap \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --initial-cluster "odorbot=http://127.0.0.1:$((ETCD_PORT + 10))"
wait_for etcd 20 curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$ETCD_PORT/health"

start kube-apiserver "$BIN/kube-apiserver" --bind-address=127.0.0.1 --secure-port="$PORT" \
  --advertise-address=127.0.0.1 --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --tls-cert-file=server.crt --tls-private-key-file=server.key --client-ca-file=ca.crt \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --token-auth-file=tokens.csv \
  --kubelet-client-certificate=kubelet-client.crt --kubelet-client-key=kubelet-client.key \
  --kubelet-certificate-authority=ca.crt --kubelet-preferred-address-types=Hostname,InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file=sa.pub --service-account-signing-key-file=sa.key \
  --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true \
  --enable-priority-and-fairness=false --endpoint-reconciler-type=none
wait_for kube-apiserver 60 ready

# No cloud here: the controllers that need one stay off. The node lifecycle controller lifts the
# not-ready taint the kubelet registers with. The service-account key
# and root CA let the token controller make ServiceAccount secrets, which pod admission needs.
start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig=controller-manager.kubeconfig \
  --leader-elect=false --port=0 --secure-port=0 --use-service-account-credentials=false \
  --controllers='*,-nodeipam,-cloud-node-lifecycle,-route,-service,-attachdetach' \
  --service-account-private-key-file=sa.key --root-ca-file=ca.crt --kube-api-qps=100 --kube-api-burst=200
sa_ready() { curl -sf --max-time 2 --cacert ca.crt -H "Authorization: Bearer $(<admin.token)" -o /dev/null \
  "$URL/api/v1/namespaces/default/serviceaccounts/default"; }
wait_for kube-controller-manager 60 sa_ready

start kube-scheduler "$BIN/kube-scheduler" --kubeconfig=scheduler.kubeconfig --leader-elect=false \
  --port=0 --secure-port=0
# It has no port to ask; pods getting a node (below, and in every test) show it works.
sleep 0.5 && kill -0 "$(<kube-scheduler.pid)" 2>/dev/null ||
  { echo "kube: kube-scheduler exited; logs in $DIR" >&2; tail -n 20 kube-scheduler.log >&2; exit 1; }

if [[ $WITH_NODE == 1 ]]; then
  ODORBOT_KUBE_URL=$URL ODORBOT_KUBE_BIN=$BIN ODORBOT_KUBE_NODE_NAME=$NODE "$HERE/node-up.sh"
  t0=$SECONDS
  wait_for kubelet 120 node_ready
  echo "kube: node $NODE Ready $((SECONDS - t0))s after the kubelet started" >&2
fi

{ printf 'export %s=%q\n' KUBECONFIG "$DIR/kubeconfig" ODORBOT_KUBE_URL "$URL" \
    ODORBOT_KUBE_TOKEN "$(<admin.token)" ODORBOT_KUBE_TEST_TOKEN "$(<test.token)" \
    ODORBOT_KUBE_CA "$DIR/ca.crt" ODORBOT_KUBE_NODE_NAME "$([[ $WITH_NODE == 1 ]] && echo "$NODE")"; } >"$DIR/env"
echo "kube: up at $URL; source $DIR/env" >&2
