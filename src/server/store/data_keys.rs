//! The master key check and the workspaces' wrapped data keys, by version.

use chrono::Utc;
use uuid::Uuid;

use crate::server::error::AppError;
use crate::server::store::{on_pool, on_tx, Db, Tx, WorkspaceLock};

/// The stored key-check blob, if the database has one.
pub async fn key_check(db: &Db) -> Result<Option<Vec<u8>>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_scalar("SELECT blob FROM key_check WHERE id = 1").fetch_optional(pool).await?))
}

/// Whether any encrypted data (a wrapped data key) exists.
pub async fn has_encrypted_data(db: &Db) -> Result<bool, AppError> {
    let n: i64 = on_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM workspace_keys").fetch_one(pool).await?);
    Ok(n > 0)
}

/// Stores the key-check blob once.
pub async fn insert_key_check(db: &Db, blob: &[u8]) -> Result<(), AppError> {
    on_pool!(db, pool => sqlx::query("INSERT INTO key_check (id, blob, created_at) VALUES (1, $1, $2)")
        .bind(blob).bind(Utc::now()).execute(pool).await?.rows_affected());
    Ok(())
}

/// The active (highest) data key version of a workspace and its wrapped bytes, read inside the
/// writer's transaction and held against rotation until it ends: on PostgreSQL with a share lock
/// on the workspace row, which a new key version waits for (see [`add_data_key`]); SQLite's
/// write transactions run one at a time anyway. So once a new version is committed, no value
/// can be written under an older one.
///
/// With it comes whether the workspace requires check-and-set on every write.
pub async fn active_data_key_in(tx: &mut Tx, workspace_id: Uuid) -> Result<Option<(i32, Vec<u8>, bool)>, AppError> {
    tx.lock_workspace(workspace_id, WorkspaceLock::Share).await?;
    Ok(on_tx!(tx, conn => sqlx::query_as(
        "SELECT k.version, k.wrapped_key, w.require_check_and_set FROM workspace_keys k JOIN workspaces w ON w.id = k.workspace_id
         WHERE k.workspace_id = $1 ORDER BY k.version DESC LIMIT 1")
        .bind(workspace_id).fetch_optional(&mut *conn).await?))
}

/// A workspace's active data key version, wrapped, and whether it requires check-and-set, read
/// outside a transaction (what a one-trip upsert seals with; the statement checks it is still
/// the active one).
pub async fn active_data_key(db: &Db, workspace_id: Uuid) -> Result<Option<(i32, Vec<u8>, bool)>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT k.version, k.wrapped_key, w.require_check_and_set FROM workspace_keys k JOIN workspaces w ON w.id = k.workspace_id
         WHERE k.workspace_id = $1 ORDER BY k.version DESC LIMIT 1")
        .bind(workspace_id).fetch_optional(pool).await?))
}

/// Adds the next data key version of a workspace (wrapped by `wrap` for that version) and
/// returns it. On PostgreSQL it first takes the workspace row exclusively, waiting for writers
/// still sealing under the current version.
pub async fn add_data_key(tx: &mut Tx, workspace_id: Uuid, wrap: impl FnOnce(i32) -> Vec<u8>) -> Result<i32, AppError> {
    tx.lock_workspace(workspace_id, WorkspaceLock::Update).await?;
    let current: Option<i32> = on_tx!(tx, conn => sqlx::query_scalar("SELECT MAX(version) FROM workspace_keys WHERE workspace_id = $1")
        .bind(workspace_id).fetch_one(&mut *conn).await?);
    let version = current.ok_or(AppError::NotFound)? + 1;
    let wrapped = wrap(version);
    on_tx!(tx, conn => sqlx::query("INSERT INTO workspace_keys (workspace_id, version, wrapped_key, created_at) VALUES ($1, $2, $3, $4)")
        .bind(workspace_id).bind(version).bind(&wrapped).bind(Utc::now()).execute(&mut *conn).await?.rows_affected());
    Ok(version)
}

/// Deletes the data key versions below `version` that no secret and no kept version of one
/// uses any more; how many.
pub async fn retire_data_keys(tx: &mut Tx, workspace_id: Uuid, version: i32) -> Result<u64, AppError> {
    let sql = "DELETE FROM workspace_keys WHERE workspace_id = $1 AND version < $2
               AND NOT EXISTS (SELECT 1 FROM secrets s WHERE s.workspace_id = $1 AND s.key_version = workspace_keys.version)
               AND NOT EXISTS (SELECT 1 FROM secret_versions v WHERE v.workspace_id = $1 AND v.key_version = workspace_keys.version)
               AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.workspace_id = $1 AND w.key_version = workspace_keys.version)";
    Ok(on_tx!(tx, conn => sqlx::query(sql).bind(workspace_id).bind(version).execute(&mut *conn).await?.rows_affected()))
}

/// How many data key versions a workspace keeps, and how many of its secrets use each.
pub async fn data_key_usage(db: &Db, workspace_id: Uuid) -> Result<Vec<(i32, i64)>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT k.version, COUNT(s.id) FROM workspace_keys k
         LEFT JOIN secrets s ON s.workspace_id = k.workspace_id AND s.key_version = k.version
         WHERE k.workspace_id = $1 GROUP BY k.version ORDER BY k.version")
        .bind(workspace_id).fetch_all(pool).await?))
}

/// Every wrapped data key of every workspace, inside `tx` (a master key rotation).
pub async fn all_wrapped_keys_in(tx: &mut Tx) -> Result<Vec<(Uuid, i32, Vec<u8>)>, AppError> {
    Ok(on_tx!(tx, conn => sqlx::query_as(
        "SELECT workspace_id, version, wrapped_key FROM workspace_keys ORDER BY workspace_id, version")
        .fetch_all(&mut *conn).await?))
}

/// Replaces one wrapped data key inside `tx`.
pub async fn set_wrapped_key_in(tx: &mut Tx, workspace_id: Uuid, version: i32, wrapped: &[u8]) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query("UPDATE workspace_keys SET wrapped_key = $1 WHERE workspace_id = $2 AND version = $3")
        .bind(wrapped).bind(workspace_id).bind(version).execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// Replaces the key-check blob inside `tx`.
pub async fn set_key_check_in(tx: &mut Tx, blob: &[u8]) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query("UPDATE key_check SET blob = $1 WHERE id = 1").bind(blob).execute(&mut *conn).await?.rows_affected());
    Ok(())
}
