//! Users, workspaces and memberships.

use chrono::Utc;
use uuid::Uuid;

use crate::model::{Role, WorkspaceItem};
use crate::server::error::{on_constraint, AppError};
use crate::server::store::{on_pool, on_tx, Db, Tx};

/// A user row.
#[derive(sqlx::FromRow, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
}

#[derive(sqlx::FromRow)]
struct WorkspaceRoleRow {
    id: Uuid,
    name: String,
    role: String,
}

impl WorkspaceRoleRow {
    fn into_item(self) -> Result<WorkspaceItem, AppError> {
        let role =
            Role::parse(&self.role).ok_or_else(|| anyhow::anyhow!("unknown role {:?} in memberships", self.role))?;
        Ok(WorkspaceItem { id: self.id, name: self.name, role })
    }
}

/// Inserts a user; 409 when the username is taken.
pub async fn insert_user(
    db: &Db,
    id: Uuid,
    username: &str,
    password_hash: &str,
    is_admin: bool,
) -> Result<(), AppError> {
    on_pool!(db, pool => sqlx::query(
        "INSERT INTO users (id, username, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id).bind(username).bind(password_hash).bind(is_admin).bind(Utc::now())
        .execute(pool).await
        .map_err(on_constraint("users_username_unique", "a user with this username exists"))?.rows_affected());
    Ok(())
}

/// Finds a user by (lowercased) username.
pub async fn user_by_username(db: &Db, username: &str) -> Result<Option<UserRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as(
        "SELECT id, username, password_hash, is_admin FROM users WHERE username = $1")
        .bind(username).fetch_optional(pool).await?))
}

/// How many users exist.
pub async fn count_users(db: &Db) -> Result<i64, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?))
}

/// Creates a workspace with its first data key and, optionally, its owner, inside `tx`.
pub async fn insert_workspace(
    tx: &mut Tx,
    id: Uuid,
    name: &str,
    wrapped_key: &[u8],
    owner: Option<Uuid>,
) -> Result<(), AppError> {
    let now = Utc::now();
    on_tx!(tx, conn => {
        sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id).bind(name).bind(now).execute(&mut *conn).await?;
        sqlx::query("INSERT INTO workspace_keys (workspace_id, version, wrapped_key, created_at) VALUES ($1, 1, $2, $3)")
            .bind(id).bind(wrapped_key).bind(now).execute(&mut *conn).await?;
        if let Some(user_id) = owner {
            sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
                .bind(id).bind(user_id).bind(now).execute(&mut *conn).await?;
        }
    });
    Ok(())
}

/// Adds a member with a role inside `tx`; 409 when already a member.
pub async fn insert_membership_in(tx: &mut Tx, workspace_id: Uuid, user_id: Uuid, role: Role) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(workspace_id).bind(user_id).bind(role.as_str()).bind(Utc::now()).execute(&mut *conn).await
        .map_err(on_constraint("memberships_pkey", "the user is already a member"))?.rows_affected());
    Ok(())
}

/// A workspace's members, by username.
pub async fn members(db: &Db, workspace_id: Uuid) -> Result<Vec<crate::model::Member>, AppError> {
    let rows: Vec<(Uuid, String, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT u.id, u.username, m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.workspace_id = $1 ORDER BY u.username")
        .bind(workspace_id).fetch_all(pool).await?);
    rows.into_iter()
        .map(|(user_id, username, role)| {
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role:?} in memberships"))?;
            Ok(crate::model::Member { user_id, username, role })
        })
        .collect()
}

/// Changes a member's role (`Some`) or removes the member (`None`) inside `tx`; how many rows
/// changed (0: not a member).
pub async fn set_membership_in(
    tx: &mut Tx,
    workspace_id: Uuid,
    user_id: Uuid,
    role: Option<Role>,
) -> Result<u64, AppError> {
    Ok(on_tx!(tx, conn => match role {
        Some(role) => sqlx::query("UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3")
            .bind(role.as_str()).bind(workspace_id).bind(user_id).execute(&mut *conn).await?.rows_affected(),
        None => sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace_id).bind(user_id).execute(&mut *conn).await?.rows_affected(),
    }))
}

/// How many owners a workspace has, inside `tx`.
pub async fn owner_count_in(tx: &mut Tx, workspace_id: Uuid) -> Result<i64, AppError> {
    Ok(
        on_tx!(tx, conn => sqlx::query_scalar("SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'")
        .bind(workspace_id).fetch_one(&mut *conn).await?),
    )
}

/// Replaces a user's password hash inside `tx`.
pub async fn set_password_hash_in(tx: &mut Tx, user_id: Uuid, hash: &str) -> Result<(), AppError> {
    on_tx!(tx, conn => sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2").bind(hash).bind(user_id).execute(&mut *conn).await?.rows_affected());
    Ok(())
}

/// A user by id.
pub async fn user_by_id(db: &Db, id: Uuid) -> Result<Option<UserRow>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as("SELECT id, username, password_hash, is_admin FROM users WHERE id = $1")
        .bind(id).fetch_optional(pool).await?))
}

/// All workspaces, by name (for the CLI).
pub async fn all_workspaces(db: &Db) -> Result<Vec<(Uuid, String)>, AppError> {
    Ok(on_pool!(db, pool => sqlx::query_as("SELECT id, name FROM workspaces ORDER BY name, id").fetch_all(pool).await?))
}

/// Whether a workspace exists.
pub async fn workspace_exists(db: &Db, id: Uuid) -> Result<bool, AppError> {
    let n: i64 = on_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM workspaces WHERE id = $1").bind(id).fetch_one(pool).await?);
    Ok(n > 0)
}

/// The workspaces a user belongs to, with the user's role, by name.
pub async fn workspaces_of_user(db: &Db, user_id: Uuid) -> Result<Vec<WorkspaceItem>, AppError> {
    let rows: Vec<WorkspaceRoleRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT w.id, w.name, m.role FROM workspaces w JOIN memberships m ON m.workspace_id = w.id
         WHERE m.user_id = $1 ORDER BY w.name, w.id")
        .bind(user_id).fetch_all(pool).await?);
    rows.into_iter().map(WorkspaceRoleRow::into_item).collect()
}

/// One workspace as a member sees it, or `None` when the user is not a member.
pub async fn workspace_of_user(db: &Db, user_id: Uuid, workspace_id: Uuid) -> Result<Option<WorkspaceItem>, AppError> {
    let row: Option<WorkspaceRoleRow> = on_pool!(db, pool => sqlx::query_as(
        "SELECT w.id, w.name, m.role FROM workspaces w JOIN memberships m ON m.workspace_id = w.id
         WHERE m.user_id = $1 AND w.id = $2")
        .bind(user_id).bind(workspace_id).fetch_optional(pool).await?);
    row.map(WorkspaceRoleRow::into_item).transpose()
}
