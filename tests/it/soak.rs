//! Fault soak: 300 workspaces behind a slow, flaky, rate-limiting Instantly, then a 20-second
//! outage in the middle of a tag assignment. Every target succeeds and every change is made exactly
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
            let ws = app.register(&format!("soak-{i}"), &["soak"]).await.1;
            app.sim.seed_campaign(&ws, "Spring push", 1);
            app.sim.seed_campaign(&ws, "Re-engage", 2);
            workspaces.push(ws);
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

        // Tag every campaign for the team, with an outage of 20 s in the middle: targets back
        // off and resume; each workspace gets the tag once and each campaign its mapping once.
        app.sim.set_faults(Faults {
            latency: Duration::from_millis(100),
            ..Faults::default()
        });
        app.sim.clear_request_log();
        let id = app
            .start_op(json!({
                "kind": "tags.assign", "targets": { "labels": ["soak"] },
                "params": { "tag": "Team-Soak", "resource_type": "campaign", "all": true, "create": true },
            }))
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
        let tag_creates = app
            .sim
            .request_log()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/api/v2/custom-tags" && r.status == 200)
            .count();
        assert_eq!(tag_creates, N, "one tag created per workspace");
        for ws in &workspaces {
            let state = app.sim.workspace(ws).unwrap();
            let tags: Vec<_> = state
                .tags
                .iter()
                .filter(|t| t.label == "Team-Soak")
                .collect();
            assert_eq!(tags.len(), 1, "{ws}");
            let mapped: Vec<_> = state
                .tag_mappings
                .iter()
                .filter(|m| m.tag_id == tags[0].id)
                .collect();
            assert_eq!(mapped.len(), 2, "{ws}: each campaign tagged once");
            assert!(mapped.iter().all(|m| m.resource_type == 2));
        }
        app.stop().await;
    }
);
