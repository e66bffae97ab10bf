//! `tags.create`, `tags.assign`, `tags.unassign`: Instantly custom tags on campaigns and sending
//! accounts (instantly-api.md §9).
//!
//! Tags are found by label, case-sensitively and exactly: the list is asked with `search` (which
//! may match more loosely) and filtered here. Instantly does not document whether labels are
//! unique (the simulator allows duplicates); when several tags share a label, the oldest wins.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use flotilla_instantly::{
    Account, Campaign, CreateCustomTag, CustomTag, ListAccounts, ListCampaigns, ListCustomTags,
    ListTagMappings, ResourceType, TagMapping, ToggleTagResources,
};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::OnceCell;

use super::{Kind, Limits, Plan, normalize_email};
use crate::engine::{Change, TargetCtx, TargetError};
use crate::error::ApiError;

/// Longest tag label accepted. Instantly's limit is unknown (instantly-api.md §9 [UNK]).
pub const MAX_LABEL_LEN: usize = 100;

/// Resource ids per `toggle-resource` call. Instantly documents no maximum (instantly-api.md §9
/// [UNK]); 100 matches the page size of every other list, a size it is known to handle.
pub const TOGGLE_BATCH: usize = 100;

fn field_error(code: &'static str, field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message).with_details(json!({ "field": field }))
}

/// Checks one tag label: not blank, no surrounding space or control characters, bounded.
pub fn validate_label(label: &str, field: &str) -> Result<(), ApiError> {
    if label.is_empty()
        || label.trim() != label
        || label.chars().count() > MAX_LABEL_LEN
        || label.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "invalid_label",
            format!("{field}: {label:?} must be 1-{MAX_LABEL_LEN} characters, trimmed, without control characters"),
        )
        .with_details(json!({ "field": field, "value": label })));
    }
    Ok(())
}

/// The workspace's tag with exactly this label (case-sensitive), if any; the oldest of several.
pub async fn find_tag(ctx: &TargetCtx, label: &str) -> Result<Option<CustomTag>, TargetError> {
    let query = ListCustomTags {
        search: Some(label.to_string()),
        ..ListCustomTags::default()
    };
    let tags: Vec<CustomTag> = ctx.client.list_custom_tags(&query).try_collect().await?;
    Ok(tags
        .into_iter()
        .filter(|t| t.label == label)
        .min_by(|a, b| {
            a.timestamp_created
                .cmp(&b.timestamp_created)
                .then_with(|| a.id.cmp(&b.id))
        }))
}

/// Params of `tags.create`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// Labels, case-sensitive, e.g. `["Team-East"]`.
    pub labels: Vec<String>,
    /// Description given to tags that are created (existing tags are left as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `tags.create`: a tag per label unless one with that exact label exists.
pub struct Create;

impl Kind for Create {
    const NAME: &'static str = "tags.create";
    type Params = CreateParams;
    /// The label to create.
    type Action = String;

    fn validate(params: CreateParams, limits: &Limits) -> Result<CreateParams, ApiError> {
        if params.labels.is_empty() {
            return Err(field_error(
                "invalid_params",
                "params.labels",
                "params.labels must not be empty",
            ));
        }
        if params.labels.len() > limits.max_items {
            return Err(ApiError::unprocessable(
                "too_many_items",
                "params.labels has too many items",
            )
            .with_details(json!({ "field": "params.labels", "limit": limits.max_items })));
        }
        for label in &params.labels {
            validate_label(label, "params.labels")?;
        }
        let labels = super::unique_in_order(params.labels);
        if let Some(d) = &params.description
            && (d.chars().count() > 1000 || d.chars().any(|c| c.is_control() && c != '\n'))
        {
            return Err(field_error(
                "invalid_params",
                "params.description",
                "params.description must be at most 1000 characters without control characters",
            ));
        }
        Ok(CreateParams {
            labels,
            description: params.description,
        })
    }

    async fn plan(ctx: &TargetCtx, params: &CreateParams) -> Result<Plan<String>, TargetError> {
        let mut plan = Plan::default();
        for label in &params.labels {
            match find_tag(ctx, label).await? {
                Some(tag) => plan
                    .unchanged
                    .push(Change::new(label, "reused").with_detail(format!("tag {}", tag.id))),
                None => plan
                    .actions
                    .push((label.clone(), Change::new(label, "created"))),
            }
        }
        Ok(plan)
    }

    async fn apply(
        ctx: &TargetCtx,
        params: &CreateParams,
        label: &String,
    ) -> Result<Change, TargetError> {
        let req = CreateCustomTag {
            label: label.clone(),
            description: params.description.clone(),
        };
        let tag = ctx.client.create_custom_tag(&req).await?;
        Ok(Change::new(label, "created").with_detail(format!("tag {}", tag.id)))
    }
}

/// Params of `tags.assign` and `tags.unassign`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagResourcesParams {
    /// The tag's label (case-sensitive).
    pub tag: String,
    /// `campaign` or `account`.
    pub resource_type: String,
    /// Campaign ids (UUIDs) or account emails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_ids: Option<Vec<String>>,
    /// Every resource of that type in the workspace instead of `resource_ids`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// `tags.assign` only: create the tag where it does not exist (else the target fails with
    /// `tag_not_found`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create: bool,
}

impl TagResourcesParams {
    fn resource_type(&self) -> ResourceType {
        match self.resource_type.as_str() {
            "account" => ResourceType::Account,
            _ => ResourceType::Campaign,
        }
    }
}

/// Normalises one resource id: a campaign id must be a UUID; an account is addressed by its
/// email (instantly-api.md §9 [UNK]: whether type-1 resource ids are emails or internal UUIDs is
/// unknown; §16 says accounts have no id and the account list gives the email, so we use it).
fn normalize_resource_id(resource_type: ResourceType, raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_resource_id",
            format!("not a valid {} id: {raw:?}", type_name(resource_type)),
        )
        .with_details(json!({ "field": "params.resource_ids", "value": raw }))
    };
    match resource_type {
        ResourceType::Account => normalize_email(raw).map_err(|_| bad()),
        _ => uuid::Uuid::parse_str(raw)
            .map(|u| u.hyphenated().to_string())
            .map_err(|_| bad()),
    }
}

fn type_name(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::Account => "account",
        _ => "campaign",
    }
}

fn validate_tag_resources(
    params: TagResourcesParams,
    limits: &Limits,
    allow_create: bool,
) -> Result<TagResourcesParams, ApiError> {
    validate_label(&params.tag, "params.tag")?;
    if !matches!(params.resource_type.as_str(), "campaign" | "account") {
        return Err(ApiError::bad_request(
            "invalid_resource_type",
            format!("unknown resource type {:?}", params.resource_type),
        )
        .with_details(
            json!({ "field": "params.resource_type", "allowed": ["campaign", "account"] }),
        ));
    }
    if params.create && !allow_create {
        return Err(field_error(
            "invalid_params",
            "params.create",
            "params.create is only for tags.assign",
        ));
    }
    let resource_type = params.resource_type();
    let resource_ids = match (params.resource_ids, params.all) {
        (Some(_), true) | (None, false) => {
            return Err(field_error(
                "invalid_params",
                "params.resource_ids",
                "give exactly one of params.resource_ids and params.all: true",
            ));
        }
        (None, true) => None,
        (Some(ids), false) => {
            if ids.is_empty() {
                return Err(field_error(
                    "invalid_params",
                    "params.resource_ids",
                    "params.resource_ids must not be empty",
                ));
            }
            if ids.len() > limits.max_items {
                return Err(ApiError::unprocessable(
                    "too_many_items",
                    "params.resource_ids has too many items",
                )
                .with_details(
                    json!({ "field": "params.resource_ids", "limit": limits.max_items }),
                ));
            }
            let ids = ids
                .iter()
                .map(|raw| normalize_resource_id(resource_type, raw))
                .collect::<Result<Vec<_>, _>>()?;
            Some(super::unique_in_order(ids))
        }
    };
    Ok(TagResourcesParams {
        resource_ids,
        ..params
    })
}

/// The tag a target works with: its id once known, created at most once per attempt.
pub struct TagSlot {
    label: String,
    existing: Option<String>,
    created: OnceCell<Result<String, TargetError>>,
}

impl TagSlot {
    /// The tag's id, creating the tag first if it did not exist (once, however many actions ask).
    async fn id(&self, ctx: &TargetCtx) -> Result<String, TargetError> {
        if let Some(id) = &self.existing {
            return Ok(id.clone());
        }
        self.created
            .get_or_init(|| async {
                let req = CreateCustomTag {
                    label: self.label.clone(),
                    description: None,
                };
                ctx.client
                    .create_custom_tag(&req)
                    .await
                    .map(|t| t.id)
                    .map_err(TargetError::from)
            })
            .await
            .clone()
    }
}

/// Up to [`TOGGLE_BATCH`] resources (un)assigned by one `toggle-resource` call, shared by the
/// per-item actions of the batch so that each item still records its own change.
pub struct Batch {
    tag: Arc<TagSlot>,
    resource_type: ResourceType,
    assign: bool,
    ids: Vec<String>,
    done: OnceCell<Result<(), TargetError>>,
}

impl Batch {
    /// Sends the batch's toggle once; every item of the batch shares the result.
    async fn run(&self, ctx: &TargetCtx) -> Result<(), TargetError> {
        self.done
            .get_or_init(|| async {
                let tag_id = self.tag.id(ctx).await?;
                let req = ToggleTagResources {
                    tag_ids: vec![tag_id],
                    resource_type: self.resource_type,
                    resource_ids: self.ids.clone(),
                    assign: self.assign,
                };
                ctx.client
                    .toggle_tag_resources(&req)
                    .await
                    .map_err(TargetError::from)
            })
            .await
            .clone()
    }
}

/// One step of `tags.assign` / `tags.unassign`.
pub enum TagAction {
    /// Create the missing tag (`tags.assign` with `create: true`).
    CreateTag(Arc<TagSlot>),
    /// (Un)assign one resource, as part of its batch.
    Toggle(Arc<Batch>, String),
}

/// The workspace's resources of a type, keyed by lower-cased id, valued by the id as Instantly
/// gave it.
async fn resources(
    ctx: &TargetCtx,
    resource_type: ResourceType,
) -> Result<HashMap<String, String>, TargetError> {
    let ids: Vec<String> = match resource_type {
        ResourceType::Account => {
            let accounts: Vec<Account> = ctx
                .client
                .list_accounts(&ListAccounts::default())
                .try_collect()
                .await?;
            accounts.into_iter().map(|a| a.email).collect()
        }
        _ => {
            let campaigns: Vec<Campaign> = ctx
                .client
                .list_campaigns(&ListCampaigns::default())
                .try_collect()
                .await?;
            campaigns.into_iter().map(|c| c.id).collect()
        }
    };
    Ok(ids
        .into_iter()
        .map(|id| (id.to_ascii_lowercase(), id))
        .collect())
}

/// Lower-cased ids of the resources of `resource_type` carrying `tag_id`.
///
/// instantly-api.md §9 and §13.3 (EMP): the live `custom-tag-mappings` filters were seen
/// ignored or only partly honoured, so a filtered read could silently miss mappings. We read
/// every mapping and filter here.
async fn tagged(
    ctx: &TargetCtx,
    tag_id: &str,
    resource_type: ResourceType,
) -> Result<HashSet<String>, TargetError> {
    let mappings: Vec<TagMapping> = ctx
        .client
        .list_custom_tag_mappings(&ListTagMappings::default())
        .try_collect()
        .await?;
    Ok(mappings
        .into_iter()
        .filter(|m| m.tag_id == tag_id && m.resource_type == resource_type)
        .map(|m| m.resource_id.to_ascii_lowercase())
        .collect())
}

async fn plan_tag_resources(
    ctx: &TargetCtx,
    params: &TagResourcesParams,
    assign: bool,
) -> Result<Plan<TagAction>, TargetError> {
    let resource_type = params.resource_type();
    let mut plan = Plan::default();
    let tag = find_tag(ctx, &params.tag).await?;
    if tag.is_none() && !(assign && params.create) {
        return Err(TargetError::permanent(
            "tag_not_found",
            format!("no tag labelled {:?} in this workspace", params.tag),
        ));
    }
    let slot = Arc::new(TagSlot {
        label: params.tag.clone(),
        existing: tag.as_ref().map(|t| t.id.clone()),
        created: OnceCell::new(),
    });
    if tag.is_none() {
        plan.actions.push((
            TagAction::CreateTag(slot.clone()),
            Change::new(&params.tag, "created").with_detail("tag"),
        ));
    }
    let present = resources(ctx, resource_type).await?;
    let wanted: Vec<String> = match &params.resource_ids {
        Some(ids) => ids.clone(),
        None => {
            let mut all: Vec<String> = present.values().cloned().collect();
            all.sort();
            all
        }
    };
    let carrying = match &tag {
        Some(t) => tagged(ctx, &t.id, resource_type).await?,
        None => HashSet::new(),
    };
    let mut todo: Vec<(String, String)> = Vec::new();
    for item in &wanted {
        let key = item.to_ascii_lowercase();
        let Some(listed) = present.get(&key) else {
            plan.unchanged.push(
                Change::new(item, "not_found")
                    .with_detail(format!("no such {}", type_name(resource_type))),
            );
            continue;
        };
        match (assign, carrying.contains(&key)) {
            (true, true) => plan.unchanged.push(Change::new(item, "already_assigned")),
            (false, false) => plan.unchanged.push(Change::new(item, "not_assigned")),
            _ => todo.push((item.clone(), listed.clone())),
        }
    }
    let verb = if assign { "assigned" } else { "unassigned" };
    for chunk in todo.chunks(TOGGLE_BATCH) {
        let batch = Arc::new(Batch {
            tag: slot.clone(),
            resource_type,
            assign,
            ids: chunk.iter().map(|(_, listed)| listed.clone()).collect(),
            done: OnceCell::new(),
        });
        for (item, _) in chunk {
            plan.actions.push((
                TagAction::Toggle(batch.clone(), item.clone()),
                Change::new(item, verb),
            ));
        }
    }
    Ok(plan)
}

async fn apply_tag_action(
    ctx: &TargetCtx,
    action: &TagAction,
    assign: bool,
) -> Result<Change, TargetError> {
    match action {
        TagAction::CreateTag(slot) => {
            let id = slot.id(ctx).await?;
            Ok(Change::new(&slot.label, "created").with_detail(format!("tag {id}")))
        }
        TagAction::Toggle(batch, item) => {
            batch.run(ctx).await?;
            Ok(Change::new(
                item,
                if assign { "assigned" } else { "unassigned" },
            ))
        }
    }
}

/// `tags.assign`: put a tag on campaigns or accounts that lack it, one toggle per batch.
pub struct Assign;

impl Kind for Assign {
    const NAME: &'static str = "tags.assign";
    type Params = TagResourcesParams;
    type Action = TagAction;

    fn validate(
        params: TagResourcesParams,
        limits: &Limits,
    ) -> Result<TagResourcesParams, ApiError> {
        validate_tag_resources(params, limits, true)
    }

    async fn plan(
        ctx: &TargetCtx,
        params: &TagResourcesParams,
    ) -> Result<Plan<TagAction>, TargetError> {
        plan_tag_resources(ctx, params, true).await
    }

    async fn apply(
        ctx: &TargetCtx,
        _params: &TagResourcesParams,
        action: &TagAction,
    ) -> Result<Change, TargetError> {
        apply_tag_action(ctx, action, true).await
    }
}

/// `tags.unassign`: take a tag off campaigns or accounts that carry it, one toggle per batch.
pub struct Unassign;

impl Kind for Unassign {
    const NAME: &'static str = "tags.unassign";
    type Params = TagResourcesParams;
    type Action = TagAction;

    fn validate(
        params: TagResourcesParams,
        limits: &Limits,
    ) -> Result<TagResourcesParams, ApiError> {
        validate_tag_resources(params, limits, false)
    }

    async fn plan(
        ctx: &TargetCtx,
        params: &TagResourcesParams,
    ) -> Result<Plan<TagAction>, TargetError> {
        plan_tag_resources(ctx, params, false).await
    }

    async fn apply(
        ctx: &TargetCtx,
        _params: &TagResourcesParams,
        action: &TagAction,
    ) -> Result<Change, TargetError> {
        apply_tag_action(ctx, action, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: serde_json::Value) -> TagResourcesParams {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn tag_resource_params_are_checked() {
        let limits = Limits { max_items: 10 };
        let id = "019cc043-af91-783e-9927-3daab1cd9277";
        let ok = Assign::validate(p(json!({"tag": "Team-East", "resource_type": "campaign", "resource_ids": [id.to_uppercase(), id]})), &limits)
            .unwrap();
        assert_eq!(ok.resource_ids.unwrap(), vec![id]);
        let err = Assign::validate(
            p(json!({"tag": "T", "resource_type": "campaign", "resource_ids": [id, "nope"]})),
            &limits,
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_resource_id");
        let err = Assign::validate(
            p(json!({"tag": "T", "resource_type": "lead", "all": true})),
            &limits,
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_resource_type");
        let err = Assign::validate(p(json!({"tag": "T", "resource_type": "account", "all": true, "resource_ids": ["a@x.com"]})), &limits)
            .unwrap_err();
        assert_eq!(err.code(), "invalid_params");
        let err = Unassign::validate(
            p(json!({"tag": "T", "resource_type": "account", "all": true, "create": true})),
            &limits,
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_params");
        let err = Assign::validate(
            p(json!({"tag": " T", "resource_type": "account", "all": true})),
            &limits,
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_label");
        let ok = Assign::validate(
            p(json!({"tag": "T", "resource_type": "account", "resource_ids": ["A@X.com"]})),
            &limits,
        )
        .unwrap();
        assert_eq!(ok.resource_ids.unwrap(), vec!["a@x.com"]);
    }
}
