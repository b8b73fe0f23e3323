-- no-transaction
-- A buyer's bookings by buyer, then id: GET /me/bookings (newest first, across shows)
-- walked the whole bookings table backwards for a buyer with few bookings (13 ms at
-- 44,000 bookings, seconds at millions), and the per-buyer limits' count reads the
-- same rows. It replaces bookings_buyer_idx (show_id, user_id) WHERE is_live, which
-- served only the limits (next migration), so a booking still writes one index entry
-- for its buyer. CONCURRENTLY, so an upgrade does not stop bookings while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS bookings_user_idx ON bookings (user_id, id);
