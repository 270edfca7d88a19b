//! The OpenAPI document, generated from the same types and handlers that serve the API.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::model::{
    ApiError, CreatedBy, CreatedWebhook, Deleted, DeletedSecret, Egress, EgressInput, ErrorBody, Event, Pending,
    RequestedKey, RestoreRequest, RollbackRequest, RunDocument, RunStatus, SecretInput, SecretItem, SecretKeyState,
    SecretRequest, SecretUpdate, SecretVersion, ToolDefinition, ToolResult, WebhookDelivery, WebhookInfo, WebhookInput,
    WebhookUpdate, WorkflowRun, WorkspaceSettings,
};

/// The API description served at `/api/v1/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "loopstack-secrets", description = "Workspace-scoped secrets for LLM automation. No response ever carries a secret value."),
    paths(
        crate::server::web::rest::secrets::list,
        crate::server::web::rest::secrets::create,
        crate::server::web::rest::secrets::upsert,
        crate::server::web::rest::secrets::update,
        crate::server::web::rest::secrets::remove,
        crate::server::web::rest::versions::versions,
        crate::server::web::rest::versions::rollback,
        crate::server::web::rest::versions::restore,
        crate::server::web::rest::versions::deleted,
        crate::server::web::rest::versions::settings,
        crate::server::web::rest::versions::change_settings,
        crate::server::web::rest::webhooks::list,
        crate::server::web::rest::webhooks::create,
        crate::server::web::rest::webhooks::update,
        crate::server::web::rest::webhooks::remove,
        crate::server::web::rest::webhooks::deliveries,
        crate::server::web::rest::webhooks::resend,
        crate::server::web::rest::egress::show,
        crate::server::web::rest::egress::change,
        crate::server::web::rest::values::values,
        crate::server::web::rest::tools::definitions,
        crate::server::web::rest::tools::call,
        crate::server::web::rest::workflows::start,
        crate::server::web::rest::workflows::list,
        crate::server::web::rest::workflows::read,
        crate::server::web::rest::workflows::fire,
        crate::server::web::rest::workflows::cancel,
        crate::server::web::rest::workflows::wait,
        crate::server::web::rest::workflows::events,
        crate::server::web::rest::healthz,
        crate::server::web::rest::readyz,
        serve,
    ),
    components(schemas(SecretItem, SecretInput, SecretUpdate, Deleted, Egress, EgressInput, ErrorBody, ApiError, WorkflowRun, RunDocument, RunStatus,
        CreatedBy, SecretRequest, RequestedKey, ToolDefinition, ToolResult, SecretKeyState, Pending, Event,
        SecretVersion, DeletedSecret, RollbackRequest, RestoreRequest, WorkspaceSettings,
        WebhookInput, WebhookUpdate, CreatedWebhook, WebhookInfo, WebhookDelivery,
        crate::server::web::rest::workflows::StartRun)),
    modifiers(&BearerAuth, &SharedErrors),
    tags((name = "secrets", description = "Keys and hasValue flags; values are write-only"),
        (name = "workspaces", description = "A workspace's settings"),
        (name = "webhooks", description = "Signed POSTs of a workspace's events (never a value), retried for a day"),
        (name = "tools", description = "What an LLM agent may call; never returns a value"),
        (name = "workflows", description = "Persisted runs, secret requests, long-polls and events"),
        (name = "service", description = "Health, readiness and this document"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("lss_<id>_<secret>").build(),
            ),
        );
    }
}

/// The answers any operation can give besides its own, added to every operation so the document
/// lists each status the server may send: 401 where a token is needed; 400, 408 and 413 where a
/// body is read; 503 while the database is away and 500 for a fault, on every route that
/// reads it.
struct SharedErrors;

impl Modify for SharedErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description));
                };
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add("401", "No or bad credentials");
                }
                if operation.request_body.is_some() {
                    add("400", "Malformed body, unknown fields or a broken rule; the message says which");
                    add("408", "The body was not received in time");
                    add("413", "The body or a value is over its limit");
                }
                if path.starts_with("/api/v1/workspaces") || path == "/readyz" {
                    add("503", "The database is not available; retry shortly");
                    add("500", "A fault on the server; the cause is logged, never sent");
                }
            }
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build().into()
}

/// `GET /api/v1/openapi.json`
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json")))]
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
