-- Starting runs is limited per workspace over a sliding minute: count recent starts fast.
CREATE INDEX workflow_runs_workspace_created ON workflow_runs (workspace_id, created_at);
