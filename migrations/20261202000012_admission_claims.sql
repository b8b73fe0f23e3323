-- An admission lapses after claim_secs unless its buyer claims it (a session or a
-- REST call of theirs fetches it); claimed, it lasts active_minutes. A buyer who
-- left does not hold a place among max_active for long.
ALTER TABLE show_queues
    ADD COLUMN claim_secs integer NOT NULL DEFAULT 60 CHECK (claim_secs > 0);
ALTER TABLE queue_places
    ADD COLUMN claimed boolean NOT NULL DEFAULT false;
