#!/usr/bin/env bash
# `make demo`: a listener and two peers on loopback. Keys and received files live in
# demo-data/, which the next run reuses.
set -euo pipefail
XT=${1:-.build/release/xt}
DATA=demo-data
PORT=${XT_DEMO_PORT:-9400}
mkdir -p "$DATA"
cd "$DATA"
XT=$(cd "$(dirname "../$XT")" && pwd)/$(basename "$XT")

for name in listener alice bob; do
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
