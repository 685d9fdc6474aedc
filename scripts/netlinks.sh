#!/usr/bin/env bash
# Two network namespaces joined by several veth links, each its own subnet, for bonding tests
# and benchmarks (a backup client with several networks to one Pi):
#   netlinks.sh up PREFIX RATES DROPS   ns PREFIXa (client) <-> ns PREFIXb (Pi); link i (1-based)
#                                       is PREFIXa<i> 10.8<i>.0.1/24 <-> PREFIXb<i> 10.8<i>.0.2/24.
#                                       RATES: comma-separated tbf rates per link ("none" for no
#                                       cap), both directions; DROPS: per mille dropped arriving in
#                                       PREFIXb on each link (nft numgen random)
#   netlinks.sh linkdown|linkup PREFIX I   the client's end of link I down or up (carrier lost)
#   netlinks.sh cut|mend PREFIX I          drop everything on link I both ways, or stop dropping
#   netlinks.sh down PREFIX
# Only these private namespace addresses are used; nothing leaves the machine.
set -euo pipefail
cmd=${1:?up|linkdown|linkup|cut|mend|down}
prefix=${2:?prefix}
a=${prefix}a
b=${prefix}b

down() {
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
}

case "$cmd" in
  up)
    IFS=, read -r -a rates <<< "${3:?rates}"
    IFS=, read -r -a drops <<< "${4:-0}"
    [ "${#rates[@]}" -le 9 ] || { echo "netlinks.sh: at most 9 links" >&2; exit 2; }
    down
    ip netns add "$a"
    ip netns add "$b"
    for ns in "$a" "$b"; do
      ip -n "$ns" link set lo up
      ip netns exec "$ns" nft add table inet xtlinks
      ip netns exec "$ns" nft add chain inet xtlinks input '{ type filter hook input priority 0; policy accept; }'
    done
    for i in "${!rates[@]}"; do
      n=$((i + 1))
      ip link add "${a}${n}" type veth peer name "${b}${n}"
      ip link set "${a}${n}" netns "$a"
      ip link set "${b}${n}" netns "$b"
      ip -n "$a" addr add "10.8${n}.0.1/24" dev "${a}${n}"
      ip -n "$b" addr add "10.8${n}.0.2/24" dev "${b}${n}"
      ip -n "$a" link set "${a}${n}" up
      ip -n "$b" link set "${b}${n}" up
      if [ "${rates[$i]}" != "none" ]; then
        ip netns exec "$a" tc qdisc add dev "${a}${n}" root tbf rate "${rates[$i]}" burst 256kb latency 50ms
        ip netns exec "$b" tc qdisc add dev "${b}${n}" root tbf rate "${rates[$i]}" burst 256kb latency 50ms
      fi
      drop=${drops[$i]:-0}
      if [ "$drop" != "0" ]; then
        ip netns exec "$b" nft add rule inet xtlinks input iifname "${b}${n}" numgen random mod 1000 '<' "$drop" drop
      fi
    done
    ;;
  linkdown) ip -n "$a" link set "${a}${3:?link}" down ;;
  linkup) ip -n "$a" link set "${a}${3:?link}" up ;;
  cut)
    n=${3:?link}
    ip netns exec "$a" nft add rule inet xtlinks input iifname "${a}${n}" drop comment "\"cut$n\""
    ip netns exec "$b" nft add rule inet xtlinks input iifname "${b}${n}" drop comment "\"cut$n\""
    ;;
  mend)
    n=${3:?link}
    for ns in "$a" "$b"; do
      for handle in $(ip netns exec "$ns" nft -a list chain inet xtlinks input | awk -v c="cut$n" '$0 ~ c { print $NF }'); do
        ip netns exec "$ns" nft delete rule inet xtlinks input handle "$handle"
      done
    done
    ;;
  down) down ;;
  *)
    echo "usage: netlinks.sh up PREFIX RATES DROPS | linkdown|linkup|cut|mend PREFIX I | down PREFIX" >&2
    exit 2
    ;;
esac
