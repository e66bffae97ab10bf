//! Configuration, read once at start from `FLOTILLA_*` environment variables (see `.env.sample`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use url::Url;

/// Which parts of the service a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProcessRole {
    /// REST API and engine in one process (the default).
    #[default]
    All,
    /// REST API only: operations are written to the database and run by engine processes.
    Api,
    /// Engine only: claims and runs targets; serves only `/healthz`, `/readyz` and `/metrics`.
    Engine,
}

/// Service configuration. Every field has an environment variable; `.env.sample` documents them.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database URL: `sqlite://path` (embedded default) or `postgres://…`.
    #[arg(
        long,
        env = "FLOTILLA_DATABASE_URL",
        default_value = "sqlite://data/flotilla.db"
    )]
    pub database_url: String,

    /// Address the REST API listens on.
    #[arg(long, env = "FLOTILLA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Instantly's base URL; the client appends `/api/v2/…`.
    #[arg(
        long,
        env = "FLOTILLA_INSTANTLY_BASE_URL",
        default_value = "https://api.instantly.ai"
    )]
    pub instantly_base_url: Url,

    /// Directory for the embedded default's files (SQLite database, generated vault key file).
    #[arg(long, env = "FLOTILLA_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Which parts this process runs: all, api or engine.
    #[arg(long, env = "FLOTILLA_ROLE", value_enum, default_value_t = ProcessRole::All)]
    pub role: ProcessRole,

    /// Identifies this process in leases; defaults to host name, pid and a random suffix.
    #[arg(long, env = "FLOTILLA_REPLICA_ID")]
    pub replica_id: Option<String>,

    /// Targets in flight at once in this process, across all operations.
    #[arg(long, env = "FLOTILLA_MAX_IN_FLIGHT", default_value_t = 64)]
    pub max_in_flight: usize,

    /// Concurrent writes inside one target (still paced per workspace).
    #[arg(long, env = "FLOTILLA_ITEM_CONCURRENCY", default_value_t = 8)]
    pub item_concurrency: usize,

    /// Lease length for a claimed target, in seconds; a heartbeat renews it at a third of that.
    #[arg(long, env = "FLOTILLA_LEASE_SECONDS", default_value_t = 30)]
    pub lease_seconds: u64,

    /// Attempts a target gets for transient failures before it fails.
    #[arg(long, env = "FLOTILLA_TARGET_ATTEMPTS", default_value_t = 6)]
    pub target_attempts: u32,

    /// First delay before a target is retried, in milliseconds (doubles per attempt, full jitter).
    #[arg(long, env = "FLOTILLA_RETRY_BASE_MS", default_value_t = 1000)]
    pub retry_base_ms: u64,

    /// Longest delay before a target is retried, in milliseconds.
    #[arg(long, env = "FLOTILLA_RETRY_MAX_MS", default_value_t = 60_000)]
    pub retry_max_ms: u64,

    /// How often an idle engine looks for claimable targets, in milliseconds.
    #[arg(long, env = "FLOTILLA_POLL_MS", default_value_t = 250)]
    pub poll_ms: u64,

    /// Requests per second Flotilla sends to one Instantly workspace (Instantly allows 100).
    #[arg(long, env = "FLOTILLA_PACE_PER_SECOND", default_value_t = 80)]
    pub pace_per_second: u32,

    /// Requests per minute Flotilla sends to one Instantly workspace (Instantly allows 6,000).
    #[arg(long, env = "FLOTILLA_PACE_PER_MINUTE", default_value_t = 5000)]
    pub pace_per_minute: u32,

    /// Burst allowed above the per-second pace.
    #[arg(long, env = "FLOTILLA_PACE_BURST", default_value_t = 10)]
    pub pace_burst: u32,

    /// Also pace delegated calls on the admin credential's bucket (Instantly does not say which
    /// bucket `x-as-workspace` calls spend: instantly-api.md §4 [UNK]).
    #[arg(long, env = "FLOTILLA_PACE_ADMIN_CREDENTIAL", default_value_t = true, action = clap::ArgAction::Set)]
    pub pace_admin_credential: bool,

    /// Most targets one operation may resolve to.
    #[arg(long, env = "FLOTILLA_MAX_TARGETS", default_value_t = 20_000)]
    pub max_targets: usize,

    /// Most items (emails, ids, labels) in one operation's params.
    #[arg(long, env = "FLOTILLA_MAX_ITEMS", default_value_t = 1000)]
    pub max_items: usize,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "FLOTILLA_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Seconds a graceful shutdown waits for in-flight targets before releasing their leases.
    #[arg(long, env = "FLOTILLA_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
}

impl Config {
    /// A configuration with every default, for the given database and Instantly base URL.
    pub fn new(database_url: impl Into<String>, instantly_base_url: Url) -> Config {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        // Parsing an empty command line yields the documented defaults; environment variables
        // still apply, which is what a caller embedding the service expects.
        let mut config = Wrapper::parse_from(["flotilla"]).config;
        config.database_url = database_url.into();
        config.instantly_base_url = instantly_base_url;
        config
    }

    /// Lease length.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds.max(1))
    }

    /// True for the embedded SQLite default.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// This process's replica id.
    pub fn replica_id(&self) -> String {
        self.replica_id.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "flotilla".into());
            format!(
                "{host}-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            )
        })
    }
}
