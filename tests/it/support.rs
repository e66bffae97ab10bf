//! Test harness: a simulator, a fresh database and the service in-process (or as the real
//! binary), with a few helpers to call the API.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use flotilla_instantly_sim::{SimConfig, Simulator};
use flotilla_service::config::Config;
use flotilla_vault::testing::TestDb;
use flotilla_vault::{Backend, Database, Keyring};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Token of the bootstrap admin in every test app.
pub const ADMIN_TOKEN: &str = "flt_test_admin_token_0123456789";

/// Runs a test body on both backends: `both!(name, |backend| { … })`.
#[macro_export]
macro_rules! both {
    ($name:ident, |$backend:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $backend = flotilla_vault::Backend::Sqlite;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $backend = flotilla_vault::Backend::Postgres;
                $body
            }
        }
    };
}

/// A vault keyring spec for tests (random each run).
pub fn test_keys() -> SecretString {
    flotilla_vault::generate_key_spec("k1")
}

/// A configuration tuned for fast tests.
pub fn test_config(db_url: &str, sim: &Simulator) -> Config {
    let mut config = Config::new(db_url, sim.base_url().parse().expect("sim url"));
    config.poll_ms = 25;
    config.retry_base_ms = 50;
    config.retry_max_ms = 400;
    config.lease_seconds = 5;
    config.max_in_flight = 32;
    config.shutdown_grace_seconds = 5;
    config
}

/// The service running in this process against a simulator.
pub struct TestApp {
    pub url: String,
    pub sim: Simulator,
    pub http: reqwest::Client,
    pub db: Database,
    pub test_db: Option<TestDb>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// Starts everything with defaults.
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, SimConfig::default(), |_| {}).await
    }

    /// Starts with a simulator config and a config tweak.
    pub async fn start_with(
        backend: Backend,
        sim_config: SimConfig,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        flotilla_vault::testing::init_test_logging();
        let sim = Simulator::spawn(sim_config).await.expect("simulator");
        let test_db = TestDb::new(backend).await;
        let db = test_db.db().clone();
        let mut config = test_config(&test_db.url(), &sim);
        tweak(&mut config);
        let keyring = Keyring::parse(test_keys().expose_secret(), "test keys").expect("keyring");
        let state = flotilla_service::app::prepare_with(config, db.clone(), keyring)
            .await
            .expect("prepare");
        flotilla_service::auth::ensure_bootstrap_admin(
            &state.store,
            Some(&SecretString::from(ADMIN_TOKEN)),
        )
        .await
        .expect("bootstrap admin");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                flotilla_service::app::serve(state, listener, shutdown)
                    .await
                    .expect("serve");
            }
        });
        TestApp {
            url,
            sim,
            http: reqwest::Client::new(),
            db,
            test_db: Some(test_db),
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the service and removes the database.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        if let Some(db) = self.test_db.take() {
            db.cleanup().await;
        }
    }

    /// A request with the admin token.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_as(ADMIN_TOKEN, method, path, body, &[]).await
    }

    /// A request with a given token and extra headers.
    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Creates a simulated workspace with an all-scope key and registers it. Returns
    /// (Flotilla id, Instantly id).
    pub async fn register(&self, name: &str, labels: &[&str]) -> (Uuid, String) {
        self.register_with_scopes(name, labels, &["all:all"]).await
    }

    /// Like [`TestApp::register`] with the key's scopes.
    pub async fn register_with_scopes(
        &self,
        name: &str,
        labels: &[&str],
        scopes: &[&str],
    ) -> (Uuid, String) {
        let ws = self.sim.create_workspace(name);
        let key = self.sim.create_key(&ws, "flotilla", scopes);
        let (status, body) = self
            .post(
                "/v1/workspaces",
                json!({ "name": name, "api_key": key.key, "labels": labels }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {name}: {body}");
        (body["id"].as_str().expect("id").parse().expect("uuid"), ws)
    }

    /// Starts an operation and returns its id.
    pub async fn start_op(&self, body: Value) -> Uuid {
        let (status, op) = self.post("/v1/operations", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "create operation: {op}");
        op["id"].as_str().expect("id").parse().expect("uuid")
    }

    /// Polls until the operation has finished; returns it.
    pub async fn wait_done(&self, id: Uuid) -> Value {
        wait_done(
            &self.http,
            &self.url,
            ADMIN_TOKEN,
            id,
            Duration::from_secs(300),
        )
        .await
    }

    /// Every target of an operation.
    pub async fn targets(&self, id: Uuid) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/operations/{id}/targets?limit=500&cursor={c}"),
                None => format!("/v1/operations/{id}/targets?limit=500"),
            };
            let (status, page) = self.get(&path).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            out.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }

    /// Number of operations in the database.
    pub async fn operation_count(&self) -> i64 {
        count(&self.db, "operation").await
    }
}

/// Rows in a table.
pub async fn count(db: &Database, table: &str) -> i64 {
    use sqlx::Row;
    sqlx::query(&format!("select count(*) as n from {table}"))
        .fetch_one(db.pool())
        .await
        .expect("count")
        .try_get::<i64, _>("n")
        .expect("n")
}

/// Polls `GET /v1/operations/{id}` until it has finished.
pub async fn wait_done(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    id: Uuid,
    timeout: Duration,
) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let resp = http
            .get(format!("{url}/v1/operations/{id}"))
            .bearer_auth(token)
            .send()
            .await;
        if let Ok(resp) = resp
            && resp.status() == StatusCode::OK
        {
            let op: Value = resp.json().await.expect("json");
            if !op["finished_at"].is_null() {
                return op;
            }
            assert!(
                Instant::now() < deadline,
                "operation {id} did not finish in time: {op}"
            );
        } else {
            assert!(
                Instant::now() < deadline,
                "operation {id}: service unreachable"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Members of a simulated workspace as (lower-cased email, role).
pub fn sim_members(sim: &Simulator, ws: &str) -> Vec<(String, String)> {
    let state = sim.workspace(ws).expect("sim workspace");
    let mut out: Vec<(String, String)> = state
        .members
        .iter()
        .map(|m| (m.email.to_ascii_lowercase(), m.role.clone()))
        .collect();
    out.sort();
    out
}
