//! The data tree: every znode by path, with its data, Stat fields, ACL and children, plus
//! the indexes the server needs (ephemerals by session, containers, TTL nodes) and the
//! watch registry. It changes only through [`DataTree::apply`].

use crate::acl::{self, AclCache};
use crate::node::{Meta, Node};
use crate::path;
use crate::txn::{owner, Txn, TxnOp};
use crate::watch::{ConnId, Watches};
use proto::{perms, Acl, ErrorCode, EventType, Stat};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, Deref};
use std::sync::Arc;

/// A node of the tree with its ACL list.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    node: &'a Node,
    acl: &'a Arc<[Acl]>,
}

impl<'a> NodeRef<'a> {
    pub fn acl(&self) -> &'a Arc<[Acl]> {
        self.acl
    }
}

impl Deref for NodeRef<'_> {
    type Target = Node;

    fn deref(&self) -> &Node {
        self.node
    }
}

/// What applying one operation produced, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    Created { path: String, stat: Stat },
    Deleted,
    DataSet { stat: Stat },
    AclSet { stat: Stat },
    Checked,
    SessionCreated,
    SessionClosed,
    Failed(ErrorCode),
    Multi(Vec<OpResult>),
}

/// A watch event for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub conn: ConnId,
    pub event: EventType,
    pub path: String,
}

#[derive(Debug)]
pub struct DataTree {
    /// Every node, ordered by path: the children of `p` are among the keys after `p/`.
    pub(crate) nodes: BTreeSet<Node>,
    pub(crate) acls: AclCache,
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    /// Sum of path and data lengths, as ZooKeeper's `approximateDataSize`.
    data_size: u64,
    pub watches: Watches,
    pub(crate) snapshot: Option<crate::snapshot::SnapshotCursor>,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> DataTree {
        let mut tree = DataTree::without_nodes();
        let read_only = [Acl { perms: perms::READ, id: acl::id("world", "anyone") }];
        for (p, acl) in [
            (path::ROOT, &acl::open_acl()[..]),
            (path::ZOOKEEPER, &acl::open_acl()),
            (path::QUOTA, &acl::open_acl()),
            (path::CONFIG, &read_only),
        ] {
            let acl = tree.acls.intern(acl);
            let inserted = tree.insert_node(Node::new(p, Some(b""), acl, &Meta::created(0, 0, 0)), |_| {});
            debug_assert!(inserted.is_ok(), "parents come first");
        }
        // ZooKeeper sets the config node's ACL in a way that leaves aversion at -1.
        tree.change(path::CONFIG, |config| config.set_meta(&Meta { aversion: -1, ..config.meta() }));
        tree
    }

    /// No nodes at all, not even the root: the start of loading stored data with
    /// [`DataTree::load_node`].
    pub fn without_nodes() -> DataTree {
        DataTree {
            nodes: BTreeSet::new(),
            acls: AclCache::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            data_size: 0,
            watches: Watches::default(),
            snapshot: None,
        }
    }

    /// Adds a node whose ACL use is already counted: its parent counts it as a child and
    /// takes `parent_change` too. Without a parent the node comes back, added nowhere.
    pub(crate) fn insert_node(&mut self, node: Node, parent_change: impl FnOnce(&mut Meta)) -> Result<(), Node> {
        let p = node.path();
        if p != path::ROOT {
            let counted = self.change(path::parent(p), |parent| {
                let mut meta = parent.meta();
                meta.num_children += 1;
                parent_change(&mut meta);
                parent.set_meta(&meta)
            });
            if counted.is_none() {
                return Err(node);
            }
        }
        self.index(&node);
        self.nodes.insert(node);
        Ok(())
    }

    /// Changes the node at `p` (never its path); `None` when there is none. Nodes in a set
    /// cannot be changed where they are, so it is taken out and put back.
    fn change<R>(&mut self, p: &str, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let mut node = self.nodes.take(p.as_bytes())?;
        let result = f(&mut node);
        self.nodes.insert(node);
        Some(result)
    }

    /// Adds a node to the size count and to the ephemeral, container and TTL indexes.
    pub(crate) fn index(&mut self, node: &Node) {
        let p = node.path();
        let owner = node.meta().ephemeral_owner;
        self.data_size += (p.len() + node.data_len()) as u64;
        if let Some(session) = owner::session(owner) {
            self.ephemerals.entry(session).or_default().insert(p.to_owned());
        } else if owner == owner::CONTAINER {
            self.containers.insert(p.to_owned());
        } else if owner::ttl_ms(owner).is_some() {
            self.ttls.insert(p.to_owned());
        }
    }

    fn with_acl<'a>(&'a self, node: &'a Node) -> NodeRef<'a> {
        NodeRef { node, acl: self.acls.get(node.acl()) }
    }

    pub fn node(&self, p: &str) -> Option<NodeRef<'_>> {
        self.nodes.get(p.as_bytes()).map(|n| self.with_acl(n))
    }

    /// The names of a node's children, in order. Children of `p` are the keys after `p/`;
    /// a child's own subtree sits between it and its next sibling, so the scan jumps over
    /// each subtree (to `p/name0`, as `0` follows `/`) instead of walking it.
    pub fn children(&self, p: &str) -> Option<Vec<&str>> {
        let node = self.nodes.get(p.as_bytes())?;
        let prefix = if p == path::ROOT { path::ROOT.to_owned() } else { format!("{p}/") };
        let mut names = Vec::with_capacity(node.meta().num_children as usize);
        let mut from = prefix.clone();
        'scan: loop {
            let range = self.nodes.range::<[u8], _>((Bound::Included(from.as_bytes()), Bound::Unbounded));
            for node in range {
                let Some(rest) = node.path().strip_prefix(prefix.as_str()) else { break 'scan };
                match rest.split_once('/') {
                    // The root's prefix is the root's own key.
                    None if rest.is_empty() => {}
                    None => names.push(rest),
                    Some((child, _)) => {
                        from = format!("{prefix}{child}0");
                        continue 'scan;
                    }
                }
            }
            break;
        }
        Some(names)
    }

    /// Every node with its path, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, NodeRef<'_>)> {
        self.nodes.iter().map(|n| (n.path(), self.with_acl(n)))
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// The ephemeral paths a session owns.
    pub fn ephemerals(&self, session_id: i64) -> impl Iterator<Item = &str> {
        self.ephemerals.get(&session_id).into_iter().flatten().map(String::as_str)
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// All sessions that own ephemerals, with their paths (for `dump`).
    pub fn ephemerals_by_session(&self) -> &BTreeMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    pub fn containers(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().map(String::as_str)
    }

    pub fn ttl_nodes(&self) -> impl Iterator<Item = &str> {
        self.ttls.iter().map(String::as_str)
    }

    /// Number of descendants of `p`, the node itself not counted.
    pub fn descendant_count(&self, p: &str) -> Option<usize> {
        self.nodes.get(p.as_bytes())?;
        let prefix = if p == path::ROOT { path::ROOT.to_owned() } else { format!("{p}/") };
        let descendants = self.nodes.range::<[u8], _>((Bound::Included(prefix.as_bytes()), Bound::Unbounded));
        // The root's prefix also matches the root itself.
        Some(descendants.map(Node::path).take_while(|k| k.starts_with(&prefix)).filter(|k| *k != p).count())
    }

    /// Applies a transaction. Transactions are prepared against this tree, so they fit it;
    /// one that no longer does (a replay over a newer state) changes nothing for that op.
    pub fn apply(&mut self, txn: &Txn) -> (OpResult, Vec<Notification>) {
        let mut events = Vec::new();
        let result = self.apply_op(txn, &txn.op, &mut events);
        (result, events)
    }

    fn apply_op(&mut self, txn: &Txn, op: &TxnOp, events: &mut Vec<Notification>) -> OpResult {
        match op {
            TxnOp::CreateSession { .. } => OpResult::SessionCreated,
            TxnOp::CloseSession { ephemerals } => {
                for p in ephemerals {
                    self.delete(txn.zxid, p, events);
                }
                OpResult::SessionClosed
            }
            TxnOp::Create { path: p, data, acl, ephemeral_owner } => {
                if let Some(existing) = self.nodes.get(p.as_bytes()) {
                    return OpResult::Created { path: p.clone(), stat: existing.stat() };
                }
                self.preserve(path::parent(p));
                let acl = self.acls.intern(acl);
                let node = Node::new(p, data.as_deref(), acl, &Meta::created(txn.zxid, txn.time_ms, *ephemeral_owner));
                let stat = node.stat();
                let inserted = self.insert_node(node, |parent| {
                    parent.child_creates = parent.child_creates.wrapping_add(1);
                    parent.pzxid = txn.zxid;
                });
                if let Err(orphan) = inserted {
                    self.acls.release(orphan.acl());
                    self.purge_unused_acls();
                    return OpResult::Failed(ErrorCode::NoNode);
                }
                self.notify(EventType::NodeCreated, p, events);
                self.notify(EventType::NodeChildrenChanged, path::parent(p), events);
                OpResult::Created { path: p.clone(), stat }
            }
            TxnOp::Delete { path: p } => {
                self.delete(txn.zxid, p, events);
                OpResult::Deleted
            }
            TxnOp::SetData { path: p, data, version } => {
                self.preserve(p);
                let Some(node) = self.nodes.take(p.as_bytes()) else {
                    return OpResult::Failed(ErrorCode::NoNode);
                };
                let meta = Meta { version: *version, mzxid: txn.zxid, mtime: txn.time_ms, ..node.meta() };
                let old_len = node.data_len() as u64;
                let node = node.with_data(data.as_deref(), &meta);
                self.data_size = self.data_size + node.data_len() as u64 - old_len;
                let stat = node.stat();
                self.nodes.insert(node);
                self.notify(EventType::NodeDataChanged, p, events);
                OpResult::DataSet { stat }
            }
            TxnOp::SetAcl { path: p, acl, aversion } => {
                self.preserve(p);
                let Some(mut node) = self.nodes.take(p.as_bytes()) else {
                    return OpResult::Failed(ErrorCode::NoNode);
                };
                let acl = self.acls.intern(acl);
                self.acls.release(node.acl());
                self.purge_unused_acls();
                node.set_acl(acl, &Meta { aversion: *aversion, ..node.meta() });
                let stat = node.stat();
                self.nodes.insert(node);
                OpResult::AclSet { stat }
            }
            TxnOp::Check { .. } => OpResult::Checked,
            TxnOp::Error { err } => OpResult::Failed(*err),
            TxnOp::Multi(ops) => OpResult::Multi(ops.iter().map(|op| self.apply_op(txn, op, events)).collect()),
        }
    }

    fn delete(&mut self, zxid: i64, p: &str, events: &mut Vec<Notification>) {
        self.preserve(p);
        self.preserve(path::parent(p));
        let Some(node) = self.nodes.take(p.as_bytes()) else {
            return;
        };
        self.data_size -= (p.len() + node.data_len()) as u64;
        let owner = node.meta().ephemeral_owner;
        if let Some(session) = owner::session(owner) {
            if let Some(set) = self.ephemerals.get_mut(&session) {
                set.remove(p);
                if set.is_empty() {
                    self.ephemerals.remove(&session);
                }
            }
        } else {
            self.containers.remove(p);
            self.ttls.remove(p);
        }
        self.acls.release(node.acl());
        self.purge_unused_acls();
        let parent_path = path::parent(p);
        self.change(parent_path, |parent| {
            let meta = parent.meta();
            parent.set_meta(&Meta { num_children: meta.num_children.saturating_sub(1), pzxid: zxid, ..meta })
        });
        self.notify(EventType::NodeDeleted, p, events);
        self.notify(EventType::NodeChildrenChanged, parent_path, events);
    }

    /// Drops ACL lists no node uses any more, unless a snapshot in progress may still need
    /// them (then they go when it ends).
    pub(crate) fn purge_unused_acls(&mut self) {
        if self.snapshot.is_none() {
            self.acls.purge_unused();
        }
    }

    fn notify(&mut self, event: EventType, p: &str, events: &mut Vec<Notification>) {
        for conn in self.watches.trigger(event, p) {
            events.push(Notification { conn, event, path: p.to_owned() });
        }
    }

    /// A hash of the whole tree: every node's path, data, ACL and Stat fields, in path
    /// order. Replicas that applied the same transactions have the same digest, on any
    /// platform and in any process (no `std::hash`, whose output may change), so a
    /// simulator can compare servers at the same zxid.
    pub fn digest(&self) -> u64 {
        let mut d = Digest(0);
        for (p, n) in self.iter() {
            d.bytes(p.as_bytes());
            match n.data() {
                Some(data) => d.bytes(data),
                None => d.word(u64::MAX),
            }
            d.word(n.acl().len() as u64);
            for a in n.acl().iter() {
                d.word(a.perms as u64);
                d.bytes(a.id.scheme.as_bytes());
                d.bytes(a.id.id.as_deref().unwrap_or_default().as_bytes());
            }
            let m = n.meta();
            for v in [m.czxid, m.mzxid, m.pzxid, m.ctime, m.mtime, m.ephemeral_owner] {
                d.word(v as u64);
            }
            for v in [m.version, m.aversion, m.child_creates] {
                d.word(v as u32 as u64);
            }
            d.word(m.num_children as u64);
        }
        d.0
    }
}

/// A word-at-a-time multiplicative hash, defined here so that it never changes under us.
struct Digest(u64);

impl Digest {
    fn word(&mut self, w: u64) {
        let h = (self.0 ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }

    /// Length first, so that adjacent fields cannot trade bytes.
    fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        for chunk in b.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(tree: &mut DataTree, zxid: i64, p: &str) {
        let op = TxnOp::Create { path: p.into(), data: None, acl: acl::open_acl(), ephemeral_owner: 0 };
        tree.apply(&Txn { zxid, time_ms: 0, session_id: 0, cxid: 0, op });
    }

    #[test]
    fn children_skip_subtrees_and_keep_siblings_that_sort_inside_them() {
        let mut tree = DataTree::new();
        // "a-b" and "a.c" sort between "/p/a" and "/p/a/x" ('-' and '.' come before '/').
        for (i, p) in
            ["/p", "/p/a", "/p/a-b", "/p/a.c", "/p/a/x", "/p/a/x/y", "/p/a0", "/p/ab", "/q"].iter().enumerate()
        {
            create(&mut tree, i as i64 + 1, p);
        }
        assert_eq!(tree.children("/p").unwrap(), ["a", "a-b", "a.c", "a0", "ab"]);
        assert_eq!(tree.children("/").unwrap(), ["p", "q", "zookeeper"]);
        assert_eq!(tree.children("/p/a").unwrap(), ["x"]);
        assert!(tree.children("/p/ab").unwrap().is_empty());
        assert!(tree.children("/nope").is_none());
        assert_eq!(tree.node("/p").unwrap().stat().num_children, 5);
        assert_eq!(tree.descendant_count("/p"), Some(7));
        assert_eq!(tree.descendant_count("/"), Some(tree.node_count() - 1));
        // The same order, read back from a snapshot: "/p/a-b" sorts between "/p/a" and its
        // children, and must not hide "/p/a" from them.
        tree.begin_snapshot(9);
        let restored = DataTree::from_snapshot(whole_snapshot(&mut tree).iter().map(Vec::as_slice)).unwrap();
        assert_eq!(restored.digest(), tree.digest());
        assert_eq!(restored.children("/p/a").unwrap(), ["x"]);
    }

    fn acl_of(user: &str) -> Vec<Acl> {
        vec![Acl { perms: perms::ALL, id: acl::id("digest", user) }]
    }

    fn txn(zxid: i64, op: TxnOp) -> Txn {
        Txn { zxid, time_ms: 0, session_id: 0, cxid: 0, op }
    }

    fn whole_snapshot(tree: &mut DataTree) -> Vec<Vec<u8>> {
        let mut chunks = Vec::new();
        while let Some((chunk, last)) = tree.snapshot_chunk(1) {
            chunks.push(chunk);
            if last {
                break;
            }
        }
        chunks
    }

    #[test]
    fn acl_lists_no_node_uses_are_dropped_but_not_during_a_snapshot() {
        let mut tree = DataTree::new();
        let base = tree.acls.len();
        let create =
            |p: &str, user: &str| TxnOp::Create { path: p.into(), data: None, acl: acl_of(user), ephemeral_owner: 0 };
        tree.apply(&txn(1, create("/a", "alice:x")));
        tree.apply(&txn(2, create("/b", "alice:x")));
        tree.apply(&txn(3, create("/c", "carol:x")));
        assert_eq!(tree.acls.len(), base + 2);
        tree.apply(&txn(4, TxnOp::Delete { path: "/a".into() }));
        assert_eq!(tree.acls.len(), base + 2, "/b still uses alice's list");
        tree.apply(&txn(5, TxnOp::Delete { path: "/b".into() }));
        assert_eq!(tree.acls.len(), base + 1);

        // While a snapshot is in progress, a list only a pre-image uses is kept for it.
        tree.begin_snapshot(5);
        tree.apply(&txn(6, TxnOp::SetAcl { path: "/c".into(), acl: acl::open_acl(), aversion: 1 }));
        assert_eq!(tree.node("/c").unwrap().acl().to_vec(), acl::open_acl());
        assert_eq!(tree.acls.len(), base + 1);
        // A new list takes a fresh id rather than the one the pre-image names.
        tree.apply(&txn(7, create("/d", "dave:x")));
        let chunks = whole_snapshot(&mut tree);
        assert_eq!(tree.acls.len(), base + 1, "carol's list goes when the snapshot ends");
        let restored = DataTree::from_snapshot(chunks.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(restored.node("/c").unwrap().acl().to_vec(), acl_of("carol:x"));
        assert!(restored.node("/d").is_none());

        // An id freed is reused, and a list interned again after falling to no use is kept.
        tree.apply(&txn(8, create("/e", "erin:x")));
        tree.apply(&txn(9, TxnOp::Delete { path: "/d".into() }));
        tree.apply(&txn(10, create("/d", "dave:x")));
        assert_eq!(tree.acls.len(), base + 2);
        assert_eq!(tree.node("/d").unwrap().acl().to_vec(), acl_of("dave:x"));
        assert_eq!(tree.node("/e").unwrap().acl().to_vec(), acl_of("erin:x"));
    }

    #[test]
    fn a_chunk_looks_at_a_bounded_number_of_paths_even_when_it_writes_none() {
        let mut tree = DataTree::new();
        tree.begin_snapshot(0);
        for i in 0..100 {
            create(&mut tree, i + 1, &format!("/n{i:03}"));
        }
        let mut calls = 0;
        let mut chunks = Vec::new();
        while let Some((chunk, last)) = tree.snapshot_chunk(10) {
            calls += 1;
            chunks.push(chunk);
            if last {
                break;
            }
        }
        // The 4 nodes of a fresh tree and 100 created since, 10 paths a call.
        assert_eq!(calls, 11);
        let restored = DataTree::from_snapshot(chunks.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(restored.digest(), DataTree::new().digest());
    }

    #[test]
    fn a_restored_tree_counts_acl_uses() {
        let mut tree = DataTree::new();
        for (i, p) in ["/a", "/b"].iter().enumerate() {
            let op = TxnOp::Create { path: (*p).into(), data: None, acl: acl_of("alice:x"), ephemeral_owner: 0 };
            tree.apply(&txn(i as i64 + 1, op));
        }
        tree.begin_snapshot(2);
        let chunks = whole_snapshot(&mut tree);
        let mut restored = DataTree::from_snapshot(chunks.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(restored.acls.len(), tree.acls.len());
        restored.apply(&txn(3, TxnOp::Delete { path: "/a".into() }));
        assert_eq!(restored.acls.len(), tree.acls.len());
        restored.apply(&txn(4, TxnOp::Delete { path: "/b".into() }));
        assert_eq!(restored.acls.len(), tree.acls.len() - 1);
        assert_eq!(restored.digest(), {
            let mut t = tree;
            t.apply(&txn(3, TxnOp::Delete { path: "/a".into() }));
            t.apply(&txn(4, TxnOp::Delete { path: "/b".into() }));
            t.digest()
        });
    }

    #[test]
    fn the_digest_covers_paths_data_and_stat_and_survives_a_snapshot() {
        let build = |data: &[u8]| {
            let mut tree = DataTree::new();
            create(&mut tree, 1, "/a");
            create(&mut tree, 2, "/a/b");
            let op = TxnOp::SetData { path: "/a".into(), data: Some(data.to_vec()), version: 1 };
            tree.apply(&Txn { zxid: 3, time_ms: 7, session_id: 0, cxid: 0, op });
            tree
        };
        let mut tree = build(b"x");
        assert_eq!(tree.digest(), build(b"x").digest());
        assert_ne!(tree.digest(), build(b"y").digest());
        let mut renamed = DataTree::new();
        create(&mut renamed, 1, "/a");
        create(&mut renamed, 2, "/a/c");
        let op = TxnOp::SetData { path: "/a".into(), data: Some(b"x".to_vec()), version: 1 };
        renamed.apply(&Txn { zxid: 3, time_ms: 7, session_id: 0, cxid: 0, op });
        assert_ne!(tree.digest(), renamed.digest());
        // Same data, another mzxid.
        let op = TxnOp::SetData { path: "/a".into(), data: Some(b"x".to_vec()), version: 1 };
        let mut later = build(b"x");
        later.apply(&Txn { zxid: 4, time_ms: 7, session_id: 0, cxid: 0, op });
        assert_ne!(tree.digest(), later.digest());

        tree.begin_snapshot(3);
        let mut chunks = Vec::new();
        while let Some((chunk, last)) = tree.snapshot_chunk(2) {
            chunks.push(chunk);
            if last {
                break;
            }
        }
        let restored = DataTree::from_snapshot(chunks.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(restored.digest(), tree.digest());
    }
}
