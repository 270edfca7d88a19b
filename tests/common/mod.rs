//! Test harness: `spawn_app` starts the real application on port 0 over a fresh, migrated
//! database (a SQLite file in a temp dir, or a new PostgreSQL database), with typed helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine as _;
use clap::Parser;
use loopstack_secrets::server::config::Cli;
use loopstack_secrets::server::domain::Scope;
use loopstack_secrets::server::service::access;
use loopstack_secrets::server::state::{self, AppState};
use rand::RngCore;
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use tempfile::TempDir;
use uuid::Uuid;

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Engine {
    Sqlite,
    /// PostgreSQL, with the URL of a server database to create test databases from.
    Postgres(String),
}

/// The PostgreSQL server to test against, when one answers (`DATABASE_URL`, else the local
/// default). With `REQUIRE_POSTGRES=1` (the test command sets it) an absent server fails.
pub fn postgres() -> Option<Engine> {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let reachable =
        std::net::TcpStream::connect_timeout(&"127.0.0.1:5432".parse().unwrap(), std::time::Duration::from_secs(1))
            .is_ok()
            || std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"));
    if reachable {
        Some(Engine::Postgres(url))
    } else if std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_POSTGRES=1 but PostgreSQL does not answer at 127.0.0.1:5432");
    } else {
        eprintln!("PostgreSQL not reachable: skipping the PostgreSQL variant");
        None
    }
}

/// Held by tests that render Studio pages or call server functions. Leptos keeps
/// process-wide reactive state; with many test runtimes serving renders at once in one process,
/// a render now and then never wakes (seen about once in 300 runs of this binary in parallel,
/// never with one runtime as a real server has), so those tests take turns.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs an async test body on SQLite and on PostgreSQL (`serial:` first: one test at a time,
/// see [`SERIAL`]).
#[macro_export]
macro_rules! both_engines {
    (serial: $($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let _turn = $crate::common::SERIAL.lock().await;
                super::$name($crate::common::Engine::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let _turn = $crate::common::SERIAL.lock().await;
                if let Some(engine) = $crate::common::postgres() {
                    super::$name(engine).await
                }
            }
        }
    )* };
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Engine::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(engine) = $crate::common::postgres() {
                    super::$name(engine).await
                }
            }
        }
    )* };
}

/// A running application and everything a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub state: AppState,
    pub client: Client,
    pub dir: TempDir,
    pub database_url: String,
    pub master_key: String,
    server: tokio::task::JoinHandle<()>,
}

/// A fresh random master key, base64.
pub fn new_master_key() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// A fresh database URL for `engine` inside `dir` (SQLite) or as a new database (PostgreSQL).
pub async fn fresh_database(engine: &Engine, dir: &std::path::Path) -> String {
    match engine {
        Engine::Sqlite => format!("sqlite://{}", dir.join("test.db").display()),
        Engine::Postgres(server_url) => {
            use sqlx::Connection;
            let name = format!("lss_test_{}", Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(server_url).await.expect("connect to PostgreSQL");
            // The name is a UUID made here, not input.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let (base, _) = server_url.rsplit_once('/').expect("a PostgreSQL URL has a database part");
            format!("{base}/{name}")
        }
    }
}

/// The configuration a test server runs with.
pub fn config_for(
    dir: &std::path::Path,
    database_url: &str,
    extra: &[&str],
) -> loopstack_secrets::server::config::Config {
    let mut args = vec![
        "loopstack-secrets".to_string(),
        "--data-dir".into(),
        dir.display().to_string(),
        "--database-url".into(),
        database_url.to_string(),
        "--addr".into(),
        "127.0.0.1:0".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(args).config
}

/// Starts the app on a fresh database.
pub async fn spawn_app(engine: Engine) -> TestApp {
    spawn_app_with(engine, &[]).await
}

/// Starts the app on a fresh database with extra command-line settings.
pub async fn spawn_app_with(engine: Engine, extra: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = fresh_database(&engine, dir.path()).await;
    let master_key = new_master_key();
    serve(dir, database_url, master_key, extra).await
}

/// Starts the app on a fresh database, reading the global keys' values from `env` instead of
/// the process's environment.
pub async fn spawn_app_with_env(engine: Engine, extra: &[&str], env: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = fresh_database(&engine, dir.path()).await;
    let env: std::collections::HashMap<String, String> =
        env.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    serve_with_env(dir, database_url, new_master_key(), extra, move |name| env.get(name).cloned()).await
}

/// Starts the app over an existing data dir and database.
pub async fn serve(dir: TempDir, database_url: String, master_key: String, extra: &[&str]) -> TestApp {
    serve_with_env(dir, database_url, master_key, extra, |name| std::env::var(name).ok()).await
}

/// [`serve`], reading the global keys' values through `env`.
pub async fn serve_with_env(
    dir: TempDir,
    database_url: String,
    master_key: String,
    extra: &[&str],
    env: impl Fn(&str) -> Option<String>,
) -> TestApp {
    let config = config_for(dir.path(), &database_url, extra);
    let opened = state::open_with_env(config, Some(&master_key), env).await.expect("open app state");
    let state = opened.state;
    state.start_background().await.expect("start background tasks");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let app = loopstack_secrets::server::app_router(state.clone());
    let header_timeout = std::time::Duration::from_secs(state.config.header_timeout_secs);
    let server = tokio::spawn(loopstack_secrets::server::web::http::serve(
        listener,
        app,
        header_timeout,
        std::future::pending(),
    ));
    let client = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { addr, base: format!("http://{addr}"), state, client, dir, database_url, master_key, server }
}

impl TestApp {
    /// Stops the server and closes the pool, keeping the data dir and database.
    pub async fn stop(self) -> (TempDir, String, String) {
        self.server.abort();
        let _ = self.server.await;
        self.state.shutdown().await;
        (self.dir, self.database_url, self.master_key)
    }

    /// A new workspace (no members).
    pub async fn workspace(&self, name: &str) -> Uuid {
        access::create_workspace(&self.state.db, &self.state.kek, name, None).await.expect("create workspace")
    }

    /// A token for `workspace` with `scopes`.
    pub async fn token(&self, workspace: Uuid, scopes: &[Scope]) -> String {
        access::create_token(&self.state.db, workspace, "test", scopes, None, &test_actor())
            .await
            .expect("create token")
            .1
    }

    /// A token with every secrets scope.
    pub async fn writer_token(&self, workspace: Uuid) -> String {
        self.token(workspace, &[Scope::SecretsList, Scope::SecretsWrite, Scope::SecretsRead]).await
    }

    /// A request to `path` with a bearer token.
    pub fn req(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token)
    }

    /// `GET .../secrets`
    pub async fn list(&self, ws: Uuid, token: &str) -> Response {
        self.req(Method::GET, &format!("/api/v1/workspaces/{ws}/secrets"), token).send().await.unwrap()
    }

    /// `POST .../secrets`
    pub async fn create(&self, ws: Uuid, token: &str, key: &str, value: &str) -> Response {
        self.req(Method::POST, &format!("/api/v1/workspaces/{ws}/secrets"), token)
            .json(&serde_json::json!({"key": key, "value": value}))
            .send()
            .await
            .unwrap()
    }

    /// `PUT .../secrets/upsert`
    pub async fn upsert(&self, ws: Uuid, token: &str, key: &str, value: &str) -> Response {
        self.req(Method::PUT, &format!("/api/v1/workspaces/{ws}/secrets/upsert"), token)
            .json(&serde_json::json!({"key": key, "value": value}))
            .send()
            .await
            .unwrap()
    }

    /// `PUT .../secrets/:id`
    pub async fn update(&self, ws: Uuid, token: &str, id: &str, body: Value) -> Response {
        self.req(Method::PUT, &format!("/api/v1/workspaces/{ws}/secrets/{id}"), token).json(&body).send().await.unwrap()
    }

    /// `DELETE .../secrets/:id`
    pub async fn delete(&self, ws: Uuid, token: &str, id: &str) -> Response {
        self.req(Method::DELETE, &format!("/api/v1/workspaces/{ws}/secrets/{id}"), token).send().await.unwrap()
    }

    /// The decrypted value of `key`, read through the service as trusted code would.
    pub async fn value_of(&self, ws: Uuid, key: &str) -> Option<String> {
        let key = self.state.secrets.parse_key(key).unwrap();
        self.state
            .secrets
            .read_value(ws, &key, &test_actor())
            .await
            .expect("read value")
            .map(|v| v.expose().to_string())
    }

    /// A user with a password; returns the user id.
    pub async fn user(&self, username: &str, password: &str) -> Uuid {
        access::create_user(&self.state.db, username, password, false).await.expect("create user")
    }

    /// Makes `user` a member of `ws` with `role`.
    pub async fn add_member(&self, ws: Uuid, user: Uuid, role: &str) {
        let mut tx = self.state.db.begin().await.expect("begin");
        let role = loopstack_secrets::model::Role::parse(role).expect("a role name");
        loopstack_secrets::server::store::insert_membership_in(&mut tx, ws, user, role).await.expect("add member");
        tx.commit().await.expect("commit");
    }

    /// Signs in through the Studio's form endpoint; returns the response (cookie in it).
    pub async fn sign_in(&self, username: &str, password: &str) -> Response {
        self.client
            .post(format!("{}/studio/sign_in", self.base))
            .header("origin", &self.base)
            .header("accept", "text/html")
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    /// Calls a Studio server function as a hydrated page does (a form body with the session's
    /// CSRF field, no `Accept: text/html`), with `cookie` (`name=value`).
    pub async fn studio(&self, cookie: &str, function: &str, form: &[(&str, String)]) -> Response {
        let mut form = form.to_vec();
        form.push(("csrf", loopstack_secrets::server::web::csrf::csrf_token(cookie.split_once('=').unwrap().1)));
        self.client
            .post(format!("{}/studio/{function}", self.base))
            .header("cookie", cookie)
            .header("origin", &self.base)
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Calls an agent tool over REST: `POST .../tools/{name}` with `{"args": args}`.
    pub async fn tool(&self, ws: Uuid, token: &str, name: &str, args: Value) -> Response {
        self.req(Method::POST, &format!("/api/v1/workspaces/{ws}/tools/{name}"), token)
            .json(&serde_json::json!({ "args": args }))
            .send()
            .await
            .unwrap()
    }

    /// The session cookie (`name=value`) set by a sign-in response.
    pub fn session_cookie(response: &Response) -> Option<String> {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("lss_session=") && !c.starts_with("lss_session=;"))
            .map(|c| c.split(';').next().unwrap().to_string())
    }

    /// The path of the SQLite file and its WAL, for byte-level checks.
    pub fn sqlite_files(&self) -> Vec<PathBuf> {
        let db = self.dir.path().join("test.db");
        vec![db.clone(), PathBuf::from(format!("{}-wal", db.display()))]
    }
}

/// The actor tests read values as.
pub fn test_actor() -> loopstack_secrets::server::domain::Actor {
    loopstack_secrets::server::domain::Actor("test".into())
}

/// The JSON body of a response.
pub async fn json(response: Response) -> Value {
    response.json().await.expect("JSON body")
}

/// Asserts the standard error body and returns its code.
pub async fn error_code(response: Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    let body = json(response).await;
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}")).to_string();
    assert!(body["error"]["message"].is_string(), "no error message in {body}");
    code
}

/// `line` as the server's log writer writes it: through the guard over every stored (and
/// global) value, refreshed first.
pub async fn logged(app: &TestApp, line: &str) -> String {
    app.state.secrets.refresh_log_guard(None).await.unwrap();
    let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    {
        let sink = captured.clone();
        let writers = loopstack_secrets::server::logging::Masked::new(move || Sink(sink.clone()));
        let mut writer = tracing_subscriber::fmt::MakeWriter::make_writer(&writers);
        std::io::Write::write_all(&mut writer, line.as_bytes()).unwrap();
    }
    let bytes = captured.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// A log sink for [`logged`].
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
