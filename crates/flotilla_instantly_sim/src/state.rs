//! In-memory state.
//!
//! Locking: a `RwLock<HashMap>` maps workspace ids to `Arc<Mutex<Workspace>>`, so requests to
//! different workspaces never contend beyond a short map read. No lock is held across an `.await`
//! (handlers are synchronous), and at most one lock is held at a time, except the workspace map
//! read lock, which is only held while cloning an `Arc`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::{Burst, DelegatedBucket, Faults, LastPageCursor, SimConfig};
use crate::error::{Error, Result};
use crate::model::{
    Account, ApiKeyMeta, AuditLog, Campaign, Counters, CustomTag, GroupMember, Member,
    RequestRecord, SimKey, TagMapping, WorkspaceState,
};

/// Locks a mutex, ignoring poisoning: the data is plain state and every mutation is complete
/// before a panic could happen.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new time-ordered id. `Uuid::now_v7` is monotonic within the process, so id order is creation
/// order, which is the list order we serve (instantly-api.md §2 [UNK] order; we choose creation order).
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A fresh opaque secret. Deliberately shaped unlike any vendor's real key format
/// (`sim.` + 40 base62 characters).
fn new_secret() -> String {
    use rand::distributions::Alphanumeric;
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("sim.{tail}")
}

/// Settings that can change at run time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Runtime {
    pub rps: u32,
    pub rpm: u32,
    pub latency: Duration,
    pub fail_rate: f64,
    pub drop_rate: f64,
    pub proxy_502_rate: f64,
    pub burst: Option<Burst>,
    pub burst_epoch: Instant,
    pub retry_after: bool,
    pub default_limit: usize,
    pub last_page_cursor: LastPageCursor,
    pub delegated_bucket: DelegatedBucket,
}

impl Runtime {
    /// If a 429 burst is on at `now`, how long it still lasts.
    pub(crate) fn burst_remaining(&self, now: Instant) -> Option<Duration> {
        let b = self.burst.filter(|b| !b.every.is_zero())?;
        let into = now.saturating_duration_since(self.burst_epoch).as_nanos() % b.every.as_nanos();
        let left = b.duration.as_nanos().checked_sub(into).filter(|l| *l > 0)?;
        Some(Duration::from_nanos(
            u64::try_from(left).unwrap_or(u64::MAX),
        ))
    }
}

/// A stored key: public metadata plus the secret (kept only to unindex it on delete).
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub meta: ApiKeyMeta,
    pub secret: String,
}

/// What a bearer secret resolves to.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    pub workspace_id: String,
    pub key_id: String,
    pub scopes: Arc<[String]>,
}

/// Sliding-window request counter (1 s and 60 s windows).
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    second: VecDeque<Instant>,
    minute: VecDeque<Instant>,
}

impl RateWindow {
    /// Spends one request, or returns how long until one would be allowed.
    pub(crate) fn try_acquire(&mut self, now: Instant, rps: u32, rpm: u32) -> Result<(), Duration> {
        let sec = Duration::from_secs(1);
        let min = Duration::from_secs(60);
        while self
            .second
            .front()
            .is_some_and(|t| now.duration_since(*t) >= sec)
        {
            self.second.pop_front();
        }
        while self
            .minute
            .front()
            .is_some_and(|t| now.duration_since(*t) >= min)
        {
            self.minute.pop_front();
        }
        if rps > 0 && self.second.len() >= rps as usize {
            let oldest = self.second.front().copied().unwrap_or(now);
            return Err((oldest + sec).saturating_duration_since(now));
        }
        if rpm > 0 && self.minute.len() >= rpm as usize {
            let oldest = self.minute.front().copied().unwrap_or(now);
            return Err((oldest + min).saturating_duration_since(now));
        }
        // Refused requests are not recorded, so a client that backs off is not punished forever.
        if rps > 0 {
            self.second.push_back(now);
        }
        if rpm > 0 {
            self.minute.push_back(now);
        }
        Ok(())
    }
}

/// One workspace.
#[derive(Debug)]
pub(crate) struct Workspace {
    pub id: String,
    pub name: String,
    pub owner_user_id: String,
    pub paid: bool,
    pub org_logo_url: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub members: BTreeMap<String, Member>,
    pub api_keys: BTreeMap<String, StoredKey>,
    pub tags: BTreeMap<String, CustomTag>,
    pub tag_mappings: BTreeMap<String, TagMapping>,
    pub campaigns: BTreeMap<String, Campaign>,
    /// Accounts have no id; creation order is kept by the Vec (they are never deleted).
    pub accounts: Vec<Account>,
    pub audit_logs: BTreeMap<String, AuditLog>,
    pub counters: Counters,
    pub window: RateWindow,
}

impl Workspace {
    /// Adds an audit entry.
    pub(crate) fn audit(&mut self, entry: AuditLog) {
        self.audit_logs.insert(entry.id.clone(), entry);
    }

    /// Adds a tag mapping unless the same (tag, type, resource) exists.
    pub(crate) fn map_tag(&mut self, tag_id: &str, resource_type: i64, resource_id: &str) {
        let exists = self.tag_mappings.values().any(|m| {
            m.tag_id == tag_id && m.resource_type == resource_type && m.resource_id == resource_id
        });
        if !exists {
            let id = new_id();
            self.tag_mappings.insert(
                id.clone(),
                TagMapping {
                    id,
                    tag_id: tag_id.to_owned(),
                    resource_id: resource_id.to_owned(),
                    resource_type,
                    timestamp_created: Utc::now(),
                    organization_id: self.id.clone(),
                },
            );
        }
    }
}

/// Everything the simulator holds.
pub(crate) struct Shared {
    pub runtime: RwLock<Runtime>,
    pub workspaces: RwLock<HashMap<String, Arc<Mutex<Workspace>>>>,
    /// Creation order of workspaces, for `workspace_ids`.
    pub workspace_order: Mutex<Vec<String>>,
    pub keys: RwLock<HashMap<String, KeyEntry>>,
    /// Workspace group records, global because they link two workspaces.
    pub groups: Mutex<BTreeMap<String, GroupMember>>,
    /// `(arrival sequence, record)`; sorted on read.
    pub log: Mutex<Vec<(u64, RequestRecord)>>,
    pub log_seq: AtomicU64,
    pub fault_rng: Mutex<StdRng>,
    pub down: AtomicBool,
}

impl Shared {
    pub(crate) fn new(config: &SimConfig) -> Self {
        Self {
            runtime: RwLock::new(Runtime {
                rps: config.rps,
                rpm: config.rpm,
                latency: config.latency,
                fail_rate: config.fail_rate,
                drop_rate: config.drop_rate,
                proxy_502_rate: 0.0,
                burst: None,
                burst_epoch: Instant::now(),
                retry_after: config.retry_after,
                default_limit: config.default_limit.clamp(1, 100),
                last_page_cursor: config.last_page_cursor,
                delegated_bucket: config.delegated_bucket,
            }),
            workspaces: RwLock::new(HashMap::new()),
            workspace_order: Mutex::new(Vec::new()),
            keys: RwLock::new(HashMap::new()),
            groups: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
            log_seq: AtomicU64::new(0),
            fault_rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            down: AtomicBool::new(false),
        }
    }

    pub(crate) fn runtime(&self) -> Runtime {
        *self.runtime.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn update_runtime(&self, f: impl FnOnce(&mut Runtime)) {
        f(&mut self.runtime.write().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        self.update_runtime(|r| {
            r.latency = faults.latency;
            r.fail_rate = faults.fail_rate;
            r.drop_rate = faults.drop_rate;
            r.burst = faults.burst;
            r.burst_epoch = Instant::now();
        });
    }

    pub(crate) fn ws(&self, id: &str) -> Option<Arc<Mutex<Workspace>>> {
        self.workspaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    pub(crate) fn ws_or_err(&self, id: &str) -> Result<Arc<Mutex<Workspace>>> {
        self.ws(id)
            .ok_or_else(|| Error::UnknownWorkspace(id.to_owned()))
    }

    pub(crate) fn workspace_name(&self, id: &str) -> Option<String> {
        self.ws(id).map(|w| lock(&w).name.clone())
    }

    pub(crate) fn key(&self, secret: &str) -> Option<KeyEntry> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(secret)
            .cloned()
    }

    /// Draws the next fault roll in `[0, 1)`.
    pub(crate) fn roll(&self) -> f64 {
        lock(&self.fault_rng).r#gen::<f64>()
    }

    pub(crate) fn push_log(&self, seq: u64, rec: RequestRecord) {
        lock(&self.log).push((seq, rec));
    }

    pub(crate) fn request_log(&self) -> Vec<RequestRecord> {
        let mut all = lock(&self.log).clone();
        all.sort_by_key(|(seq, _)| *seq);
        all.into_iter().map(|(_, r)| r).collect()
    }

    pub(crate) fn create_workspace(&self, name: &str) -> String {
        let id = new_id();
        let owner_user_id = uuid::Uuid::new_v4().to_string();
        let now = Utc::now();
        let mut ws = Workspace {
            id: id.clone(),
            name: name.to_owned(),
            owner_user_id: owner_user_id.clone(),
            paid: true,
            org_logo_url: None,
            created: now,
            updated: now,
            members: BTreeMap::new(),
            api_keys: BTreeMap::new(),
            tags: BTreeMap::new(),
            tag_mappings: BTreeMap::new(),
            campaigns: BTreeMap::new(),
            accounts: Vec::new(),
            audit_logs: BTreeMap::new(),
            counters: Counters::default(),
            window: RateWindow::default(),
        };
        let member_id = new_id();
        let slug: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let slug = match slug.trim_matches('-') {
            "" => "workspace".to_owned(),
            s => s.to_owned(),
        };
        ws.members.insert(
            member_id.clone(),
            Member {
                id: member_id,
                email: format!("owner@{slug}.example"),
                user_id: owner_user_id,
                user_email: None,
                name: None,
                role: "owner".into(),
                timestamp_created: now,
                workspace_id: id.clone(),
                accepted: true,
                issuer_id: None,
                permissions: Vec::new(),
                nickname: None,
            },
        );
        self.workspaces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), Arc::new(Mutex::new(ws)));
        lock(&self.workspace_order).push(id.clone());
        id
    }

    pub(crate) fn create_key(
        &self,
        workspace_id: &str,
        name: &str,
        scopes: &[String],
    ) -> Result<SimKey> {
        let ws = self.ws_or_err(workspace_id)?;
        let id = new_id();
        let secret = new_secret();
        let now = Utc::now();
        let meta = ApiKeyMeta {
            id: id.clone(),
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            organization_id: workspace_id.to_owned(),
            timestamp_created: now,
            timestamp_updated: now,
        };
        // Index first: a key listed in the workspace must already authenticate.
        self.keys.write().unwrap_or_else(|e| e.into_inner()).insert(
            secret.clone(),
            KeyEntry {
                workspace_id: workspace_id.to_owned(),
                key_id: id.clone(),
                scopes: scopes.to_vec().into(),
            },
        );
        lock(&ws).api_keys.insert(
            id.clone(),
            StoredKey {
                meta,
                secret: secret.clone(),
            },
        );
        Ok(SimKey { id, key: secret })
    }

    pub(crate) fn unindex_key(&self, secret: &str) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(secret);
    }

    pub(crate) fn seed_member(
        &self,
        workspace_id: &str,
        email: &str,
        role: &str,
        accepted: bool,
    ) -> Result<String> {
        let ws = self.ws_or_err(workspace_id)?;
        let mut ws = lock(&ws);
        let id = new_id();
        let issuer = Some(ws.owner_user_id.clone());
        ws.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                email: email.to_owned(),
                user_id: uuid::Uuid::new_v4().to_string(),
                user_email: None,
                name: None,
                role: role.to_owned(),
                timestamp_created: Utc::now(),
                workspace_id: workspace_id.to_owned(),
                accepted,
                issuer_id: issuer,
                permissions: Vec::new(),
                nickname: None,
            },
        );
        Ok(id)
    }

    pub(crate) fn seed_campaign(
        &self,
        workspace_id: &str,
        name: &str,
        status: i64,
    ) -> Result<String> {
        let ws = self.ws_or_err(workspace_id)?;
        let id = new_id();
        let now = Utc::now();
        lock(&ws).campaigns.insert(
            id.clone(),
            Campaign {
                id: id.clone(),
                name: name.to_owned(),
                status,
                timestamp_created: now,
                timestamp_updated: now,
                organization: workspace_id.to_owned(),
            },
        );
        Ok(id)
    }

    pub(crate) fn seed_account(&self, workspace_id: &str, email: &str, status: i64) -> Result<()> {
        let ws = self.ws_or_err(workspace_id)?;
        let mut ws = lock(&ws);
        let now = Utc::now();
        if let Some(a) = ws
            .accounts
            .iter_mut()
            .find(|a| a.email.eq_ignore_ascii_case(email))
        {
            a.status = status;
            a.timestamp_updated = now;
            return Ok(());
        }
        ws.accounts.push(Account {
            email: email.to_owned(),
            first_name: None,
            last_name: None,
            organization: workspace_id.to_owned(),
            status,
            warmup_status: 1,
            provider_code: 2,
            timestamp_created: now,
            timestamp_updated: now,
        });
        Ok(())
    }

    pub(crate) fn seed_tag(&self, workspace_id: &str, label: &str) -> Result<String> {
        let ws = self.ws_or_err(workspace_id)?;
        let id = new_id();
        let now = Utc::now();
        lock(&ws).tags.insert(
            id.clone(),
            CustomTag {
                id: id.clone(),
                timestamp_created: now,
                timestamp_updated: now,
                organization_id: workspace_id.to_owned(),
                label: label.to_owned(),
                description: None,
            },
        );
        Ok(id)
    }

    pub(crate) fn seed_tag_mapping(
        &self,
        workspace_id: &str,
        tag_id: &str,
        resource_type: i64,
        resource_id: &str,
    ) -> Result<()> {
        let ws = self.ws_or_err(workspace_id)?;
        let mut ws = lock(&ws);
        if !ws.tags.contains_key(tag_id) {
            return Err(Error::NotFound(format!("tag {tag_id}")));
        }
        ws.map_tag(tag_id, resource_type, resource_id);
        Ok(())
    }

    pub(crate) fn seed_audit_log(
        &self,
        workspace_id: &str,
        activity_type: i64,
        timestamp: DateTime<Utc>,
    ) -> Result<String> {
        let ws = self.ws_or_err(workspace_id)?;
        let mut ws = lock(&ws);
        let id = new_id();
        let user = ws.owner_user_id.clone();
        ws.audit(AuditLog {
            id: id.clone(),
            timestamp,
            organization_id: workspace_id.to_owned(),
            activity_type,
            ip_address: "203.0.113.7".into(),
            from_api: false,
            user_agent: None,
            user_id: Some(user),
            user_name: Some("Workspace Owner".into()),
            affected_count: None,
            campaign_id: None,
            api_key_id: None,
            audit_metadata: serde_json::json!({}),
        });
        Ok(id)
    }

    pub(crate) fn seed_group_member(&self, admin: &str, sub: &str, status: &str) -> Result<String> {
        self.ws_or_err(admin)?;
        self.ws_or_err(sub)?;
        if !matches!(status, "pending" | "accepted" | "rejected") {
            return Err(Error::InvalidInput(format!(
                "status must be pending, accepted or rejected, not {status:?}"
            )));
        }
        let id = new_id();
        let now = Utc::now();
        lock(&self.groups).insert(
            id.clone(),
            GroupMember {
                id: id.clone(),
                admin_workspace_id: admin.to_owned(),
                sub_workspace_id: sub.to_owned(),
                status: status.to_owned(),
                timestamp_created: now,
                timestamp_updated: now,
                sub_workspace_name: None,
                admin_workspace_name: None,
            },
        );
        Ok(id)
    }

    pub(crate) fn set_group_status(&self, id: &str, status: &str) -> Result<()> {
        if !matches!(status, "pending" | "accepted" | "rejected") {
            return Err(Error::InvalidInput(format!(
                "status must be pending, accepted or rejected, not {status:?}"
            )));
        }
        let mut groups = lock(&self.groups);
        let g = groups
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("group member {id}")))?;
        g.status = status.to_owned();
        g.timestamp_updated = Utc::now();
        Ok(())
    }

    /// Fills the workspace names of a group record (names can change, so they are read live).
    pub(crate) fn render_group(&self, mut g: GroupMember) -> GroupMember {
        g.admin_workspace_name = self.workspace_name(&g.admin_workspace_id);
        g.sub_workspace_name = self.workspace_name(&g.sub_workspace_id);
        g
    }

    pub(crate) fn snapshot(&self, workspace_id: &str) -> Option<WorkspaceState> {
        let ws = self.ws(workspace_id)?;
        let mut state = {
            let ws = lock(&ws);
            WorkspaceState {
                id: ws.id.clone(),
                name: ws.name.clone(),
                owner_user_id: ws.owner_user_id.clone(),
                paid: ws.paid,
                members: ws.members.values().cloned().collect(),
                api_keys: ws.api_keys.values().map(|k| k.meta.clone()).collect(),
                tags: ws.tags.values().cloned().collect(),
                tag_mappings: ws.tag_mappings.values().cloned().collect(),
                campaigns: ws.campaigns.values().cloned().collect(),
                accounts: ws.accounts.clone(),
                audit_logs: ws.audit_logs.values().cloned().collect(),
                group_as_admin: Vec::new(),
                group_as_sub: Vec::new(),
            }
        };
        let groups: Vec<GroupMember> = lock(&self.groups)
            .values()
            .filter(|g| g.admin_workspace_id == workspace_id || g.sub_workspace_id == workspace_id)
            .cloned()
            .collect();
        for g in groups {
            let g = self.render_group(g);
            if g.admin_workspace_id == workspace_id {
                state.group_as_admin.push(g);
            } else {
                state.group_as_sub.push(g);
            }
        }
        Some(state)
    }

    /// The accepted group record linking `admin` to `sub`, if any.
    pub(crate) fn accepted_link(&self, admin: &str, sub: &str) -> bool {
        lock(&self.groups).values().any(|g| {
            g.admin_workspace_id == admin && g.sub_workspace_id == sub && g.status == "accepted"
        })
    }

    pub(crate) fn counters(&self, workspace_id: &str) -> Counters {
        self.ws(workspace_id)
            .map(|w| lock(&w).counters)
            .unwrap_or_default()
    }

    /// Counters summed over every workspace.
    pub(crate) fn total_counters(&self) -> Counters {
        let workspaces = self.workspaces.read().unwrap_or_else(|e| e.into_inner());
        workspaces
            .values()
            .map(|w| lock(w).counters)
            .fold(Counters::default(), |a, c| Counters {
                requests: a.requests + c.requests,
                rate_limited: a.rate_limited + c.rate_limited,
                injected_errors: a.injected_errors + c.injected_errors,
                dropped: a.dropped + c.dropped,
            })
    }

    pub(crate) fn next_log_seq(&self) -> u64 {
        self.log_seq.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_windows_admit_rps_and_rpm() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        assert!(w.try_acquire(t0, 2, 3).is_ok());
        assert!(w.try_acquire(t0, 2, 3).is_ok());
        let wait = w
            .try_acquire(t0 + Duration::from_millis(500), 2, 3)
            .unwrap_err();
        assert_eq!(
            wait,
            Duration::from_millis(500),
            "until the oldest leaves the 1 s window"
        );
        assert!(w.try_acquire(t0 + Duration::from_secs(1), 2, 3).is_ok());
        // Minute window full (3), although the second window has room.
        let wait = w
            .try_acquire(t0 + Duration::from_secs(2), 2, 3)
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(58));
        assert!(w.try_acquire(t0 + Duration::from_secs(60), 2, 3).is_ok());
    }

    #[test]
    fn zero_disables_a_limit() {
        let t0 = Instant::now();
        let mut w = RateWindow::default();
        for _ in 0..1000 {
            assert!(w.try_acquire(t0, 0, 0).is_ok());
        }
    }

    #[test]
    fn burst_is_on_at_the_start_of_each_period() {
        let mut rt = Shared::new(&SimConfig::default()).runtime();
        let t0 = rt.burst_epoch;
        rt.burst = Some(Burst {
            every: Duration::from_millis(100),
            duration: Duration::from_millis(30),
        });
        assert!(rt.burst_remaining(t0 + Duration::from_millis(10)).is_some());
        assert!(rt.burst_remaining(t0 + Duration::from_millis(50)).is_none());
        assert!(
            rt.burst_remaining(t0 + Duration::from_millis(120)) == Some(Duration::from_millis(10))
        );
    }
}
