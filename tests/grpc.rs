//! End-to-end tests: a real server on a temporary Unix socket, called with
//! the generated gRPC client, for every outcome and every ErrorInfo reason.

mod common;

use base64ct::{Base64UrlUnpadded, Encoding};
use common::{AUDIENCE, Issuer, KeyFiles, TestServer, good_claims, now, test_policy, write_keys};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    decrypt::{Policy, UnsignedTokens},
    pb::DecryptRequest,
    status::{DOMAIN, REFRESH_REQUIRED},
};
use serde_json::{Map, Value, json};
use tonic::Code;
use tonic_types::StatusExt;

fn key_files() -> KeyFiles {
    write_keys(
        &[
            (KeyAlg::EcdhEs, "enc-p256", "P-256"),
            (KeyAlg::RsaOaep256, "enc-rsa", "P-256"),
            (KeyAlg::A256Kw, "enc-a256kw", "P-256"),
        ],
        &[(SigAlg::ES256, "sig-es256"), (SigAlg::EdDSA, "sig-eddsa")],
    )
}

fn request(token: &str) -> DecryptRequest {
    DecryptRequest {
        token: token.to_owned(),
        ..DecryptRequest::default()
    }
}

/// Sends `request` and returns the status code, ErrorInfo reason and
/// message of a rejection.
async fn rejection(server: &TestServer, request: DecryptRequest) -> (Code, String, String, Option<String>) {
    let status = server
        .client()
        .await
        .decrypt(request)
        .await
        .expect_err("the token must be rejected");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo detail");
    assert_eq!(info.domain, DOMAIN);
    (
        status.code(),
        info.reason.clone(),
        status.message().to_owned(),
        info.metadata.get(REFRESH_REQUIRED).cloned(),
    )
}

fn with(mut claims: Map<String, Value>, name: &str, value: Value) -> Map<String, Value> {
    claims.insert(name.to_owned(), value);
    claims
}

fn without(mut claims: Map<String, Value>, name: &str) -> Map<String, Value> {
    claims.remove(name);
    claims
}

#[tokio::test]
async fn valid_token_returns_claims_and_typed_fields() {
    let files = key_files();
    let server = TestServer::start(common::decrypter(&files, test_policy())).await;
    let issuer = Issuer::new(&files, "sig-es256", "enc-p256");
    let claims = good_claims();
    let token = issuer.mint(&claims, ContentEnc::A256Gcm);

    let response = server
        .client()
        .await
        .decrypt(request(&token))
        .await
        .expect("accepted")
        .into_inner();

    let returned: Value = serde_json::from_str(&response.claims_json).expect("claims_json is JSON");
    assert_eq!(returned, Value::Object(claims.clone()));
    assert_eq!(response.subject, "5b1f0a52-3c1e-4b8e-a0f4-6f1f2e7f9d11");
    assert_eq!(response.scopes, vec!["orders:read", "orders:list"]);
    assert_eq!(response.issuer, common::ISSUER);
    assert_eq!(
        response.expires_at.expect("expires_at").seconds,
        claims["exp"].as_i64().expect("exp")
    );
    assert_eq!(
        response.issued_at.expect("issued_at").seconds,
        claims["iat"].as_i64().expect("iat")
    );
    assert_eq!(response.key_id, "enc-p256");
    assert_eq!(response.signing_key_id, "sig-es256");
    assert_eq!(response.token_id, "token-0001");

    let fields = response.claims.expect("claims struct").fields;
    assert_eq!(fields.len(), claims.len());
    assert!(matches!(fields["iss"].kind, Some(prost_types::value::Kind::StringValue(ref s)) if s == common::ISSUER));
    server.stop().await;
}

#[tokio::test]
async fn every_key_type_and_enc_decrypts() {
    let files = key_files();
    let policy = Policy {
        content_encryption: ContentEnc::ALL.to_vec(),
        ..test_policy()
    };
    let server = TestServer::start(common::decrypter(&files, policy)).await;

    for kid in ["enc-p256", "enc-rsa", "enc-a256kw"] {
        for signer in ["sig-es256", "sig-eddsa"] {
            for enc in ContentEnc::ALL {
                let token = Issuer::new(&files, signer, kid).mint(&good_claims(), enc);
                let result = server.client().await.decrypt(request(&token)).await;
                let response = result
                    .unwrap_or_else(|status| panic!("{kid} {signer} {enc}: {status:?}"))
                    .into_inner();
                assert_eq!(response.key_id, kid);
                assert_eq!(response.signing_key_id, signer);
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn subject_falls_back_to_id_and_scope_string_is_read() {
    let files = key_files();
    let server = TestServer::start(common::decrypter(&files, test_policy())).await;
    let issuer = Issuer::new(&files, "sig-es256", "enc-p256");
    let claims = without(without(good_claims(), "sub"), "scopes");
    let claims = with(
        with(claims, "id", json!("user-42")),
        "scope",
        json!("orders:read  reports:read"),
    );

    let mut req = request(&issuer.mint(&claims, ContentEnc::A128Gcm));
    req.required_scopes = vec!["reports:read".into()];
    let response = server.client().await.decrypt(req).await.expect("accepted").into_inner();
    assert_eq!(response.subject, "user-42");
    assert_eq!(response.scopes, vec!["orders:read", "reports:read"]);
    server.stop().await;
}

#[tokio::test]
async fn claim_failures_have_their_own_reasons() {
    let files = key_files();
    let server = TestServer::start(common::decrypter(&files, test_policy())).await;
    let issuer = Issuer::new(&files, "sig-eddsa", "enc-rsa");
    let now = now();

    let cases = [
        (
            "expired",
            with(good_claims(), "exp", json!(now - 31)),
            Code::Unauthenticated,
            "TOKEN_EXPIRED",
            Some("true"),
        ),
        (
            "nbf in the future",
            with(good_claims(), "nbf", json!(now + 120)),
            Code::Unauthenticated,
            "TOKEN_NOT_YET_VALID",
            None,
        ),
        (
            "iat in the future",
            with(good_claims(), "iat", json!(now + 120)),
            Code::Unauthenticated,
            "TOKEN_NOT_YET_VALID",
            None,
        ),
        (
            "lifetime too long",
            with(good_claims(), "exp", json!(now + 7200)),
            Code::Unauthenticated,
            "TOKEN_LIFETIME_TOO_LONG",
            None,
        ),
        (
            "exp missing",
            without(good_claims(), "exp"),
            Code::Unauthenticated,
            "CLAIMS_INVALID",
            None,
        ),
        (
            "exp a string",
            with(good_claims(), "exp", json!("tomorrow")),
            Code::Unauthenticated,
            "CLAIMS_INVALID",
            None,
        ),
        (
            "exp 1e20",
            with(good_claims(), "exp", json!(1e20)),
            Code::Unauthenticated,
            "CLAIMS_INVALID",
            None,
        ),
        (
            "wrong issuer",
            with(good_claims(), "iss", json!("https://evil.example")),
            Code::Unauthenticated,
            "ISSUER_MISMATCH",
            None,
        ),
        (
            "wrong audience",
            with(good_claims(), "aud", json!(["billing-api"])),
            Code::Unauthenticated,
            "AUDIENCE_MISMATCH",
            None,
        ),
        (
            "no audience",
            without(good_claims(), "aud"),
            Code::Unauthenticated,
            "AUDIENCE_MISMATCH",
            None,
        ),
    ];
    for (name, claims, code, reason, refresh) in cases {
        let token = issuer.mint(&claims, ContentEnc::A256Gcm);
        let (got_code, got_reason, _, got_refresh) = rejection(&server, request(&token)).await;
        assert_eq!(got_code, code, "{name}");
        assert_eq!(got_reason, reason, "{name}");
        assert_eq!(got_refresh.as_deref(), refresh, "{name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn request_audience_and_scopes_are_enforced() {
    let files = key_files();
    let server = TestServer::start(common::decrypter(&files, test_policy())).await;
    let issuer = Issuer::new(&files, "sig-es256", "enc-a256kw");
    let claims = with(good_claims(), "aud", json!([AUDIENCE, "reports-api"]));
    let token = issuer.mint(&claims, ContentEnc::A256Gcm);

    let mut req = request(&token);
    req.audience = "reports-api".into();
    req.required_scopes = vec!["orders:read".into()];
    server
        .client()
        .await
        .decrypt(req)
        .await
        .expect("configured audience in aud");

    let mut req = request(&token);
    req.audience = "admin-api".into();
    let (code, reason, _, _) = rejection(&server, req).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::PermissionDenied, "AUDIENCE_NOT_ALLOWED")
    );

    let mut req = request(&token);
    req.required_scopes = vec!["orders:read".into(), "orders:write".into()];
    let status = server.client().await.decrypt(req).await.expect_err("missing scope");
    assert_eq!(status.code(), Code::PermissionDenied);
    let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
    assert_eq!(info.reason, "INSUFFICIENT_SCOPE");
    assert_eq!(
        info.metadata.get("missing_scopes").map(String::as_str),
        Some("orders:write")
    );

    let mut req = request(&token);
    req.required_scopes = (0..65).map(|i| format!("scope-{i}")).collect();
    let (code, reason, _, _) = rejection(&server, req).await;
    assert_eq!((code, reason.as_str()), (Code::InvalidArgument, "REQUEST_INVALID"));
    server.stop().await;
}

/// Tokens broken in different ways, all of which must look the same to the
/// caller.
fn invalid_tokens(files: &KeyFiles) -> Vec<(&'static str, String)> {
    let issuer = Issuer::new(files, "sig-es256", "enc-p256");
    let good = issuer.mint(&good_claims(), ContentEnc::A256Gcm);
    let segments: Vec<&str> = good.split('.').collect();
    let replace = |index: usize, value: &str| {
        let mut parts: Vec<String> = segments.iter().map(|s| (*s).to_owned()).collect();
        parts[index] = value.to_owned();
        parts.join(".")
    };
    let flip_first = |index: usize| {
        let segment = segments[index];
        let first = if segment.starts_with('A') { "B" } else { "A" };
        replace(index, &format!("{first}{}", &segment[1..]))
    };
    let header = |value: Value| Base64UrlUnpadded::encode_string(value.to_string().as_bytes());

    let unsigned = Issuer::new(files, "sig-es256", "enc-p256").mint_unsigned(&good_claims(), ContentEnc::A256Gcm);
    let unknown_signer = {
        let other = write_keys(&[], &[(SigAlg::ES256, "sig-es256")]);
        let mut stranger = Issuer::new(files, "sig-es256", "enc-p256");
        stranger.signer = jwed::mint::Signer::from_file(&other.issuer_private, None).expect("signer");
        stranger.mint(&good_claims(), ContentEnc::A256Gcm)
    };

    vec![
        ("empty", String::new()),
        ("garbage", "not a token".into()),
        ("four segments", segments[..4].join(".")),
        ("six segments", format!("{good}.AAAA")),
        ("tampered ciphertext", flip_first(3)),
        ("tampered tag", flip_first(4)),
        ("tampered iv", flip_first(2)),
        ("truncated tag", replace(4, &segments[4][..10])),
        (
            "unknown kid",
            replace(0, &header(json!({"alg": "ECDH-ES", "enc": "A256GCM", "kid": "nope"}))),
        ),
        (
            "alg none",
            replace(0, &header(json!({"alg": "none", "enc": "A256GCM", "kid": "enc-p256"}))),
        ),
        (
            "RSA1_5",
            replace(0, &header(json!({"alg": "RSA1_5", "enc": "A256GCM", "kid": "enc-rsa"}))),
        ),
        (
            "alg differs from the key's pin",
            replace(
                0,
                &header(json!({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": "enc-rsa"})),
            ),
        ),
        (
            "CBC not enabled",
            Issuer::new(files, "sig-es256", "enc-p256").mint(&good_claims(), ContentEnc::A128CbcHs256),
        ),
        ("unsigned payload", unsigned),
        ("signed by an unknown key", unknown_signer),
        ("oversized", "A".repeat(20_000)),
    ]
}

#[tokio::test]
async fn every_invalid_token_gets_one_opaque_answer() {
    let files = key_files();
    let server = TestServer::start(common::decrypter(&files, test_policy())).await;

    for (name, token) in invalid_tokens(&files) {
        let (code, reason, message, refresh) = rejection(&server, request(&token)).await;
        assert_eq!(code, Code::Unauthenticated, "{name}");
        assert_eq!(reason, "TOKEN_INVALID", "{name}");
        assert_eq!(message, "token is invalid", "{name}");
        assert_eq!(refresh, None, "{name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn unsigned_tokens_only_when_enabled_for_symmetric_keys() {
    let files = key_files();
    let policy = Policy {
        unsigned: UnsignedTokens::SymmetricKeys,
        ..test_policy()
    };
    let server = TestServer::start(common::decrypter(&files, policy)).await;

    let symmetric = Issuer::new(&files, "sig-es256", "enc-a256kw").mint_unsigned(&good_claims(), ContentEnc::A256Gcm);
    let response = server
        .client()
        .await
        .decrypt(request(&symmetric))
        .await
        .expect("unsigned symmetric")
        .into_inner();
    assert_eq!(response.signing_key_id, "");
    assert_eq!(response.key_id, "enc-a256kw");

    let asymmetric = Issuer::new(&files, "sig-es256", "enc-p256").mint_unsigned(&good_claims(), ContentEnc::A256Gcm);
    let (_, reason, _, _) = rejection(&server, request(&asymmetric)).await;
    assert_eq!(reason, "TOKEN_INVALID");
    server.stop().await;
}

#[tokio::test]
async fn token_without_kid_needs_exactly_one_fitting_key() {
    let files = write_keys(
        &[
            (KeyAlg::EcdhEs, "only-p256", "P-256"),
            (KeyAlg::RsaOaep256, "rsa-1", "P-256"),
            (KeyAlg::RsaOaep256, "rsa-2", "P-256"),
        ],
        &[(SigAlg::ES256, "sig")],
    );
    let server = TestServer::start(common::decrypter(&files, test_policy())).await;
    let mint_without_kid = |kid: &str| {
        let mut issuer = Issuer::new(&files, "sig", kid);
        issuer.recipient = issuer.recipient.without_kid();
        issuer.mint(&good_claims(), ContentEnc::A256Gcm)
    };

    let response = server
        .client()
        .await
        .decrypt(request(&mint_without_kid("only-p256")))
        .await
        .expect("one key fits");
    assert_eq!(response.into_inner().key_id, "only-p256");

    let (_, reason, _, _) = rejection(&server, request(&mint_without_kid("rsa-1"))).await;
    assert_eq!(reason, "TOKEN_INVALID", "two RSA-OAEP-256 keys fit");
    server.stop().await;
}
