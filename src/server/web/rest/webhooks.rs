//! `/api/v1/workspaces/:ws/webhooks`: register (the signing secret is in this answer only),
//! list, disable or enable, remove, and each endpoint's deliveries, with re-send. A token needs
//! `webhooks:manage`; in the Studio, owners.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use uuid::Uuid;

use crate::model::{CreatedWebhook, Deleted, WebhookDelivery, WebhookInfo, WebhookInput, WebhookUpdate};
use crate::server::domain::Scope;
use crate::server::error::AppError;
use crate::server::web::principal::Principal;
use crate::server::web::rest::extract::{ApiJson, ApiPath};
use crate::server::web::state::AppState;

/// The webhook routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/workspaces/{workspace_id}/webhooks", get(list).post(create))
        .route("/api/v1/workspaces/{workspace_id}/webhooks/{id}", put(update).delete(remove))
        .route("/api/v1/workspaces/{workspace_id}/webhooks/{id}/deliveries", get(deliveries))
        .route("/api/v1/workspaces/{workspace_id}/webhooks/{id}/deliveries/{delivery}/resend", post(resend))
}

/// A workspace's endpoints (never their secrets).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/webhooks", tag = "webhooks",
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    responses((status = 200, body = [WebhookInfo]), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["webhooks:manage"])))]
async fn list(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
) -> Result<Json<Vec<WebhookInfo>>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WebhooksManage).await?;
    Ok(Json(state.webhooks.list(workspace_id).await?))
}

/// Registers an endpoint; the answer carries its signing secret, the only time it is shown.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/webhooks", tag = "webhooks",
    params(("workspace_id" = Uuid, Path, description = "Workspace id")),
    request_body = WebhookInput,
    responses((status = 201, body = CreatedWebhook), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["webhooks:manage"])))]
async fn create(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<(StatusCode, Json<CreatedWebhook>), AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WebhooksManage).await?;
    let created = state.webhooks.create(workspace_id, &input.url, &input.events, &principal.actor()).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Disables (deliveries wait) or re-enables an endpoint.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/webhooks/{id}", tag = "webhooks",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ("id" = Uuid, Path, description = "Webhook id")),
    request_body = WebhookUpdate,
    responses((status = 200, body = WebhookInfo), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["webhooks:manage"])))]
async fn update(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(input): ApiJson<WebhookUpdate>,
) -> Result<Json<WebhookInfo>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WebhooksManage).await?;
    Ok(Json(state.webhooks.set_enabled(workspace_id, id, input.enabled, &principal.actor()).await?))
}

/// Removes an endpoint and its deliveries.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/webhooks/{id}", tag = "webhooks",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 200, body = Deleted), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["webhooks:manage"])))]
async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Deleted>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WebhooksManage).await?;
    state.webhooks.delete(workspace_id, id, &principal.actor()).await?;
    Ok(Json(Deleted { success: true }))
}

/// An endpoint's latest deliveries, newest first: status, attempts, last answer or error.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/webhooks/{id}/deliveries", tag = "webhooks",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ("id" = Uuid, Path, description = "Webhook id")),
    responses((status = 200, body = [WebhookDelivery]), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["webhooks:manage"])))]
async fn deliveries(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Vec<WebhookDelivery>>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WebhooksManage).await?;
    Ok(Json(state.webhooks.deliveries(workspace_id, id).await?))
}

/// Sends a delivery again now, with a fresh day of retries.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/webhooks/{id}/deliveries/{delivery}/resend", tag = "webhooks",
    params(("workspace_id" = Uuid, Path, description = "Workspace id"), ("id" = Uuid, Path, description = "Webhook id"),
        ("delivery" = Uuid, Path, description = "Delivery id")),
    responses((status = 200, body = Deleted), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["webhooks:manage"])))]
async fn resend(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id, delivery)): ApiPath<(Uuid, Uuid, Uuid)>,
) -> Result<Json<Deleted>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::WebhooksManage).await?;
    state.webhooks.resend(workspace_id, id, delivery, &principal.actor()).await?;
    Ok(Json(Deleted { success: true }))
}
