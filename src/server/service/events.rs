//! The event hub: secret and workflow changes (ids, keys and states only) fanned out to event
//! streams and long-polls. On PostgreSQL every change goes through `NOTIFY`, and each instance
//! `LISTEN`s and rebroadcasts locally, so several instances behave as one; on SQLite (one
//! process) the hub is in process.

use std::time::Duration;

use tokio::sync::broadcast;

use crate::model::Event;
use crate::server::store::Db;

/// The PostgreSQL notification channel.
pub const CHANNEL: &str = "loopstack_secrets_events";

/// Publishes and subscribes to [`Event`]s.
#[derive(Clone)]
pub struct EventHub {
    db: Db,
    local: broadcast::Sender<Event>,
}

impl EventHub {
    /// A hub over `db`.
    pub fn new(db: Db) -> EventHub {
        let (local, _) = broadcast::channel(1024);
        EventHub { db, local }
    }

    /// Receives every event delivered to this instance from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }

    /// Publishes events after their change has committed. A failed notify is logged, not
    /// returned: the change itself is durable, and waiters re-read state on timeout.
    pub async fn publish(&self, events: Vec<Event>) {
        for event in events {
            match &self.db {
                Db::Sqlite(_) => {
                    let _ = self.local.send(event);
                }
                Db::Postgres(pool) => {
                    let payload = serde_json::to_string(&event).expect("BUG: events always serialize");
                    if let Err(err) =
                        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(pool).await
                    {
                        tracing::warn!(error = %err, event = event.name(), "failed to publish an event");
                    }
                }
            }
        }
    }

    /// On PostgreSQL, starts listening (before returning, so no later change is missed) for
    /// every instance's notifications and rebroadcasts them locally. `PgListener` reconnects
    /// by itself after a lost connection. Does nothing on SQLite.
    pub async fn start_listener(&self) -> anyhow::Result<Option<tokio::task::AbortHandle>> {
        let Db::Postgres(pool) = &self.db else { return Ok(None) };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        let local = self.local.clone();
        let task = tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(notification) => match serde_json::from_str::<Event>(notification.payload()) {
                        Ok(event) => {
                            let _ = local.send(event);
                        }
                        Err(err) => tracing::warn!(error = %err, "ignored a malformed event notification"),
                    },
                    Err(err) => {
                        tracing::warn!(error = %err, "event listener error; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Some(task.abort_handle()))
    }
}
