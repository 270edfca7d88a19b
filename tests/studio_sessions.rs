//! Studio sign-in, sessions and the server-rendered pages, on both engines.

mod common;

use common::{error_code, json, spawn_app, Engine, TestApp};

const PASSWORD: &str = "correct horse battery";

async fn member(app: &TestApp, name: &str, ws: uuid::Uuid, role: &str) -> String {
    let user = app.user(name, PASSWORD).await;
    app.add_member(ws, user, role).await;
    let response = app.sign_in(name, PASSWORD).await;
    TestApp::session_cookie(&response).expect("a session cookie")
}

async fn get_page(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}{path}", app.base)).header("accept", "text/html");
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

async fn sign_in_sets_a_strict_http_only_cookie_with_a_fresh_session_each_time(engine: Engine) {
    let app = spawn_app(engine).await;
    app.user("alice", PASSWORD).await;

    let first = app.sign_in("alice", PASSWORD).await;
    let second = app.sign_in("ALICE", PASSWORD).await;

    assert!(first.status().is_redirection(), "a form sign-in redirects, got {}", first.status());
    assert_eq!(first.headers()["location"], "/workspaces");
    let raw = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(raw.contains("HttpOnly") && raw.contains("SameSite=Strict") && raw.contains("Path=/"), "{raw}");
    assert!(!raw.contains("Secure"), "no Secure flag over plain HTTP");
    let (c1, c2) = (TestApp::session_cookie(&first).unwrap(), TestApp::session_cookie(&second).unwrap());
    assert_ne!(c1, c2, "every sign-in starts a new session");
}

async fn the_cookie_is_secure_behind_tls(engine: Engine) {
    let app = spawn_app(engine).await;
    app.user("alice", PASSWORD).await;

    let response = app
        .client
        .post(format!("{}/studio/sign_in", app.base))
        .header("origin", &app.base)
        .header("x-forwarded-proto", "https")
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();

    let raw = response.headers()["set-cookie"].to_str().unwrap();
    assert!(raw.contains("Secure"), "{raw}");
}

async fn a_wrong_password_and_an_unknown_user_get_the_same_answer(engine: Engine) {
    let app = spawn_app(engine).await;
    app.user("alice", PASSWORD).await;

    let wrong = app
        .client
        .post(format!("{}/studio/sign_in", app.base))
        .header("origin", &app.base)
        .form(&[("username", "alice"), ("password", "nope-nope")])
        .send()
        .await
        .unwrap();
    let unknown = app
        .client
        .post(format!("{}/studio/sign_in", app.base))
        .header("origin", &app.base)
        .form(&[("username", "mallory"), ("password", "nope-nope")])
        .send()
        .await
        .unwrap();

    assert_eq!(wrong.status(), unknown.status());
    assert!(TestApp::session_cookie(&wrong).is_none());
    let (a, b) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(a, b);
    assert!(a.contains("Invalid username or password"), "{a}");
}

async fn sign_in_is_rate_limited_per_username(engine: Engine) {
    let app = spawn_app(engine).await;
    app.user("alice", PASSWORD).await;
    for _ in 0..10 {
        app.sign_in("alice", "wrong-password").await;
    }

    let blocked = app.sign_in("alice", PASSWORD).await;

    assert!(TestApp::session_cookie(&blocked).is_none(), "even the right password waits out the limit");
    assert!(blocked.text().await.unwrap().contains("rate_limited"));
}

async fn sign_out_ends_the_session(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let cookie = member(&app, "alice", ws, "owner").await;
    assert_eq!(get_page(&app, "/workspaces", Some(&cookie)).await.status(), 200);

    let out = studio_post(&app, &cookie, "sign_out", &[]).await;

    assert!(out.status().is_redirection() || out.status().is_success(), "{}", out.status());
    let after = get_page(&app, "/workspaces", Some(&cookie)).await;
    assert_eq!(after.status(), 302);
    assert_eq!(after.headers()["location"], "/sign-in");
}

async fn a_session_uses_the_rest_api_with_its_role_and_only_in_its_workspaces(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, other) = (app.workspace("mine").await, app.workspace("theirs").await);
    let viewer = member(&app, "vera", ws, "viewer").await;
    let editor = member(&app, "eddie", ws, "editor").await;
    let url = format!("{}/api/v1/workspaces/{ws}/secrets", app.base);
    let body = serde_json::json!({"key": "K", "value": "v"});

    let viewer_lists = app.client.get(&url).header("cookie", &viewer).send().await.unwrap();
    let viewer_writes =
        app.client.post(&url).header("cookie", &viewer).header("origin", &app.base).json(&body).send().await.unwrap();
    let editor_writes =
        app.client.post(&url).header("cookie", &editor).header("origin", &app.base).json(&body).send().await.unwrap();
    let no_origin = app
        .client
        .post(&url)
        .header("cookie", &editor)
        .json(&serde_json::json!({"key": "NO_ORIGIN", "value": "v"}))
        .send()
        .await
        .unwrap();
    let foreign = app
        .client
        .get(format!("{}/api/v1/workspaces/{other}/secrets", app.base))
        .header("cookie", &editor)
        .send()
        .await
        .unwrap();
    let cross_site = app
        .client
        .post(&url)
        .header("cookie", &editor)
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();

    assert_eq!(viewer_lists.status(), 200);
    assert_eq!(error_code(viewer_writes, 403).await, "forbidden");
    assert_eq!(editor_writes.status(), 201);
    assert_eq!(error_code(foreign, 404).await, "not_found");
    assert_eq!(error_code(cross_site, 403).await, "forbidden");
    assert_eq!(error_code(no_origin, 403).await, "forbidden", "a cookie write must show it is same-origin");
}

async fn pages_redirect_to_sign_in_without_a_session(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;

    for path in ["/workspaces".to_string(), format!("/workspaces/{ws}"), "/".to_string()] {
        let response = get_page(&app, &path, None).await;
        assert_eq!(response.status(), 302, "{path}");
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert!(location == "/sign-in" || location == "/workspaces", "{path} -> {location}");
    }
    let sign_in = get_page(&app, "/sign-in", None).await;
    assert_eq!(sign_in.status(), 200);
    let html = sign_in.text().await.unwrap();
    assert!(html.contains("name=\"username\"") && html.contains("type=\"password\""));
}

async fn the_secrets_page_lists_keys_and_states_but_never_values(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("Team <Prod>").await;
    let token = app.writer_token(ws).await;
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    app.create(ws, &token, "OPENAI_API_KEY", &canary).await;
    app.create(ws, &token, "EMPTY_ONE", "").await;
    let cookie = member(&app, "alice", ws, "viewer").await;

    let list_page = get_page(&app, "/workspaces", Some(&cookie)).await.text().await.unwrap();
    let page = get_page(&app, &format!("/workspaces/{ws}"), Some(&cookie)).await;

    assert!(list_page.contains("Team &lt;Prod&gt;"), "names are escaped");
    assert!(!list_page.contains("Team <Prod>"));
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("OPENAI_API_KEY") && html.contains("EMPTY_ONE"));
    assert!(html.contains("Value set") && html.contains("No value"));
    assert!(!html.contains(&canary), "a value leaked into the page or its hydration state");
}

async fn the_secrets_page_shows_a_hundred_rows_a_page_and_filters_on_the_server(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("big").await;
    let pairs = (0..250).map(|i| (format!("KEY_{i:03}"), zeroize::Zeroizing::new(format!("v{i}")))).collect();
    app.state.secrets.import(ws, pairs, &common::test_actor()).await.unwrap();
    let cookie = member(&app, "pat", ws, "viewer").await;
    let page = |query: &str| {
        let path = format!("/workspaces/{ws}{query}");
        let (app, cookie) = (&app, cookie.clone());
        async move { get_page(app, &path, Some(&cookie)).await.text().await.unwrap() }
    };

    let first = page("").await;
    let third = page("?page=3").await;
    let beyond = page("?page=99").await;
    let filtered = page("?q=key_1%25_").await;
    let literal = page("?q=EY_12").await;

    assert!(first.contains("250 secrets"));
    assert!(first.contains("KEY_000") && first.contains("KEY_099") && !first.contains("KEY_100"));
    assert!(first.contains("Showing 1–100 of 250") && first.contains("href=\"?page=2\""));
    assert!(third.contains("KEY_249") && !third.contains("KEY_199") && third.contains("Showing 201–250 of 250"));
    assert!(!third.contains("rel=\"next\""), "no next page after the last");
    assert!(beyond.contains("Showing 201–250 of 250"), "a page past the end shows the last");
    assert!(filtered.contains("No key matches the filter."), "% and _ are not wildcards");
    assert!(literal.contains("KEY_120") && literal.contains("KEY_129") && !literal.contains("KEY_130"));
    assert!(!literal.contains("Showing"), "ten matches fit on one page");
}

async fn another_users_workspace_page_is_not_found(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, other) = (app.workspace("mine").await, app.workspace("secret-project").await);
    let cookie = member(&app, "alice", ws, "owner").await;

    let list = get_page(&app, "/workspaces", Some(&cookie)).await.text().await.unwrap();
    let page = get_page(&app, &format!("/workspaces/{other}"), Some(&cookie)).await;

    assert!(!list.contains("secret-project"));
    assert_eq!(page.status(), 404);
    let html = page.text().await.unwrap();
    assert!(html.contains("Not found") && !html.contains("secret-project"));
}

async fn the_workspace_server_function_authorizes_like_the_rest_api(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, other) = (app.workspace("mine").await, app.workspace("theirs").await);
    let cookie = member(&app, "alice", ws, "viewer").await;
    let call = |id: uuid::Uuid, cookie: Option<String>| {
        let mut request = app
            .client
            .post(format!("{}/studio/workspace_secrets", app.base))
            .header("origin", &app.base)
            .form(&[("workspace_id", id.to_string())]);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };

    let own = call(ws, Some(cookie.clone())).await.unwrap();
    let foreign = call(other, Some(cookie)).await.unwrap();
    let anonymous = call(ws, None).await.unwrap();

    assert_eq!(own.status(), 200);
    assert_eq!(json(own).await["workspace"]["name"], "mine");
    assert_eq!(foreign.status(), 404);
    assert_eq!(json(foreign).await["code"], "not_found");
    assert_eq!(anonymous.status(), 401);
}

/// The CSRF token a Studio page renders for the session in `cookie` (`lss_session=...`).
fn csrf_of(cookie: &str) -> String {
    loopstack_secrets::server::web::csrf::csrf_token(cookie.strip_prefix("lss_session=").unwrap())
}

/// Posts a Studio form (`application/x-www-form-urlencoded`) to a server function, with the
/// CSRF field a rendered form carries.
async fn studio_post(app: &TestApp, cookie: &str, function: &str, form: &[(&str, String)]) -> reqwest::Response {
    app.studio(cookie, function, form).await
}

/// The token is made once per page and put in every form of it: each of the rows' forms
/// carries the session's own token, and another session's page carries its own.
async fn every_form_of_a_page_carries_its_sessions_csrf_token(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    for key in ["FIRST", "SECOND", "THIRD"] {
        assert_eq!(app.create(ws, &token, key, "v").await.status(), 201);
    }
    let (eddie, olly) = (member(&app, "eddie", ws, "editor").await, member(&app, "olly", ws, "editor").await);
    for cookie in [&eddie, &olly] {
        let html = get_page(&app, &format!("/workspaces/{ws}"), Some(cookie)).await.text().await.unwrap();
        let fields: Vec<&str> =
            html.split(r#"name="csrf" value=""#).skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).collect();
        // Add, then update, hosts and delete for each of the three rows (and the deleted list's forms, none yet).
        assert!(fields.len() >= 10, "{} forms", fields.len());
        assert!(fields.iter().all(|field| *field == csrf_of(cookie)), "{fields:?}");
    }
    assert_ne!(csrf_of(&eddie), csrf_of(&olly));
}

async fn studio_writes_need_the_sessions_csrf_token(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let editor = member(&app, "eddie", ws, "editor").await;
    let other = member(&app, "olly", ws, "editor").await;
    let post = |csrf: Option<String>| {
        let mut form = vec![("workspace_id", ws.to_string()), ("key", "K".to_string()), ("value", "v".to_string())];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        app.client
            .post(format!("{}/studio/create_secret", app.base))
            .header("cookie", &editor)
            .header("origin", &app.base)
            .form(&form)
            .send()
    };

    let missing = post(None).await.unwrap();
    let foreign = post(Some(csrf_of(&other))).await.unwrap();
    let forged = post(Some("A".repeat(43))).await.unwrap();
    let valid = post(Some(csrf_of(&editor))).await.unwrap();

    for refused in [missing, foreign, forged] {
        assert_eq!(refused.status(), 403);
        assert_eq!(json(refused).await["code"], "forbidden");
    }
    assert_eq!(valid.status(), 200);
    assert_eq!(app.value_of(ws, "K").await.as_deref(), Some("v"));
    let page = get_page(&app, &format!("/workspaces/{ws}"), Some(&editor)).await.text().await.unwrap();
    assert!(page.contains(&format!("name=\"csrf\" value=\"{}\"", csrf_of(&editor))), "forms carry the token");
}

/// Every server function needs the token unless it is named as exempt (reads and sign-in):
/// writes without one are refused before they run, reads are answered.
async fn only_the_named_reads_go_without_a_csrf_token(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let owner = member(&app, "owen", ws, "owner").await;
    let post = |function: &str| {
        app.client
            .post(format!("{}/studio/{function}", app.base))
            .header("cookie", &owner)
            .header("origin", &app.base)
            .form(&[("workspace_id", ws.to_string())])
            .send()
    };
    let writes = [
        "create_secret",
        "update_secret",
        "delete_secret",
        "set_egress",
        "submit_request",
        "decline_request",
        "create_token",
        "revoke_token",
        "add_member",
        "change_member",
        "change_password",
        "create_user",
        "revoke_session",
        "sign_out_everywhere",
        "sign_out",
        "rollback_secret",
        "restore_secret",
        "change_workspace_settings",
        "create_webhook",
        "set_webhook_enabled",
        "resend_delivery",
        "delete_webhook",
    ];
    for function in writes {
        let refused = post(function).await.unwrap();
        assert_eq!(refused.status(), 403, "{function}");
        assert!(json(refused).await["message"].as_str().unwrap().contains("CSRF"), "{function}");
    }
    let exempt = loopstack_secrets::ui::server_fns::WITHOUT_CSRF_TOKEN;
    let reads = [
        "/studio/workspace_secrets",
        "/studio/tokens",
        "/studio/members",
        "/studio/workspace_settings",
        "/studio/webhooks",
    ];
    for path in exempt.iter().filter(|p| reads.contains(p)) {
        let function = path.strip_prefix("/studio/").unwrap();
        assert_eq!(post(function).await.unwrap().status(), 200, "{function} reads without a token");
    }
    // The three new reads: a secret's history, the workspace's settings, the webhooks page.
    assert_eq!(exempt.len(), 13, "a new exemption is a decision: name it in this test");
    assert_eq!(app.value_of(ws, "K").await, None);
    assert!(get_page(&app, &format!("/workspaces/{ws}"), Some(&owner)).await.status().is_success(), "still signed in");
}

async fn studio_writes_authorize_like_the_rest_api(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, other) = (app.workspace("mine").await, app.workspace("theirs").await);
    let editor = member(&app, "eddie", ws, "editor").await;
    let viewer = member(&app, "vera", ws, "viewer").await;
    let form = |ws: uuid::Uuid, key: &str| {
        vec![("workspace_id", ws.to_string()), ("key", key.to_string()), ("value", "v4lue".to_string())]
    };

    let by_editor = studio_post(&app, &editor, "create_secret", &form(ws, "FROM_STUDIO")).await;
    let by_viewer = studio_post(&app, &viewer, "create_secret", &form(ws, "VIEWER_KEY")).await;
    let foreign = studio_post(&app, &editor, "create_secret", &form(other, "FOREIGN")).await;
    let cross_site = app
        .client
        .post(format!("{}/studio/create_secret", app.base))
        .header("cookie", &editor)
        .header("origin", "https://evil.example")
        .form(&form(ws, "CSRF_KEY"))
        .send()
        .await
        .unwrap();

    assert_eq!(by_editor.status(), 200);
    assert!(!by_editor.text().await.unwrap().contains("v4lue"), "the value is not sent back");
    assert_eq!(json(by_viewer).await["code"], "forbidden");
    assert_eq!(json(foreign).await["code"], "not_found");
    assert_eq!(json(cross_site).await["code"], "forbidden");
    assert_eq!(app.value_of(ws, "FROM_STUDIO").await.as_deref(), Some("v4lue"));
    for key in ["VIEWER_KEY", "CSRF_KEY"] {
        assert_eq!(app.value_of(ws, key).await, None, "{key} must not be stored");
    }
    assert_eq!(app.value_of(other, "FOREIGN").await, None);
}

async fn the_request_form_stores_values_and_continues_the_run(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let editor = member(&app, "eddie", ws, "editor").await;
    let token = app.token(ws, &[loopstack_secrets::server::domain::Scope::ToolsCall]).await;
    let asked = json(
        app.req(reqwest::Method::POST, &format!("/api/v1/workspaces/{ws}/tools/request_secrets"), &token)
            .json(&serde_json::json!({"variables": [{"key": "A_KEY"}, {"key": "B_KEY"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let run = asked["pending"]["workflowId"].as_str().unwrap().to_string();

    let submitted = studio_post(
        &app,
        &editor,
        "submit_request",
        &[
            ("workspace_id", ws.to_string()),
            ("run_id", run.clone()),
            ("values[A_KEY]", "a-value".into()),
            ("values[B_KEY]", String::new()),
        ],
    )
    .await;

    assert_eq!(submitted.status(), 200);
    let body = submitted.text().await.unwrap();
    assert!(!body.contains("a-value"));
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(run["status"], "completed");
    assert_eq!(app.value_of(ws, "A_KEY").await.as_deref(), Some("a-value"));
    assert_eq!(app.value_of(ws, "B_KEY").await, None, "a blank field stores nothing");
}

async fn the_audit_log_records_writes_reads_and_requests_without_values(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &loopstack_secrets::server::domain::Scope::ALL).await;
    let canary = format!("canary{}", uuid::Uuid::new_v4().simple());
    let id = json(app.create(ws, &token, "AUDITED", &canary).await).await["id"].as_str().unwrap().to_string();
    app.update(ws, &token, &id, serde_json::json!({"value": canary})).await;
    app.value_of(ws, "AUDITED").await;
    app.delete(ws, &token, &id).await;
    let asked = json(
        app.req(reqwest::Method::POST, &format!("/api/v1/workspaces/{ws}/tools/request_secrets"), &token)
            .json(&serde_json::json!({"variables": [{"key": "ASKED"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let run = asked["pending"]["workflowId"].as_str().unwrap().to_string();
    app.req(
        reqwest::Method::POST,
        &format!("/api/v1/workspaces/{ws}/workflows/{run}/transitions/secretsSubmitted"),
        &token,
    )
    .json(&serde_json::json!({"variables": [{"key": "ASKED", "value": canary}]}))
    .send()
    .await
    .unwrap();
    let cookie = member(&app, "alice", ws, "viewer").await;

    let all = get_page(&app, &format!("/workspaces/{ws}/audit"), Some(&cookie)).await.text().await.unwrap();
    let reads =
        get_page(&app, &format!("/workspaces/{ws}/audit?q=secret.read"), Some(&cookie)).await.text().await.unwrap();

    for action in [
        "token.created",
        "secret.created",
        "secret.updated",
        "secret.read",
        "secret.deleted",
        "secret.upserted",
        "request.submitted",
    ] {
        assert!(all.contains(action), "{action} missing from the audit log");
    }
    assert!(all.contains("AUDITED") && all.contains("ASKED"));
    assert!(!all.contains(&canary), "a value reached the audit log");
    assert!(reads.contains("secret.read") && !reads.contains("secret.created"), "the filter narrows the log");
}

async fn owners_create_and_revoke_tokens_shown_once(engine: Engine) {
    let app = spawn_app(engine).await;
    let (ws, other) = (app.workspace("main").await, app.workspace("other").await);
    let owner = member(&app, "olga", ws, "owner").await;
    let editor = member(&app, "eddie", ws, "editor").await;
    let form = |ws: uuid::Uuid| {
        vec![("workspace_id", ws.to_string()), ("name", "ci".to_string()), ("scope_list", "on".to_string())]
    };

    let created = json(studio_post(&app, &owner, "create_token", &form(ws)).await).await;
    let by_editor = json(studio_post(&app, &editor, "create_token", &form(ws)).await).await;
    let foreign = json(studio_post(&app, &owner, "create_token", &form(other)).await).await;
    let token = created["secret"].as_str().unwrap().to_string();
    let listed = studio_post(&app, &owner, "tokens", &[("workspace_id", ws.to_string())]).await.text().await.unwrap();
    let works = app.list(ws, &token).await.status();
    let info = serde_json::from_str::<serde_json::Value>(&listed).unwrap()[0].clone();
    let token_id = info["id"].as_str().unwrap().to_string();
    let revoked =
        studio_post(&app, &owner, "revoke_token", &[("workspace_id", ws.to_string()), ("token_id", token_id)]).await;

    assert!(token.starts_with("lss_"));
    assert_eq!(created["message"], "Token 'ci' created. Copy it now: it is not shown again.");
    assert_eq!(info["scopes"], serde_json::json!(["secrets:list"]));
    assert_eq!(by_editor["code"], "forbidden");
    assert_eq!(foreign["code"], "not_found");
    assert!(listed.contains("\"ci\"") && !listed.contains(&token), "the list never shows a token");
    assert_eq!(works, 200);
    assert_eq!(revoked.status(), 200);
    assert_eq!(error_code(app.list(ws, &token).await, 401).await, "unauthorized");
}

async fn owners_manage_members_and_the_last_owner_stays(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let owner = member(&app, "olga", ws, "owner").await;
    let newcomer = app.user("nina", PASSWORD).await;
    let ws_form = |extra: &[(&'static str, String)]| {
        let mut form = vec![("workspace_id", ws.to_string())];
        form.extend_from_slice(extra);
        form
    };

    let added =
        studio_post(&app, &owner, "add_member", &ws_form(&[("username", "NINA".into()), ("role", "viewer".into())]))
            .await;
    let again = json(
        studio_post(&app, &owner, "add_member", &ws_form(&[("username", "nina".into()), ("role", "viewer".into())]))
            .await,
    )
    .await;
    let unknown = json(
        studio_post(&app, &owner, "add_member", &ws_form(&[("username", "nobody".into()), ("role", "viewer".into())]))
            .await,
    )
    .await;
    let promoted = studio_post(
        &app,
        &owner,
        "change_member",
        &ws_form(&[("user_id", newcomer.to_string()), ("role", "editor".into())]),
    )
    .await;
    let members = studio_post(&app, &owner, "members", &ws_form(&[])).await.text().await.unwrap();
    let olga = json(studio_post(&app, &owner, "members", &ws_form(&[])).await)
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == "olga")
        .unwrap()["userId"]
        .as_str()
        .unwrap()
        .to_string();
    let last_owner = json(
        studio_post(&app, &owner, "change_member", &ws_form(&[("user_id", olga.clone()), ("remove", "1".into())]))
            .await,
    )
    .await;
    let demote_last = json(
        studio_post(&app, &owner, "change_member", &ws_form(&[("user_id", olga), ("role", "viewer".into())])).await,
    )
    .await;
    let removed = studio_post(
        &app,
        &owner,
        "change_member",
        &ws_form(&[("user_id", newcomer.to_string()), ("remove", "1".into())]),
    )
    .await;

    assert_eq!(added.status(), 200);
    assert_eq!(again["code"], "conflict");
    assert_eq!(unknown["code"], "bad_request");
    assert_eq!(promoted.status(), 200);
    assert!(members.contains("\"nina\"") && members.contains("\"editor\""), "{members}");
    assert_eq!(last_owner["code"], "conflict");
    assert_eq!(demote_last["code"], "conflict");
    assert_eq!(removed.status(), 200);
    assert!(loopstack_secrets::server::store::workspace_of_user(&app.state.db, newcomer, ws).await.unwrap().is_none());
}

async fn users_change_their_password_and_admins_create_users(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let user = member(&app, "alice", ws, "viewer").await;
    loopstack_secrets::server::service::access::create_user(&app.state.db, "root-admin", PASSWORD, true).await.unwrap();
    let admin = TestApp::session_cookie(&app.sign_in("root-admin", PASSWORD).await).unwrap();

    let wrong = json(
        studio_post(
            &app,
            &user,
            "change_password",
            &[("current_password", "nope-nope".into()), ("new_password", "brand-new-pass".into())],
        )
        .await,
    )
    .await;
    let changed = studio_post(
        &app,
        &user,
        "change_password",
        &[("current_password", PASSWORD.into()), ("new_password", "brand-new-pass".into())],
    )
    .await;
    let by_user = json(studio_post(&app, &user, "create_user", &[("username", "mallory".into())]).await).await;
    let by_admin = json(studio_post(&app, &admin, "create_user", &[("username", "bob".into())]).await).await;

    assert_eq!(wrong["code"], "bad_request");
    assert_eq!(changed.status(), 200);
    assert!(TestApp::session_cookie(&app.sign_in("alice", "brand-new-pass").await).is_some());
    assert!(TestApp::session_cookie(&app.sign_in("alice", PASSWORD).await).is_none());
    assert_eq!(by_user["code"], "forbidden");
    let generated = by_admin["secret"].as_str().expect("a generated password");
    assert!(TestApp::session_cookie(&app.sign_in("bob", generated).await).is_some());
}

async fn sign_ins_and_failed_attempts_are_audited_and_shown_to_the_user(engine: Engine) {
    let app = spawn_app(engine).await;
    app.user("alice", PASSWORD).await;
    app.sign_in("alice", "wrong-password").await;
    let cookie = TestApp::session_cookie(&app.sign_in("alice", PASSWORD).await).unwrap();

    let account = get_page(&app, "/account", Some(&cookie)).await.text().await.unwrap();

    assert!(account.contains("failed attempt") && account.contains("signed in"), "{account}");
    assert!(!account.contains("wrong-password"));
}

both_engines!(serial:
    studio_writes_need_the_sessions_csrf_token,
    every_form_of_a_page_carries_its_sessions_csrf_token,
    only_the_named_reads_go_without_a_csrf_token,
    sign_ins_and_failed_attempts_are_audited_and_shown_to_the_user,
    owners_create_and_revoke_tokens_shown_once,
    owners_manage_members_and_the_last_owner_stays,
    users_change_their_password_and_admins_create_users,
    the_audit_log_records_writes_reads_and_requests_without_values,
    studio_writes_authorize_like_the_rest_api,
    the_request_form_stores_values_and_continues_the_run,
    sign_in_sets_a_strict_http_only_cookie_with_a_fresh_session_each_time,
    the_cookie_is_secure_behind_tls,
    a_wrong_password_and_an_unknown_user_get_the_same_answer,
    sign_in_is_rate_limited_per_username,
    sign_out_ends_the_session,
    a_session_uses_the_rest_api_with_its_role_and_only_in_its_workspaces,
    pages_redirect_to_sign_in_without_a_session,
    the_secrets_page_lists_keys_and_states_but_never_values,
    the_secrets_page_shows_a_hundred_rows_a_page_and_filters_on_the_server,
    another_users_workspace_page_is_not_found,
    the_workspace_server_function_authorizes_like_the_rest_api,
);
