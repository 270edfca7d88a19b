//! The leak guard of a workspace: a matcher over every stored value, kept per workspace and
//! rebuilt when its secrets change (a fingerprint of the workspace's listing, the count, the
//! newest change and the sum of versions, is taken each time from the listing kept in memory,
//! which every write drops: at once on this instance and for the CLI on SQLite, within the
//! notification delay from another PostgreSQL instance). Whatever goes back to a model or a
//! person passes through [`SecretService::mask_json`]; a match becomes `***` and is audited as
//! `leak.blocked` (where, which key, never the value). Opening the values and building a
//! matcher is CPU work that grows with them: it runs on a blocking thread, never on the
//! threads that serve requests.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{audit, SecretService};
use crate::server::domain::leak::LeakGuard;
use crate::server::domain::{Actor, AuditAction};
use crate::server::error::AppError;
use crate::server::store;

/// What identifies the set of every workspace's values: how many, and the newest change.
pub type Fingerprint = (i64, Option<DateTime<Utc>>);

/// What identifies a workspace's values: how many, the newest change, the sum of versions.
pub type ListingFingerprint = (usize, Option<DateTime<Utc>>, i64);

fn fingerprint_of(listing: &store::Listing) -> ListingFingerprint {
    let items = &listing.items;
    (items.len(), items.iter().map(|item| item.updated_at).max(), items.iter().map(|item| item.version).sum())
}

impl SecretService {
    /// The leak guard over the workspace's current values.
    pub async fn leak_guard(&self, workspace_id: Uuid) -> Result<LeakGuard, AppError> {
        let fingerprint = fingerprint_of(&*store::listing(&self.db, workspace_id).await?);
        if let Some(guard) = self.kept_guard(workspace_id, fingerprint) {
            return Ok(guard);
        }
        let _building = self.guard_builds.lock().await;
        if let Some(guard) = self.kept_guard(workspace_id, fingerprint) {
            return Ok(guard);
        }
        let rows = store::secrets_with_ciphertext(&self.db, workspace_id).await?;
        let guard = self.guard_off_thread(rows).await?;
        self.guards
            .lock()
            .expect("BUG: the guard cache lock is never poisoned")
            .insert(workspace_id, (fingerprint, guard.clone()));
        Ok(guard)
    }

    /// The workspace's guard, if it was built from values with this fingerprint.
    fn kept_guard(&self, workspace_id: Uuid, fingerprint: ListingFingerprint) -> Option<LeakGuard> {
        let guards = self.guards.lock().expect("BUG: the guard cache lock is never poisoned");
        guards.get(&workspace_id).filter(|(seen, _)| *seen == fingerprint).map(|(_, guard)| guard.clone())
    }

    /// Opens `rows` and builds a guard over them, on a blocking thread.
    async fn guard_off_thread(&self, rows: Vec<store::SecretRow>) -> Result<LeakGuard, AppError> {
        let service = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut values = Vec::with_capacity(rows.len());
            for row in &rows {
                values.push((row.key.clone(), service.open(row)?));
            }
            Ok(service.guard_over(&values))
        })
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("building a leak guard failed: {err}")))?
    }

    /// A guard over `values` and the operator's global values (they never change while the
    /// process runs, so the fingerprint need not cover them).
    fn guard_over(&self, values: &[(String, crate::server::domain::SecretValue)]) -> LeakGuard {
        let stored = values.iter().map(|(key, value)| (key.as_str(), value.expose().as_bytes()));
        let globals = self.globals.iter().map(|(key, global)| (key, global.value.expose().as_bytes()));
        LeakGuard::new(stored.chain(globals))
    }

    /// Rebuilds the guard of log lines (every value of every workspace) when the stored values
    /// changed since `seen`; returns what it saw.
    pub async fn refresh_log_guard(&self, seen: Option<Fingerprint>) -> Result<Fingerprint, AppError> {
        let fingerprint = store::all_secrets_fingerprint(&self.db).await?;
        if seen == Some(fingerprint) {
            return Ok(fingerprint);
        }
        let mut rows = Vec::new();
        for (workspace_id, _) in store::all_workspaces(&self.db).await? {
            rows.extend(store::secrets_with_ciphertext(&self.db, workspace_id).await?);
        }
        crate::server::logging::set_guard(self.guard_off_thread(rows).await?);
        Ok(fingerprint)
    }

    /// Masks every stored value of the workspace inside `value`, in place; each key found is
    /// audited as `leak.blocked` at `place` (e.g. `tool get_secret_keys`).
    pub async fn mask_json(
        &self,
        workspace_id: Uuid,
        value: &mut Value,
        place: &str,
        actor: &Actor,
    ) -> Result<(), AppError> {
        self.mask_all(workspace_id, vec![value], place, actor).await
    }

    /// [`SecretService::mask_json`] over several values with one guard.
    pub async fn mask_all(
        &self,
        workspace_id: Uuid,
        values: Vec<&mut Value>,
        place: &str,
        actor: &Actor,
    ) -> Result<(), AppError> {
        self.mask_all_telling(workspace_id, values, place, actor).await.map(|_| ())
    }

    /// [`SecretService::mask_all`], answering whether it masked anything.
    pub(super) async fn mask_all_telling(
        &self,
        workspace_id: Uuid,
        values: Vec<&mut Value>,
        place: &str,
        actor: &Actor,
    ) -> Result<bool, AppError> {
        let guard = self.leak_guard(workspace_id).await?;
        self.mask_with(&guard, workspace_id, values, place, actor).await
    }

    /// [`SecretService::mask_all_telling`] with the workspace's guard as
    /// [`SecretService::leak_guard`] answered it.
    pub async fn mask_with(
        &self,
        guard: &LeakGuard,
        workspace_id: Uuid,
        values: Vec<&mut Value>,
        place: &str,
        actor: &Actor,
    ) -> Result<bool, AppError> {
        if guard.is_empty() {
            return Ok(false);
        }
        let mut found = std::collections::BTreeSet::new();
        for value in values {
            found.extend(guard.mask_json(value));
        }
        if found.is_empty() {
            return Ok(false);
        }
        let mut tx = self.db.begin().await?;
        for key in &found {
            let detail = format!("masked in {place}");
            store::audit(&mut tx, &audit(workspace_id, actor, AuditAction::LeakBlocked, key, Some(&detail))).await?;
        }
        tx.commit().await?;
        tracing::warn!(%workspace_id, place, keys = found.len(), "a stored value was on its way out and was masked");
        Ok(true)
    }
}
