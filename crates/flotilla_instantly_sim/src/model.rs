//! Public data types: the simulated objects (serialised exactly as the API returns them),
//! state snapshots, counters and the request log.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Timestamps as Instantly writes them: `2026-03-05T23:09:47.274Z` (instantly-api.md §1).
pub(crate) mod ts {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn format(dt: &DateTime<Utc>) -> String {
        dt.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub(crate) fn serialize<S: Serializer>(dt: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(dt))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

/// A new key as returned by [`crate::Simulator::create_key`]. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimKey {
    /// The key's id (as listed by `GET /api/v2/api-keys`).
    pub id: String,
    /// The bearer secret.
    pub key: String,
}

impl fmt::Debug for SimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// One sample workspace created by [`crate::Simulator::seed_demo`]. `Debug` hides the secret.
#[derive(Clone, Serialize, Deserialize)]
pub struct DemoWorkspace {
    /// Instantly workspace id.
    pub workspace_id: String,
    /// Workspace name.
    pub name: String,
    /// Id of the `all:all` key below.
    pub key_id: String,
    /// An `all:all` bearer key of this workspace.
    pub key: String,
}

impl fmt::Debug for DemoWorkspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoWorkspace")
            .field("workspace_id", &self.workspace_id)
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A workspace member (instantly-api.md §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Membership id.
    pub id: String,
    /// Invited address.
    pub email: String,
    /// User id.
    pub user_id: String,
    /// Email of the user, if different.
    pub user_email: Option<String>,
    /// `{first, last}`.
    pub name: Option<MemberName>,
    /// `owner`, `admin`, `editor`, `view` or `client`.
    pub role: String,
    /// Creation time.
    #[serde(with = "ts")]
    pub timestamp_created: DateTime<Utc>,
    /// Workspace id.
    pub workspace_id: String,
    /// Whether the invitation was accepted.
    pub accepted: bool,
    /// Who invited (user id).
    pub issuer_id: Option<String>,
    /// UI permission restrictions.
    pub permissions: Vec<String>,
    /// Nickname (newer spec).
    pub nickname: Option<String>,
}

/// A member's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberName {
    /// First name.
    pub first: Option<String>,
    /// Last name.
    pub last: Option<String>,
}

/// API key metadata; the secret is never part of it (instantly-api.md §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyMeta {
    /// Key id.
    pub id: String,
    /// Key name.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Workspace id.
    pub organization_id: String,
    /// Creation time.
    #[serde(with = "ts")]
    pub timestamp_created: DateTime<Utc>,
    /// Update time.
    #[serde(with = "ts")]
    pub timestamp_updated: DateTime<Utc>,
}

/// A custom tag (instantly-api.md §9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomTag {
    /// Tag id.
    pub id: String,
    /// Creation time.
    #[serde(with = "ts")]
    pub timestamp_created: DateTime<Utc>,
    /// Update time.
    #[serde(with = "ts")]
    pub timestamp_updated: DateTime<Utc>,
    /// Workspace id.
    pub organization_id: String,
    /// Label.
    pub label: String,
    /// Description.
    pub description: Option<String>,
}

/// A tag ↔ resource mapping (instantly-api.md §9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagMapping {
    /// Mapping id.
    pub id: String,
    /// Tag id.
    pub tag_id: String,
    /// Campaign id, or account email.
    pub resource_id: String,
    /// 1 = account, 2 = campaign.
    pub resource_type: i64,
    /// Creation time.
    #[serde(with = "ts")]
    pub timestamp_created: DateTime<Utc>,
    /// Workspace id.
    pub organization_id: String,
}

/// A campaign (the subset of instantly-api.md §16).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// Campaign id.
    pub id: String,
    /// Name.
    pub name: String,
    /// 0 draft, 1 active, 2 paused, 3 completed, …
    pub status: i64,
    /// Creation time.
    #[serde(with = "ts")]
    pub timestamp_created: DateTime<Utc>,
    /// Update time.
    #[serde(with = "ts")]
    pub timestamp_updated: DateTime<Utc>,
    /// Workspace id.
    pub organization: String,
}

/// A sending account, addressed by email (instantly-api.md §16).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Address (the account's identifier).
    pub email: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Workspace id.
    pub organization: String,
    /// 1 active, 2 paused, …
    pub status: i64,
    /// Warm-up status.
    pub warmup_status: i64,
    /// 1 custom IMAP, 2 Google, …
    pub provider_code: i64,
    /// Creation time.
    #[serde(with = "ts")]
    pub timestamp_created: DateTime<Utc>,
    /// Update time.
    #[serde(with = "ts")]
    pub timestamp_updated: DateTime<Utc>,
}

/// An audit log entry (instantly-api.md §10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLog {
    /// Entry id.
    pub id: String,
    /// When it happened.
    #[serde(with = "ts")]
    pub timestamp: DateTime<Utc>,
    /// Workspace id.
    pub organization_id: String,
    /// Activity type (e.g. 37 API key created).
    pub activity_type: i64,
    /// Caller address.
    pub ip_address: String,
    /// Whether the API caused it.
    pub from_api: bool,
    /// Caller's User-Agent.
    pub user_agent: Option<String>,
    /// Acting user.
    pub user_id: Option<String>,
    /// Acting user's name.
    pub user_name: Option<String>,
    /// Affected count.
    pub affected_count: Option<i64>,
    /// Campaign concerned.
    pub campaign_id: Option<String>,
    /// Key used.
    pub api_key_id: Option<String>,
    /// Free-form details.
    pub audit_metadata: serde_json::Value,
}

/// Membership of a sub workspace in an admin workspace's group (instantly-api.md §12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    /// Record id.
    pub id: String,
    /// Admin workspace id.
    pub admin_workspace_id: String,
    /// Sub workspace id.
    pub sub_workspace_id: String,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    /// Creation time.
    #[serde(with = "ts")]
    pub timestamp_created: DateTime<Utc>,
    /// Update time.
    #[serde(with = "ts")]
    pub timestamp_updated: DateTime<Utc>,
    /// Sub workspace name (filled when read).
    pub sub_workspace_name: Option<String>,
    /// Admin workspace name (filled when read).
    pub admin_workspace_name: Option<String>,
}

/// Snapshot of one workspace's state, for test assertions (never contains a secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkspaceState {
    /// Workspace id.
    pub id: String,
    /// Name.
    pub name: String,
    /// User id of the owner.
    pub owner_user_id: String,
    /// Whether the workspace has a paid plan (unpaid → 402).
    pub paid: bool,
    /// Members in creation order.
    pub members: Vec<Member>,
    /// Live keys in creation order (revoked keys are gone).
    pub api_keys: Vec<ApiKeyMeta>,
    /// Tags.
    pub tags: Vec<CustomTag>,
    /// Tag mappings.
    pub tag_mappings: Vec<TagMapping>,
    /// Campaigns.
    pub campaigns: Vec<Campaign>,
    /// Accounts.
    pub accounts: Vec<Account>,
    /// Audit entries.
    pub audit_logs: Vec<AuditLog>,
    /// Group records where this workspace is the admin.
    pub group_as_admin: Vec<GroupMember>,
    /// Group records where this workspace is the sub.
    pub group_as_sub: Vec<GroupMember>,
}

/// Per-workspace counters of `/api/v2` traffic, attributed to the workspace the call acted on
/// (after `x-as-workspace`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every request attributed to this workspace (including refused ones).
    pub requests: u64,
    /// 429s sent (rate limit or burst).
    pub rate_limited: u64,
    /// Injected 500s and proxy 502s.
    pub injected_errors: u64,
    /// Connections closed with no response.
    pub dropped: u64,
}

/// One `/api/v2` request as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the handler received it.
    pub started_at: DateTime<Utc>,
    /// When the response was ready (or the connection dropped).
    pub finished_at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/api/v2/workspace-members`.
    pub path: String,
    /// Raw query string.
    pub query: Option<String>,
    /// The workspace the call acted on (after `x-as-workspace`).
    pub workspace_id: Option<String>,
    /// The workspace owning the key used.
    pub key_workspace_id: Option<String>,
    /// Id of the key used.
    pub key_id: Option<String>,
    /// The `x-as-workspace` header, if sent.
    pub as_workspace: Option<String>,
    /// Response status; `0` when the connection was dropped with no response.
    pub status: u16,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// The request body, if it parsed as JSON.
    pub body: Option<serde_json::Value>,
}
