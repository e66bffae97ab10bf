use reqwest::StatusCode;
use serde_json::json;

use crate::{Api, env};

#[tokio::test]
async fn request_log_records_each_call_with_timing_and_context() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    api.get("/workspace-members?limit=5").await;
    api.post("/custom-tags", json!({"label": "x"})).await;
    Api::anonymous(&e.sim).get("/campaigns").await;

    let log = e.sim.request_log();
    assert_eq!(log.len(), 3);
    let first = &log[0];
    assert_eq!(first.method, "GET");
    assert_eq!(first.path, "/api/v2/workspace-members");
    assert_eq!(first.query.as_deref(), Some("limit=5"));
    assert_eq!(first.status, 200);
    assert_eq!(first.workspace_id.as_deref(), Some(e.ws.as_str()));
    assert_eq!(first.key_id.as_deref(), Some(e.key_id.as_str()));
    assert_eq!(first.user_agent.as_deref(), Some("flotilla-sim-tests/1"));
    assert_eq!(first.body, None);
    let second = &log[1];
    assert_eq!(second.method, "POST");
    assert_eq!(second.content_type.as_deref(), Some("application/json"));
    assert_eq!(second.body, Some(json!({"label": "x"})));
    let third = &log[2];
    assert_eq!(third.status, 401);
    assert_eq!(third.workspace_id, None);

    // Sequential calls never overlap, and each span is well-formed.
    for w in log.windows(2) {
        assert!(w[0].started_at <= w[0].finished_at);
        assert!(w[0].finished_at <= w[1].started_at);
    }

    e.sim.clear_request_log();
    assert!(e.sim.request_log().is_empty());
    assert_eq!(
        e.sim.counters(&e.ws).requests,
        2,
        "counters survive a log clear"
    );
    assert_eq!(api.get("/campaigns").await.status, StatusCode::OK);
    assert_eq!(e.sim.request_log().len(), 1);
}

#[tokio::test]
async fn concurrent_requests_overlap_in_the_log() {
    // The overlap check other crates rely on must be able to see overlap when it happens.
    let e = env().await;
    e.sim.set_faults(flotilla_instantly_sim::Faults {
        latency: std::time::Duration::from_millis(200),
        ..Default::default()
    });
    let api = Api::new(&e.sim, &e.key);
    let (a, b) = tokio::join!(api.get("/campaigns"), api.get("/accounts"));
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    let log = e.sim.request_log();
    assert_eq!(log.len(), 2);
    let overlap = log[0].started_at < log[1].finished_at && log[1].started_at < log[0].finished_at;
    assert!(overlap, "{log:?}");
}
