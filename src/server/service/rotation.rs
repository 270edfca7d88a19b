//! `rotate-master-key`: every workspace data key is rewrapped under a new master key in one
//! transaction, with the key check; values are not touched. With a key file, the new key is
//! first written beside the old one (`master.key.new`), the transaction commits, then the new
//! file replaces the old one: an interruption at any point leaves a store that opens (before
//! the commit with the old key, after it with the pending new file, which the next start
//! finishes installing).

use std::path::PathBuf;

use anyhow::{bail, Context};

use crate::server::config::Config;
use crate::server::error::AppError;
use crate::server::keys::key_file::{install_new_key_file, write_key_file, NEW_KEY_FILE_NAME};
use crate::server::keys::{KeySource, MasterKey, KEY_FILE_NAME};
use crate::server::service::open::open_store;
use crate::server::store::{self, Tx};

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
    let opened = open_store(&config, current_env).await?;
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

    let mut tx = opened.db.begin().await?;
    let data_keys = rewrap_all(&mut tx, &opened.kek, &new_key).await?;
    tx.commit().await.context("failed to commit the rotation")?;
    opened.db.close().await;

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
    let keys = store::all_wrapped_keys_in(tx).await?;
    for (workspace_id, version, wrapped) in &keys {
        let dek = old.unwrap(wrapped, *workspace_id, *version)?;
        store::set_wrapped_key_in(tx, *workspace_id, *version, &new.wrap(&dek, *workspace_id, *version)).await?;
    }
    store::set_key_check_in(tx, &new.key_check()).await?;
    Ok(keys.len())
}
