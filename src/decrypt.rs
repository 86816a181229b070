//! The decryption pipeline, free of gRPC types.
//!
//! Order of work for one token: the strict front stage ([`CompactJwe`]),
//! key selection by `kid` and the key's pinned algorithm, the checks that
//! need the key (RSA ciphertext length, `epk` curve, `dir` key length),
//! decryption by josekit, then the nested JWS: its own front stage, issuer
//! key selection, signature length, verification by josekit, and finally
//! claim validation.
//!
//! Every failure before claim validation is a [`DecryptError::Invalid`]:
//! callers receive one answer for all of them, so that no caller can use
//! jwed as a padding or format oracle. The precise [`InvalidToken`] cause is
//! kept for the audit record.
//!
//! Limits of memory hygiene: the plaintext is held in [`Zeroizing`] buffers,
//! but the claims are copied into the response (`claims_json` and the
//! parsed map), which are ordinary heap memory, and josekit does not wipe
//! the content key it unwraps.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::{
    alg::{ContentEnc, KeyAlg, SigAlg},
    cache::Cached,
    claims::{ClaimError, ClaimsPolicy, ValidClaims},
    compact::{CompactJwe, CompactJws, FormatError},
    issuers::IssuerKeys,
    json,
    keys::{DecryptionKey, KeyKind, KeySet, KeyState},
    revocation::RevokedBy,
};

/// Maximum number of `required_scopes` in one request.
pub const MAX_REQUIRED_SCOPES: usize = 64;

/// Maximum length of one requested scope or audience, in bytes.
pub const MAX_REQUEST_STRING_BYTES: usize = 256;

/// Which tokens may carry plain claims instead of a signed JWT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnsignedTokens {
    /// Every token must contain a signed JWT.
    #[default]
    Reject,
    /// Tokens encrypted with a shared symmetric key may carry plain claims:
    /// only the issuer and jwed hold that key.
    SymmetricKeys,
    /// Any token may carry plain claims. Anyone holding a public encryption
    /// key can then mint tokens; meant for tests and migrations only.
    AllKeys,
}

/// Token policy from configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Largest token accepted, in bytes.
    pub max_token_bytes: usize,
    /// Content encryption algorithms accepted.
    pub content_encryption: Vec<ContentEnc>,
    /// Whether unsigned claims are accepted.
    pub unsigned: UnsignedTokens,
    /// Claim requirements.
    pub claims: ClaimsPolicy,
}

/// One decryption request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The compact JWE.
    pub token: &'a str,
    /// Audience requested by the caller, if any.
    pub audience: Option<&'a str>,
    /// Scopes the token must carry.
    pub required_scopes: &'a [String],
}

/// What was learnt about a token on its way through the pipeline, kept for
/// the audit record whatever the outcome. Holds no secret and no claim body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenInfo {
    /// Key id of the decryption key that was selected.
    pub kid: Option<String>,
    /// Key management algorithm from the header.
    pub alg: Option<KeyAlg>,
    /// Content encryption algorithm from the header.
    pub enc: Option<ContentEnc>,
    /// Key id of the issuer key that verified the signature.
    pub signing_kid: Option<String>,
    /// Signature algorithm of the nested JWT.
    pub signing_alg: Option<SigAlg>,
    /// Subject, once the claims were read.
    pub subject: Option<String>,
    /// Token id, once the claims were read.
    pub token_id: Option<String>,
}

/// Why a token was rejected before its claims could be trusted. The
/// variants are for the audit record; callers never see them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidToken {
    /// The JWE failed the front stage.
    #[error("jwe format: {0}")]
    Format(FormatError),
    /// No key has the token's `kid`.
    #[error("no key has the token's kid")]
    UnknownKey,
    /// The token's `kid` names a retired key. [`Decrypter::decrypt`] reports
    /// it as [`DecryptError::KeyRetired`], since the caller can act on it.
    #[error("the token's key is retired")]
    KeyRetired,
    /// The token has no `kid` and no single key fits it.
    #[error("token has no kid and {candidates} keys fit its alg and enc")]
    NoUniqueKey {
        /// How many keys fit.
        candidates: usize,
    },
    /// The header `alg` differs from the key's pinned algorithm.
    #[error("header alg {header} differs from the key's pinned {pinned}")]
    AlgorithmMismatch {
        /// Algorithm in the token header.
        header: KeyAlg,
        /// Algorithm the key is pinned to.
        pinned: KeyAlg,
    },
    /// The header `enc` is not in the configured allow-list.
    #[error("content encryption {0} is not enabled")]
    EncNotAllowed(ContentEnc),
    /// The token does not fit the selected key (length, curve).
    #[error("token does not fit the key: {0}")]
    KeyMismatch(&'static str),
    /// josekit rejected the token (unwrap, tag, padding or MAC failure).
    #[error("decryption failed")]
    DecryptionFailed,
    /// The payload is not a nested JWT and unsigned claims are not accepted.
    #[error("payload must be a signed JWT (header cty \"JWT\")")]
    SignatureRequired,
    /// The nested JWS failed its front stage.
    #[error("nested jws format: {0}")]
    NestedFormat(FormatError),
    /// No issuer key fits the nested JWS.
    #[error("no trusted issuer key fits the signature")]
    UnknownIssuerKey,
    /// The nested JWS `alg` differs from the issuer key's pinned algorithm.
    #[error("signature alg {header} differs from the issuer key's pinned {pinned}")]
    SignatureAlgorithmMismatch {
        /// Algorithm in the JWS header.
        header: SigAlg,
        /// Algorithm the issuer key is pinned to.
        pinned: SigAlg,
    },
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// The claims are not a UTF-8 JSON object without duplicate members.
    #[error("claims are not a valid JSON object")]
    ClaimsNotJson,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    /// The request is malformed apart from its token (scopes, audience).
    #[error("invalid request: {0}")]
    BadRequest(&'static str),
    /// The token is malformed, forged, undecryptable or not for any key.
    #[error("invalid token: {0}")]
    Invalid(#[from] InvalidToken),
    /// The claims were authentic but do not satisfy the policy.
    #[error("claims rejected: {0}")]
    Claims(#[from] ClaimError),
    /// The token names a retired key; the caller should get a new token.
    #[error("key retired")]
    KeyRetired,
    /// The token is on the revocation list; the caller should get a new one.
    #[error("token revoked by {0}")]
    Revoked(RevokedBy),
}

/// A token that passed every check. Only [`Decrypter::decrypt`] constructs
/// one, so holding a `Decrypted` proves the token was validated.
#[derive(Debug)]
#[expect(
    clippy::manual_non_exhaustive,
    reason = "the private field also keeps other modules of this crate from constructing one"
)]
pub struct Decrypted {
    /// The claims as the issuer serialized them.
    pub claims_json: String,
    /// The parsed claims.
    pub claims: Map<String, Value>,
    /// Typed claims.
    pub valid: ValidClaims,
    /// Key id of the decryption key.
    pub key_id: String,
    /// Key id of the issuer key, for signed tokens.
    pub signing_key_id: Option<String>,
    _proof: (),
}

/// A decrypted JWE payload, before any signature or claim check.
pub struct Opened<'k> {
    /// The plaintext, wiped on drop.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The key that opened it.
    pub key: &'k DecryptionKey,
    /// Whether the header marks the payload as a nested JWT.
    pub nested_jwt: bool,
}

/// Decrypts and validates tokens with one key set and one policy.
#[derive(Debug)]
pub struct Decrypter {
    keys: KeySet,
    issuers: Option<IssuerKeys>,
    policy: Policy,
}

// === impl Policy ===

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_token_bytes: crate::compact::DEFAULT_MAX_TOKEN_BYTES,
            content_encryption: ContentEnc::DEFAULT_ALLOWED.to_vec(),
            unsigned: UnsignedTokens::Reject,
            claims: ClaimsPolicy::default(),
        }
    }
}

// === impl Decrypter ===

impl Decrypter {
    /// Combines keys, trusted issuers and policy.
    pub fn new(keys: KeySet, issuers: Option<IssuerKeys>, policy: Policy) -> Self {
        Decrypter { keys, issuers, policy }
    }

    /// The decryption keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Runs the whole pipeline for one request at time `now` (seconds since
    /// the epoch), recording what it learns in `info`.
    ///
    /// # Errors
    ///
    /// Returns [`DecryptError::Invalid`] for any failure up to and including
    /// the signature, and [`DecryptError::Claims`] for a policy failure.
    pub fn decrypt(&self, request: Request<'_>, now: i64, info: &mut TokenInfo) -> Result<Decrypted, DecryptError> {
        check_request(&request)?;
        let audiences = self.policy.claims.expected_audiences(request.audience)?;

        let opened = self.open(request.token, info).map_err(|cause| match cause {
            InvalidToken::KeyRetired => DecryptError::KeyRetired,
            cause => DecryptError::Invalid(cause),
        })?;
        let (claims_bytes, signing_key_id) = if opened.nested_jwt {
            let (payload, kid) = self.verify_nested(&opened.plaintext, info)?;
            (payload, Some(kid))
        } else if self.unsigned_allowed(opened.key) {
            (opened.plaintext, None)
        } else {
            return Err(InvalidToken::SignatureRequired.into());
        };

        let claims = json::parse_object(&claims_bytes).map_err(|_| InvalidToken::ClaimsNotJson)?;
        let claims_json = String::from_utf8(claims_bytes.to_vec()).map_err(|_| InvalidToken::ClaimsNotJson)?;
        info.subject = claims
            .get("sub")
            .or_else(|| claims.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        info.token_id = claims.get("jti").and_then(Value::as_str).map(str::to_owned);

        let valid = self
            .policy
            .claims
            .validate(&claims, now, &audiences, request.required_scopes)?;
        Ok(Decrypted {
            claims_json,
            claims,
            valid,
            key_id: opened.key.kid().to_owned(),
            signing_key_id,
            _proof: (),
        })
    }

    /// Builds the result for a token found in the claims cache: the request
    /// and the claims are checked again, at `now`, exactly as
    /// [`Decrypter::decrypt`] checks them, and the key must still be in the
    /// set and not retired.
    ///
    /// # Errors
    ///
    /// Returns the [`DecryptError`] that [`Decrypter::decrypt`] would return
    /// for the same request at `now`.
    pub fn revalidate(
        &self,
        cached: &Cached,
        request: Request<'_>,
        now: i64,
        info: &mut TokenInfo,
    ) -> Result<Decrypted, DecryptError> {
        check_request(&request)?;
        let audiences = self.policy.claims.expected_audiences(request.audience)?;
        info.clone_from(&cached.info);
        match self.keys.get(&cached.key_id) {
            Some(key) if key.state() == KeyState::Retired => return Err(DecryptError::KeyRetired),
            Some(_) => {}
            None => return Err(InvalidToken::UnknownKey.into()),
        }
        let claims = json::parse_object(cached.claims_json.as_bytes()).map_err(|_| InvalidToken::ClaimsNotJson)?;
        let valid = self
            .policy
            .claims
            .validate(&claims, now, &audiences, request.required_scopes)?;
        Ok(Decrypted {
            claims_json: cached.claims_json.as_str().to_owned(),
            claims,
            valid,
            key_id: cached.key_id.clone(),
            signing_key_id: cached.signing_key_id.clone(),
            _proof: (),
        })
    }

    /// Decrypts a JWE without looking at its payload: the front stage, key
    /// selection and josekit. Used by [`Decrypter::decrypt`] and by tests
    /// against published JWE vectors whose payloads are not JWTs.
    ///
    /// # Errors
    ///
    /// Returns the precise [`InvalidToken`] cause.
    pub fn open<'k>(&'k self, token: &str, info: &mut TokenInfo) -> Result<Opened<'k>, InvalidToken> {
        let jwe = CompactJwe::parse(token, self.policy.max_token_bytes).map_err(InvalidToken::Format)?;
        let header = &jwe.header;
        info.alg = Some(header.alg);
        info.enc = Some(header.enc);

        if !self.policy.content_encryption.contains(&header.enc) {
            return Err(InvalidToken::EncNotAllowed(header.enc));
        }
        let key = self.select_key(&jwe).inspect_err(|cause| {
            if *cause == InvalidToken::KeyRetired {
                info.kid.clone_from(&header.kid);
            }
        })?;
        info.kid = Some(key.kid().to_owned());
        check_fit(&jwe, key)?;

        let plaintext = match key.rsa_private_key() {
            Some(rsa) => crate::oaep::decrypt(rsa, key.alg(), &jwe).map_err(|_| InvalidToken::DecryptionFailed)?,
            None => {
                let (plaintext, _) = josekit::jwe::deserialize_compact(jwe.text, key.decrypter())
                    .map_err(|_| InvalidToken::DecryptionFailed)?;
                Zeroizing::new(plaintext)
            }
        };
        // RFC 7515 section 4.1.10: media types compare case-insensitively and
        // the "application/" prefix may be left out.
        let nested_jwt = header
            .cty
            .as_deref()
            .is_some_and(|cty| cty.eq_ignore_ascii_case("JWT") || cty.eq_ignore_ascii_case("application/JWT"));
        Ok(Opened {
            plaintext,
            key,
            nested_jwt,
        })
    }

    fn select_key(&self, jwe: &CompactJwe<'_>) -> Result<&DecryptionKey, InvalidToken> {
        let header = &jwe.header;
        let key = match &header.kid {
            Some(kid) => match self.keys.get(kid) {
                Some(key) if key.state() == KeyState::Retired => return Err(InvalidToken::KeyRetired),
                Some(key) => key,
                None => return Err(InvalidToken::UnknownKey),
            },
            None => {
                let mut candidates = self.keys.iter().filter(|key| {
                    key.state() != KeyState::Retired && key.alg() == header.alg && key.fits_enc(header.enc)
                });
                match (candidates.next(), candidates.count()) {
                    (Some(key), 0) => key,
                    (None, _) => return Err(InvalidToken::NoUniqueKey { candidates: 0 }),
                    (Some(_), others) => return Err(InvalidToken::NoUniqueKey { candidates: others + 1 }),
                }
            }
        };
        if key.alg() != header.alg {
            return Err(InvalidToken::AlgorithmMismatch {
                header: header.alg,
                pinned: key.alg(),
            });
        }
        Ok(key)
    }

    fn unsigned_allowed(&self, key: &DecryptionKey) -> bool {
        match self.policy.unsigned {
            UnsignedTokens::Reject => false,
            UnsignedTokens::SymmetricKeys => key.alg().is_symmetric(),
            UnsignedTokens::AllKeys => true,
        }
    }

    /// Verifies the nested JWS and returns its payload and the issuer key id.
    fn verify_nested(
        &self,
        plaintext: &[u8],
        info: &mut TokenInfo,
    ) -> Result<(Zeroizing<Vec<u8>>, String), InvalidToken> {
        let issuers = self.issuers.as_ref().ok_or(InvalidToken::UnknownIssuerKey)?;
        let text =
            std::str::from_utf8(plaintext).map_err(|_| InvalidToken::NestedFormat(FormatError::Base64 { index: 0 }))?;
        let jws = CompactJws::parse(text, self.policy.max_token_bytes).map_err(InvalidToken::NestedFormat)?;
        info.signing_alg = Some(jws.header.alg);

        let key = match &jws.header.kid {
            Some(kid) => issuers.get(kid).ok_or(InvalidToken::UnknownIssuerKey)?,
            None => {
                let mut candidates = issuers.iter().filter(|key| key.alg() == jws.header.alg);
                match (candidates.next(), candidates.next()) {
                    (Some(key), None) => key,
                    _ => return Err(InvalidToken::UnknownIssuerKey),
                }
            }
        };
        info.signing_kid = Some(key.kid().to_owned());
        if key.alg() != jws.header.alg {
            return Err(InvalidToken::SignatureAlgorithmMismatch {
                header: jws.header.alg,
                pinned: key.alg(),
            });
        }
        if jws.signature_len != key.signature_len() {
            return Err(InvalidToken::BadSignature);
        }

        let (payload, _) =
            josekit::jws::deserialize_compact(jws.text, key.verifier()).map_err(|_| InvalidToken::BadSignature)?;
        Ok((Zeroizing::new(payload), key.kid().to_owned()))
    }
}

/// Checks the parts of a token that depend on the selected key.
fn check_fit(jwe: &CompactJwe<'_>, key: &DecryptionKey) -> Result<(), InvalidToken> {
    match key.kind() {
        KeyKind::Rsa { modulus_len } if jwe.encrypted_key.len() != modulus_len => Err(InvalidToken::KeyMismatch(
            "encrypted key length differs from the RSA modulus length",
        )),
        KeyKind::Ec(curve) if jwe.header.epk_curve != Some(curve) => {
            Err(InvalidToken::KeyMismatch("epk curve differs from the key's curve"))
        }
        KeyKind::Oct { .. } if !key.fits_enc(jwe.header.enc) => Err(InvalidToken::KeyMismatch(
            "dir key length differs from the content key length",
        )),
        _ => Ok(()),
    }
}

fn check_request(request: &Request<'_>) -> Result<(), DecryptError> {
    if request.required_scopes.len() > MAX_REQUIRED_SCOPES {
        return Err(DecryptError::BadRequest("more than 64 required scopes"));
    }
    let too_long = |s: &str| s.is_empty() || s.len() > MAX_REQUEST_STRING_BYTES;
    if request.required_scopes.iter().any(|s| too_long(s)) || request.audience.is_some_and(too_long) {
        return Err(DecryptError::BadRequest(
            "a required scope or the audience is empty or longer than 256 bytes",
        ));
    }
    Ok(())
}

impl FromStr for UnsignedTokens {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "reject" => Ok(UnsignedTokens::Reject),
            "symmetric-keys" => Ok(UnsignedTokens::SymmetricKeys),
            "all-keys" => Ok(UnsignedTokens::AllKeys),
            _ => Err("expected reject, symmetric-keys or all-keys".into()),
        }
    }
}

#[cfg(test)]
mod tests;
