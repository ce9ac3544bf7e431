//! One znode in one exactly-sized allocation: its path, a short header and its data.
//!
//! With a million znodes, what each one costs beyond its path and data decides the server's
//! memory. A node held as a struct with a boxed path and boxed data pays for three
//! allocations, each rounded up to the allocator's size class, and for the pointers between
//! them. So a node here is a single `Box<[u8]>`, and a Stat field is stored only when it
//! differs from what a fresh node has: a node never changed since its create keeps its
//! czxid and ctime, and nothing else.
//!
//! Layout, little-endian: `path_len u32 | path`, first so that comparing paths (the
//! tree's lookups) reads nothing else; then the header, `flags u8 | acl u32 | czxid i64 |
//! ctime i64` and each group whose flag is set, in this order:
//! - `OWNER`: `ephemeral_owner i64` (absent: 0)
//! - `MODIFIED`: `mzxid i64 | mtime i64 | version i32` (absent: czxid, ctime, 0)
//! - `ACL_CHANGED`: `aversion i32` (absent: 0)
//! - `PARENT`: `pzxid i64 | child_creates i32 | num_children u32` (absent: czxid, 0, 0)
//!
//! then the data. `NULL_DATA` marks data that is null rather than empty. A set of [`Meta`] has exactly one encoding, so equal nodes have equal bytes.

use crate::acl::AclId;
use crate::txn::owner;
use proto::Stat;
use std::borrow::Borrow;
use std::cmp::Ordering;

/// A znode's Stat as it is stored: what [`Stat`] shows, less what is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
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
    pub num_children: u32,
}

impl Meta {
    /// A node created by transaction `zxid` at `time_ms`.
    pub fn created(zxid: i64, time_ms: i64, ephemeral_owner: i64) -> Meta {
        Meta {
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

    pub fn cversion(&self) -> i32 {
        self.child_creates.wrapping_mul(2).wrapping_sub(self.num_children as i32)
    }

    pub fn stat(&self, data_len: usize) -> Stat {
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
            data_length: data_len as i32,
            num_children: self.num_children as i32,
            pzxid: self.pzxid,
        }
    }

    /// The groups this meta needs (see the module's layout).
    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.ephemeral_owner != 0 {
            flags |= OWNER;
        }
        if self.mzxid != self.czxid || self.mtime != self.ctime || self.version != 0 {
            flags |= MODIFIED;
        }
        if self.aversion != 0 {
            flags |= ACL_CHANGED;
        }
        if self.pzxid != self.czxid || self.child_creates != 0 || self.num_children != 0 {
            flags |= PARENT;
        }
        flags
    }
}

const OWNER: u8 = 1;
const MODIFIED: u8 = 2;
const ACL_CHANGED: u8 = 4;
const PARENT: u8 = 8;
const NULL_DATA: u8 = 16;
const GROUPS: u8 = OWNER | MODIFIED | ACL_CHANGED | PARENT;

const PATH_AT: usize = 4;
// Offsets within the header, which follows the path.
const ACL_AT: usize = 1;
const CZXID_AT: usize = 5;
const CORE_LEN: usize = 21;

fn header_len(flags: u8) -> usize {
    let group = |flag: u8, len: usize| if flags & flag != 0 { len } else { 0 };
    CORE_LEN + group(OWNER, 8) + group(MODIFIED, 20) + group(ACL_CHANGED, 4) + group(PARENT, 16)
}

/// A znode: its path, data, ACL list (by its id in the tree's ACL cache) and [`Meta`].
///
/// Nodes are ordered, compared and borrowed by path alone: they are the keys of the
/// tree's ordered set, where no two have the same path.
#[derive(Clone)]
pub struct Node(Box<[u8]>);

impl Node {
    pub(crate) fn new(path: &str, data: Option<&[u8]>, acl: AclId, meta: &Meta) -> Node {
        let flags = meta.flags() | if data.is_none() { NULL_DATA } else { 0 };
        let at = PATH_AT + path.len();
        let data_at = at + header_len(flags);
        let data = data.unwrap_or_default();
        let mut bytes = vec![0u8; data_at + data.len()].into_boxed_slice();
        bytes[..PATH_AT].copy_from_slice(&(path.len() as u32).to_le_bytes());
        bytes[PATH_AT..at].copy_from_slice(path.as_bytes());
        let header = &mut bytes[at..data_at];
        header[0] = flags;
        header[ACL_AT..CZXID_AT].copy_from_slice(&acl.to_le_bytes());
        write_meta(header, flags, meta);
        bytes[data_at..].copy_from_slice(data);
        Node(bytes)
    }

    /// Where the header starts: just after the path.
    fn header_at(&self) -> usize {
        PATH_AT + u32::from_le_bytes(array(&self.0, 0)) as usize
    }

    fn header(&self) -> &[u8] {
        &self.0[self.header_at()..]
    }

    fn flags(&self) -> u8 {
        self.header()[0]
    }

    fn data_at(&self) -> usize {
        self.header_at() + header_len(self.flags())
    }

    pub fn path(&self) -> &str {
        std::str::from_utf8(self.path_bytes()).expect("a node's path is stored from a str")
    }

    pub(crate) fn path_bytes(&self) -> &[u8] {
        &self.0[PATH_AT..self.header_at()]
    }

    /// `None` is ZooKeeper's null data, returned as null (clients such as Java's may send it).
    pub fn data(&self) -> Option<&[u8]> {
        (self.flags() & NULL_DATA == 0).then(|| &self.0[self.data_at()..])
    }

    pub fn data_len(&self) -> usize {
        self.0.len() - self.data_at()
    }

    pub(crate) fn acl(&self) -> AclId {
        AclId::from_le_bytes(array(self.header(), ACL_AT))
    }

    /// The one Stat field a snapshot checks on every node, read without decoding the rest.
    pub(crate) fn czxid(&self) -> i64 {
        i64::from_le_bytes(array(self.header(), CZXID_AT))
    }

    pub fn meta(&self) -> Meta {
        let header = self.header();
        let flags = header[0];
        let mut at = CZXID_AT;
        let at = &mut at;
        let czxid = i64::from_le_bytes(read(header, at));
        let ctime = i64::from_le_bytes(read(header, at));
        let mut meta = Meta::created(czxid, ctime, 0);
        if flags & OWNER != 0 {
            meta.ephemeral_owner = i64::from_le_bytes(read(header, at));
        }
        if flags & MODIFIED != 0 {
            meta.mzxid = i64::from_le_bytes(read(header, at));
            meta.mtime = i64::from_le_bytes(read(header, at));
            meta.version = i32::from_le_bytes(read(header, at));
        }
        if flags & ACL_CHANGED != 0 {
            meta.aversion = i32::from_le_bytes(read(header, at));
        }
        if flags & PARENT != 0 {
            meta.pzxid = i64::from_le_bytes(read(header, at));
            meta.child_creates = i32::from_le_bytes(read(header, at));
            meta.num_children = u32::from_le_bytes(read(header, at));
        }
        meta
    }

    pub fn stat(&self) -> Stat {
        self.meta().stat(self.data_len())
    }

    /// Stores `meta`: in place when it needs the same groups, else in a new allocation.
    pub(crate) fn set_meta(&mut self, meta: &Meta) {
        let flags = meta.flags();
        if flags == self.flags() & GROUPS {
            let at = self.header_at();
            write_meta(&mut self.0[at..], flags, meta);
        } else {
            *self = Node::new(self.path(), self.data(), self.acl(), meta);
        }
    }

    /// This node with other data and meta.
    pub(crate) fn with_data(&self, data: Option<&[u8]>, meta: &Meta) -> Node {
        Node::new(self.path(), data, self.acl(), meta)
    }

    pub(crate) fn set_acl(&mut self, acl: AclId, meta: &Meta) {
        let at = self.header_at();
        self.0[at + ACL_AT..at + CZXID_AT].copy_from_slice(&acl.to_le_bytes());
        self.set_meta(meta);
    }
}

/// Writes the Stat fields of a header (from its flags byte on) whose flags are `flags`.
fn write_meta(header: &mut [u8], flags: u8, meta: &Meta) {
    let mut at = CZXID_AT;
    let mut put = |bytes: &[u8]| {
        header[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&meta.czxid.to_le_bytes());
    put(&meta.ctime.to_le_bytes());
    if flags & OWNER != 0 {
        put(&meta.ephemeral_owner.to_le_bytes());
    }
    if flags & MODIFIED != 0 {
        put(&meta.mzxid.to_le_bytes());
        put(&meta.mtime.to_le_bytes());
        put(&meta.version.to_le_bytes());
    }
    if flags & ACL_CHANGED != 0 {
        put(&meta.aversion.to_le_bytes());
    }
    if flags & PARENT != 0 {
        put(&meta.pzxid.to_le_bytes());
        put(&meta.child_creates.to_le_bytes());
        put(&meta.num_children.to_le_bytes());
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

/// The `N` bytes at `at`, moving `at` past them.
fn read<const N: usize>(bytes: &[u8], at: &mut usize) -> [u8; N] {
    *at += N;
    array(bytes, *at - N)
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("path", &self.path())
            .field("data", &self.data())
            .field("acl", &self.acl())
            .field("meta", &self.meta())
            .finish()
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        self.path_bytes() == other.path_bytes()
    }
}

impl Eq for Node {}

impl PartialOrd for Node {
    fn partial_cmp(&self, other: &Node) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Node {
    fn cmp(&self, other: &Node) -> Ordering {
        self.path_bytes().cmp(other.path_bytes())
    }
}

/// Looks a node up by its path's bytes, whose order is the order of paths as strings.
impl Borrow<[u8]> for Node {
    fn borrow(&self) -> &[u8] {
        self.path_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta() -> impl Strategy<Value = Meta> {
        // Small values make fields equal to their defaults often, so every group is
        // exercised both present and absent.
        let small = || prop_oneof![Just(0i64), Just(7), any::<i64>()];
        let small32 = || prop_oneof![Just(0i32), Just(3), any::<i32>()];
        (small(), small(), small(), small(), small(), small32(), small32(), small32(), small(), any::<u32>()).prop_map(
            |(czxid, mzxid, pzxid, ctime, mtime, version, aversion, child_creates, ephemeral_owner, num_children)| {
                Meta {
                    czxid,
                    mzxid,
                    pzxid,
                    ctime,
                    mtime,
                    version,
                    aversion,
                    child_creates,
                    ephemeral_owner,
                    num_children,
                }
            },
        )
    }

    proptest! {
        #[test]
        fn what_is_stored_reads_back(
            path in "/[a-zé/]{0,40}",
            data in prop::option::of(prop::collection::vec(any::<u8>(), 0..300)),
            acl in any::<u32>(),
            first in meta(),
            second in meta(),
        ) {
            let mut node = Node::new(&path, data.as_deref(), acl, &first);
            prop_assert_eq!(node.path(), path.as_str());
            prop_assert_eq!(node.data(), data.as_deref());
            prop_assert_eq!(node.data_len(), data.as_ref().map_or(0, Vec::len));
            prop_assert_eq!((node.acl(), node.meta(), node.czxid()), (acl, first, first.czxid));
            node.set_meta(&second);
            prop_assert_eq!(node.path(), path.as_str());
            prop_assert_eq!(node.data(), data.as_deref());
            prop_assert_eq!((node.acl(), node.meta()), (acl, second));
            // One encoding per content, whichever way it was reached.
            prop_assert_eq!(&node.0, &Node::new(&path, data.as_deref(), acl, &second).0);
            node.set_acl(acl ^ 1, &first);
            prop_assert_eq!((node.acl(), node.meta()), (acl ^ 1, first));
            let changed = node.with_data(Some(b"new"), &second);
            prop_assert_eq!((changed.path(), changed.data(), changed.meta()), (path.as_str(), Some(&b"new"[..]), second));
        }
    }

    #[test]
    fn a_fresh_node_stores_only_its_creation() {
        let path = "/app/n0000000001";
        let node = Node::new(path, Some(&[b'x'; 100]), 0, &Meta::created(5, 9, 0));
        assert_eq!(node.0.len(), PATH_AT + path.len() + CORE_LEN + 100);
        assert_eq!(node.stat(), Meta::created(5, 9, 0).stat(100));
        let null = Node::new("/n", None, 0, &Meta::created(5, 9, 0));
        assert_eq!((null.data(), null.data_len()), (None, 0));
        assert_eq!(Node::new("/n", Some(b""), 0, &Meta::created(5, 9, 0)).data(), Some(&b""[..]));
    }

    #[test]
    fn nodes_order_by_path_alone() {
        let a = Node::new("/a", Some(b"1"), 0, &Meta::created(1, 1, 0));
        let a2 = Node::new("/a", Some(b"2"), 1, &Meta::created(2, 2, 0));
        let b = Node::new("/a/b", None, 0, &Meta::created(1, 1, 0));
        let dash = Node::new("/a-b", None, 0, &Meta::created(1, 1, 0));
        assert_eq!(a, a2);
        // As strings: '-' sorts before '/'.
        assert!(a < dash && dash < b);
        let set: std::collections::BTreeSet<Node> = [b.clone(), a.clone(), dash.clone()].into();
        assert_eq!(set.get(&b"/a-b"[..]).map(Node::path), Some("/a-b"));
    }
}
