//! The `flotilla` binary: `serve`, `migrate`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use flotilla_service::app;
use flotilla_service::config::Config;
use secrecy::{ExposeSecret, SecretString};
use tracing_subscriber::EnvFilter;

/// Flotilla: govern many Instantly.ai client workspaces at once.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the REST API and the engine (see FLOTILLA_ROLE to split them).
    Serve {
        #[command(flatten)]
        config: Config,
    },
    /// Run database migrations and exit.
    Migrate {
        #[command(flatten)]
        config: Config,
    },
}

fn init_logging() {
    let filter = EnvFilter::try_from_env("FLOTILLA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FLOTILLA_LOG_FORMAT")
        .map(|f| f == "json")
        .unwrap_or(false);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::Migrate { config } => {
            app::connect(&config).await?;
            println!("migrations applied");
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let keyring = app::resolve_keyring(&config)?;
    let listen = config.listen;
    let state = app::prepare(config, keyring).await?;
    let admin_token = std::env::var("FLOTILLA_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(SecretString::from);
    if let Some(token) =
        flotilla_service::auth::ensure_bootstrap_admin(&state.store, admin_token.as_ref())
            .await
            .context("while creating the bootstrap admin")?
    {
        // Shown once: only its hash is stored.
        eprintln!(
            "\n*** Bootstrap admin token (shown once, stored hashed):\n***   {}\n\
             *** Set FLOTILLA_ADMIN_TOKEN to choose it yourself.\n",
            token.expose_secret()
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("while binding {listen}"))?;
    app::serve(state, listener, app::shutdown_on_signals()).await
}
