//! The OpenAPI document, generated from the same types and handlers that serve the API.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::model::{ApiError, Deleted, ErrorBody, SecretInput, SecretItem, SecretUpdate};

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
    ),
    components(schemas(SecretItem, SecretInput, SecretUpdate, Deleted, ErrorBody, ApiError)),
    modifiers(&BearerAuth),
    tags((name = "secrets", description = "Keys and hasValue flags; values are write-only"))
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
