//! ZooKeeper Atomic Broadcast as a pure state machine, one [`Peer`] per server.
//!
//! Inputs (ticks, messages from peers, "the log is durable up to zxid", proposals) go in
//! through [`Peer::step`]; outputs (messages, log appends and truncations, epoch updates,
//! committed entries to deliver) come out. No sockets, threads, clocks or randomness: the
//! server drives it with real ones, the simulator with seeded ones.
//!
//! Phases, as in the ZAB paper and ZooKeeper: fast leader election over (epoch, zxid, id)
//! votes; discovery, where the new leader gathers a quorum's accepted epochs and proposes a
//! new one; synchronization, where each follower is brought to the leader's history (TRUNC
//! what it has that the leader does not, DIFF what it lacks, or SNAP when it is behind the
//! leader's compacted log) and acknowledges NEWLEADER;
//! broadcast, where each proposal is logged by a quorum before it is committed, in zxid
//! order. Transactions are opaque bytes here: `zab` knows nothing of the tree.
//!
//! A leader whose epoch runs out of zxids (`Config::counter_limit`) takes no more
//! proposals, and once those it made are committed it steps down, so that the next
//! election starts a new epoch.
//!
//! Observers (servers not among the voters) synchronize and apply commits like followers
//! but never vote, acknowledge or count for a quorum.
//! The application compacts the log with [`Input::Compact`] once it has saved its state;
//! a follower behind the start of the leader's log then gets that state (SNAP) and the log
//! after it.
//!
//! Between servers, messages travel as the frames of [`encode_frame`], joined by the
//! receiver and decoded by [`decode_body`].

mod message;
mod peer;
mod wire;

pub use message::{epoch_of, zxid, Entry, Message, PeerState, ServerId, Vote, Zxid};
pub use peer::{Config, Durable, Input, Output, Peer};
pub use wire::{
    check_body_growth, decode_body, encode_frame, encode_frames, frame_len, WireError, MAX_BODY, MAX_FRAME, MORE,
};
