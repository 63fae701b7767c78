-- The PostgreSQL twin of ../0001_init.sql and ../0002_assessment_details.sql: the same
-- tables, columns and keys, in PostgreSQL's types, so both stores behave alike.

-- One row per clinic. change_seq is the clinic's change counter: every write to a
-- fed table takes the next value by updating this row inside its own transaction,
-- which holds the row lock until commit, so changes commit in number order.
CREATE TABLE clinics (
    id          TEXT PRIMARY KEY,
    zone        TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    change_seq  BIGINT NOT NULL DEFAULT 0
);

-- Bearer tokens, stored only as SHA-256 of the token string.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    clinic_id     TEXT NOT NULL REFERENCES clinics(id),
    token_sha256  BYTEA NOT NULL UNIQUE,
    label         TEXT,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);

CREATE TABLE patients (
    clinic_id   TEXT NOT NULL REFERENCES clinics(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    sex         TEXT NOT NULL,
    birth_date  TEXT NOT NULL,
    is_insured  BOOLEAN NOT NULL,
    phone       TEXT,
    deleted     BOOLEAN NOT NULL DEFAULT FALSE,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (clinic_id, id)
);
CREATE INDEX patients_by_seq ON patients (clinic_id, seq);

CREATE TABLE staff (
    clinic_id     TEXT NOT NULL REFERENCES clinics(id),
    id            TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    department    TEXT NOT NULL,
    active        BOOLEAN NOT NULL,
    pin_verifier  TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (clinic_id, id)
);
CREATE INDEX staff_by_seq ON staff (clinic_id, seq);

CREATE TABLE appointments (
    clinic_id   TEXT NOT NULL REFERENCES clinics(id),
    id          TEXT NOT NULL,
    doctor_id   TEXT NOT NULL,
    patient_id  TEXT NOT NULL,
    starts_at   BIGINT NOT NULL,
    ends_at     BIGINT NOT NULL,
    status      TEXT NOT NULL,
    deleted     BOOLEAN NOT NULL DEFAULT FALSE,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (clinic_id, id)
);
CREATE INDEX appointments_by_seq ON appointments (clinic_id, seq);

-- The primary key is the idempotency guarantee: two deliveries of one report
-- cannot both land, whatever the timing and whichever replica takes them.
-- report_id is a native UUID (16 bytes, not 36 characters): the key index of the
-- hottest table is smaller and compares faster, which measurably speeds ingest.
CREATE TABLE reports (
    clinic_id    TEXT NOT NULL REFERENCES clinics(id),
    report_id    UUID NOT NULL,
    patient_id   TEXT NOT NULL,
    pain_score   BIGINT NOT NULL,
    scale        TEXT NOT NULL,
    submit_time  BIGINT NOT NULL,
    assessed_at  BIGINT,
    recorded_by  TEXT,
    device_id    TEXT,
    supersedes   TEXT,
    reason       TEXT,
    received_at  BIGINT NOT NULL,
    body_site    TEXT,
    activity     TEXT CHECK (activity IN ('rest', 'movement')),
    note         TEXT,
    intervention TEXT,
    follows_up   TEXT,
    PRIMARY KEY (clinic_id, report_id)
);
