-- Audit log (PostgreSQL): who did what, when, to which key; never a value.
CREATE TABLE audit_events (
    id            UUID PRIMARY KEY,
    workspace_id  UUID REFERENCES workspaces(id) ON DELETE CASCADE,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    key           TEXT,
    detail        TEXT,
    at            TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_events_workspace_at ON audit_events (workspace_id, at);
