//! Wire models for the Instantly API v2 resources Flotilla uses.
//!
//! Deserialisation is lenient on purpose (instantly-api.md §13.9, enum and field drift between
//! spec versions): unknown fields are ignored, every field has a default, enums Instantly grows
//! are open, and timestamps that do not parse become `None` rather than failing the whole page.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::scope::Scope;

// ---------------------------------------------------------------------------------------------
// Lenient helpers

/// Timestamps: ISO-8601 UTC (instantly-api.md §1). Anything unparseable (or null) is `None`.
pub(crate) mod lenient_ts {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let v = Option::<serde_json::Value>::deserialize(d)?;
        Ok(match v {
            Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(&s)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            // [INF] some endpoints may send epoch milliseconds; accept them.
            Some(serde_json::Value::Number(n)) => {
                n.as_i64().and_then(DateTime::<Utc>::from_timestamp_millis)
            }
            _ => None,
        })
    }

    pub fn serialize<S: Serializer>(v: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            None => s.serialize_none(),
        }
    }
}

/// `null` becomes the type's default instead of an error.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Ids are opaque strings (instantly-api.md §1); tolerate numbers and null.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    })
}

/// An integer that may arrive as a number, a numeric string, or null (0).
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or_default(),
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or_default(),
        _ => 0,
    })
}

macro_rules! open_string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident => $s:literal,)* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this client does not know (Instantly grows its enums); kept verbatim.
            Other(String),
        }

        impl $name {
            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $s,)*
                    $name::Other(s) => s,
                }
            }

            /// Parse a wire string (never fails: unknown values become `Other`).
            pub fn parse(s: &str) -> $name {
                match s {
                    $($s => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl Default for $name {
            /// `Other("")`: the field was missing from the response.
            fn default() -> Self {
                $name::Other(String::new())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::parse(s))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(match Option::<serde_json::Value>::deserialize(d)? {
                    Some(serde_json::Value::String(s)) => $name::parse(&s),
                    Some(other) => $name::Other(other.to_string()),
                    None => $name::default(),
                })
            }
        }
    };
}

macro_rules! open_int {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$cmeta:meta])* $c:ident = $v:literal,)* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(#[serde(deserialize_with = "lenient_i64")] pub i64);

        impl $name {
            $($(#[$cmeta])* pub const $c: $name = $name($v);)*

            /// The known constants, in declaration order.
            pub const ALL_KNOWN: &'static [$name] = &[$($name::$c,)*];

            /// Whether the value is one of the known constants.
            pub fn is_known(self) -> bool {
                $name::ALL_KNOWN.contains(&self)
            }
        }

        impl From<i64> for $name {
            fn from(v: i64) -> Self {
                $name(v)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Open enums

open_string_enum! {
    /// Workspace member role (instantly-api.md §7). `owner` and `client` cannot be set through the API.
    Role {
        /// `owner`: the workspace creator; moved only by change-owner.
        Owner => "owner",
        /// `admin`
        Admin => "admin",
        /// `editor`
        Editor => "editor",
        /// `view`
        View => "view",
        /// `client` (whitelabel agency view; not available through the API).
        Client => "client",
    }
}

open_string_enum! {
    /// Workspace group membership status (instantly-api.md §12).
    GroupMemberStatus {
        /// `pending`: invited, not yet accepted by the sub workspace owner.
        Pending => "pending",
        /// `accepted`
        Accepted => "accepted",
        /// `rejected`
        Rejected => "rejected",
    }
}

open_int! {
    /// Audit log activity type (instantly-api.md §10; non-contiguous, 13–17 unused).
    ActivityType {
        /// 1 User login
        USER_LOGIN = 1,
        /// 2 Lead deletion
        LEAD_DELETION = 2,
        /// 3 Campaign deletion
        CAMPAIGN_DELETION = 3,
        /// 4 Campaign launch
        CAMPAIGN_LAUNCH = 4,
        /// 5 Campaign pause
        CAMPAIGN_PAUSE = 5,
        /// 6 Account addition
        ACCOUNT_ADDITION = 6,
        /// 7 Account deletion
        ACCOUNT_DELETION = 7,
        /// 8 Lead moved
        LEAD_MOVED = 8,
        /// 9 Lead added
        LEAD_ADDED = 9,
        /// 10 Lead merged
        LEAD_MERGED = 10,
        /// 11 Campaign update
        CAMPAIGN_UPDATE = 11,
        /// 12 Subsequence update
        SUBSEQUENCE_UPDATE = 12,
        /// 18 Webhook created
        WEBHOOK_CREATED = 18,
        /// 19 Webhook updated
        WEBHOOK_UPDATED = 19,
        /// 20 Webhook marked as error
        WEBHOOK_MARKED_AS_ERROR = 20,
        /// 21 Webhook resumed
        WEBHOOK_RESUMED = 21,
        /// 22 TOTP enrollment started
        TOTP_ENROLLMENT_STARTED = 22,
        /// 23 TOTP enabled
        TOTP_ENABLED = 23,
        /// 24 TOTP replacement started
        TOTP_REPLACEMENT_STARTED = 24,
        /// 25 TOTP replaced
        TOTP_REPLACED = 25,
        /// 26 TOTP disabled
        TOTP_DISABLED = 26,
        /// 27 MFA recovery codes generated
        MFA_RECOVERY_CODES_GENERATED = 27,
        /// 28 MFA recovery code used
        MFA_RECOVERY_CODE_USED = 28,
        /// 29 MFA login challenge failed
        MFA_LOGIN_CHALLENGE_FAILED = 29,
        /// 30 MFA login challenge failed too many times
        MFA_LOGIN_CHALLENGE_FAILED_TOO_MANY = 30,
        /// 31 MFA login succeeded
        MFA_LOGIN_SUCCEEDED = 31,
        /// 32 Subscriber import started
        SUBSCRIBER_IMPORT_STARTED = 32,
        /// 33 Subscriber import cancelled
        SUBSCRIBER_IMPORT_CANCELLED = 33,
        /// 34 Lead exported
        LEAD_EXPORTED = 34,
        /// 35 SuperSearch enrichment created
        SUPERSEARCH_ENRICHMENT_CREATED = 35,
        /// 36 Account update
        ACCOUNT_UPDATE = 36,
        /// 37 API key created
        API_KEY_CREATED = 37,
        /// 38 API key deleted
        API_KEY_DELETED = 38,
    }
}

open_int! {
    /// Campaign status (instantly-api.md §16).
    CampaignStatus {
        /// 0 draft
        DRAFT = 0,
        /// 1 active
        ACTIVE = 1,
        /// 2 paused
        PAUSED = 2,
        /// 3 completed
        COMPLETED = 3,
        /// 4 running subsequences
        RUNNING_SUBSEQUENCES = 4,
        /// -1 accounts unhealthy
        ACCOUNTS_UNHEALTHY = -1,
        /// -2 bounce protect
        BOUNCE_PROTECT = -2,
        /// -99 account suspended
        ACCOUNT_SUSPENDED = -99,
    }
}

open_int! {
    /// Sending account status (instantly-api.md §16).
    AccountStatus {
        /// 1 active
        ACTIVE = 1,
        /// 2 paused
        PAUSED = 2,
        /// 3 maintenance
        MAINTENANCE = 3,
        /// -1 connection error
        CONNECTION_ERROR = -1,
        /// -2 soft bounce error
        SOFT_BOUNCE_ERROR = -2,
        /// -3 sending error
        SENDING_ERROR = -3,
    }
}

/// The kind of resource a custom tag is attached to (instantly-api.md §9: 1 = account, 2 = campaign).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// `1`: a sending account (addressed by email).
    Account,
    /// `2`: a campaign.
    Campaign,
    /// Any other number Instantly may add.
    Other(i64),
}

impl ResourceType {
    /// The wire number.
    pub fn code(self) -> i64 {
        match self {
            ResourceType::Account => 1,
            ResourceType::Campaign => 2,
            ResourceType::Other(n) => n,
        }
    }

    /// From the wire number.
    pub fn from_code(n: i64) -> ResourceType {
        match n {
            1 => ResourceType::Account,
            2 => ResourceType::Campaign,
            n => ResourceType::Other(n),
        }
    }
}

impl Default for ResourceType {
    /// `Other(0)`: the field was missing from the response.
    fn default() -> Self {
        ResourceType::Other(0)
    }
}

impl Serialize for ResourceType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for ResourceType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient_i64(d).map(ResourceType::from_code)
    }
}

// ---------------------------------------------------------------------------------------------
// Resources

/// The `name` object of a workspace member (instantly-api.md §7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberName {
    /// First name.
    pub first: Option<String>,
    /// Last name.
    pub last: Option<String>,
}

/// A workspace member (instantly-api.md §7).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkspaceMember {
    /// Membership id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Invited address.
    #[serde(deserialize_with = "lenient_string")]
    pub email: String,
    /// The user's id.
    #[serde(deserialize_with = "lenient_string")]
    pub user_id: String,
    /// The user's email, if different.
    pub user_email: Option<String>,
    /// Display name.
    #[serde(deserialize_with = "null_default")]
    pub name: MemberName,
    /// Role.
    pub role: Role,
    /// Whether the invitation was accepted.
    #[serde(deserialize_with = "null_default")]
    pub accepted: bool,
    /// Created.
    #[serde(with = "lenient_ts")]
    pub timestamp_created: Option<DateTime<Utc>>,
    /// The workspace id.
    #[serde(deserialize_with = "lenient_string")]
    pub workspace_id: String,
    /// Who invited.
    pub issuer_id: Option<String>,
    /// UI permission restrictions (may be empty).
    #[serde(deserialize_with = "null_default")]
    pub permissions: Vec<String>,
    /// Nickname (newer spec).
    pub nickname: Option<String>,
}

/// Body of `POST /api/v2/workspace-members`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CreateMember {
    /// Invitee address.
    pub email: String,
    /// Role (`owner` and `client` are refused by Instantly).
    pub role: Role,
}

/// Body of `PATCH /api/v2/workspace-members/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateMember {
    /// New role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

/// API key metadata (instantly-api.md §8). Never carries the secret: the wire `key` field is
/// dropped on decode (it is `""` in lists, and the create response's value goes to
/// [`CreatedApiKey::secret`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiKey {
    /// Key id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Name.
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    /// Scopes.
    #[serde(deserialize_with = "null_default")]
    pub scopes: Vec<Scope>,
    /// The workspace id.
    #[serde(deserialize_with = "lenient_string")]
    pub organization_id: String,
    /// Created.
    #[serde(with = "lenient_ts")]
    pub timestamp_created: Option<DateTime<Utc>>,
    /// Updated.
    #[serde(with = "lenient_ts")]
    pub timestamp_updated: Option<DateTime<Utc>>,
}

/// Body of `POST /api/v2/api-keys`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CreateApiKey {
    /// Name.
    pub name: String,
    /// Scopes to grant.
    pub scopes: Vec<Scope>,
}

/// The answer of `POST /api/v2/api-keys`: metadata plus the secret, shown exactly once.
///
/// Deliberately not `Serialize`; `Debug` redacts the secret.
#[derive(Clone, Debug)]
pub struct CreatedApiKey {
    /// Metadata (no secret).
    pub key: ApiKey,
    /// The plaintext key. Instantly never shows it again.
    pub secret: SecretString,
}

/// A custom tag (instantly-api.md §9).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomTag {
    /// Tag id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Label.
    #[serde(deserialize_with = "lenient_string")]
    pub label: String,
    /// Description.
    pub description: Option<String>,
    /// The workspace id.
    #[serde(deserialize_with = "lenient_string")]
    pub organization_id: String,
    /// Created.
    #[serde(with = "lenient_ts")]
    pub timestamp_created: Option<DateTime<Utc>>,
    /// Updated.
    #[serde(with = "lenient_ts")]
    pub timestamp_updated: Option<DateTime<Utc>>,
}

/// Body of `POST /api/v2/custom-tags`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateCustomTag {
    /// Label.
    pub label: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of `PATCH /api/v2/custom-tags/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateCustomTag {
    /// New label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// New description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body of `POST /api/v2/custom-tags/toggle-resource`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToggleTagResources {
    /// Tags to (un)assign.
    pub tag_ids: Vec<String>,
    /// Kind of the resources.
    pub resource_type: ResourceType,
    /// Resource ids (campaign ids, or account emails — instantly-api.md §9 (UNK)).
    pub resource_ids: Vec<String>,
    /// `true` assigns, `false` unassigns.
    pub assign: bool,
}

/// Query of `GET /api/v2/custom-tags`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListCustomTags {
    /// Free-text search.
    pub search: Option<String>,
    /// Only these tags (sent comma-separated).
    pub tag_ids: Vec<String>,
    /// Only tags on these resources (sent comma-separated).
    pub resource_ids: Vec<String>,
}

/// A tag ↔ resource mapping (instantly-api.md §9).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TagMapping {
    /// Mapping id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Tag id.
    #[serde(deserialize_with = "lenient_string")]
    pub tag_id: String,
    /// Resource id.
    #[serde(deserialize_with = "lenient_string")]
    pub resource_id: String,
    /// Resource kind.
    pub resource_type: ResourceType,
    /// The workspace id.
    #[serde(deserialize_with = "lenient_string")]
    pub organization_id: String,
    /// Created.
    #[serde(with = "lenient_ts")]
    pub timestamp_created: Option<DateTime<Utc>>,
}

/// Query of `GET /api/v2/custom-tag-mappings`.
///
/// instantly-api.md §13.3 (EMP): live filters were seen ignored; callers should filter the
/// results client-side as well.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListTagMappings {
    /// Only mappings of these resources (sent comma-separated).
    pub resource_ids: Vec<String>,
}

/// A campaign (subset, instantly-api.md §16).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Campaign {
    /// Campaign id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Name.
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    /// Status.
    pub status: CampaignStatus,
    /// The workspace id.
    pub organization: Option<String>,
    /// Created.
    #[serde(with = "lenient_ts")]
    pub timestamp_created: Option<DateTime<Utc>>,
    /// Updated.
    #[serde(with = "lenient_ts")]
    pub timestamp_updated: Option<DateTime<Utc>>,
}

/// Query of `GET /api/v2/campaigns`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListCampaigns {
    /// Campaigns having any of these tags (sent comma-separated).
    pub tag_ids: Vec<String>,
    /// Free-text search.
    pub search: Option<String>,
    /// Only this status.
    pub status: Option<CampaignStatus>,
}

/// A sending account (subset, instantly-api.md §16). Accounts have no id; the email is the key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
    /// Address (the account's identifier).
    #[serde(deserialize_with = "lenient_string")]
    pub email: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// The workspace id.
    pub organization: Option<String>,
    /// Status.
    pub status: AccountStatus,
    /// Warm-up status (raw).
    pub warmup_status: Option<i64>,
    /// Provider (1 custom IMAP, 2 Google, …).
    pub provider_code: Option<i64>,
    /// Created.
    #[serde(with = "lenient_ts")]
    pub timestamp_created: Option<DateTime<Utc>>,
    /// Updated.
    #[serde(with = "lenient_ts")]
    pub timestamp_updated: Option<DateTime<Utc>>,
}

/// Query of `GET /api/v2/accounts`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListAccounts {
    /// Accounts having any of these tags (sent comma-separated).
    pub tag_ids: Vec<String>,
    /// Free-text search.
    pub search: Option<String>,
}

/// An audit log entry (instantly-api.md §10).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditLog {
    /// Entry id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// When it happened.
    #[serde(with = "lenient_ts")]
    pub timestamp: Option<DateTime<Utc>>,
    /// The workspace id.
    #[serde(deserialize_with = "lenient_string")]
    pub organization_id: String,
    /// What happened.
    pub activity_type: ActivityType,
    /// Caller's IP address.
    pub ip_address: Option<String>,
    /// Whether it came through the API.
    #[serde(deserialize_with = "null_default")]
    pub from_api: bool,
    /// Caller's user agent.
    pub user_agent: Option<String>,
    /// Acting user id.
    pub user_id: Option<String>,
    /// Acting user name.
    pub user_name: Option<String>,
    /// Number of affected items.
    pub affected_count: Option<i64>,
    /// Related campaign.
    pub campaign_id: Option<String>,
    /// Related webhook.
    pub webhook_id: Option<String>,
    /// Related subsequence.
    pub subsequence_id: Option<String>,
    /// Related lead list.
    pub list_id: Option<String>,
    /// Related API key (newer spec).
    pub api_key_id: Option<String>,
    /// Free-form details.
    pub audit_metadata: Option<serde_json::Value>,
}

/// Query of `GET /api/v2/audit-logs`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListAuditLogs {
    /// Only this activity type.
    pub activity_type: Option<ActivityType>,
    /// Free-text search (e.g. `"login"`).
    pub search: Option<String>,
    /// From this day (`YYYY-MM-DD`; inclusivity and timezone are instantly-api.md §10 (UNK)).
    pub start_date: Option<NaiveDate>,
    /// Up to this day (`YYYY-MM-DD`).
    pub end_date: Option<NaiveDate>,
}

/// A workspace group membership (instantly-api.md §12).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupMember {
    /// Membership id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Admin workspace id.
    #[serde(deserialize_with = "lenient_string")]
    pub admin_workspace_id: String,
    /// Sub workspace id.
    #[serde(deserialize_with = "lenient_string")]
    pub sub_workspace_id: String,
    /// Status.
    pub status: GroupMemberStatus,
    /// Sub workspace name.
    pub sub_workspace_name: Option<String>,
    /// Admin workspace name.
    pub admin_workspace_name: Option<String>,
    /// Created.
    #[serde(with = "lenient_ts")]
    pub timestamp_created: Option<DateTime<Utc>>,
    /// Updated.
    #[serde(with = "lenient_ts")]
    pub timestamp_updated: Option<DateTime<Utc>>,
}

/// `GET /api/v2/workspace-group-members/admin`: this workspace's admin workspace, if any.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupAdmin {
    /// Admin workspace name (`"Undefined"` when there is none).
    #[serde(deserialize_with = "lenient_string")]
    pub workspace_name: String,
    /// Whether this workspace belongs to a group as a sub workspace.
    #[serde(deserialize_with = "null_default")]
    pub has_admin_workspace: bool,
    /// The group membership id.
    pub workspace_group_member_id: Option<String>,
}

/// The current workspace (instantly-api.md §11).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workspace {
    /// Workspace id.
    #[serde(deserialize_with = "lenient_string")]
    pub id: String,
    /// Name.
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    /// Owner's user id.
    #[serde(deserialize_with = "lenient_string")]
    pub owner: String,
    /// Logo URL.
    pub org_logo_url: Option<String>,
    /// Whitelabel domain.
    pub org_client_domain: Option<String>,
    /// Outreach plan id (e.g. `pid_hg_v1`).
    pub plan_id: Option<String>,
    /// Created.
    #[serde(with = "lenient_ts")]
    pub timestamp_created: Option<DateTime<Utc>>,
    /// Updated.
    #[serde(with = "lenient_ts")]
    pub timestamp_updated: Option<DateTime<Utc>>,
}

/// Body of `PATCH /api/v2/workspaces/current`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateWorkspace {
    /// New name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Body of `POST /api/v2/workspaces/current/change-owner`.
///
/// `sec` is documented only as a "secret token" (instantly-api.md §11 (UNK)); it is treated as a
/// secret: redacted in `Debug`, exposed only while serialising the request body.
#[derive(Clone)]
pub struct ChangeOwner {
    /// The new owner's email (presumably an existing member).
    pub email: String,
    /// The `sec` token.
    pub sec: SecretString,
}

impl fmt::Debug for ChangeOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeOwner")
            .field("email", &self.email)
            .field("sec", &"[redacted]")
            .finish()
    }
}

impl Serialize for ChangeOwner {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ChangeOwner", 2)?;
        st.serialize_field("email", &self.email)?;
        st.serialize_field("sec", self.sec.expose_secret())?;
        st.end()
    }
}

/// One page of a list endpoint: `{items, next_starting_after?}` (instantly-api.md §2).
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_default_vec")]
    pub items: Vec<T>,
    #[serde(default, deserialize_with = "lenient_cursor")]
    pub next_starting_after: Option<String>,
}

fn null_default_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// instantly-api.md §2: the cursor may be a UUID, a timestamp or an email; tolerate a number.
/// Missing, null and `""` all mean "no next page".
fn lenient_cursor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_is_lenient() {
        let m: WorkspaceMember = serde_json::from_str(
            r#"{"id":"m1","email":"a@x.com","role":"superuser","accepted":null,
                "timestamp_created":"2026-03-05T23:09:47.274Z","unknown_field":{"x":1},
                "name":null,"permissions":null}"#,
        )
        .unwrap();
        assert_eq!(m.role, Role::Other("superuser".into()));
        assert!(!m.accepted);
        assert_eq!(
            m.timestamp_created.unwrap().to_rfc3339(),
            "2026-03-05T23:09:47.274+00:00"
        );
        assert_eq!(m.user_id, "");
        let m: WorkspaceMember =
            serde_json::from_str(r#"{"id":"m2","role":"admin","timestamp_created":"garbage"}"#)
                .unwrap();
        assert_eq!(m.role, Role::Admin);
        assert_eq!(m.timestamp_created, None);
    }

    #[test]
    fn open_enums_round_trip() {
        assert_eq!(Role::parse("view"), Role::View);
        assert_eq!(Role::Editor.as_str(), "editor");
        assert_eq!(
            serde_json::to_string(&Role::Other("x".into())).unwrap(),
            r#""x""#
        );
        let s: GroupMemberStatus = serde_json::from_str(r#""accepted""#).unwrap();
        assert_eq!(s, GroupMemberStatus::Accepted);
        let s: GroupMemberStatus = serde_json::from_str(r#""archived""#).unwrap();
        assert_eq!(s, GroupMemberStatus::Other("archived".into()));
        let t: ResourceType = serde_json::from_str("2").unwrap();
        assert_eq!(t, ResourceType::Campaign);
        assert_eq!(
            serde_json::from_str::<ResourceType>("1").unwrap(),
            ResourceType::Account
        );
        assert_eq!(
            serde_json::from_str::<ResourceType>("7").unwrap(),
            ResourceType::Other(7)
        );
        assert_eq!(serde_json::to_string(&ResourceType::Account).unwrap(), "1");
        let a: ActivityType = serde_json::from_str("38").unwrap();
        assert_eq!(a, ActivityType::API_KEY_DELETED);
        assert!(!ActivityType(99).is_known());
        let c: Campaign = serde_json::from_str(r#"{"id":"c","status":-99}"#).unwrap();
        assert_eq!(c.status, CampaignStatus::ACCOUNT_SUSPENDED);
    }

    #[test]
    fn page_cursor_variants() {
        for (body, want) in [
            (r#"{"items":[]}"#, None),
            (r#"{"items":[],"next_starting_after":null}"#, None),
            (r#"{"items":[],"next_starting_after":""}"#, None),
            (r#"{"items":[],"next_starting_after":"abc"}"#, Some("abc")),
            (r#"{"items":null,"next_starting_after":12}"#, Some("12")),
        ] {
            let p: Page<CustomTag> = serde_json::from_str(body).unwrap();
            assert_eq!(p.next_starting_after.as_deref(), want, "{body}");
        }
    }

    #[test]
    fn api_key_drops_wire_key() {
        let k: ApiKey = serde_json::from_str(
            r#"{"id":"k","name":"n","scopes":["all:read"],"key":"","organization_id":"o"}"#,
        )
        .unwrap();
        assert_eq!(k.scopes, vec![Scope::ALL_READ]);
        assert!(!serde_json::to_string(&k).unwrap().contains("\"key\""));
    }

    #[test]
    fn change_owner_debug_redacts() {
        let c = ChangeOwner {
            email: "o@x.com".into(),
            sec: SecretString::from("tok-not-real"),
        };
        assert!(!format!("{c:?}").contains("tok-not-real"));
        assert!(serde_json::to_string(&c).unwrap().contains("tok-not-real"));
    }
}
