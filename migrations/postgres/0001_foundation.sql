-- Foundation schema (PostgreSQL).

-- One row: a blob only the right master key opens, checked at start.
CREATE TABLE key_check (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    blob        BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id             UUID PRIMARY KEY,
    username       TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    is_admin       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_username_unique UNIQUE (username)
);

CREATE TABLE workspaces (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    user_id       UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- Studio sessions: the cookie holds id and secret; only the secret's SHA-256 is stored.
CREATE TABLE sessions (
    id           UUID PRIMARY KEY,
    secret_hash  BYTEA NOT NULL,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Failed sign-ins, for rate limiting across instances.
CREATE TABLE sign_in_failures (
    username  TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX sign_in_failures_username_at ON sign_in_failures (username, at);

-- API tokens: the token is lss_<id>_<secret>; only the secret's SHA-256 is stored.
CREATE TABLE api_tokens (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    secret_hash   BYTEA NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_tokens_workspace ON api_tokens (workspace_id);

-- Workspace data keys, wrapped by the master key; the highest version is the active one.
CREATE TABLE workspace_keys (
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    wrapped_key   BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, version)
);

CREATE TABLE secrets (
    id            UUID PRIMARY KEY,
    workspace_id  UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    ciphertext    BYTEA NOT NULL,
    nonce         BYTEA NOT NULL,
    key_version   INTEGER NOT NULL,
    has_value     BOOLEAN NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    updated_by    TEXT NOT NULL,
    CONSTRAINT secrets_workspace_key_unique UNIQUE (workspace_id, key)
);
