-- With AUTH=none, the client address a waiting-room place was taken from, so that
-- the places of one address in a show can be counted (MAX_PLACES_PER_ADDRESS).
ALTER TABLE queue_places ADD COLUMN client_addr inet;
CREATE INDEX queue_places_by_address ON queue_places (show_id, client_addr)
    WHERE client_addr IS NOT NULL;
