-- A bootstrap in progress: this device is loading its clinic from the server's
-- snapshot (GET /v1/snapshot) instead of paging through the feeds. At most one
-- row. While it exists the load is not complete, whatever the tables hold: the
-- pull cursors are written only when the row is deleted, in the same
-- transaction, so a device killed mid-load never looks loaded; its next sync
-- resumes from `phase`.
--   loading: rows of the snapshot taken at change number `cursor` are going in;
--            a restart fetches a new snapshot and loads it over what is here.
--   keys:    every row is in; the patients' search keys are being built, in
--            patient ID order, done up to `keys_after`.
CREATE TABLE sync_bootstrap (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    server      TEXT NOT NULL,
    cursor      INTEGER NOT NULL CHECK (cursor >= 0),
    phase       TEXT NOT NULL CHECK (phase IN ('loading', 'keys')),
    rows_total  INTEGER NOT NULL DEFAULT 0,
    rows_loaded INTEGER NOT NULL DEFAULT 0,
    keys_after  TEXT NOT NULL DEFAULT '',
    started_at  INTEGER NOT NULL
) STRICT;
