//! The Studio's icon, `public/favicon.svg`, built into the binary so every page's icon (and the
//! `/favicon.ico` browsers ask for on their own) answers wherever the site folder is.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// The paths the icon answers at.
pub const PATHS: [&str; 2] = ["/favicon.svg", "/favicon.ico"];

const ICON: &str = include_str!("../../../public/favicon.svg");

/// The icon routes.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    PATHS.into_iter().fold(Router::new(), |router, path| router.route(path, get(icon)))
}

/// `GET /favicon.svg` (and `/favicon.ico`): the SVG icon.
async fn icon() -> impl IntoResponse {
    ([(CONTENT_TYPE, "image/svg+xml")], ICON)
}
