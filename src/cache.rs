//! The claims cache: tokens already decrypted and verified, by the SHA-256
//! of their text.
//!
//! A hit skips the private-key operation and the signature check, not the
//! rest: [`Decrypter::revalidate`](crate::decrypt::Decrypter::revalidate)
//! checks the claims again against the request and the clock, the store
//! checks revocations again, and the call is audited as any other. So a
//! cached token is never served past its `exp`, and a request for another
//! audience or more scopes is judged on its own.
//!
//! Only a token that passed every check is stored. The cache is bounded in
//! entries (oldest out first), emptied whenever the key set, the issuer keys
//! or the revocation list change, and the claims text of every entry that
//! leaves it is wiped.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::decrypt::{Decrypted, TokenInfo};

/// Default number of entries.
pub const DEFAULT_MAX_ENTRIES: usize = 4096;

/// The SHA-256 of a token's text, the cache key.
pub type TokenDigest = [u8; 32];

/// The stored result of a verified token, returned by a hit.
#[derive(Debug)]
pub struct Cached {
    /// The claims as the issuer serialized them.
    pub claims_json: Zeroizing<String>,
    /// Key id of the decryption key that opened the token.
    pub key_id: String,
    /// Key id of the issuer key that verified it.
    pub signing_key_id: Option<String>,
    /// Token details from the first decryption, for the audit record.
    pub info: TokenInfo,
}

/// Bounded map from token digest to verified claims.
#[derive(Debug)]
pub struct ClaimsCache {
    max_entries: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every clear, so that a decryption that began under the old
    /// keys cannot store its result after the clear.
    generation: u64,
    /// Stamp of the next insertion.
    next_stamp: u64,
    entries: HashMap<TokenDigest, Entry>,
    /// Insertion order, oldest first, with each insertion's stamp; a stamp
    /// that no longer matches its entry marks a slot left by a removal.
    order: VecDeque<(TokenDigest, u64)>,
}

#[derive(Debug)]
struct Entry {
    stamp: u64,
    expires_at: i64,
    cached: Cached,
}

// === impl ClaimsCache ===

impl ClaimsCache {
    /// Creates a cache of at most `max_entries` tokens. Zero turns it off.
    pub fn new(max_entries: usize) -> Self {
        ClaimsCache {
            max_entries,
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Returns whether the cache stores anything.
    pub fn enabled(&self) -> bool {
        self.max_entries > 0
    }

    /// Returns the digest under which `token` is stored.
    pub fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    /// Returns the current generation. Read it before loading the key set
    /// and pass it to [`ClaimsCache::insert`].
    pub fn generation(&self) -> u64 {
        self.inner.lock().map_or(u64::MAX, |inner| inner.generation)
    }

    /// Returns the entry for `digest` if `now` is still before its `exp`.
    pub fn get(&self, digest: &TokenDigest, now: i64) -> Option<Cached> {
        if !self.enabled() {
            return None;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return None;
        };
        let found = match inner.entries.get(digest) {
            Some(entry) if now < entry.expires_at => Some(entry.cached.clone_out()),
            Some(_) => {
                inner.entries.remove(digest);
                None
            }
            None => None,
        };
        drop(inner);
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores a verified token until `expires_at`, unless the cache was
    /// cleared since `generation` was read.
    pub fn insert(&self, generation: u64, digest: TokenDigest, expires_at: i64, cached: Cached) {
        if !self.enabled() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.generation != generation || inner.entries.contains_key(&digest) {
            return;
        }
        while inner.entries.len() >= self.max_entries {
            inner.evict_oldest();
        }
        let stamp = inner.next_stamp;
        inner.next_stamp += 1;
        inner.order.push_back((digest, stamp));
        if inner.order.len() > 2 * self.max_entries {
            inner.compact_order();
        }
        inner.entries.insert(
            digest,
            Entry {
                stamp,
                expires_at,
                cached,
            },
        );
    }

    /// Removes every entry. A decryption in flight cannot store its result
    /// afterwards.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.generation += 1;
            inner.entries.clear();
            inner.order.clear();
        }
    }

    /// Returns the number of entries.
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |inner| inner.entries.len())
    }

    /// Returns whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the number of lookups that found a live entry, and of those
    /// that did not.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

// === impl Inner ===

impl Inner {
    fn evict_oldest(&mut self) {
        while let Some((digest, stamp)) = self.order.pop_front() {
            if self.entries.get(&digest).is_some_and(|entry| entry.stamp == stamp) {
                self.entries.remove(&digest);
                return;
            }
        }
        // Every entry has a slot in the order, so this point is not reached.
        // Clearing keeps the bound even if that were ever wrong.
        self.entries.clear();
    }

    fn compact_order(&mut self) {
        let entries = &self.entries;
        self.order
            .retain(|(digest, stamp)| entries.get(digest).is_some_and(|entry| entry.stamp == *stamp));
    }
}

// === impl Cached ===

impl Cached {
    /// Copies the parts of a verified token that the cache keeps.
    pub fn of(decrypted: &Decrypted, info: &TokenInfo) -> Self {
        Cached {
            claims_json: Zeroizing::new(decrypted.claims_json.clone()),
            key_id: decrypted.key_id.clone(),
            signing_key_id: decrypted.signing_key_id.clone(),
            info: info.clone(),
        }
    }

    fn clone_out(&self) -> Cached {
        Cached {
            claims_json: self.claims_json.clone(),
            key_id: self.key_id.clone(),
            signing_key_id: self.signing_key_id.clone(),
            info: self.info.clone(),
        }
    }
}

impl Drop for Cached {
    fn drop(&mut self) {
        // The claims text is wiped by `Zeroizing`; the subject and token id
        // are copies of two of its claims.
        self.info.subject.zeroize();
        self.info.token_id.zeroize();
    }
}

#[cfg(test)]
mod tests;
