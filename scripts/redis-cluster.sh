#!/usr/bin/env bash
# Starts or stops a local 3-node Redis Cluster (masters only) on 127.0.0.1:7000-7002, for the
# tests of the cluster code path (the rate limiter's). Each node keeps its cluster config and
# pid file under $SIXFOLD_SERVICES_DIR/redis-cluster/<port> (default ./var/services); no data
# is persisted.
#
#   scripts/redis-cluster.sh up      start the nodes and form the cluster; reuses a healthy one
#   scripts/redis-cluster.sh down    stop the nodes this script started and forget the cluster
#   scripts/redis-cluster.sh status  say whether the cluster answers and is healthy
set -euo pipefail

DIR=${SIXFOLD_SERVICES_DIR:-$PWD/var/services}/redis-cluster
PORTS=(7000 7001 7002)
REDIS_SERVER=${REDIS_SERVER_BIN:-redis-server}
REDIS_CLI=${REDIS_CLI_BIN:-redis-cli}

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

cli() { # port args...
  local port=$1; shift
  "$REDIS_CLI" -h 127.0.0.1 -p "$port" "$@"
}

info() { # port field
  cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}

# Healthy: every node answers, says the cluster is ok, knows all three nodes and all slots.
healthy() {
  local port
  for port in "${PORTS[@]}"; do
    [ "$(info "$port" cluster_state)" = ok ] || return 1
    [ "$(info "$port" cluster_known_nodes)" = "${#PORTS[@]}" ] || return 1
    [ "$(info "$port" cluster_slots_assigned)" = 16384 ] || return 1
  done
}

wait_healthy() { # tenths of a second
  for _ in $(seq 1 "$1"); do
    healthy && return 0
    sleep 0.1
  done
  return 1
}

start_node() { # port
  local port=$1 dir="$DIR/$1"
  if answers "$port"; then
    if [ "$(cli "$port" info cluster 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_enabled://p')" != 1 ]; then
      echo "redis-cluster: 127.0.0.1:$port answers but is not a cluster node; stop it first" >&2
      return 1
    fi
    echo "redis-cluster: node $port already running"
    return 0
  fi
  mkdir -p "$dir"
  (cd "$dir" && exec nohup "$REDIS_SERVER" --bind 127.0.0.1 --port "$port" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --dir "$dir" --save "" --appendonly no >"$dir/log" 2>&1) &
  echo $! >"$dir/pid"
  wait_port "redis-cluster: node $port" "$port" "$dir/log"
}

stop_node() { stop_pidfile "redis-cluster: node $1" "$DIR/$1/pid"; }

create_cluster() {
  local port nodes=()
  # Nodes left half-configured (a crash, a wiped directory) are reset so `create` accepts them.
  for port in "${PORTS[@]}"; do
    cli "$port" flushall >/dev/null
    cli "$port" cluster reset hard >/dev/null
    nodes+=("127.0.0.1:$port")
  done
  "$REDIS_CLI" --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1 || {
    echo "redis-cluster: 'redis-cli --cluster create' failed; see $DIR/create.log" >&2
    tail -n 20 "$DIR/create.log" >&2
    return 1
  }
}

case "${1:-}" in
  up)
    if healthy; then
      echo "redis-cluster: already running and healthy on 127.0.0.1:${PORTS[0]}-${PORTS[-1]}"
      exit 0
    fi
    mkdir -p "$DIR"
    for port in "${PORTS[@]}"; do start_node "$port"; done
    # Restarted nodes that kept their nodes.conf find each other again; give them a moment.
    if [ "$(info "${PORTS[0]}" cluster_slots_assigned)" != 16384 ] || ! wait_healthy 50; then
      create_cluster
    fi
    if ! wait_healthy 300; then
      echo "redis-cluster: the cluster did not reach cluster_state:ok" >&2
      cli "${PORTS[0]}" cluster info >&2 || true
      exit 1
    fi
    echo "redis-cluster: up on 127.0.0.1:${PORTS[0]}-${PORTS[-1]} (cluster_state:ok)"
    ;;
  down)
    for port in "${PORTS[@]}"; do stop_node "$port"; done
    for port in "${PORTS[@]}"; do rm -f "$DIR/$port/nodes.conf"; done
    ;;
  status)
    if healthy; then
      echo "redis-cluster: up (cluster_state:ok)"
    elif answers "${PORTS[0]}"; then
      echo "redis-cluster: answers but is not healthy"
      exit 1
    else
      echo "redis-cluster: down"
      exit 1
    fi
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
