//! Webhooks on both engines: deliveries signed as the README says a receiver checks them,
//! retried after the receiver fails twice, refused for an internal address unless allowed,
//! disabled, re-enabled and re-sent; delivered once with two instances sharing PostgreSQL; the
//! outbox: an event committed by a server that died before dispatching it is delivered by the
//! next one; and a delivery waiting when the real binary is SIGKILLed goes out after the restart.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use loopstack_secrets::server::domain::webhook::verify;
use loopstack_secrets::server::domain::Scope;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// What the receiver got: the signature header, the delivery id header and the body.
#[derive(Clone, Debug)]
struct Received {
    signature: String,
    delivery: String,
    body: String,
}

/// A webhook receiver on loopback that fails the first `fail` requests with 500.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receiver(fail: usize) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let seen = got.clone();
    let handler = move |headers: HeaderMap, body: String| {
        let seen = seen.clone();
        async move {
            let mut seen = seen.lock().unwrap();
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            seen.push(Received {
                signature: header("loopstack-signature"),
                delivery: header("loopstack-delivery"),
                body,
            });
            if seen.len() <= fail {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        }
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got }
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests came (at most 20 seconds).
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            if self.received().len() >= n {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {n} requests, got {:?}", self.received());
    }
}

const ALLOW_LOOPBACK: [&str; 4] = ["--webhook-allow-hosts", "127.0.0.1", "--webhook-retry-base-ms", "100"];

async fn register(app: &TestApp, ws: Uuid, token: &str, url: &str, events: &[&str]) -> Value {
    let response = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/webhooks"), token)
        .json(&json!({"url": url, "events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    json(response).await
}

async fn deliveries(app: &TestApp, ws: Uuid, token: &str, hook: &str) -> Vec<Value> {
    let response = app
        .req(Method::GET, &format!("/api/v1/workspaces/{ws}/webhooks/{hook}/deliveries"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    json(response).await.as_array().unwrap().clone()
}

async fn a_delivery_is_signed_and_retried_until_it_succeeds(engine: Engine) {
    let app = spawn_app_with(engine, &ALLOW_LOOPBACK).await;
    let ws = app.workspace("hooks").await;
    let token = app.token(ws, &[Scope::WebhooksManage, Scope::SecretsWrite]).await;
    let hook = receiver(2).await;
    let created = register(&app, ws, &token, &hook.url, &["secret.upserted"]).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed =
        json(app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/webhooks"), &token).send().await.unwrap()).await;
    assert!(!listed.to_string().contains(&secret), "the secret is shown once");

    let canary = "canary-hook-value-0d9e";
    assert_eq!(app.upsert(ws, &token, "HOOKED", canary).await.status(), 200);
    let got = hook.wait_for(3).await;
    let now = chrono::Utc::now().timestamp();
    assert!(got.iter().all(|r| r.body == got[0].body && r.delivery == got[0].delivery), "one delivery, retried");
    for r in &got {
        assert!(verify(secret.as_bytes(), &r.signature, &r.body, now), "{r:?}");
        assert!(!verify(b"whsec_other", &r.signature, &r.body, now));
    }
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "secret.upserted");
    assert_eq!(body["workspaceId"], ws.to_string());
    assert_eq!(body["data"]["key"], "HOOKED");
    assert!(body["id"].is_string() && body["occurredAt"].is_string());
    assert!(!got[0].body.contains(canary));

    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = deliveries(&app, ws, &token, created["id"].as_str().unwrap()).await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0]["status"].as_str(), list[0]["attempts"].as_i64(), list[0]["lastStatus"].as_i64()),
        (Some("delivered"), Some(3), Some(204))
    );
    assert_eq!(hook.received().len(), 3, "nothing more after success");
}

async fn an_internal_address_is_refused_unless_allowed(engine: Engine) {
    let app = spawn_app_with(engine, &["--webhook-retry-base-ms", "100"]).await;
    let ws = app.workspace("guarded").await;
    let token = app.token(ws, &[Scope::WebhooksManage, Scope::SecretsWrite]).await;
    let hook = receiver(0).await;
    let created = register(&app, ws, &token, &hook.url, &["secret.upserted"]).await;
    app.upsert(ws, &token, "K", "v").await;
    let id = created["id"].as_str().unwrap();
    let mut list = Vec::new();
    for _ in 0..100 {
        list = deliveries(&app, ws, &token, id).await;
        if list.first().is_some_and(|d| d["attempts"].as_i64() >= Some(1) && d["lastError"].is_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(list[0]["lastError"].as_str().unwrap().contains("internal address"), "{list:?}");
    assert_eq!(list[0]["status"], "pending");
    assert!(hook.received().is_empty(), "nothing was sent");
    // Bad input is a clear 400.
    for body in [
        json!({"url": "ftp://x", "events": ["secret.upserted"]}),
        json!({"url": hook.url, "events": []}),
        json!({"url": hook.url, "events": ["secret.read"]}),
    ] {
        let response = app
            .req(Method::POST, &format!("/api/v1/workspaces/{ws}/webhooks"), &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(response, 400).await, "bad_request", "{body}");
    }
    let writer = app.writer_token(ws).await;
    let response = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/webhooks"), &writer).send().await.unwrap();
    assert_eq!(error_code(response, 403).await, "forbidden", "webhooks:manage is its own scope");
}

async fn an_endpoint_can_be_disabled_enabled_resent_and_removed(engine: Engine) {
    let app = spawn_app_with(engine, &ALLOW_LOOPBACK).await;
    let ws = app.workspace("managed").await;
    let token = app.token(ws, &[Scope::WebhooksManage, Scope::SecretsWrite]).await;
    let hook = receiver(0).await;
    let created = register(&app, ws, &token, &hook.url, &["secret.deleted"]).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/workspaces/{ws}/webhooks/{id}");
    let off = app.req(Method::PUT, &path, &token).json(&json!({"enabled": false})).send().await.unwrap();
    assert_eq!(json(off).await["enabled"], false);
    let secret = json(app.create(ws, &token, "SOON_GONE", "v").await).await["id"].as_str().unwrap().to_owned();
    app.delete(ws, &token, &secret).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(hook.received().is_empty(), "a disabled endpoint gets nothing; the upsert was not subscribed to");
    assert_eq!(deliveries(&app, ws, &token, &id).await[0]["status"], "pending", "it waits");
    let on = app.req(Method::PUT, &path, &token).json(&json!({"enabled": true})).send().await.unwrap();
    assert_eq!(on.status(), 200);
    let got = hook.wait_for(1).await;
    assert_eq!(serde_json::from_str::<Value>(&got[0].body).unwrap()["type"], "secret.deleted");

    let delivery = deliveries(&app, ws, &token, &id).await[0]["id"].as_str().unwrap().to_owned();
    let resend = app.req(Method::POST, &format!("{path}/deliveries/{delivery}/resend"), &token).send().await.unwrap();
    assert_eq!(resend.status(), 200);
    let got = hook.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body);

    assert_eq!(app.req(Method::DELETE, &path, &token).send().await.unwrap().status(), 200);
    assert_eq!(
        error_code(app.req(Method::GET, &format!("{path}/deliveries"), &token).send().await.unwrap(), 404).await,
        "not_found"
    );
    let other = app.workspace("other").await;
    let other_token = app.token(other, &[Scope::WebhooksManage]).await;
    let response =
        app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/webhooks"), &other_token).send().await.unwrap();
    assert_eq!(error_code(response, 404).await, "not_found");
}

async fn an_event_committed_before_a_crash_is_delivered_after_the_restart(engine: Engine) {
    // A server that commits a change and dies before its dispatcher runs: state opened without
    // the background tasks.
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database(&engine, dir.path()).await;
    let master_key = new_master_key();
    let config = config_for(dir.path(), &database_url, &ALLOW_LOOPBACK);
    let hook = receiver(0).await;
    let (ws, secret) = {
        let state = loopstack_secrets::server::state::open(config, Some(&master_key)).await.unwrap().state;
        let ws = loopstack_secrets::server::service::access::create_workspace(&state.db, &state.kek, "crashy", None)
            .await
            .unwrap();
        let created = state.webhooks.create(ws, &hook.url, &["secret.upserted".into()], &test_actor()).await.unwrap();
        let key = state.secrets.parse_key("SURVIVES").unwrap();
        let value = state.secrets.parse_value("v".into()).unwrap();
        state.secrets.upsert(ws, &key, &value, &test_actor()).await.unwrap();
        assert_eq!(loopstack_secrets::server::store::undispatched_events(&state.db).await.unwrap(), 1);
        state.db.close().await;
        (ws, created.secret)
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hook.received().is_empty());
    let app = serve(dir, database_url, master_key, &ALLOW_LOOPBACK).await;
    let got = hook.wait_for(1).await;
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!((body["type"].as_str(), body["data"]["key"].as_str()), (Some("secret.upserted"), Some("SURVIVES")));
    assert_eq!(body["workspaceId"], ws.to_string());
    assert!(verify(secret.as_bytes(), &got[0].signature, &got[0].body, chrono::Utc::now().timestamp()));
    assert_eq!(loopstack_secrets::server::store::undispatched_events(&app.state.db).await.unwrap(), 0);
}

/// The real binary, SIGKILLed with an event written and its delivery not sent (the endpoint is
/// disabled), then started again: the delivery goes out once the endpoint is enabled.
async fn a_delivery_waiting_when_the_server_is_killed_goes_out_after_the_restart(engine: Engine) {
    use tokio::io::AsyncBufReadExt;
    const BIN: &str = env!("CARGO_BIN_EXE_loopstack-secrets");
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database(&engine, dir.path()).await;
    let master_key = new_master_key();
    let command = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(args)
            .env("DATABASE_URL", &database_url)
            .env("LOOPSTACK_SECRETS_DATA_DIR", dir.path())
            .env("LOOPSTACK_SECRETS_MASTER_KEY", &master_key)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("LOOPSTACK_SECRETS_WEBHOOK_ALLOW_HOSTS", "127.0.0.1")
            .env("LOOPSTACK_SECRETS_WEBHOOK_RETRY_BASE_MS", "100")
            .kill_on_drop(true);
        cmd
    };
    // Starts `serve`; the child, its address and the default workspace.
    let start = || async {
        let mut child = command(&["serve"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut base, mut workspace) = (String::new(), String::new());
        while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap()
        {
            if let Some(rest) = line.strip_prefix("loopstack-secrets is listening on ") {
                base = rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(rest) = line.strip_prefix("Workspace 'default': ") {
                workspace = rest.trim().to_owned();
            }
            if line.starts_with("Get an API token") {
                break;
            }
        }
        (child, base, workspace)
    };
    let (mut first, base, ws) = start().await;
    let out = command(&[
        "token",
        "create",
        "--workspace",
        &ws,
        "--name",
        "hooks",
        "--scope",
        "webhooks:manage",
        "--scope",
        "secrets:write",
    ])
    .output()
    .await
    .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned();
    let client = reqwest::Client::new();
    let hook = receiver(0).await;
    let created: Value = client
        .post(format!("{base}/api/v1/workspaces/{ws}/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": hook.url, "events": ["secret.upserted"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/workspaces/{ws}/webhooks/{id}");
    let off =
        client.put(format!("{base}{path}")).bearer_auth(&token).json(&json!({"enabled": false})).send().await.unwrap();
    assert_eq!(off.status(), 200);
    let upsert = client
        .put(format!("{base}/api/v1/workspaces/{ws}/secrets/upsert"))
        .bearer_auth(&token)
        .json(&json!({"key": "KILLED", "value": "v"}))
        .send()
        .await
        .unwrap();
    assert_eq!(upsert.status(), 200);
    let mut waiting = Vec::new();
    for _ in 0..100 {
        waiting = client
            .get(format!("{base}{path}/deliveries"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap();
        if !waiting.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(waiting.len(), 1, "the event's delivery is queued");
    assert_eq!(waiting[0]["status"], "pending");
    first.start_kill().unwrap(); // SIGKILL
    first.wait().await.unwrap();

    let (_second, base, _) = start().await;
    let on =
        client.put(format!("{base}{path}")).bearer_auth(&token).json(&json!({"enabled": true})).send().await.unwrap();
    assert_eq!(on.status(), 200);
    let got = hook.wait_for(1).await;
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["data"]["key"], "KILLED");
    assert!(verify(
        created["secret"].as_str().unwrap().as_bytes(),
        &got[0].signature,
        &got[0].body,
        chrono::Utc::now().timestamp()
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.received().len(), 1, "once");
}

/// Two instances over one PostgreSQL database: every event is delivered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_each_event_once() {
    let Some(engine) = postgres() else { return };
    let first = spawn_app_with(engine, &ALLOW_LOOPBACK).await;
    let second_dir = tempfile::tempdir().unwrap();
    let second = serve(second_dir, first.database_url.clone(), first.master_key.clone(), &ALLOW_LOOPBACK).await;
    let ws = first.workspace("shared").await;
    let token = first.token(ws, &[Scope::WebhooksManage, Scope::SecretsWrite]).await;
    let hook = receiver(0).await;
    register(&first, ws, &token, &hook.url, &["secret.upserted"]).await;
    for i in 0..20 {
        let app = if i % 2 == 0 { &first } else { &second };
        assert_eq!(app.upsert(ws, &token, &format!("KEY_{i}"), "v").await.status(), 200);
    }
    hook.wait_for(20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = hook.received();
    let mut ids: Vec<&str> = got.iter().map(|r| r.delivery.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (20, 20), "each event once");
}

both_engines!(
    a_delivery_is_signed_and_retried_until_it_succeeds,
    an_internal_address_is_refused_unless_allowed,
    an_endpoint_can_be_disabled_enabled_resent_and_removed,
    an_event_committed_before_a_crash_is_delivered_after_the_restart,
    a_delivery_waiting_when_the_server_is_killed_goes_out_after_the_restart,
);
