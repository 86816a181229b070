//! Test support: keys written to real files, a real server on a temporary
//! Unix socket, and a development issuer. Test only.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jwed::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    audit::{AuditKey, AuditLog, Destination},
    claims::ClaimsPolicy,
    client,
    decrypt::{Decrypter, Policy},
    issuers::IssuerKeys,
    keygen::{self, GeneratedKey, KeySpec},
    keys::KeySet,
    mint::{self, Recipient, Signer},
    pb::decryptor_client::DecryptorClient,
    server::{BoundServer, ServeError},
    service::{AuditFailure, Auditing, Decrypt, Limits},
};
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

/// The jwed executable that Cargo built for these tests.
pub const JWED: &str = env!("CARGO_BIN_EXE_jwed");

/// Runs the jwed executable with `args`, without the caller's `JWED_LOG`.
pub fn jwed(args: &[&str]) -> std::process::Output {
    std::process::Command::new(JWED)
        .args(args)
        .env_remove("JWED_LOG")
        .output()
        .expect("run jwed")
}

/// Returns `bytes` as text, with invalid UTF-8 replaced.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub const ISSUER: &str = "https://auth.test.example";
pub const AUDIENCE: &str = "orders-api";

/// Decryption keys and issuer keys in real JWK Set files.
pub struct KeyFiles {
    pub dir: TempDir,
    pub private_keys: PathBuf,
    pub public_keys: PathBuf,
    pub issuer_private: PathBuf,
    pub issuer_public: PathBuf,
}

/// Writes one JWK Set file per role: `decryption` keys for jwed (private
/// and public halves) and `signing` keys for the issuer.
pub fn write_keys(decryption: &[(KeyAlg, &str, &str)], signing: &[(SigAlg, &str)]) -> KeyFiles {
    let dir = tempfile::tempdir().expect("temporary directory");
    let decryption: Vec<GeneratedKey> = decryption
        .iter()
        .map(|(alg, kid, crv)| GeneratedKey::generate(KeySpec::Decryption(*alg), kid, crv, 2048, 32).expect("generate"))
        .collect();
    let signing: Vec<GeneratedKey> = signing
        .iter()
        .map(|(alg, kid)| GeneratedKey::generate(KeySpec::Signing(*alg), kid, "P-256", 2048, 32).expect("generate"))
        .collect();

    let files = KeyFiles {
        private_keys: dir.path().join("jwed-keys.json"),
        public_keys: dir.path().join("jwed-keys.public.json"),
        issuer_private: dir.path().join("issuer-keys.json"),
        issuer_public: dir.path().join("issuer-keys.public.json"),
        dir,
    };
    write_set(&files.private_keys, &files.public_keys, &decryption);
    write_set(&files.issuer_private, &files.issuer_public, &signing);
    files
}

fn write_set(private: &Path, public: &Path, keys: &[GeneratedKey]) {
    let texts: Vec<&str> = keys.iter().map(GeneratedKey::expose_private_json).collect();
    keygen::write_private_file(private, &keygen::jwk_set_text(&texts)).expect("write private");
    // Symmetric keys have no public half; issuers use the private file.
    let public_keys: Vec<Value> = keys
        .iter()
        .map(|key| {
            key.public()
                .cloned()
                .map(Value::Object)
                .unwrap_or_else(|| serde_json::from_str(key.expose_private_json()).expect("json"))
        })
        .collect();
    keygen::write_public_file(public, public_keys).expect("write public");
}

/// The policy the tests use unless they say otherwise.
pub fn test_policy() -> Policy {
    Policy {
        claims: ClaimsPolicy {
            issuer: Some(ISSUER.into()),
            audiences: vec![AUDIENCE.into(), "reports-api".into()],
            leeway_seconds: 30,
            max_lifetime_seconds: Some(3600),
        },
        ..Policy::default()
    }
}

/// Returns the key files as a store's sources.
pub fn sources(files: &KeyFiles) -> jwed::store::Sources {
    jwed::store::Sources {
        private_keys: files.private_keys.clone(),
        issuer_keys: Some(files.issuer_public.clone()),
        revocations: None,
        key_algorithms: HashMap::new(),
    }
}

/// Reads and parses the audit records of `path`.
pub fn audit_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read audit log")
        .lines()
        .map(|line| serde_json::from_str(line).expect("audit record is JSON"))
        .collect()
}

/// Builds a decrypter from the key files.
pub fn decrypter(files: &KeyFiles, policy: Policy) -> Decrypter {
    let keys = KeySet::load(&files.private_keys, &HashMap::new()).expect("load keys");
    keys.self_check().expect("self-check");
    let issuers = IssuerKeys::load(&files.issuer_public).expect("load issuer keys");
    Decrypter::new(keys, Some(issuers), policy)
}

/// Audits into `dir/audit.log` under a new key in `dir/audit.key`.
pub fn auditing(dir: &Path, on_failure: AuditFailure) -> (Auditing, PathBuf) {
    let key_path = dir.join("audit.key");
    std::fs::write(&key_path, AuditKey::generate_text().expect("audit key").as_bytes()).expect("write audit key");
    let path = dir.join("audit.log");
    let destination = Destination::File {
        path: path.clone(),
        max_bytes: 64 * 1024 * 1024,
        keep: 2,
    };
    let log = AuditLog::open(AuditKey::read(&key_path).expect("audit key"), destination).expect("audit log");
    (Auditing::new(log, on_failure), path)
}

/// The audit key of [`auditing`].
pub fn audit_key(dir: &Path) -> AuditKey {
    AuditKey::read(&dir.join("audit.key")).expect("audit key")
}

/// A real server on a temporary Unix socket.
pub struct TestServer {
    pub socket: PathBuf,
    pub audit_log: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
    _dir: TempDir,
}

impl TestServer {
    pub async fn start(decrypter: Decrypter) -> TestServer {
        TestServer::start_with(Arc::new(decrypter), Limits::default()).await
    }

    /// Starts a server for any [`Decrypt`] within `limits`.
    pub async fn start_with<D: Decrypt>(decrypter: Arc<D>, limits: Limits) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("jwed.sock");
        let (auditing, audit_log) = auditing(dir.path(), AuditFailure::FailClosed);
        let bound = BoundServer::bind(Some(&socket), None, decrypter, limits, auditing, Duration::from_secs(5))
            .await
            .expect("bind");
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(bound.serve(async move {
            let _ = stopped.await;
        }));
        TestServer {
            socket,
            audit_log,
            stop: Some(stop),
            handle: Some(handle),
            _dir: dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }

    pub async fn client(&self) -> DecryptorClient<Channel> {
        client::connect_unix(&self.socket).await.expect("connect")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("join").expect("serve");
        }
    }
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// Claims that pass [`test_policy`].
pub fn good_claims() -> Map<String, Value> {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "5b1f0a52-3c1e-4b8e-a0f4-6f1f2e7f9d11",
        "scopes": ["orders:read", "orders:list"],
        "iat": now,
        "exp": now + 300,
        "jti": "token-0001",
    })
    .as_object()
    .cloned()
    .expect("object")
}

/// A development issuer bound to the key files.
pub struct Issuer {
    pub signer: Signer,
    pub recipient: Recipient,
}

impl Issuer {
    pub fn new(files: &KeyFiles, signing_kid: &str, encryption_kid: &str) -> Issuer {
        let signer = Signer::from_file(&files.issuer_private, Some(signing_kid)).expect("signer");
        let recipient = Recipient::from_file(&files.public_keys, Some(encryption_kid)).expect("recipient");
        Issuer { signer, recipient }
    }

    pub fn mint(&self, claims: &Map<String, Value>, enc: ContentEnc) -> String {
        mint::mint(claims, Some(&self.signer), &self.recipient, enc).expect("mint")
    }

    pub fn mint_unsigned(&self, claims: &Map<String, Value>, enc: ContentEnc) -> String {
        mint::mint(claims, None, &self.recipient, enc).expect("mint")
    }
}
