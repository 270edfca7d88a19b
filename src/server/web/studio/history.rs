//! The Studio's side of a secret's history: its versions, rolling back, restoring a deleted
//! secret, and the owners' check-and-set setting; authorized as the REST routes are.

use uuid::Uuid;

use super::{authorized, signed_in, state};
use crate::model::{SecretHistory, SecretItem, WorkspaceSettings};
use crate::server::domain::Scope;
use crate::server::error::AppError;
use crate::server::web::principal::Principal;

/// One secret with its versions (never values).
pub async fn secret_history(workspace_id: Uuid, id: Uuid) -> Result<SecretHistory, AppError> {
    let state = state();
    let user = signed_in().await?;
    let workspace = user.workspace(&state.db, workspace_id).await?;
    Principal::User(user).authorize(&state.db, workspace_id, Scope::SecretsList).await?;
    let secret = crate::server::store::secret_item(&state.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
    let versions = state.secrets.versions(workspace_id, id).await?;
    Ok(SecretHistory { workspace, secret, versions })
}

/// Makes an old version current again, as a new version; refused (412) when the secret is no
/// longer at `expected`.
pub async fn rollback_secret(
    workspace_id: Uuid,
    id: Uuid,
    version: i64,
    expected: Option<i64>,
) -> Result<SecretItem, AppError> {
    let principal = authorized(workspace_id, Scope::SecretsWrite).await?;
    state().secrets.rollback(workspace_id, id, version, expected, &principal.actor()).await
}

/// Brings back a deleted secret by key.
pub async fn restore_secret(workspace_id: Uuid, key: &str) -> Result<SecretItem, AppError> {
    let principal = authorized(workspace_id, Scope::SecretsWrite).await?;
    state().secrets.restore(workspace_id, key, &principal.actor()).await
}

/// The workspace's settings.
pub async fn workspace_settings(workspace_id: Uuid) -> Result<WorkspaceSettings, AppError> {
    authorized(workspace_id, Scope::SecretsList).await?;
    Ok(WorkspaceSettings { require_check_and_set: state().secrets.check_and_set_required(workspace_id).await? })
}

/// Changes the workspace's settings (owners only).
pub async fn change_workspace_settings(
    workspace_id: Uuid,
    settings: WorkspaceSettings,
) -> Result<WorkspaceSettings, AppError> {
    let state = state();
    let principal = Principal::User(signed_in().await?);
    principal.authorize_owner(&state.db, workspace_id).await?;
    state.secrets.require_check_and_set(workspace_id, settings.require_check_and_set, &principal.actor()).await?;
    Ok(settings)
}
