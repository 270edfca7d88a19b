//! `/api/v1/workspaces/:workspace_id/secrets`: list keys, create, upsert, update, delete.
//! Every handler authenticates (the `Principal` extractor), authorizes the workspace and scope,
//! then calls `SecretService`. No response carries a value.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Json, Router};
use uuid::Uuid;

use crate::model::{Deleted, SecretInput, SecretItem, SecretUpdate};
use crate::server::domain::Scope;
use crate::server::error::AppError;
use crate::server::web::principal::Principal;
use crate::server::web::rest::extract::{with_etag, ApiJson, ApiPath, ApiQuery, IfMatch};
use crate::server::web::state::AppState;

/// The secrets routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/workspaces/{workspace_id}/secrets", get(list).post(create))
        .route("/api/v1/workspaces/{workspace_id}/secrets/upsert", put(upsert))
        .route("/api/v1/workspaces/{workspace_id}/secrets/{id}", put(update).delete(remove))
}

/// Most keys one page of the list may hold.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// A page of the list: the keys after `after` (a cursor: the last key of the page before),
/// at most `limit` of them. Without either, the whole list.
#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct ListPage {
    /// At most this many secrets (1 to 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only keys that sort after this one: the last key of the previous page.
    #[param(pattern = "^[A-Za-z_][A-Za-z0-9_]*$")]
    pub after: Option<String>,
}

/// Lists a workspace's secrets: keys and `hasValue`, sorted by key; pages with `limit` and
/// `after`.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/secrets", tag = "secrets",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ListPage),
    responses(
        (status = 200, description = "Keys and whether each has a value; never values", body = [SecretItem]),
        (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:list"])))]
#[tracing::instrument(skip_all, fields(%workspace_id))]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<ListPage>,
) -> Result<impl IntoResponse, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsList).await?;
    if page.limit.is_some_and(|limit| !(1..=MAX_LIST_LIMIT).contains(&limit)) {
        return Err(AppError::BadRequest(format!("limit must be between 1 and {MAX_LIST_LIMIT}")));
    }
    let after = page.after.as_deref().map(|key| state.secrets.existing_key(key)).transpose()?;
    let json = state.secrets.list_json(workspace_id, after.as_ref(), page.limit).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], json))
}

/// Creates a secret; 409 when the key exists.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/secrets", tag = "secrets",
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    request_body = SecretInput,
    responses(
        (status = 201, body = SecretItem, headers(("ETag" = String, description = "The version, quoted"))), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody), (status = 409, body = crate::model::ErrorBody),
        (status = 413, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:write"])))]
#[tracing::instrument(skip_all, fields(%workspace_id))]
async fn create(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<SecretInput>,
) -> Result<impl IntoResponse, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsWrite).await?;
    let key = state.secrets.parse_key(&input.key)?;
    let value = state.secrets.parse_value(input.value)?;
    let item = state.secrets.create(workspace_id, &key, &value, &principal.actor()).await?;
    Ok((StatusCode::CREATED, with_etag(item)))
}

/// Creates or updates a secret by key; atomic under concurrent calls. With `If-Match` it is a
/// check-and-set: 412 unless the secret is at that version (a key not stored yet is at none).
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/secrets/upsert", tag = "secrets",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ("If-Match" = Option<String>, Header, description = "Check-and-set: the version the write expects, quoted (\"3\")")),
    request_body = SecretInput,
    responses(
        (status = 200, body = SecretItem, headers(("ETag" = String, description = "The version, quoted"))), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody), (status = 412, body = crate::model::ErrorBody),
        (status = 413, body = crate::model::ErrorBody), (status = 428, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:write"])))]
#[tracing::instrument(skip_all, fields(%workspace_id))]
async fn upsert(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
    IfMatch(expected): IfMatch,
    ApiJson(input): ApiJson<SecretInput>,
) -> Result<impl IntoResponse, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsWrite).await?;
    let key = state.secrets.parse_key(&input.key)?;
    let value = state.secrets.parse_value(input.value)?;
    Ok(with_etag(state.secrets.upsert_if(workspace_id, &key, &value, expected, &principal.actor()).await?))
}

/// Replaces a secret's value as a new version; an absent `value` leaves it as it is. With
/// `If-Match` it is a check-and-set: 412 unless the secret is at that version.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/secrets/{id}", tag = "secrets",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ("id" = Uuid, Path, description = "Secret id"), ("If-Match" = Option<String>, Header, description = "Check-and-set: the version the write expects, quoted (\"3\")")),
    request_body = SecretUpdate,
    responses(
        (status = 200, body = SecretItem, headers(("ETag" = String, description = "The version, quoted"))), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody), (status = 412, body = crate::model::ErrorBody),
        (status = 413, body = crate::model::ErrorBody), (status = 428, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:write"])))]
#[tracing::instrument(skip_all, fields(%workspace_id, %id))]
async fn update(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
    IfMatch(expected): IfMatch,
    ApiJson(input): ApiJson<SecretUpdate>,
) -> Result<impl IntoResponse, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsWrite).await?;
    let value = input.value.map(|v| state.secrets.parse_value(v)).transpose()?;
    Ok(with_etag(state.secrets.update_if(workspace_id, id, value.as_ref(), expected, &principal.actor()).await?))
}

/// Deletes a secret; its versions stay restorable for the retention window
/// (`POST .../secrets/restore`). With `If-Match`: 412 unless the secret is at that version.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/secrets/{id}", tag = "secrets",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ("id" = Uuid, Path, description = "Secret id"), ("If-Match" = Option<String>, Header, description = "Check-and-set: the version the write expects, quoted (\"3\")")),
    responses(
        (status = 200, body = Deleted), (status = 400, body = crate::model::ErrorBody), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody),
        (status = 412, body = crate::model::ErrorBody), (status = 428, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:write"])))]
#[tracing::instrument(skip_all, fields(%workspace_id, %id))]
async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
    IfMatch(expected): IfMatch,
) -> Result<Json<Deleted>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsWrite).await?;
    state.secrets.delete_if(workspace_id, id, expected, &principal.actor()).await?;
    Ok(Json(Deleted { success: true }))
}
