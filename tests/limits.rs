//! Cost bounds and panic containment of the Decryptor service, over a real
//! Unix socket. A stand-in decrypter wraps the real one to panic or to be
//! slow on request, because no token reaches a panic or a long call in the
//! real pipeline.

mod common;

use std::{sync::Arc, time::Duration};

use common::{Issuer, good_claims, test_policy, write_keys};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    decrypt::{self, DecryptError, Decrypted, Decrypter, TokenInfo},
    pb::{DecryptRequest, decryptor_client::DecryptorClient, decryptor_server::DecryptorServer},
    service::{Decrypt, DecryptorService, Limits},
};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

/// Wraps the real decrypter: the token "panic" panics, and every call
/// first sleeps for `delay`.
struct StandIn {
    inner: Decrypter,
    delay: Duration,
}

impl Decrypt for StandIn {
    fn decrypt(
        &self,
        request: decrypt::Request<'_>,
        now: i64,
        info: &mut TokenInfo,
    ) -> Result<Decrypted, DecryptError> {
        if request.token == "panic" {
            panic!("stand-in panic for the containment test");
        }
        std::thread::sleep(self.delay);
        self.inner.decrypt(request, now, info)
    }

    fn max_token_bytes(&self) -> usize {
        self.inner.policy().max_token_bytes
    }
}

/// Starts the service around a stand-in on a temporary socket and returns
/// a client, a valid token and the directory that keeps the socket alive.
async fn start(delay: Duration, limits: Limits) -> (DecryptorClient<Channel>, String, tempfile::TempDir) {
    let files = write_keys(&[(KeyAlg::EcdhEs, "enc", "P-256")], &[(SigAlg::ES256, "sig")]);
    let token = Issuer::new(&files, "sig", "enc").mint(&good_claims(), ContentEnc::A256Gcm);
    let stand_in = StandIn {
        inner: common::decrypter(&files, test_policy()),
        delay,
    };

    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("jwed.sock");
    let incoming = UnixListenerStream::new(UnixListener::bind(&socket).expect("bind"));
    let (auditing, _) = common::auditing(dir.path(), jwed::service::AuditFailure::FailClosed);
    let service = DecryptorServer::new(DecryptorService::new(Arc::new(stand_in), limits, auditing));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );

    let client = jwed::client::connect_unix(&socket).await.expect("connect");
    (client, token, dir)
}

fn request(token: &str) -> DecryptRequest {
    DecryptRequest {
        token: token.to_owned(),
        ..DecryptRequest::default()
    }
}

/// The `reason` of every audit record written so far, in order.
fn audited(dir: &tempfile::TempDir) -> Vec<String> {
    let text = std::fs::read_to_string(dir.path().join("audit.log")).expect("audit log");
    text.lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("record")["reason"]
                .as_str()
                .expect("reason")
                .to_owned()
        })
        .collect()
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn panic_returns_internal_and_server_keeps_serving() {
    let (mut client, token, _dir) = start(Duration::ZERO, Limits::default()).await;

    let status = client.decrypt(request("panic")).await.expect_err("a panic is an error");
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(reason(&status), "INTERNAL");
    assert_eq!(status.message(), "internal error");

    for _ in 0..3 {
        let response = client
            .decrypt(request(&token))
            .await
            .expect("later calls still succeed");
        assert_eq!(response.into_inner().key_id, "enc");
    }
    assert_eq!(
        audited(&_dir),
        vec!["INTERNAL", "OK", "OK", "OK"],
        "the panicked call is audited too"
    );
}

#[tokio::test]
async fn calls_beyond_the_pending_limit_are_shed() {
    let limits = Limits {
        max_concurrent: 1,
        max_pending: 2,
        call_timeout: Duration::from_secs(5),
        ..Limits::default()
    };
    let (client, token, _dir) = start(Duration::from_millis(400), limits).await;

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let mut client = client.clone();
        let request = request(&token);
        calls.spawn(async move { client.decrypt(request).await });
    }

    let (mut accepted, mut shed) = (0, 0);
    while let Some(result) = calls.join_next().await {
        match result.expect("join") {
            Ok(_) => accepted += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert_eq!(reason(&status), "OVERLOADED");
                shed += 1;
            }
        }
    }
    assert_eq!(accepted, 2, "one call runs and one waits");
    assert_eq!(shed, 4, "the rest are shed at once");
    let mut reasons = audited(&_dir);
    reasons.sort();
    assert_eq!(
        reasons,
        vec!["OK", "OK", "OVERLOADED", "OVERLOADED", "OVERLOADED", "OVERLOADED"],
        "shed calls are audited"
    );
}

#[tokio::test]
async fn slow_call_fails_at_the_configured_deadline() {
    let limits = Limits {
        max_concurrent: 2,
        max_pending: 8,
        call_timeout: Duration::from_millis(100),
        ..Limits::default()
    };
    let (mut client, token, _dir) = start(Duration::from_millis(600), limits).await;

    let status = client
        .decrypt(request(&token))
        .await
        .expect_err("the call exceeds its deadline");
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
    assert_eq!(audited(&_dir), vec!["DEADLINE_EXCEEDED"]);
}
