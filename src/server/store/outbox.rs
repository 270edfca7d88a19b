//! The transactional outbox: events recorded in a transaction are written by its commit, in
//! the same transaction as the change; the dispatcher claims them in order, hands them on and
//! marks them dispatched. On PostgreSQL instances claim with `FOR UPDATE SKIP LOCKED`, so each
//! event is dispatched by one of them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::Event;
use crate::server::error::AppError;
use crate::server::store::{on_pool, on_tx, Db, Tx, TxConn};

/// An event recorded in a transaction, written when it commits.
pub(super) struct PendingEvent {
    id: Uuid,
    at: DateTime<Utc>,
    event: Event,
}

impl PendingEvent {
    /// The event.
    pub(super) fn event(&self) -> &Event {
        &self.event
    }
}

/// Records `events` in `tx`: they are written to the outbox when it commits, or never.
pub fn emit(tx: &mut Tx, events: impl IntoIterator<Item = Event>) {
    let at = Utc::now();
    tx.events.extend(events.into_iter().map(|event| PendingEvent { id: Uuid::new_v4(), at, event }));
}

/// Writes the recorded events (called by [`Tx::commit`], after the audit entries).
pub(super) async fn write(tx: &mut Tx, events: &[PendingEvent]) -> Result<(), sqlx::Error> {
    for pending in events {
        let payload = serde_json::to_string(&pending.event).expect("BUG: events always serialize");
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO outbox (id, workspace_id, type, payload, occurred_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(pending.id).bind(pending.event.workspace_id()).bind(pending.event.name()).bind(payload).bind(pending.at)
            .execute(&mut *c).await?.rows_affected());
    }
    Ok(())
}

/// An event waiting in the outbox.
#[derive(Debug, sqlx::FromRow)]
pub struct OutboxRow {
    pub seq: i64,
    pub id: Uuid,
    pub workspace_id: Uuid,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub payload: String,
    pub occurred_at: DateTime<Utc>,
}

/// The oldest events not dispatched yet, up to `limit`, locked for this transaction (another
/// instance's dispatcher skips them).
pub async fn claim_events(tx: &mut Tx, limit: i64) -> Result<Vec<OutboxRow>, AppError> {
    let sql = match tx.conn {
        TxConn::Sqlite(_) => {
            "SELECT seq, id, workspace_id, type, payload, occurred_at FROM outbox WHERE dispatched_at IS NULL ORDER BY seq LIMIT $1"
        }
        TxConn::Postgres(_) => {
            "SELECT seq, id, workspace_id, type, payload, occurred_at FROM outbox WHERE dispatched_at IS NULL ORDER BY seq LIMIT $1
             FOR UPDATE SKIP LOCKED"
        }
    };
    Ok(on_tx!(tx, c => sqlx::query_as(sql).bind(limit).fetch_all(&mut *c).await?))
}

/// Marks events dispatched.
pub async fn mark_dispatched(tx: &mut Tx, seqs: &[i64]) -> Result<(), AppError> {
    let now = Utc::now();
    for seq in seqs {
        on_tx!(tx, c => sqlx::query("UPDATE outbox SET dispatched_at = $1 WHERE seq = $2").bind(now).bind(seq).execute(&mut *c).await?.rows_affected());
    }
    Ok(())
}

/// On PostgreSQL, notifies `channel` with `payload` when `tx` commits (every instance's
/// listener hears it); nothing on SQLite.
pub async fn notify_on_commit(tx: &mut Tx, channel: &str, payload: &str) -> Result<(), AppError> {
    if let TxConn::Postgres(t) = &mut tx.conn {
        sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(&mut **t).await?;
    }
    Ok(())
}

/// How many events wait to be dispatched.
pub async fn undispatched_events(db: &Db) -> Result<i64, AppError> {
    Ok(
        on_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE dispatched_at IS NULL").fetch_one(pool).await?),
    )
}

/// Deletes events dispatched before `before`; how many.
pub async fn purge_dispatched(db: &Db, before: DateTime<Utc>) -> Result<u64, AppError> {
    Ok(
        on_pool!(db, pool => sqlx::query("DELETE FROM outbox WHERE dispatched_at < $1").bind(before).execute(pool).await?.rows_affected()),
    )
}
