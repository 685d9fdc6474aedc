#!/usr/bin/env bash
# The recorder's part of `make bench` (called by bench.sh; prints a Markdown section):
#  1. Streams recorded at once: N cameras (`xt replay`: one 1080p30 4 Mbit/s clip, encoded
#     once, published live by N nodes over loopback) into one `xt recorder` (fMP4 segments and
#     index; motion off, since replayed cameras send no grids and decoding 32 × 1080p is not
#     what is measured), beside N `ffmpeg -re -c copy -f segment` processes segmenting the same
#     clip from a file. CPU is user+system time of the recorder (of all ffmpeg processes) over
#     the window, per stream; disk is bytes written. Afterwards `xt recorder check` must show
#     no gap.
#  2. Motion detector cost per picture at 1080p: at the agent (raw pictures) and at the
#     recorder (decode + detect, for cameras whose agent sends no grids).
#  3. Motion onset → alarm at an `xt alarms` subscriber, p50/p99, over scripted events.
set -uo pipefail
XT=$(realpath "${1:?xt binary}")
OUT=$(realpath -m "${2:-bench-out}")
STREAMS=${BENCH_STREAMS:-32}
WINDOW=${BENCH_RECORDER_WINDOW:-20}
mkdir -p "$OUT/recorder"
cd "$OUT/recorder" || exit 1
[ -f recorder.key ] || "$XT" keygen --out recorder.key >/dev/null
[ -f camera.key ] || "$XT" keygen --out camera.key >/dev/null
[ -f phone.key ] || "$XT" keygen --out phone.key >/dev/null

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
written() { awk '/^write_bytes/ { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
sum() { local total=0; for pid in "$@"; do total=$((total + $("$2" "$pid" 2>/dev/null || echo 0))); done; echo $total; }

# --- 1. streams
"$XT" replay --write clip.h264 --host-key @recorder.key.pub --cameras 1 > clip.txt 2>&1
clip_rate=$(sed -n 's/.* frames, \([0-9]*\) kbit\/s.*/\1/p' clip.txt)

rm -rf rec
"$XT" recorder --http none --bind 127.0.0.1 --ports 9440 --key recorder.key --open --storage rec --min-free 0 \
  --set motion=off --seconds $((WINDOW + 60)) > recorder.log 2>&1 &
recorder=$!
sleep 1
"$XT" replay --cameras "$STREAMS" --seconds $((WINDOW + 15)) --host 127.0.0.1:9440 --host-key @recorder.key.pub > replay.log 2>&1 &
replay=$!
for _ in $(seq 1 120); do grep -q "publishing for" replay.log && break; sleep 0.5; done
sleep 5
t0=$(ticks $recorder); w0=$(written $recorder); s0=$(date +%s.%N)
sleep "$WINDOW"
t1=$(ticks $recorder); w1=$(written $recorder); s1=$(date +%s.%N)
wait $replay
sleep 3
kill -INT $recorder 2>/dev/null; wait $recorder 2>/dev/null
xt_cpu=$(awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v hz="$hz" -v n="$STREAMS" 'BEGIN { printf "%.2f", (b - a) / hz / (s1 - s0) * 100 / n }')
xt_total=$(awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v hz="$hz" 'BEGIN { printf "%.0f", (b - a) / hz / (s1 - s0) * 100 }')
xt_disk=$(awk -v a="$w0" -v b="$w1" -v s0="$s0" -v s1="$s1" 'BEGIN { printf "%.1f", (b - a) / (s1 - s0) / 1e6 }')
"$XT" recorder check --storage rec > check.json
read -r cameras gaps missing frames <<< "$(python3 - check.json <<'PY'
import json, sys
t = [x for x in json.load(open(sys.argv[1])) if x["kind"] == "video"]
print(len(t), sum(len(x["gaps"]) for x in t), sum(x["missingFrames"] for x in t), sum(x["frames"] for x in t))
PY
)"

# ffmpeg: one segmenter per stream, reading the same clip at its frame rate (from MP4: raw H.264
# cannot be looped, it does not seek).
ffmpeg -nostdin -hide_banner -loglevel error -y -framerate 30 -f h264 -i clip.h264 -c copy clip.mp4
rm -rf ff && mkdir -p ff
pids=()
for i in $(seq 1 "$STREAMS"); do
  mkdir -p "ff/$i"
  ffmpeg -nostdin -hide_banner -loglevel error -re -stream_loop -1 -i clip.mp4 -c copy -f segment -segment_time 10 \
    -segment_format mp4 -reset_timestamps 1 -t $((WINDOW + 10)) "ff/$i/%05d.mp4" &
  pids+=($!)
done
sleep 5
f0=0; fw0=0; for pid in "${pids[@]}"; do f0=$((f0 + $(ticks "$pid"))); fw0=$((fw0 + $(written "$pid"))); done; fs0=$(date +%s.%N)
sleep "$WINDOW"
f1=0; fw1=0; for pid in "${pids[@]}"; do f1=$((f1 + $(ticks "$pid"))); fw1=$((fw1 + $(written "$pid"))); done; fs1=$(date +%s.%N)
wait "${pids[@]}" 2>/dev/null
ff_cpu=$(awk -v a="$f0" -v b="$f1" -v s0="$fs0" -v s1="$fs1" -v hz="$hz" -v n="$STREAMS" 'BEGIN { printf "%.2f", (b - a) / hz / (s1 - s0) * 100 / n }')
ff_disk=$(awk -v a="$fw0" -v b="$fw1" -v s0="$fs0" -v s1="$fs1" 'BEGIN { printf "%.1f", (b - a) / (s1 - s0) / 1e6 }')
ratio=$(awk -v a="$xt_cpu" -v f="$ff_cpu" 'BEGIN { if (f > 0) printf "%.2f×", a / f; else print "-" }')

# --- 2. motion detector cost
motion=$("$XT" replay --motion-bench --host-key @recorder.key.pub --cameras 1 2>/dev/null | tail -1)
read -r agent_ms decode_ms detect_ms per_analysed <<< "$(python3 -c "import json,sys; m=json.loads(sys.argv[1]); print(m['agentDetectMilliseconds'], m['recorderDecodeMilliseconds'], m['recorderDetectMilliseconds'], m['recorderMillisecondsPerAnalysedPicture'])" "$motion")"

# --- 3. onset → alarm: an object crosses the picture for 1.5 s every 4 s. The same events go
# to a mosquitto broker (Frigate's topics), where mosquitto_sub stamps each on arrival.
rm -rf rec-alarm phone.state alarms.log mqtt.log mosquitto
mqtt_port=$((33000 + RANDOM % 6000))
mkdir -p mosquitto
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n%s' "$mqtt_port" "$([ "$(id -u)" -eq 0 ] && echo 'user root')" > mosquitto/mosquitto.conf
python3 -c "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, set()); os.execv(sys.argv[1], sys.argv[1:])" \
  /usr/sbin/mosquitto -c mosquitto/mosquitto.conf > mosquitto/broker.log 2>&1 &
broker=$!
sleep 0.5
mosquitto_sub -h 127.0.0.1 -p $mqtt_port -q 1 -t xt/events -t xt/yard/motion -F '%U %t %p' -W 100 > mqtt.log 2>/dev/null &
mqtt_sub=$!
"$XT" recorder --http none --bind 127.0.0.1 --ports 9445 --key recorder.key --open --storage rec-alarm --min-free 0 --set cooldown=1.5 \
  --set mqtt.host=127.0.0.1 --set mqtt.port=$mqtt_port --set mqtt.prefix=xt --set mqtt.motion-off-delay=1 --seconds 95 > recorder-alarm.log 2>&1 &
recorder=$!
sleep 1
"$XT" alarms --config /dev/null --key phone.key --host 127.0.0.1:9445 --host-key @recorder.key.pub --name phone --id 1.50 \
  --state phone.state --starts-only --seconds 92 > alarms.log 2>&1 &
subscriber=$!
sleep 1
"$XT" agent --config /dev/null --key camera.key --host 127.0.0.1:9445 --host-key @recorder.key.pub --name yard --id 1.20 \
  --width 1280 --height 720 --audio none --set "motion=1-2.5:0.2,0.5>0.8,0.5:0.3" --set motion-period=4 --seconds 88 > agent.log 2>&1
wait $subscriber $recorder 2>/dev/null
kill $mqtt_sub $broker 2>/dev/null; wait $mqtt_sub $broker 2>/dev/null
"$XT" recorder check --storage rec-alarm > check-alarm.json
# Onset → MQTT: the `events` message of type new, and `yard/motion` turning ON.
read -r mqtt_events mqtt_p50 mqtt_p99 mqtt_max motion_p50 motion_p99 <<< "$(python3 - mqtt.log check-alarm.json <<'PY'
import json, sys, datetime
first = [x for x in json.load(open(sys.argv[2])) if x["kind"] == "video"][0]["firstCapture"]
origin = datetime.datetime.fromisoformat(first + "+00:00").timestamp()
def onset(start):
    return origin + 4 * round((start - origin - 1) / 4) + 1
events, motion, last_on = [], [], None
for line in open(sys.argv[1]):
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) < 3: continue
    received, topic, payload = float(parts[0]), parts[1], parts[2]
    if topic == "xt/events":
        body = json.loads(payload)
        if body.get("type") == "new":
            events.append((received - onset(body["after"]["start_time"])) * 1000)
            last_on = body["after"]["start_time"]
    elif topic == "xt/yard/motion" and payload == "ON" and last_on is not None:
        motion.append((received - onset(last_on)) * 1000)
def pick(values, f):
    values = sorted(values)
    return "%.0f" % values[min(len(values) - 1, int((len(values) - 1) * f))] if values else "-"
print(len(events), pick(events, 0.5), pick(events, 0.99), pick(events, 1.0), pick(motion, 0.5), pick(motion, 0.99))
PY
)"
read -r alarms p50 p99 maximum <<< "$(python3 - alarms.log check-alarm.json <<'PY'
import json, sys, datetime
first = [x for x in json.load(open(sys.argv[2])) if x["kind"] == "video"][0]["firstCapture"]
origin = datetime.datetime.fromisoformat(first + "+00:00").timestamp()
latencies = []
for line in open(sys.argv[1]):
    if not line.startswith("{"): continue
    alarm = json.loads(line)
    start = alarm["startNanoseconds"] / 1e9
    # The scripted onset: 1 s into each 4 s period of the camera's stream time.
    k = round((start - origin - 1) / 4)
    onset = origin + 4 * k + 1
    latencies.append((alarm["receivedNanoseconds"] / 1e9 - onset) * 1000)
latencies.sort()
pick = lambda f: latencies[min(len(latencies) - 1, int((len(latencies) - 1) * f))] if latencies else float("nan")
print(len(latencies), "%.0f" % pick(0.5), "%.0f" % pick(0.99), "%.0f" % (latencies[-1] if latencies else float("nan")))
PY
)"

cat <<EOF
## Recorder

### Streams recorded at once (${STREAMS} × 1080p30, clip ${clip_rate} kbit/s)

\`xt replay\` encodes the synthetic 1080p30 picture once (x264, 4 Mbit/s target, sensor noise so
the bitrate is spent) and ${STREAMS} nodes publish it live on loopback to one \`xt recorder\`
(encrypted sessions, fMP4 segments flushed every second, SQLite index, motion off: nobody
decodes). Beside it, ${STREAMS} \`ffmpeg -re -c copy -f segment\` processes segment the same clip
from a file (no network, no encryption). CPU: user+system over ${WINDOW} s, per stream.

| | CPU per stream | disk written | recorded |
|---|---|---|---|
| xt recorder (${xt_total}% of a core in all) | ${xt_cpu}% | ${xt_disk} MB/s | ${cameras} cameras, ${frames} frames, ${gaps} gaps, ${missing} missing |
| ffmpeg segmenter × ${STREAMS} | ${ff_cpu}% | ${ff_disk} MB/s | |
| ratio xt / ffmpeg | ${ratio} | | |

### Motion detector, per picture (1080p)

| where | ms per picture |
|---|---|
| agent: detect on the raw picture | ${agent_ms} |
| recorder: decode (fast) | ${decode_ms} per frame |
| recorder: detect | ${detect_ms} |
| recorder: per analysed picture (10/s of 30 fps: 3 decodes + 1 detect) | ${per_analysed} |

### Motion onset → alarm at the subscriber

An object crosses a 720p synthetic camera for 1.5 s every 4 s for 88 s; the agent detects on
raw pictures 10 times a second, the recorder applies the policy (minimum duration 0.3 s,
cooldown 1.5 s so that each crossing is its own event) and
raises the alarm, \`xt alarms\` prints it. Onset is the scripted moment in the camera's stream
time; the latency includes the 0.3 s minimum duration.

| alarms | p50 | p99 | max |
|---|---|---|---|
| ${alarms} | ${p50} ms | ${p99} ms | ${maximum} ms |

### Motion onset → MQTT message at a subscriber

The same run, with the recorder also publishing to a mosquitto broker on loopback (Frigate's
topics, QoS 1 events): \`mosquitto_sub\` stamps each message as it arrives (\`%U\`). Onset as
above. Frigate sends its MQTT events after detection at 5 fps (up to 200 ms between frames,
then its object detector); bar: p99 ≤ 500 ms.

| \`events\` (new) messages | p50 | p99 | max | \`yard/motion\` ON p50 | p99 |
|---|---|---|---|---|---|
| ${mqtt_events} | ${mqtt_p50} ms | ${mqtt_p99} ms | ${mqtt_max} ms | ${motion_p50} ms | ${motion_p99} ms |
EOF
