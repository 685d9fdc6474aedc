#!/usr/bin/env bash
# Two network namespaces joined by a veth pair, for tests and benchmarks:
#   netns.sh up PREFIX RATE DROP_PER_MILLE   ns PREFIXa (10.77.0.1) <-> ns PREFIXb (10.77.0.2)
#   netns.sh down PREFIX
# RATE caps each direction with `tc tbf` (e.g. 500mbit, or "none"); DROP_PER_MILLE drops that
# share of packets arriving in PREFIXb (the receiver) with `nft numgen random`. Only these
# private namespace addresses are used; nothing leaves the machine.
set -euo pipefail
cmd=${1:?up|down}
prefix=${2:?prefix}
a=${prefix}a
b=${prefix}b

down() {
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
}

case "$cmd" in
  up)
    rate=${3:-none}
    drop=${4:-0}
    down
    ip netns add "$a"
    ip netns add "$b"
    ip link add "${prefix}va" type veth peer name "${prefix}vb"
    ip link set "${prefix}va" netns "$a"
    ip link set "${prefix}vb" netns "$b"
    ip -n "$a" addr add 10.77.0.1/24 dev "${prefix}va"
    ip -n "$b" addr add 10.77.0.2/24 dev "${prefix}vb"
    for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
    ip -n "$a" link set "${prefix}va" up
    ip -n "$b" link set "${prefix}vb" up
    if [ "$rate" != "none" ]; then
      ip netns exec "$a" tc qdisc add dev "${prefix}va" root tbf rate "$rate" burst 256kb latency 50ms
      ip netns exec "$b" tc qdisc add dev "${prefix}vb" root tbf rate "$rate" burst 256kb latency 50ms
    fi
    if [ "$drop" != "0" ]; then
      ip netns exec "$b" nft add table inet xtdrop
      ip netns exec "$b" nft add chain inet xtdrop input '{ type filter hook input priority 0; policy accept; }'
      ip netns exec "$b" nft add rule inet xtdrop input ip saddr 10.77.0.1 numgen random mod 1000 '<' "$drop" drop
    fi
    ;;
  down)
    down
    ;;
  *)
    echo "usage: netns.sh up PREFIX RATE DROP_PER_MILLE | down PREFIX" >&2
    exit 2
    ;;
esac
