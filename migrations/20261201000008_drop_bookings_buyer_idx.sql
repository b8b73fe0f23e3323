-- no-transaction
-- Replaced by bookings_user_idx (previous migration).
DROP INDEX CONCURRENTLY IF EXISTS bookings_buyer_idx;
