use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn binary_prints_url_and_demo_keys_as_json_lines() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_instantly-sim"))
        .args(["--listen", "127.0.0.1:0", "--seed-demo", "2", "--rps", "50"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start instantly-sim");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = lines.next_line().await.unwrap().expect("a line");
        serde_json::from_str(&line).expect("JSON line")
    };
    let base = next().await["base_url"].as_str().unwrap().to_owned();
    let demo = [next().await, next().await];
    let http = reqwest::Client::new();
    for d in demo {
        let r = http
            .get(format!("{base}/api/v2/workspaces/current"))
            .bearer_auth(d["key"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["id"], d["workspace_id"]);
    }
    child.kill().await.unwrap();
}
