//! Tokens and listings served from memory: never stale after the write that changed them was
//! acknowledged on the same instance (under concurrent readers), fresh after the CLI wrote the
//! same SQLite file, and fresh on another PostgreSQL instance within the notification delay.

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{json, postgres, serve, spawn_app, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use loopstack_secrets::server::store;
use serde_json::Value;
use uuid::Uuid;

/// The id part of a token's text.
fn token_id(token: &str) -> Uuid {
    token.strip_prefix("lss_").unwrap().split('_').next().unwrap().parse().unwrap()
}

/// The version the list route shows for `key` (0 when it is absent).
fn listed_version(list: &Value, key: &str) -> i64 {
    list.as_array().unwrap().iter().find(|item| item["key"] == key).map_or(0, |item| item["version"].as_i64().unwrap())
}

/// Readers hammer the list route and `get_secret_keys` while a writer upserts one key again and
/// again: every answer to a request that started after a write was acknowledged shows it.
async fn no_read_is_answered_from_an_entry_its_acknowledged_write_replaced(engine: Engine) {
    let app = Arc::new(spawn_app(engine).await);
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall]).await;
    let acked = Arc::new(AtomicI64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for reader in 0..6 {
        let (app, token, acked, done) = (app.clone(), token.clone(), acked.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut checked = 0;
            while !done.load(Ordering::SeqCst) {
                let before = acked.load(Ordering::SeqCst);
                if reader % 2 == 0 {
                    let list = json(app.list(ws, &token).await).await;
                    let seen = listed_version(&list, "COUNTER");
                    assert!(seen >= before, "the list showed version {seen} after version {before} was acknowledged");
                } else {
                    let keys = json(app.tool(ws, &token, "get_secret_keys", serde_json::json!({})).await).await;
                    let listed = keys.to_string().contains("\"COUNTER\"");
                    assert!(listed || before == 0, "get_secret_keys missed a key acknowledged before it was asked");
                }
                checked += 1;
            }
            checked
        }));
    }
    for round in 1..=60 {
        let response = app.upsert(ws, &token, "COUNTER", &format!("value {round}")).await;
        assert_eq!(response.status(), 200);
        let version = json(response).await["version"].as_i64().unwrap();
        acked.store(version, Ordering::SeqCst);
        assert_eq!(listed_version(&json(app.list(ws, &token).await).await, "COUNTER"), version, "read your write");
        // A second key now and then, so listings change size as well as versions.
        if round % 10 == 0 {
            assert_eq!(app.upsert(ws, &token, &format!("EXTRA_{round}"), "x").await.status(), 200);
        }
    }
    done.store(true, Ordering::SeqCst);
    let mut checked = 0;
    for reader in readers {
        checked += reader.await.expect("a reader saw a stale answer");
    }
    assert!(checked > 60, "the readers ran alongside the writes ({checked} reads)");
}

/// Readers use a set of tokens while they are revoked one by one: a request that started after
/// a revocation was acknowledged is refused.
async fn no_request_is_let_in_by_a_token_revoked_before_it_started(engine: Engine) {
    let app = Arc::new(spawn_app(engine).await);
    let ws = app.workspace("main").await;
    let mut tokens = Vec::new();
    for _ in 0..8 {
        tokens.push(app.token(ws, &[Scope::SecretsList]).await);
    }
    let revoked: Arc<Mutex<Vec<Uuid>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for reader in 0..4 {
        let (app, tokens, revoked, done) = (app.clone(), tokens.clone(), revoked.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut i = reader;
            while !done.load(Ordering::SeqCst) {
                let token = &tokens[i % tokens.len()];
                let was_revoked = revoked.lock().unwrap().contains(&token_id(token));
                let status = app.list(ws, token).await.status();
                if was_revoked {
                    assert_eq!(status, 401, "a token revoked before the request let it in");
                }
                i += 1;
            }
        }));
    }
    for token in &tokens {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let id = token_id(token);
        loopstack_secrets::server::service::access::revoke_token(&app.state.db, id, None, &common::test_actor())
            .await
            .unwrap();
        revoked.lock().unwrap().push(id);
    }
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        reader.await.expect("a revoked token was let in");
    }
}

/// A listing is served from memory until a write to its workspace replaces it; other
/// workspaces' writes leave it alone.
async fn a_listing_is_kept_until_a_write_to_its_workspace(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, other) = (app.workspace("main").await, app.workspace("other").await);
    let token = app.writer_token(ws).await;
    let other_token = app.writer_token(other).await;
    app.create(ws, &token, "FIRST", "1").await;

    // The write's own notification (PostgreSQL) or outbox row (SQLite) comes back to this
    // instance once more; after that the listing stays.
    let mut first = store::listing(&app.state.db, ws).await.unwrap();
    for _ in 0..100 {
        let again = store::listing(&app.state.db, ws).await.unwrap();
        if Arc::ptr_eq(&first, &again) {
            break;
        }
        first = again;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = store::listing(&app.state.db, ws).await.unwrap();
    assert!(Arc::ptr_eq(&first, &again), "a second read is served from memory");
    app.create(other, &other_token, "ELSEWHERE", "1").await;
    assert!(Arc::ptr_eq(&first, &store::listing(&app.state.db, ws).await.unwrap()));

    app.create(ws, &token, "SECOND", "2").await;
    let after = store::listing(&app.state.db, ws).await.unwrap();
    assert!(!Arc::ptr_eq(&first, &after));
    let keys: Vec<&str> = after.items.iter().map(|item| item.key.as_str()).collect();
    assert_eq!(keys, ["FIRST", "SECOND"]);
}

/// A revocation through an instance takes effect on that instance's next read by itself, with
/// no notification to help: a second handle on the same database, whose cache serves without a
/// listener, revokes a token it holds in memory and reads it again.
async fn a_change_is_dropped_from_memory_by_the_commit_that_made_it(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let id = token_id(&app.token(ws, &[Scope::SecretsList]).await);
    let db = store::Db::connect(&app.database_url).await.unwrap();
    if db.is_sqlite() {
        db.migrate().await.unwrap();
    } else {
        db.cache().enable();
    }
    let held = store::cached_token(&db, id).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&held, &store::cached_token(&db, id).await.unwrap().unwrap()), "served from memory");

    loopstack_secrets::server::service::access::revoke_token(&db, id, None, &common::test_actor()).await.unwrap();
    let row = store::cached_token(&db, id).await.unwrap().unwrap();
    assert!(row.revoked_at.is_some(), "the next read after the commit sees the revocation");
}

/// Starts a secret request for `key`; its path.
async fn start_request(app: &TestApp, ws: Uuid, token: &str, key: &str) -> String {
    let body = serde_json::json!({"workflow": "secrets_request", "args": {"variables": [{"key": key}]}});
    let response = app
        .req(reqwest::Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    format!("/api/v1/workspaces/{ws}/workflows/{}", json(response).await["id"].as_str().unwrap())
}

async fn run_status(app: &TestApp, token: &str, path: &str) -> String {
    let response = app.req(reqwest::Method::GET, path, token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    json(response).await["status"].as_str().unwrap().to_string()
}

/// A run read again and again (and so kept in memory) shows each move the moment it was
/// acknowledged: a submission, a cancellation.
async fn a_run_kept_in_memory_shows_each_acknowledged_move(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::WorkflowsRun]).await;
    let submitted = start_request(&app, ws, &token, "SUBMITTED").await;
    let cancelled = start_request(&app, ws, &token, "CANCELLED").await;
    for _ in 0..3 {
        assert_eq!(run_status(&app, &token, &submitted).await, "waiting");
        assert_eq!(run_status(&app, &token, &cancelled).await, "waiting");
    }

    let body = serde_json::json!({"variables": [{"key": "SUBMITTED", "value": "submitted-value"}]});
    let fire = app.req(reqwest::Method::POST, &format!("{submitted}/transitions/secretsSubmitted"), &token).json(&body);
    assert_eq!(fire.send().await.unwrap().status(), 200);
    assert_eq!(run_status(&app, &token, &submitted).await, "completed");
    assert_eq!(run_status(&app, &token, &cancelled).await, "waiting");

    let cancel = app.req(reqwest::Method::POST, &format!("{cancelled}/cancel"), &token).json(&serde_json::json!({}));
    assert_eq!(cancel.send().await.unwrap().status(), 200);
    assert_eq!(run_status(&app, &token, &cancelled).await, "cancelled");

    // Another workspace's token never reads the kept run.
    let other = app.workspace("other").await;
    let stranger = app.token(other, &[Scope::WorkflowsRun]).await;
    let foreign = submitted.replace(&ws.to_string(), &other.to_string());
    assert_eq!(app.req(reqwest::Method::GET, &foreign, &stranger).send().await.unwrap().status(), 404);
}

/// `get_secret_keys` answers with text kept with the workspace's listing: a key written since
/// shows at once, and an answer the leak guard had to mask (a key that spells a stored value)
/// is made, and audited, on every call.
async fn get_secret_keys_keeps_its_answer_only_while_it_holds(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall]).await;
    let keys = || async { app.tool(ws, &token, "get_secret_keys", serde_json::json!({})).await.text().await.unwrap() };
    assert_eq!(app.upsert(ws, &token, "FIRST", "one").await.status(), 200);
    let first = keys().await;
    assert!(first.contains("\"FIRST\"") && !first.contains("SECOND"), "{first}");
    assert_eq!(keys().await, first, "the same answer while nothing changed");
    assert_eq!(app.upsert(ws, &token, "SECOND", "two").await.status(), 200);
    assert!(keys().await.contains("\"SECOND\""), "a write shows at once");

    let spelled = "SPELLED_BY_A_VALUE_4711";
    assert_eq!(app.upsert(ws, &token, "HOLDS_A_NAME", spelled).await.status(), 200);
    assert_eq!(app.upsert(ws, &token, spelled, "x").await.status(), 200);
    for _ in 0..2 {
        let answer = keys().await;
        assert!(!answer.contains(spelled) && answer.contains("\"SECOND\""), "{answer}");
    }
    let blocked = store::audit_events(&app.state.db, ws, Some("leak.blocked"), 10).await.unwrap();
    let in_tool = blocked.iter().filter(|e| e.detail.as_deref() == Some("masked in tool get_secret_keys")).count();
    assert_eq!(in_tool, 2, "each masked answer is audited: {blocked:?}");
}

/// A run's status answers with text kept with the run and the workspace's leak guard: a value
/// stored since that appears in the run is masked at once, and an answer the guard had to mask
/// is made, and audited, on every call.
async fn a_runs_status_keeps_its_answer_only_while_it_holds(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::WorkflowsRun]).await;
    let spelled = "spelled-out-in-the-reason-4711";
    let body = serde_json::json!({"workflow": "secrets_request",
        "args": {"reason": format!("The old one was {spelled}"), "variables": [{"key": "NEW_KEY"}]}});
    let started = app.req(reqwest::Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), &token).json(&body);
    let path = format!(
        "/api/v1/workspaces/{ws}/workflows/{}",
        json(started.send().await.unwrap()).await["id"].as_str().unwrap()
    );
    let read = || async { app.req(reqwest::Method::GET, &path, &token).send().await.unwrap().text().await.unwrap() };

    let first = read().await;
    let again = read().await;
    assert_eq!(app.upsert(ws, &token, "OLD_KEY", spelled).await.status(), 200);
    let masked = [read().await, read().await];

    assert!(first.contains(spelled), "{first}");
    assert_eq!(again, first, "the same answer while nothing changed");
    for answer in &masked {
        assert!(!answer.contains(spelled) && answer.contains("NEW_KEY"), "a value stored since is masked: {answer}");
    }
    let blocked = store::audit_events(&app.state.db, ws, Some("leak.blocked"), 10).await.unwrap();
    let in_run =
        blocked.iter().filter(|e| e.detail.as_deref().is_some_and(|d| d.starts_with("masked in run "))).count();
    assert_eq!(in_run, 2, "each masked answer is audited: {blocked:?}");
}

both_engines!(
    a_runs_status_keeps_its_answer_only_while_it_holds,
    a_change_is_dropped_from_memory_by_the_commit_that_made_it,
    no_read_is_answered_from_an_entry_its_acknowledged_write_replaced,
    no_request_is_let_in_by_a_token_revoked_before_it_started,
    a_listing_is_kept_until_a_write_to_its_workspace,
    a_run_kept_in_memory_shows_each_acknowledged_move,
    get_secret_keys_keeps_its_answer_only_while_it_holds,
);

/// The CLI writing the server's SQLite file while it runs (`token revoke`, `import`): the next
/// request sees it, with no wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_sees_what_the_cli_wrote_to_its_sqlite_file() {
    let app = spawn_app(Engine::Sqlite).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    app.create(ws, &token, "BEFORE", "1").await;
    for _ in 0..3 {
        assert_eq!(json(app.list(ws, &token).await).await.as_array().unwrap().len(), 1);
    }

    let file = app.dir.path().join("import.env");
    std::fs::write(&file, "FROM_CLI=imported\n").unwrap();
    cli(&app, &["import", "--workspace", &ws.to_string(), file.to_str().unwrap()]);
    let list = json(app.list(ws, &token).await).await;
    assert_eq!(listed_version(&list, "FROM_CLI"), 1, "the import shows at once: {list}");

    cli(&app, &["token", "revoke", &token_id(&token).to_string()]);
    assert_eq!(app.list(ws, &token).await.status(), 401, "the CLI's revocation holds at once");
}

/// A request reads the SQLite outbox at most once, however many of its reads want a fresh
/// cache (the list route: token, listing; `get_secret_keys`: token, listing, leak guard), and
/// only when some process committed since the last read: every committing process bumps the
/// change counter beside the database file, which a request reads instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reads_the_sqlite_outbox_only_after_a_commit() {
    let app = spawn_app(Engine::Sqlite).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall]).await;
    app.create(ws, &token, "CHECKED", "v").await;
    let checks = || app.state.db.cache().checks_made();
    let both = || async {
        assert_eq!(app.list(ws, &token).await.status(), 200);
        assert_eq!(app.tool(ws, &token, "get_secret_keys", serde_json::json!({})).await.status(), 200);
    };

    // The server's own write was announced: the next request reads the outbox once.
    let before = checks();
    both().await;
    let after_write = checks() - before;
    // Nothing committed since: 20 more requests read no outbox.
    let before = checks();
    for _ in 0..10 {
        both().await;
    }
    let idle = checks() - before;
    // The CLI's write is announced too.
    let file = app.dir.path().join("import.env");
    std::fs::write(&file, "FROM_CLI=imported\n").unwrap();
    cli(&app, &["import", "--workspace", &ws.to_string(), file.to_str().unwrap()]);
    let before = checks();
    let list = json(app.list(ws, &token).await).await;
    let after_cli = checks() - before;

    assert!(after_write <= 2, "{after_write} checks for two requests after a write");
    assert_eq!(idle, 0, "no request reads the outbox while nothing was committed");
    assert_eq!(listed_version(&list, "FROM_CLI"), 1, "the import shows at once: {list}");
    assert_eq!(after_cli, 1, "the request after the CLI's import reads the outbox once");
}

/// While other processes keep committing, a request still reads the outbox once: its first
/// read's check serves its later reads (the token, the listing, the leak guard), which would
/// otherwise each see the counter moved and check again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_reads_the_sqlite_outbox_once_while_others_commit() {
    let app = spawn_app(Engine::Sqlite).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall]).await;
    app.create(ws, &token, "CHECKED", "v").await;
    let counter = format!("{}-changes", app.database_url.trim_start_matches("sqlite://"));
    let requests = 20;

    let before = app.state.db.cache().checks_made();
    for _ in 0..requests {
        another_process_committed(&counter);
        assert_eq!(app.list(ws, &token).await.status(), 200);
        another_process_committed(&counter);
        assert_eq!(app.tool(ws, &token, "get_secret_keys", serde_json::json!({})).await.status(), 200);
    }
    let made = app.state.db.cache().checks_made() - before;

    // Two or three per request without the request scope: 80 or more.
    assert!((2 * requests..2 * requests + 10).contains(&made), "{made} checks for {} requests", 2 * requests);
}

/// What a committing process does to the counter beside the SQLite file (`<database>-changes`:
/// a little-endian u64 it adds one to).
fn another_process_committed(counter: &str) {
    let now = std::fs::read(counter).ok().and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).unwrap_or(0);
    std::fs::write(counter, (now + 1).to_le_bytes()).unwrap();
}

/// Runs the binary's CLI on the app's data dir and database.
fn cli(app: &TestApp, args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_loopstack-secrets"))
        .args(["--data-dir", app.dir.path().to_str().unwrap(), "--database-url", &app.database_url])
        .args(args)
        .env("LOOPSTACK_SECRETS_MASTER_KEY", &app.master_key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Two PostgreSQL instances: a revocation and a write on one reach the other's memory through
/// the outbox trigger's notification. Prints how long that took (BENCHMARKS.md has the figures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_postgres_instance_hears_of_a_write_and_a_revocation() {
    let Some(engine) = postgres() else { return };
    let first = spawn_app(engine).await;
    let second = serve(tempfile::tempdir().unwrap(), first.database_url.clone(), first.master_key.clone(), &[]).await;
    let ws = first.workspace("shared").await;
    let token = first.writer_token(ws).await;
    let spare = first.token(ws, &[Scope::SecretsList]).await;
    assert_eq!(json(second.list(ws, &token).await).await.as_array().unwrap().len(), 0, "the second one keeps it");

    assert_eq!(first.upsert(ws, &token, "WRITTEN_ON_FIRST", "v").await.status(), 200);
    let seen =
        until(|| async { listed_version(&json(second.list(ws, &token).await).await, "WRITTEN_ON_FIRST") == 1 }).await;
    println!("a write on one instance reached the other's listing {seen:?} after it was acknowledged");

    assert_eq!(second.list(ws, &spare).await.status(), 200);
    loopstack_secrets::server::service::access::revoke_token(
        &first.state.db,
        token_id(&spare),
        None,
        &common::test_actor(),
    )
    .await
    .unwrap();
    let refused = until(|| async { second.list(ws, &spare).await.status() == 401 }).await;
    println!("a revocation on one instance reached the other {refused:?} after it was acknowledged");

    let runner = first.token(ws, &[Scope::WorkflowsRun]).await;
    let run = start_request(&first, ws, &runner, "MOVED").await;
    assert_eq!(run_status(&second, &runner, &run).await, "waiting", "the second one keeps it");
    let cancel = first.req(reqwest::Method::POST, &format!("{run}/cancel"), &runner).json(&serde_json::json!({}));
    assert_eq!(cancel.send().await.unwrap().status(), 200);
    let moved = until(|| async { run_status(&second, &runner, &run).await == "cancelled" }).await;
    println!("a run's move on one instance reached the other {moved:?} after it was acknowledged");
}

/// Polls `check` every millisecond until it holds (at most 10 seconds); how long from now.
async fn until<F, Fut>(check: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the other instance never heard of the change");
}
