-- Reports arrive in groups of hundreds or thousands. The foreign key from reports to
-- clinics checked every row on its own (a lookup and a row lock per report), about a
-- third of PostgreSQL's work per report. The same rule now holds per statement: after
-- each insert (or update) of reports, the distinct clinics it wrote are looked up and
-- locked FOR KEY SHARE, as the key's own check does, and a missing one fails the
-- statement with the same error code (23503). The clinics side keeps the key's other
-- half: a clinic that has reports cannot be deleted or renamed.
ALTER TABLE reports DROP CONSTRAINT reports_clinic_id_fkey;

CREATE FUNCTION reports_need_their_clinics() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing TEXT;
BEGIN
    SELECT w.clinic_id INTO missing
    FROM (SELECT DISTINCT clinic_id FROM written) w
    LEFT JOIN LATERAL (
        SELECT TRUE AS found FROM clinics c WHERE c.id = w.clinic_id FOR KEY SHARE
    ) k ON TRUE
    WHERE k.found IS NULL
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('reports name clinic %L, which does not exist', missing),
            TABLE = 'reports';
    END IF;
    RETURN NULL;
END $$;

-- A trigger with a transition table takes one event only: one for inserts, one for updates.
CREATE TRIGGER reports_inserted_need_their_clinics AFTER INSERT ON reports
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION reports_need_their_clinics();
CREATE TRIGGER reports_updated_need_their_clinics AFTER UPDATE ON reports
    REFERENCING NEW TABLE AS written
    FOR EACH STATEMENT EXECUTE FUNCTION reports_need_their_clinics();

-- AFTER the row is deleted (or renamed), so a writer still holding its FOR KEY SHARE
-- lock has committed by now and its reports are seen.
CREATE FUNCTION clinics_keep_their_reports() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'DELETE' OR NEW.id IS DISTINCT FROM OLD.id)
        AND EXISTS (SELECT 1 FROM reports WHERE clinic_id = OLD.id) THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('clinic %L still has reports', OLD.id),
            TABLE = 'clinics';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER clinics_keep_their_reports AFTER DELETE OR UPDATE OF id ON clinics
    FOR EACH ROW EXECUTE FUNCTION clinics_keep_their_reports();
