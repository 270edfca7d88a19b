//! `/api/v1/workspaces/:workspace_id/secrets/:id/egress`: where a secret may be sent by
//! `http_request`. Reading it needs `secrets:list`, changing it `secrets:write`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use uuid::Uuid;

use crate::model::{Egress, EgressInput};
use crate::server::domain::Scope;
use crate::server::error::AppError;
use crate::server::service::usage;
use crate::server::web::principal::Principal;
use crate::server::web::rest::extract::{ApiJson, ApiPath};
use crate::server::web::state::AppState;

/// The egress routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/workspaces/{workspace_id}/secrets/{id}/egress", get(show).put(change))
}

/// The origins a secret may be sent to.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/secrets/{id}/egress", tag = "secrets",
    params(("workspace_id" = Uuid, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = Egress), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:list"])))]
async fn show(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
) -> Result<Json<Egress>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsList).await?;
    Ok(Json(usage::egress(&state.db, workspace_id, id).await?))
}

/// Replaces the origins a secret may be sent to (`{"hosts": []}`: nowhere).
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/secrets/{id}/egress", tag = "secrets",
    params(("workspace_id" = Uuid, Path), ("id" = Uuid, Path)),
    request_body = EgressInput,
    responses((status = 200, body = Egress), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody), (status = 413, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:write"])))]
async fn change(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, id)): ApiPath<(Uuid, Uuid)>,
    ApiJson(input): ApiJson<EgressInput>,
) -> Result<Json<Egress>, AppError> {
    principal.authorize(&state.db, workspace_id, Scope::SecretsWrite).await?;
    Ok(Json(usage::set_egress(&state.db, workspace_id, id, &input.hosts, &principal.actor()).await?))
}
