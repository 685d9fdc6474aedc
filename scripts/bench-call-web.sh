#!/usr/bin/env bash
# Part of `make bench`: call video to the browser, glass to glass (issue 14). A door rings the
# doorbell name "web" with video; headless Chromium, logged in to `xt recorder`'s call page,
# answers with its fake camera and microphone. The door's synthetic camera draws its capture
# time as a bar code into every picture; the page reads it off each picture it decodes
# (WebCodecs) and compares it with its own clock when the canvas next reaches the screen
# (requestAnimationFrame after the draw). Same machine, so one clock. Two doors: `xt call ring
# web --video` (its own encode, 640×360 at 15 fps) and a camera agent's doorbell (SIGUSR1; the
# recording's own encode goes into the call). Prints a Markdown section.
#   bench-call-web.sh XT OUT_DIR
set -uo pipefail
XT=$(realpath "$1")
OUT=$(realpath -m "$2")
WEB=$(realpath web)
SCRIPTS=$(realpath scripts)
SECONDS_MEASURED=${BENCH_CALL_WEB_SECONDS:-20}
mkdir -p "$OUT"
DIR=$(mktemp -d "$OUT/callweb.XXXXXX")
cd "$DIR"
for name in recorder door cam; do "$XT" keygen --out $name.key >/dev/null 2>&1; done
password=bench-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" | "$XT" recorder passwd bench --role admin 2>/dev/null > users.line
printf 'storage = recordings\nmin-free = 0\n%s\n' "$(cat users.line)" > recorder.conf

# measure LABEL START_DOOR… : starts the recorder, the browser on the call page, then the door
# (a command line run in the background, its pid in $door); the page answers; prints a row.
measure() {
  local label=$1
  shift
  port=$((20000 + RANDOM % 10000)); http=$((port + 10000))
  XT_WEB_ROOT=$WEB "$XT" recorder --config recorder.conf --http 127.0.0.1:$http --bind 127.0.0.1 --ports $port --key recorder.key --open \
    > recorder.log 2>&1 &
  local recorder=$!
  for _ in $(seq 100); do grep -q "web UI on" recorder.log && break; sleep 0.1; done
  local result
  result=$(PYTHONPATH=$SCRIPTS python3 - "http://127.0.0.1:$http" bench "$password" "$SECONDS_MEASURED" "$port" "$*" <<'PY'
import json, os, signal, subprocess, sys, time
from webdriver import Chromium
base, user, password, seconds, port, door = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5], sys.argv[6]
with Chromium(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]) as browser:
    browser.login(base, user, password)
    browser.open(base + "/call.html")
    if not browser.wait("return !!window.callStats && window.callStats.ready", 30): raise SystemExit("the call page did not join")
    # Its own process group, so the door and whatever its shell started stop together (an agent
    # started in the background outlived the shell and ran on, a 30 fps encode, after the bench).
    process = subprocess.Popen(["bash", "-c", door.replace("PORT", port)], stdout=open("door.log", "w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        if not browser.wait("return window.callStats.state === 'ringing'", 30): raise SystemExit("the page did not ring")
        browser.js("document.getElementById('answer').click()")
        browser.wait("return window.callStats.videoDecoded > 30", 30)
        time.sleep(5)  # the start (a keyframe, the encoder's rate settling) is not steady state
        browser.js("window.callLatency.clear()")
        before = browser.js("return [window.callStats.videoReceived, window.callStats.videoDecoded, window.callStats.keyframeRequests]")
        time.sleep(seconds)
        after = browser.js("return [window.callStats.videoReceived, window.callStats.videoDecoded, window.callStats.keyframeRequests]")
        summary = browser.js("return window.callLatency.summary()")
        browser.js("document.getElementById('hangup').click()")
        print(json.dumps({"latency": summary, "received": after[0] - before[0], "decoded": after[1] - before[1], "asked": after[2] - before[2]}))
    finally:
        time.sleep(1)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
PY
)
  kill -TERM $recorder 2>/dev/null; wait $recorder 2>/dev/null
  python3 - "$label" "$result" "$SECONDS_MEASURED" <<'PY'
import json, sys
label, text, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
try:
    r = json.loads(text); l = r["latency"]
    print(f"| {label} | {l['p50']:.0f} | {l['p95']:.0f} | {l['max']:.0f} | {l['samples']} | {r['decoded'] / seconds:.1f} | {r['asked']} |")
except Exception:
    print(f"| {label} | - | - | - | - | - | - |")
PY
}

rows=()
rows+=("$(measure "\`xt call ring web --video\`: 640×360, 15 fps, its own encode" \
  "$XT call ring web --video --camera synthetic --microphone none --speaker none --seconds $((SECONDS_MEASURED + 40)) --key door.key --name door --id 1.5 --host 127.0.0.1:PORT --host-key @recorder.key.pub --config none")")
echo "  ${rows[-1]}" >&2
printf 'calls = answer\ndoorbell = web\n' > cam.conf
rows+=("$(measure "camera agent's doorbell (SIGUSR1): 1280×720, 30 fps, the recording's encode" \
  "$XT agent --config cam.conf --key cam.key --host 127.0.0.1:PORT --host-key @recorder.key.pub --name cam --id 1.11 --channel 100 & sleep 3; kill -USR1 \$!; wait")")
echo "  ${rows[-1]}" >&2
rm -rf "$DIR"

echo "### Call video in the browser, glass to glass"
echo
echo "Headless Chromium $(chromium --version 2>/dev/null | awk '{print $2}') on loopback answers a doorbell on the recorder's call page"
echo "with its fake camera and microphone. The door's synthetic camera draws its capture time as a bar code;"
echo "the page reads it off each picture WebCodecs decodes and subtracts it from the page's clock at the next"
echo "animation frame after the draw. Capture → libx264 → xtransport → the recorder's host → the recorder's"
echo "WebSocket → VideoDecoder → canvas, for ${SECONDS_MEASURED} s after a 5 s start, everything on these $(nproc) cores at"
echo "once (door, recorder, browser encoding its own camera). Bar: p95 ≤ 150 ms. For reference (not run here):"
echo "WebRTC calls sit at 100–200 ms glass to glass on a LAN."
echo
echo "| door | p50 ms | p95 ms | max ms | pictures timed | pictures decoded per second | keyframes asked |"
echo "|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do echo "$row"; done
