//! jwed's private decryption keys.
//!
//! A [`KeySet`] is built once from a private JWK Set; every key is checked
//! by OpenSSL (RSA consistency, EC point on curve, X25519 public value) and
//! pinned to one algorithm before it can decrypt anything.
//!
//! What is wiped and what is not:
//! - the key file bytes and the decoded private members are [`Zeroizing`];
//! - the DER form handed to josekit is [`Zeroizing`];
//! - the key inside josekit's decrypter lives in OpenSSL's memory, which
//!   OpenSSL clears when the key is freed; symmetric keys are copied into a
//!   plain `Vec` inside josekit and are not wiped;
//! - josekit does not wipe the unwrapped content key.

use std::{collections::HashMap, fmt, path::Path};

use josekit::jwe::{self, JweDecrypter, JweEncrypter, JweHeader};
use openssl::{
    bn::{BigNum, BigNumContext},
    ec::{EcGroup, EcKey},
    nid::Nid,
    pkey::{Id, PKey, Private},
    rsa::RsaPrivateKeyBuilder,
};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::{
    alg::{ContentEnc, Curve, KeyAlg},
    jwk::{self, JwkError, RawJwk, RawJwkSet},
};

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: u32 = 2048;

/// Largest RSA modulus accepted, in bits. Larger keys make each call cost
/// several times more without a security reason for a five-minute token.
pub const MAX_RSA_BITS: u32 = 4096;

/// Maximum number of keys in one set.
pub const MAX_KEYS: usize = 64;

/// What kind of key material a key is, with the sizes checks depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA private key with a modulus of this many bytes.
    Rsa {
        /// Modulus length in bytes, which is also the RSA-OAEP ciphertext length.
        modulus_len: usize,
    },
    /// EC or X25519 private key on this curve.
    Ec(Curve),
    /// Symmetric key of this many bytes.
    Oct {
        /// Key length in bytes.
        len: usize,
    },
}

/// Where a key is in its rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published first; issuers encrypt to it.
    Current,
    /// Still decrypts, and is published after the current keys.
    Accepted,
    /// No longer decrypts: its tokens fail with KEY_RETIRED, which asks
    /// callers to refresh. Not published.
    Retired,
}

/// One private decryption key, pinned to one algorithm.
pub struct DecryptionKey {
    kid: String,
    alg: KeyAlg,
    state: KeyState,
    kind: KeyKind,
    decrypter: Box<dyn JweDecrypter>,
    rsa: Option<PKey<Private>>,
    public_jwk: Option<Map<String, Value>>,
}

/// The keys jwed decrypts with, by key id.
pub struct KeySet {
    keys: Vec<DecryptionKey>,
    by_kid: HashMap<String, usize>,
}

// === impl DecryptionKey ===

impl DecryptionKey {
    /// Builds a key from one JWK. `configured_alg` pins the algorithm when
    /// the JWK has no `alg` member; when both are present they must agree.
    ///
    /// # Errors
    ///
    /// Returns a reason naming the offending member or check, never key
    /// material.
    pub fn from_jwk(raw: &RawJwk, configured_alg: Option<KeyAlg>) -> Result<Self, String> {
        let kid = match raw.kid.as_deref() {
            Some(kid) if !kid.is_empty() && kid.len() <= 256 => kid.to_owned(),
            _ => return Err("member kid is missing, empty or longer than 256 bytes".into()),
        };
        let alg = pinned_alg(raw, configured_alg)?;
        check_usage(raw)?;
        let state = match raw.state.as_deref() {
            None | Some("current") => KeyState::Current,
            Some("accepted") => KeyState::Accepted,
            Some("retired") => KeyState::Retired,
            Some(other) => return Err(format!("state {other:?} is not current, accepted or retired")),
        };

        let (kind, decrypter, rsa) = match raw.kty.as_str() {
            "RSA" => build_rsa(raw, alg)?,
            "EC" | "OKP" => {
                let (kind, decrypter) = build_ec(raw, alg)?;
                (kind, decrypter, None)
            }
            "oct" => {
                let (kind, decrypter) = build_oct(raw, alg)?;
                (kind, decrypter, None)
            }
            other => return Err(format!("key type {other:?} is not supported")),
        };
        let public_jwk = (!alg.is_symmetric()).then(|| {
            let mut public = raw.public_members();
            public.insert("alg".into(), alg.name().into());
            public.insert("use".into(), "enc".into());
            public
        });

        Ok(DecryptionKey {
            kid,
            alg,
            state,
            kind,
            decrypter,
            rsa,
            public_jwk,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key is pinned to.
    pub fn alg(&self) -> KeyAlg {
        self.alg
    }

    /// Where the key is in its rotation.
    pub fn state(&self) -> KeyState {
        self.state
    }

    /// Key type and size.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The josekit decrypter built from this key.
    pub fn decrypter(&self) -> &dyn JweDecrypter {
        self.decrypter.as_ref()
    }

    /// The OpenSSL private key of an RSA key, for [`crate::oaep`].
    pub(crate) fn rsa_private_key(&self) -> Option<&PKey<Private>> {
        self.rsa.as_ref()
    }

    /// The public JWK for issuers, or `None` for a symmetric key.
    pub fn public_jwk(&self) -> Option<&Map<String, Value>> {
        self.public_jwk.as_ref()
    }

    /// Whether this key can open a token with `enc`: a `dir` key must have
    /// exactly the content key's length.
    pub fn fits_enc(&self, enc: ContentEnc) -> bool {
        match (self.alg, self.kind) {
            (KeyAlg::Dir, KeyKind::Oct { len }) => len == enc.key_len(),
            _ => true,
        }
    }

    /// Encrypts a probe and decrypts it again, proving the key works.
    fn self_check(&self) -> Result<(), String> {
        let enc = ContentEnc::ALL
            .into_iter()
            .find(|&enc| self.fits_enc(enc))
            .ok_or("no content encryption fits")?;
        let encrypter = self.probe_encrypter()?;

        let mut header = JweHeader::new();
        header.set_content_encryption(enc.name());
        let probe = b"jwed self-check";
        let token = jwe::serialize_compact(probe, &header, encrypter.as_ref())
            .map_err(|_| "encrypting the self-check probe failed")?;
        let (plaintext, _) =
            jwe::deserialize_compact(&token, self.decrypter()).map_err(|_| "decrypting the self-check probe failed")?;
        if plaintext.as_slice() != probe {
            return Err("the self-check probe decrypted to different bytes".into());
        }
        Ok(())
    }

    fn probe_encrypter(&self) -> Result<Box<dyn JweEncrypter>, String> {
        let failed = |_| "cannot build an encrypter for the self-check".to_string();
        let Some(public) = &self.public_jwk else {
            return Err("symmetric keys are checked when they are built".into());
        };
        let jwk = josekit::jwk::Jwk::from_map(public.clone()).map_err(failed)?;
        Ok(match self.alg {
            KeyAlg::RsaOaep => Box::new(jwe::RSA_OAEP.encrypter_from_jwk(&jwk).map_err(failed)?),
            KeyAlg::RsaOaep256 => Box::new(jwe::RSA_OAEP_256.encrypter_from_jwk(&jwk).map_err(failed)?),
            alg => Box::new(ecdh_alg(alg).encrypter_from_jwk(&jwk).map_err(failed)?),
        })
    }
}

impl fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptionKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

// === impl KeySet ===

impl KeySet {
    /// Reads a private JWK Set file and builds every key in it.
    ///
    /// # Errors
    ///
    /// Returns [`JwkError`] for an unreadable file or any unusable key; one
    /// bad key rejects the whole set.
    pub fn load(path: &Path, configured: &HashMap<String, KeyAlg>) -> Result<Self, JwkError> {
        let raw = RawJwkSet::read(path)?;
        Self::from_raw(&raw, configured, &path.display().to_string())
    }

    /// Builds a key set from parsed JWKs; `origin` names the source in errors.
    ///
    /// # Errors
    ///
    /// See [`KeySet::load`].
    pub fn from_raw(raw: &RawJwkSet, configured: &HashMap<String, KeyAlg>, origin: &str) -> Result<Self, JwkError> {
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
            let configured_alg = jwk.kid.as_ref().and_then(|kid| configured.get(kid)).copied();
            let key = DecryptionKey::from_jwk(jwk, configured_alg).map_err(|reason| key_error(name.clone(), reason))?;
            if by_kid.insert(key.kid.clone(), keys.len()).is_some() {
                return Err(key_error(name, "the key id is used twice".into()));
            }
            keys.push(key);
        }

        if raw.keys.is_empty() {
            return Err(JwkError::NoKeys {
                path: origin.to_owned(),
            });
        }
        Ok(KeySet { keys, by_kid })
    }

    /// Encrypts and decrypts a probe with every key.
    ///
    /// # Errors
    ///
    /// Returns the key id and reason of the first key that fails.
    pub fn self_check(&self) -> Result<(), (String, String)> {
        for key in self.keys.iter().filter(|key| !key.alg.is_symmetric()) {
            key.self_check().map_err(|reason| (key.kid.clone(), reason))?;
        }
        Ok(())
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&DecryptionKey> {
        self.by_kid.get(kid).map(|&index| &self.keys[index])
    }

    /// All keys, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &DecryptionKey> {
        self.keys.iter()
    }

    /// The public JWK Set for issuers: asymmetric keys that are current
    /// (first) or accepted, in file order within each state. Retired and
    /// symmetric keys are left out.
    pub fn public_jwk_set(&self) -> Value {
        let in_state = |state: KeyState| {
            self.keys
                .iter()
                .filter(move |key| key.state == state)
                .filter_map(|key| key.public_jwk.clone().map(Value::Object))
        };
        let keys: Vec<Value> = in_state(KeyState::Current)
            .chain(in_state(KeyState::Accepted))
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

fn pinned_alg(raw: &RawJwk, configured: Option<KeyAlg>) -> Result<KeyAlg, String> {
    let from_jwk = match raw.alg.as_deref() {
        None => None,
        Some(name) => Some(
            name.parse::<KeyAlg>()
                .map_err(|_| format!("algorithm {name:?} is not supported for decryption"))?,
        ),
    };
    match (from_jwk, configured) {
        (Some(jwk), Some(config)) if jwk != config => {
            Err(format!("the JWK pins {jwk} but the configuration pins {config}"))
        }
        (Some(alg), _) | (None, Some(alg)) => Ok(alg),
        (None, None) => Err("no algorithm is pinned: add an alg member or set it in [key_algorithms]".into()),
    }
}

fn check_usage(raw: &RawJwk) -> Result<(), String> {
    if raw.key_use.as_deref().is_some_and(|value| value != "enc") {
        return Err("member use must be \"enc\" for a decryption key".into());
    }
    if let Some(ops) = &raw.key_ops {
        if !ops
            .iter()
            .any(|op| matches!(op.as_str(), "decrypt" | "unwrapKey" | "deriveKey" | "deriveBits"))
        {
            return Err("member key_ops does not allow decryption".into());
        }
    }
    Ok(())
}

fn big_number(bytes: &[u8], name: &str) -> Result<BigNum, String> {
    BigNum::from_slice(bytes).map_err(|_| format!("member {name} is not a valid integer"))
}

/// A built key: its kind, josekit's decrypter and, for RSA, the OpenSSL key.
type Built = (KeyKind, Box<dyn JweDecrypter>, Option<PKey<Private>>);

fn build_rsa(raw: &RawJwk, alg: KeyAlg) -> Result<Built, String> {
    let algorithm = match alg {
        KeyAlg::RsaOaep => jwe::RSA_OAEP,
        KeyAlg::RsaOaep256 => jwe::RSA_OAEP_256,
        other => return Err(format!("an RSA key cannot be used with {other}")),
    };

    let n = big_number(&jwk::decode_public(raw.n.as_ref(), "n")?, "n")?;
    let e = big_number(&jwk::decode_public(raw.e.as_ref(), "e")?, "e")?;
    let mut private = Vec::new();
    for (value, name) in [
        (&raw.d, "d"),
        (&raw.p, "p"),
        (&raw.q, "q"),
        (&raw.dp, "dp"),
        (&raw.dq, "dq"),
        (&raw.qi, "qi"),
    ] {
        private.push(big_number(&jwk::decode_private(value.as_ref(), name)?, name)?);
    }
    let [d, p, q, dp, dq, qi]: [BigNum; 6] = private.try_into().map_err(|_| "RSA members are incomplete")?;

    let bits = n.num_bits().unsigned_abs();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(format!(
            "RSA modulus has {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
        ));
    }
    let invalid = |_| "RSA members do not form a valid key".to_string();
    let rsa = RsaPrivateKeyBuilder::new(n, e, d)
        .and_then(|builder| builder.set_factors(p, q))
        .and_then(|builder| builder.set_crt_params(dp, dq, qi))
        .map_err(invalid)?
        .build();
    if !rsa.check_key().map_err(invalid)? {
        return Err("RSA members do not form a valid key".into());
    }

    let modulus_len = rsa.size() as usize;
    let pkey = PKey::from_rsa(rsa).map_err(invalid)?;
    let der = Zeroizing::new(pkey.private_key_to_pkcs8().map_err(invalid)?);
    let decrypter = algorithm
        .decrypter_from_der(der.as_slice())
        .map_err(|_| "josekit rejected the RSA key")?;
    Ok((KeyKind::Rsa { modulus_len }, Box::new(decrypter), Some(pkey)))
}

fn ecdh_alg(alg: KeyAlg) -> jwe::alg::ecdh_es::EcdhEsJweAlgorithm {
    match alg {
        KeyAlg::EcdhEsA128Kw => jwe::ECDH_ES_A128KW,
        KeyAlg::EcdhEsA192Kw => jwe::ECDH_ES_A192KW,
        KeyAlg::EcdhEsA256Kw => jwe::ECDH_ES_A256KW,
        _ => jwe::ECDH_ES,
    }
}

fn build_ec(raw: &RawJwk, alg: KeyAlg) -> Result<(KeyKind, Box<dyn JweDecrypter>), String> {
    if !alg.uses_epk() {
        return Err(format!("an {} key cannot be used with {alg}", raw.kty));
    }
    let crv = raw.crv.as_deref().ok_or("member crv is missing")?;
    let curve = Curve::from_jwk(&raw.kty, crv).map_err(|_| format!("curve {crv:?} is not supported"))?;

    let d = jwk::decode_private(raw.d.as_ref(), "d")?;
    let x = jwk::decode_public(raw.x.as_ref(), "x")?;
    if d.len() != curve.coordinate_len() || x.len() != curve.coordinate_len() {
        return Err(format!(
            "members d and x must have {} bytes for {crv}",
            curve.coordinate_len()
        ));
    }

    let invalid = |_| "the private key does not match its public members".to_string();
    let der = if curve.is_okp() {
        if raw.y.is_some() {
            return Err("member y is not allowed for X25519".into());
        }
        let key = PKey::private_key_from_raw_bytes(&d, Id::X25519).map_err(invalid)?;
        if key.raw_public_key().map_err(invalid)? != x {
            return Err("the private key does not match its public members".into());
        }
        Zeroizing::new(key.private_key_to_pkcs8().map_err(invalid)?)
    } else {
        let y = jwk::decode_public(raw.y.as_ref(), "y")?;
        let group = EcGroup::from_curve_name(curve_nid(curve)).map_err(invalid)?;
        let (x, y, d) = (big_number(&x, "x")?, big_number(&y, "y")?, big_number(&d, "d")?);
        let public = EcKey::from_public_key_affine_coordinates(&group, &x, &y).map_err(invalid)?;
        let key = EcKey::from_private_components(&group, &d, public.public_key()).map_err(invalid)?;
        key.check_key().map_err(invalid)?;
        check_ec_public(&key, &public)?;
        Zeroizing::new(
            PKey::from_ec_key(key)
                .and_then(|key| key.private_key_to_pkcs8())
                .map_err(invalid)?,
        )
    };

    let decrypter = ecdh_alg(alg)
        .decrypter_from_der(der.as_slice())
        .map_err(|_| "josekit rejected the EC key")?;
    Ok((KeyKind::Ec(curve), Box::new(decrypter)))
}

/// Checks that the public point really is `d * G`: `from_private_components`
/// takes the public point on trust.
fn check_ec_public(key: &EcKey<openssl::pkey::Private>, public: &EcKey<openssl::pkey::Public>) -> Result<(), String> {
    let mismatch = || "the private key does not match its public members".to_string();
    let group = key.group();
    let mut ctx = BigNumContext::new().map_err(|_| mismatch())?;
    let mut derived = openssl::ec::EcPoint::new(group).map_err(|_| mismatch())?;
    derived
        .mul_generator2(group, key.private_key(), &mut ctx)
        .map_err(|_| mismatch())?;
    match derived.eq(group, public.public_key(), &mut ctx) {
        Ok(true) => Ok(()),
        _ => Err(mismatch()),
    }
}

fn curve_nid(curve: Curve) -> Nid {
    match curve {
        Curve::P256 => Nid::X9_62_PRIME256V1,
        Curve::P384 => Nid::SECP384R1,
        Curve::P521 | Curve::X25519 => Nid::SECP521R1,
    }
}

fn build_oct(raw: &RawJwk, alg: KeyAlg) -> Result<(KeyKind, Box<dyn JweDecrypter>), String> {
    let k = jwk::decode_private(raw.k.as_ref(), "k")?;
    let len = k.len();
    let decrypter: Box<dyn JweDecrypter> = match alg {
        KeyAlg::Dir if ContentEnc::ALL.iter().any(|enc| enc.key_len() == len) => Box::new(
            jwe::Dir
                .decrypter_from_bytes(k.as_slice())
                .map_err(|_| "josekit rejected the key")?,
        ),
        KeyAlg::Dir => return Err(format!("a dir key of {len} bytes fits no content encryption")),
        alg if alg.wrap_key_len() == Some(len) && alg.is_symmetric() => {
            let algorithm = match alg {
                KeyAlg::A128Kw => jwe::A128KW,
                KeyAlg::A192Kw => jwe::A192KW,
                _ => jwe::A256KW,
            };
            Box::new(
                algorithm
                    .decrypter_from_bytes(k.as_slice())
                    .map_err(|_| "josekit rejected the key")?,
            )
        }
        alg if alg.is_symmetric() => {
            return Err(format!(
                "{alg} needs a key of {} bytes, not {len}",
                alg.wrap_key_len().unwrap_or(0)
            ));
        }
        alg => return Err(format!("an oct key cannot be used with {alg}")),
    };
    Ok((KeyKind::Oct { len }, decrypter))
}

#[cfg(test)]
mod tests;
