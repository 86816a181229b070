//! `jwed serve`.

use std::{path::PathBuf, sync::Arc};

use super::{EXIT_USAGE, ServeArgs};
use crate::{
    config::{Config, FileConfig, Overrides},
    decrypt::{Decrypter, UnsignedTokens},
    issuers::IssuerKeys,
    keys::KeySet,
    server::{self, BoundServer},
};

pub(super) async fn run(args: ServeArgs) -> u8 {
    let config = match load_config(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("jwed: {message}");
            return EXIT_USAGE;
        }
    };
    let decrypter = match load_decrypter(&config) {
        Ok(decrypter) => Arc::new(decrypter),
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
    let bound = BoundServer::bind(config.unix_socket.as_deref(), config.tcp_listen, decrypter, config.limits, config.shutdown_grace).await;
    let result = match bound {
        Ok(bound) => bound.serve(shutdown).await,
        Err(error) => Err(error),
    };
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
        issuer: args.issuer,
        audiences: args.audiences.map(|audiences| {
            audiences.iter().map(|audience| audience.trim().to_owned()).filter(|audience| !audience.is_empty()).collect()
        }),
    };
    Config::build(file, overrides).map_err(|err| err.to_string())
}

/// Loads keys and issuer keys and runs the key self-check; the server binds
/// no socket until this succeeds, so health never reports SERVING before.
fn load_decrypter(config: &Config) -> Result<Decrypter, String> {
    let keys = KeySet::load(&config.private_keys, &config.key_algorithms)
        .map_err(|err| format!("invalid setting keys.private_keys: {err}"))?;
    keys.self_check().map_err(|(kid, reason)| format!("key {kid:?} failed its self-check: {reason}"))?;
    for key in keys.iter() {
        tracing::info!(key.id = key.kid(), key.alg = key.alg().name(), "Loaded decryption key");
    }

    let issuers = match &config.issuer_keys {
        Some(path) => {
            let issuers = IssuerKeys::load(path).map_err(|err| format!("invalid setting keys.issuer_keys: {err}"))?;
            for key in issuers.iter() {
                tracing::info!(key.id = key.kid(), key.alg = key.alg().name(), "Loaded issuer key");
            }
            Some(issuers)
        }
        None => None,
    };
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

    Ok(Decrypter::new(keys, issuers, config.policy.clone()))
}
