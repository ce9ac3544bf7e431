//! The driver: the one task that owns the [`Replica`]. Connections send it inputs; it steps
//! the replica with the wall clock and routes the outputs to the connections' queues.
//! Transactions go to the disk thread once per batch of inputs; the replica applies and
//! answers them when the disk thread reports them durable.

use crate::metrics::Metrics;
use crate::quorum::{FromPeer, Links};
use crate::stats::{ConnStats, Latency};
use crate::storage::LogJob;
use crate::Config;
use proto::Record;
use proto::{ConnectResponse, ErrorCode, EventType, ReplyHeader, Response};
use replica::{ConnId, Input, Output, Replica, Role, SnapshotPart};
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
    /// From the disk thread: everything up to `zxid` is durable.
    Logged {
        zxid: i64,
    },
    /// From the disk thread: the log failed; pending writes are lost.
    LogFailed {
        reason: String,
    },
    LogHealthy,
    /// From another server of the ensemble, on incoming connection number `link`.
    Peer {
        from: zab::ServerId,
        link: u64,
        msg: FromPeer,
    },
    /// From the snapshot thread, in an ensemble: a snapshot is on disk; ZAB's log before it
    /// can go, and followers behind it get it.
    SnapshotSaved {
        zxid: i64,
        bytes: Vec<u8>,
    },
    /// From the admin server: runs on the driver, which owns what the admin commands and
    /// the metrics report; the closure sends its answer back on its own channel.
    Inspect(Box<dyn FnOnce(&mut Driver) + Send>),
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
    /// The clocks as read for the batch of inputs being handled.
    now: Instant,
    now_ms: i64,
    /// Log entries for the disk thread, sent once per batch of inputs.
    to_log: Vec<(i64, Vec<u8>)>,
    to_log_generation: u64,
    log: std::sync::mpsc::Sender<LogJob>,
    /// Why the log last failed, while it is failed.
    pub log_error: Option<String>,
    pub metrics: Arc<Metrics>,
    /// Replies of AuthFailed (`auth_failed_count`).
    pub auth_failed: u64,
    /// In an ensemble: this server's ZAB peer and its connections to the others.
    pub replication: Option<Replication>,
}

/// One server's part in ZAB, driven by the driver: the peer's outputs are carried out
/// here, in order (epochs saved before anything after them, log writes through the disk
/// thread, commits into the replica).
pub(crate) struct Replication {
    pub peer: zab::Peer,
    pub links: Links,
    /// The newest incoming quorum connection from each peer.
    pub newest_link: BTreeMap<zab::ServerId, u64>,
    pub stats: ReplicationStats,
}

/// What the four-letter words report of replication, under ZooKeeper's names.
#[derive(Debug, Default)]
pub(crate) struct ReplicationStats {
    /// Bytes of the proposals (`Proposal sizes last/min/max`).
    pub proposal_sizes: crate::metrics::BufferSizes,
    /// Followers synchronized (`zk_diff_count` counts those not sent a snapshot).
    pub syncs: u64,
    /// Followers sent a snapshot (`zk_snap_count`).
    pub snaps: u64,
    /// When this server last became the established leader (`zk_leader_uptime`).
    pub leading_since: Option<Instant>,
}

pub(crate) fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Driver {
    pub fn new(
        config: Arc<Config>,
        replica: Replica,
        log: std::sync::mpsc::Sender<LogJob>,
        metrics: Arc<Metrics>,
    ) -> Driver {
        Driver {
            replica,
            config,
            conns: BTreeMap::new(),
            latency: Latency::default(),
            packets_received: 0,
            packets_sent: 0,
            started: Instant::now(),
            now: Instant::now(),
            now_ms: wall_ms(),
            to_log: Vec::new(),
            to_log_generation: 0,
            log,
            log_error: None,
            metrics,
            auth_failed: 0,
            replication: None,
        }
    }

    /// Nodes serialized per snapshot chunk: small enough that requests wait at most a few
    /// hundred microseconds behind one.
    const SNAPSHOT_CHUNK_NODES: usize = 500;

    pub async fn run(mut self, mut rx: mpsc::Receiver<ToDriver>, snapshots: mpsc::Sender<SnapshotPart>) {
        // Ticks finer than tickTime so that expiry lands close to its deadline.
        let period = Duration::from_millis((self.config.tick_ms as u64 / 4).clamp(10, 500));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // ZAB counts initLimit and syncLimit in ticks of tickTime.
        let mut zab_ticker = tokio::time::interval(Duration::from_millis(self.config.tick_ms as u64));
        zab_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Ticks first: under a steady stream of requests they must still come
                // (session reports to the leader, ZAB's pings and timeouts).
                biased;
                _ = zab_ticker.tick(), if self.replication.is_some() => {
                    self.read_clock();
                    self.zab(zab::Input::Tick);
                }
                _ = ticker.tick() => {
                    self.read_clock();
                    self.step(Input::Tick);
                }
                message = rx.recv() => {
                    let Some(message) = message else { return };
                    self.read_clock();
                    self.handle(message);
                    // Take what else is queued, so that one durability point covers the batch.
                    for _ in 0..1024 {
                        match rx.try_recv() {
                            Ok(message) => self.handle(message),
                            Err(_) => break,
                        }
                    }
                }
                // Snapshot chunks are made only when requests are not waiting (`biased`
                // order) and only as fast as the snapshot thread writes them.
                permit = snapshots.reserve(), if self.replica.snapshot_in_progress() => {
                    let (Ok(permit), Some(part)) = (permit, self.replica.snapshot_chunk(Self::SNAPSHOT_CHUNK_NODES)) else {
                        continue;
                    };
                    permit.send(part);
                }
            }
            self.flush_log();
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
                // ZooKeeper counts the handshake as a packet received, as its reply is one sent.
                if let Input::Connect { .. } = &input {
                    self.packets_received += 1;
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
            ToDriver::Logged { zxid } if self.replication.is_some() => self.zab(zab::Input::Persisted { zxid }),
            ToDriver::Logged { zxid } => self.step(Input::Persisted { zxid }),
            ToDriver::LogFailed { reason } if self.replication.is_some() => {
                // A member that cannot log must not acknowledge: it leaves the ensemble, which
                // goes on without it, as ZooKeeper's does.
                tracing::error!(reason, "the transaction log failed; leaving the ensemble");
                std::process::exit(1);
            }
            ToDriver::LogFailed { reason } => {
                self.log_error = Some(reason);
                self.step(Input::LogFailed);
            }
            ToDriver::LogHealthy => {
                self.log_error = None;
                self.step(Input::LogHealthy);
            }
            ToDriver::Inspect(inspect) => inspect(self),
            ToDriver::Peer { from, link, msg } => match msg {
                FromPeer::Zab { stream, msg } => {
                    if let (Some(r), true) = (self.replication.as_mut(), stream.1 != 0) {
                        let newest = r.newest_link.entry(from).or_insert(link);
                        *newest = (*newest).max(link);
                    }
                    self.zab(zab::Input::Message { from, stream, msg })
                }
                // Only the end of the newest connection means the peer is gone.
                FromPeer::Down if self.replication.as_ref().is_some_and(|r| r.newest_link.get(&from) > Some(&link)) => {
                }
                FromPeer::Down => self.zab(zab::Input::LinkDown { peer: from }),
            },
            ToDriver::SnapshotSaved { zxid, bytes } => self.zab(zab::Input::Compact { zxid, snapshot: bytes }),
        }
    }

    /// Joins the ensemble: the replica serves nobody until ZAB makes it a leader or a
    /// synchronized follower.
    pub fn start_replication(&mut self, replication: Replication) {
        self.replication = Some(replication);
        self.step(Input::RoleChanged(Role::Looking));
        // The peer's first election notifications.
        self.zab(zab::Input::Tick);
    }

    /// Steps the ZAB peer and carries out what it asks, in order.
    fn zab(&mut self, input: zab::Input) {
        let Some(replication) = self.replication.as_mut() else { return };
        let outputs = replication.peer.step(input);
        for output in outputs {
            let Some(replication) = self.replication.as_mut() else { return };
            match output {
                zab::Output::Send { to, stream, msg } => {
                    let stats = &mut replication.stats;
                    match &msg {
                        zab::Message::NewLeader { .. } => stats.syncs += 1,
                        zab::Message::Snap { .. } => stats.snaps += 1,
                        _ => {}
                    }
                    replication.links.send_zab(to, stream, &msg)
                }
                zab::Output::Append { entries } => {
                    self.to_log.extend(entries.into_iter().map(|e| (e.zxid, e.data)));
                }
                zab::Output::Truncate { after } => {
                    // Durable before anything after it (an AckNewLeader may follow at once):
                    // wait for the disk thread. Only a synchronizing follower does this.
                    self.flush_log();
                    let (done, cut) = std::sync::mpsc::channel();
                    if self.log.send(LogJob::Truncate { after, done }).is_ok() {
                        let _ = cut.recv();
                    }
                }
                zab::Output::SaveEpochs { accepted, current } => {
                    let epochs = wal::epochs::Epochs { accepted, current };
                    if let Err(e) = wal::epochs::write(&wal::OsDisk, &crate::storage::state_dir(&self.config), epochs) {
                        // Going on could forget a promise made to a leader.
                        tracing::error!(error = %e, "cannot save the epochs; leaving the ensemble");
                        std::process::exit(1);
                    }
                }
                zab::Output::Deliver { entry } if self.replica.prepared_here(entry.zxid) => {
                    self.step(Input::Committed { zxid: entry.zxid, txn: None })
                }
                zab::Output::Deliver { entry } => match tree::Txn::from_bytes(&entry.data) {
                    Ok(txn) if txn.zxid == entry.zxid => self.step(Input::Committed { zxid: txn.zxid, txn: Some(txn) }),
                    Ok(txn) => {
                        tracing::error!(
                            zxid = format_args!("{:#x}", entry.zxid),
                            txn = format_args!("{:#x}", txn.zxid),
                            "a committed transaction carries another zxid; leaving the ensemble"
                        );
                        std::process::exit(1);
                    }
                    Err(e) => {
                        tracing::error!(zxid = format_args!("{:#x}", entry.zxid), error = %e, "a committed transaction does not decode; leaving the ensemble");
                        std::process::exit(1);
                    }
                },
                zab::Output::InstallSnapshot { zxid, snapshot } => self.install_snapshot(zxid, snapshot),
                // The log files before a snapshot go with purging, as in standalone.
                zab::Output::CompactLog { .. } => {}
                zab::Output::Rejected { .. } => tracing::info!("a write reached a leader that is stepping down"),
                zab::Output::Disconnect { peer } => replication.links.reset(peer),
                zab::Output::Relayed { from, data } => {
                    match replica::ensemble::relayed(self.replica.role(), from.0, &data) {
                        Ok(input) => self.step(input),
                        Err(e) => {
                            tracing::warn!(peer = from.0, error = %e, "a relayed message does not decode; dropped")
                        }
                    }
                }
                zab::Output::Role { state, epoch } => {
                    let peer = &replication.peer;
                    let role = if peer.is_established_leader() {
                        Role::Leading { epoch }
                    } else if peer.is_serving() {
                        Role::Following
                    } else {
                        Role::Looking
                    };
                    tracing::info!(?state, epoch, ?role, "ZAB state");
                    replication.stats.leading_since = match role {
                        Role::Leading { .. } => Some(Instant::now()),
                        _ => None,
                    };
                    self.step(Input::RoleChanged(role));
                }
            }
        }
    }

    /// A follower behind the leader's log takes the leader's snapshot: it goes to disk like
    /// one of ours, replaces the replica's state, and the log starts again after it.
    /// A crash before the log is reset leaves the old log beside the new snapshot; that is
    /// harmless: the leader sends a snapshot only to a follower whose whole log is at or
    /// before the snapshot's zxid, and recovery reads only what follows the snapshot.
    fn install_snapshot(&mut self, zxid: i64, bytes: Vec<u8>) {
        let dir = crate::storage::snapshot_dir(&self.config);
        let installed = crate::storage::install_snapshot(&dir, zxid, bytes)
            .and_then(|snapshot| self.replica.restore_snapshot(zxid, snapshot.chunks()).map_err(|e| e.to_string()));
        if let Err(e) = installed {
            tracing::error!(zxid = format_args!("{zxid:#x}"), error = %e, "cannot install the leader's snapshot; leaving the ensemble");
            std::process::exit(1);
        }
        tracing::info!(
            zxid = format_args!("{zxid:#x}"),
            nodes = self.replica.tree().node_count(),
            "installed the leader's snapshot"
        );
        self.to_log.clear();
        let _ = self.log.send(LogJob::Reset { after: zxid });
    }

    /// Hands the batch's transactions to the disk thread in one message.
    fn flush_log(&mut self) {
        if !self.to_log.is_empty() {
            let job = LogJob::Append { generation: self.to_log_generation, entries: std::mem::take(&mut self.to_log) };
            // The disk thread lives as long as the process; if it is gone, writes simply stay pending.
            let _ = self.log.send(job);
        }
    }

    /// One reading of the clocks serves a whole batch of inputs.
    fn read_clock(&mut self) {
        self.now = Instant::now();
        self.now_ms = wall_ms();
    }

    fn step(&mut self, input: Input) {
        let (now, now_ms) = (self.now, self.now_ms);
        for output in self.replica.step(now_ms, input) {
            let (conn, message) = match output {
                Output::Append { txn } if self.replication.is_some() => {
                    let data = txn.to_bytes();
                    if let Some(r) = &self.replication {
                        r.stats.proposal_sizes.record(data.len());
                    }
                    self.zab(zab::Input::Propose { data });
                    continue;
                }
                Output::Append { txn } => {
                    let generation = self.replica.log_generation();
                    if generation != self.to_log_generation {
                        self.flush_log();
                        self.to_log_generation = generation;
                    }
                    self.to_log.push((txn.zxid, txn.to_bytes()));
                    continue;
                }
                // In ZAB's ordered stream, so that one lost shows as a gap like any other, and
                // ZAB takes them only within the current leadership.
                Output::ToLeader(msg) => {
                    if let Some(leader) = self.replication.as_ref().and_then(|r| r.peer.leader()) {
                        self.zab(zab::Input::Relay { to: leader, data: msg.to_bytes() });
                    }
                    continue;
                }
                Output::ToFollower { to, msg } => {
                    self.zab(zab::Input::Relay { to: zab::ServerId(to), data: msg.to_bytes() });
                    continue;
                }
                Output::Connected { conn, response } => (conn, Outbound::Connected(response)),
                Output::Reply { conn, header, body } => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        if let Some((latency, op)) = c.stats.replied(header.xid, header.zxid, now, now_ms) {
                            self.latency.record(latency);
                            self.metrics.observe_request(op, latency);
                        }
                    }
                    if header.err == ErrorCode::AuthFailed as i32 {
                        self.auth_failed += 1;
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
