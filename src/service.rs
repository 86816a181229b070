//! The `jwed.v1.Decryptor` gRPC service: extract, decrypt, audit, respond.
//!
//! Cost bounds live here because they concern the private-key operation
//! only, not health or reflection. At most `max_concurrent` decrypts run at
//! once on the blocking pool, and at most `max_pending` calls wait or run;
//! calls beyond that get RESOURCE_EXHAUSTED at once. Every call has a
//! deadline: the configured one, or the client's shorter `grpc-timeout`.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::sync::Semaphore;
use tonic::{Code, Request, Response, Status, metadata::MetadataMap, transport::server::UdsConnectInfo};

use crate::{
    audit::{AuditLog, Caller, Outcome, Record},
    callers::{self, CallerPolicy, Refusal},
    decrypt::{self, DecryptError, Decrypted, Decrypter, TokenInfo},
    metrics::Metrics,
    pb::{self, decryptor_server::Decryptor},
    status::{self, ServiceError},
};

/// What the service decrypts with: the real [`Decrypter`], or a stand-in
/// in tests.
pub trait Decrypt: Send + Sync + 'static {
    /// Runs the decryption pipeline; see [`Decrypter::decrypt`].
    ///
    /// # Errors
    ///
    /// Returns the [`DecryptError`] of a rejected request.
    fn decrypt(&self, request: decrypt::Request<'_>, now: i64, info: &mut TokenInfo)
    -> Result<Decrypted, DecryptError>;

    /// Returns the result from the claims cache when the token is in it,
    /// without the private-key operation. `None` sends the call to
    /// [`Decrypt::decrypt`].
    fn decrypt_cached(
        &self,
        _request: decrypt::Request<'_>,
        _now: i64,
        _info: &mut TokenInfo,
    ) -> Option<Result<Decrypted, DecryptError>> {
        None
    }

    /// Largest token accepted, in bytes, which sizes the gRPC message limit.
    fn max_token_bytes(&self) -> usize;
}

/// Limits on concurrent work and time per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Decrypts running at once.
    pub max_concurrent: usize,
    /// Calls waiting or running at once; more are shed.
    pub max_pending: usize,
    /// Longest time a call may take, queueing included.
    pub call_timeout: Duration,
    /// Thread placement of the private-key work.
    pub placement: Placement,
}

/// Thread placement of a call's private-key work. BENCHMARKS.md compares
/// the options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Placement {
    /// On the async worker that received the call. There is no hand-over,
    /// but the call occupies that worker for the whole operation.
    Inline,
    /// On tokio's blocking thread pool.
    #[default]
    BlockingPool,
    /// On `max_concurrent` threads started with the service, fed by a
    /// queue.
    Dedicated,
}

/// What happens to a call whose audit record cannot be written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuditFailure {
    /// The call returns UNAVAILABLE and health turns NOT_SERVING until a
    /// record is written again.
    #[default]
    FailClosed,
    /// The call goes on; the lost record is logged and counted.
    FailOpen,
}

/// The audit side of the service: the log, the failure mode and health.
#[derive(Clone)]
pub struct Auditing {
    /// Where records go.
    pub log: Arc<AuditLog>,
    /// What a write failure does.
    pub on_failure: AuditFailure,
    /// Set to `false` while records cannot be written, `true` once they can.
    pub healthy: Arc<tokio::sync::watch::Sender<bool>>,
    /// Records lost in fail-open mode.
    pub lost: Arc<std::sync::atomic::AtomicU64>,
}

// === impl Auditing ===

impl Auditing {
    /// Audits into `log`, handling write failures as `on_failure` sets.
    pub fn new(log: AuditLog, on_failure: AuditFailure) -> Self {
        Auditing {
            log: Arc::new(log),
            on_failure,
            healthy: Arc::new(tokio::sync::watch::Sender::new(true)),
            lost: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }
}

/// Maximum number of tokens in one `DecryptBatch` call.
pub const MAX_BATCH_TOKENS: usize = 32;

/// The gRPC service around one decrypter.
pub struct DecryptorService<D = Decrypter> {
    decrypter: Arc<D>,
    limits: Limits,
    running: Arc<Semaphore>,
    pending: Arc<AtomicUsize>,
    auditing: Auditing,
    callers: Arc<CallerPolicy>,
    workers: Option<Arc<Workers>>,
    metrics: Arc<Metrics>,
}

/// Threads for [`Placement::Dedicated`], which exit when the service and
/// its clones are gone.
struct Workers {
    queue: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Writes the audit record when dropped unless the handler wrote it, so
/// that a call cancelled by the client or by tonic's own timeout is still
/// recorded.
struct AuditGuard {
    started: Instant,
    metrics: Arc<Metrics>,
    log: Arc<AuditLog>,
    caller: Caller,
    fingerprint: String,
    scopes: Vec<String>,
    info: TokenInfo,
    cache_hit: bool,
    method: &'static str,
    /// The request path of a gateway check.
    path: Option<String>,
    written: bool,
}

/// Decrements the pending count when a call ends, however it ends.
struct PendingSlot(Arc<AtomicUsize>);

// === impl Limits ===

impl Default for Limits {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Limits {
            max_concurrent: cores * 2,
            max_pending: 256,
            call_timeout: Duration::from_secs(2),
            placement: Placement::default(),
        }
    }
}

// === impl DecryptorService ===

impl<D: Decrypt> DecryptorService<D> {
    /// Serves `decrypter` within `limits`, auditing every call.
    pub fn new(decrypter: Arc<D>, limits: Limits, auditing: Auditing) -> Self {
        DecryptorService {
            decrypter,
            limits,
            running: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            pending: Arc::new(AtomicUsize::new(0)),
            auditing,
            callers: Arc::new(CallerPolicy::default()),
            workers: (limits.placement == Placement::Dedicated)
                .then(|| Arc::new(Workers::start(limits.max_concurrent.max(1)))),
            metrics: Arc::new(Metrics::default()),
        }
    }

    /// Counts calls in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Admits only the callers that `policy` names.
    pub fn with_callers(mut self, policy: Arc<CallerPolicy>) -> Self {
        self.callers = policy;
        self
    }

    /// Writes the record of a finished call; in fail-closed mode a failed
    /// write turns the reply into UNAVAILABLE.
    fn finish(
        &self,
        guard: &mut AuditGuard,
        outcome: Outcome<'static>,
        reply: Result<pb::DecryptResponse, Status>,
    ) -> Result<pb::DecryptResponse, Status> {
        match guard.write(&outcome) {
            Ok(()) => {
                self.auditing
                    .healthy
                    .send_if_modified(|healthy| !std::mem::replace(healthy, true));
                self.metrics.record_call(guard.method, outcome.reason, outcome.elapsed);
                reply
            }
            Err(error) => match self.auditing.on_failure {
                AuditFailure::FailClosed => {
                    self.metrics.record_audit_failure();
                    let reason = status::classify_service(ServiceError::AuditUnavailable).1;
                    self.metrics.record_call(guard.method, reason, outcome.elapsed);
                    if self
                        .auditing
                        .healthy
                        .send_if_modified(|healthy| std::mem::replace(healthy, false))
                    {
                        tracing::error!(error = %error, "Cannot write audit records; refusing to decrypt until they can be written");
                    }
                    Err(status::service_status(ServiceError::AuditUnavailable))
                }
                AuditFailure::FailOpen => {
                    self.metrics.record_audit_failure();
                    self.metrics.record_call(guard.method, outcome.reason, outcome.elapsed);
                    let lost = self.auditing.lost.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::error!(error = %error, audit.lost_records = lost, "Audit record lost (fail-open)");
                    reply
                }
            },
        }
    }

    /// Takes a pending slot, or returns `None` when the service is full.
    fn reserve(&self) -> Option<PendingSlot> {
        let previous = self.pending.fetch_add(1, Ordering::AcqRel);
        let slot = PendingSlot(self.pending.clone());
        (previous < self.limits.max_pending).then_some(slot)
    }

    /// Applies the caller policy around [`DecryptorService::run`].
    async fn admit_and_run(
        &self,
        message: pb::DecryptRequest,
        deadline: Duration,
        guard: &mut AuditGuard,
    ) -> Result<Decrypted, Rejection> {
        let rule = self
            .callers
            .admit(&guard.caller, &message.audience)
            .map_err(Rejection::Refused)?
            .cloned();
        let decrypted = self.run(message, deadline, guard).await?;
        callers::check_key(rule.as_ref(), &decrypted.key_id).map_err(Rejection::Refused)?;
        Ok(decrypted)
    }

    async fn run(
        &self,
        message: pb::DecryptRequest,
        deadline: Duration,
        guard: &mut AuditGuard,
    ) -> Result<Decrypted, Rejection> {
        // A cached token needs no private-key operation: its claims are
        // checked again right here, which takes microseconds.
        let now = unix_now();
        let request = request_of(&message);
        if let Some(result) = self.decrypter.decrypt_cached(request, now, &mut guard.info) {
            guard.cache_hit = true;
            return result.map_err(Rejection::Token);
        }

        let _slot = self.reserve().ok_or(Rejection::Service(ServiceError::Overloaded))?;
        let work = async {
            let permit = self
                .running
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Rejection::Service(ServiceError::Overloaded))?;
            let decrypter = self.decrypter.clone();

            // The permit moves along, so a call abandoned at its deadline
            // still counts until its work ends.
            let job = move || {
                let _permit = permit;
                let mut info = TokenInfo::default();
                let result = catch_unwind(AssertUnwindSafe(|| {
                    decrypter.decrypt(request_of(&message), unix_now(), &mut info)
                }));
                (result, info)
            };
            match self.place(job).await {
                Some((Ok(result), info)) => {
                    guard.info = info;
                    result.map_err(Rejection::Token)
                }
                Some((Err(_), info)) => {
                    guard.info = info;
                    Err(Rejection::Service(ServiceError::Panicked))
                }
                None => Err(Rejection::Service(ServiceError::Panicked)),
            }
        };
        tokio::time::timeout(deadline, work)
            .await
            .unwrap_or(Err(Rejection::Service(ServiceError::DeadlineExceeded)))
    }

    /// Runs the private-key work as [`Limits::placement`] sets. Returns
    /// `None` when the job was lost because its thread panicked outside
    /// `catch_unwind`.
    async fn place<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        match (self.limits.placement, &self.workers) {
            (Placement::Inline, _) => Some(job()),
            (Placement::Dedicated, Some(workers)) => {
                let (sender, receiver) = tokio::sync::oneshot::channel();
                workers.submit(Box::new(move || {
                    let _ = sender.send(job());
                }))?;
                receiver.await.ok()
            }
            (Placement::BlockingPool | Placement::Dedicated, _) => tokio::task::spawn_blocking(job).await.ok(),
        }
    }

    /// Decrypts one token for `caller`, writes its audit record and builds
    /// the reply: the whole of a Decrypt call, one item of a batch, or the
    /// token part of a gateway check for `path`.
    pub(crate) async fn decrypt_one(
        &self,
        caller: Caller,
        message: pb::DecryptRequest,
        deadline: Duration,
        method: &'static str,
        path: Option<String>,
    ) -> Result<pb::DecryptResponse, Status> {
        let started = Instant::now();
        let _in_flight = self.metrics.call_started();
        let mut guard = AuditGuard {
            started,
            metrics: self.metrics.clone(),
            log: self.auditing.log.clone(),
            caller,
            fingerprint: self.auditing.log.fingerprint(&message.token),
            scopes: message.required_scopes.clone(),
            info: TokenInfo::default(),
            cache_hit: false,
            method,
            path,
            written: false,
        };

        let result = self.admit_and_run(message, deadline, &mut guard).await;
        let (reply, reason, cause, code) = match result {
            Ok(decrypted) => (Ok(to_response(decrypted)), "OK", String::new(), Code::Ok),
            Err(Rejection::Token(error)) => {
                let status = status::to_status(&error);
                let code = status.code();
                (Err(status), status::classify(&error).1, error.to_string(), code)
            }
            Err(Rejection::Service(error)) => {
                if error == ServiceError::Panicked {
                    tracing::error!("Decrypt call panicked; it returned INTERNAL and the server keeps serving");
                }
                let status = status::service_status(error);
                let code = status.code();
                (Err(status), status::classify_service(error).1, error.to_string(), code)
            }
            Err(Rejection::Refused(refusal)) => {
                let status = status::service_status(ServiceError::CallerNotAllowed);
                let code = status.code();
                (
                    Err(status),
                    status::classify_service(ServiceError::CallerNotAllowed).1,
                    refusal.to_string(),
                    code,
                )
            }
        };
        let outcome = Outcome {
            reason,
            cause,
            code,
            elapsed: started.elapsed(),
        };
        self.finish(&mut guard, outcome, reply)
    }
}

impl<D: Decrypt> DecryptorService<D> {
    /// Writes the audit record of a gateway check that ended without a
    /// token operation (a public path, a missing token, an invalid path).
    /// Returns `false` when the record could not be written in fail-closed
    /// mode, in which case the check must be denied.
    pub(crate) fn record_check(
        &self,
        caller: Caller,
        method: &'static str,
        path: String,
        outcome: Outcome<'static>,
    ) -> bool {
        let mut guard = AuditGuard {
            started: Instant::now(),
            metrics: self.metrics.clone(),
            log: self.auditing.log.clone(),
            caller,
            fingerprint: String::new(),
            scopes: Vec::new(),
            info: TokenInfo::default(),
            cache_hit: false,
            method,
            path: Some(path),
            written: false,
        };
        self.finish(&mut guard, outcome, Ok(pb::DecryptResponse::default()))
            .is_ok()
    }
}

impl<D> Clone for DecryptorService<D> {
    fn clone(&self) -> Self {
        DecryptorService {
            decrypter: self.decrypter.clone(),
            limits: self.limits,
            running: self.running.clone(),
            pending: self.pending.clone(),
            auditing: self.auditing.clone(),
            callers: self.callers.clone(),
            workers: self.workers.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<D> std::fmt::Debug for DecryptorService<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptorService")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Reason a call did not return claims.
enum Rejection {
    /// The token or the request was rejected.
    Token(DecryptError),
    /// The service could not serve the call.
    Service(ServiceError),
    /// The caller policy refused the caller, its audience or the key.
    Refused(Refusal),
}

#[tonic::async_trait]
impl<D: Decrypt> Decryptor for DecryptorService<D> {
    async fn decrypt(&self, request: Request<pb::DecryptRequest>) -> Result<Response<pb::DecryptResponse>, Status> {
        let caller = caller_of(&request);
        let deadline = self.deadline(request.metadata());
        self.decrypt_one(
            caller,
            request.into_inner(),
            deadline,
            "jwed.v1.Decryptor/Decrypt",
            None,
        )
        .await
        .map(Response::new)
    }

    async fn decrypt_batch(
        &self,
        request: Request<pb::DecryptBatchRequest>,
    ) -> Result<Response<pb::DecryptBatchResponse>, Status> {
        let caller = caller_of(&request);
        let deadline = self.deadline(request.metadata());
        let requests = request.into_inner().requests;
        if requests.len() > MAX_BATCH_TOKENS {
            let error = DecryptError::BadRequest("more than 32 tokens in one batch");
            return Err(status::to_status(&error));
        }

        // Every token runs as its own task, so a batch uses the same
        // concurrency limit as separate calls, and its tokens are audited
        // one by one. Dropping the set cancels the tasks left, whose audit
        // guards then record the cancellation.
        let mut tasks = tokio::task::JoinSet::new();
        for (index, message) in requests.into_iter().enumerate() {
            let (service, caller) = (self.clone(), caller.clone());
            tasks.spawn(async move {
                let reply = service
                    .decrypt_one(caller, message, deadline, "jwed.v1.Decryptor/DecryptBatch", None)
                    .await;
                (index, reply)
            });
        }
        let mut results = vec![pb::DecryptResult::default(); tasks.len()];
        while let Some(joined) = tasks.join_next().await {
            let Ok((index, reply)) = joined else {
                return Err(status::service_status(ServiceError::Panicked));
            };
            results[index].result = Some(match reply {
                Ok(claims) => pb::decrypt_result::Result::Claims(claims),
                Err(status) => pb::decrypt_result::Result::Error(token_error(&status)),
            });
        }
        Ok(Response::new(pb::DecryptBatchResponse { results }))
    }
}

impl<D: Decrypt> DecryptorService<D> {
    /// Returns the configured deadline, or the client's `grpc-timeout` if
    /// shorter.
    pub(crate) fn deadline(&self, metadata: &MetadataMap) -> Duration {
        client_deadline(metadata).map_or(self.limits.call_timeout, |client| client.min(self.limits.call_timeout))
    }
}

/// A batch item's error: the status and ErrorInfo a single call returns.
fn token_error(status: &Status) -> pb::TokenError {
    use tonic_types::StatusExt;

    let info = status.get_details_error_info();
    pb::TokenError {
        code: status.code() as i32,
        message: status.message().to_owned(),
        reason: info.as_ref().map(|info| info.reason.clone()).unwrap_or_default(),
        metadata: info.map(|info| info.metadata.into_iter().collect()).unwrap_or_default(),
    }
}

fn request_of(message: &pb::DecryptRequest) -> decrypt::Request<'_> {
    decrypt::Request {
        token: &message.token,
        audience: Some(message.audience.as_str()).filter(|audience| !audience.is_empty()),
        required_scopes: &message.required_scopes,
    }
}

impl Decrypt for Decrypter {
    fn decrypt(
        &self,
        request: decrypt::Request<'_>,
        now: i64,
        info: &mut TokenInfo,
    ) -> Result<Decrypted, DecryptError> {
        Decrypter::decrypt(self, request, now, info)
    }

    fn max_token_bytes(&self) -> usize {
        self.policy().max_token_bytes
    }
}

// === impl AuditGuard ===

impl AuditGuard {
    fn write(&mut self, outcome: &Outcome<'_>) -> std::io::Result<()> {
        self.written = true;
        let mut record = Record::new(
            self.method,
            &self.caller,
            self.fingerprint.clone(),
            &self.info,
            &self.scopes,
            outcome,
        );
        record.cache_hit = self.cache_hit;
        record.path.clone_from(&self.path);
        record.decision = self.path.as_ref().map(|_| crate::authz::decision_name(outcome.reason));
        self.log.write(record)
    }
}

impl Drop for AuditGuard {
    fn drop(&mut self) {
        if self.written {
            return;
        }
        let outcome = Outcome {
            reason: "CANCELLED",
            cause: "call cancelled before it finished".to_owned(),
            code: Code::Cancelled,
            elapsed: self.started.elapsed(),
        };
        self.metrics.record_call(self.method, outcome.reason, outcome.elapsed);
        if let Err(error) = self.write(&outcome) {
            self.metrics.record_audit_failure();
            tracing::error!(error = %error, "Cannot write the audit record of a cancelled call");
        }
    }
}

// === impl Workers ===

impl Workers {
    fn start(threads: usize) -> Self {
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        for index in 0..threads {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("jwed-decrypt-{index}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match receiver.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(error = %error, "Cannot start a decrypt thread");
            }
        }
        Workers {
            queue: std::sync::Mutex::new(sender),
        }
    }

    fn submit(&self, job: Job) -> Option<()> {
        self.queue.lock().ok()?.send(job).ok()
    }
}

// === impl PendingSlot ===

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reads the client's `grpc-timeout` (gRPC over HTTP/2: up to 8 digits and
/// a unit letter). An unreadable value is ignored; tonic reports it.
fn client_deadline(metadata: &MetadataMap) -> Option<Duration> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    match unit {
        'H' => Some(Duration::from_secs(value * 3600)),
        'M' => Some(Duration::from_secs(value * 60)),
        'S' => Some(Duration::from_secs(value)),
        'm' => Some(Duration::from_millis(value)),
        'u' => Some(Duration::from_micros(value)),
        'n' => Some(Duration::from_nanos(value)),
        _ => None,
    }
}

pub(crate) fn caller_of<T>(request: &Request<T>) -> Caller {
    let mut caller = Caller::default();
    if let Some(info) = request.extensions().get::<UdsConnectInfo>() {
        if let Some(cred) = info.peer_cred {
            caller.uid = Some(cred.uid());
            caller.gid = Some(cred.gid());
            caller.pid = cred.pid();
        }
    }
    caller.address = request.remote_addr().map(|addr| addr.to_string());
    // tonic hands over only certificates that the TLS handshake verified
    // against the configured client CA.
    if let Some(certs) = request.peer_certs() {
        if let Some(leaf) = certs.first().and_then(|der| openssl::x509::X509::from_der(der).ok()) {
            caller.cert_subject = Some(subject_text(leaf.subject_name()));
            caller.cert_uris = leaf
                .subject_alt_names()
                .map(|names| names.iter().filter_map(|name| name.uri().map(str::to_owned)).collect())
                .unwrap_or_default();
        }
    }
    caller
}

/// A certificate subject as `CN=app,O=example`, in certificate order.
fn subject_text(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let key = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn unix_now() -> i64 {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
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
    prost_types::Struct {
        fields: map.into_iter().map(|(name, value)| (name, to_value(value))).collect(),
    }
}

fn to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value;

    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(flag) => Kind::BoolValue(flag),
        Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or(f64::NAN)),
        Value::String(text) => Kind::StringValue(text),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: &str) -> MetadataMap {
        let mut map = MetadataMap::new();
        map.insert("grpc-timeout", value.parse().expect("ascii"));
        map
    }

    #[test]
    fn client_deadline_reads_every_unit() {
        let cases = [
            ("2H", Duration::from_secs(7200)),
            ("3M", Duration::from_secs(180)),
            ("4S", Duration::from_secs(4)),
            ("250m", Duration::from_millis(250)),
            ("99999999u", Duration::from_micros(99_999_999)),
            ("7n", Duration::from_nanos(7)),
        ];
        for (value, expected) in cases {
            assert_eq!(client_deadline(&metadata(value)), Some(expected), "{value}");
        }
    }

    #[test]
    fn client_deadline_ignores_malformed_values() {
        for value in ["", "S", "123456789S", "10x", "-5S", "1.5S"] {
            assert_eq!(client_deadline(&metadata(value)), None, "{value:?}");
        }
    }
}
