//! `flotilla report …`: the cross-workspace reports (`/v1/reports/*`) as a table, JSON or CSV.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::Ctx;
use super::client::{CliResult, with_query};
use super::table::Table;

/// Output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// A table fitted to the terminal.
    #[default]
    Table,
    /// Every row as one JSON document.
    Json,
    /// The service's CSV, as-is.
    Csv,
}

/// Filters every report takes.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Only workspaces carrying this label.
    #[arg(long)]
    pub label: Option<String>,
    /// Only this workspace (Flotilla id).
    #[arg(long)]
    pub workspace: Option<String>,
    /// table, json or csv.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `flotilla report …`
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Who is a member of which workspace with which role.
    Access {
        /// Only this member.
        #[arg(long)]
        email: Option<String>,
        /// Only this role.
        #[arg(long)]
        role: Option<String>,
        /// Filters and format.
        #[command(flatten)]
        common: ReportArgs,
    },
    /// Every API key in every workspace, with risk flags (all:all, all:update, …).
    ApiKeys {
        /// Only keys carrying this flag.
        #[arg(long)]
        flag: Option<String>,
        /// Filters and format.
        #[command(flatten)]
        common: ReportArgs,
    },
    /// Tags and what they cover, per workspace.
    Tags {
        /// Filters and format.
        #[command(flatten)]
        common: ReportArgs,
    },
    /// Instantly's audit entries across workspaces.
    Audit {
        /// Only this activity type.
        #[arg(long)]
        activity_type: Option<String>,
        /// From this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
        /// Until this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
        /// Filters and format.
        #[command(flatten)]
        common: ReportArgs,
    },
}

/// The report's path, its specific filters, the shared ones, and the columns a table prefers.
fn request(
    cmd: ReportCommand,
) -> (
    &'static str,
    Vec<(&'static str, String)>,
    ReportArgs,
    &'static [&'static str],
) {
    let s = |v: Option<String>| v.unwrap_or_default();
    match cmd {
        ReportCommand::Access {
            email,
            role,
            common,
        } => (
            "/v1/reports/access",
            vec![("email", s(email)), ("role", s(role))],
            common,
            &["workspace_name", "email", "role", "accepted"],
        ),
        ReportCommand::ApiKeys { flag, common } => (
            "/v1/reports/api-keys",
            vec![("flag", s(flag))],
            common,
            &[
                "workspace_name",
                "name",
                "scopes",
                "flags",
                "flotilla_credential",
                "created_at",
            ],
        ),
        ReportCommand::Tags { common } => (
            "/v1/reports/tags",
            vec![],
            common,
            &["workspace_name", "tags"],
        ),
        ReportCommand::Audit {
            activity_type,
            since,
            until,
            common,
        } => (
            "/v1/reports/audit-logs",
            vec![
                ("activity_type", s(activity_type)),
                ("since", s(since)),
                ("until", s(until)),
            ],
            common,
            &[
                "workspace_name",
                "timestamp",
                "activity_type",
                "user",
                "ip_address",
            ],
        ),
    }
}

/// The preferred columns the rows have; all of their fields when they have none of them (the
/// report's row shape is the service's to grow).
fn columns<'a>(items: &[Value], preferred: &[&'a str]) -> Option<Vec<&'a str>> {
    let first = items.first()?.as_object()?;
    let present: Vec<&str> = preferred
        .iter()
        .copied()
        .filter(|c| first.contains_key(*c))
        .collect();
    (!present.is_empty()).then_some(present)
}

/// Runs a `report` subcommand.
pub async fn run(ctx: &Ctx, cmd: ReportCommand) -> CliResult<()> {
    let (path, mut query, common, preferred) = request(cmd);
    query.push(("label", common.label.unwrap_or_default()));
    query.push(("workspace_id", common.workspace.unwrap_or_default()));
    let format = if ctx.json {
        Format::Json
    } else {
        common.format
    };
    if format == Format::Csv {
        query.push(("format", "csv".into()));
        let text = ctx.api.get_text(&with_query(path, &query)).await?;
        print!("{text}");
        return Ok(());
    }
    let (items, last) = ctx.api.all_pages(path, &query).await?;
    if format == Format::Json {
        let mut doc = last;
        doc["items"] = Value::Array(items);
        doc["next_cursor"] = Value::Null;
        ctx.print_json(&doc);
        return Ok(());
    }
    let cols = columns(&items, preferred);
    ctx.print_table(&Table::from_items(&items, cols.as_deref()), "no rows");
    if let Some(missing) = last["missing_snapshots"]
        .as_array()
        .filter(|m| !m.is_empty())
    {
        eprintln!(
            "note: {} workspace(s) have no snapshot yet; refresh with: flotilla ops sync --all --watch",
            missing.len()
        );
    }
    if let Some(unavailable) = last["unavailable"].as_array().filter(|u| !u.is_empty()) {
        eprintln!(
            "note: {} part(s) could not be read; see --format json",
            unavailable.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_use_known_columns_or_every_field() {
        let rows = vec![json!({"workspace_name": "A", "email": "e", "extra": 1})];
        assert_eq!(
            columns(&rows, &["workspace_name", "email", "role"]),
            Some(vec!["workspace_name", "email"])
        );
        assert_eq!(columns(&rows, &["nothing"]), None);
        assert_eq!(columns(&[], &["x"]), None);
    }
}
