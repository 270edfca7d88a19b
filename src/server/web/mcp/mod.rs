//! The MCP server: the agent tools for MCP clients, on the official SDK (`rmcp`). Streamable
//! HTTP at `/mcp` (a bearer token with `tools:call`; the token's workspace is the only one it
//! sees) and stdio for `loopstack-secrets mcp`. It speaks 2026-07-28 (stateless, per-request
//! metadata) and 2025-11-25 (sessions), negotiated per request. Like the REST handlers it
//! authorizes and calls services; it never sees a value.

mod elicit;
mod server;

pub use server::{Caller, McpServer};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;

use crate::server::domain::Scope;
use crate::server::error::AppError;
use crate::server::service::access;
use crate::server::web::principal::Principal;
use crate::server::web::state::AppState;

/// The path of the streamable HTTP endpoint.
pub const PATH: &str = "/mcp";

/// The `/mcp` route: every request is authenticated by [`authenticate`] before the SDK's
/// transport sees it.
pub fn router(state: &AppState) -> Router<AppState> {
    // One server, cloned for each session or stateless request: its request-state codec and
    // kept answers are made once.
    let server = McpServer::new(state.clone(), None);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        transport_config(state),
    );
    Router::new().route_service(PATH, service).layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
}

/// The transport's settings: the same body cap as every route; `Host` must be this server
/// (loopback or the public URL's host), and a browser `Origin` must be the public URL's.
fn transport_config(state: &AppState) -> StreamableHttpServerConfig {
    let public = state.config.public_url();
    let public_host = public.split_once("://").map(|(_, rest)| rest).unwrap_or(&public).to_string();
    let host_only = public_host.rsplit_once(':').map(|(host, _)| host.to_string()).unwrap_or(public_host.clone());
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string(), host_only])
        .with_allowed_origins([public])
        .enforce_origin_validation();
    config.max_request_body_bytes = crate::server::web::http::BODY_LIMIT_BYTES;
    config
}

/// Authenticates an MCP request: a bearer token that may call tools. No or a bad token is a
/// 401 with `WWW-Authenticate: Bearer`; a token without `tools:call` is a 403 naming the
/// scope. The caller rides in the request's extensions to the handler.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_string());
    let Some(token) = token else {
        return challenge(AppError::Unauthorized, "Bearer realm=\"loopstack-secrets\"");
    };
    let principal = match access::token_principal(&state.db, &token).await {
        Ok(principal) => principal,
        Err(err) => return challenge(err, "Bearer realm=\"loopstack-secrets\", error=\"invalid_token\""),
    };
    let workspace_id = principal.workspace_id;
    let principal = Principal::Token(principal);
    if let Err(err) = principal.authorize(&state.db, workspace_id, Scope::ToolsCall).await {
        return challenge(
            err,
            "Bearer realm=\"loopstack-secrets\", error=\"insufficient_scope\", scope=\"tools:call\"",
        );
    }
    request.extensions_mut().insert(Caller::remote(workspace_id, principal));
    next.run(request).await
}

/// An error answer with its `WWW-Authenticate` challenge.
fn challenge(err: AppError, header_value: &'static str) -> Response {
    let status = err.status_code();
    let mut response = err.into_response();
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(header_value));
    }
    response
}
