//! The audit log as a hash chain: unbroken under concurrent writers on both engines, each kind
//! of tampering (edit, delete, reorder, a removed tail, a row written around the chain) named
//! by `audit verify`, entries from before the chain chained at start, `audit export` with the
//! hashes, and entries that name who acted and what they were about.

mod common;

use common::*;
use loopstack_secrets::server::domain::audit::Break;
use loopstack_secrets::server::service::audit::{verify, workspace_log, ChainReport};
use loopstack_secrets::server::store::on_pool;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_loopstack-secrets");

/// Runs `loopstack-secrets audit ARGS` over the app's database; exit success and stdout.
async fn audit_cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(BIN)
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("LOOPSTACK_SECRETS_DATA_DIR", app.dir.path())
        .env("LOOPSTACK_SECRETS_MASTER_KEY", &app.master_key)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some_and(|c| c <= 1), "audit {args:?} crashed: {stderr}");
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

async fn exec(app: &TestApp, sql: &str, id: Uuid) {
    on_pool!(&app.state.db, pool => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).bind(id).execute(pool).await.expect("sql").rows_affected());
}

/// The id of entry number `seq` of a workspace's chain.
async fn entry(app: &TestApp, ws: Uuid, seq: i64) -> Uuid {
    on_pool!(&app.state.db, pool => sqlx::query_scalar("SELECT id FROM audit_events WHERE workspace_id = $1 AND seq = $2")
        .bind(ws).bind(seq).fetch_one(pool).await.expect("entry"))
}

async fn report(app: &TestApp, ws: Uuid) -> ChainReport {
    verify(&app.state.db, Some(ws)).await.unwrap().pop().unwrap()
}

/// A workspace with `n` secrets written one after another (a token entry, then one per write).
async fn workspace_with_entries(app: &TestApp, name: &str, n: usize) -> Uuid {
    let ws = app.workspace(name).await;
    let token = app.writer_token(ws).await;
    for i in 0..n {
        assert_eq!(app.upsert(ws, &token, &format!("K{i}"), "value-of-k").await.status(), 200);
    }
    ws
}

async fn the_chain_stays_unbroken_under_16_concurrent_writers(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("busy").await;
    let token = app.writer_token(ws).await;
    let writers = (0..16).map(|w| {
        let (client, base, token) = (app.client.clone(), app.base.clone(), token.clone());
        tokio::spawn(async move {
            for i in 0..4 {
                let response = client
                    .put(format!("{base}/api/v1/workspaces/{ws}/secrets/upsert"))
                    .bearer_auth(&token)
                    .json(&json!({"key": format!("W{w}_{i}"), "value": "v"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
    let report = report(&app, ws).await;
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.entries, 1 + 64, "the token's entry and one per write");

    // The accounts' chain too: sign-ins, failed ones (written on their own) and successes.
    app.user("alice", "correct horse battery staple").await;
    for _ in 0..4 {
        assert!(!app.sign_in("alice", "wrong password").await.status().is_server_error());
    }
    app.sign_in("alice", "correct horse battery staple").await;
    let (intact, out) = audit_cli(&app, &["verify"]).await;
    assert!(intact, "{out}");
    assert!(out.contains(&format!("workspace {ws}: 65 entries, intact")), "{out}");
    assert!(out.contains("accounts: 5 entries, intact"), "{out}");
    assert_eq!(out.lines().last(), Some("audit log intact"));
}

async fn verify_names_the_first_entry_each_kind_of_tampering_breaks(engine: Engine) {
    let app = spawn_app(engine).await;
    let untouched = workspace_with_entries(&app, "untouched", 5).await;
    let edited = workspace_with_entries(&app, "edited", 5).await;
    let deleted = workspace_with_entries(&app, "deleted", 5).await;
    let reordered = workspace_with_entries(&app, "reordered", 5).await;
    let cut = workspace_with_entries(&app, "cut", 5).await;
    let around = workspace_with_entries(&app, "around", 5).await;

    let victim = entry(&app, edited, 3).await;
    exec(&app, "UPDATE audit_events SET detail = 'nothing happened' WHERE id = $1", victim).await;
    let report_edited = report(&app, edited).await;
    assert_eq!(report_edited.broken, Some((Some(victim), Some(3), Break::Contents)));
    assert_eq!(report_edited.entries, 2);

    let gone = entry(&app, deleted, 3).await;
    let next = entry(&app, deleted, 4).await;
    exec(&app, "DELETE FROM audit_events WHERE id = $1", gone).await;
    assert_eq!(report(&app, deleted).await.broken, Some((Some(next), Some(4), Break::Sequence { expected: 3 })));

    let (third, fourth) = (entry(&app, reordered, 3).await, entry(&app, reordered, 4).await);
    exec(&app, "UPDATE audit_events SET seq = 0 WHERE id = $1", third).await;
    exec(&app, "UPDATE audit_events SET seq = 3 WHERE id = $1", fourth).await;
    exec(&app, "UPDATE audit_events SET seq = 4 WHERE id = $1", third).await;
    assert_eq!(report(&app, reordered).await.broken, Some((Some(fourth), Some(3), Break::Previous)));

    let (fifth, last) = (entry(&app, cut, 5).await, entry(&app, cut, 6).await);
    exec(&app, "DELETE FROM audit_events WHERE id = $1", last).await;
    assert_eq!(report(&app, cut).await.broken, Some((Some(fifth), Some(5), Break::Head { head_seq: 6 })));

    let stray = Uuid::new_v4();
    on_pool!(&app.state.db, pool => sqlx::query(
        "INSERT INTO audit_events (id, workspace_id, actor, action, key, detail, at) VALUES ($1, $2, 'system', 'secret.read', 'K1', NULL, $3)")
        .bind(stray).bind(around).bind(chrono::Utc::now()).execute(pool).await.unwrap().rows_affected());
    assert_eq!(report(&app, around).await.broken, Some((Some(stray), None, Break::Unchained)));

    assert!(report(&app, untouched).await.broken.is_none());
    let (intact, out) = audit_cli(&app, &["verify"]).await;
    assert!(!intact, "{out}");
    assert!(out.contains(&format!("workspace {untouched}: 6 entries, intact")), "{out}");
    assert!(
        out.contains(&format!("workspace {edited}: BROKEN at entry {victim} (number 3): its hash does not match")),
        "{out}"
    );
    assert!(out.contains(&format!("workspace {deleted}: BROKEN at entry {next} (number 4)")), "{out}");
    assert_eq!(out.lines().last(), Some("audit log BROKEN"));
    let (intact, out) = audit_cli(&app, &["verify", "--workspace", &untouched.to_string()]).await;
    assert!(intact && out.lines().count() == 2, "{out}");
    let (intact, _) = audit_cli(&app, &["verify", "--workspace", &Uuid::new_v4().to_string()]).await;
    assert!(!intact, "an unknown workspace is an error");
}

async fn entries_from_before_the_chain_are_chained_at_start(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("old").await;
    // As a server before the chain wrote them: no place, no hashes, no head.
    exec(&app, "DELETE FROM audit_events WHERE workspace_id = $1", ws).await;
    exec(&app, "DELETE FROM audit_heads WHERE chain = $1", ws).await;
    for i in 0..3 {
        on_pool!(&app.state.db, pool => sqlx::query(
            "INSERT INTO audit_events (id, workspace_id, actor, action, key, detail, at) VALUES ($1, $2, 'user:old', 'secret.created', $3, NULL, $4)")
            .bind(Uuid::new_v4()).bind(ws).bind(format!("OLD_{i}")).bind(chrono::Utc::now() - chrono::Duration::minutes(10 - i))
            .execute(pool).await.unwrap().rows_affected());
    }
    app.state.db.migrate().await.expect("start again");
    let token = app.writer_token(ws).await;
    assert_eq!(app.upsert(ws, &token, "NEW", "v").await.status(), 200);
    let report = report(&app, ws).await;
    assert!(report.broken.is_none(), "{report:?}");
    assert_eq!(report.entries, 5);
    let first: String = on_pool!(&app.state.db, pool => sqlx::query_scalar(
        "SELECT key FROM audit_events WHERE workspace_id = $1 AND seq = 1").bind(ws).fetch_one(pool).await.unwrap());
    assert_eq!(first, "OLD_0", "oldest first");
}

async fn export_streams_the_chain_with_its_hashes_and_no_value(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("exported").await;
    let token = app.writer_token(ws).await;
    let canary = "canary-value-5b1e0c7d9f";
    assert_eq!(app.create(ws, &token, "EXPORTED", canary).await.status(), 201);
    let response = app
        .req(Method::GET, &format!("/api/v1/workspaces/{ws}/secrets/values?keys=EXPORTED"), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (ok, out) = audit_cli(&app, &["export", "--workspace", &ws.to_string(), "--format", "jsonl"]).await;
    assert!(ok, "{out}");
    assert!(!out.contains(canary));
    let lines: Vec<Value> = out.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let actions: Vec<&str> = lines.iter().map(|l| l["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["token.created", "secret.created", "secret.read"]);
    let mut prev = "0".repeat(64);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as i64 + 1);
        assert_eq!(line["prevHash"], prev.as_str());
        prev = line["hash"].as_str().unwrap().to_owned();
        assert_eq!(prev.len(), 64);
    }
    let (ok, _) = audit_cli(&app, &["export", "--workspace", &Uuid::new_v4().to_string()]).await;
    assert!(!ok);
}

async fn the_log_names_who_acted_and_what_it_was_about(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("named").await;
    let (_, token) = loopstack_secrets::server::service::access::create_token(
        &app.state.db,
        ws,
        "deploy-bot",
        &[
            loopstack_secrets::server::domain::Scope::SecretsWrite,
            loopstack_secrets::server::domain::Scope::WorkflowsRun,
        ],
        None,
        &test_actor(),
    )
    .await
    .unwrap();
    let item = json(app.create(ws, &token, "NAMED", "v").await).await;
    let run = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows"), &token)
        .json(&json!({"workflow": "secrets_request", "args": {"variables": [{"key": "ASKED"}]}}))
        .send()
        .await
        .unwrap();
    let run_id: Uuid = json(run).await["id"].as_str().unwrap().parse().unwrap();
    let cancel = app
        .req(Method::POST, &format!("/api/v1/workspaces/{ws}/workflows/{run_id}/cancel"), &token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    let log = workspace_log(&app.state.secrets, ws, None).await.unwrap();
    let created = log.iter().find(|e| e.action == "secret.created").unwrap();
    assert_eq!(created.actor_name.as_deref(), Some("deploy-bot"));
    assert_eq!(created.secret_id.map(|id| id.to_string()), item["id"].as_str().map(str::to_owned));
    let cancelled = log.iter().find(|e| e.action == "request.cancelled").unwrap();
    assert_eq!(cancelled.run_id, Some(run_id));
}

both_engines!(
    the_chain_stays_unbroken_under_16_concurrent_writers,
    verify_names_the_first_entry_each_kind_of_tampering_breaks,
    entries_from_before_the_chain_are_chained_at_start,
    export_streams_the_chain_with_its_hashes_and_no_value,
    the_log_names_who_acted_and_what_it_was_about,
);
