#!/bin/bash
# Sets up a server for scripts/attack_mix.sh (BENCHMARKS.md, "Attack mix"): a fresh data
# directory /tmp/atk_PORT, 2,000 generated tickets, 30 tickets of 1 MB, an attacker key without
# privileges. usage: scripts/attack_setup.sh BINARY PORT; then the keys are in
# /tmp/atk_key_PORT and /tmp/atk_bad_PORT and the server pid in /tmp/atk_pid_PORT.
set -e
D=$1; P=$2; DATA=/tmp/atk_$P
rm -rf $DATA
KEY=$($D api-key create --create --title bench --admin --data $DATA 2>/dev/null | tail -1)
DOCKET_ADMIN_PASSWORD=x $D serve --data $DATA --listen 127.0.0.1:$P > /tmp/atk_serve_$P.log 2>&1 &
echo $! > /tmp/atk_pid_$P
sleep 2
$D bench load --url http://127.0.0.1:$P --api-key $KEY --tickets 2000 > /dev/null 2>&1
python3 - "$P" "$KEY" <<'PY'
import json, sys, urllib.request
p, key = sys.argv[1], sys.argv[2]
def call(name, params):
    req = urllib.request.Request(f"http://127.0.0.1:{p}/api/app/{name}/v1", data=json.dumps(params).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
body = "disk full " * 100000
for i in range(30):
    assert call("create_ticket", {"subject": f"Big {i}", "body": body})["code"] == 0
v = call("create_api_key", {"title": "attacker", "privileges": {}})
open(f"/tmp/atk_bad_{p}", "w").write(v["plain_key"])
PY
echo $KEY > /tmp/atk_key_$P
