//! API tokens (the hash of the secret only).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::server::error::AppError;
use crate::server::store::{on_pool, on_tx, Db, Tx};

/// An API token row (hash only).
#[derive(sqlx::FromRow, Clone)]
pub struct TokenRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub secret_hash: Vec<u8>,
    pub scopes: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Stores a new token (hash only).
pub async fn insert_token(tx: &mut Tx, row: &TokenRow) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO api_tokens (id, workspace_id, name, secret_hash, scopes, created_at, expires_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)")
        .bind(row.id).bind(row.workspace_id).bind(&row.name).bind(&row.secret_hash).bind(&row.scopes)
        .bind(row.created_at).bind(row.expires_at).execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// One token by id.
pub async fn token_by_id(db: &Db, id: Uuid) -> Result<Option<TokenRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, workspace_id, name, secret_hash, scopes, created_at, expires_at, revoked_at FROM api_tokens WHERE id = $1")
        .bind(id).fetch_optional(pool).await?))
}

/// One token by id, from memory while it is fresh (see [`ReadCache`](super::ReadCache)):
/// every authenticated request reads it.
pub async fn cached_token(db: &Db, id: Uuid) -> Result<Option<Arc<TokenRow>>, AppError> {
    let cache = db.fresh_cache().await?;
    if let Some(row) = cache.token(id) {
        return Ok(Some(row));
    }
    let ticket = cache.token_ticket();
    let row = token_by_id(db, id).await?.map(Arc::new);
    if let Some(row) = &row {
        cache.store_token(ticket, row.clone());
    }
    Ok(row)
}

/// Tokens, newest first, optionally of one workspace.
pub async fn list_tokens(db: &Db, workspace_id: Option<Uuid>) -> Result<Vec<TokenRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, workspace_id, name, secret_hash, scopes, created_at, expires_at, revoked_at FROM api_tokens
         WHERE ($1 IS NULL OR workspace_id = $1) ORDER BY created_at DESC, id")
        .bind(workspace_id).fetch_all(pool).await?))
}

/// Marks a token revoked inside `tx` (only of `only_workspace`, when given); its workspace
/// when it existed and was not revoked already.
pub async fn revoke_token_in(tx: &mut Tx, id: Uuid, only_workspace: Option<Uuid>) -> Result<Option<Uuid>, AppError> {
    Ok(on_tx!(tx, conn => sqlx::query_scalar(
        "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND ($3 IS NULL OR workspace_id = $3) RETURNING workspace_id")
        .bind(Utc::now()).bind(id).bind(only_workspace).fetch_optional(&mut *conn).await?))
}
