//! Setup shared by the benchmarks: one decryption key, one issuer (ES256
//! unless a benchmark requests another algorithm), signed tokens, and the
//! real server on a Unix socket.

#![allow(
    dead_code,
    reason = "each benchmark compiles this module on its own and uses only part of it"
)]

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

/// Key and token parameters for [`fixture`].
pub struct TokenSpec<'a> {
    /// jwed's key management algorithm.
    pub alg: KeyAlg,
    /// Curve of an ECDH-ES key, ignored by the other algorithms.
    pub curve: &'a str,
    /// Modulus length of an RSA key, in bits.
    pub rsa_bits: u32,
    /// The issuer's signature algorithm.
    pub signing_alg: SigAlg,
    /// Number of tokens to mint.
    pub count: usize,
}

/// A decrypter, its tokens, and the private keys behind them, for
/// benchmarks that also run the cryptography without jwed.
pub struct Fixture {
    /// jwed's pipeline with the decryption key and the issuer's public key.
    pub decrypter: Decrypter,
    /// Valid tokens, each with its own content key and, for RSA and ECDH-ES,
    /// its own encrypted key or ephemeral public key.
    pub tokens: Vec<String>,
    /// jwed's private JWK.
    pub decryption_key: GeneratedKey,
    /// The issuer's private JWK.
    pub issuer_key: GeneratedKey,
}

/// Builds a decrypter with one `alg` key (on `curve` for ECDH-ES, 2048 bits
/// for RSA) and an ES256 issuer, and mints `count` valid tokens for it.
pub fn decrypter_and_tokens(alg: KeyAlg, curve: &str, count: usize) -> (Decrypter, Vec<String>) {
    let fixture = fixture(&TokenSpec {
        alg,
        curve,
        rsa_bits: 2048,
        signing_alg: SigAlg::ES256,
        count,
    });
    (fixture.decrypter, fixture.tokens)
}

/// Generates the keys `spec` describes and mints its tokens. A `dir` key
/// has 32 bytes, the content key length of A256GCM, which every token uses.
pub fn fixture(spec: &TokenSpec<'_>) -> Fixture {
    let jwed_key =
        GeneratedKey::generate(KeySpec::Decryption(spec.alg), "bench", spec.curve, spec.rsa_bits, 32).expect("key");
    let issuer_key = GeneratedKey::generate(KeySpec::Signing(spec.signing_alg), "issuer", "", 2048, 32).expect("key");

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
    let tokens = (0..spec.count)
        .map(|_| mint::mint(claims, Some(&signer), &recipient, ContentEnc::A256Gcm).expect("mint"))
        .collect();
    Fixture {
        decrypter: Decrypter::new(keys, Some(issuers), policy),
        tokens,
        decryption_key: jwed_key,
        issuer_key,
    }
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
