//! Faults under load, with the server binary as it runs in production: killed with SIGKILL while
//! it acknowledges upserts, and PostgreSQL going away and coming back. Every acknowledged write
//! must be there afterwards, and a run waiting for a user must survive.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Engine;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_loopstack-secrets");

/// One installation: a data dir, a database and a master key, served by the binary.
struct Node {
    dir: PathBuf,
    database_url: String,
    key: String,
}

impl Node {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("LOOPSTACK_SECRETS_DATA_DIR", &self.dir)
            .env("LOOPSTACK_SECRETS_MASTER_KEY", &self.key)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn");
        cmd
    }

    /// A CLI command's whole standard output.
    fn cli(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn last_line(&self, args: &[&str]) -> String {
        self.cli(args).lines().rfind(|l| !l.trim().is_empty()).unwrap().trim().to_string()
    }

    /// Starts `serve`; the child and its base URL once it answers.
    fn serve(&self) -> (Child, String) {
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("server.log")).unwrap();
        let mut child = self.cmd(&["serve"]).stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut base = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("loopstack-secrets is listening on ") {
                base = rest.split_whitespace().next().unwrap().to_string();
            }
            if line.starts_with("Get an API token") {
                break;
            }
        }
        assert!(
            !base.is_empty(),
            "the server did not start: {}",
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
        std::thread::spawn(move || for _ in lines {});
        (child, base)
    }

    /// The workspace's values, through `export`.
    fn values(&self, ws: &str) -> HashMap<String, String> {
        let text = self.cli(&["export", "--workspace", ws]);
        loopstack_secrets::server::domain::dotenv::parse(&text)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect()
    }
}

async fn node(engine: &Engine, dir: &Path) -> Node {
    let database_url = common::fresh_database(engine, dir).await;
    Node { dir: dir.join("data"), database_url, key: common::new_master_key() }
}

/// Upserts distinct keys from `tasks` tasks until `stop`; records what the server acknowledged
/// and every status that was not a 200.
struct Load {
    acknowledged: Arc<Mutex<Vec<(String, String)>>>,
    refused: Arc<Mutex<Vec<(u16, Value)>>>,
    failed_to_connect: Arc<Mutex<usize>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, ws: &str, token: &str, tasks: usize) -> Load {
        let load = Load {
            acknowledged: Arc::default(),
            refused: Arc::default(),
            failed_to_connect: Arc::default(),
            stop: Arc::default(),
            tasks: Vec::new(),
        };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        let url = format!("{base}/api/v1/workspaces/{ws}/secrets/upsert");
        let tasks = (0..tasks)
            .map(|t| {
                let (client, url, token) = (client.clone(), url.clone(), token.to_string());
                let (acknowledged, refused, failed, stop) = (
                    load.acknowledged.clone(),
                    load.refused.clone(),
                    load.failed_to_connect.clone(),
                    load.stop.clone(),
                );
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        i += 1;
                        let (key, value) = (format!("K{t}_{i}"), format!("value-{t}-{i}"));
                        match client
                            .put(&url)
                            .bearer_auth(&token)
                            .json(&json!({"key": key, "value": value}))
                            .send()
                            .await
                        {
                            Ok(r) if r.status() == 200 => acknowledged.lock().unwrap().push((key, value)),
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let body = r.json().await.unwrap_or(Value::Null);
                                refused.lock().unwrap().push((status, body));
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            Err(_) => {
                                *failed.lock().unwrap() += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Load { tasks, ..load }
    }

    async fn stop(self) -> (Vec<(String, String)>, Vec<(u16, Value)>, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let take = |m: Arc<Mutex<Vec<(String, String)>>>| std::mem::take(&mut *m.lock().unwrap());
        let refused = std::mem::take(&mut *self.refused.lock().unwrap());
        let failed = *self.failed_to_connect.lock().unwrap();
        (take(self.acknowledged), refused, failed)
    }

    fn acknowledged_so_far(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }
}

/// A `secrets_request` run waiting for the user; its id.
async fn waiting_run(base: &str, ws: &str, token: &str) -> String {
    let run: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/workspaces/{ws}/workflows"))
        .bearer_auth(token)
        .json(&json!({"workflow": "secrets_request", "args": {"variables": [{"key": "LATER_KEY"}]}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(run["status"], "waiting");
    run["id"].as_str().unwrap().to_string()
}

/// The run is still waiting and completes when the user answers.
async fn completes_after_the_fault(base: &str, ws: &str, token: &str, run: &str) {
    let client = reqwest::Client::new();
    let read: Value = client
        .get(format!("{base}/api/v1/workspaces/{ws}/workflows/{run}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "waiting", "{read}");
    let submitted = client
        .post(format!("{base}/api/v1/workspaces/{ws}/workflows/{run}/transitions/secretsSubmitted"))
        .bearer_auth(token)
        .json(&json!({"variables": [{"key": "LATER_KEY", "value": "answered"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 200);
    let submitted: Value = submitted.json().await.unwrap();
    assert_eq!(submitted["status"], "completed");
}

fn setup(node: &Node) -> (String, String) {
    let ws = node.last_line(&["workspace", "create", "main"]);
    let token = node.last_line(&[
        "token",
        "create",
        "--workspace",
        &ws,
        "--name",
        "load",
        "--scope",
        "secrets:list",
        "--scope",
        "secrets:write",
        "--scope",
        "workflows:run",
    ]);
    (ws, token)
}

async fn acknowledged_upserts_survive_a_sigkill(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let node = node(&engine, dir.path()).await;
    node.cli(&["migrate"]);
    let (ws, token) = setup(&node);
    let (mut server, base) = node.serve();
    let run = waiting_run(&base, &ws, &token).await;

    let load = Load::start(&base, &ws, &token, 16);
    let deadline = Instant::now() + Duration::from_secs(30);
    while load.acknowledged_so_far() < 100 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().unwrap(); // SIGKILL: no shutdown, no flush
    server.wait().unwrap();
    let (acknowledged, refused, _) = load.stop().await;

    let (mut server, base) = node.serve();
    let stored = node.values(&ws);

    assert!(acknowledged.len() >= 100, "the load ran: {} acknowledged", acknowledged.len());
    assert!(refused.is_empty(), "nothing was refused before the kill: {refused:?}");
    let lost: Vec<_> = acknowledged.iter().filter(|(k, v)| stored.get(k) != Some(v)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        acknowledged.len(),
        lost.first()
    );
    completes_after_the_fault(&base, &ws, &token, &run).await;
    server.kill().unwrap();
    server.wait().unwrap();
}

/// A PostgreSQL cluster of this test's own, so stopping it disturbs no other test.
struct PrivateCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivateCluster {
    /// Needs root (to run PostgreSQL as the `postgres` user) and PostgreSQL's server binaries.
    fn start() -> Option<PrivateCluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())?;
        if !Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n")) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        assert!(Command::new("chown")
            .args(["postgres:postgres", &dir.path().display().to_string()])
            .status()
            .unwrap()
            .success());
        let cluster = PrivateCluster { dir, bin, port };
        let data = cluster.dir.path().join("data").display().to_string();
        cluster.as_postgres(&[
            &cluster.bin.join("initdb").display().to_string(),
            "-D",
            &data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        cluster.ctl("start");
        Some(cluster)
    }

    fn as_postgres(&self, args: &[&str]) {
        let out = Command::new("runuser").args(["-u", "postgres", "--"]).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let data = self.dir.path().join("data").display().to_string();
        let log = self.dir.path().join("postgres.log").display().to_string();
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let pg_ctl = self.bin.join("pg_ctl").display().to_string();
        match action {
            "start" => self.as_postgres(&[&pg_ctl, "-D", &data, "-l", &log, "-o", &options, "-w", "start"]),
            _ => self.as_postgres(&[&pg_ctl, "-D", &data, "-m", "immediate", "-w", "stop"]),
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &self.bin.join("pg_ctl").display().to_string(),
                "-D",
                &data,
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_is_503_and_the_server_recovers_losing_nothing() {
    let Some(cluster) = PrivateCluster::start() else {
        assert!(
            std::env::var("REQUIRE_POSTGRES").is_err(),
            "REQUIRE_POSTGRES=1 but no private PostgreSQL cluster could be started (needs root)"
        );
        eprintln!("skipped: starting a private PostgreSQL cluster needs root and PostgreSQL's server binaries");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let node = Node { dir: dir.path().join("data"), database_url: cluster.url(), key: common::new_master_key() };
    node.cli(&["migrate"]);
    let (ws, token) = setup(&node);
    let (mut server, base) = node.serve();
    let run = waiting_run(&base, &ws, &token).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();

    let load = Load::start(&base, &ws, &token, 8);
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.ctl("stop");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ready_while_down = client.get(format!("{base}/readyz")).send().await.unwrap();
    let list_while_down =
        client.get(format!("{base}/api/v1/workspaces/{ws}/secrets")).bearer_auth(&token).send().await.unwrap();
    let (ready_status, list_status) = (ready_while_down.status().as_u16(), list_while_down.status().as_u16());
    let list_body: Value = list_while_down.json().await.unwrap();
    let acknowledged_before_restart = load.acknowledged_so_far();
    cluster.ctl("start");
    let deadline = Instant::now() + Duration::from_secs(60);
    while load.acknowledged_so_far() < acknowledged_before_restart + 50 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (acknowledged, refused, failed_to_connect) = load.stop().await;
    let stored = node.values(&ws);

    assert_eq!(ready_status, 503);
    assert_eq!(list_status, 503);
    assert_eq!(list_body["error"]["code"], "unavailable", "{list_body}");
    assert!(refused.iter().any(|(status, _)| *status == 503), "the load saw the outage");
    for (status, body) in &refused {
        assert_eq!(*status, 503, "only 503 while the database is away: {body}");
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
    }
    assert_eq!(failed_to_connect, 0, "the server kept answering");
    assert!(
        acknowledged.len() >= acknowledged_before_restart + 50,
        "writes are acknowledged again after the restart, by themselves"
    );
    let lost: Vec<_> = acknowledged.iter().filter(|(k, v)| stored.get(k) != Some(v)).collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost, e.g. {:?}", lost.len(), lost.first());
    completes_after_the_fault(&base, &ws, &token, &run).await;
    server.kill().unwrap();
    server.wait().unwrap();
}

both_engines!(acknowledged_upserts_survive_a_sigkill);
