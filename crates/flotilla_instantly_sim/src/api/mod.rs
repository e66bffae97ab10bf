//! The simulated `/api/v2`: one axum handler that runs Instantly's request pipeline
//! (auth, `x-as-workspace`, rate limits, faults, plan, body parsing, scope) and dispatches to
//! synchronous endpoint functions.

mod audit;
mod campaigns;
mod groups;
mod members;
mod tags;
pub(crate) mod validate;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::Value;

use crate::config::{DelegatedBucket, LastPageCursor};
use crate::error::{Error, Result, envelope};
use crate::model::{Counters, RequestRecord};
use crate::state::{KeyEntry, Runtime, Shared, Workspace, lock};
use validate::Query;

/// Response extension telling the connection layer to close the socket without answering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// Largest request body read (bigger bodies get 413).
const BODY_LIMIT: usize = 4 << 20;

/// Everything an endpoint function sees.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    /// The workspace the call acts on (after `x-as-workspace`).
    pub ws: Arc<Mutex<Workspace>>,
    pub ws_id: String,
    pub key_id: String,
    pub user_agent: Option<String>,
    pub query: Query,
    pub body: Option<Value>,
    pub default_limit: usize,
    pub last_page: LastPageCursor,
}

impl Ctx<'_> {
    pub(crate) fn limit(&self, max: usize) -> Result<usize> {
        self.query.limit(max, self.default_limit)
    }

    pub(crate) fn starting_after(&self) -> Option<&str> {
        self.query.text("starting_after")
    }
}

/// The endpoints we simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    MembersList,
    MembersCreate,
    MemberGet(String),
    MemberPatch(String),
    MemberDelete(String),
    KeysList,
    KeysCreate,
    KeyDelete(String),
    TagsList,
    TagsCreate,
    TagGet(String),
    TagPatch(String),
    TagDelete(String),
    TagToggle,
    TagMappingsList,
    CampaignsList,
    CampaignPause(String),
    CampaignActivate(String),
    AccountsList,
    AuditLogsList,
    GroupList,
    GroupCreate,
    GroupGet(String),
    GroupDelete(String),
    GroupAdmin,
    WorkspaceGet,
    WorkspacePatch,
    WorkspaceChangeOwner,
}

impl Route {
    fn resolve(method: &Method, path: &str) -> Option<Route> {
        let rest = path.strip_prefix("/api/v2")?;
        let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let m = method.as_str();
        let id = |s: &str| s.to_owned();
        Some(match (m, segs.as_slice()) {
            ("GET", ["workspace-members"]) => Route::MembersList,
            ("POST", ["workspace-members"]) => Route::MembersCreate,
            ("GET", ["workspace-members", x]) => Route::MemberGet(id(x)),
            ("PATCH", ["workspace-members", x]) => Route::MemberPatch(id(x)),
            ("DELETE", ["workspace-members", x]) => Route::MemberDelete(id(x)),
            ("GET", ["api-keys"]) => Route::KeysList,
            ("POST", ["api-keys"]) => Route::KeysCreate,
            ("DELETE", ["api-keys", x]) => Route::KeyDelete(id(x)),
            ("GET", ["custom-tags"]) => Route::TagsList,
            ("POST", ["custom-tags"]) => Route::TagsCreate,
            ("POST", ["custom-tags", "toggle-resource"]) => Route::TagToggle,
            ("GET", ["custom-tags", x]) => Route::TagGet(id(x)),
            ("PATCH", ["custom-tags", x]) => Route::TagPatch(id(x)),
            ("DELETE", ["custom-tags", x]) => Route::TagDelete(id(x)),
            ("GET", ["custom-tag-mappings"]) => Route::TagMappingsList,
            ("GET", ["campaigns"]) => Route::CampaignsList,
            ("POST", ["campaigns", x, "pause"]) => Route::CampaignPause(id(x)),
            ("POST", ["campaigns", x, "activate"]) => Route::CampaignActivate(id(x)),
            ("GET", ["accounts"]) => Route::AccountsList,
            ("GET", ["audit-logs"]) => Route::AuditLogsList,
            ("GET", ["workspace-group-members"]) => Route::GroupList,
            ("POST", ["workspace-group-members"]) => Route::GroupCreate,
            // instantly-api.md §12: `/admin` is matched before `/{id}`.
            ("GET", ["workspace-group-members", "admin"]) => Route::GroupAdmin,
            ("GET", ["workspace-group-members", x]) => Route::GroupGet(id(x)),
            ("DELETE", ["workspace-group-members", x]) => Route::GroupDelete(id(x)),
            ("GET", ["workspaces", "current"]) => Route::WorkspaceGet,
            ("PATCH", ["workspaces", "current"]) => Route::WorkspacePatch,
            ("POST", ["workspaces", "current", "change-owner"]) => Route::WorkspaceChangeOwner,
            _ => return None,
        })
    }

    /// `(resource, action)` of the scope the endpoint needs (instantly-api.md §5 mapping:
    /// GET → read, POST-create → create, PATCH and action POSTs → update, DELETE → delete).
    fn scope(&self) -> Option<(&'static str, &'static str)> {
        use Route::*;
        Some(match self {
            MembersList | MemberGet(_) => ("workspace_members", "read"),
            MembersCreate => ("workspace_members", "create"),
            MemberPatch(_) => ("workspace_members", "update"),
            MemberDelete(_) => ("workspace_members", "delete"),
            KeysList => ("api_keys", "read"),
            KeysCreate => ("api_keys", "create"),
            KeyDelete(_) => ("api_keys", "delete"),
            TagsList | TagGet(_) => ("custom_tags", "read"),
            TagsCreate => ("custom_tags", "create"),
            TagPatch(_) => ("custom_tags", "update"),
            TagDelete(_) => ("custom_tags", "delete"),
            // instantly-api.md §9 [UNK]/[INF]: scope of toggle-resource not stated; we require
            // custom_tags:update.
            TagToggle => ("custom_tags", "update"),
            TagMappingsList => ("custom_tag_mappings", "read"),
            CampaignsList => ("campaigns", "read"),
            CampaignPause(_) | CampaignActivate(_) => ("campaigns", "update"),
            AccountsList => ("accounts", "read"),
            AuditLogsList => ("audit_logs", "read"),
            GroupList | GroupGet(_) => ("workspace_group_members", "read"),
            GroupCreate => ("workspace_group_members", "create"),
            GroupDelete(_) => ("workspace_group_members", "delete"),
            // instantly-api.md §12: "none stated" for /admin; we require only a valid key.
            GroupAdmin => return None,
            WorkspaceGet => ("workspaces", "read"),
            WorkspacePatch | WorkspaceChangeOwner => ("workspaces", "update"),
        })
    }
}

/// A reply plus the status recorded in the request log.
struct Reply {
    status: u16,
    response: Response,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status: status.as_u16(),
            response: (status, Json(body)).into_response(),
        }
    }

    fn error(e: &Error) -> Self {
        Self::json(e.status(), e.envelope())
    }

    fn too_many(retry_after: Option<Duration>) -> Self {
        let mut r = Self::json(
            StatusCode::TOO_MANY_REQUESTS,
            envelope(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded"),
        );
        if let Some(wait) = retry_after {
            // Whole seconds, rounded up, at least 1.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            r.response
                .headers_mut()
                .insert(header::RETRY_AFTER, secs.max(1).into());
        }
        r
    }

    fn dropped() -> Self {
        let mut response = Response::new(Body::empty());
        response.extensions_mut().insert(DropConnection);
        Self {
            status: 0,
            response,
        }
    }

    fn proxy_502() -> Self {
        // instantly-api.md §3 [INF]: 5xx from the proxy in front of the API can be HTML.
        let html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n";
        let response = (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            html,
        )
            .into_response();
        Self {
            status: 502,
            response,
        }
    }
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Resolves the bearer key (instantly-api.md §3, §15).
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<KeyEntry> {
    let unauthorized = |m: &str| Error::api(StatusCode::UNAUTHORIZED, m);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("Missing Authorization header"));
    };
    let value = value
        .to_str()
        .map_err(|_| unauthorized("Invalid authorization header"))?;
    let token = match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            token.trim()
        }
        _ => return Err(unauthorized("Invalid authorization header")),
    };
    // instantly-api.md §3: unknown and revoked keys are both 401; wording [UNK], ours.
    shared
        .key(token)
        .ok_or_else(|| unauthorized("Invalid API key"))
}

fn bump(ws: &Mutex<Workspace>, f: impl FnOnce(&mut Counters)) {
    f(&mut lock(ws).counters);
}

/// Parses the request body as Fastify would (instantly-api.md §1, §13.7).
fn parse_body(parts: &Parts, bytes: &[u8]) -> Result<Option<Value>> {
    if matches!(parts.method, Method::GET | Method::HEAD) {
        return Ok(None);
    }
    let content_type = header_str(&parts.headers, header::CONTENT_TYPE);
    let is_json = content_type.as_deref().map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("application/json")
    });
    let empty = bytes.iter().all(u8::is_ascii_whitespace);
    match is_json {
        Some(true) if empty => Err(Error::bad_request(
            "Body cannot be empty when content-type is set to 'application/json'",
        )),
        Some(true) => serde_json::from_slice(bytes).map(Some).map_err(|_| {
            Error::bad_request(
                "Body is not valid JSON but content-type is set to 'application/json'",
            )
        }),
        _ if empty => Ok(None),
        _ => Err(Error::api(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Unsupported Media Type: {}",
                content_type.as_deref().unwrap_or("undefined")
            ),
        )),
    }
}

/// The axum handler for every `/api/v2` path.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let seq = shared.next_log_seq();
    let started_at = Utc::now();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await;
    let rt = shared.runtime();
    if !rt.latency.is_zero() {
        tokio::time::sleep(rt.latency).await;
    }
    let mut rec = RequestRecord {
        started_at,
        finished_at: started_at,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        workspace_id: None,
        key_workspace_id: None,
        key_id: None,
        as_workspace: None,
        status: 0,
        user_agent: header_str(&parts.headers, header::USER_AGENT),
        content_type: header_str(&parts.headers, header::CONTENT_TYPE),
        body: None,
    };
    let reply = match &bytes {
        Ok(bytes) => {
            rec.body = serde_json::from_slice(bytes).ok();
            process(&shared, &rt, &parts, bytes, &mut rec)
        }
        Err(_) => Reply::json(
            StatusCode::PAYLOAD_TOO_LARGE,
            envelope(StatusCode::PAYLOAD_TOO_LARGE, "Request body is too large"),
        ),
    };
    rec.status = reply.status;
    rec.finished_at = Utc::now();
    shared.push_log(seq, rec);
    reply.response
}

fn process(
    shared: &Shared,
    rt: &Runtime,
    parts: &Parts,
    bytes: &[u8],
    rec: &mut RequestRecord,
) -> Reply {
    let Some(route) = Route::resolve(&parts.method, parts.uri.path()) else {
        // Fastify's default answer for an unknown route.
        let message = format!("Route {}:{} not found", parts.method, parts.uri.path());
        return Reply::json(
            StatusCode::NOT_FOUND,
            envelope(StatusCode::NOT_FOUND, &message),
        );
    };
    let now = Instant::now();
    let auth = authenticate(shared, &parts.headers);
    let as_header = header_str(&parts.headers, "x-as-workspace")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    rec.as_workspace.clone_from(&as_header);

    // Resolve the workspace the call acts on.
    let mut acting: Option<(String, Arc<Mutex<Workspace>>)> = None;
    let mut key_ws = None;
    let mut as_refused = false;
    if let Ok(k) = &auth {
        rec.key_id = Some(k.key_id.clone());
        rec.key_workspace_id = Some(k.workspace_id.clone());
        key_ws = shared.ws(&k.workspace_id);
        let target = match &as_header {
            // instantly-api.md §1 [OFF]: the header is honoured for an admin-workspace key on
            // its accepted sub workspaces. Naming the key's own workspace is allowed (no-op).
            Some(sub) if sub != &k.workspace_id => {
                if shared.accepted_link(&k.workspace_id, sub) {
                    sub.clone()
                } else {
                    as_refused = true;
                    k.workspace_id.clone()
                }
            }
            _ => k.workspace_id.clone(),
        };
        acting = shared.ws(&target).map(|w| (target, w));
    }
    if let Some((id, ws)) = &acting {
        rec.workspace_id = Some(id.clone());
        bump(ws, |c| c.requests += 1);
    }
    let acting_ws = acting.as_ref().map(|(_, w)| w.clone());
    let count = |f: fn(&mut Counters)| {
        if let Some(ws) = &acting_ws {
            bump(ws, f);
        }
    };

    // A 429 burst hits every request, authenticated or not.
    if let Some(left) = rt.burst_remaining(now) {
        count(|c| c.rate_limited += 1);
        return Reply::too_many(rt.retry_after.then_some(left));
    }

    let key = match auth {
        Ok(k) => k,
        Err(e) => return Reply::error(&e),
    };
    let (Some((ws_id, ws)), Some(key_ws)) = (acting, key_ws) else {
        return Reply::error(&Error::api(StatusCode::UNAUTHORIZED, "Invalid API key"));
    };
    if as_refused {
        // instantly-api.md §1 [UNK]: the refusal for an x-as-workspace the key may not act as is
        // not documented; we choose 403 with this message.
        let sub = as_header.unwrap_or_default();
        return Reply::error(&Error::api(
            StatusCode::FORBIDDEN,
            format!(
                "Not allowed to act as workspace {sub}: it is not an accepted sub workspace of this workspace"
            ),
        ));
    }

    // Rate limits (instantly-api.md §4): per workspace, 1 s and 60 s windows.
    let delegated = ws_id != key.workspace_id;
    let buckets: Vec<&Arc<Mutex<Workspace>>> = match (delegated, rt.delegated_bucket) {
        (false, _) | (true, DelegatedBucket::Sub) => vec![&ws],
        (true, DelegatedBucket::Admin) => vec![&key_ws],
        (true, DelegatedBucket::Both) => vec![&key_ws, &ws],
    };
    for bucket in buckets {
        let verdict = lock(bucket).window.try_acquire(now, rt.rps, rt.rpm);
        if let Err(wait) = verdict {
            bump(&ws, |c| c.rate_limited += 1);
            return Reply::too_many(rt.retry_after.then_some(wait));
        }
    }

    // Injected faults: one roll per request keeps the pattern a function of the seed.
    let roll = shared.roll();
    if roll < rt.drop_rate {
        bump(&ws, |c| c.dropped += 1);
        return Reply::dropped();
    }
    if roll < rt.drop_rate + rt.fail_rate {
        bump(&ws, |c| c.injected_errors += 1);
        return Reply::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            envelope(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error (injected)",
            ),
        );
    }
    if rt.proxy_502_rate > 0.0 && shared.roll() < rt.proxy_502_rate {
        bump(&ws, |c| c.injected_errors += 1);
        return Reply::proxy_502();
    }

    if !lock(&ws).paid {
        return Reply::error(&Error::api(
            StatusCode::PAYMENT_REQUIRED,
            "Workspace does not have an active paid plan",
        ));
    }

    let body = match parse_body(parts, bytes) {
        Ok(b) => b,
        Err(e) => return Reply::error(&e),
    };

    if let Some((resource, action)) = route.scope() {
        let any = validate::any_of(resource, action);
        if !key.scopes.iter().any(|s| any.contains(s)) {
            // instantly-api.md §3/§15 [UNK]: the 403 body wording is unknown; ours names the
            // exact scope first, then the others that would also do.
            return Reply::error(&Error::api(
                StatusCode::FORBIDDEN,
                format!(
                    "API key does not have the required scope. Requires one of: {}",
                    any.join(", ")
                ),
            ));
        }
    }

    let ctx = Ctx {
        shared,
        ws,
        ws_id,
        key_id: key.key_id.clone(),
        user_agent: rec.user_agent.clone(),
        query: Query::parse(parts.uri.query()),
        body,
        default_limit: rt.default_limit,
        last_page: rt.last_page_cursor,
    };
    match dispatch(&ctx, route) {
        Ok(v) => Reply::json(StatusCode::OK, v),
        Err(e) => Reply::error(&e),
    }
}

fn dispatch(ctx: &Ctx<'_>, route: Route) -> Result<Value> {
    use Route::*;
    match route {
        MembersList => members::list(ctx),
        MembersCreate => members::create(ctx),
        MemberGet(id) => members::get(ctx, &id),
        MemberPatch(id) => members::patch(ctx, &id),
        MemberDelete(id) => members::delete(ctx, &id),
        KeysList => members::list_keys(ctx),
        KeysCreate => members::create_key(ctx),
        KeyDelete(id) => members::delete_key(ctx, &id),
        TagsList => tags::list(ctx),
        TagsCreate => tags::create(ctx),
        TagGet(id) => tags::get(ctx, &id),
        TagPatch(id) => tags::patch(ctx, &id),
        TagDelete(id) => tags::delete(ctx, &id),
        TagToggle => tags::toggle(ctx),
        TagMappingsList => tags::list_mappings(ctx),
        CampaignsList => campaigns::list(ctx),
        CampaignPause(id) => campaigns::set_status(ctx, &id, 2),
        CampaignActivate(id) => campaigns::set_status(ctx, &id, 1),
        AccountsList => campaigns::list_accounts(ctx),
        AuditLogsList => audit::list(ctx),
        GroupList => groups::list(ctx),
        GroupCreate => groups::create(ctx),
        GroupGet(id) => groups::get(ctx, &id),
        GroupDelete(id) => groups::delete(ctx, &id),
        GroupAdmin => groups::admin(ctx),
        WorkspaceGet => groups::current(ctx),
        WorkspacePatch => groups::patch_current(ctx),
        WorkspaceChangeOwner => groups::change_owner(ctx),
    }
}

/// An audit entry for a call made through the API.
pub(crate) fn api_audit(
    ctx: &Ctx<'_>,
    ws: &Workspace,
    activity_type: i64,
    metadata: Value,
) -> crate::model::AuditLog {
    crate::model::AuditLog {
        id: crate::state::new_id(),
        timestamp: Utc::now(),
        organization_id: ws.id.clone(),
        activity_type,
        ip_address: "127.0.0.1".into(),
        from_api: true,
        user_agent: ctx.user_agent.clone(),
        user_id: Some(ws.owner_user_id.clone()),
        user_name: Some("API".into()),
        affected_count: None,
        campaign_id: metadata
            .get("campaign_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        api_key_id: Some(ctx.key_id.clone()),
        audit_metadata: metadata,
    }
}

/// Serialises `v`; our model types always serialise.
pub(crate) fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_is_matched_before_id() {
        assert_eq!(
            Route::resolve(&Method::GET, "/api/v2/workspace-group-members/admin"),
            Some(Route::GroupAdmin)
        );
        assert_eq!(
            Route::resolve(&Method::GET, "/api/v2/workspace-group-members/abc"),
            Some(Route::GroupGet("abc".into()))
        );
        assert_eq!(
            Route::resolve(&Method::PUT, "/api/v2/workspace-members"),
            None
        );
        assert_eq!(
            Route::resolve(&Method::POST, "/api/v2/custom-tags/toggle-resource"),
            Some(Route::TagToggle)
        );
    }
}
