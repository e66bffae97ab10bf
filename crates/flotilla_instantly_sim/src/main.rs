//! `instantly-sim`: runs the Instantly API v2 simulator as a standalone server.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use flotilla_instantly_sim::{SimConfig, Simulator};

/// Instantly API v2 simulator (test support and demo upstream; not the real API).
#[derive(Debug, Parser)]
#[command(name = "instantly-sim", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the chosen URL is printed first).
    #[arg(long, env = "INSTANTLY_SIM_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Delay added to every /api/v2 response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of /api/v2 requests answered with an injected 500.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Fraction of /api/v2 requests whose connection is closed with no response.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Fraction of /api/v2 requests answered with an HTML 502 "from a proxy".
    #[arg(long, default_value_t = 0.0)]
    proxy_502_rate: f64,
    /// Requests per second per workspace (0 = unlimited).
    #[arg(long, default_value_t = 100)]
    rps: u32,
    /// Requests per minute per workspace (0 = unlimited).
    #[arg(long, default_value_t = 6000)]
    rpm: u32,
    /// Seed of the fault pattern.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Send Retry-After on rate-limit 429s.
    #[arg(long)]
    retry_after: bool,
    /// Create N sample workspaces and print each id and an all:all key as a JSON line.
    #[arg(long, value_name = "N")]
    seed_demo: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = SimConfig {
        rps: args.rps,
        rpm: args.rpm,
        latency: Duration::from_millis(args.latency_ms),
        fail_rate: args.fail_rate,
        drop_rate: args.drop_rate,
        seed: args.seed,
        retry_after: args.retry_after,
        ..SimConfig::default()
    };
    let sim = Simulator::spawn_on(args.listen, config)
        .await
        .context("while starting the simulator")?;
    sim.set_proxy_502_rate(args.proxy_502_rate);
    // stdout carries JSON lines only: first the URL, then one line per demo workspace.
    println!("{}", serde_json::json!({ "base_url": sim.base_url() }));
    if let Some(n) = args.seed_demo {
        for d in sim.seed_demo(n) {
            println!(
                "{}",
                serde_json::to_string(&d).context("while printing a demo workspace")?
            );
        }
    }
    tracing::info!(base_url = %sim.base_url(), "instantly-sim listening");
    tokio::signal::ctrl_c()
        .await
        .context("while waiting for Ctrl-C")?;
    Ok(())
}
