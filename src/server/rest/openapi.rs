//! The OpenAPI document, generated from the same types and handlers that serve the API.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::model::{ApiError, Deleted, ErrorBody, Event, Pending, RunDocument, RunStatus, SecretInput, SecretItem, SecretUpdate, ToolDefinition, ToolResult, WorkflowRun};

/// The API description served at `/api/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "loopstack-secrets", description = "Workspace-scoped secrets for LLM automation. No response ever carries a secret value."),
    paths(
        crate::server::rest::secrets::list,
        crate::server::rest::secrets::create,
        crate::server::rest::secrets::upsert,
        crate::server::rest::secrets::update,
        crate::server::rest::secrets::remove,
        crate::server::rest::tools::definitions,
        crate::server::rest::tools::call,
        crate::server::rest::workflows::start,
        crate::server::rest::workflows::list,
        crate::server::rest::workflows::read,
        crate::server::rest::workflows::fire,
        crate::server::rest::workflows::cancel,
        crate::server::rest::workflows::wait,
        crate::server::rest::workflows::events,
    ),
    components(schemas(SecretItem, SecretInput, SecretUpdate, Deleted, ErrorBody, ApiError, WorkflowRun, RunDocument, RunStatus,
        ToolDefinition, ToolResult, Pending, Event, crate::server::rest::workflows::StartRun)),
    modifiers(&BearerAuth),
    tags((name = "secrets", description = "Keys and hasValue flags; values are write-only"),
        (name = "tools", description = "What an LLM agent may call; never returns a value"),
        (name = "workflows", description = "Persisted runs, secret requests, long-polls and events"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("lss_<id>_<secret>").build()),
        );
    }
}

/// `GET /api/v1/openapi.json`
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
