//! The account page: password, sessions, sign-ins; users for administrators.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{ApiError, AuditEvent, SessionInfo, ShownOnce};

/// Changes the signed-in user's password.
#[server(prefix = "/studio", endpoint = "change_password")]
pub async fn change_password(
    csrf: String,
    current_password: String,
    new_password: String,
) -> Result<ShownOnce, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::change_password(&current_password, &new_password)
        .await
        .map_err(crate::server::web::studio::fail)?;
    Ok(ShownOnce { message: "Password changed. Your other sessions have ended.".into(), secret: None })
}

/// Creates a user (administrators only); answers with a generated password when none is given.
#[server(prefix = "/studio", endpoint = "create_user")]
pub async fn create_user(
    csrf: String,
    username: String,
    password: Option<String>,
    admin: Option<String>,
) -> Result<ShownOnce, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    let generated = crate::server::web::studio::create_user(&username, password, admin.is_some())
        .await
        .map_err(crate::server::web::studio::fail)?;
    let message = match generated {
        Some(_) => format!("User '{username}' created. Copy the generated password now: it is not shown again."),
        None => format!("User '{username}' created."),
    };
    Ok(ShownOnce { message, secret: generated })
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
