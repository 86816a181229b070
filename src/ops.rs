//! The operations HTTP port: the public JWK Set at
//! `/.well-known/jwks.json`, so that issuers can fetch the key they must
//! encrypt to, metrics at `/metrics` in the OpenMetrics text format that
//! Prometheus scrapes, a plain liveness response at `/healthz`, and
//! `/readyz`, which fails while audit records cannot be written in
//! fail-closed mode, as gRPC health does.

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use tokio::net::TcpListener;

use crate::{metrics::Metrics, store::KeyStore};

/// Media type of a JWK Set (RFC 7517 section 8.5.1).
const JWK_SET_MEDIA_TYPE: &str = "application/jwk-set+json";

/// Serves the operations routes on `listener` until `shutdown` completes.
///
/// # Errors
///
/// Returns the I/O error that stopped the server.
pub async fn serve(
    listener: TcpListener,
    store: Arc<KeyStore>,
    metrics: Arc<Metrics>,
    ready: tokio::sync::watch::Receiver<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(server.address = %address, "Listening on the operations port");
    }
    let router = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(store)
        .route("/metrics", get(scrape).with_state(metrics))
        .route("/readyz", get(readiness).with_state(ready));
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

async fn jwks(State(store): State<Arc<KeyStore>>) -> impl IntoResponse {
    let body = store.public_jwk_set().to_string();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, JWK_SET_MEDIA_TYPE),
            (header::CACHE_CONTROL, "max-age=60"),
        ],
        body,
    )
}

/// Returns 200 while calls can be audited, 503 while they cannot.
async fn readiness(State(ready): State<tokio::sync::watch::Receiver<bool>>) -> impl IntoResponse {
    if *ready.borrow() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: audit records cannot be written\n",
        )
    }
}

/// Encodes every metric of [`Metrics`].
async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}
