#!/usr/bin/env bash
# Part of `make bench`: backup (issue 15), byte-verified, in one run.
#   (a) a client and a Pi in two namespaces joined by three links at tbf 50 / 100 / 200 Mbit/s,
#       the 100 Mbit/s one dropping 1% (nft): `xt backup` with 4 connections per link, beside
#       the kernel's MPTCP (`mptcpize run iperf3`, the Pi announcing its other two addresses
#       with `ip mptcp endpoint … signal`) and single TCP on the best link (iperf3);
#   (b) xTransporter's shape on loopback: 5 Pis × 10 connections: aggregate goodput and CPU per GB;
#   (c) a 2 GB tree of mixed files: a first backup and an incremental one (1% changed) to one
#       Pi, beside rsync (daemon mode) to one target, and the restore checked byte for byte.
# Payloads and stores live in /dev/shm, so the disk is not what is measured (the Pi still
# fsyncs every chunk); each part removes its files when done (on this 24 GiB machine, part (c)
# after the others' 5 GB ran rsync at a third of its speed alone, and xt backup at half).
# Prints markdown; bench.sh puts it in BENCHMARKS.md.
#   bench-backup.sh XT OUT_DIR [a|b|c …]
set -uo pipefail
XT=$(realpath "$1")
OUT=$2/backup
shift 2
PARTS=${*:-a b c}
SCRIPTS=$(cd "$(dirname "$0")" && pwd)
WORK=/dev/shm/xt-bench-backup
PREFIX=xtbb
mkdir -p "$OUT"
rm -rf "$WORK"
mkdir -p "$WORK"
cleanup() {
  pkill -f "xt backup serve --store $WORK" 2>/dev/null
  pkill -f "iperf3 -s -1 -p 52" 2>/dev/null
  pkill -f "rsync --daemon --config=$WORK" 2>/dev/null
  bash "$SCRIPTS/netlinks.sh" down $PREFIX 2>/dev/null
}
trap 'cleanup; rm -rf "$WORK"' EXIT
cd "$WORK"

now() { date +%s.%N; }
mbit() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) print "-"; else printf "%.0f", b * 8 / s / 1e6 }'; }
cpu_of() {  # cpu_of PID… -> seconds of CPU (utime + stime) so far
  local total=0 pid
  for pid in "$@"; do
    [ -r /proc/$pid/stat ] || continue
    total=$(awk -v t="$total" '{ print t + ($14 + $15) / 100 }' /proc/$pid/stat)
  done
  echo "$total"
}

"$XT" keygen --out client.key >/dev/null
"$XT" backup init --backup-key backup.key >/dev/null
cp client.key.pub authorized_keys
for i in 1 2 3 4 5; do "$XT" keygen --out pi$i.key >/dev/null; done
key() { tr -d '\n' < "pi$1.key.pub"; }
client=(--key client.key --backup-key backup.key)

# ---------------------------------------------------------------- (a) three links
part_a() {
  local size=$((768 << 20)) rates="50mbit,100mbit,200mbit"
  mkdir -p a/data
  head -c $size /dev/urandom > a/data/payload.bin
  bash "$SCRIPTS/netlinks.sh" up $PREFIX "$rates" 0,10,0
  local A="ip netns exec ${PREFIX}a" B="ip netns exec ${PREFIX}b"
  echo "pi1 $(key 1) 10.81.0.2:7400,10.82.0.2:7400,10.83.0.2:7400" > a/targets
  $B "$XT" backup serve --store "$WORK/a/store" --listen 0.0.0.0:7400 --key pi1.key --authorized-keys authorized_keys --quota 100G > a/serve.log 2>&1 &
  sleep 0.5
  local start end
  start=$(now)
  $A "$XT" backup run a/data --copies 1 --json --via ${PREFIX}a1,${PREFIX}a2,${PREFIX}a3 --connections 4 --targets a/targets "${client[@]}" > a/run.json 2> a/run.err
  end=$(now)
  local xt_rate xt_ok="failed"
  xt_rate=$(mbit $size "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')")
  if $A "$XT" backup restore latest --to a/restored --via ${PREFIX}a1,${PREFIX}a2,${PREFIX}a3 --targets a/targets "${client[@]}" > /dev/null 2>&1 \
     && cmp -s a/data/payload.bin a/restored/data/payload.bin; then xt_ok="ok"; fi
  local links
  links=$(python3 - a/run.json <<'EOF'
import json, sys
summary = [json.loads(l) for l in open(sys.argv[1]) if '"snapshot"' in l][-1]
by = summary["bytes_by_link"]; s = summary["seconds"]
def link(prefix): return sum(v for k, v in by.items() if k.startswith(prefix))
print(" / ".join(f"{link(p) * 8 / s / 1e6:.0f}" for p in ("10.81.", "10.82.", "10.83.")) + f"; sent twice {summary['bytes_duplicate'] / 1048576:.0f} MiB")
EOF
)
  pkill -f "xt backup serve --store $WORK/a/store"
  # MPTCP: the Pi announces its second and third addresses; the client makes a subflow to each.
  $A ip mptcp limits set subflow 8 add_addr_accepted 8
  $B ip mptcp limits set subflow 8 add_addr_accepted 8
  $B ip mptcp endpoint add 10.82.0.2 dev ${PREFIX}b2 signal
  $B ip mptcp endpoint add 10.83.0.2 dev ${PREFIX}b3 signal
  local mptcp tcp
  mptcp=$(iperf_run "$B mptcpize run" "$A mptcpize run" 10.81.0.2 a/data/payload.bin 5201)
  tcp=$(iperf_run "$B" "$A" 10.83.0.2 a/data/payload.bin 5202)
  bash "$SCRIPTS/netlinks.sh" down $PREFIX
  rm -rf "$WORK/a"  # 2.3 GB of memory (/dev/shm): the next parts run as they would alone
  cat <<EOF
### (a) Three links to one Pi: 50, 100 and 200 Mbit/s (tbf), the 100 Mbit/s one dropping 1%

A client and a Pi in two namespaces joined by three veth links, each its own subnet; $((size >> 20)) MiB of random data
(goodput: the payload over the whole run, process start to exit). \`xt backup\` runs with \`--via\` the three
interfaces and 4 connections per link (LEDBAT); ok: \`xt backup restore\` over the same links gives back the
same bytes (cmp). MPTCP: the kernel's (\`mptcpize run iperf3 -F\`; the Pi announces its other two addresses,
\`ip mptcp endpoint … signal\`, so one subflow runs on each link). TCP: one connection on the 200 Mbit/s link.
The links' sum is 350 Mbit/s; the bar is 0.9 × that, 315, and never below the best single link.

| tool | goodput Mbit/s | per link (50 / 100 / 200), Mbit/s |
|---|---|---|
| xt backup, 3 links × 4 connections | $xt_rate $xt_ok | $links |
| MPTCP (mptcpize iperf3), 3 subflows | $mptcp | |
| TCP (iperf3), the 200 Mbit/s link | $tcp | |

EOF
}

iperf_run() {  # iperf_run SERVER_PREFIX CLIENT_PREFIX HOST FILE PORT -> "Mbit/s ok" (the whole file sent)
  local sns=$1 cns=$2 host=$3 file=$4 port=$5
  $sns timeout 120 iperf3 -s -1 -p "$port" > /dev/null 2>&1 &
  local server=$!
  sleep 0.5
  local start end
  start=$(now)
  $cns timeout 120 iperf3 -c "$host" -p "$port" -F "$file" -J > "iperf-$port.json" 2>/dev/null
  wait $server 2>/dev/null
  end=$(now)
  local sent
  sent=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['end']['sum_sent']['bytes'])" "iperf-$port.json" 2>/dev/null || echo 0)
  if [ "$sent" = "$(stat -c %s "$file")" ]; then
    echo "$(mbit "$sent" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')") ok"
  else
    echo "- short ($sent bytes)"
  fi
}

# ---------------------------------------------------------------- (b) 5 Pis × 10 connections
part_b() {
  local size=$((1024 << 20))
  mkdir -p b/data
  head -c $size /dev/urandom > b/data/payload.bin
  : > b/targets
  local pids=()
  for i in 1 2 3 4 5; do
    echo "pi$i $(key $i) 127.0.0.1:$((7410 + i))" >> b/targets
    "$XT" backup serve --store "$WORK/b/store$i" --listen 127.0.0.1:$((7410 + i)) --key pi$i.key --authorized-keys authorized_keys --quota 100G > b/serve$i.log 2>&1 &
    pids+=($!)
  done
  sleep 0.5
  local before start end after
  before=$(cpu_of "${pids[@]}")
  start=$(now)
  /usr/bin/time -f "%U %S" -o b/client.cpu "$XT" backup run b/data --copies 1 --json --connections 10 --targets b/targets "${client[@]}" > b/run.json 2> b/run.err
  end=$(now)
  after=$(cpu_of "${pids[@]}")
  local ok="failed"
  if "$XT" backup restore latest --to b/restored --targets b/targets "${client[@]}" > /dev/null 2>&1 && cmp -s b/data/payload.bin b/restored/data/payload.bin; then ok="ok"; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  local seconds client_cpu pis_cpu
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
  client_cpu=$(awk '{ print $1 + $2 }' b/client.cpu 2>/dev/null || echo 0)
  pis_cpu=$(awk -v a="$before" -v b="$after" 'BEGIN { print b - a }')
  rm -rf "$WORK/b"
  cat <<EOF
### (b) xTransporter's shape: 5 Pis × 10 connections on loopback

One client backs up $((size >> 20)) MiB of random data (copies 1: each chunk to one Pi) to five \`xt backup serve\`
on loopback, 10 connections each, all on these 2 cores (client sealing and hashing, five Pis hashing and
fsyncing). CPU: utime + stime from /proc.

| measure | value |
|---|---|
| aggregate goodput | $(mbit $size "$seconds") Mbit/s $ok |
| client CPU per GB | $(awk -v c="$client_cpu" -v b=$size 'BEGIN { printf "%.1f s", c / (b / 1073741824) }') |
| the five Pis' CPU per GB | $(awk -v c="$pis_cpu" -v b=$size 'BEGIN { printf "%.1f s", c / (b / 1073741824) }') |

EOF
}

# ---------------------------------------------------------------- (c) 2 GB tree, incremental, rsync
part_c() {
  mkdir -p c/data/video c/data/photos
  python3 - c/data <<'EOF'
import os, sys
root = sys.argv[1]
rand = open("/dev/urandom", "rb")
for n in range(190):      # 190 × 8 MiB recordings
    with open(f"{root}/video/clip{n:03}.mp4", "wb") as f: f.write(rand.read(8 << 20))
for n in range(4000):     # 4000 photos and notes, 10–190 KiB
    with open(f"{root}/photos/img{n:04}.jpg", "wb") as f: f.write(rand.read(10240 + (n * 7919) % (180 << 10)))
EOF
  local total
  total=$(du -sb c/data | cut -f1)
  echo "pi1 $(key 1) 127.0.0.1:7421" > c/targets
  "$XT" backup serve --store "$WORK/c/store" --listen 127.0.0.1:7421 --key pi1.key --authorized-keys authorized_keys --quota 100G > c/serve.log 2>&1 &
  local pi=$!
  mkdir -p c/rsync-dest
  printf 'port = 8731\npid file = %s/c/rsyncd.pid\nuse chroot = no\nuid = %s\ngid = %s\n[dest]\npath = %s/c/rsync-dest\nread only = no\n' "$WORK" "$(id -u)" "$(id -g)" "$WORK" > c/rsyncd.conf
  rsync --daemon --config="$WORK/c/rsyncd.conf"
  sleep 0.5
  timed() { local s e; s=$(now); "$@" > /dev/null 2>&1; local rc=$?; e=$(now); awk -v a="$s" -v b="$e" -v rc=$rc 'BEGIN { if (rc) print "failed"; else printf "%.2f", b - a }'; }
  local xt_first rsync_first xt_incremental rsync_incremental
  xt_first=$(timed "$XT" backup run c/data --copies 1 --targets c/targets "${client[@]}")
  rsync_first=$(timed rsync -a c/data/ rsync://127.0.0.1:8731/dest/)
  # 1% changed: 2 recordings rewritten in part, 200 photos replaced (about 20 MiB of 2 GB).
  python3 - c/data <<'EOF'
import os, sys
root = sys.argv[1]
rand = open("/dev/urandom", "rb")
for n in (17, 101):
    with open(f"{root}/video/clip{n:03}.mp4", "r+b") as f: f.seek(1 << 20); f.write(rand.read(3 << 20))
for n in range(0, 4000, 20):
    path = f"{root}/photos/img{n:04}.jpg"; size = os.path.getsize(path)
    with open(path, "wb") as f: f.write(rand.read(size))
EOF
  xt_incremental=$(timed "$XT" backup run c/data --copies 1 --targets c/targets "${client[@]}")
  rsync_incremental=$(timed rsync -a c/data/ rsync://127.0.0.1:8731/dest/)
  local ok="failed"
  if "$XT" backup restore latest --to c/restored --targets c/targets "${client[@]}" > /dev/null 2>&1 && diff -r c/data c/restored/data > /dev/null; then ok="ok"; fi
  kill $pi 2>/dev/null
  kill "$(cat c/rsyncd.pid 2>/dev/null)" 2>/dev/null
  cat <<EOF
### (c) A 2 GB tree: first backup and an incremental one, beside rsync

$(awk -v b="$total" 'BEGIN { printf "%.2f", b / 1e9 }') GB of mixed files (190 recordings of 8 MiB, 4000 photos of 10–190 KiB) to one target on
loopback: \`xt backup\` to one \`xt backup serve\` (copies 1), rsync to an rsync daemon (\`rsync -a\`). Then 1% changes
(two recordings rewritten in part, every 20th photo replaced) and both run again. Seconds, whole command.
ok: the incremental snapshot restores identical to the tree (diff -r).

| | first (s) | incremental, 1% changed (s) |
|---|---|---|
| xt backup | $xt_first | $xt_incremental $ok |
| rsync (daemon) | $rsync_first | $rsync_incremental |

EOF
}

echo "## Backup"
echo
for part in $PARTS; do
  case $part in
    a) part_a ;;
    b) part_b ;;
    c) part_c ;;
  esac
done
