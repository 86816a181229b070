//! `/metrics` on the operations port, scraped over HTTP while a real
//! server takes calls on its Unix socket: the text parses as Prometheus
//! exposition and the counters move with the calls.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use common::{Issuer, audit_key, auditing, good_claims, now, sources, test_policy, write_keys};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    metrics::Metrics,
    pb::DecryptRequest,
    server::BoundServer,
    service::{AuditFailure, Limits},
    store::KeyStore,
};
use serde_json::json;

/// One sample: metric name with its labels, and the value.
type Samples = HashMap<String, f64>;

/// Parses the text exposition format strictly enough to catch a malformed
/// line: every line is a `# HELP`, `# TYPE`, `# UNIT` or `# EOF` comment, or
/// `name{labels} value` with a valid name and a number.
fn parse(text: &str) -> Samples {
    let mut samples = Samples::new();
    let mut types = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "the exposition must end with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let keyword = parts.next().unwrap_or_default();
            assert!(["HELP", "TYPE", "UNIT"].contains(&keyword), "unknown comment: {line}");
            let name = parts.next().expect("metric name");
            assert!(name.starts_with("jwed_"), "{line}");
            if keyword == "TYPE" {
                let kind = parts.next().expect("type");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                types.insert(name.to_owned(), kind.to_owned());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && name.starts_with("jwed_"),
            "invalid metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels: {line}");
            for label in series[name_end + 1..series.len() - 1].split(',') {
                let (key, quoted) = label.split_once('=').unwrap_or_else(|| panic!("label: {line}"));
                assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                assert!(quoted.starts_with('"'), "{line}");
                assert!(quoted.ends_with('"'), "{line}");
            }
        }
        let number: f64 = value.parse().unwrap_or_else(|_| panic!("invalid value: {line}"));
        let family = types
            .keys()
            .find(|family| name.starts_with(family.as_str()))
            .unwrap_or_else(|| panic!("sample without a TYPE line: {line}"));
        assert!(!family.is_empty());
        assert!(
            samples.insert(series.to_owned(), number).is_none(),
            "duplicate series: {line}"
        );
    }
    samples
}

/// Sends a plain HTTP/1.1 GET and returns the whole response.
async fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: jwed\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

async fn scrape(address: std::net::SocketAddr) -> (String, Samples) {
    let response = http_get(address, "/metrics").await;
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|line| line.strip_prefix("content-type: "))
        .expect("content type");
    (content_type.to_owned(), parse(body))
}

const DECRYPT: &str = "jwed.v1.Decryptor/Decrypt";

fn calls(samples: &Samples, reason: &str) -> f64 {
    let outcome = if reason == "OK" { "allowed" } else { "rejected" };
    let series = format!("jwed_calls_total{{method=\"{DECRYPT}\",outcome=\"{outcome}\",reason=\"{reason}\"}}");
    samples.get(&series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_move_with_calls() {
    let files = write_keys(&[(KeyAlg::EcdhEs, "jwed-1", "P-256")], &[(SigAlg::ES256, "issuer-1")]);
    let issuer = Issuer::new(&files, "issuer-1", "jwed-1");
    let store = Arc::new(
        KeyStore::load(sources(&files), test_policy())
            .expect("load")
            .with_cache(16),
    );
    let metrics = Arc::new(Metrics::new(Some(store.clone())));

    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("jwed.sock");
    let (auditing, _) = auditing(dir.path(), AuditFailure::FailClosed);
    let ready = auditing.healthy.subscribe();
    let _ = audit_key(dir.path());
    let bound = BoundServer::bind(
        Some(&socket),
        None,
        store.clone(),
        Limits::default(),
        auditing,
        Duration::from_secs(1),
    )
    .await
    .expect("bind")
    .with_metrics(metrics.clone());
    tokio::spawn(bound.serve(std::future::pending()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("ops port");
    let address = listener.local_addr().expect("address");
    tokio::spawn(jwed::ops::serve(
        listener,
        store.clone(),
        metrics,
        ready,
        std::future::pending(),
    ));
    assert!(http_get(address, "/readyz").await.starts_with("HTTP/1.1 200"));

    let (content_type, before) = scrape(address).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert_eq!(calls(&before, "OK"), 0.0);
    assert_eq!(before["jwed_key_reloads_total{result=\"failure\"}"], 0.0);
    assert_eq!(before["jwed_calls_in_flight"], 0.0);

    let mut client = jwed::client::connect_unix(&socket).await.expect("connect");
    let valid = issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let mut expired_claims = good_claims();
    expired_claims.insert("iat".into(), json!(now() - 600));
    expired_claims.insert("exp".into(), json!(now() - 300));
    let expired = issuer.mint(&expired_claims, ContentEnc::A256Gcm);
    let request = |token: &str| DecryptRequest {
        token: token.to_owned(),
        ..DecryptRequest::default()
    };
    client.decrypt(request(&valid)).await.expect("valid");
    client
        .decrypt(request(&valid))
        .await
        .expect("valid again, from the cache");
    client.decrypt(request(&expired)).await.expect_err("expired");
    client
        .decrypt(request("not.a.token.at.all"))
        .await
        .expect_err("invalid");

    let (_, after) = scrape(address).await;
    assert_eq!(calls(&after, "OK"), 2.0);
    assert_eq!(calls(&after, "TOKEN_EXPIRED"), 1.0);
    assert_eq!(calls(&after, "TOKEN_INVALID"), 1.0);
    let histogram_count = |outcome: &str| {
        after[&format!("jwed_call_duration_seconds_count{{method=\"{DECRYPT}\",outcome=\"{outcome}\"}}")]
    };
    assert_eq!(histogram_count("allowed"), 2.0);
    assert_eq!(histogram_count("rejected"), 2.0);
    let inf_bucket =
        format!("jwed_call_duration_seconds_bucket{{le=\"+Inf\",method=\"{DECRYPT}\",outcome=\"allowed\"}}");
    assert_eq!(after.get(&inf_bucket).copied(), Some(2.0), "{after:?}");
    assert_eq!(after["jwed_claims_cache_lookups_total{result=\"hit\"}"], 1.0);
    assert_eq!(after["jwed_claims_cache_lookups_total{result=\"miss\"}"], 3.0);
    assert_eq!(after["jwed_claims_cache_entries"], 1.0);
    assert_eq!(after["jwed_calls_in_flight"], 0.0);
    assert_eq!(after["jwed_audit_write_failures_total"], 0.0);
}

#[tokio::test]
async fn readyz_fails_while_audit_is_down() {
    let files = write_keys(&[(KeyAlg::EcdhEs, "jwed-1", "P-256")], &[(SigAlg::ES256, "issuer-1")]);
    let store = Arc::new(KeyStore::load(sources(&files), test_policy()).expect("load"));
    let (healthy, ready) = tokio::sync::watch::channel(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("ops port");
    let address = listener.local_addr().expect("address");
    let metrics = Arc::new(Metrics::new(Some(store.clone())));
    tokio::spawn(jwed::ops::serve(
        listener,
        store,
        metrics,
        ready,
        std::future::pending(),
    ));

    assert!(http_get(address, "/readyz").await.starts_with("HTTP/1.1 200"));
    healthy.send_replace(false);
    let response = http_get(address, "/readyz").await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("audit records cannot be written"), "{response}");
    healthy.send_replace(true);
    assert!(http_get(address, "/readyz").await.starts_with("HTTP/1.1 200"));
}
