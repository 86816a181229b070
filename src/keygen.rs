//! Key generation: private JWK Sets for jwed (decryption) and for a
//! development issuer (signing), with their public halves.

use std::{fs, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use base64ct::{Base64UrlUnpadded, Encoding};
use openssl::{
    bn::BigNumRef,
    ec::{EcGroup, EcKey},
    nid::Nid,
    pkey::PKey,
    rsa::Rsa,
};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::alg::{KeyAlg, SigAlg};

/// What kind of key to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    /// A decryption key for jwed.
    Decryption(KeyAlg),
    /// A signing key for an issuer.
    Signing(SigAlg),
}

/// Error generating or writing keys.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// OpenSSL failed to generate the key.
    #[error("key generation failed: {0}")]
    Generate(#[from] openssl::error::ErrorStack),
    /// The options do not describe a valid key.
    #[error("{0}")]
    Options(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A generated private JWK, wiped on drop.
pub struct GeneratedKey {
    private: Zeroizing<String>,
    public: Option<Map<String, Value>>,
}

// === impl KeySpec ===

impl KeySpec {
    /// Parses an algorithm name: a key management algorithm makes a
    /// decryption key, a signature algorithm a signing key.
    ///
    /// # Errors
    ///
    /// Returns [`KeygenError::Options`] for any other name.
    pub fn parse(name: &str) -> Result<Self, KeygenError> {
        if let Ok(alg) = name.parse::<KeyAlg>() {
            return Ok(KeySpec::Decryption(alg));
        }
        if let Ok(alg) = name.parse::<SigAlg>() {
            return Ok(KeySpec::Signing(alg));
        }
        Err(KeygenError::Options(format!(
            "algorithm {name:?} is not supported; use RSA-OAEP-256, ECDH-ES, dir, A256KW, ES256, EdDSA and the like"
        )))
    }
}

// === impl GeneratedKey ===

impl GeneratedKey {
    /// Generates a key. `curve` applies to ECDH-ES (P-256, P-384, P-521,
    /// X25519), `bits` to RSA, `size` to `dir` keys (bytes).
    ///
    /// # Errors
    ///
    /// Returns [`KeygenError`] for invalid options or an OpenSSL failure.
    pub fn generate(spec: KeySpec, kid: &str, curve: &str, bits: u32, size: usize) -> Result<Self, KeygenError> {
        let (mut jwk, alg_name, key_use) = match spec {
            KeySpec::Decryption(alg) => (decryption_jwk(alg, curve, bits, size)?, alg.name(), "enc"),
            KeySpec::Signing(alg) => (signing_jwk(alg, bits)?, alg.name(), "sig"),
        };
        jwk.insert("kid".into(), kid.into());
        jwk.insert("alg".into(), alg_name.into());
        jwk.insert("use".into(), key_use.into());

        let public = (jwk.get("kty").and_then(Value::as_str) != Some("oct")).then(|| {
            let mut public = jwk.clone();
            for name in ["d", "p", "q", "dp", "dq", "qi"] {
                public.remove(name);
            }
            public
        });
        let private = Zeroizing::new(serde_json::to_string(&Value::Object(jwk)).unwrap_or_default());
        Ok(GeneratedKey { private, public })
    }

    /// The private JWK as JSON text.
    pub fn expose_private_json(&self) -> &str {
        &self.private
    }

    /// The public JWK, or `None` for a symmetric key.
    pub fn public(&self) -> Option<&Map<String, Value>> {
        self.public.as_ref()
    }
}

/// The JSON text of a JWK Set holding the given JWK texts.
pub fn jwk_set_text(members: &[&str]) -> Zeroizing<String> {
    Zeroizing::new(format!("{{\"keys\":[{}]}}\n", members.join(",")))
}

/// Writes `text` to a new file readable by its owner only.
///
/// # Errors
///
/// Returns [`KeygenError::Write`]; an existing file is never overwritten.
pub fn write_private_file(path: &Path, text: &str) -> Result<(), KeygenError> {
    let write_error = |source| KeygenError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_error)?;
    file.write_all(text.as_bytes()).map_err(write_error)
}

/// Writes a new public JWK Set file.
///
/// # Errors
///
/// Returns [`KeygenError::Write`]; an existing file is never overwritten,
/// because it may hold the key issuers encrypt to.
pub fn write_public_file(path: &Path, keys: Vec<Value>) -> Result<(), KeygenError> {
    let write_error = |source| KeygenError::Write {
        path: path.display().to_string(),
        source,
    };
    let text = serde_json::to_string_pretty(&json!({ "keys": keys })).unwrap_or_default() + "\n";
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(write_error)?;
    file.write_all(text.as_bytes()).map_err(write_error)
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(Base64UrlUnpadded::encode_string(bytes))
}

fn b64_secret(bytes: &[u8]) -> Value {
    let bytes = Zeroizing::new(bytes.to_vec());
    b64(&bytes)
}

fn padded(number: &BigNumRef, len: usize) -> Result<Zeroizing<Vec<u8>>, KeygenError> {
    let len = i32::try_from(len).map_err(|_| KeygenError::Options("coordinate too long".into()))?;
    Ok(Zeroizing::new(number.to_vec_padded(len)?))
}

fn rsa_jwk(bits: u32) -> Result<Map<String, Value>, KeygenError> {
    if !(2048..=4096).contains(&bits) || bits % 8 != 0 {
        return Err(KeygenError::Options("RSA keys must have 2048 to 4096 bits".into()));
    }
    let rsa = Rsa::generate(bits)?;
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "RSA".into());
    jwk.insert("n".into(), b64(&rsa.n().to_vec()));
    jwk.insert("e".into(), b64(&rsa.e().to_vec()));
    let private = [
        ("d", rsa.d()),
        ("p", rsa.p().ok_or_else(missing)?),
        ("q", rsa.q().ok_or_else(missing)?),
    ];
    for (name, value) in private {
        jwk.insert(name.into(), b64_secret(&Zeroizing::new(value.to_vec())));
    }
    let crt = [("dp", rsa.dmp1()), ("dq", rsa.dmq1()), ("qi", rsa.iqmp())];
    for (name, value) in crt {
        jwk.insert(
            name.into(),
            b64_secret(&Zeroizing::new(value.ok_or_else(missing)?.to_vec())),
        );
    }
    Ok(jwk)
}

fn missing() -> KeygenError {
    KeygenError::Options("OpenSSL returned an RSA key without CRT parameters".into())
}

fn ec_jwk(nid: Nid, crv: &str, len: usize) -> Result<Map<String, Value>, KeygenError> {
    let group = EcGroup::from_curve_name(nid)?;
    let key = EcKey::generate(&group)?;
    let mut ctx = openssl::bn::BigNumContext::new()?;
    let mut x = openssl::bn::BigNum::new()?;
    let mut y = openssl::bn::BigNum::new()?;
    key.public_key().affine_coordinates(&group, &mut x, &mut y, &mut ctx)?;

    let mut jwk = Map::new();
    jwk.insert("kty".into(), "EC".into());
    jwk.insert("crv".into(), crv.into());
    jwk.insert("x".into(), b64(&padded(&x, len)?));
    jwk.insert("y".into(), b64(&padded(&y, len)?));
    jwk.insert("d".into(), b64_secret(&padded(key.private_key(), len)?));
    Ok(jwk)
}

fn okp_jwk(key: PKey<openssl::pkey::Private>, crv: &str) -> Result<Map<String, Value>, KeygenError> {
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "OKP".into());
    jwk.insert("crv".into(), crv.into());
    jwk.insert("x".into(), b64(&key.raw_public_key()?));
    jwk.insert("d".into(), b64_secret(&Zeroizing::new(key.raw_private_key()?)));
    Ok(jwk)
}

fn oct_jwk(len: usize) -> Result<Map<String, Value>, KeygenError> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    openssl::rand::rand_bytes(&mut bytes)?;
    let mut jwk = Map::new();
    jwk.insert("kty".into(), "oct".into());
    jwk.insert("k".into(), b64_secret(&bytes));
    Ok(jwk)
}

fn decryption_jwk(alg: KeyAlg, curve: &str, bits: u32, size: usize) -> Result<Map<String, Value>, KeygenError> {
    match alg {
        KeyAlg::RsaOaep | KeyAlg::RsaOaep256 => rsa_jwk(bits),
        _ if alg.uses_epk() => match curve {
            "P-256" => ec_jwk(Nid::X9_62_PRIME256V1, curve, 32),
            "P-384" => ec_jwk(Nid::SECP384R1, curve, 48),
            "P-521" => ec_jwk(Nid::SECP521R1, curve, 66),
            "X25519" => okp_jwk(PKey::generate_x25519()?, curve),
            other => Err(KeygenError::Options(format!(
                "curve {other:?} is not supported; use P-256, P-384, P-521 or X25519"
            ))),
        },
        KeyAlg::Dir => match size {
            16 | 24 | 32 | 48 | 64 => oct_jwk(size),
            _ => Err(KeygenError::Options("dir keys have 16, 24, 32, 48 or 64 bytes".into())),
        },
        _ => oct_jwk(alg.wrap_key_len().unwrap_or(32)),
    }
}

fn signing_jwk(alg: SigAlg, bits: u32) -> Result<Map<String, Value>, KeygenError> {
    match alg {
        SigAlg::RS256 | SigAlg::PS256 => rsa_jwk(bits),
        SigAlg::ES256 => ec_jwk(Nid::X9_62_PRIME256V1, "P-256", 32),
        SigAlg::ES384 => ec_jwk(Nid::SECP384R1, "P-384", 48),
        SigAlg::EdDSA => okp_jwk(PKey::generate_ed25519()?, "Ed25519"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{jwk::RawJwkSet, keys::KeySet};

    #[test]
    fn generated_decryption_keys_load_and_pass_self_check() {
        let specs = [
            (KeyAlg::RsaOaep256, "P-256"),
            (KeyAlg::EcdhEs, "P-256"),
            (KeyAlg::EcdhEsA128Kw, "P-384"),
            (KeyAlg::EcdhEsA256Kw, "P-521"),
            (KeyAlg::EcdhEs, "X25519"),
            (KeyAlg::Dir, "P-256"),
            (KeyAlg::A256Kw, "P-256"),
        ];
        let keys: Vec<GeneratedKey> = specs
            .iter()
            .enumerate()
            .map(|(i, (alg, crv))| {
                GeneratedKey::generate(KeySpec::Decryption(*alg), &format!("k{i}"), crv, 2048, 32).unwrap()
            })
            .collect();
        let texts: Vec<&str> = keys.iter().map(GeneratedKey::expose_private_json).collect();
        let raw = RawJwkSet::parse(jwk_set_text(&texts).as_bytes(), "generated").unwrap();
        let set = KeySet::from_raw(&raw, &Default::default(), "generated").unwrap();
        set.self_check().unwrap();
        assert_eq!(set.iter().count(), specs.len());
    }

    #[test]
    fn public_half_has_no_private_members() {
        let key = GeneratedKey::generate(KeySpec::Signing(SigAlg::RS256), "s", "P-256", 2048, 32).unwrap();
        let public = key.public().unwrap();
        for name in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(!public.contains_key(name), "{name}");
        }
        assert_eq!(public.get("alg").and_then(Value::as_str), Some("RS256"));
    }

    #[test]
    fn symmetric_key_has_no_public_half() {
        let key = GeneratedKey::generate(KeySpec::Decryption(KeyAlg::A128Kw), "s", "P-256", 2048, 32).unwrap();
        assert!(key.public().is_none());
        assert!(key.expose_private_json().contains("\"k\""));
    }

    #[test]
    fn rejects_unknown_algorithm_and_curve() {
        assert!(KeySpec::parse("RSA1_5").is_err());
        assert!(GeneratedKey::generate(KeySpec::Decryption(KeyAlg::EcdhEs), "k", "secp256k1", 2048, 32).is_err());
        assert!(GeneratedKey::generate(KeySpec::Decryption(KeyAlg::RsaOaep), "k", "P-256", 1024, 32).is_err());
    }
}
