//! The claims cache, through a real server on a Unix socket: hits are
//! audited and judged against each request, never outlive `exp`, and the
//! cache empties when keys or revocations change.

mod common;

use std::{sync::Arc, time::Duration};

use common::{Issuer, TestServer, audit_records, good_claims, now, sources, test_policy, write_keys};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    decrypt::Policy,
    pb::DecryptRequest,
    revocation::RevocationList,
    service::Limits,
    store::{KeyStore, Reload},
};
use serde_json::{Value, json};
use tonic_types::StatusExt;

fn request(token: &str, scopes: &[&str]) -> DecryptRequest {
    DecryptRequest {
        token: token.to_owned(),
        required_scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        ..DecryptRequest::default()
    }
}

fn reason_of(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

struct Setup {
    files: common::KeyFiles,
    issuer: Issuer,
    store: Arc<KeyStore>,
    server: TestServer,
}

async fn setup(policy: Policy) -> Setup {
    let files = write_keys(&[(KeyAlg::EcdhEs, "jwed-1", "P-256")], &[(SigAlg::ES256, "issuer-1")]);
    let issuer = Issuer::new(&files, "issuer-1", "jwed-1");
    let store = Arc::new(KeyStore::load(sources(&files), policy).expect("load").with_cache(16));
    let server = TestServer::start_with(store.clone(), Limits::default()).await;
    Setup {
        files,
        issuer,
        store,
        server,
    }
}

fn cache_hits(records: &[Value]) -> Vec<bool> {
    records
        .iter()
        .map(|record| record["cache_hit"].as_bool().expect("cache_hit"))
        .collect()
}

#[tokio::test]
async fn cache_hit_is_audited() {
    let setup = setup(test_policy()).await;
    let token = setup.issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let mut client = setup.server.client().await;

    let first = client
        .decrypt(request(&token, &[]))
        .await
        .expect("first call")
        .into_inner();
    let second = client
        .decrypt(request(&token, &[]))
        .await
        .expect("second call")
        .into_inner();
    assert_eq!(first, second, "a hit returns what the decryption returned");
    assert_eq!(setup.store.cache().hits_and_misses(), (1, 1));

    let records = audit_records(&setup.server.audit_log);
    assert_eq!(cache_hits(&records), [false, true]);
    for record in &records {
        assert_eq!(record["outcome"], "allowed");
        assert_eq!(record["kid"], "jwed-1");
        assert_eq!(record["signing_kid"], "issuer-1");
        assert_eq!(record["subject"], good_claims()["sub"]);
    }
    assert_eq!(records[0]["fingerprint"], records[1]["fingerprint"]);
}

#[tokio::test]
async fn cache_hit_checks_its_request() {
    let setup = setup(test_policy()).await;
    let token = setup.issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let mut client = setup.server.client().await;
    client.decrypt(request(&token, &[])).await.expect("first call");

    let missing = client
        .decrypt(request(&token, &["orders:admin"]))
        .await
        .expect_err("scope the token lacks");
    assert_eq!(reason_of(&missing), "INSUFFICIENT_SCOPE");
    let other_audience = DecryptRequest {
        audience: "billing-api".into(),
        ..request(&token, &[])
    };
    let rejected = client
        .decrypt(other_audience)
        .await
        .expect_err("audience not configured");
    assert_eq!(reason_of(&rejected), "AUDIENCE_NOT_ALLOWED");
    assert_eq!(setup.store.cache().hits_and_misses(), (2, 1));

    let records = audit_records(&setup.server.audit_log);
    assert_eq!(cache_hits(&records), [false, true, true]);
    assert_eq!(records[1]["reason"], "INSUFFICIENT_SCOPE");
}

#[tokio::test]
async fn cache_skips_expired_token() {
    let policy = Policy {
        claims: jwed::claims::ClaimsPolicy {
            leeway_seconds: 0,
            ..test_policy().claims
        },
        ..test_policy()
    };
    let setup = setup(policy).await;
    let mut claims = good_claims();
    claims.insert("exp".into(), json!(now() + 1));
    let token = setup.issuer.mint(&claims, ContentEnc::A256Gcm);
    let mut client = setup.server.client().await;
    client
        .decrypt(request(&token, &[]))
        .await
        .expect("valid for one more second");
    assert_eq!(setup.store.cache().len(), 1);

    // Wait until the clock is past exp, whole seconds being what exp counts.
    while now() <= claims["exp"].as_i64().expect("exp") {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expired = client.decrypt(request(&token, &[])).await.expect_err("expired");
    assert_eq!(reason_of(&expired), "TOKEN_EXPIRED");
    assert_eq!(setup.store.cache().hits_and_misses().0, 0, "served from the cache");
    assert!(setup.store.cache().is_empty());
    assert_eq!(cache_hits(&audit_records(&setup.server.audit_log)), [false, false]);
}

#[tokio::test]
async fn cache_skips_rejected_tokens() {
    let setup = setup(test_policy()).await;
    let token = setup.issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let mut client = setup.server.client().await;
    for _ in 0..2 {
        let rejected = client.decrypt(request(&tampered, &[])).await.expect_err("tampered");
        assert_eq!(reason_of(&rejected), "TOKEN_INVALID");
    }
    assert!(setup.store.cache().is_empty());
    assert_eq!(setup.store.cache().hits_and_misses(), (0, 2));
}

#[tokio::test]
async fn cache_empties_on_revocation() {
    let setup = setup(test_policy()).await;
    let token = setup.issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let mut client = setup.server.client().await;
    client.decrypt(request(&token, &[])).await.expect("first call");
    assert_eq!(setup.store.cache().len(), 1);

    let list = RevocationList::parse(br#"{"tokens": ["token-0001"]}"#).expect("list");
    setup.store.revoke(&list);
    assert!(setup.store.cache().is_empty());
    let revoked = client.decrypt(request(&token, &[])).await.expect_err("revoked");
    assert_eq!(reason_of(&revoked), "TOKEN_REVOKED");
}

#[tokio::test]
async fn cache_empties_on_key_retirement() {
    let setup = setup(test_policy()).await;
    let token = setup.issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let mut client = setup.server.client().await;
    client.decrypt(request(&token, &[])).await.expect("first call");
    assert_eq!(setup.store.cache().len(), 1);

    let text = std::fs::read_to_string(&setup.files.private_keys).expect("read keys");
    let mut set: Value = serde_json::from_str(&text).expect("json");
    set["keys"][0]["state"] = json!("retired");
    std::fs::write(&setup.files.private_keys, set.to_string()).expect("write keys");
    assert_eq!(setup.store.check_for_changes(), Reload::Reloaded);
    assert!(setup.store.cache().is_empty());

    let retired = client.decrypt(request(&token, &[])).await.expect_err("retired");
    assert_eq!(reason_of(&retired), "KEY_RETIRED");
}

#[tokio::test]
async fn cache_bound_holds() {
    let setup = setup(test_policy()).await;
    let mut client = setup.server.client().await;
    for n in 0..40 {
        let mut claims = good_claims();
        claims.insert("jti".into(), json!(format!("token-{n}")));
        let token = setup.issuer.mint(&claims, ContentEnc::A256Gcm);
        client.decrypt(request(&token, &[])).await.expect("valid");
        assert!(setup.store.cache().len() <= 16);
    }
    assert_eq!(setup.store.cache().len(), 16);
}
