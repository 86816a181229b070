//! Prometheus metrics of the operations port.
//!
//! Call metrics are counted by the Decryptor service as calls end. The key
//! store's reload counts and the claims cache's lookups are read from the
//! store at each scrape, so that they never drift from what the store
//! reports through `jwed.v1.Keys/Status`.

use std::{
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::{ConstGauge, Gauge},
        histogram::Histogram,
    },
    registry::{Registry, Unit},
};

use crate::store::KeyStore;

/// Upper bounds of the call duration histogram, in seconds: 50 µs to
/// 2.6 s, doubling.
fn duration_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 2.0, 16,
    ))
}

/// Labels of a finished call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    /// Full gRPC method name.
    method: &'static str,
    /// `allowed` or `rejected`.
    outcome: &'static str,
    /// `OK` or the ErrorInfo reason.
    reason: &'static str,
}

/// Labels of the duration histogram: reasons are left out to keep the
/// number of series small.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    method: &'static str,
    outcome: &'static str,
}

/// The service's metrics and the registry they are encoded from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    durations: Family<DurationLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
    audit_failures: Counter,
}

// === impl Metrics ===

impl Metrics {
    /// Creates the call metrics, and reads reload and cache metrics from
    /// `store` when there is one.
    pub fn new(store: Option<Arc<KeyStore>>) -> Self {
        let mut registry = Registry::with_prefix("jwed");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "calls",
            "Decrypt calls and batch tokens that ended, by method, outcome and reason",
            calls.clone(),
        );
        let durations = Family::<DurationLabels, Histogram, fn() -> Histogram>::new_with_constructor(duration_buckets);
        registry.register_with_unit(
            "call_duration",
            "Time from the start of a call to its reply, audit record included",
            Unit::Seconds,
            durations.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "calls_in_flight",
            "Decrypt calls and batch tokens being served",
            in_flight.clone(),
        );
        let audit_failures = Counter::default();
        registry.register(
            "audit_write_failures",
            "Audit records that could not be written",
            audit_failures.clone(),
        );
        if let Some(store) = store {
            registry.register_collector(Box::new(StoreCollector(store)));
        }
        Metrics {
            registry,
            calls,
            durations,
            in_flight,
            audit_failures,
        }
    }

    /// Counts a finished call.
    pub fn record_call(&self, method: &'static str, reason: &'static str, elapsed: Duration) {
        let outcome = if reason == "OK" { "allowed" } else { "rejected" };
        self.calls
            .get_or_create(&CallLabels {
                method,
                outcome,
                reason,
            })
            .inc();
        self.durations
            .get_or_create(&DurationLabels { method, outcome })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts an audit record that could not be written.
    pub fn record_audit_failure(&self) {
        self.audit_failures.inc();
    }

    /// Marks one more call in flight until the returned guard is dropped.
    pub fn call_started(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Encodes every metric in the OpenMetrics text format, which
    /// Prometheus reads.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %error, "Cannot encode the metrics");
        }
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(None)
    }
}

/// Decrements the in-flight gauge when a call ends, however it ends.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Reads the key store's reload state and cache counters at each scrape.
struct StoreCollector(Arc<KeyStore>);

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCollector").finish_non_exhaustive()
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let store = &self.0;
        if let Some(status) = store.status() {
            let reloads = Family::<[(&str, &str); 1], Counter>::default();
            reloads.get_or_create(&[("result", "success")]).inc_by(status.reloads);
            reloads.get_or_create(&[("result", "failure")]).inc_by(status.failures);
            reloads.encode(encoder.encode_descriptor(
                "key_reloads",
                "Key set reloads since start, by result. A file that stays broken counts once",
                None,
                reloads.metric_type(),
            )?)?;

            let failing = ConstGauge::new(i64::from(status.last_error.is_some()));
            failing.encode(encoder.encode_descriptor(
                "key_reload_failing",
                "Whether the key files currently fail to load (1) or not (0)",
                None,
                failing.metric_type(),
            )?)?;

            let loaded_at = status
                .loaded_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX));
            let loaded = ConstGauge::new(loaded_at);
            loaded.encode(encoder.encode_descriptor(
                "keys_loaded_timestamp",
                "When the key set in force was loaded, in seconds since the epoch",
                Some(&Unit::Seconds),
                loaded.metric_type(),
            )?)?;
        }

        let revocations = ConstGauge::new(i64::try_from(store.revocations_in_memory()).unwrap_or(i64::MAX));
        revocations.encode(encoder.encode_descriptor(
            "revocations_in_memory",
            "Revocations added through the Admin call",
            None,
            revocations.metric_type(),
        )?)?;

        let cache = store.cache();
        let (hits, misses) = cache.hits_and_misses();
        let lookups = Family::<[(&str, &str); 1], Counter>::default();
        lookups.get_or_create(&[("result", "hit")]).inc_by(hits);
        lookups.get_or_create(&[("result", "miss")]).inc_by(misses);
        lookups.encode(encoder.encode_descriptor(
            "claims_cache_lookups",
            "Claims cache lookups, by result",
            None,
            lookups.metric_type(),
        )?)?;
        let entries = ConstGauge::new(i64::try_from(cache.len()).unwrap_or(i64::MAX));
        entries.encode(encoder.encode_descriptor(
            "claims_cache_entries",
            "Verified tokens held in the claims cache",
            None,
            entries.metric_type(),
        )?)?;
        Ok(())
    }
}
