-- Clinic Desk local store: the indexes the ward pain board reads by
-- (crates/store/src/ward.rs explains its plan).
--
-- Numbered 0007 because 0006 is taken by the received reports' migration on
-- another branch; the schema version is the number of files, so both apply in
-- order once both are merged.

-- Who was assessed since a time: one range of this index, however long the
-- ward's history is.
CREATE INDEX pain_reports_by_assessed_at ON pain_reports (assessed_at);

-- A patient's assessments that asked for a reassessment, soonest due first:
-- what a patient is still owed is found among these, not among every score.
CREATE INDEX pain_reports_awaiting_reassessment_by_patient
    ON pain_reports (patient_id, reassess_due_at) WHERE reassess_due_at IS NOT NULL;
