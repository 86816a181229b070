//! Gateway checks through a real server: Envoy's ext_authz `Check` over
//! the Unix socket and the nginx `auth_request` endpoint over HTTP. The
//! cases are a missing, invalid and expired token, a token without and with
//! the scope, a public path, and a path that tries to climb out of one.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use common::{Issuer, audit_key, audit_records, auditing, good_claims, now, sources, test_policy, write_keys};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, attribute_context, authorization_client::AuthorizationClient,
    check_response::HttpResponse,
};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    authz::GateSettings,
    gate::{GateRules, PrefixRule},
    server::BoundServer,
    service::{AuditFailure, Limits},
    store::KeyStore,
};
use serde_json::json;

struct Setup {
    socket: std::path::PathBuf,
    http: std::net::SocketAddr,
    audit_log: std::path::PathBuf,
    issuer: Issuer,
    _dir: tempfile::TempDir,
    _files: common::KeyFiles,
}

async fn setup() -> Setup {
    let files = write_keys(&[(KeyAlg::EcdhEs, "jwed-1", "P-256")], &[(SigAlg::ES256, "issuer-1")]);
    let issuer = Issuer::new(&files, "issuer-1", "jwed-1");
    let store = Arc::new(KeyStore::load(sources(&files), test_policy()).expect("load"));
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("jwed.sock");
    let (auditing, audit_log) = auditing(dir.path(), AuditFailure::FailClosed);

    let rules = GateRules::new(
        vec!["/public/".to_owned()],
        vec![PrefixRule {
            prefix: "/admin/".to_owned(),
            scopes: vec!["admin:read".to_owned()],
        }],
        true,
    )
    .expect("rules");
    let settings = GateSettings {
        rules,
        cookie: "access_token".to_owned(),
        subject_header: "x-jwed-subject".to_owned(),
        scopes_header: "x-jwed-scopes".to_owned(),
        remove_token_header: true,
    };

    let bound = BoundServer::bind(
        Some(&socket),
        None,
        store,
        Limits::default(),
        auditing,
        Duration::from_secs(1),
    )
    .await
    .expect("bind")
    .with_gate(settings, true, Some("127.0.0.1:0".parse().expect("address")))
    .await
    .expect("gate");
    let http = bound.gate_http_address().expect("http address");
    tokio::spawn(bound.serve(std::future::pending()));
    Setup {
        socket,
        http,
        audit_log,
        issuer,
        _dir: dir,
        _files: files,
    }
}

fn check_request(path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let http = attribute_context::HttpRequest {
        method: "GET".to_owned(),
        path: path.to_owned(),
        headers: headers
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                http: Some(http),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// The HTTP status and headers Envoy would apply, and the gRPC code.
struct Answer {
    grpc_code: i32,
    http_status: u16,
    headers: HashMap<String, String>,
    removed: Vec<String>,
}

async fn envoy(setup: &Setup, path: &str, headers: &[(&str, &str)]) -> Answer {
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("unix://{}", setup.socket.display())).expect("endpoint");
    let mut client = AuthorizationClient::new(endpoint.connect().await.expect("connect"));
    let response: CheckResponse = client
        .check(check_request(path, headers))
        .await
        .expect("Check")
        .into_inner();
    let grpc_code = response.status.as_ref().map_or(-1, |status| status.code);
    let header_map = |options: &[envoy_types::pb::envoy::config::core::v3::HeaderValueOption]| {
        options
            .iter()
            .filter_map(|option| option.header.as_ref())
            .map(|header| (header.key.clone(), header.value.clone()))
            .collect::<HashMap<_, _>>()
    };
    match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => Answer {
            grpc_code,
            http_status: 200,
            headers: header_map(&ok.headers),
            removed: ok.headers_to_remove,
        },
        Some(HttpResponse::DeniedResponse(denied)) => Answer {
            grpc_code,
            http_status: denied
                .status
                .as_ref()
                .map_or(0, |status| u16::try_from(status.code).expect("status")),
            headers: header_map(&denied.headers),
            removed: Vec::new(),
        },
        other => panic!("unexpected response: {other:?}"),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn token_with(issuer: &Issuer, scopes: &[&str]) -> String {
    let mut claims = good_claims();
    claims.insert("scopes".into(), json!(scopes));
    issuer.mint(&claims, ContentEnc::A256Gcm)
}

#[tokio::test]
async fn envoy_check_answers_each_case() {
    let setup = setup().await;
    let reader = token_with(&setup.issuer, &["orders:read"]);
    let admin = token_with(&setup.issuer, &["orders:read", "orders:admin"]);
    let mut expired_claims = good_claims();
    expired_claims.insert("iat".into(), json!(now() - 600));
    expired_claims.insert("exp".into(), json!(now() - 300));
    expired_claims.insert("scopes".into(), json!(["orders:admin"]));
    let expired = setup.issuer.mint(&expired_claims, ContentEnc::A256Gcm);
    let page = "/orders:admin/index.html";

    let missing = envoy(&setup, page, &[]).await;
    assert_eq!(missing.http_status, 401);
    assert_eq!(missing.grpc_code, tonic::Code::Unauthenticated as i32);
    assert_eq!(missing.headers["x-jwed-reason"], "TOKEN_MISSING");
    assert!(missing.headers["www-authenticate"].starts_with("Bearer"));

    let invalid = envoy(&setup, page, &[("authorization", "Bearer not.a.valid.jwe.token")]).await;
    assert_eq!(invalid.http_status, 401);
    assert_eq!(invalid.headers["x-jwed-reason"], "TOKEN_INVALID");
    assert!(!invalid.headers.contains_key("x-jwed-refresh-required"));

    let stale = envoy(&setup, page, &[("authorization", &bearer(&expired))]).await;
    assert_eq!(stale.http_status, 401);
    assert_eq!(stale.headers["x-jwed-reason"], "TOKEN_EXPIRED");
    assert_eq!(stale.headers["x-jwed-refresh-required"], "true");

    let forbidden = envoy(&setup, page, &[("authorization", &bearer(&reader))]).await;
    assert_eq!(forbidden.http_status, 403);
    assert_eq!(forbidden.grpc_code, tonic::Code::PermissionDenied as i32);
    assert_eq!(forbidden.headers["x-jwed-reason"], "INSUFFICIENT_SCOPE");
    assert!(forbidden.headers["www-authenticate"].contains("scope=\"orders:admin\""));

    let allowed = envoy(&setup, page, &[("authorization", &bearer(&admin))]).await;
    assert_eq!(allowed.http_status, 200);
    assert_eq!(allowed.grpc_code, 0);
    assert_eq!(allowed.headers["x-jwed-subject"], good_claims()["sub"]);
    assert_eq!(allowed.headers["x-jwed-scopes"], "orders:read orders:admin");
    assert!(
        !allowed.headers.values().any(|value| value.contains(&admin)),
        "the token reached the upstream"
    );
    assert_eq!(allowed.removed, ["authorization"]);

    let cookie = format!("theme=dark; access_token={admin}");
    let from_cookie = envoy(&setup, page, &[("cookie", &cookie)]).await;
    assert_eq!(from_cookie.http_status, 200);

    let public = envoy(&setup, "/public/logo.png", &[("x-jwed-subject", "forged")]).await;
    assert_eq!(public.http_status, 200);
    assert!(public.headers.is_empty());
    assert_eq!(
        public.removed,
        ["x-jwed-subject", "x-jwed-scopes", "authorization"],
        "client-sent identity headers reach the upstream"
    );

    let climb = envoy(&setup, "/public/..%2Forders:admin/index.html", &[]).await;
    assert_eq!(climb.http_status, 400);
    let dots = envoy(&setup, "/public/../orders:admin/index.html", &[]).await;
    assert_eq!(
        dots.http_status, 401,
        "normalized to the protected page, which needs a token"
    );

    let root = envoy(&setup, "/", &[("authorization", &bearer(&admin))]).await;
    assert_eq!(root.http_status, 403, "the root serves a root file such as /index.html");
    assert_eq!(root.headers["x-jwed-reason"], "PATH_NOT_ALLOWED");

    let records = audit_records(&setup.audit_log);
    assert_eq!(records.len(), 10, "one record per check");
    let decisions: Vec<(&str, &str)> = records
        .iter()
        .map(|record| {
            (
                record["path"].as_str().expect("path"),
                record["decision"].as_str().expect("decision"),
            )
        })
        .collect();
    assert_eq!(decisions[0], (page, "deny 401"));
    assert_eq!(decisions[3], (page, "deny 403"));
    assert_eq!(decisions[4], (page, "allow"));
    assert_eq!(decisions[6], ("/public/logo.png", "allow"));
    assert_eq!(decisions[7].1, "deny 400");
    assert_eq!(decisions[8], (page, "deny 401"));
    assert!(
        records
            .iter()
            .all(|record| record["method"] == "envoy.service.auth.v3.Authorization/Check")
    );
    // The new members are covered by the chain like the others.
    let key = audit_key(setup._dir.path());
    let verified = jwed::audit_verify::verify(&key, std::slice::from_ref(&setup.audit_log)).expect("readable");
    assert!(verified.is_ok(), "{verified:?}");
}

/// Sends the request nginx's `auth_request` would send and returns the
/// status line and headers.
async fn auth_request(setup: &Setup, uri: &str, authorization: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(setup.http).await.expect("connect");
    let mut request = format!("GET /check HTTP/1.1\r\nHost: jwed\r\nX-Original-URI: {uri}\r\nConnection: close\r\n");
    if let Some(value) = authorization {
        request.push_str(&format!("Authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response.to_ascii_lowercase()
}

#[tokio::test]
async fn http_auth_request_answers_like_envoy() {
    let setup = setup().await;
    let reader = token_with(&setup.issuer, &["orders:read"]);
    let admin = token_with(&setup.issuer, &["admin:read"]);

    let missing = auth_request(&setup, "/admin/users.html", None).await;
    assert!(missing.starts_with("http/1.1 401"), "{missing}");
    assert!(missing.contains("www-authenticate: bearer"), "{missing}");

    let forbidden = auth_request(&setup, "/ADMIN/users.html", Some(&bearer(&reader))).await;
    assert!(forbidden.starts_with("http/1.1 403"), "{forbidden}");

    let allowed = auth_request(&setup, "/admin/users.html?page=2", Some(&bearer(&admin))).await;
    assert!(allowed.starts_with("http/1.1 200"), "{allowed}");
    assert!(allowed.contains("x-jwed-scopes: admin:read"), "{allowed}");

    let no_uri = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(setup.http).await.expect("connect");
        stream
            .write_all(b"GET /check HTTP/1.1\r\nHost: jwed\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    };
    assert!(no_uri.starts_with("HTTP/1.1 400"), "{no_uri}");

    let records = audit_records(&setup.audit_log);
    assert_eq!(records.len(), 4, "every check is audited, the one without a URI too");
    assert_eq!(records[3]["decision"], "deny 400");
    assert!(records.iter().all(|record| record["method"] == "jwed.auth_request"));
}
