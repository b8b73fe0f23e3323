-- Answers remembered for Idempotency-Key retries. A key's row is written in the
-- same transaction as the booking it answers, so no answer is ever remembered for
-- a booking that did not commit. `scope` is the buyer in AUTH=jwt, '' otherwise.
-- The remembered booking includes its token (a retry must get it back): rows are
-- purged after 24 hours.
CREATE TABLE idempotency_keys (
    scope      TEXT        NOT NULL,
    key        TEXT        NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    -- The request the key was first used for, in a canonical form.
    request    TEXT        NOT NULL,
    status     SMALLINT    NOT NULL,
    answer     JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_age_idx ON idempotency_keys (created_at);
