//! `jwed bench` as a user runs it: the real executable, its own server
//! started from that executable, and key material shared through files.

mod common;

use std::process::Output;

use common::jwed;
use serde_json::Value;

fn report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "jwed bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

fn number(report: &Value, name: &str) -> f64 {
    report[name]
        .as_f64()
        .unwrap_or_else(|| panic!("{name} missing in {report}"))
}

#[test]
fn bench_measures_its_own_server() {
    let output = jwed(&[
        "bench",
        "--alg",
        "ecdh-es-p256",
        "--tokens",
        "20",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--json",
    ]);
    let report = report(&output);
    assert_eq!(report["key"], "ECDH-ES P-256");
    assert_eq!(report["errors"], 0);
    assert!(number(&report, "calls") > 0.0);
    assert!(number(&report, "p50_us") <= number(&report, "p99_us"));
    assert!(number(&report, "p99_us") <= number(&report, "max_us"));
    assert!(number(&report, "server_cpu_us_per_call") > 0.0);
    assert!(number(&report, "server_peak_rss_bytes") > 1_048_576.0);
    assert!(number(&report, "in_process_us_per_call") > 0.0);
    assert!(number(&report, "server_cpu_to_in_process") > 0.0);
}

#[test]
fn bench_reuses_exported_material_at_a_rate() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let material = dir.path().join("material");
    let material = material.to_str().expect("utf-8 path");
    let exported = jwed(&["bench", "--alg", "dir", "--tokens", "5", "--export", material]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let tokens = std::fs::read_to_string(dir.path().join("material/tokens.txt")).expect("tokens");
    assert_eq!(tokens.lines().count(), 5);

    let output = jwed(&[
        "bench",
        "--from",
        material,
        "--rate",
        "100",
        "--duration",
        "1",
        "--warmup",
        "0.2",
        "--json",
        "--skip-in-process",
    ]);
    let report = report(&output);
    assert_eq!(report["key"], "dir");
    assert_eq!(report["errors"], 0);
    assert!(number(&report, "calls") > 0.0);
    // Tickets come at 100 per second, so the window cannot hold many more
    // calls than that, whatever the machine's speed.
    assert!(
        number(&report, "calls") <= 100.0 * number(&report, "seconds") + 10.0,
        "{report}"
    );
    assert!(report["in_process_us_per_call"].is_null());
}

#[test]
fn bench_rejects_unknown_key_kind() {
    let output = jwed(&["bench", "--alg", "rsa1_5", "--duration", "1"]);
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown --alg \"rsa1_5\""), "{stderr}");
    assert!(stderr.contains("ecdh-es-x25519"), "{stderr}");
}

#[test]
fn bench_reports_failed_calls_and_exits_1() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let material = dir.path().join("material");
    let material = material.to_str().expect("utf-8 path");
    let exported = jwed(&[
        "bench",
        "--alg",
        "ecdh-es-x25519",
        "--tokens",
        "3",
        "--export",
        material,
    ]);
    assert!(exported.status.success());
    // Tokens for another key: the server started for the first material
    // rejects every one.
    let other = dir.path().join("other");
    let other = other.to_str().expect("utf-8 path");
    assert!(
        jwed(&["bench", "--alg", "ecdh-es-x25519", "--tokens", "3", "--export", other])
            .status
            .success()
    );
    std::fs::copy(
        dir.path().join("other/tokens.txt"),
        dir.path().join("material/tokens.txt"),
    )
    .expect("copy");

    let output = jwed(&[
        "bench",
        "--from",
        material,
        "--duration",
        "0.5",
        "--warmup",
        "0.1",
        "--json",
        "--skip-in-process",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(report["errors"], report["calls"]);
    assert!(
        report["error_reasons"]["TOKEN_INVALID"]
            .as_u64()
            .is_some_and(|count| count > 0)
    );
}

#[test]
fn bench_sends_batches() {
    let output = jwed(&[
        "bench",
        "--alg",
        "a256kw",
        "--tokens",
        "10",
        "--batch",
        "4",
        "--duration",
        "0.5",
        "--warmup",
        "0.1",
        "--json",
        "--skip-in-process",
    ]);
    let report = report(&output);
    assert_eq!(report["batch"], 4);
    assert_eq!(report["errors"], 0);
    // Every batch returns four results, each counted as one call.
    assert_eq!(number(&report, "calls") % 4.0, 0.0);
    assert!(number(&report, "calls") >= 4.0);

    let over = jwed(&[
        "bench",
        "--alg",
        "a256kw",
        "--tokens",
        "2",
        "--batch",
        "33",
        "--duration",
        "0.2",
    ]);
    assert_eq!(over.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&over.stderr).contains("batch must be between 1 and 32"));
}
