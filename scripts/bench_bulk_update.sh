#!/bin/bash
# Bulk update benchmark (BENCHMARKS.md, "Issue 17: bulk update"): loads N generated tickets
# (default 10000) into a fresh data directory, starts `docket serve` on it, then ROUNDS
# times sends one `bulk_update_tickets` call that changes every ticket (status, priority,
# a tag added) and one that changes them back, printing per call one JSON line with the
# tickets changed and tickets/s (wall time of the HTTP call, so the whole path: listing the
# matches, each ticket's transaction with its history, index and outbox rows).
# usage: scripts/bench_bulk_update.sh BINARY PORT [ROUNDS] [N]
set -eu
B=$1; P=$2; ROUNDS=${3:-3}; N=${4:-10000}
DATA=$(mktemp -d /tmp/bulk-bench.XXXXXX)
trap 'kill $S 2>/dev/null; rm -rf "$DATA"' EXIT
DOCKET_ADMIN_PASSWORD=x "$B" bench load --data "$DATA" --tickets "$N" --create >/dev/null
KEY=$(DOCKET_ADMIN_PASSWORD=x "$B" api-key create --data "$DATA" --title bulk-bench --admin | tail -1)
DOCKET_ADMIN_PASSWORD=x DOCKET_TICKETS__BULK_MAX_TICKETS=$((N * 2)) \
  "$B" serve --data "$DATA" --listen 127.0.0.1:"$P" >/dev/null 2>&1 &
S=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$P/health" >/dev/null && break; sleep 0.2; done
call() {
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$(curl -sf -H "X-API-Key: $KEY" -H 'Content-Type: application/json' \
    -d "$1" "http://127.0.0.1:$P/api/app/bulk_update_tickets/v1")
  t1=$(date +%s.%N)
  echo "$out" | python3 -c "
import sys, json
d = json.load(sys.stdin)
secs = $t1 - $t0
print(json.dumps({'round': $2, 'call': '$3', 'matched': d['matched'], 'changed': d['changed'],
  'unchanged': d['unchanged'], 'refused': d['refused'], 'secs': round(secs, 2),
  'tickets_per_sec': round(d['changed'] / secs)}))"
}
for round in $(seq 1 "$ROUNDS"); do
  call '{"query": "*", "set": {"status": "on_hold", "priority": "urgent", "tags": {"add": ["flag"]}}}' "$round" forward
  call '{"query": "*", "set": {"status": "open", "priority": "normal", "tags": {"remove": ["flag"]}}}' "$round" back
done
