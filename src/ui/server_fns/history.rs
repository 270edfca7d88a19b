//! A secret's history page and the workspace's settings: versions, rollback, restore, and the
//! owners' check-and-set switch.

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{ApiError, SecretHistory, SecretItem, WorkspaceSettings};

/// A secret and its versions (never values).
#[server(prefix = "/studio", endpoint = "secret_history")]
pub async fn get_secret_history(workspace_id: Uuid, id: Uuid) -> Result<SecretHistory, ApiError> {
    crate::server::web::studio::secret_history(workspace_id, id).await.map_err(crate::server::web::studio::fail)
}

/// Makes `version` current again as a new version; refused when the secret is no longer at
/// `expected_version`.
#[server(prefix = "/studio", endpoint = "rollback_secret")]
pub async fn rollback_secret(
    csrf: String,
    workspace_id: Uuid,
    id: Uuid,
    version: i64,
    expected_version: Option<i64>,
) -> Result<SecretItem, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::rollback_secret(workspace_id, id, version, expected_version)
        .await
        .map_err(crate::server::web::studio::fail)
}

/// Brings back a secret deleted within the retention window.
#[server(prefix = "/studio", endpoint = "restore_secret")]
pub async fn restore_secret(csrf: String, workspace_id: Uuid, key: String) -> Result<SecretItem, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::restore_secret(workspace_id, &key).await.map_err(crate::server::web::studio::fail)
}

/// The workspace's settings.
#[server(prefix = "/studio", endpoint = "workspace_settings")]
pub async fn get_workspace_settings(workspace_id: Uuid) -> Result<WorkspaceSettings, ApiError> {
    crate::server::web::studio::workspace_settings(workspace_id).await.map_err(crate::server::web::studio::fail)
}

/// Changes the workspace's settings (owners); a checkbox: present means on.
#[server(prefix = "/studio", endpoint = "change_workspace_settings")]
pub async fn change_workspace_settings(
    csrf: String,
    workspace_id: Uuid,
    require_check_and_set: Option<String>,
) -> Result<WorkspaceSettings, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    let settings = WorkspaceSettings { require_check_and_set: require_check_and_set.is_some() };
    crate::server::web::studio::change_workspace_settings(workspace_id, settings)
        .await
        .map_err(crate::server::web::studio::fail)
}
