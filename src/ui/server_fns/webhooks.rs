//! The webhooks page (owners): endpoints with their latest deliveries, register (the signing
//! secret is in this answer only), disable or enable, re-send a delivery, remove.
// A server function takes one argument per form field (one per event checkbox), and the
// `#[server]` macro generates more functions from each than an item attribute reaches.
#![allow(clippy::too_many_arguments)]

use leptos::prelude::*;
use uuid::Uuid;

use crate::model::{ApiError, ShownOnce, WebhookInfo, WebhooksPage};

/// The workspace's endpoints and their latest deliveries.
#[server(prefix = "/studio", endpoint = "webhooks")]
pub async fn get_webhooks(workspace_id: Uuid) -> Result<WebhooksPage, ApiError> {
    crate::server::web::studio::webhooks(workspace_id).await.map_err(crate::server::web::studio::fail)
}

/// Registers an endpoint for the checked events (`event_secret_upserted`, ...).
#[server(prefix = "/studio", endpoint = "create_webhook")]
pub async fn create_webhook(
    csrf: String,
    workspace_id: Uuid,
    url: String,
    event_secret_upserted: Option<String>,
    event_secret_deleted: Option<String>,
    event_workflow_updated: Option<String>,
    event_token_created: Option<String>,
    event_token_revoked: Option<String>,
    event_member_changed: Option<String>,
) -> Result<ShownOnce, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    let chosen = [
        (event_secret_upserted, "secret.upserted"),
        (event_secret_deleted, "secret.deleted"),
        (event_workflow_updated, "workflow.updated"),
        (event_token_created, "token.created"),
        (event_token_revoked, "token.revoked"),
        (event_member_changed, "member.changed"),
    ];
    let events: Vec<String> = chosen.into_iter().filter(|(on, _)| on.is_some()).map(|(_, e)| e.to_string()).collect();
    let created = crate::server::web::studio::create_webhook(workspace_id, &url, &events)
        .await
        .map_err(crate::server::web::studio::fail)?;
    Ok(ShownOnce {
        message: format!("Webhook to {} added. Copy its signing secret now: it is not shown again.", created.url),
        secret: Some(created.secret),
    })
}

/// Disables or enables an endpoint.
#[server(prefix = "/studio", endpoint = "set_webhook_enabled")]
pub async fn set_webhook_enabled(
    csrf: String,
    workspace_id: Uuid,
    id: Uuid,
    enabled: bool,
) -> Result<WebhookInfo, ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::set_webhook_enabled(workspace_id, id, enabled)
        .await
        .map_err(crate::server::web::studio::fail)
}

/// Sends a delivery again.
#[server(prefix = "/studio", endpoint = "resend_delivery")]
pub async fn resend_delivery(csrf: String, workspace_id: Uuid, id: Uuid, delivery: Uuid) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::resend_delivery(workspace_id, id, delivery)
        .await
        .map_err(crate::server::web::studio::fail)
}

/// Removes an endpoint.
#[server(prefix = "/studio", endpoint = "delete_webhook")]
pub async fn delete_webhook(csrf: String, workspace_id: Uuid, id: Uuid) -> Result<(), ApiError> {
    let _ = csrf; // checked by server::csrf::guard before this runs
    crate::server::web::studio::delete_webhook(workspace_id, id).await.map_err(crate::server::web::studio::fail)
}
