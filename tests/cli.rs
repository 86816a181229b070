//! The `jwed` binary as an operator runs it: keygen, a TOML configuration,
//! `serve` on a Unix socket and TCP, health and reflection, `mint`,
//! `decrypt`, invalid configuration, and shutdown on SIGTERM and SIGINT.

mod common;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::{JWED, jwed};
use jwed::pb::DecryptRequest;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};
use tonic_types::StatusExt;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A directory with jwed's keys, an issuer's keys and a configuration file.
struct Setup {
    dir: tempfile::TempDir,
    socket: PathBuf,
    tcp: String,
    config: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();

    let made = jwed(&[
        "keygen",
        "--alg",
        "ECDH-ES",
        "--crv",
        "P-256",
        "--kid",
        "jwed-1",
        "--out",
        &path("jwed.json"),
        "--public-out",
        &path("jwed.public.json"),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let made = jwed(&[
        "keygen",
        "--alg",
        "EdDSA",
        "--kid",
        "issuer-1",
        "--out",
        &path("issuer.json"),
        "--public-out",
        &path("issuer.public.json"),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));

    let port = TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("address")
        .port();
    let socket = dir.path().join("jwed.sock");
    let config = dir.path().join("jwed.toml");
    let text = format!(
        "[server]\nunix_socket = {socket:?}\ntcp_listen = \"127.0.0.1:{port}\"\nshutdown_grace_seconds = 5\n\n\
         [keys]\nprivate_keys = {:?}\nissuer_keys = {:?}\n\n\
         [tokens]\nissuer = \"https://auth.cli.example\"\naudiences = [\"orders-api\"]\n",
        path("jwed.json"),
        path("issuer.public.json"),
    );
    std::fs::write(&config, text).expect("write config");
    Setup {
        socket,
        tcp: format!("127.0.0.1:{port}"),
        config,
        dir,
    }
}

fn start(setup: &Setup, extra_env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(JWED);
    command
        .args(["serve", "--config"])
        .arg(&setup.config)
        .env_remove("JWED_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let child = command.spawn().expect("start jwed serve");

    let deadline = Instant::now() + Duration::from_secs(20);
    // The socket file appears at bind(), a moment before listen().
    while std::os::unix::net::UnixStream::connect(&setup.socket).is_err() {
        assert!(Instant::now() < deadline, "jwed serve did not listen on its socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits for the server to exit. Async, so that the test's own client
/// connections keep replying to the server's HTTP/2 GOAWAY and PING during
/// the drain.
async fn wait(mut child: Child) -> (i32, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let output = child.wait_with_output().expect("output");
            return (status.code().unwrap_or(-1), stderr(&output));
        }
        assert!(Instant::now() < deadline, "jwed serve did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connects, retrying briefly: the socket file appears at bind(), a moment
/// before the server calls listen().
async fn unix_channel(socket: &Path) -> Channel {
    let endpoint = Endpoint::from_shared(format!("unix://{}", socket.display())).expect("endpoint");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match endpoint.connect().await {
            Ok(channel) => return channel,
            Err(error) => assert!(
                Instant::now() < deadline,
                "cannot connect to {}: {error:?}",
                socket.display()
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn mint(setup: &Setup, claims: &str) -> String {
    let path = |name: &str| setup.dir.path().join(name).to_string_lossy().into_owned();
    let output = jwed(&[
        "mint",
        "--signing-keys",
        &path("issuer.json"),
        "--encryption-keys",
        &path("jwed.public.json"),
        "--claims",
        claims,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

const CLAIMS: &str = r#"{"iss":"https://auth.cli.example","aud":"orders-api","sub":"user-7","scopes":["orders:read"]}"#;

#[test]
fn invalid_configuration_exits_64_naming_the_setting() {
    let setup = setup();
    let cases = [
        ("[tokens]\nleeway_seconds = 999\n", "tokens.leeway_seconds"),
        ("[tokens]\nleway_seconds = 5\n", "leway_seconds"),
        ("[server]\ntcp_listen = \"localhost:x\"\n", "server.tcp_listen"),
        (
            "[keys]\nprivate_keys = \"/nonexistent/keys.json\"\nissuer_keys = \"/nonexistent/i.json\"\n",
            "keys.private_keys",
        ),
    ];
    for (text, setting) in cases {
        let config = setup.dir.path().join("bad.toml");
        let text = if text.starts_with("[keys]") {
            text.to_owned()
        } else {
            format!("[keys]\nprivate_keys = \"k.json\"\nissuer_keys = \"i.json\"\n{text}")
        };
        std::fs::write(&config, text).expect("write");
        let output = jwed(&["serve", "--config", &config.to_string_lossy()]);
        assert_eq!(output.status.code(), Some(64), "{setting}: {}", stderr(&output));
        assert!(stderr(&output).contains(setting), "{setting}: {}", stderr(&output));
    }

    let output = Command::new(JWED)
        .args(["serve", "--unix-socket", "/tmp/x.sock"])
        .env_remove("JWED_PRIVATE_KEYS")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(64));
    assert!(stderr(&output).contains("keys.private_keys"), "{}", stderr(&output));
}

#[test]
fn keygen_never_overwrites_a_private_key() {
    let setup = setup();
    let existing = setup.dir.path().join("jwed.json");
    let before = std::fs::read(&existing).expect("read");
    let output = jwed(&[
        "keygen",
        "--out",
        &existing.to_string_lossy(),
        "--public-out",
        &setup.dir.path().join("p.json").to_string_lossy(),
    ]);
    assert_eq!(output.status.code(), Some(64));
    assert_eq!(std::fs::read(&existing).expect("read"), before);

    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&existing).expect("metadata").permissions());
    assert_eq!(mode & 0o777, 0o600);
    let public = std::fs::read_to_string(setup.dir.path().join("jwed.public.json")).expect("public");
    assert!(!public.contains("\"d\""), "the public file has a private member");
}

#[tokio::test]
async fn serve_answers_health_reflection_and_decrypt_then_stops_on_sigterm() {
    let setup = setup();
    let child = start(&setup, &[("JWED_AUDIENCES", "orders-api,reports-api")]);
    let channel = unix_channel(&setup.socket).await;

    let health = HealthClient::new(channel.clone());
    for service in ["", "jwed.v1.Decryptor"] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let status = health.clone().check(request).await.expect("health").into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "service {service:?}");
    }

    let services = reflection_services(channel.clone()).await;
    for expected in ["jwed.v1.Decryptor", "grpc.health.v1.Health"] {
        assert!(
            services.iter().any(|name| name == expected),
            "{expected} missing from {services:?}"
        );
    }

    let token = mint(&setup, CLAIMS);
    let output = jwed(&["decrypt", "--unix-socket", &setup.socket.to_string_lossy(), &token]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("claims JSON on stdout");
    assert_eq!(printed["sub"], "user-7");

    let output = jwed(&["decrypt", "--tcp", &setup.tcp, "--scope", "orders:write", &token]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stdout).contains("INSUFFICIENT_SCOPE"));

    signal(&child, "TERM");
    let (code, logs) = wait(child).await;
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("Drain finished"), "{logs}");
    assert!(!setup.socket.exists(), "the socket file is removed at shutdown");
    assert!(!logs.contains(&token), "the token appears in the logs");
    let private: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(setup.dir.path().join("jwed.json")).expect("read"))
            .expect("json");
    let d = private["keys"][0]["d"].as_str().expect("d");
    assert!(!logs.contains(d), "the private key appears in the logs");
}

#[tokio::test]
async fn in_flight_calls_finish_after_sigint() {
    let setup = setup();
    let audit_log = setup.dir.path().join("audit.log");
    let config = std::fs::read_to_string(&setup.config).expect("read");
    std::fs::write(&setup.config, format!("{config}\n[audit]\nfile = {audit_log:?}\n")).expect("write");
    let child = start(&setup, &[]);
    let token = mint(&setup, CLAIMS);
    let channel = unix_channel(&setup.socket).await;

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let mut client = jwed::pb::decryptor_client::DecryptorClient::new(channel.clone());
        let request = DecryptRequest {
            token: token.clone(),
            ..DecryptRequest::default()
        };
        calls.spawn(async move { client.decrypt(request).await.map(|_| ()) });
    }
    // Give the streams time to reach the server, then interrupt it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    signal(&child, "INT");

    // A stream that reached the server after it stopped accepting is
    // refused, which a client may retry; a call the server had started must
    // finish, never be cut off.
    let mut succeeded = 0;
    while let Some(result) = calls.join_next().await {
        match result.expect("join") {
            Ok(()) => succeeded += 1,
            Err(status) => assert_ne!(status.code(), tonic::Code::Ok, "{status:?}"),
        }
    }
    let (code, logs) = wait(child).await;
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("SIGINT"), "{logs}");
    assert!(logs.contains("Drain finished"), "{logs}");

    let audited = std::fs::read_to_string(&audit_log).expect("audit log");
    let started = audited.lines().count();
    assert!(succeeded > 0, "no call finished");
    assert_eq!(started, succeeded, "every call the server started finished: {audited}");
    assert!(!audited.contains("CANCELLED"), "a started call was cut off");
}

async fn reflection_services(channel: Channel) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = stream
        .message()
        .await
        .expect("reflection response")
        .expect("one response");
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|service| service.name).collect()
        }
        other => panic!("unexpected reflection response {other:?}"),
    }
}

#[tokio::test]
async fn second_server_does_not_take_over_a_live_socket() {
    let setup = setup();
    let first = start(&setup, &[]);

    let second = Command::new(JWED)
        .args(["serve", "--config"])
        .arg(&setup.config)
        .args(["--tcp-listen", ""])
        .output()
        .expect("run");
    assert_ne!(second.status.code(), Some(0));
    assert!(
        stderr(&second).contains("another server is listening"),
        "{}",
        stderr(&second)
    );

    let token = mint(&setup, CLAIMS);
    let output = jwed(&["decrypt", "--unix-socket", &setup.socket.to_string_lossy(), &token]);
    assert!(
        output.status.success(),
        "the first server still answers: {}",
        stderr(&output)
    );

    signal(&first, "TERM");
    let (code, logs) = wait(first).await;
    assert_eq!(code, 0, "{logs}");
}

#[test]
fn serve_never_deletes_a_regular_file_at_the_socket_path() {
    let setup = setup();
    std::fs::write(&setup.socket, "important").expect("write");

    let output = Command::new(JWED)
        .args(["serve", "--config"])
        .arg(&setup.config)
        .args(["--tcp-listen", ""])
        .output()
        .expect("run");
    assert_ne!(output.status.code(), Some(0));
    assert!(stderr(&output).contains("not a socket"), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(&setup.socket).expect("the file is still there"),
        "important"
    );
}

#[tokio::test]
async fn empty_unix_socket_flag_serves_tcp_only_and_audiences_are_trimmed() {
    let setup = setup();
    let child = Command::new(JWED)
        .args(["serve", "--config"])
        .arg(&setup.config)
        .args(["--unix-socket", ""])
        .env("JWED_AUDIENCES", "orders-api, billing-api")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");

    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&setup.tcp).is_err() {
        assert!(Instant::now() < deadline, "jwed serve did not listen on TCP");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!setup.socket.exists(), "no Unix socket is created");

    let token = mint(
        &setup,
        r#"{"iss":"https://auth.cli.example","aud":"billing-api","sub":"user-7"}"#,
    );
    let output = jwed(&["decrypt", "--tcp", &setup.tcp, &token]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));

    signal(&child, "TERM");
    let (code, logs) = wait(child).await;
    assert_eq!(code, 0, "{logs}");
}

#[tokio::test]
async fn sighup_reloads_the_key_file() {
    let setup = setup();
    let config = std::fs::read_to_string(&setup.config).expect("read");
    std::fs::write(
        &setup.config,
        config.replace("[keys]\n", "[keys]\nreload_interval_ms = 3600000\n"),
    )
    .expect("write");
    let child = start(&setup, &[]);

    // A second key in a new file, moved over the old one.
    let path = |name: &str| setup.dir.path().join(name).to_string_lossy().into_owned();
    let made = jwed(&[
        "keygen",
        "--alg",
        "ECDH-ES",
        "--kid",
        "jwed-2",
        "--out",
        &path("jwed-2.json"),
        "--public-out",
        &path("jwed-2.public.json"),
    ]);
    assert!(made.status.success(), "{}", stderr(&made));
    let old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("jwed.json")).expect("read")).expect("json");
    let new: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("jwed-2.json")).expect("read")).expect("json");
    let both = serde_json::json!({ "keys": [new["keys"][0], old["keys"][0]] });
    std::fs::write(path("both.json"), both.to_string()).expect("write");
    std::fs::rename(path("both.json"), path("jwed.json")).expect("replace");

    let output = jwed(&[
        "mint",
        "--signing-keys",
        &path("issuer.json"),
        "--encryption-keys",
        &path("jwed-2.public.json"),
        "--claims",
        CLAIMS,
    ]);
    let token = String::from_utf8(output.stdout).expect("utf-8").trim().to_owned();
    let decrypt = || jwed(&["decrypt", "--unix-socket", &setup.socket.to_string_lossy(), &token]);
    assert_eq!(decrypt().status.code(), Some(2), "the new key is unknown before SIGHUP");

    signal(&child, "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !decrypt().status.success() {
        assert!(Instant::now() < deadline, "SIGHUP did not load the new key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    signal(&child, "TERM");
    let (code, logs) = wait(child).await;
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("SIGHUP"), "{logs}");
}

/// Sends a plain HTTP/1.1 GET and returns the whole response text.
fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};

    let mut stream = std::net::TcpStream::connect(address).expect("connect to the operations port");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: jwed\r\nConnection: close\r\n\r\n").expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[tokio::test]
async fn publishes_keys_and_accepts_revocations_from_allowed_callers_only() {
    use jwed::pb::{
        PublicKeysRequest, RevokeRequest, StatusRequest, admin_client::AdminClient, keys_client::KeysClient,
    };

    let setup = setup();
    let ops_port = TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("address")
        .port();
    let ops = format!("127.0.0.1:{ops_port}");
    let admin_socket = setup.dir.path().join("admin.sock");
    let config = std::fs::read_to_string(&setup.config).expect("read");
    let extra = format!("[server]\nops_listen = \"{ops}\"\nadmin_socket = {admin_socket:?}\n");
    std::fs::write(&setup.config, config.replace("[server]\n", &extra)).expect("write");
    let child = start(&setup, &[]);

    // The JWK Set over HTTP and over gRPC: public members only.
    let response = http_get(&ops, "/.well-known/jwks.json");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("application/jwk-set+json"), "{response}");
    assert!(response.contains("\"kid\":\"jwed-1\""), "{response}");
    assert!(!response.contains("\"d\""), "the published set has a private member");
    let metrics = http_get(&ops, "/metrics");
    assert!(
        metrics.contains("jwed_key_reloads_total{result=\"failure\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("jwed_key_reload_failing 0"), "{metrics}");
    let channel = unix_channel(&setup.socket).await;
    let jwks = KeysClient::new(channel.clone())
        .public_keys(PublicKeysRequest {})
        .await
        .expect("PublicKeys")
        .into_inner()
        .jwks_json;
    assert!(jwks.contains("jwed-1"), "{jwks}");
    assert!(!jwks.contains("\"d\""), "the gRPC key set has a private member: {jwks}");

    let status = KeysClient::new(channel.clone())
        .status(StatusRequest {})
        .await
        .expect("Status")
        .into_inner();
    assert_eq!(status.keys.len(), 1);
    assert_eq!(
        (status.keys[0].key_id.as_str(), status.keys[0].state.as_str()),
        ("jwed-1", "current")
    );
    assert!(status.loaded_at.is_some());

    // Admin is not served on the main socket.
    let refused = AdminClient::new(channel.clone())
        .revoke(RevokeRequest::default())
        .await
        .expect_err("no Admin on the main socket");
    assert_eq!(refused.code(), tonic::Code::Unimplemented);

    // On the admin socket this process's uid is allowed by default.
    let token = mint(&setup, CLAIMS);
    let jti = {
        let output = jwed(&["decrypt", "--unix-socket", &setup.socket.to_string_lossy(), &token]);
        let claims: serde_json::Value = serde_json::from_slice(&output.stdout).expect("claims");
        claims["jti"].as_str().expect("jti").to_owned()
    };
    let mut admin = AdminClient::new(unix_channel(&admin_socket).await);
    let revoked = admin
        .revoke(RevokeRequest {
            token_ids: vec![jti],
            ..RevokeRequest::default()
        })
        .await
        .expect("Revoke")
        .into_inner();
    assert_eq!(revoked.revocations_in_memory, 1);
    let revoked_reason = |token: &str| {
        let output = jwed(&["decrypt", "--unix-socket", &setup.socket.to_string_lossy(), token]);
        String::from_utf8_lossy(&output.stdout).contains("TOKEN_REVOKED")
    };
    assert!(revoked_reason(&token), "revoked by jti");

    // By subject: tokens of user-7 issued before a time.
    let second = mint(&setup, CLAIMS);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let subject = jwed::pb::SubjectRevocation {
        subject: "user-7".into(),
        issued_before: Some(prost_types::Timestamp {
            seconds: now + 5,
            nanos: 0,
        }),
    };
    admin
        .revoke(RevokeRequest {
            subjects: vec![subject],
            ..RevokeRequest::default()
        })
        .await
        .expect("Revoke subject");
    assert!(revoked_reason(&second), "revoked by subject");

    // By key id: every token of jwed-1.
    let third = mint(&setup, &CLAIMS.replace("user-7", "user-8"));
    assert!(!revoked_reason(&third), "another subject is not revoked");
    admin
        .revoke(RevokeRequest {
            key_ids: vec!["jwed-1".into()],
            ..RevokeRequest::default()
        })
        .await
        .expect("Revoke key");
    assert!(revoked_reason(&third), "revoked by key id");

    signal(&child, "TERM");
    let (code, logs) = wait(child).await;
    assert_eq!(code, 0, "{logs}");
    assert!(!admin_socket.exists(), "the admin socket is removed at shutdown");
}

#[tokio::test]
async fn admin_call_is_refused_to_a_caller_not_on_the_list() {
    use jwed::pb::{RevokeRequest, admin_client::AdminClient};

    let setup = setup();
    let admin_socket = setup.dir.path().join("admin.sock");
    let config = std::fs::read_to_string(&setup.config).expect("read");
    let extra = format!("[server]\nadmin_socket = {admin_socket:?}\nadmin_uids = [4242424]\n");
    std::fs::write(&setup.config, config.replace("[server]\n", &extra)).expect("write");
    let child = start(&setup, &[]);

    let mut admin = AdminClient::new(unix_channel(&admin_socket).await);
    let request = RevokeRequest {
        token_ids: vec!["any".into()],
        ..RevokeRequest::default()
    };
    let status = admin.revoke(request).await.expect_err("this uid is not allowed");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
    assert_eq!(info.reason, "CALLER_NOT_ALLOWED");

    signal(&child, "TERM");
    let (code, logs) = wait(child).await;
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("CALLER_NOT_ALLOWED"), "the refusal is audited: {logs}");
}

#[tokio::test]
async fn rotation_procedure_from_the_readme() {
    let setup = setup();
    let path = |name: &str| setup.dir.path().join(name).to_string_lossy().into_owned();
    let config = std::fs::read_to_string(&setup.config).expect("read");
    std::fs::write(
        &setup.config,
        config.replace("[keys]\n", "[keys]\nreload_interval_ms = 100\n"),
    )
    .expect("write");
    let child = start(&setup, &[]);
    let old_token = mint(&setup, CLAIMS);
    let decrypt = |token: &str| jwed(&["decrypt", "--unix-socket", &setup.socket.to_string_lossy(), token]);

    // 1. Add a new current key; the old one becomes accepted.
    let added = jwed(&[
        "keygen",
        "--alg",
        "ECDH-ES",
        "--kid",
        "jwed-2",
        "--add-to",
        &path("jwed.json"),
        "--public-out",
        &path("jwed-2.public.json"),
    ]);
    assert!(added.status.success(), "{}", stderr(&added));
    let public: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("jwed-2.public.json")).expect("read")).expect("json");
    let kids: Vec<&str> = public["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids, vec!["jwed-2", "jwed-1"], "the new key is published first");

    let output = jwed(&[
        "mint",
        "--signing-keys",
        &path("issuer.json"),
        "--encryption-keys",
        &path("jwed-2.public.json"),
        "--claims",
        CLAIMS,
    ]);
    let new_token = String::from_utf8(output.stdout).expect("utf-8").trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !decrypt(&new_token).status.success() {
        assert!(Instant::now() < deadline, "the new key was not loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(decrypt(&old_token).status.success(), "the accepted key still decrypts");

    // 2. Retire the old key: its tokens now ask the caller to refresh.
    let retired = jwed(&[
        "key-state",
        "--keys",
        &path("jwed.json"),
        "--kid",
        "jwed-1",
        "--state",
        "retired",
    ]);
    assert!(retired.status.success(), "{}", stderr(&retired));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = decrypt(&old_token);
        if String::from_utf8_lossy(&output.stdout).contains("KEY_RETIRED") {
            assert!(String::from_utf8_lossy(&output.stdout).contains("refresh required"));
            break;
        }
        assert!(Instant::now() < deadline, "the old key was not retired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(decrypt(&new_token).status.success());

    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path("jwed.json")).expect("metadata").permissions());
    assert_eq!(mode & 0o777, 0o600, "the rewritten key file stays private");
    signal(&child, "TERM");
    let (code, logs) = wait(child).await;
    assert_eq!(code, 0, "{logs}");
}

#[tokio::test]
async fn caller_policy_limits_callers_audiences_and_keys() {
    let setup = setup();
    let audit_log = setup.dir.path().join("audit.log");
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("metadata"));
    let config = std::fs::read_to_string(&setup.config).expect("read");
    let rules = format!(
        "\n[audit]\nfile = {audit_log:?}\n\n[[callers]]\nuid = 4242424\n\n[[callers]]\nuid = {uid}\naudiences = [\"orders-api\"]\nkey_ids = [\"jwed-1\"]\n"
    );
    std::fs::write(&setup.config, format!("{config}{rules}")).expect("write");
    let child = start(&setup, &[]);
    let token = mint(&setup, CLAIMS);
    let socket = setup.socket.to_string_lossy().into_owned();
    let decrypt = |extra: &[&str]| {
        let mut args = vec!["decrypt", "--unix-socket", &socket];
        args.extend_from_slice(extra);
        args.push(&token);
        String::from_utf8_lossy(&jwed(&args).stdout).into_owned()
    };

    assert!(
        decrypt(&["--audience", "orders-api"]).contains("\"sub\": \"user-7\""),
        "the allowed audience works"
    );
    assert!(
        decrypt(&[]).contains("CALLER_NOT_ALLOWED"),
        "this caller must name one of its audiences"
    );
    assert!(
        decrypt(&["--audience", "reports-api"]).contains("CALLER_NOT_ALLOWED"),
        "an audience outside the rule"
    );

    signal(&child, "TERM");
    let (code, logs) = wait(child).await;
    assert_eq!(code, 0, "{logs}");
    let audited = std::fs::read_to_string(&audit_log).expect("audit log");
    assert_eq!(
        audited
            .lines()
            .filter(|line| line.contains("CALLER_NOT_ALLOWED"))
            .count(),
        2,
        "refusals are audited: {audited}"
    );

    // A caller that no rule names is refused outright.
    std::fs::write(&setup.config, format!("{config}\n[[callers]]\nuid = 4242424\n")).expect("write");
    let child = start(&setup, &[]);
    assert!(decrypt(&["--audience", "orders-api"]).contains("CALLER_NOT_ALLOWED"));
    signal(&child, "TERM");
    let (code, logs) = wait(child).await;
    assert_eq!(code, 0, "{logs}");
}
