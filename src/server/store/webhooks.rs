//! Webhooks and their deliveries: endpoints (the signing secret sealed), one delivery per event
//! and endpoint, claimed with a lease so instances never send one twice at once, and their
//! outcomes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{WebhookDelivery, WebhookInfo};
use crate::server::error::AppError;
use crate::server::store::{on_pool, on_tx, Db, Tx, TxConn};

/// An endpoint as stored, with its sealed signing secret.
#[derive(Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub url: String,
    pub events: String,
    pub secret_nonce: Vec<u8>,
    pub secret_sealed: Vec<u8>,
    pub key_version: i32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// The data key the secret is sealed under, wrapped.
    pub wrapped_key: Vec<u8>,
}

const WEBHOOK_COLUMNS: &str =
    "w.id, w.workspace_id, w.url, w.events, w.secret_nonce, w.secret_sealed, w.key_version, w.enabled,
     w.created_at, w.created_by, k.wrapped_key
     FROM webhooks w JOIN workspace_keys k ON k.workspace_id = w.workspace_id AND k.version = w.key_version";

/// Stores a new endpoint.
pub async fn insert_webhook(tx: &mut Tx, row: &WebhookRow) -> Result<(), AppError> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO webhooks (id, workspace_id, url, events, secret_nonce, secret_sealed, key_version, enabled, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $9)")
        .bind(row.id).bind(row.workspace_id).bind(&row.url).bind(&row.events).bind(&row.secret_nonce).bind(&row.secret_sealed)
        .bind(row.key_version).bind(row.created_at).bind(&row.created_by).execute(&mut *c).await?.rows_affected());
    Ok(())
}

/// The listing columns of an endpoint.
#[derive(sqlx::FromRow)]
struct WebhookInfoRow {
    id: Uuid,
    url: String,
    events: String,
    enabled: bool,
    created_at: DateTime<Utc>,
    created_by: String,
    pending: i64,
    failed: i64,
}

/// A workspace's endpoints with how their deliveries stand, oldest first.
pub async fn list_webhooks(db: &Db, workspace_id: Uuid) -> Result<Vec<WebhookInfo>, AppError> {
    let rows: Vec<WebhookInfoRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT w.id, w.url, w.events, w.enabled, w.created_at, w.created_by,
                (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending') AS pending,
                (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'failed') AS failed
         FROM webhooks w WHERE w.workspace_id = $1 ORDER BY w.created_at, w.id")
        .bind(workspace_id).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|r| WebhookInfo {
            id: r.id,
            url: r.url,
            events: r.events.split(',').map(str::to_owned).collect(),
            enabled: r.enabled,
            created_at: r.created_at,
            created_by: r.created_by,
            pending: r.pending,
            failed: r.failed,
        })
        .collect())
}

/// One endpoint with its sealed secret.
pub async fn webhook_row(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<Option<WebhookRow>, AppError> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} WHERE w.workspace_id = $1 AND w.id = $2");
    Ok(
        on_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(workspace_id).bind(id).fetch_optional(pool).await?),
    )
}

/// Enables or disables an endpoint; whether it exists.
pub async fn set_webhook_enabled(tx: &mut Tx, workspace_id: Uuid, id: Uuid, enabled: bool) -> Result<bool, AppError> {
    let changed = on_tx!(tx, c => sqlx::query("UPDATE webhooks SET enabled = $3 WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id).bind(id).bind(enabled).execute(&mut *c).await?.rows_affected());
    Ok(changed == 1)
}

/// Deletes an endpoint and its deliveries; its URL when it existed.
pub async fn delete_webhook(tx: &mut Tx, workspace_id: Uuid, id: Uuid) -> Result<Option<String>, AppError> {
    Ok(on_tx!(tx, c => sqlx::query_scalar("DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2 RETURNING url")
        .bind(workspace_id).bind(id).fetch_optional(&mut *c).await?))
}

/// Queues one delivery of an event to every endpoint of its workspace that subscribes to its
/// type (never twice to the same endpoint; a disabled one's wait until it is enabled); how many.
pub async fn queue_deliveries(
    tx: &mut Tx,
    workspace_id: Uuid,
    event_id: Uuid,
    kind: &str,
    body: &str,
) -> Result<u64, AppError> {
    let now = Utc::now();
    let hooks: Vec<(Uuid, String)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT id, events FROM webhooks WHERE workspace_id = $1").bind(workspace_id).fetch_all(&mut *c).await?);
    let mut queued = 0;
    for (webhook_id, events) in hooks {
        if !events.split(',').any(|e| e == kind) {
            continue;
        }
        queued += on_tx!(tx, c => sqlx::query(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_id, workspace_id, type, body, status, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) ON CONFLICT (webhook_id, event_id) DO NOTHING")
            .bind(Uuid::new_v4()).bind(webhook_id).bind(event_id).bind(workspace_id).bind(kind).bind(body).bind(now)
            .execute(&mut *c).await?.rows_affected());
    }
    Ok(queued)
}

/// A delivery claimed for sending, with its endpoint.
#[derive(sqlx::FromRow)]
pub struct DueDelivery {
    pub id: Uuid,
    pub body: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub webhook_id: Uuid,
    pub workspace_id: Uuid,
    pub url: String,
}

/// Claims up to `limit` deliveries that are due, to enabled endpoints, for `lease` (nobody else
/// sends them until it runs out), counting the attempt.
pub async fn claim_deliveries(db: &Db, limit: i64, lease: chrono::Duration) -> Result<Vec<DueDelivery>, AppError> {
    let now = Utc::now();
    let mut tx = db.begin().await?;
    let pick = match tx.conn {
        TxConn::Sqlite(_) => {
            "SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.status = 'pending' AND w.enabled AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until <= $1)
             ORDER BY d.next_attempt_at LIMIT $2"
        }
        TxConn::Postgres(_) => {
            "SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.status = 'pending' AND w.enabled AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until <= $1)
             ORDER BY d.next_attempt_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED"
        }
    };
    let ids: Vec<Uuid> = on_tx!(&mut tx, c => sqlx::query_scalar(pick).bind(now).bind(limit).fetch_all(&mut *c).await?);
    let mut due = Vec::with_capacity(ids.len());
    for id in ids {
        let row: DueDelivery = on_tx!(&mut tx, c => sqlx::query_as(
            "UPDATE webhook_deliveries SET lease_until = $2, attempts = attempts + 1 WHERE id = $1
             RETURNING id, body, attempts, created_at, webhook_id, workspace_id,
                       (SELECT url FROM webhooks WHERE webhooks.id = webhook_deliveries.webhook_id) AS url")
            .bind(id).bind(now + lease).fetch_one(&mut *c).await?);
        due.push(row);
    }
    tx.commit().await?;
    Ok(due)
}

/// How an attempt went.
pub enum Attempt<'a> {
    /// A 2xx answer.
    Delivered { status: u16 },
    /// Another answer or no answer; retried at `retry_at`, or given up when `None`.
    Failed { status: Option<u16>, error: &'a str, retry_at: Option<DateTime<Utc>> },
}

/// Records an attempt's outcome and ends its lease.
pub async fn record_attempt(db: &Db, id: Uuid, attempt: Attempt<'_>) -> Result<(), AppError> {
    let now = Utc::now();
    on_pool!(db, pool => match attempt {
        Attempt::Delivered { status } => sqlx::query(
            "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = $2, last_status = $3, last_error = NULL, lease_until = NULL WHERE id = $1")
            .bind(id).bind(now).bind(i32::from(status)).execute(pool).await?.rows_affected(),
        Attempt::Failed { status, error, retry_at } => sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, last_status = $4, last_error = $5, lease_until = NULL WHERE id = $1")
            .bind(id).bind(if retry_at.is_some() { "pending" } else { "failed" }).bind(retry_at.unwrap_or(now))
            .bind(status.map(i32::from)).bind(error).execute(pool).await?.rows_affected(),
    });
    Ok(())
}

/// An endpoint's deliveries, newest first, at most `limit`.
pub async fn list_deliveries(
    db: &Db,
    workspace_id: Uuid,
    webhook_id: Uuid,
    limit: i64,
) -> Result<Vec<WebhookDelivery>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, event_id, type, status, attempts, last_status, last_error, created_at, delivered_at, next_attempt_at
         FROM webhook_deliveries WHERE workspace_id = $1 AND webhook_id = $2 ORDER BY created_at DESC, id LIMIT $3")
        .bind(workspace_id).bind(webhook_id).bind(limit).fetch_all(pool).await?))
}

/// Sends a delivery again: pending, due now, with a fresh day of retries; whether it exists.
pub async fn resend_delivery(tx: &mut Tx, workspace_id: Uuid, webhook_id: Uuid, id: Uuid) -> Result<bool, AppError> {
    let now = Utc::now();
    let changed = on_tx!(tx, c => sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $4, created_at = $4, lease_until = NULL
         WHERE workspace_id = $1 AND webhook_id = $2 AND id = $3")
        .bind(workspace_id).bind(webhook_id).bind(id).bind(now).execute(&mut *c).await?.rows_affected());
    Ok(changed == 1)
}

/// A workspace's endpoints whose secret is sealed under a data key older than `version`.
pub async fn webhooks_to_reseal(tx: &mut Tx, workspace_id: Uuid, version: i32) -> Result<Vec<WebhookRow>, AppError> {
    let sql = format!("SELECT {WEBHOOK_COLUMNS} WHERE w.workspace_id = $1 AND w.key_version < $2");
    Ok(
        on_tx!(tx, c => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(workspace_id).bind(version).fetch_all(&mut *c).await?),
    )
}

/// Replaces an endpoint's sealed secret (the same secret under a newer data key).
pub async fn reseal_webhook(
    tx: &mut Tx,
    id: Uuid,
    nonce: &[u8],
    sealed: &[u8],
    key_version: i32,
) -> Result<(), AppError> {
    on_tx!(tx, c => sqlx::query("UPDATE webhooks SET secret_nonce = $2, secret_sealed = $3, key_version = $4 WHERE id = $1")
        .bind(id).bind(nonce).bind(sealed).bind(key_version).execute(&mut *c).await?.rows_affected());
    Ok(())
}
