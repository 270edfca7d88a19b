//! The owners' pages and the audit log: tokens, members, the log.
// A server function takes one argument per form field (the token form has nine), and the
// `#[server]` macro generates more functions from each than an item attribute reaches.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{ApiError, AuditEvent, Member, Role, ShownOnce, TokenInfo};

/// A workspace's audit log (never values).
#[server(prefix = "/studio", endpoint = "audit_log")]
pub async fn get_audit_log(workspace_id: Uuid, search: Option<String>) -> Result<Vec<AuditEvent>, ApiError> {
    crate::server::web::studio::audit_log(workspace_id, search).await.map_err(crate::server::web::studio::fail)
}

/// The workspace's API tokens (owners only).
#[server(prefix = "/studio", endpoint = "tokens")]
pub async fn get_tokens(workspace_id: Uuid) -> Result<Vec<TokenInfo>, ApiError> {
    crate::server::web::studio::tokens(workspace_id).await.map_err(crate::server::web::studio::fail)
}

/// Creates an API token from checkboxes (`scope_list`, `scope_write`, ...); shown once.
#[server(prefix = "/studio", endpoint = "create_token")]
pub async fn create_token(
    csrf: String,
    workspace_id: Uuid,
    name: String,
    expires_in_days: Option<String>,
    scope_list: Option<String>,
    scope_write: Option<String>,
    scope_read: Option<String>,
    scope_tools: Option<String>,
    scope_workflows: Option<String>,
    scope_use: Option<String>,
    scope_webhooks: Option<String>,
) -> Result<ShownOnce, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    use crate::server::domain::Scope;
    let chosen = [
        (scope_list, Scope::SecretsList),
        (scope_write, Scope::SecretsWrite),
        (scope_read, Scope::SecretsRead),
        (scope_tools, Scope::ToolsCall),
        (scope_workflows, Scope::WorkflowsRun),
        (scope_use, Scope::SecretsUse),
        (scope_webhooks, Scope::WebhooksManage),
    ];
    let scopes: Vec<Scope> = chosen.into_iter().filter(|(on, _)| on.is_some()).map(|(_, s)| s).collect();
    let days = match expires_in_days.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => Some(d.parse::<i64>().ok().filter(|d| (1..=3650).contains(d)).ok_or_else(|| {
            crate::server::web::studio::fail(crate::server::error::AppError::BadRequest(
                "expiry must be 1 to 3650 days".into(),
            ))
        })?),
        None => None,
    };
    let created = crate::server::web::studio::create_token(workspace_id, &name, &scopes, days)
        .await
        .map_err(crate::server::web::studio::fail)?;
    Ok(ShownOnce {
        message: format!("Token '{}' created. Copy it now: it is not shown again.", created.info.name),
        secret: Some(created.token),
    })
}

/// Revokes a token.
#[server(prefix = "/studio", endpoint = "revoke_token")]
pub async fn revoke_token(csrf: String, workspace_id: Uuid, token_id: Uuid) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::revoke_token(workspace_id, token_id).await.map_err(crate::server::web::studio::fail)
}

/// The workspace's members (owners only).
#[server(prefix = "/studio", endpoint = "members")]
pub async fn get_members(workspace_id: Uuid) -> Result<Vec<Member>, ApiError> {
    crate::server::web::studio::members(workspace_id).await.map_err(crate::server::web::studio::fail)
}

/// Adds an existing user with a role.
#[server(prefix = "/studio", endpoint = "add_member")]
pub async fn add_member(csrf: String, workspace_id: Uuid, username: String, role: Role) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::add_member(workspace_id, &username, role)
        .await
        .map_err(crate::server::web::studio::fail)
}

/// Changes a member's role; `remove` takes the member out instead.
#[server(prefix = "/studio", endpoint = "change_member")]
pub async fn change_member(
    csrf: String,
    workspace_id: Uuid,
    user_id: Uuid,
    role: Option<Role>,
    remove: Option<String>,
) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    let role = if remove.is_some() {
        None
    } else {
        Some(role.ok_or_else(|| {
            crate::server::web::studio::fail(crate::server::error::AppError::BadRequest("choose a role".into()))
        })?)
    };
    crate::server::web::studio::change_member(workspace_id, user_id, role)
        .await
        .map_err(crate::server::web::studio::fail)
}
