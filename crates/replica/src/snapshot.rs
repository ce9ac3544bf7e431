//! Snapshots of the replica: when to take one, and its chunks. The first chunk holds the
//! sessions; the rest are the tree's (see `tree`'s snapshot module). A snapshot is taken
//! every `snap_count` transactions, give or take half, randomly, so that servers of an
//! ensemble do not all write one at once (as ZooKeeper does).

use crate::Replica;
use proto::jute::{DecodeError, Reader, Record, Writer};
use rand_chacha::rand_core::RngCore;
use tree::{DataTree, TxnOp};

/// A piece of a snapshot for the storage layer to write, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPart {
    pub zxid: i64,
    pub bytes: Vec<u8>,
    pub first: bool,
    pub last: bool,
}

#[derive(Debug)]
pub(crate) struct SnapshotState {
    zxid: i64,
    /// The sessions chunk, until it is handed out.
    sessions: Option<Vec<u8>>,
}

impl Replica {
    /// The next snapshot comes after between half and all of `snap_count` transactions.
    pub(crate) fn next_snapshot_threshold(&mut self) -> u64 {
        let half = (self.config.snap_count / 2).max(1);
        half + self.rng.next_u64() % half
    }

    /// Called after transactions are applied: starts a snapshot when enough have been.
    pub(crate) fn maybe_begin_snapshot(&mut self) {
        if self.txns_since_snapshot < self.snapshot_threshold || self.snapshot.is_some() {
            return;
        }
        self.txns_since_snapshot = 0;
        self.snapshot_threshold = self.next_snapshot_threshold();
        let zxid = self.applied_zxid;
        // Sessions whose creation is not applied yet are not part of this point in time (on
        // a follower, those waiting for the leader to commit them).
        let creating: Vec<i64> = self
            .in_flight
            .iter()
            .filter(|f| matches!(f.txn.op, TxnOp::CreateSession { .. }))
            .map(|f| f.txn.session_id)
            .chain(self.connecting.keys().copied())
            .collect();
        let mut w = Vec::new();
        let sessions: Vec<_> = self.sessions.iter().filter(|s| !creating.contains(&s.id)).collect();
        w.put_count(sessions.len());
        for s in sessions {
            w.put_i64(s.id);
            w.put_buffer(Some(&s.passwd));
            w.put_i32(s.timeout_ms);
        }
        self.tree.begin_snapshot(zxid);
        self.snapshot = Some(SnapshotState { zxid, sessions: Some(w) });
        tracing::info!(zxid = format_args!("{zxid:#x}"), "snapshot started");
    }

    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshot.is_some()
    }

    /// The next part of the snapshot in progress (at most `max_nodes` nodes of the tree).
    pub fn snapshot_chunk(&mut self, max_nodes: usize) -> Option<SnapshotPart> {
        let state = self.snapshot.as_mut()?;
        let zxid = state.zxid;
        if let Some(bytes) = state.sessions.take() {
            return Some(SnapshotPart { zxid, bytes, first: true, last: false });
        }
        let (bytes, last) = self.tree.snapshot_chunk(max_nodes)?;
        if last {
            self.snapshot = None;
        }
        Some(SnapshotPart { zxid, bytes, first: false, last })
    }

    /// Replaces the tree and the sessions with a snapshot's (at start-up, before
    /// [`Replica::recover`] replays the log after it).
    pub fn restore_snapshot<'a>(
        &mut self,
        zxid: i64,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), DecodeError> {
        let mut chunks = chunks.into_iter();
        let sessions = chunks.next().ok_or(DecodeError::Unsupported { what: "empty snapshot", value: 0 })?;
        let r = &mut Reader::new(sessions);
        let mut restored = Vec::new();
        for _ in 0..r.count()? {
            let id = r.i64()?;
            let passwd: Vec<u8> = Record::decode(r)?;
            let passwd: [u8; 16] =
                passwd.try_into().map_err(|_| DecodeError::Unsupported { what: "password length", value: -1 })?;
            restored.push((id, passwd, r.i32()?));
        }
        let tree = DataTree::from_snapshot(chunks)?;
        self.install(zxid, tree, &restored);
        Ok(())
    }

    /// Replaces the state with a tree and sessions at `zxid` (from a snapshot, or imported
    /// from ZooKeeper). Sessions are `(id, password, timeout_ms)`.
    pub fn install(&mut self, zxid: i64, tree: DataTree, sessions: &[(i64, [u8; 16], i32)]) {
        self.tree = tree;
        // A snapshot in progress was of the state replaced here: it could never finish, and
        // would stay "in progress" for good.
        self.snapshot = None;
        self.sessions.clear();
        for &(id, passwd, timeout_ms) in sessions {
            self.sessions.restore(id, passwd, timeout_ms, self.now_ms);
        }
        self.applied_zxid = zxid;
        self.prepared_zxid = zxid;
    }

    /// Starts a snapshot of the applied state now, whatever the transaction count.
    pub fn begin_snapshot(&mut self) {
        self.txns_since_snapshot = self.snapshot_threshold;
        self.maybe_begin_snapshot();
    }
}
