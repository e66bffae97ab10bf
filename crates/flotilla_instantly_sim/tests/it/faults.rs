use std::time::Duration;

use flotilla_instantly_sim::{Faults, SimConfig, Simulator};
use reqwest::StatusCode;

use crate::{Api, env, env_with};

#[tokio::test]
async fn dropped_connection_is_a_transport_error_and_counted() {
    let e = env_with(SimConfig {
        drop_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let api = Api::new(&e.sim, &e.key);
    let err = api
        .request(reqwest::Method::GET, "/workspace-members")
        .send()
        .await;
    let err = err.expect_err("no response");
    assert!(!err.is_status());
    assert_eq!(e.sim.counters(&e.ws).dropped, 1);
    let log = e.sim.request_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, 0, "status 0 = dropped");

    e.sim.set_faults(Faults::default());
    assert_eq!(api.get("/workspace-members").await.status, StatusCode::OK);
}

#[tokio::test]
async fn fail_rate_injects_500_envelopes() {
    let e = env_with(SimConfig {
        fail_rate: 1.0,
        ..SimConfig::default()
    })
    .await;
    let r = Api::new(&e.sim, &e.key).get("/workspace-members").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body["statusCode"], 500);
    assert_eq!(r.body["error"], "Internal Server Error");
    assert_eq!(e.sim.counters(&e.ws).injected_errors, 1);
}

#[tokio::test]
async fn proxy_502_is_html() {
    let e = env().await;
    e.sim.set_proxy_502_rate(1.0);
    let r = Api::new(&e.sim, &e.key)
        .request(reqwest::Method::GET, "/workspace-members")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("502 Bad Gateway"));
}

#[tokio::test]
async fn fault_pattern_is_a_function_of_the_seed() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let sim = Simulator::spawn(SimConfig {
            fail_rate: 0.5,
            seed,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let ws = sim.create_workspace("w");
        let k = sim.create_key(&ws, "k", &["all:all"]);
        let api = Api::new(&sim, &k.key);
        let mut out = Vec::new();
        for _ in 0..24 {
            out.push(api.get("/workspaces/current").await.status.as_u16());
        }
        out
    }
    let a = pattern(7).await;
    assert_eq!(a, pattern(7).await);
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
}

#[tokio::test]
async fn set_down_refuses_then_recovers_on_the_same_port_with_state() {
    let e = env().await;
    let api = Api::new(&e.sim, &e.key);
    let m = e.sim.seed_member(&e.ws, "kept@x.example", "view", true);
    assert_eq!(api.get("/workspace-members").await.status, StatusCode::OK);
    e.sim.set_down(true);
    for _ in 0..2 {
        let fresh = Api::new(&e.sim, &e.key);
        assert!(
            fresh
                .request(reqwest::Method::GET, "/workspace-members")
                .send()
                .await
                .is_err()
        );
        // Pooled keep-alive connections are cut too.
        assert!(
            api.request(reqwest::Method::GET, "/workspace-members")
                .send()
                .await
                .is_err()
        );
    }
    e.sim.set_down(false);
    let r = api.get(&format!("/workspace-members/{m}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["email"], "kept@x.example");
}

#[tokio::test]
async fn latency_is_inside_the_recorded_request_span() {
    let e = env().await;
    e.sim.set_faults(Faults {
        latency: Duration::from_millis(30),
        ..Faults::default()
    });
    Api::new(&e.sim, &e.key).get("/workspace-members").await;
    let rec = &e.sim.request_log()[0];
    assert!(rec.finished_at - rec.started_at >= chrono::Duration::milliseconds(30));
}
