//! SQL of egress policies: the origins each secret may be sent to, stored as a JSON array.

use uuid::Uuid;

use crate::server::error::AppError;
use crate::server::store::{on_pool, on_tx, Db, Tx};

/// A secret's key and its origins (as stored).
pub async fn egress_of(db: &Db, workspace_id: Uuid, id: Uuid) -> Result<Option<(String, Vec<String>)>, AppError> {
    let row: Option<(String, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT key, egress_hosts FROM secrets WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id).bind(id).fetch_optional(pool).await?);
    row.map(|(key, hosts)| Ok((key, parse(&hosts)?))).transpose()
}

/// The origins of every secret of a workspace, by key.
pub async fn egress_by_key(db: &Db, workspace_id: Uuid) -> Result<Vec<(String, Vec<String>)>, AppError> {
    let rows: Vec<(String, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT key, egress_hosts FROM secrets WHERE workspace_id = $1 ORDER BY key")
        .bind(workspace_id).fetch_all(pool).await?);
    rows.into_iter().map(|(key, hosts)| Ok((key, parse(&hosts)?))).collect()
}

/// Replaces a secret's origins inside `tx`; its key when it exists.
pub async fn set_egress_in(
    tx: &mut Tx,
    workspace_id: Uuid,
    id: Uuid,
    hosts: &[String],
) -> Result<Option<String>, AppError> {
    let text = serde_json::to_string(hosts).expect("BUG: strings serialize");
    Ok(
        on_tx!(tx, conn => sqlx::query_scalar("UPDATE secrets SET egress_hosts = $1 WHERE workspace_id = $2 AND id = $3 RETURNING key")
        .bind(text).bind(workspace_id).bind(id).fetch_optional(&mut *conn).await?),
    )
}

fn parse(text: &str) -> Result<Vec<String>, AppError> {
    serde_json::from_str(text)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored egress hosts are not a JSON list: {e}")))
}
