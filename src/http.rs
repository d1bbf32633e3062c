//! `/metrics`, `/healthz` and `/readyz` for SREs and orchestrators.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// Errors starting the HTTP endpoint.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr} for /metrics: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Shared health state: the runtime flips `ready` once it has joined its
/// group with its topics in place, and clears it while stopping.
#[derive(Debug, Default)]
pub struct Health {
    pub ready: AtomicBool,
}

/// What the endpoints serve: every stage the process runs.
#[derive(Clone)]
struct AppState {
    metrics: Arc<[Arc<Metrics>]>,
    health: Arc<[Arc<Health>]>,
}

/// Binds `addr` and serves until `shutdown` resolves: `/metrics` shows the
/// metrics of every stage in `metrics`, `/readyz` answers ready once every
/// `health` is. Returns the bound address (useful with port 0) and the
/// server task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Vec<Arc<Metrics>>,
    health: Vec<Arc<Health>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), HttpError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(AppState {
            metrics: metrics.into(),
            health: health.into(),
        });
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "Metrics endpoint stopped.");
        }
    });
    Ok((local, task))
}

async fn metrics_handler(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&s.metrics),
    )
}

async fn ready_handler(State(s): State<AppState>) -> impl IntoResponse {
    let ready = !s.health.is_empty() && s.health.iter().all(|h| h.ready.load(Ordering::Relaxed));
    if ready {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        buf
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let metrics = Arc::new(Metrics::new());
        metrics.events_in.inc_by(3);
        let health = Arc::new(Health::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, task) = serve(
            "127.0.0.1:0".parse().unwrap(),
            vec![metrics],
            vec![health.clone()],
            async move {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
        let m = get(addr, "/metrics").await;
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        assert!(m.contains("cxstream_events_in_total 3"));
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        health.ready.store(true, Ordering::Relaxed);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        let _ = tx.send(());
        task.await.unwrap();
    }
}
