//! A secret's history over REST: its versions (never values), rollback, restoring a deleted
//! secret, the deleted secrets that can be restored, and the workspace's check-and-set setting.

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use uuid::Uuid;

use crate::model::{DeletedSecret, RestoreRequest, RollbackRequest, SecretItem, SecretVersion, WorkspaceSettings};
use crate::server::domain::Scope;
use crate::server::error::AppError;
use crate::server::web::principal::Principal;
use crate::server::web::rest::extract::{with_etag, ApiJson, ApiPath, IfMatch};
use crate::server::web::state::AppState;

/// The history routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/workspaces/{workspace_id}/secrets/{id}/versions", get(versions))
        .route("/api/v1/workspaces/{workspace_id}/secrets/{id}/rollback", post(rollback))
        .route("/api/v1/workspaces/{workspace_id}/secrets/restore", post(restore))
        .route("/api/v1/workspaces/{workspace_id}/secrets/deleted", get(deleted))
        .route("/api/v1/workspaces/{workspace_id}/settings", get(settings).put(change_settings))
}

/// A secret's versions, newest first: number, when, by whom, whether it had a value.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/secrets/{id}/versions", tag = "secrets",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ("id" = Uuid, Path, description = "Secret id")),
    responses(
        (status = 200, description = "Versions kept, newest first; never values", body = [SecretVersion]),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:list"])))]
#[tracing::instrument(skip_all, fields(%workspace_id, %id))]
async fn versions(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Vec<SecretVersion>>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsList).await?;
    Ok(Json(state.secrets.versions(workspace_id, id).await?))
}

/// Makes an old version current again, as a new version. With `If-Match`: 412 unless the
/// secret is at that version.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/secrets/{id}/rollback", tag = "secrets",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ("id" = Uuid, Path, description = "Secret id"),
        ("If-Match" = Option<String>, Header, description = "Check-and-set: the version the write expects, quoted (\"3\")")),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "The secret at its new version", body = SecretItem),
        (status = 400, body = crate::model::ErrorBody), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody),
        (status = 404, description = "No such secret, or that version is no longer kept", body = crate::model::ErrorBody),
        (status = 412, body = crate::model::ErrorBody), (status = 428, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:write"])))]
#[tracing::instrument(skip_all, fields(%workspace_id, %id))]
async fn rollback(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
    IfMatch(expected): IfMatch,
    ApiJson(input): ApiJson<RollbackRequest>,
) -> Result<impl IntoResponse, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsWrite).await?;
    Ok(with_etag(state.secrets.rollback(workspace_id, id, input.version, expected, &principal.actor()).await?))
}

/// Brings back the secret with `key` deleted most recently within the retention window, as it
/// was (its id, version and value).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/secrets/restore", tag = "secrets",
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    request_body = RestoreRequest,
    responses(
        (status = 200, description = "The restored secret", body = SecretItem),
        (status = 400, body = crate::model::ErrorBody), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody),
        (status = 404, description = "No secret with this key was deleted within the window", body = crate::model::ErrorBody),
        (status = 409, description = "A secret with this key exists", body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:write"])))]
#[tracing::instrument(skip_all, fields(%workspace_id))]
async fn restore(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<RestoreRequest>,
) -> Result<impl IntoResponse, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsWrite).await?;
    Ok(with_etag(state.secrets.restore(workspace_id, &input.key, &principal.actor()).await?))
}

/// The secrets deleted within the retention window, newest first: what `restore` can bring back.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/secrets/deleted", tag = "secrets",
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, body = [DeletedSecret]), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:list"])))]
#[tracing::instrument(skip_all, fields(%workspace_id))]
async fn deleted(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
) -> Result<Json<Vec<DeletedSecret>>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsList).await?;
    Ok(Json(state.secrets.deleted(workspace_id).await?))
}

/// The workspace's settings.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/settings", tag = "workspaces",
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses(
        (status = 200, body = WorkspaceSettings), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:list"])))]
async fn settings(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
) -> Result<Json<WorkspaceSettings>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsList).await?;
    let require_check_and_set = state.secrets.check_and_set_required(workspace_id).await?;
    Ok(Json(WorkspaceSettings { require_check_and_set }))
}

/// Changes the workspace's settings: only its owners, signed in (a token cannot loosen the
/// rules it works under).
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/settings", tag = "workspaces",
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    request_body = WorkspaceSettings,
    responses(
        (status = 200, body = WorkspaceSettings), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody)))]
async fn change_settings(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<WorkspaceSettings>,
) -> Result<Json<WorkspaceSettings>, AppError> {
    principal.authorize_owner(&state.db, workspace_id).await?;
    state.secrets.require_check_and_set(workspace_id, input.require_check_and_set, &principal.actor()).await?;
    Ok(Json(input))
}
