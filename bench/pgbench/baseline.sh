#!/usr/bin/env bash
# The database's own limit on this machine: pgbench runs booking-shaped transactions
# on boxoffice's schema in a throwaway cluster, three ways:
#   plain    one booking per transaction, seat NOTIFY trigger disabled
#   notify   one booking per transaction, with the trigger (as boxoffice runs)
#   batch10  ten bookings per transaction (a savepoint each), with the trigger
# Usage: bench/pgbench/baseline.sh [seconds per run, default 10] [clients, default 16]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-10}
clients=${2:-16}
seats=2000000

bindir=${PG_BIN:-$(dirname "$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | tail -1)")}
dir=$(mktemp -d /tmp/boxoffice-pgbench.XXXXXX)
chmod 755 "$dir"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() { as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200" start >/dev/null
psql=(psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres)
for m in "$root"/migrations/*.sql; do "${psql[@]}" -f "$m" >/dev/null; done
"${psql[@]}" -c "INSERT INTO shows (name, start_time, total_seats) VALUES ('pgbench', now(), $seats)" \
  -c "INSERT INTO categories (show_id, key, name, price, currency, color, position) VALUES (1, 'standard', 'Standard', 0, 'EUR', '#2f6fdf', 0)" \
  -c "INSERT INTO seats (show_id, seat_no, position, section, row_label, number, category) SELECT 1, g::text, g, 'main', 'A', g::text, 'standard' FROM generate_series(1, $seats) g" \
  -c "VACUUM ANALYZE"

# The batched variant: booking.sql's statements ten times in one transaction, each
# booking in its own savepoint (made here, so that it can never drift from booking.sql).
{
  echo "BEGIN;"
  for i in 0 1 2 3 4 5 6 7 8 9; do
    echo "SAVEPOINT b$i;"
    sed -n '/^BEGIN;$/,/^COMMIT;$/p' "$here/booking.sql" | sed '1d;$d' | sed "s/:n\b/(:n + $((i * 50)))/g"
    echo "RELEASE SAVEPOINT b$i;"
  done
  echo "COMMIT;"
} | { grep '^\\set' "$here/booking.sql"; cat; } >"$dir/booking_batch10.sql"
chmod 644 "$dir/booking_batch10.sql"

run() { # name script multiplier
  local tps
  # Each run starts right after a checkpoint, so each pays the same full-page writes.
  "${psql[@]}" -c CHECKPOINT
  tps=$(pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c "$clients" -j 2 -T "$secs" \
        -D seats=$seats -D show=1 -f "$2" postgres 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  printf '%-8s %8.0f transactions/s %8.0f bookings/s\n' "$1" "$tps" "$(echo "$tps * $3" | bc)"
}
"${psql[@]}" -c "ALTER TABLE seats DISABLE TRIGGER seats_notify"
run plain "$here/booking.sql" 1
"${psql[@]}" -c "ALTER TABLE seats ENABLE TRIGGER seats_notify"
run notify "$here/booking.sql" 1
run batch10 "$dir/booking_batch10.sql" 10
