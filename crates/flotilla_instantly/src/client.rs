//! The client: configuration, the request loop (pacing, retry, classification) and one method
//! per endpoint.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, Stream, StreamExt, TryStreamExt};
use http::StatusCode;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};
use url::Url;

use crate::endpoint::{self as ep, Endpoint};
use crate::error::{Error, ErrorKind, Result, parse_envelope, snippet};
use crate::models::*;
use crate::pacing::Pacing;
use crate::retry::{Decision, Outcome, RetryPolicy, parse_retry_after};

/// The `x-as-workspace` header (instantly-api.md §1 (OFF) OFF-wg).
const AS_WORKSPACE: &str = "x-as-workspace";

/// Endpoint label used for configuration errors.
const CONFIG: &str = "client configuration";

/// Everything a [`Client`] needs. `Debug` never shows the key.
#[derive(Clone)]
pub struct ClientConfig {
    /// Server root, e.g. `https://api.instantly.ai` or the simulator's `http://127.0.0.1:PORT`;
    /// the client appends `/api/v2/…` (after any path the URL already has).
    pub base_url: Url,
    /// The Instantly API key (sent as `Authorization: Bearer …`, a sensitive header).
    pub api_key: SecretString,
    /// Act as this sub workspace: `x-as-workspace` on every call (needs an admin-workspace key).
    pub as_workspace: Option<String>,
    /// `User-Agent` sent on every call.
    pub user_agent: String,
    /// Whole-request timeout (connect, send, and reading the response body), per attempt.
    pub timeout: Duration,
    /// Connect timeout. Used only by [`Client::new`]; a client built by [`Client::with_http`]
    /// uses the shared `reqwest::Client`'s own setting.
    pub connect_timeout: Duration,
    /// When and how to retry.
    pub retry: RetryPolicy,
    /// Client-side pacing; waits on every key before each attempt (retries included).
    pub pacing: Option<Pacing>,
    /// `limit` sent to list endpoints; clamped to each endpoint's maximum (100).
    pub page_size: u32,
    /// `limit` sent to the audit log list; clamped to its maximum (1000).
    pub audit_log_page_size: u32,
}

impl ClientConfig {
    /// Defaults: no `x-as-workspace`, `User-Agent: flotilla/<version>`, 30 s timeout, 10 s
    /// connect timeout, [`RetryPolicy::default`], no pacing, page size 100 (1000 for audit logs).
    pub fn new(base_url: Url, api_key: SecretString) -> Self {
        ClientConfig {
            base_url,
            api_key,
            as_workspace: None,
            // instantly-api.md §1/§13.1 [EMP, single source]: Cloudflare in front of Instantly
            // answers 403 (error 1010) to requests without a recognisable User-Agent. reqwest
            // sends none by default, so we always send an explicit product token; operators can
            // set a different one if Cloudflare still objects.
            user_agent: default_user_agent(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            pacing: None,
            page_size: 100,
            audit_log_page_size: 1000,
        }
    }
}

/// `flotilla/<crate version>`.
pub fn default_user_agent() -> String {
    format!("flotilla/{}", env!("CARGO_PKG_VERSION"))
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &"[redacted]")
            .field("as_workspace", &self.as_workspace)
            .field("user_agent", &self.user_agent)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("pacing", &self.pacing)
            .field("page_size", &self.page_size)
            .field("audit_log_page_size", &self.audit_log_page_size)
            .finish()
    }
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    auth: HeaderValue,
    user_agent: HeaderValue,
    as_workspace: Option<HeaderValue>,
}

/// A typed Instantly API v2 client for one credential (and optional `x-as-workspace` target).
///
/// Cheap to clone (an `Arc` inside) and cheap to create with [`Client::with_http`], which
/// shares one connection pool across any number of per-workspace clients.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn config_error(what: &'static str) -> Error {
    Error::new(ErrorKind::InvalidRequest, CONFIG).with_source(what)
}

impl Client {
    /// A client with its own `reqwest::Client` (connect timeout from the config, rustls).
    pub fn new(config: ClientConfig) -> Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| Error::new(ErrorKind::Transport, CONFIG).with_source(e))?;
        Client::with_http(config, http)
    }

    /// A client that uses `http` (share one `reqwest::Client`, i.e. one connection pool, across
    /// thousands of per-workspace clients). Timeouts are applied per request.
    pub fn with_http(config: ClientConfig, http: reqwest::Client) -> Result<Client> {
        if !matches!(config.base_url.scheme(), "http" | "https")
            || config.base_url.cannot_be_a_base()
        {
            return Err(config_error("base_url must be an http(s) URL"));
        }
        // Never attach the header parse error's input: it would be the key.
        let mut auth = HeaderValue::try_from(format!("Bearer {}", config.api_key.expose_secret()))
            .map_err(|_| config_error("api_key contains characters not allowed in a header"))?;
        auth.set_sensitive(true);
        let user_agent = HeaderValue::try_from(config.user_agent.as_str())
            .map_err(|_| config_error("user_agent is not a valid header value"))?;
        let as_workspace = match &config.as_workspace {
            Some(ws) => Some(
                HeaderValue::try_from(ws.as_str())
                    .map_err(|_| config_error("as_workspace is not a valid header value"))?,
            ),
            None => None,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                auth,
                user_agent,
                as_workspace,
            }),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    // -----------------------------------------------------------------------------------------
    // The request loop

    fn url(&self, e: &Endpoint, args: &[&str], query: &[(&'static str, String)]) -> Url {
        let mut url = self.inner.config.base_url.clone();
        {
            // Checked in `with_http`: the base can have path segments.
            let Ok(mut segs) = url.path_segments_mut() else {
                unreachable!("base_url validated in Client::with_http")
            };
            segs.pop_if_empty().extend(["api", "v2"]);
            let mut args = args.iter();
            for s in e.path {
                // `push` percent-encodes, so an id cannot escape its segment.
                if *s == "{}" {
                    segs.push(args.next().copied().unwrap_or_default());
                } else {
                    segs.push(s);
                }
            }
        }
        if !query.is_empty() {
            // Form-encoding: cursors (UUIDs, timestamps, `timestamp&email`, §2/§16) and search
            // strings are escaped.
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// Send one logical request (with pacing and retries); the body of a 2xx answer.
    async fn execute(
        &self,
        e: &'static Endpoint,
        args: &[&str],
        query: &[(&'static str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let cfg = &self.inner.config;
        let url = self.url(e, args, query);
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if let Some(p) = &cfg.pacing {
                let waited = p.pacer.wait_all(&p.keys).await;
                if !waited.is_zero() {
                    metrics::histogram!("flotilla_instantly_pacing_wait_seconds")
                        .record(waited.as_secs_f64());
                }
                if waited >= Duration::from_millis(1) {
                    debug!(
                        endpoint = e.label,
                        pacing.wait_ms = waited.as_millis() as u64,
                        "paced before request"
                    );
                }
            }
            let mut rb = self
                .inner
                .http
                .request(e.method.clone(), url.clone())
                .timeout(cfg.timeout)
                .header(AUTHORIZATION, self.inner.auth.clone())
                .header(USER_AGENT, self.inner.user_agent.clone())
                .header(ACCEPT, "application/json");
            if let Some(ws) = &self.inner.as_workspace {
                rb = rb.header(AS_WORKSPACE, ws.clone());
            }
            // instantly-api.md §1/§13.7: Content-Type with an empty body is likely a Fastify
            // 400, so body-less requests (GET, DELETE, action POSTs) send no Content-Type.
            if let Some(b) = &body {
                rb = rb.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            let sent = Instant::now();
            let (outcome, mut err) = match rb.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    metrics::counter!("flotilla_instantly_requests_total",
                        "endpoint" => e.label, "status" => status.as_str().to_owned())
                    .increment(1);
                    if status.as_u16() == 429 {
                        metrics::counter!("flotilla_instantly_rate_limited_total", "endpoint" => e.label).increment(1);
                    }
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
                    match resp.bytes().await {
                        Ok(bytes) if status.is_success() => {
                            debug!(
                                endpoint = e.label,
                                status = status.as_u16(),
                                attempt,
                                elapsed_ms = sent.elapsed().as_millis() as u64,
                                "instantly call"
                            );
                            return Ok(bytes.to_vec());
                        }
                        Ok(bytes) => (
                            Outcome::Status {
                                status: status.as_u16(),
                                retry_after,
                            },
                            Error::from_response(e.label, e.scope.as_ref(), status, &bytes),
                        ),
                        Err(re) => {
                            let (o, mut err) = transport(e, re);
                            err.status = Some(status);
                            (o, err)
                        }
                    }
                }
                Err(re) => {
                    metrics::counter!("flotilla_instantly_requests_total",
                        "endpoint" => e.label, "status" => "transport_error")
                    .increment(1);
                    transport(e, re)
                }
            };
            let decision = cfg.retry.decide_for(
                e.class,
                &outcome,
                attempt,
                started.elapsed(),
                rand::random::<f64>(),
            );
            match decision {
                Decision::Retry(delay) => {
                    metrics::counter!("flotilla_instantly_retries_total", "endpoint" => e.label)
                        .increment(1);
                    warn!(
                        endpoint = e.label,
                        attempt,
                        kind = %err.kind,
                        status = err.status(),
                        delay_ms = delay.as_millis() as u64,
                        "instantly call failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Decision::Stop => {
                    err.attempts = attempt;
                    debug!(endpoint = e.label, attempt, kind = %err.kind, status = err.status(), "instantly call failed");
                    return Err(err);
                }
            }
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        e: &'static Endpoint,
        args: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        let body =
            match body {
                Some(b) => Some(serde_json::to_vec(b).map_err(|err| {
                    Error::new(ErrorKind::InvalidRequest, e.label).with_source(err)
                })?),
                None => None,
            };
        let bytes = self.execute(e, args, &[], body).await?;
        decode(e, &bytes)
    }

    async fn call_empty<T: DeserializeOwned>(
        &self,
        e: &'static Endpoint,
        args: &[&str],
    ) -> Result<T> {
        self.call(e, args, None::<&()>).await
    }

    fn limit_for(&self, e: &Endpoint) -> u32 {
        let cfg = &self.inner.config;
        let want = if std::ptr::eq(e, &ep::LIST_AUDIT_LOGS) {
            cfg.audit_log_page_size
        } else {
            cfg.page_size
        };
        // instantly-api.md §2/§13.2 [EMP]: over the maximum is a hard 400, not a clamp.
        want.clamp(1, e.max_limit.unwrap_or(100))
    }

    /// A lazy stream over every item of a list endpoint.
    fn paginate<T>(
        &self,
        e: &'static Endpoint,
        filters: Vec<(&'static str, String)>,
    ) -> impl Stream<Item = Result<T>> + Send + 'static
    where
        T: DeserializeOwned + Send + 'static,
    {
        struct State {
            cursor: Option<String>,
            seen: HashSet<String>,
            done: bool,
        }
        let client = self.clone();
        let limit = self.limit_for(e).to_string();
        let start = State {
            cursor: None,
            seen: HashSet::new(),
            done: false,
        };
        stream::try_unfold(start, move |mut st| {
            let client = client.clone();
            let mut query = filters.clone();
            query.push(("limit", limit.clone()));
            async move {
                if st.done {
                    return Ok(None);
                }
                if let Some(c) = &st.cursor {
                    query.push(("starting_after", c.clone()));
                }
                let bytes = client.execute(e, &[], &query, None).await?;
                let page: Page<T> = decode(e, &bytes)?;
                // instantly-api.md §2 [UNK]: the last page may omit the cursor, send null or "",
                // or keep sending one. Stop on an empty page, a missing/empty cursor, or a cursor
                // already followed (go-instantly's rule plus a loop guard).
                if page.items.is_empty() {
                    return Ok(None);
                }
                match page.next_starting_after {
                    Some(c) if st.seen.insert(c.clone()) => st.cursor = Some(c),
                    Some(c) => {
                        warn!(endpoint = e.label, cursor = %c, "repeated pagination cursor; stopping");
                        st.done = true;
                    }
                    None => st.done = true,
                }
                Ok(Some((page.items, st)))
            }
        })
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    // -----------------------------------------------------------------------------------------
    // Workspace members (instantly-api.md §7)

    /// `GET /api/v2/workspace-members`, every page.
    pub fn list_members(&self) -> impl Stream<Item = Result<WorkspaceMember>> + Send + 'static {
        self.paginate(&ep::LIST_MEMBERS, Vec::new())
    }

    /// `GET /api/v2/workspace-members/{id}`.
    pub async fn get_member(&self, id: &str) -> Result<WorkspaceMember> {
        self.call_empty(&ep::GET_MEMBER, &[id]).await
    }

    /// `POST /api/v2/workspace-members` (invite). Not retried once it may have reached Instantly.
    pub async fn create_member(&self, req: &CreateMember) -> Result<WorkspaceMember> {
        self.call(&ep::CREATE_MEMBER, &[], Some(req)).await
    }

    /// `PATCH /api/v2/workspace-members/{id}`.
    pub async fn update_member(&self, id: &str, req: &UpdateMember) -> Result<WorkspaceMember> {
        self.call(&ep::UPDATE_MEMBER, &[id], Some(req)).await
    }

    /// `DELETE /api/v2/workspace-members/{id}`; returns the removed member.
    pub async fn delete_member(&self, id: &str) -> Result<WorkspaceMember> {
        self.call_empty(&ep::DELETE_MEMBER, &[id]).await
    }

    // -----------------------------------------------------------------------------------------
    // API keys (instantly-api.md §8)

    /// `GET /api/v2/api-keys`, every page (metadata only; Instantly never lists secrets).
    pub fn list_api_keys(&self) -> impl Stream<Item = Result<ApiKey>> + Send + 'static {
        self.paginate(&ep::LIST_API_KEYS, Vec::new())
    }

    /// `POST /api/v2/api-keys`. The secret is in the answer once and only once.
    pub async fn create_api_key(&self, req: &CreateApiKey) -> Result<CreatedApiKey> {
        let e = &ep::CREATE_API_KEY;
        let body = serde_json::to_vec(req)
            .map_err(|err| Error::new(ErrorKind::InvalidRequest, e.label).with_source(err))?;
        let bytes = self.execute(e, &[], &[], Some(body)).await?;
        // Never build an error from this body: it holds the secret. Syntax errors from
        // serde_json name only a position.
        let mut v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|err| Error::new(ErrorKind::Decode, e.label).with_source(err))?;
        let secret = match v.as_object_mut().and_then(|o| o.remove("key")) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => SecretString::from(s),
            _ => {
                return Err(Error::new(ErrorKind::Decode, e.label)
                    .with_source("create response carries no `key`"));
            }
        };
        let key: ApiKey = serde_json::from_value(v)
            .map_err(|err| Error::new(ErrorKind::Decode, e.label).with_source(err))?;
        Ok(CreatedApiKey { key, secret })
    }

    /// `DELETE /api/v2/api-keys/{id}` (revoke); returns the key's metadata.
    pub async fn delete_api_key(&self, id: &str) -> Result<ApiKey> {
        self.call_empty(&ep::DELETE_API_KEY, &[id]).await
    }

    // -----------------------------------------------------------------------------------------
    // Custom tags (instantly-api.md §9)

    /// `GET /api/v2/custom-tags`, every page.
    pub fn list_custom_tags(
        &self,
        q: &ListCustomTags,
    ) -> impl Stream<Item = Result<CustomTag>> + Send + 'static {
        let mut f = Vec::new();
        push_opt(&mut f, "search", q.search.as_deref());
        push_list(&mut f, "tag_ids", &q.tag_ids);
        push_list(&mut f, "resource_ids", &q.resource_ids);
        self.paginate(&ep::LIST_CUSTOM_TAGS, f)
    }

    /// `GET /api/v2/custom-tags/{id}`.
    pub async fn get_custom_tag(&self, id: &str) -> Result<CustomTag> {
        self.call_empty(&ep::GET_CUSTOM_TAG, &[id]).await
    }

    /// `POST /api/v2/custom-tags`. Not retried once it may have reached Instantly.
    pub async fn create_custom_tag(&self, req: &CreateCustomTag) -> Result<CustomTag> {
        self.call(&ep::CREATE_CUSTOM_TAG, &[], Some(req)).await
    }

    /// `PATCH /api/v2/custom-tags/{id}`.
    pub async fn update_custom_tag(&self, id: &str, req: &UpdateCustomTag) -> Result<CustomTag> {
        self.call(&ep::UPDATE_CUSTOM_TAG, &[id], Some(req)).await
    }

    /// `DELETE /api/v2/custom-tags/{id}`; returns the deleted tag.
    pub async fn delete_custom_tag(&self, id: &str) -> Result<CustomTag> {
        self.call_empty(&ep::DELETE_CUSTOM_TAG, &[id]).await
    }

    /// `POST /api/v2/custom-tags/toggle-resource`: assign or unassign tags.
    pub async fn toggle_tag_resources(&self, req: &ToggleTagResources) -> Result<()> {
        let e = &ep::TOGGLE_TAG_RESOURCES;
        let v: serde_json::Value = self.call(e, &[], Some(req)).await?;
        // instantly-api.md §9: the answer is `{"success": true}`; be lenient about its absence
        // but not about an explicit `false`.
        if v.get("success").and_then(|s| s.as_bool()) == Some(false) {
            let mut err = Error::new(ErrorKind::InvalidRequest, e.label);
            err.status = Some(StatusCode::OK);
            err.body = parse_envelope(v.to_string().as_bytes());
            return Err(err.with_source("toggle-resource answered success: false"));
        }
        Ok(())
    }

    /// `GET /api/v2/custom-tag-mappings`, every page.
    pub fn list_custom_tag_mappings(
        &self,
        q: &ListTagMappings,
    ) -> impl Stream<Item = Result<TagMapping>> + Send + 'static {
        let mut f = Vec::new();
        push_list(&mut f, "resource_ids", &q.resource_ids);
        self.paginate(&ep::LIST_TAG_MAPPINGS, f)
    }

    // -----------------------------------------------------------------------------------------
    // Campaigns and accounts (instantly-api.md §16)

    /// `GET /api/v2/campaigns`, every page.
    pub fn list_campaigns(
        &self,
        q: &ListCampaigns,
    ) -> impl Stream<Item = Result<Campaign>> + Send + 'static {
        let mut f = Vec::new();
        push_list(&mut f, "tag_ids", &q.tag_ids);
        push_opt(&mut f, "search", q.search.as_deref());
        if let Some(s) = q.status {
            f.push(("status", s.0.to_string()));
        }
        self.paginate(&ep::LIST_CAMPAIGNS, f)
    }

    /// `POST /api/v2/campaigns/{id}/pause` (no body).
    pub async fn pause_campaign(&self, id: &str) -> Result<Campaign> {
        self.call_empty(&ep::PAUSE_CAMPAIGN, &[id]).await
    }

    /// `POST /api/v2/campaigns/{id}/activate` (no body; starts or resumes).
    pub async fn activate_campaign(&self, id: &str) -> Result<Campaign> {
        self.call_empty(&ep::ACTIVATE_CAMPAIGN, &[id]).await
    }

    /// `GET /api/v2/accounts`, every page.
    pub fn list_accounts(
        &self,
        q: &ListAccounts,
    ) -> impl Stream<Item = Result<Account>> + Send + 'static {
        let mut f = Vec::new();
        push_list(&mut f, "tag_ids", &q.tag_ids);
        push_opt(&mut f, "search", q.search.as_deref());
        self.paginate(&ep::LIST_ACCOUNTS, f)
    }

    // -----------------------------------------------------------------------------------------
    // Audit logs (instantly-api.md §10)

    /// `GET /api/v2/audit-logs`, every page (pages of up to 1000).
    pub fn list_audit_logs(
        &self,
        q: &ListAuditLogs,
    ) -> impl Stream<Item = Result<AuditLog>> + Send + 'static {
        let mut f = Vec::new();
        if let Some(a) = q.activity_type {
            f.push(("activity_type", a.0.to_string()));
        }
        push_opt(&mut f, "search", q.search.as_deref());
        if let Some(d) = q.start_date {
            f.push(("start_date", d.format("%Y-%m-%d").to_string()));
        }
        if let Some(d) = q.end_date {
            f.push(("end_date", d.format("%Y-%m-%d").to_string()));
        }
        self.paginate(&ep::LIST_AUDIT_LOGS, f)
    }

    // -----------------------------------------------------------------------------------------
    // Workspace group members (instantly-api.md §12)

    /// `GET /api/v2/workspace-group-members`, every page.
    pub fn list_group_members(&self) -> impl Stream<Item = Result<GroupMember>> + Send + 'static {
        self.paginate(&ep::LIST_GROUP_MEMBERS, Vec::new())
    }

    /// `GET /api/v2/workspace-group-members/{id}`.
    pub async fn get_group_member(&self, id: &str) -> Result<GroupMember> {
        self.call_empty(&ep::GET_GROUP_MEMBER, &[id]).await
    }

    /// `POST /api/v2/workspace-group-members` (invite a sub workspace). Not retried once it may
    /// have reached Instantly.
    pub async fn create_group_member(&self, sub_workspace_id: &str) -> Result<GroupMember> {
        #[derive(Serialize)]
        struct Body<'a> {
            sub_workspace_id: &'a str,
        }
        self.call(
            &ep::CREATE_GROUP_MEMBER,
            &[],
            Some(&Body { sub_workspace_id }),
        )
        .await
    }

    /// `DELETE /api/v2/workspace-group-members/{id}`; returns the removed membership.
    pub async fn delete_group_member(&self, id: &str) -> Result<GroupMember> {
        self.call_empty(&ep::DELETE_GROUP_MEMBER, &[id]).await
    }

    /// `GET /api/v2/workspace-group-members/admin`: this workspace's admin workspace.
    pub async fn group_admin(&self) -> Result<GroupAdmin> {
        self.call_empty(&ep::GROUP_ADMIN, &[]).await
    }

    // -----------------------------------------------------------------------------------------
    // Current workspace (instantly-api.md §11)

    /// `GET /api/v2/workspaces/current`.
    pub async fn current_workspace(&self) -> Result<Workspace> {
        self.call_empty(&ep::CURRENT_WORKSPACE, &[]).await
    }

    /// `PATCH /api/v2/workspaces/current`.
    pub async fn update_current_workspace(&self, req: &UpdateWorkspace) -> Result<Workspace> {
        self.call(&ep::UPDATE_CURRENT_WORKSPACE, &[], Some(req))
            .await
    }

    /// `POST /api/v2/workspaces/current/change-owner`.
    pub async fn change_owner(&self, req: &ChangeOwner) -> Result<Workspace> {
        self.call(&ep::CHANGE_OWNER, &[], Some(req)).await
    }
}

fn push_opt(f: &mut Vec<(&'static str, String)>, k: &'static str, v: Option<&str>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        f.push((k, v.to_owned()));
    }
}

/// instantly-api.md §9/§16 (INF): the older spec takes one comma-separated string; we send that.
fn push_list(f: &mut Vec<(&'static str, String)>, k: &'static str, v: &[String]) {
    if !v.is_empty() {
        f.push((k, v.join(",")));
    }
}

/// Classify a reqwest failure.
fn transport(e: &'static Endpoint, re: reqwest::Error) -> (Outcome, Error) {
    let kind = if re.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Transport
    };
    // A connect failure (refused, DNS, TLS, connect timeout) means the request never left, which
    // is what makes retrying a create safe.
    let outcome = if re.is_connect() {
        Outcome::Connect
    } else if re.is_timeout() {
        Outcome::Timeout
    } else {
        Outcome::OtherTransport
    };
    (outcome, Error::new(kind, e.label).with_source(re))
}

/// Decode a 2xx body into `T`.
fn decode<T: DeserializeOwned>(e: &'static Endpoint, bytes: &[u8]) -> Result<T> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        let mut x = Error::new(ErrorKind::Decode, e.label).with_source(err);
        x.status = Some(StatusCode::OK);
        x.snippet = snippet(bytes);
        x
    })?;
    // instantly-api.md §3/§13.10 [SPEC]: some endpoints answer 200 with `{"error": "ACC_…"}`.
    // No resource we decode has a top-level string `error`, so treat that shape as a failure.
    if let Some(obj) = v.as_object()
        && obj.get("error").is_some_and(|x| x.is_string())
        && !obj.contains_key("id")
        && !obj.contains_key("items")
    {
        let mut x = Error::new(ErrorKind::InvalidRequest, e.label);
        x.status = Some(StatusCode::OK);
        x.body = parse_envelope(bytes);
        return Err(x);
    }
    serde_json::from_value(v).map_err(|err| {
        let mut x = Error::new(ErrorKind::Decode, e.label).with_source(err);
        x.status = Some(StatusCode::OK);
        x
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(ClientConfig::new(
            Url::parse(base).unwrap(),
            SecretString::from("test-key-not-real"),
        ))
        .unwrap()
    }

    #[test]
    fn authorization_header_is_sensitive() {
        let c = client("http://127.0.0.1:1");
        assert!(c.inner.auth.is_sensitive());
        assert!(!format!("{:?}", c.inner.auth).contains("not-real"));
    }

    #[test]
    fn urls_escape_ids_and_queries() {
        let c = client("http://h:1/prefix/");
        let u = c.url(&ep::GET_MEMBER, &["a/b?c"], &[]);
        assert_eq!(
            u.as_str(),
            "http://h:1/prefix/api/v2/workspace-members/a%2Fb%3Fc"
        );
        let u = c.url(
            &ep::LIST_ACCOUNTS,
            &[],
            &[("starting_after", "2026-01-01T00:00:00Z&a+b@x.com".into())],
        );
        assert_eq!(
            u.query(),
            Some("starting_after=2026-01-01T00%3A00%3A00Z%26a%2Bb%40x.com")
        );
        let u = c.url(&ep::CURRENT_WORKSPACE, &[], &[]);
        assert_eq!(u.as_str(), "http://h:1/prefix/api/v2/workspaces/current");
    }

    #[test]
    fn page_size_is_clamped_per_endpoint() {
        let mut cfg = ClientConfig::new(
            Url::parse("http://h:1").unwrap(),
            SecretString::from("test-key-not-real"),
        );
        cfg.page_size = 250;
        cfg.audit_log_page_size = 5000;
        let c = Client::new(cfg).unwrap();
        assert_eq!(c.limit_for(&ep::LIST_MEMBERS), 100);
        assert_eq!(c.limit_for(&ep::LIST_AUDIT_LOGS), 1000);
    }
}
