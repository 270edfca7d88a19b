//! Operator-wide secrets: keys named in `LOOPSTACK_SECRETS_GLOBAL_KEYS`, valued from the
//! server's environment, beneath every workspace's own secrets.

mod common;

use common::{error_code, json, spawn_app_with_env, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// The global value; it must never come back.
const CANARY: &str = "sk-global-canary-7f3a9c2e41";
const OWN: &str = "sk-workspace-own-value-0912";
const PASSWORD: &str = "a long password for the studio";

/// A server whose operator provides `GLOBAL_OPENAI` (sent only to `hosts`) and
/// `EXAMPLE_SECRET`, and names `GLOBAL_UNSET` without setting it.
async fn app_with_globals(engine: Engine, hosts: &str) -> TestApp {
    let env = [
        ("GLOBAL_OPENAI", CANARY),
        ("LOOPSTACK_SECRETS_GLOBAL_EGRESS_GLOBAL_OPENAI", hosts),
        ("EXAMPLE_SECRET", "example-global-value-123"),
    ];
    spawn_app_with_env(engine, &["--global-keys", "GLOBAL_OPENAI,GLOBAL_UNSET,EXAMPLE_SECRET"], &env).await
}

async fn tool(app: &TestApp, ws: Uuid, token: &str, name: &str, args: Value) -> reqwest::Response {
    app.tool(ws, token, name, args).await
}

async fn keys(app: &TestApp, ws: Uuid, token: &str) -> Value {
    json(tool(app, ws, token, "get_secret_keys", json!({})).await).await["data"].clone()
}

async fn values(app: &TestApp, ws: Uuid, token: &str, query: &str) -> reqwest::Response {
    app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/secrets/values{query}"), token).send().await.unwrap()
}

async fn get_secret_keys_marks_global_keys_and_a_workspace_secret_wins(engine: Engine) {
    let app = app_with_globals(engine, "").await;
    let plain = app.workspace("plain").await;
    let overriding = app.workspace("overriding").await;
    let writer = app.writer_token(overriding).await;
    assert_eq!(app.upsert(overriding, &writer, "GLOBAL_OPENAI", OWN).await.status(), 200);
    assert_eq!(app.upsert(overriding, &writer, "AAA_OWN", "").await.status(), 200);
    let plain_agent = app.token(plain, &[Scope::SecretsList, Scope::ToolsCall]).await;
    let agent = app.token(overriding, &[Scope::ToolsCall]).await;

    let plain_keys = keys(&app, plain, &plain_agent).await;
    let overridden_keys = keys(&app, overriding, &agent).await;
    let listed = json(app.list(plain, &plain_agent).await).await;

    assert_eq!(
        plain_keys,
        json!([
            {"key": "EXAMPLE_SECRET", "hasValue": true, "global": true},
            {"key": "GLOBAL_OPENAI", "hasValue": true, "global": true},
        ]),
        "a key that is not set in the environment is absent"
    );
    assert_eq!(
        overridden_keys,
        json!([
            {"key": "AAA_OWN", "hasValue": false, "global": false},
            {"key": "EXAMPLE_SECRET", "hasValue": true, "global": true},
            {"key": "GLOBAL_OPENAI", "hasValue": true, "global": false},
        ])
    );
    assert_eq!(listed, json!([]), "the REST listing holds the workspace's own secrets only");
    let document = app.client.get(format!("{}/api/v1/openapi.json", app.base)).send().await.unwrap();
    let document = json(document).await;
    let schema = &document["components"]["schemas"]["SecretKeyState"];
    assert_eq!(schema["properties"]["global"]["type"], "boolean", "{schema}");
}

async fn values_and_run_read_global_values_beneath_the_workspaces_and_audit_them(engine: Engine) {
    let app = app_with_globals(engine, "").await;
    let plain = app.workspace("plain").await;
    let overriding = app.workspace("overriding").await;
    let writer = app.writer_token(overriding).await;
    assert_eq!(app.upsert(overriding, &writer, "GLOBAL_OPENAI", OWN).await.status(), 200);
    let reader = app.token(plain, &[Scope::SecretsRead]).await;
    let other_reader = app.token(overriding, &[Scope::SecretsRead]).await;
    let lister = app.token(plain, &[Scope::SecretsList, Scope::SecretsUse]).await;

    let all = json(values(&app, plain, &reader, "").await).await;
    let one = json(values(&app, plain, &reader, "?keys=GLOBAL_OPENAI").await).await;
    let own = json(values(&app, overriding, &other_reader, "?keys=GLOBAL_OPENAI").await).await;
    let refused = values(&app, plain, &lister, "").await;

    assert_eq!(all, json!({"EXAMPLE_SECRET": "example-global-value-123", "GLOBAL_OPENAI": CANARY}));
    assert_eq!(one, json!({"GLOBAL_OPENAI": CANARY}));
    assert_eq!(own, json!({"GLOBAL_OPENAI": OWN}), "the workspace's own value wins");
    assert_eq!(error_code(refused, 403).await, "forbidden");
    let log =
        loopstack_secrets::server::store::audit_events(&app.state.db, plain, Some("secret.read"), 10).await.unwrap();
    assert_eq!(log.len(), 3, "each global read is audited");
    assert!(log.iter().all(|e| e.detail.as_deref() == Some("global")));
    assert!(log.iter().all(|e| e.actor.starts_with("token:")), "{:?}", log[0].actor);
    let log = loopstack_secrets::server::store::audit_events(&app.state.db, overriding, Some("secret.read"), 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].detail, None, "the workspace's own value is not a global one");
}

async fn the_quick_start_counts_a_global_key_as_stored(engine: Engine) {
    let app = app_with_globals(engine, "").await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &Scope::ALL).await;
    let started = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), &token)
        .json(&json!({"workflow": "secrets_example"}))
        .send()
        .await
        .unwrap();
    let run = json(started).await["id"].as_str().unwrap().to_string();
    let submitted = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows/{run}/transitions/secretsSubmitted"), &token)
        .json(&json!({"variables": [{"key": "EXAMPLE_API_KEY", "value": "typed-by-the-person"}]}))
        .send()
        .await
        .unwrap();

    let done = json(submitted).await;
    assert_eq!(done["status"], "completed");
    let markdown = done["documents"].as_array().unwrap().last().unwrap()["content"]["markdown"].clone();
    let markdown = markdown.as_str().unwrap();
    assert!(markdown.contains("| `EXAMPLE_API_KEY` | Stored |"), "{markdown}");
    assert!(markdown.contains("| `EXAMPLE_SECRET` | Stored |"), "the global value counts: {markdown}");
    assert!(!done.to_string().contains("example-global-value-123"));
}

/// A loopback server that answers with the `Authorization` header it got, plain and base64.
async fn echo_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::HeaderMap;
    use base64::Engine as _;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/echo",
        axum::routing::get(move |headers: HeaderMap| {
            let value = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            record.lock().unwrap().push(value.clone());
            let encoded = base64::engine::general_purpose::STANDARD.encode(&value);
            async move { format!("got {value} / {encoded}") }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

async fn http_request_uses_a_global_value_only_where_the_operator_allows(engine: Engine) {
    let (echo, seen) = echo_server().await;
    let app = app_with_globals(engine, &echo).await;
    let plain = app.workspace("plain").await;
    let overriding = app.workspace("overriding").await;
    let writer = app.writer_token(overriding).await;
    assert_eq!(app.upsert(overriding, &writer, "GLOBAL_OPENAI", OWN).await.status(), 200);
    let agent = app.token(plain, &[Scope::SecretsUse]).await;
    let other_agent = app.token(overriding, &[Scope::SecretsUse]).await;
    let call = |key: &str| json!({"method": "GET", "url": format!("{echo}/echo"), "headers": {"Authorization": format!("{{{{secrets.{key}}}}}")}});

    let used = tool(&app, plain, &agent, "http_request", call("GLOBAL_OPENAI")).await;
    let status = used.status();
    let used = used.text().await.unwrap();
    let elsewhere = tool(&app, plain, &agent, "http_request", call("EXAMPLE_SECRET")).await;
    let overridden = tool(&app, overriding, &other_agent, "http_request", call("GLOBAL_OPENAI")).await;
    let checked =
        json(tool(&app, plain, &agent, "check_secret", json!({"key": "GLOBAL_OPENAI", "value": CANARY})).await).await;

    assert_eq!(status, 200, "{used}");
    assert_eq!(seen.lock().unwrap().clone(), [CANARY], "the upstream got the global value, once");
    assert!(!used.contains(CANARY) && used.contains("got *** / ***"), "masked, base64 too: {used}");
    assert_eq!(error_code(elsewhere, 403).await, "egress_denied", "a global with no hosts goes nowhere");
    assert_eq!(
        error_code(overridden, 403).await,
        "egress_denied",
        "the workspace's own secret wins, with its own (empty) policy"
    );
    assert_eq!(checked["data"]["matches"], true);
    let log =
        loopstack_secrets::server::store::audit_events(&app.state.db, plain, Some("secret.used"), 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].key.as_deref(), Some("GLOBAL_OPENAI"));
    let detail = log[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("-> 200") && detail.contains("(global value)") && !detail.contains(CANARY), "{detail}");
}

async fn no_global_value_reaches_a_response_page_event_or_log_line(engine: Engine) {
    let app = app_with_globals(engine, "").await;
    let ws = app.workspace("main").await;
    let user = app.user("owner", PASSWORD).await;
    app.add_member(ws, user, "owner").await;
    let cookie = TestApp::session_cookie(&app.sign_in("owner", PASSWORD).await).expect("a session cookie");
    let writer = app.writer_token(ws).await;
    assert_eq!(app.upsert(ws, &writer, "EXAMPLE_SECRET", OWN).await.status(), 200);
    let all = app.token(ws, &Scope::ALL).await;
    let mut events = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/events"), &all).send().await.unwrap();

    // Everything a token, a person or a model can read back, with the value quoted in input.
    let asked = tool(
        &app,
        ws,
        &all,
        "request_secrets",
        json!({"reason": format!("rotate {CANARY}"), "variables": [{"key": "GLOBAL_OPENAI"}]}),
    )
    .await;
    let asked = asked.text().await.unwrap();
    let pending: Value = serde_json::from_str(&asked).unwrap();
    assert_eq!(pending["pending"]["workflowId"].as_str().map(str::len), Some(36), "a request still asks: {asked}");
    let mut bodies = vec![asked, keys(&app, ws, &all).await.to_string()];
    for path in ["secrets", "workflows"] {
        let response = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/{path}"), &all).send().await.unwrap();
        bodies.push(response.text().await.unwrap());
    }
    let runs = bodies.last().unwrap().clone();
    let page = app.client.get(format!("{}/workspaces/{ws}", app.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap().replace("<!>", "");
    let mut streamed = Vec::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(std::time::Duration::from_millis(500), events.chunk()).await {
        streamed.extend_from_slice(&chunk);
    }
    bodies.push(String::from_utf8_lossy(&streamed).into_owned());
    bodies.push(page.clone());

    for body in &bodies {
        assert!(!body.contains(CANARY), "{body}");
    }
    assert!(runs.contains("rotate ***"), "input quoting the value is masked: {runs}");
    // The Studio shows the keys the server provides, read-only, and which one is overridden.
    assert!(page.contains("Provided by the server"), "{page}");
    assert!(page.contains("<code>GLOBAL_OPENAI</code>") && page.contains("Overridden by this workspace"), "{page}");
    assert!(!page.contains("GLOBAL_UNSET"));

    // Log lines go through the guard of every value, the global ones included.
    assert_eq!(common::logged(&app, &format!("upstream said {CANARY}\n")).await, "upstream said ***\n");
}

#[tokio::test]
async fn a_reserved_or_invalid_global_key_stops_the_start_naming_the_setting() {
    for (keys, named) in [("OPENAI_API_KEY,PATH", "PATH"), ("LD_PRELOAD", "LD_PRELOAD"), ("not-a-key", "not-a-key")] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let config = common::config_for(dir.path(), &url, &["--global-keys", keys]);
        let key = common::new_master_key();
        let opened = loopstack_secrets::server::state::open_with_env(config, Some(&key), |name| {
            (!name.starts_with("LOOPSTACK_")).then(|| "x".repeat(20))
        })
        .await;
        let err = format!("{:#}", opened.err().expect("the start is refused"));
        assert!(err.contains("LOOPSTACK_SECRETS_GLOBAL_KEYS") && err.contains(named), "{err}");
        assert!(!dir.path().join("test.db").exists(), "nothing was opened");
    }
}

both_engines!(
    get_secret_keys_marks_global_keys_and_a_workspace_secret_wins,
    values_and_run_read_global_values_beneath_the_workspaces_and_audit_them,
    the_quick_start_counts_a_global_key_as_stored,
    http_request_uses_a_global_value_only_where_the_operator_allows,
);
both_engines!(serial: no_global_value_reaches_a_response_page_event_or_log_line);
