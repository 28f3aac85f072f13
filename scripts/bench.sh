#!/usr/bin/env bash
# `make bench`: measures Sixfold against a ceiling on this machine and prints a table; the
# table is also written to docs/benchmarks.md.
#
# Redirect benchmark: `GET /{code}` on cache hits, served by `sixfold ingress` pinned to one core
# (core 0, one Tokio worker), against nginx answering `return 301` on the same core, each loaded
# by a load generator pinned to the other core. Peak is wrk's closed loop with 64 connections;
# latency at half of the peak rate comes from oha's open loop at a fixed rate (-q), corrected for
# coordinated omission.
set -euo pipefail

ROOT=$PWD
OUT=$ROOT/var/bench
BIN=${SIXFOLD_RELEASE_BIN:-$CARGO_TARGET_DIR/release/sixfold}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
NGINX_PORT=18090
INGRESS_PORT=18091
REGISTRY_PORT=18092
KEY=bench-key
OHA=${OHA:-$HOME/.cache/sixfold/oha/bin/oha}
PIDS=()

cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 150); do answers "$1" && return 0; sleep 0.2; done; echo "nothing on port $1" >&2; exit 1; }

rm -rf "$OUT" && mkdir -p "$OUT"
digest=$(printf %s "$KEY" | sha256sum | cut -d' ' -f1)
cat >"$OUT/bench.yaml" <<YAML
registry: {url: "http://127.0.0.1:$REGISTRY_PORT", listen: "127.0.0.1:$REGISTRY_PORT", topic: _schemas_bench}
store: {sqlite_path: $OUT/store.db}
ingress:
  listen: 127.0.0.1:$INGRESS_PORT
  public_url: http://127.0.0.1:$INGRESS_PORT
  api_keys: [{name: bench, sha256: $digest}]
log: {format: json, filter: warn}
urls: {namespace: bench-urls, created_topic: url.created, clicked_topic: url.clicked}
YAML
cat >"$OUT/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen 127.0.0.1:$NGINX_PORT; location / { return 301 https://example.com/; } }
}
NGINX

"$BIN" --config "$OUT/bench.yaml" topics apply >/dev/null
"$BIN" --config "$OUT/bench.yaml" registry >"$OUT/registry.log" 2>&1 &
PIDS+=($!)
wait_port $REGISTRY_PORT
TOKIO_WORKER_THREADS=1 taskset -c 0 "$BIN" --config "$OUT/bench.yaml" ingress >"$OUT/ingress.log" 2>&1 &
PIDS+=($!)
taskset -c 0 nginx -c "$OUT/nginx.conf" -p "$OUT" &
PIDS+=($!)
wait_port $INGRESS_PORT
wait_port $NGINX_PORT

code=$(curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"long_url": "https://example.com/benchmark"}' "http://127.0.0.1:$INGRESS_PORT/v1/urls" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["short_code"])')
SIXFOLD_URL="http://127.0.0.1:$INGRESS_PORT/$code"
NGINX_URL="http://127.0.0.1:$NGINX_PORT/$code"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$SIXFOLD_URL")" = 302 ] || { echo "redirect does not work" >&2; exit 1; }

# wrk: prints "rps p50_ms p99_ms"
peak() {
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$1" >"$OUT/wrk-$2.txt"
  python3 - "$OUT/wrk-$2.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    value, unit = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{rps:.0f} {ms(50):.3f} {ms(99):.3f} {non2xx.group(1) if non2xx else 0}")
PY
}

# oha at a fixed total rate (open loop, corrected for coordinated omission): "rps p50_ms p99_ms"
at_rate() {
  taskset -c 1 "$OHA" -z "${SECONDS_PER_RUN}s" -c 16 -q "$2" --latency-correction --no-tui \
    --output-format json "$1" >"$OUT/oha-$3.json"
  python3 - "$OUT/oha-$3.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["latencyPercentiles"]
print(f"{d['summary']['requestsPerSec']:.0f} {p['p50'] * 1000:.3f} {p['p99'] * 1000:.3f}")
PY
}

read -r s_rps s_p50 s_p99 s_bad < <(peak "$SIXFOLD_URL" sixfold)
read -r n_rps n_p50 n_p99 _ < <(peak "$NGINX_URL" nginx)
read -r sh_rps sh_p50 sh_p99 < <(at_rate "$SIXFOLD_URL" $(( s_rps / 2 )) sixfold)
read -r nh_rps nh_p50 nh_p99 < <(at_rate "$NGINX_URL" $(( s_rps / 2 )) nginx)
[ "$s_bad" = 0 ] || echo "warning: $s_bad non-3xx answers from Sixfold during the peak run" >&2
clicks=$(curl -s "http://127.0.0.1:$INGRESS_PORT/metrics" | awk '/^sixfold_produced_total\{topic="url.clicked"\}/ {print $2}')
dropped=$(curl -s "http://127.0.0.1:$INGRESS_PORT/metrics" | awk '/^sixfold_urls_clicks_dropped_total/ {print $2}')

ratio=$(python3 -c "print(f'{$s_rps / $n_rps:.2f}')")
machine="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m)"
table=$(cat <<MD
| benchmark | Sixfold | ceiling (nginx \`return 301\`) | ratio | target |
|---|---|---|---|---|
| redirect peak, cache hit, 1 core, ${CONNECTIONS} connections (req/s) | ${s_rps} | ${n_rps} | ${ratio} | ratio ≥ 0.5; ≥ 12,000 req/s |
| latency at peak, p50 / p99 (ms) | ${s_p50} / ${s_p99} | ${n_p50} / ${n_p99} | | |
| latency at half of Sixfold's peak ($(( s_rps / 2 )) req/s offered; ${sh_rps} / ${nh_rps} achieved), p50 / p99 (ms) | ${sh_p50} / ${sh_p99} | ${nh_p50} / ${nh_p99} | | p99 < 2 ms |
MD
)
echo
echo "$table"
echo
echo "clicks produced to url.clicked during the runs: ${clicks:-0}; dropped for a full buffer: ${dropped:-0}"

cat >"$ROOT/docs/benchmarks.md" <<MD
# Benchmarks

Written by \`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d), on this project's machine
($machine). Numbers from one run; rerun to compare.

## Redirects (\`GET /{code}\`, cache hit)

\`sixfold ingress\` (release build) pinned to core 0 with one Tokio worker, against nginx 1.22 with
one worker answering \`return 301\` on the same core; the load generator runs on core 1 (wrk 4.1 for
the closed-loop peak; oha 1.16, open loop with latency correction, for the run at half of Sixfold's
peak rate). The broker, Redis and the registry share the machine, unpinned, so runs vary by ±30%
(nginx itself has measured anywhere from 100k to 200k req/s here).

Each Sixfold redirect finds the link in the process's near cache (filled from Redis), answers, and
hands one \`url.clicked\` event to the click producer, which encodes it (Avro, Confluent framing)
and produces it (idempotent, acks=all, zstd, 50 ms linger) on the same core. That event, not the
lookup, is most of the cost: in earlier runs of this benchmark, a build that dropped clicks under
load instead of producing them served 51,000–67,000 req/s on the same core against 35,000–39,000
with every click produced. nginx does nothing per request but write a fixed answer.

$table

Clicks produced to \`url.clicked\` during the runs: ${clicks:-0}; dropped for a full buffer: ${dropped:-0}.
MD
echo "written to docs/benchmarks.md"
