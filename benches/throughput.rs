//! Decrypt throughput over the Unix socket, with the audit log written to a
//! file and with auditing discarded, in one run, so that the cost of
//! auditing shows as a ratio.
//!
//! Run: `cargo bench --bench throughput` (optionally `-- SECONDS CLIENTS`).
//! Results go to BENCHMARKS.md.

#![expect(clippy::print_stdout, reason = "a benchmark reports its results on stdout")]

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use jwed::{alg::KeyAlg, audit::Destination, pb::DecryptRequest};

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
    let (decrypter, mut tokens) = support::decrypter_and_tokens(KeyAlg::EcdhEs, "P-256", 1);
    let token = tokens.pop().expect("one token");
    support::start_server(socket, decrypter, destination).await;

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
