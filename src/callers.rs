//! The optional caller policy: which callers may use Decrypt, and with
//! which audiences and decryption keys.
//!
//! With no rule configured every caller that can reach a listener may call.
//! With rules, a caller must match one, by Unix user id on the socket or by
//! mTLS client certificate (a URI SAN such as a SPIFFE ID, or the subject).
//! It may then name only the rule's audiences and use only tokens of the
//! rule's keys, when the rule lists any.

use serde::Deserialize;

use crate::audit::Caller;

/// One `[[callers]]` rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerRule {
    /// Unix user id, from the socket's kernel credentials.
    pub uid: Option<u32>,
    /// URI subject alternative name of the client certificate.
    pub certificate_uri: Option<String>,
    /// Subject of the client certificate, as `O=...,CN=...`.
    pub certificate_subject: Option<String>,
    /// Audiences the caller may name; empty means any configured audience.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Decryption key ids whose tokens the caller may decrypt; empty means any.
    #[serde(default)]
    pub key_ids: Vec<String>,
}

/// The rules, in configuration order; empty allows every caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerPolicy {
    rules: Vec<CallerRule>,
}

/// Why the policy refused a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No rule names this caller.
    #[error("no caller rule matches")]
    Unknown,
    /// The caller named an audience its rule does not list, or none while
    /// its rule lists some.
    #[error("caller may not use this audience")]
    Audience,
    /// The token's key is not one of the rule's keys.
    #[error("caller may not use this decryption key")]
    Key,
}

// === impl CallerRule ===

impl CallerRule {
    /// Whether the rule names at least one identity.
    pub fn has_identity(&self) -> bool {
        self.uid.is_some() || self.certificate_uri.is_some() || self.certificate_subject.is_some()
    }

    fn matches(&self, caller: &Caller) -> bool {
        let uid = self.uid.is_none_or(|uid| caller.uid == Some(uid));
        let uri = self
            .certificate_uri
            .as_ref()
            .is_none_or(|uri| caller.cert_uris.contains(uri));
        let subject = self
            .certificate_subject
            .as_ref()
            .is_none_or(|subject| caller.cert_subject.as_ref() == Some(subject));
        self.has_identity() && uid && uri && subject
    }
}

// === impl CallerPolicy ===

impl CallerPolicy {
    /// A policy of `rules`.
    pub fn new(rules: Vec<CallerRule>) -> Self {
        CallerPolicy { rules }
    }

    /// Finds the caller's rule and checks the requested audience.
    ///
    /// # Errors
    ///
    /// Returns [`Refusal::Unknown`] or [`Refusal::Audience`].
    pub fn admit(&self, caller: &Caller, audience: &str) -> Result<Option<&CallerRule>, Refusal> {
        if self.rules.is_empty() {
            return Ok(None);
        }
        let rule = self
            .rules
            .iter()
            .find(|rule| rule.matches(caller))
            .ok_or(Refusal::Unknown)?;
        if !rule.audiences.is_empty() && !rule.audiences.iter().any(|allowed| allowed == audience) {
            return Err(Refusal::Audience);
        }
        Ok(Some(rule))
    }
}

/// Checks the key that opened a token against the caller's rule.
///
/// # Errors
///
/// Returns [`Refusal::Key`].
pub fn check_key(rule: Option<&CallerRule>, key_id: &str) -> Result<(), Refusal> {
    match rule {
        Some(rule) if !rule.key_ids.is_empty() && !rule.key_ids.iter().any(|allowed| allowed == key_id) => {
            Err(Refusal::Key)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket_caller(uid: u32) -> Caller {
        Caller {
            uid: Some(uid),
            ..Caller::default()
        }
    }

    #[test]
    fn empty_policy_admits_everyone() {
        assert_eq!(CallerPolicy::default().admit(&socket_caller(5), ""), Ok(None));
    }

    #[test]
    fn rules_match_uid_or_certificate() {
        let policy = CallerPolicy::new(vec![
            CallerRule {
                uid: Some(1000),
                audiences: vec!["orders-api".into()],
                ..CallerRule::default()
            },
            CallerRule {
                certificate_uri: Some("spiffe://t/a".into()),
                key_ids: vec!["k1".into()],
                ..CallerRule::default()
            },
        ]);
        assert!(policy.admit(&socket_caller(1000), "orders-api").is_ok());
        assert_eq!(
            policy.admit(&socket_caller(1000), "billing-api"),
            Err(Refusal::Audience)
        );
        assert_eq!(policy.admit(&socket_caller(1000), ""), Err(Refusal::Audience));
        assert_eq!(policy.admit(&socket_caller(1001), "orders-api"), Err(Refusal::Unknown));

        let mtls = Caller {
            cert_uris: vec!["spiffe://t/a".into()],
            ..Caller::default()
        };
        let rule = policy.admit(&mtls, "").expect("admitted");
        assert_eq!(check_key(rule, "k1"), Ok(()));
        assert_eq!(check_key(rule, "k2"), Err(Refusal::Key));
    }

    #[test]
    fn rule_without_identity_matches_nobody() {
        let policy = CallerPolicy::new(vec![CallerRule::default()]);
        assert_eq!(policy.admit(&socket_caller(0), ""), Err(Refusal::Unknown));
    }
}
