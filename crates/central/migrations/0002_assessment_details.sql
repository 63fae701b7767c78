-- Optional assessment details (clinic_protocol::AssessmentDetails). All nullable
-- with no default, so a report stored before this step reads back as "no details"
-- and an old client replaying it is still recognised as a duplicate.
ALTER TABLE reports ADD COLUMN body_site TEXT;
-- Guards against a future code path writing a spelling the wire enum cannot read back.
ALTER TABLE reports ADD COLUMN activity TEXT CHECK (activity IN ('rest', 'movement'));
ALTER TABLE reports ADD COLUMN note TEXT;
ALTER TABLE reports ADD COLUMN intervention TEXT;
-- Not a foreign key: the assessment it follows up may reach the server later than
-- this one (another device's outbox, another batch), like `supersedes`.
ALTER TABLE reports ADD COLUMN follows_up TEXT;
