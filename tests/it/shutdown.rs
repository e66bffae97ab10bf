//! Graceful shutdown of the real `flotilla serve`: SIGTERM mid-operation (with a client
//! following its events) stops claiming, drains in-flight targets, gives back the leases of any
//! left, and exits 0. A restart finishes the operation with every change made exactly once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::both;
use crate::crash::{ProcessFixture, invites_per_email};
use crate::support::*;

both!(sigterm_drains_releases_leases_and_exits_zero, |backend| {
    // Latency keeps targets in flight when the signal arrives.
    let fx = ProcessFixture::start(backend, 40).await;
    let mut first = fx
        .serve(&[
            ("FLOTILLA_MAX_IN_FLIGHT", "4"),
            ("FLOTILLA_SHUTDOWN_GRACE_SECONDS", "3"),
        ])
        .await;
    let sim_ids: Vec<String> = fx
        .register_many(&first.url, 40, "client", &["drain"])
        .await
        .into_iter()
        .map(|(_, ws, _)| ws)
        .collect();
    let (sim, http) = (&fx.sim, &fx.http);
    let id = fx.start_op(&first.url, json!({
            "kind": "members.invite", "targets": { "labels": ["drain"] },
            "params": { "emails": ["ana@agency.example", "ben@agency.example"], "role": "editor" },
        })).await;

    // Wait until work is under way, then ask politely.
    fx.wait_succeeded(&first.url, id, 4).await;
    // A client following the events keeps a connection open that would never end by itself.
    let events = http
        .get(format!("{}/v1/operations/{id}/events", first.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let pid = first.child.id().expect("pid").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    // A liveness bound, not a timing assert: a hung shutdown fails here instead of hanging CI.
    let status = tokio::time::timeout(Duration::from_secs(90), first.child.wait())
        .await
        .expect("flotilla serve exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    drop(events);

    // Nothing is left claimed: finished targets are recorded, the rest are pending again.
    assert_eq!(
        fx.targets_in("running").await,
        0,
        "no target left running after a graceful shutdown"
    );
    let done = fx.targets_in("succeeded").await;
    assert!(done >= 4, "{done} targets were recorded before the exit");
    let pending = fx.targets_in("pending").await;
    // With 4 in flight and claiming stopped at the signal, most targets were never started.
    assert!(pending > 0, "the shutdown stopped claiming ({done} done)");
    assert_eq!(
        done + pending,
        40,
        "every target is either recorded or claimable again"
    );

    // A restart finishes the rest, each invite sent once.
    let second = fx.serve(&[]).await;
    let op = fx
        .wait_done(&second.url, id, Duration::from_secs(120))
        .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["counts"]["succeeded"], 40);
    for ws in &sim_ids {
        assert_eq!(sim_members(sim, ws).len(), 3, "{ws}");
    }
    let invites = invites_per_email(sim);
    assert_eq!(invites.len(), 80);
    assert!(invites.values().all(|n| *n == 1), "{invites:?}");
    drop(second);
    fx.test_db.cleanup().await;
});
