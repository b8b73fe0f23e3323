# Shared by the websocat scripts. BOXOFFICE (default http://127.0.0.1:3000) names the server.
set -euo pipefail
BOXOFFICE=${BOXOFFICE:-http://127.0.0.1:3000}
WS=${BOXOFFICE/http/ws}
command -v websocat >/dev/null || { echo "websocat is not installed: cargo install websocat" >&2; exit 2; }

# ws_request SHOW JSON: opens a session on SHOW, sends JSON (which must carry
# "request_id": "r1") and prints the reply to it.
ws_request() {
  local show=$1 command=$2
  { printf '%s\n' "$command"; sleep "${WAIT:-5}"; } |
    websocat --text "$WS/shows/$show/ws" 2>/dev/null | grep -m1 '"request_id":"r1"' || true
}

# field JSON NAME: the value of a top-level string or number field (good enough for replies).
field() { printf '%s' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -1; }

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
