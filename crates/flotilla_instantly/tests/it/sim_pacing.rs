//! Pacing: a burst far above Instantly's limit gets no 429 at all.

use flotilla_instantly::{Client, Pacer, Pacing, RateLimits, RetryPolicy};
use flotilla_instantly_sim::SimConfig;
use futures::future::join_all;

use crate::common::{sim_config, sim_ws};

#[tokio::test]
async fn three_hundred_requests_at_once_get_zero_429s() {
    let t = sim_ws(SimConfig {
        rps: 100,
        rpm: 6000,
        ..SimConfig::default()
    })
    .await;
    let pacer = Pacer::new(RateLimits::default());
    let mut cfg = sim_config(&t.sim, &t.ws, &["all:all"]);
    // No retries: every one of the 300 must succeed on its first attempt.
    cfg.retry = RetryPolicy::never();
    cfg.pacing = Some(Pacing {
        pacer: pacer.clone(),
        keys: vec![t.ws.clone()],
    });
    let c = Client::new(cfg).unwrap();

    let results = join_all((0..300).map(|_| c.current_workspace())).await;
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    let counters = t.sim.counters(&t.ws);
    assert_eq!(counters.rate_limited, 0);
    assert_eq!(counters.requests, 300);
    let stats = pacer.stats();
    assert_eq!(stats.waits, 300);
    // Only the burst goes through unpaced; the rest waited (exposed for the service's metric).
    assert!(stats.delayed >= 250, "{stats:?}");
    assert!(stats.total_wait > std::time::Duration::ZERO);
}

#[tokio::test]
async fn without_pacing_the_same_burst_is_rate_limited() {
    // The control for the test above: the simulator does enforce 100/s.
    let t = sim_ws(SimConfig {
        rps: 100,
        rpm: 6000,
        ..SimConfig::default()
    })
    .await;
    let mut cfg = sim_config(&t.sim, &t.ws, &["all:all"]);
    cfg.retry = RetryPolicy::never();
    let c = Client::new(cfg).unwrap();
    let results = join_all((0..300).map(|_| c.current_workspace())).await;
    let limited = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.kind() == flotilla_instantly::ErrorKind::RateLimited))
        .count();
    assert!(limited > 0);
    assert_eq!(t.sim.counters(&t.ws).rate_limited, limited as u64);
}

#[tokio::test]
async fn one_pacer_is_shared_by_many_clients_of_a_workspace() {
    let t = sim_ws(SimConfig {
        rps: 100,
        rpm: 6000,
        ..SimConfig::default()
    })
    .await;
    let pacer = Pacer::new(RateLimits::default());
    let http = reqwest::Client::new();
    let clients: Vec<Client> = (0..3)
        .map(|_| {
            let mut cfg = sim_config(&t.sim, &t.ws, &["all:all"]);
            cfg.retry = RetryPolicy::never();
            cfg.pacing = Some(Pacing {
                pacer: pacer.clone(),
                keys: vec![t.ws.clone()],
            });
            Client::with_http(cfg, http.clone()).unwrap()
        })
        .collect();
    let results = join_all((0..240).map(|i| clients[i % 3].current_workspace())).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(t.sim.counters(&t.ws).rate_limited, 0);
}
