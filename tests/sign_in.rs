//! Sign-in under attack and the sessions it opens: hashing off the request threads behind a
//! semaphore, limits per username and per client address that cannot be raced, purged
//! attempts, the same cost for an unknown user and a wrong password, and sessions that end
//! when they should (password change, a new sign-in in the same browser, "sign out
//! everywhere", revocation, expiry).

mod common;

use std::time::{Duration, Instant};

use common::{json, spawn_app, spawn_app_with, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use reqwest::{Method, Response};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

/// A sign-in as a script would call the server function (no `Accept: text/html`), so the
/// answer carries the real status.
async fn sign_in(app: &TestApp, username: &str, password: &str, extra: &[(&str, &str)]) -> Response {
    let mut request = app.client.post(format!("{}/studio/sign_in", app.base)).header("origin", &app.base);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.form(&[("username", username), ("password", password)]).send().await.unwrap()
}

/// The `lss_session=...` cookie a response set.
fn cookie_of(response: &Response) -> String {
    TestApp::session_cookie(response).expect("a session cookie")
}

async fn lists(app: &TestApp, ws: Uuid, cookie: &str) -> u16 {
    let response = app
        .client
        .get(format!("{}/api/v1/workspaces/{ws}/secrets", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

async fn failures_audited(app: &TestApp, username: &str) -> usize {
    loopstack_secrets::server::store::sign_in_events(&app.state.db, username, 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == "user.sign_in_failed")
        .count()
}

async fn fifty_parallel_wrong_guesses_check_at_most_the_limit_against_the_hash(engine: Engine) {
    let app = spawn_app_with(engine, &["--hashing-threads", "64", "--sign-in-failures-per-address", "1000"]).await;
    app.user("alice", PASSWORD).await;

    let guesses = (0..50).map(|i| {
        let (client, base) = (app.client.clone(), app.base.clone());
        tokio::spawn(async move {
            let guess = format!("wrong-guess-{i}");
            let response = client
                .post(format!("{base}/studio/sign_in"))
                .header("origin", &base)
                .form(&[("username", "alice"), ("password", guess.as_str())])
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(guesses).await.into_iter().map(Result::unwrap).collect();

    let checked = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked, 10, "exactly the limit reached the password check: {statuses:?}");
    assert_eq!(limited, 40, "{statuses:?}");
    assert_eq!(failures_audited(&app, "alice").await, 10);
    assert_eq!(
        sign_in(&app, "alice", PASSWORD, &[]).await.status(),
        429,
        "the right password waits out the window too"
    );
}

async fn attempts_are_limited_per_client_address_and_forwarded_for_is_believed_only_from_trusted_proxies(
    engine: Engine,
) {
    let direct = spawn_app_with(engine.clone(), &["--sign-in-failures-per-address", "5"]).await;
    for i in 0..5 {
        let spoofed = format!("198.51.100.{i}");
        assert_eq!(
            sign_in(&direct, &format!("user{i}"), "wrong-pass", &[("x-forwarded-for", &spoofed)]).await.status(),
            401
        );
    }
    let blocked = sign_in(&direct, "someone-new", "wrong-pass", &[("x-forwarded-for", "198.51.100.99")]).await;
    assert_eq!(blocked.status(), 429, "random usernames and a spoofed header do not escape the address limit");
    assert!(blocked.headers().contains_key("retry-after"));

    let proxied = spawn_app_with(engine, &["--sign-in-failures-per-address", "5", "--trusted-proxies", "1"]).await;
    for i in 0..5 {
        let response =
            sign_in(&proxied, &format!("user{i}"), "wrong-pass", &[("x-forwarded-for", "6.6.6.6, 203.0.113.1")]).await;
        assert_eq!(response.status(), 401);
    }
    let same_client = sign_in(&proxied, "another", "wrong-pass", &[("x-forwarded-for", "7.7.7.7, 203.0.113.1")]).await;
    let other_client = sign_in(&proxied, "another", "wrong-pass", &[("x-forwarded-for", "203.0.113.2")]).await;
    assert_eq!(same_client.status(), 429, "the proxy's hop names the client, whatever the client prepended");
    assert_eq!(other_client.status(), 401, "another client behind the proxy is not blocked");
}

async fn when_every_hashing_permit_is_taken_a_sign_in_is_429_at_once(engine: Engine) {
    let app = spawn_app_with(engine, &["--hashing-threads", "1"]).await;
    app.user("alice", PASSWORD).await;
    let held = app.state.hasher.reserve().expect("the one permit");

    let started = Instant::now();
    let busy = sign_in(&app, "alice", PASSWORD, &[]).await;
    let waited = started.elapsed();
    drop(held);
    let free = sign_in(&app, "alice", PASSWORD, &[]).await;

    assert_eq!(busy.status(), 429, "no queueing behind the hash");
    assert_eq!(busy.headers()["retry-after"], "1");
    assert!(waited < Duration::from_secs(20), "answered without waiting for a permit");
    assert!(free.status().is_success(), "{}", free.status());
    assert_eq!(failures_audited(&app, "alice").await, 0, "a turned-away attempt is not counted");
}

async fn attempts_older_than_the_window_are_purged(engine: Engine) {
    let app = spawn_app(engine).await;
    let old = chrono::Utc::now() - chrono::Duration::minutes(16);
    loopstack_secrets::on_pool!(&app.state.db, pool => {
        for name in ["ghost1", "ghost2"] {
            sqlx::query("INSERT INTO sign_in_failures (username, client, at) VALUES ($1, 'x', $2)").bind(name).bind(old).execute(pool).await.unwrap();
        }
    });

    assert_eq!(sign_in(&app, "someone", "wrong-pass", &[]).await.status(), 401);

    let left: Vec<String> = loopstack_secrets::on_pool!(&app.state.db, pool =>
        sqlx::query_scalar("SELECT username FROM sign_in_failures").fetch_all(pool).await.unwrap());
    assert_eq!(left, vec!["someone".to_string()], "rows past the window are gone");
}

async fn an_unknown_user_and_a_wrong_password_cost_the_same_order_of_time(engine: Engine) {
    let app =
        spawn_app_with(engine, &["--sign-in-failures-per-user", "1000", "--sign-in-failures-per-address", "1000"])
            .await;
    app.user("alice", PASSWORD).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Alternating, so drift on a noisy machine hits both sides alike.
    for i in 0..25 {
        let started = Instant::now();
        assert_eq!(sign_in(&app, "alice", "wrong-pass", &[]).await.status(), 401);
        known.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(sign_in(&app, &format!("nobody{i}"), "wrong-pass", &[]).await.status(), 401);
        unknown.push(started.elapsed());
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[known.len() / 2].as_secs_f64(), unknown[unknown.len() / 2].as_secs_f64());
    let ratio = known / unknown;
    // Without the dummy hash an unknown user answers in well under a tenth of the time.
    assert!(
        (0.5..2.0).contains(&ratio),
        "median wrong password {known:.4}s vs unknown user {unknown:.4}s (ratio {ratio:.2})"
    );
}

async fn a_wrong_current_password_counts_like_a_failed_sign_in(engine: Engine) {
    let app = spawn_app(engine).await;
    app.user("alice", PASSWORD).await;
    let cookie = cookie_of(&sign_in(&app, "alice", PASSWORD, &[]).await);

    for _ in 0..10 {
        let refused = app
            .studio(
                &cookie,
                "change_password",
                &[("current_password", "wrong-pass".into()), ("new_password", "whatever-new".into())],
            )
            .await;
        assert_eq!(refused.status(), 400);
    }
    let limited = app
        .studio(
            &cookie,
            "change_password",
            &[("current_password", PASSWORD.into()), ("new_password", "whatever-new".into())],
        )
        .await;

    assert_eq!(limited.status(), 429, "guessing through the password form is limited too");
    assert_eq!(sign_in(&app, "alice", PASSWORD, &[]).await.status(), 429);
    assert_eq!(failures_audited(&app, "alice").await, 10);
}

async fn changing_the_password_ends_every_other_session(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let user = app.user("alice", PASSWORD).await;
    app.add_member(ws, user, "owner").await;
    let (here, elsewhere) = (
        cookie_of(&sign_in(&app, "alice", PASSWORD, &[]).await),
        cookie_of(&sign_in(&app, "alice", PASSWORD, &[]).await),
    );

    let changed = app
        .studio(
            &here,
            "change_password",
            &[("current_password", PASSWORD.into()), ("new_password", "a-new-password".into())],
        )
        .await;

    assert!(changed.status().is_success(), "{}", changed.status());
    assert_eq!(lists(&app, ws, &here).await, 200, "the session that changed it stays");
    assert_eq!(lists(&app, ws, &elsewhere).await, 401, "every other session ended");
    assert_eq!(sign_in(&app, "alice", PASSWORD, &[]).await.status(), 401);
    assert!(sign_in(&app, "alice", "a-new-password", &[]).await.status().is_success());
}

async fn signing_in_again_ends_the_browsers_previous_session(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let user = app.user("alice", PASSWORD).await;
    app.add_member(ws, user, "owner").await;
    let first = cookie_of(&sign_in(&app, "alice", PASSWORD, &[]).await);

    let second = cookie_of(&sign_in(&app, "alice", PASSWORD, &[("cookie", first.as_str())]).await);

    assert_ne!(first, second);
    assert_eq!(lists(&app, ws, &first).await, 401);
    assert_eq!(lists(&app, ws, &second).await, 200);
}

async fn a_session_planted_in_the_real_cookie_format_is_never_kept(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    for (name, role) in [("victim", "owner"), ("attacker", "viewer")] {
        let user = app.user(name, PASSWORD).await;
        app.add_member(ws, user, role).await;
    }
    let forged = format!("lss_session={}.{}", Uuid::new_v4().simple(), "A".repeat(43));
    // The attacker's own valid session, planted in the victim's browser.
    let attackers = cookie_of(&sign_in(&app, "attacker", PASSWORD, &[]).await);

    for planted in [forged, attackers] {
        let issued = cookie_of(&sign_in(&app, "victim", PASSWORD, &[("cookie", planted.as_str())]).await);
        assert_ne!(issued, planted, "a sign-in always issues a new session id");
        assert_eq!(lists(&app, ws, &planted).await, 401, "the planted session is not usable afterwards");
        assert_eq!(lists(&app, ws, &issued).await, 200);
    }
}

async fn sessions_are_listed_and_can_be_ended_one_by_one_or_everywhere(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let user = app.user("alice", PASSWORD).await;
    app.add_member(ws, user, "owner").await;
    app.user("bob", PASSWORD).await;
    let laptop = cookie_of(&sign_in(&app, "alice", PASSWORD, &[("user-agent", "Laptop Browser <b>1</b>")]).await);
    let phone = cookie_of(&sign_in(&app, "alice", PASSWORD, &[("user-agent", "Phone Browser")]).await);
    let bobs = cookie_of(&sign_in(&app, "bob", PASSWORD, &[]).await);

    let listed = json(app.studio(&laptop, "my_sessions", &[]).await).await;
    let sessions = listed.as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(sessions.iter().all(|s| s["client"] == "127.0.0.1"), "{listed}");
    let phone_id =
        sessions.iter().find(|s| s["userAgent"] == "Phone Browser").unwrap()["id"].as_str().unwrap().to_string();
    let bobs_id = json(app.studio(&bobs, "my_sessions", &[]).await).await[0]["id"].as_str().unwrap().to_string();

    let other_users = app.studio(&laptop, "revoke_session", &[("session_id", bobs_id)]).await;
    let ended = app.studio(&laptop, "revoke_session", &[("session_id", phone_id)]).await;
    assert_eq!(other_users.status(), 404, "another user's session is not yours to end");
    assert!(ended.status().is_success());
    assert_eq!(lists(&app, ws, &phone).await, 401);
    assert_eq!(lists(&app, ws, &laptop).await, 200);

    let page = app
        .client
        .get(format!("{}/account", app.base))
        .header("cookie", &laptop)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign out everywhere") && page.contains("This session"), "the account page lists sessions");
    assert!(page.contains("Laptop Browser &lt;b&gt;1&lt;/b&gt;") && !page.contains("<b>1</b>"), "shown escaped");

    let phone_again = cookie_of(&sign_in(&app, "alice", PASSWORD, &[]).await);
    let everywhere = app.studio(&laptop, "sign_out_everywhere", &[]).await;
    assert!(everywhere.status().is_success() || everywhere.status().is_redirection(), "{}", everywhere.status());
    assert_eq!(lists(&app, ws, &laptop).await, 401);
    assert_eq!(lists(&app, ws, &phone_again).await, 401);
    assert_eq!(lists(&app, ws, &bobs).await, 404, "bob's session is untouched (and not a member)");
}

/// Every REST route of a workspace, with a secret and a run of it.
fn rest_routes(ws: Uuid, secret: &str, run: &str) -> Vec<(Method, String)> {
    let w = format!("/api/v1/workspaces/{ws}");
    vec![
        (Method::GET, format!("{w}/secrets")),
        (Method::POST, format!("{w}/secrets")),
        (Method::PUT, format!("{w}/secrets/upsert")),
        (Method::PUT, format!("{w}/secrets/{secret}")),
        (Method::DELETE, format!("{w}/secrets/{secret}")),
        (Method::POST, format!("{w}/tools/get_secret_keys")),
        (Method::POST, format!("{w}/tools/request_secrets")),
        (Method::POST, format!("{w}/workflows")),
        (Method::GET, format!("{w}/workflows")),
        (Method::GET, format!("{w}/workflows/{run}")),
        (Method::POST, format!("{w}/workflows/{run}/transitions/secretsSubmitted")),
        (Method::POST, format!("{w}/workflows/{run}/cancel")),
        (Method::GET, format!("{w}/workflows/{run}/wait?timeout=1")),
        (Method::GET, format!("{w}/events")),
    ]
}

async fn an_expired_session_is_401_on_every_route_and_server_function(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let user = app.user("alice", PASSWORD).await;
    app.add_member(ws, user, "owner").await;
    let token = app.token(ws, &[Scope::SecretsWrite, Scope::SecretsList, Scope::WorkflowsRun]).await;
    let secret = json(app.create(ws, &token, "K", "v").await).await["id"].as_str().unwrap().to_string();
    let run = json(
        app.req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), &token)
            .json(&serde_json::json!({"workflow": "secrets_request", "args": {"variables": [{"key": "P"}]}}))
            .send()
            .await
            .unwrap(),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cookie = cookie_of(&sign_in(&app, "alice", PASSWORD, &[]).await);
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    loopstack_secrets::on_pool!(&app.state.db, pool => sqlx::query("UPDATE sessions SET expires_at = $1").bind(past).execute(pool).await.unwrap().rows_affected());

    for (method, path) in rest_routes(ws, &secret, &run) {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .header("origin", &app.base)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    let w = ws.to_string();
    let functions: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("list_workspaces", vec![]),
        ("workspace_secrets", vec![("workspace_id", w.clone())]),
        ("create_secret", vec![("workspace_id", w.clone()), ("key", "NEW".into()), ("value", "x".into())]),
        ("update_secret", vec![("workspace_id", w.clone()), ("id", secret.clone()), ("value", "x".into())]),
        ("delete_secret", vec![("workspace_id", w.clone()), ("id", secret.clone())]),
        ("run", vec![("workspace_id", w.clone()), ("run_id", run.clone())]),
        ("submit_request", vec![("workspace_id", w.clone()), ("run_id", run.clone()), ("values[P]", "x".into())]),
        ("decline_request", vec![("workspace_id", w.clone()), ("run_id", run.clone())]),
        ("audit_log", vec![("workspace_id", w.clone())]),
        ("tokens", vec![("workspace_id", w.clone())]),
        ("create_token", vec![("workspace_id", w.clone()), ("name", "n".into()), ("scope_list", "on".into())]),
        ("revoke_token", vec![("workspace_id", w.clone()), ("token_id", Uuid::new_v4().to_string())]),
        ("members", vec![("workspace_id", w.clone())]),
        ("add_member", vec![("workspace_id", w.clone()), ("username", "alice".into()), ("role", "viewer".into())]),
        ("change_member", vec![("workspace_id", w.clone()), ("user_id", user.to_string()), ("role", "viewer".into())]),
        ("change_password", vec![("current_password", PASSWORD.into()), ("new_password", "something-new".into())]),
        ("create_user", vec![("username", "newbie".into())]),
        ("my_sign_ins", vec![]),
        ("my_sessions", vec![]),
        ("revoke_session", vec![("session_id", Uuid::new_v4().to_string())]),
        ("sign_out_everywhere", vec![]),
    ];
    for (function, form) in functions {
        let response = app.studio(&cookie, function, &form).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 401, "{function}: {body}");
    }
    let who = app.studio(&cookie, "current_user", &[]).await.text().await.unwrap();
    assert_eq!(who, "null", "an expired session is nobody");
    assert_eq!(app.value_of(ws, "K").await.as_deref(), Some("v"), "nothing changed");
    assert_eq!(app.value_of(ws, "NEW").await, None);
}

async fn a_secure_deployment_names_its_cookies_for_this_host_only(engine: Engine) {
    let app = spawn_app_with(engine, &["--secure-cookies", "true"]).await;
    let ws = app.workspace("main").await;
    let user = app.user("alice", PASSWORD).await;
    app.add_member(ws, user, "owner").await;

    let response = sign_in(&app, "alice", PASSWORD, &[]).await;
    let set: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let session = set.iter().find(|c| c.starts_with("__Host-lss_session=")).unwrap_or_else(|| panic!("{set:?}"));
    assert!(
        session.contains("Secure")
            && session.contains("HttpOnly")
            && session.contains("Path=/")
            && !session.contains("Domain"),
        "{session}"
    );
    assert!(set.iter().any(|c| c.starts_with("__Host-lss_csrf=") && c.contains("Secure")), "{set:?}");
    let host_cookie = session.split(';').next().unwrap().to_string();
    let value = host_cookie.split_once('=').unwrap().1;

    assert_eq!(lists(&app, ws, &host_cookie).await, 200);
    assert_eq!(
        lists(&app, ws, &format!("lss_session={value}")).await,
        401,
        "a plain-named cookie is not read when cookies are secure"
    );
    let page =
        app.client.get(format!("{}/workspaces/{ws}", app.base)).header("cookie", &host_cookie).send().await.unwrap();
    let csrf = loopstack_secrets::server::web::csrf::csrf_token(value);
    assert!(page.text().await.unwrap().contains(&csrf), "forms carry the session's CSRF token");
}

both_engines!(serial:
    fifty_parallel_wrong_guesses_check_at_most_the_limit_against_the_hash,
    attempts_are_limited_per_client_address_and_forwarded_for_is_believed_only_from_trusted_proxies,
    when_every_hashing_permit_is_taken_a_sign_in_is_429_at_once,
    attempts_older_than_the_window_are_purged,
    an_unknown_user_and_a_wrong_password_cost_the_same_order_of_time,
    a_wrong_current_password_counts_like_a_failed_sign_in,
    changing_the_password_ends_every_other_session,
    signing_in_again_ends_the_browsers_previous_session,
    a_session_planted_in_the_real_cookie_format_is_never_kept,
    sessions_are_listed_and_can_be_ended_one_by_one_or_everywhere,
    an_expired_session_is_401_on_every_route_and_server_function,
    a_secure_deployment_names_its_cookies_for_this_host_only,
);

/// Two instances on one PostgreSQL share every limit: sign-in attempts and run starts are
/// counted in the database, not in a process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_across_two_instances_on_postgres() {
    let Some(engine) = common::postgres() else { return };
    let first = spawn_app_with(engine, &["--runs-per-minute", "4"]).await;
    let second = common::serve(
        tempfile::tempdir().unwrap(),
        first.database_url.clone(),
        first.master_key.clone(),
        &["--runs-per-minute", "4"],
    )
    .await;
    first.user("alice", PASSWORD).await;
    let ws = first.workspace("main").await;
    let token = first.token(ws, &[Scope::WorkflowsRun]).await;

    for i in 0..10 {
        let app = if i % 2 == 0 { &first } else { &second };
        assert_eq!(sign_in(app, "alice", "wrong-pass", &[]).await.status(), 401);
    }
    let start = |app: &TestApp| {
        app.req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), &token)
            .json(&serde_json::json!({"workflow": "secrets_request", "args": {"variables": [{"key": "K"}]}}))
            .send()
    };
    let mut started = Vec::new();
    for app in [&first, &second, &first, &second, &first, &second] {
        started.push(start(app).await.unwrap().status().as_u16());
    }

    assert_eq!(sign_in(&first, "alice", PASSWORD, &[]).await.status(), 429, "ten failures over two instances");
    assert_eq!(sign_in(&second, "alice", PASSWORD, &[]).await.status(), 429);
    assert_eq!(started, vec![201, 201, 201, 201, 429, 429], "four starts a minute over both instances");
}
