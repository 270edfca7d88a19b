//! loopstack-secrets: workspace-scoped secrets for LLM automation.
//!
//! One crate, two builds: with `ssr` it is the server (axum, sqlx, crypto, CLI) and can be
//! mounted into another axum app (`server::api_router`, `server::secrets::SecretService`); with
//! `hydrate` it is the Studio's WASM that hydrates the server-rendered pages.

pub mod app;
pub mod model;
#[cfg(feature = "ssr")]
pub mod server;
pub mod ui;

/// Browser entry: hydrates the server-rendered page, then marks the body so tests and
/// scripts can wait for an interactive page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
