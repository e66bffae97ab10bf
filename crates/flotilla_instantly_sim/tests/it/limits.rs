use std::time::Duration;

use flotilla_instantly_sim::{Burst, Faults, SimConfig};
use reqwest::StatusCode;
use serde_json::json;

use crate::{Api, env, env_with};

#[tokio::test]
async fn exceeding_the_per_workspace_limit_gives_429_and_counts_it() {
    let e = env_with(SimConfig {
        rps: 0,
        rpm: 3,
        ..SimConfig::default()
    })
    .await;
    // Two keys of one workspace share the bucket (instantly-api.md §4).
    let other = e.sim.create_key(&e.ws, "second", &["all:all"]);
    let a = Api::new(&e.sim, &e.key);
    let b = Api::new(&e.sim, &other.key);
    assert_eq!(a.get("/workspace-members").await.status, StatusCode::OK);
    assert_eq!(b.get("/workspace-members").await.status, StatusCode::OK);
    assert_eq!(a.get("/workspace-members").await.status, StatusCode::OK);
    let r = b.get("/workspace-members").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.body,
        json!({"statusCode": 429, "error": "Too Many Requests", "message": "Rate limit exceeded"})
    );
    assert!(r.headers.get("retry-after").is_none(), "off by default");
    let c = e.sim.counters(&e.ws);
    assert_eq!(c.requests, 4);
    assert_eq!(c.rate_limited, 1);

    // Another workspace has its own bucket.
    let ws2 = e.sim.create_workspace("Other");
    let k2 = e.sim.create_key(&ws2, "k", &["all:all"]);
    assert_eq!(
        Api::new(&e.sim, &k2.key)
            .get("/workspace-members")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(e.sim.counters(&ws2).rate_limited, 0);
}

#[tokio::test]
async fn rps_limit_refuses_a_fast_burst() {
    // 20 concurrent requests against 2/s: far more than 2 arrive within one second, however slow
    // the machine, because the window only admits 2 per second.
    let e = env_with(SimConfig {
        rps: 2,
        rpm: 0,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&e.sim, &e.key);
    let statuses = futures::future::join_all((0..20).map(|_| api.get("/workspaces/current"))).await;
    let limited = statuses
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let ok = statuses
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    assert_eq!(limited + ok, 20);
    assert!(limited > 0);
    assert_eq!(e.sim.counters(&e.ws).rate_limited, limited as u64);
}

#[tokio::test]
async fn retry_after_is_sent_when_configured() {
    let e = env_with(SimConfig {
        rps: 0,
        rpm: 1,
        retry_after: true,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&e.sim, &e.key);
    api.get("/workspaces/current").await;
    let r = api.get("/workspaces/current").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
}

#[tokio::test]
async fn a_burst_answers_every_request_with_429_until_cleared() {
    let e = env().await;
    e.sim.set_faults(Faults {
        burst: Some(Burst {
            every: Duration::from_secs(3600),
            duration: Duration::from_secs(3600),
        }),
        ..Faults::default()
    });
    let api = Api::new(&e.sim, &e.key);
    for _ in 0..3 {
        assert_eq!(
            api.get("/campaigns").await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    // Even unauthenticated requests.
    assert_eq!(
        Api::anonymous(&e.sim).get("/campaigns").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(e.sim.counters(&e.ws).rate_limited, 3);
    e.sim.set_faults(Faults::default());
    assert_eq!(api.get("/campaigns").await.status, StatusCode::OK);
}
