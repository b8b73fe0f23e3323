#!/usr/bin/env bash
# Watch a show's live changes: prints the snapshot, then every change as it happens.
# Usage: watch.sh SHOW_ID [SECONDS]   (watches for SECONDS, default: until Ctrl-C)
# Expects: the first message is a snapshot of that show.
. "$(dirname "$0")/lib.sh"
show=${1:?usage: watch.sh SHOW_ID [SECONDS]}
echo "expecting a snapshot of show $show, then seats_changed messages as seats change"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ -n "${2:-}" ]; then
  { sleep "$2"; } | websocat --text "$WS/shows/$show/ws" | tee "$out" || true
else
  websocat --text "$WS/shows/$show/ws" | tee "$out" || true
fi
head -1 "$out" | grep -q "\"type\":\"snapshot\",\"show_id\":$show" || fail "the first message was not a snapshot of show $show"
pass "snapshot received, then $(($(wc -l <"$out") - 1)) change(s)"
