-- Security II (issue 14, findings 8 and 14a). Keep in step with
-- ../postgres/0007_flows.sql.

-- The challenge a text or call carries the code of (NULL for emails and
-- rows written before this migration). The dispatcher drops a message whose
-- challenge is no longer live (superseded by a newer code, already used,
-- expired or purged) instead of sending a code that cannot work. No foreign
-- key: housekeeping purges challenges on its own schedule, and a row whose
-- challenge is gone must read as "not live", not lose the link.
ALTER TABLE outbox ADD COLUMN challenge_id INTEGER;

-- What a pin-auth signup for a number with no user asked for (names and
-- one address), held with its challenge until the pin is verified. Only
-- then is the user created with these fields, in the transaction that
-- consumes the challenge, so an unverified signup neither shows its data
-- to the number's real owner nor holds the number on another surface. A
-- newer challenge supersedes this one, and its pending row is never read
-- again; it goes when housekeeping purges the challenge.
CREATE TABLE pending_signups (
    challenge_id INTEGER PRIMARY KEY REFERENCES otp_challenges (id) ON DELETE CASCADE,
    first_name   TEXT,
    last_name    TEXT,
    -- 1 when the signup sent an address (its fields may all be NULL).
    has_address  INTEGER NOT NULL,
    street       TEXT,
    flat         TEXT,
    building     TEXT,
    district_id  INTEGER,
    address_type TEXT
);
