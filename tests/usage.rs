//! Using a secret without revealing it: egress policies over REST, `check_secret`, and the
//! `secrets:use` scope, which reveals nothing.

mod common;

use common::{error_code, json, spawn_app, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const VALUE: &str = "ghp_use-without-reveal-1234";

async fn setup(app: &TestApp) -> (Uuid, String, String) {
    let ws = app.workspace("main").await;
    let writer = app.writer_token(ws).await;
    let created = json(app.create(ws, &writer, "GITHUB_TOKEN", VALUE).await).await;
    (ws, writer, created["id"].as_str().unwrap().to_string())
}

async fn egress(app: &TestApp, ws: Uuid, token: &str, id: &str, hosts: Option<Value>) -> reqwest::Response {
    let path = format!("/api/v1/workspaces/{ws}/secrets/{id}/egress");
    match hosts {
        Some(body) => app.req(Method::PUT, &path, token).json(&body).send().await.unwrap(),
        None => app.req(Method::GET, &path, token).send().await.unwrap(),
    }
}

async fn tool(app: &TestApp, ws: Uuid, token: &str, name: &str, args: Value) -> reqwest::Response {
    app.tool(ws, token, name, args).await
}

async fn a_secrets_egress_policy_is_read_and_replaced_over_rest(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, writer, id) = setup(&app).await;
    let lister = app.token(ws, &[Scope::SecretsList]).await;
    let other = app.workspace("other").await;
    let outsider = app.writer_token(other).await;

    let empty = json(egress(&app, ws, &lister, &id, None).await).await;
    let set = egress(
        &app,
        ws,
        &writer,
        &id,
        Some(json!({"hosts": ["https://API.github.com/", "https://*.example.com:8443", "http://127.0.0.1:9000"]})),
    )
    .await;
    let set_status = set.status();
    let set = json(set).await;
    let read = json(egress(&app, ws, &lister, &id, None).await).await;
    let by_lister = egress(&app, ws, &lister, &id, Some(json!({"hosts": []}))).await;
    let bad = egress(&app, ws, &writer, &id, Some(json!({"hosts": ["api.github.com"]}))).await;
    let extra = egress(&app, ws, &writer, &id, Some(json!({"hosts": [], "keys": []}))).await;
    let foreign = egress(&app, ws, &outsider, &id, None).await;
    let missing = egress(&app, ws, &writer, &Uuid::new_v4().to_string(), None).await;

    assert_eq!(empty, json!({"key": "GITHUB_TOKEN", "hosts": []}), "a new secret may be sent nowhere");
    assert_eq!(set_status, 200);
    let expected = json!(["https://api.github.com", "https://*.example.com:8443", "http://127.0.0.1:9000"]);
    assert_eq!(set["hosts"], expected);
    assert_eq!(read["hosts"], expected);
    assert_eq!(error_code(by_lister, 403).await, "forbidden");
    assert_eq!(error_code(bad, 400).await, "bad_request");
    assert_eq!(error_code(extra, 400).await, "bad_request");
    assert_eq!(error_code(foreign, 404).await, "not_found", "another workspace's secret is a 404");
    assert_eq!(error_code(missing, 404).await, "not_found");
    let log = loopstack_secrets::server::store::audit_events(&app.state.db, ws, Some("egress"), 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].detail.as_deref(),
        Some("hosts: https://api.github.com, https://*.example.com:8443, http://127.0.0.1:9000")
    );
}

async fn check_secret_answers_true_and_false_is_audited_and_rate_limited(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, _, _) = setup(&app).await;
    let user = app.token(ws, &[Scope::SecretsUse]).await;
    let caller = app.token(ws, &[Scope::ToolsCall]).await;

    let right = tool(&app, ws, &user, "check_secret", json!({"key": "GITHUB_TOKEN", "value": VALUE})).await;
    let wrong = tool(&app, ws, &user, "check_secret", json!({"key": "GITHUB_TOKEN", "value": "ghp_nope"})).await;
    let unknown = tool(&app, ws, &user, "check_secret", json!({"key": "NOPE", "value": "x"})).await;
    let without_scope = tool(&app, ws, &caller, "check_secret", json!({"key": "GITHUB_TOKEN", "value": VALUE})).await;

    let right = right.text().await.unwrap();
    let wrong = wrong.text().await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(&right).unwrap()["data"], json!({"matches": true}));
    assert_eq!(serde_json::from_str::<Value>(&wrong).unwrap()["data"], json!({"matches": false}));
    assert!(!right.contains(VALUE) && !wrong.contains("ghp_nope"), "no value is echoed");
    assert_eq!(error_code(unknown, 404).await, "not_found");
    assert_eq!(error_code(without_scope, 403).await, "forbidden");
    let log =
        loopstack_secrets::server::store::audit_events(&app.state.db, ws, Some("secret.checked"), 10).await.unwrap();
    let details: Vec<_> = log.iter().filter_map(|e| e.detail.clone()).collect();
    assert_eq!(details, ["does not match", "matches"]);
    assert!(log.iter().all(|e| e.key.as_deref() == Some("GITHUB_TOKEN")));

    let mut last = 200;
    for _ in 0..20 {
        last = tool(&app, ws, &user, "check_secret", json!({"key": "GITHUB_TOKEN", "value": "guess"}))
            .await
            .status()
            .as_u16();
    }
    assert_eq!(last, 429, "at most 20 checks a minute");
}

/// A token with `secrets:use` alone reveals nothing: no list, no value, no run, no tool but
/// the ones that use a value without showing it.
async fn secrets_use_reveals_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, _, id) = setup(&app).await;
    let user = app.token(ws, &[Scope::SecretsUse]).await;
    let refused = [
        app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/secrets"), &user).send().await.unwrap(),
        egress(&app, ws, &user, &id, None).await,
        tool(&app, ws, &user, "get_secret_keys", json!({})).await,
        tool(&app, ws, &user, "request_secrets", json!({"variables": [{"key": "X"}]})).await,
        app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows"), &user).send().await.unwrap(),
        app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/events"), &user).send().await.unwrap(),
    ];
    for response in refused {
        let url = response.url().to_string();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 403, "{url}: {body}");
        assert!(!body.contains(VALUE));
    }
}

/// A stored value on its way back to an agent (here an agent wrote one into a request's
/// description and, base64-encoded, its reason) leaves as `***`, and the audit says so.
async fn a_value_on_its_way_out_is_masked_and_audited(engine: Engine) {
    use base64::Engine as _;
    let app = spawn_app(engine).await;
    let (ws, _, _) = setup(&app).await;
    let agent = app.token(ws, &[Scope::ToolsCall, Scope::WorkflowsRun]).await;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("token={VALUE}"));
    let asked = tool(
        &app,
        ws,
        &agent,
        "request_secrets",
        json!({"reason": format!("decode {encoded}"), "variables": [{"key": "NEW_KEY", "description": format!("like {VALUE}")}]}),
    )
    .await;
    let asked = json(asked).await;
    let run = asked["pending"]["workflowId"].as_str().unwrap().to_string();

    let shown = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows/{run}"), &agent).send().await.unwrap();
    let shown = shown.text().await.unwrap();
    let listed = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows"), &agent).send().await.unwrap();
    let listed = listed.text().await.unwrap();

    for (what, body) in [("run", &shown), ("list", &listed)] {
        assert!(!body.contains(VALUE), "{what}: {body}");
        assert!(!body.contains(&encoded[4..encoded.len() - 4]), "{what}: base64 too");
        assert!(body.contains("like ***"), "{what}: {body}");
    }
    let user = app.token(ws, &[Scope::SecretsUse]).await;
    let quoted = tool(
        &app,
        ws,
        &user,
        "http_request",
        json!({"method": VALUE, "url": "https://example.com/{{secrets.GITHUB_TOKEN}}"}),
    )
    .await;
    let quoted = quoted.text().await.unwrap();
    assert!(
        quoted.contains("bad_request") && quoted.contains("***") && !quoted.contains(VALUE),
        "an error quoting input is masked: {quoted}"
    );

    // Log lines: the guard of every workspace's values, as the server's log writer uses it.
    assert_eq!(common::logged(&app, &format!("upstream said {VALUE}\n")).await, "upstream said ***\n");

    let log =
        loopstack_secrets::server::store::audit_events(&app.state.db, ws, Some("leak.blocked"), 10).await.unwrap();
    assert!(!log.is_empty());
    assert!(log.iter().all(|e| e.key.as_deref() == Some("GITHUB_TOKEN")));
    assert!(log.iter().any(|e| e.detail.as_deref() == Some(&format!("masked in run {run}") as &str)));
    assert!(log.iter().all(|e| !e.detail.as_deref().unwrap_or_default().contains(VALUE)));
}

/// A loopback server that echoes what it gets, in several encodings, and records every
/// request it receives.
struct Echo {
    base: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

async fn echo_server() -> Echo {
    use axum::extract::{Query, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{any, get};
    use base64::Engine as _;
    type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;
    fn auth(headers: &HeaderMap) -> String {
        headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
    let received: Seen = std::sync::Arc::default();
    let app = axum::Router::new()
        .route(
            "/echo",
            any(|State(seen): State<Seen>, headers: HeaderMap, body: String| async move {
                seen.lock().unwrap().push(format!("echo {} {body}", auth(&headers)));
                format!("you sent {} and {body}", auth(&headers))
            }),
        )
        .route(
            "/encoded",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                let value = auth(&headers);
                seen.lock().unwrap().push(format!("encoded {value}"));
                let b64 = base64::engine::general_purpose::STANDARD.encode(&value);
                let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("x{value}"));
                let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
                let percent: String = value
                    .bytes()
                    .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
                    .collect();
                format!("b64={b64}\nb64url={b64url}\nhex={hex}\npercent={percent}\n")
            }),
        )
        .route(
            "/chunks",
            get(|State(seen): State<Seen>, headers: HeaderMap| async move {
                let value = auth(&headers);
                seen.lock().unwrap().push(format!("chunks {value}"));
                let text = format!("start {value} end");
                let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
                    text.as_bytes().chunks(3).map(|c| Ok(c.to_vec())).collect();
                axum::body::Body::from_stream(futures::stream::iter(pieces))
            }),
        )
        .route(
            "/redirect",
            get(|State(seen): State<Seen>, Query(to): Query<std::collections::HashMap<String, String>>| async move {
                seen.lock().unwrap().push("redirect".to_string());
                Redirect::temporary(&to["to"]).into_response()
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Echo { base, received }
}

async fn http_request_sends_the_value_and_masks_it_in_every_form(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, writer, id) = setup(&app).await;
    let echo = echo_server().await;
    assert_eq!(egress(&app, ws, &writer, &id, Some(json!({"hosts": [echo.base]}))).await.status(), 200);
    let agent = app.token(ws, &[Scope::SecretsUse]).await;
    let call = |path: &str, body: Option<&str>| {
        let mut args = json!({"method": "POST", "url": format!("{}{path}", echo.base),
            "headers": {"Authorization": "{{secrets.GITHUB_TOKEN}}"}});
        if let Some(body) = body {
            args["body"] = json!(body);
        }
        if path != "/echo" {
            args["method"] = json!("GET");
        }
        tool(&app, ws, &agent, "http_request", args)
    };

    let echoed = call("/echo", Some("token: {{secrets.GITHUB_TOKEN}}, literal {{{{secrets.X}}")).await;
    let run = Uuid::new_v4();
    let for_run = tool(
        &app,
        ws,
        &agent,
        "http_request",
        json!({"method": "GET", "url": format!("{}/chunks", echo.base), "workflowId": run,
            "headers": {"Authorization": "{{secrets.GITHUB_TOKEN}}"}}),
    )
    .await;
    assert_eq!(for_run.status(), 200);
    let encoded = call("/encoded", None).await;
    let chunked = call("/chunks", None).await;

    let received = echo.received.lock().unwrap().clone();
    assert_eq!(
        received[0],
        format!("echo {VALUE} token: {VALUE}, literal {{{{secrets.X}}}}"),
        "the server got the real value"
    );
    for response in [echoed, encoded, chunked] {
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(!text.contains(VALUE), "{text}");
        let data: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(data["data"]["status"], 200);
        let body = data["data"]["body"].as_str().unwrap();
        assert!(body.contains("***"), "{body}");
        for line in body.lines().filter(|l| l.contains('=')) {
            assert!(line.ends_with("***") || line.contains("***"), "every encoding is masked: {line}");
        }
    }
    let log = loopstack_secrets::server::store::audit_events(&app.state.db, ws, Some("secret.used"), 10).await.unwrap();
    assert_eq!(log.len(), 4);
    assert!(log
        .iter()
        .all(|e| e.key.as_deref() == Some("GITHUB_TOKEN") && e.detail.as_deref().unwrap().contains("-> 200")));
    assert!(log.iter().any(|e| e.detail.as_deref().unwrap().ends_with(&format!("-> 200 for run {run}"))));
    assert!(log.iter().all(|e| e.actor.starts_with("token:")), "the token is the actor");
    assert!(log[0].detail.as_deref().unwrap().contains(&echo.base));
}

async fn a_secret_goes_nowhere_its_policy_does_not_name(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, writer, id) = setup(&app).await;
    let echo = echo_server().await;
    let agent = app.token(ws, &[Scope::SecretsUse]).await;
    let request = |url: String| {
        tool(
            &app,
            ws,
            &agent,
            "http_request",
            json!({"method": "GET", "url": url, "headers": {"Authorization": "{{secrets.GITHUB_TOKEN}}"}}),
        )
    };
    let port = echo.base.rsplit(':').next().unwrap().to_string();

    let no_policy = request(format!("{}/echo", echo.base)).await;
    assert_eq!(egress(&app, ws, &writer, &id, Some(json!({"hosts": [echo.base]}))).await.status(), 200);
    let other_host = request(format!("http://localhost:{port}/echo")).await;
    let redirect_out = request(format!("{}/redirect?to=http://localhost:{port}/echo", echo.base)).await;
    let no_secret =
        tool(&app, ws, &agent, "http_request", json!({"method": "GET", "url": format!("{}/echo", echo.base)})).await;
    let ftp = request(format!("ftp://127.0.0.1:{port}/echo")).await;
    let caller = app.token(ws, &[Scope::ToolsCall]).await;
    let without_scope =
        tool(&app, ws, &caller, "http_request", json!({"method": "GET", "url": format!("{}/echo", echo.base)})).await;

    let refused = error_code(no_policy, 403).await;
    assert_eq!(refused, "egress_denied", "a secret with no hosts goes nowhere");
    let other_host = other_host.text().await.unwrap();
    assert!(
        other_host.contains("egress_denied") && other_host.contains("GITHUB_TOKEN") && other_host.contains("localhost"),
        "{other_host}"
    );
    assert_eq!(error_code(redirect_out, 403).await, "egress_denied", "a redirect to another host is not followed");
    assert_eq!(error_code(no_secret, 400).await, "bad_request");
    assert_eq!(error_code(ftp, 400).await, "bad_request", "only http and https");
    assert_eq!(error_code(without_scope, 403).await, "forbidden");
    assert_eq!(*echo.received.lock().unwrap(), ["redirect"], "nothing with the secret reached a host it may not go to");
    let log =
        loopstack_secrets::server::store::audit_events(&app.state.db, ws, Some("egress_denied"), 10).await.unwrap();
    assert_eq!(log.len(), 3, "each refusal is audited");
}

/// The binary, as the operator runs it on the server's host (same database and master key).
fn cli(app: &TestApp, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_loopstack-secrets"));
    command
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("LOOPSTACK_SECRETS_DATA_DIR", app.dir.path())
        .env("LOOPSTACK_SECRETS_MASTER_KEY", &app.master_key)
        .env_remove("LOOPSTACK_SECRETS_SERVER")
        .env_remove("LOOPSTACK_SECRETS_TOKEN");
    command
}

async fn run_masks_the_commands_output_and_takes_only_the_chosen_keys(engine: Engine) {
    use base64::Engine as _;
    let app = spawn_app(engine).await;
    let (ws, writer, _) = setup(&app).await;
    assert_eq!(app.create(ws, &writer, "OTHER_KEY", "other-value-5678").await.status(), 201);
    let ws = ws.to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(VALUE);
    let script = format!(
        "echo plain $GITHUB_TOKEN; echo b64 {b64}; echo err $GITHUB_TOKEN >&2; echo other ${{OTHER_KEY:-unset}}; exit 7"
    );

    let masked = cli(&app, &["run", "--workspace", &ws, "--mask", "--only", "GITHUB_TOKEN", "--", "sh", "-c", &script])
        .output()
        .await
        .unwrap();
    let plain = cli(&app, &["run", "--workspace", &ws, "--", "sh", "-c", "echo $GITHUB_TOKEN $OTHER_KEY"])
        .output()
        .await
        .unwrap();
    let unknown = cli(&app, &["run", "--workspace", &ws, "--only", "NOPE", "--", "true"]).output().await.unwrap();

    let stdout = String::from_utf8(masked.stdout).unwrap();
    let stderr = String::from_utf8(masked.stderr).unwrap();
    assert_eq!(masked.status.code(), Some(7), "the exit code passes through");
    assert_eq!(stdout, "plain ***\nb64 ***\nother unset\n", "masked, and only the chosen key given");
    assert!(stderr.contains("err ***") && !stderr.contains(VALUE), "{stderr}");
    assert_eq!(
        String::from_utf8(plain.stdout).unwrap(),
        format!("{VALUE} other-value-5678\n"),
        "without --mask, all keys"
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no secret named NOPE"));
}

async fn remote_run_and_export_need_secrets_read(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, _, _) = setup(&app).await;
    let reader = app.token(ws, &[Scope::SecretsRead]).await;
    let lister = app.token(ws, &[Scope::SecretsList, Scope::SecretsUse]).await;
    let ws = ws.to_string();
    let empty = tempfile::tempdir().unwrap();
    let remote = |token: &str, args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_loopstack-secrets"));
        command
            .args(args)
            .env("LOOPSTACK_SECRETS_SERVER", &app.base)
            .env("LOOPSTACK_SECRETS_TOKEN", token)
            .env("LOOPSTACK_SECRETS_DATA_DIR", empty.path())
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env_remove("LOOPSTACK_SECRETS_MASTER_KEY");
        command
    };

    let ran =
        remote(&reader, &["run", "--workspace", &ws, "--", "sh", "-c", "echo $GITHUB_TOKEN"]).output().await.unwrap();
    let exported = remote(&reader, &["export", "--workspace", &ws]).output().await.unwrap();
    let refused = remote(&lister, &["run", "--workspace", &ws, "--", "true"]).output().await.unwrap();
    let by_flag = tokio::process::Command::new(env!("CARGO_BIN_EXE_loopstack-secrets"))
        .args(["export", "--workspace", &ws, "--server", &app.base, "--token", &reader, "--only", "GITHUB_TOKEN"])
        .env("LOOPSTACK_SECRETS_DATA_DIR", empty.path())
        .env_remove("LOOPSTACK_SECRETS_MASTER_KEY")
        .env_remove("DATABASE_URL")
        .output()
        .await
        .unwrap();

    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert_eq!(String::from_utf8(ran.stdout).unwrap(), format!("{VALUE}\n"), "no database and no master key needed");
    assert_eq!(String::from_utf8(exported.stdout).unwrap(), format!("GITHUB_TOKEN='{VALUE}'\n"));
    assert_eq!(String::from_utf8(by_flag.stdout).unwrap(), format!("GITHUB_TOKEN='{VALUE}'\n"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("403"), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(std::fs::read_dir(empty.path()).unwrap().next().is_none(), "nothing was written locally");
    let reads =
        loopstack_secrets::server::store::audit_events(&app.state.db, ws.parse().unwrap(), Some("secret.read"), 10)
            .await
            .unwrap();
    assert_eq!(reads.len(), 3, "each remote read is audited with the token");
    assert!(reads.iter().all(|e| e.actor.starts_with("token:") && e.key.as_deref() == Some("GITHUB_TOKEN")));
}

/// The values route answers a `secrets:read` token only: not a session, not any other scope.
async fn the_values_route_is_for_secrets_read_tokens_only(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, _, _) = setup(&app).await;
    let reader = app.token(ws, &[Scope::SecretsRead]).await;
    let path = format!("/api/v1/workspaces/{ws}/secrets/values?keys=GITHUB_TOKEN,MISSING");
    let read = app.req(Method::GET, &path, &reader).send().await.unwrap();
    let cache = read.headers()["cache-control"].to_str().unwrap().to_string();
    assert_eq!(json(read).await, json!({"GITHUB_TOKEN": VALUE}));
    assert_eq!(cache, "no-store");
    let all_but_read = app
        .token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall, Scope::WorkflowsRun, Scope::SecretsUse])
        .await;
    assert_eq!(error_code(app.req(Method::GET, &path, &all_but_read).send().await.unwrap(), 403).await, "forbidden");
    let owner = app.user("olivia", "correct-horse-battery").await;
    app.add_member(ws, owner, "owner").await;
    let cookie = TestApp::session_cookie(&app.sign_in("olivia", "correct-horse-battery").await).unwrap();
    let by_session = app.client.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(error_code(by_session, 403).await, "forbidden", "no browser session reads a value");
    let bad =
        app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/secrets/values?keys=1X"), &reader).send().await.unwrap();
    assert_eq!(error_code(bad, 400).await, "bad_request");
}

/// The Studio shows where each secret may go and lets an editor change it (one origin a
/// line); a viewer sees it and cannot.
async fn the_studio_shows_and_edits_a_secrets_hosts(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, _, id) = setup(&app).await;
    let editor = app.user("edith", "correct-horse-battery").await;
    let viewer = app.user("victor", "correct-horse-battery").await;
    app.add_member(ws, editor, "editor").await;
    app.add_member(ws, viewer, "viewer").await;
    let edith = TestApp::session_cookie(&app.sign_in("edith", "correct-horse-battery").await).unwrap();
    let victor = TestApp::session_cookie(&app.sign_in("victor", "correct-horse-battery").await).unwrap();
    let page = |cookie: String| {
        let app = &app;
        async move {
            app.client
                .get(format!("{}/workspaces/{ws}", app.base))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };

    let before = page(edith.clone()).await;
    let form = |hosts: &str| vec![("workspace_id", ws.to_string()), ("id", id.clone()), ("hosts", hosts.to_string())];
    let saved =
        app.studio(&edith, "set_egress", &form("https://api.github.com\n\n  https://*.example.com:8443  \n")).await;
    let bad = app.studio(&edith, "set_egress", &form("not a host")).await;
    let by_viewer = app.studio(&victor, "set_egress", &form("https://evil.example")).await;
    let after = page(victor.clone()).await;

    assert!(before.contains("nowhere"), "a new secret may go nowhere");
    assert_eq!(saved.status(), 200);
    assert_eq!(bad.status(), 400);
    assert_eq!(by_viewer.status(), 403);
    assert!(after.contains("https://api.github.com, https://*.example.com:8443"), "the viewer sees the hosts");
    assert!(!after.contains("Save hosts"), "and cannot change them");
    assert!(page(edith).await.contains("Save hosts"));
    let shown = json(egress(&app, ws, &app.writer_token(ws).await, &id, None).await).await;
    assert_eq!(shown["hosts"], json!(["https://api.github.com", "https://*.example.com:8443"]));
}

/// An audit detail built from input (here a token named like a stored value) is shown masked.
async fn audit_details_pass_the_leak_guard(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, _, _) = setup(&app).await;
    loopstack_secrets::server::service::access::create_token(
        &app.state.db,
        ws,
        VALUE,
        &[Scope::SecretsList],
        None,
        &common::test_actor(),
    )
    .await
    .unwrap();
    let owner = app.user("olga", "correct-horse-battery").await;
    app.add_member(ws, owner, "owner").await;
    let cookie = TestApp::session_cookie(&app.sign_in("olga", "correct-horse-battery").await).unwrap();

    let log = app.studio(&cookie, "audit_log", &[("workspace_id", ws.to_string())]).await.text().await.unwrap();

    assert!(log.contains("token.created"), "{log}");
    assert!(!log.contains(VALUE) && log.contains("'***'"), "{log}");
}

both_engines!(
    a_secrets_egress_policy_is_read_and_replaced_over_rest,
    check_secret_answers_true_and_false_is_audited_and_rate_limited,
    secrets_use_reveals_nothing,
    a_value_on_its_way_out_is_masked_and_audited,
    http_request_sends_the_value_and_masks_it_in_every_form,
    a_secret_goes_nowhere_its_policy_does_not_name,
    run_masks_the_commands_output_and_takes_only_the_chosen_keys,
    remote_run_and_export_need_secrets_read,
    the_values_route_is_for_secrets_read_tokens_only,
    the_studio_shows_and_edits_a_secrets_hosts,
    audit_details_pass_the_leak_guard,
);
