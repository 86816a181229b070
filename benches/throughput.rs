//! Decrypt throughput over the Unix socket, with the audit log written to a
//! file and with auditing discarded, in one run, so that the cost of
//! auditing shows as a ratio.
//!
//! Run: `cargo bench --bench throughput` (optionally `-- SECONDS CLIENTS`).
//! Results go to BENCHMARKS.md.

#![expect(clippy::print_stdout, reason = "a benchmark reports its results on stdout")]

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    audit::{AuditKey, AuditLog, Destination},
    decrypt::{Decrypter, Policy},
    issuers::IssuerKeys,
    jwk::RawJwkSet,
    keygen::{self, GeneratedKey, KeySpec},
    keys::KeySet,
    mint::{self, Recipient, Signer},
    pb::DecryptRequest,
    server::BoundServer,
    service::{AuditFailure, Auditing, Limits},
};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|arg| arg == "--bench") {
        return;
    }
    let numbers: Vec<u64> = args.iter().filter_map(|arg| arg.parse().ok()).collect();
    let seconds = numbers.first().copied().unwrap_or(5);
    let clients = numbers.get(1).copied().unwrap_or(8) as usize;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("temporary directory");
        println!("ECDH-ES (P-256) + A256GCM, signed ES256, over a Unix socket: {clients} clients for {seconds} s each");
        let mut results = Vec::new();
        for (name, destination) in [
            (
                "audit to a file",
                Destination::File {
                    path: dir.path().join("audit.log"),
                    max_bytes: 1 << 30,
                    keep: 1,
                },
            ),
            ("audit discarded", Destination::Discard),
        ] {
            let rate = run(
                destination,
                Duration::from_secs(seconds),
                clients,
                &dir.path().join(format!("{}.sock", results.len())),
            )
            .await;
            println!("{name:<16} {rate:>9.0} calls/s");
            results.push(rate);
        }
        println!(
            "auditing keeps {:.1} % of the throughput without it",
            100.0 * results[0] / results[1]
        );
    });
}

async fn run(destination: Destination, duration: Duration, clients: usize, socket: &std::path::Path) -> f64 {
    let (decrypter, token) = setup();
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

    let running = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut client = jwed::client::connect_unix(socket).await.expect("connect");
        let (running, calls, token) = (running.clone(), calls.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let request = DecryptRequest {
                    token: token.clone(),
                    ..DecryptRequest::default()
                };
                client.decrypt(request).await.expect("decrypt");
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (started, before) = (Instant::now(), calls.load(Ordering::Relaxed));
    tokio::time::sleep(duration).await;
    let done = calls.load(Ordering::Relaxed) - before;
    let elapsed = started.elapsed();
    running.store(false, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    done as f64 / elapsed.as_secs_f64()
}

fn setup() -> (Decrypter, String) {
    let jwed_key = GeneratedKey::generate(KeySpec::Decryption(KeyAlg::EcdhEs), "ecdh", "P-256", 2048, 32).expect("key");
    let issuer_key = GeneratedKey::generate(KeySpec::Signing(SigAlg::ES256), "issuer", "", 2048, 32).expect("key");
    let raw = RawJwkSet::parse(
        keygen::jwk_set_text(&[jwed_key.expose_private_json()]).as_bytes(),
        "bench",
    )
    .expect("set");
    let keys = KeySet::from_raw(&raw, &HashMap::new(), "bench").expect("keys");
    let public = json!({ "keys": [issuer_key.public().cloned().expect("public")] }).to_string();
    let issuers =
        IssuerKeys::from_raw(&RawJwkSet::parse(public.as_bytes(), "bench").expect("set"), "bench").expect("issuers");
    let policy = Policy {
        claims: jwed::claims::ClaimsPolicy {
            max_lifetime_seconds: None,
            ..Default::default()
        },
        ..Policy::default()
    };

    let signer = Signer::from_jwk(josekit::jwk::Jwk::from_bytes(issuer_key.expose_private_json()).expect("jwk"))
        .expect("signer");
    let recipient = Recipient::from_jwk(josekit::jwk::Jwk::from_bytes(jwed_key.expose_private_json()).expect("jwk"))
        .expect("recipient");
    let claims = json!({ "sub": "bench", "exp": 4_102_444_800_i64, "jti": "bench", "scopes": ["orders:read"] });
    let token = mint::mint(
        claims.as_object().expect("object"),
        Some(&signer),
        &recipient,
        ContentEnc::A256Gcm,
    )
    .expect("mint");
    (Decrypter::new(keys, Some(issuers), policy), token)
}
