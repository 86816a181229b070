//! `DecryptBatch` and the placements of the private-key work, through a
//! real server on a Unix socket.

mod common;

use std::sync::Arc;

use common::{Issuer, TestServer, audit_records, decrypter, good_claims, now, test_policy, write_keys};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    pb::{DecryptBatchRequest, DecryptRequest, decrypt_result::Result as ItemResult},
    service::{Limits, MAX_BATCH_TOKENS, Placement},
};
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;

fn request(token: &str, scopes: &[&str]) -> DecryptRequest {
    DecryptRequest {
        token: token.to_owned(),
        required_scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        ..DecryptRequest::default()
    }
}

fn flip_last_char(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ascii")
}

#[tokio::test]
async fn batch_results_per_token() {
    let files = write_keys(&[(KeyAlg::EcdhEs, "jwed-1", "P-256")], &[(SigAlg::ES256, "issuer-1")]);
    let issuer = Issuer::new(&files, "issuer-1", "jwed-1");
    let server = TestServer::start(decrypter(&files, test_policy())).await;

    let valid = issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let mut expired_claims = good_claims();
    expired_claims.insert("iat".into(), json!(now() - 600));
    expired_claims.insert("exp".into(), json!(now() - 300));
    let expired = issuer.mint(&expired_claims, ContentEnc::A256Gcm);
    let batch = DecryptBatchRequest {
        requests: vec![
            request(&valid, &["orders:read"]),
            request(&flip_last_char(&valid), &[]),
            request(&expired, &[]),
            request(&valid, &["orders:admin"]),
        ],
    };
    let results = server
        .client()
        .await
        .decrypt_batch(batch)
        .await
        .expect("batch call")
        .into_inner()
        .results;
    assert_eq!(results.len(), 4);

    match &results[0].result {
        Some(ItemResult::Claims(claims)) => {
            assert_eq!(claims.subject, good_claims()["sub"]);
            assert_eq!(claims.key_id, "jwed-1");
        }
        other => panic!("first token: {other:?}"),
    }
    let error = |index: usize| match &results[index].result {
        Some(ItemResult::Error(error)) => error.clone(),
        other => panic!("token {index} should fail: {other:?}"),
    };
    assert_eq!(error(1).reason, "TOKEN_INVALID");
    assert_eq!(error(1).code, Code::Unauthenticated as i32);
    assert_eq!(error(2).reason, "TOKEN_EXPIRED");
    assert_eq!(
        error(2).metadata.get("refresh_required").map(String::as_str),
        Some("true")
    );
    assert_eq!(error(3).reason, "INSUFFICIENT_SCOPE");
    assert_eq!(error(3).code, Code::PermissionDenied as i32);
    assert_eq!(
        error(3).metadata.get("missing_scopes").map(String::as_str),
        Some("orders:admin")
    );

    let records = audit_records(&server.audit_log);
    assert_eq!(records.len(), 4, "one audit record per token");
    let mut reasons: Vec<&str> = records.iter().map(|r| r["reason"].as_str().expect("reason")).collect();
    reasons.sort_unstable();
    assert_eq!(reasons, ["INSUFFICIENT_SCOPE", "OK", "TOKEN_EXPIRED", "TOKEN_INVALID"]);
    assert!(records.iter().all(|r| r["method"] == "jwed.v1.Decryptor/DecryptBatch"));
    server.stop().await;
}

#[tokio::test]
async fn batch_over_limit_rejected() {
    let files = write_keys(&[(KeyAlg::EcdhEs, "jwed-1", "P-256")], &[(SigAlg::ES256, "issuer-1")]);
    let issuer = Issuer::new(&files, "issuer-1", "jwed-1");
    let server = TestServer::start(decrypter(&files, test_policy())).await;
    let token = issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let mut client = server.client().await;

    let full = DecryptBatchRequest {
        requests: vec![request(&token, &[]); MAX_BATCH_TOKENS],
    };
    let results = client
        .decrypt_batch(full)
        .await
        .expect("full batch")
        .into_inner()
        .results;
    assert!(
        results
            .iter()
            .all(|item| matches!(item.result, Some(ItemResult::Claims(_))))
    );

    let over = DecryptBatchRequest {
        requests: vec![request(&token, &[]); MAX_BATCH_TOKENS + 1],
    };
    let status = client.decrypt_batch(over).await.expect_err("one token too many");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "REQUEST_INVALID"
    );

    let empty = client
        .decrypt_batch(DecryptBatchRequest::default())
        .await
        .expect("empty batch")
        .into_inner();
    assert!(empty.results.is_empty());
    assert_eq!(audit_records(&server.audit_log).len(), MAX_BATCH_TOKENS);
    server.stop().await;
}

#[tokio::test]
async fn placements_give_same_results() {
    let files = write_keys(
        &[
            (KeyAlg::RsaOaep256, "jwed-rsa", "P-256"),
            (KeyAlg::EcdhEs, "jwed-ec", "X25519"),
        ],
        &[(SigAlg::ES256, "issuer-1")],
    );
    let tokens: Vec<String> = ["jwed-rsa", "jwed-ec"]
        .iter()
        .map(|kid| Issuer::new(&files, "issuer-1", kid).mint(&good_claims(), ContentEnc::A256Gcm))
        .collect();
    for placement in [Placement::Inline, Placement::BlockingPool, Placement::Dedicated] {
        let limits = Limits {
            placement,
            ..Limits::default()
        };
        let server = TestServer::start_with(Arc::new(decrypter(&files, test_policy())), limits).await;
        let mut calls = tokio::task::JoinSet::new();
        for round in 0..8 {
            let mut client = server.client().await;
            let token = tokens[round % 2].clone();
            calls.spawn(async move {
                let valid = client
                    .decrypt(request(&token, &[]))
                    .await
                    .map(|reply| reply.into_inner().key_id);
                let tampered = client.decrypt(request(&flip_last_char(&token), &[])).await;
                (valid, tampered.map(|_| ()).map_err(|status| status.code()))
            });
        }
        let mut kids = Vec::new();
        while let Some(joined) = calls.join_next().await {
            let (valid, tampered) = joined.expect("call task");
            kids.push(valid.unwrap_or_else(|status| panic!("{placement:?}: {status}")));
            assert_eq!(tampered, Err(Code::Unauthenticated), "{placement:?}");
        }
        kids.sort();
        assert_eq!(kids.iter().filter(|kid| *kid == "jwed-rsa").count(), 4, "{placement:?}");
        assert_eq!(kids.iter().filter(|kid| *kid == "jwed-ec").count(), 4, "{placement:?}");
        server.stop().await;
    }
}
