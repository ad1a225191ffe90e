#!/bin/bash
# Request-path benchmark (BENCHMARKS.md, "Issue 15: request path"): starts `docket serve` on
# DATA, then runs the scenarios in $SCENARIOS (default: ping get-id search-word; the writes are
# create and comment) at concurrency 16 for 5 s each, ROUNDS times,
# printing per scenario one JSON line with req/s, p50 and the server's and the load
# generator's CPU time per request (server from /proc/PID/stat, client from /usr/bin/time).
# usage: scripts/bench_request_path.sh BINARY LABEL PORT [ROUNDS] [DATA]
set -eu
B=$1; L=$2; P=$3; ROUNDS=${4:-3}; DATA=${5:-/tmp/b10k}
DOCKET_ADMIN_PASSWORD=x "$B" serve --data "$DATA" --listen 127.0.0.1:"$P" >/dev/null 2>&1 &
S=$!
trap 'kill $S 2>/dev/null' EXIT
sleep 2
KEY=$("$B" api-key create --data "$DATA" --title "bench-$L" --admin | tail -1)
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$S/stat"; }
for round in $(seq 1 "$ROUNDS"); do
  for sc in ${SCENARIOS:-ping get-id search-word}; do
    c0=$(cpu)
    out=$( { /usr/bin/time -f "CLIENT %U %S" "$B" bench run --url "http://127.0.0.1:$P" \
      --api-key "$KEY" --duration 5 --concurrency 16 --scenario "$sc" --json; } 2>&1 )
    c1=$(cpu)
    echo "$out" | python3 -c "
import sys, json
d = cl = None
for line in sys.stdin:
    if line.startswith('{'): d = json.loads(line)
    if line.startswith('CLIENT'): cl = sum(map(float, line.split()[1:]))
n = d['requests']
print(json.dumps({'label': '$L', 'round': $round, 'scenario': d['scenario'],
    'per_sec': round(d['per_sec']), 'p50_ms': d['p50_ms'], 'errors': d['errors'],
    'server_us_per_req': round(($c1 - $c0) / $TCK * 1e6 / n, 1),
    'client_us_per_req': round(cl * 1e6 / n, 1)}))"
  done
done
