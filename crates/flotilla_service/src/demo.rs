//! `flotilla demo`: the service on the embedded SQLite default together with an in-process
//! Instantly simulator seeded with sample client workspaces, registered under labels, and an
//! admin operator whose token is printed with example calls. Runs until Ctrl-C or SIGTERM.
//!
//! The data directory (default `data/demo`) is wiped and re-created at every start: the
//! simulator keeps its state in memory, so workspaces registered in an earlier run would point
//! at keys and a port that no longer exist.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use flotilla_instantly_sim::{DemoWorkspace, SimConfig, Simulator};
use flotilla_vault::Keyring;
use futures::{StreamExt, stream};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::app;
use crate::config::Config;

/// Labels the sample workspaces get, round robin.
pub const REGIONS: [&str; 3] = ["east", "west", "north"];

/// A file marking a directory as the demo's own, so that only such a directory is wiped.
const MARKER: &str = ".flotilla-demo";

/// Options of `flotilla demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Directory of the demo's SQLite database; wiped and re-created at every start.
    #[arg(long, default_value = "data/demo")]
    pub data_dir: PathBuf,
    /// Address the REST API listens on.
    #[arg(long, env = "FLOTILLA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Number of sample client workspaces.
    #[arg(long, default_value_t = 25)]
    pub workspaces: usize,
    /// Address of the simulated Instantly API (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub sim_listen: SocketAddr,
    /// Latency the simulator adds to every call, in milliseconds (makes progress visible).
    #[arg(long, default_value_t = 150)]
    pub sim_latency_ms: u64,
}

/// Empties `dir` if it is a demo directory (or absent), and marks it as one.
fn fresh_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let is_demo = dir.join(MARKER).exists();
        let is_empty = std::fs::read_dir(dir)
            .with_context(|| format!("while reading {}", dir.display()))?
            .next()
            .is_none();
        if !is_demo && !is_empty {
            anyhow::bail!(
                "{} exists and is not a demo directory (no {MARKER} file); refusing to wipe it. \
                 Pass --data-dir with a new or demo directory.",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("while wiping {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("while creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "flotilla demo data: wiped at every `flotilla demo` start\n",
    )
    .with_context(|| format!("while marking {}", dir.display()))?;
    Ok(())
}

/// How to call this binary in the printed examples: the path it was started by, relative when
/// inside the current directory (`target/release/flotilla` under `cargo run`), so that the lines
/// can be pasted as they are; `flotilla` only when that path is unknown.
fn self_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "flotilla".into();
    };
    let cwd = std::env::current_dir().ok();
    match cwd.as_deref().and_then(|cwd| exe.strip_prefix(cwd).ok()) {
        Some(rel) => rel.display().to_string(),
        None => exe.display().to_string(),
    }
}

/// Registers the sample workspaces through the REST API, as an operator would.
async fn register_all(
    http: &reqwest::Client,
    url: &str,
    token: &SecretString,
    demo: Vec<DemoWorkspace>,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = stream::iter(demo.into_iter().enumerate())
        .map(|(i, ws)| async move {
            let mut labels = vec![REGIONS[i % REGIONS.len()]];
            if i % 5 == 0 {
                labels.push("tier-1");
            }
            let resp = http
                .post(format!("{url}/v1/workspaces"))
                .bearer_auth(token.expose_secret())
                .json(&json!({ "name": ws.name, "api_key": ws.key, "labels": labels }))
                .send()
                .await
                .context("while registering a sample workspace")?;
            let status = resp.status();
            if !status.is_success() {
                // The answer never echoes the key, so it is safe to show.
                let body = resp.text().await.unwrap_or_default();
                anyhow::bail!("registering {} failed: {status} {body}", ws.name);
            }
            Ok(())
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Starts an `inventory.sync` over every workspace so that reports have data, where this build
/// has that kind (`unknown_kind` otherwise, which is fine).
async fn start_inventory_sync(http: &reqwest::Client, url: &str, token: &SecretString) -> bool {
    let resp = http
        .post(format!("{url}/v1/operations"))
        .bearer_auth(token.expose_secret())
        .json(&json!({ "kind": "inventory.sync", "targets": { "all": true }, "params": {} }))
        .send()
        .await;
    matches!(resp, Ok(r) if r.status().is_success())
}

fn banner(
    args: &DemoArgs,
    url: &str,
    sim: &Simulator,
    token: &SecretString,
    synced: bool,
) -> String {
    let me = self_command();
    let auth = r#"-H "Authorization: Bearer $FLOTILLA_TOKEN""#;
    // Written out (not serialised) so that the example reads in the documented field order.
    let invite = |dry: bool| {
        format!(
            r#"{{"kind": "members.invite",{} "targets": {{"labels": ["east"]}}, "params": {{"emails": ["ana@agency.example", "ben@agency.example"], "role": "editor"}}}}"#,
            if dry { r#" "dry_run": true,"# } else { "" }
        )
    };
    let sync_note = if synced {
        "(an inventory.sync is running now so that reports have data)"
    } else {
        "(reports need an inventory.sync first: `ops sync --all --watch`)"
    };
    format!(
        "\n\
Flotilla demo is running at {url}
  database: SQLite in {dir} (wiped at every start)
  Instantly: a simulator at {sim_url} with {n} sample client workspaces, labelled {regions}
             (every fifth also tier-1); Flotilla stores their keys encrypted in its vault.

Operator token (admin, shown once):

  export FLOTILLA_URL={url}
  export FLOTILLA_TOKEN={token}

Try it with curl (in another terminal, after the two exports):

  # 1. Dry run: who would be invited into every east workspace (writes nothing)
  curl -s -X POST $FLOTILLA_URL/v1/operations {auth} -H 'content-type: application/json' \\
    -d '{dry}'
  # 2. The real invite; follow it with GET $FLOTILLA_URL/v1/operations/<id>
  curl -s -X POST $FLOTILLA_URL/v1/operations {auth} -H 'content-type: application/json' \\
    -d '{real}'
  # 3. Every API key in every workspace, with risk flags such as all:all {sync_note}
  curl -s \"$FLOTILLA_URL/v1/reports/api-keys?format=csv\" {auth}

The same with the CLI{cli_note}:

  {me} ops invite --label east --email ana@agency.example --email ben@agency.example --role editor --dry-run --watch
  {me} ops invite --label east --email ana@agency.example --email ben@agency.example --role editor --watch
  {me} report api-keys
  {me} workspaces list

Ctrl-C stops the demo.
",
        dir = args.data_dir.display(),
        sim_url = sim.base_url(),
        n = args.workspaces,
        regions = REGIONS.join(", "),
        token = token.expose_secret(),
        cli_note = if me == "flotilla" { String::new() } else { format!(" (from here, `flotilla` is {me})") },
        dry = invite(true),
        real = invite(false),
    )
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.workspaces == 0 || args.workspaces > 1000 {
        anyhow::bail!("--workspaces must be 1..=1000");
    }
    fresh_dir(&args.data_dir)?;
    let sim = Simulator::spawn_on(
        args.sim_listen,
        SimConfig {
            latency: Duration::from_millis(args.sim_latency_ms),
            ..SimConfig::default()
        },
    )
    .await
    .context("while starting the Instantly simulator")?;
    let demo = sim.seed_demo(args.workspaces);

    let db_path = args.data_dir.join("flotilla.db");
    let mut config = Config::new(
        format!("sqlite://{}", db_path.display()),
        sim.base_url()
            .parse()
            .context("while parsing the simulator URL")?,
    );
    config.data_dir = args.data_dir.clone();
    config.listen = args.listen;
    // The demo's keyring lives in memory only: the directory is wiped at the next start anyway.
    let keyring = Keyring::generate("demo");
    let state = app::prepare(config, keyring).await?;
    let token = crate::auth::new_token();
    crate::auth::insert_operator(&state.store, "demo-admin", "admin", &[], &token, true)
        .await
        .context("while creating the demo operator")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "while binding {} (pass --listen 127.0.0.1:PORT for another port)",
                args.listen
            )
        })?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = app::shutdown_on_signals();
    let server = tokio::spawn(app::serve(state, listener, shutdown.clone()));

    let http = reqwest::Client::new();
    if let Err(err) = register_all(&http, &url, &token, demo).await {
        shutdown.cancel();
        let _ = server.await;
        return Err(err);
    }
    let synced = start_inventory_sync(&http, &url, &token).await;
    println!("{}", banner(&args, &url, &sim, &token, synced));
    server.await.context("while serving")??;
    eprintln!("demo stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_demo_or_empty_directories_are_wiped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        fresh_dir(&dir).unwrap();
        std::fs::write(dir.join("flotilla.db"), b"old").unwrap();
        fresh_dir(&dir).unwrap();
        assert!(
            !dir.join("flotilla.db").exists(),
            "a demo directory starts fresh"
        );
        assert!(dir.join(MARKER).exists());

        let precious = tmp.path().join("precious");
        std::fs::create_dir_all(&precious).unwrap();
        std::fs::write(precious.join("flotilla.db"), b"keep").unwrap();
        let err = fresh_dir(&precious).unwrap_err().to_string();
        assert!(err.contains("refusing"), "{err}");
        assert!(precious.join("flotilla.db").exists());
    }
}
