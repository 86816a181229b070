//! Rejection timing for RSA-OAEP at the gRPC boundary.
//!
//! An attacker who can tell "the OAEP padding was wrong" from "the padding
//! was right but the content did not authenticate" by response time has a
//! padding oracle. This benchmark starts the real server on a Unix socket
//! with an RSA-OAEP-256 key and sends, interleaved in a shuffled order:
//! tokens whose encrypted key is random (invalid padding), tokens with a
//! valid key but one flipped tag bit (bad tag), and valid tokens. It prints
//! latency percentiles per class, as the client sees them.
//!
//! Run: `cargo bench --bench rsa_oaep_timing` (optionally `-- 3000` calls per
//! class). Results go to BENCHMARKS.md.

#![expect(clippy::print_stdout, reason = "a benchmark reports its results on stdout")]

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use base64ct::{Base64UrlUnpadded, Encoding};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    claims::ClaimsPolicy,
    decrypt::{Decrypter, Policy},
    issuers::IssuerKeys,
    jwk::RawJwkSet,
    keygen::{self, GeneratedKey, KeySpec},
    keys::KeySet,
    mint::{self, Recipient, Signer},
    pb::DecryptRequest,
    server::BoundServer,
    service::Limits,
};
use serde_json::json;

const CLASSES: [&str; 3] = ["invalid padding", "bad tag", "valid"];

fn main() {
    // `cargo test --all-targets` also runs bench targets; only `cargo bench`
    // passes --bench, and only then is the measurement worth its time.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|arg| arg == "--bench") {
        return;
    }
    let per_class = args
        .iter()
        .filter_map(|arg| arg.parse::<usize>().ok())
        .next()
        .unwrap_or(2000);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(measure(per_class));
}

async fn measure(per_class: usize) {
    let (decrypter, tokens) = setup();
    measure_in_process(&decrypter, &tokens, per_class);

    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("jwed.sock");
    let destination = jwed::audit::Destination::File {
        path: dir.path().join("audit.log"),
        max_bytes: 1 << 30,
        keep: 1,
    };
    let log = jwed::audit::AuditLog::open(jwed::audit::AuditKey::random().expect("audit key"), destination)
        .expect("audit log");
    let auditing = jwed::service::Auditing::new(log, jwed::service::AuditFailure::FailClosed);
    let bound = BoundServer::bind(
        Some(&socket),
        None,
        Arc::new(decrypter),
        Limits::default(),
        auditing,
        Duration::from_secs(1),
    )
    .await
    .expect("bind");
    tokio::spawn(bound.serve(std::future::pending()));
    let mut client = jwed::client::connect_unix(&socket).await.expect("connect");

    // Warm up connections, caches and the blocking pool.
    for (_, token) in tokens.iter().take(200) {
        let _ = client
            .decrypt(DecryptRequest {
                token: token.clone(),
                ..DecryptRequest::default()
            })
            .await;
    }

    let mut order: Vec<usize> = (0..per_class * CLASSES.len()).map(|i| i % CLASSES.len()).collect();
    shuffle(&mut order);
    let mut samples: HashMap<usize, Vec<Duration>> = HashMap::new();
    for (n, class) in order.into_iter().enumerate() {
        let token = &tokens[(n * 7 + class) % tokens.len()].1;
        let token = mutate(token, class);
        let started = Instant::now();
        let result = client
            .decrypt(DecryptRequest {
                token,
                ..DecryptRequest::default()
            })
            .await;
        let elapsed = started.elapsed();
        assert_eq!(
            result.is_ok(),
            class == 2,
            "class {} had the wrong outcome",
            CLASSES[class]
        );
        samples.entry(class).or_default().push(elapsed);
    }

    print_table(
        &format!("RSA-OAEP-256 (2048-bit) over a Unix socket, {per_class} calls per class, shuffled"),
        samples,
    );
}

/// The same comparison without gRPC, where the noise is smaller.
fn measure_in_process(decrypter: &Decrypter, tokens: &[(usize, String)], per_class: usize) {
    let mut order: Vec<usize> = (0..per_class * CLASSES.len()).map(|i| i % CLASSES.len()).collect();
    shuffle(&mut order);
    let mut samples: HashMap<usize, Vec<Duration>> = HashMap::new();
    for (n, class) in order.into_iter().enumerate() {
        let token = mutate(&tokens[(n * 7 + class) % tokens.len()].1, class);
        let request = jwed::decrypt::Request {
            token: &token,
            audience: None,
            required_scopes: &[],
        };
        let started = Instant::now();
        let result = decrypter.decrypt(request, 1_800_000_000, &mut jwed::decrypt::TokenInfo::default());
        let elapsed = started.elapsed();
        assert_eq!(
            result.is_ok(),
            class == 2,
            "class {} had the wrong outcome",
            CLASSES[class]
        );
        samples.entry(class).or_default().push(elapsed);
    }
    print_table(
        &format!("RSA-OAEP-256 (2048-bit) in process, {per_class} calls per class, shuffled"),
        samples,
    );
}

fn print_table(title: &str, mut samples: HashMap<usize, Vec<Duration>>) {
    println!("{title}");
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "class", "p10 us", "p50 us", "p90 us", "p99 us", "mean us"
    );
    for (class, name) in CLASSES.iter().enumerate() {
        let mut values = samples.remove(&class).unwrap_or_default();
        values.sort();
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        let at = |q: f64| micros(values[((values.len() as f64 - 1.0) * q) as usize]);
        let mean = values.iter().map(|d| micros(*d)).sum::<f64>() / values.len() as f64;
        println!(
            "{name:<16} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            at(0.10),
            at(0.50),
            at(0.90),
            at(0.99),
            mean
        );
    }
    println!();
}

/// Builds a server decrypter and a pool of valid tokens.
fn setup() -> (Decrypter, Vec<(usize, String)>) {
    let jwed_key = GeneratedKey::generate(KeySpec::Decryption(KeyAlg::RsaOaep256), "rsa", "", 2048, 32).expect("key");
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
    let claims = json!({ "sub": "bench", "exp": 4_102_444_800_i64, "scopes": ["orders:read"] });
    let claims = claims.as_object().expect("object");
    let tokens = (0..64)
        .map(|i| {
            (
                i,
                mint::mint(claims, Some(&signer), &recipient, ContentEnc::A256Gcm).expect("mint"),
            )
        })
        .collect();
    (Decrypter::new(keys, Some(issuers), policy), tokens)
}

/// Turns a valid token into one of the three classes.
fn mutate(token: &str, class: usize) -> String {
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    match class {
        0 => {
            let mut random = vec![0u8; Base64UrlUnpadded::decode_vec(&segments[1]).expect("b64").len()];
            openssl::rand::rand_bytes(&mut random).expect("random");
            // A leading zero byte keeps the value below the modulus, whose
            // top bit is set: a larger value is rejected before the private
            // key is used, which is fast but reveals only public facts.
            random[0] = 0;
            segments[1] = Base64UrlUnpadded::encode_string(&random);
        }
        1 => {
            let mut tag = Base64UrlUnpadded::decode_vec(&segments[4]).expect("b64");
            tag[0] ^= 1;
            segments[4] = Base64UrlUnpadded::encode_string(&tag);
        }
        _ => {}
    }
    segments.join(".")
}

/// Fisher-Yates shuffle driven by OpenSSL's random generator.
fn shuffle(items: &mut [usize]) {
    for i in (1..items.len()).rev() {
        let mut bytes = [0u8; 8];
        openssl::rand::rand_bytes(&mut bytes).expect("random");
        let j = (u64::from_le_bytes(bytes) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
