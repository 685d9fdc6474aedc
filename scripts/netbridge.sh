#!/usr/bin/env bash
# N network namespaces on one bridge, for node-network tests (a host and its nodes):
#   netbridge.sh up PREFIX N     namespaces PREFIX0 … PREFIX(N-1), addresses 10.78.0.1 … 10.78.0.N/24,
#                                each joined by a veth pair to bridge PREFIXbr in namespace PREFIXb
#   netbridge.sh drop PREFIX I PER_MILLE   drop that share of packets arriving in PREFIX<I>
#   netbridge.sh down PREFIX N
# Only these private namespace addresses are used; nothing leaves the machine.
set -euo pipefail
cmd=${1:?up|drop|down}
prefix=${2:?prefix}

down() {
  local n=$1
  for i in $(seq 0 $((n - 1))); do ip netns del "${prefix}${i}" 2>/dev/null || true; done
  ip netns del "${prefix}b" 2>/dev/null || true
}

case "$cmd" in
  up)
    n=${3:?count}
    down "$n"
    ip netns add "${prefix}b"
    ip -n "${prefix}b" link add "${prefix}br" type bridge
    ip -n "${prefix}b" link set "${prefix}br" up
    for i in $(seq 0 $((n - 1))); do
      ns="${prefix}${i}"
      ip netns add "$ns"
      ip link add "${prefix}v${i}" type veth peer name "${prefix}p${i}"
      ip link set "${prefix}v${i}" netns "$ns"
      ip link set "${prefix}p${i}" netns "${prefix}b"
      ip -n "${prefix}b" link set "${prefix}p${i}" master "${prefix}br"
      ip -n "${prefix}b" link set "${prefix}p${i}" up
      ip -n "$ns" addr add "10.78.0.$((i + 1))/24" dev "${prefix}v${i}"
      ip -n "$ns" link set lo up
      ip -n "$ns" link set "${prefix}v${i}" up
      # Multicast leaves through the bridge.
      ip -n "$ns" route add 224.0.0.0/4 dev "${prefix}v${i}"
    done
    ;;
  drop)
    i=${3:?namespace index}
    per_mille=${4:?per mille}
    ns="${prefix}${i}"
    ip netns exec "$ns" nft add table inet xtdrop
    ip netns exec "$ns" nft add chain inet xtdrop input '{ type filter hook input priority 0; policy accept; }'
    ip netns exec "$ns" nft add rule inet xtdrop input meta l4proto udp numgen random mod 1000 '<' "$per_mille" drop
    ;;
  down)
    down "${3:?count}"
    ;;
  *)
    echo "usage: netbridge.sh up PREFIX N | drop PREFIX I PER_MILLE | down PREFIX N" >&2
    exit 2
    ;;
esac
