//! The command line: `serve` (default) and the admin commands, all in the one binary. Commands
//! print their result alone on the last stdout line so scripts can take it with `tail -n1`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{bail, Context};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::server::config::{AuditCommand, Cli, Command, Config, TokenCommand, UserCommand, WorkspaceCommand};
use crate::server::domain::{Actor, Scope};
use crate::server::error::AppError;
use crate::server::keys::KeySource;
use crate::server::service::access;
use crate::server::store::Db;
use crate::server::web::state::{self, AppState};

mod env;

/// Name of the workspace created on first run.
pub const DEFAULT_WORKSPACE: &str = "default";
/// Name of the administrator created on first run.
pub const ADMIN_USER: &str = "admin";

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    let master_key = config.master_key.clone();
    let master_key_env = master_key.as_ref().map(|key| key.expose_secret());
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, master_key_env).await,
        Command::Migrate => {
            let db = Db::connect(&config.database_url()).await?;
            db.migrate().await?;
            println!("migrations applied ({})", db.engine());
            Ok(ExitCode::SUCCESS)
        }
        Command::Workspace(cmd) => {
            let state = state::open(config, master_key_env).await?.state;
            workspace(&state, cmd).await
        }
        Command::User(cmd) => {
            let state = state::open(config, master_key_env).await?.state;
            user(&state, cmd).await
        }
        Command::Token(cmd) => {
            let state = state::open(config, master_key_env).await?.state;
            token(&state, cmd).await
        }
        Command::Run { workspace, allow_keys, only, mask, remote, command } => {
            let source = env::Source::open(config, master_key_env, remote).await?;
            env::run(source, workspace, &env::Choice { allow_keys, only }, mask, &command).await
        }
        Command::Mcp { workspace } => {
            let state = state::open(config, master_key_env).await?.state;
            mcp_stdio(state, workspace).await
        }
        Command::RotateMasterKey { new_master_key } => {
            let new_key = new_master_key.as_ref().map(|key| key.expose_secret());
            let rotation = crate::server::service::rotation::rotate_master_key(config, master_key_env, new_key).await?;
            println!("Rewrapped {} data keys under the new master key.", rotation.data_keys);
            match rotation.key_file {
                Some(path) => println!("The new key is in {} (mode 0600); the old key no longer opens the store.", path.display()),
                None => println!("Start with LOOPSTACK_SECRETS_MASTER_KEY set to the new key; the old one no longer opens the store."),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::RotateDataKey { workspace, batch } => {
            let state = state::open(config, master_key_env).await?.state;
            let done = state.secrets.rotate_data_key(workspace, batch, &Actor::cli("")).await?;
            println!(
                "Workspace {workspace} now uses data key version {}: re-encrypted {} values, deleted {} old keys.",
                done.version, done.resealed, done.retired
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(cmd) => {
            let db = crate::server::service::open::open_store(&config, master_key_env).await?.db;
            audit(&db, cmd).await
        }
        Command::Import { workspace, file } => {
            let state = state::open(config, master_key_env).await?.state;
            import(&state, workspace, &file).await
        }
        Command::Export { workspace, allow_keys, only, remote, format } => {
            let source = env::Source::open(config, master_key_env, remote).await?;
            env::export(source, workspace, &env::Choice { allow_keys, only }, format).await
        }
    }
}

/// `mcp --workspace ID`: the MCP server over stdin/stdout for a local client. Only protocol
/// messages go to stdout; logs go to stderr.
async fn mcp_stdio(state: AppState, workspace: Uuid) -> anyhow::Result<ExitCode> {
    use rmcp::ServiceExt;
    if !access::workspace_exists(&state.db, workspace).await? {
        bail!("workspace {workspace} does not exist");
    }
    // Requests expire and runs resume as they do under `serve`.
    state.start_background().await?;
    let server =
        crate::server::web::mcp::McpServer::new(state.clone(), Some(crate::server::web::mcp::Caller::local(workspace)));
    let running = server.serve(rmcp::transport::stdio()).await.context("the MCP client did not start a session")?;
    running.waiting().await.context("the MCP session failed")?;
    state.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config, master_key_env: Option<&str>) -> anyhow::Result<ExitCode> {
    let opened = state::open(config, master_key_env).await?;
    let state = opened.state;
    let first_run = first_run_setup(&state).await?;
    state.start_background().await?;
    let listener = tokio::net::TcpListener::bind(state.config.addr)
        .await
        .with_context(|| format!("failed to listen on {}", state.config.addr))?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");

    println!("loopstack-secrets is listening on {base} ({} database)", state.db.engine());
    match &opened.key_source {
        KeySource::NewFile(path) => println!(
            "Created a new master key file at {} (mode 0600). Back it up: without it the secrets cannot be read.",
            path.display()
        ),
        KeySource::ExistingFile(path) => println!("Master key: {}", path.display()),
        KeySource::Environment => println!("Master key: LOOPSTACK_SECRETS_MASTER_KEY"),
    }
    if let Some((username, password)) = &first_run {
        println!("First run: created the administrator '{username}' with the password below (shown only this once).");
        println!("  password: {password}");
    }
    println!("Sign in at {base}/sign-in");
    if let Some((id, name)) = default_workspace(&state.db).await? {
        println!("Workspace '{name}': {id}");
        println!(
            "Get an API token: loopstack-secrets token create --workspace {id} --name my-agent --scope secrets:list --scope secrets:write"
        );
    }
    std::io::stdout().flush().ok();

    let app = crate::server::app_router(state.clone());
    let header_timeout = std::time::Duration::from_secs(state.config.header_timeout_secs);
    crate::server::web::http::serve(listener, app, header_timeout, shutdown_signal()).await;
    state.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// On an empty database: an administrator with a generated password and a default workspace.
async fn first_run_setup(state: &AppState) -> anyhow::Result<Option<(String, String)>> {
    if access::count_users(&state.db).await? > 0 {
        return Ok(None);
    }
    let password = access::generate_password();
    let user_id = access::create_user(&state.db, ADMIN_USER, &password, true).await?;
    access::create_workspace(&state.db, &state.kek, DEFAULT_WORKSPACE, Some(user_id)).await?;
    Ok(Some((ADMIN_USER.to_string(), password)))
}

async fn default_workspace(db: &Db) -> anyhow::Result<Option<(Uuid, String)>> {
    let all = access::all_workspaces(db).await?;
    Ok(all.iter().find(|(_, name)| name == DEFAULT_WORKSPACE).or(all.first()).cloned())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

async fn workspace(state: &AppState, cmd: WorkspaceCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        WorkspaceCommand::Create { name, owner } => {
            let owner_id = match owner {
                Some(username) => Some(access::user_id(&state.db, &username).await?),
                None => None,
            };
            let id = access::create_workspace(&state.db, &state.kek, &name, owner_id).await?;
            println!("{id}");
        }
        WorkspaceCommand::List => {
            for (id, name) in access::all_workspaces(&state.db).await? {
                println!("{id}\t{name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn user(state: &AppState, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let UserCommand::Create { username, admin, password_stdin } = cmd;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("failed to read the password from stdin")?;
        (line.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (access::generate_password(), true)
    };
    access::create_user(&state.db, &username, &password, admin).await?;
    if generated {
        println!("Created user '{}'. Its password is shown only this once:", username.to_ascii_lowercase());
        println!("{password}");
    } else {
        println!("Created user '{}'.", username.to_ascii_lowercase());
    }
    Ok(ExitCode::SUCCESS)
}

async fn token(state: &AppState, cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create { workspace, name, scopes, expires_in_days } => {
            let scopes = scopes.iter().map(|s| Scope::parse(s)).collect::<Result<Vec<_>, _>>()?;
            let (row, token) =
                access::create_token(&state.db, workspace, &name, &scopes, expires_in_days, &Actor::cli("")).await?;
            println!(
                "Created token {} ('{}') for workspace {} with scopes: {}.",
                row.id, row.name, row.workspace_id, row.scopes
            );
            println!("It is shown only this once:");
            println!("{token}");
        }
        TokenCommand::List { workspace } => {
            println!("id\tworkspace\tname\tscopes\tstatus");
            let now = chrono::Utc::now();
            for t in access::all_tokens(&state.db, workspace).await? {
                let status = match (t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked".to_string(),
                    (None, Some(at)) if at <= now => "expired".to_string(),
                    (None, Some(at)) => format!("active until {}", at.format("%Y-%m-%d")),
                    (None, None) => "active".to_string(),
                };
                println!("{}\t{}\t{}\t{}\t{}", t.id, t.workspace_id, t.name, t.scopes, status);
            }
        }
        TokenCommand::Revoke { id } => {
            match access::revoke_token(&state.db, id, None, &Actor::cli("")).await {
                Err(AppError::NotFound) => bail!("no active token with id {id}"),
                other => other?,
            }
            println!("Revoked token {id}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(state: &AppState, workspace: Uuid, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(file).with_context(|| format!("failed to read {}", file.display()))?,
    );
    let pairs = crate::server::domain::dotenv::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let imported = state.secrets.import(workspace, pairs, &Actor::cli("import")).await?;
    println!("Imported {imported} secrets into workspace {workspace}.");
    Ok(ExitCode::SUCCESS)
}

async fn audit(db: &Db, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    use crate::server::service::audit::{export, verify};
    match cmd {
        AuditCommand::Verify { workspace } => {
            let reports = verify(db, workspace).await.map_err(|err| match err {
                AppError::NotFound => anyhow::anyhow!("no workspace {}", workspace.unwrap_or_default()),
                other => other.into(),
            })?;
            let mut intact = true;
            for report in &reports {
                let chain = match report.workspace_id {
                    Some(id) => format!("workspace {id}"),
                    None => "accounts".to_owned(),
                };
                match &report.broken {
                    None => println!("{chain}: {} entries, intact", report.entries),
                    Some((id, seq, why)) => {
                        intact = false;
                        let at = match (id, seq) {
                            (Some(id), Some(seq)) => format!("entry {id} (number {seq})"),
                            (Some(id), None) => format!("entry {id}"),
                            (None, _) => "the start of the chain".to_owned(),
                        };
                        let fit = match report.entries {
                            1 => "1 entry fits".to_owned(),
                            n => format!("{n} entries fit"),
                        };
                        println!("{chain}: BROKEN at {at}: {why} ({fit} before it)");
                    }
                }
            }
            println!("{}", if intact { "audit log intact" } else { "audit log BROKEN" });
            Ok(if intact { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        AuditCommand::Export { workspace, format: _ } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            export(db, workspace, |entry| {
                serde_json::to_writer(&mut out, &entry)?;
                out.write_all(b"\n")
            })
            .await
            .map_err(|err| match err {
                AppError::NotFound => anyhow::anyhow!("no workspace {workspace}"),
                other => other.into(),
            })?;
            out.flush().or_else(|err| if err.kind() == std::io::ErrorKind::BrokenPipe { Ok(()) } else { Err(err) })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
