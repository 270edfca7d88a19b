//! Typed configuration and the command line: one `clap` parser whose options also read the
//! environment (and `.env`, loaded in `main`), with defaults that run on a fresh machine.

use clap::{Args, Parser};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `loopstack-secrets`: workspace-scoped secrets for LLM automation.
#[derive(Parser, Debug)]
#[command(name = "loopstack-secrets", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Reads a secret setting (a URL with a password, a key): it never prints, `Debug` included.
fn secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text.to_string()))
}

/// Settings shared by the server and every command. Secrets in it (`database_url`,
/// `master_key`) are `SecretString`s, so printing the config shows none of them.
#[derive(Args, Debug, Clone)]
pub struct Config {
    /// Database URL: `postgres://...` for PostgreSQL, `sqlite://PATH` for a SQLite file.
    /// Default: `sqlite://<data dir>/loopstack-secrets.db`.
    /// (It may hold a password: kept as a secret, so the config prints without it.)
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, value_parser = secret)]
    pub database_url: Option<SecretString>,

    /// The master key, base64 of 32 bytes; without it, the key file in the data dir is used
    /// (created on the first start). Set it in the environment: a command line is visible to
    /// every user of the host.
    #[arg(long, env = "LOOPSTACK_SECRETS_MASTER_KEY", global = true, hide = true, value_parser = secret)]
    pub master_key: Option<SecretString>,

    /// Folder for the SQLite database and the master key file.
    #[arg(long, env = "LOOPSTACK_SECRETS_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Address the server listens on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000", global = true)]
    pub addr: SocketAddr,

    /// Feature toggle: when false the server mounts no secrets routes and no tools.
    #[arg(long, env = "LOOPSTACK_SECRETS_ENABLED", default_value_t = true, global = true, action = clap::ArgAction::Set)]
    pub enabled: bool,

    /// Largest accepted secret value, in bytes.
    #[arg(long, env = "LOOPSTACK_SECRETS_MAX_VALUE_BYTES", default_value_t = 64 * 1024, global = true)]
    pub max_value_bytes: usize,

    /// Longest accepted secret key, in characters.
    #[arg(long, env = "LOOPSTACK_SECRETS_MAX_KEY_LEN", default_value_t = 200, global = true)]
    pub max_key_len: usize,

    /// Versions kept per secret, the current one included; older ones are destroyed.
    #[arg(long, env = "LOOPSTACK_SECRETS_KEEP_VERSIONS", default_value_t = 10, value_parser = clap::value_parser!(i64).range(1..), global = true)]
    pub keep_versions: i64,

    /// Webhook hosts allowed to resolve to loopback, link-local or private addresses
    /// (comma-separated, e.g. `127.0.0.1,localhost`); others are refused when connecting.
    #[arg(long, env = "LOOPSTACK_SECRETS_WEBHOOK_ALLOW_HOSTS", value_delimiter = ',', global = true)]
    pub webhook_allow_hosts: Vec<String>,

    /// Milliseconds before a failed webhook delivery is retried the first time; doubled each
    /// time after, at most an hour, for a day.
    #[arg(long, env = "LOOPSTACK_SECRETS_WEBHOOK_RETRY_BASE_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(10..=3_600_000), global = true)]
    pub webhook_retry_base_ms: u64,

    /// Days a deleted secret's versions are kept so it can be restored; then they are destroyed.
    #[arg(long, env = "LOOPSTACK_SECRETS_DELETED_RETENTION_DAYS", default_value_t = 7, value_parser = clap::value_parser!(i64).range(0..=3650), global = true)]
    pub deleted_retention_days: i64,

    /// How long a Studio session lasts, in hours.
    #[arg(long, env = "LOOPSTACK_SECRETS_SESSION_HOURS", default_value_t = 12, global = true)]
    pub session_hours: i64,

    /// Mark the session cookie `Secure` (set this when serving behind TLS; a request with
    /// `X-Forwarded-Proto: https` gets it too).
    #[arg(long, env = "LOOPSTACK_SECRETS_SECURE_COOKIES", default_value_t = false, global = true, action = clap::ArgAction::Set)]
    pub secure_cookies: bool,

    /// Folder holding the compiled site (WASM, JS, CSS); cargo-leptos sets it.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site", global = true)]
    pub site_root: String,

    /// Secret requests and workflow runs a workspace may start per minute; more get 429.
    #[arg(long, env = "LOOPSTACK_SECRETS_RUNS_PER_MINUTE", default_value_t = 120, global = true)]
    pub runs_per_minute: u32,

    /// Seconds a client gets to send its request headers before the connection is closed (also
    /// how long an idle keep-alive connection stays open).
    #[arg(long, env = "LOOPSTACK_SECRETS_HEADER_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub header_timeout_secs: u64,

    /// Reverse proxies in front of the server that each append the client to
    /// `X-Forwarded-For`; the client's address is the entry this many hops from the right.
    /// 0 (the default) ignores the header: the TCP peer is the client.
    #[arg(long, env = "LOOPSTACK_SECRETS_TRUSTED_PROXIES", default_value_t = 0, global = true)]
    pub trusted_proxies: usize,

    /// Password checks (sign-ins, current-password checks) allowed per username in 15 minutes.
    #[arg(long, env = "LOOPSTACK_SECRETS_SIGN_IN_FAILURES_PER_USER", default_value_t = 10, global = true)]
    pub sign_in_failures_per_user: i64,

    /// Failed password checks allowed per client address in 15 minutes.
    #[arg(long, env = "LOOPSTACK_SECRETS_SIGN_IN_FAILURES_PER_ADDRESS", default_value_t = 100, global = true)]
    pub sign_in_failures_per_address: i64,

    /// Password hashes computed at once, on blocking threads (default: the number of cores);
    /// a sign-in that finds them all busy gets 429 at once.
    #[arg(long, env = "LOOPSTACK_SECRETS_HASHING_THREADS", global = true)]
    pub hashing_threads: Option<usize>,

    /// Seconds between re-checks of the credential of an open event stream or long-poll; a
    /// revoked or expired token, an ended session or a removed member ends it.
    #[arg(long, env = "LOOPSTACK_SECRETS_REAUTH_SECS", default_value_t = 60, global = true)]
    pub reauth_secs: u64,

    /// Event streams and long-polls one token or session may hold open at once on one
    /// instance; more get 429.
    #[arg(long, env = "LOOPSTACK_SECRETS_MAX_STREAMS", default_value_t = 16, global = true)]
    pub max_streams: usize,

    /// The address people open the Studio at (scheme, host and port, no path), used in the
    /// links MCP clients open for a secret request. Default: `http://` and the listen address.
    #[arg(long, env = "LOOPSTACK_SECRETS_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Operator-wide secrets: keys (comma separated) whose values every workspace can use,
    /// read from this process's environment at start and kept only in memory. A workspace
    /// secret of the same key wins. `LOOPSTACK_SECRETS_GLOBAL_EGRESS_<KEY>` names the hosts
    /// `http_request` may send one to. A key not set in the environment is absent.
    #[arg(long, env = "LOOPSTACK_SECRETS_GLOBAL_KEYS", value_delimiter = ',', global = true)]
    pub global_keys: Vec<String>,

    /// Seconds a client gets to send a request body; a slower one gets 408.
    #[arg(long, env = "LOOPSTACK_SECRETS_BODY_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub body_timeout_secs: u64,
}

impl Config {
    /// The database URL in effect: the configured one or the SQLite file in the data dir.
    pub fn database_url(&self) -> String {
        match self.database_url.as_ref().map(|url| url.expose_secret()) {
            Some(url) if !url.trim().is_empty() => url.to_string(),
            _ => format!("sqlite://{}", self.data_dir.join("loopstack-secrets.db").display()),
        }
    }

    /// The configured master key, if any (see [`Config::master_key`]).
    pub fn master_key(&self) -> Option<&str> {
        self.master_key.as_ref().map(|key| key.expose_secret())
    }

    /// The Studio's public address, without a trailing `/`.
    pub fn public_url(&self) -> String {
        match self.public_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => url.trim_end_matches('/').to_string(),
            _ => format!("http://{}", self.addr),
        }
    }

    /// How webhooks are sent.
    pub fn webhooks(&self) -> crate::server::domain::webhook::WebhookConfig {
        crate::server::domain::webhook::WebhookConfig {
            allow_hosts: self.webhook_allow_hosts.clone(),
            retry_base: std::time::Duration::from_millis(self.webhook_retry_base_ms),
        }
    }

    /// How much history secrets keep.
    pub fn history(&self) -> crate::server::domain::History {
        crate::server::domain::History {
            keep_versions: self.keep_versions,
            deleted_retention: chrono::Duration::days(self.deleted_retention_days),
        }
    }

    /// Limits applied when input is parsed.
    pub fn limits(&self) -> crate::server::domain::Limits {
        crate::server::domain::Limits { max_key_len: self.max_key_len, max_value_bytes: self.max_value_bytes }
    }
}

mod commands;
pub use commands::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_prints_no_secret() {
        let cli = Cli::parse_from([
            "x",
            "--database-url",
            "postgres://app:hunter2@db/secrets",
            "--master-key",
            "c2VjcmV0LWtleS1iYXNlNjQ=",
        ]);
        let printed = format!("{cli:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("c2VjcmV0"), "{printed}");
        assert_eq!(cli.config.database_url(), "postgres://app:hunter2@db/secrets");
        assert_eq!(cli.config.master_key(), Some("c2VjcmV0LWtleS1iYXNlNjQ="));
    }
}
