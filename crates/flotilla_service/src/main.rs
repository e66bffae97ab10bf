//! The `flotilla` binary: `serve`, `migrate`, `demo`, and the API client commands
//! (`workspaces`, `ops`, `report`, `operators`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use flotilla_service::app;
use flotilla_service::cli;
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
    /// Start a demo: the service on SQLite with a simulated Instantly and 25 sample client
    /// workspaces; prints an operator token and example calls. Runs until Ctrl-C.
    Demo(#[command(flatten)] flotilla_service::demo::DemoArgs),
    /// Client workspaces: list, add, import, discover, show, label, remove (API client).
    Workspaces {
        #[command(flatten)]
        client: cli::ClientArgs,
        #[command(subcommand)]
        command: cli::workspaces::WorkspacesCommand,
    },
    /// Bulk operations: invite, set-role, remove, pause, …; show, targets, cancel, retry (API client).
    Ops {
        #[command(flatten)]
        client: cli::ClientArgs,
        #[command(subcommand)]
        command: cli::ops::OpsCommand,
    },
    /// Cross-workspace reports: access, api-keys, tags, audit (API client).
    Report {
        #[command(flatten)]
        client: cli::ClientArgs,
        #[command(subcommand)]
        command: cli::reports::ReportCommand,
    },
    /// Flotilla's operators and their tokens (API client).
    Operators {
        #[command(flatten)]
        client: cli::ClientArgs,
        #[command(subcommand)]
        command: cli::operators::OperatorsCommand,
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
        Command::Demo(args) => flotilla_service::demo::run(args).await,
        Command::Workspaces { client, command } => {
            std::process::exit(cli::run(client, cli::ClientCommand::Workspaces(command)).await)
        }
        Command::Ops { client, command } => {
            std::process::exit(cli::run(client, cli::ClientCommand::Ops(command)).await)
        }
        Command::Report { client, command } => {
            std::process::exit(cli::run(client, cli::ClientCommand::Report(command)).await)
        }
        Command::Operators { client, command } => {
            std::process::exit(cli::run(client, cli::ClientCommand::Operators(command)).await)
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
