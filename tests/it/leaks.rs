//! Secret-leak scan: the real binary at `trace` log level registers, imports, creates keys,
//! rotates, syncs and reports; then every log line, every API response, every file in the data
//! directory and (on Postgres) every row of every table is searched for each plaintext secret the
//! run used. Zero hits.

use std::process::Stdio;
use std::time::Duration;

use flotilla_instantly_sim::{SimConfig, Simulator};
use flotilla_vault::testing::TestDb;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::Row;

use crate::both;
use crate::crash::spawn_serve_with;
use crate::support::*;

/// Every response body the run received, as text.
struct Recorder {
    http: reqwest::Client,
    url: String,
    bodies: Vec<String>,
}

impl Recorder {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.finish(req).await
    }

    async fn finish(&mut self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = format!("{:?}", resp.headers());
        let text = resp.text().await.expect("body");
        self.bodies.push(headers);
        self.bodies.push(text.clone());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn op(&mut self, body: Value) -> Value {
        let (status, op) = self.call(Method::POST, "/v1/operations", Some(body)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{op}");
        self.wait(op["id"].as_str().unwrap()).await
    }

    async fn wait(&mut self, id: &str) -> Value {
        for _ in 0..2400 {
            let (_, op) = self
                .call(Method::GET, &format!("/v1/operations/{id}"), None)
                .await;
            if !op["finished_at"].is_null() {
                self.call(
                    Method::GET,
                    &format!("/v1/operations/{id}/targets?limit=500"),
                    None,
                )
                .await;
                return op;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("operation {id} did not finish");
    }
}

both!(
    no_plaintext_secret_in_logs_responses_files_or_tables,
    |backend| {
        let sim = Simulator::spawn(SimConfig::default()).await.unwrap();
        let test_db = TestDb::new(backend).await;
        let data = tempfile::tempdir().unwrap();
        // On SQLite the database lives in the data directory, so scanning the directory covers it.
        let db_url = match backend {
            flotilla_vault::Backend::Sqlite => {
                format!("sqlite://{}", data.path().join("flotilla.db").display())
            }
            flotilla_vault::Backend::Postgres => test_db.url(),
        };
        let keys = test_keys();
        let log_path = data.path().join("serve.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut serve = spawn_serve_with(
            &db_url,
            &sim,
            keys.expose_secret(),
            data.path(),
            &[("FLOTILLA_LOG", "trace"), ("FLOTILLA_LOG_FORMAT", "json")],
            Stdio::from(log),
        )
        .await;
        let mut rec = Recorder {
            http: reqwest::Client::new(),
            url: serve.url.clone(),
            bodies: Vec::new(),
        };
        let mut secrets: Vec<String> = vec![ADMIN_TOKEN.to_string()];
        secrets.extend(
            keys.expose_secret()
                .split(',')
                .filter_map(|kek| kek.split_once(':'))
                .map(|(_, k)| k.to_string()),
        );

        // Register three workspaces, import three more.
        for i in 0..3 {
            let ws = sim.create_workspace(&format!("reg-{i}"));
            let key = sim.create_key(&ws, "flotilla", &["all:all"]).key;
            let (status, body) = rec
                .call(
                    Method::POST,
                    "/v1/workspaces",
                    Some(json!({ "name": format!("reg-{i}"), "api_key": key, "labels": ["leak"] })),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            secrets.push(key);
        }
        let mut csv = String::from("name,api_key,labels\n");
        for i in 0..3 {
            let ws = sim.create_workspace(&format!("imp-{i}"));
            let key = sim.create_key(&ws, "flotilla", &["all:all"]).key;
            csv += &format!("\"imp, {i}\",{key},leak;imported\n");
            secrets.push(key);
        }
        let req = rec
            .http
            .post(format!("{}/v1/workspaces/import", rec.url))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "text/csv")
            .body(csv);
        let (status, op) = rec.finish(req).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{op}");
        let op = rec.wait(op["id"].as_str().unwrap()).await;
        assert_eq!(op["counts"]["succeeded"], 3, "{op}");

        // An operator: its token is shown once, in that one response, which is then not scanned for it.
        let (status, created) = rec
            .call(
                Method::POST,
                "/v1/operators",
                Some(json!({ "name": "leak-check", "role": "viewer" })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let operator_token = created["token"]
            .as_str()
            .expect("token shown once")
            .to_string();
        // Control: the scan below does find a secret where one is (this response holds the token).
        let shown = rec.bodies.pop().unwrap();
        assert!(contains(shown.as_bytes(), &operator_token));
        secrets.push(operator_token);

        let all = json!({ "labels": ["leak"] });
        let op = rec.op(json!({ "kind": "api_keys.create", "targets": all, "params": { "name": "sdr-tool", "preset": "sdr" } })).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        let op = rec.op(json!({ "kind": "credentials.rotate", "targets": all, "params": { "preset": "admin" } })).await;
        assert_eq!(op["status"], "succeeded", "{op}");
        let op = rec
            .op(json!({ "kind": "inventory.sync", "targets": all, "params": {} }))
            .await;
        assert_eq!(op["status"], "succeeded", "{op}");
        for path in [
            "/v1/workspaces",
            "/v1/reports/access",
            "/v1/reports/access?format=csv",
            "/v1/reports/api-keys",
            "/v1/reports/api-keys?format=csv",
            "/v1/reports/tags",
            "/v1/reports/audit-logs",
            "/v1/audit",
            "/v1/operations",
            "/v1/operators",
            "/metrics",
        ] {
            let (status, body) = rec.call(Method::GET, path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
        }
        serve.child.start_kill().unwrap();
        serve.child.wait().await.unwrap();

        // The haystacks.
        let mut haystacks: Vec<(String, Vec<u8>)> = rec
            .bodies
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("response {i}"), b.as_bytes().to_vec()))
            .collect();
        for entry in walk(data.path()) {
            haystacks.push((entry.display().to_string(), std::fs::read(&entry).unwrap()));
        }
        let log_text = std::fs::read_to_string(&log_path).unwrap();
        assert!(log_text.lines().count() > 50, "trace logging was on");
        if backend == flotilla_vault::Backend::Postgres {
            let pool = test_db.db().pool();
            let tables = sqlx::query(
                "select cast(table_name as text) as table_name from information_schema.tables where table_schema = 'public'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            assert!(tables.len() > 5);
            for t in tables {
                let name: String = t.try_get("table_name").unwrap();
                let rows = sqlx::query(&format!("select cast(t as text) as row from \"{name}\" t"))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                let text: Vec<String> = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>("row").unwrap())
                    .collect();
                haystacks.push((format!("table {name}"), text.join("\n").into_bytes()));
            }
        }
        let mut hits = Vec::new();
        for secret in &secrets {
            for (name, hay) in &haystacks {
                if contains(hay, secret) {
                    hits.push(format!(
                        "{name} contains a secret of {} chars",
                        secret.len()
                    ));
                }
            }
        }
        assert!(hits.is_empty(), "plaintext secrets found: {hits:#?}");
        test_db.cleanup().await;
    }
);

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
