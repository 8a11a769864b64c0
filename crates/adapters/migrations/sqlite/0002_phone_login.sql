-- phone-verify and phone-login. Keep in step with ../postgres/0002_phone_login.sql.

-- When the user last proved, with a code, that they hold their phone.
ALTER TABLE users ADD COLUMN phone_verified_at INTEGER;

-- phone-login's access codes: only a keyed hash of each is stored. An access
-- code is bound to the device that checked the PIN.
CREATE TABLE access_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL UNIQUE,
    device_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX access_codes_user_id ON access_codes (user_id);
-- Housekeeping purges by expiry.
CREATE INDEX access_codes_expires_at ON access_codes (expires_at);
