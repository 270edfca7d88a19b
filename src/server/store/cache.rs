//! What the hot read paths serve from memory: API tokens by id, each workspace's listing
//! (keys and flags, never a value or a ciphertext) and runs as the API shows them (before the
//! leak guard, which is applied on every read), kept fresh by the events that change them.
//!
//! - On the instance that commits a change, [`Tx::commit`](super::Tx::commit) applies the
//!   transaction's events before it returns, so the caller is answered only after the entries
//!   are gone.
//! - On PostgreSQL, a trigger on the outbox notifies every instance of every event at the
//!   commit that writes it (the CLI's and other instances' writes too); the listener applies
//!   them. While the listener is not connected nothing is served from memory.
//! - On SQLite another process (the CLI: `import`, `token revoke`) may write the same file.
//!   Before an entry is served, the outbox is read past the last event applied (SQLite commits
//!   one writer at a time, so its sequence grows in commit order). Concurrent readers share
//!   one such check, but each waits for a check that started after it arrived, so a write
//!   committed before a request arrived is seen by it. Within one request
//!   ([`one_check_per_request`]) the first check serves every later read: a request sees what
//!   was committed before it arrived, as with the first read alone. And no check is needed
//!   while the [`ChangeSignal`] every committing process bumps is where it was when the last
//!   check began: nothing was committed since.
//!
//! A read that misses takes a ticket before it reads the database and stores what it read only
//! if no invalidation of that entry happened since, so a read that raced a commit never stores
//! what the commit replaced.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::model::{Event, SecretItem, WorkflowRun};
use crate::server::store::change_signal::ChangeSignal;
use crate::server::store::TokenRow;

/// The PostgreSQL channel the outbox trigger notifies (migration 0011).
pub const CHANGES_CHANNEL: &str = "loopstack_secrets_changes";

/// Most tokens kept; past it the cache starts over (a flood of distinct valid tokens only).
const MAX_TOKENS: usize = 100_000;
/// Most listings kept; past it the cache starts over.
const MAX_LISTINGS: usize = 10_000;
/// Most runs kept; past it they start over.
const MAX_RUNS: usize = 10_000;

/// A workspace's listing: every secret by key, and the list route's JSON of all of them.
#[derive(Debug)]
pub struct Listing {
    pub items: Vec<SecretItem>,
    pub json: String,
}

impl Listing {
    /// The listing of `items` (sorted by key).
    pub fn new(items: Vec<SecretItem>) -> Listing {
        let json = serde_json::to_string(&items).expect("BUG: secret items always serialize");
        Listing { items, json }
    }

    /// The list route's JSON of the keys after `after` (bytewise), at most `limit` of them;
    /// without either, all of them.
    pub fn page_json(&self, after: Option<&str>, limit: Option<usize>) -> String {
        if after.is_none() && limit.is_none() {
            return self.json.clone();
        }
        let start = after.map_or(0, |after| self.items.partition_point(|item| item.key.as_str() <= after));
        let end = limit.map_or(self.items.len(), |limit| (start + limit).min(self.items.len()));
        serde_json::to_string(&self.items[start..end]).expect("BUG: secret items always serialize")
    }
}

/// Which invalidations a read must not have missed to store what it read.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    clears: u64,
    generation: u64,
}

#[derive(Default)]
struct Entries {
    /// Bumped by every clear: a ticket from before it stores nothing.
    clears: u64,
    /// Bumped by every token invalidation (revocations are rare).
    token_generation: u64,
    tokens: HashMap<Uuid, Arc<TokenRow>>,
    /// Per workspace: its generation (bumped by each change to its secrets) and its listing.
    listings: HashMap<Uuid, (u64, Option<Arc<Listing>>)>,
    /// Bumped by every change of a run (a read racing any of them stores nothing).
    run_generation: u64,
    runs: HashMap<Uuid, Arc<WorkflowRun>>,
}

/// SQLite's follower of the outbox (see the module's comment).
struct Follower {
    /// The last outbox sequence number whose event has been applied.
    applied: i64,
}

tokio::task_local! {
    /// The request's arrival at the cache it reads: which cache (its address) and the number
    /// of checks started before its first read.
    static ARRIVAL: Cell<Option<(usize, u64)>>;
}

/// Runs a request so that its reads share one outbox check (SQLite): the first read takes the
/// request's arrival, and every later read is served by the check that followed it.
pub async fn one_check_per_request<F: Future>(request: F) -> F::Output {
    ARRIVAL.scope(Cell::new(None), request).await
}

/// Moves the current request's arrival to now: a long call (a wait that re-checks its
/// credential) sees what was committed while it waited.
pub fn arrive_again() {
    let _ = ARRIVAL.try_with(|arrival| arrival.set(None));
}

/// Tokens and listings in memory, invalidated by events.
pub struct ReadCache {
    entries: Mutex<Entries>,
    /// Whether entries may be served and stored: on PostgreSQL only while the listener hears
    /// every change.
    enabled: AtomicBool,
    /// SQLite only: the number of checks started, the number of the last finished one, and
    /// the follower.
    checks: AtomicU64,
    done: AtomicU64,
    follower: Option<tokio::sync::Mutex<Follower>>,
    /// SQLite with a file: the change counter, and its value when the last finished check
    /// began (`u64::MAX`: none yet).
    signal: Option<ChangeSignal>,
    checked_at_signal: AtomicU64,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache").field("enabled", &self.enabled.load(Ordering::Relaxed)).finish()
    }
}

impl ReadCache {
    /// Off until it can see every change: on PostgreSQL until the listener listens
    /// ([`ReadCache::enable`]), on SQLite (`follows`) until it knows where the outbox ends
    /// ([`ReadCache::follow_from`]).
    pub(super) fn new(follows: bool) -> ReadCache {
        ReadCache {
            entries: Mutex::default(),
            enabled: AtomicBool::new(false),
            checks: AtomicU64::new(0),
            done: AtomicU64::new(0),
            follower: follows.then(|| tokio::sync::Mutex::new(Follower { applied: 0 })),
            signal: None,
            checked_at_signal: AtomicU64::new(u64::MAX),
        }
    }

    /// SQLite: checks the outbox only after `signal` moved (see the module's comment).
    pub(super) fn with_signal(mut self, signal: ChangeSignal) -> ReadCache {
        self.signal = Some(signal);
        self
    }

    /// SQLite: tells every process following the outbox that events were committed (see
    /// [`ChangeSignal`]), before the commit is acknowledged.
    pub(super) fn announce_commit(&self) {
        if let Some(signal) = &self.signal {
            if let Err(err) = signal.bump() {
                tracing::warn!(error = %err, "could not bump the change counter: a running server sees this commit with the next one");
            }
        }
    }

    /// SQLite: follows the outbox from `applied` (its last sequence number now) and serves.
    pub(super) async fn follow_from(&self, applied: i64) {
        if let Some(follower) = &self.follower {
            follower.lock().await.applied = applied;
            self.enable();
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves plain maps behind; they stay usable.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether entries are served.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Serves and stores entries from now on, starting empty (the listener listens again).
    pub fn enable(&self) {
        self.clear();
        self.enabled.store(true, Ordering::SeqCst);
    }

    /// Serves nothing and forgets everything (the listener lost its connection).
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.clear();
    }

    /// Forgets every entry; reads under way store nothing.
    pub fn clear(&self) {
        let mut entries = self.entries();
        entries.clears += 1;
        entries.tokens.clear();
        entries.listings.clear();
        entries.runs.clear();
    }

    /// Applies what `events` change: a token event drops the token, a secret event the
    /// workspace's listing.
    pub fn apply<'a>(&self, events: impl IntoIterator<Item = &'a Event>) {
        let mut entries = self.entries();
        for event in events {
            match event {
                Event::TokenRevoked { token_id, .. } => {
                    entries.token_generation += 1;
                    entries.tokens.remove(token_id);
                }
                Event::SecretUpserted { workspace_id, .. } | Event::SecretDeleted { workspace_id, .. } => {
                    let slot = entries.listings.entry(*workspace_id).or_default();
                    slot.0 += 1;
                    slot.1 = None;
                }
                Event::WorkflowUpdated { workflow_id, .. } => {
                    entries.run_generation += 1;
                    entries.runs.remove(workflow_id);
                }
                Event::TokenCreated { .. } | Event::MemberChanged { .. } => {}
            }
        }
    }

    /// Applies an event's JSON (a notification); anything that does not parse clears all.
    pub fn apply_json(&self, payload: &str) {
        match serde_json::from_str::<Event>(payload) {
            Ok(event) => self.apply([&event]),
            Err(_) => self.clear(),
        }
    }

    /// A cached token, if enabled and present.
    pub fn token(&self, id: Uuid) -> Option<Arc<TokenRow>> {
        if !self.is_enabled() {
            return None;
        }
        self.entries().tokens.get(&id).cloned()
    }

    /// The ticket for reading tokens.
    pub fn token_ticket(&self) -> Ticket {
        let entries = self.entries();
        Ticket { clears: entries.clears, generation: entries.token_generation }
    }

    /// Stores a token read under `ticket`, unless an invalidation came in between.
    pub fn store_token(&self, ticket: Ticket, row: Arc<TokenRow>) {
        let mut entries = self.entries();
        if !self.is_enabled() || entries.clears != ticket.clears || entries.token_generation != ticket.generation {
            return;
        }
        if entries.tokens.len() >= MAX_TOKENS {
            entries.tokens.clear();
        }
        entries.tokens.insert(row.id, row);
    }

    /// A workspace's cached listing, if enabled and present.
    pub fn listing(&self, workspace_id: Uuid) -> Option<Arc<Listing>> {
        if !self.is_enabled() {
            return None;
        }
        self.entries().listings.get(&workspace_id).and_then(|slot| slot.1.clone())
    }

    /// The ticket for reading a workspace's listing.
    pub fn listing_ticket(&self, workspace_id: Uuid) -> Ticket {
        let entries = self.entries();
        let generation = entries.listings.get(&workspace_id).map_or(0, |slot| slot.0);
        Ticket { clears: entries.clears, generation }
    }

    /// Stores a listing read under `ticket`, unless its workspace changed in between.
    pub fn store_listing(&self, workspace_id: Uuid, ticket: Ticket, listing: Arc<Listing>) {
        let mut entries = self.entries();
        let generation = entries.listings.get(&workspace_id).map_or(0, |slot| slot.0);
        if !self.is_enabled() || entries.clears != ticket.clears || generation != ticket.generation {
            return;
        }
        if entries.listings.len() >= MAX_LISTINGS {
            entries.clears += 1;
            entries.listings.clear();
            return;
        }
        entries.listings.insert(workspace_id, (generation, Some(listing)));
    }

    /// A cached run, if enabled and present.
    pub fn run(&self, id: Uuid) -> Option<Arc<WorkflowRun>> {
        if !self.is_enabled() {
            return None;
        }
        self.entries().runs.get(&id).cloned()
    }

    /// The ticket for reading a run.
    pub fn run_ticket(&self) -> Ticket {
        let entries = self.entries();
        Ticket { clears: entries.clears, generation: entries.run_generation }
    }

    /// Stores a run read under `ticket`, unless a run changed in between.
    pub fn store_run(&self, ticket: Ticket, run: Arc<WorkflowRun>) {
        let mut entries = self.entries();
        if !self.is_enabled() || entries.clears != ticket.clears || entries.run_generation != ticket.generation {
            return;
        }
        if entries.runs.len() >= MAX_RUNS {
            entries.runs.clear();
        }
        entries.runs.insert(run.id, run);
    }

    /// SQLite: makes sure every event committed before this call (or before the request it
    /// serves, see [`one_check_per_request`]) is applied, with one read of the outbox shared by
    /// the callers that arrived before it started. `read` returns the events after a sequence
    /// number, in order, with their numbers (SQLite's `AUTOINCREMENT` numbers them without
    /// gaps; a gap means some were purged unread, and clears all). Nothing on PostgreSQL.
    pub async fn catch_up<F, Fut>(&self, read: F) -> Result<(), sqlx::Error>
    where
        F: FnOnce(i64) -> Fut,
        Fut: Future<Output = Result<Vec<(i64, String)>, sqlx::Error>>,
    {
        let Some(follower) = self.follower.as_ref().filter(|_| self.is_enabled()) else { return Ok(()) };
        let signal = || self.signal.as_ref().and_then(ChangeSignal::read);
        // Nothing was committed since the last check began.
        if signal().is_some_and(|now| now == self.checked_at_signal.load(Ordering::SeqCst)) {
            return Ok(());
        }
        let arrived = self.arrival();
        // A check that started after the arrival has finished.
        if self.done.load(Ordering::SeqCst) > arrived {
            return Ok(());
        }
        let mut follower = follower.lock().await;
        if self.done.load(Ordering::SeqCst) > arrived {
            return Ok(());
        }
        let number = self.checks.fetch_add(1, Ordering::SeqCst) + 1;
        // Read before the outbox: a commit bumping it later is read by this check or the next.
        let began_at = signal().unwrap_or(u64::MAX);
        for (seq, payload) in read(follower.applied).await? {
            if seq != follower.applied + 1 {
                // Events were purged before this process read them: what they changed is
                // unknown.
                self.clear();
            }
            self.apply_json(&payload);
            follower.applied = seq;
        }
        self.done.store(number, Ordering::SeqCst);
        self.checked_at_signal.store(began_at, Ordering::SeqCst);
        Ok(())
    }

    /// The number of checks started before this call, or before the first read of the
    /// request it serves.
    fn arrival(&self) -> u64 {
        let now = self.checks.load(Ordering::SeqCst);
        let me = self as *const ReadCache as usize;
        ARRIVAL
            .try_with(|arrival| match arrival.get() {
                Some((cache, arrived)) if cache == me => arrived,
                _ => {
                    arrival.set(Some((me, now)));
                    now
                }
            })
            .unwrap_or(now)
    }

    /// SQLite: how many outbox checks this process has made.
    pub fn checks_made(&self) -> u64 {
        self.checks.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn token(id: Uuid) -> Arc<TokenRow> {
        Arc::new(TokenRow {
            id,
            workspace_id: Uuid::new_v4(),
            name: "ci".into(),
            secret_hash: vec![0; 32],
            scopes: "secrets:list".into(),
            created_at: Utc::now(),
            expires_at: None,
            revoked_at: None,
        })
    }

    fn upserted(workspace_id: Uuid) -> Event {
        Event::SecretUpserted { workspace_id, secret_id: Uuid::new_v4(), key: "K".into() }
    }

    async fn following(applied: i64) -> ReadCache {
        let cache = ReadCache::new(true);
        cache.follow_from(applied).await;
        cache
    }

    fn item(key: &str) -> SecretItem {
        SecretItem { id: Uuid::nil(), key: key.into(), has_value: true, updated_at: Utc::now(), version: 1 }
    }

    #[test]
    fn a_page_starts_after_its_cursor_even_when_the_cursor_key_is_gone() {
        let listing = Listing::new(vec![item("A"), item("B_1"), item("C"), item("a")]);
        let keys = |json: String| -> Vec<String> {
            let items: Vec<SecretItem> = serde_json::from_str(&json).unwrap();
            items.into_iter().map(|item| item.key).collect()
        };
        assert_eq!(keys(listing.page_json(None, None)).len(), 4);
        assert_eq!(keys(listing.page_json(Some("A"), Some(2))), ["B_1", "C"]);
        assert_eq!(keys(listing.page_json(Some("B"), None)), ["B_1", "C", "a"]);
        assert_eq!(keys(listing.page_json(None, Some(1))), ["A"]);
        assert!(keys(listing.page_json(Some("a"), Some(5))).is_empty());
    }

    #[tokio::test]
    async fn a_listing_read_before_a_change_of_its_workspace_is_not_stored() {
        let cache = following(0).await;
        let workspace = Uuid::new_v4();
        let ticket = cache.listing_ticket(workspace);
        cache.apply([&upserted(workspace)]);
        cache.store_listing(workspace, ticket, Arc::new(Listing::new(Vec::new())));
        assert!(cache.listing(workspace).is_none());

        let ticket = cache.listing_ticket(workspace);
        cache.store_listing(workspace, ticket, Arc::new(Listing::new(Vec::new())));
        assert!(cache.listing(workspace).is_some());
    }

    #[tokio::test]
    async fn a_change_to_another_workspace_leaves_a_listing_alone() {
        let cache = following(0).await;
        let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
        let ticket = cache.listing_ticket(mine);
        cache.apply([&upserted(other)]);
        cache.store_listing(mine, ticket, Arc::new(Listing::new(Vec::new())));
        assert!(cache.listing(mine).is_some());
        cache.apply([&Event::SecretDeleted { workspace_id: mine, secret_id: Uuid::new_v4() }]);
        assert!(cache.listing(mine).is_none());
    }

    #[tokio::test]
    async fn a_revocation_drops_the_token_and_a_read_that_raced_it() {
        let cache = following(0).await;
        let id = Uuid::new_v4();
        cache.store_token(cache.token_ticket(), token(id));
        let ticket = cache.token_ticket();
        let workspace_id = Uuid::new_v4();
        cache.apply([&Event::TokenRevoked { workspace_id, token_id: id }]);
        assert!(cache.token(id).is_none());
        cache.store_token(ticket, token(id));
        assert!(cache.token(id).is_none());
    }

    #[test]
    fn a_disabled_cache_serves_and_stores_nothing_and_starts_empty_when_enabled() {
        let cache = ReadCache::new(false);
        let id = Uuid::new_v4();
        cache.store_token(cache.token_ticket(), token(id));
        assert!(cache.token(id).is_none());
        cache.enable();
        let ticket = cache.token_ticket();
        cache.store_token(ticket, token(id));
        assert!(cache.token(id).is_some());
        cache.disable();
        cache.enable();
        assert!(cache.token(id).is_none());
        cache.store_token(ticket, token(id));
        assert!(cache.token(id).is_none(), "a read from before the connection was lost is not stored");
    }

    #[tokio::test]
    async fn a_notification_that_does_not_parse_clears_everything() {
        let cache = following(0).await;
        let id = Uuid::new_v4();
        cache.store_token(cache.token_ticket(), token(id));
        cache.apply_json(r#"{"type":"overflow"}"#);
        assert!(cache.token(id).is_none());
    }

    #[tokio::test]
    async fn a_caller_waits_for_a_check_that_started_after_it_arrived() {
        let cache = following(0).await;
        let workspace = Uuid::new_v4();
        let payload = serde_json::to_string(&upserted(workspace)).unwrap();
        cache.store_listing(workspace, cache.listing_ticket(workspace), Arc::new(Listing::new(Vec::new())));
        cache.catch_up(|after| async move { Ok(if after < 1 { vec![(1, payload)] } else { vec![] }) }).await.unwrap();
        assert!(cache.listing(workspace).is_none(), "the event read from the outbox was applied");
        let mut reads = 0;
        cache
            .catch_up(|after| {
                reads += 1;
                assert_eq!(after, 1, "the next check reads past the last event applied");
                async { Ok(vec![]) }
            })
            .await
            .unwrap();
        assert_eq!(reads, 1);
    }

    #[tokio::test]
    async fn events_purged_before_they_were_read_clear_everything() {
        let cache = following(3).await;
        let id = Uuid::new_v4();
        cache.store_token(cache.token_ticket(), token(id));
        let other = serde_json::to_string(&upserted(Uuid::new_v4())).unwrap();
        cache.catch_up(|_| async move { Ok(vec![(9, other)]) }).await.unwrap();
        assert!(cache.token(id).is_none());
    }

    fn run(id: Uuid) -> Arc<WorkflowRun> {
        Arc::new(WorkflowRun {
            id,
            workspace_id: Uuid::new_v4(),
            workflow: "secrets_request".into(),
            place: "waiting".into(),
            status: crate::model::RunStatus::Waiting,
            args: serde_json::json!({}),
            result: None,
            parent_id: None,
            callback: None,
            expires_at: None,
            created_at: Utc::now(),
            created_by: crate::model::CreatedBy::Cli,
            updated_at: Utc::now(),
            transitions: Vec::new(),
            documents: Vec::new(),
        })
    }

    fn updated(run: &WorkflowRun) -> Event {
        Event::WorkflowUpdated {
            workspace_id: run.workspace_id,
            workflow_id: run.id,
            workflow: run.workflow.clone(),
            place: "done".into(),
            status: crate::model::RunStatus::Completed,
        }
    }

    #[tokio::test]
    async fn a_move_drops_the_run_and_a_read_that_raced_any_move_is_not_stored() {
        let cache = following(0).await;
        let (mine, other) = (run(Uuid::new_v4()), run(Uuid::new_v4()));
        cache.store_run(cache.run_ticket(), mine.clone());
        assert!(cache.run(mine.id).is_some());
        cache.apply([&updated(&mine)]);
        assert!(cache.run(mine.id).is_none());

        let ticket = cache.run_ticket();
        cache.apply([&updated(&other)]);
        cache.store_run(ticket, mine.clone());
        assert!(cache.run(mine.id).is_none(), "read before another run moved: not stored");
        cache.store_run(cache.run_ticket(), mine.clone());
        cache.apply([&upserted(mine.workspace_id)]);
        assert!(cache.run(mine.id).is_some(), "a secret write leaves runs alone");
    }

    #[tokio::test]
    async fn the_reads_of_one_request_share_its_first_check_until_it_arrives_again() {
        let cache = following(0).await;
        let reads = std::sync::atomic::AtomicUsize::new(0);
        let check = || async {
            cache
                .catch_up(|_| {
                    reads.fetch_add(1, Ordering::SeqCst);
                    async { Ok(vec![]) }
                })
                .await
                .unwrap()
        };
        one_check_per_request(async {
            check().await;
            check().await;
            check().await;
            assert_eq!(reads.load(Ordering::SeqCst), 1, "one check serves the request");
            arrive_again();
            check().await;
            check().await;
            assert_eq!(reads.load(Ordering::SeqCst), 2, "arriving again checks again, once");
        })
        .await;
        check().await;
        check().await;
        assert_eq!(reads.load(Ordering::SeqCst), 4, "outside a request every read checks");
    }
}
