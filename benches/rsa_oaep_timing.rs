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

mod support;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use base64ct::{Base64UrlUnpadded, Encoding};
use jwed::{alg::KeyAlg, audit::Destination, decrypt::Decrypter, pb::DecryptRequest};

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
    let (decrypter, tokens) = support::decrypter_and_tokens(KeyAlg::RsaOaep256, "", 64);
    measure_in_process(&decrypter, &tokens, per_class);

    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("jwed.sock");
    let destination = Destination::File {
        path: dir.path().join("audit.log"),
        max_bytes: 1 << 30,
        keep: 1,
    };
    support::start_server(&socket, decrypter, destination).await;
    let mut client = jwed::client::connect_unix(&socket).await.expect("connect");

    // Warm up connections, caches and the blocking pool.
    for token in tokens.iter().take(200) {
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
        let token = &tokens[(n * 7 + class) % tokens.len()];
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
fn measure_in_process(decrypter: &Decrypter, tokens: &[String], per_class: usize) {
    let mut order: Vec<usize> = (0..per_class * CLASSES.len()).map(|i| i % CLASSES.len()).collect();
    shuffle(&mut order);
    let mut samples: HashMap<usize, Vec<Duration>> = HashMap::new();
    for (n, class) in order.into_iter().enumerate() {
        let token = mutate(&tokens[(n * 7 + class) % tokens.len()], class);
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
