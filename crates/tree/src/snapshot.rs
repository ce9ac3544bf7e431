//! Consistent snapshots of the tree, serialized a chunk at a time while the tree keeps
//! changing, so that a snapshot of millions of nodes never stalls the request pipeline.
//!
//! [`DataTree::begin_snapshot`] fixes the point in time (a zxid). Each
//! [`DataTree::snapshot_chunk`] serializes the next nodes in path order, as they were at
//! that zxid: before the tree changes or deletes a node the snapshot has not reached yet,
//! it keeps that node's pre-image, and the snapshot uses the pre-image when it gets there.
//! A node created since is known by its czxid, above the snapshot's, and left out. This is
//! a copy-on-write of only what changes during the snapshot, not of the tree.
//!
//! Chunk format (Jute):
//! `acl_lists vector<vector<ACL>>`, then `node_count int` and for each node
//! `path ustring | data buffer (nullable) | acl index int | czxid mzxid pzxid ctime mtime long |
//! version aversion child_creates int | ephemeral_owner long`.
//! Parents come before their children (path order), so loading needs no second pass.

use crate::acl::{AclCache, AclId};
use crate::data_tree::DataTree;
use crate::node::{Meta, Node};
use proto::jute::{DecodeError, Reader, Record, Writer};
use proto::Acl;
use std::collections::BTreeMap;
use std::ops::Bound;

#[derive(Debug)]
pub(crate) struct SnapshotCursor {
    zxid: i64,
    /// The last path serialized so far.
    after: Option<Box<str>>,
    /// Nodes ahead of the cursor as they were at `zxid`, for those changed since (`None`:
    /// the node did not exist then).
    pre_images: BTreeMap<Box<str>, Option<Node>>,
}

impl DataTree {
    /// Starts a snapshot of the tree as it is now, which the caller knows to be `zxid`: the
    /// last transaction applied, so that no node has a czxid above it.
    ///
    /// # Panics
    /// If a snapshot is already in progress: the caller takes one at a time.
    pub fn begin_snapshot(&mut self, zxid: i64) {
        assert!(self.snapshot.is_none(), "one snapshot at a time");
        self.snapshot = Some(SnapshotCursor { zxid, after: None, pre_images: BTreeMap::new() });
    }

    /// The zxid of the snapshot in progress, if any.
    pub fn snapshot_in_progress(&self) -> Option<i64> {
        self.snapshot.as_ref().map(|s| s.zxid)
    }

    /// Must be called before `path`'s node is changed or deleted. A create needs no call:
    /// a node created since the snapshot began has a czxid above the snapshot's, which is
    /// how the snapshot knows to leave it out (and a later change records its absence).
    pub(crate) fn preserve(&mut self, path: &str) {
        let Some(cursor) = self.snapshot.as_mut() else { return };
        let ahead = cursor.after.as_deref().is_none_or(|after| path > after);
        if ahead && !cursor.pre_images.contains_key(path) {
            let then = self.nodes.get(path.as_bytes()).filter(|n| n.czxid() <= cursor.zxid);
            cursor.pre_images.insert(path.into(), then.cloned());
        }
    }

    /// Serializes the next nodes, looking at no more than `max_nodes` paths (nodes created
    /// or deleted since the snapshot began are looked at and left out, and they count too,
    /// so that one chunk's time stays bounded). Returns the chunk and whether the snapshot
    /// is complete (then it is over); `None` when no snapshot is in progress.
    pub fn snapshot_chunk(&mut self, max_nodes: usize) -> Option<(Vec<u8>, bool)> {
        let cursor = self.snapshot.as_ref()?;
        let mut live = match &cursor.after {
            Some(after) => self.nodes.range::<[u8], _>((Bound::Excluded(after.as_bytes()), Bound::Unbounded)),
            None => self.nodes.range::<[u8], _>(..),
        }
        .peekable();
        let mut pre = match &cursor.after {
            Some(after) => cursor.pre_images.range::<str, _>((Bound::Excluded(&**after), Bound::Unbounded)),
            None => cursor.pre_images.range::<str, _>(..),
        }
        .peekable();
        let mut picked: Vec<&Node> = Vec::with_capacity(max_nodes);
        let mut last: Option<&str> = None;
        for _ in 0..max_nodes.max(1) {
            let next = match (live.peek(), pre.peek()) {
                (None, None) => break,
                (Some(l), Some((pk, _))) if pk.as_bytes() <= l.path_bytes() => {
                    if pk.as_bytes() == l.path_bytes() {
                        live.next();
                    }
                    let (k, v) = pre.next()?;
                    (&**k, v.as_ref())
                }
                (Some(_), _) => live.next().map(|n| (n.path(), Some(n).filter(|n| n.czxid() <= cursor.zxid)))?,
                (None, Some(_)) => pre.next().map(|(k, v)| (&**k, v.as_ref()))?,
            };
            last = Some(next.0);
            if let Some(node) = next.1 {
                picked.push(node);
            }
        }
        let done = live.peek().is_none() && pre.peek().is_none();
        let chunk = encode_chunk(&picked, &self.acls);
        let last: Option<Box<str>> = last.map(Into::into);
        if done {
            self.snapshot = None;
            self.purge_unused_acls();
        } else if let (Some(cursor), Some(last)) = (self.snapshot.as_mut(), last) {
            cursor.pre_images = cursor.pre_images.split_off(&*last);
            cursor.pre_images.remove(&*last);
            cursor.after = Some(last);
        }
        Some((chunk, done))
    }

    /// Adds a node while building a tree from stored data (a snapshot, or an imported
    /// ZooKeeper snapshot). Parents must come first; `meta.num_children` is ignored.
    pub fn load_node(&mut self, path: &str, data: Option<&[u8]>, acl: &[Acl], meta: Meta) -> Result<(), DecodeError> {
        let out_of_order = DecodeError::Unsupported { what: "node without parent or out of order", value: 0 };
        if self.node(path).is_some() || !crate::path::is_well_formed(path) {
            return Err(out_of_order);
        }
        let acl = self.acls.intern(acl);
        let node = Node::new(path, data, acl, &Meta { num_children: 0, ..meta });
        self.insert_node(node, |_| {}).map_err(|orphan| {
            self.acls.release(orphan.acl());
            out_of_order
        })
    }

    /// Rebuilds a tree from snapshot chunks, in order.
    ///
    /// Nodes arrive in path order, so the set is bulk-built and each node's parent is found
    /// on a stack of the current ancestors; only a parent that a sibling sorting inside its
    /// subtree took off the stack is searched for.
    pub fn from_snapshot<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Result<DataTree, DecodeError> {
        let out_of_order = DecodeError::Unsupported { what: "node without parent or out of order", value: 0 };
        let mut tree = DataTree::without_nodes();
        let mut nodes: Vec<Node> = Vec::new();
        let mut children: Vec<u32> = Vec::new();
        let mut ancestors: Vec<usize> = Vec::new();
        for chunk in chunks {
            let r = &mut Reader::new(chunk);
            let lists: Vec<Vec<Acl>> = (0..r.count()?).map(|_| Vec::<Acl>::decode(r)).collect::<Result<_, _>>()?;
            // Each list is counted once for the chunk here, and released once it is read.
            let lists: Vec<AclId> = lists.iter().map(|l| tree.acls.intern(l)).collect();
            for _ in 0..r.count()? {
                let path = String::decode(r)?;
                let data: Option<Vec<u8>> = Record::decode(r)?;
                let acl_index = r.i32()?;
                let acl = *lists
                    .get(acl_index as usize)
                    .ok_or(DecodeError::Unsupported { what: "ACL index", value: acl_index })?;
                let meta = Meta {
                    czxid: r.i64()?,
                    mzxid: r.i64()?,
                    pzxid: r.i64()?,
                    ctime: r.i64()?,
                    mtime: r.i64()?,
                    version: r.i32()?,
                    aversion: r.i32()?,
                    child_creates: r.i32()?,
                    ephemeral_owner: r.i64()?,
                    num_children: 0,
                };
                let in_order = nodes.last().is_none_or(|last| last.path_bytes() < path.as_bytes());
                if !in_order || !crate::path::is_well_formed(&path) {
                    return Err(out_of_order);
                }
                if path == crate::path::ROOT {
                    if !nodes.is_empty() {
                        return Err(out_of_order);
                    }
                } else {
                    let parent = crate::path::parent(&path);
                    while ancestors.last().is_some_and(|&i| nodes[i].path_bytes() != parent.as_bytes()) {
                        ancestors.pop();
                    }
                    let parent_index = match ancestors.last() {
                        Some(&i) => i,
                        // A sibling that sorts between the parent and its children ("/a-b"
                        // comes between "/a" and "/a/c") took the parent off the stack.
                        None => {
                            let found = nodes.binary_search_by(|n| n.path_bytes().cmp(parent.as_bytes()));
                            let i = found.map_err(|_| out_of_order.clone())?;
                            ancestors.push(i);
                            i
                        }
                    };
                    children[parent_index] += 1;
                }
                tree.acls.add_use(acl);
                let node = Node::new(&path, data.as_deref(), acl, &meta);
                tree.index(&node);
                ancestors.push(nodes.len());
                nodes.push(node);
                children.push(0);
            }
            lists.into_iter().for_each(|id| tree.acls.release(id));
        }
        if nodes.first().is_none_or(|n| n.path() != crate::path::ROOT) {
            return Err(DecodeError::Unsupported { what: "snapshot without a root", value: 0 });
        }
        for (node, count) in nodes.iter_mut().zip(children) {
            if count > 0 {
                node.set_meta(&Meta { num_children: count, ..node.meta() });
            }
        }
        tree.purge_unused_acls();
        tree.nodes = nodes.into_iter().collect();
        Ok(tree)
    }
}

fn encode_chunk(nodes: &[&Node], acls: &AclCache) -> Vec<u8> {
    // ACL lists are shared (interned); each chunk carries the lists its nodes use.
    let mut lists: Vec<AclId> = Vec::new();
    let mut indexes = Vec::with_capacity(nodes.len());
    for n in nodes {
        let index = match lists.iter().position(|&l| l == n.acl()) {
            Some(i) => i,
            None => {
                lists.push(n.acl());
                lists.len() - 1
            }
        };
        indexes.push(index as i32);
    }
    let mut w = Vec::with_capacity(nodes.len() * 96);
    w.put_count(lists.len());
    for &list in &lists {
        acls.get(list).to_vec().encode(&mut w);
    }
    w.put_count(nodes.len());
    for (n, acl_index) in nodes.iter().zip(indexes) {
        let m = n.meta();
        w.put_buffer(Some(n.path_bytes()));
        w.put_buffer(n.data());
        w.put_i32(acl_index);
        for v in [m.czxid, m.mzxid, m.pzxid, m.ctime, m.mtime] {
            w.put_i64(v);
        }
        for v in [m.version, m.aversion, m.child_creates] {
            w.put_i32(v);
        }
        w.put_i64(m.ephemeral_owner);
    }
    w
}
