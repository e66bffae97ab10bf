//! Starting the service: connect and migrate the database, open the vault, then serve the API
//! and run the engine until shutdown.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use flotilla_vault::{Database, Keyring, Vault};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::config::{Config, ProcessRole};
use crate::engine::Engine;
use crate::store::Store;

/// The process-wide Prometheus recorder (installed once; later calls share it).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => {
                // `install_recorder` leaves upkeep to the caller: without it every histogram
                // sample is kept until the next scrape, so a service nobody scrapes grows by
                // each upstream request it makes. The recorder lives as long as the process.
                let upkeep = h.clone();
                let spawned = std::thread::Builder::new()
                    .name("metrics-upkeep".into())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(std::time::Duration::from_secs(5));
                            upkeep.run_upkeep();
                        }
                    });
                if let Err(err) = spawned {
                    tracing::warn!(error = %err, "metrics upkeep thread not started");
                }
                Some(h)
            }
            Err(err) => {
                tracing::warn!(error = %err, "metrics recorder not installed");
                None
            }
        })
        .clone()
}

/// Finds the vault keyring: `FLOTILLA_VAULT_KEYS` / `FLOTILLA_VAULT_KEY_FILE`, or on the
/// embedded default a key file in the data directory, generated on first start.
pub fn resolve_keyring(config: &Config) -> anyhow::Result<Keyring> {
    if let Some(keyring) = Keyring::from_env().context("while reading the vault keyring")? {
        return Ok(keyring);
    }
    if !config.is_sqlite() {
        anyhow::bail!(
            "FLOTILLA_VAULT_KEYS or FLOTILLA_VAULT_KEY_FILE is required with a Postgres database \
             (a generated key file is only for the embedded SQLite default)"
        );
    }
    let path = config.data_dir.join("vault.key");
    let (keyring, created) =
        Keyring::load_or_create_file(&path).context("while loading the vault key file")?;
    if created {
        eprintln!(
            "\n*** NOTICE: generated a new vault key file at {} (mode 0600).\n\
             *** Every stored Instantly key is encrypted with it: back it up; losing it loses them.\n\
             *** In production pass FLOTILLA_VAULT_KEYS or FLOTILLA_VAULT_KEY_FILE instead.\n",
            path.display()
        );
    }
    Ok(keyring)
}

/// Connects to and migrates the database.
pub async fn connect(config: &Config) -> anyhow::Result<Database> {
    let db = Database::connect(&config.database_url)
        .await
        .context("while connecting to the database")?;
    db.migrate().await.context("while running migrations")?;
    Ok(db)
}

/// Builds the shared state: database, vault, HTTP pool.
pub async fn prepare(config: Config, keyring: Keyring) -> anyhow::Result<AppState> {
    let db = connect(&config).await?;
    prepare_with(config, db, keyring).await
}

/// Builds the shared state on an already connected and migrated database.
pub async fn prepare_with(
    config: Config,
    db: Database,
    keyring: Keyring,
) -> anyhow::Result<AppState> {
    let vault = Vault::open(db.clone(), keyring)
        .await
        .context("while opening the vault")?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .context("while building the HTTP client")?;
    Ok(AppState {
        store: Store::new(db),
        vault,
        config: Arc::new(config),
        http,
        notify: Arc::new(Notify::new()),
        metrics: metrics_handle(),
    })
}

/// Serves the API on `listener` and runs the engine (per the configured role) until `shutdown`.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let engine_task = if state.config.role != ProcessRole::Api {
        let engine = Arc::new(Engine::new(
            state.store.clone(),
            state.vault.clone(),
            state.config.clone(),
            state.http.clone(),
            state.notify.clone(),
        ));
        Some(tokio::spawn(engine.run(shutdown.clone())))
    } else {
        None
    };
    // The inventory schedule runs beside the engine (off unless FLOTILLA_SYNC_INTERVAL_SECONDS > 0).
    let schedule_task = (state.config.role != ProcessRole::Api
        && state.config.sync_interval_seconds > 0)
        .then(|| {
            tokio::spawn(crate::schedule::run(
                state.store.clone(),
                state.config.sync_interval_seconds,
                state.notify.clone(),
                shutdown.clone(),
            ))
        });
    let addr = listener.local_addr()?;
    tracing::info!(%addr, role = ?state.config.role, "flotilla listening");
    let grace = Duration::from_secs(state.config.shutdown_grace_seconds);
    let app = api::router(state);
    let http_shutdown = shutdown.clone();
    let http = std::future::IntoFuture::into_future(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await }),
    );
    // An open event stream (`GET /v1/operations/{id}/events`) ends only when its operation
    // finishes, which a stopping engine will not bring about: after the grace, stop waiting
    // for connections (clients such as `flotilla ops watch` reconnect to the next process).
    let http_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = http => served.context("while serving HTTP")?,
        () = http_deadline => {
            tracing::warn!("HTTP connections still open after the shutdown grace; closing them");
        }
    }
    if let Some(task) = schedule_task {
        let _ = task.await;
    }
    if let Some(task) = engine_task {
        let _ = tokio::time::timeout(Duration::from_secs(120), task).await;
    }
    Ok(())
}

/// A shutdown token fired by SIGTERM or Ctrl-C.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        fire.cancel();
    });
    token
}
