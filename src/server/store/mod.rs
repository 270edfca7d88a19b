//! The store: every SQL statement of the application, written once for both engines, one file
//! per table group, and the database handle. SQLite (embedded default) or PostgreSQL is chosen
//! by the URL, with one migrations folder per engine. Queries use `$n` placeholders (both
//! engines accept them) and run on whichever pool is in use through [`on_pool!`] or inside a
//! transaction through [`on_tx!`]. Functions here know rows, not HTTP, and decide no rules;
//! the services call them, inside their transactions where a change spans rows.

mod audit;
mod cache;
mod change_signal;
mod data_keys;
mod egress;
mod elicitations;
mod group_commit;
mod one_trip;
mod outbox;
mod pg_group_commit;
pub mod runs;
mod secrets;
mod sessions;
mod tokens;
mod users;
mod versions;
mod webhooks;

pub use audit::*;
pub use cache::{arrive_again, one_check_per_request, Listing, ReadCache, CHANGES_CHANNEL};
pub use data_keys::*;
pub use egress::*;
pub use elicitations::*;
pub use one_trip::*;
pub use outbox::*;
pub use secrets::*;
pub use sessions::*;
pub use tokens::*;
pub use users::*;
pub use versions::*;
pub use webhooks::*;

use anyhow::Context;
use change_signal::ChangeSignal;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The database: a pool over one of the supported engines, and what the hot reads serve from
/// memory (see [`ReadCache`]), shared by every clone.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: Pool,
    cache: Arc<ReadCache>,
    /// SQLite: the connection write transactions take turns on (see [`group_commit`]).
    writer: Option<group_commit::GroupCommit>,
    /// PostgreSQL: the queue one-statement upserts share commits through (see
    /// [`pg_group_commit`]).
    pg_writes: Option<pg_group_commit::PgGroupCommit>,
}

/// A pool of one of the supported engines.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db`; the body is compiled once per
/// engine, so the same query text and row types serve both.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &($db).pool {
            $crate::server::store::Pool::Sqlite($pool) => $body,
            $crate::server::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub use crate::on_pool;

/// A write transaction on either engine. On SQLite it is a savepoint in a group commit (see
/// [`group_commit`]): writers queue fairly for the one write connection, and concurrent ones
/// share a commit.
/// Audit entries recorded in it are chained and written by [`Tx::commit`], last, so a
/// transaction holds its audit chain's head only for its final statements and never waits for
/// another lock while holding it; events recorded in it go to the outbox in the same commit.
pub struct Tx {
    /// The engine's transaction; statements reach it through [`on_tx!`] and [`on_conn!`].
    pub conn: TxConn,
    audits: Vec<audit::Pending>,
    events: Vec<outbox::PendingEvent>,
    /// Invalidated by the events when the transaction commits.
    cache: Arc<ReadCache>,
}

/// The engine's transaction inside a [`Tx`].
pub enum TxConn {
    Sqlite(group_commit::Turn),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection (`&mut` of the engine's
/// connection type; reborrow with `&mut *$conn` for each statement).
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut ($tx).conn {
            $crate::server::store::TxConn::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::server::store::TxConn::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}
pub use crate::on_tx;

/// Where one statement runs: on the pool, as a statement of its own, or inside a transaction.
/// A store function that serves both takes `impl Into<Conn>`, so callers pass `&db` or
/// `&mut tx` and each statement is written once.
pub enum Conn<'a> {
    Pool(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> From<&'a Db> for Conn<'a> {
    fn from(db: &'a Db) -> Conn<'a> {
        Conn::Pool(db)
    }
}

impl<'a> From<&'a mut Tx> for Conn<'a> {
    fn from(tx: &'a mut Tx) -> Conn<'a> {
        Conn::Tx(tx)
    }
}

/// Runs `$body` with `$exec` bound to an executor for the [`Conn`]: the engine's pool or the
/// transaction's connection. The body is compiled once per engine and place and uses `$exec`
/// once (one statement).
#[macro_export]
macro_rules! on_conn {
    ($conn:expr, $exec:ident => $body:expr) => {
        match $conn {
            $crate::server::store::Conn::Pool(db) => match &db.pool {
                $crate::server::store::Pool::Sqlite($exec) => $body,
                $crate::server::store::Pool::Postgres($exec) => $body,
            },
            $crate::server::store::Conn::Tx(tx) => match &mut tx.conn {
                $crate::server::store::TxConn::Sqlite(t) => {
                    let $exec = &mut **t;
                    $body
                }
                $crate::server::store::TxConn::Postgres(t) => {
                    let $exec = &mut **t;
                    $body
                }
            },
        }
    };
}
pub use crate::on_conn;

/// How a transaction holds a workspace against concurrent ones, on PostgreSQL. SQLite's write
/// transactions run one at a time (`BEGIN IMMEDIATE`), so there no lock is taken.
#[derive(Clone, Copy, Debug)]
pub enum WorkspaceLock {
    /// Writers sealing under the active data key: a new key version waits for them.
    Share,
    /// Counting the workspace's recent runs before starting one: starts take turns.
    NoKeyUpdate,
    /// Adding a data key version: waits for every writer still holding a share.
    Update,
}

impl Tx {
    /// Writes the events recorded in the transaction to the outbox and its audit entries, each
    /// at the end of its chain, and commits; then drops what the events changed from this
    /// instance's memory, before the caller can answer anyone (also when the commit reports
    /// an error: it may have committed all the same).
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let events = std::mem::take(&mut self.events);
        outbox::write(&mut self, &events).await?;
        let audits = std::mem::take(&mut self.audits);
        audit::append(&mut self, audits).await?;
        let Tx { conn, cache, .. } = self;
        let committed = match conn {
            TxConn::Sqlite(t) => t.commit().await,
            TxConn::Postgres(t) => t.commit().await,
        };
        cache.apply(events.iter().map(outbox::PendingEvent::event));
        if committed.is_ok() && !events.is_empty() {
            cache.announce_commit();
        }
        committed
    }

    /// Locks a workspace until the transaction ends (PostgreSQL; see [`WorkspaceLock`]).
    ///
    /// The data key's share and update are a transaction-scoped advisory lock, not a row lock:
    /// the lock manager queues them fairly, so a rotation waiting for the writers blocks new
    /// writers until it has its turn. Row locks let new sharers in past a waiting updater, and
    /// a steady stream of writers starved the rotation.
    pub async fn lock_workspace(&mut self, workspace_id: uuid::Uuid, lock: WorkspaceLock) -> Result<(), sqlx::Error> {
        if let TxConn::Postgres(t) = &mut self.conn {
            let (sql, name) = match lock {
                WorkspaceLock::Share => {
                    ("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))", format!("data key {workspace_id}"))
                }
                WorkspaceLock::Update => {
                    ("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", format!("data key {workspace_id}"))
                }
                WorkspaceLock::NoKeyUpdate => {
                    let sql = "SELECT 1 FROM workspaces WHERE id = $1::uuid FOR NO KEY UPDATE";
                    sqlx::query(sql).bind(workspace_id).execute(&mut **t).await?;
                    return Ok(());
                }
            };
            sqlx::query(sql).bind(name).execute(&mut **t).await?;
        }
        Ok(())
    }

    /// Serializes the transactions that take the same `name` until they end (PostgreSQL
    /// advisory locks; SQLite's writers are serialized already). Take several names in the same
    /// order everywhere.
    pub async fn lock_name(&mut self, name: &str) -> Result<(), sqlx::Error> {
        if let TxConn::Postgres(t) = &mut self.conn {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(name).execute(&mut **t).await?;
        }
        Ok(())
    }
}

impl Db {
    /// Begins a write transaction.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let conn = match (&self.pool, &self.writer) {
            (Pool::Sqlite(_), Some(writer)) => TxConn::Sqlite(writer.begin().await?),
            (Pool::Sqlite(_), None) => unreachable!("BUG: a SQLite database opens with its writer"),
            (Pool::Postgres(pool), _) => TxConn::Postgres(pool.begin().await?),
        };
        Ok(Tx { conn, audits: Vec::new(), events: Vec::new(), cache: self.cache.clone() })
    }

    /// What the hot reads serve from memory.
    pub fn cache(&self) -> &ReadCache {
        &self.cache
    }

    /// The cache, fresh: on SQLite, the events other processes committed are applied first
    /// (see [`ReadCache::catch_up`]).
    pub async fn fresh_cache(&self) -> Result<&ReadCache, sqlx::Error> {
        if let Pool::Sqlite(pool) = &self.pool {
            self.cache
                .catch_up(|after| async move {
                    sqlx::query_as("SELECT seq, payload FROM outbox WHERE seq > $1 ORDER BY seq")
                        .bind(after)
                        .fetch_all(pool)
                        .await
                })
                .await?;
        }
        Ok(&self.cache)
    }

    /// The writes committed so far through the engine's group commit and the commits that
    /// carried them, since this handle was opened: SQLite's write transactions (each commit one
    /// `fsync`), PostgreSQL's one-statement upserts.
    pub fn group_commit_stats(&self) -> Option<(u64, u64)> {
        match (&self.writer, &self.pg_writes) {
            (Some(writer), _) => Some(writer.stats()),
            (None, Some(pg)) => Some(pg.stats()),
            (None, None) => None,
        }
    }

    /// Whether this is the embedded SQLite.
    pub fn is_sqlite(&self) -> bool {
        matches!(self.pool, Pool::Sqlite(_))
    }

    /// Connects to `url`. A SQLite file (and its folder) is created when missing, in WAL mode
    /// with foreign keys on and `synchronous = FULL`, so an acknowledged commit survives a crash.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .context("failed to connect to PostgreSQL")?;
            let pg_writes = Some(pg_group_commit::PgGroupCommit::start(pool.clone()));
            return Ok(Db {
                pool: Pool::Postgres(pool),
                cache: Arc::new(ReadCache::new(false)),
                writer: None,
                pg_writes,
            });
        }
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid database URL {url}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let file = options.get_filename();
        if let Some(dir) = file.parent() {
            crate::server::keys::key_file::create_private_dir(dir)?;
        }
        create_private_file(file)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .context("failed to open the SQLite database")?;
        let writer = group_commit::GroupCommit::open(&options).await.context("failed to open the SQLite database")?;
        let mut cache = ReadCache::new(true);
        if !file.as_os_str().is_empty() && file.as_os_str() != ":memory:" {
            let signal = ChangeSignal::open(file)
                .with_context(|| format!("failed to open the change counter beside {}", file.display()))?;
            cache = cache.with_signal(signal);
        }
        Ok(Db { pool: Pool::Sqlite(pool), cache: Arc::new(cache), writer: Some(writer), pg_writes: None })
    }

    /// Applies the migrations of this engine, then chains the audit entries written before
    /// the log was a chain. On SQLite the cache then follows the outbox from its end.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await,
            Pool::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
        }
        .context("failed to apply database migrations")?;
        audit::chain_unchained(self).await.context("failed to chain the audit log")?;
        if let Pool::Sqlite(pool) = &self.pool {
            let end: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetch_one(pool).await?;
            self.cache.follow_from(end).await;
        }
        Ok(())
    }

    /// The engine's name, for messages.
    pub fn engine(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    /// Closes every connection (used before exit and in tests).
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Creates an empty database file readable by its owner only (mode 0600) when it is missing.
/// SQLite gives its `-wal` and `-shm` files the mode of the database file, so they are
/// private too. An in-memory database has no file.
fn create_private_file(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(());
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("failed to create {}", path.display())),
    }
}

/// Escapes `\`, `%` and `_` so a search for them matches them literally (`LIKE ... ESCAPE '\'`).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
