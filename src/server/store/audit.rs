//! The audit log: who did what, when, to which key; never a value.

use chrono::Utc;
use uuid::Uuid;

use crate::model::AuditEvent;
use crate::server::domain::{Actor, AuditAction};
use crate::server::error::AppError;
use crate::server::store::{escape_like, on_conn, on_pool, Conn, Db};

/// An audit entry to write; never holds a value.
pub struct Audit<'a> {
    pub workspace_id: Option<Uuid>,
    pub actor: &'a str,
    pub action: AuditAction,
    pub key: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl<'a> Audit<'a> {
    /// An entry about `workspace_id` by `actor`.
    pub fn of(
        workspace_id: Uuid,
        actor: &'a Actor,
        action: AuditAction,
        key: Option<&'a str>,
        detail: Option<&'a str>,
    ) -> Audit<'a> {
        Audit { workspace_id: Some(workspace_id), actor: actor.as_str(), action, key, detail }
    }
}

impl<'a> Audit<'a> {
    /// An entry about a user's own account (no workspace): sign-ins, sessions, passwords.
    pub fn of_user(actor: &'a Actor, action: AuditAction, detail: Option<&'a str>) -> Audit<'a> {
        Audit { workspace_id: None, actor: actor.as_str(), action, key: None, detail }
    }
}

const AUDIT_INSERT: &str =
    "INSERT INTO audit_events (id, workspace_id, actor, action, key, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Records an audit entry: inside the transaction of the change it describes, or on the pool
/// for something that changes no other row (a read, a sign-in failure).
pub async fn audit(conn: impl Into<Conn<'_>>, entry: &Audit<'_>) -> Result<(), AppError> {
    on_conn!(conn.into(), exec => sqlx::query(AUDIT_INSERT)
        .bind(Uuid::new_v4()).bind(entry.workspace_id).bind(entry.actor).bind(entry.action.as_str()).bind(entry.key).bind(entry.detail).bind(Utc::now())
        .execute(exec).await?.rows_affected());
    Ok(())
}

/// A user's own sign-in events (successes and failures), newest first.
pub async fn sign_in_events(db: &Db, username: &str, limit: i64) -> Result<Vec<AuditEvent>, AppError> {
    let actor = Actor::user(username).0;
    let rows: Vec<AuditEvent> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, at, actor, action, key, detail FROM audit_events WHERE workspace_id IS NULL AND actor = $1 ORDER BY at DESC, id LIMIT $2")
        .bind(actor).bind(limit).fetch_all(pool).await?);
    Ok(rows)
}

/// How many entries of `action` by `actor` a workspace recorded after `since` (a rate counted
/// in the database, so instances share it).
pub async fn count_actions_since(
    db: &Db,
    workspace_id: Uuid,
    actor: &str,
    action: AuditAction,
    since: chrono::DateTime<Utc>,
) -> Result<i64, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE workspace_id = $1 AND actor = $2 AND action = $3 AND at > $4")
        .bind(workspace_id).bind(actor).bind(action.as_str()).bind(since).fetch_one(pool).await?))
}

/// A workspace's audit log, newest first; `search` matches action, actor or key.
pub async fn audit_events(
    db: &Db,
    workspace_id: Uuid,
    search: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>, AppError> {
    let pattern = search.filter(|s| !s.is_empty()).map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
    let rows: Vec<AuditEvent> = on_pool!(db, pool => sqlx::query_as(
        "SELECT id, at, actor, action, key, detail FROM audit_events WHERE workspace_id = $1
         AND ($2 IS NULL OR LOWER(action) LIKE $2 ESCAPE '\\' OR LOWER(actor) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(key, '')) LIKE $2 ESCAPE '\\')
         ORDER BY at DESC, id LIMIT $3")
        .bind(workspace_id).bind(pattern).bind(limit).fetch_all(pool).await?);
    Ok(rows)
}
