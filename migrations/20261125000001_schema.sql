-- boxoffice schema. The constraints below are the last line of defence against
-- selling a seat twice: the booking code locks rows in a fixed order, but if it
-- ever gets that wrong, a transaction fails at commit instead of double-selling.

CREATE TABLE shows (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    start_time  TIMESTAMPTZ NOT NULL,
    total_seats INTEGER     NOT NULL CHECK (total_seats > 0),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX shows_start_time_idx ON shows (start_time, id);

CREATE TABLE bookings (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id     BIGINT      NOT NULL REFERENCES shows (id),
    user_id     TEXT        NOT NULL CHECK (length(user_id) BETWEEN 1 AND 100),
    status      TEXT        NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'EXPIRED', 'CANCELLED')),
    -- SHA-256 of the booking token; the token itself is only ever sent to its creator.
    token_hash  BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ,
    -- Derived columns that the foreign keys below point at: the seat status a booking
    -- implies for its seats (NULL once it no longer holds them), and whether it is live.
    seat_status TEXT GENERATED ALWAYS AS (
        CASE status WHEN 'PENDING' THEN 'RESERVED' WHEN 'CONFIRMED' THEN 'BOOKED' END
    ) STORED,
    is_live     BOOLEAN GENERATED ALWAYS AS (status IN ('PENDING', 'CONFIRMED')) STORED,
    CHECK (status <> 'PENDING' OR expires_at IS NOT NULL),
    UNIQUE (id, show_id, seat_status),
    UNIQUE (id, is_live)
);
-- The expiry worker's "next deadline" and "what is due" queries.
CREATE INDEX bookings_pending_expiry_idx ON bookings (expires_at) WHERE status = 'PENDING';

CREATE TABLE seats (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    show_id    BIGINT  NOT NULL REFERENCES shows (id),
    seat_no    TEXT    NOT NULL CHECK (length(seat_no) BETWEEN 1 AND 32),
    -- Numeric order of the seat within its show ("2" before "10").
    position   INTEGER NOT NULL,
    status     TEXT    NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'RESERVED', 'BOOKED')),
    -- The live booking that claims this seat, if any.
    booking_id BIGINT,
    version    BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (show_id, seat_no),
    UNIQUE (show_id, position),
    -- A seat is claimed exactly when it is not available...
    CHECK ((status = 'AVAILABLE') = (booking_id IS NULL)),
    -- ...and its status must be the one its (live, same-show) booking implies. Deferred,
    -- because a transaction moves a booking and its seats together and is checked at commit.
    FOREIGN KEY (booking_id, show_id, status) REFERENCES bookings (id, show_id, seat_status)
        DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX seats_booking_idx ON seats (booking_id) WHERE booking_id IS NOT NULL;

CREATE TABLE booking_seats (
    booking_id BIGINT  NOT NULL,
    seat_id    BIGINT  NOT NULL REFERENCES seats (id),
    -- Mirrors bookings.is_live (enforced below), so that the unique index can see it.
    live       BOOLEAN NOT NULL,
    PRIMARY KEY (booking_id, seat_id),
    FOREIGN KEY (booking_id, live) REFERENCES bookings (id, is_live) DEFERRABLE INITIALLY DEFERRED
);
-- The rule itself: a seat belongs to at most one live (PENDING or CONFIRMED) booking.
CREATE UNIQUE INDEX booking_seats_one_live_claim ON booking_seats (seat_id) WHERE live;

-- A seat's claim must be recorded among its booking's seats.
ALTER TABLE seats ADD FOREIGN KEY (booking_id, id) REFERENCES booking_seats (booking_id, seat_id)
    DEFERRABLE INITIALLY DEFERRED;

-- Every change to a seat raises its version, whoever makes it (boxoffice, another
-- instance, or a person in psql), so that real-time clients can order what they see.
CREATE FUNCTION seats_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.status, NEW.booking_id) IS DISTINCT FROM (OLD.status, OLD.booking_id) THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER seats_version BEFORE UPDATE ON seats
    FOR EACH ROW EXECUTE FUNCTION seats_bump_version();
