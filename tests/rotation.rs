//! Key rotation, retirement and revocation while the server runs: key files
//! are replaced the way Kubernetes updates a mounted Secret, by swapping a
//! `..data` symlink, and clients keep calling throughout.

mod common;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{good_claims, test_policy};
use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    keygen::{GeneratedKey, KeySpec},
    mint::{self, Recipient, Signer},
    pb::DecryptRequest,
    revocation::RevocationList,
    server::BoundServer,
    service::Limits,
    store::{self, KeyStore, Reload, Sources},
};
use serde_json::{Value, json};
use tonic_types::StatusExt;

const RELOAD_INTERVAL: Duration = Duration::from_millis(200);

/// A directory laid out like a mounted Kubernetes Secret: `jwks.json` and
/// `revocations.json` link through `..data` to a timestamped directory.
struct MountedSecret {
    root: tempfile::TempDir,
    generation: usize,
}

impl MountedSecret {
    fn new() -> MountedSecret {
        MountedSecret {
            root: tempfile::tempdir().expect("temporary directory"),
            generation: 0,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Publishes new file contents with one atomic rename of `..data`.
    fn publish(&mut self, files: &[(&str, String)]) {
        self.generation += 1;
        let dir_name = format!("..2026_12_04_{}", self.generation);
        let dir = self.root.path().join(&dir_name);
        std::fs::create_dir(&dir).expect("create data directory");
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write");
        }

        let temporary = self.root.path().join("..data_tmp");
        std::os::unix::fs::symlink(&dir_name, &temporary).expect("symlink");
        std::fs::rename(&temporary, self.root.path().join("..data")).expect("swap ..data");
        for (name, _) in files {
            let link = self.root.path().join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(Path::new("..data").join(name), &link).expect("symlink");
            }
        }
    }
}

/// Decryption and signing keys for the tests, with JWK JSON at hand.
struct Keys {
    old: GeneratedKey,
    new: GeneratedKey,
    issuer: GeneratedKey,
}

fn keys() -> Keys {
    let decryption =
        |kid: &str| GeneratedKey::generate(KeySpec::Decryption(KeyAlg::EcdhEs), kid, "P-256", 2048, 32).expect("key");
    Keys {
        old: decryption("jwed-old"),
        new: decryption("jwed-new"),
        issuer: GeneratedKey::generate(KeySpec::Signing(SigAlg::ES256), "issuer", "P-256", 2048, 32).expect("key"),
    }
}

fn with_state(key: &GeneratedKey, state: &str) -> Value {
    let mut jwk: Value = serde_json::from_str(key.expose_private_json()).expect("json");
    jwk["state"] = json!(state);
    jwk
}

fn key_set(entries: &[(&GeneratedKey, &str)]) -> String {
    let keys: Vec<Value> = entries.iter().map(|(key, state)| with_state(key, state)).collect();
    json!({ "keys": keys }).to_string()
}

fn token_for(keys: &Keys, key: &GeneratedKey, claims: &serde_json::Map<String, Value>) -> String {
    let signer = Signer::from_jwk(josekit::jwk::Jwk::from_bytes(keys.issuer.expose_private_json()).expect("jwk"))
        .expect("signer");
    let recipient =
        Recipient::from_jwk(josekit::jwk::Jwk::from_bytes(key.expose_private_json()).expect("jwk")).expect("recipient");
    mint::mint(claims, Some(&signer), &recipient, ContentEnc::A256Gcm).expect("mint")
}

/// Starts a server backed by a store over the mounted files. With `watch`,
/// the store reloads on its timer; without, only when the test calls it, so
/// that the test's own reload calls do not race with the timer.
async fn start(
    secret: &MountedSecret,
    keys: &Keys,
    watch: bool,
) -> (Arc<KeyStore>, PathBuf, tokio::sync::watch::Sender<bool>) {
    let issuer_file = secret.root.path().join("issuer.json");
    std::fs::write(
        &issuer_file,
        json!({ "keys": [keys.issuer.public().cloned().expect("public")] }).to_string(),
    )
    .expect("write");
    let sources = Sources {
        private_keys: secret.path("jwks.json"),
        issuer_keys: Some(issuer_file),
        revocations: Some(secret.path("revocations.json")),
        key_algorithms: HashMap::new(),
    };
    let store = Arc::new(KeyStore::load(sources, test_policy()).expect("initial load"));

    let socket = secret.root.path().join("jwed.sock");
    let (auditing, _) = common::auditing(secret.root.path(), jwed::service::AuditFailure::FailClosed);
    let bound = BoundServer::bind(
        Some(&socket),
        None,
        store.clone(),
        Limits::default(),
        auditing,
        Duration::from_secs(2),
    )
    .await
    .expect("bind");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    if watch {
        tokio::spawn(store::watch(store.clone(), RELOAD_INTERVAL, stopped));
    }
    let mut server_stop = stop.subscribe();
    tokio::spawn(bound.serve(async move {
        let _ = server_stop.wait_for(|stop| *stop).await;
    }));
    (store, socket, stop)
}

fn reason_of(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn rotation_under_load_fails_no_valid_call() {
    let keys = keys();
    let mut secret = MountedSecret::new();
    secret.publish(&[
        ("jwks.json", key_set(&[(&keys.old, "current")])),
        ("revocations.json", "{}".into()),
    ]);
    let (_store, socket, stop) = start(&secret, &keys, true).await;

    let old_token = token_for(&keys, &keys.old, &good_claims());
    let new_token = token_for(&keys, &keys.new, &good_claims());
    let running = Arc::new(AtomicBool::new(true));
    let use_new = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));

    // Four clients call continuously; each sends the old key's token until
    // the new key is published, and the new key's token after that.
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut client = jwed::client::connect_unix(&socket).await.expect("connect");
        let (running, use_new, calls) = (running.clone(), use_new.clone(), calls.clone());
        let (old_token, new_token) = (old_token.clone(), new_token.clone());
        clients.spawn(async move {
            while running.load(Ordering::Relaxed) {
                let token = if use_new.load(Ordering::Relaxed) {
                    new_token.clone()
                } else {
                    old_token.clone()
                };
                let request = DecryptRequest {
                    token,
                    ..DecryptRequest::default()
                };
                if let Err(status) = client.decrypt(request).await {
                    return Err(format!(
                        "a valid call failed: {} {}",
                        reason_of(&status),
                        status.message()
                    ));
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    secret.publish(&[
        ("jwks.json", key_set(&[(&keys.new, "current"), (&keys.old, "accepted")])),
        ("revocations.json", "{}".into()),
    ]);
    tokio::time::sleep(RELOAD_INTERVAL * 3).await;
    use_new.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Retire the old key and measure how long until its tokens say so.
    let retired_at = Instant::now();
    secret.publish(&[
        ("jwks.json", key_set(&[(&keys.new, "current"), (&keys.old, "retired")])),
        ("revocations.json", "{}".into()),
    ]);
    let mut probe = jwed::client::connect_unix(&socket).await.expect("connect");
    let delay = loop {
        let request = DecryptRequest {
            token: old_token.clone(),
            ..DecryptRequest::default()
        };
        match probe.decrypt(request).await {
            Err(status) if reason_of(&status) == "KEY_RETIRED" => break retired_at.elapsed(),
            _ => {}
        }
        assert!(
            retired_at.elapsed() < Duration::from_secs(5),
            "the retired key was never reported"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    running.store(false, Ordering::Relaxed);
    while let Some(result) = clients.join_next().await {
        result.expect("join").expect("no valid call may fail during rotation");
    }
    let audited = std::fs::read_to_string(secret.path("audit.log")).expect("audit log");
    let retired = audited
        .lines()
        .find(|line| line.contains("\"reason\":\"KEY_RETIRED\""))
        .expect("a KEY_RETIRED record");
    assert!(
        retired.contains("\"kid\":\"jwed-old\""),
        "the record names the retired key: {retired}"
    );
    eprintln!(
        "rotation: {} valid calls succeeded; KEY_RETIRED seen {} ms after the swap (reload interval {} ms)",
        calls.load(Ordering::Relaxed),
        delay.as_millis(),
        RELOAD_INTERVAL.as_millis()
    );
    assert!(
        calls.load(Ordering::Relaxed) > 100,
        "the clients made too few calls to show anything"
    );
    // One reload interval plus a second of slack for a busy CI machine.
    assert!(
        delay <= RELOAD_INTERVAL + Duration::from_secs(1),
        "retirement took {delay:?}"
    );
    let _ = stop.send(true);
}

#[tokio::test]
async fn broken_key_file_keeps_the_last_good_keys() {
    let keys = keys();
    let mut secret = MountedSecret::new();
    let good = key_set(&[(&keys.old, "current")]);
    secret.publish(&[("jwks.json", good.clone()), ("revocations.json", "{}".into())]);
    let (store, socket, stop) = start(&secret, &keys, false).await;
    let token = token_for(&keys, &keys.old, &good_claims());
    let mut client = jwed::client::connect_unix(&socket).await.expect("connect");

    let broken = [
        ("half-written", good[..good.len() / 2].to_owned()),
        ("empty", String::new()),
        ("wrong key material", good.replace("\"d\":\"", "\"d\":\"AAAA")),
        ("unknown state", key_set(&[(&keys.old, "paused")])),
    ];
    for (case, text) in broken {
        secret.publish(&[("jwks.json", text), ("revocations.json", "{}".into())]);
        assert!(matches!(store.check_for_changes(), Reload::Failed(_)), "{case}");
        let request = DecryptRequest {
            token: token.clone(),
            ..DecryptRequest::default()
        };
        client
            .decrypt(request)
            .await
            .unwrap_or_else(|status| panic!("{case}: the old key stopped working: {status:?}"));
        let status = store.status().expect("status");
        assert!(status.last_error.is_some(), "{case}: the failure is reported");
    }

    assert_eq!(
        store.status().expect("status").failures,
        4,
        "each broken file is counted"
    );

    // A missing file is a failure too, and a good file recovers.
    std::fs::remove_file(secret.path("jwks.json")).expect("remove link");
    assert!(matches!(store.check_for_changes(), Reload::Failed(_)));
    secret.publish(&[
        ("jwks.json", key_set(&[(&keys.old, "current"), (&keys.new, "accepted")])),
        ("revocations.json", "{}".into()),
    ]);
    assert_eq!(store.check_for_changes(), Reload::Reloaded);
    assert!(store.status().expect("status").last_error.is_none());
    let _ = stop.send(true);
}

#[tokio::test]
async fn revocation_by_token_subject_and_key() {
    let keys = keys();
    let mut secret = MountedSecret::new();
    let key_file = key_set(&[(&keys.old, "current"), (&keys.new, "current")]);
    secret.publish(&[("jwks.json", key_file.clone()), ("revocations.json", "{}".into())]);
    let (store, socket, stop) = start(&secret, &keys, false).await;
    let mut client = jwed::client::connect_unix(&socket).await.expect("connect");

    let mut claims = good_claims();
    claims.insert("jti".into(), json!("jti-revoked"));
    let by_jti = token_for(&keys, &keys.new, &claims);
    let mut claims = good_claims();
    claims.insert("sub".into(), json!("user-revoked"));
    let by_subject = token_for(&keys, &keys.new, &claims);
    let by_key = token_for(&keys, &keys.old, &good_claims());
    let untouched = token_for(&keys, &keys.new, &good_claims());

    let iat = good_claims()["iat"].as_i64().expect("iat");
    let revocations =
        json!({ "tokens": ["jti-revoked"], "subjects": { "user-revoked": iat + 1 }, "keys": ["jwed-old"] });
    secret.publish(&[
        ("jwks.json", key_file.clone()),
        ("revocations.json", revocations.to_string()),
    ]);
    assert_eq!(store.check_for_changes(), Reload::Reloaded);

    for (case, token) in [("jti", &by_jti), ("subject", &by_subject), ("key id", &by_key)] {
        let request = DecryptRequest {
            token: token.clone(),
            ..DecryptRequest::default()
        };
        let status = client.decrypt(request).await.expect_err(case);
        assert_eq!(reason_of(&status), "TOKEN_REVOKED", "{case}");
        let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
        assert_eq!(
            info.metadata.get("refresh_required").map(String::as_str),
            Some("true"),
            "{case}"
        );
    }
    let request = DecryptRequest {
        token: untouched.clone(),
        ..DecryptRequest::default()
    };
    client
        .decrypt(request)
        .await
        .expect("a token that is not listed still decrypts");
    let audited = std::fs::read_to_string(secret.path("audit.log")).expect("audit log");
    let revoked: Vec<&str> = audited
        .lines()
        .filter(|line| line.contains("\"reason\":\"TOKEN_REVOKED\""))
        .collect();
    assert_eq!(revoked.len(), 3, "each revoked call is audited");
    assert!(
        revoked.iter().any(|line| line.contains("revoked by subject")),
        "the record names the entry kind"
    );

    // Revocations made in memory, as the admin call does, apply at once.
    secret.publish(&[("jwks.json", key_file), ("revocations.json", "{}".into())]);
    assert_eq!(store.check_for_changes(), Reload::Reloaded);
    store.revoke(&RevocationList::parse(br#"{"tokens":["token-0001"]}"#).expect("list"));
    let request = DecryptRequest {
        token: untouched,
        ..DecryptRequest::default()
    };
    let status = client.decrypt(request).await.expect_err("revoked in memory");
    assert_eq!(reason_of(&status), "TOKEN_REVOKED");
    let _ = stop.send(true);
}

#[test]
fn published_key_set_has_no_private_member_and_current_first() {
    let keys = keys();
    let mut secret = MountedSecret::new();
    secret.publish(&[
        ("jwks.json", key_set(&[(&keys.old, "accepted"), (&keys.new, "current")])),
        ("revocations.json", "{}".into()),
    ]);
    let sources = Sources {
        private_keys: secret.path("jwks.json"),
        issuer_keys: None,
        revocations: None,
        key_algorithms: HashMap::new(),
    };
    let policy = jwed::decrypt::Policy {
        unsigned: jwed::decrypt::UnsignedTokens::AllKeys,
        ..test_policy()
    };
    let store = KeyStore::load(sources, policy).expect("load");

    let published = store.public_jwk_set();
    let kids: Vec<&str> = published["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid"))
        .collect();
    assert_eq!(kids, vec!["jwed-new", "jwed-old"]);
    let text = published.to_string();
    for member in ["\"d\"", "\"p\"", "\"q\"", "\"k\"", "\"state\""] {
        assert!(!text.contains(member), "published set contains {member}");
    }
}
