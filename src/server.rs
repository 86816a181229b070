//! Listeners and the gRPC server: `jwed.v1.Decryptor`, `grpc.health.v1`
//! and server reflection on a Unix socket and, optionally, TCP.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use tokio::{
    net::{TcpListener, UnixListener},
    sync::watch,
    task::JoinSet,
};
use tokio_stream::{
    StreamExt,
    wrappers::{TcpListenerStream, UnixListenerStream},
};
use tonic::transport::{Server, ServerTlsConfig};
use tonic_health::ServingStatus;

use crate::{
    admin::{AdminService, KeysService},
    authz::{EnvoyAuthz, Gate, GateSettings},
    callers::CallerPolicy,
    metrics::Metrics,
    pb::{self, admin_server::AdminServer, decryptor_server::DecryptorServer, keys_server::KeysServer},
    service::{Auditing, Decrypt, DecryptorService, Limits, MAX_BATCH_TOKENS},
};

/// Permissions of the admin socket: its owner only.
const ADMIN_SOCKET_MODE: u32 = 0o600;

/// Permissions of the Unix socket: owner and group may connect. Callers in
/// a sidecar share the pod's group through `fsGroup`.
const SOCKET_MODE: u32 = 0o660;

/// Room for `required_scopes` and `audience` on top of the token.
const REQUEST_OVERHEAD_BYTES: usize = 32 * 1024;

/// Health service name of the Decryptor.
pub const SERVICE_NAME: &str = "jwed.v1.Decryptor";

/// Error starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not be created.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The socket path or address.
        address: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The server failed while running.
    #[error("server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A server whose listeners are bound and that is ready to serve.
pub struct BoundServer<D> {
    unix: Option<(UnixListener, PathBuf)>,
    tcp: Option<TcpListener>,
    decrypter: Arc<D>,
    limits: Limits,
    auditing: Auditing,
    grace: Duration,
    keys: Option<KeysService>,
    admin: Option<(UnixListener, PathBuf, AdminService)>,
    tls: Option<ServerTlsConfig>,
    callers: Arc<CallerPolicy>,
    metrics: Arc<Metrics>,
    gate: Option<GateListeners>,
}

/// Gateway checks to serve: the settings, whether Envoy's service is added
/// to the gRPC listeners, and the nginx endpoint's listener.
struct GateListeners {
    settings: Arc<GateSettings>,
    envoy: bool,
    http: Option<TcpListener>,
}

// === impl BoundServer ===

impl<D: Decrypt> BoundServer<D> {
    /// Binds the listeners. A stale socket file left by an earlier run is
    /// replaced; any other file at that path is an error.
    ///
    /// # Errors
    ///
    /// Returns [`ServeError::Bind`] naming the path or address.
    pub async fn bind(
        unix_socket: Option<&Path>,
        tcp: Option<SocketAddr>,
        decrypter: Arc<D>,
        limits: Limits,
        auditing: Auditing,
        grace: Duration,
    ) -> Result<Self, ServeError> {
        let unix = match unix_socket {
            Some(path) => Some((bind_unix(path, SOCKET_MODE)?, path.to_path_buf())),
            None => None,
        };
        let tcp = match tcp {
            Some(address) => Some(TcpListener::bind(address).await.map_err(|source| ServeError::Bind {
                address: address.to_string(),
                source,
            })?),
            None => None,
        };
        Ok(BoundServer {
            unix,
            tcp,
            decrypter,
            limits,
            auditing,
            grace,
            keys: None,
            admin: None,
            tls: None,
            callers: Arc::default(),
            metrics: Arc::default(),
            gate: None,
        })
    }

    /// Admits only the callers that `policy` names.
    pub fn with_callers(mut self, policy: CallerPolicy) -> Self {
        self.callers = Arc::new(policy);
        self
    }

    /// Serves gateway checks: Envoy's `Authorization` service on the gRPC
    /// listeners when `envoy` is set, and the nginx `auth_request` endpoint
    /// on `http_listen` when given.
    ///
    /// # Errors
    ///
    /// Returns [`ServeError::Bind`] when `http_listen` cannot be bound.
    pub async fn with_gate(
        mut self,
        settings: GateSettings,
        envoy: bool,
        http_listen: Option<SocketAddr>,
    ) -> Result<Self, ServeError> {
        let http = match http_listen {
            Some(address) => Some(TcpListener::bind(address).await.map_err(|source| ServeError::Bind {
                address: address.to_string(),
                source,
            })?),
            None => None,
        };
        self.gate = Some(GateListeners {
            settings: Arc::new(settings),
            envoy,
            http,
        });
        Ok(self)
    }

    /// Returns the address of the nginx `auth_request` endpoint, if bound.
    pub fn gate_http_address(&self) -> Option<SocketAddr> {
        self.gate.as_ref()?.http.as_ref()?.local_addr().ok()
    }

    /// Counts calls in `metrics`, which the operations port serves.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Serves TCP with TLS; a config with a client CA requires mTLS.
    pub fn with_tls(mut self, tls: ServerTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Serves `jwed.v1.Keys` beside the Decryptor.
    pub fn with_keys(mut self, keys: KeysService) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Binds the admin socket, which serves `jwed.v1.Admin` and nothing else.
    ///
    /// # Errors
    ///
    /// Returns [`ServeError::Bind`] naming the path.
    pub fn bind_admin(mut self, path: &Path, admin: AdminService) -> Result<Self, ServeError> {
        let listener = bind_unix(path, ADMIN_SOCKET_MODE)?;
        self.admin = Some((listener, path.to_path_buf(), admin));
        Ok(self)
    }

    /// The bound TCP address, which tells the port when 0 was requested.
    pub fn tcp_address(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then stops accepting, reports
    /// NOT_SERVING and lets in-flight calls finish within the grace period.
    ///
    /// # Errors
    ///
    /// Returns [`ServeError::Transport`] if a server fails.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_service_status("", ServingStatus::Serving).await;
        reporter.set_service_status(SERVICE_NAME, ServingStatus::Serving).await;

        let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
        let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;
        // A batch carries up to MAX_BATCH_TOKENS tokens, each with its own
        // scopes and audience.
        let max_message = MAX_BATCH_TOKENS * (self.decrypter.max_token_bytes() + 1024) + REQUEST_OVERHEAD_BYTES;
        let service = DecryptorService::new(self.decrypter.clone(), self.limits, self.auditing.clone())
            .with_callers(self.callers.clone())
            .with_metrics(self.metrics.clone());
        let gate = self.gate.map(|listeners| {
            let gate = Arc::new(Gate::new(service.clone(), listeners.settings, self.limits.call_timeout));
            (gate, listeners.envoy, listeners.http)
        });
        let envoy = gate
            .as_ref()
            .filter(|(_, envoy, _)| *envoy)
            .map(|(gate, _, _)| AuthorizationServer::new(EnvoyAuthz(gate.clone())));
        if envoy.is_some() {
            tracing::info!("Serving Envoy ext_authz checks on the gRPC listeners");
        }
        let decryptor = DecryptorServer::new(service).max_decoding_message_size(max_message);

        let keys = self.keys.map(KeysServer::new);
        let tcp_tls = self.tls.is_some();
        let tcp_builder = match self.tls {
            Some(tls) => Server::builder().tls_config(tls)?,
            None => Server::builder(),
        };
        let route = |mut builder: Server| {
            builder
                .add_service(health.clone())
                .add_service(reflection_v1.clone())
                .add_service(reflection_v1alpha.clone())
                .add_service(decryptor.clone())
                .add_optional_service(keys.clone())
                .add_optional_service(envoy.clone())
        };
        let router = route(Server::builder());
        let tcp_router = route(tcp_builder);

        // Health follows the audit log: NOT_SERVING while records cannot be
        // written in fail-closed mode, SERVING again once they can.
        let mut audit_health = self.auditing.healthy.subscribe();
        let audit_reporter = reporter.clone();
        let health_task = tokio::spawn(async move {
            while audit_health.changed().await.is_ok() {
                let status = if *audit_health.borrow_and_update() {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                audit_reporter.set_service_status("", status).await;
                audit_reporter.set_service_status(SERVICE_NAME, status).await;
            }
        });

        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let mut servers = JoinSet::new();
        let mut socket_paths: Vec<PathBuf> = self.unix.iter().map(|(_, path)| path.clone()).collect();
        if let Some((listener, path, admin)) = self.admin {
            tracing::info!(socket.path = %path.display(), "Listening on the admin socket");
            socket_paths.push(path);
            let incoming = UnixListenerStream::new(listener);
            let admin_router = Server::builder().add_service(AdminServer::new(admin));
            servers.spawn(admin_router.serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone())));
        }
        if let Some((listener, path)) = self.unix {
            tracing::info!(socket.path = %path.display(), "Listening on Unix socket");
            let incoming = UnixListenerStream::new(listener);
            servers.spawn(router.serve_with_incoming_shutdown(incoming, stopped(stop_rx.clone())));
        }
        let gate_http = gate.and_then(|(gate, _, http)| {
            let listener = http?;
            let mut stopped = stop_rx.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            Some(tokio::spawn(crate::authz::serve_http(listener, gate, shutdown)))
        });
        if let Some(listener) = self.tcp {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(server.address = %address, tls = tcp_tls, "Listening on TCP");
            }
            // gRPC sends small frames and waits for the reply: without
            // TCP_NODELAY, Nagle's algorithm and delayed ACKs hold each call
            // for about 40 ms.
            let incoming = TcpListenerStream::new(listener).map(|accepted| {
                if let Ok(stream) = &accepted {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::warn!(error = %error, "Cannot set TCP_NODELAY on an accepted connection");
                    }
                }
                accepted
            });
            servers.spawn(tcp_router.serve_with_incoming_shutdown(incoming, stopped(stop_rx)));
        }

        shutdown.await;
        health_task.abort();
        tracing::info!(
            grace_seconds = self.grace.as_secs(),
            "Shutting down: draining in-flight calls"
        );
        reporter.set_service_status("", ServingStatus::NotServing).await;
        reporter
            .set_service_status(SERVICE_NAME, ServingStatus::NotServing)
            .await;
        let _ = stop_tx.send(true);
        if let Some(task) = gate_http {
            let _ = task.await;
        }

        let drained = tokio::time::timeout(self.grace, async {
            let mut result = Ok(());
            while let Some(joined) = servers.join_next().await {
                if let Ok(Err(error)) = joined {
                    result = Err(ServeError::Transport(error));
                }
            }
            result
        })
        .await;
        // Socket files are removed only by the server that created them.
        for path in socket_paths {
            let _ = std::fs::remove_file(path);
        }
        match drained {
            Ok(result) => {
                tracing::info!("Drain finished");
                result
            }
            Err(_) => {
                tracing::warn!(
                    grace_seconds = self.grace.as_secs(),
                    "Drain did not finish within the grace period"
                );
                Ok(())
            }
        }
    }
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

fn reflection_error(error: tonic_reflection::server::Error) -> ServeError {
    ServeError::Bind {
        address: "reflection".into(),
        source: io::Error::other(error.to_string()),
    }
}

fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, ServeError> {
    let bind_error = |source| ServeError::Bind {
        address: path.display().to_string(),
        source,
    };

    match std::fs::symlink_metadata(path) {
        // A socket that still accepts connections belongs to a running
        // server; only a stale one, which refuses them, is replaced.
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(bind_error(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another server is listening on this socket",
                )));
            }
            std::fs::remove_file(path).map_err(bind_error)?;
        }
        Ok(_) => {
            return Err(bind_error(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file that is not a socket exists at this path",
            )));
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(bind_error(error)),
    }

    let listener = UnixListener::bind(path).map_err(bind_error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(bind_error)?;
    Ok(listener)
}

/// Completes on SIGTERM or SIGINT.
///
/// # Errors
///
/// Returns an error if the signal handlers cannot be installed.
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "Received shutdown signal"),
            _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "Received shutdown signal"),
        }
    })
}
