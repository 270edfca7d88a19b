//! SQLite's group commit: concurrent writes share commits, each is answered only once it is
//! committed, a failing one takes none of its neighbours down, and a transaction dropped midway
//! leaves nothing behind and does not keep SQLite's write lock. (`faults.rs` SIGKILLs the
//! binary under concurrent upserts: every acknowledged one is still there.)

mod common;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{spawn_app, Engine};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_each_is_answered_once_committed() {
    let app = Arc::new(spawn_app(Engine::Sqlite).await);
    let ws = app.workspace("main").await;
    let (writes_before, commits_before) = app.state.db.group_commit_stats().unwrap();

    let writers: Vec<_> = (0..48)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let key = app.state.secrets.parse_key(&format!("KEY_{i}")).unwrap();
                let value = app.state.secrets.parse_value(format!("value {i}")).unwrap();
                app.state.secrets.upsert_if(ws, &key, &value, None, &common::test_actor()).await.unwrap();
                // Read on another connection: only what is committed shows there.
                assert_eq!(app.value_of(ws, &format!("KEY_{i}")).await.as_deref(), Some(format!("value {i}").as_str()));
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a write was answered before it was committed");
    }

    let (writes, commits) = app.state.db.group_commit_stats().unwrap();
    let (writes, commits) = (writes - writes_before, commits - commits_before);
    assert!(writes >= 48, "{writes} writes counted");
    assert!(commits < writes, "concurrent writes shared commits: {writes} writes in {commits} commits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_takes_none_of_its_neighbours_down() {
    let app = Arc::new(spawn_app(Engine::Sqlite).await);
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    assert_eq!(app.create(ws, &token, "TAKEN", "first").await.status(), 201);

    let writers: Vec<_> = (0..40)
        .map(|i| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move {
                // Every other write creates a key that exists: a 409 inside the shared batch.
                let key = if i % 2 == 0 { format!("NEW_{i}") } else { "TAKEN".to_string() };
                (key.clone(), app.create(ws, &token, &key, &format!("value {i}")).await.status().as_u16())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for writer in writers {
        answers.push(writer.await.unwrap());
    }

    for (key, status) in answers {
        if key == "TAKEN" {
            assert_eq!(status, 409);
        } else {
            assert_eq!(status, 201, "{key}");
            assert!(app.value_of(ws, &key).await.is_some(), "{key} was stored beside the failing writes");
        }
    }
    assert_eq!(app.value_of(ws, "TAKEN").await.as_deref(), Some("first"), "the refused writes changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_dropped_midway_leaves_nothing_and_lets_other_writers_in() {
    let app = spawn_app(Engine::Sqlite).await;
    let ws = app.workspace("main").await;
    let mut tx = app.state.db.begin().await.unwrap();
    loopstack_secrets::on_tx!(tx, conn => sqlx::query("UPDATE workspaces SET name = 'changed' WHERE id = $1")
        .bind(ws).execute(&mut *conn).await.unwrap().rows_affected());
    drop(tx);

    // Another process's connection that will not wait for the lock: it gets it once the
    // dropped transaction is rolled back.
    let url = app.database_url.clone();
    let options = SqliteConnectOptions::from_str(&url).unwrap().busy_timeout(Duration::ZERO);
    let mut other = options.connect().await.unwrap();
    let started = Instant::now();
    loop {
        match sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await {
            Ok(_) => break,
            Err(err) if started.elapsed() < Duration::from_secs(10) => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(err) => panic!("the write lock was never released: {err}"),
        }
    }
    sqlx::raw_sql("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();

    let name: String = loopstack_secrets::on_pool!(&app.state.db, pool =>
        sqlx::query_scalar("SELECT name FROM workspaces WHERE id = $1").bind(ws).fetch_one(pool).await.unwrap());
    assert_eq!(name, "main", "the dropped transaction's write is gone");
    let key = app.state.secrets.parse_key("AFTER").unwrap();
    let value = app.state.secrets.parse_value("v".into()).unwrap();
    app.state.secrets.upsert_if(ws, &key, &value, None, &common::test_actor()).await.unwrap();
    assert_eq!(app.value_of(ws, "AFTER").await.as_deref(), Some("v"), "the next writer commits");
}
