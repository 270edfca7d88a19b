//! SQLite's group commit: concurrent write transactions share one database transaction and
//! one `fsync`.
//!
//! SQLite writes one transaction at a time, and with `synchronous = FULL` every commit waits
//! for the disk. Here all write transactions run on one connection, in turn (a fair queue):
//! each is a savepoint inside the open batch. Committing releases the savepoint and queues
//! again; whichever member of a batch reaches the front first commits the whole batch, so the
//! writers that came meanwhile share its `fsync`. Every caller is answered only after the
//! commit that holds its write returned. A transaction that fails or is dropped is rolled back
//! to its savepoint and takes nothing else with it; a batch whose commit fails fails all its
//! members, which is the truth (none of their writes is on disk).

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Failed batches remembered for the members still to hear of it.
const FAILURES_KEPT: usize = 256;

/// The connection all write transactions take turns on.
#[derive(Clone)]
pub struct GroupCommit {
    writer: Arc<Mutex<Writer>>,
    /// Tasks queued for a turn: a writer that finds none commits at once.
    queued: Arc<AtomicUsize>,
    stats: Arc<Stats>,
}

/// Writes and commits so far (the bench reports writes per commit).
#[derive(Default)]
struct Stats {
    writes: AtomicU64,
    commits: AtomicU64,
}

struct Writer {
    conn: SqliteConnection,
    /// The open batch: its number and how many writes were released into it.
    open: Option<(u64, usize)>,
    /// The number the next batch gets.
    next: u64,
    /// A turn ended without releasing its savepoint: roll it back before anything else.
    dirty: bool,
    /// The latest batches whose commit failed, with why.
    failed: VecDeque<(u64, String)>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Opens the writers' connection with the pool's settings.
    pub async fn open(options: &SqliteConnectOptions) -> Result<GroupCommit, sqlx::Error> {
        let conn = SqliteConnection::connect_with(options).await?;
        let writer = Writer { conn, open: None, next: 1, dirty: false, failed: VecDeque::new() };
        Ok(GroupCommit { writer: Arc::new(Mutex::new(writer)), queued: Arc::default(), stats: Arc::default() })
    }

    /// Writes committed, and commits (each one `fsync`) that carried them.
    pub fn stats(&self) -> (u64, u64) {
        (self.stats.writes.load(Ordering::Relaxed), self.stats.commits.load(Ordering::Relaxed))
    }

    async fn turn(&self) -> OwnedMutexGuard<Writer> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let writer = self.writer.clone().lock_owned().await;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        writer
    }

    /// Begins a write transaction: waits for its turn, joins the open batch (or begins one)
    /// and sets its savepoint.
    pub async fn begin(&self) -> Result<Turn, sqlx::Error> {
        let mut writer = self.turn().await;
        writer.tidy().await?;
        if writer.open.is_none() {
            sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut writer.conn).await?;
            writer.open = Some((writer.next, 0));
            writer.next += 1;
        }
        if let Err(err) = sqlx::raw_sql("SAVEPOINT lss_write").execute(&mut writer.conn).await {
            writer.tidy().await?;
            return Err(err);
        }
        Ok(Turn { writer: Some(writer), group: self.clone() })
    }
}

impl Writer {
    /// Rolls back a savepoint a dropped turn left, and a batch that no released write is in.
    async fn tidy(&mut self) -> Result<(), sqlx::Error> {
        if self.dirty {
            if let Err(err) = sqlx::raw_sql("ROLLBACK TO lss_write; RELEASE lss_write").execute(&mut self.conn).await {
                self.fail_batch(&err).await;
                return Err(err);
            }
            self.dirty = false;
        }
        if let Some((_, 0)) = self.open {
            self.open = None;
            sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await?;
        }
        Ok(())
    }

    /// Commits the open batch.
    async fn commit_batch(&mut self, stats: &Stats) -> Result<(), sqlx::Error> {
        let Some((_, writes)) = self.open else { return Ok(()) };
        match sqlx::raw_sql("COMMIT").execute(&mut self.conn).await {
            Ok(_) => {
                self.open = None;
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.writes.fetch_add(writes as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                self.fail_batch(&err).await;
                Err(err)
            }
        }
    }

    /// Ends the open batch as failed: rolled back, its members told why.
    async fn fail_batch(&mut self, err: &sqlx::Error) {
        if let Some((number, _)) = self.open.take() {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
            if self.failed.len() == FAILURES_KEPT {
                self.failed.pop_front();
            }
            self.failed.push_back((number, err.to_string()));
        }
        self.dirty = false;
    }

    /// How batch `number` ended, or `None` while it is open.
    fn outcome(&self, number: u64) -> Option<Result<(), sqlx::Error>> {
        if self.open.is_some_and(|(open, _)| open == number) {
            return None;
        }
        match self.failed.iter().find(|(failed, _)| *failed == number) {
            Some((_, why)) => {
                Some(Err(sqlx::Error::Io(std::io::Error::other(format!("the group commit failed: {why}")))))
            }
            None => Some(Ok(())),
        }
    }
}

/// One write transaction's turn on the connection, inside its savepoint. Dropped without
/// [`Turn::commit`], it is rolled back.
pub struct Turn {
    writer: Option<OwnedMutexGuard<Writer>>,
    group: GroupCommit,
}

impl Deref for Turn {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.writer.as_ref().expect("BUG: a turn holds the writer until it ends").conn
    }
}

impl DerefMut for Turn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.writer.as_mut().expect("BUG: a turn holds the writer until it ends").conn
    }
}

impl Turn {
    /// Releases the savepoint and returns once the batch holding it is on disk.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let mut writer = self.writer.take().expect("BUG: a turn holds the writer until it ends");
        if let Err(err) = sqlx::raw_sql("RELEASE lss_write").execute(&mut writer.conn).await {
            writer.dirty = true;
            writer.tidy().await?;
            return Err(err);
        }
        let number = match &mut writer.open {
            Some((number, writes)) => {
                *writes += 1;
                *number
            }
            None => unreachable!("BUG: a turn runs inside an open batch"),
        };
        let group = self.group.clone();
        if group.queued.load(Ordering::SeqCst) == 0 {
            return writer.commit_batch(&group.stats).await;
        }
        // Others are queued: they join the batch. Come back for its outcome, and commit it if
        // no one has yet; on a task of its own, so a caller that goes away (a closed
        // connection) still leaves the batch committed.
        drop(writer);
        tokio::spawn(async move {
            let mut writer = group.turn().await;
            writer.tidy().await?;
            match writer.outcome(number) {
                Some(outcome) => outcome,
                None => writer.commit_batch(&group.stats).await,
            }
        })
        .await
        .map_err(|err| sqlx::Error::Io(std::io::Error::other(err)))?
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let Some(mut writer) = self.writer.take() else { return };
        writer.dirty = true;
        drop(writer);
        // Roll it back now rather than when the next writer comes: an open batch holds
        // SQLite's write lock, which the CLI and other connections wait for.
        let group = self.group.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut writer = group.turn().await;
                if let Err(err) = writer.tidy().await {
                    tracing::warn!(error = %err, "failed to roll back a write transaction");
                }
            });
        }
    }
}
