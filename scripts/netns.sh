#!/usr/bin/env bash
# Test network namespace for WebRTC and Janus tests (DESIGN.md, "Network rule for tests").
# It holds only loopback plus a veth pair whose v0 end carries 127.0.0.2/32: libnice (Janus)
# refuses the 'lo' interface, and nothing inside can reach any other network.
# usage: scripts/netns.sh up|down|status   (NAME from $HEREWITH_NETNS, default herewith-test)
set -euo pipefail
NS=${HEREWITH_NETNS:-herewith-test}
case "${1:-up}" in
up)
  if ip netns list | grep -qw "$NS"; then exit 0; fi
  ip netns add "$NS"
  ip netns exec "$NS" ip link set lo up
  ip netns exec "$NS" ip link add v0 type veth peer name v1
  ip netns exec "$NS" ip addr add 127.0.0.2/32 dev v0
  ip netns exec "$NS" ip link set v0 up
  ip netns exec "$NS" ip link set v1 up ;;
down)
  ip netns del "$NS" 2>/dev/null || true ;;
status)
  ip netns exec "$NS" ip -br addr ;;
*)
  echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
