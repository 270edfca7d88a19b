//! A workspace's secrets page: one page of keys, and adding, updating and deleting secrets.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{ApiError, Egress, SecretItem, WorkspaceSecrets};

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

/// Replaces a secret's value; with `expected_version` (the version the page showed), refused
/// when it changed since.
#[server(prefix = "/studio", endpoint = "update_secret")]
pub async fn update_secret(
    csrf: String,
    workspace_id: Uuid,
    id: Uuid,
    value: String,
    expected_version: Option<i64>,
) -> Result<SecretItem, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::update_secret(workspace_id, id, value, expected_version)
        .await
        .map_err(crate::server::web::studio::fail)
}

/// Replaces where a secret may be sent by `http_request` (one origin a line; empty: nowhere).
#[server(prefix = "/studio", endpoint = "set_egress")]
pub async fn set_egress(csrf: String, workspace_id: Uuid, id: Uuid, hosts: String) -> Result<Egress, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::set_egress(workspace_id, id, &hosts).await.map_err(crate::server::web::studio::fail)
}

/// Deletes a secret (it can be restored for a while); with `expected_version`, refused when it
/// changed since.
#[server(prefix = "/studio", endpoint = "delete_secret")]
pub async fn delete_secret(
    csrf: String,
    workspace_id: Uuid,
    id: Uuid,
    expected_version: Option<i64>,
) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::delete_secret(workspace_id, id, expected_version)
        .await
        .map_err(crate::server::web::studio::fail)
}
