//! Interoperability: tokens signed and encrypted by the JavaScript `jose`
//! package (npm), for every key type and algorithm jwed supports, decrypt
//! through the running server to the same claims.
//!
//! Needs Node.js and `npm ci --prefix tests/interop` (`.ci/run` does both).
//! The test fails, rather than skips, when they are missing.

mod common;

use std::{collections::HashMap, path::Path, process::Command};

use common::{TestServer, now};
use jwed::{
    alg::{ContentEnc, KeyAlg},
    claims::ClaimsPolicy,
    decrypt::{Decrypter, Policy},
    issuers::IssuerKeys,
    keygen::{self, GeneratedKey, KeySpec},
    keys::KeySet,
    pb::DecryptRequest,
};
use serde_json::{Value, json};

/// Every decryption key jwed supports, as (alg, curve, RSA bits, dir size).
const KEYS: &[(KeyAlg, &str, u32, usize)] = &[
    (KeyAlg::RsaOaep, "", 2048, 0),
    (KeyAlg::RsaOaep, "", 3072, 0),
    (KeyAlg::RsaOaep, "", 4096, 0),
    (KeyAlg::RsaOaep256, "", 2048, 0),
    (KeyAlg::RsaOaep256, "", 3072, 0),
    (KeyAlg::RsaOaep256, "", 4096, 0),
    (KeyAlg::EcdhEs, "P-256", 0, 0),
    (KeyAlg::EcdhEs, "P-384", 0, 0),
    (KeyAlg::EcdhEs, "P-521", 0, 0),
    (KeyAlg::EcdhEs, "X25519", 0, 0),
    (KeyAlg::EcdhEsA128Kw, "P-256", 0, 0),
    (KeyAlg::EcdhEsA128Kw, "P-384", 0, 0),
    (KeyAlg::EcdhEsA128Kw, "P-521", 0, 0),
    (KeyAlg::EcdhEsA128Kw, "X25519", 0, 0),
    (KeyAlg::EcdhEsA256Kw, "P-256", 0, 0),
    (KeyAlg::EcdhEsA256Kw, "P-384", 0, 0),
    (KeyAlg::EcdhEsA256Kw, "P-521", 0, 0),
    (KeyAlg::EcdhEsA256Kw, "X25519", 0, 0),
    (KeyAlg::Dir, "", 0, 16),
    (KeyAlg::Dir, "", 0, 32),
    (KeyAlg::Dir, "", 0, 64),
    (KeyAlg::A128Kw, "", 0, 0),
    (KeyAlg::A256Kw, "", 0, 0),
];

const ENCS: [ContentEnc; 4] = [
    ContentEnc::A128Gcm,
    ContentEnc::A256Gcm,
    ContentEnc::A128CbcHs256,
    ContentEnc::A256CbcHs512,
];

/// Writes jwed's keys: the private set for the server and, for jose, the
/// public halves (with symmetric keys in full).
fn write_keys(dir: &Path) -> usize {
    let keys: Vec<GeneratedKey> = KEYS
        .iter()
        .map(|&(alg, crv, bits, size)| {
            let kid = format!(
                "{}-{}",
                alg.name(),
                if crv.is_empty() {
                    (bits as usize + size).to_string()
                } else {
                    crv.to_owned()
                }
            );
            GeneratedKey::generate(KeySpec::Decryption(alg), &kid, crv, bits.max(2048), size.max(16)).expect("generate")
        })
        .collect();

    let texts: Vec<&str> = keys.iter().map(GeneratedKey::expose_private_json).collect();
    keygen::write_private_file(&dir.join("jwed-keys.json"), &keygen::jwk_set_text(&texts)).expect("write");
    let for_jose: Vec<Value> = keys
        .iter()
        .map(|key| match key.public() {
            Some(public) => Value::Object(public.clone()),
            None => serde_json::from_str(key.expose_private_json()).expect("json"),
        })
        .collect();
    keygen::write_public_file(&dir.join("encryption-keys.json"), for_jose).expect("write");
    keys.len()
}

/// How many tokens mint.mjs makes: one per key and compatible enc.
fn expected_tokens() -> usize {
    KEYS.iter()
        .map(|&(alg, _, _, size)| match alg {
            KeyAlg::Dir => ENCS.iter().filter(|enc| enc.key_len() == size).count(),
            _ => ENCS.len(),
        })
        .sum()
}

fn run_jose(dir: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/mint.mjs");
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/node_modules/jose");
    assert!(
        Path::new(modules).exists(),
        "jose is not installed: run `npm ci --prefix tests/interop` (bash .ci/run does)"
    );

    let output = Command::new("node")
        .arg(script)
        .arg(dir)
        .output()
        .expect("run node: install Node.js (bash .ci/run does)");
    assert!(
        output.status.success(),
        "mint.mjs failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn tokens_minted_by_jose_decrypt_to_the_same_claims() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key_count = write_keys(dir.path());
    let now = now();
    let claims = json!({
        "iss": "https://auth.jose.example",
        "aud": ["orders-api", "reports-api"],
        "id": "0b6e7f0e-2f6a-4c33-9d1e-7a5b9b3c2d10",
        "scopes": ["orders:read", "orders:write"],
        "name": "Zoë Ünal — 東京",
        "nested": { "depth": [1, 2.5, true, null] },
        "iat": now,
        "exp": now + 300,
        "jti": "jose-interop",
    });
    std::fs::write(dir.path().join("claims.json"), claims.to_string()).expect("write");
    let encs: Vec<&str> = ENCS.iter().map(|enc| enc.name()).collect();
    std::fs::write(dir.path().join("encs.json"), json!(encs).to_string()).expect("write");

    run_jose(dir.path());

    let keys = KeySet::load(&dir.path().join("jwed-keys.json"), &HashMap::new()).expect("keys");
    keys.self_check().expect("self-check");
    let issuers = IssuerKeys::load(&dir.path().join("issuer-keys.json")).expect("issuer keys made by jose");
    let policy = Policy {
        content_encryption: ENCS.to_vec(),
        claims: ClaimsPolicy {
            issuer: Some("https://auth.jose.example".into()),
            audiences: vec!["orders-api".into()],
            leeway_seconds: 30,
            max_lifetime_seconds: Some(600),
        },
        ..Policy::default()
    };
    let server = TestServer::start(Decrypter::new(keys, Some(issuers), policy)).await;
    let mut client = server.client().await;

    let lines = std::fs::read_to_string(dir.path().join("tokens.jsonl")).expect("tokens.jsonl");
    let mut decrypted = 0;
    let mut by_signer: HashMap<String, usize> = HashMap::new();
    for line in lines.lines() {
        let minted: Value = serde_json::from_str(line).expect("jsonl line");
        let label = format!(
            "{} {} {} signed {}",
            minted["kid"], minted["alg"], minted["enc"], minted["sig_alg"]
        );
        let request = DecryptRequest {
            token: minted["token"].as_str().expect("token").to_owned(),
            required_scopes: vec!["orders:write".into()],
            audience: String::new(),
        };
        let response = client
            .decrypt(request)
            .await
            .unwrap_or_else(|status| panic!("{label}: {status:?}"))
            .into_inner();

        let returned: Value = serde_json::from_str(&response.claims_json).expect("claims_json");
        assert_eq!(returned, claims, "{label}");
        assert_eq!(response.key_id, minted["kid"].as_str().expect("kid"), "{label}");
        assert_eq!(
            response.signing_key_id,
            minted["sig_kid"].as_str().expect("sig_kid"),
            "{label}"
        );
        assert_eq!(response.subject, "0b6e7f0e-2f6a-4c33-9d1e-7a5b9b3c2d10", "{label}");
        decrypted += 1;
        *by_signer
            .entry(minted["sig_alg"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }

    eprintln!(
        "jose interop: {decrypted} tokens from {key_count} keys decrypted; by signature algorithm: {by_signer:?}"
    );
    assert_eq!(decrypted, expected_tokens());
    assert_eq!(by_signer.len(), 5, "every signature algorithm is used");
    server.stop().await;
}
