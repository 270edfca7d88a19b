//! `SecretService`: the Rust API for a workspace's secrets, used by the REST layer, the server
//! functions, the CLI and any trusted code that mounts this crate. It parses input, seals and
//! opens values and calls the store; it knows nothing about HTTP or callers' permissions.

mod globals;
mod leaks;
mod one_trip;
mod rotation;
mod values;
mod versions;

pub use one_trip::OneTripStats;
pub use rotation::DataKeyRotation;
pub use values::InUse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use uuid::Uuid;

use crate::model::{Event, SecretItem};
use crate::server::domain::globals::GlobalSecrets;
use crate::server::domain::history::check_version;
use crate::server::domain::AuditAction;
use crate::server::domain::{Actor, Expected, History, Limits, SecretKey, SecretValue};
use crate::server::error::AppError;
use crate::server::keys::{DataKey, MasterKey, ValueBinding, VALUE_AAD_VERSION};
use crate::server::service::events::EventHub;
use crate::server::store::{self, Sealed, SecretRow};
use crate::server::store::{Db, Tx};

/// A workspace's active data key, ready to seal values inside a transaction, and whether the
/// workspace requires check-and-set.
pub struct Sealer {
    workspace_id: Uuid,
    version: i32,
    dek: DataKey,
    require_version: bool,
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
    history: History,
    /// Each workspace's leak guard, with the fingerprint of the values it was built from.
    guards: Arc<Mutex<HashMap<Uuid, (leaks::ListingFingerprint, crate::server::domain::leak::LeakGuard)>>>,
    /// Held while a guard is built: the requests that find it missing wait for one build
    /// instead of each building their own (each holds every value and its encodings).
    guard_builds: Arc<tokio::sync::Mutex<()>>,
    /// `get_secret_keys`' answers, kept while their listing is current.
    answers: Arc<globals::KeptAnswers>,
    /// PostgreSQL: what one-trip upserts seal for (data keys, rows last written).
    expected: Arc<one_trip::Expectations>,
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
        SecretService {
            db,
            kek,
            limits,
            events,
            globals,
            history: History::default(),
            guards: Arc::default(),
            guard_builds: Arc::default(),
            answers: Arc::default(),
            expected: Arc::default(),
        }
    }

    /// The same service keeping `history` (versions per secret, how long deleted ones stay).
    pub fn with_history(self, history: History) -> SecretService {
        SecretService { history, ..self }
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
        Ok(store::listing(&self.db, workspace_id).await?.items.clone())
    }

    /// The list route's JSON: the keys after `after`, at most `limit` of them (without either,
    /// all), from memory while nothing changed them.
    pub async fn list_json(
        &self,
        workspace_id: Uuid,
        after: Option<&SecretKey>,
        limit: Option<u32>,
    ) -> Result<String, AppError> {
        let listing = store::listing(&self.db, workspace_id).await?;
        Ok(listing.page_json(after.map(SecretKey::as_str), limit.map(|limit| limit as usize)))
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
        let sealed = sealer.seal(value, id, key.as_str(), 1);
        let item = store::insert_secret(&mut tx, workspace_id, id, key.as_str(), &sealed, &actor.0).await?;
        store::keep_version(&mut tx, workspace_id, id, 1, self.history.keep_versions).await?;
        store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::SecretCreated, &item.key, None)).await?;
        self.events.commit(tx, vec![upserted(workspace_id, &item)]).await?;
        Ok(item)
    }

    /// Replaces a secret's value; `None` leaves it as it is. 404 when there is no such secret.
    pub async fn update(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        value: Option<&SecretValue>,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        self.update_if(workspace_id, id, value, None, actor).await
    }

    /// [`SecretService::update`] as check-and-set: refused (412, nothing changed) unless the
    /// secret is at the `expected` version, when one is given.
    #[tracing::instrument(skip(self, value), err)]
    pub async fn update_if(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        value: Option<&SecretValue>,
        expected: Expected,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        let Some(value) = value else {
            let item = store::secret_item(&self.db, workspace_id, id).await?.ok_or(AppError::NotFound)?;
            check_version(item.version, expected, false)?;
            return Ok(item);
        };
        let mut tx = self.db.begin().await?;
        let sealer = self.sealer(&mut tx, workspace_id).await?;
        let (key, current) = store::lock_secret(&mut tx, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        check_version(current, expected, sealer.require_version)?;
        let version = current + 1;
        let sealed = sealer.seal(value, id, &key, version);
        let item = store::update_secret_value(&mut tx, workspace_id, id, version, &sealed, &actor.0)
            .await?
            .ok_or(AppError::NotFound)?;
        store::keep_version(&mut tx, workspace_id, id, version, self.history.keep_versions).await?;
        store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::SecretUpdated, &item.key, None)).await?;
        self.events.commit(tx, vec![upserted(workspace_id, &item)]).await?;
        Ok(item)
    }

    /// Creates or updates a secret by key, atomically even under concurrent calls.
    pub async fn upsert(
        &self,
        workspace_id: Uuid,
        key: &SecretKey,
        value: &SecretValue,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        self.upsert_if(workspace_id, key, value, None, actor).await
    }

    /// [`SecretService::upsert`] as check-and-set: refused (412, nothing changed) unless the
    /// secret is at the `expected` version, when one is given (a key not stored yet is at none).
    /// On PostgreSQL usually one round trip (see `one_trip`).
    #[tracing::instrument(skip(self, key, value), fields(key = %key), err)]
    pub async fn upsert_if(
        &self,
        workspace_id: Uuid,
        key: &SecretKey,
        value: &SecretValue,
        expected: Expected,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        if self.db.is_sqlite() {
            self.upsert_in_transaction(workspace_id, key, value, expected, actor).await
        } else {
            self.upsert_one_trip(workspace_id, key, value, expected, actor).await
        }
    }

    /// [`SecretService::upsert_if`] as a write transaction.
    async fn upsert_in_transaction(
        &self,
        workspace_id: Uuid,
        key: &SecretKey,
        value: &SecretValue,
        expected: Expected,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        let mut tx = self.db.begin().await?;
        let sealer = self.sealer(&mut tx, workspace_id).await?;
        let required = sealer.require_version;
        let check = |current| check_version(current, expected, required);
        let item = self.write_in(&mut tx, &sealer, key, value, check, actor, None).await?;
        self.events.commit(tx, vec![upserted(workspace_id, &item)]).await?;
        Ok(item)
    }

    /// Upserts inside a caller's transaction (a form submission storing several values at
    /// once, in answer to a request: no version is named); the caller announces the change
    /// after committing.
    pub async fn upsert_in(
        &self,
        tx: &mut Tx,
        sealer: &Sealer,
        key: &SecretKey,
        value: &SecretValue,
        actor: &Actor,
        detail: Option<&str>,
    ) -> Result<SecretItem, AppError> {
        self.write_in(tx, sealer, key, value, |_| Ok(()), actor, detail).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_in(
        &self,
        tx: &mut Tx,
        sealer: &Sealer,
        key: &SecretKey,
        value: &SecretValue,
        check: impl Fn(i64) -> Result<(), AppError>,
        actor: &Actor,
        detail: Option<&str>,
    ) -> Result<SecretItem, AppError> {
        let workspace_id = sealer.workspace_id;
        let seal_for = |id: Uuid, version: i64| sealer.seal(value, id, key.as_str(), version);
        let item = store::upsert_secret_in(tx, workspace_id, key.as_str(), seal_for, check, &actor.0).await?;
        store::keep_version(tx, workspace_id, item.id, item.version, self.history.keep_versions).await?;
        store::audit(tx, &audit(workspace_id, actor, AuditAction::SecretUpserted, &item.key, detail)).await?;
        Ok(item)
    }

    /// Deletes a secret; 404 when there is no such secret. Its versions stay restorable for the
    /// configured time.
    pub async fn delete(&self, workspace_id: Uuid, id: Uuid, actor: &Actor) -> Result<(), AppError> {
        self.delete_if(workspace_id, id, None, actor).await
    }

    /// [`SecretService::delete`] as check-and-set.
    #[tracing::instrument(skip(self), err)]
    pub async fn delete_if(
        &self,
        workspace_id: Uuid,
        id: Uuid,
        expected: Expected,
        actor: &Actor,
    ) -> Result<(), AppError> {
        let mut tx = self.db.begin().await?;
        let (_, current) = store::lock_secret(&mut tx, workspace_id, id).await?.ok_or(AppError::NotFound)?;
        check_version(current, expected, store::requires_check_and_set(&mut tx, workspace_id).await?)?;
        let key = store::delete_secret(&mut tx, workspace_id, id, &actor.0).await?.ok_or(AppError::NotFound)?;
        store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::SecretDeleted, &key, None)).await?;
        self.events.commit(tx, vec![Event::SecretDeleted { workspace_id, secret_id: id }]).await?;
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
        let events = items.iter().map(|item| upserted(workspace_id, item)).collect();
        self.events.commit(tx, events).await?;
        Ok(items.len())
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
        let (version, wrapped, require_version) =
            store::active_data_key_in(tx, workspace_id).await?.ok_or(AppError::NotFound)?;
        Ok(Sealer { workspace_id, version, dek: self.kek.unwrap(&wrapped, workspace_id, version)?, require_version })
    }

    fn open(&self, row: &SecretRow) -> Result<SecretValue, AppError> {
        let dek = self.kek.unwrap(&row.wrapped_key, row.workspace_id, row.key_version)?;
        let binding =
            ValueBinding { workspace_id: row.workspace_id, secret_id: row.id, key: &row.key, version: row.version };
        let plain = dek.open_value(&row.nonce, &row.ciphertext, &binding, row.aad_version)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| AppError::Crypto)?;
        Ok(SecretValue::from_plaintext(SecretString::from(text)))
    }
}

/// The event of a secret written.
pub fn upserted(workspace_id: Uuid, item: &SecretItem) -> Event {
    Event::SecretUpserted { workspace_id, secret_id: item.id, key: item.key.clone() }
}

fn audit<'a>(
    workspace_id: Uuid,
    actor: &'a Actor,
    action: AuditAction,
    key: &'a str,
    detail: Option<&'a str>,
) -> store::Audit<'a> {
    store::Audit { workspace_id: Some(workspace_id), actor: &actor.0, action, key: Some(key), detail, run_id: None }
}

impl Sealer {
    /// Seals `value` as `version` of the secret `id` with `key`.
    fn seal(&self, value: &SecretValue, id: Uuid, key: &str, version: i64) -> Sealed {
        let binding = ValueBinding { workspace_id: self.workspace_id, secret_id: id, key, version };
        seal(&self.dek, self.version, value, &binding)
    }
}

fn seal(dek: &DataKey, version: i32, value: &SecretValue, to: &ValueBinding<'_>) -> Sealed {
    let (nonce, ciphertext) = dek.seal_value(value.expose().as_bytes(), to);
    Sealed { nonce, ciphertext, key_version: version, aad_version: VALUE_AAD_VERSION, has_value: !value.is_empty() }
}
