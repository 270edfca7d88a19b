//! `SecretService`: the Rust API for a workspace's secrets, used by the REST layer, the server
//! functions, the CLI and any trusted code that mounts this crate. It parses input, seals and
//! opens values and calls the store; it knows nothing about HTTP or callers' permissions.

mod globals;
mod leaks;
mod values;

pub use values::InUse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use uuid::Uuid;

use crate::model::{Event, SecretItem};
use crate::server::domain::globals::GlobalSecrets;
use crate::server::domain::AuditAction;
use crate::server::domain::{Actor, Limits, SecretKey, SecretValue};
use crate::server::error::AppError;
use crate::server::keys::{DataKey, MasterKey, ValueBinding, VALUE_AAD_VERSION};
use crate::server::service::events::EventHub;
use crate::server::store::{self, Sealed, SecretRow};
use crate::server::store::{Db, Tx};

/// A workspace's active data key, ready to seal values inside a transaction.
pub struct Sealer {
    workspace_id: Uuid,
    version: i32,
    dek: DataKey,
}

/// What [`SecretService::rotate_data_key`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataKeyRotation {
    /// The data key version now active.
    pub version: i32,
    /// Values re-encrypted under it.
    pub resealed: usize,
    /// Older versions deleted.
    pub retired: u64,
}

/// One page of the Studio's secrets table.
pub struct SecretsPage {
    pub secrets: Vec<SecretItem>,
    /// Secrets whose key matches the filter.
    pub matching: usize,
    /// Secrets in the workspace.
    pub total: usize,
    /// This page's number, from 1.
    pub number: usize,
}

/// Workspace-scoped CRUD over encrypted secrets, with the operator's global values beneath
/// each workspace's own.
#[derive(Clone)]
pub struct SecretService {
    db: Db,
    kek: Arc<MasterKey>,
    limits: Limits,
    events: EventHub,
    globals: Arc<GlobalSecrets>,
    /// Each workspace's leak guard, with the fingerprint of the values it was built from.
    guards: Arc<Mutex<HashMap<Uuid, (leaks::Fingerprint, crate::server::domain::leak::LeakGuard)>>>,
}

impl SecretService {
    /// A service over `db`, sealing with data keys wrapped by `kek`, announcing changes on
    /// `events`, with `globals` beneath every workspace's secrets.
    pub fn new(
        db: Db,
        kek: Arc<MasterKey>,
        limits: Limits,
        events: EventHub,
        globals: Arc<GlobalSecrets>,
    ) -> SecretService {
        SecretService { db, kek, limits, events, globals, guards: Arc::default() }
    }

    /// The database it works on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The limits values and keys are parsed with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Keys and `has_value` flags of a workspace, sorted by key. Never values.
    #[tracing::instrument(skip(self), err)]
    pub async fn find_all_by_workspace(&self, workspace_id: Uuid) -> Result<Vec<SecretItem>, AppError> {
        store::list_secrets(&self.db, workspace_id).await
    }

    /// Creates a secret; 409 when the key exists.
    #[tracing::instrument(skip(self, key, value), fields(key = %key), err)]
    pub async fn create(
        &self,
        workspace_id: Uuid,
        key: &SecretKey,
        value: &SecretValue,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        let id = Uuid::new_v4();
        let mut tx = self.db.begin().await?;
        let sealer = self.sealer(&mut tx, workspace_id).await?;
        let sealed =
            seal(&sealer.dek, sealer.version, value, &ValueBinding { workspace_id, secret_id: id, key: key.as_str() });
        let item = store::insert_secret(&mut tx, workspace_id, id, key.as_str(), &sealed, &actor.0).await?;
        store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::SecretCreated, &item.key, None)).await?;
        tx.commit().await?;
        self.announce_upsert(workspace_id, &item).await;
        Ok(item)
    }

    /// Replaces a secret's value; `None` leaves it as it is. 404 when there is no such secret.
    #[tracing::instrument(skip(self, value), err)]
    pub async fn update(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        value: Option<&SecretValue>,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        let Some(value) = value else {
            return store::secret_item(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound);
        };
        let mut tx = self.db.begin().await?;
        let sealer = self.sealer(&mut tx, workspace_id).await?;
        let key = store::secret_key_in(&mut tx, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        let sealed = seal(&sealer.dek, sealer.version, value, &ValueBinding { workspace_id, secret_id: id, key: &key });
        let item = store::update_secret_value(&mut tx, workspace_id, id, &sealed, &actor.0)
            .await?
            .ok_or(AppError::NotFound)?;
        store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::SecretUpdated, &item.key, None)).await?;
        tx.commit().await?;
        self.announce_upsert(workspace_id, &item).await;
        Ok(item)
    }

    /// Creates or updates a secret by key, atomically even under concurrent calls.
    #[tracing::instrument(skip(self, key, value), fields(key = %key), err)]
    pub async fn upsert(
        &self,
        workspace_id: Uuid,
        key: &SecretKey,
        value: &SecretValue,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        let mut tx = self.db.begin().await?;
        let sealer = self.sealer(&mut tx, workspace_id).await?;
        let item = self.upsert_in(&mut tx, &sealer, key, value, actor, None).await?;
        tx.commit().await?;
        self.announce_upsert(workspace_id, &item).await;
        Ok(item)
    }

    /// Upserts inside a caller's transaction (a form submission storing several values at
    /// once); the caller announces the change after committing.
    pub async fn upsert_in(
        &self,
        tx: &mut Tx,
        sealer: &Sealer,
        key: &SecretKey,
        value: &SecretValue,
        actor: &Actor,
        detail: Option<&str>,
    ) -> Result<SecretItem, AppError> {
        let workspace_id = sealer.workspace_id;
        let seal_for = |id: Uuid| {
            seal(&sealer.dek, sealer.version, value, &ValueBinding { workspace_id, secret_id: id, key: key.as_str() })
        };
        let item = store::upsert_secret_in(tx, workspace_id, key.as_str(), seal_for, &actor.0).await?;
        store::audit(tx, &audit(workspace_id, actor, AuditAction::SecretUpserted, &item.key, detail)).await?;
        Ok(item)
    }

    /// Deletes a secret; 404 when there is no such secret.
    #[tracing::instrument(skip(self), err)]
    pub async fn delete(&self, workspace_id: Uuid, id: Uuid, actor: &Actor) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        let key = store::delete_secret(&mut tx, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::SecretDeleted, &key, None)).await?;
        tx.commit().await?;
        self.events.publish(vec![Event::SecretDeleted { workspace_id, secret_id: id }]).await;
        Ok(())
    }

    /// Upserts many values in one transaction (`import`): all are stored, or none when one key
    /// or value is invalid. Returns how many.
    pub async fn import(
        &self,
        workspace_id: Uuid,
        pairs: Vec<(String, zeroize::Zeroizing<String>)>,
        actor: &Actor,
    ) -> Result<usize, AppError> {
        let mut parsed = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            parsed.push((self.parse_key(&key)?, self.parse_value(value.to_string())?));
        }
        let mut tx = self.db.begin().await?;
        let sealer = self.sealer(&mut tx, workspace_id).await?;
        let mut items = Vec::with_capacity(parsed.len());
        for (key, value) in &parsed {
            items.push(self.upsert_in(&mut tx, &sealer, key, value, actor, Some("imported")).await?);
        }
        tx.commit().await?;
        for item in &items {
            self.announce_upsert(workspace_id, item).await;
        }
        Ok(items.len())
    }

    /// Rotates a workspace's data key online: a new version becomes active at once (writers
    /// use it from then on), then every value still under an older version is re-encrypted,
    /// `batch` per transaction, and the versions no value uses any more are deleted.
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
        let entry = store::Audit {
            workspace_id: Some(workspace_id),
            actor: &actor.0,
            action: AuditAction::KeyRotated,
            key: None,
            detail: Some(&detail),
        };
        store::audit(&mut tx, &entry).await?;
        tx.commit().await?;

        let mut resealed = 0;
        loop {
            let mut tx = self.db.begin().await?;
            let rows = store::secrets_to_reseal(&mut tx, workspace_id, version, batch.max(1) as i64).await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let value = self.open(&row)?;
                let sealed =
                    seal(&dek, version, &value, &ValueBinding { workspace_id, secret_id: row.id, key: &row.key });
                if store::reseal_secret(&mut tx, row.id, row.key_version, &sealed).await? {
                    resealed += 1;
                }
            }
            tx.commit().await?;
        }
        let mut tx = self.db.begin().await?;
        let retired = store::retire_data_keys(&mut tx, workspace_id, version).await?;
        tx.commit().await?;
        Ok(DataKeyRotation { version, resealed, retired })
    }

    /// One page of a workspace's secrets whose key contains `filter` (any case), with how many
    /// match and how many there are. Pages count from 1; any number past the last (even
    /// `usize::MAX`) gives the last.
    pub async fn page(&self, workspace_id: Uuid, filter: &str, number: usize) -> Result<SecretsPage, AppError> {
        let size = crate::model::SECRETS_PAGE_SIZE;
        let filter = filter.trim();
        let mut number = number.clamp(1, (i64::MAX as usize) / size);
        loop {
            let offset = ((number - 1) * size) as i64;
            let (secrets, matching, total) =
                store::secrets_page(&self.db, workspace_id, filter, size as i64, offset).await?;
            let last = (matching as usize).div_ceil(size).max(1);
            if number <= last {
                return Ok(SecretsPage { secrets, matching: matching as usize, total: total as usize, number });
            }
            number = last;
        }
    }

    /// Parses raw input into a key, with this service's limits.
    pub fn parse_key(&self, raw: &str) -> Result<SecretKey, AppError> {
        SecretKey::parse(raw, &self.limits)
    }

    /// Parses the name of a key that may already be stored (reserved names included), for
    /// lookups by trusted code.
    pub fn existing_key(&self, raw: &str) -> Result<SecretKey, AppError> {
        SecretKey::existing(raw, &self.limits)
    }

    /// Parses raw input into a value, with this service's limits.
    pub fn parse_value(&self, raw: String) -> Result<SecretValue, AppError> {
        SecretValue::parse(raw, &self.limits)
    }

    /// The workspace's active data key, unwrapped, for writing inside `tx`. A rotation cannot
    /// add a newer version until `tx` ends (see [`store::active_data_key_in`]), so every value
    /// written with it is under the version that is active at commit.
    pub async fn sealer(&self, tx: &mut Tx, workspace_id: Uuid) -> Result<Sealer, AppError> {
        let (version, wrapped) = store::active_data_key_in(tx, workspace_id).await?.ok_or(AppError::NotFound)?;
        Ok(Sealer { workspace_id, version, dek: self.kek.unwrap(&wrapped, workspace_id, version)? })
    }

    async fn announce_upsert(&self, workspace_id: Uuid, item: &SecretItem) {
        let event = Event::SecretUpserted { workspace_id, secret_id: item.id, key: item.key.clone() };
        self.events.publish(vec![event]).await;
    }

    fn open(&self, row: &SecretRow) -> Result<SecretValue, AppError> {
        let dek = self.kek.unwrap(&row.wrapped_key, row.workspace_id, row.key_version)?;
        let binding = ValueBinding { workspace_id: row.workspace_id, secret_id: row.id, key: &row.key };
        let plain = dek.open_value(&row.nonce, &row.ciphertext, &binding, row.aad_version)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| AppError::Crypto)?;
        Ok(SecretValue::from_plaintext(SecretString::from(text)))
    }
}

fn audit<'a>(
    workspace_id: Uuid,
    actor: &'a Actor,
    action: AuditAction,
    key: &'a str,
    detail: Option<&'a str>,
) -> store::Audit<'a> {
    store::Audit { workspace_id: Some(workspace_id), actor: &actor.0, action, key: Some(key), detail }
}

fn seal(dek: &DataKey, version: i32, value: &SecretValue, to: &ValueBinding<'_>) -> Sealed {
    let (nonce, ciphertext) = dek.seal_value(value.expose().as_bytes(), to);
    Sealed { nonce, ciphertext, key_version: version, aad_version: VALUE_AAD_VERSION, has_value: !value.is_empty() }
}
