//! The web layer: the serve loop and headers (`http`), who is calling (`principal`, `cookies`,
//! `csrf`), the REST resources (`rest`), the icon (`favicon`), the Studio's server-function adapters (`studio`),
//! limits on requests that stay open (`streams`), and `AppState`, which assembles the services
//! for all of them. Handlers authorize, parse input into domain types and call services; they
//! write no SQL and decide no rule of the product.

pub mod cookies;
pub mod csrf;
pub mod favicon;
pub mod http;
pub mod mcp;
pub mod principal;
pub mod rest;
pub mod state;
pub mod streams;
pub mod studio;

use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::{shell, App};
use state::AppState;

/// The REST routes alone (secrets, OpenAPI, health), for mounting into another axum app.
pub fn api_router(state: AppState) -> Router {
    let enabled = state.config.enabled;
    let body_timeout = Duration::from_secs(state.config.body_timeout_secs);
    let mut routes = rest::router(enabled);
    if enabled {
        routes = routes.merge(mcp::router(&state));
    }
    routes
        .layer(axum::middleware::from_fn(http::limit_body))
        .layer(axum::middleware::from_fn(http::one_outbox_check))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn_with_state(state.static_files.clone(), http::response_headers))
        .with_state(state)
}

/// The whole application: REST API, Studio pages, server functions and static files.
pub fn app_router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let context_state = state.clone();
    let page_context = move || {
        provide_context(context_state.clone());
        http::provide_page_nonce();
        studio::provide_csrf_token();
    };
    let shell_options = state.leptos_options.clone();
    let body_timeout = Duration::from_secs(state.config.body_timeout_secs);
    let csrf_guard = csrf::CsrfGuard { state: state.clone(), exempt: crate::ui::server_fns::WITHOUT_CSRF_TOKEN };
    let mut api = rest::router(state.config.enabled);
    if state.config.enabled {
        api = api.merge(mcp::router(&state));
    }
    Router::new()
        .merge(api)
        .merge(favicon::router())
        .leptos_routes_with_context(&state, routes, page_context.clone(), move || shell(shell_options.clone()))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(page_context, shell))
        .layer(axum::middleware::from_fn(http::server_fn_argument_errors))
        .layer(axum::middleware::from_fn_with_state(csrf_guard, csrf::guard))
        .layer(axum::middleware::from_fn(http::limit_body))
        .layer(axum::middleware::from_fn(http::one_outbox_check))
        .layer(CompressionLayer::new().compress_when(http::compress_static_only()))
        .layer(RequestBodyTimeoutLayer::new(body_timeout))
        .layer(axum::middleware::from_fn_with_state(state.static_files.clone(), http::response_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
