-- Reports join the clinic's change feed (GET /v1/feeds/reports), and a
-- correction may settle concurrent corrections (`resolves`).
--
-- `seq` is the clinic's change number (clinics.change_seq), taken inside the
-- report's own write transaction like every patient, staff and appointment
-- change, so a feed reader who has seen N has seen every report committed before
-- any change numbered above N. SQLite cannot add a NOT NULL column without a
-- default (and a default number would be a wrong one), so the table is rebuilt.
-- Reports stored before this step are numbered after the clinic's current counter,
-- in the order they were received (then by ID), and the counter moves past them:
-- a device that pulls the feed from 0 gets every one of them.
--
-- `resolves`: the report IDs a settling correction names besides the one it
-- supersedes (clinic_domain::assessment::check_resolves), as sent, in canonical
-- hyphenated form joined by ','; NULL when it names none, so every report stored
-- before this step reads back as naming none and an old client's replay is still
-- a duplicate. Not a foreign key, like `supersedes`: they may arrive later.
CREATE TABLE reports_numbered (
    clinic_id    TEXT NOT NULL REFERENCES clinics(id),
    report_id    TEXT NOT NULL,
    patient_id   TEXT NOT NULL,
    pain_score   INTEGER NOT NULL,
    scale        TEXT NOT NULL,
    submit_time  INTEGER NOT NULL,
    assessed_at  INTEGER,
    recorded_by  TEXT,
    device_id    TEXT,
    supersedes   TEXT,
    reason       TEXT,
    received_at  INTEGER NOT NULL,
    body_site    TEXT,
    activity     TEXT CHECK (activity IN ('rest', 'movement')),
    note         TEXT,
    intervention TEXT,
    follows_up   TEXT,
    resolves     TEXT CHECK (resolves <> ''),
    seq          INTEGER NOT NULL,
    PRIMARY KEY (clinic_id, report_id)
) STRICT, WITHOUT ROWID;

INSERT INTO reports_numbered (clinic_id, report_id, patient_id, pain_score, scale, submit_time,
    assessed_at, recorded_by, device_id, supersedes, reason, received_at,
    body_site, activity, note, intervention, follows_up, resolves, seq)
SELECT r.clinic_id, r.report_id, r.patient_id, r.pain_score, r.scale, r.submit_time,
    r.assessed_at, r.recorded_by, r.device_id, r.supersedes, r.reason, r.received_at,
    r.body_site, r.activity, r.note, r.intervention, r.follows_up, NULL,
    c.change_seq + row_number() OVER (PARTITION BY r.clinic_id ORDER BY r.received_at, r.report_id)
FROM reports r JOIN clinics c ON c.id = r.clinic_id;

UPDATE clinics SET change_seq = change_seq
    + (SELECT count(*) FROM reports r WHERE r.clinic_id = clinics.id);

DROP TABLE reports;
ALTER TABLE reports_numbered RENAME TO reports;
CREATE INDEX reports_by_seq ON reports (clinic_id, seq);
