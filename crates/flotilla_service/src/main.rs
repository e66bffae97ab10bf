//! The `flotilla` binary: `serve`, `migrate`, `demo`, `operator create`, `vault status|rotate`,
//! and the API client commands (`workspaces`, `ops`, `report`, `operators`).

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
    /// Manage operators from the command line (e.g. bootstrap the first admin).
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
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

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create an operator in FLOTILLA_DATABASE_URL and print its token once (stdout).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// admin, manager, sdr or viewer.
        #[arg(long)]
        role: String,
        /// Label scope, comma-separated (default: every workspace).
        #[arg(long, value_delimiter = ',')]
        labels: Vec<String>,
        /// Database URL (not the whole service configuration: its `--role` means something else).
        #[arg(
            long,
            env = "FLOTILLA_DATABASE_URL",
            default_value = "sqlite://data/flotilla.db"
        )]
        database_url: String,
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
        Command::Operator {
            command:
                OperatorCommand::Create {
                    name,
                    role,
                    labels,
                    database_url,
                },
        } => create_operator(&database_url, &name, &role, &labels).await,
        Command::Vault { command } => vault(command).await,
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

/// `flotilla vault status|rotate`: opens the vault with the configured keyring (it refuses a
/// keyring missing a KEK that rows need) and prints JSON or a small table.
async fn vault(command: VaultCommand) -> anyhow::Result<()> {
    let (config, json) = match &command {
        VaultCommand::Status { config, json } | VaultCommand::Rotate { config, json, .. } => {
            (config, *json)
        }
    };
    let keyring = app::resolve_keyring(config)?;
    let db = app::connect(config).await?;
    let vault = flotilla_vault::Vault::open(db, keyring)
        .await
        .context("while opening the vault")?;
    if let VaultCommand::Rotate { batch, .. } = &command {
        let report = vault
            .rotate(*batch)
            .await
            .context("while rotating the vault's KEK")?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("primary KEK   {}", report.primary_kek_id);
            println!(
                "re-wrapped    {} row(s) in {} batch(es)",
                report.rotated, report.batches
            );
            println!("remaining     {}", report.remaining);
        }
        return Ok(());
    }
    let status = vault
        .status()
        .await
        .context("while reading the vault's status")?;
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

async fn create_operator(
    database_url: &str,
    name: &str,
    role: &str,
    labels: &[String],
) -> anyhow::Result<()> {
    use flotilla_service::api::{operators::validate_role, validate_labels, validate_name};
    // The same rules as POST /v1/operators.
    let invalid = |e: flotilla_service::error::ApiError| anyhow::anyhow!("{e}");
    let name = validate_name(name, "--name").map_err(invalid)?;
    let role = validate_role(role).map_err(invalid)?;
    let labels = validate_labels(labels, "--labels").map_err(invalid)?;
    let db = flotilla_vault::Database::connect(database_url)
        .await
        .context("while connecting to the database")?;
    db.migrate().await.context("while running migrations")?;
    let store = flotilla_service::store::Store::new(db);
    let token = flotilla_service::auth::new_token();
    let id = flotilla_service::auth::insert_operator(&store, &name, &role, &labels, &token, false)
        .await
        .context("while creating the operator")?;
    eprintln!("created operator {id} ({role}); its token, shown once and stored hashed:");
    println!("{}", token.expose_secret());
    Ok(())
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
