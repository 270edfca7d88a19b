//! Input an attacker or a broken client sends: oversized, deeply nested, not UTF-8, injected
//! into headers and paths, far too long, far too many, far too fast and far too slow. Every
//! refusal carries the standard error body and leaves nothing stored.

mod common;

use std::time::Duration;

use common::{error_code, json, spawn_app, spawn_app_with, test_actor, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// The keys stored in `ws`, read through the API.
async fn keys(app: &TestApp, ws: Uuid, token: &str) -> Vec<String> {
    let body = json(app.list(ws, token).await).await;
    body.as_array().unwrap().iter().map(|s| s["key"].as_str().unwrap().to_string()).collect()
}

async fn a_chunked_body_over_the_limit_is_413_and_stores_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    // No Content-Length: the limit must hold while streaming, not only by the header.
    let chunks = futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![b' '; 32 * 1024])));
    let head = futures::stream::once(async { Ok::<_, std::io::Error>(br#"{"key":"BIG","value":"x"}"#.to_vec()) });
    let body = reqwest::Body::wrap_stream(futures::StreamExt::chain(head, chunks));

    let response =
        app.req(Method::POST, &format!("/api/v1/workspaces/{ws}/secrets"), &token).body(body).send().await.unwrap();

    assert_eq!(error_code(response, 413).await, "payload_too_large");
    assert!(keys(&app, ws, &token).await.is_empty());
}

async fn deeply_nested_json_is_a_400_everywhere(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall, Scope::WorkflowsRun]).await;
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let bodies = [
        (Method::POST, format!("/api/v1/workspaces/{ws}/secrets"), format!(r#"{{"key":"A","value":{deep}}}"#)),
        (
            Method::PUT,
            format!("/api/v1/workspaces/{ws}/secrets/upsert"),
            format!(r#"{{"key":"A","value":"v","x":{deep}}}"#),
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/workflows"),
            format!(r#"{{"workflow":"secrets_request","args":{deep}}}"#),
        ),
        (
            Method::POST,
            format!("/api/v1/workspaces/{ws}/tools/request_secrets"),
            format!(r#"{{"args":{{"variables":{deep}}}}}"#),
        ),
    ];

    for (method, path, body) in bodies {
        let response =
            app.req(method, &path, &token).header("content-type", "application/json").body(body).send().await.unwrap();
        assert_eq!(error_code(response, 400).await, "bad_request", "{path}");
    }

    assert!(keys(&app, ws, &token).await.is_empty());
    let runs =
        json(app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows"), &token).send().await.unwrap()).await;
    assert_eq!(runs, serde_json::json!([]));
}

async fn invalid_utf8_is_a_400_and_stores_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    let mut body = br#"{"key":"A","value":""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    body.extend_from_slice(br#""}"#);

    let response = app
        .req(Method::PUT, &format!("/api/v1/workspaces/{ws}/secrets/upsert"), &token)
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(error_code(response, 400).await, "bad_request");
    assert!(keys(&app, ws, &token).await.is_empty());
}

async fn header_injection_is_refused_and_never_reflected(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;

    // A key that would split a header if it were ever written into one.
    let split = app.create(ws, &token, "A\r\nSet-Cookie: pwned=1", "v").await;
    assert!(split.headers().get_all("set-cookie").iter().next().is_none());
    assert_eq!(error_code(split, 400).await, "bad_request");
    // Credentials that are not text, or not a token.
    for auth in [&b"Bearer \xff\xfe"[..], b"Bearer lss_x_y\tinjected", b"Basic YWRtaW46YWRtaW4="] {
        let response = app
            .client
            .get(format!("{}/api/v1/workspaces/{ws}/secrets", app.base))
            .header("authorization", reqwest::header::HeaderValue::from_bytes(auth).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(response, 401).await, "unauthorized");
    }
    assert!(keys(&app, ws, &token).await.is_empty());
}

async fn a_forged_host_never_becomes_a_redirect_target(engine: Engine) {
    let app = spawn_app(engine).await;

    let page = app.client.get(format!("{}/workspaces", app.base)).header("host", "evil.example").send().await.unwrap();

    let headers = format!("{:?}", page.headers());
    let body = page.text().await.unwrap();
    assert!(!headers.contains("evil.example"), "{headers}");
    assert!(headers.contains("/sign-in"), "the page sends to sign-in: {headers}");
    assert!(!body.contains("evil.example"), "{body}");
}

async fn path_tricks_reach_nothing_they_should_not(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let other = app.workspace("other").await;
    let token = app.writer_token(ws).await;
    let other_token = app.writer_token(other).await;
    assert_eq!(app.create(other, &other_token, "THEIRS", "v").await.status(), 201);

    let paths = [
        format!("/api/v1/workspaces/{ws}/secrets/..%2F..%2F{other}%2Fsecrets"),
        format!("/api/v1/workspaces/{ws}/../{other}/secrets"),
        format!("/api/v1/workspaces/{ws}%00/secrets"),
        "/api/v1/workspaces/%2e%2e/secrets".to_string(),
        format!("/api/v1/workspaces/{}/secrets", "a".repeat(20_000)),
        format!("/api/v1/workspaces/{ws}/secrets/{}", "%ff".repeat(3_000)),
    ];
    for path in &paths {
        let response = app.req(Method::GET, path, &token).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(!body.contains("THEIRS"), "{path} leaked another workspace");
        assert!(matches!(status, 400 | 404 | 405 | 414), "{path}: {status}");
        assert!(body.contains("\"error\""), "{path}: no error body in {body}");
    }
    // Static files: no way out of the site folder.
    for path in
        ["/pkg/../../Cargo.toml", "/pkg/..%2f..%2fCargo.toml", "/pkg/%2e%2e/%2e%2e/Cargo.toml", "/..%2fCargo.toml"]
    {
        let response = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        let body = response.text().await.unwrap();
        assert!(!body.contains("[package]"), "{path} served a file outside the site");
    }
}

async fn very_long_keys_are_refused_at_the_configured_limit(engine: Engine) {
    let app = spawn_app_with(engine, &["--max-key-len", "64"]).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;

    let at_limit = app.create(ws, &token, &"K".repeat(64), "v").await;
    let over = app.create(ws, &token, &"K".repeat(65), "v").await;
    let huge = app.create(ws, &token, &"K".repeat(500_000), "v").await;

    assert_eq!(at_limit.status(), 201);
    assert_eq!(error_code(over, 400).await, "bad_request");
    assert_eq!(error_code(huge, 400).await, "bad_request");
    assert_eq!(keys(&app, ws, &token).await, vec!["K".repeat(64)]);
}

async fn ten_thousand_secrets_list_sorted_and_complete(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::SecretsWrite, Scope::ToolsCall]).await;
    let pairs = (0..10_000).map(|i| (format!("KEY_{i:05}"), zeroize::Zeroizing::new(format!("value-{i}")))).collect();
    app.state.secrets.import(ws, pairs, &test_actor()).await.expect("import 10k");

    let listed = keys(&app, ws, &token).await;
    let tool = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/tools/get_secret_keys"), &token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let tool = json(tool).await;

    assert_eq!(listed.len(), 10_000);
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "sorted by key");
    assert_eq!(tool["data"].as_array().unwrap().len(), 10_000);
    assert_eq!(app.value_of(ws, "KEY_09999").await.as_deref(), Some("value-9999"));
}

async fn a_flood_of_requests_is_429_with_retry_after(engine: Engine) {
    let app = spawn_app_with(engine, &["--runs-per-minute", "5"]).await;
    let ws = app.workspace("main").await;
    let quiet = app.workspace("quiet").await;
    let token = app.token(ws, &[Scope::ToolsCall, Scope::WorkflowsRun]).await;
    let quiet_token = app.token(quiet, &[Scope::ToolsCall, Scope::WorkflowsRun]).await;
    let args = serde_json::json!({"variables": [{"key": "OPENAI_API_KEY"}]});
    let request = serde_json::json!({"args": args});
    let tool_path = format!("/api/v1/workspaces/{ws}/tools/request_secrets");

    let flood =
        futures::future::join_all((0..12).map(|_| app.req(Method::POST, &tool_path, &token).json(&request).send()))
            .await;
    let mut accepted = 0;
    for response in flood {
        let response = response.unwrap();
        if response.status() == 200 {
            accepted += 1;
            continue;
        }
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        assert_eq!(error_code(response, 429).await, "rate_limited");
    }
    let started = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), &token)
        .json(&serde_json::json!({"workflow": "secrets_request", "args": args}))
        .send()
        .await
        .unwrap();
    let runs =
        json(app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows"), &token).send().await.unwrap()).await;
    let other = app
        .req(Method::POST, &format!("/api/v1/workspaces/{quiet}/tools/request_secrets"), &quiet_token)
        .json(&request)
        .send()
        .await
        .unwrap();

    assert!((1..=5).contains(&accepted), "accepted {accepted}");
    assert_eq!(error_code(started, 429).await, "rate_limited");
    assert_eq!(runs.as_array().unwrap().len(), accepted, "refused requests started no run");
    assert_eq!(other.status(), 200, "another workspace has its own budget");
}

async fn a_client_that_never_finishes_its_headers_is_disconnected(engine: Engine) {
    let app = spawn_app_with(engine, &["--header-timeout-secs", "1"]).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();

    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;

    assert!(read.is_ok(), "the server kept a connection whose headers never came");
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("200 OK"), "{text}");
}

async fn a_body_that_trickles_is_408_and_stores_nothing(engine: Engine) {
    let app = spawn_app_with(engine, &["--body-timeout-secs", "1"]).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "PUT /api/v1/workspaces/{ws}/secrets/upsert HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"key\":\"SLOW\","
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    let mut buf = vec![0u8; 4096];
    let n =
        tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.expect("an answer in time").unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or("{}")).unwrap_or_default();
    assert_eq!(body["error"]["code"], "request_timeout", "{answer}");
    assert!(keys(&app, ws, &token).await.is_empty());
}

both_engines!(
    a_chunked_body_over_the_limit_is_413_and_stores_nothing,
    deeply_nested_json_is_a_400_everywhere,
    invalid_utf8_is_a_400_and_stores_nothing,
    header_injection_is_refused_and_never_reflected,
    path_tricks_reach_nothing_they_should_not,
    very_long_keys_are_refused_at_the_configured_limit,
    ten_thousand_secrets_list_sorted_and_complete,
    a_flood_of_requests_is_429_with_retry_after,
    a_client_that_never_finishes_its_headers_is_disconnected,
    a_body_that_trickles_is_408_and_stores_nothing,
);
both_engines!(serial: a_forged_host_never_becomes_a_redirect_target);
