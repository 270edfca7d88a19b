//! Secret versions on both engines: kept, listed (never values), pruned and destroyed; rollback
//! as a new version; check-and-set with `If-Match` (412 on a stale version, exactly one winner
//! among racing writers, 428 when the workspace requires it); restore within the window; and a
//! data key rotation that keeps old versions readable.

mod common;

use common::*;
use loopstack_secrets::server::store::on_pool;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use uuid::Uuid;

async fn put_if(app: &TestApp, ws: Uuid, token: &str, id: &str, value: &str, version: &str) -> Response {
    app.req(Method::PUT, &format!("/api/v1/workspaces/{ws}/secrets/{id}"), token)
        .header("if-match", version)
        .json(&json!({ "value": value }))
        .send()
        .await
        .unwrap()
}

async fn versions(app: &TestApp, ws: Uuid, token: &str, id: &str) -> Vec<Value> {
    let response =
        app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/secrets/{id}/versions"), token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    json(response).await.as_array().unwrap().clone()
}

fn numbers(list: &[Value]) -> Vec<i64> {
    list.iter().map(|v| v["version"].as_i64().unwrap()).collect()
}

async fn rollback(app: &TestApp, ws: Uuid, token: &str, id: &str, version: i64) -> Response {
    app.req(Method::POST, &format!("/api/v1/workspaces/{ws}/secrets/{id}/rollback"), token)
        .json(&json!({ "version": version }))
        .send()
        .await
        .unwrap()
}

async fn restore(app: &TestApp, ws: Uuid, token: &str, key: &str) -> Response {
    app.req(Method::POST, &format!("/api/v1/workspaces/{ws}/secrets/restore"), token)
        .json(&json!({ "key": key }))
        .send()
        .await
        .unwrap()
}

async fn version_rows(app: &TestApp, id: &str) -> i64 {
    let id: Uuid = id.parse().unwrap();
    on_pool!(&app.state.db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM secret_versions WHERE secret_id = $1")
        .bind(id).fetch_one(pool).await.unwrap())
}

async fn versions_are_kept_listed_pruned_and_rolled_back(engine: Engine) {
    let app = spawn_app_with(engine, &["--keep-versions", "3"]).await;
    let ws = app.workspace("history").await;
    let token = app.writer_token(ws).await;
    let created = app.create(ws, &token, "API_KEY", "canary-v1-4c1d").await;
    assert_eq!(created.headers()["etag"], "\"1\"");
    let item = json(created).await;
    assert_eq!(item["version"], 1);
    let id = item["id"].as_str().unwrap().to_owned();
    for n in 2..=5 {
        let response = app.update(ws, &token, &id, json!({ "value": format!("canary-v{n}-4c1d") })).await;
        assert_eq!(response.headers()["etag"], format!("\"{n}\"").as_str());
        assert_eq!(json(response).await["version"], n);
    }
    let list = versions(&app, ws, &token, &id).await;
    assert_eq!(numbers(&list), [5, 4, 3], "the newest three are kept");
    assert!(!serde_json::to_string(&list).unwrap().contains("canary"), "never a value");
    assert!(list.iter().all(|v| v["hasValue"] == true && v["createdBy"].as_str().unwrap().starts_with("token:")));
    assert_eq!(version_rows(&app, &id).await, 3, "older ones are destroyed");
    // The listing carries the version too.
    let listed = json(app.list(ws, &token).await).await;
    assert_eq!(listed[0]["version"], 5);

    let rolled = rollback(&app, ws, &token, &id, 3).await;
    assert_eq!(rolled.status(), 200);
    assert_eq!(json(rolled).await["version"], 6);
    assert_eq!(app.value_of(ws, "API_KEY").await.as_deref(), Some("canary-v3-4c1d"));
    assert_eq!(numbers(&versions(&app, ws, &token, &id).await), [6, 5, 4]);
    assert_eq!(error_code(rollback(&app, ws, &token, &id, 1).await, 404).await, "not_found", "pruned");
    assert_eq!(error_code(rollback(&app, ws, &token, &id, 99).await, 404).await, "not_found");
    let log = loopstack_secrets::server::service::audit::workspace_log(&app.state.secrets, ws, None).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == "secret.rolled_back" && e.detail.as_deref() == Some("version 6 is version 3 again")));

    // Another workspace's secret is not found, and a reader cannot roll back.
    let other = app.workspace("other").await;
    let other_token = app.writer_token(other).await;
    let response = app
        .req(Method::GET, &format!("/api/v1/workspaces/{other}/secrets/{id}/versions"), &other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response, 404).await, "not_found");
    let lister = app.token(ws, &[loopstack_secrets::server::domain::Scope::SecretsList]).await;
    assert_eq!(error_code(rollback(&app, ws, &lister, &id, 5).await, 403).await, "forbidden");
}

async fn a_stale_write_is_refused_and_changes_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("cas").await;
    let token = app.writer_token(ws).await;
    let id = json(app.create(ws, &token, "TOKEN", "first").await).await["id"].as_str().unwrap().to_owned();
    assert_eq!(put_if(&app, ws, &token, &id, "second", "\"1\"").await.status(), 200);
    let stale = put_if(&app, ws, &token, &id, "third", "\"1\"").await;
    assert_eq!(stale.status(), 412);
    let body = json(stale).await;
    assert_eq!(body["error"]["code"], "version_mismatch");
    assert!(body["error"]["message"].as_str().unwrap().contains("version 2"));
    assert_eq!(app.value_of(ws, "TOKEN").await.as_deref(), Some("second"));
    assert_eq!(numbers(&versions(&app, ws, &token, &id).await), [2, 1]);
    // W/"2" and a bare 2 read the same; * is any version; anything else is a 400.
    assert_eq!(put_if(&app, ws, &token, &id, "fourth", "W/\"2\"").await.status(), 200);
    assert_eq!(put_if(&app, ws, &token, &id, "fifth", "3").await.status(), 200);
    assert_eq!(put_if(&app, ws, &token, &id, "sixth", "*").await.status(), 200);
    for bad in ["\"abc\"", "\"-1\"", "\"0\"", "\"1.5\""] {
        assert_eq!(error_code(put_if(&app, ws, &token, &id, "x", bad).await, 400).await, "bad_request", "{bad}");
    }
    // Delete and upsert honour it too; an upsert of a new key expecting a version creates nothing.
    let delete = app
        .req(Method::DELETE, &format!("/api/v1/workspaces/{ws}/secrets/{id}"), &token)
        .header("if-match", "\"3\"")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(delete, 412).await, "version_mismatch");
    assert_eq!(app.value_of(ws, "TOKEN").await.as_deref(), Some("sixth"));
    let upsert = app
        .req(Method::PUT, &format!("/api/v1/workspaces/{ws}/secrets/upsert"), &token)
        .header("if-match", "\"1\"")
        .json(&json!({"key": "NEW_KEY", "value": "v"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(upsert, 412).await, "version_mismatch");
    assert_eq!(app.value_of(ws, "NEW_KEY").await, None);
    let upsert = app
        .req(Method::PUT, &format!("/api/v1/workspaces/{ws}/secrets/upsert"), &token)
        .header("if-match", "\"5\"")
        .json(&json!({"key": "TOKEN", "value": "seventh"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json(upsert).await["version"], 6);
    let delete = app
        .req(Method::DELETE, &format!("/api/v1/workspaces/{ws}/secrets/{id}"), &token)
        .header("if-match", "\"6\"")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 200);
}

async fn exactly_one_of_racing_check_and_set_writers_wins(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("race").await;
    let token = app.writer_token(ws).await;
    let id = json(app.create(ws, &token, "RACED", "start").await).await["id"].as_str().unwrap().to_owned();
    let writers = (0..8).map(|n| {
        let (client, base, token, id) = (app.client.clone(), app.base.clone(), token.clone(), id.clone());
        tokio::spawn(async move {
            client
                .put(format!("{base}/api/v1/workspaces/{ws}/secrets/{id}"))
                .bearer_auth(token)
                .header("if-match", "\"1\"")
                .json(&json!({ "value": format!("writer-{n}") }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for writer in writers.collect::<Vec<_>>() {
        statuses.push(writer.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 412, 412, 412, 412, 412, 412, 412]);
    assert_eq!(numbers(&versions(&app, ws, &token, &id).await), [2, 1]);
    assert!(app.value_of(ws, "RACED").await.unwrap().starts_with("writer-"));
}

async fn a_workspace_can_require_check_and_set(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("strict").await;
    let token = app.writer_token(ws).await;
    let id = json(app.create(ws, &token, "STRICT", "v1").await).await["id"].as_str().unwrap().to_owned();
    let owner = app.user("olivia", "correct horse battery staple").await;
    app.add_member(ws, owner, "owner").await;
    let cookie = TestApp::session_cookie(&app.sign_in("olivia", "correct horse battery staple").await).unwrap();
    let settings = |body: Value| {
        app.client
            .put(format!("{}/api/v1/workspaces/{ws}/settings", app.base))
            .header("cookie", &cookie)
            .header("origin", &app.base)
            .json(&body)
            .send()
    };
    let response = settings(json!({"requireCheckAndSet": true})).await.unwrap();
    assert_eq!(json(response).await, json!({"requireCheckAndSet": true}));
    let by_token = app
        .req(Method::PUT, &format!("/api/v1/workspaces/{ws}/settings"), &token)
        .json(&json!({"requireCheckAndSet": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(by_token, 403).await, "forbidden", "a token cannot loosen its rules");
    let read = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/settings"), &token).send().await.unwrap();
    assert_eq!(json(read).await, json!({"requireCheckAndSet": true}));

    assert_eq!(error_code(app.update(ws, &token, &id, json!({"value": "v2"})).await, 428).await, "version_required");
    assert_eq!(error_code(app.upsert(ws, &token, "STRICT", "v2").await, 428).await, "version_required");
    assert_eq!(error_code(app.delete(ws, &token, &id).await, 428).await, "version_required");
    assert_eq!(app.value_of(ws, "STRICT").await.as_deref(), Some("v1"));
    assert_eq!(put_if(&app, ws, &token, &id, "v2", "\"1\"").await.status(), 200);

    let response = settings(json!({"requireCheckAndSet": false})).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.update(ws, &token, &id, json!({"value": "v3"})).await.status(), 200);
    let log = loopstack_secrets::server::service::audit::workspace_log(&app.state.secrets, ws, None).await.unwrap();
    assert_eq!(log.iter().filter(|e| e.action == "workspace.settings_changed").count(), 2);
}

async fn a_deleted_secret_is_restored_within_the_window(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("restore").await;
    let token = app.writer_token(ws).await;
    let id = json(app.create(ws, &token, "GONE", "v1").await).await["id"].as_str().unwrap().to_owned();
    app.update(ws, &token, &id, json!({"value": "v2"})).await;
    assert_eq!(app.delete(ws, &token, &id).await.status(), 200);
    assert_eq!(app.value_of(ws, "GONE").await, None);
    let deleted =
        app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/secrets/deleted"), &token).send().await.unwrap();
    let deleted = json(deleted).await;
    assert_eq!(deleted[0]["key"], "GONE");
    assert_eq!(deleted[0]["version"], 2);

    let restored = restore(&app, ws, &token, "GONE").await;
    assert_eq!(restored.status(), 200);
    let restored = json(restored).await;
    assert_eq!((restored["id"].as_str().unwrap(), restored["version"].as_i64().unwrap()), (id.as_str(), 2));
    assert_eq!(app.value_of(ws, "GONE").await.as_deref(), Some("v2"));
    assert_eq!(numbers(&versions(&app, ws, &token, &id).await), [2, 1], "its history came back with it");
    assert_eq!(error_code(restore(&app, ws, &token, "GONE").await, 404).await, "not_found", "nothing left to restore");
    assert_eq!(error_code(restore(&app, ws, &token, "bad key").await, 400).await, "bad_request");

    // A key in use again is a 409; the deleted one stays restorable.
    assert_eq!(app.delete(ws, &token, &id).await.status(), 200);
    assert_eq!(app.create(ws, &token, "GONE", "new").await.status(), 201);
    assert_eq!(error_code(restore(&app, ws, &token, "GONE").await, 409).await, "conflict");
    assert_eq!(app.value_of(ws, "GONE").await.as_deref(), Some("new"));
    let other = app.workspace("elsewhere").await;
    let other_token = app.writer_token(other).await;
    assert_eq!(error_code(restore(&app, other, &other_token, "GONE").await, 404).await, "not_found");
}

async fn past_the_window_a_deleted_secrets_versions_are_destroyed(engine: Engine) {
    let app = spawn_app_with(engine, &["--deleted-retention-days", "0"]).await;
    let ws = app.workspace("short").await;
    let token = app.writer_token(ws).await;
    let id = json(app.create(ws, &token, "BRIEF", "v1").await).await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.delete(ws, &token, &id).await.status(), 200);
    assert_eq!(error_code(restore(&app, ws, &token, "BRIEF").await, 404).await, "not_found");
    assert_eq!(version_rows(&app, &id).await, 1, "kept until the purge runs");
    assert_eq!(app.state.secrets.purge_deleted().await.unwrap(), 1);
    assert_eq!(version_rows(&app, &id).await, 0);
}

async fn a_data_key_rotation_keeps_old_versions_readable(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("rotated").await;
    let token = app.writer_token(ws).await;
    let id = json(app.create(ws, &token, "ROTATED", "before-1").await).await["id"].as_str().unwrap().to_owned();
    app.update(ws, &token, &id, json!({"value": "before-2"})).await;
    let done = app.state.secrets.rotate_data_key(ws, 1, &test_actor()).await.unwrap();
    assert_eq!((done.resealed, done.retired), (1, 1), "the old key went once its versions were re-encrypted too");
    assert_eq!(rollback(&app, ws, &token, &id, 1).await.status(), 200);
    assert_eq!(app.value_of(ws, "ROTATED").await.as_deref(), Some("before-1"));
}

both_engines!(
    versions_are_kept_listed_pruned_and_rolled_back,
    a_stale_write_is_refused_and_changes_nothing,
    exactly_one_of_racing_check_and_set_writers_wins,
    a_workspace_can_require_check_and_set,
    a_deleted_secret_is_restored_within_the_window,
    past_the_window_a_deleted_secrets_versions_are_destroyed,
    a_data_key_rotation_keeps_old_versions_readable,
);
