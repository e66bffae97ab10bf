//! The `flotilla` binary as a client of its own REST API: `workspaces`, `ops`, `report` and
//! `operators` subcommands. Everything goes through the documented `/v1` contract (DESIGN.md),
//! so the CLI works against any Flotilla it can reach, local or remote.
//!
//! Output: tables that fit the terminal by default, `--json` for scripts. Errors print the
//! API's envelope code and message on stderr; exit codes are 1 (API or transport error),
//! 2 (bad input) and 3 (a watched operation did not succeed).

pub mod client;
pub mod operators;
pub mod ops;
pub mod reports;
pub mod table;
pub mod watch;
pub mod workspaces;

use std::io::Write;

use clap::Args;
use secrecy::SecretString;
use serde_json::Value;

pub use client::{Api, CliError, CliResult};

/// Where and as whom the CLI calls the API, and how it prints.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Flotilla's base URL.
    #[arg(
        long,
        env = "FLOTILLA_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,

    /// Operator token (prefer the environment variable: arguments show up in `ps`).
    #[arg(long, env = "FLOTILLA_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// Machine-readable output: JSON on stdout, no progress bar.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A client subcommand.
#[derive(Debug)]
pub enum ClientCommand {
    /// `flotilla workspaces …`
    Workspaces(workspaces::WorkspacesCommand),
    /// `flotilla ops …`
    Ops(ops::OpsCommand),
    /// `flotilla report …`
    Report(reports::ReportCommand),
    /// `flotilla operators …`
    Operators(operators::OperatorsCommand),
}

/// What every command gets: the API client and the output mode.
#[derive(Debug)]
pub struct Ctx {
    /// The API.
    pub api: Api,
    /// `--json`.
    pub json: bool,
    /// Width tables are fitted to.
    pub width: usize,
}

impl Ctx {
    /// Prints a JSON value (pretty) on stdout.
    pub fn print_json(&self, value: &Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        );
    }

    /// Prints a table on stdout, or `empty` when it has no rows.
    pub fn print_table(&self, table: &table::Table, empty: &str) {
        if table.is_empty() {
            println!("{empty}");
        } else {
            print!("{}", table.render(self.width));
        }
    }
}

/// Runs a client command; prints any error and returns the process exit code.
pub async fn run(args: ClientArgs, command: ClientCommand) -> i32 {
    let outcome = dispatch(args, command).await;
    let _ = std::io::stdout().flush();
    match outcome {
        Ok(()) => 0,
        Err(err) => {
            report_error(&err);
            i32::from(err.exit_code())
        }
    }
}

async fn dispatch(args: ClientArgs, command: ClientCommand) -> CliResult<()> {
    let token = args.token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        CliError::Usage(
            "no operator token: set FLOTILLA_TOKEN (or pass --token); `flotilla demo` prints one"
                .into(),
        )
    })?;
    let ctx = Ctx {
        api: Api::new(&args.url, SecretString::from(token))?,
        json: args.json,
        width: table::terminal_width(),
    };
    match command {
        ClientCommand::Workspaces(c) => workspaces::run(&ctx, c).await,
        ClientCommand::Ops(c) => ops::run(&ctx, c).await,
        ClientCommand::Report(c) => reports::run(&ctx, c).await,
        ClientCommand::Operators(c) => operators::run(&ctx, c).await,
    }
}

fn report_error(err: &CliError) {
    eprintln!("error: {err}");
    if let CliError::Api {
        details: Some(details),
        ..
    } = err
    {
        eprintln!("  details: {details}");
    }
}

/// Splits `a,b` values and drops empty pieces (clap's `value_delimiter` keeps them).
pub fn non_empty(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}
