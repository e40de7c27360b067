#!/usr/bin/env bash
# Starts a throwaway Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) on
# loopback for odorbot's tests, detached, with state in $ODORBOT_KUBE_DIR. Writes $DIR/kubeconfig
# and $DIR/env. Does nothing if it is already up. Every fresh start gets an empty etcd.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${ODORBOT_KUBE_DIR:-/tmp/odorbot-kube}
PORT=${ODORBOT_KUBE_PORT:-16443}
ETCD_PORT=${ODORBOT_ETCD_PORT:-23790} # not 2379/2380, so a system etcd cannot clash
URL=https://127.0.0.1:$PORT
mkdir -p "$DIR" && cd "$DIR"

ready() { [[ -s admin.token ]] && [[ $(curl -sf --max-time 2 --cacert ca.crt -H "Authorization: Bearer $(<admin.token)" "$URL/readyz") == ok ]]; }
if ready; then
  echo "kube: already up at $URL; source $DIR/env" >&2
  exit 0
fi
BIN=$("$HERE/kube-build.sh") # builds (once) or just prints the cached binaries' directory
"$HERE/kube-down.sh"         # clear leftovers of an earlier, broken start

# Credentials are made once per state dir, so tokens stay stable across restarts.
if [[ ! -s tokens.csv ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=odorbot-test-ca \
    -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.crt 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout server.key -out server.csr 2>/dev/null
  printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
    'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >server.ext
  openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
    -days 3650 -extfile server.ext -out server.crt 2>/dev/null
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
  openssl pkey -in sa.key -pubout -out sa.pub
  for who in admin test controller-manager; do openssl rand -hex 24 >"$who.token"; done
  # token,user,uid,"groups": an admin, an unprivileged identity for RBAC tests, and the KCM.
  { echo "$(<admin.token),odorbot-admin,odorbot-admin,system:masters"
    echo "$(<test.token),odorbot-test,odorbot-test"
    echo "$(<controller-manager.token),system:kube-controller-manager,kcm,system:masters"; } >tokens.csv
  chmod 600 ./*.key ./*.token tokens.csv
fi

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
  --authorization-mode=RBAC --token-auth-file=tokens.csv \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file=sa.pub --service-account-signing-key-file=sa.key \
  --service-cluster-ip-range=10.96.0.0/16 --allow-privileged=true \
  --enable-priority-and-fairness=false --endpoint-reconciler-type=none
wait_for kube-apiserver 60 ready

# No cloud and no nodes here: the controllers that need them stay off. The service-account key
# and root CA let the token controller make ServiceAccount secrets, which pod admission needs.
start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig=controller-manager.kubeconfig \
  --leader-elect=false --port=0 --secure-port=0 --use-service-account-credentials=false \
  --controllers='*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-route,-service,-attachdetach' \
  --service-account-private-key-file=sa.key --root-ca-file=ca.crt
sa_ready() { curl -sf --max-time 2 --cacert ca.crt -H "Authorization: Bearer $(<admin.token)" -o /dev/null \
  "$URL/api/v1/namespaces/default/serviceaccounts/default"; }
wait_for kube-controller-manager 60 sa_ready

{ printf 'export %s=%q\n' KUBECONFIG "$DIR/kubeconfig" ODORBOT_KUBE_URL "$URL" \
    ODORBOT_KUBE_TOKEN "$(<admin.token)" ODORBOT_KUBE_TEST_TOKEN "$(<test.token)" \
    ODORBOT_KUBE_CA "$DIR/ca.crt"; } >"$DIR/env"
echo "kube: up at $URL; source $DIR/env" >&2
