#!/usr/bin/env bash
# Starts or stops the local services the tests and `make run` use, each on loopback, each only
# if nothing already answers on its port. Data and pid files live under $SIXFOLD_SERVICES_DIR
# (default ./var/services).
#
#   scripts/services.sh up            start what is missing, wait until each answers
#   scripts/services.sh down          stop what this script started
#   scripts/services.sh status        say what answers
#   scripts/services.sh fresh-broker  (re)start the broker alone on an empty data directory
#
# SIXFOLD_BROKER_PORT (default 9092) moves the broker: `make test` runs a fresh one on 19093 so
# every test run starts from an empty log (tansu slows down as test topics pile up).
set -euo pipefail

DIR=${SIXFOLD_SERVICES_DIR:-$PWD/var/services}
CACHE=${SIXFOLD_CACHE:-$HOME/.cache/sixfold}
TANSU=${TANSU_BIN:-$CACHE/tansu/bin/tansu}
BROKER_PORT=${SIXFOLD_BROKER_PORT:-9092}
REDIS_PORT=6379

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

start_broker() {
  [ -x "$TANSU" ] || { echo "tansu not found at $TANSU; run 'make deps'" >&2; exit 1; }
  start broker "$BROKER_PORT" "$TANSU" broker \
    --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
    --storage-engine "sqlite://tansu.db"
}

start() { # name port command...
  local name=$1 port=$2; shift 2
  if answers "$port"; then
    echo "$name: already answering on 127.0.0.1:$port"
    return 0
  fi
  mkdir -p "$DIR/$name"
  # Each service runs in its own data directory (tansu reads `sqlite://` paths relative to it).
  (cd "$DIR/$name" && exec nohup "$@" >"$DIR/$name/log" 2>&1) &
  echo $! >"$DIR/$name/pid"
  wait_port "$name" "$port" "$DIR/$name/log"
  echo "$name: started on 127.0.0.1:$port (pid $(cat "$DIR/$name/pid"))"
}

stop() { stop_pidfile "$1" "$DIR/$1/pid"; }

case "${1:-}" in
  up)
    mkdir -p "$DIR/broker" "$DIR/redis"
    start_broker
    start redis "$REDIS_PORT" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
      --dir "$DIR/redis" --save "" --appendonly no
    ;;
  down)
    stop redis
    stop broker
    ;;
  fresh-broker)
    stop broker
    if answers "$BROKER_PORT"; then
      echo "something not started by this script answers on $BROKER_PORT; stop it first" >&2
      exit 1
    fi
    rm -rf "$DIR/broker" && mkdir -p "$DIR/broker"
    start_broker
    ;;
  status)
    for pair in broker:$BROKER_PORT redis:$REDIS_PORT; do
      if answers "${pair#*:}"; then echo "${pair%%:*}: up"; else echo "${pair%%:*}: down"; fi
    done
    ;;
  *) echo "usage: $0 up|down|status|fresh-broker" >&2; exit 2 ;;
esac
