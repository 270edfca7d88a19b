//! Opening the store: connect, migrate, find the master key and prove it is the right one.
//! Every start (the server, each command, a rotation) goes through here, so a missing or wrong
//! key over existing data is one clear error and nothing is written.

use anyhow::{bail, Context};

use crate::server::config::Config;
use crate::server::keys::key_file::{finish_interrupted_rotation, load_master_key};
use crate::server::keys::{KeySource, MasterKey, KEY_FILE_NAME};
use crate::server::store::{self, Db};

/// An open, migrated database and the master key that opens it.
pub struct OpenedStore {
    pub db: Db,
    pub kek: MasterKey,
    /// Where the key came from, for the start-up message.
    pub key_source: KeySource,
}

/// Connects, migrates and loads the master key. `master_key_env` is the value of
/// `LOOPSTACK_SECRETS_MASTER_KEY`, if set.
pub async fn open_store(config: &Config, master_key_env: Option<&str>) -> anyhow::Result<OpenedStore> {
    let db = Db::connect(&config.database_url()).await?;
    db.migrate().await?;

    let check = store::key_check(&db).await.context("failed to read the key check")?;
    let has_data = check.is_some() || store::has_encrypted_data(&db).await.context("failed to inspect the database")?;
    let (mut kek, key_source) = load_master_key(master_key_env, &config.data_dir, !has_data)?;
    if let (Some(blob), KeySource::ExistingFile(path)) = (&check, &key_source) {
        if !kek.verifies(blob) {
            kek = finish_interrupted_rotation(&config.data_dir, path, blob).unwrap_or(kek);
        }
    }
    match check {
        Some(blob) if !kek.verifies(&blob) => bail!(
            "the master key does not match this database: it was encrypted with another key. \
             Set LOOPSTACK_SECRETS_MASTER_KEY (or restore {}) to the key used before; nothing was changed",
            config.data_dir.join(KEY_FILE_NAME).display()
        ),
        Some(_) => {}
        None if has_data => {
            bail!("the database holds encrypted data but no key check; refusing to guess the master key")
        }
        None => store::insert_key_check(&db, &kek.key_check()).await.context("failed to store the key check")?,
    }
    Ok(OpenedStore { db, kek, key_source })
}
