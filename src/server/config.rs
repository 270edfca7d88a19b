//! Typed configuration and the command line: one `clap` parser whose options also read the
//! environment (and `.env`, loaded in `main`), with defaults that run on a fresh machine.

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;
use uuid::Uuid;

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

    /// Limits applied when input is parsed.
    pub fn limits(&self) -> crate::server::domain::Limits {
        crate::server::domain::Limits { max_key_len: self.max_key_len, max_value_bytes: self.max_value_bytes }
    }
}

/// What the binary does; `serve` when none is given.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the web server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run a command with the workspace's secrets as environment variables. The child does
    /// not inherit LOOPSTACK_SECRETS_* or DATABASE_URL from this process; a workspace that
    /// holds a reserved key (stored before keys were checked) is refused unless the key is
    /// named with --allow-key.
    Run {
        /// Workspace id.
        #[arg(long)]
        workspace: Uuid,
        /// Pass this reserved key (PATH, LD_PRELOAD, ...) to the command anyway; repeatable.
        #[arg(long = "allow-key", value_name = "KEY")]
        allow_keys: Vec<String>,
        /// Give the command only these secrets (repeatable, or comma-separated).
        #[arg(long = "only", value_name = "KEY", value_delimiter = ',')]
        only: Vec<String>,
        /// Mask every stored value (and its encodings) in the command's stdout and stderr as
        /// `***`; lines still come out as they are written, and the exit code passes through.
        #[arg(long)]
        mask: bool,
        #[command(flatten)]
        remote: Remote,
        /// The command and its arguments (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Serve the MCP tools of one workspace over stdio (stdin/stdout carry only protocol
    /// messages; logs go to stderr), over the local data dir as `run` does.
    Mcp {
        /// Workspace id.
        #[arg(long)]
        workspace: Uuid,
    },
    /// Rewrap every workspace data key under a new master key (values are not touched). With
    /// a key file a new key is generated; with LOOPSTACK_SECRETS_MASTER_KEY give the new one in
    /// LOOPSTACK_SECRETS_NEW_MASTER_KEY.
    RotateMasterKey {
        /// The new key (base64 of 32 bytes), when the current one comes from the environment.
        #[arg(long, env = "LOOPSTACK_SECRETS_NEW_MASTER_KEY", hide_env_values = true, value_parser = secret)]
        new_master_key: Option<SecretString>,
    },
    /// Give a workspace a new data key and re-encrypt its values under it, in batches, while
    /// servers keep running; the old key is deleted once no value uses it.
    RotateDataKey {
        /// Workspace id.
        #[arg(long)]
        workspace: Uuid,
        /// Values re-encrypted per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// Store every KEY=value of a dotenv file in the workspace, all or nothing.
    Import {
        /// Workspace id.
        #[arg(long)]
        workspace: Uuid,
        /// The dotenv file.
        file: PathBuf,
    },
    /// Print the workspace's secrets in a file format (safe to source: nothing in a value runs).
    Export {
        /// Workspace id.
        #[arg(long)]
        workspace: Uuid,
        /// Export only these secrets (repeatable, or comma-separated).
        #[arg(long = "only", value_name = "KEY", value_delimiter = ',')]
        only: Vec<String>,
        #[command(flatten)]
        remote: Remote,
        /// Write this reserved key anyway; repeatable (see `run --allow-key`).
        #[arg(long = "allow-key", value_name = "KEY")]
        allow_keys: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Dotenv)]
        format: ExportFormat,
    },
}

/// Where `run` and `export` get values: the local data dir (the default), or a server, with a
/// token that has `secrets:read`, so a deploy machine needs no database and no master key.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// A loopstack-secrets server to fetch the values from, e.g. https://secrets.example.com.
    #[arg(long, env = "LOOPSTACK_SECRETS_SERVER")]
    pub server: Option<String>,
    /// An API token with `secrets:read` for `--server` (set it in the environment: a command
    /// line is visible to every user of the host).
    #[arg(long, env = "LOOPSTACK_SECRETS_TOKEN", hide_env_values = true, value_parser = secret)]
    pub token: Option<SecretString>,
}

/// Formats `export` can write.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ExportFormat {
    /// `KEY='value'` lines: single-quoted, so sourcing them in sh, bash, dash or zsh yields
    /// the exact bytes and runs nothing; `import` reads them back.
    Dotenv,
}

/// `workspace ...`
#[derive(Subcommand, Debug)]
pub enum WorkspaceCommand {
    /// Create a workspace; prints its id alone on the last line.
    Create {
        /// Display name.
        name: String,
        /// Username of the member who becomes its owner.
        #[arg(long)]
        owner: Option<String>,
    },
    /// List all workspaces.
    List,
}

/// `user ...`
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; prints a generated password unless one is read from stdin.
    Create {
        /// Username (3 to 64 letters, digits, `_`, `.`, `-`).
        username: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `token ...`
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token; prints it alone on the last line (it is shown only once).
    Create {
        /// Workspace the token is bound to.
        #[arg(long)]
        workspace: Uuid,
        /// A name to recognise it by.
        #[arg(long)]
        name: String,
        /// Scopes: secrets:list, secrets:write, secrets:read, tools:call, workflows:run, secrets:use.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Days until it expires (never, when absent).
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// List tokens (never their values).
    List {
        /// Only the tokens of this workspace.
        #[arg(long)]
        workspace: Option<Uuid>,
    },
    /// Revoke a token by id.
    Revoke {
        /// Token id, as `token list` shows it.
        id: Uuid,
    },
}

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
