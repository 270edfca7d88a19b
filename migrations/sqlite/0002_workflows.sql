-- Persisted workflow runs, their documents and their transition history (SQLite).
-- JSON columns are TEXT; they never hold a secret value.

CREATE TABLE workflow_runs (
    id            BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    workflow      TEXT NOT NULL,
    place         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'waiting', 'completed', 'failed', 'cancelled')),
    args          TEXT NOT NULL,
    state         TEXT NOT NULL,
    result        TEXT,
    parent_id     BLOB REFERENCES workflow_runs(id) ON DELETE SET NULL,
    callback      TEXT,
    expires_at    TEXT,
    version       INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX workflow_runs_workspace_status ON workflow_runs (workspace_id, status);
CREATE INDEX workflow_runs_waiting_expiry ON workflow_runs (status, expires_at);

CREATE TABLE workflow_documents (
    id          BLOB PRIMARY KEY,
    run_id      BLOB NOT NULL REFERENCES workflow_runs(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    CONSTRAINT workflow_documents_run_seq_unique UNIQUE (run_id, seq)
);

-- Every applied transition; the payload keeps keys only, never values.
CREATE TABLE workflow_transitions (
    run_id      BLOB NOT NULL REFERENCES workflow_runs(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    from_place  TEXT NOT NULL,
    to_place    TEXT NOT NULL,
    payload     TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (run_id, version)
);
