//! `jwed demo`: the whole loop in one process on ephemeral keys. It starts
//! the real server on a temporary Unix socket, mints tokens as an issuer
//! would, decrypts them over gRPC and shows how rejections look.

use std::{
    io::Write,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};
use tokio::sync::oneshot;

use super::decrypt::describe_rejection;
use crate::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    audit::{AuditKey, AuditLog, Destination},
    claims::ClaimsPolicy,
    client,
    decrypt::{Decrypter, Policy},
    issuers::IssuerKeys,
    jwk::RawJwkSet,
    keygen::{self, GeneratedKey, KeySpec},
    keys::KeySet,
    mint::{self, Recipient, Signer},
    pb,
    server::BoundServer,
    service::{AuditFailure, Auditing, Limits},
};

const ISSUER: &str = "https://auth.demo.example";
const AUDIENCE: &str = "orders-api";

/// One demo step: a token and what the caller asks for.
struct Step {
    title: &'static str,
    token: String,
    scopes: Vec<String>,
}

pub(super) async fn run() -> u8 {
    match demo().await {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("jwed demo: {message}");
            1
        }
    }
}

async fn demo() -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    let dir = tempfile::tempdir().map_err(|err| format!("cannot create a temporary directory: {err}"))?;
    let socket = dir.path().join("jwed.sock");

    let issuer_key = generate(KeySpec::Signing(SigAlg::ES256), "demo-issuer-es256", "P-256")?;
    let ecdh_key = generate(KeySpec::Decryption(KeyAlg::EcdhEs), "demo-ecdh-p256", "P-256")?;
    let rsa_key = generate(KeySpec::Decryption(KeyAlg::RsaOaep256), "demo-rsa-oaep-256", "P-256")?;
    let decrypter = build_decrypter(&issuer_key, &[&ecdh_key, &rsa_key])?;
    let _ = writeln!(out, "== jwed demo: ephemeral keys, server on {}\n", socket.display());

    let audit_path = dir.path().join("audit.log");
    let audit_key_path = dir.path().join("audit.key");
    std::fs::write(&audit_key_path, AuditKey::generate_text()?.as_bytes()).map_err(|err| err.to_string())?;
    let destination = Destination::File {
        path: audit_path.clone(),
        max_bytes: 1 << 20,
        keep: 1,
    };
    let log = AuditLog::open(AuditKey::read(&audit_key_path)?, destination)?;
    let auditing = Auditing::new(log, AuditFailure::FailClosed);
    let bound = BoundServer::bind(
        Some(&socket),
        None,
        Arc::new(decrypter),
        Limits::default(),
        auditing,
        Duration::from_secs(5),
    )
    .await
    .map_err(|err| err.to_string())?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(bound.serve(async move {
        let _ = stopped.await;
    }));
    let mut client = client::connect_unix(&socket)
        .await
        .map_err(|err| format!("cannot connect: {err}"))?;

    for step in steps(&issuer_key, &ecdh_key, &rsa_key)? {
        let _ = writeln!(out, "-- {}", step.title);
        let _ = writeln!(out, "   token: {}...", &step.token[..step.token.len().min(60)]);
        let request = pb::DecryptRequest {
            token: step.token,
            required_scopes: step.scopes,
            audience: String::new(),
        };
        match client.decrypt(request).await {
            Ok(response) => {
                let response = response.into_inner();
                let _ = writeln!(
                    out,
                    "   accepted: subject={} scopes={:?} key_id={} signing_key_id={}",
                    response.subject, response.scopes, response.key_id, response.signing_key_id
                );
                let _ = writeln!(out, "   claims: {}\n", response.claims_json);
            }
            Err(status) => {
                let _ = writeln!(out, "   {}\n", describe_rejection(&status));
            }
        }
    }

    let _ = stop.send(());
    let _ = server.await;
    let key = AuditKey::read(&audit_key_path)?;
    match crate::audit_verify::verify(&key, &[audit_path]) {
        Ok(Ok(verified)) => {
            let _ = writeln!(
                out,
                "== audit: {} records, one per call, chain verified",
                verified.records
            );
        }
        Ok(Err(found)) => return Err(format!("the demo's audit log does not verify: {found}")),
        Err(message) => return Err(message),
    }
    let _ = writeln!(
        out,
        "== done: every token above went through the real gRPC server on a Unix socket"
    );
    Ok(())
}

fn generate(spec: KeySpec, kid: &str, curve: &str) -> Result<GeneratedKey, String> {
    GeneratedKey::generate(spec, kid, curve, 2048, 32).map_err(|err| err.to_string())
}

fn build_decrypter(issuer: &GeneratedKey, keys: &[&GeneratedKey]) -> Result<Decrypter, String> {
    let texts: Vec<&str> = keys.iter().map(|key| key.expose_private_json()).collect();
    let raw = RawJwkSet::parse(keygen::jwk_set_text(&texts).as_bytes(), "demo keys").map_err(|err| err.to_string())?;
    let key_set = KeySet::from_raw(&raw, &Default::default(), "demo keys").map_err(|err| err.to_string())?;
    key_set
        .self_check()
        .map_err(|(kid, reason)| format!("key {kid}: {reason}"))?;

    let issuer_public = json!({ "keys": [issuer.public().cloned().unwrap_or_default()] }).to_string();
    let raw = RawJwkSet::parse(issuer_public.as_bytes(), "demo issuer").map_err(|err| err.to_string())?;
    let issuers = IssuerKeys::from_raw(&raw, "demo issuer").map_err(|err| err.to_string())?;

    let policy = Policy {
        claims: ClaimsPolicy {
            issuer: Some(ISSUER.into()),
            audiences: vec![AUDIENCE.into()],
            leeway_seconds: 30,
            max_lifetime_seconds: Some(3600),
        },
        ..Policy::default()
    };
    Ok(Decrypter::new(key_set, Some(issuers), policy))
}

fn steps(issuer: &GeneratedKey, ecdh: &GeneratedKey, rsa: &GeneratedKey) -> Result<Vec<Step>, String> {
    let signer = Signer::from_jwk(to_jwk(issuer.expose_private_json())?).map_err(|err| err.to_string())?;
    let to_ecdh = recipient(ecdh)?;
    let to_rsa = recipient(rsa)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let mint = |claims: Map<String, Value>, to: &Recipient, enc| {
        mint::mint(&claims, Some(&signer), to, enc).map_err(|err| err.to_string())
    };

    let good = claims(now, AUDIENCE, now + 300);
    let tampered = {
        let token = mint(good.clone(), &to_ecdh, ContentEnc::A256Gcm)?;
        flip_ciphertext(&token)
    };
    Ok(vec![
        Step {
            title: "valid token: ECDH-ES (P-256) + A256GCM, signed ES256",
            token: mint(good.clone(), &to_ecdh, ContentEnc::A256Gcm)?,
            scopes: vec![],
        },
        Step {
            title: "valid token: RSA-OAEP-256 + A128GCM, caller requires orders:read",
            token: mint(good.clone(), &to_rsa, ContentEnc::A128Gcm)?,
            scopes: vec!["orders:read".into()],
        },
        Step {
            title: "expired token (exp five minutes ago)",
            token: mint(claims(now - 600, AUDIENCE, now - 300), &to_ecdh, ContentEnc::A256Gcm)?,
            scopes: vec![],
        },
        Step {
            title: "tampered token (one ciphertext byte changed)",
            token: tampered,
            scopes: vec![],
        },
        Step {
            title: "token for another audience (billing-api)",
            token: mint(claims(now, "billing-api", now + 300), &to_ecdh, ContentEnc::A256Gcm)?,
            scopes: vec![],
        },
        Step {
            title: "valid token, caller requires orders:write",
            token: mint(good, &to_rsa, ContentEnc::A128Gcm)?,
            scopes: vec!["orders:write".into()],
        },
    ])
}

fn claims(iat: i64, audience: &str, exp: i64) -> Map<String, Value> {
    let value = json!({
        "iss": ISSUER,
        "aud": audience,
        "id": "3f6c1b9e-8a34-4d0f-9a61-2b7e5c4d1a90",
        "scopes": ["orders:read", "orders:list"],
        "iat": iat,
        "exp": exp,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    value.as_object().cloned().unwrap_or_default()
}

fn to_jwk(text: &str) -> Result<josekit::jwk::Jwk, String> {
    josekit::jwk::Jwk::from_bytes(text.as_bytes()).map_err(|_| "generated key is not a JWK".to_string())
}

fn recipient(key: &GeneratedKey) -> Result<Recipient, String> {
    Recipient::from_jwk(to_jwk(key.expose_private_json())?).map_err(|err| err.to_string())
}

/// Changes the first character of the ciphertext segment.
fn flip_ciphertext(token: &str) -> String {
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    if let Some(ciphertext) = segments.get_mut(3) {
        let replacement = if ciphertext.starts_with('A') { "B" } else { "A" };
        ciphertext.replace_range(0..1, replacement);
    }
    segments.join(".")
}
