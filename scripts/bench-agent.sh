#!/usr/bin/env bash
# The camera agent's part of `make bench` (called by bench.sh; prints a Markdown section):
#  1. CPU per stream: `xt agent` capturing the synthetic 720p30 and 1080p30 camera, encoding
#     with x264 ultrafast/zerolatency and publishing to a recorder on loopback, beside the
#     ffmpeg CLI encoding the same pictures (written by `xt testpattern`) with the same x264
#     settings, paced at 30 fps (-re). CPU is user+system time of the process over the window.
#  2. Capture → recorder-ingest latency, p50/p99, on loopback and through a veth pair with 5%
#     random drop (root), and whether any frame sent within its deadline was lost.
set -uo pipefail
XT=$(realpath "${1:?xt binary}")
SCRIPTS=$(realpath "$(dirname "$0")")
OUT=$(realpath -m "${2:-bench-out}")
SECONDS_RUN=${BENCH_AGENT_SECONDS:-20}
mkdir -p "$OUT/agent"
cd "$OUT/agent" || exit 1
[ -f recorder.key ] || "$XT" keygen --out recorder.key >/dev/null
[ -f camera.key ] || "$XT" keygen --out camera.key >/dev/null
# Raw pictures for ffmpeg go to memory when there is tmpfs (a 10 s 1080p loop is 0.9 GiB).
RAW=$OUT/agent
if [ -d /dev/shm ] && [ -w /dev/shm ]; then RAW=$(mktemp -d /dev/shm/xt-agent-bench.XXXXXX); fi
trap '[ "$RAW" != "$OUT/agent" ] && rm -rf "$RAW"' EXIT
MOTION="2-6:0.1,0.5>0.9,0.5; 5-9:0.8,0.2>0.3,0.8:0.15"

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
# cpu PID SECONDS -> percent of one core used by PID over the next SECONDS
cpu() {
  local before after
  before=$(ticks "$1")
  sleep "$2"
  after=$(ticks "$1")
  awk -v a="$before" -v b="$after" -v s="$2" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }'
}

# cpu_row W H KBIT -> "| WxH | agent % | ffmpeg % | ratio |"
cpu_row() {
  local w=$1 h=$2 kbit=$3 port=9410
  "$XT" testpattern --width "$w" --height "$h" --fps 30 --seconds 10 --motion "$MOTION" --out "$RAW/pattern-$h.yuv" >/dev/null
  rm -rf rec-cpu
  "$XT" recorder --http none --bind 127.0.0.1 --ports $port --key recorder.key --open --storage rec-cpu --min-free 0 --seconds $((SECONDS_RUN + 10)) >/dev/null 2>&1 &
  local recorder=$!
  sleep 0.5
  "$XT" agent --config /dev/null --key camera.key --host 127.0.0.1:$port --host-key @recorder.key.pub --name bench --id 1.90 \
    --video synthetic --audio none --width "$w" --height "$h" --fps 30 --bitrate "$kbit" --gop 60 \
    --set "motion=$MOTION" --set motion-period=10 --seconds $((SECONDS_RUN + 5)) >/dev/null 2>&1 &
  local agent=$!
  sleep 3
  local agent_cpu
  agent_cpu=$(cpu $agent "$SECONDS_RUN")
  wait $agent; kill $recorder 2>/dev/null; wait $recorder 2>/dev/null
  ffmpeg -v error -re -stream_loop -1 -f rawvideo -pix_fmt yuv420p -s "${w}x${h}" -r 30 -i "$RAW/pattern-$h.yuv" \
    -t $((SECONDS_RUN + 5)) -c:v libx264 -preset ultrafast -tune zerolatency -b:v "${kbit}k" -maxrate "${kbit}k" -bufsize "${kbit}k" \
    -g 60 -bf 0 -f null - >/dev/null 2>&1 &
  local ffmpeg=$!
  sleep 3
  local ffmpeg_cpu
  ffmpeg_cpu=$(cpu $ffmpeg "$SECONDS_RUN")
  wait $ffmpeg
  rm -f "$RAW/pattern-$h.yuv"
  echo "| ${w}x${h} at 30 fps, ${kbit} kbit/s | $agent_cpu% | $ffmpeg_cpu% | $(awk -v a="$agent_cpu" -v f="$ffmpeg_cpu" 'BEGIN { if (f > 0) printf "%.2f×", a / f; else print "-" }') |"
}

# latency_row LABEL RECORDER_NS AGENT_NS HOST -> a table row from the recorder's ingest report
latency_row() {
  local label=$1 rns=$2 ans=$3 host=$4 port=9420
  rm -rf rec-lat ingest.json agent.json
  $rns "$XT" recorder --http none --bind "$host" --ports $port --key recorder.key --open --storage rec-lat --min-free 0 --report ingest.json \
    --seconds $((SECONDS_RUN + 8)) >/dev/null 2>&1 &
  local recorder=$!
  sleep 0.5
  $ans "$XT" agent --config /dev/null --key camera.key --host "$host:$port" --host-key @recorder.key.pub --name bench --id 1.91 \
    --video synthetic --audio synthetic --width 1280 --height 720 --fps 30 --bitrate 2000 --seconds "$SECONDS_RUN" \
    --report agent.json >/dev/null 2>&1
  sleep 4
  wait $recorder 2>/dev/null
  local check
  check=$("$XT" recorder check --storage rec-lat)
  python3 - "$label" "$check" <<'PY'
import json, sys
label, check = sys.argv[1], json.loads(sys.argv[2])
ingest = json.load(open("ingest.json"))
agent = json.load(open("agent.json"))
v, a, p = ingest["video"], ingest["audio"], agent["publisher"]
gaps = sum(len(t["gaps"]) + t["missingFrames"] for t in check)
recorded = sum(t["frames"] for t in check)
encoded = agent["videoEncoded"] + agent["audioEncoded"]
print(f"| {label} | {v['latencyP50Milliseconds']:.1f} / {v['latencyP99Milliseconds']:.1f} | {a['latencyP50Milliseconds']:.1f} / {a['latencyP99Milliseconds']:.1f} "
      f"| {v['late'] + a['late']} | {agent['liveSkippedBySession']} | {p['lateSkipped']} | {p['backfilledFrames']} | {recorded} of {encoded}, {gaps} gaps |")
PY
}

echo "## Camera agent"
echo
echo "### CPU per stream"
echo
echo "\`xt agent\` capturing the synthetic camera (scripted motion, clock overlay), encoding with libx264 ultrafast/zerolatency"
echo "(GOP 60, VBV = bitrate) and publishing to \`xt recorder\` on loopback, beside the ffmpeg CLI encoding the same pictures"
echo "(\`xt testpattern\` → raw I420 in tmpfs, \`-re\` at 30 fps) with the same x264 settings to \`-f null\`. Percent of one core"
echo "(user + system) over ${SECONDS_RUN} s after a 3 s warm-up; $(nproc) cores, both encoders choose their own thread count."
echo
echo "| stream | xt agent (capture + encode + publish) | ffmpeg (read + encode) | agent / ffmpeg |"
echo "|---|---|---|---|"
cpu_row 1280 720 2000
cpu_row 1920 1080 4000
echo
echo "### Capture → recorder-ingest latency"
echo
echo "The synthetic 720p30 camera (2 Mbit/s) and microphone (Opus, 20 ms frames) for ${SECONDS_RUN} s; latency is the recorder's"
echo "wall clock at ingest minus the capture time carried with each frame (same machine, same clock), live frames only; an"
echo "audio frame's capture time is its first sample, so its latency includes the 20 ms it takes to fill. Deadline 500 ms."
echo "\"Late\" counts live frames that arrived after the deadline; \"skipped by the session\" counts live messages the"
echo "transport gave up on at the deadline; \"recorded\" is what the recorder holds after backfill."
echo
echo "| path | video p50 / p99 ms | audio p50 / p99 ms | late | skipped by the session | skipped late at the agent | backfilled | recorded |"
echo "|---|---|---|---|---|---|---|---|"
latency_row "loopback" "" "" 127.0.0.1
if [ "$(id -u)" -eq 0 ]; then
  bash "$SCRIPTS/netns.sh" up xtg 500mbit 50 >/dev/null
  latency_row "veth, tbf 500 Mbit, 5% random drop at the recorder" "ip netns exec xtgb" "ip netns exec xtga" 10.77.0.2
  bash "$SCRIPTS/netns.sh" down xtg
else
  echo "| veth, 5% drop | skipped: needs root | | | | | | |"
fi
echo
