//! `GET /api/v1/workspaces/:workspace_id/secrets/values?keys=A,B`: the values themselves, for
//! `run` and `export --server` on a machine with no database and no master key. Only a token
//! with `secrets:read` reaches it (no session, no other scope); every value read is audited
//! with the token; the answer is never cached.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

use crate::server::domain::Scope;
use crate::server::error::AppError;
use crate::server::web::principal::Principal;
use crate::server::web::rest::extract::ApiPath;
use crate::server::web::state::AppState;

/// The values route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/workspaces/{workspace_id}/secrets/values", get(values))
}

/// Which values.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ValuesQuery {
    /// Comma-separated keys; all of the workspace's when absent. Keys that do not exist are
    /// left out of the answer.
    pub keys: Option<String>,
}

/// The values of a workspace's secrets, by key: `{"KEY": "value", ...}`.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/secrets/values", tag = "secrets",
    params(("workspace_id" = Uuid, Path), ValuesQuery),
    responses((status = 200, description = "Values by key (secrets:read only; audited per key)", body = Object),
        (status = 400, body = crate::model::ErrorBody), (status = 401, body = crate::model::ErrorBody),
        (status = 403, body = crate::model::ErrorBody), (status = 404, body = crate::model::ErrorBody)),
    security(("bearer" = ["secrets:read"])))]
async fn values(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(workspace_id): ApiPath<Uuid>,
    Query(query): Query<ValuesQuery>,
) -> Result<impl IntoResponse, AppError> {
    if !matches!(principal, Principal::Token(_)) {
        return Err(AppError::Forbidden("values are read with an API token that has secrets:read".into()));
    }
    principal.authorize(&state.db, workspace_id, Scope::SecretsRead).await?;
    let keys: Vec<String> = match query.keys.as_deref() {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| state.secrets.existing_key(k).map(|key| key.as_str().to_string()))
            .collect::<Result<_, _>>()?,
        // Every key the workspace can use: its own over the operator's global ones.
        None => state.secrets.key_states(workspace_id).await?.into_iter().map(|s| s.key).collect(),
    };
    let read = state.secrets.read_values(workspace_id, &keys, &principal.actor()).await?;
    let map: serde_json::Map<String, serde_json::Value> =
        read.iter().map(|(key, value)| (key.clone(), serde_json::Value::String(value.expose().to_string()))).collect();
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(map)))
}
