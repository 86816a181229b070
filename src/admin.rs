//! The `jwed.v1.Keys` and `jwed.v1.Admin` gRPC services.
//!
//! Keys is public: it serves the public JWK Set and the key set's status
//! on the main listeners. Admin changes the revocation list, so it is
//! served only on its own Unix socket, and it checks the caller's kernel
//! credentials against an allow-list of user ids as well.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use tonic::{Request, Response, Status, transport::server::UdsConnectInfo};

use crate::{
    keys::KeyState,
    pb::{self, admin_server::Admin, keys_server::Keys},
    revocation::RevocationList,
    status::{self, ServiceError},
    store::KeyStore,
};

/// Largest number of entries one Revoke call may add.
pub const MAX_REVOKE_ENTRIES: usize = 1000;

/// The Keys service.
#[derive(Clone)]
pub struct KeysService {
    store: Arc<KeyStore>,
}

/// The Admin service.
#[derive(Clone)]
pub struct AdminService {
    store: Arc<KeyStore>,
    allowed_uids: Vec<u32>,
}

// === impl KeysService ===

impl KeysService {
    /// Serves the keys of `store`.
    pub fn new(store: Arc<KeyStore>) -> Self {
        KeysService { store }
    }
}

#[tonic::async_trait]
impl Keys for KeysService {
    async fn public_keys(&self, _: Request<pb::PublicKeysRequest>) -> Result<Response<pb::PublicKeysResponse>, Status> {
        Ok(Response::new(pb::PublicKeysResponse {
            jwks_json: self.store.public_jwk_set().to_string(),
        }))
    }

    async fn status(&self, _: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        let keys = self.store.with_decrypter(|decrypter| {
            decrypter
                .keys()
                .iter()
                .map(|key| pb::KeyStatus {
                    key_id: key.kid().to_owned(),
                    state: state_name(key.state()).to_owned(),
                    algorithm: key.alg().name().to_owned(),
                })
                .collect()
        });
        let reload = self.store.status();
        let mut response = pb::StatusResponse {
            keys,
            revocations_in_memory: self.store.revocations_in_memory() as u64,
            ..pb::StatusResponse::default()
        };
        if let Some(reload) = reload {
            response.loaded_at = Some(timestamp(reload.loaded_at));
            response.reloads = reload.reloads;
            response.reload_failures = reload.failures;
            if let Some((message, at)) = reload.last_error {
                response.last_reload_error = message;
                response.last_reload_error_at = Some(timestamp(at));
            }
        }
        Ok(Response::new(response))
    }
}

// === impl AdminService ===

impl AdminService {
    /// Serves revocations for callers whose Unix user id is in `allowed_uids`.
    pub fn new(store: Arc<KeyStore>, allowed_uids: Vec<u32>) -> Self {
        AdminService { store, allowed_uids }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn revoke(&self, request: Request<pb::RevokeRequest>) -> Result<Response<pb::RevokeResponse>, Status> {
        let uid = request
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|info| info.peer_cred)
            .map(|cred| cred.uid());
        if !uid.is_some_and(|uid| self.allowed_uids.contains(&uid)) {
            tracing::warn!(target: crate::audit::TARGET, method = "jwed.v1.Admin/Revoke", caller.uid = uid, outcome = "rejected", reason = "CALLER_NOT_ALLOWED", "Revoke");
            return Err(status::service_status(ServiceError::CallerNotAllowed));
        }

        let message = request.into_inner();
        let list = to_list(&message).map_err(|reason| status::service_status(ServiceError::BadRequest(reason)))?;
        self.store.revoke(&list);
        tracing::info!(
            target: crate::audit::TARGET,
            method = "jwed.v1.Admin/Revoke",
            caller.uid = uid,
            outcome = "allowed",
            token_ids = list.tokens.len(),
            subjects = list.subjects.len(),
            key_ids = list.keys.len(),
            "Revoke"
        );
        Ok(Response::new(pb::RevokeResponse {
            revocations_in_memory: self.store.revocations_in_memory() as u64,
        }))
    }
}

fn to_list(message: &pb::RevokeRequest) -> Result<RevocationList, &'static str> {
    let count = message.token_ids.len() + message.subjects.len() + message.key_ids.len();
    if count == 0 || count > MAX_REVOKE_ENTRIES {
        return Err("a Revoke call must carry 1 to 1000 entries");
    }
    let names = message
        .token_ids
        .iter()
        .chain(&message.key_ids)
        .chain(message.subjects.iter().map(|s| &s.subject));
    if names.into_iter().any(|name| name.is_empty() || name.len() > 256) {
        return Err("every id and subject must have 1 to 256 bytes");
    }

    let mut list = RevocationList::default();
    list.tokens.extend(message.token_ids.iter().cloned());
    list.keys.extend(message.key_ids.iter().cloned());
    for entry in &message.subjects {
        let before = entry
            .issued_before
            .as_ref()
            .ok_or("every subject needs issued_before")?;
        list.subjects.insert(entry.subject.clone(), before.seconds);
    }
    Ok(list)
}

/// The name of a key state, as the JWK `state` member spells it.
pub fn state_name(state: KeyState) -> &'static str {
    match state {
        KeyState::Current => "current",
        KeyState::Accepted => "accepted",
        KeyState::Retired => "retired",
    }
}

fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    prost_types::Timestamp {
        seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
        nanos: 0,
    }
}
