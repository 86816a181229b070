//! `jwed serve`.

use std::{path::PathBuf, sync::Arc};

use super::{EXIT_USAGE, ServeArgs};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::{
    admin::{AdminService, KeysService},
    audit::{AuditKey, AuditLog},
    callers::CallerPolicy,
    config::TlsFiles,
    config::{Config, FileConfig, Overrides},
    decrypt::UnsignedTokens,
    metrics::Metrics,
    ops,
    server::{self, BoundServer, ServeError},
    service::Auditing,
    store::{self, KeyStore, Sources},
};

pub(super) async fn run(args: ServeArgs) -> u8 {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        config = %args.config.as_deref().map_or_else(|| "none".into(), |path| path.display().to_string()),
        "Starting jwed"
    );
    let config = match load_config(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("jwed: {message}");
            return EXIT_USAGE;
        }
    };
    let store = match load_store(&config) {
        Ok(store) => Arc::new(store),
        Err(message) => {
            eprintln!("jwed: {message}");
            return EXIT_USAGE;
        }
    };

    let shutdown = match server::shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            tracing::error!(error = %error, "Cannot install signal handlers");
            return 1;
        }
    };
    let auditing = match open_audit(&config) {
        Ok(auditing) => auditing,
        Err(message) => {
            eprintln!("jwed: {message}");
            return EXIT_USAGE;
        }
    };
    let metrics = Arc::new(Metrics::new(Some(store.clone())));
    let (stop_watch, stopped) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(store::watch(store.clone(), config.reload_interval, stopped));
    let ops = match config.ops_listen {
        Some(address) => match tokio::net::TcpListener::bind(address).await {
            Ok(listener) => {
                let mut stopped = stop_watch.subscribe();
                let shutdown = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                Some(tokio::spawn(ops::serve(
                    listener,
                    store.clone(),
                    metrics.clone(),
                    auditing.healthy.subscribe(),
                    shutdown,
                )))
            }
            Err(error) => {
                tracing::error!(error = %error, server.address = %address, "Cannot listen on the operations port");
                return 1;
            }
        },
        None => None,
    };

    let result = match bind(&config, store, auditing).await {
        Ok(bound) => bound.with_metrics(metrics).serve(shutdown).await,
        Err(error) => Err(error),
    };
    let _ = stop_watch.send(true);
    let _ = watcher.await;
    if let Some(ops) = ops {
        let _ = ops.await;
    }
    match result {
        Ok(()) => {
            tracing::info!("Stopped");
            0
        }
        Err(error) => {
            tracing::error!(error = %error, "Server failed");
            1
        }
    }
}

async fn bind(config: &Config, store: Arc<KeyStore>, auditing: Auditing) -> Result<BoundServer<KeyStore>, ServeError> {
    if let Some(address) = config.tcp_listen {
        if !address.ip().is_loopback() && config.tls.is_none() && config.callers.is_empty() {
            tracing::warn!(
                server.address = %address,
                "The TCP listener has no TLS and no [[callers]] rule: anyone who can reach it can decrypt tokens"
            );
        }
    }
    let mut bound = BoundServer::bind(
        config.unix_socket.as_deref(),
        config.tcp_listen,
        store.clone(),
        config.limits,
        auditing,
        config.shutdown_grace,
    )
    .await?
    .with_keys(KeysService::new(store.clone()))
    .with_callers(CallerPolicy::new(config.callers.clone()));
    if let Some(files) = &config.tls {
        bound = bound.with_tls(tls_config(files)?);
    }
    if let Some(gate) = &config.gate {
        bound = bound
            .with_gate(gate.settings.clone(), gate.envoy, gate.http_listen)
            .await?;
    }
    match &config.admin_socket {
        Some(path) => bound.bind_admin(path, AdminService::new(store, config.admin_uids.clone())),
        None => Ok(bound),
    }
}

/// Reads the mTLS files: the listener's identity and the CA that client
/// certificates must chain to. A client without a valid certificate is
/// refused during the handshake.
fn tls_config(files: &TlsFiles) -> Result<ServerTlsConfig, ServeError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ServeError::Bind {
            address: format!("TLS file {}", path.display()),
            source,
        })
    };
    let identity = Identity::from_pem(read(&files.cert)?, read(&files.key)?);
    Ok(ServerTlsConfig::new()
        .identity(identity)
        .client_ca_root(Certificate::from_pem(read(&files.client_ca)?)))
}

fn open_audit(config: &Config) -> Result<Auditing, String> {
    let key = match &config.audit_key_file {
        Some(path) => AuditKey::read(path).map_err(|err| format!("invalid setting audit.key_file: {err}"))?,
        None => {
            tracing::warn!(
                "No audit.key_file: fingerprints and the audit chain use a random key and cannot be checked after a restart"
            );
            AuditKey::random()?
        }
    };
    let log = AuditLog::open(key, config.audit_destination.clone())
        .map_err(|err| format!("invalid setting audit.file: {err}"))?;
    Ok(Auditing::new(log, config.audit_on_failure))
}

fn load_config(args: ServeArgs) -> Result<Config, String> {
    let file = match &args.config {
        Some(path) => FileConfig::read(path).map_err(|err| err.to_string())?,
        None => FileConfig::default(),
    };
    let overrides = Overrides {
        unix_socket: args.unix_socket.map(PathBuf::from),
        tcp_listen: args.tcp_listen,
        private_keys: args.private_keys,
        issuer_keys: args.issuer_keys,
        revocations: args.revocations,
        issuer: args.issuer,
        audiences: args.audiences.map(|audiences| {
            audiences
                .iter()
                .map(|audience| audience.trim().to_owned())
                .filter(|audience| !audience.is_empty())
                .collect()
        }),
    };
    Config::build(file, overrides).map_err(|err| err.to_string())
}

/// Loads keys, issuer keys and revocations and runs the key self-check;
/// the server binds no socket until this succeeds, so health never reports
/// SERVING before.
fn load_store(config: &Config) -> Result<KeyStore, String> {
    let sources = Sources {
        private_keys: config.private_keys.clone(),
        issuer_keys: config.issuer_keys.clone(),
        revocations: config.revocations.clone(),
        key_algorithms: config.key_algorithms.clone(),
    };
    let store = KeyStore::load(sources, config.policy.clone())?.with_cache(config.cache_max_entries);
    store.with_decrypter(|decrypter| {
        for key in decrypter.keys().iter() {
            tracing::info!(
                key.id = key.kid(),
                key.alg = key.alg().name(),
                key.state = crate::admin::state_name(key.state()),
                "Loaded decryption key"
            );
        }
    });

    match config.policy.unsigned {
        UnsignedTokens::Reject => {}
        UnsignedTokens::SymmetricKeys => tracing::warn!("Unsigned tokens are accepted for symmetric keys"),
        UnsignedTokens::AllKeys => {
            tracing::warn!("Unsigned tokens are accepted for every key: anyone with a public key can mint tokens")
        }
    }
    if config.policy.claims.audiences.is_empty() {
        tracing::warn!("No audience is configured: tokens are not checked for aud unless the request names one");
    }
    Ok(store)
}
