#!/usr/bin/env bash
# API throughput with wrk as the load generator (BENCHMARKS.md, "wrk"): starts `docket
# serve` on DATA, then runs each scenario of $SCENARIOS (default: ping get-num search-word
# create comment) with wrk at 16 connections, 2 threads, for $DUR seconds (default 5),
# ROUNDS times, each round on a fresh copy of DATA (the writes do not change what a later
# round reads). Prints per run one JSON line: req/s, p50, non-2xx or wrong replies, and the
# server's and wrk's CPU time per request. The scenarios are in bench/api.lua.
#
#   bench/api-wrk.sh BINARY LABEL PORT [ROUNDS] [DATA]
# Needs wrk (Debian package), curl and python3.
set -euo pipefail
B=$1; L=$2; P=$3; ROUNDS=${4:-3}; DATA=${5:-/tmp/b10k}; DUR=${DUR:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
BASE="http://127.0.0.1:$P"
RUN=$(mktemp -d)
IDS=$RUN/ids
S=
trap 'kill $S 2>/dev/null || true; rm -rf "$RUN"' EXIT
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$S/stat"; }
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$RUN/data"; cp -a "$DATA" "$RUN/data"
  DOCKET_ADMIN_PASSWORD=x "$B" serve --data "$RUN/data" --listen "127.0.0.1:$P" >/dev/null 2>&1 &
  S=$!
  for _ in $(seq 100); do curl -sf "$BASE/api/app/ping/v1" >/dev/null && break; sleep 0.1; done
  KEY=$("$B" api-key create --data "$RUN/data" --title "wrk-$L" --admin | tail -1)
  curl -s -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
    -d '{"query":"*","limit":1000,"compact":true}' "$BASE/api/app/search_tickets/v1" \
    | python3 -c 'import sys, json; print("\n".join(r["id"] for r in json.load(sys.stdin)["rows"]))' >"$IDS"
  TICKETS=$(curl -s -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
    -d '{"query":"*","limit":1,"sort_by":"num","sort_dir":-1}' "$BASE/api/app/search_tickets/v1" \
    | python3 -c 'import sys, json; print(json.load(sys.stdin)["rows"][0]["num"])')
  for sc in ${SCENARIOS:-ping get-num search-word create comment}; do
    c0=$(cpu)
    out=$( { KEY=$KEY SCENARIO=$sc IDS=$IDS TICKETS=$TICKETS /usr/bin/time -f "CLIENT %U %S" \
      wrk -t2 -c16 -d"${DUR}s" --latency -s "$HERE/api.lua" "$BASE"; } 2>&1 )
    c1=$(cpu)
    echo "$out" | python3 -c "
import sys, json
n = rps = p50 = cl = None; bad = 0
def ms(v):
    for suffix, f in (('us', 0.001), ('ms', 1), ('s', 1000)):
        if v.endswith(suffix): return round(float(v[:-len(suffix)]) * f, 2)
for line in sys.stdin:
    w = line.split()
    if 'requests in' in line: n = int(w[0])
    if line.startswith('Requests/sec'): rps = float(w[1])
    if w[:1] == ['50%']: p50 = ms(w[1])
    if line.startswith('CLIENT'): cl = sum(map(float, w[1:]))
    if line.startswith('bad reply') or 'Non-2xx' in line: bad += 1
print(json.dumps({'label': '$L', 'round': $round, 'scenario': '$sc', 'per_sec': round(rps),
    'p50_ms': p50, 'bad': bad, 'server_us_per_req': round(($c1 - $c0) / $TCK * 1e6 / n, 1),
    'client_us_per_req': round(cl * 1e6 / n, 1)}))"
  done
  kill $S; wait $S 2>/dev/null || true
done
