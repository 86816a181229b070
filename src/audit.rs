//! Audit records: one JSON line per Decrypt call, whatever its outcome,
//! in a stream of its own (a file with size-based rotation, or stdout),
//! separate from diagnostic logs and independent of the log level.
//!
//! The fields are an allow-list: time, sequence number, request id, caller
//! identity, outcome, reason and precise cause, key ids, algorithms, a token
//! fingerprint, subject, token id, required scopes and latency. Never the
//! token, the claims body or key material. The subject and token id are
//! claim values that the record keeps on purpose, to say who decrypted what.
//!
//! Tamper evidence: every record carries `chain`, an HMAC-SHA256 under the
//! deployment's audit key of the previous record's `chain` followed by this
//! record's JSON with `chain` empty. The chain runs across rotated files.
//! Editing, removing, inserting or reordering records breaks it, and
//! recomputing it needs the key; `jwed audit verify` checks it. Records
//! removed from the end of the newest file leave no trace, except a
//! partially written last line.
//! The fingerprint is an HMAC of the token under the same key, so that
//! `jwed audit fingerprint` can later tell whether a given token was used.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, SystemTime},
};

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::decrypt::TokenInfo;

/// Permissions of a new audit file: the records name subjects and token
/// ids, so only the owner writes and only its group (a log shipper) reads.
const AUDIT_FILE_MODE: u32 = 0o640;

/// Tracing target of diagnostic events about auditing itself.
pub const TARGET: &str = "jwed::audit";

/// The previous `chain` value for the very first record of a log.
pub const CHAIN_START: &str = "start";

/// Who called, as far as the transport can tell.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// Peer user id, from the Unix socket's kernel credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Peer group id, from the Unix socket's kernel credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Peer process id, from the Unix socket's kernel credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Peer address, for TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Subject of the verified mTLS client certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
    /// URI subject alternative names of the client certificate, such as a
    /// SPIFFE ID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cert_uris: Vec<String>,
}

/// One call's outcome, as the audit record states it.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// `OK` or the ErrorInfo reason.
    pub reason: &'a str,
    /// The precise internal cause of a rejection, empty when accepted.
    pub cause: String,
    /// gRPC status code.
    pub code: tonic::Code,
    /// Time spent in the call.
    pub elapsed: Duration,
}

/// One audit record, as written. Field order is the JSON order.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339 time with milliseconds, UTC.
    pub time: String,
    /// Position in the log, from 1, continuing across rotated files.
    pub seq: u64,
    /// Random id of this call.
    pub request_id: String,
    /// The gRPC method.
    pub method: String,
    /// Who called.
    pub caller: Caller,
    /// `allowed` or `rejected`.
    pub outcome: String,
    /// `OK` or the ErrorInfo reason.
    pub reason: String,
    /// The precise internal cause of a rejection.
    pub cause: String,
    /// gRPC status code name.
    pub code: String,
    /// Decryption key id.
    pub kid: Option<String>,
    /// Key management algorithm.
    pub alg: Option<String>,
    /// Content encryption algorithm.
    pub enc: Option<String>,
    /// Issuer key id of the nested JWT.
    pub signing_kid: Option<String>,
    /// Signature algorithm of the nested JWT.
    pub signing_alg: Option<String>,
    /// HMAC fingerprint of the token.
    pub fingerprint: String,
    /// `sub` or `id`.
    pub subject: Option<String>,
    /// `jti`.
    pub token_id: Option<String>,
    /// Scopes the caller required.
    pub required_scopes: Vec<String>,
    /// Whether the claims cache served the call.
    pub cache_hit: bool,
    /// The request path a gateway check was for, normalized when it could
    /// be; absent for Decrypt calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The HTTP decision of a gateway check, such as `allow` or `deny 403`.
    /// Absent for Decrypt calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Time spent in the call, in microseconds.
    pub latency_us: u64,
    /// HMAC of the previous record's `chain` and this record; see the
    /// module documentation.
    pub chain: String,
}

/// The per-deployment audit key, wiped on drop.
pub struct AuditKey(Zeroizing<Vec<u8>>);

/// Where records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Nowhere, for benchmarks that measure the cost of auditing. The
    /// configuration cannot select it.
    Discard,
    /// Standard output, one JSON line per record.
    Stdout,
    /// A file, rotated to `NAME.1`, `NAME.2`, ... past `max_bytes`.
    File {
        /// The active file.
        path: PathBuf,
        /// Size at which the file is rotated.
        max_bytes: u64,
        /// Rotated files kept.
        keep: usize,
    },
}

/// The audit stream: writes records in order, chains them and rotates.
pub struct AuditLog {
    key: AuditKey,
    destination: Destination,
    state: Mutex<ChainState>,
}

struct ChainState {
    file: Option<File>,
    size: u64,
    seq: u64,
    chain: String,
}

// === impl AuditKey ===

impl AuditKey {
    /// Reads a key file: base64url text (as `jwed audit key` writes it) of
    /// at least 32 bytes.
    ///
    /// # Errors
    ///
    /// Returns a message naming the file, never its content.
    pub fn read(path: &Path) -> Result<Self, String> {
        let bytes =
            Zeroizing::new(fs::read(path).map_err(|err| format!("cannot read audit key {}: {err}", path.display()))?);
        let text =
            std::str::from_utf8(&bytes).map_err(|_| format!("audit key {} is not base64url text", path.display()))?;
        let key = Base64UrlUnpadded::decode_vec(text.trim())
            .map(Zeroizing::new)
            .map_err(|_| format!("audit key {} is not base64url text", path.display()))?;
        if key.len() < 32 {
            return Err(format!("audit key {} is shorter than 32 bytes", path.display()));
        }
        Ok(AuditKey(key))
    }

    /// Generates a random key, for a process without a configured key.
    ///
    /// # Errors
    ///
    /// Returns a message when OpenSSL's random generator fails, which
    /// happens only without an entropy source.
    pub fn random() -> Result<Self, String> {
        let mut key = Zeroizing::new(vec![0u8; 32]);
        openssl::rand::rand_bytes(&mut key).map_err(|_| "cannot generate a random audit key".to_owned())?;
        Ok(AuditKey(key))
    }

    /// Generates key text for a key file: 32 random bytes, base64url.
    ///
    /// # Errors
    ///
    /// See [`AuditKey::random`].
    pub fn generate_text() -> Result<Zeroizing<String>, String> {
        let key = Self::random()?;
        Ok(Zeroizing::new(Base64UrlUnpadded::encode_string(&key.0) + "\n"))
    }

    fn mac(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(label);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The fingerprint of a token: 16 bytes of HMAC-SHA256, hex.
    pub fn fingerprint(&self, token: &str) -> String {
        hex(&self.mac(b"jwed fingerprint\0", token.as_bytes())[..16])
    }

    /// The `chain` value of a record, from the previous record's `chain`
    /// and this record serialized with `chain` empty.
    pub fn chain(&self, previous: &str, body: &str) -> String {
        let mut data = Vec::with_capacity(previous.len() + 1 + body.len());
        data.extend_from_slice(previous.as_bytes());
        data.push(b'\n');
        data.extend_from_slice(body.as_bytes());
        hex(&self.mac(b"jwed chain\0", &data))
    }
}

// === impl AuditLog ===

impl AuditLog {
    /// Opens the destination. An existing file is continued: the chain and
    /// sequence pick up after its last complete record.
    ///
    /// # Errors
    ///
    /// Returns a message naming the file when it cannot be opened.
    pub fn open(key: AuditKey, destination: Destination) -> Result<Self, String> {
        let mut state = ChainState {
            file: None,
            size: 0,
            seq: 0,
            chain: CHAIN_START.to_owned(),
        };
        if let Destination::File { path, .. } = &destination {
            if let Some(last) = last_line(path).and_then(|line| serde_json::from_str::<Record>(&line).ok()) {
                state.chain = last.chain;
                state.seq = last.seq;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(AUDIT_FILE_MODE)
                .open(path)
                .map_err(|err| format!("cannot open audit log {}: {err}", path.display()))?;
            state.size = file.metadata().map_or(0, |meta| meta.len());
            state.file = Some(file);
        }
        Ok(AuditLog {
            key,
            destination,
            state: Mutex::new(state),
        })
    }

    /// The fingerprint of a token under this log's key.
    pub fn fingerprint(&self, token: &str) -> String {
        self.key.fingerprint(token)
    }

    /// Writes one record and returns only once it reached the destination.
    ///
    /// # Errors
    ///
    /// Returns the I/O error; the record's place in the chain is then not
    /// used, so that the chain stays unbroken.
    pub fn write(&self, mut record: Record) -> io::Result<()> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| io::Error::other("audit state is poisoned"))?;
        record.seq = state.seq + 1;
        record.chain = String::new();
        let body = serde_json::to_string(&record).map_err(io::Error::other)?;
        record.chain = self.key.chain(&state.chain, &body);
        let mut line = serde_json::to_string(&record).map_err(io::Error::other)?;
        line.push('\n');

        match &self.destination {
            Destination::Discard => {}
            Destination::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(line.as_bytes())?;
                stdout.flush()?;
            }
            Destination::File { path, max_bytes, keep } => {
                if state.size > 0 && state.size + line.len() as u64 > *max_bytes {
                    rotate(path, *keep)?;
                    state.file = Some(
                        OpenOptions::new()
                            .create(true)
                            .append(true)
                            .mode(AUDIT_FILE_MODE)
                            .open(path)?,
                    );
                    state.size = 0;
                }
                let file = match state.file.as_mut() {
                    Some(file) => file,
                    None => state
                        .file
                        .insert(OpenOptions::new().create(true).append(true).open(path)?),
                };
                if let Err(error) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                    // Reopen on the next write, which may find the path fixed
                    // (space freed, volume remounted, a link repointed).
                    state.file = None;
                    return Err(error);
                }
                state.size += line.len() as u64;
            }
        }

        state.seq = record.seq;
        state.chain = record.chain;
        Ok(())
    }
}

impl Record {
    /// Builds a record from what a call learnt. `seq` and `chain` are set
    /// when it is written.
    pub fn new(
        method: &str,
        caller: &Caller,
        fingerprint: String,
        info: &TokenInfo,
        scopes: &[String],
        outcome: &Outcome<'_>,
    ) -> Self {
        Record {
            time: rfc3339(SystemTime::now()),
            seq: 0,
            request_id: uuid::Uuid::new_v4().to_string(),
            method: method.to_owned(),
            caller: caller.clone(),
            outcome: if outcome.reason == "OK" { "allowed" } else { "rejected" }.to_owned(),
            reason: outcome.reason.to_owned(),
            cause: outcome.cause.clone(),
            code: format!("{:?}", outcome.code),
            kid: info.kid.clone(),
            alg: info.alg.map(|alg| alg.name().to_owned()),
            enc: info.enc.map(|enc| enc.name().to_owned()),
            signing_kid: info.signing_kid.clone(),
            signing_alg: info.signing_alg.map(|alg| alg.name().to_owned()),
            fingerprint,
            subject: info.subject.clone(),
            token_id: info.token_id.clone(),
            required_scopes: scopes.iter().take(64).cloned().collect(),
            cache_hit: false,
            path: None,
            decision: None,
            latency_us: u64::try_from(outcome.elapsed.as_micros()).unwrap_or(u64::MAX),
            chain: String::new(),
        }
    }
}

/// Shifts `NAME.(n)` to `NAME.(n+1)` and `NAME` to `NAME.1`, dropping the
/// oldest beyond `keep`.
fn rotate(path: &Path, keep: usize) -> io::Result<()> {
    let numbered = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
    let _ = fs::remove_file(numbered(keep.max(1)));
    for n in (1..keep.max(1)).rev() {
        if numbered(n).exists() {
            fs::rename(numbered(n), numbered(n + 1))?;
        }
    }
    fs::rename(path, numbered(1))
}

/// Longest record line looked for at the end of an existing log.
const MAX_TAIL_BYTES: u64 = 64 * 1024;

/// The last complete line of a regular file, read from its last 64 KiB.
/// Anything else (a device such as `/dev/full`, a pipe) has no last line.
fn last_line(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};

    let mut file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    file.seek(SeekFrom::Start(meta.len().saturating_sub(MAX_TAIL_BYTES)))
        .ok()?;
    let mut tail = Vec::new();
    file.take(MAX_TAIL_BYTES).read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(str::to_owned)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Formats a time as RFC 3339 UTC with milliseconds, without a date crate:
/// days since the epoch converted with the civil-from-days algorithm.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let (secs, millis) = (since.as_secs(), since.subsec_millis());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;

    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_times() {
        let at = |secs: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_796_416_620), "2026-12-04T20:37:00.000Z");
    }

    #[test]
    fn fingerprint_depends_on_key_and_token() {
        let key = AuditKey(Zeroizing::new(vec![7; 32]));
        let other = AuditKey(Zeroizing::new(vec![8; 32]));
        assert_eq!(key.fingerprint("a.b.c.d.e"), key.fingerprint("a.b.c.d.e"));
        assert_eq!(key.fingerprint("a.b.c.d.e").len(), 32);
        assert_ne!(key.fingerprint("a.b.c.d.e"), key.fingerprint("a.b.c.d.f"));
        assert_ne!(key.fingerprint("a.b.c.d.e"), other.fingerprint("a.b.c.d.e"));
    }
}
