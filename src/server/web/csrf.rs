//! CSRF protection of the Studio's server functions that change something: besides the
//! same-origin check, a cookie-authenticated call must carry the session's CSRF token in the
//! form field `csrf` (every Studio form renders it). The paths exempt from it (reads, which
//! change nothing, and sign-in, which has no session yet and keeps the origin check) are named
//! beside the functions (`ui::server_fns::WITHOUT_CSRF_TOKEN`) and handed to the guard. Also here: the token
//! itself (derived from the session) and the same-origin rule for every cookie-authenticated
//! write, REST included.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use axum::http::{header, HeaderMap, Method};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::server::error::AppError;
use crate::server::keys::passwords::constant_time_eq;
use crate::server::web::cookies;
use crate::server::web::state::AppState;

/// Largest form body the guard reads (the same cap as every body).
const MAX_FORM_BYTES: usize = crate::server::web::http::BODY_LIMIT_BYTES;

/// What the guard needs: the state, and the server-function paths that need no token.
#[derive(Clone)]
pub struct CsrfGuard {
    pub state: AppState,
    pub exempt: &'static [&'static str],
}

/// Middleware over the whole app; it only looks at `/studio/{function}`.
pub async fn guard(State(CsrfGuard { state, exempt }): State<CsrfGuard>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/studio/") {
        return next.run(request).await;
    }
    let exempt = exempt.contains(&path);
    let secure = cookies::is_secure(request.headers(), state.config.secure_cookies);
    let Some(session) = cookies::session_cookie_value(request.headers(), secure) else {
        return next.run(request).await;
    };
    if request.method() != axum::http::Method::POST || exempt {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return refuse(AppError::PayloadTooLarge("request body is too large".into()));
    };
    let presented = form_field(&bytes, "csrf");
    if !presented.is_some_and(|token| csrf_matches(&session, &token)) {
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

/// The CSRF token of a session: derived from the session cookie, so only someone holding the
/// session can know it, and nothing needs storing.
pub fn csrf_token(session_cookie_value: &str) -> String {
    B64URL.encode(Sha256::digest(format!("loopstack-secrets csrf v1:{session_cookie_value}").as_bytes()))
}

/// Whether `presented` is the CSRF token of the session (constant time).
pub fn csrf_matches(session_cookie_value: &str, presented: &str) -> bool {
    constant_time_eq(csrf_token(session_cookie_value).as_bytes(), presented.as_bytes())
}

/// CSRF defence for cookie-authenticated writes (on top of the SameSite=Strict cookie): the
/// request must show it comes from this origin, by `Sec-Fetch-Site: same-origin` or an
/// `Origin` equal to the host. Browsers send both on every POST; a request with neither, or
/// with another site's, is refused. Bearer-token calls are not affected: browsers never
/// attach tokens on their own.
pub fn check_same_origin(method: &Method, headers: &HeaderMap) -> Result<(), AppError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let refused = || Err(AppError::Forbidden("cross-site request refused".into()));
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|site| site != "same-origin") {
        return refused();
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => {
            let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
            if origin_host.eq_ignore_ascii_case(host) {
                Ok(())
            } else {
                refused()
            }
        }
        None if fetch_site == Some("same-origin") => Ok(()),
        None => refused(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cross_site_write_is_refused_and_a_same_site_one_passes() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
        headers.insert(header::ORIGIN, "http://127.0.0.1:3000".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_ok());
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_err());
        assert!(check_same_origin(&Method::GET, &headers).is_ok(), "reads are not writes");
        headers.remove(header::ORIGIN);
        assert!(check_same_origin(&Method::POST, &headers).is_err(), "a write must show where it comes from");
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_ok());
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(check_same_origin(&Method::POST, &headers).is_err());
    }
}
