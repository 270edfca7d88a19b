-- Secret versions (SQLite). Every value a secret has had, newest last, up to the configured
-- number per secret: the current one is the highest version and is also in `secrets`. Each
-- ciphertext is sealed for its workspace, secret id, key and version (associated data 3).
-- A deleted secret's versions stay for the configured time (`deleted_secrets` remembers it),
-- so it can be restored; then both are destroyed.
ALTER TABLE secrets ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- A workspace can require every write to name the version it replaces.
ALTER TABLE workspaces ADD COLUMN require_check_and_set BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE secret_versions (
    secret_id     BLOB NOT NULL,
    version       INTEGER NOT NULL,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    ciphertext    BLOB NOT NULL,
    nonce         BLOB NOT NULL,
    key_version   INTEGER NOT NULL,
    aad_version   INTEGER NOT NULL,
    has_value     BOOLEAN NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    PRIMARY KEY (secret_id, version)
);
CREATE INDEX secret_versions_data_key ON secret_versions (workspace_id, key_version);

CREATE TABLE deleted_secrets (
    secret_id     BLOB PRIMARY KEY,
    workspace_id  BLOB NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    version       INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    deleted_at    TEXT NOT NULL,
    deleted_by    TEXT NOT NULL
);
CREATE INDEX deleted_secrets_key ON deleted_secrets (workspace_id, key, deleted_at);
CREATE INDEX deleted_secrets_deleted_at ON deleted_secrets (deleted_at);

-- Every secret's current value is its version 1.
INSERT INTO secret_versions (secret_id, version, workspace_id, key, ciphertext, nonce, key_version, aad_version, has_value, created_at, created_by)
SELECT id, 1, workspace_id, key, ciphertext, nonce, key_version, aad_version, has_value, updated_at, updated_by FROM secrets;
