//! The key store: the decrypter in force, reloaded from its files without a
//! restart.
//!
//! The store re-reads the private key set, the issuer keys and the
//! revocation list on a timer and on SIGHUP, and compares a SHA-256 digest
//! of their bytes with the last one. Reading by path follows symlinks, so
//! Kubernetes' atomic swap of a mounted volume's `..data` link is seen as
//! a change like any plain rewrite. A change that does not load (a missing,
//! unreadable, half-written or invalid file, or a key that fails its
//! self-check) leaves the last good set in force and is reported in the
//! log and by [`KeyStore::status`].

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{
    alg::KeyAlg,
    cache::{Cached, ClaimsCache},
    decrypt::{self, DecryptError, Decrypted, Decrypter, Policy, TokenInfo},
    issuers::IssuerKeys,
    jwk::{self, RawJwkSet},
    keys::KeySet,
    revocation::RevocationList,
    service::Decrypt,
};

/// The files the store loads.
#[derive(Clone, Debug)]
pub struct Sources {
    /// Private JWK Set.
    pub private_keys: PathBuf,
    /// Trusted issuer public JWK Set.
    pub issuer_keys: Option<PathBuf>,
    /// Revocation list.
    pub revocations: Option<PathBuf>,
    /// Algorithm pins by key id.
    pub key_algorithms: HashMap<String, KeyAlg>,
}

/// What one check for changes did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The files are as they were.
    Unchanged,
    /// A new set is in force.
    Reloaded,
    /// The files changed but did not load; the last good set stays.
    Failed(String),
}

/// Reload state, for status calls and tests.
#[derive(Clone, Debug)]
pub struct ReloadStatus {
    /// When the set in force was loaded.
    pub loaded_at: SystemTime,
    /// Successful reloads since start.
    pub reloads: u64,
    /// Failed reloads since start.
    pub failures: u64,
    /// The last failure's message and time, cleared by a successful reload.
    pub last_error: Option<(String, SystemTime)>,
}

/// Keys, issuers and revocations in force, swapped as a whole on reload.
struct Active {
    decrypter: Decrypter,
    revocations: RevocationList,
}

/// The decrypter in force and how it is kept current.
pub struct KeyStore {
    sources: Option<Sources>,
    policy: Policy,
    active: ArcSwap<Active>,
    admin_revocations: RwLock<RevocationList>,
    status: Mutex<(ReloadStatus, [u8; 32])>,
    cache: ClaimsCache,
}

// === impl KeyStore ===

impl KeyStore {
    /// Loads every source and self-checks the keys.
    ///
    /// # Errors
    ///
    /// Returns a message naming the file and problem.
    pub fn load(sources: Sources, policy: Policy) -> Result<Self, String> {
        let (contents, digest) = read_sources(&sources)?;
        let active = build(&sources, &policy, &contents)?;
        let status = ReloadStatus {
            loaded_at: SystemTime::now(),
            reloads: 0,
            failures: 0,
            last_error: None,
        };
        Ok(KeyStore {
            sources: Some(sources),
            policy,
            active: ArcSwap::from_pointee(active),
            admin_revocations: RwLock::new(RevocationList::default()),
            status: Mutex::new((status, digest)),
            cache: ClaimsCache::new(0),
        })
    }

    /// A store around one decrypter that never reloads, for the demo and
    /// tests.
    pub fn fixed(decrypter: Decrypter) -> Self {
        let policy = decrypter.policy().clone();
        let status = ReloadStatus {
            loaded_at: SystemTime::now(),
            reloads: 0,
            failures: 0,
            last_error: None,
        };
        KeyStore {
            sources: None,
            policy,
            active: ArcSwap::from_pointee(Active {
                decrypter,
                revocations: RevocationList::default(),
            }),
            admin_revocations: RwLock::new(RevocationList::default()),
            status: Mutex::new((status, [0; 32])),
            cache: ClaimsCache::new(0),
        }
    }

    /// Keeps up to `max_entries` verified tokens in the claims cache; zero,
    /// the default, keeps none.
    #[must_use]
    pub fn with_cache(mut self, max_entries: usize) -> Self {
        self.cache = ClaimsCache::new(max_entries);
        self
    }

    /// Returns the claims cache.
    pub fn cache(&self) -> &ClaimsCache {
        &self.cache
    }

    /// Re-reads the sources and swaps in a new set when they changed and
    /// load. Calls in flight keep the set they started with.
    pub fn check_for_changes(&self) -> Reload {
        let Some(sources) = &self.sources else {
            return Reload::Unchanged;
        };
        let previous = self.status.lock().map(|guard| guard.1).unwrap_or([0; 32]);
        let loaded = read_sources(sources).and_then(|(contents, digest)| {
            if digest == previous {
                return Ok(None);
            }
            build(sources, &self.policy, &contents).map(|active| Some((active, digest)))
        });

        let Ok(mut status) = self.status.lock() else {
            return Reload::Failed("reload state is poisoned".into());
        };
        match loaded {
            Ok(None) => {
                // The files are back to the set in force, after a failure.
                if status.0.last_error.take().is_some() {
                    tracing::info!("Key files are valid again and match the keys in force");
                }
                Reload::Unchanged
            }
            Ok(Some((active, digest))) => {
                let kids: Vec<String> = active
                    .decrypter
                    .keys()
                    .iter()
                    .map(|key| format!("{}:{}", key.kid(), crate::admin::state_name(key.state())))
                    .collect();
                tracing::info!(
                    keys = %kids.join(" "),
                    revocations = active.revocations.len(),
                    private_keys = %sources.private_keys.display(),
                    "Reloaded keys, issuer keys and revocations"
                );
                self.active.store(Arc::new(active));
                // After the store: a call that loaded the old set read the
                // old generation and cannot refill the cache.
                self.cache.clear();
                status.0.loaded_at = SystemTime::now();
                status.0.reloads += 1;
                status.0.last_error = None;
                status.1 = digest;
                Reload::Reloaded
            }
            Err(message) => {
                // A file that stays broken is reported once at warn, then at
                // debug on every later check.
                let repeated = status.0.last_error.as_ref().is_some_and(|(last, _)| *last == message);
                if repeated {
                    tracing::debug!(error = %message, "Key reload still failing; keeping the last good keys");
                } else {
                    tracing::warn!(error = %message, "Key reload failed; keeping the last good keys");
                    status.0.failures += 1;
                }
                status.0.last_error = Some((message.clone(), SystemTime::now()));
                Reload::Failed(message)
            }
        }
    }

    /// The reload state.
    pub fn status(&self) -> Option<ReloadStatus> {
        self.status.lock().ok().map(|guard| guard.0.clone())
    }

    /// Adds revocations made through the admin call. They are kept in
    /// memory, in addition to the file, until the process stops.
    pub fn revoke(&self, list: &RevocationList) {
        if let Ok(mut admin) = self.admin_revocations.write() {
            admin.merge(list);
        }
        self.cache.clear();
    }

    /// The public JWK Set of the keys in force, without keys whose tokens
    /// are revoked by key id: issuers must stop encrypting to those.
    pub fn public_jwk_set(&self) -> serde_json::Value {
        let active = self.active.load();
        let mut set = active.decrypter.keys().public_jwk_set();
        let admin = self.admin_revocations.read().ok();
        let revoked = |kid: &str| {
            active.revocations.keys.contains(kid) || admin.as_ref().is_some_and(|admin| admin.keys.contains(kid))
        };
        if let Some(keys) = set.get_mut("keys").and_then(serde_json::Value::as_array_mut) {
            keys.retain(|key| !key.get("kid").and_then(serde_json::Value::as_str).is_some_and(revoked));
        }
        set
    }

    /// Entries added through [`KeyStore::revoke`].
    pub fn revocations_in_memory(&self) -> usize {
        self.admin_revocations.read().map_or(0, |admin| admin.len())
    }

    /// The decrypter in force.
    pub fn with_decrypter<T>(&self, f: impl FnOnce(&Decrypter) -> T) -> T {
        f(&self.active.load().decrypter)
    }

    fn check_revoked(&self, active: &Active, decrypted: Decrypted) -> Result<Decrypted, DecryptError> {
        active.revocations.check(&decrypted).map_err(DecryptError::Revoked)?;
        if let Ok(admin) = self.admin_revocations.read() {
            admin.check(&decrypted).map_err(DecryptError::Revoked)?;
        }
        Ok(decrypted)
    }
}

impl Decrypt for KeyStore {
    fn decrypt(
        &self,
        request: decrypt::Request<'_>,
        now: i64,
        info: &mut TokenInfo,
    ) -> Result<Decrypted, DecryptError> {
        // Read before the set is loaded; see `check_for_changes`.
        let generation = self.cache.generation();
        let active = self.active.load();
        let decrypted = active.decrypter.decrypt(request, now, info)?;
        let decrypted = self.check_revoked(&active, decrypted)?;
        if self.cache.enabled() {
            let digest = ClaimsCache::digest(request.token);
            let cached = Cached::of(&decrypted, info);
            self.cache
                .insert(generation, digest, decrypted.valid.expires_at, cached);
        }
        Ok(decrypted)
    }

    fn decrypt_cached(
        &self,
        request: decrypt::Request<'_>,
        now: i64,
        info: &mut TokenInfo,
    ) -> Option<Result<Decrypted, DecryptError>> {
        if !self.cache.enabled() {
            return None;
        }
        let cached = self.cache.get(&ClaimsCache::digest(request.token), now)?;
        let active = self.active.load();
        let result = active.decrypter.revalidate(&cached, request, now, info);
        Some(result.and_then(|decrypted| self.check_revoked(&active, decrypted)))
    }

    fn max_token_bytes(&self) -> usize {
        self.policy.max_token_bytes
    }
}

/// Reads every source file and digests their bytes.
/// The bytes of each source file, in [`Sources`] order; `None` when unset.
type Contents = Vec<Option<Zeroizing<Vec<u8>>>>;

fn read_sources(sources: &Sources) -> Result<(Contents, [u8; 32]), String> {
    let paths = [
        ("keys.private_keys", Some(&sources.private_keys)),
        ("keys.issuer_keys", sources.issuer_keys.as_ref()),
        ("keys.revocations", sources.revocations.as_ref()),
    ];
    let mut hasher = Sha256::new();
    let mut contents = Vec::with_capacity(paths.len());
    for (setting, path) in paths {
        let bytes = match path {
            Some(path) => Some(jwk::read_limited(path).map_err(|err| format!("invalid setting {setting}: {err}"))?),
            None => None,
        };
        let len = bytes.as_ref().map_or(u64::MAX, |bytes| bytes.len() as u64);
        hasher.update(len.to_le_bytes());
        hasher.update(bytes.as_deref().map_or(&[][..], Vec::as_slice));
        contents.push(bytes);
    }
    Ok((contents, hasher.finalize().into()))
}

fn build(sources: &Sources, policy: &Policy, contents: &[Option<Zeroizing<Vec<u8>>>]) -> Result<Active, String> {
    let origin = sources.private_keys.display().to_string();
    let file = |index: usize| {
        contents
            .get(index)
            .and_then(Option::as_ref)
            .map(|bytes| bytes.as_slice())
    };
    let keys = RawJwkSet::parse(file(0).unwrap_or_default(), &origin)
        .and_then(|raw| KeySet::from_raw(&raw, &sources.key_algorithms, &origin))
        .map_err(|err| format!("invalid setting keys.private_keys: {err}"))?;
    keys.self_check().map_err(|(kid, reason)| {
        format!("invalid setting keys.private_keys: key {kid:?} failed its self-check: {reason}")
    })?;

    let issuers = match (&sources.issuer_keys, file(1)) {
        (Some(path), Some(bytes)) => {
            let origin = path.display().to_string();
            let invalid = |err: crate::jwk::JwkError| format!("invalid setting keys.issuer_keys: {err}");
            let raw = RawJwkSet::parse(bytes, &origin).map_err(invalid)?;
            Some(IssuerKeys::from_raw(&raw, &origin).map_err(invalid)?)
        }
        _ => None,
    };
    let revocations = match (&sources.revocations, file(2)) {
        (Some(path), Some(bytes)) => RevocationList::parse(bytes)
            .map_err(|reason| format!("invalid setting keys.revocations: {}: {reason}", path.display()))?,
        _ => RevocationList::default(),
    };

    Ok(Active {
        decrypter: Decrypter::new(keys, issuers, policy.clone()),
        revocations,
    })
}

/// Checks for changes every `interval` and on SIGHUP until `stop` is set.
pub async fn watch(store: Arc<KeyStore>, interval: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};

    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => Some(hangup),
        Err(error) => {
            tracing::warn!(error = %error, "Cannot listen for SIGHUP; reloading on the timer only");
            None
        }
    };
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                tracing::info!(signal = "SIGHUP", "Checking key files");
            }
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let store = store.clone();
        let _ = tokio::task::spawn_blocking(move || store.check_for_changes()).await;
    }
}
