//! The load generator behind `jwed bench`: drives a running server with
//! valid tokens and measures what a caller and the server's host see.
//!
//! Latency is measured by the client from just before a call is sent to
//! the end of its reply. The server's CPU time and peak resident memory
//! come from `/proc/<pid>`, so they include everything the process does
//! for a call: HTTP/2, decoding, the pipeline, auditing.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use tonic::transport::Channel;

use crate::pb::{DecryptBatchRequest, DecryptRequest, decrypt_result, decryptor_client::DecryptorClient};

/// Linux reports process CPU time in ticks of 1/100 s (`USER_HZ`) on every
/// architecture jwed supports.
const TICKS_PER_SECOND: u64 = 100;

/// Server address to drive.
#[derive(Clone, Debug)]
pub enum Target {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A TCP `host:port`, without TLS.
    Tcp(String),
}

/// How to drive the server.
#[derive(Clone, Debug)]
pub struct Load {
    /// Calls in flight at once, one per client task.
    pub concurrency: usize,
    /// Connections the client tasks share.
    pub connections: usize,
    /// Time before measuring starts.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
    /// Calls per second across all tasks; `None` sends each call as soon as
    /// the previous one of its task returned.
    pub rate: Option<f64>,
    /// Tokens per call: 1 sends `Decrypt` calls, more sends `DecryptBatch`
    /// calls of that many tokens.
    pub batch: usize,
}

/// Results of one run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Calls completed in the measured window, successful or not.
    pub calls: u64,
    /// Calls that did not return claims.
    pub errors: u64,
    /// Error reasons and how often each came back.
    pub error_reasons: BTreeMap<String, u64>,
    /// Measured window in seconds.
    pub seconds: f64,
    /// Calls per second in the window.
    pub calls_per_second: f64,
    /// Latency percentiles and maximum, in microseconds.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// Slowest call.
    pub max_us: f64,
    /// Server CPU time (user and system) per call in the window, when the
    /// server's process is known.
    pub server_cpu_us_per_call: Option<f64>,
    /// Server peak resident set size since it started, in bytes.
    pub server_peak_rss_bytes: Option<u64>,
}

/// Error that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The server could not be reached.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// Where.
        target: String,
        /// Why.
        reason: String,
    },
    /// The options do not make a run.
    #[error("{0}")]
    Options(&'static str),
}

/// Connects `load.connections` times to `target`.
///
/// # Errors
///
/// Returns [`BenchError::Connect`] when a connection fails.
pub async fn connect(target: &Target, connections: usize) -> Result<Vec<DecryptorClient<Channel>>, BenchError> {
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        let client = match target {
            Target::Unix(path) => crate::client::connect_unix(path).await,
            Target::Tcp(address) => crate::client::connect_tcp(address).await,
        };
        clients.push(client.map_err(|error| BenchError::Connect {
            target: target.describe(),
            reason: error_chain(&error),
        })?);
    }
    Ok(clients)
}

/// Formats an error with its sources, such as `transport error: No such
/// file or directory (os error 2)`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Some errors repeat their source's text in their own.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Returns the process id of the server behind a Unix socket, from the
/// socket's peer credentials.
pub async fn peer_pid(path: &std::path::Path) -> Option<u32> {
    let stream = tokio::net::UnixStream::connect(path).await.ok()?;
    let pid = stream.peer_cred().ok()?.pid()?;
    u32::try_from(pid).ok()
}

/// Drives the server with `tokens` in turn and measures.
///
/// # Errors
///
/// Returns [`BenchError`] for options that make no run or a failed
/// connection.
pub async fn run(
    target: &Target,
    tokens: Vec<String>,
    load: &Load,
    server_pid: Option<u32>,
) -> Result<Report, BenchError> {
    if tokens.is_empty() {
        return Err(BenchError::Options("no tokens to send"));
    }
    if load.concurrency == 0 || load.duration.is_zero() {
        return Err(BenchError::Options("concurrency and duration must be above zero"));
    }
    if !(1..=crate::service::MAX_BATCH_TOKENS).contains(&load.batch) {
        return Err(BenchError::Options("batch must be between 1 and 32 tokens"));
    }
    if load.rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
        return Err(BenchError::Options(
            "rate must be a positive number of calls per second",
        ));
    }
    let clients = connect(target, load.connections).await?;
    let tokens = Arc::new(tokens);
    let measuring = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(true));
    // With a rate, a pacing thread hands out one ticket per call at even
    // intervals and the tasks take them in turn. tokio's timers tick in
    // whole milliseconds, which would send calls in bursts.
    let tickets = load.rate.map(|rate| pace(rate, 4 * load.concurrency, running.clone()));

    let mut tasks = Vec::with_capacity(load.concurrency);
    for index in 0..load.concurrency {
        let mut client = clients[index % clients.len()].clone();
        let (tokens, measuring, running, tickets) =
            (tokens.clone(), measuring.clone(), running.clone(), tickets.clone());
        let (concurrency, batch) = (load.concurrency, load.batch);
        tasks.push(tokio::spawn(async move {
            let mut sample = Sample::default();
            let mut next = index;
            while running.load(Ordering::Relaxed) {
                // A paced call counts from when its ticket was issued.
                let issued = match &tickets {
                    Some(tickets) => match tickets.lock().await.recv().await {
                        Some(issued) => Some(issued),
                        None => break,
                    },
                    None => None,
                };
                let mut requests: Vec<DecryptRequest> = (0..batch)
                    .map(|_| {
                        let token = tokens[next % tokens.len()].clone();
                        next += concurrency;
                        DecryptRequest {
                            token,
                            ..DecryptRequest::default()
                        }
                    })
                    .collect();
                let sent = issued.unwrap_or_else(Instant::now);
                // Each token of a batch counts as one call, completed when
                // the batch returns.
                let errors: Vec<Option<String>> = if batch == 1 {
                    let request = requests.pop().unwrap_or_default();
                    vec![client.decrypt(request).await.err().map(|status| reason_of(&status))]
                } else {
                    match client.decrypt_batch(DecryptBatchRequest { requests }).await {
                        Ok(reply) => reply
                            .into_inner()
                            .results
                            .into_iter()
                            .map(|item| match item.result {
                                Some(decrypt_result::Result::Claims(_)) => None,
                                Some(decrypt_result::Result::Error(error)) => Some(error.reason),
                                None => Some("EMPTY_RESULT".to_owned()),
                            })
                            .collect(),
                        Err(status) => vec![Some(reason_of(&status)); batch],
                    }
                };
                if measuring.load(Ordering::Relaxed) {
                    let elapsed = sent.elapsed();
                    for error in errors {
                        sample.record(elapsed, error);
                    }
                }
            }
            sample
        }));
    }

    tokio::time::sleep(load.warmup).await;
    let cpu_before = server_pid.and_then(cpu_ticks);
    let window = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(load.duration).await;
    measuring.store(false, Ordering::Relaxed);
    let seconds = window.elapsed().as_secs_f64();
    let cpu_after = server_pid.and_then(cpu_ticks);
    running.store(false, Ordering::Relaxed);

    let mut total = Sample::default();
    for task in tasks {
        if let Ok(sample) = task.await {
            total.merge(sample);
        }
    }
    let calls = total.latencies_us.len() as u64;
    let server_cpu_us_per_call = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) if calls > 0 => {
            Some((after.saturating_sub(before)) as f64 * 1e6 / TICKS_PER_SECOND as f64 / calls as f64)
        }
        _ => None,
    };
    Ok(total.report(seconds, server_cpu_us_per_call, server_pid.and_then(peak_rss_bytes)))
}

/// Starts a thread that issues one ticket, stamped with its time, every
/// `1 / rate` seconds until `running` turns false. A ticket waits in the
/// queue while every task is busy, and that wait counts in the call's
/// latency. The queue has room for `backlog` tickets, so when the server
/// cannot keep up, the thread waits instead of filling memory.
fn pace(
    rate: f64,
    backlog: usize,
    running: Arc<AtomicBool>,
) -> Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Instant>>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(backlog.max(1));
    let interval = Duration::from_secs_f64(1.0 / rate);
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut sent = 0_u32;
        while running.load(Ordering::Relaxed) {
            let due = started + interval * sent;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if sender.blocking_send(Instant::now()).is_err() {
                return;
            }
            sent = sent.saturating_add(1);
        }
    });
    Arc::new(tokio::sync::Mutex::new(receiver))
}

/// Latencies and errors seen by one task.
#[derive(Default)]
struct Sample {
    latencies_us: Vec<f64>,
    errors: BTreeMap<String, u64>,
}

// === impl Sample ===

impl Sample {
    fn record(&mut self, elapsed: Duration, error: Option<String>) {
        self.latencies_us.push(elapsed.as_secs_f64() * 1e6);
        if let Some(reason) = error {
            *self.errors.entry(reason).or_default() += 1;
        }
    }

    fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
        for (reason, count) in other.errors {
            *self.errors.entry(reason).or_default() += count;
        }
    }

    fn report(
        mut self,
        seconds: f64,
        server_cpu_us_per_call: Option<f64>,
        server_peak_rss_bytes: Option<u64>,
    ) -> Report {
        self.latencies_us.sort_by(f64::total_cmp);
        let calls = self.latencies_us.len() as u64;
        Report {
            calls,
            errors: self.errors.values().sum(),
            error_reasons: self.errors,
            seconds,
            calls_per_second: calls as f64 / seconds.max(f64::EPSILON),
            p50_us: percentile(&self.latencies_us, 0.50),
            p90_us: percentile(&self.latencies_us, 0.90),
            p99_us: percentile(&self.latencies_us, 0.99),
            max_us: self.latencies_us.last().copied().unwrap_or(0.0),
            server_cpu_us_per_call,
            server_peak_rss_bytes,
        }
    }
}

/// Returns the value below which `share` of the sorted values lie
/// (nearest rank).
fn percentile(sorted: &[f64], share: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (share * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn reason_of(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;

    status
        .get_details_error_info()
        .map_or_else(|| format!("{:?}", status.code()), |info| info.reason)
}

// === impl Target ===

impl Target {
    /// Formats the target as a user would write it.
    pub fn describe(&self) -> String {
        match self {
            Target::Unix(path) => format!("unix:{}", path.display()),
            Target::Tcp(address) => address.clone(),
        }
    }
}

/// User plus system CPU ticks of process `pid`, from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may contain spaces, so fields are
    // counted after it. utime and stime (fields 14 and 15) are at 11 and 12.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Peak resident set size of process `pid` (`VmHWM`), in bytes.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.50), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&values, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.5), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn own_process_has_cpu_time_and_peak_memory() {
        let pid = std::process::id();
        let spin = Instant::now();
        let mut x = 0_u64;
        while spin.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        assert!(x != 1);
        assert!(cpu_ticks(pid).is_some_and(|ticks| ticks > 0));
        assert!(peak_rss_bytes(pid).is_some_and(|bytes| bytes > 1024 * 1024));
        assert_eq!(cpu_ticks(u32::MAX), None);
    }
}
