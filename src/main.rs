//! The `loopstack-secrets` binary: the server (`serve`, the default) and the admin CLI.

use std::process::ExitCode;

use clap::Parser;
use loopstack_secrets::server::{cli, config::Cli};
use tracing_subscriber::EnvFilter;

/// See the note on `mimalloc` in Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // `.env` is read before parsing, so its variables feed the `env` attributes of the CLI.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let default_filter = if matches!(cli.command, None | Some(loopstack_secrets::server::config::Command::Serve)) {
        "info,sqlx=warn"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)))
        .with_writer(loopstack_secrets::server::logging::Masked::new(std::io::stderr))
        .init();
    match cli::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
