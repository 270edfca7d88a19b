//! Agent tools and the secret-request lifecycle through the HTTP API, on both engines: the
//! quick start, request tools, sub-workflow callbacks, races, restarts, expiry, events and
//! two instances sharing one PostgreSQL database.

mod common;

use std::time::Duration;

use common::{error_code, json, serve, spawn_app, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const ALL: [Scope; 7] = Scope::ALL;

async fn agent(app: &TestApp) -> (Uuid, String) {
    let ws = app.workspace("main").await;
    (ws, app.token(ws, &ALL).await)
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.req(Method::POST, path, token).json(&body).send().await.unwrap()
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.req(Method::GET, path, token).send().await.unwrap()
}

async fn start(app: &TestApp, ws: Uuid, token: &str, body: Value) -> Value {
    let response = post(app, token, &format!("/api/v1/workspaces/{ws}/workflows"), body).await;
    assert_eq!(response.status(), 201);
    json(response).await
}

async fn submit(app: &TestApp, ws: Uuid, token: &str, run: &str, variables: Value) -> reqwest::Response {
    post(
        app,
        token,
        &format!("/api/v1/workspaces/{ws}/workflows/{run}/transitions/secretsSubmitted"),
        json!({ "variables": variables }),
    )
    .await
}

async fn tool(app: &TestApp, ws: Uuid, token: &str, name: &str, body: Value) -> reqwest::Response {
    post(app, token, &format!("/api/v1/workspaces/{ws}/tools/{name}"), body).await
}

fn id_of(run: &Value) -> String {
    run["id"].as_str().unwrap().to_string()
}

async fn the_quick_start_flow_ends_with_stored_and_missing(engine: Engine) {
    // Arrange
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;
    let canary = format!("canary{}", Uuid::new_v4().simple());

    // Act
    let run = start(&app, ws, &token, json!({"workflow": "secrets_example"})).await;
    let submitted = submit(&app, ws, &token, &id_of(&run), json!([{"key": "EXAMPLE_API_KEY", "value": canary}])).await;

    // Assert
    assert_eq!(run["status"], "waiting");
    assert_eq!(run["place"], "requesting_secrets");
    assert_eq!(run["transitions"], json!(["secretsSubmitted"]));
    assert_eq!(run["documents"][0]["kind"], "SecretRequestDocument");
    assert_eq!(
        run["documents"][0]["content"],
        json!({"variables": [{"key": "EXAMPLE_API_KEY"}, {"key": "EXAMPLE_SECRET"}]})
    );
    assert_eq!(submitted.status(), 200);
    let text = submitted.text().await.unwrap();
    assert!(!text.contains(&canary));
    let done: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["place"], "end");
    let markdown = done["documents"].as_array().unwrap().last().unwrap();
    assert_eq!(markdown["kind"], "MarkdownDocument");
    let markdown = markdown["content"]["markdown"].as_str().unwrap();
    assert!(markdown.contains("| `EXAMPLE_API_KEY` | Stored |"), "{markdown}");
    assert!(markdown.contains("| `EXAMPLE_SECRET` | Missing |"), "{markdown}");
    assert_eq!(app.value_of(ws, "EXAMPLE_API_KEY").await.as_deref(), Some(canary.as_str()));

    // The Studio's run page gets its documents ready to show: the markdown already rendered by
    // the server (the browser has no markdown parser), the request as its keys, times formatted.
    let reader = app.user("reader", "a-reader-password").await;
    app.add_member(ws, reader, "viewer").await;
    let cookie = TestApp::session_cookie(&app.sign_in("reader", "a-reader-password").await).expect("a session");
    let page = app
        .client
        .post(format!("{}/studio/run", app.base))
        .header("cookie", &cookie)
        .header("origin", &app.base)
        .form(&[("workspace_id", ws.to_string()), ("run_id", id_of(&run))])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = json(page).await;
    let documents = page["documents"].as_array().unwrap();
    assert_eq!(documents.len(), done["documents"].as_array().unwrap().len());
    let request = &documents[0]["request"];
    assert_eq!(request["open"], false, "the run is over: its request is no longer a form");
    assert_eq!(request["request"]["variables"][0]["key"], "EXAMPLE_API_KEY");
    let html = documents.last().unwrap()["markdown"]["html"].as_str().unwrap();
    assert!(html.contains("<table>") && html.contains("<td><code>EXAMPLE_API_KEY</code></td>"), "{html}");
    assert_eq!(page["status"], "completed");
    assert!(page["requestedAt"]["text"].as_str().unwrap().ends_with(" UTC"), "{}", page["requestedAt"]);
}

async fn request_secrets_answers_at_once_and_the_long_poll_returns_on_submission(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;

    let definitions = json(get(&app, &token, "/api/v1/tools").await).await;
    let called =
        tool(&app, ws, &token, "request_secrets", json!({"args": {"variables": [{"key": "OPENAI_API_KEY"}]}})).await;
    assert_eq!(called.status(), 200);
    let called = json(called).await;
    let run_id = called["pending"]["workflowId"].as_str().unwrap().to_string();
    let waiting = {
        let (client, url, token) = (
            app.client.clone(),
            format!("{}/api/v1/workspaces/{ws}/workflows/{run_id}/wait?timeout=60", app.base),
            token.clone(),
        );
        tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let submitted = submit(&app, ws, &token, &run_id, json!([{"key": "OPENAI_API_KEY", "value": "sk-test"}])).await;
    let woke = waiting.await.unwrap();
    let keys = json(tool(&app, ws, &token, "get_secret_keys", json!({})).await).await;

    let names: Vec<&str> = definitions.as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "get_secret_keys",
            "request_secrets",
            "request_secrets_task",
            "wait_for_secrets",
            "http_request",
            "check_secret"
        ]
    );
    for definition in &definitions.as_array().unwrap()[1..3] {
        assert!(definition["description"].as_str().unwrap().contains("must be the only tool call"));
        assert_eq!(definition["inputSchema"]["required"], json!(["variables"]));
    }
    assert_eq!(called["data"], json!({"variables": [{"key": "OPENAI_API_KEY"}]}));
    assert_eq!(submitted.status(), 200);
    assert_eq!(woke.headers()["x-wait-outcome"], "changed");
    let woke = json(woke).await;
    assert_eq!(woke["status"], "completed");
    assert_eq!(woke["result"]["success"], true);
    assert_eq!(woke["result"]["message"], "Secrets have been stored securely by the user.");
    assert_eq!(keys["data"], json!([{"key": "OPENAI_API_KEY", "hasValue": true, "global": false}]));
}

async fn bad_tool_calls_are_400_with_the_reason_and_start_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;

    let cases = [
        ("request_secrets", json!({"args": {"variables": [{"key": "A"}], "extra": 1}})),
        ("request_secrets", json!({"args": {}})),
        ("request_secrets", json!({"args": {"variables": []}})),
        ("request_secrets", json!({"args": {"variables": [{"key": "1BAD"}]}})),
        ("request_secrets", json!({"args": {"variables": [{"key": "A", "value": "x"}]}})),
        ("request_secrets", json!({"args": {"variables": [{"key": "A"}, {"key": "A"}]}})),
        ("request_secrets", json!({"variables": [{"key": "A"}], "parent": Uuid::new_v4()})),
        ("get_secret_keys", json!({"args": {"unexpected": true}})),
        ("no_such_tool", json!({})),
    ];
    for (name, body) in cases {
        let response = tool(&app, ws, &token, name, body.clone()).await;
        assert_eq!(error_code(response, 400).await, "bad_request", "{name} {body}");
    }
    let runs = json(get(&app, &token, &format!("/api/v1/workspaces/{ws}/workflows")).await).await;
    assert!(runs.as_array().unwrap().is_empty(), "a refused call started a run: {runs}");
}

async fn request_secrets_task_calls_its_parent_back(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;
    let parent = start(&app, ws, &token, json!({"workflow": "secrets_example"})).await;

    let called = json(
        tool(
            &app,
            ws,
            &token,
            "request_secrets_task",
            json!({"args": {"variables": [{"key": "GITHUB_TOKEN"}]}, "parent": parent["id"]}),
        )
        .await,
    )
    .await;
    let child = called["pending"]["workflowId"].as_str().unwrap().to_string();
    let done = json(submit(&app, ws, &token, &child, json!([{"key": "GITHUB_TOKEN", "value": "ghp_x"}])).await).await;
    let parent_now =
        json(get(&app, &token, &format!("/api/v1/workspaces/{ws}/workflows/{}", id_of(&parent))).await).await;

    assert_eq!(called["data"], json!({"workflowId": child}));
    assert_eq!(done["status"], "completed");
    assert_eq!(done["parentId"], parent["id"]);
    let note = parent_now["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "TaskResult")
        .expect("a callback document on the parent");
    assert_eq!(note["content"]["message"], "Secrets have been stored securely by the user.");
    assert_eq!(note["content"]["workflowId"], json!(child));
}

async fn racing_submissions_store_once_and_the_loser_gets_409(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;
    let run = id_of(
        &start(&app, ws, &token, json!({"workflow": "secrets_request", "args": {"variables": [{"key": "K"}]}})).await,
    );

    let (a, b) = tokio::join!(
        submit(&app, ws, &token, &run, json!([{"key": "K", "value": "from-a"}])),
        submit(&app, ws, &token, &run, json!([{"key": "K", "value": "from-b"}])),
    );

    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let winner = if a.status() == 200 { "from-a" } else { "from-b" };
    assert_eq!(app.value_of(ws, "K").await.as_deref(), Some(winner));
}

async fn bad_submissions_store_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;
    let body = json!({"workflow": "secrets_request", "args": {"variables": [{"key": "A"}, {"key": "B"}]}});
    let run = id_of(&start(&app, ws, &token, body.clone()).await);

    let not_requested =
        submit(&app, ws, &token, &run, json!([{"key": "A", "value": "a"}, {"key": "C", "value": "c"}])).await;
    let too_big =
        submit(&app, ws, &token, &run, json!([{"key": "A", "value": "a"}, {"key": "B", "value": "b".repeat(70_000)}]))
            .await;
    let extra_field = submit(&app, ws, &token, &run, json!([{"key": "A", "value": "a", "note": 1}])).await;
    let empty = submit(&app, ws, &token, &run, json!([])).await;

    assert_eq!(error_code(not_requested, 400).await, "bad_request");
    assert_eq!(error_code(too_big, 413).await, "payload_too_large");
    assert_eq!(error_code(extra_field, 400).await, "bad_request");
    assert_eq!(error_code(empty, 400).await, "bad_request");
    assert!(json(app.list(ws, &token).await).await.as_array().unwrap().is_empty(), "nothing is stored");
    let still = json(get(&app, &token, &format!("/api/v1/workspaces/{ws}/workflows/{run}")).await).await;
    assert_eq!(still["status"], "waiting");

    let cancelled =
        json(post(&app, &token, &format!("/api/v1/workspaces/{ws}/workflows/{run}/cancel"), json!({})).await).await;
    assert_eq!(cancelled["status"], "cancelled");
    let after_cancel = submit(&app, ws, &token, &run, json!([{"key": "A", "value": "a"}])).await;
    assert_eq!(error_code(after_cancel, 409).await, "conflict");
    let done = id_of(&start(&app, ws, &token, body).await);
    assert_eq!(submit(&app, ws, &token, &done, json!([{"key": "A", "value": "a"}])).await.status(), 200);
    assert_eq!(
        error_code(submit(&app, ws, &token, &done, json!([{"key": "A", "value": "a2"}])).await, 409).await,
        "conflict"
    );
    let pending = json(get(&app, &token, &format!("/api/v1/workspaces/{ws}/workflows?status=waiting")).await).await;
    assert!(pending.as_array().unwrap().is_empty(), "{pending}");
}

async fn a_waiting_run_survives_a_restart(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;
    let run = id_of(&start(&app, ws, &token, json!({"workflow": "secrets_example"})).await);
    let (dir, url, key) = app.stop().await;

    let app = serve(dir, url, key, &[]).await;
    let done = submit(&app, ws, &token, &run, json!([{"key": "EXAMPLE_SECRET", "value": "s"}])).await;

    assert_eq!(done.status(), 200);
    assert_eq!(json(done).await["status"], "completed");
}

async fn an_expired_request_stops_waiting_and_says_so(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;
    let run = id_of(
        &start(
            &app,
            ws,
            &token,
            json!({"workflow": "secrets_request", "args": {"variables": [{"key": "K"}]}, "expiresInSeconds": 1}),
        )
        .await,
    );

    let woke = get(&app, &token, &format!("/api/v1/workspaces/{ws}/workflows/{run}/wait?timeout=30")).await;

    assert_eq!(woke.headers()["x-wait-outcome"], "changed");
    let woke = json(woke).await;
    assert_eq!(woke["status"], "failed");
    assert_eq!(woke["result"]["expired"], true);
    assert_eq!(
        error_code(submit(&app, ws, &token, &run, json!([{"key": "K", "value": "v"}])).await, 409).await,
        "conflict"
    );
}

async fn workflows_need_their_scope_and_stay_in_their_workspace(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;
    let other = app.workspace("other").await;
    let other_token = app.token(other, &ALL).await;
    let list_only = app.token(ws, &[Scope::SecretsList]).await;
    let run = id_of(&start(&app, ws, &token, json!({"workflow": "secrets_example"})).await);

    let forbidden =
        post(&app, &list_only, &format!("/api/v1/workspaces/{ws}/workflows"), json!({"workflow": "secrets_example"}))
            .await;
    let tool_forbidden = tool(&app, ws, &list_only, "get_secret_keys", json!({})).await;
    let foreign_read = get(&app, &other_token, &format!("/api/v1/workspaces/{ws}/workflows/{run}")).await;
    let foreign_path = get(&app, &other_token, &format!("/api/v1/workspaces/{other}/workflows/{run}")).await;
    let foreign_submit =
        submit(&app, other, &other_token, &run, json!([{"key": "EXAMPLE_SECRET", "value": "x"}])).await;

    assert_eq!(error_code(forbidden, 403).await, "forbidden");
    assert_eq!(error_code(tool_forbidden, 403).await, "forbidden");
    assert_eq!(error_code(foreign_read, 404).await, "not_found");
    assert_eq!(error_code(foreign_path, 404).await, "not_found");
    assert_eq!(error_code(foreign_submit, 404).await, "not_found");
    assert_eq!(
        error_code(app.client.get(format!("{}/api/v1/tools", app.base)).send().await.unwrap(), 401).await,
        "unauthorized"
    );
}

/// Reads server-sent events until `until` matches one, or fails after 30 s.
async fn read_events(response: reqwest::Response, until: impl Fn(&Value) -> bool) -> (Vec<Value>, String) {
    let mut response = response;
    let mut raw = String::new();
    let mut events = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            raw.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = raw.find("\n\n") {
                let block: String = raw.drain(..end + 2).collect();
                for line in block.lines() {
                    if let Some(data) = line.strip_prefix("data: ") {
                        let event: Value = serde_json::from_str(data).unwrap();
                        let done = until(&event);
                        events.push(event);
                        if done {
                            return true;
                        }
                    }
                }
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "the expected event never came: {events:?}");
    let text = events.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    (events, text)
}

async fn events_carry_ids_and_keys_but_never_values(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;
    let canary = format!("canary{}", Uuid::new_v4().simple());
    let stream = get(&app, &token, &format!("/api/v1/workspaces/{ws}/events")).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    let run = id_of(
        &start(&app, ws, &token, json!({"workflow": "secrets_request", "args": {"variables": [{"key": "K"}]}})).await,
    );
    submit(&app, ws, &token, &run, json!([{"key": "K", "value": canary}])).await;
    let (events, text) = read_events(stream, |e| e["type"] == "workflow.updated" && e["status"] == "completed").await;

    assert!(events.iter().any(|e| e["type"] == "secret.upserted" && e["key"] == "K"));
    assert!(!text.contains(&canary));
    let run_view = get(&app, &token, &format!("/api/v1/workspaces/{ws}/workflows/{run}")).await.text().await.unwrap();
    assert!(!run_view.contains(&canary), "a value reached the run, its documents or its result");
    let history: Vec<String> = loopstack_secrets::on_pool!(&app.state.db, pool => sqlx::query_scalar("SELECT payload FROM workflow_transitions").fetch_all(pool).await.unwrap());
    assert!(history.iter().all(|p| !p.contains(&canary)), "a value reached the transition history");
    assert!(history.iter().any(|p| p.contains("\"K\"")), "the history keeps the keys");
}

/// `wait_for_secrets` on the REST tool API: completed with the keys once the person answers,
/// pending (with `pending`) when the time is up; a task's parent may ride in its arguments.
async fn wait_for_secrets_reports_the_answer_over_rest(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, token) = agent(&app).await;
    let parent = id_of(&start(&app, ws, &token, json!({"workflow": "secrets_example"})).await);
    let called = json(
        tool(&app, ws, &token, "request_secrets_task", json!({"variables": [{"key": "K"}], "parent": parent})).await,
    )
    .await;
    let run = called["pending"]["workflowId"].as_str().unwrap().to_string();

    let early =
        json(tool(&app, ws, &token, "wait_for_secrets", json!({"workflowId": run, "timeoutSeconds": 1})).await).await;
    let (waited, submitted) = tokio::join!(
        tool(&app, ws, &token, "wait_for_secrets", json!({"args": {"workflowId": run, "timeoutSeconds": 30}})),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            submit(&app, ws, &token, &run, json!([{"key": "K", "value": "v"}])).await
        }
    );
    let too_long = tool(&app, ws, &token, "wait_for_secrets", json!({"workflowId": run, "timeoutSeconds": 121})).await;

    assert_eq!(early["data"], json!({"status": "pending", "workflowId": run}));
    assert_eq!(early["pending"]["workflowId"], json!(run));
    assert_eq!(submitted.status(), 200);
    let waited = json(waited).await;
    assert_eq!(waited["data"], json!({"status": "completed", "workflowId": run, "keys": ["K"]}));
    assert!(waited.get("pending").is_none());
    assert_eq!(error_code(too_long, 400).await, "bad_request");
    let parent_now = json(get(&app, &token, &format!("/api/v1/workspaces/{ws}/workflows/{parent}")).await).await;
    assert!(parent_now["documents"].as_array().unwrap().iter().any(|d| d["kind"] == "TaskResult"));
}

both_engines!(
    wait_for_secrets_reports_the_answer_over_rest,
    the_quick_start_flow_ends_with_stored_and_missing,
    request_secrets_answers_at_once_and_the_long_poll_returns_on_submission,
    bad_tool_calls_are_400_with_the_reason_and_start_nothing,
    request_secrets_task_calls_its_parent_back,
    racing_submissions_store_once_and_the_loser_gets_409,
    bad_submissions_store_nothing,
    a_waiting_run_survives_a_restart,
    an_expired_request_stops_waiting_and_says_so,
    workflows_need_their_scope_and_stay_in_their_workspace,
    events_carry_ids_and_keys_but_never_values,
);

/// Two instances on one PostgreSQL database behave as one: a submission on B wakes a
/// long-poll and an event stream held by A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_wake_each_other() {
    let Some(engine) = common::postgres() else { return };
    let a = spawn_app(engine).await;
    let b = serve(tempfile::tempdir().unwrap(), a.database_url.clone(), a.master_key.clone(), &[]).await;
    let (ws, token) = agent(&a).await;
    let run = id_of(
        &start(&a, ws, &token, json!({"workflow": "secrets_request", "args": {"variables": [{"key": "K"}]}})).await,
    );
    let stream = get(&a, &token, &format!("/api/v1/workspaces/{ws}/events")).await;
    let waiting = {
        let (client, url, token) = (
            a.client.clone(),
            format!("{}/api/v1/workspaces/{ws}/workflows/{run}/wait?timeout=60", a.base),
            token.clone(),
        );
        tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let submitted = submit(&b, ws, &token, &run, json!([{"key": "K", "value": "v"}])).await;
    let woke = waiting.await.unwrap();
    // Until the run's completion: the event of its start may come first (events are published
    // after their commit, through the database, so it can reach a stream opened after it).
    let completed =
        |e: &Value| e["type"] == "workflow.updated" && e["workflowId"] == json!(run) && e["status"] == "completed";
    let (events, _) = read_events(stream, completed).await;

    assert_eq!(submitted.status(), 200);
    assert_eq!(woke.headers()["x-wait-outcome"], "changed", "the long-poll on A was woken by B's submission");
    assert_eq!(json(woke).await["status"], "completed");
    assert!(events.iter().any(|e| e["type"] == "secret.upserted"), "{events:?}");
}
