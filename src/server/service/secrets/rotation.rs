//! Rotating a workspace's data key online: a new version becomes active at once, every value
//! (current and kept versions) still under an older one is re-encrypted in batches, and the old
//! keys no value uses any more are deleted.

use uuid::Uuid;

use super::{seal, SecretService};
use crate::server::domain::{Actor, AuditAction};
use crate::server::error::AppError;
use crate::server::keys::{DataKey, ValueBinding};
use crate::server::store;

/// What [`SecretService::rotate_data_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataKeyRotation {
    /// The data key version now active.
    pub version: i32,
    /// Values re-encrypted under it (current values; kept versions are re-encrypted too).
    pub resealed: usize,
    /// Older versions deleted.
    pub retired: u64,
}

impl SecretService {
    /// Rotates a workspace's data key online: a new version becomes active at once (writers
    /// use it from then on), then every value still under an older version is re-encrypted,
    /// `batch` per transaction, then the values of the secrets' kept versions, and the data key
    /// versions no value uses any more are deleted.
    #[tracing::instrument(skip(self, actor), err)]
    pub async fn rotate_data_key(
        &self,
        workspace_id: Uuid,
        batch: usize,
        actor: &Actor,
    ) -> Result<DataKeyRotation, AppError> {
        let dek = DataKey::generate();
        let mut tx = self.db.begin().await?;
        let version =
            store::add_data_key(&mut tx, workspace_id, |version| self.kek.wrap(&dek, workspace_id, version)).await?;
        let detail = format!("data key version {version}");
        store::audit(&mut tx, &store::Audit::of(workspace_id, actor, AuditAction::KeyRotated, None, Some(&detail)))
            .await?;
        tx.commit().await?;

        let batch = batch.max(1) as i64;
        let mut resealed = 0;
        loop {
            let mut tx = self.db.begin().await?;
            let rows = store::secrets_to_reseal(&mut tx, workspace_id, version, batch).await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let value = self.open(&row)?;
                let binding = ValueBinding { workspace_id, secret_id: row.id, key: &row.key, version: row.version };
                if store::reseal_secret(&mut tx, row.id, row.key_version, &seal(&dek, version, &value, &binding))
                    .await?
                {
                    resealed += 1;
                }
            }
            tx.commit().await?;
        }
        loop {
            let mut tx = self.db.begin().await?;
            let rows = store::versions_to_reseal(&mut tx, workspace_id, version, batch).await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let value = self.open(&row)?;
                let binding = ValueBinding { workspace_id, secret_id: row.id, key: &row.key, version: row.version };
                store::reseal_version(&mut tx, row.id, row.version, &seal(&dek, version, &value, &binding)).await?;
            }
            tx.commit().await?;
        }
        let mut tx = self.db.begin().await?;
        for hook in store::webhooks_to_reseal(&mut tx, workspace_id, version).await? {
            let old = self.kek.unwrap(&hook.wrapped_key, workspace_id, hook.key_version)?;
            let secret = old.open_webhook_secret(&hook.secret_nonce, &hook.secret_sealed, workspace_id, hook.id)?;
            let (nonce, sealed) = dek.seal_webhook_secret(&secret, workspace_id, hook.id);
            store::reseal_webhook(&mut tx, hook.id, &nonce, &sealed, version).await?;
        }
        let retired = store::retire_data_keys(&mut tx, workspace_id, version).await?;
        tx.commit().await?;
        Ok(DataKeyRotation { version, resealed, retired })
    }
}
