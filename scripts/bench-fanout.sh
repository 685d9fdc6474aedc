#!/usr/bin/env bash
# Part of `make bench` (root): fan-out of a 4 Mbit/s live stream from one publisher through
# the host to N = 1, 4, 16 and 64 receivers, by IP multicast and by host unicast fan-out (the
# host relays the same stream over each receiver's session). Namespaces on a bridge:
# xtf0 host (10.78.0.1), xtf1 publisher, xtf2 all receivers (N nodes in one `xt sub` process).
# Measures the host's CPU (utime + stime over the stream), delivery latency p50/p99 at the
# receivers, and what reached them. Then the most messages per second the host routes.
# Prints markdown rows; bench.sh puts them in BENCHMARKS.md.
#   bench-fanout.sh XT OUT_DIR
set -uo pipefail
XT=$1
OUT=$2
SECONDS_STREAM=${BENCH_FANOUT_SECONDS:-10}
PREFIX=xtf
HOSTPORT=9200
COMMON="--host-key @$OUT/fanout-host.key.pub --host 10.78.0.1:$HOSTPORT --config none"
[ -f "$OUT/fanout-host.key" ] || "$XT" keygen --out "$OUT/fanout-host.key" >/dev/null 2>&1
[ -f "$OUT/fanout-node.key" ] || "$XT" keygen --out "$OUT/fanout-node.key" >/dev/null 2>&1
NODEKEY="--key $OUT/fanout-node.key"

bash scripts/netbridge.sh up $PREFIX 3
trap 'pkill -KILL -f "xt host --bind 10.78.0.1 --ports $HOSTPORT" 2>/dev/null; bash scripts/netbridge.sh down $PREFIX 3' EXIT

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

start_host() {  # start_host [--multicast GROUP] -> pid of the xt process
  ip netns exec ${PREFIX}0 "$XT" host --bind 10.78.0.1 --ports $HOSTPORT --key "$OUT/fanout-host.key" --open "$@" \
    >"$OUT/fanout-host.log" 2>&1 &
  sleep 0.5
  pgrep -n -f "xt host --bind 10.78.0.1 --ports $HOSTPORT"
}

stop_host() {
  pkill -KILL -f "xt host --bind 10.78.0.1 --ports $HOSTPORT" 2>/dev/null
  sleep 0.3
}

# ready N MULTICAST: waits until N receivers are connected (and, with multicast, reached through the group).
ready() {
  local n=$1 multicast=$2 i
  for i in $(seq 60); do
    local count
    count=$(ip netns exec ${PREFIX}1 "$XT" status --json $NODEKEY --id 9.1 --name ops $COMMON 2>/dev/null | python3 -c "
import json, sys
nodes = [n for n in json.load(sys.stdin) if n['name'].startswith('rx')]
print(len([n for n in nodes if not $multicast or n['multicastViaGroup'] == [7]]))" 2>/dev/null || echo 0)
    [ "$count" -ge "$n" ] && return 0
    sleep 0.5
  done
  return 1
}

# run MODE N -> "cpu% p50 p99 delivered expected"
run() {
  local mode=$1 n=$2 host_pid
  if [ "$mode" = multicast ]; then host_pid=$(start_host --multicast 239.77.0.0:5960); else host_pid=$(start_host); fi
  local expected=$((SECONDS_STREAM * 500))
  ip netns exec ${PREFIX}2 "$XT" sub --nodes "$n" --channel 7 --report --count "$expected" --seconds $((SECONDS_STREAM + 40)) \
    $NODEKEY --id 2.1 --name rx $COMMON >"$OUT/fanout-sub.json" 2>"$OUT/fanout-sub.err" &
  local sub=$!
  ready "$n" "$([ "$mode" = multicast ] && echo 1 || echo 0)" || echo "  (not all $n receivers ready)" >&2
  local before after hz
  hz=$(getconf CLK_TCK)
  before=$(cpu_ticks "$host_pid")
  ip netns exec ${PREFIX}1 "$XT" pub --multicast --channel 7 --rate 4000 --size 1000 --seconds "$SECONDS_STREAM" \
    $NODEKEY --id 1.1 --name camera $COMMON >/dev/null 2>&1
  after=$(cpu_ticks "$host_pid")
  wait $sub
  stop_host
  python3 - "$OUT/fanout-sub.json" "$n" "$expected" "$((after - before))" "$hz" "$SECONDS_STREAM" <<'PY'
import json, sys
path, n, expected, ticks, hz, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
report = next((json.loads(l) for l in open(path) if l.startswith("{")), None)
cpu = 100.0 * ticks / hz / seconds
if report is None:
    print(f"{cpu:.1f} - - 0 {n * expected}")
else:
    print(f"{cpu:.1f} {report['latency_ms']['p50']:.2f} {report['latency_ms']['p99']:.2f} {report['messages']} {n * expected}")
PY
}

echo "bench: fan-out of a 4 Mbit/s stream, ${SECONDS_STREAM} s per run" >&2
rows=()
for n in 1 4 16 64; do
  for mode in multicast unicast; do
    read -r cpu p50 p99 got want < <(run $mode $n)
    echo "  $mode N=$n: host CPU ${cpu}% of a core, latency p50 ${p50} ms p99 ${p99} ms, ${got}/${want} messages" >&2
    rows+=("| $n | $mode | $cpu | $p50 | $p99 | $got / $want |")
  done
done

# Most messages per second the host routes: 100-byte messages as fast as the publisher can
# send, relayed to 4 receivers.
host_pid=$(start_host)
ip netns exec ${PREFIX}2 "$XT" sub --nodes 4 --channel 7 --report --seconds 25 $NODEKEY --id 2.1 --name rx $COMMON \
  >"$OUT/fanout-sub.json" 2>/dev/null &
sub=$!
ready 4 0
before=$(cpu_ticks "$host_pid")
t0=$(date +%s.%N)
ip netns exec ${PREFIX}1 "$XT" pub --multicast --channel 7 --rate 1000000 --size 100 --seconds 8 $NODEKEY --id 1.1 --name camera $COMMON >/dev/null 2>&1
t1=$(date +%s.%N)
after=$(cpu_ticks "$host_pid")
wait $sub
stop_host
read -r routed routed_cpu < <(python3 - "$OUT/fanout-sub.json" "$t0" "$t1" "$((after - before))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
report = next((json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")), None)
elapsed = float(sys.argv[3]) - float(sys.argv[2])
span = report["first_to_last_s"] if report and report["first_to_last_s"] > 0 else elapsed
print(f"{report['messages'] / span:.0f}" if report else "-", f"{100.0 * int(sys.argv[4]) / int(sys.argv[5]) / elapsed:.0f}")
PY
)
echo "  host routes $routed messages/s (100-byte messages, 1 publisher to 4 receivers), host CPU ${routed_cpu}%" >&2

echo "## Node network: fan-out of a live stream"
echo
echo "One publisher sends a 4 Mbit/s live stream (500 messages/s of 1000 bytes, each stamped with its send time) on"
echo "a multicast channel for ${SECONDS_STREAM} s; N receivers subscribe. Namespaces on one bridge: the host, the publisher, and"
echo "the receivers (all N nodes in one process, in one namespace). *multicast*: the host puts each message on the"
echo "channel's IP group once (\`xt host --multicast\`). *unicast*: the host relays the same stream over each receiver's"
echo "own session (what it falls back to where multicast does not pass). Host CPU is its user + system time over the"
echo "stream, in % of one core; latency is publisher send → receiver delivery, wall clock (the namespaces share it)."
echo "One run per row; the receivers' process shares this machine's 2 cores with the host and the publisher: where"
echo "they need more than the two cores together (unicast to 64 receivers seals and opens 256 Mbit/s on 64 sessions),"
echo "messages queue and latency grows by seconds. Multicast seals each message once, whatever N."
echo
echo "| receivers | fan-out | host CPU % of a core | latency p50 ms | latency p99 ms | messages delivered |"
echo "|---|---|---|---|---|---|"
for row in "${rows[@]}"; do echo "$row"; done
echo
echo "Messages the host routes per second: **$routed** (100-byte messages from one publisher, as fast as it sends,"
echo "relayed to 4 receivers: counted as delivered at the receivers; host CPU ${routed_cpu}% of a core)."
