//! The tool API: definitions for agents and calls scoped to a workspace.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

use crate::model::{ToolDefinition, ToolResult};
use crate::server::domain::Scope;
use crate::server::error::AppError;
use crate::server::service::tools;
use crate::server::service::waiting::Heartbeat;
use crate::server::web::principal::Principal;
use crate::server::web::rest::extract::{ApiJson, ApiPath};
use crate::server::web::state::AppState;

/// The tool routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tools", get(definitions))
        .route("/api/v1/workspaces/{workspace_id}/tools/{name}", post(call))
}

/// The tool definitions with their JSON Schema input schemas.
#[utoipa::path(get, path = "/api/v1/tools", tag = "tools",
    responses((status = 200, body = [ToolDefinition]), (status = 401, body = crate::model::ErrorBody)),
    security(("bearer" = [])))]
async fn definitions(_principal: Principal) -> Json<Vec<ToolDefinition>> {
    Json(tools::definitions())
}

/// Calls a tool. The body is `{"args": {...}, "parent"?: run id}` or the arguments object.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/tools/{name}", tag = "tools",
    params(("workspace_id" = Uuid, Path), ("name" = String, Path)),
    request_body(content = Object),
    responses((status = 200, body = ToolResult), (status = 400, body = crate::model::ErrorBody),
        (status = 401, body = crate::model::ErrorBody), (status = 403, body = crate::model::ErrorBody),
        (status = 404, body = crate::model::ErrorBody),
        (status = 429, description = "Too many runs started in this workspace in the last minute", body = crate::model::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a start is allowed again")))),
    security(("bearer" = ["tools:call"])))]
#[tracing::instrument(skip_all, fields(%workspace_id, %name))]
async fn call(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath((workspace_id, name)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, AppError> {
    principal.authorize(&state.db, workspace_id, tools::required_scope(&name)).await?;
    // A wait holds a stream slot, like the long-poll, and re-checks the credential as it goes.
    let _slot = if name == "wait_for_secrets" { Some(state.streams.open(principal.credential_id())?) } else { None };
    let mut recheck = Recheck { principal: &principal, state: &state, workspace_id };
    let actor = principal.actor();
    let reply = tools::call_for_rest(&state.secrets, &state.workflows, workspace_id, &name, body, &actor, &mut recheck);
    Ok(match reply.await? {
        tools::Reply::Result(result) => Json(result).into_response(),
        tools::Reply::Text(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
    })
}

/// The heartbeat of a waiting REST call: the credential must still hold.
struct Recheck<'a> {
    principal: &'a Principal,
    state: &'a AppState,
    workspace_id: Uuid,
}

impl Heartbeat for Recheck<'_> {
    async fn beat(&mut self, _waited: Duration, _limit: Duration) -> Result<(), AppError> {
        self.principal.recheck(self.state, self.workspace_id, Scope::ToolsCall).await
    }
}
