#!/usr/bin/env bash
# Starts the servers the probe tests use, on loopback, with state in $ODORBOT_PROBES_DIR:
# a dedicated PostgreSQL instance (port 55432, pg_stat_statements preloaded, trust for
# `postgres`, a password for `app` so refused credentials can be shown) and PgBouncer in
# front of it (port 56432, admin console as `pgbouncer`), and a second Redis with TLS only
# (port 56379, a throwaway CA and server certificate made here with openssl, in
# $ODORBOT_PROBES_DIR/redis-tls) whose ACL user `odorbot` may run only what the probe sends.
# Prometheus, Alertmanager and Redis come from Debian too: the tests start Prometheus and
# Alertmanager themselves and use the machine's Redis on 6379 as well.
# Idempotent: what already answers is left alone.
set -euo pipefail

DIR=${ODORBOT_PROBES_DIR:-/tmp/odorbot-probes}
PG_PORT=${ODORBOT_PROBE_PG_PORT:-55432}
PGB_PORT=${ODORBOT_PROBE_PGBOUNCER_PORT:-56432}
REDIS_TLS_PORT=${ODORBOT_PROBE_REDIS_TLS_PORT:-56379}

need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v pgbouncer >/dev/null || need+=(pgbouncer)
command -v redis-server >/dev/null || need+=(redis-server)
command -v openssl >/dev/null || need+=(openssl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  # Services these packages would start are not wanted: the tests run their own.
  policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y --no-install-recommends "${need[@]}" ||
    { apt-get update && apt-get install -y --no-install-recommends "${need[@]}"; }
  [[ -z $policy ]] || rm -f "$policy"
fi

# The machine's Redis (the probes read its INFO).
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi

mkdir -p "$DIR"

# The TLS Redis. Its certificates are made once and kept; the server is started when
# nothing answers a TLS PING on its port.
tls=$DIR/redis-tls
if ! redis-cli --tls --cacert "$tls/ca.crt" -h 127.0.0.1 -p "$REDIS_TLS_PORT" \
  --user odorbot --pass odorbot-probe-password --no-auth-warning ping 2>/dev/null | grep -q PONG; then
  mkdir -p "$tls"
  if [[ ! -s $tls/server.crt ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=odorbot-test-redis-ca" \
      -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
      -CAcreateserial -days 3650 -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
  fi
  # The default user is off; `odorbot` may run INFO and SCAN (and PING), nothing else;
  # `admin` is the tests', to write the keys the probe then samples. AUTH
  # and HELLO are always allowed; Debian's Redis 7.0 has no CLIENT SETINFO to grant, and the
  # client library ignores its refusal.
  cat >"$tls/users.acl" <<'ACL'
user default off
user odorbot on >odorbot-probe-password ~* resetchannels -@all +info +scan +ping
user admin on >odorbot-admin-password ~* &* +@all
ACL
  redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port "$REDIS_TLS_PORT" \
    --tls-cert-file "$tls/server.crt" --tls-key-file "$tls/server.key" \
    --tls-ca-cert-file "$tls/ca.crt" --tls-auth-clients no --aclfile "$tls/users.acl" \
    --save "" --appendonly no --dir "$tls" --pidfile "$tls/redis.pid" --logfile "$tls/redis.log"
  for _ in $(seq 1 40); do
    redis-cli --tls --cacert "$tls/ca.crt" -h 127.0.0.1 -p "$REDIS_TLS_PORT" --user odorbot \
      --pass odorbot-probe-password --no-auth-warning ping 2>/dev/null | grep -q PONG && break
    sleep 0.25
  done
  redis-cli --tls --cacert "$tls/ca.crt" -h 127.0.0.1 -p "$REDIS_TLS_PORT" --user odorbot \
    --pass odorbot-probe-password --no-auth-warning ping | grep -q PONG
fi

bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
chown postgres: "$DIR"
as_pg() { runuser -u postgres -- "$@"; }

if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
  data=$DIR/pgdata
  if [[ ! -s $data/PG_VERSION ]]; then
    as_pg "$bin/initdb" -D "$data" --auth=trust --username=postgres >/dev/null
    # scram for `app` first, trust for everyone else on loopback.
    printf '%s\n' 'host all app 127.0.0.1/32 scram-sha-256' 'host all all 127.0.0.1/32 trust' \
      'local all all trust' >"$data/pg_hba.conf"
  fi
  as_pg "$bin/pg_ctl" -D "$data" -l "$DIR/postgres.log" -w -t 30 start -o \
    "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR -c shared_preload_libraries=pg_stat_statements -c max_connections=100 -c fsync=off"
  psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q)
  "${psql[@]}" -d postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app LOGIN PASSWORD 'app-password'; END IF; END \$\$;"
  "${psql[@]}" -d template1 -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
fi

# PgBouncer's users. Clients are trusted on loopback; `app` logs in to PostgreSQL with its
# password from here, as the API's role does through PgBouncer (the connectivity test).
write_userlist() {
  printf '"pgbouncer" ""\n"postgres" ""\n"app" "app-password"\n' >"$DIR/userlist.txt"
  chown postgres: "$DIR/userlist.txt"
  chmod 0600 "$DIR/userlist.txt"
}

if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$PGB_PORT"; then
  cat >"$DIR/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PG_PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
admin_users = pgbouncer
stats_users = pgbouncer
pool_mode = transaction
default_pool_size = 5
ignore_startup_parameters = extra_float_digits
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
INI
  chown postgres: "$DIR"/pgbouncer.ini
  write_userlist
  as_pg pgbouncer -d "$DIR/pgbouncer.ini"
  for _ in $(seq 1 40); do "$bin/pg_isready" -q -h 127.0.0.1 -p "$PGB_PORT" && break; sleep 0.25; done
  "$bin/pg_isready" -h 127.0.0.1 -p "$PGB_PORT" >/dev/null
elif ! grep -q '^"app"' "$DIR/userlist.txt" 2>/dev/null; then
  # A PgBouncer started by an earlier version of this script: teach it `app`.
  write_userlist
  "$bin/psql" -h 127.0.0.1 -p "$PGB_PORT" -U pgbouncer -d pgbouncer -q -c RELOAD >/dev/null
fi
echo "probe servers: PostgreSQL 127.0.0.1:$PG_PORT, PgBouncer 127.0.0.1:$PGB_PORT, Redis with TLS 127.0.0.1:$REDIS_TLS_PORT (CA $tls/ca.crt)" >&2
