//! The small HTTP server that shows the pipeline's metrics (`/metrics`) and tells
//! orchestrators whether the process is healthy (`/health`).

//!
//! Slow or hostile clients cannot take it down: at most [`MAX_CONNECTIONS`] are served
//! at once (more are closed at once, to try again), a client has [`HEADER_TIMEOUT`] to send
//! its request headers and [`CONNECTION_TIMEOUT`] in all, and a failing `accept` (out
//! of file descriptors) is retried after a pause rather than in a busy loop.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use demarc_pipeline::{Metrics, Shared};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send its request headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a connection may stay open.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What `/health` looks at.
#[derive(Debug, Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub shared: Arc<Shared>,
    /// Work pending this long with nothing completed is a stall.
    pub stall_limit: Duration,
}

impl Health {
    /// `Ok` while the pipeline runs and moves; otherwise why not.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.metrics.health(&self.shared, self.stall_limit)
    }
}

/// Serves `/metrics` and `/health` on `listener` until the runtime ends.
pub async fn serve(listener: tokio::net::TcpListener, health: Health) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let health = Arc::new(health);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "metrics endpoint: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // At the cap, a new connection is closed at once: it is retried by its client,
        // while waiting ones would fill the listen backlog for everybody.
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let health = Arc::clone(&health);
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let health = Arc::clone(&health);
                async move { Ok::<_, Infallible>(respond(&request, &health)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            // A client that goes away or dawdles is its own business.
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
        });
    }
}

fn respond(request: &Request<Incoming>, health: &Health) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match request.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            health.metrics.encode(),
        ),
        "/health" => match health.check() {
            Ok(()) => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{why}\n"),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /health\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

/// Binds the metrics address now, so that a taken port fails the start.
pub fn bind(address: SocketAddr) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("cannot listen for metrics on {address}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}
