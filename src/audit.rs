//! Audit records: one structured event per Decrypt call, whatever its
//! outcome, under the tracing target [`TARGET`].
//!
//! The fields are an allow-list: caller identity, outcome, reason, the
//! precise internal cause, key ids, algorithms, a token fingerprint, subject
//! and token id. Never the token, the claims body or key material.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::decrypt::TokenInfo;

/// Tracing target of audit records, separate from diagnostic logs.
pub const TARGET: &str = "jwed::audit";

/// Who called, as far as the transport can tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// Peer user id, from the Unix socket's kernel credentials.
    pub uid: Option<u32>,
    /// Peer process id, from the Unix socket's kernel credentials.
    pub pid: Option<i32>,
    /// Peer address, for TCP.
    pub address: Option<String>,
}

/// One Decrypt call's outcome, as the audit record states it.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// `ok` or the ErrorInfo reason.
    pub reason: &'a str,
    /// The precise internal cause of a rejection, empty when accepted.
    pub cause: String,
    /// gRPC status code name.
    pub code: tonic::Code,
    /// Time spent in the call.
    pub elapsed: Duration,
}

/// Returns a short fingerprint of a token: the first 16 bytes of its
/// SHA-256, hex-encoded. It identifies a token in the records without
/// allowing anyone to recover or replay it.
pub fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Emits the audit record of one call. `fingerprint` comes from
/// [`fingerprint`]; the token itself never reaches this function.
pub fn record(caller: &Caller, fingerprint: &str, token_len: usize, info: &TokenInfo, outcome: &Outcome<'_>) {
    tracing::info!(
        target: TARGET,
        method = "jwed.v1.Decryptor/Decrypt",
        caller.uid = caller.uid,
        caller.pid = caller.pid,
        caller.address = caller.address.as_deref(),
        outcome = if outcome.reason == "ok" { "allowed" } else { "rejected" },
        reason = outcome.reason,
        cause = outcome.cause.as_str(),
        code = ?outcome.code,
        kid = info.kid.as_deref(),
        alg = info.alg.map(|alg| alg.name()),
        enc = info.enc.map(|enc| enc.name()),
        signing_kid = info.signing_kid.as_deref(),
        signing_alg = info.signing_alg.map(|alg| alg.name()),
        token.fingerprint = fingerprint,
        token.len = token_len,
        subject = info.subject.as_deref(),
        token_id = info.token_id.as_deref(),
        duration_us = u64::try_from(outcome.elapsed.as_micros()).unwrap_or(u64::MAX),
        "Decrypt"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_short() {
        let first = fingerprint("a.b.c.d.e");
        assert_eq!(first, fingerprint("a.b.c.d.e"));
        assert_eq!(first.len(), 32);
        assert_ne!(first, fingerprint("a.b.c.d.f"));
    }
}
