//! The driver: the one task that owns the [`Replica`]. Connections send it inputs; it steps
//! the replica with the wall clock and routes the outputs to the connections' queues.
//! Transactions are applied once durable; this standalone build keeps them in memory, so
//! each batch of inputs is followed by one `Persisted` for everything it appended.

use crate::stats::{ConnStats, Latency};
use crate::Config;
use proto::{ConnectResponse, EventType, ReplyHeader, Response};
use replica::{ConnId, Input, Output, Replica};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// What a connection task sends to the driver.
pub(crate) enum ToDriver {
    Open {
        conn: ConnId,
        addr: SocketAddr,
        tx: mpsc::Sender<Outbound>,
        kill: oneshot::Sender<()>,
    },
    /// An input for the replica, with the time its frame was read (for latency stats).
    Input(Input, Instant),
    FourLetter {
        command: &'static str,
        addr: SocketAddr,
        reply: oneshot::Sender<String>,
    },
}

/// What the driver sends to a connection task; it encodes and writes them in order.
#[derive(Debug)]
pub(crate) enum Outbound {
    Connected(ConnectResponse),
    Reply(ReplyHeader, Option<Response>),
    Notify(EventType, String),
    Close,
}

pub(crate) struct ConnHandle {
    pub addr: SocketAddr,
    pub tx: mpsc::Sender<Outbound>,
    /// Fired when the client stops reading: its task drops the socket even mid-write.
    pub kill: Option<oneshot::Sender<()>>,
    pub stats: ConnStats,
}

pub(crate) struct Driver {
    pub replica: Replica,
    pub config: Arc<Config>,
    pub conns: BTreeMap<ConnId, ConnHandle>,
    pub latency: Latency,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub started: Instant,
    /// The highest zxid appended and not yet reported persisted.
    appended_zxid: i64,
    persisted_zxid: i64,
}

pub(crate) fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Driver {
    pub fn new(config: Arc<Config>, seed: u64) -> Driver {
        let replica_config = replica::Config {
            server_id: config.server_id,
            tick_ms: config.tick_ms,
            min_session_timeout_ms: config.min_session_timeout_ms,
            max_session_timeout_ms: config.max_session_timeout_ms,
            ttl_enabled: config.ttl_enabled,
            super_digest: config.super_digest.clone(),
            container_check_interval_ms: config.container_check_interval_ms,
        };
        Driver {
            replica: Replica::new(replica_config, wall_ms(), seed),
            config,
            conns: BTreeMap::new(),
            latency: Latency::default(),
            packets_received: 0,
            packets_sent: 0,
            started: Instant::now(),
            appended_zxid: 0,
            persisted_zxid: 0,
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<ToDriver>) {
        // Ticks finer than tickTime so that expiry lands close to its deadline.
        let period = Duration::from_millis((self.config.tick_ms as u64 / 4).clamp(10, 500));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = rx.recv() => {
                    let Some(message) = message else { return };
                    self.handle(message);
                    // Take what else is queued, so that one durability point covers the batch.
                    for _ in 0..1024 {
                        match rx.try_recv() {
                            Ok(message) => self.handle(message),
                            Err(_) => break,
                        }
                    }
                }
                _ = ticker.tick() => self.step(Input::Tick),
            }
            self.persist();
        }
    }

    fn handle(&mut self, message: ToDriver) {
        match message {
            ToDriver::Open { conn, addr, tx, kill } => {
                self.conns.insert(conn, ConnHandle { addr, tx, kill: Some(kill), stats: ConnStats::new(wall_ms()) });
            }
            ToDriver::Input(input, received) => {
                if let Input::Request { conn, xid, request } = &input {
                    self.packets_received += 1;
                    if let Some(c) = self.conns.get_mut(conn) {
                        c.stats.received(*xid, request.as_ref().ok().map(|r| r.opcode()), received);
                    }
                }
                let disconnected = match input {
                    Input::Disconnected { conn } => Some(conn),
                    _ => None,
                };
                self.step(input);
                if let Some(conn) = disconnected {
                    self.conns.remove(&conn);
                }
            }
            ToDriver::FourLetter { command, addr, reply } => {
                let _ = reply.send(self.four_letter(command, addr));
            }
        }
    }

    /// In-memory durability: everything appended is durable at once.
    fn persist(&mut self) {
        if self.appended_zxid > self.persisted_zxid {
            self.persisted_zxid = self.appended_zxid;
            self.step(Input::Persisted { zxid: self.persisted_zxid });
        }
    }

    fn step(&mut self, input: Input) {
        let now = Instant::now();
        for output in self.replica.step(wall_ms(), input) {
            let (conn, message) = match output {
                Output::Append { txn } => {
                    self.appended_zxid = txn.zxid;
                    continue;
                }
                Output::Connected { conn, response } => (conn, Outbound::Connected(response)),
                Output::Reply { conn, header, body } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        if let Some(latency) = c.stats.replied(header.xid, header.zxid, now) {
                            self.latency.record(latency);
                        }
                    }
                    (conn, Outbound::Reply(header, body))
                }
                Output::Notify { conn, event, path } => (conn, Outbound::Notify(event, path)),
                Output::Close { conn } => (conn, Outbound::Close),
            };
            if let Some(c) = self.conns.get_mut(&conn) {
                if !matches!(message, Outbound::Close) {
                    self.packets_sent += 1;
                    c.stats.sent += 1;
                }
                if let Err(mpsc::error::TrySendError::Full(_)) = c.tx.try_send(message) {
                    // The driver never waits for one client: a client that lets this much
                    // pile up unread loses its connection (its session lives on).
                    tracing::warn!(conn = conn.0, addr = %c.addr, "client is not reading its replies: connection closed");
                    if let Some(kill) = c.kill.take() {
                        let _ = kill.send(());
                    }
                }
            }
        }
    }
}
