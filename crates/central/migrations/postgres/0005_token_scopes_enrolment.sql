-- Scoped credentials (the same step as SQLite's 0004_token_scopes_enrolment.sql).
-- Every token issued before this step was the clinic's one do-everything token: it
-- becomes an admin token and keeps working until revoked.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin'
    CHECK (scope IN ('admin', 'device'));
ALTER TABLE api_tokens ADD COLUMN last_seen_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN last_seen_address TEXT;
CREATE INDEX api_tokens_by_clinic ON api_tokens (clinic_id, created_at);

CREATE TABLE enrolment_codes (
    id            TEXT PRIMARY KEY,
    clinic_id     TEXT NOT NULL REFERENCES clinics(id),
    code_sha256   BYTEA NOT NULL UNIQUE,
    label         TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    token_id      TEXT REFERENCES api_tokens(id)
);
