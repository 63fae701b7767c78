-- Clinic Desk local store, schema 1.
-- Times are Unix seconds (UTC); the clinic's zone, kept in clinic_settings, decides
-- which day they fall on. Dates without time (birth dates) are ISO 'YYYY-MM-DD'.

CREATE TABLE clinic_settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE patients (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    sex        TEXT NOT NULL CHECK (sex IN ('female', 'male', 'unknown')),
    birth_date TEXT NOT NULL CHECK (birth_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    is_insured INTEGER NOT NULL CHECK (is_insured IN (0, 1)),
    phone      TEXT
) STRICT;
CREATE INDEX patients_by_name ON patients (name);

CREATE TABLE doctors (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    department TEXT NOT NULL
) STRICT;

CREATE TABLE staff (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('doctor', 'nurse')),
    department TEXT NOT NULL
) STRICT;

CREATE TABLE appointments (
    id         TEXT PRIMARY KEY NOT NULL,
    doctor_id  TEXT NOT NULL REFERENCES doctors (id),
    patient_id TEXT NOT NULL REFERENCES patients (id),
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('booked', 'checked_in', 'completed', 'cancelled', 'no_show')),
    CHECK (ends_at > starts_at)
) STRICT;
CREATE INDEX appointments_by_start ON appointments (starts_at);
CREATE INDEX appointments_by_doctor_start ON appointments (doctor_id, starts_at);

-- A pain assessment as recorded at the bedside. The ID is a UUIDv7 made on this
-- device when the nurse saves, and is never regenerated (it is the sync key).
CREATE TABLE pain_reports (
    id          TEXT PRIMARY KEY NOT NULL,
    patient_id  TEXT NOT NULL REFERENCES patients (id),
    scale       TEXT NOT NULL CHECK (scale IN ('nrs', 'wong_baker_faces')),
    score       INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10),
    assessed_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    device_id   TEXT NOT NULL
) STRICT;
CREATE INDEX pain_reports_by_patient ON pain_reports (patient_id, assessed_at);
