//! The `jwed.v1.Decryptor` gRPC service: extract, decrypt, audit, respond.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use tonic::{Code, Request, Response, Status, transport::server::UdsConnectInfo};

use crate::{
    audit::{self, Caller, Outcome},
    decrypt::{self, Decrypted, Decrypter, TokenInfo},
    pb::{self, decryptor_server::Decryptor},
    status,
};

/// Message of the status returned when a call panicked.
const INTERNAL_MESSAGE: &str = "internal error";

/// The gRPC service around one [`Decrypter`].
#[derive(Clone, Debug)]
pub struct DecryptorService {
    decrypter: Arc<Decrypter>,
}

// === impl DecryptorService ===

impl DecryptorService {
    /// Serves `decrypter`.
    pub fn new(decrypter: Arc<Decrypter>) -> Self {
        DecryptorService { decrypter }
    }
}

#[tonic::async_trait]
impl Decryptor for DecryptorService {
    async fn decrypt(&self, request: Request<pb::DecryptRequest>) -> Result<Response<pb::DecryptResponse>, Status> {
        let started = Instant::now();
        let caller = caller_of(&request);
        let message = request.into_inner();
        let audience = Some(message.audience.as_str()).filter(|audience| !audience.is_empty());
        let decrypt_request = decrypt::Request {
            token: &message.token,
            audience,
            required_scopes: &message.required_scopes,
        };

        // NOTE: the private-key operation runs on the async worker (0.1 to
        // 1 ms); moving it to a blocking pool is a measured choice still open.
        let mut info = TokenInfo::default();
        let result = catch_unwind(AssertUnwindSafe(|| self.decrypter.decrypt(decrypt_request, unix_now(), &mut info)));

        let (reply, reason, cause) = match result {
            Ok(Ok(decrypted)) => (Ok(Response::new(to_response(decrypted))), "ok", String::new()),
            Ok(Err(error)) => {
                let (_, reason, _) = status::classify(&error);
                (Err(status::to_status(&error)), reason, error.to_string())
            }
            Err(_) => {
                tracing::error!("Decrypt call panicked; the call returned INTERNAL");
                (Err(Status::internal(INTERNAL_MESSAGE)), "INTERNAL", "panic".to_owned())
            }
        };

        let code = reply.as_ref().map_or_else(Status::code, |_| Code::Ok);
        let outcome = Outcome { reason, cause, code, elapsed: started.elapsed() };
        audit::record(&caller, &message.token, &info, &outcome);
        reply
    }
}

fn caller_of<T>(request: &Request<T>) -> Caller {
    let mut caller = Caller::default();
    if let Some(info) = request.extensions().get::<UdsConnectInfo>() {
        if let Some(cred) = info.peer_cred {
            caller.uid = Some(cred.uid());
            caller.pid = cred.pid();
        }
    }
    caller.address = request.remote_addr().map(|addr| addr.to_string());
    caller
}

fn unix_now() -> i64 {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

fn timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

fn to_response(decrypted: Decrypted) -> pb::DecryptResponse {
    let valid = decrypted.valid;
    pb::DecryptResponse {
        claims: Some(to_struct(decrypted.claims)),
        claims_json: decrypted.claims_json,
        subject: valid.subject.unwrap_or_default(),
        scopes: valid.scopes,
        issuer: valid.issuer.unwrap_or_default(),
        expires_at: Some(timestamp(valid.expires_at)),
        issued_at: valid.issued_at.map(timestamp),
        key_id: decrypted.key_id,
        token_id: valid.token_id.unwrap_or_default(),
        signing_key_id: decrypted.signing_key_id.unwrap_or_default(),
    }
}

/// Converts a JSON object to `google.protobuf.Struct`. Numbers become
/// doubles, as the Struct type defines; `claims_json` keeps them exact.
pub fn to_struct(map: serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct { fields: map.into_iter().map(|(name, value)| (name, to_value(value))).collect() }
}

fn to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value;

    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(flag) => Kind::BoolValue(flag),
        Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or(f64::NAN)),
        Value::String(text) => Kind::StringValue(text),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue { values: items.into_iter().map(to_value).collect() }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}
