//! PostgreSQL upserts in one round trip (see `store::upsert_secret_one_trip`). The value is
//! sealed before the row is read, for the id and version this instance expects: the row as
//! its last write of the key left it (or the cached listing shows it), else a new id at version
//! 1; and under the workspace's active data key, kept unwrapped in memory. When another writer
//! moved the row or a rotation added a key version, nothing is written and the answer says what
//! is there: the value is sealed again for that, a second round trip.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::{Sealer, SecretService};
use crate::model::SecretItem;
use crate::server::domain::{Actor, Expected, SecretKey, SecretValue};
use crate::server::error::AppError;
use crate::server::store::{self, OneTrip, OneTripUpsert};

/// Most workspaces whose data key is kept, and most keys whose row is remembered; past either
/// the memory starts over (it holds only guesses and keys the database checks).
const MAX_SEALERS: usize = 10_000;
const MAX_ROWS: usize = 100_000;

/// Tries before a write falls back to a transaction that locks first (every try lost a race).
const TRIES: usize = 4;

/// The guesses one-trip upserts seal for.
#[derive(Default)]
pub(super) struct Expectations {
    sealers: Mutex<HashMap<Uuid, Arc<Sealer>>>,
    rows: Mutex<HashMap<(Uuid, String), (Uuid, i64)>>,
    statements: AtomicU64,
    fallbacks: AtomicU64,
}

/// How many one-trip statements this instance has sent, and how many upserts fell back to a
/// transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OneTripStats {
    pub statements: u64,
    pub fallbacks: u64,
}

impl Expectations {
    fn sealer(&self, workspace_id: Uuid) -> Option<Arc<Sealer>> {
        self.sealers.lock().unwrap_or_else(|p| p.into_inner()).get(&workspace_id).cloned()
    }

    fn keep_sealer(&self, sealer: Arc<Sealer>) {
        let mut sealers = self.sealers.lock().unwrap_or_else(|p| p.into_inner());
        if sealers.len() >= MAX_SEALERS {
            sealers.clear();
        }
        sealers.insert(sealer.workspace_id, sealer);
    }

    fn forget_sealer(&self, workspace_id: Uuid) {
        self.sealers.lock().unwrap_or_else(|p| p.into_inner()).remove(&workspace_id);
    }

    fn row(&self, workspace_id: Uuid, key: &str) -> Option<(Uuid, i64)> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).get(&(workspace_id, key.to_string())).copied()
    }

    fn remember_row(&self, workspace_id: Uuid, key: &str, row: Option<(Uuid, i64)>) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        match row {
            Some(row) => {
                if rows.len() >= MAX_ROWS {
                    rows.clear();
                }
                rows.insert((workspace_id, key.to_string()), row);
            }
            None => {
                rows.remove(&(workspace_id, key.to_string()));
            }
        }
    }
}

impl SecretService {
    /// [`SecretService::upsert_if`] on PostgreSQL: usually one round trip.
    pub(super) async fn upsert_one_trip(
        &self,
        workspace_id: Uuid,
        key: &SecretKey,
        value: &SecretValue,
        expected: Expected,
        actor: &Actor,
    ) -> Result<SecretItem, AppError> {
        let key_text = key.as_str();
        let mut row = self.expected.row(workspace_id, key_text).or_else(|| {
            let listing = self.db.cache().listing(workspace_id)?;
            listing.items.iter().find(|item| item.key == key_text).map(|item| (item.id, item.version))
        });
        for _ in 0..TRIES {
            let sealer = self.one_trip_sealer(workspace_id).await?;
            let (id, version) = row.map_or_else(|| (Uuid::new_v4(), 1), |(id, version)| (id, version + 1));
            let sealed = sealer.seal(value, id, key_text, version);
            let upsert = OneTripUpsert {
                workspace_id,
                key: key_text,
                id,
                version,
                sealed: &sealed,
                actor: &actor.0,
                expected,
                keep: self.history.keep_versions,
            };
            self.expected.statements.fetch_add(1, Ordering::Relaxed);
            match store::upsert_secret_one_trip(&self.db, &upsert).await? {
                OneTrip::Written(item) => {
                    self.expected.remember_row(workspace_id, key_text, Some((item.id, item.version)));
                    self.events.written();
                    return Ok(item);
                }
                OneTrip::Reseal { id, version } => {
                    row = id.map(|id| (id, version));
                    self.expected.remember_row(workspace_id, key_text, row);
                }
                OneTrip::DataKeyChanged => self.expected.forget_sealer(workspace_id),
                OneTrip::Mismatch { current } => {
                    return Err(AppError::VersionMismatch { current, expected: expected.unwrap_or(0) })
                }
                OneTrip::Required => return Err(AppError::VersionRequired),
                OneTrip::NotFound => return Err(AppError::NotFound),
            }
        }
        self.expected.fallbacks.fetch_add(1, Ordering::Relaxed);
        self.upsert_in_transaction(workspace_id, key, value, expected, actor).await
    }

    /// PostgreSQL: the one-trip statements sent so far and the upserts that fell back.
    pub fn one_trip_stats(&self) -> OneTripStats {
        OneTripStats {
            statements: self.expected.statements.load(Ordering::Relaxed),
            fallbacks: self.expected.fallbacks.load(Ordering::Relaxed),
        }
    }

    /// The workspace's active data key, unwrapped once and kept: the one-trip statement checks
    /// that it is still the active one.
    async fn one_trip_sealer(&self, workspace_id: Uuid) -> Result<Arc<Sealer>, AppError> {
        if let Some(sealer) = self.expected.sealer(workspace_id) {
            return Ok(sealer);
        }
        let (version, wrapped, require_version) =
            store::active_data_key(&self.db, workspace_id).await?.ok_or(AppError::NotFound)?;
        let dek = self.kek.unwrap(&wrapped, workspace_id, version)?;
        let sealer = Arc::new(Sealer { workspace_id, version, dek, require_version });
        self.expected.keep_sealer(sealer.clone());
        Ok(sealer)
    }
}
