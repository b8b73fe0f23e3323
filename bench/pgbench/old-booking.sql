-- B0: the old service's booking transaction on its own schema: lock two seats,
-- insert the booking and its seats, update the seats; one booking per transaction,
-- no NOTIFY. SKIP LOCKED near a random seat keeps the 16 clients from colliding,
-- so the figure is the database's throughput.
\set n random(1, :seats - 1000)
BEGIN;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = 1 AND id >= :n AND status = 'AVAILABLE'
    ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
INSERT INTO bookings (show_id, user_id, status) VALUES (1, 'pgbench', 'CONFIRMED') RETURNING id AS booking \gset
INSERT INTO booking_seats (booking_id, seat_id) VALUES (:booking, :a), (:booking, :b);
UPDATE seats SET status = 'BOOKED', version = version + 1 WHERE id IN (:a, :b);
COMMIT;
