//! The Studio's server functions. Each body runs on the server only and calls
//! `server::web::studio`, which authorizes exactly as the REST API does.
// A server function takes one argument per form field (the token form has nine), and the
// `#[server]` macro generates more functions from each than an item attribute reaches.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{
    ApiError, AuditEvent, CreatedToken, CurrentUser, Member, Role, SecretItem, SessionInfo, TokenInfo, WorkflowRun,
    WorkspaceItem, WorkspaceSecrets,
};

/// The signed-in user, or `None`.
#[server(prefix = "/studio", endpoint = "current_user")]
pub async fn get_current_user() -> Result<Option<CurrentUser>, ApiError> {
    crate::server::web::studio::current_user().await.map_err(crate::server::web::studio::fail)
}

/// Signs in with a username and password and goes to the workspace list.
#[server(prefix = "/studio", endpoint = "sign_in")]
pub async fn sign_in(username: String, password: String) -> Result<(), ApiError> {
    crate::server::web::studio::sign_in(&username, &password).await.map_err(crate::server::web::studio::fail)?;
    leptos_axum::redirect("/workspaces");
    Ok(())
}

/// Ends the session and goes to the sign-in page.
#[server(prefix = "/studio", endpoint = "sign_out")]
pub async fn sign_out(csrf: String) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::sign_out().await.map_err(crate::server::web::studio::fail)?;
    leptos_axum::redirect("/sign-in");
    Ok(())
}

/// The workspaces of the signed-in user.
#[server(prefix = "/studio", endpoint = "list_workspaces")]
pub async fn list_workspaces() -> Result<Vec<WorkspaceItem>, ApiError> {
    crate::server::web::studio::workspaces().await.map_err(crate::server::web::studio::fail)
}

/// A workspace and one page of its secrets whose key contains `q` (keys and `hasValue` only).
#[server(prefix = "/studio", endpoint = "workspace_secrets")]
pub async fn get_workspace_secrets(
    workspace_id: Uuid,
    q: Option<String>,
    page: Option<usize>,
) -> Result<WorkspaceSecrets, ApiError> {
    let filter = q.unwrap_or_default();
    crate::server::web::studio::workspace_secrets(workspace_id, &filter, page.unwrap_or(1))
        .await
        .map_err(crate::server::web::studio::fail)
}

/// Adds a secret; the value is sent once and never comes back.
#[server(prefix = "/studio", endpoint = "create_secret")]
pub async fn create_secret(
    csrf: String,
    workspace_id: Uuid,
    key: String,
    value: String,
) -> Result<SecretItem, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::create_secret(workspace_id, &key, value).await.map_err(crate::server::web::studio::fail)
}

/// Replaces a secret's value.
#[server(prefix = "/studio", endpoint = "update_secret")]
pub async fn update_secret(csrf: String, workspace_id: Uuid, id: Uuid, value: String) -> Result<SecretItem, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::update_secret(workspace_id, id, value).await.map_err(crate::server::web::studio::fail)
}

/// Deletes a secret.
#[server(prefix = "/studio", endpoint = "delete_secret")]
pub async fn delete_secret(csrf: String, workspace_id: Uuid, id: Uuid) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::delete_secret(workspace_id, id).await.map_err(crate::server::web::studio::fail)
}

/// A run with its documents.
#[server(prefix = "/studio", endpoint = "run")]
pub async fn get_run(workspace_id: Uuid, run_id: Uuid) -> Result<WorkflowRun, ApiError> {
    crate::server::web::studio::run(workspace_id, run_id).await.map_err(crate::server::web::studio::fail)
}

/// Submits a SecretRequestDocument form (`values[KEY]=...`): all values stored and the run
/// continued in one transaction. Without JavaScript the browser comes back to the run page.
#[server(prefix = "/studio", endpoint = "submit_request")]
pub async fn submit_request(
    csrf: String,
    workspace_id: Uuid,
    run_id: Uuid,
    values: std::collections::HashMap<String, String>,
) -> Result<WorkflowRun, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    let run = crate::server::web::studio::submit_request(workspace_id, run_id, values)
        .await
        .map_err(crate::server::web::studio::fail)?;
    leptos_axum::redirect(&format!("/workspaces/{workspace_id}/runs/{run_id}"));
    Ok(run)
}

/// Declines a request.
#[server(prefix = "/studio", endpoint = "decline_request")]
pub async fn decline_request(csrf: String, workspace_id: Uuid, run_id: Uuid) -> Result<WorkflowRun, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    let run = crate::server::web::studio::decline_request(workspace_id, run_id)
        .await
        .map_err(crate::server::web::studio::fail)?;
    leptos_axum::redirect(&format!("/workspaces/{workspace_id}/runs/{run_id}"));
    Ok(run)
}

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
) -> Result<CreatedToken, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    use crate::server::domain::Scope;
    let chosen = [
        (scope_list, Scope::SecretsList),
        (scope_write, Scope::SecretsWrite),
        (scope_read, Scope::SecretsRead),
        (scope_tools, Scope::ToolsCall),
        (scope_workflows, Scope::WorkflowsRun),
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
    crate::server::web::studio::create_token(workspace_id, &name, &scopes, days)
        .await
        .map_err(crate::server::web::studio::fail)
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

/// Changes the signed-in user's password.
#[server(prefix = "/studio", endpoint = "change_password")]
pub async fn change_password(csrf: String, current_password: String, new_password: String) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::change_password(&current_password, &new_password)
        .await
        .map_err(crate::server::web::studio::fail)
}

/// Creates a user (administrators only); answers with a generated password when none is given.
#[server(prefix = "/studio", endpoint = "create_user")]
pub async fn create_user(
    csrf: String,
    username: String,
    password: Option<String>,
    admin: Option<String>,
) -> Result<Option<String>, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::create_user(&username, password, admin.is_some())
        .await
        .map_err(crate::server::web::studio::fail)
}

/// The signed-in user's recent sign-ins and failed attempts.
#[server(prefix = "/studio", endpoint = "my_sign_ins")]
pub async fn get_my_sign_ins() -> Result<Vec<AuditEvent>, ApiError> {
    crate::server::web::studio::my_sign_ins().await.map_err(crate::server::web::studio::fail)
}

/// The signed-in user's open sessions (when, from where).
#[server(prefix = "/studio", endpoint = "my_sessions")]
pub async fn get_my_sessions() -> Result<Vec<SessionInfo>, ApiError> {
    crate::server::web::studio::my_sessions().await.map_err(crate::server::web::studio::fail)
}

/// Ends one of the signed-in user's sessions.
#[server(prefix = "/studio", endpoint = "revoke_session")]
pub async fn revoke_session(csrf: String, session_id: Uuid) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::revoke_session(session_id).await.map_err(crate::server::web::studio::fail)
}

/// Ends every session of the signed-in user, this one included, and goes to the sign-in page.
#[server(prefix = "/studio", endpoint = "sign_out_everywhere")]
pub async fn sign_out_everywhere(csrf: String) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::sign_out_everywhere().await.map_err(crate::server::web::studio::fail)?;
    leptos_axum::redirect("/sign-in");
    Ok(())
}
