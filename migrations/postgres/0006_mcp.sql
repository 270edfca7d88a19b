-- MCP URL-mode elicitations (PostgreSQL). Each row is one link an MCP client was asked to open
-- for a secret request: the 2025-11-25 `elicitationId`, or the nonce of a 2026-07-28
-- `requestState`. `used_at` makes a requestState good for one retry only, on every instance
-- and across restarts. `call_digest` is SHA-256 over the tool name and its arguments, so a
-- retried 2025-11-25 call finds its request again. Nothing here is a credential or a value.
CREATE TABLE mcp_elicitations (
    id           UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    run_id       UUID NOT NULL REFERENCES workflow_runs(id) ON DELETE CASCADE,
    caller       TEXT NOT NULL,
    call_digest  TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ
);
CREATE INDEX mcp_elicitations_call ON mcp_elicitations (caller, call_digest);
