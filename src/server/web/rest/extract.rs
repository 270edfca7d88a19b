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
