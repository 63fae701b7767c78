-- Patient lookup index: every handle a patient can be found by (ID, name, each name
-- suffix, pinyin initials and full pinyin for every reading, reversed phone digits),
-- one row each, so each kind of query is one range scan of this table's key.
-- Rows are written by the store in the same transaction as the patient row; the
-- keys are computed in Rust (clinic_domain::lookup), so the table starts empty and
-- the store fills it for existing patients when it opens.
CREATE TABLE patient_search_keys (
    kind       INTEGER NOT NULL,
    key        TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    PRIMARY KEY (kind, key, patient_id)
) STRICT, WITHOUT ROWID;

-- Superseded by patient_search_keys.
DROP INDEX patients_by_name;
