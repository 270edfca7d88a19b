//! Extractors whose rejections speak the API's error body instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::server::error::AppError;

/// A JSON body: 400 with serde's reason for malformed input or unknown fields, 413 over the
/// body limit. The body is parsed as JSON whatever its `Content-Type` says.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection: BytesRejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge("request body is too large".into())
            } else if crate::server::web::http::caused_by::<tower_http::timeout::TimeoutError>(&rejection) {
                AppError::RequestTimeout
            } else {
                AppError::BadRequest(format!("could not read the request body: {}", rejection.body_text()))
            }
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            AppError::BadRequest(format!(
                "invalid JSON body: {}",
                crate::server::error::without_string_literals(&e.to_string())
            ))
        })
    }
}

/// Path parameters: an id that does not parse names nothing that exists, so it is a 404.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| AppError::NotFound)
    }
}

/// Query parameters: 400 with serde's reason when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| ApiQuery(q.0)).map_err(|e| {
            AppError::BadRequest(format!(
                "invalid query: {}",
                crate::server::error::without_string_literals(&e.body_text())
            ))
        })
    }
}

/// The version a write expects (`If-Match: "<version>"`; `W/"3"` and a bare `3` are read the
/// same): `None` when the header is absent or `*` (any version). 400 when it is not a version.
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(axum::http::header::IF_MATCH) else { return Ok(IfMatch(None)) };
        let bad = || AppError::BadRequest("If-Match must be a secret's version in quotes, e.g. \"3\"".into());
        let text = header.to_str().map_err(|_| bad())?.trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let tag = text.strip_prefix("W/").unwrap_or(text);
        let tag = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(tag);
        match tag.parse::<i64>() {
            Ok(version) if version >= 1 && tag.bytes().all(|b| b.is_ascii_digit()) => Ok(IfMatch(Some(version))),
            _ => Err(bad()),
        }
    }
}

/// An item with its version as the `ETag` (`"<version>"`), for the next `If-Match`.
pub fn with_etag(item: crate::model::SecretItem) -> impl axum::response::IntoResponse {
    let etag =
        axum::http::HeaderValue::from_str(&format!("\"{}\"", item.version)).expect("BUG: digits are a valid header");
    ([(axum::http::header::ETAG, etag)], axum::Json(item))
}
