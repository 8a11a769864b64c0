-- The tokens surface: passwords, applications, sign-in devices, session
-- tokens and password resets. Keep in step with ../postgres/0003_tokens.sql.
-- Every token is stored only as a keyed hash (HMAC-SHA-256).

-- An argon2id PHC string; NULL for users who never set a password.
ALTER TABLE users ADD COLUMN password_hash TEXT;

-- Client applications. Servers authenticate with the application's
-- auth_token; users sign in "from" an application by its app_id.
CREATE TABLE applications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id          TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    auth_token_hash BLOB NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER
);

-- Devices that signed in by email and password (device_token is the
-- client's own device identifier, e.g. an iOS UDID).
CREATE TABLE sign_in_devices (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    application_id INTEGER REFERENCES applications (id) ON DELETE CASCADE,
    device_token   TEXT NOT NULL,
    mobile_os      TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX sign_in_devices_device_token ON sign_in_devices (device_token);

-- Opaque session tokens, one live token per device.
CREATE TABLE session_tokens (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id      INTEGER REFERENCES sign_in_devices (id) ON DELETE CASCADE,
    application_id INTEGER REFERENCES applications (id) ON DELETE CASCADE,
    token_hash     BLOB NOT NULL UNIQUE,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER
);
CREATE INDEX session_tokens_user_id ON session_tokens (user_id);
CREATE INDEX session_tokens_device_id ON session_tokens (device_id);
-- Housekeeping purges by expiry.
CREATE INDEX session_tokens_expires_at ON session_tokens (expires_at);

-- Password resets: single use (used_at), short-lived (expires_at).
CREATE TABLE password_resets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX password_resets_user_id ON password_resets (user_id);
CREATE INDEX password_resets_expires_at ON password_resets (expires_at);
