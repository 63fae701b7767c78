-- Clinic Desk local store, schema 4: the bedside record — what a nurse may add to a
-- score, reassessment after an intervention, corrections of any record, and an
-- append-only audit trail the database itself defends.

ALTER TABLE pain_reports ADD COLUMN body_site TEXT;
ALTER TABLE pain_reports ADD COLUMN activity TEXT CHECK (activity IN ('rest', 'movement'));
ALTER TABLE pain_reports ADD COLUMN note TEXT;
ALTER TABLE pain_reports ADD COLUMN intervention TEXT;
-- The assessment (with an intervention) this one reassesses.
ALTER TABLE pain_reports ADD COLUMN follows_up TEXT REFERENCES pain_reports (id);
-- Fixed when the intervention is recorded, so a later change of the clinic's
-- interval does not move what the nurse was told.
ALTER TABLE pain_reports ADD COLUMN reassess_due_at INTEGER;

-- A record is corrected at most once; a later mistake is corrected on the
-- correction, so each chain is a line whose last link is the current value.
CREATE UNIQUE INDEX pain_reports_by_supersedes ON pain_reports (supersedes) WHERE supersedes IS NOT NULL;
CREATE INDEX pain_reports_by_follows_up ON pain_reports (follows_up) WHERE follows_up IS NOT NULL;
CREATE INDEX pain_reports_awaiting_reassessment ON pain_reports (reassess_due_at) WHERE reassess_due_at IS NOT NULL;

-- Who did what, when, on which device. Rows are only ever added.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    -- A staff ID, or 'system' for what the sync engine did on its own.
    actor     TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action    TEXT NOT NULL CHECK (action IN (
        'created', 'corrected', 'superseded', 'sync_state', 'retried',
        'signed_in', 'signed_out', 'sign_in_failed', 'exported')),
    report_id TEXT REFERENCES pain_reports (id),
    -- JSON with what else the action needs to be understood (never a PIN or token).
    detail    TEXT
) STRICT;
CREATE INDEX audit_log_by_report ON audit_log (report_id, seq) WHERE report_id IS NOT NULL;

CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- INSERT OR REPLACE deletes the old row without firing delete triggers.
CREATE TRIGGER audit_log_is_append_only_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- A saved assessment is never changed or removed: a correction is a new row.
-- (Every column is clinical or part of attribution, so no update is allowed at all.)
CREATE TRIGGER pain_reports_are_append_only_update BEFORE UPDATE ON pain_reports
BEGIN SELECT RAISE(ABORT, 'pain_reports are append-only: record a correction instead'); END;
CREATE TRIGGER pain_reports_are_append_only_delete BEFORE DELETE ON pain_reports
BEGIN SELECT RAISE(ABORT, 'pain_reports are append-only: record a correction instead'); END;
CREATE TRIGGER pain_reports_are_append_only_replace BEFORE INSERT ON pain_reports
WHEN EXISTS (SELECT 1 FROM pain_reports WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'pain_reports are append-only: record a correction instead'); END;

-- Written by the database so no code path can save a record without its trail.
CREATE TRIGGER pain_reports_audit_insert AFTER INSERT ON pain_reports
BEGIN
    INSERT INTO audit_log (at, actor, device_id, action, report_id, detail)
    VALUES (NEW.recorded_at, NEW.recorded_by, NEW.device_id,
            CASE WHEN NEW.supersedes IS NULL THEN 'created' ELSE 'corrected' END, NEW.id,
            CASE WHEN NEW.supersedes IS NULL THEN NULL
                 ELSE json_object('supersedes', NEW.supersedes, 'reason', NEW.correction_reason) END);
    INSERT INTO audit_log (at, actor, device_id, action, report_id, detail)
    SELECT NEW.recorded_at, NEW.recorded_by, NEW.device_id, 'superseded', NEW.supersedes,
           json_object('by', NEW.id, 'reason', NEW.correction_reason)
    WHERE NEW.supersedes IS NOT NULL;
END;

-- The sync states a person may ask about later: acknowledged, refused, replaced,
-- and a refused one queued again. (Not each send attempt: a flaky network would
-- bury the trail in retries.)
CREATE TRIGGER outbox_audit_state AFTER UPDATE OF state ON outbox
WHEN OLD.state <> NEW.state
 AND (NEW.state IN ('delivered', 'rejected', 'superseded') OR OLD.state = 'rejected')
BEGIN
    INSERT INTO audit_log (at, actor, device_id, action, report_id, detail)
    VALUES (unixepoch(), 'system',
            coalesce((SELECT value FROM clinic_settings WHERE key = 'device_id'), 'unknown'),
            'sync_state', NEW.report_id,
            json_object('from', OLD.state, 'to', NEW.state, 'reason',
                        CASE WHEN NEW.state = 'rejected' THEN NEW.last_error END));
END;

-- Reports saved before the trail existed get their 'created' row, marked as such.
INSERT INTO audit_log (at, actor, device_id, action, report_id, detail)
SELECT recorded_at, recorded_by, device_id,
       CASE WHEN supersedes IS NULL THEN 'created' ELSE 'corrected' END, id,
       json_object('backfilled', json('true'))
FROM pain_reports ORDER BY recorded_at, id;
