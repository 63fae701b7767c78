-- The PostgreSQL twin of ../0003_report_feed.sql: reports join the clinic's change
-- feed (`seq`, from clinics.change_seq in the report's own transaction) and store
-- `resolves` (canonical report IDs joined by ',', NULL for none). Reports stored
-- before this step are numbered after the clinic's counter in the order they were
-- received (then by ID), and the counter moves past them.
--
-- Stop replicas of the previous release before starting this one: their inserts
-- carry no `seq` and fail until they are replaced (and this release refuses to
-- start against a database a newer one migrated).
ALTER TABLE reports
    ADD COLUMN resolves TEXT CHECK (resolves <> ''),
    ADD COLUMN seq BIGINT;

UPDATE reports r SET seq = n.seq
FROM (
    SELECT r.clinic_id, r.report_id,
        c.change_seq + row_number() OVER (PARTITION BY r.clinic_id ORDER BY r.received_at, r.report_id) AS seq
    FROM reports r JOIN clinics c ON c.id = r.clinic_id
) n
WHERE r.clinic_id = n.clinic_id AND r.report_id = n.report_id;

UPDATE clinics c SET change_seq = c.change_seq + n.reports
FROM (SELECT clinic_id, count(*) AS reports FROM reports GROUP BY clinic_id) n
WHERE c.id = n.clinic_id;

ALTER TABLE reports ALTER COLUMN seq SET NOT NULL;
CREATE INDEX reports_by_seq ON reports (clinic_id, seq);
