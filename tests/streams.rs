//! Requests that stay open: an event stream or a long-poll re-checks its credential while it
//! runs and ends when the token is revoked or expired, the session signed out or the member
//! removed; and one credential may hold only so many open at once.

mod common;

use std::time::Duration;

use common::{spawn_app_with, Engine, TestApp};
use loopstack_secrets::server::domain::Scope;
use reqwest::{Method, Response};
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";
/// Re-check every second, so the tests see a revocation quickly.
const FAST: &[&str] = &["--reauth-secs", "1"];

/// Whether an event stream ends (its body closes) within `within`.
async fn ends_within(mut stream: Response, within: Duration) -> bool {
    tokio::time::timeout(within, async { while let Ok(Some(_)) = stream.chunk().await {} }).await.is_ok()
}

async fn events(app: &TestApp, ws: Uuid, auth: &Auth) -> Response {
    let request = app.client.get(format!("{}/api/v1/workspaces/{ws}/events", app.base));
    let response = auth.apply(request).send().await.unwrap();
    assert_eq!(response.status(), 200, "the stream opens");
    response
}

enum Auth {
    Token(String),
    Cookie(String),
}

impl Auth {
    fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Token(token) => request.bearer_auth(token),
            Auth::Cookie(cookie) => request.header("cookie", cookie),
        }
    }
}

async fn member_session(app: &TestApp, ws: Uuid, name: &str, role: &str) -> (Uuid, String) {
    let user = app.user(name, PASSWORD).await;
    app.add_member(ws, user, role).await;
    (user, TestApp::session_cookie(&app.sign_in(name, PASSWORD).await).expect("a session"))
}

async fn an_event_stream_ends_when_its_token_is_revoked_or_expires(engine: Engine) {
    let app = spawn_app_with(engine, FAST).await;
    let ws = app.workspace("main").await;
    let (revoked, expiring, kept) = (
        app.token(ws, &[Scope::SecretsList]).await,
        app.token(ws, &[Scope::SecretsList]).await,
        app.token(ws, &[Scope::SecretsList]).await,
    );
    let streams =
        [events(&app, ws, &Auth::Token(revoked.clone())).await, events(&app, ws, &Auth::Token(expiring.clone())).await];
    let kept_stream = events(&app, ws, &Auth::Token(kept)).await;

    let id_of = |token: &str| token.strip_prefix("lss_").unwrap().split('_').next().unwrap().parse::<Uuid>().unwrap();
    loopstack_secrets::server::service::access::revoke_token(
        &app.state.db,
        id_of(&revoked),
        None,
        &common::test_actor(),
    )
    .await
    .unwrap();
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    loopstack_secrets::on_pool!(&app.state.db, pool => sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE id = $2")
        .bind(past).bind(id_of(&expiring)).execute(pool).await.unwrap().rows_affected());

    for stream in streams {
        assert!(
            ends_within(stream, Duration::from_secs(10)).await,
            "the stream ended after its token stopped being valid"
        );
    }
    assert!(!ends_within(kept_stream, Duration::from_secs(3)).await, "a valid token's stream stays open");
}

async fn an_event_stream_ends_when_the_session_signs_out_or_the_member_is_removed(engine: Engine) {
    let app = spawn_app_with(engine, FAST).await;
    let ws = app.workspace("main").await;
    let (_, signed_out) = member_session(&app, ws, "alice", "owner").await;
    let (bob, removed) = member_session(&app, ws, "bob", "viewer").await;
    let streams =
        [events(&app, ws, &Auth::Cookie(signed_out.clone())).await, events(&app, ws, &Auth::Cookie(removed)).await];

    let csrf = loopstack_secrets::server::web::csrf::csrf_token(signed_out.split_once('=').unwrap().1);
    let out = app
        .client
        .post(format!("{}/studio/sign_out", app.base))
        .header("cookie", &signed_out)
        .header("origin", &app.base)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success() || out.status().is_redirection());
    loopstack_secrets::server::service::access::change_member(&app.state.db, ws, bob, None, &common::test_actor())
        .await
        .unwrap();

    for stream in streams {
        assert!(ends_within(stream, Duration::from_secs(10)).await, "the stream ended");
    }
}

async fn a_long_poll_ends_when_its_token_is_revoked(engine: Engine) {
    let app = spawn_app_with(engine, FAST).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::WorkflowsRun]).await;
    let run = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), &token)
        .json(&serde_json::json!({"workflow": "secrets_request", "args": {"variables": [{"key": "K"}]}}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let poll = tokio::spawn(
        app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows/{run}/wait?timeout=60"), &token).send(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let id = token.strip_prefix("lss_").unwrap().split('_').next().unwrap().parse::<Uuid>().unwrap();
    loopstack_secrets::server::service::access::revoke_token(&app.state.db, id, None, &common::test_actor())
        .await
        .unwrap();

    let answer =
        tokio::time::timeout(Duration::from_secs(10), poll).await.expect("the long-poll ended early").unwrap().unwrap();
    assert_eq!(answer.status(), 401);
}

async fn open_streams_and_long_polls_are_capped_per_credential(engine: Engine) {
    let app = spawn_app_with(engine, &["--max-streams", "2"]).await;
    let ws = app.workspace("main").await;
    let token = app.token(ws, &[Scope::SecretsList, Scope::WorkflowsRun]).await;
    let other = app.token(ws, &[Scope::SecretsList]).await;
    let (_, cookie) = member_session(&app, ws, "alice", "owner").await;

    let first = events(&app, ws, &Auth::Token(token.clone())).await;
    let _second = events(&app, ws, &Auth::Token(token.clone())).await;
    let third = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/events"), &token).send().await.unwrap();
    let poll = app
        .req(Method::GET, &format!("/api/v1/workspaces/{ws}/workflows/{}/wait?timeout=1", Uuid::new_v4()), &token)
        .send()
        .await
        .unwrap();
    let others = events(&app, ws, &Auth::Token(other)).await;
    let sessions =
        [events(&app, ws, &Auth::Cookie(cookie.clone())).await, events(&app, ws, &Auth::Cookie(cookie.clone())).await];
    let third_session = app
        .client
        .get(format!("{}/api/v1/workspaces/{ws}/events", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();

    assert_eq!(third.status(), 429);
    assert!(third.headers().contains_key("retry-after"));
    assert_eq!(poll.status(), 429, "long-polls count against the same cap");
    assert_eq!(others.status(), 200, "the cap is per token");
    assert_eq!(third_session.status(), 429, "and per session");
    drop((others, sessions));

    drop(first);
    // The slot comes back once the server notices the closed stream.
    let mut reopened = 0;
    for _ in 0..125 {
        let again = app.req(Method::GET, &format!("/api/v1/workspaces/{ws}/events"), &token).send().await.unwrap();
        if again.status() == 200 {
            reopened = 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(reopened, 200, "a closed stream gives its slot back");
}

both_engines!(serial:
    an_event_stream_ends_when_its_token_is_revoked_or_expires,
    an_event_stream_ends_when_the_session_signs_out_or_the_member_is_removed,
    a_long_poll_ends_when_its_token_is_revoked,
    open_streams_and_long_polls_are_capped_per_credential,
);
