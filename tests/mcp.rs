//! The MCP server, driven by the SDK's own client: both protocol versions (2026-07-28 and
//! 2025-11-25), both transports (streamable HTTP and stdio) and both engines. Tools, bad
//! arguments, another workspace, a revoked token, URL elicitation in both eras, a replayed
//! `requestState`, and completion across two instances on PostgreSQL. No answer, error or
//! notification ever carries a value.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{error_code, json, serve, spawn_app, spawn_app_with, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use reqwest::Method;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientConfig, CustomNotification, ElicitRequestParams,
    ElicitResult, ErrorData, NumberOrString, ProgressNotificationParam, ProgressToken, RequestMetaObject,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RequestContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient, ServiceError, ServiceExt};
use serde_json::{json, Value};
use uuid::Uuid;

const CANARY: &str = "canary-7f3a-never-shown";

/// The two protocol versions the server speaks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Era {
    Current,
    Legacy,
}

/// What the agent's client saw besides answers.
#[derive(Default)]
struct Seen {
    completed: Vec<String>,
    progress: Vec<f64>,
    elicited: Vec<String>,
}

/// A test MCP client. With `person`, it declares URL elicitation and, when asked to open a
/// link, plays the person: submits `value` for every key of the request through the REST API,
/// then accepts.
#[derive(Clone)]
struct Agent {
    config: ClientConfig,
    person: Option<Person>,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Clone)]
struct Person {
    base: String,
    workspace: Uuid,
    token: String,
    value: String,
}

impl Agent {
    fn new(era: Era, person: Option<Person>) -> Agent {
        let version = match era {
            Era::Current => "2026-07-28",
            Era::Legacy => "2025-11-25",
        };
        let capabilities = if person.is_some() { json!({"elicitation": {"url": {}}}) } else { json!({}) };
        let config = serde_json::from_value(json!({
            "protocolVersion": version,
            "capabilities": capabilities,
            "clientInfo": {"name": "test-agent", "version": "1.0.0"}
        }))
        .unwrap();
        Agent { config, person, seen: Arc::default() }
    }
}

impl ClientHandler for Agent {
    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::UrlElicitationParams { url, .. } = request else {
            return Err(ErrorData::invalid_params("only URL elicitation is expected", None));
        };
        self.seen.lock().unwrap().elicited.push(url.clone());
        let person = self.person.clone().expect("only a client with a person declares elicitation");
        person.answer(&url).await;
        Ok(serde_json::from_value(json!({"action": "accept"})).unwrap())
    }

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        _context: NotificationContext<RoleClient>,
    ) {
        if notification.method == "notifications/elicitation/complete" {
            let id = notification.params.unwrap_or_default()["elicitationId"].as_str().unwrap_or_default().to_string();
            self.seen.lock().unwrap().completed.push(id);
        }
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.seen.lock().unwrap().progress.push(params.progress);
    }
}

impl Person {
    /// Enters the values of the request whose Studio page is `url`, as the form would.
    async fn answer(&self, url: &str) {
        let run = url.rsplit('/').next().unwrap();
        let path = format!("/api/v1/workspaces/{}/workflows/{run}", self.workspace);
        let client = reqwest::Client::new();
        let shown: Value = client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys: Vec<Value> = shown["documents"][0]["content"]["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| json!({"key": v["key"], "value": self.value}))
            .collect();
        let submitted = client
            .post(format!("{}{path}/transitions/secretsSubmitted", self.base))
            .bearer_auth(&self.token)
            .json(&json!({ "variables": keys }))
            .send()
            .await
            .unwrap();
        assert_eq!(submitted.status(), 200, "the person's answer is stored");
    }
}

async fn connect(app: &TestApp, token: &str, agent: Agent, era: Era) -> RunningService<RoleClient, Agent> {
    connect_to(&app.base, token, agent, era).await
}

async fn connect_to(base: &str, token: &str, agent: Agent, era: Era) -> RunningService<RoleClient, Agent> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp")).auth_header(token.to_string()),
    );
    match era {
        Era::Legacy => agent.serve(transport).await.expect("a 2025-11-25 session"),
        Era::Current => agent
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover { preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28] },
            )
            .await
            .expect("a 2026-07-28 client"),
    }
}

/// A workspace with a token that may call tools and run workflows, and a secret holding the
/// canary.
async fn workspace(app: &TestApp) -> (Uuid, String) {
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::ToolsCall, Scope::WorkflowsRun, Scope::SecretsWrite, Scope::SecretsList]).await;
    assert_eq!(app.create(ws, &app.writer_token(ws).await, "STORED", CANARY).await.status(), 201);
    (ws, token)
}

fn call(name: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(args) = args else { panic!("arguments are an object") };
    CallToolRequestParams::new(name.to_string()).with_arguments(args)
}

fn shown(result: &CallToolResult) -> String {
    serde_json::to_string(result).unwrap()
}

fn text(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

async fn tools_are_the_rest_definitions_on_both_versions(engine: Engine) {
    let app = spawn_app(engine).await;
    let (_, token) = workspace(&app).await;
    let rest: Value = json(app.req(Method::GET, "/api/v1/tools", &token).send().await.unwrap()).await;
    for era in [Era::Current, Era::Legacy] {
        let client = connect(&app, &token, Agent::new(era, None), era).await;
        let listed = client.list_all_tools().await.unwrap();
        let names: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "get_secret_keys",
                "request_secrets",
                "request_secrets_task",
                "wait_for_secrets",
                "http_request",
                "check_secret"
            ],
            "{era:?}"
        );
        for (tool, definition) in listed.iter().zip(rest.as_array().unwrap()) {
            assert_eq!(tool.name, definition["name"].as_str().unwrap());
            assert_eq!(tool.description.as_deref(), definition["description"].as_str());
            assert_eq!(Value::Object((*tool.input_schema).clone()), definition["inputSchema"], "{era:?}");
        }
        let _ = client.cancel().await;
    }
}

async fn global_keys_are_listed_as_provided_by_the_server_and_their_values_stay_hidden(engine: Engine) {
    let global = "sk-global-mcp-canary-55e1";
    let app =
        common::spawn_app_with_env(engine, &["--global-keys", "SHARED_LLM_KEY"], &[("SHARED_LLM_KEY", global)]).await;
    let (_, token) = workspace(&app).await;
    let client = connect(&app, &token, Agent::new(Era::Current, None), Era::Current).await;
    let listed = client.call_tool(call("get_secret_keys", json!({}))).await.unwrap();
    let checked = client.call_tool(call("check_secret", json!({"key": "SHARED_LLM_KEY", "value": global}))).await;

    assert_eq!(
        listed.structured_content,
        Some(json!({"keys": [
            {"key": "SHARED_LLM_KEY", "hasValue": true, "global": true},
            {"key": "STORED", "hasValue": true, "global": false},
        ]}))
    );
    assert!(text(&listed).contains("SHARED_LLM_KEY (has a value, provided by the server)"), "{}", text(&listed));
    assert!(!shown(&listed).contains(global));
    let checked = format!("{checked:?}");
    assert!(!checked.contains(global), "{checked}");
}

async fn keys_are_listed_with_flags_and_never_a_value(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = workspace(&app).await;
    for era in [Era::Current, Era::Legacy] {
        let client = connect(&app, &token, Agent::new(era, None), era).await;
        let result = client.call_tool(call("get_secret_keys", json!({}))).await.unwrap();
        assert_eq!(
            result.structured_content,
            Some(json!({"keys": [{"key": "STORED", "hasValue": true, "global": false}]})),
            "{era:?}"
        );
        assert!(text(&result).contains("STORED (has a value)"));
        assert!(!shown(&result).contains(CANARY), "{era:?}");
        let check = client.call_tool(call("check_secret", json!({"key": "STORED", "value": CANARY}))).await.unwrap();
        assert_eq!(check.structured_content.unwrap()["error"]["code"], "forbidden", "check_secret needs secrets:use");
        let _ = client.cancel().await;
        let user = app.token(ws, &[Scope::ToolsCall, Scope::SecretsUse]).await;
        let client = connect(&app, &user, Agent::new(era, None), era).await;
        let checked = client.call_tool(call("check_secret", json!({"key": "STORED", "value": CANARY}))).await.unwrap();
        assert_eq!(checked.structured_content, Some(json!({"matches": true})));
        let sent = client
            .call_tool(call(
                "http_request",
                json!({"method": "GET", "url": "https://example.com/", "headers": {"Authorization": "Bearer {{secrets.STORED}}"}}),
            ))
            .await
            .unwrap();
        assert_eq!(sent.structured_content.unwrap()["error"]["code"], "egress_denied", "no hosts: nowhere");
        let _ = client.cancel().await;
    }
}

/// The answer is kept between calls (and shared by sessions) only while the workspace's keys
/// are unchanged: a write or a delete shows in the next call of the same session, and another
/// workspace's session gets its own keys.
async fn kept_key_lists_follow_writes_and_stay_per_workspace(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = workspace(&app).await;
    let keys = |result: CallToolResult| result.structured_content.unwrap()["keys"].clone();
    let client = connect(&app, &token, Agent::new(Era::Legacy, None), Era::Legacy).await;
    let first = keys(client.call_tool(call("get_secret_keys", json!({}))).await.unwrap());
    assert_eq!(first, json!([{"key": "STORED", "hasValue": true, "global": false}]));
    let again = keys(client.call_tool(call("get_secret_keys", json!({}))).await.unwrap());
    assert_eq!(again, first, "unchanged keys, the same answer");

    let writer = app.writer_token(ws).await;
    assert_eq!(app.create(ws, &writer, "ADDED", "").await.status(), 201);
    let added = client.call_tool(call("get_secret_keys", json!({}))).await.unwrap();
    assert!(text(&added).contains("2 secret key(s)"), "{}", text(&added));
    assert_eq!(
        keys(added),
        json!([
            {"key": "ADDED", "hasValue": false, "global": false},
            {"key": "STORED", "hasValue": true, "global": false}
        ])
    );

    let other = app.workspace("other").await;
    let other_token = app.token(other, &[Scope::ToolsCall]).await;
    assert_eq!(app.create(other, &app.writer_token(other).await, "ELSEWHERE", CANARY).await.status(), 201);
    let elsewhere = connect(&app, &other_token, Agent::new(Era::Legacy, None), Era::Legacy).await;
    let theirs = keys(elsewhere.call_tool(call("get_secret_keys", json!({}))).await.unwrap());
    assert_eq!(theirs, json!([{"key": "ELSEWHERE", "hasValue": true, "global": false}]));

    let listed = json(app.list(ws, &writer).await).await;
    let stored =
        listed.as_array().unwrap().iter().find(|s| s["key"] == "STORED").unwrap()["id"].as_str().unwrap().to_string();
    assert!(app.delete(ws, &writer, &stored).await.status().is_success());
    let after = keys(client.call_tool(call("get_secret_keys", json!({}))).await.unwrap());
    assert_eq!(after, json!([{"key": "ADDED", "hasValue": false, "global": false}]));
    let _ = client.cancel().await;
    let _ = elsewhere.cancel().await;
}

async fn bad_arguments_are_errors_the_model_can_read(engine: Engine) {
    let app = spawn_app(engine).await;
    let (_, token) = workspace(&app).await;
    for era in [Era::Current, Era::Legacy] {
        let client = connect(&app, &token, Agent::new(era, None), era).await;
        let bad_key = client.call_tool(call("request_secrets", json!({"variables": [{"key": "1BAD"}]}))).await.unwrap();
        let unknown_field = client
            .call_tool(call("request_secrets", json!({"variables": [{"key": "K", "value": "x"}]})))
            .await
            .unwrap();
        let too_long = client
            .call_tool(call("wait_for_secrets", json!({"workflowId": Uuid::new_v4(), "timeoutSeconds": 121})))
            .await
            .unwrap();
        let unknown_tool = client.call_tool(call("read_secret", json!({}))).await;

        for refused in [&bad_key, &unknown_field, &too_long] {
            assert_eq!(refused.is_error, Some(true), "{era:?}: {}", shown(refused));
            assert_eq!(refused.structured_content.as_ref().unwrap()["error"]["code"], "bad_request");
        }
        assert!(text(&too_long).contains("at most 120"), "{}", text(&too_long));
        let Err(ServiceError::McpError(error)) = unknown_tool else { panic!("an unknown tool is a protocol error") };
        assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS);
        let _ = client.cancel().await;
    }
}

async fn another_workspace_is_not_found_and_a_revoked_token_is_refused(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = workspace(&app).await;
    let other = app.workspace("other").await;
    let other_token = app.token(other, &[Scope::ToolsCall]).await;
    let client = connect(&app, &other_token, Agent::new(Era::Legacy, None), Era::Legacy).await;
    let own = connect(&app, &token, Agent::new(Era::Current, None), Era::Current).await;
    let asked = own.call_tool(call("request_secrets", json!({"variables": [{"key": "K"}]}))).await.unwrap();
    let run = asked.structured_content.unwrap()["workflowId"].as_str().unwrap().to_string();

    let foreign =
        client.call_tool(call("wait_for_secrets", json!({"workflowId": run, "timeoutSeconds": 0}))).await.unwrap();
    assert_eq!(foreign.structured_content.unwrap()["error"]["code"], "not_found");
    let listed = client.call_tool(call("get_secret_keys", json!({}))).await.unwrap();
    assert_eq!(listed.structured_content, Some(json!({"keys": []})), "the token sees its own workspace only");

    let tokens = loopstack_secrets::server::service::access::all_tokens(&app.state.db, Some(other)).await.unwrap();
    loopstack_secrets::server::service::access::revoke_token(&app.state.db, tokens[0].id, None, &common::test_actor())
        .await
        .unwrap();
    let after = client.call_tool(call("get_secret_keys", json!({}))).await;
    assert!(after.is_err(), "a revoked token is refused on its next call");
    assert_eq!(app.value_of(ws, "K").await, None);
}

async fn http_without_a_tool_token_is_challenged(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let list_only = app.token(ws, &[Scope::SecretsList]).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let post = |token: Option<&str>| {
        let mut request = app.client.post(format!("{}/mcp", app.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.header("accept", "application/json, text/event-stream").send()
    };

    let none = post(None).await.unwrap();
    let forged = post(Some("lss_not-a-token")).await.unwrap();
    let no_scope = post(Some(&list_only)).await.unwrap();

    assert_eq!(none.headers()["www-authenticate"], "Bearer realm=\"loopstack-secrets\"");
    assert!(forged.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    assert!(no_scope.headers()["www-authenticate"].to_str().unwrap().contains("scope=\"tools:call\""));
    assert_eq!(error_code(none, 401).await, "unauthorized");
    assert_eq!(error_code(forged, 401).await, "unauthorized");
    assert_eq!(error_code(no_scope, 403).await, "forbidden");
}

async fn without_elicitation_the_url_comes_back_and_wait_for_secrets_completes(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = workspace(&app).await;
    for era in [Era::Current, Era::Legacy] {
        let agent = Agent::new(era, None);
        let client = connect(&app, &token, agent.clone(), era).await;
        let key = format!("KEY_{}", if era == Era::Current { "NEW" } else { "OLD" });
        let asked = client.call_tool(call("request_secrets", json!({"variables": [{"key": key}]}))).await.unwrap();
        let structured = asked.structured_content.clone().unwrap();
        let run = structured["workflowId"].as_str().unwrap().to_string();
        assert_eq!(structured["status"], "pending");
        assert!(structured["url"].as_str().unwrap().ends_with(&format!("/workspaces/{ws}/runs/{run}")));
        assert!(text(&asked).contains("wait_for_secrets"), "{}", text(&asked));

        let person = Person { base: app.base.clone(), workspace: ws, token: token.clone(), value: CANARY.into() };
        let url = structured["url"].as_str().unwrap().to_string();
        let answering = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            person.answer(&url).await
        });
        let waited =
            client.call_tool(call("wait_for_secrets", json!({"workflowId": run, "timeoutSeconds": 30}))).await.unwrap();
        answering.await.unwrap();

        assert_eq!(
            waited.structured_content,
            Some(json!({"status": "completed", "workflowId": run, "keys": [key]})),
            "{era:?}"
        );
        assert_eq!(text(&waited), "Secrets have been stored securely by the user.");
        assert_eq!(app.value_of(ws, &key).await.as_deref(), Some(CANARY));
        assert!(!shown(&waited).contains(CANARY) && !shown(&asked).contains(CANARY));
        let _ = client.cancel().await;
    }
}

async fn a_long_wait_sends_progress_and_says_pending(engine: Engine) {
    let app = spawn_app(engine).await;
    let (_, token) = workspace(&app).await;
    let agent = Agent::new(Era::Current, None);
    let client = connect(&app, &token, agent.clone(), Era::Current).await;
    let asked = client.call_tool(call("request_secrets", json!({"variables": [{"key": "SLOW"}]}))).await.unwrap();
    let run = asked.structured_content.unwrap()["workflowId"].as_str().unwrap().to_string();
    let mut params = call("wait_for_secrets", json!({"workflowId": run, "timeoutSeconds": 12}));
    let mut meta = RequestMetaObject::default();
    meta.set_progress_token(ProgressToken(NumberOrString::String("wait-1".into())));
    params.meta = Some(meta);

    let waited = client.call_tool(params).await.unwrap();

    assert_eq!(waited.structured_content.as_ref().unwrap()["status"], "pending");
    assert!(text(&waited).contains(&run), "says how to keep waiting: {}", text(&waited));
    let progress = agent.seen.lock().unwrap().progress.clone();
    assert!(!progress.is_empty(), "a progress notification within 15 s of waiting");
    let _ = client.cancel().await;
}

/// `request_secrets_task` takes its parent run among its arguments; the parent hears of the
/// answer, and the reason reaches the person in the client's prompt.
async fn a_task_names_its_parent_and_the_reason_reaches_the_person(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = workspace(&app).await;
    let started = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), &token)
        .json(&json!({"workflow": "secrets_example"}))
        .send()
        .await
        .unwrap();
    let parent = json(started).await["id"].as_str().unwrap().to_string();
    let client = connect(&app, &token, Agent::new(Era::Legacy, None), Era::Legacy).await;

    let asked = client
        .call_tool(call(
            "request_secrets_task",
            json!({"variables": [{"key": "CHILD_KEY"}], "reason": "Deploy the docs", "parent": parent}),
        ))
        .await
        .unwrap();
    let person = Person { base: app.base.clone(), workspace: ws, token: token.clone(), value: "v".into() };
    person.answer(asked.structured_content.as_ref().unwrap()["url"].as_str().unwrap()).await;
    let bad_parent = client
        .call_tool(call("request_secrets_task", json!({"variables": [{"key": "K"}], "parent": "nope"})))
        .await
        .unwrap();

    let parent_run = app.state.workflows.view(ws, parent.parse().unwrap()).await.unwrap();
    assert!(parent_run.documents.iter().any(|d| d.kind == loopstack_secrets::model::DocumentKind::TaskResult));
    assert_eq!(bad_parent.structured_content.unwrap()["error"]["code"], "bad_request");

    let person = Person { base: app.base.clone(), workspace: ws, token: token.clone(), value: "v".into() };
    let agent = Agent::new(Era::Current, Some(person));
    let modern = connect(&app, &token, agent, Era::Current).await;
    let CallToolResponse::InputRequired(asked) = modern
        .call_tool_once(call("request_secrets", json!({"variables": [{"key": "WHY"}], "reason": "Deploy the docs"})))
        .await
        .unwrap()
    else {
        panic!("input required")
    };
    let request = serde_json::to_value(&asked.input_requests.unwrap()["secrets"]).unwrap();
    assert_eq!(
        request["params"]["message"],
        "Enter WHY in the secure form of loopstack-secrets. Reason: Deploy the docs"
    );
}

/// A wait holds one of the token's open-stream slots, as the REST long-poll does.
async fn waits_count_against_the_tokens_stream_limit(engine: Engine) {
    let app = spawn_app_with(engine, &["--max-streams", "1"]).await;
    let (_, token) = workspace(&app).await;
    let client = connect(&app, &token, Agent::new(Era::Current, None), Era::Current).await;
    let asked = client.call_tool(call("request_secrets", json!({"variables": [{"key": "K"}]}))).await.unwrap();
    let run = asked.structured_content.unwrap()["workflowId"].as_str().unwrap().to_string();
    let wait = call("wait_for_secrets", json!({"workflowId": run, "timeoutSeconds": 3}));

    let (first, second) = tokio::join!(client.call_tool(wait.clone()), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.call_tool(wait.clone()).await
    });

    assert_eq!(first.unwrap().structured_content.unwrap()["status"], "pending");
    let second = second.unwrap();
    assert_eq!(second.structured_content.unwrap()["error"]["code"], "rate_limited");
}

async fn url_elicitation_in_2026_07_28_completes_with_the_stored_message(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = workspace(&app).await;
    let person = Person { base: app.base.clone(), workspace: ws, token: token.clone(), value: CANARY.into() };
    let agent = Agent::new(Era::Current, Some(person));
    let client = connect(&app, &token, agent.clone(), Era::Current).await;

    let done =
        client.call_tool(call("request_secrets", json!({"variables": [{"key": "GITHUB_TOKEN"}]}))).await.unwrap();

    let structured = done.structured_content.clone().unwrap();
    assert_eq!(structured["status"], "completed", "{}", shown(&done));
    assert_eq!(structured["keys"], json!(["GITHUB_TOKEN"]));
    assert_eq!(text(&done), "Secrets have been stored securely by the user.");
    let elicited = agent.seen.lock().unwrap().elicited.clone();
    assert_eq!(elicited.len(), 1);
    assert!(elicited[0].ends_with(&format!("/workspaces/{ws}/runs/{}", structured["workflowId"].as_str().unwrap())));
    assert_eq!(app.value_of(ws, "GITHUB_TOKEN").await.as_deref(), Some(CANARY));
    assert!(!shown(&done).contains(CANARY));
}

async fn a_request_state_is_accepted_once_and_only_for_its_call(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = workspace(&app).await;
    let client = connect(&app, &token, Agent::new(Era::Current, None), Era::Current).await;
    let second_token = app.token(ws, &[Scope::ToolsCall]).await;
    let other_token_client = connect(&app, &second_token, Agent::new(Era::Current, None), Era::Current).await;
    // A client that declares URL elicitation but drives the rounds itself.
    let person = Person { base: app.base.clone(), workspace: ws, token: token.clone(), value: "v".into() };
    let manual = connect(&app, &token, Agent::new(Era::Current, Some(person.clone())), Era::Current).await;
    let params = call("request_secrets", json!({"variables": [{"key": "ONCE"}]}));

    let CallToolResponse::InputRequired(first) = manual.call_tool_once(params.clone()).await.unwrap() else {
        panic!("a client that opens links is asked to open one")
    };
    let state = first.request_state.clone().unwrap();
    let request = serde_json::to_value(&first.input_requests.as_ref().unwrap()["secrets"]).unwrap();
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["mode"], "url");
    person.answer(request["params"]["url"].as_str().unwrap()).await;
    let accepted = json!({"secrets": {"action": "accept"}});
    let retry = |state: String, params: CallToolRequestParams| {
        let mut params = params;
        params.request_state = Some(state);
        params.input_responses = Some(serde_json::from_value(accepted.clone()).unwrap());
        params
    };

    let other_call = manual
        .call_tool_once(retry(state.clone(), call("request_secrets", json!({"variables": [{"key": "X"}]}))))
        .await;
    let other_caller = other_token_client.call_tool_once(retry(state.clone(), params.clone())).await;
    let tampered = manual.call_tool_once(retry(format!("{state}A"), params.clone())).await;
    // 2026-07-28 is stateless: the same token may retry from another connection, once.
    let CallToolResponse::Complete(done) = client.call_tool_once(retry(state.clone(), params.clone())).await.unwrap()
    else {
        panic!("the retry completes")
    };
    let replayed = manual.call_tool_once(retry(state.clone(), params.clone())).await;

    assert_eq!(done.structured_content.as_ref().unwrap()["status"], "completed");
    assert_eq!(done.structured_content.as_ref().unwrap()["keys"], json!(["ONCE"]));
    for (what, refused) in
        [("another call", other_call), ("another token", other_caller), ("tampered", tampered), ("replayed", replayed)]
    {
        let Err(ServiceError::McpError(error)) = refused else { panic!("{what}: refused") };
        assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{what}: {}", error.message);
    }
}

async fn url_elicitation_in_2025_11_25_errors_then_notifies_then_completes(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = workspace(&app).await;
    let person = Person { base: app.base.clone(), workspace: ws, token: token.clone(), value: CANARY.into() };
    let agent = Agent::new(Era::Legacy, Some(person.clone()));
    let client = connect(&app, &token, agent.clone(), Era::Legacy).await;
    let params = call("request_secrets", json!({"variables": [{"key": "LEGACY_KEY"}]}));

    let Err(ServiceError::McpError(required)) = client.call_tool(params.clone()).await else {
        panic!("a 2025-11-25 client that opens links gets the URL-elicitation-required error")
    };
    assert_eq!(required.code.0, -32042);
    let elicitation = required.data.as_ref().unwrap()["elicitations"][0].clone();
    assert_eq!(elicitation["mode"], "url");
    let id = elicitation["elicitationId"].as_str().unwrap().to_string();
    let again = client.call_tool(params.clone()).await;
    let Err(ServiceError::McpError(still)) = again else { panic!("still unanswered") };
    assert_eq!(still.data.unwrap()["elicitations"][0]["elicitationId"], json!(id), "the same request, not a new one");

    person.answer(elicitation["url"].as_str().unwrap()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !agent.seen.lock().unwrap().completed.contains(&id) {
        assert!(tokio::time::Instant::now() < deadline, "notifications/elicitation/complete arrives");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done = client.call_tool(params.clone()).await.unwrap();

    assert_eq!(text(&done), "Secrets have been stored securely by the user.");
    assert_eq!(done.structured_content.as_ref().unwrap()["keys"], json!(["LEGACY_KEY"]));
    assert_eq!(app.value_of(ws, "LEGACY_KEY").await.as_deref(), Some(CANARY));
    let fresh = client.call_tool(params).await;
    assert!(matches!(fresh, Err(ServiceError::McpError(ref e)) if e.code.0 == -32042), "a new call is a new request");
}

/// The elicitation completes across two instances sharing one PostgreSQL database: the
/// 2025-11-25 session on A hears of an answer given on B, and a 2026-07-28 retry sent to B
/// is accepted once, whichever instance sealed it.
#[tokio::test]
async fn elicitation_completes_across_two_instances_on_postgres() {
    let Some(engine) = common::postgres() else { return };
    let a = spawn_app(engine).await;
    let b = serve(tempfile::tempdir().unwrap(), a.database_url.clone(), a.master_key.clone(), &[]).await;
    let (ws, token) = workspace(&a).await;
    let on_b = Person { base: b.base.clone(), workspace: ws, token: token.clone(), value: "v".into() };

    let legacy = Agent::new(Era::Legacy, Some(on_b.clone()));
    let client = connect(&a, &token, legacy.clone(), Era::Legacy).await;
    let params = call("request_secrets", json!({"variables": [{"key": "SHARED"}]}));
    let Err(ServiceError::McpError(required)) = client.call_tool(params).await else { panic!("-32042") };
    let elicitation = required.data.unwrap()["elicitations"][0].clone();
    on_b.answer(elicitation["url"].as_str().unwrap()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let id = elicitation["elicitationId"].as_str().unwrap().to_string();
    while !legacy.seen.lock().unwrap().completed.contains(&id) {
        assert!(tokio::time::Instant::now() < deadline, "A tells its client about B's answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let modern_a = connect(&a, &token, Agent::new(Era::Current, Some(on_b.clone())), Era::Current).await;
    let modern_b = connect_to(&b.base, &token, Agent::new(Era::Current, Some(on_b.clone())), Era::Current).await;
    let params = call("request_secrets", json!({"variables": [{"key": "SHARED_TOO"}]}));
    let CallToolResponse::InputRequired(first) = modern_a.call_tool_once(params.clone()).await.unwrap() else {
        panic!()
    };
    let url =
        serde_json::to_value(&first.input_requests.as_ref().unwrap()["secrets"]).unwrap()["params"]["url"].clone();
    on_b.answer(url.as_str().unwrap()).await;
    let mut retry = params.clone();
    retry.request_state = first.request_state.clone();
    retry.input_responses = Some(serde_json::from_value(json!({"secrets": {"action": "accept"}})).unwrap());
    let on_b_result = modern_b.call_tool_once(retry.clone()).await.unwrap();
    let replay_on_a = modern_a.call_tool_once(retry).await;
    let CallToolResponse::Complete(done) = on_b_result else { panic!("B accepts A's requestState") };
    assert_eq!(done.structured_content.unwrap()["status"], "completed");
    assert!(matches!(replay_on_a, Err(ServiceError::McpError(_))), "and A refuses it afterwards");
}

/// `loopstack-secrets mcp --workspace ID` speaks both versions over stdio, with nothing but
/// protocol messages on stdout.
async fn stdio_speaks_both_versions(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, _) = workspace(&app).await;
    for era in [Era::Current, Era::Legacy] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_loopstack-secrets"));
        command
            .args(["mcp", "--workspace", &ws.to_string()])
            .env("DATABASE_URL", &app.database_url)
            .env("LOOPSTACK_SECRETS_DATA_DIR", app.dir.path())
            .env("LOOPSTACK_SECRETS_MASTER_KEY", &app.master_key)
            .env("RUST_LOG", "debug");
        let (transport, stderr) =
            rmcp::transport::TokioChildProcess::builder(command).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let logs = tokio::spawn(async move {
            let mut text = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut stderr.unwrap(), &mut text).await.unwrap();
            text
        });
        let agent = Agent::new(era, None);
        let client = match era {
            Era::Legacy => agent.serve(transport).await.unwrap(),
            Era::Current => agent
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
                .unwrap(),
        };
        let keys = client.call_tool(call("get_secret_keys", json!({}))).await.unwrap();
        let asked = client.call_tool(call("request_secrets", json!({"variables": [{"key": "LOCAL"}]}))).await.unwrap();

        assert_eq!(
            keys.structured_content,
            Some(json!({"keys": [{"key": "STORED", "hasValue": true, "global": false}]})),
            "{era:?}"
        );
        assert_eq!(asked.structured_content.as_ref().unwrap()["status"], "pending");
        let run: Uuid = asked.structured_content.unwrap()["workflowId"].as_str().unwrap().parse().unwrap();
        let shown = app.state.workflows.view(ws, run).await.unwrap();
        assert!(shown.status.is_open(), "the request waits for the person in the Studio");
        let _ = client.cancel().await;
        let logs = logs.await.unwrap();
        assert!(logs.contains("tools/call") || logs.contains("CallTool"), "logs go to stderr: {logs:.300}");
        assert!(!logs.contains(CANARY));
    }
}

both_engines!(
    tools_are_the_rest_definitions_on_both_versions,
    keys_are_listed_with_flags_and_never_a_value,
    kept_key_lists_follow_writes_and_stay_per_workspace,
    global_keys_are_listed_as_provided_by_the_server_and_their_values_stay_hidden,
    bad_arguments_are_errors_the_model_can_read,
    another_workspace_is_not_found_and_a_revoked_token_is_refused,
    http_without_a_tool_token_is_challenged,
    without_elicitation_the_url_comes_back_and_wait_for_secrets_completes,
    a_long_wait_sends_progress_and_says_pending,
    waits_count_against_the_tokens_stream_limit,
    a_task_names_its_parent_and_the_reason_reaches_the_person,
    url_elicitation_in_2026_07_28_completes_with_the_stored_message,
    a_request_state_is_accepted_once_and_only_for_its_call,
    url_elicitation_in_2025_11_25_errors_then_notifies_then_completes,
    stdio_speaks_both_versions,
);
