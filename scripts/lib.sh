# Shell helpers shared by the scripts in this directory (sourced, not run).

# True when something accepts TCP connections on 127.0.0.1:$1.
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port LABEL PORT [LOG]: waits up to 60 s for PORT to answer; on failure prints LOG's tail.
wait_port() {
  local label=$1 port=$2 log=${3:-}
  for _ in $(seq 1 300); do
    answers "$port" && return 0
    sleep 0.2
  done
  echo "$label did not start on port $port${log:+; see $log}" >&2
  [ -n "$log" ] && tail -n 20 "$log" >&2
  return 1
}

# stop_pidfile LABEL PIDFILE: stops the process of PIDFILE (TERM, then KILL after 5 s) and
# removes the file.
stop_pidfile() {
  local label=$1 pidfile=$2
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "$label: stopped"
  fi
  rm -f "$pidfile"
}
