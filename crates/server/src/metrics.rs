//! Prometheus metrics under the names of ZooKeeper's `PrometheusMetricsProvider` for what
//! both servers have, and `warren_`-prefixed names for Warren's own.
//!
//! Everything is counted where it happens, with atomics only (the `prometheus` crate's
//! counters and histograms are lock-free): connection tasks count bytes in and out and
//! response sizes, the driver observes request latencies, the disk thread times its
//! fsyncs and the snapshot thread its snapshots. What the driver owns (znodes, watches,
//! connections, sessions, ...) is not mirrored on every change: a scrape asks the driver
//! for the rows `mntr` shows and sets the gauges of the same names from them.
//!
//! ZooKeeper exposes latencies as summaries (quantiles); the Rust clients have no summary
//! type, and histograms aggregate across servers, so Warren exposes them as histograms under
//! the same names and in the same unit (milliseconds): `_sum` and `_count` read the same.

use crate::four_letter::Stat;
use prometheus::{Encoder, Gauge, Histogram, HistogramOpts, IntCounter, Registry, TextEncoder};
use proto::OpCode;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Latency buckets in milliseconds: an fsync or an in-memory read takes well under one,
/// a write waiting behind a slow disk seconds.
const LATENCY_BUCKETS_MS: &[f64] =
    &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0];

/// Snapshot buckets in milliseconds: snapshots are paced, so a large tree takes minutes.
const SNAPSHOT_BUCKETS_MS: &[f64] =
    &[10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10_000.0, 30_000.0, 60_000.0, 120_000.0, 300_000.0, 600_000.0];

/// An fsync slower than this is counted in `fsync_threshold_exceed_count` and logged, as
/// ZooKeeper does with `fsync.warningthresholdms` (default 1000).
pub(crate) const FSYNC_WARNING_MS: u64 = 1000;

/// `mntr` rows that become gauges of the same name at each scrape (ZooKeeper registers
/// these as gauges too). Every other numeric `mntr` row is a metric kept here directly.
const SAMPLED_GAUGES: &[&str] = &[
    "avg_latency",
    "max_latency",
    "min_latency",
    "packets_received",
    "packets_sent",
    "num_alive_connections",
    "outstanding_requests",
    "znode_count",
    "watch_count",
    "ephemerals_count",
    "approximate_data_size",
    "open_file_descriptor_count",
    "max_file_descriptor_count",
    "global_sessions",
    "uptime",
    "last_client_response_size",
    "min_client_response_size",
    "max_client_response_size",
    "auth_failed_count",
    "warren_log_healthy",
    // An ensemble member's (the leader's for the learner and proposal rows).
    "quorum_size",
    "diff_count",
    "snap_count",
    "learners",
    "synced_followers",
    "synced_non_voting_followers",
    "synced_observers",
    "pending_syncs",
    "leader_uptime",
    "last_proposal_size",
    "min_proposal_size",
    "max_proposal_size",
];

/// ZooKeeper's names of the operations (`Request.op2String`), the `op` label.
pub(crate) fn op_name(op: OpCode) -> &'static str {
    use OpCode::*;
    match op {
        Notification => "notification",
        Create => "create",
        Delete => "delete",
        Exists => "exists",
        GetData => "getData",
        SetData => "setData",
        GetAcl => "getACL",
        SetAcl => "setACL",
        GetChildren => "getChildren",
        Sync => "sync",
        Ping => "ping",
        GetChildren2 => "getChildren2",
        Check => "check",
        Multi => "multi",
        Create2 => "create2",
        Reconfig => "reconfig",
        CheckWatches => "checkWatches",
        RemoveWatches => "removeWatches",
        CreateContainer => "createContainer",
        DeleteContainer => "deleteContainer",
        CreateTtl => "createTTL",
        MultiRead => "multiRead",
        Auth => "auth",
        SetWatches => "setWatches",
        Sasl => "sasl",
        GetEphemerals => "getEphemerals",
        GetAllChildrenNumber => "getAllChildrenNumber",
        SetWatches2 => "setWatches2",
        AddWatch => "addWatch",
        WhoAmI => "whoAmI",
        CreateSession => "createSession",
        CloseSession => "closeSession",
        Error => "error",
    }
}

/// The opcodes that get a latency histogram of their own (every request a client sends).
const OPS: &[OpCode] = &[
    OpCode::Create,
    OpCode::Delete,
    OpCode::Exists,
    OpCode::GetData,
    OpCode::SetData,
    OpCode::GetAcl,
    OpCode::SetAcl,
    OpCode::GetChildren,
    OpCode::Sync,
    OpCode::Ping,
    OpCode::GetChildren2,
    OpCode::Check,
    OpCode::Multi,
    OpCode::Create2,
    OpCode::Reconfig,
    OpCode::CheckWatches,
    OpCode::RemoveWatches,
    OpCode::CreateContainer,
    OpCode::DeleteContainer,
    OpCode::CreateTtl,
    OpCode::MultiRead,
    OpCode::Auth,
    OpCode::SetWatches,
    OpCode::Sasl,
    OpCode::GetEphemerals,
    OpCode::GetAllChildrenNumber,
    OpCode::SetWatches2,
    OpCode::AddWatch,
    OpCode::WhoAmI,
    OpCode::CloseSession,
];

/// The last, smallest and largest of some buffers' sizes, as ZooKeeper's `BufferStats`:
/// -1 until the first (and after `srst`). Replies to clients (without the length prefix),
/// and a leader's proposals.
#[derive(Debug)]
pub(crate) struct BufferSizes {
    last: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
}

impl Default for BufferSizes {
    fn default() -> BufferSizes {
        BufferSizes::new()
    }
}

impl BufferSizes {
    fn new() -> BufferSizes {
        BufferSizes { last: AtomicI64::new(-1), min: AtomicI64::new(-1), max: AtomicI64::new(-1) }
    }

    pub fn record(&self, size: usize) {
        let size = size as i64;
        self.last.store(size, Ordering::Relaxed);
        self.max.fetch_max(size, Ordering::Relaxed);
        let _ = self.min.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| (m < 0 || size < m).then_some(size));
    }

    /// Last, smallest and largest.
    pub fn get(&self) -> (i64, i64, i64) {
        (self.last.load(Ordering::Relaxed), self.min.load(Ordering::Relaxed), self.max.load(Ordering::Relaxed))
    }

    pub fn reset(&self) {
        for a in [&self.last, &self.min, &self.max] {
            a.store(-1, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Metrics {
    registry: Registry,
    /// `bytes_received_count`: bytes read from client connections.
    pub bytes_received: IntCounter,
    /// `response_bytes`: bytes of replies written to clients.
    pub response_bytes: IntCounter,
    /// `watch_bytes`: bytes of watch notifications written to clients.
    pub watch_bytes: IntCounter,
    /// `fsynctime`: how long each log append took to become durable (write and fsync).
    pub fsync_time: Histogram,
    /// Fsyncs slower than [`FSYNC_WARNING_MS`] since the last `srst` (ZooKeeper's
    /// `fsync_threshold_exceed_count`, which `srst` resets, so not a Prometheus counter).
    pub fsync_threshold_exceeded: AtomicU64,
    /// `snapshottime`: how long each snapshot took to write, from its first chunk to its rename.
    pub snapshot_time: Histogram,
    read_latency: Histogram,
    update_latency: Histogram,
    by_op: HashMap<OpCode, Histogram>,
    pub response_sizes: BufferSizes,
    sampled: Vec<(&'static str, Gauge)>,
}

fn histogram(name: &str, help: &str, buckets: &[f64]) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("metric names and buckets are valid constants")
}

impl Metrics {
    pub fn new() -> Metrics {
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric name");
        let by_op = OPS
            .iter()
            .map(|&op| {
                let opts = HistogramOpts::new(
                    "warren_request_latency_ms",
                    "Time from reading a request to queueing its reply, by operation (ms).",
                )
                .const_label("op", op_name(op))
                .buckets(LATENCY_BUCKETS_MS.to_vec());
                (op, Histogram::with_opts(opts).expect("valid metric"))
            })
            .collect();
        let metrics = Metrics {
            registry: Registry::new(),
            bytes_received: counter("bytes_received_count", "Bytes read from client connections."),
            response_bytes: counter("response_bytes", "Bytes of replies written to clients."),
            watch_bytes: counter("watch_bytes", "Bytes of watch notifications written to clients."),
            fsync_time: histogram(
                "fsynctime",
                "Time to make one batch of the transaction log durable (ms).",
                LATENCY_BUCKETS_MS,
            ),
            fsync_threshold_exceeded: AtomicU64::new(0),
            snapshot_time: histogram("snapshottime", "Time to write one snapshot (ms).", SNAPSHOT_BUCKETS_MS),
            read_latency: histogram("readlatency", "Latency of requests that are not writes (ms).", LATENCY_BUCKETS_MS),
            update_latency: histogram("updatelatency", "Latency of writes (ms).", LATENCY_BUCKETS_MS),
            by_op,
            response_sizes: BufferSizes::new(),
            sampled: SAMPLED_GAUGES
                .iter()
                .map(|&name| (name, Gauge::new(name, name.replace('_', " ")).expect("valid metric name")))
                .collect(),
        };
        let registry = &metrics.registry;
        let mut collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.bytes_received.clone()),
            Box::new(metrics.response_bytes.clone()),
            Box::new(metrics.watch_bytes.clone()),
            Box::new(metrics.fsync_time.clone()),
            Box::new(metrics.snapshot_time.clone()),
            Box::new(metrics.read_latency.clone()),
            Box::new(metrics.update_latency.clone()),
        ];
        collectors.extend(metrics.by_op.values().map(|h| Box::new(h.clone()) as Box<dyn prometheus::core::Collector>));
        collectors
            .extend(metrics.sampled.iter().map(|(_, g)| Box::new(g.clone()) as Box<dyn prometheus::core::Collector>));
        for c in collectors {
            registry.register(c).expect("metric names are distinct");
        }
        metrics
    }

    /// A reply left the driver `latency` after its request was read.
    pub fn observe_request(&self, op: Option<OpCode>, latency: Duration) {
        let ms = latency.as_secs_f64() * 1000.0;
        // As ZooKeeper: requests that become transactions are updates, the rest reads.
        if op.is_some_and(OpCode::is_write) {
            self.update_latency.observe(ms);
        } else {
            self.read_latency.observe(ms);
        }
        if let Some(h) = op.and_then(|op| self.by_op.get(&op)) {
            h.observe(ms);
        }
    }

    /// One log append (write and fsync) took `elapsed`.
    pub fn observe_fsync(&self, elapsed: Duration) {
        self.fsync_time.observe(elapsed.as_secs_f64() * 1000.0);
        let ms = elapsed.as_millis() as u64;
        if ms > FSYNC_WARNING_MS {
            self.fsync_threshold_exceeded.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(elapsed_ms = ms, "fsync of the transaction log was slow: write latency suffers");
        }
    }

    /// The rows of `mntr` for the metrics kept here rather than sampled.
    pub fn monitor_rows(&self) -> Vec<(&'static str, Stat)> {
        let (last, min, max) = self.response_sizes.get();
        vec![
            ("bytes_received_count", Stat::Int(self.bytes_received.get() as i64)),
            ("response_bytes", Stat::Int(self.response_bytes.get() as i64)),
            ("watch_bytes", Stat::Int(self.watch_bytes.get() as i64)),
            ("last_client_response_size", Stat::Int(last)),
            ("min_client_response_size", Stat::Int(min)),
            ("max_client_response_size", Stat::Int(max)),
        ]
    }

    /// The Prometheus text exposition of everything, with the driver's `mntr` rows (taken
    /// just before) as gauges.
    pub fn render(&self, monitor: &[(&'static str, Stat)]) -> String {
        for (name, gauge) in &self.sampled {
            if let Some(value) = monitor.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_f64()) {
                gauge.set(value);
            }
        }
        let mut out = Vec::new();
        // Encoding into a Vec fails only on invalid metric families, which are constants here.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Whether `name` is a metric family of the registry (gauges included).
    #[cfg(test)]
    fn has(&self, name: &str) -> bool {
        self.registry.gather().iter().any(|f| f.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_by_kind_and_operation() {
        let m = Metrics::new();
        m.observe_request(Some(OpCode::Create), Duration::from_micros(1500));
        m.observe_request(Some(OpCode::GetData), Duration::from_micros(200));
        m.observe_request(Some(OpCode::GetData), Duration::from_micros(300));
        m.observe_request(None, Duration::from_micros(300));
        assert_eq!(m.update_latency.get_sample_count(), 1);
        assert_eq!(m.read_latency.get_sample_count(), 3);
        assert_eq!(m.by_op[&OpCode::GetData].get_sample_count(), 2);
        assert!((m.by_op[&OpCode::Create].get_sample_sum() - 1.5).abs() < 1e-9);
        let text = m.render(&[]);
        assert!(text.contains("warren_request_latency_ms_count{op=\"getData\"} 2\n"), "{text}");
        assert!(text.contains("# TYPE updatelatency histogram\n"), "{text}");
    }

    #[test]
    fn sampled_gauges_take_monitor_values() {
        let m = Metrics::new();
        let text = m.render(&[("znode_count", Stat::Int(42)), ("avg_latency", Stat::Float(0.25))]);
        assert!(text.contains("\nznode_count 42\n"), "{text}");
        assert!(text.contains("\navg_latency 0.25\n"), "{text}");
        m.bytes_received.inc_by(7);
        assert!(m.render(&[]).contains("\nbytes_received_count 7\n"));
    }

    #[test]
    fn every_kept_monitor_row_is_a_metric() {
        let m = Metrics::new();
        for (name, _) in m.monitor_rows() {
            assert!(m.has(name) || SAMPLED_GAUGES.contains(&name), "{name} is in mntr but not in /metrics");
        }
    }

    #[test]
    fn response_sizes_start_unset_and_track_extremes() {
        let s = BufferSizes::new();
        assert_eq!(s.get(), (-1, -1, -1));
        s.record(16);
        s.record(93);
        s.record(20);
        assert_eq!(s.get(), (20, 16, 93));
        s.reset();
        assert_eq!(s.get(), (-1, -1, -1));
    }
}
