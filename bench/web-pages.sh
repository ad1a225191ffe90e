#!/usr/bin/env bash
# Page timings and page weight of the web desk (BENCHMARKS.md, "Web desk").
#
#   bench/web-pages.sh DOCKET_BINARY DATA_DIR [TICKETS]
#
# Bulk-loads TICKETS generated tickets (default 100000) into DATA_DIR unless it already holds
# a database, serves it, signs in through the login form, then:
#  - server time: wrk at 1 and 16 connections on the list, a search, a filtered view and a
#    ticket page (p50/p99 from wrk's latency distribution; client on the same 2 cores);
#  - page weight: bytes of each page and of every asset it loads, raw and gzip-compressed.
# Needs wrk (Debian package) and curl.
set -euo pipefail
B=${1:?docket binary}; DATA=${2:?data directory}; N=${3:-100000}
PORT=${PORT:-5611}; BASE="http://127.0.0.1:$PORT"; DUR=${DUR:-8}

if [ ! -e "$DATA/docket.db" ]; then
  "$B" bench load --data "$DATA" --tickets "$N" >/dev/null
fi
echo bench-password | "$B" user passwd --data "$DATA" admin --password-stdin >/dev/null
DOCKET_ADMIN_PASSWORD=bench-password "$B" serve --data "$DATA" --listen "127.0.0.1:$PORT" >/tmp/docket-web-bench.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "$BASE/api/app/ping/v1" >/dev/null && break; sleep 0.1; done

COOKIE=$(curl -s -D - -o /dev/null --data "username=admin&password=bench-password" "$BASE/login" \
  | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(session_id=[^;]*\).*/\1/p')
[ -n "$COOKIE" ] || { echo "login failed" >&2; exit 1; }

MID=$(( N / 2 ))
PAGES=("/tickets" "/tickets?q=latency" "/tickets?q=status%3Aopen+tags%3Aimportant" "/tickets/$MID")
echo "# $N tickets; wrk ${DUR}s per run"
printf '%-45s %5s %9s %9s %9s\n' page conns req/s p50_ms p99_ms
for page in "${PAGES[@]}"; do
  for c in 1 16; do
    out=$(wrk -t1 -c$c -d${DUR}s --latency -H "Cookie: $COOKIE" -H "Accept-Encoding: gzip" "$BASE$page")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    ms() { echo "$out" | awk -v p="$1" '$1==p {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; printf "%.2f", v}'; }
    printf '%-45s %5s %9s %9s %9s\n' "$page" "$c" "$rps" "$(ms 50%)" "$(ms 99%)"
  done
done

echo
echo "# page weight (bytes): HTML raw / gzip, plus every asset the page links (raw / gzip)"
ASSETS=$(curl -s -H "Cookie: $COOKIE" "$BASE/tickets" | grep -o '/assets/[^"]*' | sort -u)
asset_raw=0; asset_gz=0
for a in $ASSETS; do
  r=$(curl -s -o /dev/null -w '%{size_download}' "$BASE$a")
  g=$(curl -s -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: gzip' "$BASE$a")
  echo "asset $a: $r / $g"
  asset_raw=$((asset_raw + r)); asset_gz=$((asset_gz + g))
done
for page in "${PAGES[@]}" "/tickets/new" "/admin"; do
  r=$(curl -s -o /dev/null -w '%{size_download}' -H "Cookie: $COOKIE" "$BASE$page")
  g=$(curl -s -o /dev/null -w '%{size_download}' -H "Cookie: $COOKIE" -H 'Accept-Encoding: gzip' "$BASE$page")
  printf '%-45s html %7s / %6s   with assets %7s / %6s\n' "$page" "$r" "$g" "$((r + asset_raw))" "$((g + asset_gz))"
done
