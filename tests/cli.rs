//! The binary as a user runs it: admin commands, `run`, `export`, the first-run message, a
//! refused start with the wrong key, and values absent from the server's log output.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore;

const BIN: &str = env!("CARGO_BIN_EXE_loopstack-secrets");

struct Env {
    dir: tempfile::TempDir,
    key: String,
}

impl Env {
    fn new() -> Env {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        Env { dir: tempfile::tempdir().unwrap(), key: base64::engine::general_purpose::STANDARD.encode(raw) }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("DATABASE_URL")
            .env("LOOPSTACK_SECRETS_DATA_DIR", self.dir.path().join("data"))
            .env("LOOPSTACK_SECRETS_MASTER_KEY", &self.key)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0");
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn workspace(&self) -> String {
        last_line(&self.ok(&["workspace", "create", "main"]))
    }

    fn token(&self, ws: &str) -> String {
        last_line(&self.ok(&[
            "token",
            "create",
            "--workspace",
            ws,
            "--name",
            "t",
            "--scope",
            "secrets:list",
            "--scope",
            "secrets:write",
        ]))
    }
}

fn last_line(out: &str) -> String {
    out.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().to_string()
}

/// A running `serve` process with its stdout lines read until the sign-in line.
struct Server {
    child: std::process::Child,
    stdout: Vec<String>,
    base: String,
}

impl Server {
    fn start(env: &Env, extra_env: &[(&str, &str)], log: &Path) -> Server {
        let mut cmd = env.cmd(&["serve"]);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let (mut stdout, mut base) = (Vec::new(), String::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                panic!("server exited early: {stdout:?}\n{}", std::fs::read_to_string(log).unwrap_or_default());
            }
            if let Some(rest) = line.strip_prefix("loopstack-secrets is listening on ") {
                base = rest.split_whitespace().next().unwrap().to_string();
            }
            let done = line.starts_with("Get an API token");
            stdout.push(line.trim_end().to_string());
            if done {
                break;
            }
        }
        Server { child, stdout, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn workspace_and_token_commands_print_their_result_on_the_last_line() {
    let env = Env::new();

    let ws = env.workspace();
    let token = env.token(&ws);
    let listed = env.ok(&["token", "list", "--workspace", &ws]);
    let workspaces = env.ok(&["workspace", "list"]);

    assert!(uuid::Uuid::parse_str(&ws).is_ok(), "{ws}");
    assert!(token.starts_with("lss_") && !token.contains(' '), "{token}");
    assert!(workspaces.contains(&ws));
    assert!(listed.contains("secrets:list secrets:write") && listed.contains("active"));
    assert!(!listed.contains(&token), "token list never shows a token");
    let token_id = listed.lines().nth(1).unwrap().split('\t').next().unwrap().to_string();
    env.ok(&["token", "revoke", &token_id]);
    assert!(env.ok(&["token", "list"]).contains("revoked"));
}

#[test]
fn bad_arguments_are_clear_errors() {
    let env = Env::new();
    let ws = env.workspace();

    let bad_scope =
        env.cmd(&["token", "create", "--workspace", &ws, "--name", "t", "--scope", "root"]).output().unwrap();
    let no_such_ws =
        env.cmd(&["run", "--workspace", &uuid::Uuid::new_v4().to_string(), "--", "true"]).output().unwrap();
    let help = env.cmd(&["token", "create", "--help"]).output().unwrap();

    assert!(!bad_scope.status.success());
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("unknown scope 'root'"));
    assert!(!no_such_ws.status.success());
    assert!(String::from_utf8_lossy(&no_such_ws.stderr).contains("no workspace"));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--scope"));
}

#[test]
fn run_injects_the_secrets_and_passes_the_exit_code_on_and_export_writes_dotenv() {
    let env = Env::new();
    let ws = env.workspace();
    let server_log = env.dir.path().join("server.log");
    let server = Server::start(&env, &[], &server_log);
    let token = env.token(&ws);
    let client = reqwest::blocking::Client::new();
    for (key, value) in [("API_KEY", "sk-live \"quoted\" $HOME"), ("EMPTY", "")] {
        let response = client
            .put(format!("{}/api/v1/workspaces/{ws}/secrets/upsert", server.base))
            .bearer_auth(&token)
            .json(&serde_json::json!({"key": key, "value": value}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    let script = r#"test "$API_KEY" = 'sk-live "quoted" $HOME' && test -z "$EMPTY" && exit 7; exit 1"#;
    let run: Output = env.cmd(&["run", "--workspace", &ws, "--", "sh", "-c", script]).output().unwrap();
    let exported = env.ok(&["export", "--workspace", &ws, "--format", "dotenv"]);

    assert_eq!(
        run.status.code(),
        Some(7),
        "the command saw the values and its exit code came back: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(exported, "API_KEY='sk-live \"quoted\" $HOME'\nEMPTY=''\n");
}

#[test]
fn the_first_start_prints_how_to_sign_in_and_creates_the_admin() {
    let env = Env::new();
    let log = env.dir.path().join("server.log");

    let server = Server::start(&env, &[], &log);

    let out = server.stdout.join("\n");
    assert!(out.contains("First run: created the administrator 'admin'"), "{out}");
    let password =
        server.stdout.iter().find_map(|l| l.trim().strip_prefix("password: ")).expect("a printed password").to_string();
    assert!(password.len() >= 20);
    assert!(out.contains(&format!("Sign in at {}/sign-in", server.base)));
    assert!(out.contains("Workspace 'default': "));
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let signed_in = client
        .post(format!("{}/studio/sign_in", server.base))
        .header("accept", "text/html")
        .header("origin", &server.base)
        .form(&[("username", "admin"), ("password", password.as_str())])
        .send()
        .unwrap();
    assert_eq!(signed_in.status(), 302);
    assert!(signed_in.headers()["set-cookie"].to_str().unwrap().starts_with("lss_session="));
    drop(server);

    let again = Server::start(&env, &[], &log);
    assert!(!again.stdout.join("\n").contains("password"), "the password is shown only on the first run");
}

#[test]
fn serve_with_the_wrong_master_key_exits_non_zero_and_the_right_key_still_works() {
    let env = Env::new();
    let ws = env.workspace();
    let mut other = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut other);
    let wrong = base64::engine::general_purpose::STANDARD.encode(other);

    let refused = env.cmd(&["serve"]).env("LOOPSTACK_SECRETS_MASTER_KEY", &wrong).output().unwrap();

    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("does not match"), "{stderr}");
    assert!(env.ok(&["workspace", "list"]).contains(&ws));
}

#[test]
fn values_and_passwords_never_appear_in_the_server_log() {
    let env = Env::new();
    let log = env.dir.path().join("server.log");
    let server = Server::start(&env, &[("RUST_LOG", "trace")], &log);
    let ws = env.workspace();
    let token = env.token(&ws);
    let canary = format!("canary{}", uuid::Uuid::new_v4().simple());
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/api/v1/workspaces/{ws}/secrets", server.base);

    let created: serde_json::Value = client
        .post(&url)
        .bearer_auth(&token)
        .json(&serde_json::json!({"key": "K1", "value": canary}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    client
        .put(format!("{url}/upsert"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"key": "K2", "value": canary}))
        .send()
        .unwrap();
    client
        .put(format!("{url}/{}", created["id"].as_str().unwrap()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"value": canary}))
        .send()
        .unwrap();
    client.post(&url).bearer_auth(&token).json(&serde_json::json!({"key": "bad key", "value": canary})).send().unwrap();
    client
        .post(format!("{}/studio/sign_in", server.base))
        .header("origin", &server.base)
        .form(&[("username", "admin"), ("password", canary.as_str())])
        .send()
        .unwrap();
    let agent = last_line(&env.ok(&[
        "token",
        "create",
        "--workspace",
        &ws,
        "--name",
        "a",
        "--scope",
        "tools:call",
        "--scope",
        "workflows:run",
        "--scope",
        "secrets:write",
    ]));
    let asked: serde_json::Value = client
        .post(format!("{}/api/v1/workspaces/{ws}/tools/request_secrets", server.base))
        .bearer_auth(&agent)
        .json(&serde_json::json!({"variables": [{"key": "K3"}]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let run = asked["pending"]["workflowId"].as_str().unwrap();
    let submitted = client
        .post(format!("{}/api/v1/workspaces/{ws}/workflows/{run}/transitions/secretsSubmitted", server.base))
        .bearer_auth(&agent)
        .json(&serde_json::json!({"variables": [{"key": "K3", "value": canary}]}))
        .send()
        .unwrap();
    assert_eq!(submitted.status(), 200);
    // The same values through the Studio's server functions, signed in as the first-run admin.
    let password = server
        .stdout
        .iter()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("the first-run password")
        .to_string();
    let signed_in = client
        .post(format!("{}/studio/sign_in", server.base))
        .header("origin", &server.base)
        .form(&[("username", "admin"), ("password", password.as_str())])
        .send()
        .unwrap();
    let cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("lss_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a session");
    let csrf = loopstack_secrets::server::web::csrf::csrf_token(cookie.strip_prefix("lss_session=").unwrap());
    let default_ws = server
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("Workspace 'default': "))
        .expect("the default workspace")
        .trim()
        .to_string();
    let studio = |function: &str, form: &[(&str, &str)]| {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        form.push(("csrf", &csrf));
        let response = client
            .post(format!("{}/studio/{function}", server.base))
            .header("cookie", &cookie)
            .header("origin", &server.base)
            .form(&form)
            .send()
            .unwrap();
        assert!(response.status().is_success(), "{function}: {}", response.status());
        response.text().unwrap()
    };
    let created = studio("create_secret", &[("workspace_id", &default_ws), ("key", "STUDIO_KEY"), ("value", &canary)]);
    let id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["id"].as_str().unwrap().to_string();
    studio("update_secret", &[("workspace_id", &default_ws), ("id", &id), ("value", &canary)]);
    studio("change_password", &[("current_password", &password), ("new_password", &canary)]);
    drop(server);

    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("create_secret") || log.contains("studio"),
        "the Studio calls were logged at trace: {} bytes",
        log.len()
    );
    assert!(log.contains("K1") || log.contains("secrets"), "trace logging was on: {} bytes", log.len());
    assert!(!log.contains(&canary), "a value reached the log");
    assert!(!log.contains(&token), "a token reached the log");
}

#[test]
fn rotate_master_key_rewraps_the_data_keys_under_the_new_key() {
    let env = Env::new();
    let ws = env.workspace();
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let new_key = base64::engine::general_purpose::STANDARD.encode(raw);

    let rotated = env.cmd(&["rotate-master-key"]).env("LOOPSTACK_SECRETS_NEW_MASTER_KEY", &new_key).output().unwrap();
    let with_old = env.cmd(&["workspace", "list"]).output().unwrap();
    let with_new = env.cmd(&["workspace", "list"]).env("LOOPSTACK_SECRETS_MASTER_KEY", &new_key).output().unwrap();

    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    assert!(String::from_utf8_lossy(&rotated.stdout).contains("Rewrapped 1 data keys"));
    assert!(!with_old.status.success(), "the old key no longer opens the store");
    assert!(String::from_utf8_lossy(&with_new.stdout).contains(&ws));
}

#[test]
fn import_reads_back_what_export_wrote_and_a_bad_file_stores_nothing() {
    let env = Env::new();
    let (a, b) = (env.workspace(), env.workspace());
    let source = env.dir.path().join("source.env");
    std::fs::write(
        &source,
        "# copied from a server\nAPI_KEY=\"sk \\\"live\\\" \\$HOME\"\nexport PLAIN='x y'\nEMPTY=\n",
    )
    .unwrap();
    let broken = env.dir.path().join("broken.env");
    std::fs::write(&broken, "GOOD=1\n1BAD=2\n").unwrap();

    let imported = env.ok(&["import", "--workspace", &a, source.to_str().unwrap()]);
    let exported = env.ok(&["export", "--workspace", &a, "--format", "dotenv"]);
    let copy = env.dir.path().join("copy.env");
    std::fs::write(&copy, &exported).unwrap();
    env.ok(&["import", "--workspace", &b, copy.to_str().unwrap()]);
    let refused = env.cmd(&["import", "--workspace", &b, broken.to_str().unwrap()]).output().unwrap();

    assert!(imported.contains("Imported 3 secrets"), "{imported}");
    assert_eq!(exported, "API_KEY='sk \"live\" $HOME'\nEMPTY=''\nPLAIN='x y'\n");
    assert_eq!(
        env.ok(&["export", "--workspace", &b, "--format", "dotenv"]),
        exported,
        "a round trip keeps every value"
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("key must match"));
    assert!(
        !env.ok(&["export", "--workspace", &b, "--format", "dotenv"]).contains("GOOD"),
        "nothing of a bad file is stored"
    );
}

#[test]
fn rotate_data_key_reencrypts_a_workspace_and_its_values_still_export() {
    let env = Env::new();
    let ws = env.workspace();
    let source = env.dir.path().join("source.env");
    std::fs::write(&source, (0..30).map(|i| format!("KEY_{i:02}=value-{i}\n")).collect::<String>()).unwrap();
    env.ok(&["import", "--workspace", &ws, source.to_str().unwrap()]);
    let before = env.ok(&["export", "--workspace", &ws]);

    let rotated = env.ok(&["rotate-data-key", "--workspace", &ws, "--batch", "7"]);
    let again = env.ok(&["rotate-data-key", "--workspace", &ws]);

    assert_eq!(
        last_line(&rotated),
        format!("Workspace {ws} now uses data key version 2: re-encrypted 30 values, deleted 1 old keys.")
    );
    assert!(again.contains("version 3: re-encrypted 30 values"), "{again}");
    assert_eq!(env.ok(&["export", "--workspace", &ws]), before);
}

/// Stores `pairs` in `ws` through the library, as data written before keys were checked would
/// be (reserved names included).
#[test]
fn run_and_export_overlay_the_workspaces_secrets_on_the_global_values_of_their_environment() {
    let env = Env::new();
    let ws = env.workspace();
    store_directly(&env, &ws, &[("SHARED_KEY", "workspace-wins-123")]);
    let with_globals = |args: &[&str]| {
        let mut cmd = env.cmd(args);
        cmd.env("LOOPSTACK_SECRETS_GLOBAL_KEYS", "GLOBAL_ONLY,SHARED_KEY,GLOBAL_UNSET")
            .env("GLOBAL_ONLY", "global-value-456")
            .env("SHARED_KEY", "global-loses-789")
            .env_remove("GLOBAL_UNSET");
        cmd.output().unwrap()
    };

    let script =
        r#"test "$SHARED_KEY" = workspace-wins-123 && test "$GLOBAL_ONLY" = global-value-456 && exit 9; exit 1"#;
    let run = with_globals(&["run", "--workspace", &ws, "--", "sh", "-c", script]);
    let only = with_globals(&["run", "--workspace", &ws, "--only", "GLOBAL_ONLY", "--", "true"]);
    let exported = with_globals(&["export", "--workspace", &ws, "--format", "dotenv"]);
    let unset = with_globals(&["run", "--workspace", &ws, "--only", "GLOBAL_UNSET", "--", "true"]);
    let reserved = {
        let mut cmd = env.cmd(&["run", "--workspace", &ws, "--", "true"]);
        cmd.env("LOOPSTACK_SECRETS_GLOBAL_KEYS", "GLOBAL_ONLY,LD_PRELOAD").output().unwrap()
    };

    assert_eq!(run.status.code(), Some(9), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(only.status.success(), "a global key may be chosen: {}", String::from_utf8_lossy(&only.stderr));
    assert_eq!(
        String::from_utf8(exported.stdout).unwrap(),
        "GLOBAL_ONLY='global-value-456'\nSHARED_KEY='workspace-wins-123'\n"
    );
    assert!(!unset.status.success(), "a global key not set in the environment is absent");
    assert!(!reserved.status.success());
    let message = String::from_utf8_lossy(&reserved.stderr);
    assert!(message.contains("LOOPSTACK_SECRETS_GLOBAL_KEYS") && message.contains("LD_PRELOAD"), "{message}");
}

fn store_directly(env: &Env, ws: &str, pairs: &[(&str, &str)]) {
    use clap::Parser;
    use loopstack_secrets::server::domain::SecretKey;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let data = env.dir.path().join("data");
        let config =
            loopstack_secrets::server::config::Cli::parse_from(["x", "--data-dir", data.to_str().unwrap()]).config;
        let state = loopstack_secrets::server::state::open(config, Some(&env.key)).await.unwrap().state;
        let ws = ws.parse().unwrap();
        for (key, value) in pairs {
            let key = SecretKey::existing(key, state.secrets.limits()).unwrap();
            let value = state.secrets.parse_value(value.to_string()).unwrap();
            state
                .secrets
                .upsert(ws, &key, &value, &loopstack_secrets::server::domain::Actor("test".into()))
                .await
                .unwrap();
        }
        state.shutdown().await;
    });
}

#[test]
fn run_refuses_a_reserved_key_unless_allowed_and_keeps_its_own_configuration_from_the_child() {
    let env = Env::new();
    let ws = env.workspace();
    let marker = env.dir.path().join("ran-bash-env");
    let script = env.dir.path().join("evil.sh");
    std::fs::write(&script, format!("touch {}\n", marker.display())).unwrap();
    store_directly(&env, &ws, &[("BASH_ENV", script.to_str().unwrap()), ("API_KEY", "sk-1")]);
    std::fs::write(env.dir.path().join(".env"), "LOOPSTACK_SECRETS_FROM_DOTENV=dotenv-leak\n").unwrap();
    let db_url = format!("sqlite://{}", env.dir.path().join("data/loopstack-secrets.db").display());

    let refused = env.cmd(&["run", "--workspace", &ws, "--", "bash", "-c", "echo hi"]).output().unwrap();
    let refused_export = env.cmd(&["export", "--workspace", &ws]).output().unwrap();
    let allowed = env
        .cmd(&["run", "--workspace", &ws, "--allow-key", "BASH_ENV", "--", "sh", "-c", "env"])
        .env("DATABASE_URL", &db_url)
        .env("LOOPSTACK_SECRETS_SHELL_SETTING", "shell-leak")
        .output()
        .unwrap();

    assert!(!refused.status.success(), "a reserved key stops run");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("BASH_ENV") && stderr.contains("--allow-key"), "{stderr}");
    assert!(!marker.exists(), "the script named by BASH_ENV never ran");
    assert!(!refused_export.status.success(), "export refuses it too");
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
    let child_env = String::from_utf8(allowed.stdout).unwrap();
    assert!(child_env.contains("API_KEY=sk-1") && child_env.contains("BASH_ENV="), "{child_env}");
    for leak in ["LOOPSTACK_SECRETS_", "DATABASE_URL=", "dotenv-leak", "shell-leak", &env.key] {
        assert!(!child_env.contains(leak), "the child saw {leak}: {child_env}");
    }
}

#[test]
fn export_is_safe_to_source_in_every_shell_and_import_reads_it_back_byte_for_byte() {
    const HOSTILE: &[&str] = &[
        "`touch pwned`",
        "$(touch pwned)",
        "${HOME}",
        "it's \"quoted\" both ways",
        "'",
        "\\",
        "back\\slash\\n",
        "line one\nline two\n",
        "# not a comment",
        "value # with hash",
        "  leading and trailing spaces  ",
        "crlf\r\nline",
        "ünïcödé ✓ 日本",
        "a'\\''b",
        "!bang; rm -rf / & echo | cat > out",
    ];
    let env = Env::new();
    let (ws, copy) = (env.workspace(), env.workspace());
    let pairs: Vec<(String, &str)> = HOSTILE.iter().enumerate().map(|(i, v)| (format!("K{i:02}"), *v)).collect();
    store_directly(&env, &ws, &pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect::<Vec<_>>());
    let exported = env.ok(&["export", "--workspace", &ws, "--format", "dotenv"]);
    let sandbox = tempfile::tempdir().unwrap();
    let file = sandbox.path().join("exported.env");
    std::fs::write(&file, &exported).unwrap();

    let shells: Vec<&str> = ["sh", "bash", "dash", "zsh"]
        .into_iter()
        .filter(|s| Command::new(s).arg("-c").arg("true").status().is_ok())
        .collect();
    assert!(shells.len() >= 3, "the test needs sh, bash and dash at least (zsh too in CI): {shells:?}");
    for shell in &shells {
        for (key, value) in &pairs {
            let out = Command::new(shell)
                .current_dir(sandbox.path())
                .arg("-c")
                .arg(format!("set -a; . ./exported.env; printf '%s' \"${key}\""))
                .output()
                .unwrap();
            assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8(out.stdout).unwrap(), *value, "{shell} read {key} back wrong");
        }
        assert!(!sandbox.path().join("pwned").exists(), "sourcing in {shell} ran a command");
    }
    env.ok(&["import", "--workspace", &copy, file.to_str().unwrap()]);
    assert_eq!(env.ok(&["export", "--workspace", &copy]), exported, "import reads every byte back");
}
