//! The REST API: each resource owns its `router()`, merged here with the OpenAPI document,
//! health checks and a JSON 404/405 for everything under `/api`.

pub mod egress;
pub mod extract;
pub mod openapi;
pub mod secrets;
pub mod tools;
pub mod values;
pub mod versions;
pub mod webhooks;
pub mod workflows;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::server::error::AppError;
use crate::server::web::state::AppState;

pub use crate::server::web::http::BODY_LIMIT_BYTES;

/// Every API route. With the feature toggle off, the secrets routes are not mounted.
pub fn router(enabled: bool) -> Router<AppState> {
    let mut api = Router::new()
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if enabled {
        api = api
            .merge(secrets::router())
            .merge(egress::router())
            .merge(values::router())
            .merge(versions::router())
            .merge(webhooks::router())
            .merge(tools::router())
            .merge(workflows::router());
    }
    api.route("/api/v1", get(not_found))
        .route("/api/v1/{*rest}", axum::routing::any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT_BYTES))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "The process answers", body = Object)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, description = "The database answers", body = Object), (status = 503, body = crate::model::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.db.ping().await {
        (StatusCode::OK, Json(serde_json::json!({ "status": "ok" }))).into_response()
    } else {
        AppError::Unavailable(sqlx::Error::PoolTimedOut).into_response()
    }
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn method_not_allowed() -> impl IntoResponse {
    let body = crate::model::ErrorBody {
        error: crate::model::ApiError::new("method_not_allowed", "this method is not allowed on this route"),
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body))
}
