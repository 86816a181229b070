//! A development issuer: signs claims as a JWT and encrypts it to jwed.
//!
//! This is a tool for tests, demos and local development. Production
//! issuers mint tokens in their own service. Keys here go through josekit's
//! `Jwk` type, which does not wipe its memory.

use std::path::Path;

use josekit::{
    jwe::{self, JweEncrypter},
    jwk::Jwk,
    jws::{self, JwsSigner},
};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    jwk::MAX_FILE_BYTES,
};

/// Error minting a token.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// A key file could not be read or has no usable key.
    #[error("{0}")]
    Key(String),
    /// josekit failed to sign or encrypt.
    #[error("cannot {0} the token")]
    Crypto(&'static str),
}

/// A signing key of the development issuer.
pub struct Signer {
    kid: String,
    signer: Box<dyn JwsSigner>,
}

/// jwed's public encryption key (or a shared symmetric key).
pub struct Recipient {
    kid: Option<String>,
    alg: KeyAlg,
    encrypter: Box<dyn JweEncrypter>,
}

// === impl Signer ===

impl Signer {
    /// Loads the key `kid` (or the first key) from a private JWK Set file.
    ///
    /// # Errors
    ///
    /// Returns [`MintError::Key`] when no usable signing key is found.
    pub fn from_file(path: &Path, kid: Option<&str>) -> Result<Self, MintError> {
        Self::from_jwk(pick(path, kid)?)
    }

    /// Builds a signer from one private JWK with `kid` and `alg` members.
    ///
    /// # Errors
    ///
    /// Returns [`MintError::Key`] for a key josekit cannot sign with.
    pub fn from_jwk(jwk: Jwk) -> Result<Self, MintError> {
        let kid = jwk
            .key_id()
            .ok_or_else(|| MintError::Key("the signing key has no kid".into()))?
            .to_owned();
        let alg: SigAlg = jwk.algorithm().and_then(|name| name.parse().ok()).ok_or_else(|| {
            MintError::Key(format!(
                "signing key {kid:?} needs alg RS256, PS256, ES256, ES384 or EdDSA"
            ))
        })?;
        let unusable = |_| MintError::Key(format!("signing key {kid:?} is not a valid private {alg} key"));
        let signer: Box<dyn JwsSigner> = match alg {
            SigAlg::RS256 => Box::new(jws::RS256.signer_from_jwk(&jwk).map_err(unusable)?),
            SigAlg::PS256 => Box::new(jws::PS256.signer_from_jwk(&jwk).map_err(unusable)?),
            SigAlg::ES256 => Box::new(jws::ES256.signer_from_jwk(&jwk).map_err(unusable)?),
            SigAlg::ES384 => Box::new(jws::ES384.signer_from_jwk(&jwk).map_err(unusable)?),
            SigAlg::EdDSA => Box::new(jws::EdDSA.signer_from_jwk(&jwk).map_err(unusable)?),
        };
        Ok(Signer { kid, signer })
    }
}

// === impl Recipient ===

impl Recipient {
    /// Loads the key `kid` (or the first key) from a JWK Set file: jwed's
    /// public keys, or a private set for symmetric keys.
    ///
    /// # Errors
    ///
    /// Returns [`MintError::Key`] when no usable encryption key is found.
    pub fn from_file(path: &Path, kid: Option<&str>) -> Result<Self, MintError> {
        Self::from_jwk(pick(path, kid)?)
    }

    /// Builds an encrypter from one JWK with `kid` and `alg` members.
    ///
    /// # Errors
    ///
    /// Returns [`MintError::Key`] for a key josekit cannot encrypt to.
    pub fn from_jwk(mut jwk: Jwk) -> Result<Self, MintError> {
        let kid = jwk
            .key_id()
            .ok_or_else(|| MintError::Key("the encryption key has no kid".into()))?
            .to_owned();
        let alg: KeyAlg = match jwk.algorithm() {
            None => return Err(MintError::Key(format!("encryption key {kid:?} has no alg member"))),
            Some(name) => name.parse().map_err(|_| {
                MintError::Key(format!("key {kid:?} has alg {name:?}, which is not a JWE key management algorithm; pass jwed's public key set"))
            })?,
        };
        // josekit rejects an encryption key that carries private members.
        if !alg.is_symmetric() {
            jwk = public_only(&jwk)?;
        }
        // josekit copies a key's kid into every header; `mint` sets it instead,
        // so that `without_kid` can leave it out.
        jwk = without_member(&jwk, "kid")?;
        let unusable = |_| MintError::Key(format!("encryption key {kid:?} is not a valid {alg} key"));
        let encrypter: Box<dyn JweEncrypter> = match alg {
            KeyAlg::RsaOaep => Box::new(jwe::RSA_OAEP.encrypter_from_jwk(&jwk).map_err(unusable)?),
            KeyAlg::RsaOaep256 => Box::new(jwe::RSA_OAEP_256.encrypter_from_jwk(&jwk).map_err(unusable)?),
            KeyAlg::EcdhEs => Box::new(jwe::ECDH_ES.encrypter_from_jwk(&jwk).map_err(unusable)?),
            KeyAlg::EcdhEsA128Kw => Box::new(jwe::ECDH_ES_A128KW.encrypter_from_jwk(&jwk).map_err(unusable)?),
            KeyAlg::EcdhEsA192Kw => Box::new(jwe::ECDH_ES_A192KW.encrypter_from_jwk(&jwk).map_err(unusable)?),
            KeyAlg::EcdhEsA256Kw => Box::new(jwe::ECDH_ES_A256KW.encrypter_from_jwk(&jwk).map_err(unusable)?),
            KeyAlg::Dir => Box::new(jwe::Dir.encrypter_from_jwk(&jwk).map_err(unusable)?),
            KeyAlg::A128Kw => Box::new(jwe::A128KW.encrypter_from_jwk(&jwk).map_err(unusable)?),
            KeyAlg::A192Kw => Box::new(jwe::A192KW.encrypter_from_jwk(&jwk).map_err(unusable)?),
            KeyAlg::A256Kw => Box::new(jwe::A256KW.encrypter_from_jwk(&jwk).map_err(unusable)?),
        };
        Ok(Recipient {
            kid: Some(kid),
            alg,
            encrypter,
        })
    }

    /// Leaves `kid` out of the tokens' headers, as some issuers do.
    pub fn without_kid(mut self) -> Self {
        self.kid = None;
        self
    }

    /// The algorithm tokens are encrypted with.
    pub fn alg(&self) -> KeyAlg {
        self.alg
    }
}

/// Signs `claims` with `signer` (when given) and encrypts the result to
/// `recipient` with `enc`. A signed token gets `cty: "JWT"`.
///
/// # Errors
///
/// Returns [`MintError::Crypto`] when josekit fails.
pub fn mint(
    claims: &Map<String, Value>,
    signer: Option<&Signer>,
    recipient: &Recipient,
    enc: ContentEnc,
) -> Result<String, MintError> {
    let claims_text = Zeroizing::new(serde_json::to_vec(claims).map_err(|_| MintError::Crypto("serialize"))?);

    let mut header = jwe::JweHeader::new();
    header.set_content_encryption(enc.name());
    if let Some(kid) = &recipient.kid {
        header.set_key_id(kid);
    }
    let payload = match signer {
        Some(signer) => {
            let mut jws_header = jws::JwsHeader::new();
            jws_header.set_token_type("JWT");
            jws_header.set_key_id(&signer.kid);
            header.set_content_type("JWT");
            let signed = jws::serialize_compact(&claims_text, &jws_header, signer.signer.as_ref())
                .map_err(|_| MintError::Crypto("sign"))?;
            Zeroizing::new(signed.into_bytes())
        }
        None => claims_text,
    };

    jwe::serialize_compact(&payload, &header, recipient.encrypter.as_ref()).map_err(|_| MintError::Crypto("encrypt"))
}

/// Reads a JWK Set file and returns the key with `kid`, or the first key.
fn pick(path: &Path, kid: Option<&str>) -> Result<Jwk, MintError> {
    let unreadable = |reason: String| MintError::Key(format!("cannot use {}: {reason}", path.display()));
    let meta = std::fs::metadata(path).map_err(|err| unreadable(err.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(unreadable("the file is too large".into()));
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|err| unreadable(err.to_string()))?);
    let set = josekit::jwk::JwkSet::from_bytes(&bytes).map_err(|_| unreadable("not a JWK Set".into()))?;
    let found = match kid {
        Some(kid) => set.get(kid).into_iter().next(),
        None => set.keys().into_iter().next(),
    };
    found
        .cloned()
        .ok_or_else(|| unreadable(format!("no key {}", kid.unwrap_or("in the set"))))
}

fn without_member(jwk: &Jwk, name: &str) -> Result<Jwk, MintError> {
    let mut map = jwk.as_ref().clone();
    map.remove(name);
    Jwk::from_map(map).map_err(|_| MintError::Key("the encryption key is not a valid JWK".into()))
}

fn public_only(jwk: &Jwk) -> Result<Jwk, MintError> {
    let mut map = jwk.as_ref().clone();
    for name in ["d", "p", "q", "dp", "dq", "qi"] {
        map.remove(name);
    }
    Jwk::from_map(map).map_err(|_| MintError::Key("the encryption key is not a valid JWK".into()))
}
