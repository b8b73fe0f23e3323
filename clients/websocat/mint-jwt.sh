#!/usr/bin/env bash
# Mints an HS256 JWT for trying AUTH=jwt locally (never for production use):
#   JWT_SECRET=... clients/websocat/mint-jwt.sh alice [seconds-valid] [issuer] [audience]
# Then: curl -H "Authorization: Bearer $(...)" ..., or websocat "ws://.../shows/1/ws?access_token=$(...)",
# or open the seat map at http://127.0.0.1:3000/#token=<jwt>.
set -euo pipefail
sub=${1:?usage: mint-jwt.sh SUBJECT [SECONDS] [ISSUER] [AUDIENCE]}
secs=${2:-3600}
: "${JWT_SECRET:?set JWT_SECRET to the secret the server uses}"
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
exp=$(( $(date +%s) + secs ))
claims="{\"sub\":\"$sub\",\"exp\":$exp"
[ -n "${3:-}" ] && claims+=",\"iss\":\"$3\""
[ -n "${4:-}" ] && claims+=",\"aud\":\"$4\""
claims+="}"
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
payload=$(printf '%s' "$claims" | b64url)
signature=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$JWT_SECRET" -binary | b64url)
printf '%s.%s.%s\n' "$header" "$payload" "$signature"
