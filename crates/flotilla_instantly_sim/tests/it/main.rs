//! Integration tests of the simulator, over real sockets with reqwest.

mod audit;
mod auth;
mod binary;
mod control;
mod faults;
mod groups;
mod keys;
mod limits;
mod log;
mod members;
mod pagination;
mod tags;
mod workspace;

use flotilla_instantly_sim::{SimConfig, Simulator};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A simulator with one workspace and an `all:all` key.
pub(crate) struct Env {
    pub(crate) sim: Simulator,
    pub(crate) ws: String,
    pub(crate) key: String,
    pub(crate) key_id: String,
}

pub(crate) async fn env() -> Env {
    env_with(SimConfig::default()).await
}

pub(crate) async fn env_with(config: SimConfig) -> Env {
    init_log();
    let sim = Simulator::spawn(config).await.expect("spawn simulator");
    let ws = sim.create_workspace("Acme");
    let k = sim.create_key(&ws, "test", &["all:all"]);
    Env {
        sim,
        ws,
        key: k.key,
        key_id: k.id,
    }
}

fn init_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .try_init();
    }
}

/// A response: status, parsed JSON body (or `Value::Null`), headers.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    pub(crate) headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub(crate) fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    pub(crate) fn items(&self) -> &Vec<Value> {
        self.body["items"].as_array().expect("items array")
    }
}

/// One request builder bound to a base URL and a key.
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) key: Option<String>,
    pub(crate) as_workspace: Option<String>,
}

impl Api {
    pub(crate) fn new(sim: &Simulator, key: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: sim.base_url(),
            key: Some(key.to_owned()),
            as_workspace: None,
        }
    }

    pub(crate) fn anonymous(sim: &Simulator) -> Self {
        Self {
            key: None,
            ..Self::new(sim, "")
        }
    }

    pub(crate) fn acting_as(mut self, ws: &str) -> Self {
        self.as_workspace = Some(ws.to_owned());
        self
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut rb = self
            .http
            .request(method, format!("{}/api/v2{path}", self.base))
            .header("user-agent", "flotilla-sim-tests/1");
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(k);
        }
        if let Some(w) = &self.as_workspace {
            rb = rb.header("x-as-workspace", w);
        }
        rb
    }

    pub(crate) async fn send(rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request sent");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body read");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            body,
            headers,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Resp {
        Self::send(self.request(Method::GET, path)).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Resp {
        Self::send(self.request(Method::POST, path).json(&body)).await
    }

    pub(crate) async fn patch(&self, path: &str, body: Value) -> Resp {
        Self::send(self.request(Method::PATCH, path).json(&body)).await
    }

    /// DELETE with no body and no Content-Type.
    pub(crate) async fn delete(&self, path: &str) -> Resp {
        Self::send(self.request(Method::DELETE, path)).await
    }
}
