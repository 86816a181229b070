//! Connecting to a running jwed, for the CLI and for tests.

use std::path::Path;

use tonic::transport::{Channel, Endpoint};

use crate::pb::decryptor_client::DecryptorClient;

/// Connects to jwed on a Unix socket.
///
/// # Errors
///
/// Returns the transport error when the socket cannot be reached.
pub async fn connect_unix(path: &Path) -> Result<DecryptorClient<Channel>, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(format!("unix://{}", path.display()))?;
    Ok(DecryptorClient::new(endpoint.connect().await?))
}

/// Connects to jwed over TCP, `address` being `host:port`.
///
/// # Errors
///
/// Returns the transport error when the address cannot be reached.
pub async fn connect_tcp(address: &str) -> Result<DecryptorClient<Channel>, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(format!("http://{address}"))?;
    Ok(DecryptorClient::new(endpoint.connect().await?))
}
