//! The claims of SECURITY.md that a test can hold: another workspace is invisible through
//! every route and server function, sessions cannot be fixed, pages escape what they show and
//! carry the security headers. These render pages and call server functions, so they take turns
//! (see `common::SERIAL`).

mod common;

use common::{json, spawn_app, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

async fn member(app: &TestApp, name: &str, ws: Uuid, role: &str) -> String {
    let user = app.user(name, PASSWORD).await;
    app.add_member(ws, user, role).await;
    common::TestApp::session_cookie(&app.sign_in(name, PASSWORD).await).expect("a session cookie")
}

fn csrf_of(cookie: &str) -> String {
    loopstack_secrets::server::web::csrf::csrf_token(cookie.strip_prefix("lss_session=").unwrap())
}

/// What the victim's workspace holds, to attack and to check afterwards.
struct Victim {
    ws: Uuid,
    secret_id: String,
    run_id: String,
    token_id: String,
    owner_id: Uuid,
}

async fn victim(app: &TestApp) -> Victim {
    let ws = app.workspace("victim").await;
    let owner_id = app.user("vic", PASSWORD).await;
    app.add_member(ws, owner_id, "owner").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::WorkflowsRun, Scope::ToolsCall]).await;
    let secret = json(app.create(ws, &token, "VICTIM_KEY", "victim-value").await).await;
    let run = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), &token)
        .json(&json!({"workflow": "secrets_request", "args": {"variables": [{"key": "PENDING_KEY"}]}}))
        .send()
        .await
        .unwrap();
    let run = json(run).await;
    let tokens = loopstack_secrets::server::store::list_tokens(&app.state.db, Some(ws)).await.unwrap();
    Victim {
        ws,
        secret_id: secret["id"].as_str().unwrap().to_string(),
        run_id: run["id"].as_str().unwrap().to_string(),
        token_id: tokens[0].id.to_string(),
        owner_id,
    }
}

/// Every REST route, aimed at workspace `ws` with the ids of its secret and run.
fn rest_routes(ws: &str, secret: &str, run: &str) -> Vec<(Method, String, Option<Value>)> {
    let w = format!("/api/v1/workspaces/{ws}");
    let value = json!({"key": "STOLEN", "value": "x"});
    let request = json!({"args": {"variables": [{"key": "STOLEN"}]}});
    vec![
        (Method::GET, format!("{w}/secrets"), None),
        (Method::POST, format!("{w}/secrets"), Some(value.clone())),
        (Method::PUT, format!("{w}/secrets/upsert"), Some(value)),
        (Method::PUT, format!("{w}/secrets/{secret}"), Some(json!({"value": "x"}))),
        (Method::DELETE, format!("{w}/secrets/{secret}"), None),
        (Method::POST, format!("{w}/tools/get_secret_keys"), Some(json!({}))),
        (Method::POST, format!("{w}/tools/request_secrets"), Some(request.clone())),
        (Method::POST, format!("{w}/tools/request_secrets_task"), Some(request)),
        (
            Method::POST,
            format!("{w}/workflows"),
            Some(json!({"workflow": "secrets_request", "args": {"variables": [{"key": "STOLEN"}]}})),
        ),
        (Method::GET, format!("{w}/workflows"), None),
        (Method::GET, format!("{w}/workflows/{run}"), None),
        (
            Method::POST,
            format!("{w}/workflows/{run}/transitions/secretsSubmitted"),
            Some(json!({"variables": [{"key": "PENDING_KEY", "value": "x"}]})),
        ),
        (Method::POST, format!("{w}/workflows/{run}/cancel"), Some(json!({}))),
        (Method::GET, format!("{w}/workflows/{run}/wait?timeout=1"), None),
        (Method::GET, format!("{w}/events"), None),
    ]
}

async fn answer(app: &TestApp, method: Method, path: &str, body: &Option<Value>, token: &str) -> (u16, Value) {
    let mut request = app.req(method, path, token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn another_workspace_is_not_found_through_every_route(engine: Engine) {
    let app = spawn_app(engine).await;
    let victim = victim(&app).await;
    let attacker_ws = app.workspace("attacker").await;
    let all = [Scope::SecretsList, Scope::SecretsWrite, Scope::SecretsRead, Scope::ToolsCall, Scope::WorkflowsRun];
    let attacker = app.token(attacker_ws, &all).await;
    let nowhere = Uuid::new_v4().to_string();

    for ((method, path, body), (_, unknown_path, _)) in
        rest_routes(&victim.ws.to_string(), &victim.secret_id, &victim.run_id).into_iter().zip(rest_routes(
            &nowhere,
            &victim.secret_id,
            &victim.run_id,
        ))
    {
        let foreign = answer(&app, method.clone(), &path, &body, &attacker).await;
        let unknown = answer(&app, method.clone(), &unknown_path, &body, &attacker).await;
        assert_eq!(foreign.0, 404, "{method} {path}: {}", foreign.1);
        assert_eq!(foreign.1["error"]["code"], "not_found", "{method} {path}");
        assert_eq!(foreign, unknown, "{method} {path}: a foreign workspace answers like one that does not exist");
    }
    // The victim's ids through the attacker's own workspace.
    for (method, path, body) in rest_routes(&attacker_ws.to_string(), &victim.secret_id, &victim.run_id) {
        if path.contains(&victim.secret_id) || path.contains(&victim.run_id) {
            let (status, body) = answer(&app, method.clone(), &path, &body, &attacker).await;
            assert_eq!(status, 404, "{method} {path}: {body}");
        }
    }

    let owner = app.token(victim.ws, &[Scope::SecretsList, Scope::WorkflowsRun]).await;
    let keys = json(app.list(victim.ws, &owner).await).await;
    assert_eq!(keys.as_array().unwrap().len(), 1, "nothing added or removed: {keys}");
    assert_eq!(app.value_of(victim.ws, "VICTIM_KEY").await.as_deref(), Some("victim-value"));
    let run = json(
        app.req(Method::GET, &format!("/api/v1/workspaces/{}/workflows/{}", victim.ws, victim.run_id), &owner)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(run["status"], "waiting");
}

async fn another_workspace_is_not_found_through_every_server_function(engine: Engine) {
    let app = spawn_app(engine).await;
    let victim = victim(&app).await;
    let attacker_ws = app.workspace("attacker").await;
    let mallory = member(&app, "mallory", attacker_ws, "owner").await;
    let ws = victim.ws.to_string();
    let calls: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("workspace_secrets", vec![("workspace_id", ws.clone())]),
        ("create_secret", vec![("workspace_id", ws.clone()), ("key", "STOLEN".into()), ("value", "x".into())]),
        ("update_secret", vec![("workspace_id", ws.clone()), ("id", victim.secret_id.clone()), ("value", "x".into())]),
        ("delete_secret", vec![("workspace_id", ws.clone()), ("id", victim.secret_id.clone())]),
        ("run", vec![("workspace_id", ws.clone()), ("run_id", victim.run_id.clone())]),
        (
            "submit_request",
            vec![("workspace_id", ws.clone()), ("run_id", victim.run_id.clone()), ("values[PENDING_KEY]", "x".into())],
        ),
        ("decline_request", vec![("workspace_id", ws.clone()), ("run_id", victim.run_id.clone())]),
        ("audit_log", vec![("workspace_id", ws.clone())]),
        ("tokens", vec![("workspace_id", ws.clone())]),
        ("create_token", vec![("workspace_id", ws.clone()), ("name", "stolen".into()), ("scope_read", "on".into())]),
        ("revoke_token", vec![("workspace_id", ws.clone()), ("token_id", victim.token_id.clone())]),
        ("members", vec![("workspace_id", ws.clone())]),
        ("add_member", vec![("workspace_id", ws.clone()), ("username", "mallory".into()), ("role", "owner".into())]),
        (
            "change_member",
            vec![("workspace_id", ws.clone()), ("user_id", victim.owner_id.to_string()), ("remove", "on".into())],
        ),
    ];

    for (function, mut form) in calls {
        form.push(("csrf", csrf_of(&mallory)));
        let response = app
            .client
            .post(format!("{}/studio/{function}", app.base))
            .header("cookie", &mallory)
            .header("origin", &app.base)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(!body.contains("VICTIM_KEY") && !body.contains("victim-value"), "{function} leaked: {body}");
        assert!(status >= 400, "{function} answered {status}: {body}");
        assert!(body.contains("not_found"), "{function}: {status} {body}");
    }
    let listed = app
        .client
        .post(format!("{}/studio/list_workspaces", app.base))
        .header("cookie", &mallory)
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    let listed = listed.text().await.unwrap();
    assert!(listed.contains("attacker") && !listed.contains("victim"), "{listed}");
    for path in [
        format!("/workspaces/{ws}"),
        format!("/workspaces/{ws}/runs/{}", victim.run_id),
        format!("/workspaces/{ws}/audit"),
        format!("/workspaces/{ws}/tokens"),
        format!("/workspaces/{ws}/members"),
    ] {
        let page = app.client.get(format!("{}{path}", app.base)).header("cookie", &mallory).send().await.unwrap();
        let status = page.status().as_u16();
        let html = page.text().await.unwrap();
        assert_eq!(status, 404, "{path}");
        assert!(!html.contains("VICTIM_KEY") && !html.contains("PENDING_KEY"), "{path} leaked");
    }

    assert_eq!(app.value_of(victim.ws, "VICTIM_KEY").await.as_deref(), Some("victim-value"));
    assert_eq!(app.value_of(victim.ws, "STOLEN").await, None);
    assert_eq!(app.value_of(victim.ws, "PENDING_KEY").await, None);
    let members = loopstack_secrets::server::store::members(&app.state.db, victim.ws).await.unwrap();
    assert_eq!(members.len(), 1, "the owner stays and nobody joined");
    assert_eq!(loopstack_secrets::server::store::list_tokens(&app.state.db, Some(victim.ws)).await.unwrap().len(), 1);
}

async fn a_session_id_planted_before_sign_in_is_never_used(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let user = app.user("sam", PASSWORD).await;
    app.add_member(ws, user, "owner").await;
    let planted = format!("lss_session={}_{}", Uuid::new_v4(), "A".repeat(43));

    let signed_in = app
        .client
        .post(format!("{}/studio/sign_in", app.base))
        .header("origin", &app.base)
        .header("cookie", &planted)
        .form(&[("username", "sam"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let issued = TestApp::session_cookie(&signed_in).expect("a fresh session");
    let with_planted = app
        .client
        .get(format!("{}/api/v1/workspaces/{ws}/secrets", app.base))
        .header("cookie", &planted)
        .send()
        .await
        .unwrap();
    let with_issued = app
        .client
        .get(format!("{}/api/v1/workspaces/{ws}/secrets", app.base))
        .header("cookie", &issued)
        .send()
        .await
        .unwrap();

    assert_ne!(issued, planted);
    assert_eq!(with_planted.status(), 401);
    assert_eq!(with_issued.status(), 200);
}

async fn pages_escape_what_they_show(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("<img src=x onerror=alert(1)>").await;
    let cookie = member(&app, "xena", ws, "owner").await;
    let token = app.token(ws, &[Scope::ToolsCall, Scope::WorkflowsRun]).await;
    let payload = "<script>alert('x')</script>";
    let refused = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/tools/request_secrets"), &token)
        .json(&json!({"args": {"variables": [{"key": payload}]}}))
        .send()
        .await
        .unwrap();

    let filtered = app
        .client
        .get(format!("{}/workspaces/{ws}?q={}", app.base, "%3Cscript%3Ealert('x')%3C%2Fscript%3E"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let filtered = filtered.text().await.unwrap();
    let audit = app
        .client
        .get(format!("{}/workspaces/{ws}/audit?q=%3Cscript%3Ealert('x')%3C%2Fscript%3E", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let audit = audit.text().await.unwrap();
    let list = app
        .client
        .get(format!("{}/workspaces", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(refused.status(), 400, "a key is never markup");
    for (page, html) in [("secrets", &filtered), ("audit", &audit), ("workspaces", &list)] {
        assert!(!html.contains(payload), "{page} page renders the payload raw");
        assert!(!html.contains("<img src=x"), "{page} page renders the workspace name raw");
    }
    assert!(list.contains("&lt;img src=x onerror=alert(1)&gt;"), "the name is shown, escaped");
}

async fn every_response_carries_the_security_headers(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;

    let page = app.client.get(format!("{}/sign-in", app.base)).send().await.unwrap();
    let page_headers = page.headers().clone();
    let html = page.text().await.unwrap();
    let api = app.list(ws, &token).await;
    let missing = app.client.get(format!("{}/api/v1/nothing", app.base)).send().await.unwrap();

    let csp = page_headers["content-security-policy"].to_str().unwrap();
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a nonce in the policy");
    assert!(nonce.len() >= 16, "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains(" 'unsafe-eval'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let scripts = html.matches("<script").count();
    assert!(
        scripts > 0 && html.matches(&format!("nonce=\"{nonce}\"")).count() >= scripts,
        "every inline script carries the nonce"
    );
    for response in [&page_headers, api.headers(), missing.headers()] {
        assert_eq!(response["x-content-type-options"], "nosniff");
        assert_eq!(response["referrer-policy"], "same-origin");
        assert_eq!(response["x-frame-options"], "DENY");
        assert_eq!(response["cache-control"], "no-store");
        assert!(response["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    }
    assert!(api.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    // A second page gets a fresh nonce.
    let again = app.client.get(format!("{}/sign-in", app.base)).send().await.unwrap();
    assert!(!again.headers()["content-security-policy"].to_str().unwrap().contains(nonce));
}

both_engines!(serial:
    another_workspace_is_not_found_through_every_route,
    another_workspace_is_not_found_through_every_server_function,
    a_session_id_planted_before_sign_in_is_never_used,
    pages_escape_what_they_show,
    every_response_carries_the_security_headers,
);
