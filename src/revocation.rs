//! The revocation list: tokens revoked by token id (`jti`), by subject
//! (tokens issued before a time) and by decryption key id.
//!
//! File format (JSON), every member optional:
//!
//! ```json
//! {
//!   "tokens": ["5f1c0e2a-jti"],
//!   "subjects": { "user-42": 1796400000 },
//!   "keys": ["jwed-2026-11"]
//! }
//! ```
//!
//! A subject entry revokes that subject's tokens whose `iat` is before the
//! given time (seconds since the epoch); a token without `iat` counts as
//! issued before it. That is how a change to a user's permissions forces
//! their clients to refresh.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    path::Path,
};

use serde::Deserialize;

use crate::decrypt::Decrypted;

/// Largest number of entries in one revocation list.
pub const MAX_ENTRIES: usize = 100_000;

/// Which entry revoked a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokedBy {
    /// The token's `jti` is listed.
    TokenId,
    /// The token's subject is listed with a later time than its `iat`.
    Subject,
    /// The decryption key that opened the token is listed.
    Key,
}

/// Tokens that must be rejected although they are valid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationList {
    /// Revoked token ids.
    #[serde(default)]
    pub tokens: HashSet<String>,
    /// Subjects whose tokens issued before the time are revoked.
    #[serde(default)]
    pub subjects: HashMap<String, i64>,
    /// Decryption key ids whose tokens are revoked.
    #[serde(default)]
    pub keys: HashSet<String>,
}

// === impl RevocationList ===

impl RevocationList {
    /// Reads a revocation list file.
    ///
    /// # Errors
    ///
    /// Returns a message naming the file when it is unreadable, too large or
    /// not a valid list.
    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes = crate::jwk::read_limited(path).map_err(|err| err.to_string())?;
        Self::parse(&bytes).map_err(|reason| format!("{}: {reason}", path.display()))
    }

    /// Parses revocation list JSON.
    ///
    /// # Errors
    ///
    /// Returns serde_json's message, or the entry limit.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let list: RevocationList =
            serde_json::from_slice(bytes).map_err(|err| format!("not a valid revocation list: {err}"))?;
        if list.len() > MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        Ok(list)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.tokens.len() + self.subjects.len() + self.keys.len()
    }

    /// Whether the list has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every entry of `other`; a subject listed in both keeps the
    /// later time.
    pub fn merge(&mut self, other: &RevocationList) {
        self.tokens.extend(other.tokens.iter().cloned());
        self.keys.extend(other.keys.iter().cloned());
        for (subject, &before) in &other.subjects {
            let entry = self.subjects.entry(subject.clone()).or_insert(before);
            *entry = (*entry).max(before);
        }
    }

    /// Checks a validated token against the list.
    ///
    /// # Errors
    ///
    /// Returns the entry kind that revokes it.
    pub fn check(&self, token: &Decrypted) -> Result<(), RevokedBy> {
        if self.keys.contains(&token.key_id) {
            return Err(RevokedBy::Key);
        }
        if token
            .valid
            .token_id
            .as_ref()
            .is_some_and(|jti| self.tokens.contains(jti))
        {
            return Err(RevokedBy::TokenId);
        }
        let subject_before = token
            .valid
            .subject
            .as_ref()
            .and_then(|subject| self.subjects.get(subject));
        if let Some(&before) = subject_before {
            if token.valid.issued_at.is_none_or(|iat| iat < before) {
                return Err(RevokedBy::Subject);
            }
        }
        Ok(())
    }
}

impl fmt::Display for RevokedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevokedBy::TokenId => "token id",
            RevokedBy::Subject => "subject",
            RevokedBy::Key => "key id",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_rejects_unknown_members() {
        let list = RevocationList::parse(br#"{"tokens":["a"],"subjects":{"u":5},"keys":["k"]}"#).unwrap();
        assert_eq!(list.len(), 3);
        assert!(RevocationList::parse(br#"{"token":["a"]}"#).is_err());
        assert!(RevocationList::parse(b"{}").unwrap().is_empty());
    }

    #[test]
    fn merge_keeps_the_later_subject_time() {
        let mut list = RevocationList::parse(br#"{"subjects":{"u":5,"v":9}}"#).unwrap();
        list.merge(&RevocationList::parse(br#"{"subjects":{"u":7,"v":1},"tokens":["t"]}"#).unwrap());
        assert_eq!(list.subjects["u"], 7);
        assert_eq!(list.subjects["v"], 9);
        assert!(list.tokens.contains("t"));
    }
}
