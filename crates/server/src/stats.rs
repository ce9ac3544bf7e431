//! Counters behind the four-letter words: request latency and per-connection traffic.

use proto::OpCode;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Request latency in whole milliseconds, as ZooKeeper reports it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Latency {
    min: Option<u64>,
    max: u64,
    total: u64,
    count: u64,
}

impl Latency {
    pub fn record(&mut self, latency: Duration) {
        let ms = latency.as_millis() as u64;
        self.min = Some(self.min.map_or(ms, |m| m.min(ms)));
        self.max = self.max.max(ms);
        self.total += ms;
        self.count += 1;
    }

    pub fn min(&self) -> u64 {
        self.min.unwrap_or(0)
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean rounded to 4 decimals, as ZooKeeper's `AvgMinMaxCounter`.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.total as f64 / self.count as f64 * 10_000.0).round() / 10_000.0
        }
    }
}

#[derive(Debug)]
pub(crate) struct ConnStats {
    pub established_ms: i64,
    pub received: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_xid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub latency: Latency,
    /// Requests awaiting their reply: xid, operation and arrival time, oldest first.
    waiting: VecDeque<(i32, Option<OpCode>, Instant)>,
}

impl ConnStats {
    pub fn new(now_ms: i64) -> ConnStats {
        ConnStats {
            established_ms: now_ms,
            received: 1,
            sent: 0,
            last_op: "NA",
            last_xid: 0,
            last_zxid: 0,
            last_response_ms: 0,
            last_latency_ms: 0,
            latency: Latency::default(),
            waiting: VecDeque::new(),
        }
    }

    pub fn queued(&self) -> usize {
        self.waiting.len()
    }

    pub fn received(&mut self, xid: i32, op: Option<OpCode>, at: Instant) {
        self.received += 1;
        self.last_op = op.map_or("NA", OpCode::short_name);
        if xid >= 0 {
            self.last_xid = xid;
        }
        self.waiting.push_back((xid, op, at));
    }

    /// Matches a reply to its request; returns the request's latency and operation.
    pub fn replied(&mut self, xid: i32, zxid: i64, now: Instant, now_ms: i64) -> Option<(Duration, Option<OpCode>)> {
        let i = self.waiting.iter().position(|(x, _, _)| *x == xid)?;
        let (_, op, at) = self.waiting.remove(i)?;
        let latency = now.saturating_duration_since(at);
        self.last_zxid = zxid;
        self.last_response_ms = now_ms;
        self.last_latency_ms = latency.as_millis() as u64;
        self.latency.record(latency);
        Some((latency, op))
    }

    /// `crst`: as ZooKeeper's `ServerCnxn.resetStats`, which forgets the last operation too.
    pub fn reset(&mut self) {
        self.latency = Latency::default();
        self.received = 0;
        self.sent = 0;
        self.last_op = "NA";
        self.last_xid = -1;
        self.last_zxid = -1;
        self.last_response_ms = 0;
        self.last_latency_ms = 0;
    }
}
