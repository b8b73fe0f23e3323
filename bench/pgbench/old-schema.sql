-- The schema of the Node/Express service boxoffice replaces, as its booking path
-- used it: shows, seats with a status (plus the version column real-time clients
-- need), bookings, and the seats of each booking. Plain foreign keys, no deferred
-- checks, no partial unique index: the neutral baseline (B0) a user compares with.
CREATE TABLE shows (
    id          SERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    start_time  TIMESTAMPTZ NOT NULL,
    total_seats INTEGER NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE seats (
    id      SERIAL PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id),
    seat_no TEXT NOT NULL,
    status  TEXT NOT NULL DEFAULT 'AVAILABLE',
    version INTEGER NOT NULL DEFAULT 0,
    UNIQUE (show_id, seat_no)
);
CREATE TABLE bookings (
    id         SERIAL PRIMARY KEY,
    show_id    INTEGER NOT NULL REFERENCES shows (id),
    user_id    TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE booking_seats (
    booking_id INTEGER NOT NULL REFERENCES bookings (id),
    seat_id    INTEGER NOT NULL REFERENCES seats (id),
    PRIMARY KEY (booking_id, seat_id)
);
