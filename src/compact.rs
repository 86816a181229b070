//! The strict front stage: shape checks on compact JWE and JWS before any
//! cryptography.
//!
//! josekit panics on some malformed tokens (an empty IV, an encrypted key
//! shorter than 8 bytes for key wrap), accepts GCM tags shorter than 16
//! bytes, ignores `crit`, inflates `zip` without a limit and resolves
//! duplicate header members last-wins. Everything here runs first, so none
//! of that is reachable: every segment length that `alg` and `enc` fix is
//! checked here. The RSA encrypted key length depends on the key and is
//! checked in [`crate::decrypt`] once the key is selected, still before
//! josekit sees the token.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use crate::{
    alg::{ContentEnc, Curve, KeyAlg, SigAlg},
    json,
};

/// Default maximum size of a token, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Maximum size of a decoded protected header, in bytes.
pub const MAX_HEADER_BYTES: usize = 4096;

/// Maximum length of a `kid`, `typ` or `cty` header value, in bytes.
pub const MAX_HEADER_STRING_BYTES: usize = 256;

/// Maximum decoded length of `apu` and `apv`, in bytes.
pub const MAX_PARTY_INFO_BYTES: usize = 256;

/// JWE header members jwed understands. Any other member rejects the token,
/// including `zip`, `jku`, `jwk`, `x5u`, `x5c`, `p2s`, `p2c`, `iv` and `tag`.
const JWE_MEMBERS: &[&str] = &["alg", "enc", "kid", "typ", "cty", "epk", "apu", "apv"];

/// JWS header members jwed understands for the nested JWT.
const JWS_MEMBERS: &[&str] = &["alg", "kid", "typ"];

/// Why the front stage rejected a token. Goes to the audit record only;
/// callers see one opaque answer for all of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The token is longer than the configured maximum.
    #[error("token is longer than {max} bytes")]
    TooLarge {
        /// The maximum in force.
        max: usize,
    },
    /// The token does not have the number of segments its kind requires.
    #[error("token does not have {expected} segments")]
    SegmentCount {
        /// Segments a compact JWE (5) or JWS (3) has.
        expected: usize,
    },
    /// A segment is not canonical unpadded base64url.
    #[error("segment {index} is not canonical base64url")]
    Base64 {
        /// Zero-based segment position.
        index: usize,
    },
    /// The protected header is larger than [`MAX_HEADER_BYTES`].
    #[error("protected header is longer than {max} bytes")]
    HeaderTooLarge {
        /// The maximum in force.
        max: usize,
    },
    /// The protected header is not a JSON object, or has duplicate members.
    #[error("protected header is not a valid JSON object")]
    HeaderJson,
    /// The header has a member outside the allow-list.
    #[error("header member {0:?} is not allowed")]
    MemberNotAllowed(String),
    /// A required header member is absent.
    #[error("header member {0} is missing")]
    MemberMissing(&'static str),
    /// A header member has the wrong type, length or value.
    #[error("header member {0} is invalid")]
    MemberInvalid(&'static str),
    /// The `alg` or `enc` is not one jwed implements.
    #[error("header member {0} names an unsupported algorithm")]
    UnsupportedAlgorithm(&'static str),
    /// A segment does not have the exact length the algorithms require.
    #[error("{segment} has {actual} bytes where {expected} are required")]
    SegmentLength {
        /// Which segment.
        segment: &'static str,
        /// Decoded length found.
        actual: usize,
        /// Decoded length required.
        expected: usize,
    },
    /// The ciphertext length is impossible for the content encryption.
    #[error("ciphertext length is not valid for the content encryption")]
    CiphertextLength,
}

/// Validated protected header of a compact JWE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JweHeader {
    /// Key management algorithm.
    pub alg: KeyAlg,
    /// Content encryption algorithm.
    pub enc: ContentEnc,
    /// Key id, when present.
    pub kid: Option<String>,
    /// Content type; `JWT` marks a nested JWT.
    pub cty: Option<String>,
    /// Curve of the ephemeral public key, for the ECDH-ES family.
    pub epk_curve: Option<Curve>,
}

/// A compact JWE whose shape passed every check that needs no key.
#[derive(Debug)]
pub struct CompactJwe<'a> {
    /// The token text, unchanged.
    pub text: &'a str,
    /// The validated protected header.
    pub header: JweHeader,
    /// The protected header segment as sent, which is the additional
    /// authenticated data of the content encryption.
    pub header_segment: &'a str,
    /// The decoded JWE Encrypted Key.
    pub encrypted_key: Vec<u8>,
    /// The decoded initialization vector.
    pub iv: Vec<u8>,
    /// The decoded ciphertext.
    pub ciphertext: Vec<u8>,
    /// The decoded authentication tag.
    pub tag: Vec<u8>,
}

/// Validated protected header of the nested JWS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwsHeader {
    /// Signature algorithm.
    pub alg: SigAlg,
    /// Key id, when present.
    pub kid: Option<String>,
}

/// A compact JWS whose shape passed every check that needs no key.
#[derive(Debug)]
pub struct CompactJws<'a> {
    /// The token text, unchanged.
    pub text: &'a str,
    /// The validated protected header.
    pub header: JwsHeader,
    /// Decoded length of the signature.
    pub signature_len: usize,
}

// === impl CompactJwe ===

impl<'a> CompactJwe<'a> {
    /// Checks size, segments, encoding, header and every length that `alg`
    /// and `enc` fix.
    ///
    /// # Errors
    ///
    /// Returns the first [`FormatError`] found.
    pub fn parse(text: &'a str, max_bytes: usize) -> Result<Self, FormatError> {
        let segments = split_segments::<5>(text, max_bytes)?;
        let header = {
            let raw = decode_header(segments[0])?;
            parse_jwe_header(raw)?
        };

        let encrypted_key = decode(segments[1], 1)?;
        let iv = decode(segments[2], 2)?;
        let ciphertext = decode(segments[3], 3)?;
        let tag = decode(segments[4], 4)?;

        if let Some(expected) = header.alg.encrypted_key_len(header.enc) {
            expect_len("encrypted key", encrypted_key.len(), expected)?;
        }
        expect_len("initialization vector", iv.len(), header.enc.iv_len())?;
        expect_len("authentication tag", tag.len(), header.enc.tag_len())?;
        if header.enc.is_cbc() && (ciphertext.is_empty() || ciphertext.len() % 16 != 0) {
            return Err(FormatError::CiphertextLength);
        }

        Ok(CompactJwe {
            text,
            header,
            header_segment: segments[0],
            encrypted_key,
            iv,
            ciphertext,
            tag,
        })
    }
}

// === impl CompactJws ===

impl<'a> CompactJws<'a> {
    /// Checks size, segments, encoding and header of a compact JWS.
    ///
    /// # Errors
    ///
    /// Returns the first [`FormatError`] found.
    pub fn parse(text: &'a str, max_bytes: usize) -> Result<Self, FormatError> {
        let segments = split_segments::<3>(text, max_bytes)?;
        let header = {
            let raw = decode_header(segments[0])?;
            parse_jws_header(raw)?
        };
        decoded_len(segments[1], 1)?;
        let signature_len = decoded_len(segments[2], 2)?;
        Ok(CompactJws {
            text,
            header,
            signature_len,
        })
    }
}

/// Splits `text` into exactly `N` segments, counting separators before
/// splitting so that a many-segment token costs no allocation.
fn split_segments<const N: usize>(text: &str, max_bytes: usize) -> Result<[&str; N], FormatError> {
    if text.len() > max_bytes {
        return Err(FormatError::TooLarge { max: max_bytes });
    }
    if text.bytes().filter(|&b| b == b'.').count() != N - 1 {
        return Err(FormatError::SegmentCount { expected: N });
    }

    let mut segments = [""; N];
    for (slot, segment) in segments.iter_mut().zip(text.split('.')) {
        *slot = segment;
    }
    Ok(segments)
}

fn decode(segment: &str, index: usize) -> Result<Vec<u8>, FormatError> {
    Base64UrlUnpadded::decode_vec(segment).map_err(|_| FormatError::Base64 { index })
}

fn decoded_len(segment: &str, index: usize) -> Result<usize, FormatError> {
    decode(segment, index).map(|bytes| bytes.len())
}

fn decode_header(segment: &str) -> Result<Map<String, Value>, FormatError> {
    // Base64 expands by 4/3, so this bounds the decoded header before decoding.
    if segment.len() > MAX_HEADER_BYTES.div_ceil(3) * 4 {
        return Err(FormatError::HeaderTooLarge { max: MAX_HEADER_BYTES });
    }
    let bytes = decode(segment, 0)?;
    if bytes.len() > MAX_HEADER_BYTES {
        return Err(FormatError::HeaderTooLarge { max: MAX_HEADER_BYTES });
    }
    json::parse_object(&bytes).map_err(|_| FormatError::HeaderJson)
}

fn expect_len(segment: &'static str, actual: usize, expected: usize) -> Result<(), FormatError> {
    if actual == expected {
        Ok(())
    } else {
        Err(FormatError::SegmentLength {
            segment,
            actual,
            expected,
        })
    }
}

fn check_members(header: &Map<String, Value>, allowed: &[&str]) -> Result<(), FormatError> {
    match header.keys().find(|name| !allowed.contains(&name.as_str())) {
        Some(name) => Err(FormatError::MemberNotAllowed(name.chars().take(64).collect())),
        None => Ok(()),
    }
}

fn string_member<'h>(header: &'h Map<String, Value>, name: &'static str) -> Result<Option<&'h str>, FormatError> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(value)) if !value.is_empty() && value.len() <= MAX_HEADER_STRING_BYTES => Ok(Some(value)),
        Some(_) => Err(FormatError::MemberInvalid(name)),
    }
}

fn parse_jwe_header(header: Map<String, Value>) -> Result<JweHeader, FormatError> {
    check_members(&header, JWE_MEMBERS)?;

    let alg = string_member(&header, "alg")?.ok_or(FormatError::MemberMissing("alg"))?;
    let alg: KeyAlg = alg.parse().map_err(|_| FormatError::UnsupportedAlgorithm("alg"))?;
    let enc = string_member(&header, "enc")?.ok_or(FormatError::MemberMissing("enc"))?;
    let enc: ContentEnc = enc.parse().map_err(|_| FormatError::UnsupportedAlgorithm("enc"))?;
    let kid = string_member(&header, "kid")?.map(str::to_owned);
    let cty = string_member(&header, "cty")?.map(str::to_owned);
    string_member(&header, "typ")?;

    let epk_curve = match (alg.uses_epk(), header.get("epk")) {
        (true, Some(Value::Object(epk))) => Some(parse_epk(epk)?),
        (true, None) => return Err(FormatError::MemberMissing("epk")),
        (true, Some(_)) => return Err(FormatError::MemberInvalid("epk")),
        (false, None) => None,
        (false, Some(_)) => return Err(FormatError::MemberNotAllowed("epk".into())),
    };
    for name in ["apu", "apv"] {
        check_party_info(&header, name, alg.uses_epk())?;
    }

    Ok(JweHeader {
        alg,
        enc,
        kid,
        cty,
        epk_curve,
    })
}

/// Checks an ephemeral public key: known members only, a supported curve and
/// coordinates of exactly the curve's length. Whether the point lies on the
/// curve is checked by OpenSSL when josekit imports it.
fn parse_epk(epk: &Map<String, Value>) -> Result<Curve, FormatError> {
    let invalid = FormatError::MemberInvalid("epk");
    check_members(epk, &["kty", "crv", "x", "y"]).map_err(|_| invalid.clone())?;

    let kty = epk.get("kty").and_then(Value::as_str).ok_or(invalid.clone())?;
    let crv = epk.get("crv").and_then(Value::as_str).ok_or(invalid.clone())?;
    let curve = Curve::from_jwk(kty, crv).map_err(|_| invalid.clone())?;

    let coordinate = |name: &str| -> Result<usize, FormatError> {
        let text = epk.get(name).and_then(Value::as_str).ok_or(invalid.clone())?;
        Base64UrlUnpadded::decode_vec(text)
            .map(|bytes| bytes.len())
            .map_err(|_| invalid.clone())
    };
    if coordinate("x")? != curve.coordinate_len() {
        return Err(invalid);
    }
    match (curve.is_okp(), epk.contains_key("y")) {
        (true, false) => Ok(curve),
        (false, true) if coordinate("y")? == curve.coordinate_len() => Ok(curve),
        _ => Err(invalid),
    }
}

fn check_party_info(header: &Map<String, Value>, name: &'static str, allowed: bool) -> Result<(), FormatError> {
    let Some(value) = header.get(name) else {
        return Ok(());
    };
    if !allowed {
        return Err(FormatError::MemberNotAllowed(name.into()));
    }
    let text = value.as_str().ok_or(FormatError::MemberInvalid(name))?;
    match Base64UrlUnpadded::decode_vec(text) {
        Ok(bytes) if bytes.len() <= MAX_PARTY_INFO_BYTES => Ok(()),
        _ => Err(FormatError::MemberInvalid(name)),
    }
}

fn parse_jws_header(header: Map<String, Value>) -> Result<JwsHeader, FormatError> {
    check_members(&header, JWS_MEMBERS)?;

    let alg = string_member(&header, "alg")?.ok_or(FormatError::MemberMissing("alg"))?;
    let alg: SigAlg = alg.parse().map_err(|_| FormatError::UnsupportedAlgorithm("alg"))?;
    let kid = string_member(&header, "kid")?.map(str::to_owned);
    string_member(&header, "typ")?;

    Ok(JwsHeader { alg, kid })
}

#[cfg(test)]
mod tests;
