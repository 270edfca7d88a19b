//! CSRF protection of the Studio's server functions that change something: besides the
//! same-origin check, a cookie-authenticated call must carry the session's CSRF token in the
//! form field `csrf` (every Studio form renders it). Reads and sign-in are exempt: reads change
//! nothing, and sign-in has no session yet (it keeps the origin check).

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::server::auth;
use crate::server::error::AppError;
use crate::server::sessions;
use crate::server::state::AppState;

/// Server functions that only read (called by page resources without a form).
const READ_ONLY: &[&str] = &[
    "current_user",
    "list_workspaces",
    "workspace_secrets",
    "run",
    "audit_log",
    "tokens",
    "members",
    "my_sign_ins",
    "my_sessions",
    "sign_in",
];

/// Largest form body the guard reads (the same cap as every body).
const MAX_FORM_BYTES: usize = crate::server::http::BODY_LIMIT_BYTES;

/// Middleware over the whole app; it only looks at `/studio/{function}`.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(function) = request.uri().path().strip_prefix("/studio/").map(str::to_string) else {
        return next.run(request).await;
    };
    let secure = sessions::is_secure(request.headers(), state.config.secure_cookies);
    let Some(session) = sessions::session_cookie_value(request.headers(), secure) else {
        return next.run(request).await;
    };
    if request.method() != axum::http::Method::POST || READ_ONLY.contains(&function.as_str()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return refuse(AppError::PayloadTooLarge("request body is too large".into()));
    };
    let presented = form_field(&bytes, "csrf");
    if !presented.is_some_and(|token| auth::csrf_matches(&session, &token)) {
        return refuse(AppError::Forbidden("missing or invalid CSRF token; reload the page and try again".into()));
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Answers like a failed server function: its status and the `ApiError` JSON.
fn refuse(err: AppError) -> Response {
    (err.status_code(), Json(err.to_api_error())).into_response()
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}
