//! The operator's global values beneath each workspace's secrets: which keys an agent of a
//! workspace can use, and how a workspace page shows the global ones. Keys and flags only.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::SecretService;
use crate::model::{GlobalKey, SecretItem, SecretKeyState};
use crate::server::domain::globals::GlobalSecrets;
use crate::server::error::AppError;
use crate::server::store;

impl SecretService {
    /// The operator's global values.
    pub fn globals(&self) -> &GlobalSecrets {
        &self.globals
    }

    /// Every key an agent of the workspace can use, sorted: the workspace's secrets
    /// (`global: false`) and the global keys it does not override (`global: true`). Never
    /// values.
    pub async fn key_states(&self, workspace_id: Uuid) -> Result<Vec<SecretKeyState>, AppError> {
        Ok(self.overlay(&store::listing(&self.db, workspace_id).await?.items))
    }

    /// [`SecretService::key_states`] over a listing already read (inside a transaction).
    pub fn overlay(&self, items: &[SecretItem]) -> Vec<SecretKeyState> {
        let mut states: BTreeMap<&str, SecretKeyState> = self
            .globals
            .iter()
            .map(|(key, global)| {
                (key, SecretKeyState { key: key.to_string(), has_value: !global.value.is_empty(), global: true })
            })
            .collect();
        for item in items {
            let state = SecretKeyState { key: item.key.clone(), has_value: item.has_value, global: false };
            states.insert(&item.key, state);
        }
        states.into_values().collect()
    }

    /// The global keys as a workspace page shows them: which the workspace overrides.
    pub async fn global_keys(&self, workspace_id: Uuid) -> Result<Vec<GlobalKey>, AppError> {
        if self.globals.is_empty() {
            return Ok(Vec::new());
        }
        let listing = store::listing(&self.db, workspace_id).await?;
        let own: BTreeSet<&str> = listing.items.iter().map(|item| item.key.as_str()).collect();
        let keys = self.globals.iter().map(|(key, global)| GlobalKey {
            key: key.to_string(),
            has_value: !global.value.is_empty(),
            overridden: own.contains(key),
        });
        Ok(keys.collect())
    }
}
