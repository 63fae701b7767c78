-- One row per clinic. change_seq is the clinic's change counter: every write to a
-- fed table takes the next value inside its own transaction, so a feed reader who
-- has seen seq N has seen every change committed before any change numbered > N.
CREATE TABLE clinics (
    id          TEXT PRIMARY KEY,
    zone        TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    change_seq  INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Bearer tokens, stored only as SHA-256 of the token string.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    clinic_id     TEXT NOT NULL REFERENCES clinics(id),
    token_sha256  BLOB NOT NULL UNIQUE,
    label         TEXT,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
) STRICT;

CREATE TABLE patients (
    clinic_id   TEXT NOT NULL REFERENCES clinics(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    sex         TEXT NOT NULL,
    birth_date  TEXT NOT NULL,
    is_insured  INTEGER NOT NULL,
    phone       TEXT,
    deleted     INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (clinic_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX patients_by_seq ON patients (clinic_id, seq);

CREATE TABLE staff (
    clinic_id     TEXT NOT NULL REFERENCES clinics(id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    department    TEXT NOT NULL,
    active        INTEGER NOT NULL,
    pin_verifier  TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    PRIMARY KEY (clinic_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX staff_by_seq ON staff (clinic_id, seq);

CREATE TABLE appointments (
    clinic_id   TEXT NOT NULL REFERENCES clinics(id),
    id          TEXT NOT NULL,
    doctor_id   TEXT NOT NULL,
    patient_id  TEXT NOT NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (clinic_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX appointments_by_seq ON appointments (clinic_id, seq);

-- The primary key is the idempotency guarantee: two deliveries of one report
-- cannot both land, whatever the timing. Keyed per clinic so one clinic's IDs
-- can neither collide with nor reveal another's.
CREATE TABLE reports (
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
    PRIMARY KEY (clinic_id, report_id)
) STRICT, WITHOUT ROWID;
