//! JWK Set files (RFC 7517) as read from disk, before any key is built.
//!
//! Private members are [`Zeroizing`] strings, so the base64url text of a key
//! is wiped when parsing finishes. serde_json's internal scratch buffer for
//! strings with escape sequences is not wiped; base64url text never needs
//! escapes, so a well-formed key file does not use it.

use std::{fs, io::Read, path::Path};

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Deserialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// Maximum size of a JWK Set file, in bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Error reading or parsing a JWK Set file. Messages name the file and the
/// key id, never key material.
#[derive(Debug, thiserror::Error)]
pub enum JwkError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path} is empty")]
    Empty {
        /// The file.
        path: String,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("{path} is larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: String,
        /// The maximum in force.
        max: u64,
    },
    /// The file is not a JWK Set. serde_json's message gives line and column
    /// and the member name, never a value.
    #[error("{path} is not a valid JWK Set: {reason}")]
    Syntax {
        /// The file.
        path: String,
        /// What the parser found.
        reason: String,
    },
    /// The set has no key.
    #[error("{path} contains no keys")]
    NoKeys {
        /// The file.
        path: String,
    },
    /// One key is unusable.
    #[error("key {kid:?} in {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// The key's id, or its position when it has none.
        kid: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A JWK Set as read from a file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwkSet {
    /// The keys, in file order.
    pub keys: Vec<RawJwk>,
}

/// One JWK with every member jwed reads. Unknown members reject the file,
/// which also catches `x5c` and `x5u` that jwed would never trust.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwk {
    /// Key type: `RSA`, `EC`, `OKP` or `oct`.
    pub kty: String,
    /// Key id.
    pub kid: Option<String>,
    /// Intended use: `enc` or `sig`.
    #[serde(rename = "use")]
    pub key_use: Option<String>,
    /// Permitted operations.
    pub key_ops: Option<Vec<String>>,
    /// Algorithm the key is pinned to.
    pub alg: Option<String>,
    /// WebCrypto's extractable flag; ignored.
    pub ext: Option<bool>,
    /// jwed's key state: `current`, `accepted` or `retired`; absent means
    /// `current`. RFC 7517 lets a JWK carry members other parties ignore.
    pub state: Option<String>,
    /// Curve, for `EC` and `OKP`.
    pub crv: Option<String>,
    /// Public x coordinate, for `EC` and `OKP`.
    pub x: Option<String>,
    /// Public y coordinate, for `EC`.
    pub y: Option<String>,
    /// RSA modulus.
    pub n: Option<String>,
    /// RSA public exponent.
    pub e: Option<String>,
    /// Private scalar (`EC`, `OKP`) or private exponent (`RSA`).
    pub d: Option<Zeroizing<String>>,
    /// RSA first prime factor.
    pub p: Option<Zeroizing<String>>,
    /// RSA second prime factor.
    pub q: Option<Zeroizing<String>>,
    /// RSA first factor CRT exponent.
    pub dp: Option<Zeroizing<String>>,
    /// RSA second factor CRT exponent.
    pub dq: Option<Zeroizing<String>>,
    /// RSA CRT coefficient.
    pub qi: Option<Zeroizing<String>>,
    /// Symmetric key value.
    pub k: Option<Zeroizing<String>>,
}

// === impl RawJwkSet ===

impl RawJwkSet {
    /// Reads and parses a JWK Set file. The file bytes are wiped after
    /// parsing.
    ///
    /// # Errors
    ///
    /// Returns [`JwkError`] when the file is unreadable, empty, too large or
    /// not a JWK Set with at least one key.
    pub fn read(path: &Path) -> Result<Self, JwkError> {
        let bytes = read_limited(path)?;
        let shown = path.display().to_string();
        if bytes.is_empty() {
            return Err(JwkError::Empty { path: shown });
        }

        Self::parse(&bytes, &shown)
    }

    /// Parses JWK Set text; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// Returns [`JwkError::Syntax`] or [`JwkError::NoKeys`].
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, JwkError> {
        let set: RawJwkSet = serde_json::from_slice(bytes).map_err(|err| JwkError::Syntax {
            path: origin.to_owned(),
            reason: describe(&err),
        })?;
        if set.keys.is_empty() {
            return Err(JwkError::NoKeys {
                path: origin.to_owned(),
            });
        }
        Ok(set)
    }
}

// === impl RawJwk ===

impl RawJwk {
    /// Whether any private member is present.
    pub fn has_private_members(&self) -> bool {
        [&self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi, &self.k]
            .iter()
            .any(|m| m.is_some())
    }

    /// The public members as a JSON object, suitable for publishing.
    pub fn public_members(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("kty".into(), self.kty.clone().into());
        let optional = [
            ("kid", &self.kid),
            ("use", &self.key_use),
            ("alg", &self.alg),
            ("crv", &self.crv),
            ("x", &self.x),
            ("y", &self.y),
            ("n", &self.n),
            ("e", &self.e),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                map.insert(name.into(), value.clone().into());
            }
        }
        map
    }
}

/// Reads a file of at most [`MAX_FILE_BYTES`] into memory that is wiped on
/// drop, since key files hold private keys.
///
/// # Errors
///
/// Returns [`JwkError::Read`] or [`JwkError::TooLarge`].
pub fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>, JwkError> {
    let shown = || path.display().to_string();
    let read_error = |source| JwkError::Read { path: shown(), source };

    let file = fs::File::open(path).map_err(read_error)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(JwkError::TooLarge {
            path: shown(),
            max: MAX_FILE_BYTES,
        });
    }
    Ok(bytes)
}

/// Describes a parse error without quoting the file: serde_json's message
/// can contain a value from it (`invalid type: string "..."`), which could
/// be key material. Messages about member names are kept, since they name
/// no value.
fn describe(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let names_a_member = ["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|start| text.starts_with(start));
    if names_a_member {
        return text;
    }
    let kind = match err.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "JSON syntax error",
        serde_json::error::Category::Data => "a member has the wrong type or value",
        serde_json::error::Category::Eof => "the file ends early",
    };
    format!("{kind} at line {} column {}", err.line(), err.column())
}

/// Decodes a required public base64url member.
///
/// # Errors
///
/// Returns a short reason naming the member.
pub fn decode_public(value: Option<&String>, name: &str) -> Result<Vec<u8>, String> {
    let text = value.ok_or_else(|| format!("member {name} is missing"))?;
    Base64UrlUnpadded::decode_vec(text).map_err(|_| format!("member {name} is not canonical base64url"))
}

/// Decodes a required private base64url member into wiped memory.
///
/// # Errors
///
/// Returns a short reason naming the member, never its value.
pub fn decode_private(value: Option<&Zeroizing<String>>, name: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let text = value.ok_or_else(|| format!("member {name} is missing"))?;
    Base64UrlUnpadded::decode_vec(text)
        .map(Zeroizing::new)
        .map_err(|_| format!("member {name} is not canonical base64url"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_never_quotes_a_value() {
        let secret = "c2VjcmV0LWtleS1tYXRlcmlhbC1uZXZlci1sb2c";
        let cases = [
            format!(r#"{{"keys":[{{"kty":"oct","ext":"{secret}"}}]}}"#),
            format!(r#"{{"keys":[{{"kty":"oct","k":["{secret}"]}}]}}"#),
            format!(r#"{{"keys":[{{"kty":"oct","k":"{secret}"#),
        ];
        for text in cases {
            let Err(err) = RawJwkSet::parse(text.as_bytes(), "keys.json") else {
                panic!("accepted {text}");
            };
            assert!(!err.to_string().contains(secret), "{err}");
        }
    }

    #[test]
    fn parse_error_names_an_unknown_member() {
        let Err(err) = RawJwkSet::parse(br#"{"keys":[{"kty":"oct","x5c":[]}]}"#, "keys.json") else {
            panic!("accepted x5c");
        };
        assert!(err.to_string().contains("x5c"), "{err}");
    }
}
