//! A secret's history: its versions (never their values), rolling back to one as a new version,
//! restoring a deleted secret within the retention window, destroying what is past it, and the
//! workspace's check-and-set requirement.

use chrono::Utc;
use uuid::Uuid;

use super::{audit, upserted, SecretService};
use crate::model::{DeletedSecret, SecretItem, SecretVersion};
use crate::server::domain::history::check_version;
use crate::server::domain::{Actor, AuditAction, Expected};
use crate::server::error::AppError;
use crate::server::store;

impl SecretService {
    /// A secret's versions, newest first; 404 when the workspace has no such secret.
    pub async fn versions(&self, workspace_id: Uuid, id: Uuid) -> Result<Vec<SecretVersion>, AppError> {
        if store::secret_item(&self.db, workspace_id, id).await?.is_none() {
            return Err(AppError::NotFound);
        }
        store::list_versions(&self.db, workspace_id, id).await
    }

    /// Makes `version` of a secret current again, as a new version (check-and-set with
    /// `expected`). 404 when there is no such secret or the version is no longer kept.
    #[tracing::instrument(skip(self, actor), err)]
    pub async fn rollback(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        version: i64,
        expected: Expected,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        let mut tx = self.db.begin().await?;
        let sealer = self.sealer(&mut tx, workspace_id).await?;
        let (key, current) = store::lock_secret(&mut tx, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        check_version(current, expected, sealer.require_version)?;
        let old = store::version_row(&mut tx, workspace_id, id, version).await?.ok_or(AppError::NotFound)?;
        let value = self.open(&old)?;
        let next = current + 1;
        let sealed = sealer.seal(&value, id, &key, next);
        let item = store::update_secret_value(&mut tx, workspace_id, id, next, &sealed, &actor.0)
            .await?
            .ok_or(AppError::NotFound)?;
        store::keep_version(&mut tx, workspace_id, id, next, self.history.keep_versions).await?;
        let detail = format!("version {next} is version {version} again");
        store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::SecretRolledBack, &key, Some(&detail))).await?;
        self.events.commit(tx, vec![upserted(workspace_id, &item)]).await?;
        Ok(item)
    }

    /// Brings back the secret with `key` deleted most recently within the retention window, as
    /// it was. 404 when there is none; 409 when the key is in use again.
    #[tracing::instrument(skip(self, actor), err)]
    pub async fn restore(&self, workspace_id: Uuid, key: &str, actor: &Actor) -> Result<SecretItem, AppError> {
        let key = self.existing_key(key)?;
        let since = Utc::now() - self.history.deleted_retention;
        let mut tx = self.db.begin().await?;
        let item = store::restore_secret(&mut tx, workspace_id, key.as_str(), since, &actor.0)
            .await?
            .ok_or(AppError::NotFound)?;
        let detail = format!("at version {}", item.version);
        store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::SecretRestored, &item.key, Some(&detail)))
            .await?;
        self.events.commit(tx, vec![upserted(workspace_id, &item)]).await?;
        Ok(item)
    }

    /// A workspace's deleted secrets that can still be restored, newest first.
    pub async fn deleted(&self, workspace_id: Uuid) -> Result<Vec<DeletedSecret>, AppError> {
        store::deleted_secrets(&self.db, workspace_id, Utc::now() - self.history.deleted_retention).await
    }

    /// Destroys the versions of every secret deleted longer ago than the retention window; how
    /// many secrets.
    pub async fn purge_deleted(&self) -> Result<u64, AppError> {
        store::purge_deleted(&self.db, Utc::now() - self.history.deleted_retention).await
    }

    /// Whether a workspace requires every write to name the version it replaces.
    pub async fn check_and_set_required(&self, workspace_id: Uuid) -> Result<bool, AppError> {
        store::check_and_set_required(&self.db, workspace_id).await
    }

    /// Requires (or stops requiring) check-and-set on every write to a workspace's secrets.
    pub async fn require_check_and_set(
        &self,
        workspace_id: Uuid,
        required: bool,
        actor: &Actor,
    ) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        store::set_check_and_set_required(&mut tx, workspace_id, required).await?;
        let detail = if required { "check-and-set required" } else { "check-and-set optional" };
        let entry = store::Audit::of(workspace_id, actor, AuditAction::WorkspaceSettingsChanged, None, Some(detail));
        store::audit(&mut tx, &entry).await?;
        tx.commit().await?;
        Ok(())
    }
}
