//! PostgreSQL's group commit for one-statement writes: concurrent upserts share one
//! transaction and one commit.
//!
//! Every write of a workspace extends its audit chain, whose head is one row: a transaction
//! holds that row's lock until its commit is on disk, and a transaction that notifies (the
//! outbox trigger does) holds a database-wide lock through its commit. One transaction per write
//! therefore commits a workspace's writes one after another (BENCHMARKS.md measures it). Here
//! the statements go through one connection in turn: the writer takes every statement waiting,
//! runs them one after another in one transaction (one round trip each), commits them
//! together, and answers each caller only after that commit returned. Statements that arrive
//! meanwhile form the next batch. A statement that fails aborts the transaction: it is answered
//! with its error and the others, none of whose writes stands, run again in the next batch.
//!
//! No deadlock: until one of its statements stands, a batch holds no lock, and a statement may
//! wait for one as long as it takes. After that the others run under a short `lock_timeout`,
//! because the batch may hold a chain head that the holder of their row waits for (a
//! transaction that locked that row, then wants the head at its commit); one that times out is
//! rolled back with the batch and goes first in the next one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::postgres::{PgArguments, PgPool, PgRow};
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};

/// The most statements one batch commits.
const MAX_BATCH: usize = 128;
/// How long a statement after a batch's first waits for a lock before it goes to the next batch.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '50ms'";
/// PostgreSQL's `lock_not_available`, what `lock_timeout` raises.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// The queue of one-statement writes and the task that commits them in batches.
#[derive(Clone)]
pub struct PgGroupCommit {
    queue: mpsc::UnboundedSender<Job>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for PgGroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgGroupCommit").finish_non_exhaustive()
    }
}

/// Statements committed so far (a write, or an answer that nothing was written) and the
/// commits that carried them.
#[derive(Default)]
struct Stats {
    writes: AtomicU64,
    commits: AtomicU64,
}

/// One statement (its text and bound arguments) and who waits for its row.
struct Job {
    sql: &'static str,
    arguments: PgArguments,
    reply: oneshot::Sender<Result<PgRow, sqlx::Error>>,
}

impl PgGroupCommit {
    /// Starts the writer task over `pool`; it ends when the last handle is dropped.
    pub fn start(pool: PgPool) -> PgGroupCommit {
        let (queue, jobs) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        tokio::spawn(write_batches(pool, jobs, stats.clone()));
        PgGroupCommit { queue, stats }
    }

    /// Runs `sql` with `arguments` in the next batch and answers its one row once the batch is
    /// committed (or the statement's own error, or the commit's).
    pub async fn fetch_one(&self, sql: &'static str, arguments: PgArguments) -> Result<PgRow, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { sql, arguments, reply }).map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::WorkerCrashed)?
    }

    /// The statements committed so far and the commits that carried them.
    pub fn stats(&self) -> (u64, u64) {
        (self.stats.writes.load(Ordering::Relaxed), self.stats.commits.load(Ordering::Relaxed))
    }
}

/// The writer: takes what waits (statements that timed out on a lock first), commits it as one
/// batch, and again.
async fn write_batches(pool: PgPool, mut jobs: mpsc::UnboundedReceiver<Job>, stats: Arc<Stats>) {
    let mut next: VecDeque<Job> = VecDeque::new();
    loop {
        if next.is_empty() {
            match jobs.recv().await {
                Some(job) => next.push_back(job),
                None => return,
            }
        }
        while next.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => next.push_back(job),
                Err(_) => break,
            }
        }
        let batch: Vec<Job> = next.drain(..).collect();
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(err) => {
                fail_all(batch, &err);
                continue;
            }
        };
        match commit_batch(&mut conn, batch, &stats).await {
            Ok(again) => next.extend(again),
            // The connection's state is unknown: close it rather than hand it back.
            Err(()) => drop(conn.detach()),
        }
    }
}

/// Runs `batch` in one transaction on `conn` and answers every member; returns the members to
/// run again, first, in the next batch. `Err` when the connection can no longer be trusted.
///
/// One round trip a statement: a statement that fails aborts the transaction, so the batch is
/// rolled back; that statement is answered with its error (or goes first next time when it
/// only timed out on a lock), and the others, none of whose writes stands, go again.
async fn commit_batch(conn: &mut PgConnection, batch: Vec<Job>, stats: &Stats) -> Result<Vec<Job>, ()> {
    let mut tx = match conn.begin().await {
        Ok(tx) => tx,
        Err(err) => {
            fail_all(batch, &err);
            return Err(());
        }
    };
    let mut done: Vec<(Job, PgRow)> = Vec::with_capacity(batch.len());
    let mut members = batch.into_iter();
    while let Some(job) = members.next() {
        // Once a statement stands, the batch may hold a chain head: wait for locks briefly.
        if done.len() == 1 {
            if let Err(err) = sqlx::query(LOCK_TIMEOUT).execute(&mut *tx).await {
                fail_all(std::iter::once(job).chain(done.into_iter().map(|(job, _)| job)).chain(members), &err);
                return Err(());
            }
        }
        let err = match sqlx::query_with(job.sql, job.arguments.clone()).fetch_one(&mut *tx).await {
            Ok(row) => {
                done.push((job, row));
                continue;
            }
            Err(err) => err,
        };
        let unwritten = done.into_iter().map(|(job, _)| job);
        if let Err(rollback) = tx.rollback().await {
            fail_all(std::iter::once(job).chain(unwritten).chain(members), &rollback);
            return Err(());
        }
        return Ok(if is_lock_timeout(&err) {
            std::iter::once(job).chain(unwritten).chain(members).collect()
        } else {
            let _ = job.reply.send(Err(err));
            unwritten.chain(members).collect()
        });
    }
    match tx.commit().await {
        Ok(()) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.writes.fetch_add(done.len() as u64, Ordering::Relaxed);
            for (job, row) in done {
                let _ = job.reply.send(Ok(row));
            }
            Ok(Vec::new())
        }
        Err(err) => {
            // None of the batch's writes is on disk: every member hears it.
            fail_all(done.into_iter().map(|(job, _)| job), &err);
            Err(())
        }
    }
}

/// Answers every member with `err` (as an I/O error when it is not the connection's own kind,
/// so each caller gets an error of the same meaning: the database could not be written).
fn fail_all(members: impl IntoIterator<Item = Job>, err: &sqlx::Error) {
    for job in members {
        let _ = job.reply.send(Err(copy_of(err)));
    }
}

fn copy_of(err: &sqlx::Error) -> sqlx::Error {
    match err {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => sqlx::Error::Io(std::io::Error::other(other.to_string())),
    }
}

fn is_lock_timeout(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some(LOCK_NOT_AVAILABLE))
}
