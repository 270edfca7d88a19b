//! Load benchmarks of the real server, each beside a baseline run in the same process, so the
//! figures are ratios that hold on a noisy machine. `scripts/bench.sh` builds the release server
//! and runs this; BENCHMARKS.md explains every table.
//!
//! Environment: `LOOPSTACK_BIN` (the release server), `LEPTOS_SITE_ROOT`, `BENCH_SECONDS` (per
//! measurement, default 5), `BENCH_ENGINES` (`sqlite,postgres`), `BENCH_POSTGRES_URL`.
//! Load comes from `wrk` (Debian's package).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sqlx::Connection;

const CONNECTIONS: u32 = 64;

fn main() {
    let bin = PathBuf::from(std::env::var("LOOPSTACK_BIN").expect("LOOPSTACK_BIN: the release server binary"));
    let seconds: u32 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let engines = std::env::var("BENCH_ENGINES").unwrap_or_else(|_| "sqlite,postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let bench = Bench { bin, seconds, runtime };

    println!("# loopstack-secrets load benchmarks\n");
    println!(
        "{} s per measurement, {CONNECTIONS} connections, wrk with 2 threads; server: {}\n",
        seconds,
        bench.bin.display()
    );
    unwrap_cost();
    for engine in engines.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        bench.engine(engine);
    }
}

/// What unwrapping a workspace's data key costs (each write does it once), to weigh a cache of
/// unwrapped keys against the per-request figures below.
fn unwrap_cost() {
    use loopstack_secrets::server::keys::{DataKey, MasterKey};
    let kek = MasterKey::generate();
    let workspace = uuid::Uuid::new_v4();
    let wrapped = kek.wrap(&DataKey::generate(), workspace, 1);
    let rounds = 200_000;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(kek.unwrap(std::hint::black_box(&wrapped), workspace, 1).unwrap());
    }
    let each = started.elapsed().as_secs_f64() / rounds as f64;
    println!(
        "### Unwrapping a data key

{:.2} µs each ({rounds} rounds, AES-256-GCM, one per write)
",
        each * 1e6
    );
}

struct Bench {
    bin: PathBuf,
    seconds: u32,
    runtime: tokio::runtime::Runtime,
}

/// What one wrk run measured, and the server's peak RSS during it.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    peak_rss_mib: f64,
}

impl Bench {
    fn engine(&self, engine: &str) {
        println!("## {engine}\n");
        let server = Server::start(&self.bin, engine);
        let token = server.token(server.workspace);
        let auth = format!("Authorization: Bearer {token}");
        let cookie = format!("Cookie: {}", server.sign_in());
        let idle_rss = server.rss_mib();
        // BENCH_ONLY=polls,reads,writes,ssr,flood (any of them) runs those parts (the reads' bare handler, the
        // baseline of the others, always runs).
        let only = std::env::var("BENCH_ONLY").ok();
        let part = |name: &str| only.as_deref().is_none_or(|only| only.split(',').any(|o| o.trim() == name));

        // 1. Memory with 1,000 requests held in long-poll at once (first, on a fresh process).
        if part("polls") {
            let (before, held, answered) = self.runtime.block_on(long_polls(&server, &token, 1000));
            println!("### 1,000 long-polls held at once\n");
            println!("| idle RSS MiB | before MiB | with 1,000 held MiB | per held request KiB | all answered |");
            println!("|---:|---:|---:|---:|---:|");
            println!(
                "| {idle_rss:.1} | {before:.1} | {held:.1} | {:.1} | {answered} |\n",
                (held - before) * 1024.0 / 1000.0
            );
        }
        // 2. List keys of a workspace with 100 secrets, against a bare handler with the same bytes.
        server.import(server.workspace, 100);
        let list_url = format!("{}/api/v1/workspaces/{}/secrets", server.base, server.workspace);
        let bytes = http_get(&list_url, &[&auth]);
        assert!(bytes.starts_with(b"[{"), "the list answers JSON");
        let baseline = self.runtime.block_on(bare_axum(bytes.clone()));
        let bare = self.wrk(&baseline, &[], None, None);
        if part("reads") {
            let list = self.wrk(&list_url, &[&auth], None, Some(&server));
            println!(
                "### List keys (100 secrets, REST, token auth) vs a bare axum handler returning the same {} bytes\n",
                bytes.len()
            );
            table(&[("bare axum handler", bare, None), ("GET .../secrets", list, Some(bare))]);

            // 2b. The agent's read (get_secret_keys over the tool API) and a run's status, each
            // against a bare handler returning its bytes.
            let tool_url = format!("{}/api/v1/workspaces/{}/tools/get_secret_keys", server.base, server.workspace);
            let tool_bytes = http_post(&tool_url, &[&auth], r#"{"args":{}}"#);
            let tool_script = post_script(&server, "tool.lua", r#"{"args":{}}"#);
            let tool_bare = self.runtime.block_on(bare_axum(tool_bytes.clone()));
            let tool_bare = self.wrk(&tool_bare, &[], Some(&tool_script), None);
            let json_type = "Content-Type: application/json";
            let tool = self.wrk(&tool_url, &[&auth, json_type], Some(&tool_script), Some(&server));
            let run_url = self.runtime.block_on(server.run(&token, "STATUS"));
            let run_bytes = http_get(&run_url, &[&auth]);
            let run_bare = self.runtime.block_on(bare_axum(run_bytes.clone()));
            let run_bare = self.wrk(&run_bare, &[], None, None);
            let run = self.wrk(&run_url, &[&auth], None, Some(&server));
            println!(
            "### get_secret_keys (tool API, {} bytes) and a run's status ({} bytes) vs bare handlers with the same bytes\n",
            tool_bytes.len(),
            run_bytes.len()
        );
            table(&[
                ("bare axum handler (tool's bytes, POST)", tool_bare, None),
                ("POST .../tools/get_secret_keys", tool, Some(tool_bare)),
                ("bare axum handler (run's bytes)", run_bare, None),
                ("GET .../workflows/:id", run, Some(run_bare)),
            ]);

            // 2c. The same read over MCP (streamable HTTP, one session, `tools/call`), against a bare
            // handler answering its bytes.
            let mcp_url = format!("{}/mcp", server.base);
            let session = format!("Mcp-Session-Id: {}", mcp_session(&mcp_url, &auth));
            let (accept, version) = ("Accept: application/json, text/event-stream", "MCP-Protocol-Version: 2025-11-25");
            let call =
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_secret_keys","arguments":{}}}"#;
            let mcp_headers = [auth.as_str(), session.as_str(), accept, version];
            let mcp_bytes = http_post(&mcp_url, &mcp_headers, call);
            assert!(String::from_utf8_lossy(&mcp_bytes).contains("KEY_00000"), "the MCP call lists the keys");
            let mcp_script = mcp_call_script(&server);
            let mcp_bare = self.runtime.block_on(bare_axum(mcp_bytes.clone()));
            let mcp_bare = self.wrk(&mcp_bare, &[], Some(&mcp_script), None);
            let mcp = self.wrk(&mcp_url, &[&auth, &session, accept, version], Some(&mcp_script), Some(&server));
            println!(
                "### get_secret_keys over MCP ({} bytes) vs a bare handler with the same bytes\n",
                mcp_bytes.len()
            );
            table(&[
                ("bare axum handler (MCP's bytes, POST)", mcp_bare, None),
                ("POST /mcp tools/call", mcp, Some(mcp_bare)),
            ]);
        }
        // 3. Durable upserts over 1,000 keys, against raw sqlx running the same upsert.
        if part("writes") {
            let script = upsert_script(&server);
            let fsyncs = FsyncCount::start(server.child.id());
            let upsert = self.wrk(
                &format!("{}/api/v1/workspaces/{}/secrets/upsert", server.base, server.workspace),
                &[&auth, "Content-Type: application/json"],
                Some(&script),
                Some(&server),
            );
            let fsyncs = fsyncs.stop();
            let raw =
                self.runtime.block_on(raw_sqlx_upserts(&server.raw_database_url(engine), self.seconds, Also::Nothing));
            println!("### Durable upsert over 1,000 keys vs raw sqlx (same engine and durability settings, {CONNECTIONS} tasks)\n");
            if engine == "postgres" {
                // The same rows per write as the product's (value, version, outbox event, audit
                // entry and head), by the product's one statement, from raw sqlx: what the
                // database alone can do, without HTTP, auth or sealing.
                let same = self.runtime.block_on(raw_sqlx_same_writes(&server.raw_database_url(engine), self.seconds));
                // What serializes a workspace's writes on PostgreSQL: the chain head (a row lock
                // held until the commit is on disk) and a notification (a lock on the database
                // held through the commit), each alone beside the one-row upsert.
                let url = server.raw_database_url(engine);
                let head = self.runtime.block_on(raw_sqlx_upserts(&url, self.seconds, Also::ChainHead));
                let notify = self.runtime.block_on(raw_sqlx_upserts(&url, self.seconds, Also::Notify));
                table(&[
                    ("raw sqlx upsert (one transaction each)", raw, None),
                    ("raw sqlx upsert + its workspace's chain head, same transaction", head, Some(raw)),
                    ("raw sqlx upsert + pg_notify, same transaction", notify, Some(raw)),
                    ("raw sqlx: the product's statement (lss_upsert_secret)", same, Some(raw)),
                    ("PUT .../secrets/upsert", upsert, Some(raw)),
                ]);
                println!(
                    "PUT .../secrets/upsert is {:.2} of raw sqlx running the product's own statement with the same rows, {:.2} of the one-row upsert that advances a chain head.\n",
                    upsert.rps / same.rps,
                    upsert.rps / head.rps
                );
            } else {
                table(&[
                    ("raw sqlx upsert (one transaction each)", raw, None),
                    ("PUT .../secrets/upsert", upsert, Some(raw)),
                ]);
            }
            if engine == "sqlite" {
                let disk = fsync_rate(server.dir.path());
                match fsyncs {
                Some(fsyncs) => println!(
                    "The server's fsyncs during the upserts (perf, ext4:ext4_sync_file_enter): {fsyncs}, {:.1} upserts per fsync; this disk does {disk:.0} fsyncs/s alone (write 4 KiB + fdatasync, one file, {} s), so one fsync per upsert would cap at {disk:.0} upserts/s.\n",
                    upsert.rps * f64::from(self.seconds) / fsyncs.max(1) as f64,
                    FSYNC_SECONDS
                ),
                None => println!("(perf could not count the server's fsyncs; this disk does {disk:.0} fsyncs/s alone.)\n"),
            }
            }
        }
        // 4. Server-side rendering: the secrets page with 1,000 keys, and the sign-in page.
        if part("ssr") {
            let big = server.workspace_with("ssr-1000", 1000);
            let page = self.wrk(&format!("{}/workspaces/{big}", server.base), &[&cookie], None, Some(&server));
            let sign_in = self.wrk(&format!("{}/sign-in", server.base), &[], None, Some(&server));
            // The page of 100 secrets (target 5), also against a bare handler sending its bytes:
            // what rendering costs beside what copying the page costs.
            let hundred = server.workspace_with("ssr-100", 100);
            let hundred_url = format!("{}/workspaces/{hundred}", server.base);
            let page_bytes = http_get(&hundred_url, &[&cookie]);
            assert!(String::from_utf8_lossy(&page_bytes).contains("KEY_00099"), "the page lists the keys");
            let page_bare = self.runtime.block_on(bare_axum(page_bytes.clone()));
            let page_bare = self.wrk(&page_bare, &[], None, None);
            let page_100 = self.wrk(&hundred_url, &[&cookie], None, Some(&server));
            println!(
                "### Server-side rendering (SsrMode::Async, signed in) vs the bare handler; the page of 100 secrets is {} bytes\n",
                page_bytes.len()
            );
            table(&[
                ("bare axum handler", bare, None),
                ("GET /sign-in", sign_in, Some(bare)),
                ("GET /workspaces/:id (100 secrets)", page_100, Some(bare)),
                ("GET /workspaces/:id (1,000 secrets, first 100)", page, Some(bare)),
                ("bare axum handler (the 100-secret page's bytes)", page_bare, None),
                ("GET /workspaces/:id (100 secrets)", page_100, Some(page_bare)),
            ]);

            // 5. How list and page cost grow with the number of secrets.
            println!("### Growth: list and page at 10 to 10,000 secrets\n");
            println!("| secrets | list req/s | list p50 ms | list p99 ms | page req/s | page p50 ms | page p99 ms | peak RSS MiB |");
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
            for n in [10usize, 100, 1_000, 10_000] {
                let ws = server.workspace_with(&format!("grow-{n}"), n);
                let token = server.token(ws);
                let list = self.wrk(
                    &format!("{}/api/v1/workspaces/{ws}/secrets", server.base),
                    &[&format!("Authorization: Bearer {token}")],
                    None,
                    Some(&server),
                );
                let page = self.wrk(&format!("{}/workspaces/{ws}", server.base), &[&cookie], None, Some(&server));
                println!(
                    "| {n} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} |",
                    list.rps,
                    list.p50_ms,
                    list.p99_ms,
                    page.rps,
                    page.p50_ms,
                    page.p99_ms,
                    list.peak_rss_mib.max(page.peak_rss_mib)
                );
            }
            println!();
        }
        // 6. The list while sign-ins flood the server.
        if part("flood") {
            self.sign_in_flood(&server);
        }

        println!("Peak RSS of the whole run (VmHWM): {:.1} MiB\n", server.peak_rss_mib());
    }

    /// The REST list's latency alone and while a second load generator sends about 125
    /// sign-ins a second with random usernames and wrong passwords (each one a full argon2
    /// check, as from a botnet the per-address limit does not stop), measured back to back.
    fn sign_in_flood(&self, server: &Server) {
        // A workspace of its own with 100 keys (the main one holds the upserts' 1,000 too).
        let ws = server.workspace_with("flood", 100);
        let auth = format!("Authorization: Bearer {}", server.token(ws));
        // The import changed the stored values: the log lines' guard is rebuilt over every
        // value of every workspace (11,000 after the growth step, seconds of one core) within
        // 5 s. Both measurements start after it, so they compare the flood and nothing else.
        std::thread::sleep(Duration::from_secs(15));
        let list_url = format!("{}/api/v1/workspaces/{ws}/secrets", server.base);
        let auth = auth.as_str();
        let quiet = self.wrk(&list_url, &[auth], None, Some(server));
        let script = server.dir.path().join("flood.lua");
        // Twenty connections, each waiting 128 ms between requests: about 125 a second once
        // the answers take a few milliseconds.
        std::fs::write(
            &script,
            r#"
math.randomseed(os.time())
request = function()
  local body = string.format("username=flood%08d&password=wrong-password", math.random(0, 99999999))
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded", ["Origin"] = "__BASE__"}, body)
end
delay = function() return 128 end
"#
            .replace("__BASE__", &server.base),
        )
        .unwrap();
        let flood = Command::new("wrk")
            .args(["-t1", "-c20", &format!("-d{}s", self.seconds + 2), "--latency", "-s"])
            .arg(&script)
            .arg(format!("{}/studio/sign_in", server.base))
            .stdout(Stdio::piped())
            .spawn()
            .expect("wrk");
        std::thread::sleep(Duration::from_secs(1));
        let flooded = self.wrk(&list_url, &[auth], None, Some(server));
        let flood = flood.wait_with_output().unwrap();
        let flood_text = String::from_utf8_lossy(&flood.stdout);
        let sign_ins = parse_wrk(&flood_text);
        let refused = flood_text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|| "0".into());
        println!("### The list (100 secrets, REST) alone and under a sign-in flood\n");
        println!("| | list req/s | list p50 ms | list p99 ms | p99 vs alone |");
        println!("|---|---:|---:|---:|---:|");
        println!("| alone | {:.0} | {:.2} | {:.2} | 1 (baseline) |", quiet.rps, quiet.p50_ms, quiet.p99_ms);
        println!(
            "| during the flood | {:.0} | {:.2} | {:.2} | {:.2} |\n",
            flooded.rps,
            flooded.p50_ms,
            flooded.p99_ms,
            flooded.p99_ms / quiet.p99_ms
        );
        println!(
            "The flood: {:.0} sign-ins/s sent, p50 {:.2} ms, p99 {:.2} ms; answered 401 or 429 (all of them; {refused} counted by wrk as non-2xx).\n",
            sign_ins.rps, sign_ins.p50_ms, sign_ins.p99_ms
        );
    }

    /// Runs wrk against `url`; samples the server's RSS meanwhile.
    fn wrk(&self, url: &str, headers: &[&str], script: Option<&Path>, server: Option<&Server>) -> Load {
        let mut command = Command::new("wrk");
        command.args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{}s", self.seconds),
            "--latency",
            "--timeout",
            "10s",
        ]);
        for header in headers {
            command.args(["-H", header]);
        }
        if let Some(script) = script {
            command.arg("-s").arg(script);
        }
        command.arg(url);
        let done = Arc::new(AtomicBool::new(false));
        let sampler = server.map(|s| {
            let (pid, done) = (s.child.id(), done.clone());
            std::thread::spawn(move || {
                let mut peak = 0.0f64;
                while !done.load(Ordering::Relaxed) {
                    peak = peak.max(rss_mib(pid));
                    std::thread::sleep(Duration::from_millis(50));
                }
                peak
            })
        });
        let output = command.output().expect("wrk (apt-get install wrk)");
        done.store(true, Ordering::Relaxed);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr));
        assert!(!text.contains("Non-2xx"), "errors under load at {url}:\n{text}");
        let mut load = parse_wrk(&text);
        load.peak_rss_mib = sampler.map(|s| s.join().unwrap()).unwrap_or(0.0);
        load
    }
}

fn table(rows: &[(&str, Load, Option<Load>)]) {
    println!("| | req/s | p50 ms | p99 ms | server peak RSS MiB | throughput vs baseline |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, load, baseline) in rows {
        let ratio = baseline
            .map(|b| load.rps / b.rps)
            .map(|r| if r < 0.1 { format!("{r:.3}") } else { format!("{r:.2}") })
            .unwrap_or_else(|| "1 (baseline)".into());
        let rss = if load.peak_rss_mib > 0.0 { format!("{:.1}", load.peak_rss_mib) } else { "-".into() };
        println!("| {name} | {:.0} | {:.2} | {:.2} | {rss} | {ratio} |", load.rps, load.p50_ms, load.p99_ms);
    }
    println!();
}

/// Reads `Requests/sec` and the 50% and 99% latency lines of `wrk --latency`.
fn parse_wrk(text: &str) -> Load {
    let mut load = Load::default();
    for line in text.lines().map(str::trim) {
        if let Some(rps) = line.strip_prefix("Requests/sec:") {
            load.rps = rps.trim().parse().unwrap_or(0.0);
        } else if let Some(p) = line.strip_prefix("50%") {
            load.p50_ms = millis(p.trim());
        } else if let Some(p) = line.strip_prefix("99%") {
            load.p99_ms = millis(p.trim());
        }
    }
    load
}

fn millis(value: &str) -> f64 {
    let split = value.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap_or(0.0);
    match unit {
        "us" => number / 1000.0,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => number,
    }
}

fn rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmRSS:") / 1024.0
}

fn status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

/// A Lua script making wrk send upserts that cycle over 1,000 keys with 64-byte values.
fn upsert_script(server: &Server) -> PathBuf {
    let path = server.dir.path().join("upsert.lua");
    let script = r#"
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"key":"BENCH_%04d","value":"%s%010d"}', n % 1000, string.rep("v", 54), n)
  return wrk.format("PUT", nil, nil, body)
end
"#;
    std::fs::write(&path, script).unwrap();
    path
}

/// Throughput and latency of the requests whose `latencies` were taken over `elapsed`.
fn load_of(mut latencies: Vec<Duration>, elapsed: Duration) -> Load {
    latencies.sort();
    let at =
        |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64() * 1000.0;
    Load { rps: latencies.len() as f64 / elapsed.as_secs_f64(), p50_ms: at(0.50), p99_ms: at(0.99), peak_rss_mib: 0.0 }
}

/// A workspace named `raw` in a raw baseline's database.
async fn raw_workspace<'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(pool: E, workspace: uuid::Uuid) {
    sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, 'raw', $2)")
        .bind(workspace)
        .bind(chrono::Utc::now())
        .execute(pool)
        .await
        .unwrap();
}

/// PostgreSQL: the product's one-statement upsert (`lss_upsert_secret`: the value, its
/// version, the outbox event and the audit entry at its chain's head), run by `CONNECTIONS`
/// tasks over 1,000 keys for `seconds`, each write sealed (here: fixed bytes) for the row its
/// task last saw and sent again for the row there when another task moved it first, as the
/// server does. A write counts once it is written.
async fn raw_sqlx_same_writes(url: &str, seconds: u32) -> Load {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    let workspace = uuid::Uuid::new_v4();
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(16).connect(url).await.unwrap();
    raw_workspace(&pool, workspace).await;
    sqlx::query("INSERT INTO workspace_keys (workspace_id, version, wrapped_key, created_at) VALUES ($1, 1, $2, $3)")
        .bind(workspace)
        .bind(vec![3u8; 60])
        .bind(chrono::Utc::now())
        .execute(&pool)
        .await
        .unwrap();
    let sql = "SELECT o_outcome, o_id, o_version FROM lss_upsert_secret(
                   $1, $2, $3, $4, 1, $5, $6, 3, TRUE, 'bench', $7, NULL, 10, $8, 'secret.upserted', $7, $9, $10, $11, $12,
                   'secret.upserted', $13)";
    let rows: Arc<Mutex<HashMap<String, (uuid::Uuid, i64)>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(seconds.into());
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|t| {
            let (pool, rows) = (pool.clone(), rows.clone());
            tokio::spawn(async move {
                let mut times = Vec::new();
                let mut n = t as usize;
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let key = format!("BENCH_{:04}", n % 1000);
                    loop {
                        let seen = rows.lock().unwrap().get(&key).copied();
                        let (id, version) = seen.map_or_else(|| (uuid::Uuid::new_v4(), 1), |(id, v)| (id, v + 1));
                        let payload = format!(r#"{{"type":"secret.upserted","workspaceId":"{workspace}","secretId":"{id}","key":"{key}"}}"#);
                        let (outcome, now_id, now_version): (String, Option<uuid::Uuid>, Option<i64>) = sqlx::query_as(sql)
                            .bind(workspace)
                            .bind(&key)
                            .bind(id)
                            .bind(version)
                            .bind(vec![7u8; 80])
                            .bind(vec![1u8; 12])
                            .bind(chrono::Utc::now())
                            .bind(uuid::Uuid::new_v4())
                            .bind(vec![5u8; 64])
                            .bind(vec![6u8; 120])
                            .bind(vec![0u8; 32])
                            .bind(uuid::Uuid::new_v4())
                            .bind(payload)
                            .fetch_one(&pool)
                            .await
                            .unwrap();
                        let mut rows = rows.lock().unwrap();
                        match outcome.as_str() {
                            "written" => {
                                rows.insert(key.clone(), (now_id.unwrap(), now_version.unwrap()));
                                break;
                            }
                            "reseal" => match now_id {
                                Some(now_id) => rows.insert(key.clone(), (now_id, now_version.unwrap())),
                                None => rows.remove(&key),
                            },
                            other => panic!("lss_upsert_secret answered {other}"),
                        };
                    }
                    times.push(started.elapsed());
                    n += CONNECTIONS as usize;
                }
                times
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    pool.close().await;
    load_of(latencies, started.elapsed())
}

/// Counts a process's fsyncs on ext4 with `perf stat` while it runs (root, or a permissive
/// `perf_event_paranoid`).
struct FsyncCount(Option<Child>);

impl FsyncCount {
    fn start(pid: u32) -> FsyncCount {
        let perf = Command::new("perf")
            .args(["stat", "-x", ",", "-e", "ext4:ext4_sync_file_enter", "-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok();
        std::thread::sleep(Duration::from_millis(300));
        FsyncCount(perf)
    }

    /// Stops counting; the count, when perf gave one.
    fn stop(self) -> Option<u64> {
        let perf = self.0?;
        Command::new("kill").args(["-INT", &perf.id().to_string()]).status().ok()?;
        let output = perf.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&output.stderr);
        text.lines().find(|line| line.contains("ext4_sync_file_enter"))?.split(',').next()?.trim().parse().ok()
    }
}

const FSYNC_SECONDS: u64 = 2;

/// How many `write` + `fdatasync` rounds of 4 KiB one file in `dir` takes per second.
fn fsync_rate(dir: &Path) -> f64 {
    let mut file = std::fs::File::create(dir.join("fsync-rate.bin")).unwrap();
    let block = [7u8; 4096];
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < Duration::from_secs(FSYNC_SECONDS) {
        file.write_all(&block).unwrap();
        file.sync_data().unwrap();
        rounds += 1;
    }
    rounds as f64 / started.elapsed().as_secs_f64()
}

/// A Lua script making wrk POST `body` as JSON.
fn post_script(server: &Server, name: &str, body: &str) -> PathBuf {
    let path = server.dir.path().join(name);
    let script =
        format!("wrk.method = \"POST\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n");
    std::fs::write(&path, script).unwrap();
    path
}

/// A Lua script making wrk call `get_secret_keys` over MCP, each request with an id of its own
/// (a session refuses a second request with the id of one in flight); each of wrk's threads
/// counts from its own billion.
fn mcp_call_script(server: &Server) -> PathBuf {
    let path = server.dir.path().join("mcp.lua");
    let script = r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread)
  thread:set("first", threads * 1000000000)
  threads = threads + 1
end
function init(args)
  next_id = first
end
function request()
  next_id = next_id + 1
  return wrk.format(nil, nil, nil, '{"jsonrpc":"2.0","id":' .. next_id ..
    ',"method":"tools/call","params":{"name":"get_secret_keys","arguments":{}}}')
end
"#;
    std::fs::write(&path, script).unwrap();
    path
}

/// A bare axum handler answering `body` as JSON to any method; returns its URL.
async fn bare_axum(body: Vec<u8>) -> String {
    let body = axum::body::Bytes::from(body);
    let app = axum::Router::new().route(
        "/list",
        axum::routing::any(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/list")
}

/// The product's upsert statement, run by `CONNECTIONS` tasks over 1,000 keys for `seconds`
/// on a fresh database of the same engine with the product's schema and settings.
async fn raw_sqlx_upserts(url: &str, seconds: u32, also: Also) -> Load {
    let workspace = uuid::Uuid::new_v4();
    let sql = "INSERT INTO secrets (id, workspace_id, key, ciphertext, nonce, key_version, has_value, created_at, created_by, updated_at, updated_by)
               VALUES ($1, $2, $3, $4, $5, 1, TRUE, $6, 'bench', $6, 'bench')
               ON CONFLICT (workspace_id, key) DO UPDATE SET ciphertext = excluded.ciphertext, nonce = excluded.nonce,
                   updated_at = excluded.updated_at, updated_by = excluded.updated_by";
    let deadline = Instant::now() + Duration::from_secs(seconds.into());
    let ciphertext = vec![7u8; 80];
    let nonce = vec![1u8; 12];
    let mut latencies: Vec<Duration> = Vec::new();
    macro_rules! drive {
        ($pool:expr) => {{
            let pool = $pool;
            let tasks: Vec<_> = (0..CONNECTIONS)
                .map(|t| {
                    let (pool, ciphertext, nonce) = (pool.clone(), ciphertext.clone(), nonce.clone());
                    tokio::spawn(async move {
                        let mut times = Vec::new();
                        let mut n = t as usize;
                        while Instant::now() < deadline {
                            let started = Instant::now();
                            let mut tx = pool.begin().await.unwrap();
                            sqlx::query(sql)
                                .bind(uuid::Uuid::new_v4())
                                .bind(workspace)
                                .bind(format!("BENCH_{:04}", n % 1000))
                                .bind(&ciphertext)
                                .bind(&nonce)
                                .bind(chrono::Utc::now())
                                .execute(&mut *tx)
                                .await
                                .unwrap();
                            if let Some(statement) = also.statement() {
                                sqlx::query(statement).bind(workspace).execute(&mut *tx).await.unwrap();
                            }
                            tx.commit().await.unwrap();
                            times.push(started.elapsed());
                            n += CONNECTIONS as usize;
                        }
                        times
                    })
                })
                .collect();
            for task in tasks {
                latencies.extend(task.await.unwrap());
            }
            pool.close().await;
        }};
    }
    let started = Instant::now();
    if url.starts_with("postgres") {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(10).connect(url).await.unwrap();
        raw_workspace(&pool, workspace).await;
        drive!(pool);
    } else {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let options = options
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(10).connect_with(options).await.unwrap();
        sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, 'raw', $2)")
            .bind(workspace)
            .bind(chrono::Utc::now())
            .execute(&pool)
            .await
            .unwrap();
        drive!(pool);
    }
    load_of(latencies, started.elapsed())
}

/// What the raw upsert's transaction does besides its one row (PostgreSQL): each of the
/// product's writes also advances its workspace's audit chain head (one row every write of the
/// workspace updates) and, through the outbox trigger, sends a notification.
#[derive(Clone, Copy, PartialEq)]
enum Also {
    Nothing,
    ChainHead,
    Notify,
}

impl Also {
    fn statement(self) -> Option<&'static str> {
        match self {
            Also::Nothing => None,
            Also::ChainHead => Some(
                "INSERT INTO audit_heads (chain, seq, hash) VALUES ($1, 1, '\\x00')
                 ON CONFLICT (chain) DO UPDATE SET seq = audit_heads.seq + 1",
            ),
            Also::Notify => Some("SELECT pg_notify('lss_bench', $1::text)"),
        }
    }
}

/// Opens `count` long-polls on one waiting run; returns the server's RSS before and while they
/// are held (MiB), and how many were answered once the run moved on.
async fn long_polls(server: &Server, token: &str, count: usize) -> (f64, f64, usize) {
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let run = server.run(token, "HELD").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_mib(server.child.id());
    let wait_url = format!("{run}/wait?timeout=60");
    let waits: Vec<_> = (0..count)
        .map(|_| {
            let request = client.get(&wait_url).bearer_auth(token).send();
            tokio::spawn(async move { request.await.map(|r| r.status().is_success()).unwrap_or(false) })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = rss_mib(server.child.id());
    client.post(format!("{run}/cancel")).bearer_auth(token).json(&serde_json::json!({})).send().await.unwrap();
    let mut answered = 0;
    for wait in waits {
        if wait.await.unwrap() {
            answered += 1;
        }
    }
    (before, held, answered)
}

/// Opens an MCP session at `url` (initialize, then the initialized notification); its id.
fn mcp_session(url: &str, auth: &str) -> String {
    let client = reqwest::blocking::Client::new();
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
    let (name, token) = auth.split_once(": ").unwrap();
    let response = client
        .post(url)
        .header(name, token)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(initialize)
        .send()
        .unwrap();
    assert!(response.status().is_success(), "initialize: {}", response.status());
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let headers = [auth, &format!("Mcp-Session-Id: {session}"), "Accept: application/json, text/event-stream"];
    http_post(url, &headers, initialized);
    session
}

/// A JSON POST with extra `Name: value` headers, blocking; the body.
fn http_post(url: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let client = reqwest::blocking::Client::new();
    send(client.post(url).header("Content-Type", "application/json").body(body.to_string()), headers)
}

/// A GET with extra `Name: value` headers, blocking; the body.
fn http_get(url: &str, headers: &[&str]) -> Vec<u8> {
    send(reqwest::blocking::Client::new().get(url), headers)
}

/// Sends `request` with extra `Name: value` headers; the body of its 2xx answer.
fn send(mut request: reqwest::blocking::RequestBuilder, headers: &[&str]) -> Vec<u8> {
    for header in headers {
        let (name, value) = header.split_once(": ").unwrap();
        request = request.header(name, value);
    }
    let response = request.send().unwrap();
    assert!(response.status().is_success(), "{}: {}", response.url(), response.status());
    response.bytes().unwrap().to_vec()
}

/// The release server in a child process over a fresh database.
struct Server {
    child: Child,
    bin: PathBuf,
    base: String,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    admin_password: String,
    workspace: uuid::Uuid,
}

impl Server {
    fn start(bin: &Path, engine: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let mut env = vec![
            ("LOOPSTACK_SECRETS_DATA_DIR".to_string(), dir.path().display().to_string()),
            ("LOOPSTACK_SECRETS_MASTER_KEY".into(), key),
            ("LEPTOS_SITE_ADDR".into(), format!("127.0.0.1:{port}")),
            ("LOOPSTACK_SECRETS_RUNS_PER_MINUTE".into(), "1000000".into()),
            // The flood measurement stands for many addresses (a botnet), so the per-address
            // limit must not end it early: what is measured is the hashing semaphore.
            ("LOOPSTACK_SECRETS_SIGN_IN_FAILURES_PER_ADDRESS".into(), "1000000000".into()),
            ("LOOPSTACK_SECRETS_SIGN_IN_FAILURES_PER_USER".into(), "1000000000".into()),
            // A thousand long-polls on one token: past the per-credential cap on open streams.
            ("LOOPSTACK_SECRETS_MAX_STREAMS".into(), "2000".into()),
            ("RUST_LOG".into(), "warn".into()),
        ];
        let url = match engine {
            "postgres" => fresh_postgres(),
            _ => format!("sqlite://{}", dir.path().join("bench.db").display()),
        };
        env.push(("DATABASE_URL".into(), url));
        let mut child = Command::new(bin)
            .arg("serve")
            .envs(env.iter().cloned())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut password, mut workspace) = (String::new(), None);
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(p) = line.trim().strip_prefix("password: ") {
                password = p.to_string();
            }
            if let Some(rest) = line.strip_prefix("Workspace 'default': ") {
                workspace = Some(rest.trim().parse().unwrap());
            }
            if line.starts_with("Get an API token") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let server = Server {
            child,
            bin: bin.to_path_buf(),
            base: format!("http://127.0.0.1:{port}"),
            dir,
            env,
            admin_password: password,
            workspace: workspace.expect("the default workspace"),
        };
        for _ in 0..100 {
            if reqwest::blocking::get(format!("{}/healthz", server.base)).is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not start");
    }

    /// Runs a CLI command against the same database; its last output line.
    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new(&self.bin).args(args).envs(self.env.iter().cloned()).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "{args:?}: {text}{}", String::from_utf8_lossy(&output.stderr));
        text.lines().last().unwrap_or_default().trim().to_string()
    }

    /// Starts a secret request for `key` in the main workspace; the URL of the run.
    async fn run(&self, token: &str, key: &str) -> String {
        let ws = self.workspace;
        let run: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/api/v1/workspaces/{ws}/workflows", self.base))
            .bearer_auth(token)
            .json(&serde_json::json!({"workflow": "secrets_request", "args": {"variables": [{"key": key}]}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        format!("{}/api/v1/workspaces/{ws}/workflows/{}", self.base, run["id"].as_str().unwrap())
    }

    fn token(&self, ws: uuid::Uuid) -> String {
        let ws = ws.to_string();
        let scopes = ["secrets:list", "secrets:write", "tools:call", "workflows:run"];
        let mut args = vec!["token", "create", "--workspace", &ws, "--name", "bench"];
        for scope in &scopes {
            args.extend(["--scope", scope]);
        }
        self.cli(&args)
    }

    /// Stores `count` secrets (`KEY_00000`, ...) in `ws` with the `import` command.
    fn import(&self, ws: uuid::Uuid, count: usize) {
        let file = self.dir.path().join(format!("import-{ws}.env"));
        let mut out = std::fs::File::create(&file).unwrap();
        for i in 0..count {
            writeln!(out, "KEY_{i:05}=value-{i:05}-{}", "x".repeat(40)).unwrap();
        }
        drop(out);
        self.cli(&["import", "--workspace", &ws.to_string(), &file.display().to_string()]);
    }

    /// A new workspace owned by the administrator, with `count` secrets.
    fn workspace_with(&self, name: &str, count: usize) -> uuid::Uuid {
        let ws: uuid::Uuid = self.cli(&["workspace", "create", name, "--owner", "admin"]).parse().unwrap();
        self.import(ws, count);
        ws
    }

    /// Signs the administrator in; the session cookie (`name=value`).
    fn sign_in(&self) -> String {
        let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response = client
            .post(format!("{}/studio/sign_in", self.base))
            .header("origin", &self.base)
            .header("accept", "text/html")
            .form(&[("username", "admin"), ("password", self.admin_password.as_str())])
            .send()
            .unwrap();
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("lss_session=") && !c.starts_with("lss_session=;"))
            .map(|c| c.split(';').next().unwrap().to_string())
            .expect("signed in")
    }

    /// A second database of the same engine and settings, migrated, for the raw sqlx baseline.
    fn raw_database_url(&self, engine: &str) -> String {
        let url = match engine {
            "postgres" => fresh_postgres(),
            _ => format!("sqlite://{}", self.dir.path().join("raw.db").display()),
        };
        let output = Command::new(&self.bin)
            .arg("migrate")
            .envs(self.env.iter().cloned())
            .env("DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(output.status.success(), "migrate: {}", String::from_utf8_lossy(&output.stderr));
        url
    }

    fn rss_mib(&self) -> f64 {
        rss_mib(self.child.id())
    }

    fn peak_rss_mib(&self) -> f64 {
        status_kib(self.child.id(), "VmHWM:") / 1024.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new PostgreSQL database on the benchmark server.
fn fresh_postgres() -> String {
    let server =
        std::env::var("BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("lss_bench_{}", uuid::Uuid::new_v4().simple());
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let mut conn = sqlx::PgConnection::connect(&server).await.expect("connect to PostgreSQL");
        // The name is a UUID made here.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    });
    let (base, _) = server.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}
