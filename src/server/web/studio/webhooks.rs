//! The Studio's side of webhooks: the owners' page, authorized as the REST routes are (the
//! `webhooks:manage` scope, which only owners' roles grant).

use uuid::Uuid;

use super::{authorized, signed_in, state};
use crate::model::{CreatedWebhook, WebhookInfo, WebhooksPage};
use crate::server::domain::Scope;
use crate::server::error::AppError;
use crate::server::web::principal::Principal;

/// The endpoints and their latest deliveries.
pub async fn webhooks(workspace_id: Uuid) -> Result<WebhooksPage, AppError> {
    let state = state();
    let user = signed_in().await?;
    let workspace = user.workspace(&state.db, workspace_id).await?;
    Principal::User(user).authorize(&state.db, workspace_id, Scope::WebhooksManage).await?;
    let webhooks = state.webhooks.list(workspace_id).await?;
    let mut deliveries = std::collections::BTreeMap::new();
    for hook in &webhooks {
        deliveries.insert(hook.id, state.webhooks.deliveries(workspace_id, hook.id).await?);
    }
    Ok(WebhooksPage { workspace, webhooks, deliveries })
}

/// Registers an endpoint.
pub async fn create_webhook(workspace_id: Uuid, url: &str, events: &[String]) -> Result<CreatedWebhook, AppError> {
    let principal = authorized(workspace_id, Scope::WebhooksManage).await?;
    state().webhooks.create(workspace_id, url, events, &principal.actor()).await
}

/// Disables or enables an endpoint.
pub async fn set_webhook_enabled(workspace_id: Uuid, id: Uuid, enabled: bool) -> Result<WebhookInfo, AppError> {
    let principal = authorized(workspace_id, Scope::WebhooksManage).await?;
    state().webhooks.set_enabled(workspace_id, id, enabled, &principal.actor()).await
}

/// Sends a delivery again.
pub async fn resend_delivery(workspace_id: Uuid, id: Uuid, delivery: Uuid) -> Result<(), AppError> {
    let principal = authorized(workspace_id, Scope::WebhooksManage).await?;
    state().webhooks.resend(workspace_id, id, delivery, &principal.actor()).await
}

/// Removes an endpoint.
pub async fn delete_webhook(workspace_id: Uuid, id: Uuid) -> Result<(), AppError> {
    let principal = authorized(workspace_id, Scope::WebhooksManage).await?;
    state().webhooks.delete(workspace_id, id, &principal.actor()).await
}
