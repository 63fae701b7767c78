-- Clinic Desk local store, schema 6: one clinic record on every device.
--
-- Reports recorded on other devices arrive from the server's reports feed and are
-- stored in `pain_reports` like this device's own, so every read (record list,
-- chart, trail, export, reassessments) sees them. They have no outbox row, so they
-- are never queued for sending. Rows stay append-only: the triggers of 0004 still
-- refuse any change.

-- When the server first stored a received report (its `receivedAt`, Unix seconds)
-- and when this device pulled it. Both NULL on this device's own reports.
ALTER TABLE pain_reports ADD COLUMN received_at INTEGER;
ALTER TABLE pain_reports ADD COLUMN pulled_at INTEGER;
CREATE INDEX pain_reports_received ON pain_reports (pulled_at) WHERE pulled_at IS NOT NULL;

-- Two devices offline at once can each correct one record, so a report may now be
-- superseded by more than one correction (ARCHITECTURE.md, "Concurrent
-- corrections"): the unique index becomes a plain one.
DROP INDEX pain_reports_by_supersedes;
CREATE INDEX pain_reports_by_supersedes ON pain_reports (supersedes) WHERE supersedes IS NOT NULL;

-- A correction that settles concurrent corrections supersedes one of them and
-- names the others here. Written in the transaction that writes the report, never
-- changed afterwards.
CREATE TABLE report_resolutions (
    report_id TEXT NOT NULL REFERENCES pain_reports (id),
    resolves  TEXT NOT NULL REFERENCES pain_reports (id),
    PRIMARY KEY (report_id, resolves)
) STRICT;
CREATE INDEX report_resolutions_by_resolves ON report_resolutions (resolves);

CREATE TRIGGER report_resolutions_are_append_only_update BEFORE UPDATE ON report_resolutions
BEGIN SELECT RAISE(ABORT, 'report_resolutions are append-only: record a correction instead'); END;
CREATE TRIGGER report_resolutions_are_append_only_delete BEFORE DELETE ON report_resolutions
BEGIN SELECT RAISE(ABORT, 'report_resolutions are append-only: record a correction instead'); END;
CREATE TRIGGER report_resolutions_are_append_only_replace BEFORE INSERT ON report_resolutions
WHEN EXISTS (SELECT 1 FROM report_resolutions WHERE report_id = NEW.report_id AND resolves = NEW.resolves)
BEGIN SELECT RAISE(ABORT, 'report_resolutions are append-only: record a correction instead'); END;

-- The trail gains 'received' (a report pulled from the server, when, from which
-- device) and 'conflicting' (a record left with more than one live report).
-- audit_log's CHECK lists its actions, so the table is rebuilt with every row kept
-- (same seq) and its append-only triggers made again. The triggers of other tables
-- that write into it are dropped first and made again after it.
DROP TRIGGER pain_reports_audit_insert;
DROP TRIGGER outbox_audit_state;
DROP TRIGGER audit_log_is_append_only_update;
DROP TRIGGER audit_log_is_append_only_delete;
DROP TRIGGER audit_log_is_append_only_replace;

CREATE TABLE audit_log_v6 (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    -- A staff ID, or 'system' for what the sync engine did on its own.
    actor     TEXT NOT NULL,
    device_id TEXT NOT NULL,
    action    TEXT NOT NULL CHECK (action IN (
        'created', 'corrected', 'superseded', 'sync_state', 'retried',
        'signed_in', 'signed_out', 'sign_in_failed', 'exported',
        'received', 'conflicting')),
    report_id TEXT REFERENCES pain_reports (id),
    -- JSON with what else the action needs to be understood (never a PIN or token).
    detail    TEXT
) STRICT;
INSERT INTO audit_log_v6 (seq, at, actor, device_id, action, report_id, detail)
SELECT seq, at, actor, device_id, action, report_id, detail FROM audit_log ORDER BY seq;
DROP TABLE audit_log;
ALTER TABLE audit_log_v6 RENAME TO audit_log;
CREATE INDEX audit_log_by_report ON audit_log (report_id, seq) WHERE report_id IS NOT NULL;

CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
-- INSERT OR REPLACE deletes the old row without firing delete triggers.
CREATE TRIGGER audit_log_is_append_only_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- As in 0004 (created / corrected by the recorder, at the recording time, and
-- superseded on the record it replaces), and for a received report a 'received'
-- row by the system at the pull, saying when the server stored it.
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
    INSERT INTO audit_log (at, actor, device_id, action, report_id, detail)
    SELECT NEW.pulled_at, 'system',
           coalesce((SELECT value FROM clinic_settings WHERE key = 'device_id'), 'unknown'),
           'received', NEW.id,
           json_object('receivedAt', NEW.received_at, 'recordedOn', NEW.device_id)
    WHERE NEW.pulled_at IS NOT NULL;
END;

-- A resolution replaces the corrections it names as well: each gets its
-- 'superseded' row, like the one the resolution supersedes.
CREATE TRIGGER report_resolutions_audit_insert AFTER INSERT ON report_resolutions
BEGIN
    INSERT INTO audit_log (at, actor, device_id, action, report_id, detail)
    SELECT r.recorded_at, r.recorded_by, r.device_id, 'superseded', NEW.resolves,
           json_object('by', NEW.report_id, 'reason', r.correction_reason, 'resolution', json('true'))
    FROM pain_reports r WHERE r.id = NEW.report_id;
END;

-- Unchanged from 0004.
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

-- Pulled reports can be set aside too, and one whose `supersedes`, `followsUp` or
-- `resolves` names a report not on this device yet says which (`waits_for`): when
-- that report is stored, the stream is rewound to just before the waiting one so
-- the next pull fetches it again. The table holds references and reasons only, so
-- it is rebuilt for the new stream with its rows.
CREATE TABLE pull_set_aside_v6 (
    stream       TEXT NOT NULL CHECK (stream IN ('patients', 'staff', 'appointments', 'reports')),
    item_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    set_aside_at INTEGER NOT NULL,
    waits_for    TEXT,
    PRIMARY KEY (stream, item_id)
) STRICT;
INSERT INTO pull_set_aside_v6 (stream, item_id, seq, reason, set_aside_at)
SELECT stream, item_id, seq, reason, set_aside_at FROM pull_set_aside;
DROP TABLE pull_set_aside;
ALTER TABLE pull_set_aside_v6 RENAME TO pull_set_aside;
CREATE INDEX pull_set_aside_waiting ON pull_set_aside (waits_for) WHERE waits_for IS NOT NULL;
