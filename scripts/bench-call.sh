#!/usr/bin/env bash
# Part of `make bench`: calls (issue 14). A door node calls a phone node through an `xt host` on
# loopback; each has ALSA's file plugin over the real-time xtclock PCM as its sound card. The
# door's microphone reads 16 utterances of espeak-ng speech with pauses between; the phone's
# speaker records what it played. Both xtclock PCMs write when their clocks started (CLOCK_MONOTONIC),
# so each utterance's mouth-to-ear delay is measured: where cross-correlation finds it in the
# recording, in time, less when it entered the microphone. PESQ-WB (ITU-T P.862.2, PyPI's pesq)
# scores the whole recording against the speech.
#   - loopback: the direct path (LRP2P), and the host's relay;
#   - impaired: the door reaches the host through `xt relay` (random loss, 0…20 ms jitter per
#     datagram), media relayed by the host, our calls beside the same pipeline in PLC-only mode
#     (`xt call --plc-only`: no retransmission, no FEC or redundancy, a fixed 40 ms buffer: Mumble's way);
#   - host CPU for 50 relayed calls at once (`xt call load`: 100 nodes, synthetic microphones).
# Prints markdown; bench.sh puts it in BENCHMARKS.md.
#   bench-call.sh XT OUT_DIR
set -uo pipefail
XT=$1
OUT=$2/call
PLUGIN=$(realpath "$(dirname "$XT")/libxtalsaclock.so")
PY=.build/venv/bin/python
mkdir -p "$OUT"
rm -f "$OUT"/*.stamp "$OUT"/heard-*.raw

for name in host door phone; do [ -f "$OUT/$name.key" ] || "$XT" keygen --out "$OUT/$name.key" >/dev/null 2>&1; done
printf '%s door 1.1\n%s phone 1.2\n' "$(cat "$OUT/door.key.pub")" "$(cat "$OUT/phone.key.pub")" > "$OUT/nodes"

# The door's speech: 16 utterances, 0.9 s apart (DTX between them), and where each starts.
"$PY" - "$OUT" <<'EOF'
import json, subprocess, sys, numpy as np
out = sys.argv[1]
lines = ["Someone is at the front door.", "The parcel is on the step, by the bench.", "Could you sign for this delivery, please?",
         "I will be down in a minute.", "The gate code has changed since Monday.", "Please leave it with the neighbour at number nine.",
         "Is this the right house for the Smiths?", "The van is parked across the driveway.", "It looks like rain, so I put it under the porch.",
         "Thank you, have a good afternoon.", "The dog is friendly, you can come in.", "We ordered two boxes, not one.",
         "Ring again if nobody answers.", "The back door is open for the plumber.", "Your taxi is waiting outside.", "See you tomorrow at eight."]
voices = ["en", "en-us", "en+f3", "en-us+m3"]
pieces, offsets, at = [], [], 8000
gap = np.zeros(int(16000 * 0.9), dtype=np.int16)
pieces.append(np.zeros(8000, dtype=np.int16))
for i, text in enumerate(lines):
    wav = f"{out}/u{i}.wav"
    subprocess.run(["espeak-ng", "-v", voices[i % len(voices)], "-w", wav, text], check=True)
    raw = subprocess.run(["sox", wav, "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "raw", "-"],
                         check=True, capture_output=True).stdout
    u = np.frombuffer(raw, dtype=np.int16)
    offsets.append([at, len(u)])
    pieces += [u, gap]
    at += len(u) + len(gap)
np.concatenate(pieces).tofile(f"{out}/speech.raw")
json.dump(offsets, open(f"{out}/offsets.json", "w"))
EOF
SPEECH_SECONDS=$(awk -v b="$(stat -c %s "$OUT/speech.raw")" 'BEGIN { printf "%d", b / 32000 + 2 }')

sound() {  # sound NAME: an ALSA configuration with pcm.mic (the speech) and pcm.speaker (recorded), both stamped
  local conf="$OUT/asound-$1.conf"
  cat > "$conf" <<EOC
pcm_type.xtclock { lib "$PLUGIN" }
pcm.mic { type file; slave.pcm { type xtclock; stamp "$OUT/$1-mic.stamp" } file "/dev/null" infile "$OUT/speech.raw" format "raw" }
pcm.speaker { type file; slave.pcm { type xtclock; stamp "$OUT/$1-speaker.stamp" } file "$OUT/heard-$1.raw" format "raw" }
EOC
  echo "/usr/share/alsa/alsa.conf:$conf"
}

HP=9310
RP=9311
COMMON="--host-key @$OUT/host.key.pub --config none"

# one_call LABEL LOSS JITTER FLAGS… -> runs a call; leaves heard-phone.raw and the stamps in $OUT/LABEL
one_call() {
  local label=$1 loss=$2 jitter=$3
  shift 3
  local dir="$OUT/$label"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$XT" host --bind 127.0.0.1 --ports $HP-$HP --key "$OUT/host.key" --authorized-keys "$OUT/nodes" >"$dir/host.log" 2>&1 &
  local host=$!
  local door_host=127.0.0.1:$HP relay=""
  if [ "$loss" != 0 ] || [ "$jitter" != 0 ]; then
    "$XT" relay --listen 127.0.0.1:$RP --to 127.0.0.1:$HP --loss "$loss" --jitter "$jitter" --seed 7 >"$dir/relay.json" 2>"$dir/relay.err" &
    relay=$!
    door_host=127.0.0.1:$RP
  fi
  sleep 0.5
  ALSA_CONFIG_PATH=$(sound phone) "$XT" call --answer --microphone none --speaker alsa:speaker --report "$dir/phone.json" \
    --key "$OUT/phone.key" --id 1.2 --name phone --host 127.0.0.1:$HP $COMMON "$@" >"$dir/phone.log" 2>&1 &
  local phone=$!
  sleep 0.8
  ALSA_CONFIG_PATH=$(sound door) timeout $((SPEECH_SECONDS + 30)) "$XT" call phone --seconds "$SPEECH_SECONDS" --microphone alsa:mic \
    --speaker none --key "$OUT/door.key" --id 1.1 --name door --host "$door_host" $COMMON "$@" >"$dir/door.log" 2>&1
  sleep 1
  kill "$phone" 2>/dev/null; wait "$phone" 2>/dev/null
  [ -n "$relay" ] && { kill "$relay" 2>/dev/null; wait "$relay" 2>/dev/null; }
  kill "$host" 2>/dev/null; wait "$host" 2>/dev/null
  mv "$OUT"/heard-phone.raw "$OUT"/door-mic.stamp "$OUT"/phone-speaker.stamp "$dir/" 2>/dev/null
}

# analyse LABEL -> "p50 p95 pesq underruns"
analyse() {
  "$PY" - "$OUT" "$OUT/$1" <<'EOF'
import json, sys, numpy as np, pesq
out, d = sys.argv[1], sys.argv[2]
try:
    ref = np.fromfile(f"{out}/speech.raw", dtype=np.int16).astype(np.float64)
    heard = np.fromfile(f"{d}/heard-phone.raw", dtype=np.int16).astype(np.float64)
    mic = [tuple(map(int, l.split())) for l in open(f"{d}/door-mic.stamp")]
    spk = [tuple(map(int, l.split())) for l in open(f"{d}/phone-speaker.stamp")]
except Exception as e:
    print("- - - -"); sys.exit()
offsets = json.load(open(f"{out}/offsets.json"))
rate = 16000
def at(stamps, pos):  # the time frame `pos` of a stamped stream was captured or played (its clock restarts after an xrun)
    # The last anchor at or before it: the stamps are in time order, and a stream that overran
    # twice before reading a frame logs the same frame twice, the later one right.
    frame, ns = stamps[0]
    for a in stamps:
        if a[0] <= pos: frame, ns = a
    return ns + (pos - frame) * 1e9 / rate
def straddles(stamps, first, last):  # a restart inside the utterance: its parts map to different anchors
    return any(first < a[0] < last for a in stamps[1:])
delays = []
straddled = 0
for start, length in offsets:
    seg = ref[start:start + length]
    if straddles(mic, start, start + length): straddled += 1; continue
    mouth = at(mic, start)
    guess = int((mouth - spk[0][1]) * rate / 1e9)
    lo, hi = max(0, guess - rate // 4), min(len(heard), guess + length + rate)
    window = heard[lo:hi]
    if len(window) < length: continue
    n = 1 << int(np.ceil(np.log2(len(window) + length)))
    c = np.fft.irfft(np.fft.rfft(window, n) * np.conj(np.fft.rfft(seg, n)), n)[:len(window) - length + 1]
    lag = int(np.argmax(c))
    part = window[lag:lag + length]
    if np.dot(part, seg) / (np.sqrt(np.dot(part, part) * np.dot(seg, seg)) + 1e-9) < 0.3: continue  # not found
    if straddles(spk, lo + lag, lo + lag + length): straddled += 1; continue
    delays.append((at(spk, lo + lag) - mouth) / 1e6)
n = 1 << int(np.ceil(np.log2(len(ref) + len(heard))))
c = np.fft.irfft(np.fft.rfft(heard, n) * np.conj(np.fft.rfft(ref, n)), n)[:max(1, len(heard) - len(ref) + 1)]
lag = int(np.argmax(c))
part = heard[lag:lag + len(ref)]
score = pesq.pesq(rate, ref[:len(part)].astype(np.float32), part.astype(np.float32), 'wb') if len(part) > rate else 0
underruns = len(spk) - 1
json.dump({"mouthToEarMilliseconds": delays, "speakerRestarts": spk, "microphoneRestarts": mic, "straddlingRestarts": straddled}, open(f"{d}/delays.json", "w"))
if not delays: print(f"- - {score:.2f} {underruns}"); sys.exit()
print(f"{np.percentile(delays, 50):.0f} {np.percentile(delays, 95):.0f} {score:.2f} {underruns} {len(delays)}")
EOF
}

row() {  # row LABEL DESCRIPTION -> a markdown row
  read -r p50 p95 score underruns found <<<"$(analyse "$1")"
  local stats
  stats=$("$PY" -c "
import json, sys
try:
    s = json.load(open('$OUT/$1/phone.json'))[0]
    print(f\"{s['jitterTargetMilliseconds']:.0f} ms; concealed {s['concealedPercent']:.1f}%, FEC {s['recoveredPercent']:.1f}%, repaired {s.get('repairedPercent', 0):.1f}%, late {s['latePercent']:.1f}%, waited {s['waitedPercent']:.1f}%, stretched {s['stretchedPercent']:.1f}%\")
except Exception:
    print('-')")
  echo "| $2 | ${p50} / ${p95} | ${score} | ${stats} |"
  echo "  $2: mouth-to-ear ${p50}/${p95} ms (${found:-0} of 16 utterances), PESQ-WB ${score}, $stats, speaker underruns ${underruns}" >&2
}

# video_call LABEL LOSS JITTER -> the door sends its synthetic camera (640x360 at 15 fps) with the
# speech; the phone records the call; a row of what the phone's video did.
video_call() {
  local label=$1 loss=$2 jitter=$3 dir="$OUT/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  "$XT" host --bind 127.0.0.1 --ports $HP-$HP --key "$OUT/host.key" --authorized-keys "$OUT/nodes" >"$dir/host.log" 2>&1 &
  local host=$! relay=""
  "$XT" relay --listen 127.0.0.1:$RP --to 127.0.0.1:$HP --loss "$loss" --jitter "$jitter" --seed 7 >"$dir/relay.json" 2>"$dir/relay.err" &
  relay=$!
  sleep 0.5
  ALSA_CONFIG_PATH=$(sound phone) "$XT" call --answer --microphone none --speaker alsa:speaker --camera none --record "$dir/call.mp4" \
    --report "$dir/phone.json" --key "$OUT/phone.key" --id 1.2 --name phone --host 127.0.0.1:$HP $COMMON --relay >"$dir/phone.log" 2>&1 &
  local phone=$!
  sleep 0.8
  ALSA_CONFIG_PATH=$(sound door) timeout $((SPEECH_SECONDS + 30)) "$XT" call phone --video --camera synthetic --seconds "$SPEECH_SECONDS" \
    --microphone alsa:mic --speaker none --key "$OUT/door.key" --id 1.1 --name door --host 127.0.0.1:$RP $COMMON --relay >"$dir/door.log" 2>&1
  sleep 1
  kill "$phone" "$relay" 2>/dev/null; wait "$phone" "$relay" 2>/dev/null
  kill "$host" 2>/dev/null; wait "$host" 2>/dev/null
  rm -f "$OUT"/heard-phone.raw "$OUT"/door-mic.stamp "$OUT"/phone-speaker.stamp
  local decoded rate
  decoded=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$dir/call.mp4" 2>/dev/null || echo -)
  rate=$(ffprobe -v error -select_streams v:0 -show_entries stream=bit_rate -of csv=p=0 "$dir/call.mp4" 2>/dev/null || echo 0)
  "$PY" -c "
import json
try:
    v = json.load(open('$dir/phone.json'))[0]['video']
    print(f\"| {'$4'} | {v['picturesUsed']} of {v['picturesReceived']} ({v['picturesLost']} lost) | {v['freezes']} | {v['keyframeRequests']} | ${decoded:-–} | {int('${rate:-0}' or 0) // 1000} |\")
except Exception as e:
    print('| $4 | - | - | - | - | - |')"
}

rows=()
# BENCH_CALL_ONLY="direct loss5 …" runs only those rows (while tuning), and the 50-call load only if it names "load".
want() { [ -z "${BENCH_CALL_ONLY:-}" ] || [[ " $BENCH_CALL_ONLY " == *" $1 "* ]]; }
if want direct; then one_call direct 0 0; rows+=("$(row direct "loopback, direct path")"); fi
if want relayed; then one_call relayed 0 0 --relay; rows+=("$(row relayed "loopback, relayed by the host")"); fi
for loss in 5 10 20; do
  if want "loss$loss"; then
    one_call "loss$loss" "$loss" 20 --relay
    rows+=("$(row "loss$loss" "${loss}% random drop + 0…20 ms jitter, relayed")")
  fi
  if want "plc$loss"; then
    one_call "plc$loss" "$loss" 20 --relay --plc-only
    rows+=("$(row "plc$loss" "the same, PLC-only (Mumble's way)")")
  fi
done
if want jitter; then one_call jitter 0 20 --relay; rows+=("$(row jitter "0% drop + 0…20 ms jitter, relayed")"); fi
if want plc0; then one_call plc0 0 20 --relay --plc-only; rows+=("$(row plc0 "0% drop + 0…20 ms jitter, PLC-only")"); fi
video_rows=()
for loss in 0 10 20; do
  if want "video$loss"; then video_rows+=("$(video_call "video$loss" "$loss" 20 "${loss}% drop + 0…20 ms jitter, relayed")"); echo "  ${video_rows[-1]}" >&2; fi
done
[ -n "${BENCH_CALL_ONLY:-}" ] && ! want load && exit 0

# 50 relayed calls at once: the host's CPU while they talk.
"$XT" host --bind 127.0.0.1 --ports $HP-$HP --key "$OUT/host.key" --open >"$OUT/load-host.log" 2>&1 &
host=$!
sleep 0.5
"$XT" call load --calls 50 --seconds 40 --host 127.0.0.1:$HP --host-key @"$OUT/host.key.pub" >"$OUT/load.json" 2>"$OUT/load.err" &
load=$!
sleep 20  # all 100 nodes joined and the calls up
t0=$(awk '{ print $14 + $15 }' /proc/$host/stat); s0=$(date +%s.%N)
sleep 15
t1=$(awk '{ print $14 + $15 }' /proc/$host/stat); s1=$(date +%s.%N)
wait $load
kill $host 2>/dev/null; wait $host 2>/dev/null
host_cpu=$(awk -v t=$((t1 - t0)) -v a="$s0" -v b="$s1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", 100 * t / hz / (b - a) }')
load_summary=$(cat "$OUT/load.json" 2>/dev/null)
echo "  50 relayed calls: host CPU ${host_cpu}% of one core; $load_summary" >&2

echo "## Calls"
echo
echo "A door node calls a phone node through \`xt host\` on loopback (\`xt call\`, release build). Each node's"
echo "sound card is ALSA's file plugin over the real-time xtclock PCM: the door's microphone reads 16"
echo "utterances of espeak-ng speech 0.9 s apart (the encoder goes to DTX between them); the phone's speaker"
echo "records what it played. *Mouth-to-ear* is per utterance: where cross-correlation finds it in the"
echo "recording, in time (the speaker's clock), less when it entered the microphone (its clock), p50 / p95 over"
echo "the 16. It holds everything: capture buffer, 20 ms framing, Opus, the network, the jitter buffer and the"
echo "playback buffer (20 ms, 15 of it kept full). *PESQ-WB*: the whole recording against the speech. Impaired rows: the door"
echo "reaches the host through \`xt relay\` (random drop and 0…20 ms of extra delay per datagram, each"
echo "way); media relayed by the host. *PLC-only* is the same pipeline with \`--plc-only\`: bare datagrams"
echo "(no retransmission), no FEC or redundancy, a fixed 40 ms buffer that does not stretch, as Mumble works."
echo "Our calls on a lossy link send each packet twice (from 1% measured loss; the second copy right after"
echo "the first, so a frame is missing only when both are lost), add the previous frame from 7% (RFC 2198),"
echo "size Opus FEC for the loss that remains, and retransmit while the live channel's deadline allows."
echo
echo "| path | mouth-to-ear p50 / p95 (ms) | PESQ-WB | the phone's jitter buffer: target; concealed, FEC-recovered, repaired from redundancy, late, waited, stretched |"
echo "|---|---|---|---|"
for r in "${rows[@]}"; do echo "$r"; done
echo
echo "Bars: mouth-to-ear p95 ≤ 70 ms on loopback and ≤ 120 ms at 5% drop + 20 ms jitter; PESQ-WB ≥ 4.0 clean,"
echo "at most 0.3 lower at 5% loss, at least 0.4 above PLC-only at 10%."
echo
echo "Video: the door also sends its synthetic camera (640×360, 15 fps, libx264 zerolatency) through the"
echo "same relay; the phone records the call (\`--record\`). *Used*: pictures the phone could decode (a lost"
echo "picture freezes the video until a keyframe, which the phone asks for: RTCP PLI's rule). *Decoded*: the"
echo "door's track in the phone's MP4, as FFmpeg reads it. *kbit/s*: that track's rate (the bitrate follows"
echo "the link: +8%/s while clean, down with loss)."
echo
echo "| path | pictures used | freezes | keyframes asked | decoded in the recording | kbit/s |"
echo "|---|---|---|---|---|---|"
for r in "${video_rows[@]}"; do echo "$r"; done
echo
echo "50 calls at once, relayed by the host (\`xt call load\`: 100 nodes in one process, synthetic"
echo "microphones, Opus at 48 kbit/s both ways): the host process used **${host_cpu}% of one core** over 15 s"
echo "(utime + stime from /proc). Summary from the load: \`${load_summary}\`."
