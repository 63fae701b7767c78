-- Clinic Desk local store: the front desk's role, and wrong-PIN counts that
-- outlive the app.

-- Staff may be clerks (the front desk) beside doctors and nurses; SQLite cannot
-- change a CHECK in place, so the table is copied. Nothing references it.
CREATE TABLE staff_new (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('doctor', 'nurse', 'clerk')),
    department   TEXT NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    pin_verifier TEXT
) STRICT;
INSERT INTO staff_new (id, name, role, department, active, pin_verifier)
    SELECT id, name, role, department, active, pin_verifier FROM staff;
DROP TABLE staff;
ALTER TABLE staff_new RENAME TO staff;

-- Wrong PINs in a row per member, and until when she must wait (Unix seconds).
-- An attempt is counted before its PIN is checked, in the transaction that checks
-- the wait (clinic_store::lockout), and the row goes when a PIN is right.
CREATE TABLE pin_attempts (
    staff_id   TEXT PRIMARY KEY NOT NULL,
    failures   INTEGER NOT NULL CHECK (failures >= 0),
    wait_until INTEGER
) STRICT;
