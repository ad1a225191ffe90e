#!/usr/bin/env bash
# Attack mix against a running Docket: normal traffic (`docket bench run`: get_ticket,
# search_tickets and create_ticket, closed loop, 4 connections) measured alone ("quiet") or
# while slowloris connections, expensive searches, oversized queries and password guessing
# run beside it ("attack"). Prints the bench table (req/s, latency percentiles, errors) and,
# under attack, what the attackers got back.
#
#   scripts/attack_mix.sh quiet|attack URL HONEST_KEY ATTACKER_KEY [SECONDS_PER_SCENARIO]
#   e.g. DOCKET=target/release/docket scripts/attack_mix.sh attack http://127.0.0.1:5580 "$KEY" "$BAD" 20
#   (ATTACK_NICE=19 to keep the attackers' own CPU use from the measurement; see below)
#
# The server needs tickets for the normal traffic (`docket bench load --tickets 2000`) and,
# for the searches to be expensive, big ones (30 tickets of 1 MB of "disk full"; see
# BENCHMARKS.md). ATTACKER_KEY should be a key of its own (e.g. one with no privileges).
# Needs bash (for /dev/tcp), curl and awk. Run it against a test server only.
set -euo pipefail
mode=${1:?quiet or attack}; url=${2:?URL}; key=${3:?honest API key}; bad=${4:?attacker API key}
secs=${5:-20}
docket=${DOCKET:-docket}
hostport=${url#http://}; host=${hostport%:*}; port=${hostport##*:}
out=$(mktemp -d)
attackers=()
cleanup() { for p in "${attackers[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$out"; }
trap cleanup EXIT
end=$((SECONDS + 3 * secs + 60))

honest() {
  "$docket" bench run --url "$url" --api-key "$key" --scenario get-id,search-word,create \
    --concurrency 4 --duration "$secs"
}
if [[ $mode == quiet ]]; then honest; exit 0; fi

# ATTACK_NICE=19 runs the attackers (bash loops, curl) at that niceness: on a machine whose
# cores the server, the honest client and the attackers share, unniced attackers measure
# mostly their own CPU use (forking thousands of curls), not the server's; real attackers
# run elsewhere and cost the server only their requests. The server still answers every
# request they send.
attack() { renice -n "${ATTACK_NICE:-0}" -p "$BASHPID" >/dev/null; "$@"; }

# 200 slowloris connections: one header line every 5 s, never the end of the head.
slowloris() {
  trap '' PIPE  # a write to a socket the server closed then fails instead of killing us
  exec {fd}<>"/dev/tcp/$host/$port" || return 0
  printf 'GET /api/app/ping/v1 HTTP/1.1\r\nHost: x\r\n' >&"$fd" || return 0
  while ((SECONDS < end)); do sleep 5; printf 'X-Slow: 1\r\n' >&"$fd" 2>/dev/null || { echo closed >>"$out/slowloris"; return 0; }; done
}
for _ in $(seq 200); do attack slowloris & attackers+=($!); done

# Expensive searches, six loops: two long phrases of 126 and 127 words ORed (just under the
# 256-word limit), and 64 four-word phrases ORed (each FTS5 phrase walks every position).
long=$(printf 'disk full %.0s' $(seq 63) | sed 's/ $//')
long_query="\\\"$long\\\" | \\\"zzz $long\\\""
short_query=$(for i in $(seq 16); do printf '\\"disk disk full full\\" | \\"full full disk disk\\" | \\"disk disk disk full\\" | \\"full disk disk disk\\" | '; done | sed 's/ | $//')
search_loop() { while ((SECONDS < end)); do
  curl -s -o /dev/null -w '%{http_code}\n' -H "X-API-Key: $bad" -H 'Content-Type: application/json' \
    -d "{\"query\": \"$1\"}" "$url/api/app/search_tickets/v1" >>"$out/search"; done; }
for q in "$long_query" "$long_query" "$long_query" "$short_query" "$short_query" "$short_query"; do
  attack search_loop "$q" & attackers+=($!)
done

# Oversized queries (40 KB) and password guessing.
big=$(head -c 40000 /dev/zero | tr '\0' a)
big_loop() { while ((SECONDS < end)); do curl -s -o /dev/null -w '%{http_code}\n' -H "X-API-Key: $bad" \
  --data-urlencode "query=$big" "$url/api/app/search_tickets/v1" >>"$out/big"; done; }
login_loop() { while ((SECONDS < end)); do curl -s -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
  -d '{"username": "admin", "password": "guess"}' "$url/api/user/login/v1" >>"$out/login"; done; }
attack big_loop & attackers+=($!)
attack login_loop & attackers+=($!)

sleep 2  # the attack is under way before the first measurement
honest
for f in search big login; do printf '%-10s ' "$f"; sort "$out/$f" 2>/dev/null | uniq -c | tr '\n' ' '; echo; done
printf 'slowloris  %s of 200 closed by the server\n' "$(cat "$out/slowloris" 2>/dev/null | wc -l)"
