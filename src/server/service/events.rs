//! The event hub: secret, request, token and member changes (ids, keys and states only).
//!
//! Events go through the transactional outbox: a service records them in the transaction of
//! its change ([`EventHub::commit`]), so they are written or lost with it. The dispatcher then
//! claims them in order and, in one transaction with marking them dispatched, queues one
//! delivery per subscribed webhook and hands them to the live event streams and long-polls: on
//! PostgreSQL through `NOTIFY` (sent at that commit; every instance `LISTEN`s and rebroadcasts
//! locally; instances take turns and claim with `SKIP LOCKED`, so each event is dispatched once
//! and in order), on SQLite
//! (one process) in process after the commit. An event committed just before the server died is
//! dispatched when it starts again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, Notify};

use crate::model::Event;
use crate::server::domain::webhook;
use crate::server::error::AppError;
use crate::server::store::{self, Db, Pool, Tx};

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "loopstack_secrets_events";
/// Events dispatched per transaction.
const BATCH: i64 = 100;
/// How long dispatched events stay in the outbox (for inspection) before they are deleted.
const KEEP_DISPATCHED: chrono::Duration = chrono::Duration::hours(24);

/// Publishes and subscribes to [`Event`]s.
#[derive(Clone)]
pub struct EventHub {
    db: Db,
    local: broadcast::Sender<Event>,
    /// Wakes this instance's dispatcher after a commit that wrote events.
    dispatch: Arc<Notify>,
    /// Wakes the webhook sender after deliveries were queued.
    webhooks: Arc<Notify>,
}

impl EventHub {
    /// A hub over `db`, waking the webhook sender through `webhooks`.
    pub fn new(db: Db, webhooks: Arc<Notify>) -> EventHub {
        let (local, _) = broadcast::channel(1024);
        EventHub { db, local, dispatch: Arc::default(), webhooks }
    }

    /// Receives every event delivered to this instance from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }

    /// Records `events` in `tx` (the outbox row is written with the change) and commits; then
    /// wakes the dispatcher.
    pub async fn commit(&self, mut tx: Tx, events: Vec<Event>) -> Result<(), AppError> {
        let any = !events.is_empty();
        store::emit(&mut tx, events);
        tx.commit().await?;
        if any {
            self.dispatch.notify_one();
        }
        Ok(())
    }

    /// Wakes the dispatcher for events a statement of its own committed (a one-trip upsert).
    pub fn written(&self) {
        self.dispatch.notify_one();
    }

    /// Starts the dispatcher: it dispatches whenever woken, and every second (events left by a
    /// server that died, or committed by another instance that did not get to them).
    pub fn start_dispatcher(&self) -> tokio::task::AbortHandle {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut last_purge = std::time::Instant::now() - Duration::from_secs(3600);
            loop {
                tokio::select! {
                    _ = hub.dispatch.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                loop {
                    match hub.dispatch_once().await {
                        Ok(0) => break,
                        Ok(_) => continue,
                        Err(err) => {
                            tracing::warn!(error = %err, "failed to dispatch events");
                            break;
                        }
                    }
                }
                if last_purge.elapsed() > Duration::from_secs(3600) {
                    last_purge = std::time::Instant::now();
                    if let Err(err) = store::purge_dispatched(&hub.db, chrono::Utc::now() - KEEP_DISPATCHED).await {
                        tracing::warn!(error = %err, "failed to purge dispatched events");
                    }
                }
            }
        })
        .abort_handle()
    }

    /// Dispatches the oldest waiting events, in one transaction; how many.
    pub async fn dispatch_once(&self) -> Result<usize, AppError> {
        let mut tx = self.db.begin().await?;
        // Instances dispatch in turn: two claiming side by side (`SKIP LOCKED`) could each take
        // part of one transaction's events and publish them out of order.
        tx.lock_name("outbox dispatch").await?;
        let rows = store::claim_events(&mut tx, BATCH).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut queued = 0;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let value: serde_json::Value = serde_json::from_str(&row.payload).map_err(anyhow::Error::from)?;
            let body = webhook::body(row.id, row.occurred_at, &value);
            queued += store::queue_deliveries(&mut tx, row.workspace_id, row.id, &row.kind, &body).await?;
            store::notify_on_commit(&mut tx, CHANNEL, &row.payload).await?;
            match serde_json::from_value::<Event>(value) {
                Ok(event) => events.push(event),
                Err(err) => tracing::warn!(error = %err, "an event in the outbox no longer parses"),
            }
        }
        let seqs: Vec<i64> = rows.iter().map(|row| row.seq).collect();
        store::mark_dispatched(&mut tx, &seqs).await?;
        tx.commit().await?;
        if self.db.is_sqlite() {
            for event in events {
                let _ = self.local.send(event);
            }
        }
        if queued > 0 {
            self.webhooks.notify_one();
        }
        Ok(rows.len())
    }

    /// On PostgreSQL, starts listening (before returning, so no later change is missed) for
    /// every instance's notifications: dispatched events are rebroadcast locally, and changes
    /// (the outbox trigger's, at each commit) invalidate the read cache, which serves only
    /// while this listener is connected. Does nothing on SQLite.
    pub async fn start_listener(&self) -> anyhow::Result<Option<tokio::task::AbortHandle>> {
        let Pool::Postgres(pool) = &self.db.pool else { return Ok(None) };
        let pool = pool.clone();
        let mut listener = listen(&pool).await?;
        self.db.cache().enable();
        let (local, db) = (self.local.clone(), self.db.clone());
        let task = tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) if notification.channel() == store::CHANGES_CHANNEL => {
                        db.cache().apply_json(notification.payload());
                    }
                    Ok(Some(notification)) => match serde_json::from_str::<Event>(notification.payload()) {
                        Ok(event) => {
                            let _ = local.send(event);
                        }
                        Err(err) => tracing::warn!(error = %err, "ignored a malformed event notification"),
                    },
                    Ok(None) | Err(_) => {
                        // Notifications sent while the connection was down are lost: serve
                        // nothing from memory until a new connection listens.
                        db.cache().disable();
                        tracing::warn!("event listener lost its connection; reconnecting");
                        listener = loop {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            match listen(&pool).await {
                                Ok(listener) => break listener,
                                Err(err) => tracing::warn!(error = %err, "event listener could not reconnect"),
                            }
                        };
                        db.cache().enable();
                    }
                }
            }
        });
        Ok(Some(task.abort_handle()))
    }
}

/// A new listener on the event and change channels.
async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen_all([CHANNEL, store::CHANGES_CHANNEL]).await?;
    Ok(listener)
}
