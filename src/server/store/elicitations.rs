//! SQL of MCP URL-mode elicitations: the links MCP clients were asked to open for a secret
//! request, and whether a 2026-07-28 `requestState` has been used.

use chrono::Utc;
use uuid::Uuid;

use crate::server::error::AppError;
use crate::server::store::{on_pool, Db};

/// One elicitation: which run it opens, for which caller and call.
#[derive(sqlx::FromRow, Clone, Debug)]
pub struct ElicitationRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub run_id: Uuid,
}

/// Records an elicitation of `run_id` for `caller`'s call `call_digest`.
pub async fn insert_elicitation(
    db: &Db,
    id: Uuid,
    workspace_id: Uuid,
    run_id: Uuid,
    caller: &str,
    call_digest: &str,
) -> Result<(), AppError> {
    on_pool!(db, pool => sqlx::query(
        "INSERT INTO mcp_elicitations (id, workspace_id, run_id, caller, call_digest, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id).bind(workspace_id).bind(run_id).bind(caller).bind(call_digest).bind(Utc::now())
        .execute(pool).await?.rows_affected());
    Ok(())
}

/// The newest unused elicitation of `caller`'s call `call_digest` in a workspace.
pub async fn open_elicitation(
    db: &Db,
    workspace_id: Uuid,
    caller: &str,
    call_digest: &str,
) -> Result<Option<ElicitationRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, workspace_id, run_id FROM mcp_elicitations
         WHERE workspace_id = $1 AND caller = $2 AND call_digest = $3 AND used_at IS NULL
         ORDER BY created_at DESC LIMIT 1")
        .bind(workspace_id).bind(caller).bind(call_digest).fetch_optional(pool).await?))
}

/// Marks an elicitation used; `false` when it was used already (or never recorded), so a
/// `requestState` is accepted once, whichever instance sees it.
pub async fn use_elicitation(db: &Db, id: Uuid) -> Result<bool, AppError> {
    let n = on_pool!(db, pool => sqlx::query("UPDATE mcp_elicitations SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
        .bind(Utc::now()).bind(id).execute(pool).await?.rows_affected());
    Ok(n == 1)
}
