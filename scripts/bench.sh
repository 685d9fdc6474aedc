#!/usr/bin/env bash
# `make bench`: xt beside TCP (iperf3) and SRT (srt-file-transmit) in one run, on the same
# byte-verified payload: (a) loopback, (b) a veth pair between two namespaces with
# `tbf rate 500mbit` at 0, 1, 5 and 10% random drop; then the camera agent beside ffmpeg and its
# capture → ingest latency (scripts/bench-agent.sh), and the node network's fan-out of a live
# stream by multicast and by host unicast (scripts/bench-fanout.sh); and the recorder: streams
# recorded at once beside ffmpeg's segmenter, motion detector cost, onset → alarm
# (scripts/bench-recorder.sh); and the web UI's live view, glass to glass in headless Chromium
# (scripts/bench-web.sh); and calls: mouth-to-ear, PESQ-WB and 50 relayed calls
# (scripts/bench-call.sh), call video glass to glass in the browser (scripts/bench-call-web.sh);
# and backup: bonded links beside MPTCP and TCP, 5 Pis x 10 connections, incremental beside rsync
# (scripts/bench-backup.sh). Writes BENCHMARKS.md.
set -uo pipefail
XT=$(realpath "${1:-.build/release/xt}")
OUT=$(realpath -m bench-out)
mkdir -p "$OUT"
# Received copies go to memory (tmpfs) when there is one, so the disk is not what is measured;
# the same place for xt and SRT.
RECV=$OUT
if [ -d /dev/shm ] && [ -w /dev/shm ]; then RECV=$(mktemp -d /dev/shm/xt-bench.XXXXXX); fi
trap '[ "$RECV" != "$OUT" ] && rm -rf "$RECV"' EXIT
LOOP_MB=${BENCH_LOOP_MB:-512}
VETH_MB=${BENCH_VETH_MB:-64}
TIMEOUT=${BENCH_TIMEOUT:-180}
RUNS=${BENCH_RUNS:-3}
results=()

now() { date +%s.%N; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) print "-"; else printf "%.0f", b * 8 / s / 1e6 }'; }
same() { cmp -s "$1" "$2"; }

payload() {  # payload SIZE_MB -> path (made afresh if missing or the wrong size)
  local path="$OUT/payload-$1.bin"
  [ "$(stat -c %s "$path" 2>/dev/null)" = "$(($1 << 20))" ] || head -c $(($1 << 20)) /dev/urandom > "$path"
  echo "$path"
}

keys() {
  [ -f "$OUT/server.key" ] || "$XT" keygen --out "$OUT/server.key" >/dev/null 2>&1
  [ -f "$OUT/client.key" ] || "$XT" keygen --out "$OUT/client.key" >/dev/null 2>&1
  cp "$OUT/client.key.pub" "$OUT/authorized_keys"
}

# run_xt SERVER_NS CLIENT_NS HOST FILE [SEND_ARGS] -> "Mbit/s verified". By default (--no-verify) the copy is
# checked afterwards with cmp, as SRT's is; with --verify xt also hashes (SHA-256) at both ends in-band.
run_xt() {
  local sns=$1 cns=$2 host=$3 file=$4 verify=${5:---no-verify} port=9600
  rm -rf "$RECV/xt-recv"
  $sns timeout "$TIMEOUT" "$XT" listen --bind "$host:$port" --key "$OUT/server.key" --authorized-keys "$OUT/authorized_keys" \
    --out-dir "$RECV/xt-recv" --sessions 1 >/dev/null 2>&1 &
  local listener=$!
  sleep 0.5
  local start end
  start=$(now)
  $cns timeout "$TIMEOUT" "$XT" send --to "$host:$port" --peer-key "@$OUT/server.key.pub" --key "$OUT/client.key" --file "$file" $verify >/dev/null 2>&1
  end=$(now)
  wait $listener 2>/dev/null
  local received="$RECV/xt-recv/$(basename "$file")"
  if same "$file" "$received"; then
    rm -f "$received"
    echo "$(rate "$(stat -c %s "$file")" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')") ok"
  else
    echo "- failed"
  fi
}

run_tcp() {
  # iperf3's server truncates its -F output file and its received count stops at the test's
  # end, so TCP is checked by the whole file having been sent over the (reliable) connection.
  local sns=$1 cns=$2 host=$3 file=$4 port=5299
  $sns timeout "$TIMEOUT" iperf3 -s -1 -p $port >/dev/null 2>&1 &
  local server=$!
  sleep 0.5
  local start end
  start=$(now)
  $cns timeout "$TIMEOUT" iperf3 -c "$host" -p $port -F "$file" -J > "$OUT/tcp.json" 2>/dev/null
  wait $server 2>/dev/null
  end=$(now)
  local received
  received=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['end']['sum_sent']['bytes'])" "$OUT/tcp.json" 2>/dev/null || echo 0)
  if [ "$received" = "$(stat -c %s "$file")" ]; then
    echo "$(rate "$received" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')") ok"
  else
    echo "- short ($received bytes)"
  fi
}

run_srt() {
  # In file mode the receiver names the output after the sender's file, inside a directory.
  local sns=$1 cns=$2 host=$3 file=$4 port=5399
  rm -rf "$RECV/srt-recv"
  mkdir -p "$RECV/srt-recv"
  $sns timeout "$TIMEOUT" srt-file-transmit -q "srt://:$port?mode=listener&transtype=file" "file://$RECV/srt-recv/" >/dev/null 2>&1 &
  local server=$!
  sleep 0.5
  local start end
  start=$(now)
  $cns timeout "$TIMEOUT" srt-file-transmit -q "file://$file" "srt://$host:$port?transtype=file" >/dev/null 2>&1
  wait $server 2>/dev/null
  end=$(now)
  local elapsed
  elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
  local received="$RECV/srt-recv/$(basename "$file")"
  if same "$file" "$received"; then
    rm -f "$received"
    echo "$(rate "$(stat -c %s "$file")" "$elapsed") ok"
  else
    echo "$(rate "$(stat -c %s "$file")" "$elapsed") corrupt"
  fi
}

# median "RATE STATUS"... -> "RATE ok (LOW–HIGH)" over the runs, or the first run that failed.
median() {
  local rates=() r
  for r in "$@"; do
    if [ "${r##* }" != ok ]; then echo "$r"; return; fi
    rates+=("${r%% *}")
  done
  printf '%s\n' "${rates[@]}" | sort -n | awk '{ a[NR] = $1 } END { if (NR == 1) print a[1] " ok"; else print a[int((NR + 1) / 2)] " ok (" a[1] "–" a[NR] ")" }'
}

# compare SERVER_NS CLIENT_NS HOST FILE -> "xt | tcp | srt" medians; the tools take turns in
# each of RUNS rounds, so a noisy moment on the machine does not land on one tool only.
compare() {
  local xs=() ts=() ss=() run
  for run in $(seq "$RUNS"); do
    xs+=("$(run_xt "$@")")
    ts+=("$(run_tcp "$@")")
    ss+=("$(run_srt "$@")")
  done
  echo "$(median "${xs[@]}")|$(median "${ts[@]}")|$(median "${ss[@]}")"
}

keys
echo "bench: loopback, ${LOOP_MB} MiB, median of $RUNS runs"
file=$(payload "$LOOP_MB")
IFS='|' read -r loop_xt loop_tcp loop_srt < <(compare "" "" 127.0.0.1 "$file")
shas=()
for run in $(seq "$RUNS"); do shas+=("$(run_xt "" "" 127.0.0.1 "$file" --verify)"); done
loop_xt_sha=$(median "${shas[@]}")
chachas=()
for run in $(seq "$RUNS"); do chachas+=("$(run_xt "" "" 127.0.0.1 "$file" "--no-verify --cipher chacha20-poly1305")"); done
loop_xt_chacha=$(median "${chachas[@]}")
echo "  xt $loop_xt | tcp $loop_tcp | srt $loop_srt | xt with in-band SHA-256 $loop_xt_sha | xt with ChaCha20-Poly1305 $loop_xt_chacha"

echo "bench: 10,000 idle sessions on one socket, loopback"
"$XT" listen --bind 127.0.0.1:9700 --key "$OUT/server.key" --open --out-dir "$RECV/xt-recv" >/dev/null 2>"$OUT/sessions-listener.err" &
listener=$!   # the xt process itself (no timeout wrapper), so its memory can be read
sleep 0.5
sessions_json=$(timeout "$TIMEOUT" "$XT" bench --to 127.0.0.1:9700 --peer-key "@$OUT/server.key.pub" --key "$OUT/client.key" --sessions 10000 --json 2>"$OUT/sessions.err")
listener_rss=$(awk '/VmRSS/ { print $2 }' /proc/$listener/status 2>/dev/null)
kill $listener 2>/dev/null; wait $listener 2>/dev/null
read -r handshakes per_session still_open < <(python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(round(d['handshakes_per_second']), round(d['bytes_per_session']/1024, 1), d['still_open'])" "$sessions_json" 2>/dev/null || echo "- - -")
echo "  $handshakes handshakes/s, $per_session KiB per idle session (initiator), listener RSS ${listener_rss:-?} KiB, $still_open still open"

veth_rows=()
if [ "$(id -u)" -eq 0 ]; then
  file=$(payload "$VETH_MB")
  for drop in 0 10 50 100; do
    bash scripts/netns.sh up xtb 500mbit $drop
    a="ip netns exec xtba"
    b="ip netns exec xtbb"
    IFS='|' read -r x t s < <(compare "$b" "$a" 10.77.0.2 "$file")
    bash scripts/netns.sh down xtb
    pct=$(awk -v d=$drop 'BEGIN { printf "%g", d / 10 }')
    echo "  veth 500mbit, ${pct}% drop: xt $x | tcp $t | srt $s"
    veth_rows+=("| veth, tbf 500 Mbit, ${pct}% drop | $x | $t | $s |")
  done
else
  veth_rows+=("| veth | skipped: not root | | |")
fi

# A jittery link through `xt relay` (user space, loopback; the simulator's link model on real
# sockets): 50 Mbit/s each way, 20 ms each way (40 ms RTT), per-datagram jitter uniform in
# 0…JITTER ms, Gilbert–Elliott burst loss (enter 0.0066, exit 0.2: 3.2% of datagrams, each way),
# a 1472-byte MTU. TCP cannot pass a UDP relay, so this row is xt beside SRT.
RELAY_MB=${BENCH_RELAY_MB:-64}
SRT_CAP=${BENCH_SRT_CAP:-40}
relay_start() {  # relay_start LISTEN_PORT TO_PORT JITTER_MS -> sets relay_pid; counters to $OUT/relay.json
  "$XT" relay --listen 127.0.0.1:$1 --to 127.0.0.1:$2 --rate 50mbit --delay 20 --jitter "$3" --burst-loss 0.0066,0.2 \
    --seed "$RANDOM" > "$OUT/relay.json" 2>/dev/null &
  relay_pid=$!
  sleep 0.3
}
relay_stop() { kill "$relay_pid" 2>/dev/null; wait "$relay_pid" 2>/dev/null; }

# run_relay_xt JITTER FILE -> "Mbit/s status received-twice-% retransmitted-% dropped-% spurious-losses"
run_relay_xt() {
  local jitter=$1 file=$2 port=9610
  rm -rf "$RECV/xt-recv"
  relay_start 9810 $port "$jitter"
  timeout "$TIMEOUT" "$XT" listen --bind 127.0.0.1:$port --key "$OUT/server.key" --authorized-keys "$OUT/authorized_keys" \
    --out-dir "$RECV/xt-recv" --sessions 1 --stats-json > "$OUT/relay-listen.out" 2>/dev/null &
  local listener=$!
  sleep 0.5
  local start end
  start=$(now)
  timeout "$TIMEOUT" "$XT" send --to 127.0.0.1:9810 --peer-key "@$OUT/server.key.pub" --key "$OUT/client.key" --file "$file" \
    --no-verify --stats-json > "$OUT/relay-send.out" 2>/dev/null
  end=$(now)
  wait $listener 2>/dev/null
  relay_stop
  local received="$RECV/xt-recv/$(basename "$file")" status=failed
  same "$file" "$received" && status=ok
  rm -f "$received"
  python3 - "$OUT/relay-send.out" "$OUT/relay-listen.out" "$OUT/relay.json" "$(stat -c %s "$file")" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$status" <<'PY' 2>/dev/null || echo "- failed - - - -"
import json, sys
last = lambda path: json.loads([l for l in open(path) if l.startswith("{")][-1])
send, listen, relay = last(sys.argv[1]), last(sys.argv[2]), last(sys.argv[3])
size, link = int(sys.argv[4]), relay["client_to_server"]
print("%.1f" % (size * 8 / float(sys.argv[5]) / 1e6), sys.argv[6], "%.2f" % (100 * listen["payload_bytes_duplicate"] / size),
      "%.1f" % (100 * send["bytes_retransmitted"] / size), "%.1f" % (100 * link["bytes_dropped"] / link["bytes_offered"]),
      send["spurious_losses"])
PY
}

# run_relay_srt JITTER FILE -> the same fields; SRT gets SRT_CAP seconds, and its goodput is the
# intact prefix it delivered in that time (file mode writes in order).
run_relay_srt() {
  local jitter=$1 file=$2 port=5410
  rm -rf "$RECV/srt-recv"
  mkdir -p "$RECV/srt-recv"
  relay_start 9811 $port "$jitter"
  timeout $((SRT_CAP + 5)) srt-file-transmit -q -s:100 -pf:json -f -statsout:"$OUT/relay-srt-recv.json" \
    "srt://:$port?mode=listener&transtype=file" "file://$RECV/srt-recv/" >/dev/null 2>&1 &
  local server=$!
  sleep 0.5
  local start end
  start=$(now)
  timeout "$SRT_CAP" srt-file-transmit -q -s:100 -pf:json -f -statsout:"$OUT/relay-srt-send.json" \
    "file://$file" "srt://127.0.0.1:9811?transtype=file" >/dev/null 2>&1
  local code=$?
  end=$(now)
  kill $server 2>/dev/null; wait $server 2>/dev/null
  relay_stop
  local received="$RECV/srt-recv/$(basename "$file")" got status
  got=$(stat -c %s "$received" 2>/dev/null || echo 0)
  if [ "$got" = "$(stat -c %s "$file")" ] && same "$file" "$received"; then status=ok
  elif [ "$got" -gt 0 ] && cmp -s -n "$got" "$file" "$received"; then status="partial"
  else status=corrupt; fi
  [ $code = 124 ] && [ "$status" = partial ] && status="partial:$(awk -v b="$got" 'BEGIN { printf "%.1f", b / 1048576 }')-MiB-in-${SRT_CAP}-s"
  rm -f "$received"
  python3 - "$OUT/relay-srt-send.json" "$OUT/relay-srt-recv.json" "$OUT/relay.json" "$got" \
    "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$status" <<'PY' 2>/dev/null || echo "- failed - - - -"
import json, sys
last = lambda path: json.loads([l for l in open(path) if l.startswith("{")][-1])
send, recv, relay = last(sys.argv[1])["send"], last(sys.argv[2])["recv"], last(sys.argv[3])
link = relay["client_to_server"]
unique = max(recv["bytesUnique"], 1)
print("%.1f" % (int(sys.argv[4]) * 8 / float(sys.argv[5]) / 1e6), sys.argv[6], "%.2f" % (100 * (recv["bytes"] - recv["bytesUnique"]) / unique),
      "%.1f" % (100 * send["packetsRetransmitted"] / max(send["packetsUnique"], 1)),
      "%.1f" % (100 * link["bytes_dropped"] / max(link["bytes_offered"], 1)), "-")
PY
}

# relay_cell RESULT... -> "goodput (range) · received twice (worst) · retransmitted · dropped"
relay_cell() {
  printf '%s\n' "$@" | python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
bad = [r for r in rows if r[1] not in ("ok",) and not r[1].startswith("partial")]
if bad: print(" ".join(bad[0][:2])); sys.exit()
rates = sorted(float(r[0]) for r in rows)
med = rates[(len(rates) - 1) // 2] if len(rates) % 2 else statistics.median(rates)
status = "ok" if all(r[1] == "ok" for r in rows) else rows[0][1].replace("-", " ")
spurious = [r[5] for r in rows if r[5] != "-"]
print("%.1f Mbit/s %s (%.1f–%.1f) · received twice ≤ %s%% · retransmitted %s%% · relay dropped %s%%%s" % (
    med, status, rates[0], rates[-1], max(float(r[2]) for r in rows), statistics.median(float(r[3]) for r in rows),
    statistics.median(float(r[4]) for r in rows), (" · spurious losses ≤ %s" % max(int(s) for s in spurious)) if spurious else ""))'
}

relay_rows=()
echo "bench: a jittery link through xt relay (50 Mbit/s, 40 ms RTT, burst loss 3.2%), ${RELAY_MB} MiB, SRT given ${SRT_CAP} s"
file=$(payload "$RELAY_MB")
for jitter in 2 0; do
  xs=(); ss=()
  for run in $(seq "$RUNS"); do
    xs+=("$(run_relay_xt "$jitter" "$file")")
    ss+=("$(run_relay_srt "$jitter" "$file")")
  done
  x=$(relay_cell "${xs[@]}"); s=$(relay_cell "${ss[@]}")
  echo "  jitter 0…${jitter} ms: xt $x | srt $s"
  relay_rows+=("| relay, 50 Mbit/s, 40 ms RTT, jitter 0…${jitter} ms per datagram, 3.2% burst loss | $x | $s |")
done

echo "bench: camera agent (CPU beside ffmpeg, capture → ingest latency)"
agent_md="$OUT/agent.md"
bash scripts/bench-agent.sh "$XT" "$OUT" > "$agent_md"
grep '^|' "$agent_md" | sed 's/^/  /'

echo "bench: recorder (streams at once beside ffmpeg's segmenter, motion detector cost, onset → alarm)"
recorder_md="$OUT/recorder.md"
bash scripts/bench-recorder.sh "$XT" "$OUT" > "$recorder_md"
grep '^|' "$recorder_md" | sed 's/^/  /'

echo "bench: web UI (live view glass-to-glass in headless Chromium)"
web_md="$OUT/web.md"
bash scripts/bench-web.sh "$XT" "$OUT" > "$web_md"
grep '^|' "$web_md" | sed 's/^/  /'

echo "bench: calls (mouth-to-ear, PESQ-WB beside PLC-only, 50 relayed calls)"
call_md="$OUT/call.md"
swift build -c release --product xtalsaclock >/dev/null
bash scripts/bench-call.sh "$XT" "$OUT" > "$call_md"
echo "bench: call video in the browser (glass to glass in headless Chromium)"
{ echo; bash scripts/bench-call-web.sh "$XT" "$OUT"; } >> "$call_md"
grep '^|' "$call_md" | sed 's/^/  /'

echo "bench: backup (three bonded links beside MPTCP and TCP, 5 Pis x 10 connections, a 2 GB tree beside rsync)"
backup_md="$OUT/backup.md"
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/bench-backup.sh "$XT" "$OUT" > "$backup_md"
else
  printf '## Backup\n\nSkipped: needs root for network namespaces.\n' > "$backup_md"
fi
grep '^|' "$backup_md" | sed 's/^/  /'

fanout_md="$OUT/fanout.md"
if [ "$(id -u)" -eq 0 ]; then
  bash scripts/bench-fanout.sh "$XT" "$OUT" > "$fanout_md"
else
  printf '## Node network: fan-out of a live stream\n\nSkipped: needs root for network namespaces.\n' > "$fanout_md"
fi

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(uname -r)). Goodput in Mbit/s, timed"
  echo "around each whole transfer (process start to last byte confirmed); each cell is the median of"
  echo "$RUNS runs (range in brackets), the three tools taking turns in every round. Each sender reads the payload"
  echo "file. xt and SRT write what they receive to a file ($( [ "$RECV" = "$OUT" ] && echo "on disk" || echo "in tmpfs, so the disk is not measured")); \"ok\" means that"
  echo "file is byte-identical to the payload (cmp, after the run). For TCP, \"ok\" means iperf3 sent the"
  echo "whole payload file over the connection (iperf3's server does not store what it receives). xt"
  echo "encrypts every packet ($(grep -qw aes /proc/cpuinfo && echo "AES-256-GCM: this CPU has AES instructions; ChaCha20-Poly1305 where a CPU has none" || echo "ChaCha20-Poly1305: this CPU has no AES instructions")); SRT and TCP run"
  echo "unencrypted, as configured by default."
  echo "Loopback: ${LOOP_MB} MiB; veth: ${VETH_MB} MiB, drop applied to packets arriving at the receiver."
  echo
  echo "| path | xt | TCP (iperf3 -F) | SRT (srt-file-transmit, file mode) |"
  echo "|---|---|---|---|"
  echo "| loopback | $loop_xt | $loop_tcp | $loop_srt |"
  echo "| loopback, xt also hashing SHA-256 at both ends in-band (\`xt send --verify\`, the default) | $loop_xt_sha | | |"
  echo "| loopback, xt with ChaCha20-Poly1305 (\`--cipher chacha20-poly1305\`, what a CPU without AES instructions uses) | $loop_xt_chacha | | |"
  for row in "${veth_rows[@]}"; do echo "$row"; done
  echo
  echo "### A jittery link"
  echo
  echo "Through \`xt relay\` on loopback (the simulator's link model on real sockets): 50 Mbit/s and 20 ms each way,"
  echo "extra delay per datagram uniform in 0…2 ms (packets closer than that arrive out of order; at 50 Mbit/s"
  echo "that is up to about 9 packets), Gilbert–Elliott burst loss entering with chance 0.0066 and leaving with 0.2"
  echo "per datagram (3.2% of datagrams, in bursts of 5 on average, each way), an Ethernet MTU; ${RELAY_MB} MiB."
  echo "Goodput is payload over the whole transfer (median of $RUNS, range in brackets), against a link rate of 50 Mbit/s."
  echo "*Received twice*: payload bytes the receiver already had (what spurious retransmissions cost; the worst run),"
  echo "from the receiver's own counters (xt: \`payload_bytes_duplicate\`; SRT: bytes − bytesUnique). *Retransmitted*:"
  echo "the sender's retransmissions over the payload; *relay dropped*: datagrams the relay lost on the data path"
  echo "(bursts and a full queue). SRT gets ${SRT_CAP} s; where it does not finish, its goodput is the intact prefix it delivered."
  echo "TCP cannot pass a UDP relay."
  echo
  echo "| path | xt | SRT (srt-file-transmit, file mode) |"
  echo "|---|---|---|"
  for row in "${relay_rows[@]}"; do echo "$row"; done
  echo
  echo "Loopback ratios (medians): xt is $(awk -v x="${loop_xt%% *}" -v s="${loop_srt%% *}" 'BEGIN { if (s > 0) printf "%.2f", x / s; else print "-" }')× SRT's goodput"
  echo "and $(awk -v x="${loop_xt%% *}" -v t="${loop_tcp%% *}" 'BEGIN { if (t > 0) printf "%.2f", x / t; else print "-" }')× TCP's."
  echo
  echo "## Sessions"
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| handshakes per second (one initiator socket, 256 in flight, open-mode listener: every handshake proves its address with a cookie) | $handshakes |"
  echo "| memory per idle session, initiator process (10,000 sessions, after 3 s idle) | $per_session KiB |"
  echo "| listener resident memory holding 10,000 sessions | $(awk -v k="${listener_rss:-0}" 'BEGIN { printf "%.1f MiB (%.1f KiB per session)", k / 1024, k / 10000 }') |"
  echo "| sessions still open after idling (keepalives) | $still_open |"
  echo
  cat "$fanout_md"
  echo
  cat "$agent_md"
  echo
  cat "$recorder_md"
  echo
  cat "$web_md"
  echo
  cat "$call_md"
  echo
  cat "$backup_md"
} > BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md"
