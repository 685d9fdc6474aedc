#!/usr/bin/env bash
# `make demo`: the whole system on this machine, on loopback, until Ctrl-C:
#   - xt recorder (node network host, recordings, motion, alarms, web UI on http://127.0.0.1:8480/);
#   - two synthetic camera agents, frontdoor and garden (test pattern with a clock, objects that
#     cross the picture every 30 s, a tone), each authenticated by its key;
#   - an alarm subscriber (xt alarms) that prints each motion alarm.
# Everything lives in demo-data/ (keys, the web login, recordings), which the next run reuses.
# DEMO_SECONDS=N stops it after N seconds (for scripted runs).
set -euo pipefail
XT=${1:-.build/release/xt}
XT=$(cd "$(dirname "$XT")" && pwd)/$(basename "$XT")
WEB=$(pwd)/web
DATA=demo-data
HOST_PORT=${XT_DEMO_PORT:-9400}
HTTP_PORT=${XT_DEMO_HTTP_PORT:-8480}
mkdir -p "$DATA"
cd "$DATA"

for name in recorder frontdoor garden phone; do
  [ -f "$name.key" ] || "$XT" keygen --out "$name.key" >/dev/null
done
# Only these nodes may join (security by default: no --open).
{
  echo "$(cat frontdoor.key.pub) frontdoor 1.11"
  echo "$(cat garden.key.pub) garden 1.12"
  echo "$(cat phone.key.pub) phone 1.50"
} > authorized_keys
# The web UI's admin: a random password made on the first run, kept (0600) for the next.
if [ ! -f login.txt ]; then
  password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-14)
  printf 'admin %s\n' "$password" > login.txt
  chmod 600 login.txt
  printf '%s\n' "$password" | "$XT" recorder passwd admin --role admin 2>/dev/null > admin.line
fi
read -r user password < login.txt
cat > recorder.conf <<CONF
# Written by scripts/demo.sh (see Config/recorder.conf.example for every key).
storage = recordings
min-free = 1G
retention-days = 2
$(cat admin.line)
CONF

pids=()
stop() {
  trap - INT TERM
  echo
  echo "== stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  tail -n 1 recorder.log
  "$XT" recorder check --storage recordings > timeline.json 2>/dev/null || true
  python3 - timeline.json <<'PY' || true
import json, sys
for t in json.load(open(sys.argv[1])):
    print("  %-10s %-5s %7d frames, %7.1f s, %d gaps" % (t["camera"], t["kind"], t["frames"], t["seconds"], len(t["gaps"])))
PY
  echo "recordings stay in $(pwd)/recordings; run make demo again to go on"
  exit 0
}
trap stop INT TERM

XT_WEB_ROOT=$WEB "$XT" recorder --config recorder.conf --http 127.0.0.1:$HTTP_PORT --bind 127.0.0.1 --ports $HOST_PORT \
  --key recorder.key --authorized-keys authorized_keys > recorder.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "web UI on" recorder.log 2>/dev/null && break; sleep 0.1; done
if ! grep -q "web UI on" recorder.log; then
  echo "the recorder did not start:" >&2
  tail -n 5 recorder.log >&2
  stop
fi

agent() {
  local name=$1 id=$2 channel=$3 motion=$4
  "$XT" agent --config /dev/null --key "$name.key" --host 127.0.0.1:$HOST_PORT --host-key @recorder.key.pub --name "$name" --id "$id" \
    --channel "$channel" --width 1280 --height 720 --bitrate 2000 --set "motion=$motion" --set motion-period=30 > "agent-$name.log" 2>&1 &
  pids+=($!)
}
agent frontdoor 1.11 100 "5-9:0.1,0.6>0.8,0.6"
agent garden 1.12 102 "18-22:0.8,0.3>0.2,0.4:0.15"
"$XT" alarms --config /dev/null --key phone.key --host 127.0.0.1:$HOST_PORT --host-key @recorder.key.pub --name phone --id 1.50 \
  --state phone.state --starts-only 2>alarms.log > >(sed -u 's/^/  alarm: /') &
pids+=($!)

echo "== XTransport demo running on loopback"
echo "   web UI:  http://127.0.0.1:$HTTP_PORT/   login: $user / $password"
echo "   cameras: frontdoor and garden (720p30, sound; something crosses each picture every 30 s)"
echo "   alarms:  printed below as the subscriber 'phone' receives them"
echo "   data:    $(pwd) (logs: recorder.log, agent-*.log, alarms.log)"
echo "   Ctrl-C stops everything."
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
  stop
fi
while true; do sleep 1; done
