//! The Studio's server functions. Each body runs on the server only and calls
//! `server::studio`, which authorizes exactly as the REST API does.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{ApiError, CurrentUser, WorkspaceItem, WorkspaceSecrets};

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
