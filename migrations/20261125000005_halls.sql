-- Real halls: every seat has a place (section, row, number, drawing coordinates), a
-- price category, and flags; a show keeps its drawing's outline (stage, sections,
-- rows) in `layout`. Shows created with `total_seats` get one section of rows and a
-- single category, exactly like the backfill below does for the shows already here.

ALTER TABLE shows ADD COLUMN layout JSONB;

CREATE TABLE categories (
    show_id  BIGINT  NOT NULL REFERENCES shows (id),
    key      TEXT    NOT NULL CHECK (length(key) BETWEEN 1 AND 16),
    name     TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- As the organiser wrote it ("45.00"): NUMERIC keeps the scale it was given.
    price    NUMERIC NOT NULL CHECK (price >= 0 AND price < 1e9),
    currency TEXT    NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    color    TEXT    NOT NULL CHECK (color ~ '^#[0-9a-fA-F]{6}$'),
    position INTEGER NOT NULL,
    PRIMARY KEY (show_id, key)
);

INSERT INTO categories (show_id, key, name, price, currency, color, position)
SELECT id, 'standard', 'Standard', 0.00, 'EUR', '#2f6fdf', 0 FROM shows;

-- The backfill rewrites every seat without changing what anyone can book: it must
-- not announce itself to every connected screen.
ALTER TABLE seats DISABLE TRIGGER seats_notify;
ALTER TABLE seats
    ADD COLUMN section    TEXT    NOT NULL DEFAULT 'main',
    ADD COLUMN row_label  TEXT    NOT NULL DEFAULT '',
    ADD COLUMN number     TEXT    NOT NULL DEFAULT '',
    ADD COLUMN category   TEXT    NOT NULL DEFAULT 'standard',
    ADD COLUMN x          INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN y          INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN accessible BOOLEAN NOT NULL DEFAULT false,
    -- Not for sale (a pillar, the sound desk, house seats). Such a seat can never be
    -- claimed: the check below refuses it whatever the booking code does.
    ADD COLUMN blocked    BOOLEAN NOT NULL DEFAULT false,
    ADD CHECK (NOT blocked OR status = 'AVAILABLE');

-- Rows as wide as `shows::uniform_width` makes them: max(10, ceil(sqrt(2 n))).
UPDATE seats s
SET row_label = CASE WHEN r < 26 THEN chr(65 + r) ELSE chr(64 + r / 26) || chr(65 + r % 26) END,
    number = (c + 1)::text, x = c, y = r
FROM (
    SELECT st.id, (st.position - 1) / w AS r, (st.position - 1) % w AS c
    FROM seats st
    JOIN (SELECT id, greatest(10, ceil(sqrt(2.0 * total_seats)))::int AS w FROM shows) sh ON sh.id = st.show_id
) p
WHERE p.id = s.id;
ALTER TABLE seats ENABLE TRIGGER seats_notify;

ALTER TABLE seats
    ALTER COLUMN section DROP DEFAULT,
    ALTER COLUMN row_label DROP DEFAULT,
    ALTER COLUMN number DROP DEFAULT,
    ALTER COLUMN category DROP DEFAULT,
    ADD FOREIGN KEY (show_id, category) REFERENCES categories (show_id, key);
