//! The data tree: every znode by path, with its data, Stat fields, ACL and children, plus
//! the indexes the server needs (ephemerals by session, containers, TTL nodes) and the
//! watch registry. It changes only through [`DataTree::apply`].

use crate::acl::{self, AclCache};
use crate::path;
use crate::txn::{owner, Txn, TxnOp};
use crate::watch::{ConnId, Watches};
use proto::{perms, Acl, ErrorCode, EventType, Stat};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Node {
    /// `None` is ZooKeeper's null data, returned as null (clients such as Java's may send it).
    pub data: Option<Box<[u8]>>,
    pub acl: Arc<[Acl]>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub aversion: i32,
    /// Children ever created under this node, never decremented. The sequence suffix is
    /// taken from it, and ZooKeeper reports `cversion = 2 * child_creates - num_children`.
    pub child_creates: i32,
    /// A session id, [`owner::CONTAINER`], a TTL mark, or 0.
    pub ephemeral_owner: i64,
    /// Children are not stored here: they are the next keys of the tree's ordered map
    /// (see [`DataTree::children`]); only their count is kept.
    pub num_children: u32,
}

impl Node {
    fn new(data: Option<&[u8]>, acl: Arc<[Acl]>, zxid: i64, time_ms: i64, ephemeral_owner: i64) -> Node {
        Node {
            data: data.map(Into::into),
            acl,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            version: 0,
            aversion: 0,
            child_creates: 0,
            ephemeral_owner,
            num_children: 0,
        }
    }

    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    pub fn cversion(&self) -> i32 {
        self.child_creates.wrapping_mul(2).wrapping_sub(self.num_children as i32)
    }

    pub fn stat(&self) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion(),
            aversion: self.aversion,
            // Container and TTL marks are internal; clients see 0.
            ephemeral_owner: owner::session(self.ephemeral_owner).unwrap_or(0),
            data_length: self.data_len() as i32,
            num_children: self.num_children as i32,
            pzxid: self.pzxid,
        }
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
    /// Nodes are boxed: a B-tree grown by inserts keeps its leaves about half full, and
    /// half-empty slots of pointers cost far less than half-empty slots of whole nodes.
    pub(crate) nodes: BTreeMap<Box<str>, Box<Node>>,
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
        let open = tree.acls.intern(&acl::open_acl());
        let read_only = tree.acls.intern(&[Acl { perms: perms::READ, id: acl::id("world", "anyone") }]);
        for (p, acl) in
            [(path::ROOT, &open), (path::ZOOKEEPER, &open), (path::QUOTA, &open), (path::CONFIG, &read_only)]
        {
            tree.insert_node(p, Node::new(Some(b""), acl.clone(), 0, 0, 0));
        }
        // ZooKeeper sets the config node's ACL in a way that leaves aversion at -1.
        if let Some(config) = tree.nodes.get_mut(path::CONFIG) {
            config.aversion = -1;
        }
        tree
    }

    /// No nodes at all, not even the root: the start of loading stored data with
    /// [`DataTree::load_node`].
    pub fn without_nodes() -> DataTree {
        DataTree {
            nodes: BTreeMap::new(),
            acls: AclCache::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            data_size: 0,
            watches: Watches::default(),
            snapshot: None,
        }
    }

    pub(crate) fn insert_node(&mut self, p: impl Into<Box<str>>, node: Node) {
        let key: Box<str> = p.into();
        let p = &*key;
        if p != path::ROOT {
            if let Some(parent) = self.nodes.get_mut(path::parent(p)) {
                parent.num_children += 1;
            }
        }
        self.index(p, &node);
        self.nodes.insert(key, Box::new(node));
    }

    /// Adds a node to the size count and to the ephemeral, container and TTL indexes.
    pub(crate) fn index(&mut self, p: &str, node: &Node) {
        self.data_size += (p.len() + node.data_len()) as u64;
        if let Some(session) = owner::session(node.ephemeral_owner) {
            self.ephemerals.entry(session).or_default().insert(p.to_owned());
        } else if node.ephemeral_owner == owner::CONTAINER {
            self.containers.insert(p.to_owned());
        } else if owner::ttl_ms(node.ephemeral_owner).is_some() {
            self.ttls.insert(p.to_owned());
        }
    }

    pub fn node(&self, p: &str) -> Option<&Node> {
        self.nodes.get(p).map(|n| &**n)
    }

    /// The names of a node's children, in order. Children of `p` are the keys after `p/`;
    /// a child's own subtree sits between it and its next sibling, so the scan jumps over
    /// each subtree (to `p/name0`, as `0` follows `/`) instead of walking it.
    pub fn children(&self, p: &str) -> Option<Vec<&str>> {
        let node = self.nodes.get(p)?;
        let prefix = if p == path::ROOT { path::ROOT.to_owned() } else { format!("{p}/") };
        let mut names = Vec::with_capacity(node.num_children as usize);
        let mut from = prefix.clone();
        'scan: loop {
            let range = self.nodes.range::<str, _>((Bound::Included(from.as_str()), Bound::Unbounded));
            for (key, _) in range {
                let Some(rest) = key.strip_prefix(prefix.as_str()) else { break 'scan };
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
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(p, n)| (&**p, &**n))
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
        self.nodes.get(p)?;
        let prefix = if p == path::ROOT { path::ROOT.to_owned() } else { format!("{p}/") };
        let descendants = self.nodes.range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded));
        // The root's prefix also matches the root itself.
        Some(descendants.take_while(|(k, _)| k.starts_with(&prefix)).filter(|(k, _)| &***k != p).count())
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
                if let Some(existing) = self.nodes.get(p.as_str()) {
                    return OpResult::Created { path: p.clone(), stat: existing.stat() };
                }
                self.preserve(path::parent(p));
                self.preserve(p);
                let Some(parent) = self.nodes.get_mut(path::parent(p)) else {
                    return OpResult::Failed(ErrorCode::NoNode);
                };
                parent.child_creates = parent.child_creates.wrapping_add(1);
                parent.pzxid = txn.zxid;
                let acl = self.acls.intern(acl);
                let node = Node::new(data.as_deref(), acl, txn.zxid, txn.time_ms, *ephemeral_owner);
                let stat = node.stat();
                self.insert_node(p.as_str(), node);
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
                let Some(node) = self.nodes.get_mut(p.as_str()) else {
                    return OpResult::Failed(ErrorCode::NoNode);
                };
                self.data_size = self.data_size + data.as_ref().map_or(0, Vec::len) as u64 - node.data_len() as u64;
                node.data = data.as_deref().map(Into::into);
                node.version = *version;
                node.mzxid = txn.zxid;
                node.mtime = txn.time_ms;
                let stat = node.stat();
                self.notify(EventType::NodeDataChanged, p, events);
                OpResult::DataSet { stat }
            }
            TxnOp::SetAcl { path: p, acl, aversion } => {
                self.preserve(p);
                let acl = self.acls.intern(acl);
                let Some(node) = self.nodes.get_mut(p.as_str()) else {
                    return OpResult::Failed(ErrorCode::NoNode);
                };
                node.acl = acl;
                node.aversion = *aversion;
                OpResult::AclSet { stat: node.stat() }
            }
            TxnOp::Check { .. } => OpResult::Checked,
            TxnOp::Error { err } => OpResult::Failed(*err),
            TxnOp::Multi(ops) => OpResult::Multi(ops.iter().map(|op| self.apply_op(txn, op, events)).collect()),
        }
    }

    fn delete(&mut self, zxid: i64, p: &str, events: &mut Vec<Notification>) {
        self.preserve(p);
        self.preserve(path::parent(p));
        let Some(node) = self.nodes.remove(p) else {
            return;
        };
        self.data_size -= (p.len() + node.data_len()) as u64;
        if let Some(session) = owner::session(node.ephemeral_owner) {
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
        let parent_path = path::parent(p);
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            parent.num_children = parent.num_children.saturating_sub(1);
            parent.pzxid = zxid;
        }
        self.notify(EventType::NodeDeleted, p, events);
        self.notify(EventType::NodeChildrenChanged, parent_path, events);
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
            match &n.data {
                Some(data) => d.bytes(data),
                None => d.word(u64::MAX),
            }
            d.word(n.acl.len() as u64);
            for a in n.acl.iter() {
                d.word(a.perms as u64);
                d.bytes(a.id.scheme.as_bytes());
                d.bytes(a.id.id.as_deref().unwrap_or_default().as_bytes());
            }
            for v in [n.czxid, n.mzxid, n.pzxid, n.ctime, n.mtime, n.ephemeral_owner] {
                d.word(v as u64);
            }
            for v in [n.version, n.aversion, n.child_creates] {
                d.word(v as u32 as u64);
            }
            d.word(n.num_children as u64);
        }
        d.0
    }

    /// Drops interned ACL lists that no node uses any more.
    pub fn purge_unused_acls(&mut self) {
        self.acls.purge_unused();
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
