//! Inventory snapshots: what `inventory.sync` read from each workspace (members, API key
//! metadata, tags and mappings, campaigns, accounts, group membership, audit entries) and the
//! queries the reports run over them. One SQL text serves both backends (migration 0005).
//!
//! A workspace's snapshot is replaced in one transaction (delete + batched multi-row inserts),
//! so a report never sees half of a sync. Audit entries are the exception: they accumulate,
//! de-duplicated by id, because Instantly's audit log is read incrementally.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use flotilla_instantly::Scope;
use flotilla_vault::db::Database;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::store::now_ms;

/// Resource names, as they appear in target changes, `inventory_resource` and reports.
pub mod resource {
    /// Workspace members.
    pub const MEMBERS: &str = "members";
    /// API keys (metadata only).
    pub const API_KEYS: &str = "api_keys";
    /// Custom tags.
    pub const TAGS: &str = "tags";
    /// Custom tag mappings.
    pub const TAG_MAPPINGS: &str = "tag_mappings";
    /// Campaigns.
    pub const CAMPAIGNS: &str = "campaigns";
    /// Sending accounts.
    pub const ACCOUNTS: &str = "accounts";
    /// Workspace group membership.
    pub const WORKSPACE_GROUPS: &str = "workspace_groups";
    /// Instantly's audit log.
    pub const AUDIT_LOGS: &str = "audit_logs";
    /// Every resource, in sync order.
    pub const ALL: [&str; 8] = [
        MEMBERS,
        API_KEYS,
        TAGS,
        TAG_MAPPINGS,
        CAMPAIGNS,
        ACCOUNTS,
        WORKSPACE_GROUPS,
        AUDIT_LOGS,
    ];
}

/// How one resource of a workspace fared in a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceState {
    /// Read in full: this many items.
    Synced(i64),
    /// The workspace's plan or key cannot read it (402/403): why.
    Unavailable(String),
}

/// A member as stored.
#[derive(Debug, Clone)]
pub struct MemberRow {
    /// Instantly's member id.
    pub member_id: String,
    /// Lower-cased email.
    pub email: String,
    /// Role (`owner`, `admin`, `editor`, `view`, `client`, or another string Instantly adds).
    pub role: String,
    /// Invitation accepted.
    pub accepted: bool,
    /// Instantly's user id.
    pub user_id: Option<String>,
    /// Invited (unix ms).
    pub created_at: Option<i64>,
}

/// An API key's metadata as stored (never its secret: Instantly lists none).
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    /// Instantly's key id.
    pub key_id: String,
    /// Name.
    pub name: String,
    /// Scopes, as listed.
    pub scopes: Vec<String>,
    /// Created (unix ms).
    pub created_at: Option<i64>,
    /// Updated (unix ms).
    pub updated_at: Option<i64>,
}

/// A custom tag.
#[derive(Debug, Clone)]
pub struct TagRow {
    /// Tag id.
    pub tag_id: String,
    /// Label.
    pub label: String,
    /// Description.
    pub description: Option<String>,
}

/// A tag mapping.
#[derive(Debug, Clone)]
pub struct TagMappingRow {
    /// Mapping id.
    pub mapping_id: String,
    /// Tag id.
    pub tag_id: String,
    /// 1 = account, 2 = campaign (instantly-api.md §9).
    pub resource_type: i64,
    /// Account email or campaign id.
    pub resource_id: String,
}

/// A campaign.
#[derive(Debug, Clone)]
pub struct CampaignRow {
    /// Campaign id.
    pub campaign_id: String,
    /// Name.
    pub name: String,
    /// Status (instantly-api.md §16).
    pub status: i64,
}

/// A sending account.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Email (accounts have no id).
    pub email: String,
    /// Status (instantly-api.md §16).
    pub status: i64,
}

/// A workspace group membership.
#[derive(Debug, Clone)]
pub struct GroupMemberRow {
    /// Membership id.
    pub group_member_id: String,
    /// Admin workspace.
    pub admin_workspace_id: String,
    /// Sub workspace.
    pub sub_workspace_id: String,
    /// `pending`, `accepted`, `rejected`.
    pub status: String,
    /// Admin workspace's name.
    pub admin_workspace_name: Option<String>,
    /// Sub workspace's name.
    pub sub_workspace_name: Option<String>,
}

/// An audit entry as stored.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// Entry id.
    pub log_id: String,
    /// When it happened (unix ms).
    pub at: i64,
    /// Activity type (instantly-api.md §10).
    pub activity_type: i64,
    /// Acting user.
    pub user_id: Option<String>,
    /// Acting user's name.
    pub user_name: Option<String>,
    /// Caller's IP.
    pub ip_address: Option<String>,
    /// Came through the API.
    pub from_api: bool,
    /// Related campaign.
    pub campaign_id: Option<String>,
    /// Related API key.
    pub api_key_id: Option<String>,
    /// Affected items.
    pub affected_count: Option<i64>,
    /// Free-form details (JSON text).
    pub metadata: Option<String>,
}

/// Everything one sync read from one workspace. A resource that is unavailable has no rows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Flotilla's workspace id.
    pub workspace_id: Uuid,
    /// When it was read (unix ms).
    pub synced_at: i64,
    /// The operation that read it (none when stored directly, e.g. by the benchmark).
    pub operation_id: Option<Uuid>,
    /// Per-resource outcome.
    pub resources: BTreeMap<&'static str, ResourceState>,
    /// Members.
    pub members: Vec<MemberRow>,
    /// API keys.
    pub api_keys: Vec<ApiKeyRow>,
    /// Tags.
    pub tags: Vec<TagRow>,
    /// Tag mappings.
    pub tag_mappings: Vec<TagMappingRow>,
    /// Campaigns.
    pub campaigns: Vec<CampaignRow>,
    /// Accounts.
    pub accounts: Vec<AccountRow>,
    /// Group membership.
    pub groups: Vec<GroupMemberRow>,
    /// Audit entries read by this sync (added to those already stored).
    pub audit_logs: Vec<AuditRow>,
}

/// The risk flags that depend only on a key's scopes (see `/v1/reports/api-keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeFlags {
    /// Holds `all:all`.
    pub all_all: bool,
    /// Holds any `all:*` scope.
    pub all_scope: bool,
    /// May update every resource (`all:update` or `all:all`).
    pub all_update: bool,
    /// May create, update or delete API keys.
    pub writes_api_keys: bool,
    /// May create, update or delete workspace members.
    pub writes_members: bool,
}

impl ScopeFlags {
    /// Flags of a scope list. Uses Instantly's grant rule (instantly-api.md §5), so e.g.
    /// `all:delete` or `api_keys:all` count as writing API keys.
    pub fn of(scopes: &[String]) -> ScopeFlags {
        let held: Vec<Scope> = scopes.iter().map(|s| Scope::new(s.as_str())).collect();
        let grants_any = |resource: &str| {
            ["create", "update", "delete"]
                .iter()
                .any(|act| Scope::any_grants(&held, &Scope::new(format!("{resource}:{act}"))))
        };
        ScopeFlags {
            all_all: scopes.iter().any(|s| s == "all:all"),
            all_scope: scopes.iter().any(|s| s.starts_with("all:")),
            all_update: Scope::any_grants(&held, &Scope::new("all:update")),
            writes_api_keys: grants_any("api_keys"),
            writes_members: grants_any("workspace_members"),
        }
    }
}

/// A value to bind in a dynamically built statement.
#[derive(Debug, Clone)]
pub enum Val {
    /// Text.
    Text(String),
    /// Nullable text.
    OptText(Option<String>),
    /// Integer.
    Int(i64),
    /// Nullable integer.
    OptInt(Option<i64>),
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Text(s.to_string())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Text(s)
    }
}
impl From<Option<String>> for Val {
    fn from(s: Option<String>) -> Val {
        Val::OptText(s)
    }
}
impl From<i64> for Val {
    fn from(n: i64) -> Val {
        Val::Int(n)
    }
}
impl From<Option<i64>> for Val {
    fn from(n: Option<i64>) -> Val {
        Val::OptInt(n)
    }
}
impl From<bool> for Val {
    fn from(b: bool) -> Val {
        Val::Int(b as i64)
    }
}

/// A statement under construction: SQL text plus its binds, `$n` numbered as they are added.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    /// The text.
    pub sql: String,
    /// The values.
    pub binds: Vec<Val>,
}

impl Sql {
    /// Starts with `sql`.
    pub fn new(sql: &str) -> Sql {
        Sql {
            sql: sql.to_string(),
            binds: Vec::new(),
        }
    }

    /// Adds a bind and returns its placeholder.
    pub fn bind(&mut self, v: impl Into<Val>) -> String {
        self.binds.push(v.into());
        format!("${}", self.binds.len())
    }

    /// Appends text.
    pub fn push(&mut self, s: &str) -> &mut Sql {
        self.sql.push_str(s);
        self
    }

    /// The query, binds applied.
    pub fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.sql);
        for b in &self.binds {
            q = match b.clone() {
                Val::Text(s) => q.bind(s),
                Val::OptText(s) => q.bind(s),
                Val::Int(n) => q.bind(n),
                Val::OptInt(n) => q.bind(n),
            };
        }
        q
    }
}

// Rows per multi-row insert: 200 rows × at most 13 columns stays far below SQLite's (32,766)
// and Postgres's (65,535) bind limits while cutting round trips by two orders of magnitude.
const INSERT_CHUNK: usize = 200;

/// Inserts `rows` into `table` with multi-row statements; `suffix` is appended to each
/// (e.g. `on conflict do nothing`).
async fn insert_batched(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Val>>,
    suffix: &str,
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = Sql::new(&format!(
            "insert into {table} ({}) values ",
            columns.join(", ")
        ));
        for (i, row) in chunk.iter().enumerate() {
            debug_assert_eq!(row.len(), columns.len());
            let ph: Vec<String> = row.iter().map(|v| sql.bind(v.clone())).collect();
            if i > 0 {
                sql.push(", ");
            }
            sql.push(&format!("({})", ph.join(", ")));
        }
        sql.push(suffix);
        sql.query().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Which workspaces a report covers: an operator's label scope plus the query's filters.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceScope {
    /// Only this workspace.
    pub workspace_id: Option<Uuid>,
    /// Only workspaces carrying this label.
    pub label: Option<String>,
    /// The operator's label scope (`None` = every workspace).
    pub visible: Option<Vec<String>>,
}

impl WorkspaceScope {
    /// Conditions on the workspace alias `w`, each starting with ` and`.
    pub fn conditions(&self, sql: &mut Sql) -> String {
        let mut out = String::new();
        if let Some(id) = self.workspace_id {
            out += &format!(" and w.id = {}", sql.bind(id.to_string()));
        }
        if let Some(label) = &self.label {
            out += &format!(
                " and exists (select 1 from workspace_label fl where fl.workspace_id = w.id and fl.label = {})",
                sql.bind(label.as_str())
            );
        }
        if let Some(visible) = &self.visible {
            if visible.is_empty() {
                out += " and 1 = 0";
            } else {
                let ph: Vec<String> = visible.iter().map(|l| sql.bind(l.as_str())).collect();
                out += &format!(
                    " and exists (select 1 from workspace_label vl where vl.workspace_id = w.id and vl.label in ({}))",
                    ph.join(", ")
                );
            }
        }
        out
    }
}

/// When a row's snapshot was taken and how old it is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Age {
    /// When the workspace's snapshot was taken.
    pub snapshot_at: DateTime<Utc>,
    /// Seconds since then.
    pub snapshot_age_seconds: i64,
}

impl Age {
    /// From the snapshot time (unix ms) and now.
    pub fn of(synced_at: i64, now: i64) -> Age {
        Age {
            snapshot_at: DateTime::from_timestamp_millis(synced_at).unwrap_or_default(),
            snapshot_age_seconds: ((now - synced_at) / 1000).max(0),
        }
    }
}

/// A workspace in a report's scope that has never been synced.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MissingSnapshot {
    /// Flotilla's workspace id.
    pub workspace_id: Uuid,
    /// Its name.
    pub workspace_name: String,
}

/// A resource a workspace's plan or key could not read at its last sync.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Unavailable {
    /// Flotilla's workspace id.
    pub workspace_id: Uuid,
    /// Its name.
    pub workspace_name: String,
    /// The resource (`members`, `audit_logs`, …).
    pub resource: String,
    /// Always `unavailable`.
    pub status: String,
    /// Why, e.g. `missing scope audit_logs:read`.
    pub reason: String,
    /// Snapshot time and age.
    #[serde(flatten)]
    pub age: Age,
}

/// One row of the access report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessRow {
    /// Flotilla's workspace id.
    pub workspace_id: Uuid,
    /// Workspace name.
    pub workspace_name: String,
    /// Member email (lower-cased).
    pub email: String,
    /// Role.
    pub role: String,
    /// Invitation accepted.
    pub accepted: bool,
    /// Instantly's member id.
    pub member_id: String,
    /// Instantly's user id.
    pub user_id: Option<String>,
    /// Snapshot time and age.
    #[serde(flatten)]
    pub age: Age,
}

/// One row of the API keys report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKeyReportRow {
    /// Flotilla's workspace id.
    pub workspace_id: Uuid,
    /// Workspace name.
    pub workspace_name: String,
    /// Instantly's key id.
    pub key_id: String,
    /// Key name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Created at Instantly.
    pub created_at: Option<DateTime<Utc>>,
    /// Risk flags: `all_all`, `all_scope`, `all_update`, `writes_api_keys`, `writes_members`,
    /// `older_than_max_age`, `not_created_by_flotilla`.
    pub flags: Vec<String>,
    /// This is the key Flotilla itself uses for the workspace.
    pub flotilla_credential: bool,
    /// Snapshot time and age.
    #[serde(flatten)]
    pub age: Age,
}

/// Every risk flag of the API keys report.
pub const KEY_FLAGS: [&str; 7] = [
    "all_all",
    "all_scope",
    "all_update",
    "writes_api_keys",
    "writes_members",
    "older_than_max_age",
    "not_created_by_flotilla",
];

/// One audit entry of the audit-logs report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditReportRow {
    /// Flotilla's workspace id.
    pub workspace_id: Uuid,
    /// Workspace name.
    pub workspace_name: String,
    /// Instantly's entry id.
    pub id: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// Activity type (instantly-api.md §10).
    pub activity_type: i64,
    /// Acting user.
    pub user_id: Option<String>,
    /// Acting user's name.
    pub user_name: Option<String>,
    /// Caller's IP address.
    pub ip_address: Option<String>,
    /// Came through the API.
    pub from_api: bool,
    /// Related campaign.
    pub campaign_id: Option<String>,
    /// Related API key.
    pub api_key_id: Option<String>,
    /// Affected items.
    pub affected_count: Option<i64>,
    /// Snapshot time and age.
    #[serde(flatten)]
    pub age: Age,
}

/// A resource a tag covers.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
pub struct Covered {
    /// Campaign id or account email.
    pub id: String,
    /// Campaign name (accounts: the email).
    pub name: String,
}

/// A tag and what it covers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TagCoverage {
    /// Tag id.
    pub tag_id: String,
    /// Label.
    pub label: String,
    /// Campaigns carrying it.
    pub campaigns: Vec<Covered>,
    /// Accounts carrying it.
    pub accounts: Vec<Covered>,
}

/// One workspace of the tags report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TagsReportRow {
    /// Flotilla's workspace id.
    pub workspace_id: Uuid,
    /// Workspace name.
    pub workspace_name: String,
    /// Each tag, by label.
    pub tags: Vec<TagCoverage>,
    /// Campaigns carrying no tag.
    pub untagged_campaigns: Vec<Covered>,
    /// Accounts carrying no tag.
    pub untagged_accounts: Vec<Covered>,
    /// Resources this report needs that the workspace could not read: resource → reason.
    pub unavailable: BTreeMap<String, String>,
    /// Snapshot time and age.
    #[serde(flatten)]
    pub age: Age,
}

fn uuid_col(row: &AnyRow, col: &str) -> Result<Uuid, sqlx::Error> {
    let s: String = row.try_get(col)?;
    Uuid::parse_str(&s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn opt_ts(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

/// Access to the inventory tables.
#[derive(Clone)]
pub struct Inventory {
    db: Database,
}

impl Inventory {
    /// Over a connected, migrated database.
    pub fn new(db: Database) -> Inventory {
        Inventory { db }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }

    /// The newest audit timestamp stored for a workspace (unix ms).
    pub async fn audit_cursor(&self, workspace_id: Uuid) -> Result<Option<i64>, sqlx::Error> {
        let row =
            sqlx::query("select audit_cursor_at from inventory_snapshot where workspace_id = $1")
                .bind(workspace_id.to_string())
                .fetch_optional(self.pool())
                .await?;
        Ok(match row {
            Some(r) => r.try_get("audit_cursor_at")?,
            None => None,
        })
    }

    /// Replaces a workspace's snapshot in one transaction: every resource's rows are deleted
    /// and re-inserted in batches; audit entries are added (duplicates by id ignored) and the
    /// audit cursor moves forward only.
    pub async fn replace_snapshot(&self, snap: &Snapshot) -> Result<(), sqlx::Error> {
        let ws = snap.workspace_id.to_string();
        let mut tx = self.pool().begin().await?;
        for table in [
            "inventory_resource",
            "inventory_member",
            "inventory_api_key",
            "inventory_tag",
            "inventory_tag_mapping",
            "inventory_campaign",
            "inventory_account",
            "inventory_group_member",
        ] {
            sqlx::query(&format!("delete from {table} where workspace_id = $1"))
                .bind(&ws)
                .execute(&mut *tx)
                .await?;
        }
        let newest_audit = snap.audit_logs.iter().map(|a| a.at).max();
        sqlx::query(
            "insert into inventory_snapshot (workspace_id, synced_at, operation_id, audit_cursor_at) \
             values ($1, $2, $3, $4) on conflict (workspace_id) do update set synced_at = excluded.synced_at, \
             operation_id = excluded.operation_id, \
             audit_cursor_at = case when inventory_snapshot.audit_cursor_at is null then excluded.audit_cursor_at \
               when excluded.audit_cursor_at is null then inventory_snapshot.audit_cursor_at \
               when excluded.audit_cursor_at > inventory_snapshot.audit_cursor_at then excluded.audit_cursor_at \
               else inventory_snapshot.audit_cursor_at end",
        )
        .bind(&ws)
        .bind(snap.synced_at)
        .bind(snap.operation_id.map(|u| u.to_string()))
        .bind(newest_audit)
        .execute(&mut *tx)
        .await?;

        let w = || Val::Text(ws.clone());
        let resources = snap
            .resources
            .iter()
            .map(|(name, st)| {
                let (status, count, reason) = match st {
                    ResourceState::Synced(n) => ("synced", *n, None),
                    ResourceState::Unavailable(r) => ("unavailable", 0, Some(r.clone())),
                };
                vec![
                    w(),
                    (*name).into(),
                    status.into(),
                    count.into(),
                    reason.into(),
                    snap.synced_at.into(),
                ]
            })
            .collect();
        insert_batched(
            &mut tx,
            "inventory_resource",
            &[
                "workspace_id",
                "resource",
                "status",
                "item_count",
                "reason",
                "synced_at",
            ],
            resources,
            "",
        )
        .await?;
        let members = snap
            .members
            .iter()
            .map(|m| {
                vec![
                    w(),
                    m.member_id.clone().into(),
                    m.email.to_ascii_lowercase().into(),
                    m.role.clone().into(),
                    m.accepted.into(),
                    m.user_id.clone().into(),
                    m.created_at.into(),
                ]
            })
            .collect();
        insert_batched(
            &mut tx,
            "inventory_member",
            &[
                "workspace_id",
                "member_id",
                "email",
                "role",
                "accepted",
                "user_id",
                "created_at",
            ],
            members,
            "",
        )
        .await?;
        let keys = snap
            .api_keys
            .iter()
            .map(|k| {
                let f = ScopeFlags::of(&k.scopes);
                vec![
                    w(),
                    k.key_id.clone().into(),
                    k.name.clone().into(),
                    serde_json::to_string(&k.scopes)
                        .unwrap_or_else(|_| "[]".into())
                        .into(),
                    k.created_at.into(),
                    k.updated_at.into(),
                    f.all_all.into(),
                    f.all_scope.into(),
                    f.all_update.into(),
                    f.writes_api_keys.into(),
                    f.writes_members.into(),
                ]
            })
            .collect();
        insert_batched(
            &mut tx,
            "inventory_api_key",
            &[
                "workspace_id",
                "key_id",
                "name",
                "scopes",
                "created_at",
                "updated_at",
                "all_all",
                "all_scope",
                "all_update",
                "writes_api_keys",
                "writes_members",
            ],
            keys,
            "",
        )
        .await?;
        let tags = snap
            .tags
            .iter()
            .map(|t| {
                vec![
                    w(),
                    t.tag_id.clone().into(),
                    t.label.clone().into(),
                    t.description.clone().into(),
                ]
            })
            .collect();
        insert_batched(
            &mut tx,
            "inventory_tag",
            &["workspace_id", "tag_id", "label", "description"],
            tags,
            "",
        )
        .await?;
        let mappings = snap
            .tag_mappings
            .iter()
            .map(|m| {
                vec![
                    w(),
                    m.mapping_id.clone().into(),
                    m.tag_id.clone().into(),
                    m.resource_type.into(),
                    m.resource_id.clone().into(),
                ]
            })
            .collect();
        insert_batched(
            &mut tx,
            "inventory_tag_mapping",
            &[
                "workspace_id",
                "mapping_id",
                "tag_id",
                "resource_type",
                "resource_id",
            ],
            mappings,
            "",
        )
        .await?;
        let campaigns = snap
            .campaigns
            .iter()
            .map(|c| {
                vec![
                    w(),
                    c.campaign_id.clone().into(),
                    c.name.clone().into(),
                    c.status.into(),
                ]
            })
            .collect();
        insert_batched(
            &mut tx,
            "inventory_campaign",
            &["workspace_id", "campaign_id", "name", "status"],
            campaigns,
            "",
        )
        .await?;
        let accounts = snap
            .accounts
            .iter()
            .map(|a| vec![w(), a.email.clone().into(), a.status.into()])
            .collect();
        insert_batched(
            &mut tx,
            "inventory_account",
            &["workspace_id", "email", "status"],
            accounts,
            "",
        )
        .await?;
        let groups = snap
            .groups
            .iter()
            .map(|g| {
                vec![
                    w(),
                    g.group_member_id.clone().into(),
                    g.admin_workspace_id.clone().into(),
                    g.sub_workspace_id.clone().into(),
                    g.status.clone().into(),
                    g.admin_workspace_name.clone().into(),
                    g.sub_workspace_name.clone().into(),
                ]
            })
            .collect();
        insert_batched(
            &mut tx,
            "inventory_group_member",
            &[
                "workspace_id",
                "group_member_id",
                "admin_workspace_id",
                "sub_workspace_id",
                "status",
                "admin_workspace_name",
                "sub_workspace_name",
            ],
            groups,
            "",
        )
        .await?;
        let audit = snap
            .audit_logs
            .iter()
            .map(|a| {
                vec![
                    w(),
                    a.log_id.clone().into(),
                    a.at.into(),
                    a.activity_type.into(),
                    a.user_id.clone().into(),
                    a.user_name.clone().into(),
                    a.ip_address.clone().into(),
                    a.from_api.into(),
                    a.campaign_id.clone().into(),
                    a.api_key_id.clone().into(),
                    a.affected_count.into(),
                    a.metadata.clone().into(),
                    snap.synced_at.into(),
                ]
            })
            .collect();
        // Incremental reads overlap (day-granular start_date): an id already stored is skipped.
        insert_batched(
            &mut tx,
            "inventory_audit_log",
            &[
                "workspace_id",
                "log_id",
                "at",
                "activity_type",
                "user_id",
                "user_name",
                "ip_address",
                "from_api",
                "campaign_id",
                "api_key_id",
                "affected_count",
                "metadata",
                "synced_at",
            ],
            audit,
            " on conflict (workspace_id, log_id) do nothing",
        )
        .await?;
        tx.commit().await
    }

    /// Whether an `inventory.sync` operation is pending or running (for the schedule).
    pub async fn sync_in_progress(&self) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query(
            "select count(*) as n from operation where kind = 'inventory.sync' and status in ('pending', 'running')",
        )
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        Ok(n > 0)
    }

    // ------------------------------------------------------------------ reports

    /// Workspaces in `scope` that have no snapshot yet, by id.
    pub async fn missing_snapshots(
        &self,
        scope: &WorkspaceScope,
    ) -> Result<Vec<MissingSnapshot>, sqlx::Error> {
        let mut sql = Sql::new("select w.id, w.name from workspace w where 1 = 1");
        let cond = scope.conditions(&mut sql);
        sql.push(&cond);
        sql.push(" and not exists (select 1 from inventory_snapshot s where s.workspace_id = w.id) order by w.id");
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(MissingSnapshot {
                    workspace_id: uuid_col(r, "id")?,
                    workspace_name: r.try_get("name")?,
                })
            })
            .collect()
    }

    /// Unavailable resources among `resources` for workspaces in `scope`.
    pub async fn unavailable(
        &self,
        scope: &WorkspaceScope,
        resources: &[&str],
        now: i64,
    ) -> Result<Vec<Unavailable>, sqlx::Error> {
        let mut sql = Sql::new(
            "select r.workspace_id, w.name, r.resource, r.reason, s.synced_at from inventory_resource r \
             join workspace w on w.id = r.workspace_id join inventory_snapshot s on s.workspace_id = r.workspace_id \
             where r.status = 'unavailable'",
        );
        let cond = scope.conditions(&mut sql);
        sql.push(&cond);
        let ph: Vec<String> = resources.iter().map(|r| sql.bind(*r)).collect();
        sql.push(&format!(
            " and r.resource in ({}) order by r.workspace_id, r.resource",
            ph.join(", ")
        ));
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(Unavailable {
                    workspace_id: uuid_col(r, "workspace_id")?,
                    workspace_name: r.try_get("name")?,
                    resource: r.try_get("resource")?,
                    status: "unavailable".into(),
                    reason: r
                        .try_get::<Option<String>, _>("reason")?
                        .unwrap_or_default(),
                    age: Age::of(r.try_get("synced_at")?, now),
                })
            })
            .collect()
    }

    /// A page of the access report, ordered by (workspace, email, member id), after `cursor`.
    pub async fn access_page(
        &self,
        scope: &WorkspaceScope,
        email: Option<&str>,
        role: Option<&str>,
        cursor: Option<&[String]>,
        limit: usize,
        now: i64,
    ) -> Result<Vec<AccessRow>, sqlx::Error> {
        let mut sql = Sql::new(
            "select m.workspace_id, w.name, m.member_id, m.email, m.role, m.accepted, m.user_id, s.synced_at \
             from inventory_member m join workspace w on w.id = m.workspace_id \
             join inventory_snapshot s on s.workspace_id = m.workspace_id where 1 = 1",
        );
        let cond = scope.conditions(&mut sql);
        sql.push(&cond);
        if let Some(e) = email {
            let p = sql.bind(e.to_ascii_lowercase());
            sql.push(&format!(" and m.email = {p}"));
        }
        if let Some(r) = role {
            let p = sql.bind(r);
            sql.push(&format!(" and m.role = {p}"));
        }
        if let Some([ws, em, id]) = cursor {
            let (a, b, c) = (
                sql.bind(ws.as_str()),
                sql.bind(em.as_str()),
                sql.bind(id.as_str()),
            );
            sql.push(&format!(
                " and (m.workspace_id > {a} or (m.workspace_id = {a} and (m.email > {b} or (m.email = {b} and m.member_id > {c}))))"
            ));
        }
        sql.push(&format!(
            " order by m.workspace_id, m.email, m.member_id limit {limit}"
        ));
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(AccessRow {
                    workspace_id: uuid_col(r, "workspace_id")?,
                    workspace_name: r.try_get("name")?,
                    email: r.try_get("email")?,
                    role: r.try_get("role")?,
                    accepted: r.try_get::<i64, _>("accepted")? != 0,
                    member_id: r.try_get("member_id")?,
                    user_id: r.try_get("user_id")?,
                    age: Age::of(r.try_get("synced_at")?, now),
                })
            })
            .collect()
    }

    /// A page of the API keys report, ordered by (workspace, key id), after `cursor`. `flags`
    /// keeps keys carrying any of them; a key is older than the maximum age when created
    /// before `max_age_cutoff` (unix ms).
    #[allow(clippy::too_many_arguments)]
    pub async fn api_keys_page(
        &self,
        scope: &WorkspaceScope,
        flags: &[String],
        max_age_cutoff: i64,
        cursor: Option<&[String]>,
        limit: usize,
        now: i64,
    ) -> Result<Vec<ApiKeyReportRow>, sqlx::Error> {
        let mut sql = Sql::new("");
        let cutoff = sql.bind(max_age_cutoff);
        // A key is Flotilla's when the vault holds it for that workspace (issued or access);
        // the access row with that id is the credential Flotilla itself uses.
        let vault_any = "exists (select 1 from vault_credential v where v.workspace_id = k.workspace_id \
                         and v.instantly_key_id = k.key_id and v.purpose in ('access', 'issued'))";
        let vault_access = "exists (select 1 from vault_credential v where v.workspace_id = k.workspace_id \
                            and v.instantly_key_id = k.key_id and v.purpose = 'access')";
        let older = format!("(k.created_at is not null and k.created_at < {cutoff})");
        sql.push(&format!(
            "select k.*, w.name as workspace_name, s.synced_at, \
             case when {older} then 1 else 0 end as older_than_max_age, \
             case when {vault_any} then 0 else 1 end as not_created_by_flotilla, \
             case when {vault_access} then 1 else 0 end as flotilla_credential \
             from inventory_api_key k join workspace w on w.id = k.workspace_id \
             join inventory_snapshot s on s.workspace_id = k.workspace_id where 1 = 1"
        ));
        let cond = scope.conditions(&mut sql);
        sql.push(&cond);
        if !flags.is_empty() {
            let parts: Vec<String> = flags
                .iter()
                .map(|f| match f.as_str() {
                    "older_than_max_age" => older.clone(),
                    "not_created_by_flotilla" => format!("not {vault_any}"),
                    // Validated against KEY_FLAGS by the caller: a column name.
                    column => format!("k.{column} = 1"),
                })
                .collect();
            sql.push(&format!(" and ({})", parts.join(" or ")));
        }
        if let Some([ws, id]) = cursor {
            let (a, b) = (sql.bind(ws.as_str()), sql.bind(id.as_str()));
            sql.push(&format!(
                " and (k.workspace_id > {a} or (k.workspace_id = {a} and k.key_id > {b}))"
            ));
        }
        sql.push(&format!(" order by k.workspace_id, k.key_id limit {limit}"));
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let scopes: String = r.try_get("scopes")?;
                let mut flags = Vec::new();
                for f in KEY_FLAGS {
                    if r.try_get::<i64, _>(f)? != 0 {
                        flags.push(f.to_string());
                    }
                }
                Ok(ApiKeyReportRow {
                    workspace_id: uuid_col(r, "workspace_id")?,
                    workspace_name: r.try_get("workspace_name")?,
                    key_id: r.try_get("key_id")?,
                    name: r.try_get("name")?,
                    scopes: serde_json::from_str(&scopes).unwrap_or_default(),
                    created_at: opt_ts(r.try_get("created_at")?),
                    flags,
                    flotilla_credential: r.try_get::<i64, _>("flotilla_credential")? != 0,
                    age: Age::of(r.try_get("synced_at")?, now),
                })
            })
            .collect()
    }

    /// A page of the audit-logs report, newest first, after `cursor` (at, workspace, id).
    #[allow(clippy::too_many_arguments)]
    pub async fn audit_page(
        &self,
        scope: &WorkspaceScope,
        activity_type: Option<i64>,
        since: Option<i64>,
        until: Option<i64>,
        cursor: Option<&[String]>,
        limit: usize,
        now: i64,
    ) -> Result<Vec<AuditReportRow>, sqlx::Error> {
        let mut sql = Sql::new(
            "select a.*, w.name as workspace_name, s.synced_at as snapshot_at from inventory_audit_log a \
             join workspace w on w.id = a.workspace_id join inventory_snapshot s on s.workspace_id = a.workspace_id \
             where 1 = 1",
        );
        let cond = scope.conditions(&mut sql);
        sql.push(&cond);
        if let Some(t) = activity_type {
            let p = sql.bind(t);
            sql.push(&format!(" and a.activity_type = {p}"));
        }
        if let Some(t) = since {
            let p = sql.bind(t);
            sql.push(&format!(" and a.at >= {p}"));
        }
        if let Some(t) = until {
            let p = sql.bind(t);
            sql.push(&format!(" and a.at <= {p}"));
        }
        if let Some([at, ws, id]) = cursor {
            let at: i64 = at.parse().unwrap_or(i64::MAX);
            let (a, b, c) = (sql.bind(at), sql.bind(ws.as_str()), sql.bind(id.as_str()));
            sql.push(&format!(
                " and (a.at < {a} or (a.at = {a} and (a.workspace_id > {b} or (a.workspace_id = {b} and a.log_id > {c}))))"
            ));
        }
        sql.push(&format!(
            " order by a.at desc, a.workspace_id, a.log_id limit {limit}"
        ));
        let rows = sql.query().fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditReportRow {
                    workspace_id: uuid_col(r, "workspace_id")?,
                    workspace_name: r.try_get("workspace_name")?,
                    id: r.try_get("log_id")?,
                    timestamp: DateTime::from_timestamp_millis(r.try_get("at")?)
                        .unwrap_or_default(),
                    activity_type: r.try_get("activity_type")?,
                    user_id: r.try_get("user_id")?,
                    user_name: r.try_get("user_name")?,
                    ip_address: r.try_get("ip_address")?,
                    from_api: r.try_get::<i64, _>("from_api")? != 0,
                    campaign_id: r.try_get("campaign_id")?,
                    api_key_id: r.try_get("api_key_id")?,
                    affected_count: r.try_get("affected_count")?,
                    age: Age::of(r.try_get("snapshot_at")?, now),
                })
            })
            .collect()
    }

    /// A page of the tags report: synced workspaces in `scope` ordered by id, after `cursor`.
    pub async fn tags_page(
        &self,
        scope: &WorkspaceScope,
        cursor: Option<&str>,
        limit: usize,
        now: i64,
    ) -> Result<Vec<TagsReportRow>, sqlx::Error> {
        let mut sql = Sql::new(
            "select w.id, w.name, s.synced_at from workspace w join inventory_snapshot s on s.workspace_id = w.id \
             where 1 = 1",
        );
        let cond = scope.conditions(&mut sql);
        sql.push(&cond);
        if let Some(c) = cursor {
            let p = sql.bind(c);
            sql.push(&format!(" and w.id > {p}"));
        }
        sql.push(&format!(" order by w.id limit {limit}"));
        let rows = sql.query().fetch_all(self.pool()).await?;
        let mut out: Vec<TagsReportRow> = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(TagsReportRow {
                workspace_id: uuid_col(r, "id")?,
                workspace_name: r.try_get("name")?,
                tags: Vec::new(),
                untagged_campaigns: Vec::new(),
                untagged_accounts: Vec::new(),
                unavailable: BTreeMap::new(),
                age: Age::of(r.try_get("synced_at")?, now),
            });
        }
        let (Some(first), Some(last)) = (out.first(), out.last()) else {
            return Ok(out);
        };
        let (first, last) = (
            first.workspace_id.to_string(),
            last.workspace_id.to_string(),
        );
        // Rows come sorted by workspace id, so one range query per table fetches the whole page.
        let range = |table: &str, cols: &str, order: &str| {
            format!(
                "select workspace_id, {cols} from {table} where workspace_id >= $1 and workspace_id <= $2 order by workspace_id, {order}"
            )
        };
        let fetch = |sql: String| {
            let (first, last) = (first.clone(), last.clone());
            async move {
                sqlx::query(&sql)
                    .bind(first)
                    .bind(last)
                    .fetch_all(self.pool())
                    .await
            }
        };
        let tags = fetch(range("inventory_tag", "tag_id, label", "label, tag_id")).await?;
        let maps = fetch(range(
            "inventory_tag_mapping",
            "tag_id, resource_type, resource_id",
            "mapping_id",
        ))
        .await?;
        let camps = fetch(range(
            "inventory_campaign",
            "campaign_id, name",
            "campaign_id",
        ))
        .await?;
        let accts = fetch(range("inventory_account", "email", "email")).await?;
        let unavail = fetch(format!(
            "select workspace_id, resource, reason from inventory_resource where workspace_id >= $1 and workspace_id <= $2 \
             and status = 'unavailable' and resource in ('{}', '{}', '{}', '{}') order by workspace_id, resource",
            resource::TAGS,
            resource::TAG_MAPPINGS,
            resource::CAMPAIGNS,
            resource::ACCOUNTS
        ))
        .await?;
        let index: BTreeMap<String, usize> = out
            .iter()
            .enumerate()
            .map(|(i, w)| (w.workspace_id.to_string(), i))
            .collect();
        // Per workspace: tag id → coverage, campaign id → name, account emails, tagged ids.
        type Work = (
            BTreeMap<String, TagCoverage>,
            BTreeMap<String, String>,
            Vec<String>,
            Vec<(String, i64, String)>,
        );
        let mut work: Vec<Work> = vec![Default::default(); out.len()];
        for r in &tags {
            let Some(&i) = index.get(&r.try_get::<String, _>("workspace_id")?) else {
                continue;
            };
            let tag_id: String = r.try_get("tag_id")?;
            work[i].0.insert(
                tag_id.clone(),
                TagCoverage {
                    tag_id,
                    label: r.try_get("label")?,
                    campaigns: Vec::new(),
                    accounts: Vec::new(),
                },
            );
        }
        for r in &camps {
            let Some(&i) = index.get(&r.try_get::<String, _>("workspace_id")?) else {
                continue;
            };
            work[i]
                .1
                .insert(r.try_get("campaign_id")?, r.try_get("name")?);
        }
        for r in &accts {
            let Some(&i) = index.get(&r.try_get::<String, _>("workspace_id")?) else {
                continue;
            };
            work[i].2.push(r.try_get("email")?);
        }
        for r in &maps {
            let Some(&i) = index.get(&r.try_get::<String, _>("workspace_id")?) else {
                continue;
            };
            work[i].3.push((
                r.try_get("tag_id")?,
                r.try_get("resource_type")?,
                r.try_get("resource_id")?,
            ));
        }
        for r in &unavail {
            let Some(&i) = index.get(&r.try_get::<String, _>("workspace_id")?) else {
                continue;
            };
            out[i].unavailable.insert(
                r.try_get("resource")?,
                r.try_get::<Option<String>, _>("reason")?
                    .unwrap_or_default(),
            );
        }
        for (row, (mut tags, campaigns, accounts, mappings)) in out.iter_mut().zip(work) {
            let mut tagged_campaigns = std::collections::BTreeSet::new();
            let mut tagged_accounts = std::collections::BTreeSet::new();
            for (tag_id, rtype, rid) in mappings {
                // A mapping to a tag that no longer exists covers nothing.
                let Some(tag) = tags.get_mut(&tag_id) else {
                    continue;
                };
                match rtype {
                    2 => {
                        let name = campaigns.get(&rid).cloned().unwrap_or_default();
                        tag.campaigns.push(Covered {
                            id: rid.clone(),
                            name,
                        });
                        tagged_campaigns.insert(rid);
                    }
                    1 => {
                        tag.accounts.push(Covered {
                            id: rid.clone(),
                            name: rid.clone(),
                        });
                        tagged_accounts.insert(rid.to_ascii_lowercase());
                    }
                    _ => {}
                }
            }
            let mut tags: Vec<TagCoverage> = tags.into_values().collect();
            for t in &mut tags {
                t.campaigns.sort();
                t.campaigns.dedup();
                t.accounts.sort();
                t.accounts.dedup();
            }
            tags.sort_by(|a, b| a.label.cmp(&b.label).then(a.tag_id.cmp(&b.tag_id)));
            row.tags = tags;
            row.untagged_campaigns = campaigns
                .into_iter()
                .filter(|(id, _)| !tagged_campaigns.contains(id))
                .map(|(id, name)| Covered { id, name })
                .collect();
            row.untagged_accounts = accounts
                .into_iter()
                .filter(|e| !tagged_accounts.contains(&e.to_ascii_lowercase()))
                .map(|e| Covered {
                    id: e.clone(),
                    name: e,
                })
                .collect();
        }
        Ok(out)
    }

    /// Rows in an inventory table (the benchmark's baseline).
    pub async fn count(&self, table: &str) -> Result<i64, sqlx::Error> {
        sqlx::query(&format!("select count(*) as n from {table}"))
            .fetch_one(self.pool())
            .await?
            .try_get("n")
    }
}

/// The current time for reports (unix ms); one value per request keeps ages consistent.
pub fn report_now() -> i64 {
    now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(scopes: &[&str]) -> ScopeFlags {
        ScopeFlags::of(&scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn scope_flags_follow_instantlys_grant_rule() {
        let f = flags(&["all:all"]);
        assert!(f.all_all && f.all_scope && f.all_update && f.writes_api_keys && f.writes_members);
        let f = flags(&["all:read"]);
        assert_eq!(
            f,
            ScopeFlags {
                all_scope: true,
                ..ScopeFlags::default()
            }
        );
        let f = flags(&["all:update"]);
        assert!(f.all_update && f.writes_api_keys && f.writes_members && !f.all_all);
        let f = flags(&["api_keys:delete", "campaigns:read"]);
        assert_eq!(
            f,
            ScopeFlags {
                writes_api_keys: true,
                ..ScopeFlags::default()
            }
        );
        let f = flags(&["workspace_members:all"]);
        assert_eq!(
            f,
            ScopeFlags {
                writes_members: true,
                ..ScopeFlags::default()
            }
        );
        assert_eq!(
            flags(&["workspace_members:read", "api_keys:read"]),
            ScopeFlags::default()
        );
    }

    #[test]
    fn scope_conditions_number_their_binds() {
        let mut sql = Sql::new("select 1 where x = $1");
        sql.bind("x");
        let scope = WorkspaceScope {
            workspace_id: None,
            label: Some("east".into()),
            visible: Some(vec!["a".into(), "b".into()]),
        };
        let c = scope.conditions(&mut sql);
        assert!(c.contains("fl.label = $2"), "{c}");
        assert!(c.contains("in ($3, $4)"), "{c}");
        let none = WorkspaceScope {
            visible: Some(vec![]),
            ..WorkspaceScope::default()
        };
        assert_eq!(none.conditions(&mut Sql::default()), " and 1 = 0");
    }
}
