#!/usr/bin/env bash
# Book seats over WebSocket. Usage: book.sh SHOW_ID SEAT [SEAT...]
# Expects: a "booked" reply carrying the seats and a token.
. "$(dirname "$0")/lib.sh"
show=${1:?usage: book.sh SHOW_ID SEAT [SEAT...]}; shift
[ $# -gt 0 ] || fail "name at least one seat"
seats=$(printf '"%s",' "$@"); seats="[${seats%,}]"
echo "expecting: booked $seats of show $show"
reply=$(ws_request "$show" "{\"type\":\"book\",\"request_id\":\"r1\",\"seat_nos\":$seats,\"user_id\":\"websocat\"}")
echo "$reply"
[ "$(field "$reply" type)" = booked ] || fail "not booked: ${reply:-no reply}"
pass "booking $(field "$reply" id) with token $(field "$reply" token)"
