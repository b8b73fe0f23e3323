#!/usr/bin/env bash
# The old service's concurrency test, over WebSocket: N sessions book the same seats
# at the same moment. Usage: concurrency.sh SHOW_ID [N=10] [SEAT...=1 2]
# Expects: exactly one "booked", and N-1 SEATS_UNAVAILABLE.
. "$(dirname "$0")/lib.sh"
show=${1:?usage: concurrency.sh SHOW_ID [N] [SEAT...]}
n=${2:-10}; shift $(( $# >= 2 ? 2 : 1 ))
[ $# -gt 0 ] || set -- 1 2
seats=$(printf '"%s",' "$@"); seats="[${seats%,}]"
echo "expecting: exactly 1 of $n concurrent bookings of $seats to win"
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
start=$(( $(date +%s) + 2 ))   # everyone connects first, then fires at the same second
for i in $(seq "$n"); do
  {
    { while [ "$(date +%s)" -lt "$start" ]; do sleep 0.05; done
      printf '%s\n' "{\"type\":\"book\",\"request_id\":\"r1\",\"seat_nos\":$seats,\"user_id\":\"racer$i\"}"
      sleep 5; } | websocat --text "$WS/shows/$show/ws" 2>/dev/null | grep -m1 '"request_id":"r1"' >"$dir/$i" || true
  } &
done
wait
won=$(grep -l '"type":"booked"' "$dir"/* 2>/dev/null | wc -l)
lost=$(grep -l 'SEATS_UNAVAILABLE' "$dir"/* 2>/dev/null | wc -l)
echo "booked: $won, SEATS_UNAVAILABLE: $lost, of $n"
[ "$won" -eq 1 ] && [ "$lost" -eq $((n - 1)) ] || fail "expected exactly one winner"
pass "exactly one winner"
