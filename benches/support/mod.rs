//! Setup shared by the benchmarks: one decryption key, one ES256 issuer,
//! signed tokens, and the real server on a Unix socket.

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    audit::{AuditKey, AuditLog, Destination},
    claims::ClaimsPolicy,
    decrypt::{Decrypter, Policy},
    issuers::IssuerKeys,
    jwk::RawJwkSet,
    keygen::{self, GeneratedKey, KeySpec},
    keys::KeySet,
    mint::{self, Recipient, Signer},
    server::BoundServer,
    service::{AuditFailure, Auditing, Limits},
};
use serde_json::json;

/// Builds a decrypter with one `alg` key (on `curve` for ECDH-ES) and an
/// ES256 issuer, and mints `count` valid tokens for it.
pub fn decrypter_and_tokens(alg: KeyAlg, curve: &str, count: usize) -> (Decrypter, Vec<String>) {
    let jwed_key = GeneratedKey::generate(KeySpec::Decryption(alg), "bench", curve, 2048, 32).expect("key");
    let issuer_key = GeneratedKey::generate(KeySpec::Signing(SigAlg::ES256), "issuer", "", 2048, 32).expect("key");

    let set_text = keygen::jwk_set_text(&[jwed_key.expose_private_json()]);
    let keys = KeySet::from_raw(
        &RawJwkSet::parse(set_text.as_bytes(), "bench").expect("set"),
        &HashMap::new(),
        "bench",
    )
    .expect("keys");
    let public = json!({ "keys": [issuer_key.public().cloned().expect("public")] }).to_string();
    let issuers =
        IssuerKeys::from_raw(&RawJwkSet::parse(public.as_bytes(), "bench").expect("set"), "bench").expect("issuers");
    let policy = Policy {
        claims: ClaimsPolicy {
            max_lifetime_seconds: None,
            ..ClaimsPolicy::default()
        },
        ..Policy::default()
    };

    let signer = Signer::from_jwk(josekit::jwk::Jwk::from_bytes(issuer_key.expose_private_json()).expect("jwk"))
        .expect("signer");
    let recipient = Recipient::from_jwk(josekit::jwk::Jwk::from_bytes(jwed_key.expose_private_json()).expect("jwk"))
        .expect("recipient");
    let claims = json!({ "sub": "bench", "exp": 4_102_444_800_i64, "jti": "bench", "scopes": ["orders:read"] });
    let claims = claims.as_object().expect("object");
    let tokens = (0..count)
        .map(|_| mint::mint(claims, Some(&signer), &recipient, ContentEnc::A256Gcm).expect("mint"))
        .collect();
    (Decrypter::new(keys, Some(issuers), policy), tokens)
}

/// Starts the server for `decrypter` on `socket`, auditing to `destination`.
pub async fn start_server(socket: &Path, decrypter: Decrypter, destination: Destination) {
    let log = AuditLog::open(AuditKey::random().expect("audit key"), destination).expect("audit log");
    let auditing = Auditing::new(log, AuditFailure::FailClosed);
    let bound = BoundServer::bind(
        Some(socket),
        None,
        Arc::new(decrypter),
        Limits::default(),
        auditing,
        Duration::from_secs(1),
    )
    .await
    .expect("bind");
    tokio::spawn(bound.serve(std::future::pending()));
}
