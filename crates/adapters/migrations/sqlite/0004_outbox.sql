-- Durable delivery: every text, call and email is written here in the same
-- transaction as the challenge or reset it belongs to, then sent by the
-- dispatcher. Keep in step with ../postgres/0004_outbox.sql.

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- sms, call, hosted_sms, hosted_call, mail, or decoy (a row written for
    -- an unknown number or email so that both cost the same; never sent).
    kind            TEXT NOT NULL,
    -- What the message is for (pin_auth, password_reset, ...), for logs.
    purpose         TEXT NOT NULL,
    -- pending until sent, failed (refused for good), dropped (expired
    -- before delivery); decoy rows are born 'decoy'.
    state           TEXT NOT NULL,
    -- The message (recipient and text, with the code or link in it),
    -- encrypted with ChaCha20-Poly1305 under a key derived from the server
    -- secret: a copy of the database does not reveal live codes.
    payload         BLOB,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When the row is next due. A claim pushes it to the end of the lease,
    -- so the row of a dispatcher that died becomes due again by itself.
    next_attempt_at INTEGER NOT NULL,
    -- Who holds the current claim; only they may record the outcome.
    lease_token     INTEGER,
    -- After this the message is useless (its code or link expired).
    not_after       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    -- Why the last attempt failed (no secret in it).
    last_error      TEXT
);

-- The dispatcher's claim scans only due pending rows.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
-- Housekeeping deletes old rows by age.
CREATE INDEX outbox_created_at ON outbox (created_at);
