//! The one table that turns a [`DecryptError`] into a gRPC status.
//!
//! Each status carries a `google.rpc.ErrorInfo` in domain [`DOMAIN`] whose
//! `reason` is the stable code callers branch on. Messages are fixed
//! strings: they never contain the token, a claim value, key material or an
//! error text from a library. Mapping has no side effects; the caller logs.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{claims::ClaimError, decrypt::DecryptError};

/// ErrorInfo domain of every jwed error.
pub const DOMAIN: &str = "jwed";

/// ErrorInfo metadata key set to `"true"` when the caller should send its
/// user to obtain a new token.
pub const REFRESH_REQUIRED: &str = "refresh_required";

/// Stable reason codes, as they appear in `ErrorInfo.reason`.
pub mod reason {
    /// Malformed, forged, undecryptable, unknown key, forbidden algorithm or
    /// bad signature. One reason for all, so that no caller can tell them apart.
    pub const TOKEN_INVALID: &str = "TOKEN_INVALID";
    /// `exp` has passed. Refresh required.
    pub const TOKEN_EXPIRED: &str = "TOKEN_EXPIRED";
    /// The token's key was retired by the operator. Refresh required.
    pub const KEY_RETIRED: &str = "KEY_RETIRED";
    /// The token is on the revocation list. Refresh required.
    pub const TOKEN_REVOKED: &str = "TOKEN_REVOKED";
    /// `nbf` or `iat` is in the future.
    pub const TOKEN_NOT_YET_VALID: &str = "TOKEN_NOT_YET_VALID";
    /// `exp - iat` exceeds the configured maximum lifetime.
    pub const TOKEN_LIFETIME_TOO_LONG: &str = "TOKEN_LIFETIME_TOO_LONG";
    /// A required claim is missing or has the wrong type.
    pub const CLAIMS_INVALID: &str = "CLAIMS_INVALID";
    /// `iss` is not the configured issuer.
    pub const ISSUER_MISMATCH: &str = "ISSUER_MISMATCH";
    /// `aud` does not contain the expected audience.
    pub const AUDIENCE_MISMATCH: &str = "AUDIENCE_MISMATCH";
    /// The request names an audience the server is not configured for.
    pub const AUDIENCE_NOT_ALLOWED: &str = "AUDIENCE_NOT_ALLOWED";
    /// The token lacks a required scope.
    pub const INSUFFICIENT_SCOPE: &str = "INSUFFICIENT_SCOPE";
    /// The request is malformed apart from its token.
    pub const REQUEST_INVALID: &str = "REQUEST_INVALID";
    /// Too many calls are waiting for a private-key operation; retry later.
    pub const OVERLOADED: &str = "OVERLOADED";
    /// The call did not finish within its deadline.
    pub const DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";
    /// The call failed inside jwed; the server keeps serving.
    pub const INTERNAL: &str = "INTERNAL";
    /// The caller's identity is not allowed to use this call.
    pub const CALLER_NOT_ALLOWED: &str = "CALLER_NOT_ALLOWED";
    /// The audit record cannot be written, and jwed fails closed.
    pub const AUDIT_UNAVAILABLE: &str = "AUDIT_UNAVAILABLE";
}

/// Every reason code, for code that receives one as text.
pub const ALL_REASONS: [&str; 17] = [
    reason::TOKEN_INVALID,
    reason::TOKEN_EXPIRED,
    reason::KEY_RETIRED,
    reason::TOKEN_REVOKED,
    reason::TOKEN_NOT_YET_VALID,
    reason::TOKEN_LIFETIME_TOO_LONG,
    reason::CLAIMS_INVALID,
    reason::ISSUER_MISMATCH,
    reason::AUDIENCE_MISMATCH,
    reason::AUDIENCE_NOT_ALLOWED,
    reason::INSUFFICIENT_SCOPE,
    reason::REQUEST_INVALID,
    reason::OVERLOADED,
    reason::DEADLINE_EXCEEDED,
    reason::INTERNAL,
    reason::CALLER_NOT_ALLOWED,
    reason::AUDIT_UNAVAILABLE,
];

/// Returns the reason code equal to `text`, or `INTERNAL` for any other
/// text.
pub fn reason_name(text: &str) -> &'static str {
    ALL_REASONS
        .iter()
        .copied()
        .find(|name| *name == text)
        .unwrap_or(reason::INTERNAL)
}

/// Failures of the service itself rather than of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The queue for private-key operations is full.
    #[error("overloaded: the decrypt queue is full")]
    Overloaded,
    /// The call's deadline passed before it finished.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The call panicked.
    #[error("panic inside the call")]
    Panicked,
    /// The caller may not use this call.
    #[error("caller not allowed")]
    CallerNotAllowed,
    /// The request is malformed.
    #[error("invalid request: {0}")]
    BadRequest(&'static str),
    /// The audit record could not be written in fail-closed mode.
    #[error("audit record cannot be written")]
    AuditUnavailable,
}

/// Status code, reason and fixed message for one error.
pub fn classify(error: &DecryptError) -> (Code, &'static str, &'static str) {
    use reason::*;

    match error {
        DecryptError::Invalid(_) => (Code::Unauthenticated, TOKEN_INVALID, "token is invalid"),
        DecryptError::KeyRetired => (
            Code::Unauthenticated,
            KEY_RETIRED,
            "token key is retired; obtain a new token",
        ),
        DecryptError::Revoked(_) => (
            Code::Unauthenticated,
            TOKEN_REVOKED,
            "token is revoked; obtain a new token",
        ),
        DecryptError::BadRequest(_) => (Code::InvalidArgument, REQUEST_INVALID, "request is invalid"),
        DecryptError::Claims(claim) => match claim {
            ClaimError::Expired => (Code::Unauthenticated, TOKEN_EXPIRED, "token has expired"),
            ClaimError::NotYetValid | ClaimError::IssuedInFuture => {
                (Code::Unauthenticated, TOKEN_NOT_YET_VALID, "token is not valid yet")
            }
            ClaimError::LifetimeTooLong { .. } => (
                Code::Unauthenticated,
                TOKEN_LIFETIME_TOO_LONG,
                "token lifetime exceeds the configured maximum",
            ),
            ClaimError::Missing(_) | ClaimError::Malformed(_) => (
                Code::Unauthenticated,
                CLAIMS_INVALID,
                "token claims are missing or malformed",
            ),
            ClaimError::IssuerMismatch => (Code::Unauthenticated, ISSUER_MISMATCH, "token issuer is not trusted"),
            ClaimError::AudienceMismatch => (
                Code::Unauthenticated,
                AUDIENCE_MISMATCH,
                "token is not issued for this audience",
            ),
            ClaimError::AudienceNotAllowed => (
                Code::PermissionDenied,
                AUDIENCE_NOT_ALLOWED,
                "requested audience is not configured on this server",
            ),
            ClaimError::InsufficientScope { .. } => (
                Code::PermissionDenied,
                INSUFFICIENT_SCOPE,
                "token lacks a required scope",
            ),
        },
    }
}

/// Whether the caller should obtain a new token.
pub fn refresh_required(error: &DecryptError) -> bool {
    matches!(
        error,
        DecryptError::Claims(ClaimError::Expired) | DecryptError::KeyRetired | DecryptError::Revoked(_)
    )
}

/// Status code, reason and fixed message for a service failure.
pub fn classify_service(error: ServiceError) -> (Code, &'static str, &'static str) {
    match error {
        ServiceError::Overloaded => (
            Code::ResourceExhausted,
            reason::OVERLOADED,
            "server is overloaded; retry with backoff",
        ),
        ServiceError::DeadlineExceeded => (Code::DeadlineExceeded, reason::DEADLINE_EXCEEDED, "deadline exceeded"),
        ServiceError::Panicked => (Code::Internal, reason::INTERNAL, "internal error"),
        ServiceError::CallerNotAllowed => (
            Code::PermissionDenied,
            reason::CALLER_NOT_ALLOWED,
            "caller is not allowed to use this call",
        ),
        ServiceError::BadRequest(_) => (Code::InvalidArgument, reason::REQUEST_INVALID, "request is invalid"),
        ServiceError::AuditUnavailable => (
            Code::Unavailable,
            reason::AUDIT_UNAVAILABLE,
            "audit log cannot be written; retry later",
        ),
    }
}

/// Builds the gRPC status for a service failure.
pub fn service_status(error: ServiceError) -> Status {
    let (code, reason, message) = classify_service(error);
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, DOMAIN, HashMap::new()),
    )
}

/// Builds the gRPC status for `error`.
pub fn to_status(error: &DecryptError) -> Status {
    let (code, reason, message) = classify(error);

    let mut metadata = HashMap::new();
    if refresh_required(error) {
        metadata.insert(REFRESH_REQUIRED.to_owned(), "true".to_owned());
    }
    match error {
        DecryptError::Claims(ClaimError::Missing(claim) | ClaimError::Malformed(claim)) => {
            metadata.insert("claim".to_owned(), (*claim).to_owned());
        }
        DecryptError::Claims(ClaimError::LifetimeTooLong { max }) => {
            metadata.insert("max_lifetime_seconds".to_owned(), max.to_string());
        }
        // Scope names come from the caller's own request, not from the token.
        DecryptError::Claims(ClaimError::InsufficientScope { missing }) => {
            metadata.insert("missing_scopes".to_owned(), missing.join(" "));
        }
        _ => {}
    }

    // A malformed request is the caller's own input, so its precise cause
    // is safe to return.
    let message = match error {
        DecryptError::BadRequest(detail) => format!("{message}: {detail}"),
        _ => message.to_owned(),
    };
    Status::with_error_details(code, message, ErrorDetails::with_error_info(reason, DOMAIN, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compact::FormatError, decrypt::InvalidToken};

    fn reason_of(status: &Status) -> String {
        status
            .get_error_details()
            .error_info()
            .expect("error info")
            .reason
            .clone()
    }

    #[test]
    fn every_invalid_cause_gets_the_same_status() {
        let causes = [
            InvalidToken::Format(FormatError::SegmentCount { expected: 5 }),
            InvalidToken::UnknownKey,
            InvalidToken::DecryptionFailed,
            InvalidToken::BadSignature,
            InvalidToken::KeyMismatch("epk curve differs from the key's curve"),
            InvalidToken::SignatureRequired,
        ];
        let statuses: Vec<Status> = causes
            .into_iter()
            .map(|c| to_status(&DecryptError::Invalid(c)))
            .collect();
        for status in &statuses {
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(status.message(), "token is invalid");
            assert_eq!(reason_of(status), reason::TOKEN_INVALID);
            assert_eq!(status.details(), statuses[0].details());
        }
    }

    #[test]
    fn expired_token_requires_refresh() {
        let status = to_status(&DecryptError::Claims(ClaimError::Expired));
        let info = status.get_error_details().error_info().cloned().expect("error info");
        assert_eq!(info.reason, reason::TOKEN_EXPIRED);
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(info.metadata.get(REFRESH_REQUIRED).map(String::as_str), Some("true"));
    }

    #[test]
    fn missing_scope_is_permission_denied() {
        let error = DecryptError::Claims(ClaimError::InsufficientScope {
            missing: vec!["orders:write".into()],
        });
        let status = to_status(&error);
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(reason_of(&status), reason::INSUFFICIENT_SCOPE);
    }
}
