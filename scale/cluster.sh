#!/usr/bin/env bash
# The whole platform on one machine, one network namespace per host (issue 15 §4-5, ADR 0023):
#
#   an-lb    10.91.0.10  HAProxy :9100 (the host reaches the cluster here)
#   an-web1  10.91.0.11  gunicorn :8000 (the Procfile's `web` line)
#   an-web2  10.91.0.12  gunicorn :8000
#   an-wk1   10.91.0.21  Celery worker + beat (the Procfile's lines; one beat leads, ADR 0008)
#   an-wk2   10.91.0.22  Celery worker + beat
#   an-mon   10.91.0.30  pg_auto_failover monitor
#   an-pg1   10.91.0.31  PostgreSQL (pg_autoctl keeper) + PgBouncer :6432, transaction mode
#   an-pg2   10.91.0.32  PostgreSQL (pg_autoctl keeper) + PgBouncer :6432, transaction mode
#   an-redis 10.91.0.50  Redis :6379
#
# all on the bridge an-br0 (10.91.0.1 on the host side). Run as root:
#   scale/cluster.sh up | down | status | kill HOST | start HOST | primary | rejoined HOST SECONDS
# `kill HOST` SIGKILLs every process of a host (the machine is lost); `start HOST` starts its
# services again. Work files live in CLUSTER_DIR (/tmp/an-cluster). `down` removes everything
# and can be run any number of times.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN="${CLUSTER_DIR:-/tmp/an-cluster}"
PG_BIN=/usr/lib/postgresql/15/bin
NET=10.91.0
BRIDGE=an-br0
LB_PORT=9100
DB=analytics_cluster
# PostgreSQL ports: each namespace has its own, but the Unix sockets share /var/run/postgresql
# with the machine's own server (5432), so the cluster's nodes use ports of their own there.
declare -A PG_PORT=([mon]=9130 [pg1]=9131 [pg2]=9132)
declare -A IP=([lb]=10 [web1]=11 [web2]=12 [wk1]=21 [wk2]=22 [mon]=30 [pg1]=31 [pg2]=32 [redis]=50)
HOSTS=(lb web1 web2 wk1 wk2 mon pg1 pg2 redis)

log() { echo "[cluster $(date +%H:%M:%S)] $*"; }

# ---------------------------------------------------------------------------------- packages
packages_install() {
  local need=()
  [ -x /usr/sbin/haproxy ] || need+=(haproxy)
  [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
  [ -x "$PG_BIN/pg_ctl" ] || need+=(postgresql-15)
  [ -x /usr/bin/pg_autoctl ] || need+=(postgresql-15-auto-failover pg-auto-failover-cli)
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v ip >/dev/null || need+=(iproute2)
  command -v curl >/dev/null || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

# ---------------------------------------------------------------------------------- network
net_up() {
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for host in "${HOSTS[@]}"; do
    ip netns add "an-$host"
    ip link add "an-$host-h" type veth peer name eth0 netns "an-$host"
    ip link set "an-$host-h" master "$BRIDGE" up
    ip -n "an-$host" addr add "$NET.${IP[$host]}/24" dev eth0
    ip -n "an-$host" link set eth0 up
    ip -n "an-$host" link set lo up
  done
}

# Every process of a host, as the machine's loss would take them.
host_kill() {
  local pids
  pids="$(ip netns pids "an-$1" 2>/dev/null || true)"
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
}

# in_host HOST NAME COMMAND...: start COMMAND in the background inside the host (its network
# namespace and its own host name, so Celery nodes and beat leases name their host), logging
# to NAME.log.
in_host() {
  local host=$1 name=$2
  shift 2
  setsid ip netns exec "an-$host" unshare --uts -- sh -c 'hostname "$0" && exec "$@"' \
    "an-$host" "$@" >>"$RUN/log/$name.log" 2>&1 </dev/null &
}

# PostgreSQL, pg_autoctl and PgBouncer refuse root; pg_autoctl keeps its state under XDG dirs.
AS_PG=(runuser -u postgres -- env HOME="$RUN/pg" XDG_CONFIG_HOME="$RUN/pg/config"
  XDG_DATA_HOME="$RUN/pg/share" PG_CONFIG="$PG_BIN/pg_config" PATH="$PG_BIN:$PATH")
as_postgres() { "${AS_PG[@]}" "$@"; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq 1 $((seconds * 2))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "timed out waiting for $what (logs in $RUN/log)"
  return 1
}

# ---------------------------------------------------------------------------------- database
MONITOR_URL="postgres://autoctl_node@$NET.${IP[mon]}:${PG_PORT[mon]}/pg_auto_failover?sslmode=disable"

monitor_create() {
  ip netns exec an-mon "${AS_PG[@]}" pg_autoctl create monitor --pgdata "$RUN/pg/mon" \
    --pgport "${PG_PORT[mon]}" \
    --hostname "$NET.${IP[mon]}" --auth trust --no-ssl --pgctl "$PG_BIN/pg_ctl" \
    >>"$RUN/log/mon-create.log" 2>&1
  # Fail over within seconds of a lost primary, not the default 20 s (ADR 0023).
  cat >>"$RUN/pg/mon/postgresql.auto.conf" <<EOF
listen_addresses = '*'
pgautofailover.health_check_period = 1000
pgautofailover.health_check_timeout = 1000
pgautofailover.health_check_max_retries = 1
pgautofailover.health_check_retry_delay = 500
pgautofailover.node_considered_unhealthy_timeout = 4000
pgautofailover.primary_demote_timeout = 6000
EOF
  echo "host all all $NET.0/24 trust" >>"$RUN/pg/mon/pg_hba.conf"
}

node_create() {  # node_create pg1|pg2
  local host=$1
  ip netns exec "an-$host" "${AS_PG[@]}" pg_autoctl create postgres --pgdata "$RUN/pg/$host" \
    --pgport "${PG_PORT[$host]}" --listen "*" \
    --hostname "$NET.${IP[$host]}" --name "$host" --dbname "$DB" --monitor "$MONITOR_URL" \
    --auth trust --no-ssl --pgctl "$PG_BIN/pg_ctl" >>"$RUN/log/$host-create.log" 2>&1
  # A primary cut off from the monitor and the standby demotes itself after this long; the
  # monitor promotes the standby only after primary_demote_timeout (6 s), which is longer.
  as_postgres pg_autoctl config set --pgdata "$RUN/pg/$host" timeout.network_partition_timeout 4 \
    >/dev/null
}

pgbouncer_config() {  # pgbouncer_config pg1|pg2: in front of that host's PostgreSQL
  cat >"$RUN/pg/pgbouncer-$1.ini" <<EOF
[databases]
* = host=127.0.0.1 port=${PG_PORT[$1]}
[pgbouncer]
listen_addr = *
listen_port = 6432
unix_socket_dir =
auth_type = trust
auth_file = $RUN/pg/pgbouncer-users.txt
pool_mode = transaction
default_pool_size = 10
max_client_conn = 400
server_connect_timeout = 2
; Django sends statement_timeout as an options parameter, which 1.18 refuses: the database sets it (ADR 0022)
ignore_startup_parameters = extra_float_digits,options
EOF
  echo '"postgres" ""' >"$RUN/pg/pgbouncer-users.txt"
}

# Runs on a database host: PgBouncer serves while this node accepts writes, and is stopped
# while it is a standby (or a promoted standby that pg_auto_failover still holds read-only). PgBouncer 1.18 replays the parameters of its first server login to
# every client, in_hot_standby among them: a bouncer that once reached a standby keeps telling
# libpq "read-only" after that standby's promotion. Stopped, it refuses connections, and
# target_session_attrs=read-write moves on to the next host at once (ADR 0023).
bouncer_follow() {
  local host=$1 bouncer="" writable goal
  while true; do
    writable="$(psql -h 127.0.0.1 -p "${PG_PORT[$host]}" -U postgres -d postgres -tAc \
      'select not (pg_is_in_recovery() or current_setting($$transaction_read_only$$)::bool)' \
      2>/dev/null || true)"
    goal="$(assigned_state "$host" || true)"  # set -e: a silent monitor must not end the loop
    if [ "$writable" = t ] && writer_state "$goal"; then
      if [ -z "$bouncer" ] || ! kill -0 "$bouncer" 2>/dev/null; then
        echo "$(date -u +%FT%T.%3N) bouncer-follow: start (writable=$writable goal=$goal)"
        setpriv --reuid postgres --regid postgres --init-groups \
          /usr/sbin/pgbouncer "$RUN/pg/pgbouncer-$host.ini" &
        bouncer=$!
      fi
    elif [ -n "$bouncer" ] && { [ "$writable" != t ] || [ -n "$goal" ]; }; then
      # Not writable, or the monitor assigns another role. A monitor that does not answer
      # (goal empty) changes nothing: losing it must not stop the writes.
      echo "$(date -u +%FT%T.%3N) bouncer-follow: stop (writable=${writable:-?} goal=$goal)"
      kill "$bouncer" 2>/dev/null || true
      bouncer=""
    fi
    sleep 0.5
  done
}

# The monitor's assigned state for a node, empty when the monitor does not answer. A lost
# primary's host that comes back starts its PostgreSQL writable from its own state file before
# its keeper hears it was demoted; writes taken then would be rewound away by pg_rewind, so its
# bouncer waits for the monitor's word, not only for a writable server.
assigned_state() {
  as_postgres pg_autoctl show state --monitor "$MONITOR_URL" 2>/dev/null |
    awk -F'|' -v n="$1" '{gsub(/ /, "")} $1 == n {print $7}'
}
writer_state() { case $1 in single | wait_primary | primary) return 0 ;; *) return 1 ;; esac; }

state_is() {  # state_is pg1 primary: the monitor's view of a node's reported state
  as_postgres pg_autoctl show state --monitor "$MONITOR_URL" 2>/dev/null |
    awk -F'|' -v n="$1" -v s="$2" '{gsub(/ /, "")} $1 == n && $6 == s && $7 == s {ok=1} END {exit !ok}'
}

# ---------------------------------------------------------------------------------- services
app_env() {
  cat >"$RUN/app.env" <<EOF
PATH=$ROOT/.venv/bin:$PATH
DATABASE_URL=postgres://postgres@$NET.${IP[pg1]}:6432,$NET.${IP[pg2]}:6432/$DB?target_session_attrs=read-write
DATABASE_REPLICA_URL=postgres://postgres@$NET.${IP[pg2]}:${PG_PORT[pg2]},$NET.${IP[pg1]}:${PG_PORT[pg1]}/$DB?target_session_attrs=prefer-standby
DATABASE_POOL_MODE=transaction
DB_CONNECT_TIMEOUT_SECONDS=2
REDIS_URL=redis://$NET.${IP[redis]}:6379/0
ENVIRONMENT=testing
CELERY_TASK_ALWAYS_EAGER=false
INGEST_ALLOW_ANONYMOUS=true
READ_ALLOW_ANONYMOUS=true
ALLOWED_HOSTS=$NET.${IP[lb]},127.0.0.1,localhost
PYTHONUNBUFFERED=1
WEB_CONCURRENCY=2
PORT=8000
BEAT_LEADER_LEASE_SECONDS=10
CLUSTER_LB=$NET.${IP[lb]}:$LB_PORT
EOF
}

haproxy_config() {
  cat >"$RUN/haproxy.cfg" <<EOF
global
  maxconn 2000
  pidfile $RUN/haproxy.pid
  # To haproxy.log: requests that ended abnormally (a 5xx, a retry, a redispatch, a reset)
  # and every health check's change, each with its time (the soak's stray 503s, ADR 0023).
  log stdout format iso local0 info
defaults
  mode http
  log global
  option httplog
  option dontlog-normal
  option log-health-checks
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  # A request that found its host dead (refused, reset before any answer) goes to the other
  # host: ingestion is idempotent by event_id, so a replay stores nothing twice.
  retries 3
  retry-on conn-failure empty-response
  option redispatch 1
  option http-buffer-request
frontend web
  bind *:$LB_PORT
  default_backend web
backend web
  balance roundrobin
  option httpchk GET /health/live
  http-check send hdr Host $NET.${IP[lb]}
  default-server check inter 1s fall 2 rise 2
  server web1 $NET.${IP[web1]}:8000
  server web2 $NET.${IP[web2]}:8000
EOF
}

procfile() { sed -n "s/^$1: //p" "$ROOT/Procfile"; }

# app_run HOST NAME PROCFILE-LINE: the line with the platform's restart policy (the Procfile
# asks for one: a process that exits is started again, as systemd's Restart=always would).
app_run() {
  in_host "$1" "$2" bash -c "cd '$ROOT' && set -a && . '$RUN/app.env' && set +a &&
    while true; do env $3; echo \"exited with \$?, restarting\"; sleep 1; done"
}

host_start() {
  case $1 in
    lb) in_host lb haproxy haproxy -db -f "$RUN/haproxy.cfg" ;;
    redis) in_host redis redis redis-server --bind 0.0.0.0 --port 6379 --protected-mode no \
      --save "" --appendonly no ;;
    mon) in_host mon mon "${AS_PG[@]}" pg_autoctl run --pgdata "$RUN/pg/mon" ;;
    pg1 | pg2)
      in_host "$1" "$1" "${AS_PG[@]}" pg_autoctl run --pgdata "$RUN/pg/$1"
      in_host "$1" "$1-pgbouncer" "$ROOT/scale/cluster.sh" bouncer-follow "$1"
      ;;
    web1 | web2) app_run "$1" "$1" "$(procfile web)" ;;
    wk1 | wk2)
      app_run "$1" "$1-worker" "$(procfile worker)"
      app_run "$1" "$1-beat" "$(procfile beat) --schedule '$RUN/$1-beat-schedule'"
      ;;
    *) echo "unknown host: $1" >&2; return 2 ;;
  esac
}

lb_ready() { curl -fsS -o /dev/null "http://$NET.${IP[lb]}:$LB_PORT/health"; }

# ---------------------------------------------------------------------------------- commands
logs_tail() {
  for file in "$RUN"/log/*.log; do echo "== $file" && tail -n 15 "$file"; done
}

cmd_up() {
  [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
  trap 'log "up failed; the logs end:"; logs_tail' ERR
  if ip netns list | grep -q '^an-'; then echo "already up (scale/cluster.sh down first)" >&2; exit 1; fi
  packages_install
  rm -rf "$RUN" && mkdir -p "$RUN/log" "$RUN/pg"
  chown -R postgres "$RUN/pg"
  chmod 755 "$RUN"
  net_up
  log "network: bridge $BRIDGE, ${#HOSTS[@]} namespaces"
  host_start redis
  monitor_create
  host_start mon
  wait_for 60 "monitor" as_postgres psql "$MONITOR_URL" -c 'select 1'
  node_create pg1
  in_host pg1 pg1 "${AS_PG[@]}" pg_autoctl run --pgdata "$RUN/pg/pg1"
  wait_for 120 "pg1 primary" state_is pg1 single
  wait_for 60 "pg1 running" pg_isready -q -h "$NET.${IP[pg1]}" -p "${PG_PORT[pg1]}"
  echo "host all all $NET.0/24 trust" >>"$RUN/pg/pg1/pg_hba.conf"
  as_postgres "$PG_BIN/pg_ctl" -D "$RUN/pg/pg1" reload >/dev/null
  psql -h "$NET.${IP[pg1]}" -p "${PG_PORT[pg1]}" -U postgres -d "$DB" -qc \
    "ALTER DATABASE $DB SET statement_timeout = '15s'"
  node_create pg2
  in_host pg2 pg2 "${AS_PG[@]}" pg_autoctl run --pgdata "$RUN/pg/pg2"
  wait_for 180 "pg2 secondary" state_is pg2 secondary
  for host in pg1 pg2; do
    pgbouncer_config "$host"
    in_host "$host" "$host-pgbouncer" "$ROOT/scale/cluster.sh" bouncer-follow "$host"
  done
  log "database: pg1 primary, pg2 secondary (pg_auto_failover), PgBouncer on both"
  app_env
  (cd "$ROOT" && set -a && . "$RUN/app.env" && set +a &&
    ip netns exec an-wk1 bash -c "$(procfile release) -v 0")
  log "migrated"
  haproxy_config
  for host in web1 web2 wk1 wk2 lb; do host_start "$host"; done
  wait_for 120 "the load balancer" lb_ready
  log "up: http://$NET.${IP[lb]}:$LB_PORT/ (logs in $RUN/log)"
}

cmd_down() {
  for host in "${HOSTS[@]}"; do host_kill "$host"; done
  # The kernel frees a namespace (and the veth end in it) some time after its last process
  # died; delete the host's end now, which takes the pair, so `up` can run straight away.
  for host in "${HOSTS[@]}"; do
    ip link delete "an-$host-h" 2>/dev/null || true
    ip netns delete "an-$host" 2>/dev/null || true
  done
  ip link delete "$BRIDGE" 2>/dev/null || true
  rm -rf "$RUN"
  log "down"
}

cmd_status() {
  for host in "${HOSTS[@]}"; do
    local pids
    pids="$(ip netns pids "an-$host" 2>/dev/null | wc -l || true)"
    printf '%-6s %-12s %s processes\n' "$host" "$NET.${IP[$host]}" "$pids"
  done
  as_postgres pg_autoctl show state --monitor "$MONITOR_URL" 2>/dev/null || true
}

# The host whose PostgreSQL accepts writes now.
cmd_primary() {
  for host in pg1 pg2; do
    if [ "$(psql -h "$NET.${IP[$host]}" -p "${PG_PORT[$host]}" -U postgres -d postgres -tAc \
      'select pg_is_in_recovery()' 2>/dev/null)" = f ]; then
      echo "$host" && return 0
    fi
  done
  return 1
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  kill) host_kill "$2" ;;
  start) host_start "$2" ;;
  primary) cmd_primary ;;
  # rejoined HOST SECONDS: wait until a lost node, started again, is a streaming secondary
  rejoined) wait_for "$3" "$2 secondary" state_is "$2" secondary ;;
  dsn) echo "host=$NET.${IP[$2]} port=${PG_PORT[$2]} dbname=$DB user=postgres" ;;  # a node's own
  bouncer-follow) bouncer_follow "$2" ;;
  *) echo "usage: $0 up|down|status|kill HOST|start HOST|primary|rejoined HOST SECONDS" >&2
    exit 2 ;;
esac
