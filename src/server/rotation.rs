//! `rotate-master-key`: every workspace data key is rewrapped under a new master key in one
//! transaction, with the key check; values are not touched. With a key file, the new key is
//! first written beside the old one (`master.key.new`), the transaction commits, then the new
//! file replaces the old one: an interruption at any point leaves a store that opens (before
//! the commit with the old key, after it with the pending new file, which the next start
//! finishes installing).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::server::config::Config;
use crate::server::crypto::{write_key_file, KeySource, MasterKey, KEY_FILE_NAME};
use crate::server::db::{on_tx, Tx};
use crate::server::error::AppError;
use crate::server::state;

/// Name of the pending new key file during a rotation.
pub const NEW_KEY_FILE_NAME: &str = "master.key.new";

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    pub data_keys: usize,
    pub key_file: Option<PathBuf>,
}

/// Rotates the master key. `current_env` is `LOOPSTACK_SECRETS_MASTER_KEY`, `new_env`
/// `LOOPSTACK_SECRETS_NEW_MASTER_KEY`. With an environment key the new key must come from
/// the environment too (the operator then starts with it); with a key file a new key is
/// generated unless one is given.
pub async fn rotate_master_key(
    config: Config,
    current_env: Option<&str>,
    new_env: Option<&str>,
) -> anyhow::Result<Rotation> {
    let data_dir = config.data_dir.clone();
    let opened = state::open(config, current_env).await?;
    let state = opened.state;
    let new_file = data_dir.join(NEW_KEY_FILE_NAME);
    let new_key = match (new_env.filter(|k| !k.trim().is_empty()), &opened.key_source) {
        (Some(text), _) => MasterKey::from_base64(text).context("LOOPSTACK_SECRETS_NEW_MASTER_KEY is invalid")?,
        (None, KeySource::Environment) => {
            bail!("the master key comes from LOOPSTACK_SECRETS_MASTER_KEY: give the new one in LOOPSTACK_SECRETS_NEW_MASTER_KEY")
        }
        (None, _) => MasterKey::generate(),
    };
    let uses_file = !matches!(opened.key_source, KeySource::Environment);
    if uses_file {
        let _ = std::fs::remove_file(&new_file);
        write_key_file(&new_file, &new_key)?;
    }

    let mut tx = state.db.begin().await?;
    let data_keys = rewrap_all(&mut tx, &state.kek, &new_key).await?;
    tx.commit().await.context("failed to commit the rotation")?;
    state.shutdown().await;

    let key_file = if uses_file {
        let path = data_dir.join(KEY_FILE_NAME);
        install_new_key_file(&new_file, &path)?;
        Some(path)
    } else {
        None
    };
    Ok(Rotation { data_keys, key_file })
}

/// Rewraps every data key and replaces the key check, inside `tx`.
async fn rewrap_all(tx: &mut Tx, old: &MasterKey, new: &MasterKey) -> Result<usize, AppError> {
    let keys: Vec<(uuid::Uuid, i32, Vec<u8>)> = on_tx!(tx, conn => sqlx::query_as(
        "SELECT workspace_id, version, wrapped_key FROM workspace_keys ORDER BY workspace_id, version")
        .fetch_all(&mut *conn).await?);
    for (workspace_id, version, wrapped) in &keys {
        let dek = old.unwrap(wrapped, *workspace_id, *version)?;
        let rewrapped = new.wrap(&dek, *workspace_id, *version);
        on_tx!(tx, conn => sqlx::query("UPDATE workspace_keys SET wrapped_key = $1 WHERE workspace_id = $2 AND version = $3")
            .bind(&rewrapped).bind(workspace_id).bind(version).execute(&mut *conn).await?.rows_affected());
    }
    on_tx!(tx, conn => sqlx::query("UPDATE key_check SET blob = $1 WHERE id = 1")
        .bind(new.key_check()).execute(&mut *conn).await?.rows_affected());
    Ok(keys.len())
}

/// Atomically puts the pending new key file in place of the current one.
pub fn install_new_key_file(new_file: &Path, key_file: &Path) -> anyhow::Result<()> {
    std::fs::rename(new_file, key_file)
        .with_context(|| format!("failed to move {} to {}", new_file.display(), key_file.display()))?;
    if let Some(dir) = key_file.parent() {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}
