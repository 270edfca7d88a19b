-- The transactional outbox and webhooks (PostgreSQL).
--
-- Every event is written here in the transaction of its change; a dispatcher delivers it to
-- the live event streams and long-polls and queues one delivery per matching webhook, in one
-- transaction with marking it dispatched, so nothing is lost when the server dies between a
-- commit and its publication.
CREATE TABLE outbox (
    seq            BIGSERIAL PRIMARY KEY,
    id             UUID NOT NULL UNIQUE,
    workspace_id   UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    type           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL,
    dispatched_at  TIMESTAMPTZ
);
CREATE INDEX outbox_undispatched ON outbox (seq) WHERE dispatched_at IS NULL;

-- Endpoints a workspace's events are POSTed to. The signing secret is sealed under the
-- workspace's data key (like a value), for its webhook id.
CREATE TABLE webhooks (
    id             UUID PRIMARY KEY,
    workspace_id   UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    events         TEXT NOT NULL,
    secret_nonce   BYTEA NOT NULL,
    secret_sealed  BYTEA NOT NULL,
    key_version    INTEGER NOT NULL,
    enabled        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     TIMESTAMPTZ NOT NULL,
    created_by     TEXT NOT NULL
);
CREATE INDEX webhooks_workspace ON webhooks (workspace_id);

-- One delivery per event and webhook (never two), retried with backoff until it succeeds or
-- a day has passed. `lease_until` marks one being sent, so instances do not send it twice.
CREATE TABLE webhook_deliveries (
    id               UUID PRIMARY KEY,
    webhook_id       UUID NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         UUID NOT NULL,
    workspace_id     UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    type             TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    lease_until      TIMESTAMPTZ,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ,
    CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
