#!/bin/bash
# PostgreSQL create benchmark (BENCHMARKS.md, "PostgreSQL create: where its CPU goes"): a fresh
# database and data directory, `docket serve` on it, a 1 s warm-up, then `bench run --scenario
# create` at c16; prints req/s and the CPU time per create of the docket process and of the
# PostgreSQL processes (this database's backends and the server's auxiliary processes, from
# /proc/PID/stat). PREP_SQL, if set, runs on the migrated database first (for experiments).
# usage: scripts/bench_pg_create.sh BINARY LABEL HTTPPORT PGPORT [SECONDS] [SCENARIO]
set -eu
B=$1; L=$2; P=$3; PGP=$4; DUR=${5:-5}; SC=${6:-create}
DB=pgc_$$_$RANDOM
DATA=${TMPDIR:-/tmp}/data_$DB
psql -q -h 127.0.0.1 -p $PGP -U postgres -c "CREATE DATABASE $DB" >/dev/null
export DOCKET_DATABASE__URL=postgres://postgres@127.0.0.1:$PGP/$DB
mkdir -p $DATA
DOCKET_ADMIN_PASSWORD=x "$B" serve --data $DATA --listen 127.0.0.1:$P >${TMPDIR:-/tmp}/serve_$L.log 2>&1 &
S=$!
trap 'kill $S 2>/dev/null; wait $S 2>/dev/null; sleep 0.5; psql -q -h 127.0.0.1 -p $PGP -U postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1; rm -rf $DATA' EXIT
sleep 2
[ -n "${PREP_SQL:-}" ] && psql -q -h 127.0.0.1 -p $PGP -U postgres -d $DB -c "$PREP_SQL" >/dev/null
KEY=$("$B" api-key create --data $DATA --title bench --admin | tail -1)
TCK=$(getconf CLK_TCK)
# CPU (ticks) of the backends of this database and of the server's auxiliary processes.
pgcpu() {
  local tot=0
  for p in $(pgrep -u postgres); do
    c=$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null || true)
    case "$c" in
      *" $DB "*|*walwriter*|*checkpointer*|*"background writer"*|*"autovacuum launcher"*|*"logical replication launcher"*|*"stats collector"*) ;;
      *) continue;;
    esac
    # children of this server's postmaster only (another cluster may run on the machine)
    pp=$(awk '{print $4}' /proc/$p/stat 2>/dev/null || echo 0)
    if [ "$PGMAIN" != "$pp" ]; then continue; fi
    v=$(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || echo 0)
    tot=$((tot + v))
  done
  echo $tot
}
PGMAIN=$(head -1 $(psql -h 127.0.0.1 -p $PGP -U postgres -Atc "show data_directory")/postmaster.pid)
dcpu() { awk '{print $14+$15}' /proc/$S/stat; }
# warm: one short run so connections exist
"$B" bench run --url http://127.0.0.1:$P --api-key $KEY --duration 1 --concurrency 16 --scenario $SC --json >/dev/null
d0=$(dcpu); p0=$(pgcpu)
out=$("$B" bench run --url http://127.0.0.1:$P --api-key $KEY --duration $DUR --concurrency 16 --scenario $SC --json | grep '^{')
d1=$(dcpu); p1=$(pgcpu)
echo "$out" | python3 -c "
import sys, json
d = json.loads(sys.stdin.read())
n = d['requests']
print(json.dumps({'label': '$L', 'scenario': d['scenario'], 'per_sec': round(d['per_sec']), 'p50_ms': d['p50_ms'], 'errors': d['errors'],
  'docket_us': round(($d1-$d0)/$TCK*1e6/n), 'pg_us': round(($p1-$p0)/$TCK*1e6/n), 'load': open('/proc/loadavg').read().split()[0]}))"
