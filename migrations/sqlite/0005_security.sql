-- Security round two (SQLite).

-- Sign-in attempts are counted per client address as well as per username; each attempt is
-- recorded before its password is checked, and rows older than the window are purged.
ALTER TABLE sign_in_failures ADD COLUMN client TEXT NOT NULL DEFAULT '';
CREATE INDEX sign_in_failures_client_at ON sign_in_failures (client, at);
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);

-- Where each session was opened, for the account page's list of sessions.
ALTER TABLE sessions ADD COLUMN client TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;

-- Which associated data a ciphertext is bound to: 1 = workspace and secret id (rows written
-- before this migration), 2 = also the key name.
ALTER TABLE secrets ADD COLUMN aad_version INTEGER NOT NULL DEFAULT 1;
