//! Fan-out benchmark: the engine against the simulator, compared with a plain loop of the client
//! at the same concurrency measured in the same run.
//!
//! ```sh
//! cargo run --release -p flotilla_service --example bench_fanout -- --workspaces 1000 --invites 5
//! cargo run --release -p flotilla_service --example bench_fanout -- --workspaces 1 --invites 1000
//! ```
//!
//! Prints wall time, upstream calls/s, the plain-loop ceiling and the ratio, 429s received and
//! peak memory (VmHWM of this process, simulator included). With one workspace it also prints
//! the achieved request rate against the configured pace.

use std::time::{Duration, Instant};

use flotilla_instantly::{Client, ClientConfig, CreateMember, Pacer, Pacing, RateLimits, Role};
use flotilla_instantly_sim::{SimConfig, Simulator};
use flotilla_service::config::Config;
use flotilla_service::store::{Store, WorkspaceRow, now_ms};
use flotilla_vault::testing::TestDb;
use flotilla_vault::{Backend, CredentialSource, Keyring, NewCredential, Purpose};
use futures::{StreamExt, stream};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

struct Args {
    workspaces: usize,
    invites: usize,
    latency_ms: u64,
    postgres: bool,
}

fn args() -> Args {
    let mut a = Args {
        workspaces: 1000,
        invites: 5,
        latency_ms: 50,
        postgres: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("numeric value")
        };
        match flag.as_str() {
            "--workspaces" => a.workspaces = value() as usize,
            "--invites" => a.invites = value() as usize,
            "--latency-ms" => a.latency_ms = value(),
            "--postgres" => a.postgres = true,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn emails(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}{i}@bench.example"))
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let sim = Simulator::spawn(SimConfig {
        latency: Duration::from_millis(args.latency_ms),
        ..SimConfig::default()
    })
    .await?;
    let test_db = TestDb::new(if args.postgres {
        Backend::Postgres
    } else {
        Backend::Sqlite
    })
    .await;
    let keys = flotilla_vault::generate_key_spec("bench");
    let keyring = Keyring::parse(keys.expose_secret(), "bench")?;
    let mut config = Config::new("unused", sim.base_url().parse()?);
    config.poll_ms = 20;
    let max_in_flight = config.max_in_flight;
    let item_concurrency = config.item_concurrency;
    let pace = config.pace_per_second;
    let state = flotilla_service::app::prepare_with(config, test_db.db().clone(), keyring).await?;

    // Register workspaces directly (registration is not what is measured).
    let mut sim_keys: Vec<(String, SecretString)> = Vec::with_capacity(args.workspaces);
    let setup = Instant::now();
    for i in 0..args.workspaces {
        let ws = sim.create_workspace(&format!("bench-{i}"));
        let key = SecretString::from(sim.create_key(&ws, "flotilla", &["all:all"]).key);
        let row = WorkspaceRow {
            id: Uuid::now_v7(),
            name: format!("bench-{i}"),
            instantly_workspace_id: ws.clone(),
            mode: "direct".into(),
            admin_workspace_id: None,
            labels: vec!["bench".into()],
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        let mut tx = state.store.begin_write().await?;
        Store::insert_workspace(&mut tx, &row).await?;
        state
            .vault
            .store(
                &mut tx,
                NewCredential {
                    workspace_id: row.id,
                    instantly_workspace_id: &ws,
                    purpose: Purpose::Access,
                    source: CredentialSource::Direct(&key),
                },
            )
            .await?;
        tx.commit().await?;
        sim_keys.push((ws, key));
    }
    eprintln!(
        "setup: {} workspaces in {:.1}s",
        args.workspaces,
        setup.elapsed().as_secs_f64()
    );

    // Baseline: a plain loop of the client, same concurrency (targets × items), same pacing.
    let http = reqwest::Client::new();
    let pacer = Pacer::new(RateLimits {
        per_second: pace,
        per_minute: 5000,
        burst: 10,
    });
    sim.clear_request_log();
    let base_emails = emails("base", args.invites);
    let sim_url: url::Url = sim.base_url().parse()?;
    let started = Instant::now();
    stream::iter(sim_keys.iter())
        .for_each_concurrent(max_in_flight, |(ws, key)| {
            let http = http.clone();
            let pacer = pacer.clone();
            let base_emails = &base_emails;
            let sim_url = sim_url.clone();
            async move {
                let mut cfg = ClientConfig::new(sim_url, key.clone());
                cfg.pacing = Some(Pacing {
                    pacer,
                    keys: vec![format!("ws:{ws}")],
                });
                let client = Client::with_http(cfg, http).expect("client");
                stream::iter(base_emails.iter())
                    .for_each_concurrent(item_concurrency, |email| {
                        let client = client.clone();
                        async move {
                            let _ = client
                                .create_member(&CreateMember {
                                    email: email.clone(),
                                    role: Role::parse("view"),
                                })
                                .await;
                        }
                    })
                    .await;
            }
        })
        .await;
    let base_secs = started.elapsed().as_secs_f64();
    let base_calls = sim.request_log().len();
    let base_rate = base_calls as f64 / base_secs;

    // Flotilla: one members.invite operation over every workspace.
    sim.clear_request_log();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let token = flotilla_service::auth::new_token();
    flotilla_service::auth::ensure_bootstrap_admin(&state.store, Some(&token)).await?;
    let store = state.store.clone();
    let server = tokio::spawn(flotilla_service::app::serve(
        state,
        listener,
        shutdown.clone(),
    ));
    let started = Instant::now();
    let op: serde_json::Value = http
        .post(format!("{url}/v1/operations"))
        .bearer_auth(token.expose_secret())
        .json(&json!({
            "kind": "members.invite",
            "targets": { "labels": ["bench"] },
            "params": { "emails": emails("flotilla", args.invites), "role": "view" },
        }))
        .send()
        .await?
        .json()
        .await?;
    let id: Uuid = op["id"].as_str().expect("operation id").parse()?;
    loop {
        let op = store.operation(id).await?.expect("operation");
        if op.finished_at.is_some() {
            anyhow::ensure!(op.status == "succeeded", "operation ended {}", op.status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let log = sim.request_log();
    let calls = log.len();
    let rate = calls as f64 / secs;
    let rate_limited: u64 = sim_keys
        .iter()
        .map(|(ws, _)| sim.counters(ws).rate_limited)
        .sum();
    shutdown.cancel();
    let _ = server.await;

    println!(
        "fan-out: {} workspaces x {} invites, simulator latency {} ms",
        args.workspaces, args.invites, args.latency_ms
    );
    println!("  plain loop : {base_calls} calls in {base_secs:.2}s = {base_rate:.0} calls/s");
    println!("  flotilla   : {calls} calls in {secs:.2}s = {rate:.0} calls/s");
    println!(
        "  ratio      : {:.2} of the plain-loop ceiling (calls/s)",
        rate / base_rate
    );
    println!("  429s       : {rate_limited}");
    println!(
        "  peak RSS   : {:.0} MiB (whole process, simulator included)",
        peak_rss_mib()
    );
    if args.workspaces == 1 {
        let writes = log
            .iter()
            .filter(|r| r.method == "POST")
            .collect::<Vec<_>>();
        if let (Some(first), Some(last)) = (writes.first(), writes.last()) {
            let span = (last.started_at - first.started_at).num_milliseconds() as f64 / 1000.0;
            let achieved = (writes.len().saturating_sub(1)) as f64 / span.max(0.001);
            println!(
                "  pace       : {achieved:.1} writes/s against a configured {pace}/s = {:.2}",
                achieved / pace as f64
            );
        }
    }
    test_db.cleanup().await;
    Ok(())
}
