//! Signing in and out, who is signed in, and the workspace list.

use leptos::prelude::*;

use crate::model::{ApiError, CurrentUser, WorkspaceItem};

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
