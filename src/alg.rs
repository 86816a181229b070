//! The JOSE algorithms jwed implements, with the lengths each one fixes.
//!
//! Anything not listed here is rejected before cryptography: RSA1_5 (a
//! padding oracle by design), PBES2 (attacker-chosen iteration counts),
//! AES-GCM key wrap, `none`, HMAC signatures and every unknown name.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// JWE key management algorithm (`alg` of a JWE header, RFC 7518 section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlg {
    /// RSAES OAEP with SHA-1 and MGF1 with SHA-1.
    #[serde(rename = "RSA-OAEP")]
    RsaOaep,
    /// RSAES OAEP with SHA-256 and MGF1 with SHA-256.
    #[serde(rename = "RSA-OAEP-256")]
    RsaOaep256,
    /// ECDH-ES key agreement used directly as the content key.
    #[serde(rename = "ECDH-ES")]
    EcdhEs,
    /// ECDH-ES, then AES-128 key wrap.
    #[serde(rename = "ECDH-ES+A128KW")]
    EcdhEsA128Kw,
    /// ECDH-ES, then AES-192 key wrap.
    #[serde(rename = "ECDH-ES+A192KW")]
    EcdhEsA192Kw,
    /// ECDH-ES, then AES-256 key wrap.
    #[serde(rename = "ECDH-ES+A256KW")]
    EcdhEsA256Kw,
    /// A shared symmetric key used directly as the content key.
    #[serde(rename = "dir")]
    Dir,
    /// AES-128 key wrap with a shared key.
    #[serde(rename = "A128KW")]
    A128Kw,
    /// AES-192 key wrap with a shared key.
    #[serde(rename = "A192KW")]
    A192Kw,
    /// AES-256 key wrap with a shared key.
    #[serde(rename = "A256KW")]
    A256Kw,
}

/// JWE content encryption algorithm (`enc`, RFC 7518 section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContentEnc {
    /// AES-128 in GCM mode.
    #[serde(rename = "A128GCM")]
    A128Gcm,
    /// AES-192 in GCM mode.
    #[serde(rename = "A192GCM")]
    A192Gcm,
    /// AES-256 in GCM mode.
    #[serde(rename = "A256GCM")]
    A256Gcm,
    /// AES-128 in CBC mode with HMAC SHA-256.
    #[serde(rename = "A128CBC-HS256")]
    A128CbcHs256,
    /// AES-192 in CBC mode with HMAC SHA-384.
    #[serde(rename = "A192CBC-HS384")]
    A192CbcHs384,
    /// AES-256 in CBC mode with HMAC SHA-512.
    #[serde(rename = "A256CBC-HS512")]
    A256CbcHs512,
}

/// JWS signature algorithm accepted for the nested JWT (RFC 7518 section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

/// Elliptic curve of an ECDH-ES key (RFC 7518 section 6.2, RFC 8037).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
    /// Curve25519 for ECDH (an `OKP` key).
    X25519,
}

/// Error for an algorithm name jwed does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported algorithm")]
pub struct UnsupportedAlgorithm;

// === impl KeyAlg ===

impl KeyAlg {
    /// Every supported key management algorithm.
    pub const ALL: [KeyAlg; 10] = [
        KeyAlg::RsaOaep,
        KeyAlg::RsaOaep256,
        KeyAlg::EcdhEs,
        KeyAlg::EcdhEsA128Kw,
        KeyAlg::EcdhEsA192Kw,
        KeyAlg::EcdhEsA256Kw,
        KeyAlg::Dir,
        KeyAlg::A128Kw,
        KeyAlg::A192Kw,
        KeyAlg::A256Kw,
    ];

    /// The registered JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::RsaOaep => "RSA-OAEP",
            KeyAlg::RsaOaep256 => "RSA-OAEP-256",
            KeyAlg::EcdhEs => "ECDH-ES",
            KeyAlg::EcdhEsA128Kw => "ECDH-ES+A128KW",
            KeyAlg::EcdhEsA192Kw => "ECDH-ES+A192KW",
            KeyAlg::EcdhEsA256Kw => "ECDH-ES+A256KW",
            KeyAlg::Dir => "dir",
            KeyAlg::A128Kw => "A128KW",
            KeyAlg::A192Kw => "A192KW",
            KeyAlg::A256Kw => "A256KW",
        }
    }

    /// Whether the token header must carry an ephemeral public key (`epk`).
    pub fn uses_epk(self) -> bool {
        matches!(
            self,
            KeyAlg::EcdhEs | KeyAlg::EcdhEsA128Kw | KeyAlg::EcdhEsA192Kw | KeyAlg::EcdhEsA256Kw
        )
    }

    /// Whether the algorithm uses a shared symmetric key.
    pub fn is_symmetric(self) -> bool {
        matches!(self, KeyAlg::Dir | KeyAlg::A128Kw | KeyAlg::A192Kw | KeyAlg::A256Kw)
    }

    /// Length of the wrapping key for AES key wrap, directly or after ECDH-ES.
    pub fn wrap_key_len(self) -> Option<usize> {
        match self {
            KeyAlg::A128Kw | KeyAlg::EcdhEsA128Kw => Some(16),
            KeyAlg::A192Kw | KeyAlg::EcdhEsA192Kw => Some(24),
            KeyAlg::A256Kw | KeyAlg::EcdhEsA256Kw => Some(32),
            _ => None,
        }
    }

    /// Exact length of the JWE Encrypted Key for `enc`, where the algorithm
    /// alone fixes it. RSA depends on the modulus and returns `None`.
    pub fn encrypted_key_len(self, enc: ContentEnc) -> Option<usize> {
        match self {
            KeyAlg::Dir | KeyAlg::EcdhEs => Some(0),
            // RFC 3394 adds one 8-byte integrity block to the wrapped key.
            _ if self.wrap_key_len().is_some() => Some(enc.key_len() + 8),
            _ => None,
        }
    }
}

impl FromStr for KeyAlg {
    type Err = UnsupportedAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        KeyAlg::ALL
            .into_iter()
            .find(|alg| alg.name() == name)
            .ok_or(UnsupportedAlgorithm)
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// === impl ContentEnc ===

impl ContentEnc {
    /// Every supported content encryption algorithm.
    pub const ALL: [ContentEnc; 6] = [
        ContentEnc::A128Gcm,
        ContentEnc::A192Gcm,
        ContentEnc::A256Gcm,
        ContentEnc::A128CbcHs256,
        ContentEnc::A192CbcHs384,
        ContentEnc::A256CbcHs512,
    ];

    /// The allow-list used when configuration names none.
    pub const DEFAULT_ALLOWED: [ContentEnc; 2] = [ContentEnc::A128Gcm, ContentEnc::A256Gcm];

    /// The registered JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            ContentEnc::A128Gcm => "A128GCM",
            ContentEnc::A192Gcm => "A192GCM",
            ContentEnc::A256Gcm => "A256GCM",
            ContentEnc::A128CbcHs256 => "A128CBC-HS256",
            ContentEnc::A192CbcHs384 => "A192CBC-HS384",
            ContentEnc::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    /// Length in bytes of the content encryption key.
    pub fn key_len(self) -> usize {
        match self {
            ContentEnc::A128Gcm => 16,
            ContentEnc::A192Gcm => 24,
            ContentEnc::A256Gcm | ContentEnc::A128CbcHs256 => 32,
            ContentEnc::A192CbcHs384 => 48,
            ContentEnc::A256CbcHs512 => 64,
        }
    }

    /// Exact length in bytes of the initialization vector.
    pub fn iv_len(self) -> usize {
        if self.is_cbc() { 16 } else { 12 }
    }

    /// Exact length in bytes of the authentication tag. Shorter GCM tags
    /// are legal in NIST SP 800-38D but make forgery cheap, so none is taken.
    pub fn tag_len(self) -> usize {
        match self {
            ContentEnc::A192CbcHs384 => 24,
            ContentEnc::A256CbcHs512 => 32,
            _ => 16,
        }
    }

    /// Whether this is one of the AES-CBC with HMAC algorithms.
    pub fn is_cbc(self) -> bool {
        matches!(
            self,
            ContentEnc::A128CbcHs256 | ContentEnc::A192CbcHs384 | ContentEnc::A256CbcHs512
        )
    }
}

impl FromStr for ContentEnc {
    type Err = UnsupportedAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ContentEnc::ALL
            .into_iter()
            .find(|enc| enc.name() == name)
            .ok_or(UnsupportedAlgorithm)
    }
}

impl fmt::Display for ContentEnc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// === impl SigAlg ===

impl SigAlg {
    /// Every accepted signature algorithm.
    pub const ALL: [SigAlg; 5] = [
        SigAlg::RS256,
        SigAlg::PS256,
        SigAlg::ES256,
        SigAlg::ES384,
        SigAlg::EdDSA,
    ];

    /// The registered JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            SigAlg::RS256 => "RS256",
            SigAlg::PS256 => "PS256",
            SigAlg::ES256 => "ES256",
            SigAlg::ES384 => "ES384",
            SigAlg::EdDSA => "EdDSA",
        }
    }
}

impl FromStr for SigAlg {
    type Err = UnsupportedAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SigAlg::ALL
            .into_iter()
            .find(|alg| alg.name() == name)
            .ok_or(UnsupportedAlgorithm)
    }
}

impl fmt::Display for SigAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// === impl Curve ===

impl Curve {
    /// The registered JOSE name (`crv`).
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
            Curve::X25519 => "X25519",
        }
    }

    /// Parses a `crv` value together with the key type it belongs to.
    ///
    /// # Errors
    ///
    /// Returns [`UnsupportedAlgorithm`] for any other pair.
    pub fn from_jwk(kty: &str, crv: &str) -> Result<Curve, UnsupportedAlgorithm> {
        match (kty, crv) {
            ("EC", "P-256") => Ok(Curve::P256),
            ("EC", "P-384") => Ok(Curve::P384),
            ("EC", "P-521") => Ok(Curve::P521),
            ("OKP", "X25519") => Ok(Curve::X25519),
            _ => Err(UnsupportedAlgorithm),
        }
    }

    /// Exact length in bytes of one coordinate (`x`, `y`) and of `d`.
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 | Curve::X25519 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Whether the JWK is an `OKP` key with only an `x` member.
    pub fn is_okp(self) -> bool {
        self == Curve::X25519
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in KeyAlg::ALL {
            assert_eq!(alg.name().parse::<KeyAlg>(), Ok(alg));
        }
        for enc in ContentEnc::ALL {
            assert_eq!(enc.name().parse::<ContentEnc>(), Ok(enc));
        }
        for alg in SigAlg::ALL {
            assert_eq!(alg.name().parse::<SigAlg>(), Ok(alg));
        }
    }

    #[test]
    fn dangerous_names_are_unsupported() {
        for name in [
            "RSA1_5",
            "PBES2-HS256+A128KW",
            "A128GCMKW",
            "none",
            "RSA-OAEP-512",
            "rsa-oaep",
        ] {
            assert!(name.parse::<KeyAlg>().is_err(), "{name}");
        }
        for name in ["none", "HS256", "HS512", "ES512", "RS384"] {
            assert!(name.parse::<SigAlg>().is_err(), "{name}");
        }
    }

    #[test]
    fn key_wrap_lengths_follow_rfc_3394() {
        assert_eq!(KeyAlg::A128Kw.encrypted_key_len(ContentEnc::A128Gcm), Some(24));
        assert_eq!(
            KeyAlg::EcdhEsA256Kw.encrypted_key_len(ContentEnc::A256CbcHs512),
            Some(72)
        );
        assert_eq!(KeyAlg::Dir.encrypted_key_len(ContentEnc::A256Gcm), Some(0));
        assert_eq!(KeyAlg::RsaOaep.encrypted_key_len(ContentEnc::A256Gcm), None);
    }
}
