-- Clinic Desk local store, schema 2: the sync engine's outbox, pull cursors and state.

-- One row per pain report that must reach the central server. Rows are never
-- deleted: 'delivered' is the report's visible state once the server acknowledged
-- it, and a 'rejected' report waits (with the server's reason) for a person.
-- 'sending' is written before a request leaves, so after a crash it means "outcome
-- unknown"; startup turns it back into 'queued' and the same report ID is re-sent
-- (the server's idempotency on that ID makes the repeat harmless).
CREATE TABLE outbox (
    report_id        TEXT PRIMARY KEY NOT NULL REFERENCES pain_reports (id),
    -- 'superseded': a rejected report replaced by a corrected one (which points back
    -- to it); kept for the audit trail, no longer waiting for anyone.
    state            TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'delivered', 'rejected', 'superseded')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    queued_at        INTEGER NOT NULL,
    -- Set when the server stored the report under another ID (the hospital's
    -- original API assigns its own); ours stays the local key.
    server_report_id TEXT,
    delivered_at     INTEGER
) STRICT;
-- The sender takes the oldest queued entries (`state = 'queued' ORDER BY report_id`)
-- and the status counts per state; both read this index, not the growing table.
CREATE INDEX outbox_by_state ON outbox (state, report_id);

-- Where each pulled stream (patients, staff, appointments) has got to. Advanced in
-- the same transaction as the page it follows, so a crash repeats a page, never skips one.
CREATE TABLE sync_cursors (
    stream TEXT PRIMARY KEY NOT NULL,
    cursor INTEGER NOT NULL
) STRICT;

-- Last success, last error and what the engine learned of the server (key/value).
CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

-- A pulled patient deletion that waits because this device still has reports for
-- that patient that the server has not acknowledged; applied once they are delivered.
CREATE TABLE deferred_patient_deletions (
    patient_id TEXT PRIMARY KEY NOT NULL,
    seq        INTEGER NOT NULL
) STRICT;

-- A deleted patient who still has delivered reports here cannot vanish (reports are
-- never deleted): the row is kept without contact data and hidden from search.
ALTER TABLE patients ADD COLUMN deleted_at INTEGER;

-- A correction is a new report that names the one it corrects and why; the
-- original row is never changed (changes must not obscure what was recorded).
ALTER TABLE pain_reports ADD COLUMN supersedes TEXT REFERENCES pain_reports (id);
ALTER TABLE pain_reports ADD COLUMN correction_reason TEXT;

-- Pulled staff: a departed member stays (old reports keep a name) but inactive;
-- the argon2id PHC verifier is for offline sign-in (a later issue), never the PIN.
ALTER TABLE staff ADD COLUMN active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1));
ALTER TABLE staff ADD COLUMN pin_verifier TEXT;
