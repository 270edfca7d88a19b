//! HTTP plumbing around the routes: the connection loop (with the header read timeout that
//! `axum::serve` leaves off), security and cache headers on every response, and compression of
//! the static front-end files.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use leptos::prelude::use_context;
use tokio::net::TcpListener;

use crate::server::store;

/// How long open connections get to finish after a shutdown signal (event streams never do).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` resolves. A client must send its request
/// headers within `header_timeout`, so slow or idle half-open connections cannot pile up.
///
/// HTTP/1 only: cleartext HTTP/2 (h2c, which browsers never use) would bypass that timeout,
/// since an HTTP/2 connection can stay open and idle with no request in flight. A TLS proxy in
/// front may still speak HTTP/2 to browsers. Each request carries the peer address as
/// `ConnectInfo<SocketAddr>` (for sign-in limits and the session list).
pub async fn serve(listener: TcpListener, app: Router, header_timeout: Duration, shutdown: impl Future<Output = ()>) {
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %err, "failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let with_peer = tower::Layer::layer(&axum::Extension(ConnectInfo(peer)), app.clone());
        let service = TowerToHyperService::new(with_peer);
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::info!("closed connections still open after {SHUTDOWN_GRACE:?}");
    }
}

/// Largest request body on any route (REST, server functions, pages), enforced before any
/// parsing or authentication: a value is at most 64 KiB, but JSON escaping can grow it.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// Serves each request's reads on SQLite under one check of the outbox (the CLI's writes), not
/// one per read: see [`store::one_check_per_request`].
pub async fn one_outbox_check(request: Request, next: Next) -> Response {
    store::one_check_per_request(next.run(request)).await
}

/// Caps every request body at [`BODY_LIMIT_BYTES`] before anything parses it. A declared
/// length over the limit is a 413: read and thrown away first when it is at most
/// [`DRAIN_BYTES`] more (so a client still sending reads the answer instead of a broken pipe),
/// at once when it is longer (hyper then closes the connection). A body without a declared
/// length (chunked) is read here, up to the limit, so every handler (server functions too)
/// sees a 413, or a 408 for a body that trickles past the body timeout, instead of a failure of
/// its own.
pub async fn limit_body(request: Request, next: Next) -> Response {
    use crate::server::error::AppError;
    use futures::StreamExt;
    let declared =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > BODY_LIMIT_BYTES as u64) {
        let too_large = || AppError::PayloadTooLarge("request body is too large".into());
        if length > (BODY_LIMIT_BYTES + DRAIN_BYTES) as u64 {
            return closing(too_large());
        }
        let mut stream = request.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                return closing(too_large());
            }
        }
        return too_large().into_response();
    }
    let (parts, body) = request.into_parts();
    let body = if declared.is_some() {
        Body::new(http_body_util::Limited::new(body, BODY_LIMIT_BYTES))
    } else {
        match read_chunked(body).await {
            Ok(bytes) => Body::from(bytes),
            Err(refusal) => return refusal,
        }
    };
    next.run(Request::from_parts(parts, body)).await
}

/// How much of a body past the limit is read and thrown away before the 413, so that a client
/// still sending gets to read the answer and can keep the connection.
const DRAIN_BYTES: usize = 8 * BODY_LIMIT_BYTES;

/// Reads a chunked body of at most [`BODY_LIMIT_BYTES`]. Past the limit, the rest is drained
/// (up to [`DRAIN_BYTES`]) and the answer is 413; a body that goes on even longer gets its 413
/// with `Connection: close`, since what is left of it is still on the connection.
async fn read_chunked(body: Body) -> Result<axum::body::Bytes, Response> {
    use crate::server::error::AppError;
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let (mut kept, mut seen) = (Vec::new(), 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) if caused_by::<tower_http::timeout::TimeoutError>(&err) => {
                return Err(closing(AppError::RequestTimeout));
            }
            Err(_) => return Err(closing(AppError::BadRequest("could not read the request body".into()))),
        };
        seen += chunk.len();
        if seen <= BODY_LIMIT_BYTES {
            kept.extend_from_slice(&chunk);
        } else if seen > BODY_LIMIT_BYTES + DRAIN_BYTES {
            return Err(closing(AppError::PayloadTooLarge("request body is too large".into())));
        }
    }
    if seen > BODY_LIMIT_BYTES {
        return Err(AppError::PayloadTooLarge("request body is too large".into()).into_response());
    }
    Ok(kept.into())
}

/// A refusal sent before the body was read to its end: the rest of the body is still on the
/// connection, so the connection closes after the answer (`Connection: close`) and no client
/// sends its next request into it.
fn closing(err: crate::server::error::AppError) -> Response {
    let mut response = err.into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Whether `err` or one of its sources is a `T`.
pub fn caused_by<T: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<T>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// A server function whose arguments do not parse fails inside Leptos before any of its code
/// runs, and Leptos answers such errors with 500. The error is the caller's (`bad_request`, see
/// `ApiError::from_server_fn_error`), so it gets 400 like the REST API's bad input.
pub async fn server_fn_argument_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let server_fn_error = response.headers().contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER);
    if response.status() != axum::http::StatusCode::INTERNAL_SERVER_ERROR || !server_fn_error {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    if serde_json::from_slice::<crate::model::ApiError>(&bytes).is_ok_and(|err| err.code == "bad_request") {
        parts.status = axum::http::StatusCode::BAD_REQUEST;
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The hashed front-end file names (`loopstack-secrets.<hash>.wasm`, ...) that cargo-leptos
/// lists in `hash.txt` beside the binary; empty when files are not hashed.
#[derive(Clone, Debug, Default)]
pub struct StaticFiles {
    pkg_prefix: Arc<str>,
    hashed: Arc<HashSet<String>>,
}

impl StaticFiles {
    /// Reads `hash.txt` next to the running executable, if there is one.
    pub fn discover(output_name: &str, pkg_dir: &str) -> Self {
        let hashes = std::env::current_exe()
            .ok()
            .and_then(|exe| std::fs::read_to_string(exe.with_file_name("hash.txt")).ok())
            .unwrap_or_default();
        Self::from_hash_file(output_name, pkg_dir, &hashes)
    }

    /// Parses cargo-leptos's `hash.txt` (`js: <hash>` lines).
    pub fn from_hash_file(output_name: &str, pkg_dir: &str, hashes: &str) -> Self {
        let hashed = hashes
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter(|(kind, _)| matches!(kind.trim(), "js" | "wasm" | "css"))
            .map(|(kind, hash)| format!("{output_name}.{}.{}", hash.trim(), kind.trim()))
            .collect();
        Self { pkg_prefix: format!("/{}/", pkg_dir.trim_matches('/')).into(), hashed: Arc::new(hashed) }
    }

    /// Whether cargo-leptos hashed the file names (and the pages must ask for hashed names).
    pub fn hashed(&self) -> bool {
        !self.hashed.is_empty()
    }

    /// The `Cache-Control` for a static file: hashed names never change, so they are cached
    /// for a year; the icon for a day; anything else is revalidated on each use.
    fn cache_control(&self, path: &str) -> Option<HeaderValue> {
        if crate::server::web::favicon::PATHS.contains(&path) {
            return Some(HeaderValue::from_static("public, max-age=86400"));
        }
        let name = path.strip_prefix(&*self.pkg_prefix)?;
        Some(if self.hashed.contains(name) {
            HeaderValue::from_static("public, max-age=31536000, immutable")
        } else {
            HeaderValue::from_static("no-cache")
        })
    }
}

/// The policy for API answers, static files and anything else that is not a page: nothing may
/// run, and nothing may frame it.
const STRICT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The policy of a Studio page: scripts only from this origin or carrying the page's nonce
/// (Leptos puts it on its hydration and resource scripts), WASM compilation, no inline styles,
/// no framing, forms only back to this origin.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The CSP nonce of one response, made by [`response_headers`] before the request runs.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

/// Run inside each page render: Leptos puts this response's nonce (from [`response_headers`])
/// on its inline scripts, and the same middleware sends it in the policy. Both sides come from
/// the request itself, so the page and its header cannot disagree.
pub fn provide_page_nonce() {
    let nonce =
        use_context::<axum::http::request::Parts>().and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(nonce)) = nonce {
        leptos::prelude::provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

/// Adds the security headers every response carries, and a `Cache-Control`: static files by
/// name (see [`StaticFiles`]), everything else `no-store` (pages and API answers name secrets
/// and carry CSRF tokens).
pub async fn response_headers(State(files): State<StaticFiles>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let nonce = new_nonce();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let ok = response.status().is_success();
    let headers = response.headers_mut();
    let html =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("text/html"));
    if html {
        if let Ok(value) = HeaderValue::from_str(&page_csp(&nonce)) {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    set_security_headers(headers);
    match files.cache_control(&path) {
        Some(value) if ok => {
            headers.insert(header::CACHE_CONTROL, value);
        }
        _ => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    response
}

/// 128 random bits, URL-safe base64: a fresh script nonce.
fn new_nonce() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// `Referrer-Policy: same-origin` rather than `no-referrer`: under `no-referrer` browsers send
/// `Origin: null` on form posts, and the CSRF check needs the real origin.
fn set_security_headers(headers: &mut HeaderMap) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    headers.insert(HeaderName::from_static("cross-origin-resource-policy"), HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(STRICT_CSP));
    }
}

/// Which responses are compressed on the fly: the front-end files only (WASM, JS, CSS) when
/// no precompressed copy was served. Pages and API answers are not compressed: they hold CSRF
/// tokens next to text an attacker can choose, which compression would leak (BREACH).
pub fn compress_static_only() -> impl tower_http::compression::predicate::Predicate {
    use tower_http::compression::predicate::{Predicate, SizeAbove};
    SizeAbove::new(1024).and(
        |_: axum::http::StatusCode, _: axum::http::Version, headers: &HeaderMap, _: &axum::http::Extensions| {
            headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
                ct.starts_with("application/wasm")
                    || ct.starts_with("text/javascript")
                    || ct.starts_with("application/javascript")
                    || ct.starts_with("text/css")
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_files_are_cached_for_a_year_and_others_revalidated() {
        let files = StaticFiles::from_hash_file("app", "pkg", "js: abc\nwasm: def\ncss: ghi\n");
        assert!(files.hashed());
        assert_eq!(files.cache_control("/pkg/app.abc.js").unwrap(), "public, max-age=31536000, immutable");
        assert_eq!(files.cache_control("/pkg/app.def.wasm").unwrap(), "public, max-age=31536000, immutable");
        assert_eq!(files.cache_control("/pkg/app.js").unwrap(), "no-cache");
        assert_eq!(files.cache_control("/workspaces"), None);
        assert_eq!(files.cache_control("/favicon.svg").unwrap(), "public, max-age=86400");
        assert!(!StaticFiles::from_hash_file("app", "pkg", "").hashed());
    }

    #[test]
    fn page_policy_allows_no_inline_script_without_the_nonce() {
        let csp = page_csp("n0nce");
        assert!(csp.contains("script-src 'self' 'nonce-n0nce' 'wasm-unsafe-eval';"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }
}
