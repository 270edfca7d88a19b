-- The audit chain (PostgreSQL). Each entry holds its place in its chain (a workspace's, or the
-- accounts' for entries without one), the hash of the entry before it and its own hash
-- (SHA-256 over a canonical encoding, computed by the server). audit_heads holds each chain's
-- last place and hash, so entries removed from the end show too; its row lock is what keeps
-- concurrent writers in one line. Entries written before this migration are chained, oldest
-- first, when the server next starts. run_id names the request an entry is about.
ALTER TABLE audit_events ADD COLUMN run_id UUID;
ALTER TABLE audit_events ADD COLUMN seq BIGINT;
ALTER TABLE audit_events ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit_events ADD COLUMN hash BYTEA;
CREATE INDEX audit_events_chain ON audit_events (workspace_id, seq);

CREATE TABLE audit_heads (
    chain  UUID PRIMARY KEY,
    seq    BIGINT NOT NULL,
    hash   BYTEA NOT NULL
);
