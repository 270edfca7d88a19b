//! The one application error. Each variant maps to an HTTP status; a 5xx is logged with its
//! cause chain and the client only hears an opaque message.

use crate::model::{ApiError, ErrorBody};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Everything that can go wrong while serving a request or running a command.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the input is malformed or breaks a rule; the message says which.
    #[error("{0}")]
    BadRequest(String),
    /// 400 `reserved_key`: the key names an environment variable that changes how programs
    /// load or run (see `server::reserved`).
    #[error(
        "'{0}' is a reserved key: it changes how programs load or run, so it cannot be stored (see the README's list)"
    )]
    ReservedKey(String),
    /// 401: no credentials, or credentials that are not valid.
    #[error("authentication required")]
    Unauthorized,
    /// 401 on sign-in: silent about which part was wrong.
    #[error("Invalid username or password")]
    InvalidCredentials,
    /// 403: authenticated, but the scope or role is too small.
    #[error("{0}")]
    Forbidden(String),
    /// 403 `egress_denied`: a secret would have been sent where its policy does not allow.
    #[error("{0}")]
    EgressDenied(String),
    /// 404: no such thing, or a workspace the caller may not see (the same answer).
    #[error("not found")]
    NotFound,
    /// 409: it already exists, or a state conflict.
    #[error("{0}")]
    Conflict(String),
    /// 412 `version_mismatch`: a check-and-set write named a version the secret is no longer at.
    #[error("the secret is at version {current}, not {expected}: it changed since you read it")]
    VersionMismatch { current: i64, expected: i64 },
    /// 428 `version_required`: the workspace requires every write to name the version it
    /// replaces.
    #[error("this workspace requires check-and-set: send If-Match: \"<version>\" (or expectedVersion)")]
    VersionRequired,
    /// 408: the client took too long to send its request body.
    #[error("the request body was not received in time")]
    RequestTimeout,
    /// 413: a body or value over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 429: too many attempts; retry after the given seconds.
    #[error("too many attempts, retry in {0} seconds")]
    TooManyRequests(u64),
    /// 502: a server this one called on the caller's behalf (`http_request`) failed.
    #[error("{0}")]
    BadGateway(String),
    /// 503: the database is not reachable.
    #[error("service unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// 500: a stored value could not be decrypted (tampered row or wrong key).
    #[error("failed to decrypt a stored value")]
    Crypto,
    /// 500: anything else; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// The same error with its message passed through `f` (the leak guard); errors whose
    /// message is fixed are returned as they are.
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> AppError {
        match self {
            AppError::BadRequest(m) => AppError::BadRequest(f(m)),
            AppError::Forbidden(m) => AppError::Forbidden(f(m)),
            AppError::Conflict(m) => AppError::Conflict(f(m)),
            AppError::PayloadTooLarge(m) => AppError::PayloadTooLarge(f(m)),
            AppError::EgressDenied(m) => AppError::EgressDenied(f(m)),
            AppError::BadGateway(m) => AppError::BadGateway(f(m)),
            other => other,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        if database_unavailable(&err) {
            AppError::Unavailable(err)
        } else {
            AppError::Internal(anyhow::Error::new(err).context("database error"))
        }
    }
}

/// Whether an error means "the database is not there right now" (a 503 worth retrying) rather
/// than a fault of this request: no connection, or PostgreSQL shutting down, starting up, out
/// of resources or cut off (SQLSTATE classes 08, 53 and 57); SQLite busy or locked past its
/// timeout.
fn database_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                matches!(pg.code().get(..2), Some("08" | "53" | "57"))
            } else {
                matches!(db.code().as_deref(), Some("5" | "6"))
            }
        }
        _ => false,
    }
}

impl AppError {
    /// The HTTP status this error answers with.
    pub fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) | AppError::ReservedKey(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized | AppError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::EgressDenied(_) => StatusCode::FORBIDDEN,
            AppError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            AppError::VersionRequired => StatusCode::PRECONDITION_REQUIRED,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Crypto | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::ReservedKey(_) => "reserved_key",
            AppError::Unauthorized => "unauthorized",
            AppError::InvalidCredentials => "invalid_credentials",
            AppError::Forbidden(_) => "forbidden",
            AppError::EgressDenied(_) => "egress_denied",
            AppError::BadGateway(_) => "bad_gateway",
            AppError::NotFound => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::VersionMismatch { .. } => "version_mismatch",
            AppError::VersionRequired => "version_required",
            AppError::RequestTimeout => "request_timeout",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::TooManyRequests(_) => "rate_limited",
            AppError::Unavailable(_) => "unavailable",
            AppError::Crypto => "decryption_failed",
            AppError::Internal(_) => "internal",
        }
    }

    /// The body sent to clients; server-side causes are logged here and left out of it.
    pub fn to_api_error(&self) -> ApiError {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = ?anyhow_chain(self), code = self.code(), "request failed");
        }
        let message = match self {
            AppError::Internal(_) => "internal server error".to_string(),
            AppError::Unavailable(_) => "the database is not available; try again shortly".to_string(),
            AppError::NotFound => "Not found".to_string(),
            other => other.to_string(),
        };
        ApiError::new(self.code(), message)
    }
}

/// Formats an error with its sources, for logs only.
fn anyhow_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = ErrorBody { error: self.to_api_error() };
        let mut response = (status, Json(body)).into_response();
        if let AppError::TooManyRequests(secs) = self {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&secs.to_string()).expect("BUG: digits are a valid header"),
            );
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(err: AppError) -> Self {
        err.to_api_error()
    }
}

/// Maps a unique-constraint violation on `constraint` to a 409 with `message`; other errors
/// pass through.
pub fn on_constraint(constraint: &'static str, message: &'static str) -> impl FnOnce(sqlx::Error) -> AppError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() && constraint_matches(db.as_ref(), constraint) => {
            AppError::Conflict(message.to_string())
        }
        _ => err.into(),
    }
}

/// PostgreSQL names the violated constraint. SQLite does not, so there any unique violation of
/// the statement counts (each statement that uses this touches one unique constraint).
fn constraint_matches(db: &dyn sqlx::error::DatabaseError, constraint: &str) -> bool {
    match db.constraint() {
        Some(name) => name == constraint,
        None => true,
    }
}

/// serde quotes offending strings in its messages (`invalid type: string "..."`); such a
/// string may be a secret sent in the wrong place, so it is elided before the message is sent.
pub fn without_string_literals(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '"' {
            let mut escaped = false;
            for inner in chars.by_ref() {
                if inner == '"' && !escaped {
                    break;
                }
                escaped = inner == '\\' && !escaped;
            }
            out.push_str("…\"");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_are_elided_from_error_messages() {
        let message = r#"invalid type: string "sk-secret\"x", expected u8 at line 1 column 9"#;
        assert_eq!(without_string_literals(message), "invalid type: string \"…\", expected u8 at line 1 column 9");
    }
}
