-- Account lockout for password sign-in. `failed_sign_ins` counts the
-- consecutive failed sign-ins of an account (cleared by a successful one
-- and by a completed password reset); once it reaches the configured
-- threshold, `locked_until` (Unix milliseconds) is set and no sign-in of
-- the account succeeds before then, whatever the password. Both live on
-- the account's row, so every instance sees the same count and lock, and a
-- restart forgets neither.

ALTER TABLE users ADD COLUMN failed_sign_ins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;
