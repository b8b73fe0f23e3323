-- A show's waiting room (issue 18): its settings, its pacing state and its places.
CREATE TABLE show_queues (
    show_id bigint PRIMARY KEY REFERENCES shows (id) ON DELETE CASCADE,
    admit_per_minute integer NOT NULL CHECK (admit_per_minute > 0),
    max_active integer NOT NULL CHECK (max_active > 0),
    pre_queue_opens_at timestamptz,
    active_minutes integer NOT NULL CHECK (active_minutes > 0),
    paused boolean NOT NULL DEFAULT false,
    -- When the pre-queue was shuffled and ranks given out; NULL before.
    shuffled_at timestamptz,
    -- The rank the next later arrival gets.
    next_rank bigint NOT NULL DEFAULT 1,
    -- Every rank up to this one has been admitted (the watermark positions count from).
    admitted_through bigint NOT NULL DEFAULT 0,
    -- The admission pacing's token bucket: credit, and when it was last filled.
    credit double precision NOT NULL DEFAULT 0,
    credit_at timestamptz
);

CREATE TABLE queue_places (
    show_id bigint NOT NULL REFERENCES show_queues (show_id) ON DELETE CASCADE,
    -- The buyer: a JWT's sub, or a signed queue id's (AUTH=none).
    buyer text NOT NULL,
    joined_at timestamptz NOT NULL DEFAULT now(),
    -- NULL in the pre-queue until the shuffle; then 1, 2, ... in admission order.
    rank bigint,
    state text NOT NULL DEFAULT 'waiting'
        CHECK (state IN ('waiting', 'admitted', 'done', 'expired')),
    admitted_at timestamptz,
    admitted_until timestamptz,
    PRIMARY KEY (show_id, buyer),
    UNIQUE (show_id, rank),
    CHECK ((state = 'waiting') = (admitted_at IS NULL)),
    CHECK (state = 'waiting' OR rank IS NOT NULL)
);
CREATE INDEX queue_places_waiting ON queue_places (show_id, rank) WHERE state = 'waiting';
CREATE INDEX queue_places_admitted ON queue_places (show_id, admitted_until) WHERE state = 'admitted';

-- The admission a booking was made under (NULL for shows without a waiting room).
ALTER TABLE bookings ADD COLUMN queue_buyer text;

-- An admission ends when its buyer's holds are confirmed or released: when a
-- booking made under it stops being a hold (or is made confirmed) and the buyer
-- has no other live hold in the show. Whoever writes (a confirm, a cancel, the
-- expiry worker, a person in psql), the place is freed for the next buyer.
CREATE FUNCTION end_admission() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM bookings
        WHERE show_id = NEW.show_id AND queue_buyer = NEW.queue_buyer
          AND status = 'PENDING' AND id <> NEW.id
    ) THEN
        UPDATE queue_places SET state = 'done'
        WHERE show_id = NEW.show_id AND buyer = NEW.queue_buyer AND state = 'admitted';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER bookings_end_admission_on_change AFTER UPDATE OF status ON bookings
    FOR EACH ROW WHEN (NEW.queue_buyer IS NOT NULL AND OLD.status = 'PENDING' AND NEW.status <> 'PENDING')
    EXECUTE FUNCTION end_admission();
CREATE TRIGGER bookings_end_admission_on_sale AFTER INSERT ON bookings
    FOR EACH ROW WHEN (NEW.queue_buyer IS NOT NULL AND NEW.status <> 'PENDING')
    EXECUTE FUNCTION end_admission();

CREATE INDEX bookings_by_queue_buyer ON bookings (show_id, queue_buyer)
    WHERE queue_buyer IS NOT NULL AND status = 'PENDING';

-- Secrets the instances share, generated once (the admission secret when
-- ADMISSION_SECRET is unset).
CREATE TABLE server_secrets (
    name text PRIMARY KEY,
    secret bytea NOT NULL
);
