//! `flotilla ops …`: start bulk operations with readable flags per kind, follow, cancel and
//! retry them. Every kind maps to `POST /v1/operations` with the params documented in the
//! OpenAPI document; `ops create --kind K --params JSON` reaches any kind, new ones included.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::{CliError, CliResult, with_query};
use super::table::{Table, cell};
use super::{Ctx, non_empty, watch};

/// Which workspaces an operation targets (at least one of `--label`, `--workspace`, `--all`).
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Workspaces carrying this label (repeat or comma-separate: any of them).
    #[arg(long = "label", value_name = "LABEL", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// With several labels: only workspaces carrying all of them.
    #[arg(long)]
    pub match_all: bool,
    /// This workspace (Flotilla id; repeat or comma-separate).
    #[arg(long = "workspace", value_name = "ID", value_delimiter = ',')]
    pub workspaces: Vec<String>,
    /// Every workspace you can see.
    #[arg(long)]
    pub all: bool,
    /// Leave this workspace out (repeat or comma-separate).
    #[arg(long = "exclude", value_name = "ID", value_delimiter = ',')]
    pub exclude: Vec<String>,
}

impl TargetArgs {
    /// The `targets` object of `POST /v1/operations`.
    pub fn to_json(&self) -> Value {
        let mut t = Map::new();
        let workspaces = non_empty(&self.workspaces);
        let labels = non_empty(&self.labels);
        if !workspaces.is_empty() {
            t.insert("workspaces".into(), json!(workspaces));
        }
        if !labels.is_empty() {
            t.insert("labels".into(), json!(labels));
        }
        if self.match_all {
            t.insert("label_match".into(), json!("all"));
        }
        if self.all {
            t.insert("all".into(), json!(true));
        }
        t.insert("exclude".into(), json!(non_empty(&self.exclude)));
        Value::Object(t)
    }
}

/// How an operation runs, shared by every kind.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Which workspaces.
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Read and diff only: record what would change, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop once more targets failed than this: a count (`3`) or a percentage (`10%`).
    #[arg(long, value_name = "N|P%")]
    pub failure_tolerance: Option<String>,
    /// Most targets of this operation running at once.
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<i64>,
    /// Repeat-safe key: the same key and request return the first operation.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Follow progress until the operation finishes; exit 3 unless it succeeded.
    #[arg(long)]
    pub watch: bool,
}

/// Resource type of `tags.assign` / `tags.unassign`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ResourceType {
    /// Campaigns (by id).
    Campaign,
    /// Sending accounts (by email).
    Account,
}

/// `flotilla ops …`
#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// members.invite: invite people into every target workspace.
    Invite {
        /// Email to invite (repeat or comma-separate).
        #[arg(
            long = "email",
            value_name = "EMAIL",
            value_delimiter = ',',
            required = true
        )]
        emails: Vec<String>,
        /// admin, editor or view.
        #[arg(long)]
        role: String,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// members.set_role: change the role of existing members.
    SetRole {
        /// Member email (repeat or comma-separate).
        #[arg(
            long = "email",
            value_name = "EMAIL",
            value_delimiter = ',',
            required = true
        )]
        emails: Vec<String>,
        /// admin, editor or view.
        #[arg(long)]
        role: String,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// members.remove: remove members.
    Remove {
        /// Member email (repeat or comma-separate).
        #[arg(
            long = "email",
            value_name = "EMAIL",
            value_delimiter = ',',
            required = true
        )]
        emails: Vec<String>,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// api_keys.create: create an Instantly API key in every target workspace (stored in the vault).
    CreateKey {
        /// Key name.
        #[arg(long)]
        name: String,
        /// Instantly scope (repeat or comma-separate), e.g. campaigns:read.
        #[arg(
            long = "scope",
            value_name = "SCOPE",
            value_delimiter = ',',
            conflicts_with = "preset"
        )]
        scopes: Vec<String>,
        /// Role preset instead of scopes: admin, manager, sdr or viewer.
        #[arg(long)]
        preset: Option<String>,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// api_keys.revoke: delete keys by id, name prefix or scope (never Flotilla's own).
    RevokeKeys {
        /// Instantly key id (repeat or comma-separate).
        #[arg(long = "key-id", value_name = "ID", value_delimiter = ',')]
        key_ids: Vec<String>,
        /// Every key whose name starts with this.
        #[arg(long)]
        name_prefix: Option<String>,
        /// Every key holding this scope, e.g. all:all (repeat or comma-separate).
        #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
        scopes: Vec<String>,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// credentials.rotate: replace Flotilla's own key in every target workspace.
    Rotate {
        /// Scopes for the new keys (default: as the service decides).
        #[arg(
            long = "scope",
            value_name = "SCOPE",
            value_delimiter = ',',
            conflicts_with = "preset"
        )]
        scopes: Vec<String>,
        /// Role preset for the new keys (only admin grants what Flotilla needs).
        #[arg(long)]
        preset: Option<String>,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// tags.create: create tags (existing ones are reused).
    CreateTags {
        /// Tag label (repeat or comma-separate), e.g. Team-East.
        #[arg(
            long = "tag",
            value_name = "TAG",
            value_delimiter = ',',
            required = true
        )]
        tags: Vec<String>,
        /// Description for tags that are created.
        #[arg(long)]
        description: Option<String>,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// tags.assign: tag campaigns or accounts.
    AssignTag {
        /// The tag and the resources.
        #[command(flatten)]
        resources: TagResources,
        /// Create the tag where it does not exist.
        #[arg(long)]
        create: bool,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// tags.unassign: untag campaigns or accounts.
    UnassignTag {
        /// The tag and the resources.
        #[command(flatten)]
        resources: TagResources,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// campaigns.pause: pause campaigns by id or by tag.
    Pause {
        /// Which campaigns.
        #[command(flatten)]
        campaigns: CampaignSelect,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// campaigns.activate: activate campaigns by id or by tag.
    Activate {
        /// Which campaigns.
        #[command(flatten)]
        campaigns: CampaignSelect,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// inventory.sync: refresh the snapshots reports read.
    Sync {
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// Any kind with raw JSON params, e.g. --kind members.invite --params '{"emails":[…],"role":"view"}'.
    Create {
        /// Operation kind.
        #[arg(long)]
        kind: String,
        /// Params as JSON, or @FILE to read them from a file.
        #[arg(long, default_value = "{}")]
        params: String,
        /// Targets and how the operation runs.
        #[command(flatten)]
        run: RunArgs,
    },
    /// List operations, newest first.
    List {
        /// Only this status.
        #[arg(long)]
        status: Option<String>,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show one operation (status, counts, progress).
    Show {
        /// Operation id.
        id: String,
        /// Follow it until it finishes.
        #[arg(long)]
        watch: bool,
    },
    /// Per-workspace results of an operation.
    Targets {
        /// Operation id.
        id: String,
        /// Only targets in this state (pending, running, succeeded, failed, skipped, cancelled).
        #[arg(long)]
        state: Option<String>,
    },
    /// Follow an operation until it finishes (same as `show --watch`).
    Watch {
        /// Operation id.
        id: String,
    },
    /// Cancel an operation: pending targets become cancelled.
    Cancel {
        /// Operation id.
        id: String,
    },
    /// Start a new operation over the failed and cancelled targets of one.
    Retry {
        /// Operation id.
        id: String,
        /// Follow the new operation.
        #[arg(long)]
        watch: bool,
    },
}

/// Tag and resources of `tags.assign` / `tags.unassign`.
#[derive(Debug, Clone, Args)]
pub struct TagResources {
    /// The tag's label.
    #[arg(long)]
    pub tag: String,
    /// campaign or account.
    #[arg(long = "type", value_enum)]
    pub resource_type: ResourceType,
    /// Campaign id or account email (repeat or comma-separate).
    #[arg(
        long = "id",
        value_name = "ID",
        value_delimiter = ',',
        required_unless_present = "every"
    )]
    pub ids: Vec<String>,
    /// Every resource of that type in each workspace.
    #[arg(long, conflicts_with = "ids")]
    pub every: bool,
}

impl TagResources {
    fn params(&self) -> Map<String, Value> {
        let mut p = Map::new();
        p.insert("tag".into(), json!(self.tag));
        let kind = match self.resource_type {
            ResourceType::Campaign => "campaign",
            ResourceType::Account => "account",
        };
        p.insert("resource_type".into(), json!(kind));
        if self.every {
            p.insert("all".into(), json!(true));
        } else {
            p.insert("resource_ids".into(), json!(non_empty(&self.ids)));
        }
        p
    }
}

/// Campaigns by id or by tag.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct CampaignSelect {
    /// Every campaign carrying this tag, e.g. Team-East.
    #[arg(long)]
    pub tag: Option<String>,
    /// Campaign id (repeat or comma-separate).
    #[arg(long = "campaign", value_name = "ID", value_delimiter = ',')]
    pub campaign_ids: Vec<String>,
}

impl CampaignSelect {
    fn params(&self) -> Value {
        match &self.tag {
            Some(tag) => json!({ "tag": tag }),
            None => json!({ "campaign_ids": non_empty(&self.campaign_ids) }),
        }
    }
}

fn scopes_or_preset(scopes: &[String], preset: &Option<String>) -> Map<String, Value> {
    let mut p = Map::new();
    let scopes = non_empty(scopes);
    if !scopes.is_empty() {
        p.insert("scopes".into(), json!(scopes));
    }
    if let Some(preset) = preset {
        p.insert("preset".into(), json!(preset));
    }
    p
}

/// The kind and params a kind-specific subcommand stands for, and its run flags; `None` for
/// the subcommands that do not create an operation.
pub fn operation_request(cmd: &OpsCommand) -> CliResult<Option<(String, Value, &RunArgs)>> {
    let (kind, params, run) = match cmd {
        OpsCommand::Invite { emails, role, run } => (
            "members.invite",
            json!({ "emails": non_empty(emails), "role": role }),
            run,
        ),
        OpsCommand::SetRole { emails, role, run } => (
            "members.set_role",
            json!({ "emails": non_empty(emails), "role": role }),
            run,
        ),
        OpsCommand::Remove { emails, run } => (
            "members.remove",
            json!({ "emails": non_empty(emails) }),
            run,
        ),
        OpsCommand::CreateKey {
            name,
            scopes,
            preset,
            run,
        } => {
            let mut p = scopes_or_preset(scopes, preset);
            p.insert("name".into(), json!(name));
            ("api_keys.create", Value::Object(p), run)
        }
        OpsCommand::RevokeKeys {
            key_ids,
            name_prefix,
            scopes,
            run,
        } => {
            let mut p = Map::new();
            let key_ids = non_empty(key_ids);
            let scopes = non_empty(scopes);
            if !key_ids.is_empty() {
                p.insert("key_ids".into(), json!(key_ids));
            }
            if let Some(prefix) = name_prefix {
                p.insert("name_prefix".into(), json!(prefix));
            }
            if !scopes.is_empty() {
                p.insert("scopes_any".into(), json!(scopes));
            }
            if p.is_empty() {
                return Err(CliError::Usage(
                    "revoke-keys needs --key-id, --name-prefix or --scope".into(),
                ));
            }
            ("api_keys.revoke", Value::Object(p), run)
        }
        OpsCommand::Rotate {
            scopes,
            preset,
            run,
        } => (
            "credentials.rotate",
            Value::Object(scopes_or_preset(scopes, preset)),
            run,
        ),
        OpsCommand::CreateTags {
            tags,
            description,
            run,
        } => {
            let mut p = Map::new();
            p.insert("labels".into(), json!(non_empty(tags)));
            if let Some(d) = description {
                p.insert("description".into(), json!(d));
            }
            ("tags.create", Value::Object(p), run)
        }
        OpsCommand::AssignTag {
            resources,
            create,
            run,
        } => {
            let mut p = resources.params();
            if *create {
                p.insert("create".into(), json!(true));
            }
            ("tags.assign", Value::Object(p), run)
        }
        OpsCommand::UnassignTag { resources, run } => {
            ("tags.unassign", Value::Object(resources.params()), run)
        }
        OpsCommand::Pause { campaigns, run } => ("campaigns.pause", campaigns.params(), run),
        OpsCommand::Activate { campaigns, run } => ("campaigns.activate", campaigns.params(), run),
        OpsCommand::Sync { run } => ("inventory.sync", json!({}), run),
        OpsCommand::Create { kind, params, run } => {
            let text = match params.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(|e| {
                    CliError::Usage(format!("cannot read --params file {path}: {e}"))
                })?,
                None => params.clone(),
            };
            let params: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Usage(format!("--params is not JSON: {e}")))?;
            return Ok(Some((kind.clone(), params, run)));
        }
        _ => return Ok(None),
    };
    Ok(Some((kind.to_string(), params, run)))
}

/// The body of `POST /v1/operations`.
pub fn operation_body(kind: &str, params: Value, run: &RunArgs) -> Value {
    let mut body = Map::new();
    body.insert("kind".into(), json!(kind));
    body.insert("targets".into(), run.targets.to_json());
    body.insert("params".into(), params);
    if run.dry_run {
        body.insert("dry_run".into(), json!(true));
    }
    if let Some(t) = &run.failure_tolerance {
        // A bare number is a count; anything else ("10%") goes as the string.
        let value = t
            .trim()
            .parse::<u64>()
            .map(|n| json!(n))
            .unwrap_or_else(|_| json!(t.trim()));
        body.insert("failure_tolerance".into(), value);
    }
    if let Some(n) = run.max_concurrency {
        body.insert("max_concurrency".into(), json!(n));
    }
    Value::Object(body)
}

/// Runs an `ops` subcommand.
pub async fn run(ctx: &Ctx, cmd: OpsCommand) -> CliResult<()> {
    if let Some((kind, params, run)) = operation_request(&cmd)? {
        let body = operation_body(&kind, params, run);
        let mut req = ctx.api.request(Method::POST, "/v1/operations").json(&body);
        if let Some(key) = &run.idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let (_, text) = ctx.api.send("/v1/operations", req).await?;
        let op: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::Other(anyhow::anyhow!("invalid answer: {e}")))?;
        return created(ctx, op, run.watch).await;
    }
    match cmd {
        OpsCommand::List {
            status,
            kind,
            limit,
        } => {
            let path = with_query(
                "/v1/operations",
                &[
                    ("status", status.unwrap_or_default()),
                    ("kind", kind.unwrap_or_default()),
                    ("limit", limit.clamp(1, 500).to_string()),
                ],
            );
            let page = ctx.api.get(&path).await?;
            if ctx.json {
                ctx.print_json(&page["items"]);
                return Ok(());
            }
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let mut t =
                Table::new(["ID", "KIND", "STATUS", "DONE", "DRY RUN", "CREATED"]).keep("ID");
            for op in &items {
                t.row([
                    cell(&op["id"]),
                    cell(&op["kind"]),
                    cell(&op["status"]),
                    format!(
                        "{}/{}",
                        cell(&op["progress"]["done"]),
                        cell(&op["progress"]["total"])
                    ),
                    if op["dry_run"].as_bool() == Some(true) {
                        "yes".into()
                    } else {
                        String::new()
                    },
                    cell(&op["created_at"]),
                ]);
            }
            ctx.print_table(&t, "no operations");
            Ok(())
        }
        OpsCommand::Show { id, watch } => {
            if watch {
                return follow(ctx, &id).await;
            }
            let op = ctx.api.get(&format!("/v1/operations/{id}")).await?;
            if ctx.json {
                ctx.print_json(&op);
            } else {
                print_operation(&op);
            }
            Ok(())
        }
        OpsCommand::Watch { id } => follow(ctx, &id).await,
        OpsCommand::Targets { id, state } => {
            let (items, _) = ctx
                .api
                .all_pages(
                    &format!("/v1/operations/{id}/targets"),
                    &[
                        ("state", state.unwrap_or_default()),
                        ("limit", "500".into()),
                    ],
                )
                .await?;
            if ctx.json {
                ctx.print_json(&Value::Array(items));
            } else {
                ctx.print_table(&targets_table(&items), "no targets");
            }
            Ok(())
        }
        OpsCommand::Cancel { id } => {
            let op = ctx
                .api
                .json(Method::POST, &format!("/v1/operations/{id}/cancel"), None)
                .await?;
            if ctx.json {
                ctx.print_json(&op);
            } else {
                print_operation(&op);
            }
            Ok(())
        }
        OpsCommand::Retry { id, watch } => {
            let op = ctx
                .api
                .json(Method::POST, &format!("/v1/operations/{id}/retry"), None)
                .await?;
            created(ctx, op, watch).await
        }
        _ => Ok(()),
    }
}

/// Prints a just-created operation, or follows it with `--watch`.
async fn created(ctx: &Ctx, op: Value, watch: bool) -> CliResult<()> {
    let id = op["id"].as_str().unwrap_or_default().to_string();
    if watch {
        if !ctx.json {
            eprintln!(
                "operation {id} ({}) started over {} workspace(s)",
                cell(&op["kind"]),
                cell(&op["progress"]["total"])
            );
        }
        return follow(ctx, &id).await;
    }
    if ctx.json {
        ctx.print_json(&op);
    } else {
        print_operation(&op);
        println!("follow it: flotilla ops watch {id}");
    }
    Ok(())
}

/// Follows an operation to its end, prints the outcome, and fails unless it succeeded.
pub async fn follow(ctx: &Ctx, id: &str) -> CliResult<()> {
    let op = watch::follow(&ctx.api, id, ctx.json).await?;
    let status = op["status"].as_str().unwrap_or_default().to_string();
    if ctx.json {
        ctx.print_json(&op);
    } else {
        print_operation(&op);
        if status != "succeeded" {
            // Show why: the first failed targets with their codes and messages.
            let (failed, _) = ctx
                .api
                .all_pages(
                    &format!("/v1/operations/{id}/targets"),
                    &[("state", "failed".into()), ("limit", "20".into())],
                )
                .await
                .unwrap_or_default();
            if !failed.is_empty() {
                println!("\nfailed targets:");
                print!(
                    "{}",
                    targets_table(&failed[..failed.len().min(20)]).render(ctx.width)
                );
                println!("all of them: flotilla ops targets {id} --state failed");
            }
        }
    }
    if status == "succeeded" {
        Ok(())
    } else {
        Err(CliError::NotSucceeded {
            id: id.to_string(),
            status,
        })
    }
}

/// A few lines about an operation.
pub fn print_operation(op: &Value) {
    let dry = if op["dry_run"].as_bool() == Some(true) {
        "  (dry run)"
    } else {
        ""
    };
    println!(
        "operation {}  {}  {}{dry}",
        cell(&op["id"]),
        cell(&op["kind"]),
        cell(&op["status"])
    );
    if let Some(reason) = op["stop_reason"].as_str() {
        println!("stopped: {reason}");
    }
    let mut counts: Vec<String> = Vec::new();
    if let Some(map) = op["counts"].as_object() {
        for state in [
            "pending",
            "running",
            "succeeded",
            "failed",
            "skipped",
            "cancelled",
        ] {
            if let Some(n) = map.get(state).and_then(Value::as_i64).filter(|n| *n > 0) {
                counts.push(format!("{state} {n}"));
            }
        }
    }
    println!(
        "targets: {}/{} done{}{}",
        cell(&op["progress"]["done"]),
        cell(&op["progress"]["total"]),
        if counts.is_empty() { "" } else { " · " },
        counts.join(" · ")
    );
}

/// Per-workspace rows, with the changes summarised as `action item` pairs.
pub fn targets_table(items: &[Value]) -> Table {
    let mut t =
        Table::new(["WORKSPACE", "STATE", "TRIES", "CODE", "CHANGES", "MESSAGE"]).keep("WORKSPACE");
    for target in items {
        let changes: Vec<String> = target["changes"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| format!("{} {}", cell(&c["action"]), cell(&c["item"])))
                    .collect()
            })
            .unwrap_or_default();
        t.row([
            cell(&target["workspace_id"]),
            cell(&target["state"]),
            cell(&target["attempts"]),
            cell(&target["code"]),
            changes.join(", "),
            cell(&target["message"]),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: OpsCommand,
    }

    fn body(args: &[&str]) -> Value {
        let t = T::try_parse_from(std::iter::once("ops").chain(args.iter().copied())).unwrap();
        let (kind, params, run) = operation_request(&t.cmd).unwrap().unwrap();
        operation_body(&kind, params, run)
    }

    #[test]
    fn invite_flags_become_the_documented_body() {
        let b = body(&[
            "invite",
            "--label",
            "east,west",
            "--email",
            "a@x.com",
            "--email",
            "b@x.com",
            "--role",
            "editor",
            "--exclude",
            "w9",
            "--dry-run",
            "--failure-tolerance",
            "10%",
        ]);
        assert_eq!(
            b,
            json!({
                "kind": "members.invite",
                "targets": { "labels": ["east", "west"], "exclude": ["w9"] },
                "params": { "emails": ["a@x.com", "b@x.com"], "role": "editor" },
                "dry_run": true,
                "failure_tolerance": "10%",
            })
        );
        let b = body(&[
            "remove",
            "--all",
            "--email",
            "a@x.com",
            "--failure-tolerance",
            "3",
        ]);
        assert_eq!(b["targets"], json!({ "all": true, "exclude": [] }));
        assert_eq!(b["failure_tolerance"], json!(3));
    }

    #[test]
    fn other_kinds_map_to_their_params() {
        assert_eq!(
            body(&["pause", "--tag", "Team-East", "--label", "east"])["params"],
            json!({ "tag": "Team-East" })
        );
        assert_eq!(
            body(&[
                "assign-tag",
                "--tag",
                "T",
                "--type",
                "account",
                "--every",
                "--create",
                "--all"
            ])["params"],
            json!({ "tag": "T", "resource_type": "account", "all": true, "create": true })
        );
        assert_eq!(
            body(&["revoke-keys", "--scope", "all:all,all:update", "--all"])["params"],
            json!({ "scopes_any": ["all:all", "all:update"] })
        );
        assert_eq!(
            body(&["create-key", "--name", "n", "--preset", "manager", "--all"])["params"],
            json!({ "name": "n", "preset": "manager" })
        );
        let b = body(&[
            "create",
            "--kind",
            "tags.create",
            "--params",
            r#"{"labels":["A"]}"#,
            "--workspace",
            "w1",
        ]);
        assert_eq!(b["kind"], "tags.create");
        assert_eq!(b["targets"], json!({ "workspaces": ["w1"], "exclude": [] }));
        assert_eq!(body(&["sync", "--all"])["kind"], "inventory.sync");
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        let t = T::try_parse_from(["ops", "create", "--kind", "k", "--params", "{nope", "--all"])
            .unwrap();
        assert!(matches!(operation_request(&t.cmd), Err(CliError::Usage(_))));
        let t = T::try_parse_from(["ops", "revoke-keys", "--all"]).unwrap();
        assert!(matches!(operation_request(&t.cmd), Err(CliError::Usage(_))));
        assert!(
            T::try_parse_from(["ops", "pause", "--all"]).is_err(),
            "pause needs --tag or --campaign"
        );
    }
}
