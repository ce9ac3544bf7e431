//! One server's part in ZAB: election, discovery, synchronization and broadcast, as a pure
//! state machine driven by [`Peer::step`].

use crate::message::{epoch_of, zxid, Entry, Message, PeerState, ServerId, Vote, Zxid};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Config {
    pub id: ServerId,
    /// Every voting member (this one too, unless it is an observer: a server that is not
    /// among the voters follows the leader and applies commits, but never votes or acks).
    pub voters: Vec<ServerId>,
    /// Ticks a new leader has to gather and synchronize a quorum (`initLimit`).
    pub init_limit: u64,
    /// Ticks without hearing from the other side before giving up on it (`syncLimit`).
    pub sync_limit: u64,
    /// Different each time the server starts (a start counter), so that peers tell its new
    /// message stream from the old one.
    pub incarnation: u64,
    /// The last counter a leader hands out in an epoch (ZooKeeper rolls over at 2^32 - 1).
    /// A leader that reaches it steps down, so that the next election starts a new epoch;
    /// writes are refused only for the length of that election.
    pub counter_limit: u32,
}

/// What must survive a crash: the epochs, and the log (only what was persisted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durable {
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// The application's state up to a zxid, which replaces the log up to there.
    pub snapshot: Option<(Zxid, Vec<u8>)>,
    /// Entries after the snapshot.
    pub log: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Tick,
    /// A message and its place in the sender's stream to this peer (see [`Output::Send`]).
    Message {
        from: ServerId,
        stream: (u64, u64),
        msg: Message,
    },
    /// The log is durable up to `zxid`.
    Persisted {
        zxid: Zxid,
    },
    /// A new transaction to replicate (only an established leader takes it).
    Propose {
        data: Vec<u8>,
    },
    /// Send the application's message to `to` in the ordered stream: a follower to its
    /// leader, the leader to one of its learners. Dropped outside that relation.
    Relay {
        to: ServerId,
        data: Vec<u8>,
    },
    /// The ordered connection from `peer` is gone (its process died, or the link broke):
    /// what was in flight on it is lost, as when a gap shows in its stream, but known at
    /// once rather than at the next message or after `sync_limit` ticks.
    LinkDown {
        peer: ServerId,
    },
    /// The application saved its state up to `zxid` (delivered already): the log up to there
    /// can go, and followers too far behind get this state (SNAP) instead.
    Compact {
        zxid: Zxid,
        snapshot: Vec<u8>,
    },
}

/// Outputs are carried out in order. `SaveEpochs` and `Truncate` must be durable before any
/// later output is carried out; `Append` is durable when `Input::Persisted` says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `stream` is (the sender's incarnation, sequence number on this link). Links are
    /// expected to be FIFO while they last, like TCP connections; a receiver that sees a
    /// gap or a new incarnation treats the link as broken and re-established. Election
    /// notifications have sequence number 0: they are outside the ordered stream and may
    /// be lost, repeated or reordered on their own.
    Send {
        to: ServerId,
        stream: (u64, u64),
        msg: Message,
    },
    Append {
        entries: Vec<Entry>,
    },
    Truncate {
        after: Zxid,
    },
    SaveEpochs {
        accepted: u32,
        current: u32,
    },
    /// Committed, in zxid order, each exactly once per run of this peer.
    Deliver {
        entry: Entry,
    },
    /// The application's message from `from` (see [`Input::Relay`]): from the leader this
    /// peer serves under, or from a learner synchronized with this leader.
    Relayed {
        from: ServerId,
        data: Vec<u8>,
    },
    /// Replace the application's state with this snapshot (from the leader), durably.
    InstallSnapshot {
        zxid: Zxid,
        snapshot: Vec<u8>,
    },
    /// Drop the log up to `zxid` (the application's snapshot holds it), durably.
    CompactLog {
        upto: Zxid,
    },
    /// The proposal was not taken: this peer is not an established leader.
    Rejected {
        data: Vec<u8>,
    },
    /// Break the ordered connection to `peer`, so that it sees the link go (its
    /// [`Input::LinkDown`]): a leader that stopped counting on a learner tells it at once.
    Disconnect {
        peer: ServerId,
    },
    /// This peer now leads, follows or looks (for logs and the server's mode).
    Role {
        state: PeerState,
        epoch: u32,
    },
}

#[derive(Debug)]
struct Election {
    round: u64,
    proposal: Vote,
    /// Votes of looking peers in this round.
    votes: BTreeMap<ServerId, Vote>,
    /// Votes of peers that already follow or lead.
    settled: BTreeMap<ServerId, (Vote, PeerState)>,
    /// FollowerInfo from peers that settled on this one before it knew it leads: taken up
    /// if it does, rather than lost until the follower repeats it.
    early_infos: BTreeMap<ServerId, (u64, u32)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Discovery,
    Sync,
    Broadcast,
}

#[derive(Debug)]
struct Follower {
    leader: ServerId,
    phase: Phase,
    epoch: u32,
    last_heard: u64,
    started: u64,
    /// Waiting for the synchronized history up to this zxid to be durable before AckNewLeader.
    ack_new_leader_at: Option<Zxid>,
}

#[derive(Debug)]
struct Leader {
    phase: Phase,
    epoch: u32,
    started: u64,
    /// FollowerInfo received: accepted epoch of each.
    infos: BTreeMap<ServerId, u32>,
    /// Each follower's current following session.
    sessions: BTreeMap<ServerId, u64>,
    /// Followers being synchronized or in broadcast: they receive proposals and commits.
    forwarding: BTreeSet<ServerId>,
    /// Followers that acknowledged NewLeader.
    synced: BTreeSet<ServerId>,
    /// AckEpoch received and not yet synchronized: each follower's last zxid. Nobody is
    /// synchronized before a quorum has acknowledged the epoch with none of them ahead
    /// of the leader (ZooKeeper's `waitForEpochAck`).
    epoch_acks: BTreeMap<ServerId, Zxid>,
    epoch_quorum: bool,
    /// Highest zxid each voter (this one included) has logged.
    acks: BTreeMap<ServerId, Zxid>,
    last_heard: BTreeMap<ServerId, u64>,
    counter: u32,
    /// The history that became this epoch's starting point.
    start_zxid: Zxid,
}

#[derive(Debug)]
enum Role {
    Looking(Election),
    Following(Follower),
    Leading(Leader),
}

pub struct Peer {
    config: Config,
    durable: Durable,
    persisted_zxid: Zxid,
    delivered_zxid: Zxid,
    /// The vote this peer stands by once it stops looking (to answer looking peers).
    settled_vote: Vote,
    round: u64,
    tick: u64,
    role: Role,
    out: Vec<Output>,
    /// Sequence numbers of the links to each peer, and what each peer's stream reached.
    sent: BTreeMap<ServerId, u64>,
    received: BTreeMap<ServerId, (u64, u64)>,
}

fn last_zxid(durable: &Durable) -> Zxid {
    durable.log.last().map(|e| e.zxid).or(durable.snapshot.as_ref().map(|(z, _)| *z)).unwrap_or(0)
}

impl Peer {
    /// A peer starting from its durable state; `applied_zxid` is how far the application
    /// state already is (from its snapshot), so delivery resumes after it.
    pub fn new(config: Config, durable: Durable, applied_zxid: Zxid) -> Peer {
        let persisted_zxid = last_zxid(&durable);
        let me = Vote { leader: config.id, zxid: persisted_zxid, epoch: durable.current_epoch };
        let mut peer = Peer {
            config,
            durable,
            persisted_zxid,
            delivered_zxid: applied_zxid,
            settled_vote: me,
            round: 0,
            tick: 0,
            role: Role::Looking(Election {
                round: 0,
                proposal: me,
                votes: BTreeMap::new(),
                settled: BTreeMap::new(),
                early_infos: BTreeMap::new(),
            }),
            out: Vec::new(),
            sent: BTreeMap::new(),
            received: BTreeMap::new(),
        };
        peer.look();
        peer.out.clear();
        peer
    }

    pub fn id(&self) -> ServerId {
        self.config.id
    }

    pub fn state(&self) -> PeerState {
        match self.role {
            Role::Looking(_) => PeerState::Looking,
            Role::Following(_) => PeerState::Following,
            Role::Leading(_) => PeerState::Leading,
        }
    }

    /// Leading with a quorum synchronized: proposals are taken.
    pub fn is_established_leader(&self) -> bool {
        matches!(&self.role, Role::Leading(l) if l.phase == Phase::Broadcast)
    }

    /// An established leader, or a follower or observer told UpToDate: what it delivers is
    /// the ensemble's committed history, so it may serve clients.
    pub fn is_serving(&self) -> bool {
        match &self.role {
            Role::Leading(l) => l.phase == Phase::Broadcast,
            Role::Following(f) => f.phase == Phase::Broadcast,
            Role::Looking(_) => false,
        }
    }

    pub fn epoch(&self) -> u32 {
        self.durable.current_epoch
    }

    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    pub fn delivered_zxid(&self) -> Zxid {
        self.delivered_zxid
    }

    pub fn last_zxid(&self) -> Zxid {
        last_zxid(&self.durable)
    }

    /// The leader this peer follows (or itself when leading).
    pub fn leader(&self) -> Option<ServerId> {
        match &self.role {
            Role::Following(f) => Some(f.leader),
            Role::Leading(_) => Some(self.config.id),
            Role::Looking(_) => None,
        }
    }

    /// On a leader: the learners (followers and observers) it is synchronizing or
    /// broadcasting to, and how many of them are synchronized voters and observers.
    pub fn learners(&self) -> (usize, usize, usize) {
        match &self.role {
            Role::Leading(l) => {
                let voters = l.synced.iter().filter(|id| self.config.voters.contains(id)).count();
                (l.forwarding.len(), voters, l.synced.len() - voters)
            }
            _ => (0, 0, 0),
        }
    }

    /// On a leader: whether `id` is a learner it is synchronizing or broadcasting to (in
    /// this epoch, on the current connection).
    pub fn leads(&self, id: ServerId) -> bool {
        matches!(&self.role, Role::Leading(l) if l.forwarding.contains(&id))
    }

    /// Whether this peer serves as a learner of `id`, synchronized in its current epoch.
    pub fn serves_under(&self, id: ServerId) -> bool {
        id != self.config.id && self.is_serving() && self.leader() == Some(id)
    }

    pub fn voters(&self) -> usize {
        self.config.voters.len()
    }

    fn quorum(&self) -> usize {
        self.config.voters.len() / 2 + 1
    }

    fn send(&mut self, to: ServerId, msg: Message) {
        if to == self.config.id {
            return;
        }
        // Election notifications stand alone (each carries the whole vote and round, and
        // they are repeated), so they travel outside the ordered stream: the server sends
        // them on the election port's connections, the rest on the quorum port's.
        let seq = if let Message::Notification { .. } = msg {
            0
        } else {
            let seq = self.sent.entry(to).or_insert(0);
            *seq += 1;
            *seq
        };
        self.out.push(Output::Send { to, stream: (self.config.incarnation, seq), msg });
    }

    fn broadcast(&mut self, msg: Message) {
        for to in self.config.voters.clone() {
            self.send(to, msg.clone());
        }
    }

    pub fn step(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Tick => self.on_tick(),
            Input::Message { from, stream, msg } => {
                if self.accept(from, stream) {
                    self.on_message(from, msg);
                }
            }
            Input::Persisted { zxid } => self.on_persisted(zxid),
            Input::Propose { data } => self.propose(data),
            Input::Compact { zxid, snapshot } => self.compact(zxid, snapshot),
            Input::LinkDown { peer } => self.link_broken(peer),
            Input::Relay { to, data } => {
                if self.leads(to) || self.serves_under(to) {
                    self.send(to, Message::Relay { data });
                }
            }
        }
        std::mem::take(&mut self.out)
    }

    /// Drops duplicates; on a gap or a new incarnation, treats the link as broken first:
    /// whatever was in flight on it is lost, so a follower synchronizes again and a leader
    /// stops counting on that follower until it does.
    fn accept(&mut self, from: ServerId, (incarnation, seq): (u64, u64)) -> bool {
        if seq == 0 {
            return true;
        }
        let (known, reached) = self.received.get(&from).copied().unwrap_or((incarnation, 0));
        if known == incarnation && seq <= reached {
            return false;
        }
        self.received.insert(from, (incarnation, seq));
        if known != incarnation || seq != reached + 1 {
            self.link_broken(from);
        }
        true
    }

    fn link_broken(&mut self, peer: ServerId) {
        match &mut self.role {
            Role::Following(f) if f.leader == peer && f.phase != Phase::Discovery => {
                tracing::info!(
                    follower = self.config.id.0,
                    leader = peer.0,
                    "lost messages from the leader; synchronizing again"
                );
                self.look();
            }
            Role::Leading(leader) => {
                let was_learner = leader.forwarding.remove(&peer);
                leader.synced.remove(&peer);
                leader.acks.remove(&peer);
                leader.sessions.remove(&peer);
                // It would otherwise go on serving until `sync_limit` ticks without news.
                if was_learner {
                    self.out.push(Output::Disconnect { peer });
                }
            }
            _ => {}
        }
    }

    // ----- election -----

    fn own_vote(&self) -> Vote {
        Vote { leader: self.config.id, zxid: self.last_zxid(), epoch: self.durable.current_epoch }
    }

    fn look(&mut self) {
        self.round += 1;
        let me = self.own_vote();
        let mut votes = BTreeMap::new();
        votes.insert(self.config.id, me);
        self.role = Role::Looking(Election {
            round: self.round,
            proposal: me,
            votes,
            settled: BTreeMap::new(),
            early_infos: BTreeMap::new(),
        });
        self.out.push(Output::Role { state: PeerState::Looking, epoch: self.durable.current_epoch });
        self.broadcast(Message::Notification { vote: me, state: PeerState::Looking, round: self.round });
    }

    fn on_notification(&mut self, from: ServerId, vote: Vote, state: PeerState, round: u64) {
        let me = self.config.id;
        let own = self.own_vote();
        let quorum = self.quorum();
        let (from_voter, observer) = (self.config.voters.contains(&from), self.is_observer());
        let Role::Looking(election) = &mut self.role else {
            // Settled peers tell looking ones whom they follow.
            if state == PeerState::Looking {
                let msg = Message::Notification { vote: self.settled_vote, state: self.state(), round: self.round };
                self.send(from, msg);
            }
            return;
        };
        let (mut rebroadcast, mut reply) = (false, false);
        match state {
            // Observers neither vote nor back a leader.
            _ if !from_voter => return,
            // An observer only looks for the leader the voters settled on.
            PeerState::Looking if observer => {}
            PeerState::Looking => {
                if round > election.round {
                    election.round = round;
                    self.round = round;
                    election.votes.clear();
                    election.votes.insert(me, own);
                    election.proposal = if vote.key() > own.key() { vote } else { own };
                    rebroadcast = true;
                } else if round < election.round {
                    let msg = Message::Notification {
                        vote: election.proposal,
                        state: PeerState::Looking,
                        round: election.round,
                    };
                    self.send(from, msg);
                    return;
                } else if vote.key() > election.proposal.key() {
                    election.proposal = vote;
                    rebroadcast = true;
                } else if vote.key() < election.proposal.key() {
                    // The sender backs someone worse: tell it ours now, rather than at the
                    // next repeat (it may have missed our broadcast while it still followed).
                    reply = true;
                }
                election.votes.insert(from, vote);
                election.votes.insert(me, election.proposal);
            }
            PeerState::Following | PeerState::Leading => {
                election.settled.insert(from, (vote, state));
            }
        }
        let proposal = election.proposal;
        let agreeing = election.votes.values().filter(|v| v.leader == proposal.leader).count();
        // Peers already settled on a leader that itself says it leads: join them.
        let settled_on = |leader: ServerId| {
            let backers = election.settled.values().filter(|(v, _)| v.leader == leader).count();
            let leads = leader == me || election.settled.get(&leader).is_some_and(|(_, s)| *s == PeerState::Leading);
            leads && backers + 1 >= quorum
        };
        let decision = if agreeing >= quorum && !observer {
            Some(proposal)
        } else {
            election.settled.values().map(|(v, _)| *v).find(|v| v.leader != me && settled_on(v.leader))
        };
        let early = if decision.is_some() { std::mem::take(&mut election.early_infos) } else { BTreeMap::new() };
        let msg = Message::Notification { vote: proposal, state: PeerState::Looking, round: self.round };
        if rebroadcast {
            self.broadcast(msg);
        } else if reply {
            self.send(from, msg);
        }
        if let Some(vote) = decision {
            self.settled_vote = vote;
            if vote.leader == me {
                self.lead();
                for (from, (session, accepted_epoch)) in early {
                    self.on_follower_info(from, session, accepted_epoch);
                }
            } else {
                self.follow(vote.leader);
            }
        }
    }

    pub fn is_observer(&self) -> bool {
        !self.config.voters.contains(&self.config.id)
    }

    // ----- leading -----

    fn lead(&mut self) {
        let me = self.config.id;
        let mut infos = BTreeMap::new();
        infos.insert(me, self.durable.accepted_epoch);
        let mut acks = BTreeMap::new();
        acks.insert(me, self.persisted_zxid);
        self.role = Role::Leading(Leader {
            phase: Phase::Discovery,
            epoch: 0,
            started: self.tick,
            infos,
            sessions: BTreeMap::new(),
            forwarding: BTreeSet::new(),
            synced: BTreeSet::new(),
            epoch_acks: BTreeMap::new(),
            epoch_quorum: false,
            acks,
            last_heard: BTreeMap::new(),
            counter: 0,
            start_zxid: self.last_zxid(),
        });
        self.out.push(Output::Role { state: PeerState::Leading, epoch: self.durable.current_epoch });
    }

    fn on_follower_info(&mut self, from: ServerId, session: u64, accepted_epoch: u32) {
        let quorum = self.quorum();
        let Role::Leading(leader) = &mut self.role else { return };
        leader.last_heard.insert(from, self.tick);
        if leader.sessions.get(&from) == Some(&session) && leader.phase != Phase::Discovery {
            // A repeat of a FollowerInfo already answered. (Answering it again would be
            // wrong: the leader's messages carry no follower session, so a second LeaderInfo
            // could start the follower's next session, which would then take this session's
            // synchronization as its own.)
            return;
        }
        // A new session: whatever the follower had from an earlier one is void.
        leader.sessions.insert(from, session);
        leader.forwarding.remove(&from);
        leader.synced.remove(&from);
        leader.acks.remove(&from);
        leader.infos.insert(from, accepted_epoch);
        if leader.phase != Phase::Discovery {
            // A late joiner: it gets the established epoch.
            let epoch = leader.epoch;
            self.send(from, Message::LeaderInfo { epoch });
            return;
        }
        let voters = leader.infos.keys().filter(|id| self.config.voters.contains(id)).count();
        if voters < quorum {
            return;
        }
        let epoch = leader.infos.values().copied().max().unwrap_or(0) + 1;
        leader.epoch = epoch;
        leader.phase = Phase::Sync;
        let targets: Vec<ServerId> = leader.infos.keys().copied().collect();
        self.durable.accepted_epoch = epoch;
        self.out.push(Output::SaveEpochs { accepted: epoch, current: self.durable.current_epoch });
        for to in targets {
            self.send(to, Message::LeaderInfo { epoch });
        }
    }

    fn on_ack_epoch(&mut self, from: ServerId, session: u64, epoch: u32, current_epoch: u32, follower_zxid: Zxid) {
        let my_last = self.last_zxid();
        let my_epoch = self.durable.current_epoch;
        let Role::Leading(leader) = &mut self.role else { return };
        // Only the first AckEpoch of the follower's current session starts a synchronization.
        if epoch != leader.epoch || leader.sessions.get(&from) != Some(&session) || leader.forwarding.contains(&from) {
            return;
        }
        leader.last_heard.insert(from, self.tick);
        let from_voter = self.config.voters.contains(&from);
        if !leader.epoch_quorum && from_voter && (current_epoch, follower_zxid) > (my_epoch, my_last) {
            // A member of the establishing quorum knows more than the leader: elect again.
            tracing::warn!(follower = from.0, "a follower is ahead of the new leader; electing again");
            return self.look();
        }
        leader.epoch_acks.insert(from, follower_zxid);
        if !leader.epoch_quorum {
            let voters = leader.epoch_acks.keys().filter(|id| self.config.voters.contains(id)).count();
            if voters + 1 < self.config.voters.len() / 2 + 1 {
                return;
            }
            leader.epoch_quorum = true;
        }
        let waiting: Vec<(ServerId, Zxid)> = std::mem::take(&mut leader.epoch_acks).into_iter().collect();
        for (follower, zxid) in waiting {
            self.synchronize(follower, zxid);
        }
    }

    /// Cuts what the follower has that the leader does not and sends it the rest, then
    /// NewLeader.
    fn synchronize(&mut self, from: ServerId, follower_zxid: Zxid) {
        let my_last = self.last_zxid();
        let Role::Leading(leader) = &mut self.role else { return };
        let (log, snapshot) = (&self.durable.log, &self.durable.snapshot);
        let start = snapshot.as_ref().map_or(0, |(z, _)| *z);
        let in_history = follower_zxid == start || log.iter().any(|e| e.zxid == follower_zxid);
        // The last point of the leader's history at or before the follower's.
        let common = if follower_zxid <= my_last && in_history {
            Some(follower_zxid)
        } else {
            log.iter().rev().map(|e| e.zxid).find(|z| *z < follower_zxid).or((start < follower_zxid).then_some(start))
        };
        let epoch = leader.epoch;
        leader.forwarding.insert(from);
        let base = match (common, snapshot) {
            (Some(common), _) if common >= start => {
                if common != follower_zxid {
                    self.send(from, Message::Trunc { epoch, zxid: common });
                }
                common
            }
            // Behind the start of the leader's log: its snapshot, then the log.
            (_, Some((zxid, data))) => {
                let msg = Message::Snap { epoch, zxid: *zxid, snapshot: data.clone() };
                self.send(from, msg);
                start
            }
            (_, None) => unreachable!("without a snapshot the log starts at zxid 0, a common point"),
        };
        let entries: Vec<Entry> = self.durable.log.iter().filter(|e| e.zxid > base).cloned().collect();
        if let Role::Leading(leader) = &mut self.role {
            leader.acks.insert(from, base);
        }
        self.send(from, Message::Diff { epoch, entries });
        self.send(from, Message::NewLeader { epoch, zxid: my_last });
    }

    fn compact(&mut self, zxid: Zxid, snapshot: Vec<u8>) {
        let start = self.durable.snapshot.as_ref().map_or(0, |(z, _)| *z);
        if zxid > self.delivered_zxid || zxid <= start {
            return;
        }
        self.durable.log.retain(|e| e.zxid > zxid);
        self.durable.snapshot = Some((zxid, snapshot));
        self.out.push(Output::CompactLog { upto: zxid });
    }

    fn on_ack_new_leader(&mut self, from: ServerId, epoch: u32) {
        let quorum = self.quorum();
        let Role::Leading(leader) = &mut self.role else { return };
        if epoch != leader.epoch {
            return;
        }
        leader.last_heard.insert(from, self.tick);
        leader.synced.insert(from);
        match leader.phase {
            Phase::Sync => self.try_establish(quorum),
            Phase::Broadcast => {
                let committed = self.delivered_zxid;
                self.send(from, Message::UpToDate { epoch });
                self.send(from, Message::Commit { epoch, zxid: committed });
            }
            Phase::Discovery => {}
        }
    }

    /// Once a quorum acknowledged NewLeader and the leader's own history is durable, the
    /// new epoch is established and its starting history committed.
    fn try_establish(&mut self, quorum: usize) {
        let durable_history = self.persisted_zxid >= self.last_zxid();
        let Role::Leading(leader) = &mut self.role else { return };
        let epoch = leader.epoch;
        match leader.phase {
            Phase::Sync
                if leader.synced.iter().filter(|id| self.config.voters.contains(id)).count() + 1 >= quorum
                    && durable_history =>
            {
                leader.phase = Phase::Broadcast;
                leader.start_zxid = last_zxid(&self.durable);
                let synced: Vec<ServerId> = leader.synced.iter().copied().collect();
                self.durable.current_epoch = epoch;
                self.out.push(Output::SaveEpochs { accepted: epoch, current: epoch });
                self.out.push(Output::Role { state: PeerState::Leading, epoch });
                tracing::info!(leader = self.config.id.0, epoch, "leader established");
                // The synchronized history is committed.
                let committed = self.last_zxid();
                self.deliver_up_to(committed);
                for to in synced {
                    self.send(to, Message::UpToDate { epoch });
                    self.send(to, Message::Commit { epoch, zxid: committed });
                }
            }
            _ => {}
        }
    }

    fn propose(&mut self, data: Vec<u8>) {
        let Role::Leading(leader) = &mut self.role else {
            return self.out.push(Output::Rejected { data });
        };
        if leader.phase != Phase::Broadcast {
            return self.out.push(Output::Rejected { data });
        }
        if leader.counter >= self.config.counter_limit {
            self.out.push(Output::Rejected { data });
            return self.step_down_if_drained();
        }
        leader.counter += 1;
        let entry = Entry { zxid: zxid(leader.epoch, leader.counter), data };
        let epoch = leader.epoch;
        let targets: Vec<ServerId> = leader.forwarding.iter().copied().collect();
        self.durable.log.push(entry.clone());
        self.out.push(Output::Append { entries: vec![entry.clone()] });
        for to in targets {
            self.send(to, Message::Proposal { epoch, entry: entry.clone() });
        }
    }

    /// Commits the highest zxid of this epoch that a quorum has logged.
    fn advance_commit(&mut self) {
        let quorum = self.quorum();
        let Role::Leading(leader) = &self.role else { return };
        if leader.phase != Phase::Broadcast {
            return;
        }
        let mut logged: Vec<Zxid> = leader
            .acks
            .iter()
            .filter(|(id, _)| **id == self.config.id || (leader.synced.contains(id) && self.config.voters.contains(id)))
            .map(|(_, z)| *z)
            .collect();
        if logged.len() < quorum {
            return;
        }
        logged.sort_unstable_by(|a, b| b.cmp(a));
        let committable = logged[quorum - 1];
        if committable <= self.delivered_zxid || epoch_of(committable) != leader.epoch {
            return;
        }
        let epoch = leader.epoch;
        let targets: Vec<ServerId> = leader.forwarding.iter().copied().collect();
        self.deliver_up_to(committable);
        for to in targets {
            self.send(to, Message::Commit { epoch, zxid: committable });
        }
        self.step_down_if_drained();
    }

    /// A leader whose epoch has run out of zxids takes no more proposals, and steps down
    /// once every one it made is committed, so that the writes in flight are answered
    /// rather than left to the next epoch after their clients were cut off.
    fn step_down_if_drained(&mut self) {
        let Role::Leading(leader) = &self.role else { return };
        let drained = leader.counter == 0 || self.delivered_zxid >= zxid(leader.epoch, leader.counter);
        if leader.counter >= self.config.counter_limit && drained {
            tracing::info!(
                leader = self.config.id.0,
                epoch = leader.epoch,
                "the epoch's zxids are used up; electing a new epoch"
            );
            self.look();
        }
    }

    // ----- following -----

    fn follow(&mut self, leader: ServerId) {
        self.role = Role::Following(Follower {
            leader,
            phase: Phase::Discovery,
            epoch: 0,
            last_heard: self.tick,
            started: self.tick,
            ack_new_leader_at: None,
        });
        self.out.push(Output::Role { state: PeerState::Following, epoch: self.durable.current_epoch });
        let msg = Message::FollowerInfo {
            session: self.round,
            accepted_epoch: self.durable.accepted_epoch,
            last_zxid: self.last_zxid(),
        };
        self.send(leader, msg);
    }

    fn on_leader_message(&mut self, msg: Message) {
        let Role::Following(f) = &mut self.role else { return };
        f.last_heard = self.tick;
        match msg {
            Message::LeaderInfo { epoch } if f.phase == Phase::Discovery => {
                if epoch < self.durable.accepted_epoch {
                    return self.look();
                }
                f.epoch = epoch;
                f.phase = Phase::Sync;
                if epoch > self.durable.accepted_epoch {
                    self.durable.accepted_epoch = epoch;
                    self.out.push(Output::SaveEpochs { accepted: epoch, current: self.durable.current_epoch });
                }
                let (leader, current_epoch, last_zxid) = (f.leader, self.durable.current_epoch, self.last_zxid());
                let session = self.round;
                self.send(leader, Message::AckEpoch { session, epoch, current_epoch, last_zxid });
            }
            // Synchronization happens once per session, in the Sync phase.
            // A leader never asks to undo what was committed; one that does is refused rather
            // than trusted (debug builds, and so the simulator, stop on it).
            Message::Trunc { epoch, zxid } | Message::Snap { epoch, zxid, .. }
                if epoch == f.epoch && f.phase == Phase::Sync && zxid < self.delivered_zxid =>
            {
                debug_assert!(false, "asked to go back to {zxid:#x}, delivered {:#x}", self.delivered_zxid);
                tracing::error!(
                    follower = self.config.id.0,
                    zxid,
                    delivered = self.delivered_zxid,
                    "the leader asked to go back before committed history; electing again"
                );
                self.look();
            }
            Message::Trunc { epoch, zxid } if epoch == f.epoch && f.phase == Phase::Sync => {
                self.durable.log.retain(|e| e.zxid <= zxid);
                self.persisted_zxid = self.persisted_zxid.min(zxid);
                self.out.push(Output::Truncate { after: zxid });
            }
            Message::Snap { epoch, zxid, snapshot } if epoch == f.epoch && f.phase == Phase::Sync => {
                self.durable.log.clear();
                self.durable.snapshot = Some((zxid, snapshot.clone()));
                self.persisted_zxid = zxid;
                self.delivered_zxid = zxid;
                self.out.push(Output::InstallSnapshot { zxid, snapshot });
            }
            Message::Diff { epoch, entries } if epoch == f.epoch && f.phase == Phase::Sync => self.append(entries),
            Message::Proposal { epoch, entry } if epoch == f.epoch => {
                // Links are FIFO while they last; a gap means one broke and came back.
                let last = self.last_zxid();
                let follows = if epoch_of(entry.zxid) == epoch_of(last) {
                    entry.zxid == last + 1
                } else {
                    entry.zxid & 0xffff_ffff == 1
                };
                if entry.zxid > last && !follows {
                    tracing::info!(
                        follower = self.config.id.0,
                        zxid = entry.zxid,
                        last,
                        "missed proposals; synchronizing again"
                    );
                    return self.look();
                }
                self.append(vec![entry]);
            }
            Message::NewLeader { zxid, epoch } if epoch == f.epoch && f.phase == Phase::Sync => {
                // The new epoch becomes current only once the synchronized history is
                // durable (in `on_persisted`): a current epoch ahead of the log would win
                // an election with history missing.
                f.ack_new_leader_at = Some(zxid);
                self.on_persisted(self.persisted_zxid);
            }
            Message::UpToDate { epoch } if epoch == f.epoch && f.phase == Phase::Sync => {
                f.phase = Phase::Broadcast;
                self.out.push(Output::Role { state: PeerState::Following, epoch });
            }
            Message::Commit { epoch, zxid } if epoch == f.epoch => self.deliver_up_to(zxid),
            Message::Ping { epoch } if epoch == f.epoch => {
                let leader = f.leader;
                self.send(leader, Message::Ping { epoch });
            }
            _ => {}
        }
    }

    fn append(&mut self, entries: Vec<Entry>) {
        let last = self.last_zxid();
        let fresh: Vec<Entry> = entries.into_iter().filter(|e| e.zxid > last).collect();
        if fresh.is_empty() {
            return;
        }
        self.durable.log.extend(fresh.iter().cloned());
        self.out.push(Output::Append { entries: fresh });
    }

    // ----- both -----

    fn on_message(&mut self, from: ServerId, msg: Message) {
        match msg {
            Message::Notification { vote, state, round } => self.on_notification(from, vote, state, round),
            Message::FollowerInfo { session, accepted_epoch, .. } => match &mut self.role {
                Role::Looking(election) => {
                    election.early_infos.insert(from, (session, accepted_epoch));
                }
                _ => self.on_follower_info(from, session, accepted_epoch),
            },
            Message::AckEpoch { session, epoch, current_epoch, last_zxid } => {
                self.on_ack_epoch(from, session, epoch, current_epoch, last_zxid)
            }
            Message::AckNewLeader { epoch } => self.on_ack_new_leader(from, epoch),
            Message::Ack { epoch, zxid } => {
                if let Role::Leading(leader) = &mut self.role {
                    if epoch == leader.epoch && leader.forwarding.contains(&from) {
                        leader.last_heard.insert(from, self.tick);
                        let logged = leader.acks.entry(from).or_insert(0);
                        *logged = (*logged).max(zxid);
                        self.advance_commit();
                    }
                }
            }
            Message::Relay { data } => {
                if self.leads(from) || self.serves_under(from) {
                    self.out.push(Output::Relayed { from, data });
                }
            }
            Message::Ping { epoch } => match &mut self.role {
                Role::Leading(leader) if epoch == leader.epoch => {
                    leader.last_heard.insert(from, self.tick);
                }
                Role::Following(f) if from == f.leader => self.on_leader_message(Message::Ping { epoch }),
                _ => {}
            },
            other => {
                if matches!(&self.role, Role::Following(f) if f.leader == from) {
                    self.on_leader_message(other);
                }
            }
        }
    }

    fn on_persisted(&mut self, zxid: Zxid) {
        self.persisted_zxid = self.persisted_zxid.max(zxid).min(self.last_zxid());
        let persisted = self.persisted_zxid;
        let observer = self.is_observer();
        match &mut self.role {
            Role::Leading(leader) => {
                leader.acks.insert(self.config.id, persisted);
                let quorum = self.quorum();
                self.try_establish(quorum);
                self.advance_commit();
            }
            Role::Following(f) => {
                let (leader, epoch) = (f.leader, f.epoch);
                match f.ack_new_leader_at {
                    Some(target) if persisted >= target => {
                        f.ack_new_leader_at = None;
                        self.durable.current_epoch = epoch;
                        self.out.push(Output::SaveEpochs { accepted: self.durable.accepted_epoch, current: epoch });
                        self.send(leader, Message::AckNewLeader { epoch });
                        self.send(leader, Message::Ack { epoch, zxid: persisted });
                    }
                    Some(_) => {}
                    // Observers do not acknowledge: their log counts for no quorum.
                    None if f.phase == Phase::Broadcast && !observer => {
                        self.send(leader, Message::Ack { epoch, zxid: persisted })
                    }
                    None => {}
                }
            }
            Role::Looking(_) => {}
        }
    }

    fn deliver_up_to(&mut self, zxid: Zxid) {
        let from = self.delivered_zxid;
        // The log is in zxid order: start at the first undelivered entry, not the log's start.
        let log = &self.durable.log;
        let first = log.partition_point(|e| e.zxid <= from);
        let entries: Vec<Entry> = log[first..].iter().take_while(|e| e.zxid <= zxid).cloned().collect();
        for entry in entries {
            self.delivered_zxid = entry.zxid;
            self.out.push(Output::Deliver { entry });
        }
    }

    fn on_tick(&mut self) {
        self.tick += 1;
        let (tick, init, sync) = (self.tick, self.config.init_limit, self.config.sync_limit);
        let quorum = self.quorum();
        match &mut self.role {
            Role::Looking(election) => {
                // Notifications may be lost: repeat ours now and then.
                if tick % 2 == 0 {
                    let msg = Message::Notification {
                        vote: election.proposal,
                        state: PeerState::Looking,
                        round: election.round,
                    };
                    self.broadcast(msg);
                }
            }
            Role::Leading(leader) => {
                let voters = &self.config.voters;
                let alive = 1 + leader
                    .last_heard
                    .iter()
                    .filter(|(id, t)| leader.synced.contains(id) && voters.contains(id) && tick - **t <= sync)
                    .count();
                let gave_up = match leader.phase {
                    Phase::Broadcast => alive < quorum,
                    _ => tick - leader.started > init,
                };
                if gave_up {
                    tracing::info!(leader = self.config.id.0, epoch = leader.epoch, "lost the quorum; electing again");
                    return self.look();
                }
                let epoch = leader.epoch;
                let targets: Vec<ServerId> = leader.forwarding.iter().copied().collect();
                for to in targets {
                    self.send(to, Message::Ping { epoch });
                }
            }
            Role::Following(f) => {
                let limit = if f.phase == Phase::Broadcast { sync } else { init };
                if tick - f.last_heard > limit || (f.phase != Phase::Broadcast && tick - f.started > init) {
                    return self.look();
                }
                if f.phase == Phase::Discovery {
                    let leader = f.leader;
                    let last_zxid = last_zxid(&self.durable);
                    let msg = Message::FollowerInfo {
                        session: self.round,
                        accepted_epoch: self.durable.accepted_epoch,
                        last_zxid,
                    };
                    self.send(leader, msg);
                }
            }
        }
    }
}
