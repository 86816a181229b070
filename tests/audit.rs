//! The audit stream: one record per call with the right fields, the
//! caller's kernel credentials, tamper detection by `jwed audit verify`,
//! fail-closed and fail-open behaviour, and no secret in anything jwed
//! writes.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use common::{AUDIENCE, Issuer, KeyFiles, TestServer, good_claims, test_policy, write_keys};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    audit::{AuditKey, Record},
    audit_verify::{self, Break},
    pb::DecryptRequest,
    server::BoundServer,
    service::{AuditFailure, Limits},
};
use serde_json::json;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt;

const JWED: &str = env!("CARGO_BIN_EXE_jwed");

fn key_files() -> KeyFiles {
    write_keys(
        &[(KeyAlg::EcdhEs, "enc-p256", "P-256")],
        &[(SigAlg::ES256, "sig-es256")],
    )
}

fn records(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .expect("read audit log")
        .lines()
        .map(|line| serde_json::from_str(line).expect("record"))
        .collect()
}

fn own_uid() -> u32 {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("metadata"))
}

#[tokio::test]
async fn one_record_per_call_with_the_right_fields() {
    let files = key_files();
    let server = TestServer::start(common::decrypter(&files, test_policy())).await;
    let issuer = Issuer::new(&files, "sig-es256", "enc-p256");
    let mut client = server.client().await;

    let good = issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let mut expired_claims = good_claims();
    expired_claims.insert("exp".into(), json!(common::now() - 120));
    let mut other_audience = good_claims();
    other_audience.insert("aud".into(), json!("billing-api"));
    let with = |name: &str, value: serde_json::Value| {
        let mut claims = good_claims();
        claims.insert(name.into(), value);
        issuer.mint(&claims, ContentEnc::A256Gcm)
    };
    let without_exp = {
        let mut claims = good_claims();
        claims.remove("exp");
        issuer.mint(&claims, ContentEnc::A256Gcm)
    };
    let calls: Vec<(&str, DecryptRequest)> = vec![
        (
            "OK",
            DecryptRequest {
                token: good.clone(),
                required_scopes: vec!["orders:read".into()],
                ..DecryptRequest::default()
            },
        ),
        (
            "TOKEN_INVALID",
            DecryptRequest {
                token: "garbage".into(),
                ..DecryptRequest::default()
            },
        ),
        (
            "TOKEN_EXPIRED",
            DecryptRequest {
                token: issuer.mint(&expired_claims, ContentEnc::A256Gcm),
                ..DecryptRequest::default()
            },
        ),
        (
            "AUDIENCE_MISMATCH",
            DecryptRequest {
                token: issuer.mint(&other_audience, ContentEnc::A256Gcm),
                ..DecryptRequest::default()
            },
        ),
        (
            "INSUFFICIENT_SCOPE",
            DecryptRequest {
                token: good.clone(),
                required_scopes: vec!["orders:write".into()],
                ..DecryptRequest::default()
            },
        ),
        (
            "AUDIENCE_NOT_ALLOWED",
            DecryptRequest {
                token: good.clone(),
                audience: "admin-api".into(),
                ..DecryptRequest::default()
            },
        ),
        (
            "REQUEST_INVALID",
            DecryptRequest {
                token: good.clone(),
                required_scopes: vec![String::new()],
                ..DecryptRequest::default()
            },
        ),
        (
            "TOKEN_NOT_YET_VALID",
            DecryptRequest {
                token: with("nbf", json!(common::now() + 600)),
                ..DecryptRequest::default()
            },
        ),
        (
            "TOKEN_LIFETIME_TOO_LONG",
            DecryptRequest {
                token: with("exp", json!(common::now() + 86_400)),
                ..DecryptRequest::default()
            },
        ),
        (
            "CLAIMS_INVALID",
            DecryptRequest {
                token: without_exp,
                ..DecryptRequest::default()
            },
        ),
        (
            "ISSUER_MISMATCH",
            DecryptRequest {
                token: with("iss", json!("https://other.example")),
                ..DecryptRequest::default()
            },
        ),
    ];
    let tokens: Vec<String> = calls.iter().map(|(_, request)| request.token.clone()).collect();
    for (_, request) in calls.iter().cloned() {
        let _ = client.decrypt(request).await;
    }

    let written = records(&server.audit_log);
    assert_eq!(written.len(), calls.len(), "one record per call");
    let key = common::audit_key(server.dir());
    for (index, ((reason, request), record)) in calls.iter().zip(&written).enumerate() {
        assert_eq!(record.reason, *reason, "call {index}");
        assert_eq!(record.seq, index as u64 + 1, "call {index}");
        assert_eq!(record.method, "jwed.v1.Decryptor/Decrypt");
        assert_eq!(
            record.outcome,
            if *reason == "OK" { "allowed" } else { "rejected" },
            "call {index}"
        );
        assert_eq!(record.fingerprint, key.fingerprint(&tokens[index]), "call {index}");
        assert_eq!(record.required_scopes, request.required_scopes, "call {index}");
        assert_eq!(record.caller.uid, Some(own_uid()), "call {index}");
        assert_eq!(
            record.caller.pid,
            Some(std::process::id() as i32),
            "call {index}: this test process is the peer"
        );
        assert!(!record.request_id.is_empty());
        assert!(record.time.ends_with('Z'));
    }

    let accepted = &written[0];
    assert_eq!(accepted.kid.as_deref(), Some("enc-p256"));
    assert_eq!(
        (accepted.alg.as_deref(), accepted.enc.as_deref()),
        (Some("ECDH-ES"), Some("A256GCM"))
    );
    assert_eq!(
        (accepted.signing_kid.as_deref(), accepted.signing_alg.as_deref()),
        (Some("sig-es256"), Some("ES256"))
    );
    assert_eq!(
        accepted.subject.as_deref(),
        Some("5b1f0a52-3c1e-4b8e-a0f4-6f1f2e7f9d11")
    );
    assert_eq!(accepted.token_id.as_deref(), Some("token-0001"));
    assert!(
        written[1].cause.contains("jwe format"),
        "the precise cause is recorded: {}",
        written[1].cause
    );
    assert!(written[2].cause.contains("expired"), "{}", written[2].cause);

    let verified = audit_verify::verify(&key, std::slice::from_ref(&server.audit_log))
        .expect("read")
        .expect("intact");
    assert_eq!(verified.records, calls.len() as u64);
    server.stop().await;
}

// Multi-threaded, because the test waits for a child process while the
// in-process server must keep serving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_pid_of_a_separate_client_process() {
    let files = key_files();
    let server = TestServer::start(common::decrypter(&files, test_policy())).await;
    let token = Issuer::new(&files, "sig-es256", "enc-p256").mint(&good_claims(), ContentEnc::A256Gcm);

    let child = Command::new(JWED)
        .args(["decrypt", "--unix-socket", &server.socket.to_string_lossy(), &token])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start jwed decrypt");
    let pid = child.id() as i32;
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());

    let written = records(&server.audit_log);
    assert_eq!(written.len(), 1);
    assert_eq!(
        written[0].caller.pid,
        Some(pid),
        "the kernel's peer credentials name the client process"
    );
    server.stop().await;
}

/// Writes a log of `count` records through a real server and returns the
/// server's directory (with its key) and the log path.
async fn sample_log(count: usize) -> (tempfile::TempDir, PathBuf) {
    let files = key_files();
    let server = TestServer::start(common::decrypter(&files, test_policy())).await;
    let mut client = server.client().await;
    for i in 0..count {
        let _ = client
            .decrypt(DecryptRequest {
                token: format!("not-a-token-{i}"),
                ..DecryptRequest::default()
            })
            .await;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::copy(server.dir().join("audit.key"), dir.path().join("audit.key")).expect("copy key");
    std::fs::copy(&server.audit_log, dir.path().join("audit.log")).expect("copy log");
    server.stop().await;
    let log = dir.path().join("audit.log");
    (dir, log)
}

fn verify_text(dir: &Path, text: &str) -> Result<audit_verify::Verified, Break> {
    let path = dir.join("edited.log");
    std::fs::write(&path, text).expect("write");
    audit_verify::verify(&common::audit_key(dir), &[path]).expect("read")
}

#[tokio::test]
async fn verify_detects_each_kind_of_tampering() {
    let (dir, log) = sample_log(6).await;
    let text = std::fs::read_to_string(&log).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let join = |lines: &[&str]| lines.iter().map(|line| format!("{line}\n")).collect::<String>();

    assert_eq!(verify_text(dir.path(), &text).expect("untouched").records, 6);

    let modified = text
        .replacen("\"reason\":\"TOKEN_INVALID\"", "\"reason\":\"OK\"", 3)
        .replacen("\"reason\":\"OK\"", "\"reason\":\"TOKEN_INVALID\"", 2);
    assert!(
        matches!(verify_text(dir.path(), &modified), Err(Break::Modified { seq: 3, .. })),
        "modified third record"
    );

    let without_third = join(&[lines[0], lines[1], lines[3], lines[4], lines[5]]);
    assert!(
        matches!(
            verify_text(dir.path(), &without_third),
            Err(Break::Missing {
                expected: 3,
                found: 4,
                ..
            })
        ),
        "missing record"
    );

    let swapped = join(&[lines[0], lines[2], lines[1], lines[3], lines[4], lines[5]]);
    assert!(
        matches!(
            verify_text(dir.path(), &swapped),
            Err(Break::Missing { .. } | Break::OutOfOrder { .. })
        ),
        "reordered"
    );

    let inserted = join(&[lines[0], lines[1], lines[1], lines[2], lines[3], lines[4], lines[5]]);
    assert!(
        matches!(
            verify_text(dir.path(), &inserted),
            Err(Break::OutOfOrder {
                expected: 3,
                found: 2,
                ..
            })
        ),
        "inserted copy"
    );

    let mut forged: Record = serde_json::from_str(lines[3]).expect("record");
    forged.cause = "nothing to see".into();
    let forged_line = serde_json::to_string(&forged).expect("json");
    let forged_text = join(&[lines[0], lines[1], lines[2], &forged_line, lines[4], lines[5]]);
    assert!(
        matches!(
            verify_text(dir.path(), &forged_text),
            Err(Break::Modified { seq: 4, .. })
        ),
        "edited last-but-two record"
    );

    let last_edited = join(&[
        lines[0],
        lines[1],
        lines[2],
        lines[3],
        lines[4],
        &lines[5].replace("TOKEN_INVALID", "OK"),
    ]);
    assert!(
        matches!(
            verify_text(dir.path(), &last_edited),
            Err(Break::Modified { seq: 6, .. })
        ),
        "edited last record"
    );

    let truncated = &text[..text.len() - 20];
    assert!(
        matches!(verify_text(dir.path(), truncated), Err(Break::TruncatedTail { .. })),
        "truncated tail"
    );

    // The CLI reports the same and exits 1.
    let edited = dir.path().join("edited.log");
    std::fs::write(&edited, &without_third).expect("write");
    let key = dir.path().join("audit.key").to_string_lossy().into_owned();
    let output = Command::new(JWED)
        .args(["audit", "verify", "--key-file", &key, &edited.to_string_lossy()])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("records 3 to 3 are missing"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let output = Command::new(JWED)
        .args(["audit", "verify", "--key-file", &key, &log.to_string_lossy()])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("ok: 6 records"));
}

#[tokio::test]
async fn chain_runs_across_rotated_files_and_restarts() {
    let files = key_files();
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("audit.key"),
        AuditKey::generate_text().expect("audit key").as_bytes(),
    )
    .expect("key");
    let log_path = dir.path().join("audit.log");

    // Two server lifetimes over the same file, with rotation at 4 KiB.
    for _ in 0..2 {
        let key = common::audit_key(dir.path());
        let destination = jwed::audit::Destination::File {
            path: log_path.clone(),
            max_bytes: 4096,
            keep: 20,
        };
        let log = jwed::audit::AuditLog::open(key, destination).expect("open");
        let auditing = jwed::service::Auditing::new(log, AuditFailure::FailClosed);
        let socket = dir.path().join("jwed.sock");
        let bound = BoundServer::bind(
            Some(&socket),
            None,
            Arc::new(common::decrypter(&files, test_policy())),
            Limits::default(),
            auditing,
            Duration::from_secs(1),
        )
        .await
        .expect("bind");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(bound.serve(async move {
            let _ = stopped.await;
        }));
        let mut client = jwed::client::connect_unix(&socket).await.expect("connect");
        for i in 0..20 {
            let _ = client
                .decrypt(DecryptRequest {
                    token: format!("t{i}"),
                    ..DecryptRequest::default()
                })
                .await;
        }
        let _ = stop.send(());
        handle.await.expect("join").expect("serve");
    }

    let mut rotated: Vec<PathBuf> = (1..=20)
        .rev()
        .map(|n| dir.path().join(format!("audit.log.{n}")))
        .filter(|path| path.exists())
        .collect();
    assert!(rotated.len() >= 2, "the log rotated");
    rotated.push(log_path);
    let verified = audit_verify::verify(&common::audit_key(dir.path()), &rotated)
        .expect("read")
        .expect("intact");
    assert_eq!(verified.records, 40);
    assert_eq!(verified.first_seq, 1);
}

#[tokio::test]
async fn fail_closed_refuses_while_records_cannot_be_written_then_recovers() {
    let files = key_files();
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("audit.key"),
        AuditKey::generate_text().expect("audit key").as_bytes(),
    )
    .expect("key");
    let link = dir.path().join("audit.log");
    std::os::unix::fs::symlink("/dev/full", &link).expect("link to /dev/full");

    let destination = jwed::audit::Destination::File {
        path: link.clone(),
        max_bytes: 1 << 30,
        keep: 1,
    };
    let log = jwed::audit::AuditLog::open(common::audit_key(dir.path()), destination).expect("open");
    let auditing = jwed::service::Auditing::new(log, AuditFailure::FailClosed);
    let socket = dir.path().join("jwed.sock");
    let bound = BoundServer::bind(
        Some(&socket),
        None,
        Arc::new(common::decrypter(&files, test_policy())),
        Limits::default(),
        auditing,
        Duration::from_secs(1),
    )
    .await
    .expect("bind");
    tokio::spawn(bound.serve(std::future::pending()));
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{}", socket.display()))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = jwed::pb::decryptor_client::DecryptorClient::new(channel.clone());
    let mut health = HealthClient::new(channel);
    let token = Issuer::new(&files, "sig-es256", "enc-p256").mint(&good_claims(), ContentEnc::A256Gcm);
    let request = || DecryptRequest {
        token: token.clone(),
        ..DecryptRequest::default()
    };
    let health_of = |status: tonic::Response<tonic_health::pb::HealthCheckResponse>| status.into_inner().status;

    let status = client
        .decrypt(request())
        .await
        .expect_err("no claims without an audit record");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        status.get_error_details().error_info().expect("ErrorInfo").reason,
        "AUDIT_UNAVAILABLE"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let serving = health
        .check(HealthCheckRequest {
            service: "jwed.v1.Decryptor".into(),
        })
        .await
        .expect("health");
    assert_eq!(health_of(serving), ServingStatus::NotServing as i32);

    // The volume is fixed: the link now points at a writable file.
    std::fs::remove_file(&link).expect("remove link");
    std::fs::write(dir.path().join("real.log"), "").expect("create");
    std::os::unix::fs::symlink(dir.path().join("real.log"), &link).expect("relink");
    let response = client
        .decrypt(request())
        .await
        .expect("decrypts again once records can be written");
    assert_eq!(response.into_inner().subject, "5b1f0a52-3c1e-4b8e-a0f4-6f1f2e7f9d11");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let serving = health
        .check(HealthCheckRequest {
            service: "jwed.v1.Decryptor".into(),
        })
        .await
        .expect("health");
    assert_eq!(health_of(serving), ServingStatus::Serving as i32);
}

#[tokio::test]
async fn fail_open_serves_and_counts_lost_records() {
    let files = key_files();
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("audit.key"),
        AuditKey::generate_text().expect("audit key").as_bytes(),
    )
    .expect("key");
    let destination = jwed::audit::Destination::File {
        path: PathBuf::from("/dev/full"),
        max_bytes: 1 << 30,
        keep: 1,
    };
    let log = jwed::audit::AuditLog::open(common::audit_key(dir.path()), destination).expect("open");
    let auditing = jwed::service::Auditing::new(log, AuditFailure::FailOpen);
    let lost = auditing.lost.clone();
    let socket = dir.path().join("jwed.sock");
    let bound = BoundServer::bind(
        Some(&socket),
        None,
        Arc::new(common::decrypter(&files, test_policy())),
        Limits::default(),
        auditing,
        Duration::from_secs(1),
    )
    .await
    .expect("bind");
    tokio::spawn(bound.serve(std::future::pending()));
    let mut client = jwed::client::connect_unix(&socket).await.expect("connect");
    let token = Issuer::new(&files, "sig-es256", "enc-p256").mint(&good_claims(), ContentEnc::A256Gcm);

    for _ in 0..3 {
        client
            .decrypt(DecryptRequest {
                token: token.clone(),
                ..DecryptRequest::default()
            })
            .await
            .expect("fail-open keeps serving");
    }
    assert_eq!(lost.load(std::sync::atomic::Ordering::Relaxed), 3);
}

#[test]
fn nothing_jwed_writes_contains_a_token_claim_or_key() {
    let files = key_files();
    let dir = files.dir.path();
    let socket = dir.join("jwed.sock");
    let audit_log = dir.join("audit.log");
    let key_file = dir.join("audit.key");
    std::fs::write(&key_file, AuditKey::generate_text().expect("audit key").as_bytes()).expect("key");
    let config = format!(
        "[server]\nunix_socket = {socket:?}\n[keys]\nprivate_keys = {:?}\nissuer_keys = {:?}\n[tokens]\nissuer = \"{}\"\naudiences = [\"{AUDIENCE}\"]\n[audit]\nfile = {audit_log:?}\nkey_file = {key_file:?}\n",
        files.private_keys,
        files.issuer_public,
        common::ISSUER,
    );
    std::fs::write(dir.join("jwed.toml"), config).expect("config");
    // Output goes to files, because trace logging would fill an unread pipe.
    let stdout_path = dir.join("serve.stdout");
    let stderr_path = dir.join("serve.stderr");
    let mut server = Command::new(JWED)
        .args(["serve", "--config", &dir.join("jwed.toml").to_string_lossy()])
        .env("JWED_LOG", "trace")
        .stdout(std::fs::File::create(&stdout_path).expect("create"))
        .stderr(std::fs::File::create(&stderr_path).expect("create"))
        .spawn()
        .expect("start");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if let Ok(Some(status)) = server.try_wait() {
            panic!(
                "jwed serve exited with {status}: {}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        assert!(std::time::Instant::now() < deadline, "jwed serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut claims = good_claims();
    claims.insert("email".into(), json!("alice.secret@example.com"));
    claims.insert("name".into(), json!("Alice Secretname"));
    let issuer = Issuer::new(&files, "sig-es256", "enc-p256");
    let good = issuer.mint(&claims, ContentEnc::A256Gcm);
    let mut expired = claims.clone();
    expired.insert("exp".into(), json!(common::now() - 100));
    let tokens = [
        good.clone(),
        issuer.mint(&expired, ContentEnc::A256Gcm),
        format!("{good}x"),
        good[..good.len() / 2].to_owned(),
    ];

    let mut client_output = Vec::new();
    for token in &tokens {
        for scope in ["orders:read", "orders:write"] {
            let output = Command::new(JWED)
                .args([
                    "decrypt",
                    "--unix-socket",
                    &socket.to_string_lossy(),
                    "--scope",
                    scope,
                    token,
                ])
                .output()
                .expect("decrypt");
            // The client prints the claims it asked for; only its stderr and
            // the rejection lines count as what jwed wrote.
            if !output.status.success() {
                client_output.extend_from_slice(&output.stdout);
            }
            client_output.extend_from_slice(&output.stderr);
        }
    }
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let _ = server.wait();
    let mut written = std::fs::read(&stdout_path).expect("stdout");
    written.extend_from_slice(&std::fs::read(&stderr_path).expect("stderr"));
    written.extend_from_slice(&std::fs::read(&audit_log).expect("audit log"));
    written.extend_from_slice(&client_output);
    let written = String::from_utf8_lossy(&written);

    assert!(written.contains("\"reason\":\"OK\""), "the audit log was captured");
    let private: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.private_keys).expect("keys")).expect("json");
    let d = private["keys"][0]["d"].as_str().expect("d");
    let audit_key = std::fs::read_to_string(&key_file).expect("key");
    let mut forbidden: Vec<(&str, String)> = vec![
        ("private key", d.to_owned()),
        ("audit key", audit_key.trim().to_owned()),
        ("email claim", "alice.secret@example.com".into()),
        ("name claim", "Alice Secretname".into()),
        ("scopes claim", "orders:list".into()),
    ];
    for token in &tokens {
        for segment in token.split('.').filter(|segment| segment.len() > 16) {
            forbidden.push(("token segment", segment.to_owned()));
        }
    }
    for (what, value) in forbidden {
        assert!(!written.contains(&value), "{what} appears in what jwed wrote");
    }
}
