//! The hidden CSRF field of every Studio form that changes something. The server renders the
//! session's token; the hydrated page reads the same token from the `lss_csrf` cookie, so both
//! render the same field (the session cookie itself stays HttpOnly). Behind TLS the cookie is
//! named `__Host-lss_csrf`.

use leptos::prelude::*;

/// `<input type="hidden" name="csrf" value=...>`
#[component]
pub fn CsrfField() -> impl IntoView {
    view! { <input type="hidden" name="csrf" value=token()/> }
}

#[cfg(feature = "ssr")]
fn token() -> String {
    crate::server::web::studio::csrf_token()
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
fn token() -> String {
    use wasm_bindgen::JsCast;
    let cookies = document().dyn_into::<web_sys::HtmlDocument>().ok().and_then(|d| d.cookie().ok()).unwrap_or_default();
    cookies
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "__Host-lss_csrf" || *name == "lss_csrf")
        .map(|(_, value)| value.to_string())
        .unwrap_or_default()
}

#[cfg(not(any(feature = "ssr", feature = "hydrate")))]
fn token() -> String {
    String::new()
}
