-- Clinic Desk local store, schema 5: pulled records this device refused.
--
-- A record from a feed that this device cannot read or store (a rule of this
-- schema or of the app refuses it) is kept here with the reason instead of
-- stopping the stream: the rest of its page and the cursor move on. A later
-- version of the same record that is stored removes its row; when the app's rules
-- change, each stream is rewound to just before its oldest row so the records are
-- fetched and judged again. Only the reference and the reason are kept, never
-- the record's content.
CREATE TABLE pull_set_aside (
    stream       TEXT NOT NULL CHECK (stream IN ('patients', 'staff', 'appointments')),
    item_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    set_aside_at INTEGER NOT NULL,
    PRIMARY KEY (stream, item_id)
) STRICT;
