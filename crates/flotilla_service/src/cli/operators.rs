//! `flotilla operators …`: Flotilla's own users and tokens (`/v1/operators`).

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::client::CliResult;
use super::table::{Table, cell};
use super::{Ctx, non_empty};

/// `flotilla operators …`
#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// List operators.
    List,
    /// Create an operator and print its token (shown once).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// admin, manager, sdr or viewer.
        #[arg(long)]
        role: String,
        /// Limit the operator to workspaces carrying these labels (repeat or comma-separate).
        #[arg(long = "label", value_name = "LABEL", value_delimiter = ',')]
        labels: Vec<String>,
    },
    /// Revoke an operator's token.
    Revoke {
        /// Operator id.
        id: String,
    },
}

fn operators_table(items: &[Value]) -> Table {
    let mut t = Table::new(["ID", "NAME", "ROLE", "LABELS", "CREATED", "REVOKED"]).keep("ID");
    for op in items {
        t.row([
            cell(&op["id"]),
            cell(&op["name"]),
            cell(&op["role"]),
            cell(&op["labels"]),
            cell(&op["created_at"]),
            cell(&op["revoked_at"]),
        ]);
    }
    t
}

/// Runs an `operators` subcommand.
pub async fn run(ctx: &Ctx, cmd: OperatorsCommand) -> CliResult<()> {
    match cmd {
        OperatorsCommand::List => {
            let (items, _) = ctx.api.all_pages("/v1/operators", &[]).await?;
            if ctx.json {
                ctx.print_json(&Value::Array(items));
            } else {
                ctx.print_table(&operators_table(&items), "no operators");
            }
        }
        OperatorsCommand::Create { name, role, labels } => {
            let body = json!({ "name": name, "role": role, "labels": non_empty(&labels) });
            let created = ctx.api.post("/v1/operators", &body).await?;
            if ctx.json {
                ctx.print_json(&created);
            } else {
                let op = if created["operator"].is_object() {
                    &created["operator"]
                } else {
                    &created
                };
                print!(
                    "{}",
                    operators_table(std::slice::from_ref(op)).render(ctx.width)
                );
                // The token is the point of this command; it is shown once and stored hashed.
                println!("token (shown once): {}", cell(&created["token"]));
            }
        }
        OperatorsCommand::Revoke { id } => {
            ctx.api
                .json(Method::DELETE, &format!("/v1/operators/{id}"), None)
                .await?;
            if ctx.json {
                ctx.print_json(&json!({ "revoked": id }));
            } else {
                println!("revoked {id}");
            }
        }
    }
    Ok(())
}
