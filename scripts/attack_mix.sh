#!/usr/bin/env bash
# Attack mix against a running Docket: while slowloris connections, expensive searches,
# oversized queries and password guessing run, measure how quickly `ping` and `get_ticket`
# still answer. Prints p50/p95/max latencies of the honest calls and the attackers' replies.
#
#   scripts/attack_mix.sh URL API_KEY TICKET_ID [SECONDS]
#   e.g. scripts/attack_mix.sh http://127.0.0.1:5580 "$KEY" tabc123 30
#
# Needs bash (for /dev/tcp), curl and awk. Run it against a test server only.
set -euo pipefail
url=${1:?URL}; key=${2:?API key}; ticket=${3:?a ticket id}; secs=${4:-30}
hostport=${url#http://}; host=${hostport%:*}; port=${hostport##*:}
out=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
end=$((SECONDS + secs))

# 200 slowloris connections: one header line every 5 s, never the end of the head.
slowloris() {
  trap '' PIPE  # a write to a socket the server closed then fails instead of killing us
  exec {fd}<>"/dev/tcp/$host/$port" || return 0
  printf 'GET /api/app/ping/v1 HTTP/1.1\r\nHost: x\r\n' >&"$fd" || return 0
  while ((SECONDS < end)); do sleep 5; printf 'X-Slow: 1\r\n' >&"$fd" 2>/dev/null || { echo closed >>"$out/slowloris"; return 0; }; done
}
for _ in $(seq 200); do slowloris & done

# Expensive searches: two phrases of 126 and 127 words (just under the 256-word limit), ORed.
phrase=$(printf 'disk full %.0s' $(seq 63) | sed 's/ $//')
search_loop() { while ((SECONDS < end)); do
  curl -s -o /dev/null -w '%{http_code}\n' -H "X-API-Key: $key" -H 'Content-Type: application/json' \
    -d "{\"query\": \"\\\"$phrase\\\" | \\\"zzz $phrase\\\"\"}" "$url/api/app/search_tickets/v1" >>"$out/search"; done; }
for _ in 1 2 3 4 5 6; do search_loop & done

# Oversized queries (40 KB) and password guessing.
big=$(head -c 40000 /dev/zero | tr '\0' a)
while ((SECONDS < end)); do curl -s -o /dev/null -w '%{http_code}\n' -H "X-API-Key: $key" \
  --data-urlencode "query=$big" "$url/api/app/search_tickets/v1" >>"$out/big"; done &
while ((SECONDS < end)); do curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
  -d '{"username": "admin", "password": "guess"}' "$url/api/user/login/v1" >>"$out/login"; done &

# The honest client.
while ((SECONDS < end)); do
  curl -s -o /dev/null -w '%{time_total}\n' "$url/api/app/ping/v1" >>"$out/ping"
  curl -s -o /dev/null -w '%{time_total}\n' -H "X-API-Key: $key" "$url/api/app/get_ticket/v1?id=$ticket" >>"$out/get"
  sleep 0.2
done
wait 2>/dev/null || true

stats() { sort -n "$1" | awk -v name="$2" '{v[NR]=$1} END {if (NR==0) {print name": none"; exit}
  printf "%-12s n=%-5d p50=%.1f ms  p95=%.1f ms  max=%.1f ms\n", name, NR, v[int(NR*0.5)+(NR>1?0:1)]*1000, v[int(NR*0.95)+(NR>1?0:1)]*1000, v[NR]*1000}'; }
stats "$out/ping" ping
stats "$out/get" get_ticket
for f in search big login; do printf '%-12s ' "$f"; sort "$out/$f" 2>/dev/null | uniq -c | tr '\n' ' '; echo; done
printf 'slowloris    %s of 200 closed by the server\n' "$(cat "$out/slowloris" 2>/dev/null | wc -l)"
