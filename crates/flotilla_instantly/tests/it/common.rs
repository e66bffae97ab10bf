//! Helpers shared by the integration tests.

use std::time::Duration;

use flotilla_instantly::{Client, ClientConfig, RetryPolicy};
use secrecy::SecretString;
use url::Url;

/// Logs only when `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Quick retries so fault tests run fast.
pub fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(10),
    }
}

/// A config for `base` with a fast retry policy.
pub fn config(base: &str, key: &str) -> ClientConfig {
    init_logs();
    let mut c = ClientConfig::new(Url::parse(base).unwrap(), SecretString::from(key));
    c.retry = fast_retry(3);
    c.timeout = Duration::from_secs(10);
    c
}

/// An obviously fake key for mocks.
pub const FAKE_KEY: &str = "test-key-not-real-0001";

/// A simulator, one workspace in it, and a client holding an `all:all` key for it.
pub struct SimWs {
    /// The simulator.
    pub sim: flotilla_instantly_sim::Simulator,
    /// The workspace id.
    pub ws: String,
    /// A client with an `all:all` key of `ws`.
    pub client: Client,
}

/// Spawn a simulator with `cfg` and create one workspace with an `all:all` key.
pub async fn sim_ws(cfg: flotilla_instantly_sim::SimConfig) -> SimWs {
    init_logs();
    let sim = flotilla_instantly_sim::Simulator::spawn(cfg).await.unwrap();
    let ws = sim.create_workspace("Acme");
    let client = sim_client(&sim, &ws, &["all:all"]);
    SimWs { sim, ws, client }
}

/// A client for `ws` with a new key holding `scopes`.
pub fn sim_client(sim: &flotilla_instantly_sim::Simulator, ws: &str, scopes: &[&str]) -> Client {
    Client::new(sim_config(sim, ws, scopes)).unwrap()
}

/// A config for `ws` with a new key holding `scopes`.
pub fn sim_config(
    sim: &flotilla_instantly_sim::Simulator,
    ws: &str,
    scopes: &[&str],
) -> ClientConfig {
    let key = sim.create_key(ws, "test", scopes);
    config(&sim.base_url(), &key.key)
}
