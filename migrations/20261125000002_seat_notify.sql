-- Real-time fan-out: every statement that changes seats announces the new state of
-- the changed seats with NOTIFY on channel 'seat_changes', whoever runs it.
--
-- One statement-level trigger (not one per row) keeps the cost to one NOTIFY per
-- statement and chunk. A NOTIFY payload must stay under 8000 bytes, so the changed
-- seats are split by show into chunks of at most ~7000 bytes of entries; each chunk
-- is self-contained (seat, status, version), so clients may apply chunks in any order.
-- Payload: {"show_id": 1, "seats": [["7", "BOOKED", 3], ...]}

CREATE FUNCTION seats_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    FOR payload IN
        SELECT json_build_object(
                   'show_id', show_id,
                   'seats', json_agg(json_build_array(seat_no, status, version) ORDER BY position))::text
        FROM (
            -- 40 bytes bound the JSON around a seat number: quotes, status, version, commas.
            SELECT show_id, seat_no, status, version, position,
                   sum(length(seat_no) + 40) OVER (PARTITION BY show_id ORDER BY position) / 7000 AS chunk
            FROM changed
        ) c
        GROUP BY show_id, chunk
    LOOP
        PERFORM pg_notify('seat_changes', payload);
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER seats_notify AFTER UPDATE ON seats
    REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION seats_notify();

-- boxoffice raises versions itself (version = version + 1) in every statement it runs;
-- the row trigger now only fires for changes that did not, such as an UPDATE typed
-- into psql. The WHEN clause is evaluated without calling PL/pgSQL, so the booking
-- path no longer pays for a function call per seat.
DROP TRIGGER seats_version ON seats;
CREATE TRIGGER seats_version BEFORE UPDATE ON seats
    FOR EACH ROW
    WHEN (NEW.version = OLD.version AND (NEW.status, NEW.booking_id) IS DISTINCT FROM (OLD.status, OLD.booking_id))
    EXECUTE FUNCTION seats_bump_version();
