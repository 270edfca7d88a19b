//! `AppState`: everything a request needs (pool, config, keys, services, the site's files),
//! built once at start; handlers take it by `State`, server functions through the context.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::server::config::Config;
use crate::server::domain::globals::GlobalSecrets;
use crate::server::keys::passwords::Hasher;
use crate::server::keys::{KeySource, MasterKey};
use crate::server::service::events::EventHub;
use crate::server::service::open::{open_store, OpenedStore};
use crate::server::service::secrets::SecretService;
use crate::server::service::sessions::{SessionService, SIGN_IN_WINDOW_SECS};
use crate::server::service::webhooks::WebhookService;
use crate::server::service::workflow::WorkflowEngine;
use crate::server::store::{AttemptLimits, Db};
use crate::server::web::http::StaticFiles;
use crate::server::web::streams::StreamLimits;

/// Shared application state: one pointer, so a clone (each request makes several: every
/// extractor and middleware that takes the state) is one reference count, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub db: Db,
    pub config: Arc<Config>,
    pub kek: Arc<MasterKey>,
    pub secrets: SecretService,
    pub events: EventHub,
    /// Registers webhooks and sends their deliveries.
    pub webhooks: WebhookService,
    pub workflows: WorkflowEngine,
    /// Runs password hashes off the request threads, a bounded number at once.
    pub hasher: Hasher,
    /// Sign-in and the sessions it opens.
    pub sessions: SessionService,
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

/// Opens the store (see [`open_store`]) and builds the services and what the web layer needs.
/// `master_key_env` is the value of `LOOPSTACK_SECRETS_MASTER_KEY`, if set. The global keys'
/// values are read from this process's environment.
pub async fn open(config: Config, master_key_env: Option<&str>) -> anyhow::Result<Opened> {
    open_with_env(config, master_key_env, |name| std::env::var(name).ok()).await
}

/// [`open`], reading the global keys' values (and their hosts) through `env`. A global key
/// that may not be a secret's key stops the start before anything is opened.
pub async fn open_with_env(
    config: Config,
    master_key_env: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Opened> {
    let globals = Arc::new(GlobalSecrets::load(&config.global_keys, &config.limits(), env)?);
    let OpenedStore { db, kek, key_source } = open_store(&config, master_key_env).await?;
    let kek = Arc::new(kek);
    let hasher = config.hashing_threads.map(Hasher::new).unwrap_or_else(Hasher::for_cores);
    let limits = AttemptLimits {
        window_secs: SIGN_IN_WINDOW_SECS,
        per_user: config.sign_in_failures_per_user,
        per_client: config.sign_in_failures_per_address,
    };
    let sessions = SessionService::new(db.clone(), hasher.clone(), limits, config.session_hours);
    let webhook_wake = Arc::new(tokio::sync::Notify::new());
    let events = EventHub::new(db.clone(), webhook_wake.clone());
    let webhooks = WebhookService::new(db.clone(), kek.clone(), config.webhooks(), webhook_wake);
    let secrets = SecretService::new(db.clone(), kek.clone(), config.limits(), events.clone(), globals)
        .with_history(config.history());
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
    let streams = StreamLimits::new(config.max_streams);
    let state = AppState(Arc::new(Shared {
        db,
        config: Arc::new(config),
        kek,
        secrets,
        events,
        webhooks,
        workflows,
        hasher,
        sessions,
        streams,
        leptos_options,
        static_files,
        background,
    }));
    Ok(Opened { state, key_source })
}

impl AppState {
    /// Starts what a serving process runs beside requests: the PostgreSQL event listener,
    /// resuming interrupted runs and expiring requests.
    pub async fn start_background(&self) -> anyhow::Result<()> {
        let listener = self.events.start_listener().await.context("failed to listen for events")?;
        let mut tasks = self.background.lock().expect("BUG: the task list lock is never poisoned");
        tasks.extend(listener);
        tasks.push(self.events.start_dispatcher());
        tasks.push(self.webhooks.start());
        tasks.push(self.workflows.start_background());
        tasks.push(self.watch_log_guard());
        tasks.push(self.purge_deleted_secrets());
        Ok(())
    }

    /// Destroys the versions of secrets deleted longer ago than the retention window, at start
    /// and hourly (a restore checks the window itself, so the hour between matters to no one).
    fn purge_deleted_secrets(&self) -> tokio::task::AbortHandle {
        let secrets = self.secrets.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                if let Err(err) = secrets.purge_deleted().await {
                    tracing::warn!(error = %err, "failed to destroy the versions of deleted secrets");
                }
            }
        })
        .abort_handle()
    }

    /// Keeps the log lines' leak guard current: the stored values are checked every few
    /// seconds (a count and the newest change), and the guard is rebuilt when they changed.
    fn watch_log_guard(&self) -> tokio::task::AbortHandle {
        let secrets = self.secrets.clone();
        tokio::spawn(async move {
            let mut seen = None;
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                match secrets.refresh_log_guard(seen).await {
                    Ok(fingerprint) => seen = Some(fingerprint),
                    Err(err) => tracing::warn!(error = %err, "failed to refresh the log guard"),
                }
            }
        })
        .abort_handle()
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
}
