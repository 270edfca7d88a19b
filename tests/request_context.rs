//! Requests carry context for the person asked: a reason, and per key a description and an
//! https help link. Accepted by the request tools and the workflow route alike, refused when
//! not plain text or not https (no run started), shown escaped on the Studio's request page
//! with who asked, when and until when; keys-only requests are unchanged. Also the icon.

mod common;

use chrono::{DateTime, Utc};
use common::{json, spawn_app, test_actor, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use loopstack_secrets::server::service::access;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

/// A workspace and a token named `name` with every scope.
async fn agent(app: &TestApp, name: &str) -> (Uuid, String) {
    let ws = app.workspace("main").await;
    let (_, token) =
        access::create_token(&app.state.db, ws, name, &Scope::ALL, None, &test_actor()).await.expect("create token");
    (ws, token)
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.req(Method::POST, path, token).json(&body).send().await.unwrap()
}

async fn tool(app: &TestApp, ws: Uuid, token: &str, name: &str, args: Value) -> reqwest::Response {
    post(app, token, &format!("/api/v1/workspaces/{ws}/tools/{name}"), json!({ "args": args })).await
}

async fn start(app: &TestApp, ws: Uuid, token: &str, args: Value) -> reqwest::Response {
    let body = json!({"workflow": "secrets_request", "args": args, "expiresInSeconds": 3600});
    post(app, token, &format!("/api/v1/workspaces/{ws}/workflows"), body).await
}

async fn run(app: &TestApp, ws: Uuid, token: &str, id: &str) -> Value {
    json(app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows/{id}"), token).send().await.unwrap()).await
}

async fn runs(app: &TestApp, ws: Uuid, token: &str) -> Vec<Value> {
    let list = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows"), token).send().await.unwrap();
    json(list).await.as_array().unwrap().clone()
}

fn context() -> Value {
    json!({
        "reason": "  Deploying the billing service\nneeds these. ",
        "variables": [
            {"key": "OPENAI_API_KEY", "description": "Project key, starts with sk-", "helpUrl": "https://Platform.Example.com/api-keys"},
            {"key": "PLAIN_KEY"}
        ]
    })
}

/// What `context()` is stored as: text trimmed, the link as the URL standard writes it.
fn stored_context() -> Value {
    json!({
        "reason": "Deploying the billing service\nneeds these.",
        "variables": [
            {"key": "OPENAI_API_KEY", "description": "Project key, starts with sk-", "helpUrl": "https://platform.example.com/api-keys"},
            {"key": "PLAIN_KEY"}
        ]
    })
}

async fn a_request_with_context_is_shown_in_its_document_through_every_entry(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app, "deploy-bot").await;

    let called = tool(&app, ws, &token, "request_secrets", context()).await;
    let task = tool(&app, ws, &token, "request_secrets_task", context()).await;
    let started = start(&app, ws, &token, context()).await;

    assert_eq!(called.status(), 200);
    let called = json(called).await;
    assert_eq!(called["data"], json!({"variables": [{"key": "OPENAI_API_KEY"}, {"key": "PLAIN_KEY"}]}));
    assert_eq!(task.status(), 200);
    let task = json(task).await;
    assert_eq!(started.status(), 201);
    let started = json(started).await;
    for id in [&called["pending"]["workflowId"], &task["pending"]["workflowId"], &started["id"]] {
        let run = run(&app, ws, &token, id.as_str().unwrap()).await;
        assert_eq!(run["args"], stored_context());
        assert_eq!(run["documents"][0]["kind"], "SecretRequestDocument");
        assert_eq!(run["documents"][0]["content"], stored_context());
        assert_eq!(run["createdBy"], json!({"kind": "token", "name": "deploy-bot"}));
        assert!(!run.to_string().contains(&token), "never the token itself");
    }
}

async fn bad_context_is_refused_naming_the_field_and_starts_no_run(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app, "deploy-bot").await;
    let with_key = |extra: Value| {
        let mut variable = json!({"key": "A_KEY"});
        variable.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"variables": [variable]})
    };
    let cases = [
        (json!({"reason": "x".repeat(501), "variables": [{"key": "A_KEY"}]}), "reason must be at most 500 characters"),
        (json!({"reason": "ring\u{7}bell", "variables": [{"key": "A_KEY"}]}), "reason must be plain text"),
        (json!({"reason": "a\rb", "variables": [{"key": "A_KEY"}]}), "reason must be plain text"),
        (with_key(json!({"description": "x".repeat(501)})), "variables[0].description must be at most 500 characters"),
        (with_key(json!({"description": "tab\there"})), "variables[0].description must be plain text"),
        (
            with_key(json!({"helpUrl": "http://example.com/keys"})),
            "variables[0].helpUrl must be an absolute https:// URL",
        ),
        (with_key(json!({"helpUrl": "javascript:alert(1)"})), "variables[0].helpUrl must be an absolute https:// URL"),
        (with_key(json!({"helpUrl": "/relative/path"})), "variables[0].helpUrl must be an absolute https:// URL"),
        (
            with_key(json!({"helpUrl": format!("https://example.com/{}", "a".repeat(2000))})),
            "variables[0].helpUrl must be at most 2000",
        ),
        (with_key(json!({"helpUrl": 42})), "invalid arguments"),
        (with_key(json!({"help_url": "https://example.com/"})), "unknown field `help_url`"),
        (with_key(json!({"label": "x"})), "unknown field `label`"),
        (json!({"why": "x", "variables": [{"key": "A_KEY"}]}), "unknown field `why`"),
    ];

    for (args, message) in cases {
        for answer in [
            tool(&app, ws, &token, "request_secrets", args.clone()).await,
            tool(&app, ws, &token, "request_secrets_task", args.clone()).await,
            start(&app, ws, &token, args.clone()).await,
        ] {
            assert_eq!(answer.status(), 400, "{args}");
            let body = json(answer).await;
            assert_eq!(body["error"]["code"], "bad_request", "{args}");
            let said = body["error"]["message"].as_str().unwrap();
            assert!(said.contains(message), "{args}: {said}");
        }
    }
    assert_eq!(runs(&app, ws, &token).await, Vec::<Value>::new(), "no refused request started a run");
}

async fn keys_only_requests_are_unchanged(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app, "deploy-bot").await;
    let keys = json!({"variables": [{"key": "A_KEY"}, {"key": "B_KEY"}]});

    let called = json(tool(&app, ws, &token, "request_secrets", keys.clone()).await).await;
    let id = called["pending"]["workflowId"].as_str().unwrap();
    let run = run(&app, ws, &token, id).await;

    assert_eq!(called["data"], keys);
    assert_eq!(run["args"], keys);
    assert_eq!(run["documents"][0]["content"], keys, "no context fields appear when none were sent");
    assert_eq!(run["expiresAt"], Value::Null);
}

async fn member(app: &TestApp, name: &str, ws: Uuid) -> String {
    let user = app.user(name, PASSWORD).await;
    app.add_member(ws, user, "editor").await;
    TestApp::session_cookie(&app.sign_in(name, PASSWORD).await).expect("a session cookie")
}

/// A page's HTML without the hydration markers (`<!>`) Leptos puts after dynamic text.
async fn page(app: &TestApp, path: &str, cookie: &str) -> String {
    let response = app.client.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap().replace("<!>", "")
}

async fn the_request_page_shows_who_asked_why_and_until_when_escaped(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app, "deploy-bot").await;
    let cookie = member(&app, "eddie", ws).await;
    let args = json!({
        "reason": "Rotate keys <script>alert('reason')</script>\nbefore Friday",
        "variables": [
            {"key": "GITHUB_TOKEN", "description": "A fine-grained token <b>read-only</b>", "helpUrl": "https://github.com/settings/tokens?type=beta"},
            {"key": "PLAIN_KEY"}
        ]
    });
    let started = json(start(&app, ws, &token, args).await).await;
    let id = started["id"].as_str().unwrap();
    let by_user = app
        .client
        .post(format!("{}/api/v1/workspaces/{ws}/tools/request_secrets", app.base))
        .header("cookie", &cookie)
        .header("origin", &app.base)
        .json(&json!({"variables": [{"key": "USER_KEY"}]}))
        .send()
        .await
        .unwrap();
    let by_user = json(by_user).await;
    let user_run = by_user["pending"]["workflowId"].as_str().unwrap();

    let html = page(&app, &format!("/workspaces/{ws}/runs/{id}"), &cookie).await;
    let user_html = page(&app, &format!("/workspaces/{ws}/runs/{user_run}"), &cookie).await;

    assert!(html.contains("API token \u{201c}deploy-bot\u{201d}"), "who asked: the token's name");
    assert!(!html.contains(&token), "never the token itself");
    let asked: DateTime<Utc> = started["createdAt"].as_str().unwrap().parse().unwrap();
    let expires: DateTime<Utc> = started["expiresAt"].as_str().unwrap().parse().unwrap();
    for at in [asked, expires] {
        let shown = format!(r#"<time datetime="{}">{}</time>"#, at.to_rfc3339(), at.format("%Y-%m-%d %H:%M UTC"));
        assert!(html.contains(&shown), "{shown} missing");
    }
    assert!(html.contains("Expires"));
    assert!(html.contains("Rotate keys &lt;script&gt;alert("), "the reason, escaped");
    assert!(html.contains("before Friday"));
    assert!(!html.contains("<script>alert"), "the reason is never markup, in the page or its data");
    assert!(html.contains("A fine-grained token &lt;b&gt;read-only&lt;/b&gt;"), "the description, escaped");
    assert!(!html.contains("<b>read-only"));
    let link = r#"<a href="https://github.com/settings/tokens?type=beta" rel="noopener noreferrer" target="_blank">"#;
    assert!(html.contains(link), "the help link opens apart from this page");
    assert!(html.contains(r#"aria-describedby="secret-GITHUB_TOKEN-description""#));
    assert!(html.contains(r#"id="secret-PLAIN_KEY""#), "a key without context still has its field");
    assert!(user_html.contains(r#"<dd class="requested-by">eddie</dd>"#), "who asked: the user");
    assert!(user_html.contains("Never"), "a request without expiry says so");
}

async fn the_studio_has_an_icon(engine: Engine) {
    let app = spawn_app(engine).await;

    let sign_in = app.client.get(format!("{}/sign-in", app.base)).send().await.unwrap().text().await.unwrap();
    let mut icons = Vec::new();
    for path in ["/favicon.svg", "/favicon.ico"] {
        icons.push(app.client.get(format!("{}{path}", app.base)).send().await.unwrap());
    }

    assert!(sign_in.contains(r#"<link rel="icon" type="image/svg+xml" href="/favicon.svg">"#), "the shell links it");
    for icon in icons {
        assert_eq!(icon.status(), 200);
        assert_eq!(icon.headers()["content-type"], "image/svg+xml");
        assert_eq!(icon.headers()["x-content-type-options"], "nosniff");
        let body = icon.text().await.unwrap();
        assert!(body.starts_with("<svg") && body.trim_end().ends_with("</svg>"), "{body}");
        assert!(!body.contains("<script"));
    }
}

async fn the_api_documents_describe_the_context_fields(engine: Engine) {
    let app = spawn_app(engine).await;
    let (_, token) = agent(&app, "deploy-bot").await;

    let openapi = json(app.client.get(format!("{}/api/v1/openapi.json", app.base)).send().await.unwrap()).await;
    let tools = json(app.req(Method::GET, "/api/v1/tools", &token).send().await.unwrap()).await;

    let schemas = &openapi["components"]["schemas"];
    assert_eq!(schemas["SecretRequest"]["properties"]["reason"]["maxLength"], 500);
    assert_eq!(schemas["SecretRequest"]["required"], json!(["variables"]));
    let key = &schemas["RequestedKey"];
    assert_eq!(key["required"], json!(["key"]));
    assert_eq!(key["properties"]["description"]["maxLength"], 500);
    assert_eq!(key["properties"]["helpUrl"]["pattern"], "^https://");
    assert_eq!(key["properties"]["helpUrl"]["maxLength"], 2000);
    assert!(schemas["WorkflowRun"]["required"].as_array().unwrap().contains(&json!("createdBy")));
    let args = serde_json::to_string(&schemas["StartRun"]["properties"]["args"]).unwrap();
    assert!(args.contains("#/components/schemas/SecretRequest"), "{args}");
    for definition in &tools.as_array().unwrap()[1..3] {
        let schema = &definition["inputSchema"];
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["reason"]["maxLength"], 500);
        let item = &schema["properties"]["variables"]["items"];
        assert_eq!(item["additionalProperties"], false);
        assert_eq!(item["properties"]["description"]["maxLength"], 500);
        assert_eq!(item["properties"]["helpUrl"]["pattern"], "^https://");
        assert!(definition["description"].as_str().unwrap().contains("helpUrl"));
    }
}

both_engines!(
    a_request_with_context_is_shown_in_its_document_through_every_entry,
    bad_context_is_refused_naming_the_field_and_starts_no_run,
    keys_only_requests_are_unchanged,
    the_api_documents_describe_the_context_fields,
);

both_engines!(serial: the_request_page_shows_who_asked_why_and_until_when_escaped, the_studio_has_an_icon);
