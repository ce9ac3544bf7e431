//! Deterministic simulation of an ensemble of real [`zab::Peer`]s.
//!
//! Everything random comes from one seed: the ensemble size, message delays, loss,
//! duplication and reordering, partitions that come and heal, crashes that lose every
//! write not yet fsynced, slow disks, and clients proposing writes. After every step the
//! invariants are checked; a failure names its seed, and [`run`] with that seed replays it
//! exactly, with a full trace if asked.
//!
//! A run has two phases: *safety* (faults on), then *liveness* (faults healed, every server
//! up): the ensemble must then establish a leader and commit a new write within a bounded
//! number of ticks.
//!
//! Invariants: at most one established leader per epoch; every server delivers the same
//! committed history (what one delivers at position *i* is what every other delivers there),
//! so the committed prefix never changes and every write a leader committed survives any
//! crash; and after the liveness phase the leader's history holds every write ever committed.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use zab::{Config, Durable, Entry, Input, Message, Output, Peer, PeerState, ServerId, Zxid};

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
    stream: (u64, u64),
    from: ServerId,
    to: ServerId,
    msg: Message,
}

struct Node {
    peer: Option<Peer>,
    /// What survives a crash.
    disk: Durable,
    /// Appended but not yet fsynced: (fsync completes at tick, entries).
    unsynced: Vec<(u64, Vec<Entry>)>,
    /// What this run of the server delivered, in order.
    delivered: Vec<Zxid>,
    /// Starts so far.
    incarnation: u64,
}

struct Faults {
    loss: u64,
    duplicate: u64,
    max_delay: u64,
    crash: u64,
    partition: u64,
    slow_disk: u64,
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
    next_write: u64,
    /// Small in some seeds, so that epochs run out of zxids and roll over.
    counter_limit: u32,
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

    fn step(&mut self, id: ServerId, input: Input) -> Result<(), Failure> {
        let Some(node) = self.nodes.get_mut(&id) else { return Ok(()) };
        let Some(peer) = node.peer.as_mut() else { return Ok(()) };
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| peer.step(input)));
        let outputs = match stepped {
            Ok(outputs) => outputs,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                return Err(self.fail(format!(
                    "s{} broke an internal invariant: {}",
                    id.0,
                    message.unwrap_or_default()
                )));
            }
        };
        let (established, epoch) = (peer.is_established_leader(), peer.epoch());
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
                if self.cut.contains(&(id, to)) || self.chance(self.faults.loss) {
                    return Ok(());
                }
                let copies = if self.chance(self.faults.duplicate) { 2 } else { 1 };
                for _ in 0..copies {
                    let delay = 1 + self.below(self.faults.max_delay + 1);
                    let election = matches!(msg, Message::Notification { .. });
                    let link = self.links.entry((id, to, election)).or_insert((0, 0));
                    link.0 = link.0.max(self.tick + delay);
                    link.1 += 1;
                    let (at, seq) = *link;
                    self.network.push(InFlight { at, seq, stream, from: id, to, msg: msg.clone() });
                }
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
            }
            Output::Rejected { .. } => {}
            Output::CompactLog { upto } => {
                if let Some(node) = self.nodes.get_mut(&id) {
                    node.disk.log.retain(|e| e.zxid > upto);
                }
            }
            Output::InstallSnapshot { zxid, snapshot } => {
                let delivered = decode_state(&snapshot);
                // A snapshot is committed history, all of it.
                let matches = delivered.len() <= self.history.len()
                    && delivered.iter().zip(&self.history).all(|(z, e)| *z == e.zxid)
                    && delivered.last().copied().unwrap_or(0) == zxid;
                if !matches {
                    return Err(
                        self.fail(format!("s{} was sent a snapshot at {zxid:#x} that is not committed history", id.0))
                    );
                }
                if let Some(node) = self.nodes.get_mut(&id) {
                    node.disk.snapshot = Some((zxid, snapshot));
                    node.disk.log.clear();
                    node.unsynced.clear();
                    node.delivered = delivered;
                }
                self.log(|| format!("s{} installed a snapshot at {zxid:#x}", id.0));
            }
        }
        Ok(())
    }

    fn deliver(&mut self, id: ServerId, entry: Entry) -> Result<(), Failure> {
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
                self.history.push(entry);
            }
        }
        Ok(())
    }

    fn crash(&mut self, id: ServerId) {
        let Some(node) = self.nodes.get_mut(&id) else { return };
        let Some(peer) = node.peer.take() else { return };
        // A leader with proposals not yet committed everywhere.
        if peer.is_established_leader() && peer.last_zxid() > peer.delivered_zxid() {
            self.coverage.leader_crashes_mid_broadcast += 1;
        }
        node.unsynced.clear();
        node.delivered.clear();
        self.coverage.crashes += 1;
        self.log(|| format!("s{} crashed", id.0));
    }

    fn restart(&mut self, id: ServerId) {
        let config = self.config(id);
        let committed = self.history.last().map_or(0, |e| e.zxid);
        let Some(node) = self.nodes.get_mut(&id) else { return };
        if node.peer.is_some() {
            return;
        }
        let last = node.disk.log.last().map(|e| e.zxid).or(node.disk.snapshot.as_ref().map(|(z, _)| *z)).unwrap_or(0);
        if last > committed {
            self.coverage.restarts_with_uncommitted_log += 1;
        }
        node.incarnation += 1;
        let config = Config { incarnation: node.incarnation, ..config };
        // The application comes back with its snapshot's state.
        let applied = node.disk.snapshot.as_ref().map_or(0, |(z, _)| *z);
        node.delivered = node.disk.snapshot.as_ref().map(|(_, s)| decode_state(s)).unwrap_or_default();
        node.peer = Some(Peer::new(config, node.disk.clone(), applied));
        self.log(|| format!("s{} restarted", id.0));
    }

    /// Completes the fsyncs that are due.
    fn fsync(&mut self) -> Result<(), Failure> {
        let tick = self.tick;
        let mut done = Vec::new();
        for (id, node) in self.nodes.iter_mut() {
            if node.peer.is_none() {
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
                if self.nodes[&id].peer.is_none() && self.chance(50) {
                    self.restart(id);
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
        // Applications snapshot their state now and then, so logs get compacted and SNAP is needed.
        for id in self.ids.clone() {
            let state = self.nodes.get(&id).filter(|n| n.peer.is_some()).map(|n| n.delivered.clone());
            if let Some(delivered) = state.filter(|d| !d.is_empty()) {
                if self.chance(20) {
                    let zxid = *delivered.last().unwrap_or(&0);
                    let snapshot = encode_state(&delivered);
                    if let Some(node) = self.nodes.get_mut(&id) {
                        node.disk.snapshot = Some((zxid, snapshot.clone()));
                    }
                    self.step(id, Input::Compact { zxid, snapshot })?;
                }
            }
        }
        // Clients write to whoever leads.
        if self.chance(300) {
            let leader = self
                .nodes
                .iter()
                .find(|(_, n)| n.peer.as_ref().is_some_and(Peer::is_established_leader))
                .map(|(id, _)| *id);
            if let Some(leader) = leader {
                self.next_write += 1;
                let data = format!("w{}", self.next_write).into_bytes();
                self.step(leader, Input::Propose { data })?;
                if self.nodes[&leader].peer.as_ref().is_some_and(|p| p.state() == PeerState::Looking) {
                    self.coverage.epoch_rollovers += 1;
                }
            }
        }
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
    };
    let counter_limit = if pick(4) == 0 { 5 + pick(20) as u32 } else { u32::MAX - 1 };
    // Some seeds add observers, which follow and apply but never vote.
    let observers = pick(3);
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
        next_write: 0,
        counter_limit,
        coverage: Coverage::default(),
        trace: options.trace.then(Vec::new),
    };
    for &id in &ids {
        let peer = Peer::new(sim.config(id), Durable::default(), 0);
        let node = Node {
            peer: Some(peer),
            disk: Durable::default(),
            unsynced: Vec::new(),
            delivered: Vec::new(),
            incarnation: 0,
        };
        sim.nodes.insert(id, node);
    }
    let (loss, duplicate, crash) = (sim.faults.loss, sim.faults.duplicate, sim.faults.crash);
    sim.log(|| format!("{size} servers, loss {loss}‰, duplicate {duplicate}‰, crash {crash}‰"));
    for _ in 0..options.safety_ticks {
        sim.tick_once(true)?;
    }
    // Liveness: heal everything, then a leader must commit a new write.
    sim.cut.clear();
    for id in ids.clone() {
        sim.restart(id);
    }
    sim.faults.loss = 0;
    sim.faults.duplicate = 0;
    sim.log(|| "faults stopped".into());
    let committed_before = sim.history.len();
    for _ in 0..options.liveness_ticks {
        sim.tick_once(false)?;
        let leader_caught_up = sim
            .nodes
            .values()
            .any(|n| n.peer.as_ref().is_some_and(Peer::is_established_leader) && n.delivered.len() > committed_before);
        if leader_caught_up {
            return Ok(Report { coverage: sim.coverage, trace: sim.trace.unwrap_or_default() });
        }
    }
    let reason = format!("no leader committed a new write within {} ticks of healing", options.liveness_ticks);
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
        other => format!("{other:?}"),
    }
}

/// The simulated application's state: the zxids it applied, in order.
fn encode_state(delivered: &[Zxid]) -> Vec<u8> {
    delivered.iter().flat_map(|z| z.to_be_bytes()).collect()
}

fn decode_state(bytes: &[u8]) -> Vec<Zxid> {
    bytes.chunks_exact(8).map(|c| i64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
}
