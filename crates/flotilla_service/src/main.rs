//! The `flotilla` binary: `serve`, `migrate`, `vault status|rotate`.

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
    /// The credential vault: KEK status and rotation.
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Show the primary KEK and how many rows each KEK wraps.
    Status {
        #[command(flatten)]
        config: Config,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-wrap every data key under the keyring's primary KEK (online; resumable).
    Rotate {
        #[command(flatten)]
        config: Config,
        /// Rows per transaction.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn init_logging() {
    let filter = EnvFilter::try_from_env("FLOTILLA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FLOTILLA_LOG_FORMAT").map(|f| f == "json").unwrap_or(false);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
        Command::Vault { command } => vault(command).await,
    }
}

/// `flotilla vault status|rotate`: opens the vault with the configured keyring (it refuses a
/// keyring missing a KEK that rows need) and prints JSON or a small table.
async fn vault(command: VaultCommand) -> anyhow::Result<()> {
    let (config, json) = match &command {
        VaultCommand::Status { config, json } | VaultCommand::Rotate { config, json, .. } => (config, *json),
    };
    let keyring = app::resolve_keyring(config)?;
    let db = app::connect(config).await?;
    let vault = flotilla_vault::Vault::open(db, keyring).await.context("while opening the vault")?;
    if let VaultCommand::Rotate { batch, .. } = &command {
        let report = vault.rotate(*batch).await.context("while rotating the vault's KEK")?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("primary KEK   {}", report.primary_kek_id);
            println!("re-wrapped    {} row(s) in {} batch(es)", report.rotated, report.batches);
            println!("remaining     {}", report.remaining);
        }
        return Ok(());
    }
    let status = vault.status().await.context("while reading the vault's status")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!("primary KEK       {}", status.primary_kek_id);
        println!("pending rotation  {}", status.pending_rotation);
        println!("delegated rows    {}", status.delegated_rows);
        println!("{:<16} ROWS", "KEK");
        for (kek, n) in &status.rows_per_kek {
            println!("{kek:<16} {n}");
        }
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let keyring = app::resolve_keyring(&config)?;
    let listen = config.listen;
    let state = app::prepare(config, keyring).await?;
    let admin_token = std::env::var("FLOTILLA_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()).map(SecretString::from);
    if let Some(token) = flotilla_service::auth::ensure_bootstrap_admin(&state.store, admin_token.as_ref())
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
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("while binding {listen}"))?;
    app::serve(state, listener, app::shutdown_on_signals()).await
}
