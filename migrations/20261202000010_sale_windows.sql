-- A show's sale window: holds and bookings are taken from sales_open_at until
-- sales_close_at (either may be NULL: no limit on that side). The booking
-- transaction compares them with its own now(), so the database's clock decides.
ALTER TABLE shows
    ADD COLUMN sales_open_at timestamptz,
    ADD COLUMN sales_close_at timestamptz,
    ADD CONSTRAINT shows_sales_window
        CHECK (sales_open_at IS NULL OR sales_close_at IS NULL OR sales_close_at > sales_open_at);

-- The on-sale clock of every instance asks for the next opening or closing.
CREATE INDEX shows_sales_open_at ON shows (sales_open_at) WHERE sales_open_at IS NOT NULL;
CREATE INDEX shows_sales_close_at ON shows (sales_close_at) WHERE sales_close_at IS NOT NULL;
