#!/usr/bin/env bash
# Glass-to-glass latency of the web UI's live view in headless Chromium: a synthetic camera
# (xt agent) draws its capture time as a bar code into every picture; the live page reads the
# code off each frame it shows (requestVideoFrameCallback + canvas) and compares it with the
# page's clock at the moment of display. Same machine, so one clock. Prints a Markdown section.
# Usage: bench-web.sh XT OUT
set -uo pipefail
XT=$(realpath "$1")
OUT=$(realpath -m "$2")
WEB=$(realpath web)
SCRIPTS=$(realpath scripts)
SECONDS_MEASURED=${BENCH_WEB_SECONDS:-30}
DIR=$(mktemp -d "$OUT/web.XXXXXX")
cd "$DIR"
for name in recorder cam; do "$XT" keygen --out $name.key >/dev/null 2>&1; done
password=bench-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" | "$XT" recorder passwd bench --role viewer 2>/dev/null > users.line
printf 'storage = recordings\nmin-free = 0\n%s\n' "$(cat users.line)" > recorder.conf

rows=()
# The WebSocket path at two sizes, then LL-HLS (the Media Source fed from the HLS parts, as a
# player without a WebSocket would be; hls.js cannot be installed here) at the first.
for shape in "1280 720 2000 ws" "1920 1080 4000 ws" "1280 720 2000 llhls"; do
  read -r width height kbits transport <<<"$shape"
  port=$((20000 + RANDOM % 10000)); http=$((port + 10000))
  XT_WEB_ROOT=$WEB "$XT" recorder --config recorder.conf --http 127.0.0.1:$http --bind 127.0.0.1 --ports $port --key recorder.key --open \
    > recorder.log 2>&1 &
  recorder=$!
  for _ in $(seq 100); do grep -q "web UI on" recorder.log && break; sleep 0.1; done
  "$XT" agent --config /dev/null --key cam.key --host 127.0.0.1:$port --host-key @recorder.key.pub --name cam --id 1.11 --channel 100 \
    --width $width --height $height --bitrate $kbits > agent.log 2>&1 &
  agent=$!
  sleep 3
  result=$(PYTHONPATH=$SCRIPTS python3 - "http://127.0.0.1:$http" bench "$password" "$SECONDS_MEASURED" "$transport" <<'PY'
import json, sys, time
from webdriver import Chromium
base, user, password, seconds, transport = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
with Chromium() as browser:
    browser.login(base, user, password)
    if transport != "ws":
        browser.open(base + "/?transport=" + transport)
    browser.wait("return !!(window.players && window.players.cam && window.players.cam.video.currentTime > 0)", 30)
    time.sleep(5)  # the start (a GOP sent at once) is not steady state
    browser.js("window.players.cam.samples.clear()")
    time.sleep(seconds)
    result = browser.js("const p = window.players.cam; const v = p.video; const q = v.getVideoPlaybackQuality(); const b = (p.behindSamples || []).slice().sort((x, y) => x - y); return [p.latency(), q.totalVideoFrames, q.droppedVideoFrames, b.length ? b[Math.floor(b.length / 2)] : null]")
    print(json.dumps(result))
PY
)
  kill -TERM $agent $recorder 2>/dev/null; wait $agent $recorder 2>/dev/null
  p50=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f" % r[0]["p50"])' "$result" 2>/dev/null || echo "-")
  p95=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f" % r[0]["p95"])' "$result" 2>/dev/null || echo "-")
  max=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f" % r[0]["max"])' "$result" 2>/dev/null || echo "-")
  samples=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r[0]["samples"])' "$result" 2>/dev/null || echo "-")
  ahead=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f" % (r[3] * 1000))' "$result" 2>/dev/null || echo "-")
  dropped=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%d of %d" % (r[2], r[1]))' "$result" 2>/dev/null || echo "-")
  path=$([ "$transport" = ws ] && echo "WebSocket" || echo "LL-HLS parts (0.2 s)")
  rows+=("| ${width}×${height} 30 fps, $kbits kbit/s | $path | $p50 | $p95 | $max | $samples | $ahead | $dropped |")
done
rm -rf "$DIR"

echo "## Web UI: live view glass-to-glass"
echo
echo "Headless Chromium $(chromium --version 2>/dev/null | awk '{print $2}') on loopback, the recorder's live view (fragmented MP4, one"
echo "fragment per frame, over a WebSocket into Media Source Extensions). A synthetic camera draws its capture"
echo "time as a bar code; the page reads it off every frame it shows and subtracts it from the page's clock at"
echo "display time (requestVideoFrameCallback's expectedDisplayTime). Capture → encode (libx264) → xtransport →"
echo "recorder → WebSocket → decode → display, measured for ${SECONDS_MEASURED} s after a 5 s start. Everything runs on these $(nproc) cores"
echo "at once (agent, recorder, browser). The LL-HLS row feeds the same Media Source from the recorder's LL-HLS instead:"
echo "the newest independent part, then each next part asked for before it exists (the recorder answers when it is"
echo "complete), as the page does with \`?transport=llhls\`. Bar: LL-HLS p95 ≤ 1 s. For reference (not run here): LL-HLS"
echo "players (hls.js, AVPlayer) sit 1–2 s behind, holding back three parts or more; WebRTC 0.1–0.2 s."
echo
echo "| camera | path | p50 ms | p95 ms | max ms | frames measured | buffered ahead of the playhead, median ms | frames the browser dropped |"
echo "|---|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do echo "$row"; done
