-- Ten bookings per transaction, a savepoint each: booking.sql's statements ten times.
\set n random(1, :seats - 1000)
BEGIN;
SAVEPOINT b0;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 0) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b0;
SAVEPOINT b1;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 50) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b1;
SAVEPOINT b2;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 100) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b2;
SAVEPOINT b3;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 150) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b3;
SAVEPOINT b4;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 200) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b4;
SAVEPOINT b5;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 250) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b5;
SAVEPOINT b6;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 300) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b6;
SAVEPOINT b7;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 350) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b7;
SAVEPOINT b8;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 400) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b8;
SAVEPOINT b9;
SELECT min(id) AS a, max(id) AS b FROM (
    SELECT id FROM seats WHERE show_id = :show AND position >= (:n + 450) AND status = 'AVAILABLE'
    ORDER BY position LIMIT 2 FOR UPDATE SKIP LOCKED) picked \gset
WITH b AS (INSERT INTO bookings (show_id, user_id, status, token_hash)
           VALUES (:show, 'pgbench', 'CONFIRMED', sha256('token'::bytea)) RETURNING id),
     claims AS (INSERT INTO booking_seats (booking_id, seat_id, live)
                SELECT b.id, unnest(ARRAY[:a, :b]::int8[]), true FROM b)
UPDATE seats SET status = 'BOOKED', booking_id = b.id, version = version + 1
FROM b WHERE seats.id IN (:a, :b);
RELEASE SAVEPOINT b9;
COMMIT;
