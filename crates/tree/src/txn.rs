//! Transactions: the one form in which every change reaches the tree.
//!
//! A transaction records the *result* of a write as prepared against the tree, not the
//! client's intent: the final sequential name, the new version, the ephemerals a closing
//! session leaves behind. Applying it therefore needs no validation and cannot fail, and
//! every replica that applies the same transactions in zxid order ends with the same tree.

use proto::jute::{DecodeError, Reader, Record, Writer};
use proto::{Acl, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub zxid: i64,
    /// The preparing server's wall clock, in ms since the epoch; ctime and mtime come from it.
    pub time_ms: i64,
    /// The session that issued the write (0 for the server's own, such as container reaping).
    pub session_id: i64,
    /// The client's xid of the request, so that the server holding its connection can
    /// match the committed transaction to it (0 for the server's own).
    pub cxid: i32,
    pub op: TxnOp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// The password is kept so that a restarted server still knows the session.
    CreateSession {
        timeout_ms: i32,
        passwd: [u8; 16],
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

// Transactions on disk: `zxid, time_ms, session_id, cxid` then the op as a type tag (ZooKeeper's
// opcode for it) and its fields, all in Jute. A multi is its count, then its ops.
impl Record for Txn {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Txn { zxid: r.i64()?, time_ms: r.i64()?, session_id: r.i64()?, cxid: r.i32()?, op: TxnOp::decode(r)? })
    }

    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i64(self.zxid);
        w.put_i64(self.time_ms);
        w.put_i64(self.session_id);
        w.put_i32(self.cxid);
        self.op.encode(w);
    }
}

impl Record for TxnOp {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.i32()? {
            -10 => {
                let timeout_ms = r.i32()?;
                let passwd = Vec::<u8>::decode(r)?;
                let passwd =
                    passwd.try_into().map_err(|_| DecodeError::Unsupported { what: "password length", value: -1 })?;
                TxnOp::CreateSession { timeout_ms, passwd }
            }
            -11 => TxnOp::CloseSession { ephemerals: Record::decode(r)? },
            1 => TxnOp::Create {
                path: Record::decode(r)?,
                data: Record::decode(r)?,
                acl: Record::decode(r)?,
                ephemeral_owner: r.i64()?,
            },
            2 => TxnOp::Delete { path: Record::decode(r)? },
            5 => TxnOp::SetData { path: Record::decode(r)?, data: Record::decode(r)?, version: r.i32()? },
            7 => TxnOp::SetAcl { path: Record::decode(r)?, acl: Record::decode(r)?, aversion: r.i32()? },
            13 => TxnOp::Check { path: Record::decode(r)? },
            -1 => {
                let code = r.i32()?;
                TxnOp::Error {
                    err: ErrorCode::from_i32(code)
                        .ok_or(DecodeError::Unsupported { what: "error code", value: code })?,
                }
            }
            14 => {
                let n = r.count()?;
                TxnOp::Multi((0..n).map(|_| TxnOp::decode(r)).collect::<Result<_, _>>()?)
            }
            other => return Err(DecodeError::Unsupported { what: "transaction type", value: other }),
        })
    }

    fn encode(&self, w: &mut Vec<u8>) {
        match self {
            TxnOp::CreateSession { timeout_ms, passwd } => {
                w.put_i32(-10);
                w.put_i32(*timeout_ms);
                w.put_buffer(Some(passwd));
            }
            TxnOp::CloseSession { ephemerals } => {
                w.put_i32(-11);
                ephemerals.encode(w);
            }
            TxnOp::Create { path, data, acl, ephemeral_owner } => {
                w.put_i32(1);
                path.encode(w);
                data.encode(w);
                acl.encode(w);
                w.put_i64(*ephemeral_owner);
            }
            TxnOp::Delete { path } => {
                w.put_i32(2);
                path.encode(w);
            }
            TxnOp::SetData { path, data, version } => {
                w.put_i32(5);
                path.encode(w);
                data.encode(w);
                w.put_i32(*version);
            }
            TxnOp::SetAcl { path, acl, aversion } => {
                w.put_i32(7);
                path.encode(w);
                acl.encode(w);
                w.put_i32(*aversion);
            }
            TxnOp::Check { path } => {
                w.put_i32(13);
                path.encode(w);
            }
            TxnOp::Error { err } => {
                w.put_i32(-1);
                w.put_i32(*err as i32);
            }
            TxnOp::Multi(ops) => {
                w.put_i32(14);
                w.put_count(ops.len());
                for op in ops {
                    op.encode(w);
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_round_trip() {
        let acl = crate::acl::open_acl();
        let ops = vec![
            TxnOp::CreateSession { timeout_ms: 4000, passwd: [7; 16] },
            TxnOp::CloseSession { ephemerals: vec!["/a".into(), "/b".into()] },
            TxnOp::Create { path: "/a".into(), data: None, acl: acl.clone(), ephemeral_owner: owner::ttl(5) },
            TxnOp::Delete { path: "/a".into() },
            TxnOp::SetData { path: "/a".into(), data: Some(vec![1, 2]), version: 3 },
            TxnOp::SetAcl { path: "/a".into(), acl, aversion: 1 },
            TxnOp::Check { path: "/a".into() },
            TxnOp::Error { err: ErrorCode::NoNode },
        ];
        let mut all = ops.clone();
        all.push(TxnOp::Multi(ops));
        for op in all {
            let txn = Txn { zxid: 0x1_0000_0002, time_ms: 1_700_000_000_000, session_id: -5, cxid: 7, op };
            assert_eq!(Txn::from_bytes(&txn.to_bytes()), Ok(txn));
        }
        assert!(Txn::from_bytes(&[0; 30]).is_err());
    }
}
