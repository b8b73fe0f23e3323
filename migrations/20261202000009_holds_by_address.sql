-- With AUTH=none and MAX_HOLDS_PER_ADDRESS set, the client address a booking came
-- from, so that the live holds of one address in a show can be counted. NULL
-- otherwise, and then not indexed: the limit costs nothing where it is off.
ALTER TABLE bookings ADD COLUMN client_addr inet;

CREATE INDEX bookings_holds_by_address ON bookings (show_id, client_addr)
    WHERE status = 'PENDING' AND client_addr IS NOT NULL;
