//! The real `flotilla serve` binary killed with SIGKILL mid-operation, restarted, finishes the
//! operation with every change made exactly once.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use flotilla_instantly_sim::{SimConfig, Simulator};
use flotilla_vault::testing::TestDb;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::both;
use crate::support::*;

/// A `flotilla serve` child process.
pub struct Serve {
    pub child: Child,
    pub url: String,
}

impl Serve {
    /// SIGKILL, no warning; returns once the process is gone.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("kill flotilla serve");
        self.child.wait().await.expect("wait for flotilla serve");
    }
}

/// Starts `flotilla serve` on a free port and waits until it is ready.
pub async fn spawn_serve(
    db_url: &str,
    sim: &Simulator,
    keys: &str,
    data_dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> Serve {
    let stderr = if std::env::var("TEST_LOG").is_ok() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    spawn_serve_with(db_url, sim, keys, data_dir, extra, stderr).await
}

/// [`spawn_serve`] with the child's standard error sent to `stderr`.
pub async fn spawn_serve_with(
    db_url: &str,
    sim: &Simulator,
    keys: &str,
    data_dir: &std::path::Path,
    extra: &[(&str, &str)],
    stderr: Stdio,
) -> Serve {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("FLOTILLA_DATABASE_URL", db_url)
        .env("FLOTILLA_LISTEN", format!("127.0.0.1:{port}"))
        .env("FLOTILLA_INSTANTLY_BASE_URL", sim.base_url())
        .env("FLOTILLA_VAULT_KEYS", keys)
        .env("FLOTILLA_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("FLOTILLA_DATA_DIR", data_dir)
        .env(
            "FLOTILLA_LOG",
            std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into()),
        )
        .env("FLOTILLA_POLL_MS", "25")
        .env("FLOTILLA_LEASE_SECONDS", "5")
        .env("FLOTILLA_RETRY_BASE_MS", "50")
        .env("FLOTILLA_RETRY_MAX_MS", "400")
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn flotilla serve");
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await
            && r.status() == StatusCode::OK
        {
            return Serve { child, url };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("flotilla serve did not become ready");
}

pub async fn api(
    http: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http
        .request(method, format!("{url}{path}"))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// What every test of real `flotilla serve` processes starts from: a simulator, a fresh
/// database, vault keys, a data directory, and an HTTP client for the processes it starts.
pub struct ProcessFixture {
    pub sim: Simulator,
    pub test_db: TestDb,
    pub db_url: String,
    pub keys: SecretString,
    pub data: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl ProcessFixture {
    /// A simulator answering after `latency_ms` and a fresh database on `backend`.
    pub async fn start(backend: flotilla_vault::Backend, latency_ms: u64) -> ProcessFixture {
        flotilla_vault::testing::init_test_logging();
        let sim = Simulator::spawn(SimConfig {
            latency: Duration::from_millis(latency_ms),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let test_db = TestDb::new(backend).await;
        ProcessFixture {
            db_url: test_db.url(),
            sim,
            test_db,
            keys: test_keys(),
            data: tempfile::tempdir().expect("data dir"),
            http: reqwest::Client::new(),
        }
    }

    /// Starts `flotilla serve` with the fixture's data directory and `extra` variables.
    pub async fn serve(&self, extra: &[(&str, &str)]) -> Serve {
        self.serve_in(self.data.path(), extra).await
    }

    /// Starts `flotilla serve` with its own data directory (one per replica).
    pub async fn serve_in(&self, data_dir: &std::path::Path, extra: &[(&str, &str)]) -> Serve {
        spawn_serve(
            &self.db_url,
            &self.sim,
            self.keys.expose_secret(),
            data_dir,
            extra,
        )
        .await
    }

    /// Calls a running service as the bootstrap admin.
    pub async fn api(
        &self,
        url: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        api(&self.http, url, method, path, body).await
    }

    /// Creates `n` simulated workspaces, each with an `all:all` key, and registers them through
    /// the service at `url` as `{prefix} {i}` with `labels`. Returns (Flotilla id, Instantly
    /// workspace id, Instantly key id) per workspace.
    pub async fn register_many(
        &self,
        url: &str,
        n: usize,
        prefix: &str,
        labels: &[&str],
    ) -> Vec<(uuid::Uuid, String, String)> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("{prefix} {i}");
            let ws = self.sim.create_workspace(&name);
            let key = self.sim.create_key(&ws, "flotilla", &["all:all"]);
            let (status, body) = self
                .api(
                    url,
                    reqwest::Method::POST,
                    "/v1/workspaces",
                    Some(json!({ "name": name, "api_key": key.key, "labels": labels })),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let id = body["id"].as_str().expect("id").parse().expect("uuid");
            out.push((id, ws, key.id));
        }
        out
    }

    /// Targets in `state`, across every operation (read straight from the database).
    pub async fn targets_in(&self, state: &str) -> i64 {
        use sqlx::Row;
        sqlx::query("select count(*) as n from target where state = $1")
            .bind(state)
            .fetch_one(self.test_db.db().pool())
            .await
            .expect("count targets")
            .try_get("n")
            .expect("n")
    }

    /// Creates an operation through the service at `url`; returns its id.
    pub async fn start_op(&self, url: &str, body: Value) -> uuid::Uuid {
        let (status, op) = self
            .api(url, reqwest::Method::POST, "/v1/operations", Some(body))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{op}");
        op["id"].as_str().expect("id").parse().expect("uuid")
    }

    /// Polls the service at `url` until at least `n` targets of the operation have succeeded.
    pub async fn wait_succeeded(&self, url: &str, id: uuid::Uuid, n: i64) {
        loop {
            let (_, op) = self
                .api(
                    url,
                    reqwest::Method::GET,
                    &format!("/v1/operations/{id}"),
                    None,
                )
                .await;
            if op["counts"]["succeeded"].as_i64().unwrap_or(0) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for an operation to finish on the service at `url`.
    pub async fn wait_done(&self, url: &str, id: uuid::Uuid, timeout: Duration) -> Value {
        wait_done(&self.http, url, ADMIN_TOKEN, id, timeout).await
    }
}

/// Successful invites per (workspace, email) in the simulator's request log.
pub fn invites_per_email(sim: &Simulator) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for r in sim.request_log() {
        if r.method == "POST" && r.path == "/api/v2/workspace-members" && r.status == 200 {
            let email = r
                .body
                .as_ref()
                .and_then(|b| b["email"].as_str())
                .unwrap_or_default()
                .to_string();
            *out.entry((r.workspace_id.clone().unwrap_or_default(), email))
                .or_default() += 1;
        }
    }
    out
}

both!(
    sigkill_mid_operation_then_restart_finishes_exactly_once,
    |backend| {
        let fx = ProcessFixture::start(backend, 20).await;
        let mut first = fx.serve(&[("FLOTILLA_MAX_IN_FLIGHT", "8")]).await;
        let sim_ids: Vec<String> = fx
            .register_many(&first.url, 200, "client", &["crash"])
            .await
            .into_iter()
            .map(|(_, ws, _)| ws)
            .collect();
        let sim = &fx.sim;
        let emails = ["ana@agency.example", "ben@agency.example"];
        let id = fx.start_op(&first.url, json!({
        "kind": "members.invite", "targets": { "labels": ["crash"] }, "params": { "emails": emails, "role": "editor" },
        })).await;

        // Let it get part of the way, then kill it without warning.
        fx.wait_succeeded(&first.url, id, 30).await;
        first.kill().await;

        let second = fx.serve(&[]).await;
        let op = fx
            .wait_done(&second.url, id, Duration::from_secs(180))
            .await;
        assert_eq!(op["status"], "succeeded", "{op}");
        assert_eq!(op["counts"]["succeeded"], 200);
        for ws in &sim_ids {
            let members = sim_members(sim, ws);
            assert_eq!(members.len(), 3, "{ws}: {members:?}");
            for email in emails {
                assert!(members.contains(&(email.to_string(), "editor".to_string())));
            }
        }
        let invites = invites_per_email(sim);
        assert_eq!(invites.len(), 400);
        assert!(
            invites.values().all(|n| *n == 1),
            "every email invited exactly once: {invites:?}"
        );
        drop(second);
        fx.test_db.cleanup().await;
    }
);
