//! Fault soak: 300 workspaces behind a slow, flaky, rate-limiting Instantly, then a 20-second
//! outage in the middle of an operation. Every target succeeds and every change is made exactly
//! once (simulator state and request log); retries show in `/metrics`.

use std::collections::BTreeMap;
use std::time::Duration;

use flotilla_instantly_sim::{Burst, Faults, SimConfig};
use serde_json::json;

use crate::both;
use crate::support::*;

const N: usize = 300;

both!(
    three_hundred_workspaces_through_faults_and_an_outage,
    |backend| {
        let app = TestApp::start_with(
            backend,
            SimConfig {
                seed: 7,
                ..SimConfig::default()
            },
            |c| {
                c.max_in_flight = 64;
                c.target_attempts = 12;
                c.retry_base_ms = 500;
                c.retry_max_ms = 5_000;
            },
        )
        .await;
        let mut workspaces = Vec::new();
        for i in 0..N {
            workspaces.push(app.register(&format!("soak-{i}"), &["soak"]).await.1);
        }
        app.sim.set_faults(Faults {
            latency: Duration::from_millis(100),
            fail_rate: 0.05,
            drop_rate: 0.02,
            burst: Some(Burst {
                every: Duration::from_secs(3),
                duration: Duration::from_millis(300),
            }),
        });
        app.sim.clear_request_log();

        let emails = ["ana@agency.example", "ben@agency.example"];
        let id = app
        .start_op(json!({ "kind": "members.invite", "targets": { "labels": ["soak"] }, "params": { "emails": emails, "role": "view" } }))
        .await;
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(op["counts"]["succeeded"], N);
        let mut applied: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in app.sim.request_log() {
            if r.method == "POST" && r.path == "/api/v2/workspace-members" && r.status == 200 {
                let email = r
                    .body
                    .as_ref()
                    .and_then(|b| b["email"].as_str())
                    .unwrap_or_default()
                    .to_string();
                *applied
                    .entry((r.workspace_id.clone().unwrap_or_default(), email))
                    .or_default() += 1;
            }
        }
        assert_eq!(applied.len(), N * 2);
        assert!(
            applied.values().all(|n| *n == 1),
            "each invite applied exactly once"
        );
        for ws in &workspaces {
            assert_eq!(sim_members(&app.sim, ws).len(), 3, "{ws}");
        }
        let injected: u64 = workspaces
            .iter()
            .map(|w| app.sim.counters(w).injected_errors + app.sim.counters(w).dropped)
            .sum();
        assert!(injected > 0, "the soak injected faults");
        let metrics = app
            .http
            .get(format!("{}/metrics", app.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("flotilla_instantly_retries_total"),
            "retries are visible in /metrics"
        );

        // An outage of 20 s in the middle of the next operation: targets back off and resume.
        app.sim.set_faults(Faults {
            latency: Duration::from_millis(100),
            ..Faults::default()
        });
        let id = app
        .start_op(json!({ "kind": "members.set_role", "targets": { "labels": ["soak"] }, "params": { "emails": emails, "role": "editor" } }))
        .await;
        loop {
            let (_, op) = app.get(&format!("/v1/operations/{id}")).await;
            if op["counts"]["succeeded"].as_i64().unwrap_or(0) >= 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.sim.set_down(true);
        tokio::time::sleep(Duration::from_secs(20)).await;
        app.sim.set_down(false);
        let op = app.wait_done(id).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(op["counts"]["succeeded"], N);
        let retried = app
            .targets(id)
            .await
            .iter()
            .filter(|t| t["attempts"].as_i64().unwrap_or(0) > 1)
            .count();
        assert!(retried > 0, "the outage made targets retry");
        for ws in &workspaces {
            let members = sim_members(&app.sim, ws);
            for email in emails {
                assert!(
                    members.contains(&(email.to_string(), "editor".to_string())),
                    "{ws}: {members:?}"
                );
            }
        }
        app.stop().await;
    }
);
