-- Per-buyer limits (MAX_SEATS_PER_USER, MAX_HOLDS_PER_USER) count a buyer's live
-- bookings in a show under a transaction-level advisory lock on the buyer (see
-- booking::batch::lock_buyers); this index makes the count cheap.
CREATE INDEX bookings_buyer_idx ON bookings (show_id, user_id) WHERE is_live;
