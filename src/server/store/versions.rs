//! Secret versions and deleted secrets: every value a secret has had (the current one too, as
//! its highest version), pruned to the newest few; a deleted secret's versions kept for a while
//! so it can be restored; the check-and-set setting of a workspace.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::{DeletedSecret, SecretItem, SecretVersion};
use crate::server::error::{on_constraint, AppError};
use crate::server::store::secrets::SecretItemRow;
use crate::server::store::{on_pool, on_tx, Db, Sealed, SecretRow, Tx, TxConn};

/// A version as a [`SecretRow`] (the secret's id, its value at that version, the data key), from
/// `secret_versions v` joined with its data key `k`.
macro_rules! version_row_from {
    () => {
        "SELECT v.secret_id AS id, v.workspace_id, v.key, v.ciphertext, v.nonce, v.key_version, v.aad_version, v.version, k.wrapped_key
         FROM secret_versions v JOIN workspace_keys k ON k.workspace_id = v.workspace_id AND k.version = v.key_version"
    };
}

/// Locks a secret for a write inside `tx` (PostgreSQL: its row; SQLite's writers take turns
/// anyway) and reads its key and version; `None` when there is no such secret.
pub async fn lock_secret(tx: &mut Tx, workspace_id: Uuid, id: Uuid) -> Result<Option<(String, i64)>, AppError> {
    let sql = match tx.conn {
        TxConn::Sqlite(_) => "SELECT key, version FROM secrets WHERE workspace_id = $1 AND id = $2",
        TxConn::Postgres(_) => "SELECT key, version FROM secrets WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
    };
    Ok(on_tx!(tx, conn => sqlx::query_as(sql).bind(workspace_id).bind(id).fetch_optional(&mut *conn).await?))
}

/// Keeps the secret's current value as its version (it was just written), and destroys the
/// versions older than the newest `keep`.
pub async fn keep_version(tx: &mut Tx, workspace_id: Uuid, id: Uuid, version: i64, keep: i64) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO secret_versions (secret_id, version, workspace_id, key, ciphertext, nonce, key_version, aad_version, has_value, created_at, created_by)
             SELECT id, version, workspace_id, key, ciphertext, nonce, key_version, aad_version, has_value, updated_at, updated_by
             FROM secrets WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id).bind(id).execute(&mut *conn).await?;
        if version > keep {
            sqlx::query("DELETE FROM secret_versions WHERE secret_id = $1 AND version <= $2")
                .bind(id).bind(version - keep).execute(&mut *conn).await?;
        }
    });
    Ok(())
}

/// A secret's versions, newest first (never a value); empty when the workspace has no such
/// secret.
pub async fn list_versions(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<Vec<SecretVersion>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT version, created_at, created_by, has_value FROM secret_versions
         WHERE workspace_id = $1 AND secret_id = $2 ORDER BY version DESC")
        .bind(workspace_id).bind(id).fetch_all(pool).await?))
}

/// One version of a secret with its ciphertext and data key, inside `tx`.
pub async fn version_row(
    tx: &mut Tx,
    workspace_id: Uuid,
    id: Uuid,
    version: i64,
) -> Result<Option<SecretRow>, AppError> {
    let sql = concat!(version_row_from!(), " WHERE v.workspace_id = $1 AND v.secret_id = $2 AND v.version = $3");
    Ok(on_tx!(tx, conn => sqlx::query_as(sql)
        .bind(workspace_id).bind(id).bind(version).fetch_optional(&mut *conn).await?))
}

/// Deletes a secret, remembering it (and so its versions) for a restore; its key when it
/// existed.
pub async fn delete_secret(tx: &mut Tx, workspace_id: Uuid, id: Uuid, actor: &str) -> Result<Option<String>, AppError> {
    let deleted: Option<(String, i64, DateTime<Utc>, String)> = on_tx!(tx, conn => sqlx::query_as(
        "DELETE FROM secrets WHERE workspace_id = $1 AND id = $2 RETURNING key, version, created_at, created_by")
        .bind(workspace_id).bind(id).fetch_optional(&mut *conn).await?);
    let Some((key, version, created_at, created_by)) = deleted else { return Ok(None) };
    on_tx!(tx, conn => sqlx::query(
        "INSERT INTO deleted_secrets (secret_id, workspace_id, key, version, created_at, created_by, deleted_at, deleted_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(id).bind(workspace_id).bind(&key).bind(version).bind(created_at).bind(&created_by).bind(Utc::now()).bind(actor)
        .execute(&mut *conn).await?.rows_affected());
    Ok(Some(key))
}

/// A workspace's secrets deleted after `since` that can be restored, newest first.
pub async fn deleted_secrets(
    db: &Db,
    workspace_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<DeletedSecret>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT secret_id AS id, key, version, deleted_at, deleted_by FROM deleted_secrets
         WHERE workspace_id = $1 AND deleted_at > $2 ORDER BY deleted_at DESC, key")
        .bind(workspace_id).bind(since).fetch_all(pool).await?))
}

/// Brings back the secret with `key` deleted most recently after `since`, as it was (its id,
/// current version and value); `None` when there is none. 409 when the key is in use again.
pub async fn restore_secret(
    tx: &mut Tx,
    workspace_id: Uuid,
    key: &str,
    since: DateTime<Utc>,
    actor: &str,
) -> Result<Option<SecretItem>, AppError> {
    let found: Option<(Uuid, i64, DateTime<Utc>, String)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT secret_id, version, created_at, created_by FROM deleted_secrets
         WHERE workspace_id = $1 AND key = $2 AND deleted_at > $3 ORDER BY deleted_at DESC LIMIT 1")
        .bind(workspace_id).bind(key).bind(since).fetch_optional(&mut *conn).await?);
    let Some((id, version, created_at, created_by)) = found else { return Ok(None) };
    let sql = "INSERT INTO secrets (id, workspace_id, key, ciphertext, nonce, key_version, aad_version, has_value, version, created_at, created_by, updated_at, updated_by)
         SELECT secret_id, workspace_id, key, ciphertext, nonce, key_version, aad_version, has_value, version, $4, $5, $6, $7
         FROM secret_versions WHERE workspace_id = $1 AND secret_id = $2 AND version = $3
         RETURNING id, key, has_value, updated_at, version";
    let row: Option<SecretItemRow> = on_tx!(tx, conn => sqlx::query_as(sql)
        .bind(workspace_id).bind(id).bind(version).bind(created_at).bind(&created_by).bind(Utc::now()).bind(actor)
        .fetch_optional(&mut *conn).await
        .map_err(on_constraint("secrets_workspace_key_unique", "a secret with this key exists; delete it first"))?);
    let Some(row) = row else { return Ok(None) };
    on_tx!(tx, conn => sqlx::query("DELETE FROM deleted_secrets WHERE secret_id = $1").bind(id).execute(&mut *conn).await?.rows_affected());
    Ok(Some(row.into()))
}

/// Destroys the versions of the secrets deleted at or before `before`, and their records; how
/// many secrets.
pub async fn purge_deleted(db: &Db, before: DateTime<Utc>) -> Result<u64, AppError> {
    let mut tx = db.begin().await?;
    let purged = on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM secret_versions WHERE secret_id IN (SELECT secret_id FROM deleted_secrets WHERE deleted_at <= $1)")
            .bind(before).execute(&mut *conn).await?;
        sqlx::query("DELETE FROM deleted_secrets WHERE deleted_at <= $1").bind(before).execute(&mut *conn).await?.rows_affected()
    });
    tx.commit().await?;
    Ok(purged)
}

/// Up to `limit` versions of a workspace's secrets still sealed under a data key older than
/// `version`.
pub async fn versions_to_reseal(
    tx: &mut Tx,
    workspace_id: Uuid,
    version: i32,
    limit: i64,
) -> Result<Vec<SecretRow>, AppError> {
    let sql = concat!(
        version_row_from!(),
        " WHERE v.workspace_id = $1 AND v.key_version < $2 ORDER BY v.secret_id, v.version LIMIT $3"
    );
    Ok(on_tx!(tx, conn => sqlx::query_as(sql)
        .bind(workspace_id).bind(version).bind(limit).fetch_all(&mut *conn).await?))
}

/// Replaces a version's ciphertext with `sealed` (the same value under a newer data key).
pub async fn reseal_version(tx: &mut Tx, id: Uuid, version: i64, sealed: &Sealed) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query(
        "UPDATE secret_versions SET ciphertext = $1, nonce = $2, key_version = $3, aad_version = $4 WHERE secret_id = $5 AND version = $6")
        .bind(&sealed.ciphertext).bind(&sealed.nonce).bind(sealed.key_version).bind(sealed.aad_version).bind(id).bind(version)
        .execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// Whether a workspace requires every write to name the version it replaces, inside `tx`.
pub async fn requires_check_and_set(tx: &mut Tx, workspace_id: Uuid) -> Result<bool, AppError> {
    let required: Option<bool> = on_tx!(tx, conn => sqlx::query_scalar(
        "SELECT require_check_and_set FROM workspaces WHERE id = $1").bind(workspace_id).fetch_optional(&mut *conn).await?);
    required.ok_or(AppError::NotFound)
}

/// Whether a workspace requires check-and-set.
pub async fn check_and_set_required(db: &Db, workspace_id: Uuid) -> Result<bool, AppError> {
    let required: Option<bool> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT require_check_and_set FROM workspaces WHERE id = $1").bind(workspace_id).fetch_optional(pool).await?);
    required.ok_or(AppError::NotFound)
}

/// Sets whether a workspace requires check-and-set, inside `tx`.
pub async fn set_check_and_set_required(tx: &mut Tx, workspace_id: Uuid, required: bool) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query("UPDATE workspaces SET require_check_and_set = $2 WHERE id = $1")
        .bind(workspace_id).bind(required).execute(&mut *conn).await?.rows_affected());
    Ok(())
}
