//! The fan-out engine: claims targets under leases, runs each through its kind (read, diff,
//! write, verify), records the result, retries transient failures with backoff, and applies the
//! failure tolerance. Any number of engine processes may share one Postgres database.

pub mod kinds;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_instantly::{Client, ClientConfig, Pacer, Pacing, RateLimits};
use flotilla_vault::{Credential, Vault, VaultError};
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;
use crate::store::{Claim, Finish, OperationRow, Store, WorkspaceRow, now_ms, state};

/// One per-item change a target made (or, in a dry run, would make).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Change {
    /// The item: an email, a key name, a tag label, a campaign id…
    pub item: String,
    /// What happened: `invited`, `already_member`, `would_invite`, `failed`, …
    pub action: String,
    /// More detail, e.g. the role or Instantly's refusal message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Change {
    /// A change without detail.
    pub fn new(item: impl Into<String>, action: impl Into<String>) -> Change {
        Change {
            item: item.into(),
            action: action.into(),
            detail: None,
        }
    }

    /// Adds detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Change {
        self.detail = Some(detail.into());
        self
    }

    /// The dry-run form: `invited` → `would_invite`.
    pub fn planned(mut self) -> Change {
        self.action = format!("would_{}", planned_verb(&self.action));
        self
    }

    /// This item failed with `err`.
    pub fn failed(mut self, err: &TargetError) -> Change {
        self.detail = Some(format!("{}: {}", err.code, err.message));
        self.action = "failed".into();
        self
    }
}

/// The verb a dry run records for an action: `invited` → `invite` (so `would_invite`).
fn planned_verb(action: &str) -> String {
    let verb = match action {
        "invited" => "invite",
        "role_changed" => "change_role",
        "removed" => "remove",
        "created" => "create",
        "recreated" => "recreate",
        "revoked" => "revoke",
        "assigned" => "assign",
        "unassigned" => "unassign",
        "paused" => "pause",
        "activated" => "activate",
        "rotated" => "rotate",
        "synced" => "sync",
        other => other,
    };
    verb.to_string()
}

/// A target's successful result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Per-item changes.
    pub changes: Vec<Change>,
    /// `applied`, `no_changes`, `dry_run`.
    pub code: &'static str,
    /// `succeeded` or `skipped`.
    pub state: &'static str,
}

impl Outcome {
    /// A succeeded outcome.
    pub fn new(changes: Vec<Change>, code: &'static str) -> Outcome {
        Outcome {
            changes,
            code,
            state: state::SUCCEEDED,
        }
    }

    fn summary(&self) -> String {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for c in &self.changes {
            match counts.iter_mut().find(|(a, _)| *a == c.action) {
                Some((_, n)) => *n += 1,
                None => counts.push((c.action.clone(), 1)),
            }
        }
        if counts.is_empty() {
            return "nothing to do".into();
        }
        counts
            .iter()
            .map(|(a, n)| format!("{a}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Why a target attempt did not succeed.
#[derive(Debug, Clone)]
pub struct TargetError {
    /// Stable code, e.g. `instantly_forbidden`.
    pub code: String,
    /// Human message (for a 403: the scope needed).
    pub message: String,
    /// Worth another attempt later.
    pub transient: bool,
    /// Concerns the whole workspace (a bad credential), not one item.
    pub whole_target: bool,
    /// Changes made before the error.
    pub changes: Vec<Change>,
}

impl TargetError {
    /// A permanent error.
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> TargetError {
        TargetError {
            code: code.into(),
            message: message.into(),
            transient: false,
            whole_target: false,
            changes: Vec::new(),
        }
    }

    /// A transient error.
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> TargetError {
        TargetError {
            transient: true,
            ..TargetError::permanent(code, message)
        }
    }

    /// Attaches the changes made so far.
    pub fn with_changes(mut self, changes: Vec<Change>) -> TargetError {
        self.changes = changes;
        self
    }
}

impl From<flotilla_instantly::Error> for TargetError {
    fn from(err: flotilla_instantly::Error) -> TargetError {
        use flotilla_instantly::ErrorKind as K;
        let instantly = err.message();
        let (code, whole, transient) = match err.kind() {
            K::Unauthorized => ("instantly_unauthorized", true, false),
            K::Forbidden => ("instantly_forbidden", true, false),
            K::PaymentRequired => ("instantly_payment_required", true, false),
            K::NotFound => ("instantly_not_found", false, false),
            K::InvalidRequest => ("instantly_invalid_request", false, false),
            K::Conflict => ("instantly_conflict", false, false),
            K::RateLimited => ("instantly_rate_limited", true, true),
            K::Server => ("instantly_server_error", true, true),
            K::Transport | K::Timeout => ("instantly_unreachable", true, true),
            K::Decode => ("instantly_bad_response", true, true),
        };
        let message = match err.required_scope() {
            Some(scope) => format!(
                "the stored API key lacks the scope {scope} needed by {}",
                err.endpoint()
            ),
            None => format!("{} answered: {instantly}", err.endpoint()),
        };
        TargetError {
            code: code.into(),
            message,
            transient,
            whole_target: whole,
            changes: Vec::new(),
        }
    }
}

/// Everything a kind needs to act on one workspace.
pub struct TargetCtx {
    /// Client bound to the workspace's credential, paced per workspace.
    pub client: Client,
    /// The workspace.
    pub workspace: WorkspaceRow,
    /// The operation.
    pub operation: Arc<OperationRow>,
    /// Concurrent writes allowed inside this target.
    pub item_concurrency: usize,
    /// The vault (for kinds that store keys).
    pub vault: Vault,
    /// The store (for checkpoints).
    pub store: Store,
    /// The claim this attempt runs under.
    pub claim: Claim,
    /// Progress saved by an earlier attempt.
    pub checkpoint: Option<Value>,
}

/// What the engine loaded for a claim together with the rest of its batch (two queries per
/// batch instead of two per target).
struct Preloaded {
    /// `None`: the workspace was removed.
    workspace: Option<WorkspaceRow>,
    credential: Result<Credential, VaultError>,
}

/// One finished attempt waiting for the group commit, and where to send whether it was written.
type FinishRequest = (
    Claim,
    Finish,
    oneshot::Sender<Result<bool, Arc<sqlx::Error>>>,
);

/// The engine of one process.
pub struct Engine {
    store: Store,
    vault: Vault,
    config: Arc<Config>,
    http: reqwest::Client,
    pacer: Pacer,
    owner: String,
    notify: Arc<Notify>,
    operations: Mutex<HashMap<Uuid, Arc<OperationRow>>>,
}

impl Engine {
    /// Builds an engine; `notify` wakes it when this process creates an operation.
    pub fn new(
        store: Store,
        vault: Vault,
        config: Arc<Config>,
        http: reqwest::Client,
        notify: Arc<Notify>,
    ) -> Engine {
        let pacer = Pacer::new(RateLimits {
            per_second: config.pace_per_second,
            per_minute: config.pace_per_minute,
            burst: config.pace_burst,
        });
        let owner = config.replica_id();
        Engine {
            store,
            vault,
            config,
            http,
            pacer,
            owner,
            notify,
            operations: Mutex::new(HashMap::new()),
        }
    }

    /// This engine's lease-owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs until `shutdown` fires; then stops claiming, lets in-flight targets finish within the
    /// configured grace, and gives back (releases) the leases of those that did not.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.max_in_flight.max(1)));
        let hard_stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let lease_ms = self.config.lease().as_millis() as i64;
        tracing::info!(replica = %self.owner, "engine started");
        let (finisher, finish_queue) = mpsc::unbounded_channel();
        tokio::spawn(finish_writer(self.store.clone(), finish_queue));
        // Keys staged by imports whose rows ended while no engine ran (cancelled, crashed).
        if let Err(err) = kinds::import::sweep_staged(&self.store).await {
            tracing::warn!(error = %err, "sweeping staged import keys failed");
        }
        let mut pruned_at = std::time::Instant::now();
        while !shutdown.is_cancelled() {
            while tasks.try_join_next().is_some() {}
            if pruned_at.elapsed() >= Duration::from_secs(5) {
                // Housekeeping. Idle workspaces' pacing buckets are full again: forget them, so
                // the pacer holds the workspaces in use, not every workspace ever called.
                self.pacer.retain_recent();
                pruned_at = std::time::Instant::now();
                // A finalization lost to a database error would leave its operation `running`
                // for ever; any replica's sweep writes it.
                match self.store.finalize_stranded().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(operations = n, "finalized operations left open"),
                    Err(err) => tracing::warn!(error = %err, "sweeping open operations failed"),
                }
            }
            let free = permits.available_permits();
            let mut claimed = 0;
            if free > 0 {
                match self
                    .store
                    .claim(
                        &self.owner,
                        free,
                        lease_ms,
                        self.config.target_attempts as i64,
                    )
                    .await
                {
                    Ok((claims, exhausted_ops)) => {
                        claimed = claims.len();
                        for op in exhausted_ops {
                            metrics::counter!("flotilla_lease_reclaims_total").increment(1);
                            let _ = self.store.finalize_if_done(op).await;
                        }
                        let mut preloaded = self.preload(&claims).await;
                        for claim in claims {
                            let preloaded = preloaded.remove(&claim.workspace_id);
                            if claim.reclaimed {
                                metrics::counter!("flotilla_lease_reclaims_total").increment(1);
                            }
                            let permit = permits
                                .clone()
                                .acquire_owned()
                                .await
                                .expect("semaphore open");
                            let engine = self.clone();
                            let stop = hard_stop.clone();
                            let finisher = finisher.clone();
                            tasks.spawn(async move {
                                engine.run_claim(claim, preloaded, &finisher, stop).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "claiming targets failed; will retry"),
                }
            }
            if claimed > 0 && claimed == free {
                // Saturated. Claim again once a batch of slots is free (or a poll interval has
                // passed with at least one free): one claim transaction per finished target
                // would make the claim loop, not Instantly, the bottleneck.
                let batch = (self.config.max_in_flight / 8).max(1);
                let deadline = tokio::time::sleep(Duration::from_millis(self.config.poll_ms));
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        Some(_) = tasks.join_next() => {
                            if permits.available_permits() >= batch {
                                break;
                            }
                        }
                        _ = &mut deadline => {
                            if permits.available_permits() > 0 {
                                break;
                            }
                        }
                        _ = shutdown.cancelled() => break,
                    }
                }
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(self.config.poll_ms)) => {}
                _ = self.notify.notified() => {}
                _ = shutdown.cancelled() => {}
            }
        }
        tracing::info!(in_flight = tasks.len(), "engine stopping: no new claims");
        let grace = Duration::from_secs(self.config.shutdown_grace_seconds);
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            hard_stop.cancel();
            while tasks.join_next().await.is_some() {}
        }
        tracing::info!("engine stopped");
    }

    async fn operation(&self, id: Uuid) -> Result<Option<Arc<OperationRow>>, sqlx::Error> {
        if let Some(op) = self.operations.lock().expect("lock").get(&id) {
            return Ok(Some(op.clone()));
        }
        let Some(op) = self.store.operation(id).await? else {
            return Ok(None);
        };
        let op = Arc::new(op);
        let mut cache = self.operations.lock().expect("lock");
        if cache.len() > 1024 {
            cache.clear();
        }
        cache.insert(id, op.clone());
        Ok(Some(op))
    }

    /// Loads the workspaces and credentials of a claim batch. On a database error the targets
    /// read their own (the error will show there if it persists).
    async fn preload(&self, claims: &[Claim]) -> HashMap<Uuid, Preloaded> {
        let ids: Vec<Uuid> = claims.iter().map(|c| c.workspace_id).collect();
        let loaded = async {
            let workspaces = self
                .store
                .workspaces_in(&ids)
                .await
                .map_err(|e| e.to_string())?;
            let credentials = self
                .vault
                .access_credentials(&ids)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((workspaces, credentials))
        };
        let (mut workspaces, mut credentials) = match loaded.await {
            Ok(loaded) => loaded,
            Err(err) => {
                tracing::warn!(error = %err, "loading a claim batch failed; targets read their own");
                return HashMap::new();
            }
        };
        ids.iter()
            .filter_map(|id| {
                let credential = credentials.remove(id)?;
                let workspace = workspaces.remove(id);
                Some((
                    *id,
                    Preloaded {
                        workspace,
                        credential,
                    },
                ))
            })
            .collect()
    }

    async fn run_claim(
        self: Arc<Self>,
        claim: Claim,
        preloaded: Option<Preloaded>,
        finisher: &mpsc::UnboundedSender<FinishRequest>,
        hard_stop: CancellationToken,
    ) {
        let started = std::time::Instant::now();
        let lost = CancellationToken::new();
        // The heartbeat is stopped between beats, never aborted: aborting it inside its write
        // transaction would leave that SQLite connection holding the write lock in the pool.
        let stop_beating = CancellationToken::new();
        let heartbeat = {
            let store = self.store.clone();
            let claim = claim.clone();
            let lost = lost.clone();
            let stop = stop_beating.clone();
            let lease = self.config.lease();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(lease / 3);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.cancelled() => return,
                    }
                    match store.heartbeat(&claim, lease.as_millis() as i64).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(operation.id = %claim.operation_id, workspace.id = %claim.workspace_id, "lease lost");
                            lost.cancel();
                            return;
                        }
                        Err(err) => tracing::warn!(error = %err, "heartbeat failed"),
                    }
                }
            })
        };
        let result = tokio::select! {
            r = self.execute(&claim, preloaded) => Some(r),
            _ = lost.cancelled() => None,
            _ = hard_stop.cancelled() => {
                if let Err(err) = self.store.release(&claim).await {
                    tracing::warn!(error = %err, "releasing a lease at shutdown failed; it will expire");
                }
                stop_beating.cancel();
                let _ = heartbeat.await;
                return;
            }
        };
        stop_beating.cancel();
        let _ = heartbeat.await;
        let Some(result) = result else { return };
        if let Err(err) = self.record(&claim, result, finisher).await {
            tracing::error!(error = %err, operation.id = %claim.operation_id, workspace.id = %claim.workspace_id,
                "recording a target result failed; its lease will expire and it will run again");
        }
        metrics::histogram!("flotilla_target_seconds").record(started.elapsed().as_secs_f64());
    }

    async fn execute(
        &self,
        claim: &Claim,
        preloaded: Option<Preloaded>,
    ) -> Result<Outcome, TargetError> {
        let internal = |e: sqlx::Error| TargetError::transient("database_error", e.to_string());
        let Some(op) = self.operation(claim.operation_id).await.map_err(internal)? else {
            return Err(TargetError::permanent(
                "operation_missing",
                "the operation no longer exists",
            ));
        };
        let Some(runner) = kinds::runner(&op.kind) else {
            return Err(TargetError::permanent(
                "unknown_kind",
                format!("this build does not know {}", op.kind),
            ));
        };
        if op.kind == kinds::import::NAME {
            // An import target's workspace id is pre-allocated: the workspace is what the target
            // creates, so it cannot be looked up (and is not `workspace_removed`) beforehand.
            return kinds::import::run_target(self, claim, &op).await;
        }
        let (workspace, credential) = match preloaded {
            Some(Preloaded {
                workspace,
                credential,
            }) => (workspace, Some(credential)),
            None => {
                let workspace = self
                    .store
                    .workspace(claim.workspace_id, None)
                    .await
                    .map_err(internal)?;
                (workspace, None)
            }
        };
        let Some(workspace) = workspace else {
            return Ok(Outcome {
                changes: Vec::new(),
                code: "workspace_removed",
                state: state::SKIPPED,
            });
        };
        let credential = match credential {
            Some(credential) => credential,
            None => self.vault.access_credential(workspace.id).await,
        };
        let client = self.client_with(&workspace, credential)?;
        let checkpoint = claim.checkpoint.clone();
        let ctx = TargetCtx {
            client,
            workspace,
            operation: op.clone(),
            item_concurrency: self.config.item_concurrency,
            vault: self.vault.clone(),
            store: self.store.clone(),
            claim: claim.clone(),
            checkpoint,
        };
        runner.run(&ctx, &op.params, op.dry_run).await
    }

    /// A client acting on `workspace` with its stored credential (as read from the vault), paced on its Instantly
    /// workspace and, for delegated workspaces, also on the admin credential.
    fn client_with(
        &self,
        workspace: &WorkspaceRow,
        credential: Result<Credential, VaultError>,
    ) -> Result<Client, TargetError> {
        let credential = credential.map_err(|e| match e {
            flotilla_vault::VaultError::NotFound { .. } => TargetError::permanent(
                "no_credential",
                "no credential is stored for this workspace",
            ),
            other => TargetError::permanent("credential_unavailable", other.to_string()),
        })?;
        let mut keys = vec![format!("ws:{}", workspace.instantly_workspace_id)];
        if credential.as_workspace.is_some()
            && self.config.pace_admin_credential
            && let Some(admin) = credential.admin_workspace_id
        {
            keys.push(format!("admin:{admin}"));
        }
        let mut config =
            ClientConfig::new(self.config.instantly_base_url.clone(), credential.secret);
        config.as_workspace = credential.as_workspace;
        config.user_agent = format!("flotilla/{} ({})", env!("CARGO_PKG_VERSION"), self.owner);
        config.pacing = Some(Pacing {
            pacer: self.pacer.clone(),
            keys,
        });
        Client::with_http(config, self.http.clone())
            .map_err(|e| TargetError::permanent("client_error", e.to_string()))
    }

    /// Records an attempt's result. Finishes go through the group-commit writer, which
    /// finalizes the operations of what it wrote, except after a failure: the tolerance is
    /// checked first, then the operation is finalized here.
    async fn record(
        &self,
        claim: &Claim,
        result: Result<Outcome, TargetError>,
        finisher: &mpsc::UnboundedSender<FinishRequest>,
    ) -> Result<(), Arc<sqlx::Error>> {
        let finish = |finish: Finish| async move {
            let (reply, answer) = oneshot::channel();
            finisher
                .send((claim.clone(), finish, reply))
                .map_err(|_| Arc::new(sqlx::Error::PoolClosed))?;
            answer
                .await
                .unwrap_or_else(|_| Err(Arc::new(sqlx::Error::PoolClosed)))
        };
        let op_id = claim.operation_id;
        match result {
            Ok(outcome) => {
                let finish_row = Finish {
                    state: outcome.state,
                    code: outcome.code.to_string(),
                    message: outcome.summary(),
                    changes: json!(outcome.changes),
                };
                finish(finish_row).await?;
                metrics::counter!("flotilla_targets_finished_total", "state" => outcome.state)
                    .increment(1);
                Ok(())
            }
            Err(err) if err.transient && claim.attempt < self.config.target_attempts as i64 => {
                let delay = backoff(
                    claim.attempt as u32,
                    self.config.retry_base_ms,
                    self.config.retry_max_ms,
                );
                tracing::info!(operation.id = %op_id, workspace.id = %claim.workspace_id, code = %err.code,
                    attempt = claim.attempt, delay_ms = delay, "target will retry");
                let message = format!(
                    "attempt {} failed ({}); retrying",
                    claim.attempt, err.message
                );
                self.store
                    .reschedule(claim, now_ms() + delay as i64, &err.code, &message)
                    .await?;
                metrics::counter!("flotilla_target_retries_total", "code" => err.code.clone())
                    .increment(1);
                Ok(())
            }
            Err(err) => {
                let message = if err.transient {
                    format!("gave up after {} attempts: {}", claim.attempt, err.message)
                } else {
                    err.message.clone()
                };
                let code = if err.transient {
                    "attempts_exhausted".to_string()
                } else {
                    err.code.clone()
                };
                tracing::warn!(operation.id = %op_id, workspace.id = %claim.workspace_id, code = %code, "target failed");
                let finish_row = Finish {
                    state: state::FAILED,
                    code,
                    message,
                    changes: json!(err.changes),
                };
                if finish(finish_row).await? {
                    metrics::counter!("flotilla_targets_finished_total", "state" => "failed")
                        .increment(1);
                    self.check_tolerance(op_id).await?;
                }
                Ok(self.store.finalize_if_done(op_id).await?)
            }
        }
    }

    async fn check_tolerance(&self, op_id: Uuid) -> Result<(), sqlx::Error> {
        let Some(op) = self.operation(op_id).await? else {
            return Ok(());
        };
        let Some(tolerance) = op.failure_tolerance.as_ref().and_then(Tolerance::from_json) else {
            return Ok(());
        };
        let failed = self.store.failed_count(op_id).await?;
        if failed > tolerance.allowed(op.total) {
            tracing::warn!(operation.id = %op_id, failed, "failure tolerance exceeded; cancelling the rest");
            self.store
                .cancel_operation(op_id, "failure_tolerance")
                .await?;
        }
        Ok(())
    }
}

/// The group commit of finished attempts: takes whatever has queued up (at most 256), writes it
/// in one transaction, answers each sender, then finalizes the operations whose targets it
/// wrote (not those with a failure in the batch: their tolerance is checked first, in
/// [`Engine::record`]). On SQLite this turns N competing write transactions, each queueing on
/// the busy timeout, into one.
async fn finish_writer(store: Store, mut queue: mpsc::UnboundedReceiver<FinishRequest>) {
    const MAX_BATCH: usize = 256;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let items: Vec<(&Claim, &Finish)> = batch.iter().map(|(c, f, _)| (c, f)).collect();
        let written = store.finish_many(&items).await.map_err(Arc::new);
        metrics::histogram!("flotilla_finish_batch_size").record(batch.len() as f64);
        let mut finalize = BTreeSet::new();
        let mut failed = BTreeSet::new();
        for (i, (claim, finish, reply)) in batch.drain(..).enumerate() {
            let answer = written.as_ref().map(|w| w[i]).map_err(Arc::clone);
            if matches!(answer, Ok(true)) {
                if finish.state == state::FAILED {
                    failed.insert(claim.operation_id);
                } else {
                    finalize.insert(claim.operation_id);
                }
            }
            let _ = reply.send(answer);
        }
        for op in finalize.difference(&failed) {
            if let Err(err) = store.finalize_if_done(*op).await {
                tracing::warn!(error = %err, operation.id = %op, "finalizing an operation failed; the housekeeping sweep retries");
            }
        }
    }
}

/// Full-jitter exponential backoff for target retries, in milliseconds.
pub fn backoff(attempt: u32, base_ms: u64, max_ms: u64) -> u64 {
    let cap = base_ms
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(max_ms)
        .max(1);
    rand::thread_rng().gen_range(cap / 2..=cap)
}

/// A failure tolerance: a count of failed targets, or a percentage of all targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// At most this many failed targets.
    Count(i64),
    /// At most this percentage of the targets.
    Percent(f64),
}

impl Tolerance {
    /// Parses `3` or `"10%"` (or `"3"`).
    pub fn from_json(value: &Value) -> Option<Tolerance> {
        match value {
            Value::Number(n) => n.as_i64().filter(|n| *n >= 0).map(Tolerance::Count),
            Value::String(s) => match s.strip_suffix('%') {
                Some(p) => p
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=100.0).contains(p))
                    .map(Tolerance::Percent),
                None => s
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .map(Tolerance::Count),
            },
            _ => None,
        }
    }

    /// Failed targets allowed out of `total`.
    pub fn allowed(&self, total: i64) -> i64 {
        match self {
            Tolerance::Count(n) => *n,
            Tolerance::Percent(p) => ((total as f64) * p / 100.0).floor() as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_parses_counts_and_percentages() {
        assert_eq!(Tolerance::from_json(&json!(3)), Some(Tolerance::Count(3)));
        assert_eq!(
            Tolerance::from_json(&json!("10%")),
            Some(Tolerance::Percent(10.0))
        );
        assert_eq!(Tolerance::from_json(&json!("2")), Some(Tolerance::Count(2)));
        assert_eq!(Tolerance::from_json(&json!(-1)), None);
        assert_eq!(Tolerance::from_json(&json!("150%")), None);
        assert_eq!(Tolerance::from_json(&json!(true)), None);
        assert_eq!(Tolerance::Percent(10.0).allowed(55), 5);
        assert_eq!(Tolerance::Count(0).allowed(55), 0);
    }

    #[test]
    fn backoff_is_capped_and_grows() {
        for attempt in 1..30 {
            let d = backoff(attempt, 1000, 60_000);
            assert!(d <= 60_000);
        }
        assert!(backoff(1, 1000, 60_000) <= 1000);
    }

    #[test]
    fn planned_verbs_read_naturally() {
        assert_eq!(Change::new("a", "invited").planned().action, "would_invite");
        assert_eq!(Change::new("a", "removed").planned().action, "would_remove");
        assert_eq!(
            Change::new("a", "role_changed").planned().action,
            "would_change_role"
        );
        assert_eq!(Change::new("a", "paused").planned().action, "would_pause");
        assert_eq!(Change::new("a", "created").planned().action, "would_create");
        assert_eq!(
            Change::new("a", "assigned").planned().action,
            "would_assign"
        );
    }
}
