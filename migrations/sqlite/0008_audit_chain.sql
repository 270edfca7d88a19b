-- The audit chain (SQLite). Each entry holds its place in its chain (a workspace's, or the
-- accounts' for entries without one), the hash of the entry before it and its own hash
-- (SHA-256 over a canonical encoding, computed by the server). audit_heads holds each chain's
-- last place and hash, so entries removed from the end show too. Entries written before this
-- migration are chained, oldest first, when the server next starts. run_id names the request
-- an entry is about.
ALTER TABLE audit_events ADD COLUMN run_id BLOB;
ALTER TABLE audit_events ADD COLUMN seq INTEGER;
ALTER TABLE audit_events ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_events ADD COLUMN hash BLOB;
CREATE INDEX audit_events_chain ON audit_events (workspace_id, seq);

CREATE TABLE audit_heads (
    chain  BLOB PRIMARY KEY,
    seq    INTEGER NOT NULL,
    hash   BLOB NOT NULL
);
