//! Reading values: for trusted code, `run`, `export` and the remote read (each read audited),
//! and for uses that do not reveal them (`check_secret`, `http_request`). A workspace's own
//! value wins over the operator's global one.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{audit, SecretService};
use crate::server::domain::egress::EgressPolicy;
use crate::server::domain::{Actor, AuditAction, SecretKey, SecretValue};
use crate::server::error::AppError;
use crate::server::store;

/// A value for a use that does not reveal it, and where it may be sent.
pub struct InUse {
    pub value: SecretValue,
    pub egress: EgressPolicy,
    /// The value is the operator's global one (the workspace has no secret of the key).
    pub global: bool,
}

impl SecretService {
    /// The value of one secret, by key, for trusted server code (audited as `secret.read`).
    /// `None` when the key is absent.
    #[tracing::instrument(skip(self, key, actor), fields(key = %key), err)]
    pub async fn read_value(
        &self,
        workspace_id: Uuid,
        key: &SecretKey,
        actor: &Actor,
    ) -> Result<Option<SecretValue>, AppError> {
        let Some(row) = store::secret_by_key(&self.db, workspace_id, key.as_str()).await? else { return Ok(None) };
        let value = self.open(&row)?;
        store::audit(&self.db, &audit(workspace_id, actor, AuditAction::SecretRead, &row.key, None)).await?;
        Ok(Some(value))
    }

    /// The value of `key` for a use that does not reveal it (`check_secret`, `http_request`),
    /// the workspace's own or else the global one, with its egress policy; the caller audits
    /// the use. `None` when neither exists.
    pub async fn value_for_use(&self, workspace_id: Uuid, key: &SecretKey) -> Result<Option<InUse>, AppError> {
        if let Some(row) = store::secret_by_key(&self.db, workspace_id, key.as_str()).await? {
            let hosts = store::egress_of(&self.db, workspace_id, row.id).await?.map(|(_, hosts)| hosts);
            let egress = EgressPolicy::parse(&hosts.unwrap_or_default())?;
            return Ok(Some(InUse { value: self.open(&row)?, egress, global: false }));
        }
        Ok(self.globals.get(key.as_str()).map(|global| InUse {
            value: global.value.clone(),
            egress: global.egress.clone(),
            global: true,
        }))
    }

    /// The values of `keys` (those that exist), by key, for `run`, `export` and the remote
    /// read: the workspace's own, else the global one. Each read is audited (a global one
    /// with the detail `global`).
    #[tracing::instrument(skip(self, keys, actor), err)]
    pub async fn read_values(
        &self,
        workspace_id: Uuid,
        keys: &[String],
        actor: &Actor,
    ) -> Result<Vec<(String, SecretValue)>, AppError> {
        let rows = store::secrets_with_ciphertext(&self.db, workspace_id).await?;
        let mut out = BTreeMap::new();
        for row in rows.iter().filter(|row| keys.contains(&row.key)) {
            out.insert(row.key.clone(), (self.open(row)?, None));
        }
        for key in keys {
            if let (false, Some(global)) = (out.contains_key(key), self.globals.get(key)) {
                out.insert(key.clone(), (global.value.clone(), Some("global")));
            }
        }
        let mut tx = self.db.begin().await?;
        for (key, (_, detail)) in &out {
            store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::SecretRead, key, *detail)).await?;
        }
        tx.commit().await?;
        Ok(out.into_iter().map(|(key, (value, _))| (key, value)).collect())
    }

    /// Every key and value the workspace can use (its own over the global ones), by key, each
    /// read audited.
    pub async fn read_all_values(
        &self,
        workspace_id: Uuid,
        actor: &Actor,
    ) -> Result<Vec<(String, SecretValue)>, AppError> {
        let keys: Vec<String> = self.key_states(workspace_id).await?.into_iter().map(|s| s.key).collect();
        self.read_values(workspace_id, &keys, actor).await
    }
}
