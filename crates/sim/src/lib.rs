//! Deterministic simulation of whole Warren ensembles: each simulated server runs a real
//! [`zab::Peer`] with a real [`replica::Replica`] on top, wired as the server's driver wires
//! them (ZAB's deliveries become the replica's commits, the leader's transactions become
//! ZAB's proposals, ZAB's state becomes the replica's role, a snapshot from the leader
//! replaces the replica's state), and simulated clients (`clients`) open sessions on random
//! servers, write, read and sync.
//!
//! Everything random comes from one seed: the ensemble size, message delays, loss,
//! duplication and reordering, partitions that come and heal, crashes that lose every
//! write not yet fsynced, slow disks, and what the clients do. After every step the
//! invariants are checked; a failure names its seed, and [`run`] with that seed replays it
//! exactly, with a full trace if asked.
//!
//! A run has two phases: *safety* (faults on), then *liveness* (faults healed, every server
//! up): the ensemble must then establish a leader, commit a new transaction and acknowledge
//! a client's write within a bounded number of ticks.
//!
//! Invariants: at most one established leader per epoch; every server delivers the same
//! committed history (what one delivers at position *i* is what every other delivers there),
//! so the committed prefix never changes and every write a leader committed survives any
//! crash; the leader's replica numbers its transactions with ZAB's zxids; every server's
//! tree at a zxid has the digest the first server to reach that zxid had (snapshots
//! included); no server keeps an ephemeral node of a session whose close it applied; each
//! client's replies come in request order and their zxids never go down, across
//! reconnections; a write acknowledged to a client is its own transaction in the committed
//! history; a server tells a client its session is gone only once it applied the session's
//! close or has one in flight; and after the liveness phase the leader's history holds
//! every write ever committed, acknowledged ones included.

mod clients;

use proto::Record;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replica::{Replica, Role};
use std::collections::{btree_map, BTreeMap, BTreeSet};
use tree::{owner, Txn, TxnOp};
use zab::{epoch_of, Config, Durable, Entry, Input, Message, Output, Peer, PeerState, ServerId, Zxid};

/// Simulated time per tick: the replicas' tickTime, and one of ZAB's ticks.
const TICK_MS: i64 = 100;

/// How a run is shaped; derived from the seed unless given.
#[derive(Debug, Clone)]
pub struct Options {
    pub safety_ticks: u64,
    pub liveness_ticks: u64,
    /// Record every event, for replaying a seed.
    pub trace: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { safety_ticks: 600, liveness_ticks: 400, trace: false }
    }
}

/// How often each recovery path was taken in a run (CI prints the totals).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub elections: u64,
    pub leaders_established: u64,
    pub diffs: u64,
    pub truncs: u64,
    pub snaps: u64,
    pub crashes: u64,
    pub leader_crashes_mid_broadcast: u64,
    pub restarts_with_uncommitted_log: u64,
    pub epoch_rollovers: u64,
    /// Entries delivered by observers.
    pub observer_deliveries: u64,
    pub committed: u64,
    /// Writes answered with success to a client.
    pub acked_writes: u64,
    pub syncs_answered: u64,
    /// Sessions taken over by a new connection (usually to another server).
    pub reconnects: u64,
    /// Sessions the leader expired (their close committed).
    pub session_expiries: u64,
}

impl Coverage {
    pub fn add(&mut self, other: &Coverage) {
        self.elections += other.elections;
        self.leaders_established += other.leaders_established;
        self.diffs += other.diffs;
        self.truncs += other.truncs;
        self.snaps += other.snaps;
        self.crashes += other.crashes;
        self.leader_crashes_mid_broadcast += other.leader_crashes_mid_broadcast;
        self.restarts_with_uncommitted_log += other.restarts_with_uncommitted_log;
        self.epoch_rollovers += other.epoch_rollovers;
        self.observer_deliveries += other.observer_deliveries;
        self.committed += other.committed;
        self.acked_writes += other.acked_writes;
        self.syncs_answered += other.syncs_answered;
        self.reconnects += other.reconnects;
        self.session_expiries += other.session_expiries;
    }
}

/// A passing run: the recovery paths it took and, if asked for, its trace.
#[derive(Debug)]
pub struct Report {
    pub coverage: Coverage,
    pub trace: Vec<String>,
}

#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub tick: u64,
    pub reason: String,
    pub trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at tick {}: {} (replay: cargo run --release -p sim -- --seed {} --trace)",
            self.seed, self.tick, self.reason, self.seed
        )
    }
}

struct InFlight {
    at: u64,
    /// Order on its link: links are FIFO, as TCP connections are.
    seq: u64,
    from: ServerId,
    to: ServerId,
    /// ZAB's message and its place in the sender's stream (the replicas' own messages
    /// travel inside it, as `Message::Relay`).
    stream: (u64, u64),
    msg: Message,
}

/// A running server process.
struct Server {
    peer: Peer,
    replica: Replica,
}

struct Node {
    server: Option<Server>,
    /// What survives a crash.
    disk: Durable,
    /// Appended but not yet fsynced: (fsync completes at tick, entries).
    unsynced: Vec<(u64, Vec<Entry>)>,
    /// What this run of the server delivered, in order.
    delivered: Vec<Zxid>,
    /// Starts so far.
    incarnation: u64,
    /// The snapshot file being written: its zxid and the replica's chunks so far, framed.
    snapshot_file: Option<(Zxid, Vec<u8>)>,
}

struct Faults {
    loss: u64,
    duplicate: u64,
    max_delay: u64,
    crash: u64,
    partition: u64,
    slow_disk: u64,
    /// Per mille of ticks in which the snapshot disk takes no chunk: in some seeds a
    /// snapshot is still being written long after it began.
    slow_snapshots: u64,
}

struct Sim {
    seed: u64,
    rng: ChaCha8Rng,
    tick: u64,
    /// Every server, observers included.
    ids: Vec<ServerId>,
    voters: Vec<ServerId>,
    nodes: BTreeMap<ServerId, Node>,
    network: Vec<InFlight>,
    /// Per link: the last delivery tick and sequence number handed out.
    /// Election notifications have links of their own (the election port's connections).
    links: BTreeMap<(ServerId, ServerId, bool), (u64, u64)>,
    cut: BTreeSet<(ServerId, ServerId)>,
    faults: Faults,
    /// The committed history: position i is what every server must deliver at i.
    history: Vec<Entry>,
    leaders: BTreeMap<u32, ServerId>,
    /// Small in some seeds, so that epochs run out of zxids and roll over.
    counter_limit: u32,
    /// The replicas' settings but for the server id (small `snap_count`s, so that snapshots
    /// come often and SNAP is needed).
    replica_config: replica::Config,
    clients: Vec<clients::Client>,
    next_conn: u64,
    /// Each zxid's tree digest, as the first server to apply it had it.
    digests: BTreeMap<Zxid, u64>,
    /// Sessions whose close committed, with its zxid.
    closed: BTreeMap<i64, Zxid>,
    /// The zxids of the writes acknowledged to clients.
    acked: Vec<Zxid>,
    coverage: Coverage,
    trace: Option<Vec<String>>,
}

impl Sim {
    fn chance(&mut self, per_mille: u64) -> bool {
        self.rng.next_u64() % 1000 < per_mille
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        let tick = self.tick;
        if let Some(trace) = self.trace.as_mut() {
            trace.push(format!("{tick:>6} {}", line()));
        }
    }

    fn fail(&mut self, reason: String) -> Failure {
        Failure { seed: self.seed, tick: self.tick, reason, trace: self.trace.take().unwrap_or_default() }
    }

    fn config(&self, id: ServerId) -> Config {
        // The limits must exceed the slowest round trips this simulation makes (delays of up to five
        // ticks each way), as initLimit and syncLimit must exceed real ones.
        let incarnation = self.nodes.get(&id).map_or(0, |n| n.incarnation);
        let counter_limit = self.counter_limit;
        Config { id, voters: self.voters.clone(), init_limit: 40, sync_limit: 20, incarnation, counter_limit }
    }

    fn now_ms(&self) -> i64 {
        self.tick as i64 * TICK_MS
    }

    fn server(&self, id: ServerId) -> Option<&Server> {
        self.nodes.get(&id)?.server.as_ref()
    }

    fn server_mut(&mut self, id: ServerId) -> Option<&mut Server> {
        self.nodes.get_mut(&id)?.server.as_mut()
    }

    /// A panic in a peer or a replica is a broken internal invariant: a failure of the seed.
    fn unpanic<T>(&mut self, id: ServerId, stepped: std::thread::Result<T>) -> Result<T, Failure> {
        stepped.map_err(|panic| {
            let message =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            self.fail(format!("s{} broke an internal invariant: {}", id.0, message.unwrap_or_default()))
        })
    }

    fn step(&mut self, id: ServerId, input: Input) -> Result<(), Failure> {
        let Some(server) = self.server_mut(id) else { return Ok(()) };
        let was_leader = server.peer.is_established_leader();
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.peer.step(input)));
        let outputs = self.unpanic(id, stepped)?;
        let Some(peer) = self.server(id).map(|s| &s.peer) else { return Ok(()) };
        let (established, epoch, looking) =
            (peer.is_established_leader(), peer.epoch(), peer.state() == PeerState::Looking);
        // A leader steps down on its own when its epoch's zxids are used up.
        let last = peer.last_zxid();
        let used_up = epoch_of(last) == epoch && last as u32 >= self.counter_limit;
        if was_leader && looking && used_up {
            self.coverage.epoch_rollovers += 1;
        }
        for output in outputs {
            self.carry_out(id, output)?;
        }
        if established {
            match self.leaders.get(&epoch) {
                Some(other) if *other != id => {
                    return Err(self.fail(format!("two leaders in epoch {epoch}: {} and {}", other.0, id.0)));
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(epoch, id);
                    self.coverage.leaders_established += 1;
                    self.log(|| format!("s{} established as leader of epoch {epoch}", id.0));
                }
            }
        }
        Ok(())
    }

    fn carry_out(&mut self, id: ServerId, output: Output) -> Result<(), Failure> {
        match output {
            Output::Send { to, stream, msg } => {
                match &msg {
                    Message::Diff { entries, .. } if !entries.is_empty() => self.coverage.diffs += 1,
                    Message::Trunc { .. } => self.coverage.truncs += 1,
                    Message::Snap { .. } => self.coverage.snaps += 1,
                    _ => {}
                }
                if !matches!(msg, Message::Ping { .. } | Message::Notification { .. } | Message::Ack { .. }) {
                    self.log(|| format!("s{} -> s{}: {}", id.0, to.0, brief(&msg)));
                }
                self.transmit(id, to, stream, msg);
            }
            Output::Append { entries } => {
                let delay = if self.chance(self.faults.slow_disk) { 1 + self.below(4) } else { 0 };
                if let Some(node) = self.nodes.get_mut(&id) {
                    // One log file: an fsync makes everything written before it durable too.
                    let at = node.unsynced.last().map_or(0, |(at, _)| *at).max(self.tick + delay);
                    node.unsynced.push((at, entries));
                }
            }
            Output::Truncate { after } => {
                if let Some(node) = self.nodes.get_mut(&id) {
                    node.disk.log.retain(|e| e.zxid <= after);
                    for (_, entries) in node.unsynced.iter_mut() {
                        entries.retain(|e| e.zxid <= after);
                    }
                }
                self.log(|| format!("s{} truncated after {after:#x}", id.0));
            }
            Output::SaveEpochs { accepted, current } => {
                if let Some(node) = self.nodes.get_mut(&id) {
                    node.disk.accepted_epoch = accepted;
                    node.disk.current_epoch = current;
                }
            }
            Output::Deliver { entry } => self.deliver(id, entry)?,
            Output::Role { state, epoch } => {
                if state == PeerState::Looking {
                    self.coverage.elections += 1;
                }
                self.log(|| format!("s{} is {state:?} (epoch {epoch})", id.0));
                // As the driver: the replica's role follows the peer's state after the step.
                let role = match self.server(id).map(|s| &s.peer) {
                    Some(peer) if peer.is_established_leader() => Role::Leading { epoch },
                    Some(peer) if peer.is_serving() => Role::Following,
                    _ => Role::Looking,
                };
                self.replica_step(id, replica::Input::RoleChanged(role))?;
            }
            Output::Rejected { .. } => {}
            // The connection breaks: the other side learns it, unless it is cut off anyway.
            Output::Disconnect { peer } => {
                if !self.cut.contains(&(id, peer)) {
                    self.step(peer, Input::LinkDown { peer: id })?;
                }
            }
            Output::Relayed { from, data } => {
                let Some(role) = self.server(id).map(|s| s.replica.role()) else { return Ok(()) };
                match replica::ensemble::relayed(role, from.0, &data) {
                    Ok(input) => self.replica_step(id, input)?,
                    Err(e) => {
                        return Err(self.fail(format!("s{} got a relayed message that does not decode: {e}", id.0)))
                    }
                }
            }
            Output::CompactLog { upto } => {
                if let Some(node) = self.nodes.get_mut(&id) {
                    node.disk.log.retain(|e| e.zxid > upto);
                }
            }
            Output::InstallSnapshot { zxid, snapshot } => {
                if let Some(node) = self.nodes.get_mut(&id) {
                    node.disk.snapshot = Some((zxid, snapshot.clone()));
                    node.disk.log.clear();
                    node.unsynced.clear();
                    // A snapshot being written was of the state this replaces.
                    node.snapshot_file = None;
                }
                self.install(id, zxid, &snapshot)?;
                self.log(|| format!("s{} installed a snapshot at {zxid:#x}", id.0));
            }
        }
        Ok(())
    }

    /// Puts a message on the link between two servers, subject to partitions, loss, delay
    /// and duplication (the sequence numbers stand in for TCP's).
    fn transmit(&mut self, from: ServerId, to: ServerId, stream: (u64, u64), msg: Message) {
        if self.cut.contains(&(from, to)) || self.chance(self.faults.loss) {
            return;
        }
        let election = matches!(msg, Message::Notification { .. });
        let copies = if self.chance(self.faults.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = 1 + self.below(self.faults.max_delay + 1);
            let link = self.links.entry((from, to, election)).or_insert((0, 0));
            link.0 = link.0.max(self.tick + delay);
            link.1 += 1;
            let (at, seq) = *link;
            self.network.push(InFlight { at, seq, from, to, stream, msg: msg.clone() });
        }
    }

    /// Steps a server's replica and routes what it says, as the driver does: transactions to
    /// ZAB, messages to the leader or a follower, the rest to the clients' connections.
    fn replica_step(&mut self, id: ServerId, input: replica::Input) -> Result<(), Failure> {
        let now_ms = self.now_ms();
        let Some(server) = self.server_mut(id) else { return Ok(()) };
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.replica.step(now_ms, input)));
        for output in self.unpanic(id, stepped)? {
            match output {
                replica::Output::Append { txn } => self.step(id, Input::Propose { data: txn.to_bytes() })?,
                replica::Output::ToLeader(msg) => {
                    if let Some(leader) = self.server(id).and_then(|s| s.peer.leader()) {
                        self.step(id, Input::Relay { to: leader, data: msg.to_bytes() })?;
                    }
                }
                replica::Output::ToFollower { to, msg } => {
                    self.step(id, Input::Relay { to: ServerId(to), data: msg.to_bytes() })?
                }
                replica::Output::Connected { conn, response } => self.connected(id, conn, response)?,
                replica::Output::Reply { conn, header, .. } => self.replied(id, conn, header)?,
                replica::Output::Close { conn } => self.closed_by_server(id, conn),
                // Clients here set watches but do not act on them.
                replica::Output::Notify { .. } => {}
            }
        }
        Ok(())
    }

    fn deliver(&mut self, id: ServerId, entry: Entry) -> Result<(), Failure> {
        let txn = match Txn::from_bytes(&entry.data) {
            Ok(txn) => txn,
            Err(e) => {
                return Err(self.fail(format!("s{} delivered {:#x}, which does not decode: {e}", id.0, entry.zxid)))
            }
        };
        if txn.zxid != entry.zxid {
            return Err(self.fail(format!(
                "s{} delivered {:#x}, which holds the replica's transaction {:#x}",
                id.0, entry.zxid, txn.zxid
            )));
        }
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(()) };
        if node.delivered.last().is_some_and(|z| *z >= entry.zxid) {
            let last = *node.delivered.last().unwrap_or(&0);
            return Err(self.fail(format!("s{} delivered {:#x} after {last:#x}", id.0, entry.zxid)));
        }
        node.delivered.push(entry.zxid);
        let position = node.delivered.len() - 1;
        if !self.voters.contains(&id) {
            self.coverage.observer_deliveries += 1;
        }
        match self.history.get(position) {
            Some(committed) if *committed != entry => {
                let committed = committed.zxid;
                return Err(self.fail(format!(
                    "s{} delivered {:#x} at position {position}, where {committed:#x} was committed",
                    id.0, entry.zxid
                )));
            }
            Some(_) => {}
            None => {
                self.coverage.committed += 1;
                self.log(|| format!("s{} committed {:#x} at position {position}", id.0, entry.zxid));
                if let TxnOp::CloseSession { .. } = txn.op {
                    self.closed.entry(txn.session_id).or_insert(txn.zxid);
                    // Clients close with their request's xid; the leader expires with none.
                    if txn.cxid == 0 {
                        self.coverage.session_expiries += 1;
                        self.log(|| format!("session {:#x} expired", txn.session_id));
                    }
                }
                self.history.push(entry);
            }
        }
        // As the driver: a leader commits its own transactions from what it prepared.
        let own = self.server(id).is_some_and(|s| s.replica.prepared_here(txn.zxid));
        self.replica_step(id, replica::Input::Committed { zxid: txn.zxid, txn: (!own).then_some(txn) })?;
        self.check_tree(id)
    }

    /// After a server's tree changed: it has the digest recorded for its zxid, and no node
    /// of a session whose close it applied.
    fn check_tree(&mut self, id: ServerId) -> Result<(), Failure> {
        let Some(server) = self.server(id) else { return Ok(()) };
        let (zxid, tree) = (server.replica.applied_zxid(), server.replica.tree());
        let digest = tree.digest();
        let orphan = tree.iter().find_map(|(path, node)| {
            let session = owner::session(node.meta().ephemeral_owner)?;
            let closed = *self.closed.get(&session).filter(|closed| **closed <= zxid)?;
            Some(format!("{path}, an ephemeral of session {session:#x} closed at {closed:#x}"))
        });
        if let Some(orphan) = orphan {
            return Err(self.fail(format!("s{} at {zxid:#x} still has {orphan}", id.0)));
        }
        match self.digests.entry(zxid) {
            btree_map::Entry::Vacant(first) => {
                first.insert(digest);
            }
            btree_map::Entry::Occupied(first) if *first.get() != digest => {
                let first = *first.get();
                return Err(self.fail(format!(
                    "s{} has tree digest {digest:#x} at {zxid:#x}, where the first server there had {first:#x}",
                    id.0
                )));
            }
            btree_map::Entry::Occupied(_) => {}
        }
        Ok(())
    }

    /// Replaces a server's replica state with a snapshot's, as the driver does. A snapshot
    /// is committed history: its zxid is in the history, and its tree is the one every
    /// server had there.
    fn install(&mut self, id: ServerId, zxid: Zxid, snapshot: &[u8]) -> Result<(), Failure> {
        let prefix = self.history.partition_point(|e| e.zxid <= zxid);
        if prefix.checked_sub(1).map_or(0, |last| self.history[last].zxid) != zxid {
            return Err(self.fail(format!("s{} got a snapshot at {zxid:#x}, which was never committed", id.0)));
        }
        let delivered = self.history[..prefix].iter().map(|e| e.zxid).collect();
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(()) };
        node.delivered = delivered;
        let Some(server) = node.server.as_mut() else { return Ok(()) };
        let restored = match snapshot_chunks(snapshot) {
            Some(chunks) => server.replica.restore_snapshot(zxid, chunks).map_err(|e| e.to_string()),
            None => Err("its framing is broken".to_owned()),
        };
        if let Err(e) = restored {
            return Err(self.fail(format!("s{} cannot restore the snapshot at {zxid:#x}: {e}", id.0)));
        }
        self.check_tree(id)
    }

    /// The driver writes a replica's snapshot a chunk at a time while the replica goes on
    /// applying; here, one chunk a tick. A finished one lets ZAB compact its log, and
    /// followers behind it get it (SNAP).
    fn write_snapshot(&mut self, id: ServerId) -> Result<(), Failure> {
        if !self.server(id).is_some_and(|s| s.replica.snapshot_in_progress()) || self.chance(self.faults.slow_snapshots)
        {
            return Ok(());
        }
        let max_nodes = 1 + self.below(4) as usize;
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(()) };
        let Some(server) = node.server.as_mut() else { return Ok(()) };
        let Some(part) = server.replica.snapshot_chunk(max_nodes) else {
            // The driver would spin on it, and the snapshot would never end.
            return Err(self.fail(format!("s{} has a snapshot in progress that yields no chunk", id.0)));
        };
        if part.first {
            node.snapshot_file = Some((part.zxid, Vec::new()));
        }
        let Some((zxid, file)) = node.snapshot_file.as_mut() else {
            return Err(self.fail(format!("s{} wrote a snapshot chunk without the first", id.0)));
        };
        file.extend_from_slice(&(part.bytes.len() as u32).to_be_bytes());
        file.extend_from_slice(&part.bytes);
        if !part.last {
            return Ok(());
        }
        let (zxid, snapshot) = (*zxid, std::mem::take(file));
        node.snapshot_file = None;
        node.disk.snapshot = Some((zxid, snapshot.clone()));
        self.log(|| format!("s{} saved a snapshot at {zxid:#x}", id.0));
        self.step(id, Input::Compact { zxid, snapshot })
    }

    fn crash(&mut self, id: ServerId) {
        let Some(node) = self.nodes.get_mut(&id) else { return };
        let Some(server) = node.server.take() else { return };
        // A leader with proposals not yet committed everywhere.
        if server.peer.is_established_leader() && server.peer.last_zxid() > server.peer.delivered_zxid() {
            self.coverage.leader_crashes_mid_broadcast += 1;
        }
        node.unsynced.clear();
        node.delivered.clear();
        node.snapshot_file = None;
        // Its connections die with it, and what was on its way to it.
        self.network.retain(|m| m.to != id);
        self.server_crashed(id);
        self.coverage.crashes += 1;
        self.log(|| format!("s{} crashed", id.0));
    }

    /// Starts a server from its disk, as the server does in an ensemble: the replica loads
    /// the snapshot only (ZAB delivers the log after it once committed) and serves nobody
    /// until ZAB gives it a role.
    fn restart(&mut self, id: ServerId) -> Result<(), Failure> {
        let config = self.config(id);
        let committed = self.history.last().map_or(0, |e| e.zxid);
        let replica_config = replica::Config { server_id: id.0 as u8, ..self.replica_config.clone() };
        if self.nodes.get(&id).is_none_or(|n| n.server.is_some()) {
            return Ok(());
        }
        let (now_ms, seed) = (self.now_ms(), self.rng.next_u64());
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(()) };
        let last = node.disk.log.last().map(|e| e.zxid).or(node.disk.snapshot.as_ref().map(|(z, _)| *z)).unwrap_or(0);
        if last > committed {
            self.coverage.restarts_with_uncommitted_log += 1;
        }
        node.incarnation += 1;
        let config = Config { incarnation: node.incarnation, ..config };
        let snapshot = node.disk.snapshot.clone();
        let applied = snapshot.as_ref().map_or(0, |(z, _)| *z);
        node.delivered.clear();
        let peer = Peer::new(config, node.disk.clone(), applied);
        node.server = Some(Server { peer, replica: Replica::new(replica_config, now_ms, seed) });
        self.log(|| format!("s{} restarted", id.0));
        if let Some((zxid, snapshot)) = snapshot {
            self.install(id, zxid, &snapshot)?;
        }
        self.replica_step(id, replica::Input::RoleChanged(Role::Looking))
    }

    /// Completes the fsyncs that are due.
    fn fsync(&mut self) -> Result<(), Failure> {
        let tick = self.tick;
        let mut done = Vec::new();
        for (id, node) in self.nodes.iter_mut() {
            if node.server.is_none() {
                continue;
            }
            let due: Vec<Entry> =
                node.unsynced.iter().filter(|(at, _)| *at <= tick).flat_map(|(_, e)| e.clone()).collect();
            node.unsynced.retain(|(at, _)| *at > tick);
            if let Some(last) = due.last().map(|e| e.zxid) {
                node.disk.log.extend(due);
                done.push((*id, last));
            }
        }
        for (id, zxid) in done {
            self.step(id, Input::Persisted { zxid })?;
        }
        Ok(())
    }

    fn tick_once(&mut self, faulty: bool) -> Result<(), Failure> {
        self.tick += 1;
        if faulty {
            let ids = self.ids.clone();
            if self.chance(self.faults.crash) {
                let id = ids[self.below(ids.len() as u64) as usize];
                self.crash(id);
                // Connections to a crashed process usually break at once (and TCP says so);
                // sometimes they only go quiet (a partition, a hung machine).
                for other in ids.iter().copied().filter(|o| *o != id) {
                    if self.chance(500) {
                        self.step(other, Input::LinkDown { peer: id })?;
                    }
                }
            }
            for id in ids.clone() {
                if self.nodes[&id].server.is_none() && self.chance(50) {
                    self.restart(id)?;
                }
            }
            if self.chance(self.faults.partition) {
                let a = ids[self.below(ids.len() as u64) as usize];
                let b = ids[self.below(ids.len() as u64) as usize];
                if a != b {
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                    self.log(|| format!("partition s{} | s{}", a.0, b.0));
                }
            }
            if !self.cut.is_empty() && self.chance(30) {
                self.cut.clear();
                self.log(|| "partitions healed".into());
            }
        }
        for id in self.ids.clone() {
            self.write_snapshot(id)?;
        }
        self.clients_act()?;
        self.fsync()?;
        let tick = self.tick;
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.network.len() {
            if self.network[i].at <= tick {
                due.push(self.network.swap_remove(i));
            } else {
                i += 1;
            }
        }
        // Messages due together on different links arrive in random order; on one link, in
        // the order sent.
        for j in (1..due.len()).rev() {
            let k = self.below(j as u64 + 1) as usize;
            due.swap(j, k);
        }
        let mut by_link: BTreeMap<(ServerId, ServerId), Vec<usize>> = BTreeMap::new();
        for (i, m) in due.iter().enumerate() {
            by_link.entry((m.from, m.to)).or_default().push(i);
        }
        let mut slots: Vec<Option<InFlight>> = due.into_iter().map(Some).collect();
        let mut ordered: Vec<Option<InFlight>> = (0..slots.len()).map(|_| None).collect();
        for positions in by_link.values() {
            let mut msgs: Vec<InFlight> = positions.iter().filter_map(|&i| slots[i].take()).collect();
            msgs.sort_by_key(|m| m.seq);
            for (&i, m) in positions.iter().zip(msgs) {
                ordered[i] = Some(m);
            }
        }
        let due: Vec<InFlight> = ordered.into_iter().flatten().collect();
        for m in due {
            self.step(m.to, Input::Message { from: m.from, stream: m.stream, msg: m.msg })?;
        }
        for id in self.ids.clone() {
            self.step(id, Input::Tick)?;
            self.replica_step(id, replica::Input::Tick)?;
        }
        Ok(())
    }
}

/// Runs one seed.
pub fn run(seed: u64, options: &Options) -> Result<Report, Failure> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Swarm testing: each seed gets its own ensemble size and fault mix.
    let size = [3, 3, 5, 5, 7][(rng.next_u64() % 5) as usize];
    let mut pick = |range: u64| rng.next_u64() % range;
    let faults = Faults {
        loss: pick(80),
        duplicate: pick(30),
        max_delay: 1 + pick(4),
        crash: pick(25),
        partition: pick(30),
        slow_disk: pick(500),
        slow_snapshots: pick(1000),
    };
    // Ten at least: with fewer, the clients' bursts can end every epoch before any of their
    // writes commits, and no write is ever acknowledged.
    let counter_limit = if pick(4) == 0 { 10 + pick(20) as u32 } else { u32::MAX - 1 };
    // Some seeds add observers, which follow and apply but never vote.
    let observers = pick(3);
    let replica_config = replica::Config {
        tick_ms: TICK_MS,
        min_session_timeout_ms: 2 * TICK_MS as i32,
        max_session_timeout_ms: 60 * TICK_MS as i32,
        container_check_interval_ms: 10 * TICK_MS,
        snap_count: 10 + pick(50),
        ..replica::Config::default()
    };
    // Sessions of 20 to 60 ticks: long enough for the slowest round trips through the
    // leader (a client gives up on a request after two thirds of it), and some outlive an
    // election while some do not.
    let clients = (0..2 + pick(5)).map(|_| clients::Client::new((20 + pick(41) as i32) * TICK_MS as i32)).collect();
    let voters: Vec<ServerId> = (1..=size).map(ServerId).collect();
    let ids: Vec<ServerId> = (1..=size + observers).map(ServerId).collect();
    let mut sim = Sim {
        seed,
        rng,
        tick: 0,
        ids: ids.clone(),
        voters,
        nodes: BTreeMap::new(),
        network: Vec::new(),
        links: BTreeMap::new(),
        cut: BTreeSet::new(),
        faults,
        history: Vec::new(),
        leaders: BTreeMap::new(),
        counter_limit,
        replica_config,
        clients,
        next_conn: 0,
        digests: BTreeMap::new(),
        closed: BTreeMap::new(),
        acked: Vec::new(),
        coverage: Coverage::default(),
        trace: options.trace.then(Vec::new),
    };
    for &id in &ids {
        let node = Node {
            server: None,
            disk: Durable::default(),
            unsynced: Vec::new(),
            delivered: Vec::new(),
            incarnation: 0,
            snapshot_file: None,
        };
        sim.nodes.insert(id, node);
        sim.restart(id)?;
    }
    let (loss, duplicate, crash) = (sim.faults.loss, sim.faults.duplicate, sim.faults.crash);
    let clients = sim.clients.len();
    sim.log(|| {
        format!(
            "{size} servers, {clients} clients, loss {loss}‰, duplicate {duplicate}‰, crash {crash}‰, {counter_limit} zxids an epoch"
        )
    });
    for _ in 0..options.safety_ticks {
        sim.tick_once(true)?;
    }
    // Liveness: heal everything, then a leader must commit a new transaction and a client
    // must have a write acknowledged.
    sim.cut.clear();
    for id in ids.clone() {
        sim.restart(id)?;
    }
    sim.faults.loss = 0;
    sim.faults.duplicate = 0;
    sim.log(|| "faults stopped".into());
    let (committed_before, acked_before) = (sim.history.len(), sim.acked.len());
    for _ in 0..options.liveness_ticks {
        sim.tick_once(false)?;
        let leader = sim.nodes.iter().find(|(_, n)| {
            n.server.as_ref().is_some_and(|s| s.peer.is_established_leader()) && n.delivered.len() > committed_before
        });
        let Some((leader, node)) = leader.filter(|_| sim.acked.len() > acked_before) else { continue };
        // Every acknowledged write survived every crash.
        if let Some(lost) = sim.acked.iter().find(|z| node.delivered.binary_search(z).is_err()) {
            let reason = format!("s{}, the leader, lacks the write acknowledged at {lost:#x}", leader.0);
            return Err(sim.fail(reason));
        }
        return Ok(Report { coverage: sim.coverage, trace: sim.trace.unwrap_or_default() });
    }
    let reason = format!(
        "no leader committed a new transaction and acknowledged a write within {} ticks of healing",
        options.liveness_ticks
    );
    Err(sim.fail(reason))
}

/// A message in a trace line: its kind and zxids, not its payloads.
fn brief(msg: &Message) -> String {
    match msg {
        Message::Diff { epoch, entries } => {
            format!(
                "Diff e{epoch} [{:#x}..{:#x}]",
                entries.first().map_or(0, |e| e.zxid),
                entries.last().map_or(0, |e| e.zxid)
            )
        }
        Message::Proposal { epoch, entry } => format!("Proposal e{epoch} {:#x}", entry.zxid),
        Message::Snap { epoch, zxid, .. } => format!("Snap e{epoch} {zxid:#x}"),
        other => format!("{other:?}"),
    }
}

/// A snapshot as ZAB carries it: the replica's chunks, each after its length.
fn snapshot_chunks(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut chunks = Vec::new();
    while let Some((len, rest)) = bytes.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        let (chunk, rest) = (rest.get(..len)?, &rest[len..]);
        chunks.push(chunk);
        bytes = rest;
    }
    bytes.is_empty().then_some(chunks)
}
