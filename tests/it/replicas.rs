//! Several `flotilla serve` replicas on one Postgres database share the work of two operations
//! over the same workspaces: no workspace is touched by two targets at once (across replicas
//! and operations), more than one replica works, and when one replica is killed with SIGKILL
//! the others reclaim its leases and finish, every change made exactly once. Postgres only:
//! SQLite is for one process.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flotilla_instantly_sim::RequestRecord;
use flotilla_vault::Backend;
use serde_json::json;
use sqlx::Row;

use crate::crash::{ProcessFixture, invites_per_email};
use crate::support::*;

const WORKSPACES: usize = 40;
const LABELS: [&str; 2] = ["Team-East", "Team-West"];
const EMAILS: [&str; 2] = ["ana@agency.example", "ben@agency.example"];

/// The replica id in a `flotilla/<ver> (<replica id>)` User-Agent.
fn replica_of(r: &RequestRecord) -> Option<String> {
    let ua = r.user_agent.as_deref()?;
    let inner = ua
        .strip_prefix("flotilla/")?
        .split_once(" (")?
        .1
        .strip_suffix(')')?;
    Some(inner.to_string())
}

/// Which operation a request belongs to, by the endpoint family it calls.
fn family(r: &RequestRecord) -> Option<&'static str> {
    if r.path.starts_with("/api/v2/custom-tags") {
        Some("tags")
    } else if r.path.starts_with("/api/v2/workspace-members") {
        Some("members")
    } else {
        None
    }
}

/// A request's [started_at, finished_at].
type Span = (DateTime<Utc>, DateTime<Utc>);

fn overlaps(a: Span, b: Span) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_operations_and_survive_a_sigkill() {
    let fx = ProcessFixture::start(Backend::Postgres, 15).await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let id = format!("replica-{i}");
        let extra = [
            ("FLOTILLA_REPLICA_ID", id.as_str()),
            ("FLOTILLA_MAX_IN_FLIGHT", "4"),
        ];
        replicas.push(fx.serve_in(dir.path(), &extra).await);
    }
    let api_url = replicas[1].url.clone();
    let sim_ids: Vec<String> = fx
        .register_many(&api_url, WORKSPACES, "client", &["fleet"])
        .await
        .into_iter()
        .map(|(_, ws, _)| ws)
        .collect();
    let (sim, test_db) = (&fx.sim, &fx.test_db);
    sim.clear_request_log();

    // Two operations over the same workspaces at once: the per-workspace lane must serialise them.
    let mut ops = Vec::new();
    for body in [
        json!({ "kind": "tags.create", "targets": { "labels": ["fleet"] }, "params": { "labels": LABELS } }),
        json!({ "kind": "members.invite", "targets": { "labels": ["fleet"] }, "params": { "emails": EMAILS, "role": "editor" } }),
    ] {
        ops.push(fx.start_op(&api_url, body).await);
    }

    // Kill replica-0 without warning while it holds leases, part of the way through.
    let running_under = |owner: &'static str| {
        let pool = test_db.db().pool().clone();
        async move {
            sqlx::query(
                "select count(*) as n from target where state = 'running' and lease_owner = $1",
            )
            .bind(owner)
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get::<i64, _>("n")
            .unwrap()
        }
    };
    loop {
        let done = fx.targets_in("succeeded").await;
        if done >= (WORKSPACES as i64) / 2 && running_under("replica-0").await > 0 {
            break;
        }
        assert!(
            done < 2 * WORKSPACES as i64,
            "finished before replica-0 could be killed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut killed = replicas.remove(0);
    killed.kill().await;
    let orphaned: Vec<(String, String)> = sqlx::query(
        "select operation_id, workspace_id from target where state = 'running' and lease_owner = 'replica-0'",
    )
    .fetch_all(test_db.db().pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.try_get(0).unwrap(), r.try_get(1).unwrap()))
    .collect();
    assert!(!orphaned.is_empty(), "replica-0 died holding leases");

    for id in &ops {
        let op = fx.wait_done(&api_url, *id, Duration::from_secs(180)).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(op["counts"]["succeeded"], WORKSPACES as i64, "{op}");
    }
    // The survivors reclaimed every lease replica-0 held and finished those targets.
    for (op, ws) in &orphaned {
        let row = sqlx::query(
            "select state, attempts from target where operation_id = $1 and workspace_id = $2",
        )
        .bind(op)
        .bind(ws)
        .fetch_one(test_db.db().pool())
        .await
        .unwrap();
        assert_eq!(row.try_get::<String, _>(0).unwrap(), "succeeded");
        assert!(
            row.try_get::<i64, _>(1).unwrap() >= 2,
            "reclaimed after replica-0's lease expired"
        );
    }

    let log = sim.request_log();
    // Every engine request names its replica.
    let engine: Vec<&RequestRecord> = log.iter().filter(|r| family(r).is_some()).collect();
    assert!(
        engine.iter().all(|r| replica_of(r).is_some()),
        "every engine request carries its replica id"
    );
    let workers: BTreeSet<String> = engine.iter().filter_map(|r| replica_of(r)).collect();
    assert!(
        workers.len() >= 2,
        "more than one replica did work: {workers:?}"
    );
    assert!(
        workers.contains("replica-0"),
        "the killed replica had done work: {workers:?}"
    );

    // Per workspace: requests from different replicas, or for different operations, never
    // overlap in time.
    let mut per_ws: BTreeMap<String, Vec<(String, &'static str, Span)>> = BTreeMap::new();
    for r in &engine {
        let ws = r.workspace_id.clone().expect("workspace of request");
        per_ws.entry(ws).or_default().push((
            replica_of(r).unwrap(),
            family(r).unwrap(),
            (r.started_at, r.finished_at),
        ));
    }
    assert_eq!(per_ws.len(), WORKSPACES);
    for (ws, reqs) in &per_ws {
        for (i, a) in reqs.iter().enumerate() {
            for b in &reqs[i + 1..] {
                if a.0 != b.0 || a.1 != b.1 {
                    assert!(!overlaps(a.2, b.2), "{ws}: {a:?} overlaps {b:?}");
                }
            }
        }
    }

    // Final state: every change exactly once.
    let mut tag_posts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in log
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v2/custom-tags" && r.status == 200)
    {
        let label = r
            .body
            .as_ref()
            .and_then(|b| b["label"].as_str())
            .unwrap_or_default()
            .to_string();
        *tag_posts
            .entry((r.workspace_id.clone().unwrap_or_default(), label))
            .or_default() += 1;
    }
    assert_eq!(tag_posts.len(), WORKSPACES * LABELS.len());
    assert!(
        tag_posts.values().all(|n| *n == 1),
        "every tag created exactly once: {tag_posts:?}"
    );
    let invites = invites_per_email(sim);
    assert_eq!(invites.len(), WORKSPACES * EMAILS.len());
    assert!(
        invites.values().all(|n| *n == 1),
        "every email invited exactly once: {invites:?}"
    );
    for ws in &sim_ids {
        let state = sim.workspace(ws).unwrap();
        for label in LABELS {
            assert_eq!(
                state.tags.iter().filter(|t| t.label == label).count(),
                1,
                "{ws}: {label}"
            );
        }
        let members = sim_members(sim, ws);
        assert_eq!(members.len(), 3, "{ws}: {members:?}");
    }
    drop(replicas);
    fx.test_db.cleanup().await;
}
