//! The operator's global values beneath each workspace's secrets: which keys an agent of a
//! workspace can use, and how a workspace page shows the global ones. Keys and flags only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::SecretService;
use crate::model::{GlobalKey, SecretItem, SecretKeyState};
use crate::server::domain::globals::GlobalSecrets;
use crate::server::domain::Actor;
use crate::server::error::AppError;
use crate::server::store::{self, Listing};

/// Most workspaces whose answer is kept; past it they start over.
const MAX_ANSWERS: usize = 10_000;

/// An answer as JSON text and the listing it was made from.
type Kept = (Arc<Listing>, Arc<str>);

/// `get_secret_keys`' answers, per workspace.
#[derive(Default)]
pub(super) struct KeptAnswers(Mutex<HashMap<Uuid, Kept>>);

impl KeptAnswers {
    fn of(&self, workspace_id: Uuid, listing: &Arc<Listing>) -> Option<Arc<str>> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(&workspace_id).filter(|(from, _)| Arc::ptr_eq(from, listing)).map(|(_, text)| text.clone())
    }

    fn keep(&self, workspace_id: Uuid, listing: Arc<Listing>, text: Arc<str>) {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= MAX_ANSWERS {
            kept.clear();
        }
        kept.insert(workspace_id, (listing, text));
    }
}

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

    /// [`SecretService::key_states`] as JSON text, through the workspace's leak guard (`place`
    /// and `actor` name an audited hit). The text is kept with the listing it was made from and
    /// served again while that listing is current (the guard covers the same values and the
    /// global ones never change), unless the guard masked something: that answer is made, and
    /// audited, on every call.
    pub async fn key_states_json(&self, workspace_id: Uuid, place: &str, actor: &Actor) -> Result<Arc<str>, AppError> {
        let listing = store::listing(&self.db, workspace_id).await?;
        if let Some(text) = self.answers.of(workspace_id, &listing) {
            return Ok(text);
        }
        let mut value = serde_json::to_value(self.overlay(&listing.items)).map_err(anyhow::Error::from)?;
        let masked = self.mask_all_telling(workspace_id, vec![&mut value], place, actor).await?;
        let text: Arc<str> = value.to_string().into();
        if !masked {
            self.answers.keep(workspace_id, listing, text.clone());
        }
        Ok(text)
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
