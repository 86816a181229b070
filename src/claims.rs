//! Claim validation, done by jwed itself.
//!
//! josekit's `JwtPayloadValidator` panics on huge times and passes a token
//! without `aud`, so jwed validates claims here. Every time comparison runs
//! in `i128`, where adding a `u32` leeway to any `i64` cannot overflow.

use serde_json::{Map, Value};

/// Largest leeway accepted by configuration, in seconds.
pub const MAX_LEEWAY_SECONDS: u32 = 300;

/// Largest magnitude of a fractional NumericDate; beyond it an `f64` no
/// longer has whole-second precision.
const MAX_FRACTIONAL_TIME: f64 = 9_007_199_254_740_992.0;

/// What the claims must satisfy, from configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimsPolicy {
    /// Exact `iss` required, when set.
    pub issuer: Option<String>,
    /// Audiences this server accepts; empty means no `aud` check unless the
    /// request names one.
    pub audiences: Vec<String>,
    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds.
    pub leeway_seconds: u32,
    /// Largest accepted `exp - iat`, in seconds; when set, `iat` is required.
    pub max_lifetime_seconds: Option<u32>,
}

/// Why valid-looking claims were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// A required claim is absent.
    #[error("claim {0} is missing")]
    Missing(&'static str),
    /// A claim has the wrong JSON type or an impossible value.
    #[error("claim {0} is malformed")]
    Malformed(&'static str),
    /// `exp` plus leeway is in the past.
    #[error("token has expired")]
    Expired,
    /// `nbf` minus leeway is in the future.
    #[error("token is not valid before its nbf time")]
    NotYetValid,
    /// `iat` minus leeway is in the future.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// `exp - iat` exceeds the configured maximum.
    #[error("token lifetime exceeds {max} seconds")]
    LifetimeTooLong {
        /// The maximum in force, in seconds.
        max: u32,
    },
    /// `iss` differs from the configured issuer.
    #[error("issuer does not match")]
    IssuerMismatch,
    /// `aud` does not contain an expected audience.
    #[error("audience does not match")]
    AudienceMismatch,
    /// The request names an audience this server is not configured for.
    #[error("requested audience is not configured")]
    AudienceNotAllowed,
    /// The token lacks required scopes.
    #[error("token lacks required scopes (missing: {})", missing.len())]
    InsufficientScope {
        /// Required scopes the token does not carry; these come from the
        /// request, not from the token.
        missing: Vec<String>,
    },
}

/// Claims that passed validation, with the typed values callers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidClaims {
    /// `sub`, or `id` when `sub` is absent.
    pub subject: Option<String>,
    /// `scopes`, or the words of `scope`.
    pub scopes: Vec<String>,
    /// `iss`.
    pub issuer: Option<String>,
    /// `exp`, in seconds since the epoch.
    pub expires_at: i64,
    /// `iat`, in seconds since the epoch.
    pub issued_at: Option<i64>,
    /// `jti`.
    pub token_id: Option<String>,
}

// === impl ClaimsPolicy ===

impl ClaimsPolicy {
    /// Resolves the audiences a token must match for one request.
    ///
    /// # Errors
    ///
    /// Returns [`ClaimError::AudienceNotAllowed`] when the request names an
    /// audience outside a non-empty configured list.
    pub fn expected_audiences<'a>(&'a self, requested: Option<&'a str>) -> Result<Vec<&'a str>, ClaimError> {
        match requested {
            Some(audience) if self.audiences.is_empty() || self.audiences.iter().any(|a| a == audience) => {
                Ok(vec![audience])
            }
            Some(_) => Err(ClaimError::AudienceNotAllowed),
            None => Ok(self.audiences.iter().map(String::as_str).collect()),
        }
    }

    /// Validates `claims` at time `now` (seconds since the epoch).
    ///
    /// # Errors
    ///
    /// Returns the first [`ClaimError`], checking in this order: types,
    /// issuer, audience, times, scopes. A token from the wrong issuer thus
    /// reports the issuer even when it has also expired.
    pub fn validate(
        &self,
        claims: &Map<String, Value>,
        now: i64,
        audiences: &[&str],
        required_scopes: &[String],
    ) -> Result<ValidClaims, ClaimError> {
        let expires_at = numeric_date(claims, "exp")?.ok_or(ClaimError::Missing("exp"))?;
        let not_before = numeric_date(claims, "nbf")?;
        let issued_at = numeric_date(claims, "iat")?;
        let issuer = string_claim(claims, "iss")?;
        let subject = match string_claim(claims, "sub")? {
            Some(sub) => Some(sub),
            None => string_claim(claims, "id")?,
        };
        let token_id = string_claim(claims, "jti")?;
        let scopes = scopes(claims)?;
        let token_audiences = audience_claim(claims)?;

        if let Some(expected) = &self.issuer {
            if issuer.as_deref() != Some(expected.as_str()) {
                return Err(ClaimError::IssuerMismatch);
            }
        }
        if !audiences.is_empty() && !token_audiences.iter().any(|aud| audiences.contains(&aud.as_str())) {
            return Err(ClaimError::AudienceMismatch);
        }
        self.check_times(now, expires_at, not_before, issued_at)?;

        let missing: Vec<String> = required_scopes
            .iter()
            .filter(|s| !scopes.contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(ClaimError::InsufficientScope { missing });
        }

        Ok(ValidClaims {
            subject,
            scopes,
            issuer,
            expires_at,
            issued_at,
            token_id,
        })
    }

    fn check_times(&self, now: i64, exp: i64, nbf: Option<i64>, iat: Option<i64>) -> Result<(), ClaimError> {
        let now = i128::from(now);
        let leeway = i128::from(self.leeway_seconds);

        if now > i128::from(exp) + leeway {
            return Err(ClaimError::Expired);
        }
        if nbf.is_some_and(|nbf| i128::from(nbf) - leeway > now) {
            return Err(ClaimError::NotYetValid);
        }
        if iat.is_some_and(|iat| i128::from(iat) - leeway > now) {
            return Err(ClaimError::IssuedInFuture);
        }
        if let Some(max) = self.max_lifetime_seconds {
            let iat = iat.ok_or(ClaimError::Missing("iat"))?;
            if i128::from(exp) - i128::from(iat) > i128::from(max) {
                return Err(ClaimError::LifetimeTooLong { max });
            }
        }
        Ok(())
    }
}

/// Reads a NumericDate (RFC 7519 section 2): an integer, or a finite
/// fractional number of seconds, rounded down.
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, ClaimError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let Value::Number(number) = value else {
        return Err(ClaimError::Malformed(name));
    };
    if let Some(seconds) = number.as_i64() {
        return Ok(Some(seconds));
    }
    match number.as_f64() {
        // The range check makes the cast exact and lossless.
        Some(seconds) if seconds.is_finite() && seconds.abs() < MAX_FRACTIONAL_TIME => Ok(Some(seconds.floor() as i64)),
        _ => Err(ClaimError::Malformed(name)),
    }
}

fn string_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<String>, ClaimError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(ClaimError::Malformed(name)),
    }
}

/// Reads the `scopes` array, or else the space-separated `scope` string of
/// RFC 8693 section 4.2.
fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
    if let Some(value) = claims.get("scopes") {
        let Value::Array(items) = value else {
            return Err(ClaimError::Malformed("scopes"));
        };
        return items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or(ClaimError::Malformed("scopes")))
            .collect();
    }
    match claims.get("scope") {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(text.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect()),
        Some(_) => Err(ClaimError::Malformed("scope")),
    }
}

/// Reads `aud`, a string or an array of strings (RFC 7519 section 4.1.3).
fn audience_claim(claims: &Map<String, Value>) -> Result<Vec<String>, ClaimError> {
    match claims.get("aud") {
        None => Ok(Vec::new()),
        Some(Value::String(aud)) => Ok(vec![aud.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or(ClaimError::Malformed("aud")))
            .collect(),
        Some(_) => Err(ClaimError::Malformed("aud")),
    }
}

#[cfg(test)]
mod tests;
