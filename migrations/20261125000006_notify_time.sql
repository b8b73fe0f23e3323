-- Seat-change notifications carry the time of the statement that made them
-- (`at`, Unix seconds), so that fan-out lag can be measured from the database's
-- change to the frame a session writes (the boxoffice_fanout_lag_seconds metric).
-- Otherwise as in 20261125000002_seat_notify.sql.
CREATE OR REPLACE FUNCTION seats_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payload text;
    at float8 := extract(epoch FROM clock_timestamp());
BEGIN
    FOR payload IN
        SELECT json_build_object(
                   'show_id', show_id,
                   'at', at,
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
