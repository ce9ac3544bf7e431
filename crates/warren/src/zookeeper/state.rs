//! ZooKeeper's tree and sessions as its `DataTree` keeps them, changed by its transactions
//! with its own rules (`DataTree.processTxn`), then handed to Warren as a [`tree::DataTree`].
//!
//! ZooKeeper's rules are mirrored here rather than translated into Warren transactions
//! because they differ where a replay overlaps a fuzzy snapshot: a create carries the
//! parent's new cversion and only raises it, a delete raises the parent's pzxid only, and a
//! create of a node that already exists still fixes up its parent's cversion.
//!
//! Cversion: ZooKeeper stores, in `StatPersisted.cversion`, the number of children ever
//! created under a node, and shows clients `2 * stored - numChildren` (`DataNode.copyStat`:
//! every create is a change, and so is the delete of every child no longer there). That is
//! exactly Warren's `child_creates` with its own `cversion = 2 * child_creates -
//! num_children`, so the stored value is taken as it is, with no rounding. (Deriving it from
//! the client-visible cversion as `(cversion + num_children) / 2` gives the same number,
//! since the visible cversion and the child count always have the same parity.)

use super::txnlog::{Op, Txn};
use proto::Acl;
use proto::OpCode;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tree::{owner, path, DataTree, Meta};

/// A session as `Replica::install` takes it: id, password, timeout (ms).
pub type Session = (i64, [u8; 16], i32);

/// A node as ZooKeeper's `DataNode` holds it, changed in place while transactions replay.
#[derive(Debug, Clone)]
pub struct ZkNode {
    pub data: Option<Box<[u8]>>,
    pub acl: Arc<[Acl]>,
    /// `child_creates` holds ZooKeeper's stored cversion; `num_children` is not kept.
    pub meta: Meta,
}

#[derive(Debug, Default)]
pub struct State {
    /// Every node by path (`/` for ZooKeeper's root, whose path is `""` on disk).
    pub nodes: BTreeMap<String, ZkNode>,
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    /// Live sessions and their timeouts (ms).
    pub sessions: BTreeMap<i64, i32>,
    /// The last transaction the state includes.
    pub zxid: i64,
}

/// Why a node could not be added.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    BadPath,
    NoParent,
    Exists,
}

impl State {
    /// Adds a node read from a snapshot, after its parent.
    pub fn load(&mut self, p: &str, node: ZkNode) -> Result<(), Refused> {
        if !path::is_well_formed(p) {
            return Err(Refused::BadPath);
        }
        if p != path::ROOT && !self.nodes.contains_key(path::parent(p)) {
            return Err(Refused::NoParent);
        }
        if self.nodes.contains_key(p) {
            return Err(Refused::Exists);
        }
        if let Some(session) = owner::session(node.meta.ephemeral_owner) {
            self.ephemerals.entry(session).or_default().insert(p.to_owned());
        }
        self.nodes.insert(p.to_owned(), node);
        Ok(())
    }

    /// Applies one logged transaction as ZooKeeper's `FileTxnSnapLog.processTransaction`
    /// does: sessions first, then the tree. Operations that no longer fit (a replay over a
    /// fuzzy snapshot) change nothing, as there.
    pub fn apply(&mut self, txn: &Txn) {
        match &txn.op {
            Op::CreateSession { timeout_ms } => {
                self.sessions.insert(txn.session_id, *timeout_ms);
            }
            Op::CloseSession => {
                self.sessions.remove(&txn.session_id);
                for p in self.ephemerals.remove(&txn.session_id).unwrap_or_default() {
                    self.delete(&p, txn.zxid);
                }
            }
            op => self.apply_op(op, txn),
        }
        self.zxid = txn.zxid;
    }

    fn apply_op(&mut self, op: &Op, txn: &Txn) {
        match op {
            Op::Create { opcode, path: p, data, acl, ephemeral_owner, parent_cversion } => {
                let created = self.create(p, data, acl, *ephemeral_owner, *parent_cversion, txn);
                if created == Err(Refused::Exists) && *opcode == OpCode::Create {
                    self.raise_cversion(path::parent(p), *parent_cversion, txn.zxid);
                }
            }
            Op::Delete { path: p } => self.delete(p, txn.zxid),
            Op::SetData { path: p, data, version } => {
                if let Some(node) = self.nodes.get_mut(p) {
                    node.data = data.as_deref().map(Into::into);
                    node.meta.version = *version;
                    node.meta.mzxid = txn.zxid;
                    node.meta.mtime = txn.time_ms;
                }
            }
            Op::SetAcl { path: p, acl, version } => {
                if let Some(node) = self.nodes.get_mut(p) {
                    node.acl = acl.as_slice().into();
                    node.meta.aversion = *version;
                }
            }
            // A multi that failed is logged as a multi of errors, and changes nothing.
            Op::Multi(ops) if ops.iter().any(|op| matches!(op, Op::Error { .. })) => {}
            Op::Multi(ops) => ops.iter().for_each(|op| self.apply_op(op, txn)),
            Op::Check { .. } | Op::Error { .. } | Op::CreateSession { .. } | Op::CloseSession => {}
        }
    }

    /// `DataTree.createNode`.
    fn create(
        &mut self,
        p: &str,
        data: &Option<Vec<u8>>,
        acl: &[proto::Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        txn: &Txn,
    ) -> Result<(), Refused> {
        if !path::is_well_formed(p) || p == path::ROOT {
            return Err(Refused::BadPath);
        }
        if !self.nodes.contains_key(path::parent(p)) {
            return Err(Refused::NoParent);
        }
        if self.nodes.contains_key(p) {
            return Err(Refused::Exists);
        }
        self.raise_cversion(path::parent(p), parent_cversion, txn.zxid);
        let node = ZkNode {
            data: data.as_deref().map(Into::into),
            acl: acl.into(),
            meta: Meta::created(txn.zxid, txn.time_ms, ephemeral_owner),
        };
        self.load(p, node)
    }

    /// Sets a parent's stored cversion to `cversion` (-1: one more) if that raises it, and
    /// its pzxid with it (`DataTree.setCversionPzxid` and the same step of `createNode`).
    fn raise_cversion(&mut self, p: &str, cversion: i32, zxid: i64) {
        if let Some(ZkNode { meta, .. }) = self.nodes.get_mut(p) {
            let cversion = if cversion == -1 { meta.child_creates.wrapping_add(1) } else { cversion };
            if cversion > meta.child_creates {
                meta.child_creates = cversion;
                meta.pzxid = zxid;
            }
        }
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves forward even when the child is
    /// already gone (a fuzzy snapshot may have missed it); its cversion does not change.
    fn delete(&mut self, p: &str, zxid: i64) {
        if p == path::ROOT {
            return;
        }
        let Some(ZkNode { meta: parent, .. }) = self.nodes.get_mut(path::parent(p)) else { return };
        if zxid > parent.pzxid {
            parent.pzxid = zxid;
        }
        if let Some(node) = self.nodes.remove(p) {
            if let Some(session) = owner::session(node.meta.ephemeral_owner) {
                if let Some(set) = self.ephemerals.get_mut(&session) {
                    set.remove(p);
                    if set.is_empty() {
                        self.ephemerals.remove(&session);
                    }
                }
            }
        }
    }

    /// The newest node, if it was created after the last transaction the state includes.
    /// ZooKeeper's snapshots are fuzzy: one copied after the logs may hold nodes the logs
    /// do not reach, and then the tree is not the state at any zxid.
    pub fn created_after_last_zxid(&self) -> Option<(&str, i64)> {
        let (p, newest) = self.nodes.iter().max_by_key(|(_, n)| n.meta.czxid)?;
        (newest.meta.czxid > self.zxid).then_some((p.as_str(), newest.meta.czxid))
    }

    /// The Warren tree and sessions of this state.
    pub fn into_warren(self) -> Result<(DataTree, Vec<Session>), proto::DecodeError> {
        let mut tree = DataTree::without_nodes();
        // Path order puts every parent before its children.
        for (p, node) in self.nodes {
            tree.load_node(&p, node.data.as_deref(), &node.acl, node.meta)?;
        }
        let sessions =
            self.sessions.iter().map(|(&id, &timeout)| (id, super::password::session_password(id), timeout)).collect();
        Ok((tree, sessions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(zxid: i64) -> ZkNode {
        ZkNode { data: Some(Box::default()), acl: tree::acl::open_acl().into(), meta: Meta::created(zxid, 0, 0) }
    }

    fn txn(zxid: i64, session_id: i64, op: Op) -> Txn {
        Txn { session_id, cxid: 0, zxid, time_ms: 5000 + zxid, op }
    }

    fn create(p: &str, parent_cversion: i32, ephemeral_owner: i64) -> Op {
        Op::Create {
            opcode: OpCode::Create,
            path: p.into(),
            data: Some(b"d".to_vec()),
            acl: tree::acl::open_acl(),
            ephemeral_owner,
            parent_cversion,
        }
    }

    fn root() -> State {
        let mut s = State::default();
        s.load("/", node(0)).unwrap();
        s
    }

    #[test]
    fn creates_and_deletes_follow_zookeeper() {
        let mut s = root();
        s.apply(&txn(1, 7, create("/a", 1, 0)));
        s.apply(&txn(2, 7, create("/a/b", 1, 0)));
        s.apply(&txn(3, 7, Op::Delete { path: "/a/b".into() }));
        s.apply(&txn(4, 7, create("/a/c", 2, 0)));
        let a = &s.nodes["/a"].meta;
        assert_eq!((a.child_creates, a.pzxid), (2, 4));
        // What clients see: 2 creates and 1 delete.
        let (tree, _) = s.into_warren().unwrap();
        assert_eq!(tree.node("/a").unwrap().stat().cversion, 3);
        assert_eq!(tree.node("/a/c").unwrap().stat().ctime, 5004);
    }

    #[test]
    fn a_node_newer_than_the_last_transaction_is_found() {
        let mut s = root();
        s.apply(&txn(1, 7, create("/a", 1, 0)));
        assert_eq!(s.created_after_last_zxid(), None);
        s.load("/b", node(5)).unwrap();
        assert_eq!(s.created_after_last_zxid(), Some(("/b", 5)));
    }

    #[test]
    fn malformed_paths_are_refused() {
        let mut s = root();
        for bad in ["", "a", "/a/", "//a"] {
            assert_eq!(s.load(bad, node(1)), Err(Refused::BadPath), "{bad:?}");
        }
        s.apply(&txn(1, 7, create("/a/", 1, 0)));
        assert_eq!((s.nodes.len(), s.nodes["/"].meta.child_creates), (1, 0), "a create of a bad path changes nothing");
    }

    #[test]
    fn a_replayed_create_only_raises_the_parent() {
        let mut s = root();
        s.apply(&txn(1, 7, create("/a", 1, 0)));
        s.apply(&txn(2, 7, create("/a/x", 5, 0)));
        // Replayed over a snapshot that already has it: the parent keeps the higher value.
        s.apply(&txn(3, 7, create("/a/x", 3, 0)));
        assert_eq!((s.nodes["/a"].meta.child_creates, s.nodes["/a"].meta.pzxid), (5, 2));
        s.apply(&txn(4, 7, create("/a/x", 6, 0)));
        assert_eq!((s.nodes["/a"].meta.child_creates, s.nodes["/a"].meta.pzxid), (6, 4));
        assert_eq!(s.nodes["/a/x"].meta.czxid, 2, "the node itself is not replaced");
    }

    #[test]
    fn closing_a_session_deletes_its_ephemerals() {
        let mut s = root();
        s.apply(&txn(1, 9, Op::CreateSession { timeout_ms: 4000 }));
        s.apply(&txn(2, 9, create("/e", 1, 9)));
        s.apply(&txn(3, 8, Op::CreateSession { timeout_ms: 6000 }));
        assert_eq!(s.sessions, BTreeMap::from([(8, 6000), (9, 4000)]));
        s.apply(&txn(4, 9, Op::CloseSession));
        assert!(!s.nodes.contains_key("/e"));
        assert_eq!(s.nodes["/"].meta.pzxid, 4);
        assert_eq!(s.sessions, BTreeMap::from([(8, 6000)]));
        let (_, sessions) = s.into_warren().unwrap();
        assert_eq!(sessions, vec![(8, super::super::password::session_password(8), 6000)]);
    }

    #[test]
    fn a_failed_multi_changes_nothing_and_a_good_one_everything() {
        let mut s = root();
        s.apply(&txn(1, 7, Op::Multi(vec![create("/a", 1, 0), Op::Error { err: -110 }])));
        assert!(!s.nodes.contains_key("/a"));
        s.apply(&txn(
            2,
            7,
            Op::Multi(vec![create("/a", 1, 0), Op::SetData { path: "/a".into(), data: None, version: 1 }]),
        ));
        let a = &s.nodes["/a"];
        assert_eq!((a.data.is_none(), a.meta.version, a.meta.mzxid, a.meta.mtime), (true, 1, 2, 5002));
        assert_eq!(s.zxid, 2);
    }
}
