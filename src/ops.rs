//! The operations HTTP port: the public JWK Set at
//! `/.well-known/jwks.json`, so that issuers can fetch the key they must
//! encrypt to, key reload metrics at `/metrics` in the Prometheus text
//! format, and a plain liveness answer at `/healthz`.

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use tokio::net::TcpListener;

use crate::store::KeyStore;

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
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(server.address = %address, "Listening on the operations port");
    }
    let router = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(store);
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

/// Renders the key store's reload state in the Prometheus text format
/// (version 0.0.4).
async fn metrics(State(store): State<Arc<KeyStore>>) -> impl IntoResponse {
    use std::fmt::Write;

    let mut text = String::new();
    if let Some(status) = store.status() {
        let seconds = |time: std::time::SystemTime| {
            time.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs())
        };
        let _ = writeln!(
            text,
            "# HELP jwed_key_reloads_total Key set reloads since start, by result. A file that stays broken counts once."
        );
        let _ = writeln!(text, "# TYPE jwed_key_reloads_total counter");
        let _ = writeln!(text, "jwed_key_reloads_total{{result=\"success\"}} {}", status.reloads);
        let _ = writeln!(text, "jwed_key_reloads_total{{result=\"failure\"}} {}", status.failures);
        let _ = writeln!(
            text,
            "# HELP jwed_key_reload_failing Whether the key files currently fail to load (1) or not (0)."
        );
        let _ = writeln!(text, "# TYPE jwed_key_reload_failing gauge");
        let _ = writeln!(
            text,
            "jwed_key_reload_failing {}",
            u8::from(status.last_error.is_some())
        );
        let _ = writeln!(
            text,
            "# HELP jwed_keys_loaded_timestamp_seconds When the key set in force was loaded."
        );
        let _ = writeln!(text, "# TYPE jwed_keys_loaded_timestamp_seconds gauge");
        let _ = writeln!(text, "jwed_keys_loaded_timestamp_seconds {}", seconds(status.loaded_at));
    }
    let _ = writeln!(
        text,
        "# HELP jwed_revocations_in_memory Revocations added through the Admin call."
    );
    let _ = writeln!(text, "# TYPE jwed_revocations_in_memory gauge");
    let _ = writeln!(text, "jwed_revocations_in_memory {}", store.revocations_in_memory());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
}
