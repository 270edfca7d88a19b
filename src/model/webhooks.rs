//! Webhooks as every side sees them: an endpoint (never its secret, except once when it is
//! created), what registering one takes, and its deliveries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST .../webhooks`: where to send which events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookInput {
    /// An http or https URL; loopback, link-local and private addresses are refused unless the
    /// operator allows the host.
    pub url: String,
    /// Event types: `secret.upserted`, `secret.deleted`, `workflow.updated`, `token.created`,
    /// `token.revoked`, `member.changed`.
    pub events: Vec<String>,
}

/// `PUT .../webhooks/:id`: disable (deliveries wait) or enable an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookUpdate {
    pub enabled: bool,
}

/// A registered endpoint, with its signing secret: the only answer that carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    /// `whsec_...`: the HMAC key of the `Loopstack-Signature` header. Shown once.
    pub secret: String,
}

/// An endpoint as listings show it (never its secret), with how its deliveries stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WebhookInfo {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Deliveries still to be sent (or retried).
    pub pending: i64,
    /// Deliveries given up on after a day of retries.
    pub failed: i64,
}

/// One delivery of one event to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, sqlx::FromRow))]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub event_id: Uuid,
    /// The event type.
    #[cfg_attr(feature = "ssr", sqlx(rename = "type"))]
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// The endpoint's last answer, if it answered.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
}

/// The Studio's webhooks page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhooksPage {
    pub workspace: super::WorkspaceItem,
    pub webhooks: Vec<WebhookInfo>,
    /// The latest deliveries of each endpoint, by endpoint id.
    pub deliveries: std::collections::BTreeMap<Uuid, Vec<WebhookDelivery>>,
}
