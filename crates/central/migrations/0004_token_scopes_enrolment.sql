-- Scoped credentials. Every token issued before this step was the clinic's one
-- do-everything token: it becomes an admin token and keeps working until revoked.
-- A device token may push reports and read the clinic's feeds, nothing else
-- (the table of routes is `auth::ROUTES`).
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'
    CHECK (scope IN ('admin', 'device'));
-- When and from which address the token was last used; written at most once a
-- minute per token (`limits::TOKEN_TOUCH_INTERVAL`), never on every request.
ALTER TABLE api_tokens ADD COLUMN last_seen_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN last_seen_address TEXT;
CREATE INDEX api_tokens_by_clinic ON api_tokens (clinic_id, created_at);

-- One-time enrolment codes: only the SHA-256 of the normalised code is kept. A
-- code enrols one device (`used_at`, and the token it became) into its clinic
-- before `expires_at`.
CREATE TABLE enrolment_codes (
    id            TEXT PRIMARY KEY,
    clinic_id     TEXT NOT NULL REFERENCES clinics(id),
    code_sha256   BLOB NOT NULL UNIQUE,
    label         TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    token_id      TEXT REFERENCES api_tokens(id)
) STRICT;
