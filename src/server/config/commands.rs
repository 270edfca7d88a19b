//! The subcommands of the binary and their arguments.

use clap::{Args, Subcommand, ValueEnum};
use secrecy::SecretString;
use std::path::PathBuf;
use uuid::Uuid;

use super::secret;

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
    /// Check or export the audit log's hash chains.
    #[command(subcommand)]
    Audit(AuditCommand),
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

/// `audit ...`
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the hash chains (one workspace's, or every workspace's and the accounts'); exit 0
    /// when every entry fits, 1 naming the first entry that does not.
    Verify {
        /// Only this workspace's chain.
        #[arg(long)]
        workspace: Option<Uuid>,
    },
    /// Print a workspace's entries in chain order, one JSON object per line, with their
    /// places and hashes (never a value).
    Export {
        /// Workspace id.
        #[arg(long)]
        workspace: Uuid,
        #[arg(long, value_enum, default_value_t = AuditFormat::Jsonl)]
        format: AuditFormat,
    },
}

/// Formats of `audit export`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditFormat {
    /// One JSON object per line.
    Jsonl,
}
