//! The Studio's server functions. Each body runs on the server only and calls
//! `server::studio`, which authorizes exactly as the REST API does.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{ApiError, AuditEvent, CurrentUser, SecretItem, WorkflowRun, WorkspaceItem, WorkspaceSecrets};

/// The signed-in user, or `None`.
#[server(prefix = "/studio", endpoint = "current_user")]
pub async fn get_current_user() -> Result<Option<CurrentUser>, ApiError> {
    crate::server::studio::current_user().await.map_err(crate::server::studio::fail)
}

/// Signs in with a username and password and goes to the workspace list.
#[server(prefix = "/studio", endpoint = "sign_in")]
pub async fn sign_in(username: String, password: String) -> Result<(), ApiError> {
    crate::server::studio::sign_in(&username, &password).await.map_err(ApiError::from)?;
    leptos_axum::redirect("/workspaces");
    Ok(())
}

/// Ends the session and goes to the sign-in page.
#[server(prefix = "/studio", endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), ApiError> {
    crate::server::studio::sign_out().await.map_err(ApiError::from)?;
    leptos_axum::redirect("/sign-in");
    Ok(())
}

/// The workspaces of the signed-in user.
#[server(prefix = "/studio", endpoint = "list_workspaces")]
pub async fn list_workspaces() -> Result<Vec<WorkspaceItem>, ApiError> {
    crate::server::studio::workspaces().await.map_err(crate::server::studio::fail)
}

/// A workspace and its secrets (keys and `hasValue` only).
#[server(prefix = "/studio", endpoint = "workspace_secrets")]
pub async fn get_workspace_secrets(workspace_id: Uuid) -> Result<WorkspaceSecrets, ApiError> {
    crate::server::studio::workspace_secrets(workspace_id).await.map_err(crate::server::studio::fail)
}

/// Adds a secret; the value is sent once and never comes back.
#[server(prefix = "/studio", endpoint = "create_secret")]
pub async fn create_secret(workspace_id: Uuid, key: String, value: String) -> Result<SecretItem, ApiError> {
    crate::server::studio::create_secret(workspace_id, &key, value).await.map_err(ApiError::from)
}

/// Replaces a secret's value.
#[server(prefix = "/studio", endpoint = "update_secret")]
pub async fn update_secret(workspace_id: Uuid, id: Uuid, value: String) -> Result<SecretItem, ApiError> {
    crate::server::studio::update_secret(workspace_id, id, value).await.map_err(ApiError::from)
}

/// Deletes a secret.
#[server(prefix = "/studio", endpoint = "delete_secret")]
pub async fn delete_secret(workspace_id: Uuid, id: Uuid) -> Result<(), ApiError> {
    crate::server::studio::delete_secret(workspace_id, id).await.map_err(ApiError::from)
}

/// A run with its documents.
#[server(prefix = "/studio", endpoint = "run")]
pub async fn get_run(workspace_id: Uuid, run_id: Uuid) -> Result<WorkflowRun, ApiError> {
    crate::server::studio::run(workspace_id, run_id).await.map_err(crate::server::studio::fail)
}

/// Submits a SecretRequestDocument form (`values[KEY]=...`): all values stored and the run
/// continued in one transaction. Without JavaScript the browser comes back to the run page.
#[server(prefix = "/studio", endpoint = "submit_request")]
pub async fn submit_request(workspace_id: Uuid, run_id: Uuid, values: std::collections::HashMap<String, String>) -> Result<WorkflowRun, ApiError> {
    let run = crate::server::studio::submit_request(workspace_id, run_id, values).await.map_err(ApiError::from)?;
    leptos_axum::redirect(&format!("/workspaces/{workspace_id}/runs/{run_id}"));
    Ok(run)
}

/// Declines a request.
#[server(prefix = "/studio", endpoint = "decline_request")]
pub async fn decline_request(workspace_id: Uuid, run_id: Uuid) -> Result<WorkflowRun, ApiError> {
    let run = crate::server::studio::decline_request(workspace_id, run_id).await.map_err(ApiError::from)?;
    leptos_axum::redirect(&format!("/workspaces/{workspace_id}/runs/{run_id}"));
    Ok(run)
}

/// A workspace's audit log (never values).
#[server(prefix = "/studio", endpoint = "audit_log")]
pub async fn get_audit_log(workspace_id: Uuid, search: Option<String>) -> Result<Vec<AuditEvent>, ApiError> {
    crate::server::studio::audit_log(workspace_id, search).await.map_err(crate::server::studio::fail)
}
