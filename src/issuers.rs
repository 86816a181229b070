//! Trusted issuer keys: the public keys that sign the JWT nested in a JWE.
//!
//! Every key is pinned to one signature algorithm: RSA keys by their `alg`
//! member (RS256 or PS256), EC keys by their curve (ES256, ES384) and
//! Ed25519 keys to EdDSA. The file must hold public keys only.

use std::{collections::HashMap, fmt, path::Path};

use josekit::jws::{self, JwsVerifier};

use crate::{
    alg::SigAlg,
    jwk::{self, JwkError, RawJwk, RawJwkSet},
    keys::{MAX_KEYS, MAX_RSA_BITS, MIN_RSA_BITS},
};

/// One issuer public key, pinned to one signature algorithm.
pub struct VerifyingKey {
    kid: String,
    alg: SigAlg,
    signature_len: usize,
    verifier: Box<dyn JwsVerifier>,
}

/// The issuer keys jwed trusts, by key id.
pub struct IssuerKeys {
    keys: Vec<VerifyingKey>,
    by_kid: HashMap<String, usize>,
}

// === impl VerifyingKey ===

impl VerifyingKey {
    /// Builds a verifier from one public JWK.
    ///
    /// # Errors
    ///
    /// Returns a reason naming the member or check that failed.
    pub fn from_jwk(raw: &RawJwk) -> Result<Self, String> {
        if raw.has_private_members() {
            return Err("the issuer key set contains private key material; keep only public keys".into());
        }
        let kid = match raw.kid.as_deref() {
            Some(kid) if !kid.is_empty() && kid.len() <= 256 => kid.to_owned(),
            _ => return Err("member kid is missing, empty or longer than 256 bytes".into()),
        };
        if raw.key_use.as_deref().is_some_and(|value| value != "sig") {
            return Err("member use must be \"sig\" for an issuer key".into());
        }

        let alg = pinned_alg(raw)?;
        let signature_len = signature_len(raw, alg)?;
        let josekit_jwk = {
            // josekit would require every JWS header to repeat the key's kid,
            // which breaks selection of the single key for a kid-less token.
            let mut public = raw.public_members();
            public.remove("kid");
            josekit::jwk::Jwk::from_map(public).map_err(|_| "the key is not a valid JWK")?
        };
        let rejected = |_| format!("the key is not a valid {alg} verification key");
        let verifier: Box<dyn JwsVerifier> = match alg {
            SigAlg::RS256 => Box::new(jws::RS256.verifier_from_jwk(&josekit_jwk).map_err(rejected)?),
            SigAlg::PS256 => Box::new(jws::PS256.verifier_from_jwk(&josekit_jwk).map_err(rejected)?),
            SigAlg::ES256 => Box::new(jws::ES256.verifier_from_jwk(&josekit_jwk).map_err(rejected)?),
            SigAlg::ES384 => Box::new(jws::ES384.verifier_from_jwk(&josekit_jwk).map_err(rejected)?),
            SigAlg::EdDSA => Box::new(jws::EdDSA.verifier_from_jwk(&josekit_jwk).map_err(rejected)?),
        };

        Ok(VerifyingKey {
            kid,
            alg,
            signature_len,
            verifier,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The signature algorithm this key is pinned to.
    pub fn alg(&self) -> SigAlg {
        self.alg
    }

    /// Exact length of a signature made with this key, in bytes.
    pub fn signature_len(&self) -> usize {
        self.signature_len
    }

    /// The josekit verifier built from this key.
    pub fn verifier(&self) -> &dyn JwsVerifier {
        self.verifier.as_ref()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

// === impl IssuerKeys ===

impl IssuerKeys {
    /// Reads a public JWK Set file of issuer keys.
    ///
    /// # Errors
    ///
    /// Returns [`JwkError`] for an unreadable file or any unusable key.
    pub fn load(path: &Path) -> Result<Self, JwkError> {
        let raw = RawJwkSet::read(path)?;
        Self::from_raw(&raw, &path.display().to_string())
    }

    /// Builds the set from parsed JWKs; `origin` names the source in errors.
    ///
    /// # Errors
    ///
    /// See [`IssuerKeys::load`].
    pub fn from_raw(raw: &RawJwkSet, origin: &str) -> Result<Self, JwkError> {
        let key_error = |kid: String, reason: String| JwkError::Key {
            path: origin.to_owned(),
            kid,
            reason,
        };
        if raw.keys.len() > MAX_KEYS {
            return Err(key_error(
                "(all)".into(),
                format!("the set has more than {MAX_KEYS} keys"),
            ));
        }

        let mut keys = Vec::with_capacity(raw.keys.len());
        let mut by_kid = HashMap::new();
        for (index, jwk) in raw.keys.iter().enumerate() {
            let name = jwk.kid.clone().unwrap_or_else(|| format!("#{index}"));
            let key = VerifyingKey::from_jwk(jwk).map_err(|reason| key_error(name.clone(), reason))?;
            if by_kid.insert(key.kid.clone(), keys.len()).is_some() {
                return Err(key_error(name, "the key id is used twice".into()));
            }
            keys.push(key);
        }
        Ok(IssuerKeys { keys, by_kid })
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.by_kid.get(kid).map(|&index| &self.keys[index])
    }

    /// All keys, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.iter()
    }
}

impl fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

fn pinned_alg(raw: &RawJwk) -> Result<SigAlg, String> {
    let declared = match raw.alg.as_deref() {
        None => None,
        Some(name) => Some(
            name.parse::<SigAlg>()
                .map_err(|_| format!("algorithm {name:?} is not accepted for issuer signatures"))?,
        ),
    };
    let implied = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => None,
        ("EC", Some("P-256")) => Some(SigAlg::ES256),
        ("EC", Some("P-384")) => Some(SigAlg::ES384),
        ("OKP", Some("Ed25519")) => Some(SigAlg::EdDSA),
        (kty, crv) => {
            return Err(format!(
                "key type {kty:?} with curve {crv:?} is not supported for signatures"
            ));
        }
    };
    match (declared, implied) {
        (Some(declared), Some(implied)) if declared != implied => {
            Err(format!("algorithm {declared} does not match the key's curve"))
        }
        (Some(SigAlg::RS256 | SigAlg::PS256), None) => Ok(declared.unwrap_or(SigAlg::RS256)),
        (Some(_), None) => Err("an RSA key must be pinned to RS256 or PS256".into()),
        (None, None) => Err("an RSA key needs an alg member (RS256 or PS256)".into()),
        (_, Some(implied)) => Ok(implied),
    }
}

fn signature_len(raw: &RawJwk, alg: SigAlg) -> Result<usize, String> {
    match alg {
        SigAlg::RS256 | SigAlg::PS256 => {
            let n = jwk::decode_public(raw.n.as_ref(), "n")?;
            let significant = n.iter().skip_while(|&&byte| byte == 0).count();
            let bits = (significant * 8) as u32;
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(format!(
                    "RSA modulus of about {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
                ));
            }
            Ok(significant)
        }
        SigAlg::ES256 | SigAlg::EdDSA => Ok(64),
        SigAlg::ES384 => Ok(96),
    }
}
