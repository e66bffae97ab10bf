//! Connection handling. We serve connections ourselves (hyper http1) rather than with
//! `axum::serve`, so a request can end with its connection closed and no response at all
//! (dropped-connection faults and outages).

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::routing::any;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::api::{self, DropConnection};
use crate::control;
use crate::error::envelope;
use crate::state::Shared;

/// The whole HTTP surface: `/api/v2/…` and the control API `/_sim/…`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v2", any(api::handle))
        .route("/api/v2/{*rest}", any(api::handle))
        .nest("/_sim", control::router())
        .fallback(fallback)
        .with_state(shared)
}

async fn fallback(
    method: http::Method,
    uri: http::Uri,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let message = format!("Route {method}:{} not found", uri.path());
    (
        StatusCode::NOT_FOUND,
        axum::Json(envelope(StatusCode::NOT_FOUND, &message)),
    )
}

/// Accepts connections until `shutdown` fires or its sender is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let router = router(shared.clone());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shared = shared.clone();
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let router = router.clone();
                let shared = shared.clone();
                async move {
                    let control = req.uri().path().starts_with("/_sim");
                    // An outage keeps the control API reachable, so it can be ended over HTTP.
                    if !control && shared.down.load(Ordering::Relaxed) {
                        return Err(io::Error::other("simulated outage"));
                    }
                    let response = match router.oneshot(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    };
                    if response.extensions().get::<DropConnection>().is_some() {
                        // Returning an error makes hyper close the socket without a response.
                        return Err(io::Error::other("simulated dropped connection"));
                    }
                    Ok(response)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}
