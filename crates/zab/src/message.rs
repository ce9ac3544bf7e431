//! What servers of an ensemble say to each other, with the names of ZooKeeper's
//! `Leader.java` packets, and the identifiers they use.

/// `epoch << 32 | counter`: the epoch of the leader that proposed it, and its position.
pub type Zxid = i64;

pub fn zxid(epoch: u32, counter: u32) -> Zxid {
    ((epoch as i64) << 32) | counter as i64
}

pub fn epoch_of(zxid: Zxid) -> u32 {
    (zxid >> 32) as u32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(pub u64);

/// One transaction of the replicated history; the payload is opaque here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub zxid: Zxid,
    pub data: Vec<u8>,
}

/// A vote in fast leader election: who should lead, judged by what it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub leader: ServerId,
    /// The candidate's last logged zxid.
    pub zxid: Zxid,
    /// The candidate's current epoch.
    pub epoch: u32,
}

impl Vote {
    /// Votes order by epoch, then zxid, then server id (FastLeaderElection.totalOrderPredicate).
    pub fn key(&self) -> (u32, Zxid, ServerId) {
        (self.epoch, self.zxid, self.leader)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Looking,
    Following,
    Leading,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Election: my vote, my state, and my election round.
    Notification {
        vote: Vote,
        state: PeerState,
        round: u64,
    },
    /// Follower to leader: my accepted epoch and history. `session` is new each time the
    /// follower starts following, so that the leader tells a repeat from a reconnect (which
    /// must be synchronized again), as ZooKeeper does with connections.
    FollowerInfo {
        session: u64,
        accepted_epoch: u32,
        last_zxid: Zxid,
    },
    /// Leader to follower: the new epoch.
    LeaderInfo {
        epoch: u32,
    },
    /// Follower to leader: I accepted `epoch`; this is my history.
    AckEpoch {
        session: u64,
        epoch: u32,
        current_epoch: u32,
        last_zxid: Zxid,
    },
    /// Leader to follower: drop everything after `zxid`.
    Trunc {
        epoch: u32,
        zxid: Zxid,
    },
    /// Leader to follower: replace your state with this (you are behind my log's start).
    Snap {
        epoch: u32,
        zxid: Zxid,
        snapshot: Vec<u8>,
    },
    /// Leader to follower: append these.
    Diff {
        epoch: u32,
        entries: Vec<Entry>,
    },
    /// Leader to follower: the history up to `zxid` is the new epoch's starting point.
    NewLeader {
        epoch: u32,
        zxid: Zxid,
    },
    AckNewLeader {
        epoch: u32,
    },
    /// Leader to follower: start serving; everything synchronized is committed.
    UpToDate {
        epoch: u32,
    },
    Proposal {
        epoch: u32,
        entry: Entry,
    },
    /// Everything up to `zxid` is logged here.
    Ack {
        epoch: u32,
        zxid: Zxid,
    },
    /// Everything up to `zxid` is committed.
    Commit {
        epoch: u32,
        zxid: Zxid,
    },
    /// Heartbeat both ways, so each side knows the other is there.
    Ping {
        epoch: u32,
    },
    /// The application's own message between a follower and its leader (forwarded
    /// requests, and their answers), carried in the ordered stream so that a lost one shows
    /// as a gap like any other; delivered only within the current leadership.
    Relay {
        data: Vec<u8>,
    },
}
