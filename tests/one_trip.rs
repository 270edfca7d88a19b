//! PostgreSQL upserts in one round trip: the value is sealed for the row the instance expects,
//! and when that guess is stale (another instance wrote the key, the key was deleted, a
//! rotation added a data key version) nothing is written until it is sealed for what is there.
//! Each write lands, its value opens, its version is the next, and the audit chain holds.

mod common;

use common::*;
use loopstack_secrets::server::service::audit::verify;
use loopstack_secrets::server::store::on_pool;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn upserted(app: &TestApp, ws: Uuid, token: &str, key: &str, value: &str) -> Value {
    let response = app.upsert(ws, token, key, value).await;
    assert_eq!(response.status(), 200, "upsert {key}");
    json(response).await
}

async fn key_version_of(app: &TestApp, ws: Uuid, key: &str) -> i32 {
    on_pool!(&app.state.db, pool => sqlx::query_scalar("SELECT key_version FROM secrets WHERE workspace_id = $1 AND key = $2")
        .bind(ws).bind(key).fetch_one(pool).await.unwrap())
}

async fn chain_is_intact(app: &TestApp, ws: Uuid) {
    let report = verify(&app.state.db, Some(ws)).await.unwrap().pop().unwrap();
    assert!(report.broken.is_none(), "{report:?}");
}

/// Two instances write one key in turn, so each one's guess of the row is always one write
/// behind: every write lands as the next version and opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_writing_one_key_in_turn_each_land_the_next_version() {
    let Some(engine) = postgres() else { return };
    let first = spawn_app(engine).await;
    let second = serve(tempfile::tempdir().unwrap(), first.database_url.clone(), first.master_key.clone(), &[]).await;
    let ws = first.workspace("shared").await;
    let token = first.writer_token(ws).await;
    let sent = |app: &TestApp| app.state.secrets.one_trip_stats();
    let (first_before, second_before) = (sent(&first), sent(&second));
    let mut id = None;
    for round in 1..=8 {
        let app = if round % 2 == 0 { &second } else { &first };
        let item = upserted(app, ws, &token, "SHARED_KEY", &format!("value-{round}")).await;
        assert_eq!(item["version"], round, "round {round}: {item}");
        let this_id = item["id"].as_str().unwrap().to_string();
        assert_eq!(id.get_or_insert(this_id.clone()), &this_id, "one secret throughout");
        assert_eq!(first.value_of(ws, "SHARED_KEY").await.as_deref(), Some(format!("value-{round}").as_str()));
    }
    chain_is_intact(&first, ws).await;
    // The first write is one statement; every later one finds the other instance's write and
    // seals again: two. None falls back to a transaction.
    let (first_after, second_after) = (sent(&first), sent(&second));
    assert_eq!(first_after.statements - first_before.statements, 1 + 3 * 2);
    assert_eq!(second_after.statements - second_before.statements, 4 * 2);
    assert_eq!(first_after.fallbacks + second_after.fallbacks, 0);
}

/// One instance writing keys, new and stored, sends one statement per upsert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upsert_whose_row_is_as_expected_is_one_statement() {
    let Some(engine) = postgres() else { return };
    let app = spawn_app(engine).await;
    let ws = app.workspace("alone").await;
    let token = app.writer_token(ws).await;
    let before = app.state.secrets.one_trip_stats();
    for round in 1..=5 {
        for key in ["ONE", "TWO", "THREE"] {
            let item = upserted(&app, ws, &token, key, &format!("{key}-{round}")).await;
            assert_eq!(item["version"], round);
        }
    }
    let after = app.state.secrets.one_trip_stats();
    assert_eq!(after.statements - before.statements, 15, "one statement per upsert");
    assert_eq!(after.fallbacks, 0);
    assert_eq!(app.value_of(ws, "THREE").await.as_deref(), Some("THREE-5"));
    chain_is_intact(&app, ws).await;
}

/// A key deleted and written again (by the same instance, whose guess names the deleted row)
/// is a new secret at version 1; a key deleted on another instance too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_written_again_after_its_delete_is_a_new_secret() {
    let Some(engine) = postgres() else { return };
    let app = spawn_app(engine).await;
    let ws = app.workspace("deleted").await;
    let token = app.writer_token(ws).await;
    let old = upserted(&app, ws, &token, "GONE", "one").await;
    upserted(&app, ws, &token, "GONE", "two").await;
    assert_eq!(app.delete(ws, &token, old["id"].as_str().unwrap()).await.status(), 200);
    let new = upserted(&app, ws, &token, "GONE", "three").await;
    assert_eq!(new["version"], 1);
    assert_ne!(new["id"], old["id"]);
    assert_eq!(app.value_of(ws, "GONE").await.as_deref(), Some("three"));
    chain_is_intact(&app, ws).await;
}

/// A rotation adds a data key version while the instance holds the old one unwrapped: the next
/// write is sealed under the new version, and every value still opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_a_rotation_is_sealed_under_the_new_data_key() {
    let Some(engine) = postgres() else { return };
    let app = spawn_app(engine).await;
    let ws = app.workspace("rotated").await;
    let token = app.writer_token(ws).await;
    upserted(&app, ws, &token, "BEFORE", "sealed-under-one").await;
    assert_eq!(key_version_of(&app, ws, "BEFORE").await, 1);
    let rotation = app.state.secrets.rotate_data_key(ws, 10, &test_actor()).await.unwrap();
    assert_eq!(rotation.version, 2);

    upserted(&app, ws, &token, "AFTER", "sealed-under-two").await;
    upserted(&app, ws, &token, "BEFORE", "again").await;
    assert_eq!(key_version_of(&app, ws, "AFTER").await, 2);
    assert_eq!(key_version_of(&app, ws, "BEFORE").await, 2);
    assert_eq!(app.value_of(ws, "AFTER").await.as_deref(), Some("sealed-under-two"));
    assert_eq!(app.value_of(ws, "BEFORE").await.as_deref(), Some("again"));
    chain_is_intact(&app, ws).await;
}

/// Concurrent writers of the same new keys on two instances: each key ends as one secret
/// whose version counts every acknowledged write, and nothing is lost from the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_on_two_instances_count_every_write() {
    let Some(engine) = postgres() else { return };
    let first = spawn_app(engine).await;
    let second = serve(tempfile::tempdir().unwrap(), first.database_url.clone(), first.master_key.clone(), &[]).await;
    let ws = first.workspace("race").await;
    let token = first.writer_token(ws).await;
    let writers = (0..8).map(|w| {
        let app = if w % 2 == 0 { &first } else { &second };
        let (client, base, token) = (app.client.clone(), app.base.clone(), token.clone());
        tokio::spawn(async move {
            for i in 0..5 {
                let key = format!("RACE_{}", i % 2);
                let response = client
                    .request(Method::PUT, format!("{base}/api/v1/workspaces/{ws}/secrets/upsert"))
                    .bearer_auth(&token)
                    .json(&json!({"key": key, "value": format!("w{w}-{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.unwrap();
    }
    let list = json(first.list(ws, &token).await).await;
    let versions: Vec<i64> = list.as_array().unwrap().iter().map(|item| item["version"].as_i64().unwrap()).collect();
    assert_eq!(versions.iter().sum::<i64>(), 40, "every write counted: {list}");
    assert_eq!(versions.len(), 2);
    for key in ["RACE_0", "RACE_1"] {
        assert!(first.value_of(ws, key).await.unwrap().starts_with('w'));
    }
    chain_is_intact(&first, ws).await;
}

/// Upserts sent at the same time share a transaction and its commit (`pg_group_commit`): each
/// is answered only once committed (read back on another connection), every write is counted,
/// and the chain holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_upserts_share_commits_and_each_is_answered_once_committed() {
    let Some(engine) = postgres() else { return };
    let app = spawn_app(engine).await;
    let ws = app.workspace("batched").await;
    let token = app.writer_token(ws).await;
    let (writes_before, commits_before) = app.state.db.group_commit_stats().unwrap();
    let writers = (0..48).map(|i| {
        let (app, token) = (&app, token.clone());
        async move {
            // Twelve writers share one key; the others write their own.
            let key = if i % 4 == 0 { "SHARED".to_string() } else { format!("OWN_{i:02}") };
            let value = format!("value-{i}");
            upserted(app, ws, &token, &key, &value).await;
            if key != "SHARED" {
                assert_eq!(app.value_of(ws, &key).await, Some(value), "answered before its commit");
            }
        }
    });
    futures::future::join_all(writers).await;
    let (writes, commits) = app.state.db.group_commit_stats().unwrap();
    let (writes, commits) = (writes - writes_before, commits - commits_before);
    // A writer of the shared key whose guess of the row was stale committed a statement that
    // wrote nothing and sealed again: at least one statement a write.
    assert!(writes >= 48, "{writes} statements committed");
    assert!(commits < writes, "concurrent upserts shared commits: {writes} writes in {commits} commits");
    let list = json(app.list(ws, &token).await).await;
    let shared = list.as_array().unwrap().iter().find(|item| item["key"] == "SHARED").unwrap();
    assert_eq!(shared["version"], 12, "every write of the shared key counted: {shared}");
    chain_is_intact(&app, ws).await;
}

/// Upserts (in shared commits) and writes in transactions of their own (create, delete) on the
/// same keys at once: a batch may hold a chain head while it wants a row that a delete holds
/// while it wants that head. Nothing deadlocks: every request is answered with its own outcome,
/// never a server error, and the chain holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_beside_deletes_and_creates_of_the_same_keys_never_deadlock() {
    let Some(engine) = postgres() else { return };
    let app = spawn_app(engine).await;
    let ws = app.workspace("mixed").await;
    let token = app.writer_token(ws).await;
    let keys: Vec<String> = (0..4).map(|k| format!("MIXED_{k}")).collect();
    let upserts = (0..6).map(|w| {
        let (app, token, keys) = (&app, token.clone(), keys.clone());
        async move {
            let mut statuses = Vec::new();
            for round in 0..12 {
                let key = &keys[(w + round) % keys.len()];
                statuses.push(app.upsert(ws, &token, key, &format!("u{w}-{round}")).await.status().as_u16());
            }
            statuses
        }
    });
    let others = (0..4).map(|w| {
        let (app, token, keys) = (&app, token.clone(), keys.clone());
        async move {
            let mut statuses = Vec::new();
            for round in 0..12 {
                let key = &keys[(w + round) % keys.len()];
                if (w + round) % 2 == 0 {
                    statuses.push(app.create(ws, &token, key, "created").await.status().as_u16());
                } else {
                    let list = json(app.list(ws, &token).await).await;
                    let id = list
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|item| item["key"] == key.as_str())
                        .map(|item| item["id"].as_str().unwrap().to_string());
                    if let Some(id) = id {
                        statuses.push(app.delete(ws, &token, &id).await.status().as_u16());
                    }
                }
            }
            statuses
        }
    });
    let (upserted, other) = tokio::join!(futures::future::join_all(upserts), futures::future::join_all(others));
    for status in upserted.into_iter().flatten() {
        assert_eq!(status, 200, "every upsert lands");
    }
    for status in other.into_iter().flatten() {
        assert!([200, 201, 404, 409].contains(&status), "a create or delete answered {status}");
    }
    chain_is_intact(&app, ws).await;
}
