-- Per-buyer limits (MAX_SEATS_PER_USER, MAX_HOLDS_PER_USER). A booking batch whose
-- buyers have limits locks one row per (show, buyer) here before it counts what
-- they hold, so concurrent batches for one buyer, on any instance, take turns and
-- the count each sees is final. Rows are only ever inserted, and only while limits
-- are configured.
CREATE TABLE show_buyers (
    show_id BIGINT NOT NULL REFERENCES shows (id),
    user_id TEXT   NOT NULL,
    PRIMARY KEY (show_id, user_id)
);

-- What a buyer holds in a show: their live bookings.
CREATE INDEX bookings_buyer_idx ON bookings (show_id, user_id) WHERE is_live;
