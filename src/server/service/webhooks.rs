//! Webhooks: owners register endpoints (URL, events, a signing secret shown once); the
//! dispatcher queues one delivery per event and endpoint, and the sender here POSTs each with a
//! `Loopstack-Signature` header, retrying with backoff for a day. Deliveries survive restarts
//! (they are rows), and instances share them under a lease. Addresses are checked when the
//! connection is made: loopback, link-local and private ones only for hosts the operator lists.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use rand::RngCore;
use tokio::sync::Notify;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::model::{CreatedWebhook, WebhookDelivery, WebhookInfo};
use crate::server::domain::webhook::{self, parse_events, parse_url, WebhookConfig, SIGNATURE_HEADER};
use crate::server::domain::{Actor, AuditAction};
use crate::server::error::AppError;
use crate::server::keys::MasterKey;
use crate::server::service::outbound;
use crate::server::store::{self, Attempt, Db, DueDelivery, WebhookRow};

/// Deliveries claimed per round.
const BATCH: i64 = 16;
/// How long a claimed delivery is left to its sender before another may try it.
const LEASE_SECS: i64 = 60;
/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries an endpoint's page lists.
const DELIVERIES_SHOWN: i64 = 100;

/// Registers endpoints and sends deliveries.
#[derive(Clone)]
pub struct WebhookService {
    db: Db,
    kek: Arc<MasterKey>,
    config: Arc<WebhookConfig>,
    wake: Arc<Notify>,
}

impl WebhookService {
    /// A service over `db`, sealing secrets under the workspaces' data keys, woken by `wake`
    /// when the dispatcher queues deliveries.
    pub fn new(db: Db, kek: Arc<MasterKey>, config: WebhookConfig, wake: Arc<Notify>) -> WebhookService {
        WebhookService { db, kek, config: Arc::new(config), wake }
    }

    /// Registers an endpoint; the answer carries its signing secret, the only time it is shown.
    pub async fn create(
        &self,
        workspace_id: Uuid,
        url: &str,
        events: &[String],
        actor: &Actor,
    ) -> Result<CreatedWebhook, AppError> {
        let url = parse_url(url)?;
        let events = parse_events(events)?;
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(raw.as_mut());
        let secret =
            Zeroizing::new(format!("whsec_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())));
        let id = Uuid::new_v4();
        let mut tx = self.db.begin().await?;
        let (key_version, wrapped, _) =
            store::active_data_key_in(&mut tx, workspace_id).await?.ok_or(AppError::NotFound)?;
        let dek = self.kek.unwrap(&wrapped, workspace_id, key_version)?;
        let (nonce, sealed) = dek.seal_webhook_secret(secret.as_bytes(), workspace_id, id);
        let row = WebhookRow {
            id,
            workspace_id,
            url: url.to_string(),
            events: events.join(","),
            secret_nonce: nonce,
            secret_sealed: sealed,
            key_version,
            enabled: true,
            created_at: Utc::now(),
            created_by: actor.0.clone(),
            wrapped_key: Vec::new(),
        };
        store::insert_webhook(&mut tx, &row).await?;
        let detail = format!("{} for {}", row.url, row.events);
        store::audit(&mut tx, &store::Audit::of(workspace_id, actor, AuditAction::WebhookCreated, None, Some(&detail)))
            .await?;
        tx.commit().await?;
        Ok(CreatedWebhook {
            id,
            url: row.url,
            events: events.iter().map(|e| e.to_string()).collect(),
            secret: secret.to_string(),
        })
    }

    /// A workspace's endpoints (never their secrets).
    pub async fn list(&self, workspace_id: Uuid) -> Result<Vec<WebhookInfo>, AppError> {
        store::list_webhooks(&self.db, workspace_id).await
    }

    /// Removes an endpoint and its deliveries.
    pub async fn delete(&self, workspace_id: Uuid, id: Uuid, actor: &Actor) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        let url = store::delete_webhook(&mut tx, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        store::audit(&mut tx, &store::Audit::of(workspace_id, actor, AuditAction::WebhookDeleted, None, Some(&url)))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables (deliveries wait) or re-enables (they go out) an endpoint.
    pub async fn set_enabled(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        enabled: bool,
        actor: &Actor,
    ) -> Result<WebhookInfo, AppError> {
        let mut tx = self.db.begin().await?;
        if !store::set_webhook_enabled(&mut tx, workspace_id, id, enabled).await? {
            return Err(AppError::NotFound);
        }
        let detail = format!("{id} {}", if enabled { "enabled" } else { "disabled" });
        store::audit(&mut tx, &store::Audit::of(workspace_id, actor, AuditAction::WebhookChanged, None, Some(&detail)))
            .await?;
        tx.commit().await?;
        self.wake.notify_one();
        self.list(workspace_id).await?.into_iter().find(|w| w.id == id).ok_or(AppError::NotFound)
    }

    /// An endpoint's latest deliveries, newest first.
    pub async fn deliveries(&self, workspace_id: Uuid, id: Uuid) -> Result<Vec<WebhookDelivery>, AppError> {
        if store::webhook_row(&self.db, workspace_id, id).await?.is_none() {
            return Err(AppError::NotFound);
        }
        store::list_deliveries(&self.db, workspace_id, id, DELIVERIES_SHOWN).await
    }

    /// Sends a delivery again now (with a fresh day of retries).
    pub async fn resend(&self, workspace_id: Uuid, id: Uuid, delivery: Uuid, actor: &Actor) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        if !store::resend_delivery(&mut tx, workspace_id, id, delivery).await? {
            return Err(AppError::NotFound);
        }
        let detail = format!("delivery {delivery}");
        store::audit(&mut tx, &store::Audit::of(workspace_id, actor, AuditAction::WebhookResent, None, Some(&detail)))
            .await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Starts the sender: it sends what is due whenever woken, and every second (deliveries
    /// queued by other instances, retries coming due, leases running out).
    pub fn start(&self) -> tokio::task::AbortHandle {
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = service.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                loop {
                    match service.send_due().await {
                        Ok(0) => break,
                        Ok(_) => continue,
                        Err(err) => {
                            tracing::warn!(error = %err, "failed to send webhook deliveries");
                            break;
                        }
                    }
                }
            }
        })
        .abort_handle()
    }

    /// Sends the deliveries due now, at once; how many.
    pub async fn send_due(&self) -> Result<usize, AppError> {
        let due = store::claim_deliveries(&self.db, BATCH, chrono::Duration::seconds(LEASE_SECS)).await?;
        let count = due.len();
        futures::future::join_all(due.into_iter().map(|delivery| self.send(delivery))).await;
        Ok(count)
    }

    async fn send(&self, delivery: DueDelivery) {
        let outcome = self.attempt(&delivery).await;
        let attempt = match &outcome {
            Ok(status) if (200..300).contains(status) => Attempt::Delivered { status: *status },
            failed => {
                let (status, error) = match failed {
                    Ok(status) => (Some(*status), format!("the endpoint answered {status}")),
                    Err(err) => (None, err.clone()),
                };
                let retry_at = Utc::now() + webhook::retry_delay(self.config.retry_base, delivery.attempts);
                let retry_at = (retry_at < delivery.created_at + webhook::RETRY_FOR).then_some(retry_at);
                return self.record(delivery.id, Attempt::Failed { status, error: &error, retry_at }).await;
            }
        };
        self.record(delivery.id, attempt).await;
    }

    async fn record(&self, id: Uuid, attempt: Attempt<'_>) {
        if let Err(err) = store::record_attempt(&self.db, id, attempt).await {
            tracing::warn!(error = %err, delivery = %id, "failed to record a webhook attempt");
        }
    }

    /// One POST: the status, or why there was none.
    async fn attempt(&self, delivery: &DueDelivery) -> Result<u16, String> {
        let hook = store::webhook_row(&self.db, delivery.workspace_id, delivery.webhook_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the endpoint was removed")?;
        let dek = self.kek.unwrap(&hook.wrapped_key, hook.workspace_id, hook.key_version).map_err(|e| e.to_string())?;
        let secret = dek
            .open_webhook_secret(&hook.secret_nonce, &hook.secret_sealed, hook.workspace_id, hook.id)
            .map_err(|e| e.to_string())?;
        let url = parse_url(&delivery.url).map_err(|e| e.to_string())?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let allowed = self
            .config
            .allow_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host.trim_start_matches('[').trim_end_matches(']')));
        let addresses = outbound::resolve_checked(&url, allowed).await.map_err(|e| e.to_string())?;
        let client = outbound::pinned_client(&host, &addresses, TIMEOUT).map_err(|e| e.to_string())?;
        let signature = webhook::signature(&secret, Utc::now().timestamp(), &delivery.body);
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, "loopstack-secrets-webhooks")
            .header(SIGNATURE_HEADER, signature)
            .header("Loopstack-Delivery", delivery.id.to_string())
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(outbound::describe)?;
        Ok(response.status().as_u16())
    }
}
