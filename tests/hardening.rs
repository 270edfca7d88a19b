//! The second round of hardening, each claim held by a test: reserved keys refused on every
//! write path, server functions answering with the REST status, every body capped before
//! parsing, no cleartext HTTP/2, no compression of pages or API answers, the CSP's directives,
//! literal audit search, any page number, renamed rows that do not open, private files.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{error_code, json, spawn_app, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

async fn member(app: &TestApp, name: &str, ws: Uuid, role: &str) -> String {
    let user = app.user(name, PASSWORD).await;
    app.add_member(ws, user, role).await;
    TestApp::session_cookie(&app.sign_in(name, PASSWORD).await).expect("a session cookie")
}

async fn start_request(app: &TestApp, ws: Uuid, token: &str, key: &str) -> Response {
    app.req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), token)
        .json(&json!({"workflow": "secrets_request", "args": {"variables": [{"key": key}]}}))
        .send()
        .await
        .unwrap()
}

async fn reserved_keys_are_refused_on_every_write_path(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let all = [Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall, Scope::WorkflowsRun];
    let token = app.token(ws, &all).await;
    let editor = member(&app, "eddie", ws, "editor").await;
    let run = json(start_request(&app, ws, &token, "ORDINARY").await).await["id"].as_str().unwrap().to_string();
    let secret = json(app.create(ws, &token, "ORDINARY_TOO", "v").await).await["id"].as_str().unwrap().to_string();

    let w = format!("/api/v1/workspaces/{ws}");
    let rest: Vec<(Method, String, Value)> = vec![
        (Method::POST, format!("{w}/secrets"), json!({"key": "BASH_ENV", "value": "/tmp/x.sh"})),
        (Method::PUT, format!("{w}/secrets/upsert"), json!({"key": "LD_PRELOAD", "value": "/tmp/x.so"})),
        (Method::POST, format!("{w}/tools/request_secrets"), json!({"args": {"variables": [{"key": "PATH"}]}})),
        (
            Method::POST,
            format!("{w}/tools/request_secrets_task"),
            json!({"args": {"variables": [{"key": "NODE_OPTIONS"}]}}),
        ),
        (
            Method::POST,
            format!("{w}/workflows"),
            json!({"workflow": "secrets_request", "args": {"variables": [{"key": "PYTHONSTARTUP"}]}}),
        ),
        (
            Method::POST,
            format!("{w}/workflows/{run}/transitions/secretsSubmitted"),
            json!({"variables": [{"key": "GIT_SSH_COMMAND", "value": "x"}]}),
        ),
    ];
    for (method, path, body) in rest {
        let response = app.req(method.clone(), &path, &token).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{method} {path}");
        let error = json(response).await;
        assert_eq!(error["error"]["code"], "reserved_key", "{method} {path}: {error}");
        let named = ["BASH_ENV", "LD_PRELOAD", "PATH", "NODE_OPTIONS", "PYTHONSTARTUP", "GIT_SSH_COMMAND"];
        assert!(
            named.iter().any(|k| error["error"]["message"].as_str().unwrap().contains(k)),
            "the message names the key: {error}"
        );
    }
    let studio_create = app
        .studio(
            &editor,
            "create_secret",
            &[("workspace_id", ws.to_string()), ("key", "IFS".into()), ("value", "x".into())],
        )
        .await;
    let studio_submit = app
        .studio(
            &editor,
            "submit_request",
            &[("workspace_id", ws.to_string()), ("run_id", run.clone()), ("values[HOME]", "/tmp".into())],
        )
        .await;
    assert_eq!(studio_create.status(), 400);
    assert_eq!(json(studio_create).await["code"], "reserved_key");
    assert_eq!(studio_submit.status(), 400);
    assert_eq!(json(studio_submit).await["code"], "reserved_key");

    let keys: Vec<String> = json(app.list(ws, &token).await)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["ORDINARY_TOO"], "nothing reserved was stored");
    let ordinary = app.upsert(ws, &token, "SSH_PRIVATE_KEY", "k").await;
    assert_eq!(ordinary.status(), 200, "ordinary names that share a prefix stay usable");
    assert_eq!(app.update(ws, &token, &secret, json!({"value": "w"})).await.status(), 200);
    let waiting = json(app.req(Method::GET, &format!("{w}/workflows/{run}"), &token).send().await.unwrap()).await;
    assert_eq!(waiting["status"], "waiting", "the refused submissions left the request open");
}

/// Every server function that changes something, called by a viewer, aimed at `ws`.
fn viewer_writes(
    ws: &str,
    secret: &str,
    run: &str,
    token: &str,
    owner: &str,
) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let w = || ("workspace_id", ws.to_string());
    vec![
        ("create_secret", vec![w(), ("key", "BY_VIEWER".into()), ("value", "x".into())]),
        ("update_secret", vec![w(), ("id", secret.into()), ("value", "x".into())]),
        ("delete_secret", vec![w(), ("id", secret.into())]),
        ("submit_request", vec![w(), ("run_id", run.into()), ("values[P]", "x".into())]),
        ("decline_request", vec![w(), ("run_id", run.into())]),
        ("tokens", vec![w()]),
        ("create_token", vec![w(), ("name", "n".into()), ("scope_read", "on".into())]),
        ("revoke_token", vec![w(), ("token_id", token.into())]),
        ("members", vec![w()]),
        ("add_member", vec![w(), ("username", "vera".into()), ("role", "owner".into())]),
        ("change_member", vec![w(), ("user_id", owner.into()), ("remove", "on".into())]),
    ]
}

async fn every_server_function_refuses_a_viewer_with_403_where_rest_would(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let owner = app.user("olive", PASSWORD).await;
    app.add_member(ws, owner, "owner").await;
    let viewer = member(&app, "vera", ws, "viewer").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::WorkflowsRun]).await;
    let secret = json(app.create(ws, &token, "K", "v").await).await["id"].as_str().unwrap().to_string();
    let run = json(start_request(&app, ws, &token, "P").await).await["id"].as_str().unwrap().to_string();
    let token_id =
        loopstack_secrets::server::store::list_tokens(&app.state.db, Some(ws)).await.unwrap()[0].id.to_string();

    for (function, form) in viewer_writes(&ws.to_string(), &secret, &run, &token_id, &owner.to_string()) {
        let response = app.studio(&viewer, function, &form).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 403, "{function}: {body}");
        assert!(body.contains("forbidden"), "{function}: {body}");
    }
    // The REST answer the server functions mirror.
    let rest = app
        .client
        .post(format!("{}/api/v1/workspaces/{ws}/secrets", app.base))
        .header("cookie", &viewer)
        .header("origin", &app.base)
        .json(&json!({"key": "BY_VIEWER", "value": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(rest, 403).await, "forbidden");

    assert_eq!(app.value_of(ws, "K").await.as_deref(), Some("v"));
    assert_eq!(app.value_of(ws, "BY_VIEWER").await, None);
    assert_eq!(app.value_of(ws, "P").await, None);
    let members = loopstack_secrets::server::store::members(&app.state.db, ws).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(loopstack_secrets::server::store::list_tokens(&app.state.db, Some(ws)).await.unwrap().len(), 1);
}

async fn server_function_errors_carry_the_status_of_the_rest_error(engine: Engine) {
    let app = spawn_app_with_small_values(engine).await;
    let ws = app.workspace("main").await;
    let editor = member(&app, "eddie", ws, "editor").await;
    let create =
        |key: &str, value: String| vec![("workspace_id", ws.to_string()), ("key", key.to_string()), ("value", value)];

    let created = app.studio(&editor, "create_secret", &create("K", "v".into())).await;
    let bad = app.studio(&editor, "create_secret", &create("bad key", "v".into())).await;
    let duplicate = app.studio(&editor, "create_secret", &create("K", "v".into())).await;
    let too_large = app.studio(&editor, "create_secret", &create("BIG", "x".repeat(65))).await;
    let foreign = app
        .studio(
            &editor,
            "create_secret",
            &[("workspace_id", Uuid::new_v4().to_string()), ("key", "K2".into()), ("value", "v".into())],
        )
        .await;
    let anonymous = app
        .client
        .post(format!("{}/studio/workspace_secrets", app.base))
        .header("origin", &app.base)
        .form(&[("workspace_id", ws.to_string())])
        .send()
        .await
        .unwrap();

    assert_eq!(created.status(), 200);
    for (response, status, code) in [
        (bad, 400, "bad_request"),
        (duplicate, 409, "conflict"),
        (too_large, 413, "payload_too_large"),
        (foreign, 404, "not_found"),
        (anonymous, 401, "unauthorized"),
    ] {
        assert_eq!(response.status().as_u16(), status, "{code}");
        assert_eq!(json(response).await["code"], code);
    }
    // A browser without JavaScript still goes back to its page, with the error in the URL.
    let form_post = app
        .client
        .post(format!("{}/studio/create_secret", app.base))
        .header("cookie", &editor)
        .header("origin", &app.base)
        .header("accept", "text/html")
        .header("referer", format!("{}/workspaces/{ws}", app.base))
        .form(&[
            ("workspace_id", ws.to_string()),
            ("key", "bad key".into()),
            ("value", "v".into()),
            ("csrf", loopstack_secrets::server::web::csrf::csrf_token(editor.split_once('=').unwrap().1)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form_post.status(), 302);
    assert!(form_post.headers()["location"].to_str().unwrap().contains(&format!("/workspaces/{ws}")));
}

async fn spawn_app_with_small_values(engine: Engine) -> TestApp {
    common::spawn_app_with(engine, &["--max-value-bytes", "64"]).await
}

async fn a_token_without_secrets_write_cannot_submit_a_request_form(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let runner = app.token(ws, &[Scope::WorkflowsRun, Scope::ToolsCall]).await;
    let run = json(start_request(&app, ws, &runner, "K").await).await["id"].as_str().unwrap().to_string();

    let submitted = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows/{run}/transitions/secretsSubmitted"), &runner)
        .json(&json!({"variables": [{"key": "K", "value": "injected"}]}))
        .send()
        .await
        .unwrap();

    assert_eq!(error_code(submitted, 403).await, "forbidden");
    assert_eq!(app.value_of(ws, "K").await, None);
    let view =
        json(app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows/{run}"), &runner).send().await.unwrap())
            .await;
    assert_eq!(view["status"], "waiting");
}

async fn every_body_is_capped_before_parsing_or_authentication(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let editor = member(&app, "eddie", ws, "editor").await;
    let huge = "x".repeat(2 * 1024 * 1024);

    for (path, cookie) in [
        ("/studio/create_secret", Some(&editor)),
        ("/studio/sign_in", None),
        ("/studio/no_such_function", None),
        (&*format!("/api/v1/workspaces/{ws}/secrets"), None),
    ] {
        let mut request = app
            .client
            .post(format!("{}{path}", app.base))
            .header("origin", &app.base)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie.as_str());
        }
        let response = request.body(format!("workspace_id={ws}&key=K&value={huge}")).send().await.unwrap();
        assert_eq!(response.status(), 413, "{path}");
        assert_eq!(json(response).await["error"]["code"], "payload_too_large", "{path}");
    }
    // Without a declared length the body is cut off as it streams in.
    let chunks = futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 64 * 1024])));
    let streamed = app
        .client
        .post(format!("{}/studio/sign_in", app.base))
        .header("origin", &app.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    if let Ok(response) = streamed {
        assert!(!response.status().is_success() && response.status() != 500, "{}", response.status());
    }
    assert_eq!(app.value_of(ws, "K").await, None);
}

async fn cleartext_http2_is_not_spoken(engine: Engine) {
    let app = spawn_app(engine).await;
    let mut stream = std::net::TcpStream::connect(app.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The HTTP/2 connection preface and an empty SETTINGS frame (prior knowledge, as h2c).
    stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);

    let is_h2_settings = answer.len() >= 9 && answer[3] == 0x04;
    assert!(!is_h2_settings, "the server answered as HTTP/2");
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 4"), "{}", String::from_utf8_lossy(&answer));
}

async fn pages_and_api_answers_are_never_compressed(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let cookie = member(&app, "eddie", ws, "owner").await;
    let token = app.writer_token(ws).await;
    for i in 0..60 {
        app.upsert(ws, &token, &format!("KEY_{i:03}_WITH_A_LONG_NAME_TO_PASS_THE_SIZE_FLOOR"), "v").await;
    }
    let accept = "gzip, deflate, br, zstd";

    let page = app
        .client
        .get(format!("{}/workspaces/{ws}", app.base))
        .header("cookie", &cookie)
        .header("accept-encoding", accept)
        .send()
        .await
        .unwrap();
    let api = app.list(ws, &token).await;
    let api_gzip = app
        .req(Method::GET, &format!("/api/v1/workspaces/{ws}/secrets"), &token)
        .header("accept-encoding", accept)
        .send()
        .await
        .unwrap();
    let function = app
        .client
        .post(format!("{}/studio/workspace_secrets", app.base))
        .header("cookie", &cookie)
        .header("origin", &app.base)
        .header("accept-encoding", accept)
        .form(&[("workspace_id", ws.to_string())])
        .send()
        .await
        .unwrap();

    for (what, response) in
        [("page", page), ("api", api), ("api asking for gzip", api_gzip), ("server function", function)]
    {
        assert_eq!(response.status(), 200, "{what}");
        assert!(response.headers().get("content-encoding").is_none(), "{what} was compressed");
        assert!(
            response.text().await.unwrap().len() > 1024,
            "{what} is big enough to be compressed if it were allowed"
        );
    }
}

async fn the_page_policy_limits_forms_plugins_and_base_urls(engine: Engine) {
    let app = spawn_app(engine).await;
    let page = app.client.get(format!("{}/sign-in", app.base)).send().await.unwrap();
    let api = app.client.get(format!("{}/api/v1/openapi.json", app.base)).send().await.unwrap();

    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    for directive in ["form-action 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"] {
        assert!(csp.split(';').any(|d| d.trim() == directive), "{directive} in {csp}");
    }
    let strict = api.headers()["content-security-policy"].to_str().unwrap().to_string();
    for directive in ["default-src 'none'", "form-action 'none'", "base-uri 'none'"] {
        assert!(strict.split(';').any(|d| d.trim() == directive), "{directive} in {strict}");
    }
}

async fn the_audit_search_matches_percent_and_underscore_literally(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let cookie = member(&app, "eddie", ws, "owner").await;
    let token = app.writer_token(ws).await;
    for key in ["A_B", "AXB", "PERCENT"] {
        app.create(ws, &token, key, "v").await;
    }
    let search = |q: &'static str| vec![("workspace_id", ws.to_string()), ("search", q.to_string())];

    let underscore = json(app.studio(&cookie, "audit_log", &search("a_b")).await).await;
    let percent = json(app.studio(&cookie, "audit_log", &search("%")).await).await;

    let keys: Vec<&str> = underscore.as_array().unwrap().iter().filter_map(|e| e["key"].as_str()).collect();
    assert_eq!(keys, ["A_B"], "'_' is not a wildcard");
    assert_eq!(percent.as_array().unwrap().len(), 0, "'%' is not a wildcard: {percent}");
}

async fn any_page_number_answers_a_page_and_never_fails(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let cookie = member(&app, "eddie", ws, "owner").await;
    let token = app.writer_token(ws).await;
    for i in 0..105 {
        app.upsert(ws, &token, &format!("K{i:03}"), "v").await;
    }

    for page in ["18446744073709551615", "9223372036854775807", "3", "99999999999999999999999", "-1", "0"] {
        let html = app
            .client
            .get(format!("{}/workspaces/{ws}?page={page}", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(html.status(), 200, "page {page}");
        let function =
            app.studio(&cookie, "workspace_secrets", &[("workspace_id", ws.to_string()), ("page", page.into())]).await;
        let status = function.status().as_u16();
        assert!(status == 200 || status == 400, "page {page}: {status}");
        if status == 200 {
            let shown = json(function).await;
            assert!(shown["page"] == 1 || shown["page"] == 2, "page {page} shows a real page: {}", shown["page"]);
        }
    }
    let last = json(
        app.studio(
            &cookie,
            "workspace_secrets",
            &[("workspace_id", ws.to_string()), ("page", "18446744073709551615".into())],
        )
        .await,
    )
    .await;
    assert_eq!(last["page"], 2, "past the end is the last page");
    assert_eq!(last["secrets"].as_array().unwrap().len(), 5);
}

async fn a_row_renamed_in_the_database_does_not_open(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    app.create(ws, &token, "GITHUB_TOKEN", "ghp_real").await;
    app.create(ws, &token, "DECOY", "decoy").await;

    loopstack_secrets::on_pool!(&app.state.db, pool => {
        sqlx::query("DELETE FROM secrets WHERE key = 'DECOY'").execute(pool).await.unwrap();
        sqlx::query("UPDATE secrets SET key = 'DECOY' WHERE key = 'GITHUB_TOKEN'").execute(pool).await.unwrap();
    });

    let key = app.state.secrets.parse_key("DECOY").unwrap();
    let read = app.state.secrets.read_value(ws, &key, &common::test_actor()).await;
    assert!(
        matches!(read, Err(loopstack_secrets::server::error::AppError::Crypto)),
        "a value opens only under its own key name"
    );
}

both_engines!(serial:
    reserved_keys_are_refused_on_every_write_path,
    every_server_function_refuses_a_viewer_with_403_where_rest_would,
    server_function_errors_carry_the_status_of_the_rest_error,
    a_token_without_secrets_write_cannot_submit_a_request_form,
    every_body_is_capped_before_parsing_or_authentication,
    pages_and_api_answers_are_never_compressed,
    the_page_policy_limits_forms_plugins_and_base_urls,
    the_audit_search_matches_percent_and_underscore_literally,
    any_page_number_answers_a_page_and_never_fails,
);

both_engines!(cleartext_http2_is_not_spoken, a_row_renamed_in_the_database_does_not_open);

/// A first start creates the data dir for its owner only, and the database, its WAL and the key
/// file readable by the owner only.
#[tokio::test]
async fn the_data_dir_and_its_files_are_private() {
    use clap::Parser;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh/data");
    let config = loopstack_secrets::server::config::Cli::parse_from(["x", "--data-dir", data.to_str().unwrap()]).config;
    let state = loopstack_secrets::server::state::open(config, None).await.unwrap().state;
    let ws = loopstack_secrets::server::service::access::create_workspace(&state.db, &state.kek, "main", None)
        .await
        .unwrap();
    let key = state.secrets.parse_key("K").unwrap();
    state
        .secrets
        .upsert(ws, &key, &state.secrets.parse_value("v".into()).unwrap(), &common::test_actor())
        .await
        .unwrap();

    let mode = |name: &str| std::fs::metadata(data.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    for file in [
        "master.key",
        "loopstack-secrets.db",
        "loopstack-secrets.db-wal",
        "loopstack-secrets.db-shm",
        "loopstack-secrets.db-changes",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    state.shutdown().await;
}
