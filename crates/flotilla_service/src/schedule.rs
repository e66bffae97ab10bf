//! The inventory schedule: every `FLOTILLA_SYNC_INTERVAL_SECONDS`, start an `inventory.sync`
//! over every workspace unless one is already pending or running.
//!
//! Every engine process runs this loop. Duplicates across replicas are impossible rather than
//! unlikely: each interval slot (`unix seconds / interval`) has one idempotency key,
//! `schedule:inventory.sync:<slot>`, and `operation.idempotency_key` is unique, so when two
//! replicas pass the "none in progress" check together only one insert succeeds. Operator keys
//! are namespaced by operator id (`<uuid>:<key>`), so they can never collide with these.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::engine::kinds::inventory::NAME;
use crate::inventory::Inventory;
use crate::store::{NewOperation, Store, now_ms};

/// What one tick of the schedule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// Created this operation.
    Created(Uuid),
    /// An `inventory.sync` is pending or running already.
    InProgress,
    /// This slot's operation exists already (another replica, or an earlier tick, made it).
    SlotTaken,
    /// There is no workspace to sync.
    NoWorkspaces,
}

/// The idempotency key of an interval slot.
pub fn slot_key(interval_seconds: u64, now_ms: i64) -> String {
    let slot = (now_ms.max(0) as u64 / 1000) / interval_seconds.max(1);
    format!("schedule:{NAME}:{slot}")
}

/// One tick: creates the slot's `inventory.sync` (created_by = null) unless one is in progress.
pub async fn tick(store: &Store, interval_seconds: u64, now: i64) -> Result<Tick, sqlx::Error> {
    let inventory = Inventory::new(store.db().clone());
    if inventory.sync_in_progress().await? {
        return Ok(Tick::InProgress);
    }
    let key = slot_key(interval_seconds, now);
    if store.operation_by_idempotency_key(&key).await?.is_some() {
        return Ok(Tick::SlotTaken);
    }
    let workspace_ids: Vec<Uuid> = store
        .all_workspace_labels()
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if workspace_ids.is_empty() {
        return Ok(Tick::NoWorkspaces);
    }
    let new = NewOperation {
        kind: NAME.to_string(),
        params: json!({}),
        targets: json!({ "all": true }),
        dry_run: false,
        max_concurrency: None,
        failure_tolerance: None,
        idempotency_key: Some(key),
        request_hash: None,
        retry_of: None,
        created_by: None,
        workspace_ids,
    };
    match store.insert_operation(&new).await {
        Ok(id) => Ok(Tick::Created(id)),
        // Another replica inserted this slot's operation between our check and our insert.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Tick::SlotTaken),
        Err(e) => Err(e),
    }
}

/// Runs the schedule until `shutdown` (returns at once when `interval_seconds` is 0).
pub async fn run(
    store: Store,
    interval_seconds: u64,
    notify: Arc<Notify>,
    shutdown: CancellationToken,
) {
    if interval_seconds == 0 {
        return;
    }
    tracing::info!(interval_seconds, "inventory schedule started");
    let mut every = tokio::time::interval(Duration::from_secs(interval_seconds));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match tick(&store, interval_seconds, now_ms()).await {
            Ok(Tick::Created(id)) => {
                tracing::info!(operation.id = %id, "scheduled inventory.sync created");
                notify.notify_one();
            }
            Ok(other) => tracing::debug!(outcome = ?other, "inventory schedule tick"),
            Err(err) => {
                tracing::warn!(error = %err, "inventory schedule tick failed; will try next interval")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_whole_intervals() {
        assert_eq!(slot_key(60, 0), "schedule:inventory.sync:0");
        assert_eq!(slot_key(60, 59_999), "schedule:inventory.sync:0");
        assert_eq!(slot_key(60, 60_000), "schedule:inventory.sync:1");
        assert_eq!(slot_key(0, 5_000), "schedule:inventory.sync:5");
    }
}
