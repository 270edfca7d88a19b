//! loopstack-secrets: workspace-scoped secrets for LLM automation.
//!
//! One crate, two builds: with `ssr` it is the server (axum, sqlx, crypto, CLI) and can be
//! mounted into another axum app (`server::api_router`, `server::secrets::SecretService`); with
//! `hydrate` it is the Studio's WASM that hydrates the islands of the server-rendered pages.

// A page's view is one nested type in release builds (debug builds erase them): laying out the
// workspace page's future needs more than the default depth of 128.
#![recursion_limit = "256"]

pub mod app;
pub mod model;
#[cfg(feature = "ssr")]
pub mod server;
pub mod ui;

/// Browser entry, called before the page's islands hydrate (each through its own export, one
/// after another in microtasks): sets up islands mode, then marks the body in a task that runs
/// after them, so tests and scripts can wait for an interactive page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    leptos::prelude::set_timeout(
        || {
            if let Some(body) = leptos::prelude::document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        },
        std::time::Duration::ZERO,
    );
}
