//! `AppState`: everything a request needs (pool, config, keys, services), built once at start.
//! Building it also opens the database, migrates it and proves the master key is the right one.

use std::sync::Arc;

use anyhow::{bail, Context};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use uuid::Uuid;

use crate::server::config::Config;
use crate::server::crypto::{load_master_key, DataKey, KeySource, MasterKey};
use crate::server::db::Db;
use crate::server::error::AppError;
use crate::server::events::EventHub;
use crate::server::http::StaticFiles;
use crate::server::passwords::Hasher;
use crate::server::secrets::SecretService;
use crate::server::store;
use crate::server::streams::StreamLimits;
use crate::server::workflow::WorkflowEngine;

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub kek: Arc<MasterKey>,
    pub secrets: SecretService,
    pub events: EventHub,
    pub workflows: WorkflowEngine,
    /// Runs password hashes off the request threads, a bounded number at once.
    pub hasher: Hasher,
    /// Open event streams and long-polls per credential.
    pub streams: StreamLimits,
    pub leptos_options: LeptosOptions,
    pub static_files: StaticFiles,
    background: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for StaticFiles {
    fn from_ref(state: &AppState) -> Self {
        state.static_files.clone()
    }
}

/// What [`open`] found, for the start-up message.
pub struct Opened {
    pub state: AppState,
    pub key_source: KeySource,
}

/// Connects, migrates and loads the master key. `master_key_env` is the value of
/// `LOOPSTACK_SECRETS_MASTER_KEY`, if set. A missing or wrong key over existing data is an
/// error and nothing is written.
pub async fn open(config: Config, master_key_env: Option<&str>) -> anyhow::Result<Opened> {
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
            config.data_dir.join(crate::server::crypto::KEY_FILE_NAME).display()
        ),
        Some(_) => {}
        None if has_data => {
            bail!("the database holds encrypted data but no key check; refusing to guess the master key")
        }
        None => store::insert_key_check(&db, &kek.key_check()).await.context("failed to store the key check")?,
    }

    let kek = Arc::new(kek);
    let events = EventHub::new(db.clone());
    let secrets = SecretService::new(db.clone(), kek.clone(), config.limits(), events.clone());
    let workflows = WorkflowEngine::new(db.clone(), secrets.clone(), events.clone(), config.runs_per_minute);
    let output_name = std::env::var("LEPTOS_OUTPUT_NAME").unwrap_or_else(|_| "loopstack-secrets".into());
    let pkg_dir = std::env::var("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|_| "pkg".into());
    let static_files = StaticFiles::discover(&output_name, &pkg_dir);
    let leptos_options = LeptosOptions::builder()
        .output_name(output_name)
        .site_root(config.site_root.clone())
        .site_pkg_dir(pkg_dir)
        .site_addr(config.addr)
        .hash_files(static_files.hashed())
        .build();
    let background = Arc::default();
    let hasher = config.hashing_threads.map(Hasher::new).unwrap_or_else(Hasher::for_cores);
    let streams = StreamLimits::new(config.max_streams);
    let state = AppState {
        db,
        config: Arc::new(config),
        kek,
        secrets,
        events,
        workflows,
        hasher,
        streams,
        leptos_options,
        static_files,
        background,
    };
    Ok(Opened { state, key_source })
}

/// A rotation that committed but did not get to replace the key file leaves the new key in
/// `master.key.new`: when that key opens the database, it is installed and used.
fn finish_interrupted_rotation(
    data_dir: &std::path::Path,
    key_file: &std::path::Path,
    check: &[u8],
) -> Option<MasterKey> {
    let pending = data_dir.join(crate::server::rotation::NEW_KEY_FILE_NAME);
    let key = MasterKey::from_base64(&std::fs::read_to_string(&pending).ok()?).ok()?;
    if !key.verifies(check) {
        return None;
    }
    crate::server::rotation::install_new_key_file(&pending, key_file).ok()?;
    tracing::warn!("finished an interrupted master key rotation: installed {}", key_file.display());
    Some(key)
}

impl AppState {
    /// Starts what a serving process runs beside requests: the PostgreSQL event listener,
    /// resuming interrupted runs and expiring requests.
    pub async fn start_background(&self) -> anyhow::Result<()> {
        let listener = self.events.start_listener().await.context("failed to listen for events")?;
        let mut tasks = self.background.lock().expect("BUG: the task list lock is never poisoned");
        tasks.extend(listener);
        tasks.push(self.workflows.start_background());
        Ok(())
    }

    /// Stops the background tasks (returning their connections) and closes the pool.
    pub async fn shutdown(&self) {
        let tasks = std::mem::take(&mut *self.background.lock().expect("BUG: the task list lock is never poisoned"));
        for task in tasks {
            task.abort();
        }
        tokio::task::yield_now().await;
        self.db.close().await;
    }

    /// Creates a workspace with a fresh data key and, optionally, its owner.
    pub async fn create_workspace(&self, name: &str, owner: Option<Uuid>) -> Result<Uuid, AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::BadRequest("workspace name must be 1 to 100 characters".into()));
        }
        let id = Uuid::new_v4();
        let wrapped = self.kek.wrap(&DataKey::generate(), id, 1);
        store::insert_workspace(&self.db, id, name, &wrapped, owner).await?;
        Ok(id)
    }
}
