//! `run` and `export`: a workspace's values as a command's environment or as a dotenv file,
//! from the local data dir (the default) or from a server (`--server`, a token with
//! `secrets:read`). Reserved keys are refused unless named with `--allow-key`; `--only` narrows
//! the keys; `run --mask` passes the command's output through the leak guard.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::server::config::{Config, ExportFormat, Remote};
use crate::server::domain::leak::LeakGuard;
use crate::server::domain::{reserved, Actor, SecretValue};
use crate::server::service::access;
use crate::server::web::state::{self, AppState};

/// Which keys the operator wants, and which reserved ones they accept.
pub struct Choice {
    pub allow_keys: Vec<String>,
    pub only: Vec<String>,
}

/// Where the values come from.
pub enum Source {
    Local(Box<AppState>),
    Remote { server: String, token: SecretString },
}

impl Source {
    /// The local store, or the server named by `--server`.
    pub async fn open(config: Config, master_key_env: Option<&str>, remote: Remote) -> anyhow::Result<Source> {
        match remote.server {
            Some(server) => {
                let token =
                    remote.token.context("--server needs a token with secrets:read: set LOOPSTACK_SECRETS_TOKEN")?;
                Ok(Source::Remote { server: server.trim_end_matches('/').to_string(), token })
            }
            None => Ok(Source::Local(Box::new(state::open(config, master_key_env).await?.state))),
        }
    }

    /// The chosen values, by key. A reserved key not allowed fails before any value is used.
    async fn values(
        &self,
        workspace: Uuid,
        choice: &Choice,
        command: &str,
    ) -> anyhow::Result<Vec<(String, SecretValue)>> {
        let values = match self {
            Source::Local(state) => {
                if !access::workspace_exists(&state.db, workspace).await? {
                    bail!("no workspace with id {workspace}");
                }
                // The workspace's keys over the global ones from this process's environment.
                let keys: Vec<String> = state.secrets.key_states(workspace).await?.into_iter().map(|s| s.key).collect();
                let keys = chosen(keys, choice, workspace)?;
                state.secrets.read_values(workspace, &keys, &Actor::cli(command)).await?
            }
            Source::Remote { server, token } => {
                let mut url = format!("{server}/api/v1/workspaces/{workspace}/secrets/values");
                if !choice.only.is_empty() {
                    url.push_str(&format!("?keys={}", choice.only.join(",")));
                }
                let response = reqwest::Client::new()
                    .get(&url)
                    .bearer_auth(token.expose_secret())
                    .send()
                    .await
                    .with_context(|| format!("failed to reach {server}"))?;
                let status = response.status();
                let body: serde_json::Value =
                    response.json().await.with_context(|| format!("{server} did not answer JSON"))?;
                if !status.is_success() {
                    bail!("{server} answered {status}: {}", body["error"]["message"].as_str().unwrap_or("no message"));
                }
                let map = body.as_object().context("the values answer is not an object")?;
                let keys = chosen(map.keys().cloned().collect(), choice, workspace)?;
                keys.into_iter()
                    .map(|key| {
                        let value = map[&key].as_str().context("a value is not text")?.to_string();
                        Ok((key, SecretValue::from_plaintext(SecretString::from(value))))
                    })
                    .collect::<anyhow::Result<_>>()?
            }
        };
        Ok(values)
    }

    async fn close(self) {
        if let Source::Local(state) = self {
            state.db.close().await;
        }
    }
}

/// The keys to use: `only` (each must exist) or all, none of them reserved unless allowed.
fn chosen(keys: Vec<String>, choice: &Choice, workspace: Uuid) -> anyhow::Result<Vec<String>> {
    let keys: Vec<String> = if choice.only.is_empty() {
        keys
    } else {
        for key in &choice.only {
            if !keys.contains(key) {
                bail!("the workspace has no secret named {key}");
            }
        }
        choice.only.clone()
    };
    let blocked: Vec<&String> =
        keys.iter().filter(|key| reserved::is_reserved(key) && !choice.allow_keys.contains(key)).collect();
    if !blocked.is_empty() {
        let blocked: Vec<&str> = blocked.iter().map(|k| k.as_str()).collect();
        bail!(
            "workspace {workspace} holds reserved keys that change how programs load or run: {}. \
             Delete them, or pass each one with --allow-key KEY if you trust whoever wrote it",
            blocked.join(", ")
        );
    }
    Ok(keys)
}

/// `run`: the command with the values in its environment; its exit code passes through.
pub async fn run(
    source: Source,
    workspace: Uuid,
    choice: &Choice,
    mask: bool,
    command: &[String],
) -> anyhow::Result<ExitCode> {
    let values = source.values(workspace, choice, "run").await?;
    source.close().await;
    let (program, args) = command.split_first().context("no command given after --")?;
    let mut child = tokio::process::Command::new(program);
    child.args(args);
    // The operator's own configuration (from the shell or `.env`) is not the child's business.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_own_configuration) {
            child.env_remove(&name);
        }
    }
    for (key, value) in &values {
        child.env(key, value.expose());
    }
    if !mask {
        let status = child.status().await.with_context(|| format!("failed to start '{program}'"))?;
        return Ok(exit_code_of(status));
    }
    let guard = LeakGuard::new(values.iter().map(|(key, value)| (key.as_str(), value.expose().as_bytes())));
    drop(values);
    child.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut running = child.spawn().with_context(|| format!("failed to start '{program}'"))?;
    let out = tokio::spawn(pump(running.stdout.take().expect("piped"), tokio::io::stdout(), guard.clone()));
    let err = tokio::spawn(pump(running.stderr.take().expect("piped"), tokio::io::stderr(), guard));
    let status = running.wait().await?;
    out.await??;
    err.await??;
    Ok(exit_code_of(status))
}

/// Copies a child's output through the leak guard, a line as soon as it ends.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    guard: LeakGuard,
) -> std::io::Result<()> {
    let mut masker = guard.stream();
    let mut buffer = vec![0u8; 8192];
    loop {
        let n = from.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        to.write_all(&masker.push_lines(&buffer[..n])).await?;
        to.flush().await?;
    }
    to.write_all(&masker.finish().bytes).await?;
    to.flush().await
}

/// Environment variables of this process that never reach a child of `run`.
fn is_own_configuration(name: &str) -> bool {
    name == "DATABASE_URL" || name.starts_with("LOOPSTACK_SECRETS_")
}

/// The child's exit code, or 128 + signal as shells report it.
fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `export`: the values in a file format, on stdout.
pub async fn export(
    source: Source,
    workspace: Uuid,
    choice: &Choice,
    format: ExportFormat,
) -> anyhow::Result<ExitCode> {
    let values = source.values(workspace, choice, "export").await?;
    source.close().await;
    let mut out = std::io::stdout().lock();
    match format {
        ExportFormat::Dotenv => {
            for (key, value) in &values {
                writeln!(out, "{key}={}", crate::server::domain::dotenv::quote(value.expose()))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
