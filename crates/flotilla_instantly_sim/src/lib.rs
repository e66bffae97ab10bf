#![doc = include_str!("../README.md")]

mod api;
mod config;
mod control;
mod demo;
mod error;
mod model;
mod server;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub use config::{Burst, DelegatedBucket, Faults, LastPageCursor, SimConfig};
pub use error::{Error, Result};
pub use model::{
    Account, ApiKeyMeta, AuditLog, Campaign, Counters, CustomTag, DemoWorkspace, GroupMember,
    Member, MemberName, RequestRecord, SimKey, TagMapping, WorkspaceState,
};

use state::{Shared, lock};

/// A running simulator: a cheap, cloneable handle. The server stops when the last handle drops.
///
/// Methods that take a workspace id panic if the workspace does not exist (they are test setup).
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    // Dropping the last sender stops the accept loop and every connection task.
    _shutdown: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn expect<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("flotilla_instantly_sim: {e}"),
    }
}

impl Simulator {
    /// Starts a simulator on `127.0.0.1:0` (a free port).
    pub async fn spawn(config: SimConfig) -> anyhow::Result<Simulator> {
        Self::spawn_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Starts a simulator on `addr`. Must be called inside a Tokio runtime.
    pub async fn spawn_on(addr: SocketAddr, config: SimConfig) -> anyhow::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("while binding the simulator to {addr}"))?;
        let addr = listener
            .local_addr()
            .context("while reading the bound address")?;
        let shared = Arc::new(Shared::new(&config));
        let (tx, rx) = watch::channel(false);
        tokio::spawn(server::serve(listener, shared.clone(), rx));
        Ok(Simulator {
            shared,
            addr,
            _shutdown: Arc::new(tx),
        })
    }

    /// `http://127.0.0.1:PORT` (no `/api/v2` suffix).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Creates a paid workspace with an accepted owner member; returns its id (UUIDv7).
    pub fn create_workspace(&self, name: &str) -> String {
        self.shared.create_workspace(name)
    }

    /// Creates an API key with any scope strings (unchecked, unlike `POST /api-keys`).
    pub fn create_key(&self, workspace_id: &str, name: &str, scopes: &[&str]) -> SimKey {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        expect(self.shared.create_key(workspace_id, name, &scopes))
    }

    /// Adds a member with any role; returns the member id.
    pub fn seed_member(
        &self,
        workspace_id: &str,
        email: &str,
        role: &str,
        accepted: bool,
    ) -> String {
        expect(self.shared.seed_member(workspace_id, email, role, accepted))
    }

    /// Adds a campaign; returns its id.
    pub fn seed_campaign(&self, workspace_id: &str, name: &str, status: i64) -> String {
        expect(self.shared.seed_campaign(workspace_id, name, status))
    }

    /// Adds an account (or sets the status of an existing one).
    pub fn seed_account(&self, workspace_id: &str, email: &str, status: i64) {
        expect(self.shared.seed_account(workspace_id, email, status));
    }

    /// Adds a custom tag; returns its id.
    pub fn seed_tag(&self, workspace_id: &str, label: &str) -> String {
        expect(self.shared.seed_tag(workspace_id, label))
    }

    /// Maps a tag to a resource (1 = account email, 2 = campaign id). Panics on an unknown tag.
    pub fn seed_tag_mapping(
        &self,
        workspace_id: &str,
        tag_id: &str,
        resource_type: i64,
        resource_id: &str,
    ) {
        expect(
            self.shared
                .seed_tag_mapping(workspace_id, tag_id, resource_type, resource_id),
        );
    }

    /// Adds an audit entry at `timestamp`; returns its id.
    pub fn seed_audit_log(
        &self,
        workspace_id: &str,
        activity_type: i64,
        timestamp: DateTime<Utc>,
    ) -> String {
        expect(
            self.shared
                .seed_audit_log(workspace_id, activity_type, timestamp),
        )
    }

    /// Links a sub workspace to an admin workspace with `status` `pending`, `accepted` or
    /// `rejected`; returns the group member id. Only `accepted` enables `x-as-workspace`.
    pub fn seed_group_member(
        &self,
        admin_workspace_id: &str,
        sub_workspace_id: &str,
        status: &str,
    ) -> String {
        expect(
            self.shared
                .seed_group_member(admin_workspace_id, sub_workspace_id, status),
        )
    }

    /// Changes a group record's status (what the sub workspace owner does in the app).
    /// Panics on an unknown id or status.
    pub fn set_group_status(&self, group_member_id: &str, status: &str) {
        expect(self.shared.set_group_status(group_member_id, status));
    }

    /// Paid or not; an unpaid workspace answers every call with 402.
    pub fn set_paid(&self, workspace_id: &str, paid: bool) {
        lock(&*expect(self.shared.ws_or_err(workspace_id))).paid = paid;
    }

    /// Replaces latency, fail/drop rates and the 429 burst; the burst period starts now.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// Fraction (0..=1) of `/api/v2` requests answered with an HTML 502 "from a proxy".
    pub fn set_proxy_502_rate(&self, rate: f64) {
        self.shared.update_runtime(|r| r.proxy_502_rate = rate);
    }

    /// Per-workspace limits (`0` disables one).
    pub fn set_limits(&self, rps: u32, rpm: u32) {
        self.shared.update_runtime(|r| {
            r.rps = rps;
            r.rpm = rpm;
        });
    }

    /// Outage: while `true`, every `/api/v2` request has its connection closed with no response
    /// (state and port are kept; `/_sim/` stays reachable).
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::Relaxed);
    }

    /// Snapshot of one workspace (never contains a secret).
    pub fn workspace(&self, workspace_id: &str) -> Option<WorkspaceState> {
        self.shared.snapshot(workspace_id)
    }

    /// All workspace ids in creation order.
    pub fn workspace_ids(&self) -> Vec<String> {
        lock(&self.shared.workspace_order).clone()
    }

    /// Every `/api/v2` request since the last clear, in arrival order.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.request_log()
    }

    /// Counters of one workspace (zero for an unknown one).
    pub fn counters(&self, workspace_id: &str) -> Counters {
        self.shared.counters(workspace_id)
    }

    /// Counters summed over every workspace.
    pub fn total_counters(&self) -> Counters {
        self.shared.total_counters()
    }

    /// Empties the request log (counters are kept).
    pub fn clear_request_log(&self) {
        lock(&self.shared.log).clear();
    }

    /// Creates `n` sample workspaces (members, campaigns, accounts, tags, a few over-privileged
    /// keys) and returns each one's id with an `all:all` key.
    pub fn seed_demo(&self, n: usize) -> Vec<DemoWorkspace> {
        demo::seed(&self.shared, n)
    }
}
