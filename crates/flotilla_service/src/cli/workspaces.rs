//! `flotilla workspaces …`: register, import, list and remove client workspaces.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{CliError, CliResult, with_query};
use super::table::{Table, cell};
use super::{Ctx, non_empty, ops};

/// `flotilla workspaces …`
#[derive(Debug, Subcommand)]
pub enum WorkspacesCommand {
    /// List registered workspaces.
    List {
        /// Only workspaces carrying this label.
        #[arg(long)]
        label: Option<String>,
        /// Only direct or delegated workspaces.
        #[arg(long)]
        mode: Option<String>,
    },
    /// Register one workspace with its own Instantly API key (verified live, stored encrypted).
    Add {
        /// Display name.
        #[arg(long)]
        name: String,
        /// File holding the workspace's API key, or - for stdin (keys never go on the command
        /// line, where shell history and `ps` would keep them).
        #[arg(long, value_name = "PATH|-")]
        api_key_file: String,
        /// Label (repeat or comma-separate).
        #[arg(long = "label", value_name = "LABEL", value_delimiter = ',')]
        labels: Vec<String>,
    },
    /// Bulk-register workspaces from a CSV (`name,api_key,labels`; labels `;`-separated) or JSON
    /// file (`[{"name", "api_key", "labels": [...]}]`); one operation, one target per row.
    Import {
        /// The file (.csv or .json; - for stdin with --format).
        file: String,
        /// csv or json (default: from the file's extension).
        #[arg(long)]
        format: Option<String>,
        /// Follow the import operation until it finishes.
        #[arg(long)]
        watch: bool,
    },
    /// Register the accepted sub workspaces of a registered admin workspace (delegated mode).
    Discover {
        /// Flotilla id of the admin workspace.
        #[arg(long)]
        admin_workspace: String,
        /// Label for every workspace registered (repeat or comma-separate).
        #[arg(long = "label", value_name = "LABEL", value_delimiter = ',')]
        labels: Vec<String>,
    },
    /// Show one workspace.
    Show {
        /// Flotilla id.
        id: String,
    },
    /// Replace a workspace's labels (and optionally its name).
    Label {
        /// Flotilla id.
        id: String,
        /// The new labels (repeat or comma-separate; none clears them).
        #[arg(long = "label", value_name = "LABEL", value_delimiter = ',')]
        labels: Vec<String>,
        /// New name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a workspace; its stored credential is destroyed.
    Remove {
        /// Flotilla id.
        id: String,
        /// Also remove the delegated workspaces acting through it.
        #[arg(long)]
        cascade: bool,
    },
}

fn read_input(path: &str) -> CliResult<Vec<u8>> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
        return Ok(buf);
    }
    // The message names the path only: never a byte of a key file.
    std::fs::read(PathBuf::from(path))
        .map_err(|e| CliError::Usage(format!("cannot read {path}: {e}")))
}

fn workspaces_table(items: &[Value]) -> Table {
    // The Instantly id and timestamps are in --json; the table keeps what fits a terminal.
    let mut t = Table::new(["ID", "NAME", "LABELS", "MODE", "KEY"]).keep("ID");
    for ws in items {
        t.row([
            cell(&ws["id"]),
            cell(&ws["name"]),
            cell(&ws["labels"]),
            cell(&ws["mode"]),
            cell(&ws["credential"]["fingerprint"]),
        ]);
    }
    t
}

fn print_one(ctx: &Ctx, ws: &Value) {
    if ctx.json {
        ctx.print_json(ws);
    } else {
        print!(
            "{}",
            workspaces_table(std::slice::from_ref(ws)).render(ctx.width)
        );
    }
}

/// Runs a `workspaces` subcommand.
pub async fn run(ctx: &Ctx, cmd: WorkspacesCommand) -> CliResult<()> {
    match cmd {
        WorkspacesCommand::List { label, mode } => {
            let (items, _) = ctx
                .api
                .all_pages(
                    "/v1/workspaces",
                    &[
                        ("label", label.unwrap_or_default()),
                        ("mode", mode.unwrap_or_default()),
                        ("limit", "500".into()),
                    ],
                )
                .await?;
            if ctx.json {
                ctx.print_json(&Value::Array(items));
            } else {
                ctx.print_table(&workspaces_table(&items), "no workspaces");
            }
            Ok(())
        }
        WorkspacesCommand::Add {
            name,
            api_key_file,
            labels,
        } => {
            let raw = read_input(&api_key_file)?;
            let key = String::from_utf8(raw)
                .map_err(|_| CliError::Usage("the API key file is not UTF-8".into()))?;
            let key = secrecy::SecretString::from(key.trim().to_string());
            // The key goes straight into the request body; it is never printed.
            let body = json!({
                "name": name,
                "api_key": secrecy::ExposeSecret::expose_secret(&key),
                "labels": non_empty(&labels),
            });
            let ws = ctx.api.post("/v1/workspaces", &body).await?;
            print_one(ctx, &ws);
            Ok(())
        }
        WorkspacesCommand::Import {
            file,
            format,
            watch,
        } => {
            let format = match format.as_deref() {
                Some(f) => f.to_ascii_lowercase(),
                None if file.ends_with(".json") => "json".into(),
                None if file.ends_with(".csv") => "csv".into(),
                None => {
                    return Err(CliError::Usage(
                        "cannot tell the file's format from its name: pass --format csv|json"
                            .into(),
                    ));
                }
            };
            let content_type = match format.as_str() {
                "csv" => "text/csv",
                "json" => "application/json",
                other => {
                    return Err(CliError::Usage(format!(
                        "--format must be csv or json, not {other:?}"
                    )));
                }
            };
            let bytes = read_input(&file)?;
            let req = ctx
                .api
                .request(Method::POST, "/v1/workspaces/import")
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
            let (_, text) = ctx.api.send("/v1/workspaces/import", req).await?;
            let op: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Other(anyhow::anyhow!("invalid answer: {e}")))?;
            let id = op["id"].as_str().unwrap_or_default().to_string();
            if watch {
                return ops::follow(ctx, &id).await;
            }
            if ctx.json {
                ctx.print_json(&op);
            } else {
                ops::print_operation(&op);
                println!("follow it: flotilla ops watch {id}");
            }
            Ok(())
        }
        WorkspacesCommand::Discover {
            admin_workspace,
            labels,
        } => {
            let body =
                json!({ "admin_workspace_id": admin_workspace, "labels": non_empty(&labels) });
            let answer = ctx.api.post("/v1/workspaces/discover", &body).await?;
            if ctx.json {
                ctx.print_json(&answer);
                return Ok(());
            }
            let registered = answer["registered"].as_array().cloned().unwrap_or_default();
            ctx.print_table(
                &workspaces_table(&registered),
                "no new workspace registered",
            );
            let skipped = answer["skipped"].as_array().cloned().unwrap_or_default();
            if !skipped.is_empty() {
                println!("\nskipped:");
                print!(
                    "{}",
                    Table::from_items(
                        &skipped,
                        Some(&["sub_workspace_id", "status", "reason", "workspace_id"])
                    )
                    .render(ctx.width)
                );
            }
            Ok(())
        }
        WorkspacesCommand::Show { id } => {
            let ws = ctx.api.get(&format!("/v1/workspaces/{id}")).await?;
            print_one(ctx, &ws);
            Ok(())
        }
        WorkspacesCommand::Label { id, labels, name } => {
            let mut body = json!({ "labels": non_empty(&labels) });
            if let Some(name) = name {
                body["name"] = json!(name);
            }
            let ws = ctx
                .api
                .json(Method::PATCH, &format!("/v1/workspaces/{id}"), Some(&body))
                .await?;
            print_one(ctx, &ws);
            Ok(())
        }
        WorkspacesCommand::Remove { id, cascade } => {
            let path = with_query(
                &format!("/v1/workspaces/{id}"),
                &[(
                    "cascade",
                    if cascade {
                        "true".into()
                    } else {
                        String::new()
                    },
                )],
            );
            ctx.api.json(Method::DELETE, &path, None).await?;
            if ctx.json {
                ctx.print_json(&json!({ "removed": id }));
            } else {
                println!("removed {id}; its stored credential is destroyed");
            }
            Ok(())
        }
    }
}
