//! Access: users, workspaces, their members and API tokens. The Studio's owner and admin pages
//! and the CLI call these same functions, so a rule (the last owner stays, a token needs a
//! scope) holds whichever way a change comes in, and each change is audited in its own
//! transaction.

use chrono::{Duration, Utc};
use uuid::Uuid;

use crate::model::{Event, Member, Role, TokenInfo, WorkspaceItem};
use crate::server::domain::AuditAction;
use crate::server::domain::{Actor, NewPassword, Scope, TokenName, Username, WorkspaceName};
use crate::server::error::AppError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rand::RngCore;

use crate::server::keys::passwords::{constant_time_eq, hash_password_blocking, random_secret, sha256};
use crate::server::keys::{DataKey, MasterKey};
use crate::server::store::{self, Db, TokenRow};

/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "lss_";

/// An authenticated API token.
#[derive(Clone, Debug)]
pub struct TokenPrincipal {
    pub token_id: Uuid,
    pub workspace_id: Uuid,
    pub scopes: Vec<Scope>,
}

// ---- users and workspaces ---------------------------------------------------------------

/// A random password for generated credentials: 24 characters of base64url.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

/// Creates a user; 400 for a bad username or a password under 8 characters, 409 when taken.
pub async fn create_user(db: &Db, username: &str, password: &str, is_admin: bool) -> Result<Uuid, AppError> {
    let username = Username::parse(username)?;
    let password = NewPassword::parse(password)?;
    let hash = hash_password_blocking(password.into_inner()).await?;
    let id = Uuid::new_v4();
    store::insert_user(db, id, username.as_str(), &hash, is_admin).await?;
    Ok(id)
}

/// How many users exist (none: the first start).
pub async fn count_users(db: &Db) -> Result<i64, AppError> {
    store::count_users(db).await
}

/// The id of the user named `username`; 400 when there is none.
pub async fn user_id(db: &Db, username: &str) -> Result<Uuid, AppError> {
    let username = Username::parse(username)?;
    let user = store::user_by_username(db, username.as_str()).await?;
    Ok(user.ok_or_else(|| AppError::BadRequest(format!("no user named '{}'", username.as_str())))?.id)
}

/// Every workspace, by name (for operators).
pub async fn all_workspaces(db: &Db) -> Result<Vec<(Uuid, String)>, AppError> {
    store::all_workspaces(db).await
}

/// Whether a workspace exists.
pub async fn workspace_exists(db: &Db, id: Uuid) -> Result<bool, AppError> {
    store::workspace_exists(db, id).await
}

/// The workspaces a user belongs to, with the user's role, by name.
pub async fn workspaces_of_user(db: &Db, user_id: Uuid) -> Result<Vec<WorkspaceItem>, AppError> {
    store::workspaces_of_user(db, user_id).await
}

/// Creates a workspace with a fresh data key (wrapped by `kek`) and, optionally, its owner.
pub async fn create_workspace(db: &Db, kek: &MasterKey, name: &str, owner: Option<Uuid>) -> Result<Uuid, AppError> {
    let name = WorkspaceName::parse(name)?;
    let id = Uuid::new_v4();
    let wrapped = kek.wrap(&DataKey::generate(), id, 1);
    let mut tx = db.begin().await?;
    store::insert_workspace(&mut tx, id, name.as_str(), &wrapped, owner).await?;
    tx.commit().await?;
    Ok(id)
}

/// One workspace as a member sees it, with the member's role; 404 when the user is not a
/// member (or there is no such workspace: the same answer).
pub async fn workspace_of_user(db: &Db, user_id: Uuid, workspace_id: Uuid) -> Result<WorkspaceItem, AppError> {
    store::workspace_of_user(db, user_id, workspace_id).await?.ok_or(AppError::NotFound)
}

// ---- members -----------------------------------------------------------------------------

/// Adds an existing user to a workspace with a role, audited in the same transaction; 400 for
/// an unknown username, 409 for a member.
pub async fn add_member(
    db: &Db,
    workspace_id: Uuid,
    username: &str,
    role: Role,
    actor: &Actor,
) -> Result<(), AppError> {
    let username = Username::parse(username)?;
    let user = store::user_by_username(db, username.as_str())
        .await?
        .ok_or_else(|| AppError::BadRequest(format!("no user named '{}'", username.as_str())))?;
    let mut tx = db.begin().await?;
    store::insert_membership_in(&mut tx, workspace_id, user.id, role).await?;
    store::emit(&mut tx, [Event::MemberChanged { workspace_id, user_id: user.id, role: Some(role) }]);
    let detail = format!("user {}: {} (added)", user.id, role.as_str());
    let entry = store::Audit::of(workspace_id, actor, AuditAction::MemberAdded, None, Some(&detail));
    store::audit(&mut tx, &entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes a member's role (`Some`) or removes the member (`None`), audited in the same
/// transaction. A workspace keeps at least one owner (409); 404 when not a member.
pub async fn change_member(
    db: &Db,
    workspace_id: Uuid,
    user_id: Uuid,
    role: Option<Role>,
    actor: &Actor,
) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    if store::set_membership_in(&mut tx, workspace_id, user_id, role).await? == 0 {
        return Err(AppError::NotFound);
    }
    if store::owner_count_in(&mut tx, workspace_id).await? == 0 {
        return Err(AppError::Conflict("a workspace keeps at least one owner".into()));
    }
    store::emit(&mut tx, [Event::MemberChanged { workspace_id, user_id, role }]);
    let detail = format!("user {user_id}: {}", role.map(Role::as_str).unwrap_or("removed"));
    store::audit(&mut tx, &store::Audit::of(workspace_id, actor, AuditAction::MemberChanged, None, Some(&detail)))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A workspace's members, by username.
pub async fn members(db: &Db, workspace_id: Uuid) -> Result<Vec<Member>, AppError> {
    store::members(db, workspace_id).await
}

// ---- API tokens --------------------------------------------------------------------------

/// Creates a token bound to one workspace; returns its row and the token text (shown once).
pub async fn create_token(
    db: &Db,
    workspace_id: Uuid,
    name: &str,
    scopes: &[Scope],
    expires_in_days: Option<i64>,
    actor: &Actor,
) -> Result<(TokenRow, String), AppError> {
    let name = TokenName::parse(name)?;
    if scopes.is_empty() {
        return Err(AppError::BadRequest("a token needs at least one scope".into()));
    }
    if !store::workspace_exists(db, workspace_id).await? {
        return Err(AppError::NotFound);
    }
    let id = Uuid::new_v4();
    let secret = random_secret();
    let mut scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    scope_names.sort_unstable();
    scope_names.dedup();
    let now = Utc::now();
    let row = TokenRow {
        id,
        workspace_id,
        name: name.as_str().to_string(),
        secret_hash: sha256(&secret),
        scopes: scope_names.join(" "),
        created_at: now,
        expires_at: expires_in_days.map(|d| now + Duration::days(d)),
        revoked_at: None,
    };
    let mut tx = db.begin().await?;
    store::insert_token(&mut tx, &row).await?;
    let scopes = row.scopes.split(' ').map(str::to_owned).collect();
    store::emit(&mut tx, [Event::TokenCreated { workspace_id, token_id: id, name: row.name.clone(), scopes }]);
    let detail = format!("token {} '{}' with {}", row.id, row.name, row.scopes);
    store::audit(&mut tx, &store::Audit::of(workspace_id, actor, AuditAction::TokenCreated, None, Some(&detail)))
        .await?;
    tx.commit().await?;
    Ok((row, format!("{TOKEN_PREFIX}{}_{}", id.simple(), secret)))
}

/// Resolves a bearer token; 401 when malformed, unknown, wrong, revoked or expired.
pub async fn token_principal(db: &Db, token: &str) -> Result<TokenPrincipal, AppError> {
    let rest = token.strip_prefix(TOKEN_PREFIX).ok_or(AppError::Unauthorized)?;
    let (id, secret) = rest.split_once('_').ok_or(AppError::Unauthorized)?;
    let token_id = Uuid::try_parse(id).map_err(|_| AppError::Unauthorized)?;
    let row = store::cached_token(db, token_id).await?.ok_or(AppError::Unauthorized)?;
    let expired = row.expires_at.is_some_and(|at| at <= Utc::now());
    if !constant_time_eq(&sha256(secret), &row.secret_hash) || row.revoked_at.is_some() || expired {
        return Err(AppError::Unauthorized);
    }
    let scopes = Scope::parse_list(&row.scopes)
        .map_err(|err| AppError::Internal(anyhow::anyhow!("token {token_id} is stored with {err}")))?;
    Ok(TokenPrincipal { token_id, workspace_id: row.workspace_id, scopes })
}

/// Whether a token still stands: not revoked, not expired (open streams check this again,
/// every few seconds, from the database itself).
pub async fn token_standing(db: &Db, token_id: Uuid) -> Result<bool, AppError> {
    Ok(store::token_by_id(db, token_id)
        .await?
        .is_some_and(|row| row.revoked_at.is_none() && row.expires_at.is_none_or(|at| at > Utc::now())))
}

/// Every token, or those of one workspace, newest first (for operators; never their secrets).
pub async fn all_tokens(db: &Db, workspace_id: Option<Uuid>) -> Result<Vec<TokenRow>, AppError> {
    store::list_tokens(db, workspace_id).await
}

/// A workspace's tokens (never their secrets), newest first.
pub async fn tokens(db: &Db, workspace_id: Uuid) -> Result<Vec<TokenInfo>, AppError> {
    Ok(store::list_tokens(db, Some(workspace_id)).await?.iter().map(token_info).collect())
}

/// Revokes a token (of `only_workspace`, when given), audited; 404 when there is no such
/// active token.
pub async fn revoke_token(
    db: &Db,
    token_id: Uuid,
    only_workspace: Option<Uuid>,
    actor: &Actor,
) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    let workspace_id = store::revoke_token_in(&mut tx, token_id, only_workspace).await?.ok_or(AppError::NotFound)?;
    store::emit(&mut tx, [Event::TokenRevoked { workspace_id, token_id }]);
    let detail = format!("token {token_id}");
    store::audit(&mut tx, &store::Audit::of(workspace_id, actor, AuditAction::TokenRevoked, None, Some(&detail)))
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A token as listings show it.
pub fn token_info(row: &TokenRow) -> TokenInfo {
    TokenInfo {
        id: row.id,
        name: row.name.clone(),
        scopes: row.scopes.split_whitespace().map(str::to_string).collect(),
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked: row.revoked_at.is_some(),
    }
}
