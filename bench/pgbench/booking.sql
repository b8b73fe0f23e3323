-- One booking per transaction, shaped like boxoffice's: lock two seats, insert the
-- booking and its seats, update the seats. SKIP LOCKED near a random position keeps
-- the 16 clients from colliding, so the figure is the database's throughput.
\set n random(1, :seats - 1000)
BEGIN;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= :n AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
COMMIT;
