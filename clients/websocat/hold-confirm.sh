#!/usr/bin/env bash
# Hold seats, then confirm the hold with its token. Usage: hold-confirm.sh SHOW_ID SEAT [SEAT...]
# Expects: a PENDING booking, then a CONFIRMED one.
. "$(dirname "$0")/lib.sh"
show=${1:?usage: hold-confirm.sh SHOW_ID SEAT [SEAT...]}; shift
seats=$(printf '"%s",' "$@"); seats="[${seats%,}]"
echo "expecting: a hold on $seats, then its confirmation"
held=$(ws_request "$show" "{\"type\":\"book\",\"request_id\":\"r1\",\"seat_nos\":$seats,\"user_id\":\"websocat\",\"immediate_confirm\":false}")
echo "$held"
[ "$(field "$held" status)" = PENDING ] || fail "no hold: ${held:-no reply}"
id=$(field "$held" id); token=$(field "$held" token)
confirmed=$(ws_request "$show" "{\"type\":\"confirm\",\"request_id\":\"r1\",\"booking_id\":$id,\"token\":\"$token\"}")
echo "$confirmed"
[ "$(field "$confirmed" type)" = confirmed ] || fail "not confirmed: ${confirmed:-no reply}"
pass "booking $id held, then confirmed"
