//! Encryption at rest and the master key, on both engines: no plaintext on disk, tampered or
//! moved rows do not open, and a wrong or missing key stops the start without changing data.

mod common;

use common::{json, serve, spawn_app, test_actor, Engine};
use loopstack_secrets::server::error::AppError;
use loopstack_secrets::server::state;
use loopstack_secrets::server::store::{on_pool, Db};
use uuid::Uuid;

async fn exec(db: &Db, sql: &'static str, a: Uuid, b: Uuid) {
    on_pool!(db, pool => sqlx::query(sql).bind(a).bind(b).execute(pool).await.expect("sql").rows_affected());
}

async fn a_tampered_ciphertext_is_a_clean_error_not_garbage(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    let id: Uuid =
        json(app.create(ws, &token, "API_KEY", "sk-123456").await).await["id"].as_str().unwrap().parse().unwrap();
    let key = app.state.secrets.parse_key("API_KEY").unwrap();

    // Flip the first ciphertext byte by rewriting it as its complement.
    let row = loopstack_secrets::server::store::secret_by_id(&app.state.db, ws, id).await.unwrap().unwrap();
    let mut tampered = row.ciphertext.clone();
    tampered[0] ^= 0x01;
    on_pool!(&app.state.db, pool => sqlx::query("UPDATE secrets SET ciphertext = $1 WHERE id = $2")
        .bind(&tampered).bind(id).execute(pool).await.unwrap().rows_affected());

    let result = app.state.secrets.read_value(ws, &key, &test_actor()).await;
    assert!(matches!(result, Err(AppError::Crypto)), "tampering must fail to decrypt");
    assert_eq!(app.list(ws, &token).await.status(), 200, "listing does not decrypt and still works");
}

async fn a_row_moved_to_another_secret_or_workspace_does_not_open(engine: Engine) {
    let app = spawn_app(engine).await;
    let (a, b) = (app.workspace("a").await, app.workspace("b").await);
    let (ta, tb) = (app.writer_token(a).await, app.writer_token(b).await);
    let src: Uuid =
        json(app.create(a, &ta, "SOURCE", "top-secret").await).await["id"].as_str().unwrap().parse().unwrap();
    let dst: Uuid = json(app.create(a, &ta, "TARGET", "other").await).await["id"].as_str().unwrap().parse().unwrap();
    let foreign: Uuid =
        json(app.create(b, &tb, "FOREIGN", "other").await).await["id"].as_str().unwrap().parse().unwrap();

    let copy = "UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets WHERE id = $1),
                nonce = (SELECT nonce FROM secrets WHERE id = $1) WHERE id = $2";
    exec(&app.state.db, copy, src, dst).await;
    exec(&app.state.db, copy, src, foreign).await;

    let target = app.state.secrets.read_value(a, &app.state.secrets.parse_key("TARGET").unwrap(), &test_actor()).await;
    let moved = app.state.secrets.read_value(b, &app.state.secrets.parse_key("FOREIGN").unwrap(), &test_actor()).await;
    assert!(matches!(target, Err(AppError::Crypto)));
    assert!(matches!(moved, Err(AppError::Crypto)));
}

async fn a_wrong_or_missing_master_key_refuses_to_start_and_changes_nothing(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    assert_eq!(app.create(ws, &token, "KEEP", "kept-value").await.status(), 201);
    let (dir, url, right_key) = app.stop().await;

    let config = common::config_for(dir.path(), &url, &[]);
    let wrong = state::open(config.clone(), Some(&common::new_master_key())).await;
    let missing = state::open(config.clone(), None).await;

    let wrong = wrong.err().expect("a wrong key must not start").to_string();
    assert!(wrong.contains("does not match"), "{wrong}");
    let missing = missing.err().expect("a missing key must not start").to_string();
    assert!(missing.contains("missing"), "{missing}");
    assert!(!dir.path().join("master.key").exists(), "no new key file over existing data");

    let app = serve(dir, url, right_key, &[]).await;
    assert_eq!(app.value_of(ws, "KEEP").await.as_deref(), Some("kept-value"));
}

both_engines!(
    a_tampered_ciphertext_is_a_clean_error_not_garbage,
    a_row_moved_to_another_secret_or_workspace_does_not_open,
    a_wrong_or_missing_master_key_refuses_to_start_and_changes_nothing,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_never_reach_the_sqlite_file_in_plaintext() {
    let app = spawn_app(Engine::Sqlite).await;
    let ws = app.workspace("main").await;
    let token = app.writer_token(ws).await;
    let canary = format!("canary{}", Uuid::new_v4().simple());

    app.create(ws, &token, "CANARY_KEY", &canary).await;
    app.upsert(ws, &token, "CANARY_TWO", &canary).await;

    let mut bytes = Vec::new();
    for file in app.sqlite_files() {
        bytes.extend(std::fs::read(&file).unwrap_or_default());
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"CANARY_KEY"), "the scan sees what is written (keys are stored in clear)");
    assert!(!contains(canary.as_bytes()), "a value was written to disk in plaintext");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_creates_a_key_file_that_later_starts_use() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let config = common::config_for(dir.path(), &url, &[]);

    let first = state::open(config.clone(), None).await.unwrap();
    let ws =
        loopstack_secrets::server::service::access::create_workspace(&first.state.db, &first.state.kek, "main", None)
            .await
            .unwrap();
    first.state.db.close().await;
    let second = state::open(config, None).await.unwrap();

    assert!(matches!(first.key_source, loopstack_secrets::server::keys::KeySource::NewFile(_)));
    assert!(matches!(second.key_source, loopstack_secrets::server::keys::KeySource::ExistingFile(_)));
    let mut tx = second.state.db.begin().await.unwrap();
    assert!(second.state.secrets.sealer(&mut tx, ws).await.is_ok(), "the key file unwraps the workspace's data key");
}

/// A store with one secret, opened through the key file; returns its workspace.
async fn store_with_a_secret(config: &loopstack_secrets::server::config::Config, key_env: Option<&str>) -> Uuid {
    let opened = state::open(config.clone(), key_env).await.unwrap();
    let ws =
        loopstack_secrets::server::service::access::create_workspace(&opened.state.db, &opened.state.kek, "main", None)
            .await
            .unwrap();
    let secrets = &opened.state.secrets;
    let (key, value) = (secrets.parse_key("ROTATED").unwrap(), secrets.parse_value("still-here".into()).unwrap());
    secrets.upsert(ws, &key, &value, &test_actor()).await.unwrap();
    opened.state.shutdown().await;
    ws
}

async fn value_after_open(
    config: &loopstack_secrets::server::config::Config,
    key_env: Option<&str>,
    ws: Uuid,
) -> anyhow::Result<String> {
    let opened = state::open(config.clone(), key_env).await?;
    let key = opened.state.secrets.parse_key("ROTATED").unwrap();
    let value = opened.state.secrets.read_value(ws, &key, &test_actor()).await?.unwrap().expose().to_string();
    opened.state.shutdown().await;
    Ok(value)
}

async fn rotating_the_key_file_keeps_values_and_retires_the_old_key(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(&engine, dir.path()).await;
    let config = common::config_for(dir.path(), &url, &[]);
    let ws = store_with_a_secret(&config, None).await;
    let old_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();

    let rotation =
        loopstack_secrets::server::service::rotation::rotate_master_key(config.clone(), None, None).await.unwrap();

    assert_eq!(rotation.data_keys, 1);
    let new_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    assert_ne!(old_key, new_key);
    assert!(!dir.path().join("master.key.new").exists());
    assert_eq!(value_after_open(&config, None, ws).await.unwrap(), "still-here");
    let refused =
        value_after_open(&config, Some(&old_key), ws).await.expect_err("the old key no longer opens the store");
    assert!(refused.to_string().contains("does not match"), "{refused}");
}

async fn a_rotation_interrupted_after_its_commit_is_finished_at_the_next_start(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(&engine, dir.path()).await;
    let config = common::config_for(dir.path(), &url, &[]);
    let ws = store_with_a_secret(&config, None).await;
    let old_key = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    loopstack_secrets::server::service::rotation::rotate_master_key(config.clone(), None, None).await.unwrap();
    // Put the files back as a crash between the commit and the file swap leaves them.
    std::fs::rename(dir.path().join("master.key"), dir.path().join("master.key.new")).unwrap();
    std::fs::write(dir.path().join("master.key"), &old_key).unwrap();
    // With the mode the key file had (a key file others may read is refused at start).
    std::fs::set_permissions(dir.path().join("master.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .unwrap();

    let value = value_after_open(&config, None, ws).await.unwrap();

    assert_eq!(value, "still-here");
    assert!(!dir.path().join("master.key.new").exists(), "the pending key was installed");
    assert_ne!(std::fs::read_to_string(dir.path().join("master.key")).unwrap(), old_key);
}

async fn a_rotation_interrupted_before_its_commit_leaves_the_old_key_working(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(&engine, dir.path()).await;
    let config = common::config_for(dir.path(), &url, &[]);
    let ws = store_with_a_secret(&config, None).await;
    // A crash after writing the new key file but before the commit.
    std::fs::write(dir.path().join("master.key.new"), common::new_master_key()).unwrap();

    assert_eq!(value_after_open(&config, None, ws).await.unwrap(), "still-here");
    let rotation =
        loopstack_secrets::server::service::rotation::rotate_master_key(config.clone(), None, None).await.unwrap();
    assert_eq!(rotation.data_keys, 1, "a later rotation replaces the stale pending file");
    assert_eq!(value_after_open(&config, None, ws).await.unwrap(), "still-here");
}

async fn rotating_an_environment_key_needs_the_new_key_from_the_environment(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(&engine, dir.path()).await;
    let config = common::config_for(dir.path(), &url, &[]);
    let (old, new) = (common::new_master_key(), common::new_master_key());
    let ws = store_with_a_secret(&config, Some(&old)).await;

    let without_new =
        loopstack_secrets::server::service::rotation::rotate_master_key(config.clone(), Some(&old), None).await;
    let rotation =
        loopstack_secrets::server::service::rotation::rotate_master_key(config.clone(), Some(&old), Some(&new))
            .await
            .unwrap();

    assert!(without_new.err().unwrap().to_string().contains("LOOPSTACK_SECRETS_NEW_MASTER_KEY"));
    assert!(rotation.key_file.is_none());
    assert_eq!(value_after_open(&config, Some(&new), ws).await.unwrap(), "still-here");
    assert!(value_after_open(&config, Some(&old), ws).await.is_err());
}

/// A workspace with `count` secrets `KEY_00000=value-00000`, ...
async fn workspace_with(app: &common::TestApp, count: usize) -> Uuid {
    let ws = app.workspace("rotating").await;
    let pairs = (0..count).map(|i| (format!("KEY_{i:05}"), zeroize::Zeroizing::new(format!("value-{i:05}")))).collect();
    app.state.secrets.import(ws, pairs, &test_actor()).await.unwrap();
    ws
}

async fn ciphertext_of(db: &Db, ws: Uuid, key: &'static str) -> Vec<u8> {
    on_pool!(db, pool => sqlx::query_scalar("SELECT ciphertext FROM secrets WHERE workspace_id = $1 AND key = $2")
        .bind(ws).bind(key).fetch_one(pool).await.unwrap())
}

async fn rotating_a_data_key_reencrypts_every_value_in_batches(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = workspace_with(&app, 250).await;
    let bystander = workspace_with(&app, 3).await;
    let before = ciphertext_of(&app.state.db, ws, "KEY_00000").await;
    let store = |ws| loopstack_secrets::server::store::data_key_usage(&app.state.db, ws);

    let first = app.state.secrets.rotate_data_key(ws, 100, &test_actor()).await.unwrap();
    let second = app.state.secrets.rotate_data_key(ws, 1000, &test_actor()).await.unwrap();

    assert_eq!((first.version, first.resealed, first.retired), (2, 250, 1));
    assert_eq!((second.version, second.resealed, second.retired), (3, 250, 1));
    assert_eq!(store(ws).await.unwrap(), vec![(3, 250)], "every value under the new key, the old ones gone");
    assert_eq!(store(bystander).await.unwrap(), vec![(1, 3)], "other workspaces keep theirs");
    assert_ne!(ciphertext_of(&app.state.db, ws, "KEY_00000").await, before);
    let values = app.state.secrets.read_all_values(ws, &test_actor()).await.unwrap();
    assert_eq!(values.len(), 250);
    assert!(values
        .iter()
        .enumerate()
        .all(|(i, (k, v))| *k == format!("KEY_{i:05}") && v.expose() == format!("value-{i:05}")));
    let audit =
        loopstack_secrets::server::store::audit_events(&app.state.db, ws, Some("key.rotated"), 10).await.unwrap();
    assert_eq!(audit.len(), 2);
    // The master key rotation rewraps whatever versions exist.
    let (dir, url, key) = app.stop().await;
    let config = common::config_for(dir.path(), &url, &[]);
    let new_key = common::new_master_key();
    let rotation = loopstack_secrets::server::service::rotation::rotate_master_key(config, Some(&key), Some(&new_key))
        .await
        .unwrap();
    assert_eq!(rotation.data_keys, 2, "the rotated workspace's one key and the bystander's");
    let app = serve(dir, url, new_key, &[]).await;
    assert_eq!(app.value_of(ws, "KEY_00249").await.as_deref(), Some("value-00249"));
}

async fn a_data_key_rotates_online_while_values_are_written(engine: Engine) {
    let app = spawn_app(engine).await;
    let ws = workspace_with(&app, 300).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Eight writers, each owning the keys i % 8 == t, so the last value each wrote is known.
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let (secrets, stop) = (app.state.secrets.clone(), stop.clone());
            tokio::spawn(async move {
                let mut last = std::collections::HashMap::new();
                let mut n = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let i = t + 8 * (n % 37);
                    let key = secrets.parse_key(&format!("KEY_{i:05}")).unwrap();
                    let value = format!("written-{t}-{n}");
                    secrets
                        .upsert(ws, &key, &secrets.parse_value(value.clone()).unwrap(), &test_actor())
                        .await
                        .unwrap();
                    last.insert(format!("KEY_{i:05}"), value);
                    n += 1;
                }
                (last, n)
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let rotation = app.state.secrets.rotate_data_key(ws, 20, &test_actor()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut expected: std::collections::HashMap<String, String> =
        (0..300).map(|i| (format!("KEY_{i:05}"), format!("value-{i:05}"))).collect();
    let mut writes = 0;
    for writer in writers {
        let (last, n) = writer.await.unwrap();
        expected.extend(last);
        writes += n;
    }

    assert!(writes > 16, "the writers ran during the rotation ({writes} writes)");
    assert_eq!(rotation.version, 2);
    let usage = loopstack_secrets::server::store::data_key_usage(&app.state.db, ws).await.unwrap();
    assert_eq!(usage, vec![(2, 300)], "no value was left under the old key");
    let values: std::collections::HashMap<String, String> = app
        .state
        .secrets
        .read_all_values(ws, &test_actor())
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_string()))
        .collect();
    assert_eq!(values, expected, "every value reads back as last written");
}

both_engines!(
    rotating_a_data_key_reencrypts_every_value_in_batches,
    a_data_key_rotates_online_while_values_are_written,
    rotating_the_key_file_keeps_values_and_retires_the_old_key,
    a_rotation_interrupted_after_its_commit_is_finished_at_the_next_start,
    a_rotation_interrupted_before_its_commit_leaves_the_old_key_working,
    rotating_an_environment_key_needs_the_new_key_from_the_environment,
);
