//! Operation kinds. Each kind is one module that says how to read one workspace, diff it against
//! the wanted state, and apply each change ([`Kind`]); the engine does everything else (claims,
//! leases, retries, dry runs, verification, recording). Adding a kind = one module + one line in
//! [`REGISTRY`].

use std::future::Future;
use std::marker::PhantomData;

use futures::future::BoxFuture;
use futures::{StreamExt, stream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Change, Outcome, TargetCtx, TargetError};
use crate::error::ApiError;

pub mod api_keys;
pub mod campaigns;
pub mod import;
pub mod inventory;
pub mod members;
pub mod rotate;
pub mod tags;

/// Limits that params validation enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most items (emails, ids, labels) in one operation.
    pub max_items: usize,
}

/// What a kind plans for one workspace: items already in the wanted state and the actions
/// needed for the rest.
pub struct Plan<A> {
    /// Items that need nothing (`already_member`, …).
    pub unchanged: Vec<Change>,
    /// Actions to apply, each with the change it will make (recorded as-is by a dry run).
    pub actions: Vec<(A, Change)>,
}

impl<A> Default for Plan<A> {
    fn default() -> Self {
        Plan {
            unchanged: Vec::new(),
            actions: Vec::new(),
        }
    }
}

/// One operation kind.
pub trait Kind: Send + Sync + 'static {
    /// The kind's name in the API, e.g. `members.invite`.
    const NAME: &'static str;
    /// Params, parsed strictly (unknown fields refused).
    type Params: DeserializeOwned + Serialize + Send + Sync + 'static;
    /// One change to apply.
    type Action: Send + Sync + 'static;

    /// Checks and normalises params beyond their shape (emails, roles, sizes).
    fn validate(params: Self::Params, limits: &Limits) -> Result<Self::Params, ApiError>;

    /// Reads the workspace and diffs it against the wanted state.
    fn plan(
        ctx: &TargetCtx,
        params: &Self::Params,
    ) -> impl Future<Output = Result<Plan<Self::Action>, TargetError>> + Send;

    /// Applies one action and returns the change it made.
    fn apply(
        ctx: &TargetCtx,
        params: &Self::Params,
        action: &Self::Action,
    ) -> impl Future<Output = Result<Change, TargetError>> + Send;

    /// Whether the engine re-plans after writing and fails the target if anything is left to do.
    const VERIFY: bool = true;
}

/// The object-safe face of a [`Kind`], used by the registry.
pub trait Runner: Send + Sync {
    /// Kind name.
    fn name(&self) -> &'static str;
    /// Parses and validates params; returns their normalised JSON.
    fn validate(&self, params: Value, limits: &Limits) -> Result<Value, ApiError>;
    /// Runs one target: read, diff, then (unless a dry run) write and verify.
    fn run<'a>(
        &'a self,
        ctx: &'a TargetCtx,
        params: &'a Value,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Outcome, TargetError>>;
}

struct KindRunner<K>(PhantomData<fn() -> K>);

impl<K: Kind> Runner for KindRunner<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn validate(&self, params: Value, limits: &Limits) -> Result<Value, ApiError> {
        let parsed: K::Params = serde_json::from_value(params).map_err(|e| {
            ApiError::bad_request("invalid_params", format!("params for {}: {e}", K::NAME))
        })?;
        let valid = K::validate(parsed, limits)?;
        serde_json::to_value(valid).map_err(|e| ApiError::Internal(e.into()))
    }

    fn run<'a>(
        &'a self,
        ctx: &'a TargetCtx,
        params: &'a Value,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Outcome, TargetError>> {
        Box::pin(run_kind::<K>(ctx, params, dry_run))
    }
}

async fn run_kind<K: Kind>(
    ctx: &TargetCtx,
    params: &Value,
    dry_run: bool,
) -> Result<Outcome, TargetError> {
    let params: K::Params = serde_json::from_value(params.clone())
        .map_err(|e| TargetError::permanent("invalid_params", format!("stored params: {e}")))?;
    let plan = K::plan(ctx, &params).await?;
    let mut changes = plan.unchanged;
    if dry_run {
        changes.extend(plan.actions.into_iter().map(|(_, change)| change.planned()));
        return Ok(Outcome::new(changes, "dry_run"));
    }
    if plan.actions.is_empty() {
        return Ok(Outcome::new(changes, "no_changes"));
    }
    let results: Vec<Result<Change, (Change, TargetError)>> = stream::iter(plan.actions)
        .map(|(action, change)| {
            let params = &params;
            async move {
                K::apply(ctx, params, &action)
                    .await
                    .map_err(|e| (change, e))
            }
        })
        .buffer_unordered(ctx.item_concurrency.max(1))
        .collect()
        .await;
    let mut first_error: Option<TargetError> = None;
    let mut failed_items = 0usize;
    for result in results {
        match result {
            Ok(change) => changes.push(change),
            Err((change, err)) => {
                if err.transient || err.whole_target {
                    // A transient error (or one that concerns the whole workspace, like a 401)
                    // decides the target; the re-run re-plans, so items done now are not redone.
                    if first_error
                        .as_ref()
                        .is_none_or(|e| !e.transient && err.transient)
                    {
                        first_error = Some(err);
                    }
                    continue;
                }
                failed_items += 1;
                changes.push(change.failed(&err));
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err.with_changes(changes));
    }
    changes.sort_by(|a, b| a.item.cmp(&b.item));
    if failed_items > 0 {
        return Err(TargetError::permanent(
            "items_failed",
            format!("{failed_items} item(s) were refused by Instantly"),
        )
        .with_changes(changes));
    }
    if K::VERIFY {
        let after = K::plan(ctx, &params).await?;
        if !after.actions.is_empty() {
            let left: Vec<String> = after.actions.iter().map(|(_, c)| c.item.clone()).collect();
            return Err(TargetError::transient(
                "verify_failed",
                format!(
                    "after writing, Instantly still differs for: {}",
                    left.join(", ")
                ),
            )
            .with_changes(changes));
        }
    }
    Ok(Outcome::new(changes, "applied"))
}

/// Every kind the engine knows.
pub static REGISTRY: &[&dyn Runner] = &[
    &KindRunner::<members::Invite>(PhantomData),
    &KindRunner::<members::SetRole>(PhantomData),
    &KindRunner::<members::Remove>(PhantomData),
    &KindRunner::<api_keys::Create>(PhantomData),
    &KindRunner::<api_keys::Revoke>(PhantomData),
    &KindRunner::<tags::Create>(PhantomData),
    &KindRunner::<tags::Assign>(PhantomData),
    &KindRunner::<tags::Unassign>(PhantomData),
    &KindRunner::<campaigns::Pause>(PhantomData),
    &KindRunner::<campaigns::Activate>(PhantomData),
    &inventory::SyncInventory,
    &import::ImportRunner,
    &rotate::RotateRunner,
];

/// Looks a kind up by name.
pub fn runner(name: &str) -> Option<&'static dyn Runner> {
    REGISTRY.iter().copied().find(|r| r.name() == name)
}

/// Every kind name.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|r| r.name()).collect()
}

/// Validates one email address the way Instantly's `format: email` would, strictly enough to
/// refuse header injection and whitespace; returns it lower-cased.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_ascii_lowercase();
    let valid = email.len() <= 254
        && email == raw.trim().to_ascii_lowercase()
        && !email.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if !valid || raw.trim() != raw {
        return Err(ApiError::bad_request(
            "invalid_email",
            format!("not a valid email address: {raw:?}"),
        )
        .with_details(serde_json::json!({ "field": "params.emails" })));
    }
    Ok(email)
}

/// Checks a list of emails: non-empty, within limits, each valid; de-duplicates, keeps order.
pub fn normalize_emails(emails: Vec<String>, limits: &Limits) -> Result<Vec<String>, ApiError> {
    if emails.is_empty() {
        return Err(
            ApiError::bad_request("invalid_params", "params.emails must not be empty")
                .with_details(serde_json::json!({ "field": "params.emails" })),
        );
    }
    if emails.len() > limits.max_items {
        return Err(ApiError::unprocessable(
            "too_many_items",
            format!(
                "params.emails has {} items; the limit is {}",
                emails.len(),
                limits.max_items
            ),
        )
        .with_details(serde_json::json!({ "field": "params.emails", "limit": limits.max_items })));
    }
    let emails = emails
        .iter()
        .map(|e| normalize_email(e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(unique_in_order(emails))
}

/// `items` without repeats, first occurrence kept, in linear time (request lists may hold
/// `FLOTILLA_MAX_ITEMS` entries).
pub fn unique_in_order(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated_and_deduplicated() {
        let limits = Limits { max_items: 3 };
        assert_eq!(
            normalize_emails(vec!["A@x.com".into(), "a@x.com".into()], &limits).unwrap(),
            vec!["a@x.com"]
        );
        for bad in [
            "",
            "a",
            "a@b",
            "a @x.com",
            "a@x.com\r\nBcc: y@z.com",
            " a@x.com",
            "a@@x.com",
            "<a@x.com>",
        ] {
            let err = normalize_email(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_email", "{bad:?}");
        }
        let err = normalize_emails(vec!["a@x.com".into(); 4], &limits).unwrap_err();
        assert_eq!(err.code(), "too_many_items");
        assert_eq!(
            normalize_emails(vec![], &limits).unwrap_err().code(),
            "invalid_params"
        );
    }

    #[test]
    fn registry_names_are_unique() {
        let mut names = names();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
