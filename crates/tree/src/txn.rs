//! Transactions: the one form in which every change reaches the tree.
//!
//! A transaction records the *result* of a write as prepared against the tree, not the
//! client's intent: the final sequential name, the new version, the ephemerals a closing
//! session leaves behind. Applying it therefore needs no validation and cannot fail, and
//! every replica that applies the same transactions in zxid order ends with the same tree.

use proto::{Acl, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub zxid: i64,
    /// The preparing server's wall clock, in ms since the epoch; ctime and mtime come from it.
    pub time_ms: i64,
    /// The session that issued the write (0 for the server's own, such as container reaping).
    pub session_id: i64,
    pub op: TxnOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    CreateSession {
        timeout_ms: i32,
    },
    /// Ends a session; its ephemeral nodes, listed, are deleted in the same transaction.
    CloseSession {
        ephemerals: Vec<String>,
    },
    /// `ephemeral_owner` is the raw owner: a session id, or the container or TTL marker.
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral_owner: i64,
    },
    Delete {
        path: String,
    },
    /// `version` is the node's version after this write.
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    /// `aversion` is the node's ACL version after this write.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        aversion: i32,
    },
    Check {
        path: String,
    },
    /// A write that failed validation still takes a zxid, as in ZooKeeper.
    Error {
        err: ErrorCode,
    },
    /// All or nothing: a failed multi is a `Multi` of `Error`s.
    Multi(Vec<TxnOp>),
}

/// Raw `ephemeral_owner` values with a meaning other than a session (ZooKeeper's `EphemeralType`).
pub mod owner {
    /// The owner of a container node.
    pub const CONTAINER: i64 = i64::MIN;
    const TTL_MARK: i64 = 0xFF00_0000_0000_0000_u64 as i64;
    /// The largest TTL a node may have, in ms.
    pub const TTL_MAX_MS: i64 = (1 << 40) - 1;

    pub fn ttl(ttl_ms: i64) -> i64 {
        TTL_MARK | (ttl_ms & TTL_MAX_MS)
    }

    /// The TTL in ms, if the owner marks a TTL node.
    pub fn ttl_ms(owner: i64) -> Option<i64> {
        (owner != CONTAINER && owner & TTL_MARK == TTL_MARK).then_some(owner & TTL_MAX_MS)
    }

    /// The session, if the owner is one (what clients see as `ephemeralOwner`).
    pub fn session(owner: i64) -> Option<i64> {
        (owner != 0 && owner != CONTAINER && ttl_ms(owner).is_none()).then_some(owner)
    }
}
