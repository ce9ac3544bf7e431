//! ZooKeeper's snapshot files (`FileSnap`, `version-2/snapshot.<zxid>`), uncompressed.
//!
//! ```text
//! file     = FileHeader{magic int "ZKSN", version int (2), dbid long}
//!            sessions: count int, (id long, timeout int)*
//!            acls: count int, (index long, vector<ACL>)*
//!            nodes: (path ustring, data buffer, acl long, StatPersisted)*, then the path "/"
//!            seal
//!            [ZxidDigest{zxid long, version int, digest (ustring before version 2, else long)} seal]
//! seal     = Adler-32 of every byte before it, as a long | the ustring "/"
//! StatPersisted = czxid mzxid ctime mtime long | version cversion aversion int |
//!                 ephemeralOwner pzxid long
//! ```
//!
//! Nodes come depth first from the root, whose path is `""`; the ACL index -1 is
//! OPEN_ACL_UNSAFE. The digest section is there when ZooKeeper's digest is enabled (the 3.8
//! default); its second seal covers the whole file up to it.

use super::state::{Refused, State, ZkNode};
use super::Damage;
use proto::jute::{DecodeError, Reader, Record};
use proto::Acl;
use std::collections::BTreeMap;
use std::sync::Arc;
use tree::Meta;

const MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
const VERSION: i32 = 2;
/// The ACL index ZooKeeper uses for OPEN_ACL_UNSAFE without storing it.
const OPEN_ACL_INDEX: i64 = -1;

/// Whether a file looks complete, as ZooKeeper's `SnapStream.isValidCheckedStream` judges:
/// it ends with a seal's `"/"`. ZooKeeper skips snapshots that do not (a crash while writing).
pub fn looks_complete(bytes: &[u8]) -> bool {
    bytes.len() >= 10 && bytes[bytes.len() - 5..] == [0, 0, 0, 1, b'/']
}

struct Cursor<'a> {
    bytes: &'a [u8],
    r: Reader<'a>,
}

impl<'a> Cursor<'a> {
    fn offset(&self) -> u64 {
        (self.bytes.len() - self.r.remaining()) as u64
    }

    fn damage(&self, reason: impl Into<String>) -> Damage {
        Damage::new(self.offset(), reason)
    }

    /// A decoding error at its own offset.
    fn read<T>(&mut self, f: impl FnOnce(&mut Reader<'a>) -> Result<T, DecodeError>) -> Result<T, Damage> {
        let at = self.offset();
        f(&mut self.r).map_err(|e| Damage::new(at, e.to_string()))
    }

    /// Checks a seal: the Adler-32 of everything before it, then `"/"`.
    fn seal(&mut self) -> Result<(), Damage> {
        let at = self.offset();
        let computed = adler2::adler32_slice(&self.bytes[..at as usize]);
        let stored = self.read(|r| r.i64())?;
        let slash = self.read(|r| r.ustring())?;
        if slash.as_deref() != Some("/") {
            return Err(Damage::new(at, "no checksum where the snapshot should end"));
        }
        if stored as u64 != computed as u64 {
            return Err(Damage::new(
                at,
                format!("checksum mismatch (Adler-32 stored {stored:#x}, computed {computed:#x})"),
            ));
        }
        Ok(())
    }

    fn count(&mut self, what: &str) -> Result<usize, Damage> {
        let at = self.offset();
        let n = self.read(|r| r.i32())?;
        // Each element takes at least a byte, so a count beyond the file is damage.
        if n < 0 || n as usize > self.r.remaining() {
            return Err(Damage::new(at, format!("impossible {what} count {n}")));
        }
        Ok(n as usize)
    }
}

/// Parses a whole snapshot into ZooKeeper's state at the snapshot's zxid.
pub fn parse(bytes: &[u8], zxid: i64) -> Result<State, Damage> {
    let mut c = Cursor { bytes, r: Reader::new(bytes) };
    if c.read(|r| r.i32())? != MAGIC {
        return Err(Damage::new(0, "not a ZooKeeper snapshot (no ZKSN header)"));
    }
    let version = c.read(|r| r.i32())?;
    if version != VERSION {
        return Err(Damage::new(4, format!("unsupported snapshot version {version}")));
    }
    let _dbid = c.read(|r| r.i64())?;
    let mut state = State::default();
    state.zxid = zxid;
    for _ in 0..c.count("session")? {
        let (id, timeout) = c.read(|r| Ok((r.i64()?, r.i32()?)))?;
        state.sessions.insert(id, timeout);
    }
    let mut acls: BTreeMap<i64, Arc<[Acl]>> = BTreeMap::new();
    acls.insert(OPEN_ACL_INDEX, tree::acl::open_acl().into());
    for _ in 0..c.count("ACL list")? {
        let index = c.read(|r| r.i64())?;
        let mut list = Vec::new();
        for _ in 0..c.count("ACL")? {
            list.push(c.read(Acl::decode)?);
        }
        acls.insert(index, list.into());
    }
    loop {
        let at = c.offset();
        let path = c.read(|r| r.ustring())?.ok_or_else(|| Damage::new(at, "a node without a path"))?;
        if path == "/" {
            break;
        }
        let data = c.read(|r| r.buffer())?.map(Into::into);
        let acl_index = c.read(|r| r.i64())?;
        let acl = acls
            .get(&acl_index)
            .cloned()
            .ok_or_else(|| c.damage(format!("ACL index {acl_index} of {path:?} is not in the ACL table")))?;
        let (czxid, mzxid, ctime, mtime) = c.read(|r| Ok((r.i64()?, r.i64()?, r.i64()?, r.i64()?)))?;
        let (version, cversion, aversion) = c.read(|r| Ok((r.i32()?, r.i32()?, r.i32()?)))?;
        let (ephemeral_owner, pzxid) = c.read(|r| Ok((r.i64()?, r.i64()?)))?;
        let meta = Meta {
            czxid,
            mzxid,
            pzxid,
            ctime,
            mtime,
            version,
            aversion,
            // The stored cversion counts creates (see `state`).
            child_creates: cversion,
            ephemeral_owner,
            num_children: 0,
        };
        let node = ZkNode { data, acl, meta };
        let warren_path = if path.is_empty() { tree::path::ROOT.to_owned() } else { path };
        state.load(&warren_path, node).map_err(|refused| {
            Damage::new(
                at,
                match refused {
                    Refused::BadPath => format!("node path {warren_path:?} is malformed"),
                    Refused::NoParent => format!("node {warren_path:?} comes before its parent"),
                    Refused::Exists => format!("node {warren_path:?} appears twice"),
                },
            )
        })?;
    }
    if !state.nodes.contains_key(tree::path::ROOT) {
        return Err(c.damage("the snapshot has no root node"));
    }
    c.seal()?;
    if c.r.remaining() > 0 {
        let _zxid = c.read(|r| r.i64())?;
        let digest_version = c.read(|r| r.i32())?;
        if digest_version < 2 {
            c.read(|r| r.ustring())?;
        } else {
            c.read(|r| r.i64())?;
        }
        c.seal()?;
    }
    if c.r.remaining() > 0 {
        return Err(c.damage("unexpected data after the end of the snapshot"));
    }
    Ok(state)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proto::jute::Writer;

    fn seal(w: &mut Vec<u8>) {
        let sum = adler2::adler32_slice(w);
        w.put_i64(sum as i64);
        w.put_buffer(Some(b"/"));
    }

    fn node(w: &mut Vec<u8>, path: &str, data: Option<&[u8]>, acl: i64, cversion: i32, owner: i64) {
        w.put_buffer(Some(path.as_bytes()));
        w.put_buffer(data);
        w.put_i64(acl);
        for v in [10, 11, 1_700_000_000_000, 1_700_000_000_500] {
            w.put_i64(v);
        }
        for v in [3, cversion, 1] {
            w.put_i32(v);
        }
        w.put_i64(owner);
        w.put_i64(12);
    }

    /// A snapshot as ZooKeeper 3.8 writes one, with a digest section.
    pub(crate) fn snapshot_file() -> Vec<u8> {
        let mut w = Vec::new();
        w.put_i32(MAGIC);
        w.put_i32(VERSION);
        w.put_i64(-1);
        w.put_i32(1);
        w.put_i64(0x77);
        w.put_i32(30_000);
        w.put_i32(1);
        w.put_i64(1);
        vec![Acl { perms: 1, id: tree::acl::id("digest", "u:hash") }].encode(&mut w);
        node(&mut w, "", Some(b""), -1, 4, 0);
        node(&mut w, "/a", None, 1, 0, 0x77);
        node(&mut w, "/zookeeper", Some(b""), -1, 0, 0);
        w.put_buffer(Some(b"/"));
        seal(&mut w);
        w.put_i64(0x20);
        w.put_i32(2);
        w.put_i64(0x5555);
        seal(&mut w);
        w
    }

    #[test]
    fn nodes_sessions_and_acls_are_read() {
        let bytes = snapshot_file();
        assert!(looks_complete(&bytes));
        let state = parse(&bytes, 0x20).unwrap();
        assert_eq!(state.zxid, 0x20);
        assert_eq!(state.sessions, BTreeMap::from([(0x77, 30_000)]));
        assert_eq!(state.nodes.keys().collect::<Vec<_>>(), ["/", "/a", "/zookeeper"]);
        let a = &state.nodes["/a"];
        assert_eq!(a.data, None);
        assert_eq!(&*a.acl, &[Acl { perms: 1, id: tree::acl::id("digest", "u:hash") }]);
        let m = &a.meta;
        assert_eq!((m.czxid, m.mzxid, m.pzxid, m.ctime, m.mtime), (10, 11, 12, 1_700_000_000_000, 1_700_000_000_500));
        assert_eq!((m.version, m.aversion, m.ephemeral_owner), (3, 1, 0x77));
        let root = &state.nodes["/"];
        assert_eq!((root.meta.child_creates, &*root.acl), (4, &tree::acl::open_acl()[..]));
    }

    #[test]
    fn without_a_digest_section_too() {
        let bytes = snapshot_file();
        let without = &bytes[..bytes.len() - 20 - 13];
        assert!(parse(without, 0x20).is_ok());
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused_and_nothing_panics() {
        let bytes = snapshot_file();
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x04;
            assert!(parse(&flipped, 0x20).is_err(), "flip at byte {i} went unnoticed");
            // Cut right after the first seal it is a whole snapshot without a digest.
            let whole = i == bytes.len() - 33;
            assert_eq!(parse(&bytes[..i], 0x20).is_ok(), whole, "truncated at {i}");
        }
    }

    #[test]
    fn damage_names_the_offset() {
        let mut bytes = snapshot_file();
        // In the digest value: the second seal, which covers the whole file, catches it.
        let at = bytes.len() - 20;
        bytes[at] ^= 1;
        let err = parse(&bytes, 0x20).unwrap_err();
        assert!(err.reason.contains("checksum mismatch"), "{err:?}");
        assert_eq!(err.offset as usize, bytes.len() - 13);
    }
}
