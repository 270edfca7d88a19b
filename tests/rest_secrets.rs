//! The REST API for secrets, route by route and status by status, on both engines.

mod common;

use common::{error_code, json, spawn_app, Engine};
use loopstack_secrets::server::domain::Scope;
use reqwest::Method;

async fn create_lists_sorted_keys_without_values(engine: Engine) {
    // Arrange
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;

    // Act
    let created = app.create(ws, &token, "ZED_KEY", "zed-value").await;
    let empty = app.create(ws, &token, "ALPHA", "").await;
    let listed = app.list(ws, &token).await;

    // Assert
    assert_eq!(created.status(), 201);
    let created = json(created).await;
    assert_eq!(created["key"], "ZED_KEY");
    assert_eq!(created["hasValue"], true);
    assert!(created["id"].is_string() && created["updatedAt"].is_string());
    assert!(created.get("value").is_none());
    assert_eq!(json(empty).await["hasValue"], false, "an empty value has no value");
    assert_eq!(listed.status(), 200);
    let listed = json(listed).await;
    let keys: Vec<&str> = listed.as_array().unwrap().iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["ALPHA", "ZED_KEY"]);
    for item in listed.as_array().unwrap() {
        let mut fields: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort();
        assert_eq!(fields, ["hasValue", "id", "key", "updatedAt", "version"]);
    }
    assert_eq!(app.value_of(ws, "ZED_KEY").await.as_deref(), Some("zed-value"));
}

async fn a_duplicate_create_is_a_conflict_and_changes_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    assert_eq!(app.create(ws, &token, "API_KEY", "first").await.status(), 201);

    let again = app.create(ws, &token, "API_KEY", "second").await;

    assert_eq!(error_code(again, 409).await, "conflict");
    assert_eq!(app.value_of(ws, "API_KEY").await.as_deref(), Some("first"));
}

async fn upsert_creates_then_updates_the_same_secret(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;

    let first = json(app.upsert(ws, &token, "TOKEN", "one").await).await;
    let second = app.upsert(ws, &token, "TOKEN", "two").await;

    assert_eq!(second.status(), 200);
    let second = json(second).await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.value_of(ws, "TOKEN").await.as_deref(), Some("two"));
    assert_eq!(json(app.list(ws, &token).await).await.as_array().unwrap().len(), 1);
}

async fn update_by_id_replaces_the_value_and_an_absent_value_leaves_it(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    let id = json(app.create(ws, &token, "DB_PASSWORD", "old").await).await["id"].as_str().unwrap().to_string();

    let replaced = app.update(ws, &token, &id, serde_json::json!({"value": "new"})).await;
    assert_eq!(replaced.status(), 200);
    assert_eq!(app.value_of(ws, "DB_PASSWORD").await.as_deref(), Some("new"));

    let untouched = app.update(ws, &token, &id, serde_json::json!({})).await;
    assert_eq!(untouched.status(), 200);
    assert_eq!(json(untouched).await["hasValue"], true);
    assert_eq!(app.value_of(ws, "DB_PASSWORD").await.as_deref(), Some("new"));

    let cleared = json(app.update(ws, &token, &id, serde_json::json!({"value": ""})).await).await;
    assert_eq!(cleared["hasValue"], false);

    let missing = app.update(ws, &token, &uuid::Uuid::new_v4().to_string(), serde_json::json!({"value": "x"})).await;
    assert_eq!(error_code(missing, 404).await, "not_found");
}

async fn delete_removes_the_secret_once(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    let id = json(app.create(ws, &token, "GONE", "bye").await).await["id"].as_str().unwrap().to_string();

    let deleted = app.delete(ws, &token, &id).await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(json(deleted).await, serde_json::json!({"success": true}));
    assert_eq!(error_code(app.delete(ws, &token, &id).await, 404).await, "not_found");
    assert!(json(app.list(ws, &token).await).await.as_array().unwrap().is_empty());
}

async fn bad_input_is_a_400_with_the_reason_and_stores_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    let path = format!("/api/v1/workspaces/{ws}/secrets");

    for key in ["1ABC", "", "HAS-DASH", "with space", &"K".repeat(201)] {
        let response = app.create(ws, &token, key, "v").await;
        assert_eq!(error_code(response, 400).await, "bad_request", "key {key:?}");
    }
    let unknown_field = app
        .req(Method::POST, &path, &token)
        .json(&serde_json::json!({"key": "A", "value": "v", "extra": 1}))
        .send()
        .await
        .unwrap();
    let body = unknown_field.text().await.unwrap();
    assert!(body.contains("unknown field"), "{body}");
    let malformed = app
        .req(Method::POST, &path, &token)
        .header("content-type", "application/json")
        .body("{\"key\":")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(malformed, 400).await, "bad_request");
    let missing_value =
        app.req(Method::POST, &path, &token).json(&serde_json::json!({"key": "A"})).send().await.unwrap();
    assert_eq!(error_code(missing_value, 400).await, "bad_request");
    let wrong_type = app
        .req(Method::PUT, &format!("{path}/upsert"), &token)
        .json(&serde_json::json!({"key": "A", "value": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(wrong_type, 400).await, "bad_request");

    assert!(json(app.list(ws, &token).await).await.as_array().unwrap().is_empty());
}

async fn oversized_values_and_bodies_are_413(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;

    let at_limit = app.create(ws, &token, "AT_LIMIT", &"v".repeat(64 * 1024)).await;
    let over_value = app.create(ws, &token, "OVER", &"v".repeat(64 * 1024 + 1)).await;
    // Just over the 1 MiB body limit: the server stops reading at the limit, and the few bytes
    // left fit in the socket buffers, so the client always gets to read the answer.
    let over_body = app.upsert(ws, &token, "HUGE", &"v".repeat(1024 * 1024)).await;

    assert_eq!(at_limit.status(), 201);
    assert_eq!(error_code(over_value, 413).await, "payload_too_large");
    assert_eq!(error_code(over_body, 413).await, "payload_too_large");
    let keys = json(app.list(ws, &token).await).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "only the value at the limit is stored: {keys}");
}

async fn missing_or_bad_credentials_are_401(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    let url = format!("{}/api/v1/workspaces/{ws}/secrets", app.base);

    let none = app.client.get(&url).send().await.unwrap();
    let garbage = app.list(ws, "lss_nonsense").await;
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let wrong_secret = app.list(ws, &tampered).await;
    let basic = app.client.get(&url).header("authorization", "Basic YTpi").send().await.unwrap();

    for response in [none, garbage, wrong_secret, basic] {
        assert_eq!(error_code(response, 401).await, "unauthorized");
    }
}

async fn a_revoked_or_expired_token_is_401(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let (row, token) = loopstack_secrets::server::service::access::create_token(
        &app.state.db,
        ws,
        "t",
        &[Scope::SecretsList],
        None,
        &common::test_actor(),
    )
    .await
    .unwrap();
    assert_eq!(app.list(ws, &token).await.status(), 200);

    loopstack_secrets::server::service::access::revoke_token(&app.state.db, row.id, None, &common::test_actor())
        .await
        .unwrap();
    assert_eq!(error_code(app.list(ws, &token).await, 401).await, "unauthorized");

    let (_, expired) = loopstack_secrets::server::service::access::create_token(
        &app.state.db,
        ws,
        "t",
        &[Scope::SecretsList],
        Some(-1),
        &common::test_actor(),
    )
    .await
    .unwrap();
    assert_eq!(error_code(app.list(ws, &expired).await, 401).await, "unauthorized");
}

async fn a_token_without_the_scope_is_403(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let list_only = app.token(ws, &[Scope::SecretsList]).await;
    let write_only = app.token(ws, &[Scope::SecretsWrite]).await;

    assert_eq!(error_code(app.create(ws, &list_only, "A", "v").await, 403).await, "forbidden");
    assert_eq!(error_code(app.upsert(ws, &list_only, "A", "v").await, 403).await, "forbidden");
    assert_eq!(error_code(app.list(ws, &write_only).await, 403).await, "forbidden");
    assert_eq!(app.create(ws, &write_only, "A", "v").await.status(), 201);
}

async fn another_workspace_is_404_by_list_and_by_id_with_identical_answers(engine: Engine) {
    let app = spawn_app(engine).await;
    let (a, b) = (app.workspace("a").await, app.workspace("b").await);
    let token_a = app.writer_token(a).await;
    let token_b = app.writer_token(b).await;
    let b_secret = json(app.create(b, &token_b, "B_ONLY", "b-value").await).await["id"].as_str().unwrap().to_string();
    let nowhere = uuid::Uuid::new_v4();

    let list_b = app.list(b, &token_a).await;
    let list_nowhere = app.list(nowhere, &token_a).await;
    let update_b = app.update(b, &token_a, &b_secret, serde_json::json!({"value": "pwned"})).await;
    let delete_b = app.delete(b, &token_a, &b_secret).await;
    let update_via_a = app.update(a, &token_a, &b_secret, serde_json::json!({"value": "pwned"})).await;
    let upsert_b = app.upsert(b, &token_a, "B_ONLY", "pwned").await;

    let mut bodies = Vec::new();
    for response in [list_b, list_nowhere, update_b, delete_b, update_via_a, upsert_b] {
        assert_eq!(response.status(), 404);
        bodies.push(response.text().await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "404 bodies differ: {bodies:?}");
    assert_eq!(app.value_of(b, "B_ONLY").await.as_deref(), Some("b-value"));
}

async fn fifty_concurrent_upserts_of_one_key_leave_one_row(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;

    let calls = (0..50).map(|i| {
        let (app, token) = (&app, &token);
        async move { app.upsert(ws, token, "RACE", &format!("value-{i}")).await }
    });
    let responses = futures::future::join_all(calls).await;

    let mut ids = std::collections::HashSet::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        ids.insert(json(response).await["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "every upsert names the same secret");
    let listed = json(app.list(ws, &token).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let value = app.value_of(ws, "RACE").await.unwrap();
    assert!(value.starts_with("value-"), "the stored value is one of the written ones and decrypts");
}

async fn unknown_routes_ids_and_methods_answer_with_the_error_body(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;

    let bad_ws = app.req(Method::GET, "/api/v1/workspaces/not-a-uuid/secrets", &token).send().await.unwrap();
    let bad_id = app.delete(ws, &token, "not-a-uuid").await;
    let unknown = app.req(Method::GET, "/api/v1/nothing/here", &token).send().await.unwrap();
    let wrong_method =
        app.req(Method::PATCH, &format!("/api/v1/workspaces/{ws}/secrets"), &token).send().await.unwrap();

    assert_eq!(error_code(bad_ws, 404).await, "not_found");
    assert_eq!(error_code(bad_id, 404).await, "not_found");
    assert_eq!(error_code(unknown, 404).await, "not_found");
    assert_eq!(error_code(wrong_method, 405).await, "method_not_allowed");
}

async fn openapi_and_health_are_served(engine: Engine) {
    let app = spawn_app(engine).await;

    let doc = json(app.client.get(format!("{}/api/v1/openapi.json", app.base)).send().await.unwrap()).await;
    let health = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    let ready = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();

    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/workspaces/{workspace_id}/secrets",
        "/api/v1/workspaces/{workspace_id}/secrets/upsert",
        "/api/v1/workspaces/{workspace_id}/secrets/{id}",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    assert!(doc["components"]["schemas"]["SecretItem"]["properties"]["hasValue"].is_object());
    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
}

async fn with_the_feature_off_no_secrets_route_is_mounted(engine: Engine) {
    let app = common::spawn_app_with(engine, &["--enabled", "false"]).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;

    assert_eq!(error_code(app.list(ws, &token).await, 404).await, "not_found");
    assert_eq!(app.client.get(format!("{}/healthz", app.base)).send().await.unwrap().status(), 200);
}

async fn a_canary_value_never_appears_in_any_response(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    let canary = format!("canary{}", uuid::Uuid::new_v4().simple());
    let mut bodies = Vec::new();

    let created = app.create(ws, &token, "C1", &canary).await.text().await.unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["id"].as_str().unwrap().to_string();
    bodies.push(created);
    bodies.push(app.create(ws, &token, "C1", &canary).await.text().await.unwrap());
    bodies.push(app.upsert(ws, &token, "C2", &canary).await.text().await.unwrap());
    bodies.push(app.upsert(ws, &token, "bad key", &canary).await.text().await.unwrap());
    bodies.push(app.update(ws, &token, &id, serde_json::json!({"value": canary})).await.text().await.unwrap());
    bodies.push(
        app.update(ws, &token, &id, serde_json::json!({"value": canary, "extra": canary})).await.text().await.unwrap(),
    );
    bodies.push(app.list(ws, &token).await.text().await.unwrap());
    bodies.push(app.delete(ws, &token, &id).await.text().await.unwrap());

    assert_eq!(bodies.len(), 8);
    for body in &bodies {
        assert!(!body.contains(&canary), "a value came back: {body}");
    }
}

both_engines!(
    a_canary_value_never_appears_in_any_response,
    create_lists_sorted_keys_without_values,
    a_duplicate_create_is_a_conflict_and_changes_nothing,
    upsert_creates_then_updates_the_same_secret,
    update_by_id_replaces_the_value_and_an_absent_value_leaves_it,
    delete_removes_the_secret_once,
    bad_input_is_a_400_with_the_reason_and_stores_nothing,
    oversized_values_and_bodies_are_413,
    missing_or_bad_credentials_are_401,
    a_revoked_or_expired_token_is_401,
    a_token_without_the_scope_is_403,
    another_workspace_is_404_by_list_and_by_id_with_identical_answers,
    fifty_concurrent_upserts_of_one_key_leave_one_row,
    unknown_routes_ids_and_methods_answer_with_the_error_body,
    openapi_and_health_are_served,
    with_the_feature_off_no_secrets_route_is_mounted,
);

/// The list route answers with JSON the database builds; it must say exactly what serde says of
/// the same rows (on PostgreSQL the instant, to the microsecond it stores).
async fn the_listing_built_by_the_database_matches_the_service(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    for (key, value) in [("B_KEY", "b"), ("A_KEY", ""), ("C_KEY", "c\"\\")] {
        assert_eq!(app.create(ws, &token, key, value).await.status(), 201);
    }
    let empty = app.workspace("empty").await;
    let empty_token = app.writer_token(empty).await;

    let response = app.list(ws, &token).await;
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    let listed: Vec<serde_json::Value> = response.json().await.unwrap();
    let service = app.state.secrets.find_all_by_workspace(ws).await.unwrap();
    let expected: Vec<serde_json::Value> = service.iter().map(|s| serde_json::to_value(s).unwrap()).collect();

    assert_eq!(content_type, "application/json");
    assert_eq!(listed.len(), 3);
    for (got, want) in listed.iter().zip(&expected) {
        for field in ["id", "key", "hasValue"] {
            assert_eq!(got[field], want[field], "{field}");
        }
        let at =
            |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v["updatedAt"].as_str().unwrap()).unwrap();
        assert_eq!(at(got), at(want));
        assert!(got["updatedAt"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(listed[0]["hasValue"], false, "an empty value has no value");
    assert_eq!(json(app.list(empty, &empty_token).await).await, serde_json::json!([]));
}

/// `?limit=&after=` pages the list by key; without them it is whole.
async fn the_list_pages_by_key_with_limit_and_after(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    for key in ["E_KEY", "A_KEY", "C_KEY", "B_KEY", "D_KEY"] {
        assert_eq!(app.create(ws, &token, key, "v").await.status(), 201);
    }
    let page = |query: &'static str| {
        let request = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/secrets{query}"), &token);
        async move { request.send().await.unwrap() }
    };
    let keys = |listed: serde_json::Value| -> Vec<String> {
        listed.as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_string()).collect()
    };

    let first = keys(json(page("?limit=2").await).await);
    let second = keys(json(page("?limit=2&after=B_KEY").await).await);
    let rest = keys(json(page("?after=D_KEY").await).await);
    let past = json(page("?after=Z_KEY&limit=3").await).await;
    let whole = keys(json(page("").await).await);
    let between = keys(json(page("?after=B_KEZ&limit=1").await).await);

    assert_eq!(first, ["A_KEY", "B_KEY"]);
    assert_eq!(second, ["C_KEY", "D_KEY"]);
    assert_eq!(rest, ["E_KEY"]);
    assert_eq!(past, serde_json::json!([]));
    assert_eq!(whole, ["A_KEY", "B_KEY", "C_KEY", "D_KEY", "E_KEY"]);
    assert_eq!(between, ["C_KEY"], "the cursor need not be a stored key");
    for bad in ["?limit=0", "?limit=1001", "?limit=abc", "?limit=-1", "?after=not%20a%20key", "?after=%00"] {
        assert_eq!(error_code(page(bad).await, 400).await, "bad_request", "{bad}");
    }
}

both_engines!(the_listing_built_by_the_database_matches_the_service, the_list_pages_by_key_with_limit_and_after,);
