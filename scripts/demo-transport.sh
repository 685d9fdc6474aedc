#!/usr/bin/env bash
# `make demo-transport`: a listener and two peers on loopback; then a recorder and two synthetic
# camera agents (scripted motion, audio) for 20 s, with the recording checked and exported.
# Keys, received files and recordings live in demo-data/transport/, which the next run reuses.
set -euo pipefail
XT=${1:-.build/release/xt}
DATA=demo-data/transport
PORT=${XT_DEMO_PORT:-9400}
mkdir -p "$DATA"
cd "$DATA"
XT=$(cd "$(dirname "../../$XT")" && pwd)/$(basename "$XT")

for name in listener alice bob recorder frontdoor garden; do
  [ -f "$name.key" ] || "$XT" keygen --out "$name.key" >/dev/null 2>&1
done
cat alice.key.pub bob.key.pub > authorized_keys
[ -f payload.bin ] || head -c $((64 << 20)) /dev/urandom > payload.bin

"$XT" listen --bind 127.0.0.1:$PORT --key listener.key --authorized-keys authorized_keys \
  --out-dir received --sessions 3 --stats > listener.log 2>&1 &
LISTENER=$!
trap 'kill $LISTENER 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening listener.log 2>/dev/null && break; sleep 0.1; done

echo "== alice: a message and a 64 MiB file"
"$XT" send --to 127.0.0.1:$PORT --peer-key @listener.key.pub --key alice.key \
  --message "hello from alice" --file payload.bin --stats
echo "== bob: a message, then a throughput and latency bench"
"$XT" send --to 127.0.0.1:$PORT --peer-key @listener.key.pub --key bob.key --message "hello from bob"
"$XT" bench --to 127.0.0.1:$PORT --peer-key @listener.key.pub --key bob.key --bytes $((512 << 20)) --pings 500
wait $LISTENER || true
trap - EXIT
echo "== listener"
cat listener.log
cmp -s payload.bin received/payload.bin && echo "received/payload.bin is byte-identical to payload.bin"

echo "== a recorder and two camera agents (synthetic 640x360 video with scripted motion, synthetic audio) for 20 s"
REC_PORT=$((PORT + 1))
"$XT" recorder --http 127.0.0.1:$((PORT + 2)) --bind 127.0.0.1 --ports $REC_PORT --key recorder.key --open --storage recordings --min-free 0 --report ingest.json \
  --seconds 24 > recorder.log 2>&1 &
RECORDER=$!
trap 'kill $RECORDER 2>/dev/null || true' EXIT
sleep 0.5
id=10
agents=()
for camera in frontdoor garden; do
  id=$((id + 1))
  "$XT" agent --config /dev/null --key $camera.key --host 127.0.0.1:$REC_PORT --host-key @recorder.key.pub --name $camera --id 1.$id \
    --channel $((100 + 2 * (id - 11))) --width 640 --height 360 --bitrate 800 --set "motion=4-8:0.1,0.6>0.8,0.6; 12-15:0.7,0.2>0.2,0.3:0.15" \
    --seconds 20 > agent-$camera.log 2>&1 &
  agents+=($!)
done
wait "${agents[@]}" || true
wait $RECORDER || true
trap - EXIT
grep -h "agent stopped" agent-*.log
tail -1 recorder.log
"$XT" recorder check --storage recordings > timeline.json
python3 - timeline.json <<'PY'
import json, sys
for t in json.load(open(sys.argv[1])):
    print("  %-10s %-5s %6d frames, %6.1f s, %d gaps, %d missing" % (t["camera"], t["kind"], t["frames"], t["seconds"], len(t["gaps"]), t["missingFrames"]))
PY
"$XT" recorder events --storage recordings > events.json
python3 - events.json <<'PY'
import json, sys, collections
events = json.load(open(sys.argv[1]))
print("  motion events: " + ", ".join("%s %d" % kv for kv in sorted(collections.Counter(e["camera"] for e in events).items())) + " (snapshots under recordings/<camera>/events/)")
PY
for camera in frontdoor garden; do
  "$XT" recorder export --storage recordings --camera $camera --out $camera.mp4
done
echo "recordings exported to $(pwd)/frontdoor.mp4 and garden.mp4 (each run adds to the same recordings)"
