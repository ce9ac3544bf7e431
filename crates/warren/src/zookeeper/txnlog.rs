//! ZooKeeper's transaction log files (`FileTxnLog`, `version-2/log.<zxid>`).
//!
//! ```text
//! file   = FileHeader{magic int "ZKLG", version int (2), dbid long} record* zero*
//! record = checksum long | length int | entry byte[length] | 'B'
//! entry  = TxnHeader{clientId long, cxid int, zxid long, time long, type int} txn [TxnDigest]
//! ```
//!
//! The checksum is the Adler-32 of `entry`. Files are preallocated with zeros, so a zero
//! length ends the log. A record cut short by a crash (ZooKeeper: "Last transaction was
//! partial") with nothing but zeros after it ends the file as it does for ZooKeeper; a record
//! whose checksum does not match, or anything written after a bad record, is damage.

use super::Damage;
use proto::jute::{DecodeError, Reader, Record};
use proto::{Acl, OpCode};

const MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
const VERSION: i32 = 2;
const HEADER_BYTES: usize = 16;
/// The end-of-record byte.
const EOR: u8 = b'B';

/// One logged transaction (a `TxnHeader` and its record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub session_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time_ms: i64,
    pub op: Op,
}

/// The transaction records of `zookeeper.jute` that change the tree or the sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    CreateSession {
        timeout_ms: i32,
    },
    /// Its `CloseSessionTxn` (if logged) is not read: the session's ephemerals are known
    /// from the tree, which is what ZooKeeper deletes.
    CloseSession,
    /// `create`, `create2`, `createContainer` and `createTTL`; `opcode` tells which
    /// (ZooKeeper fixes up the parent's cversion on a replayed `create` only).
    Create {
        opcode: OpCode,
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        /// The session for an ephemeral, the container or TTL mark, or 0.
        ephemeral_owner: i64,
        /// The parent's stored cversion after this create (-1: one more than now).
        parent_cversion: i32,
    },
    Delete {
        path: String,
    },
    /// `setData`, and `reconfig` (which sets `/zookeeper/config` the same way).
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    Error {
        err: i32,
    },
    Multi(Vec<Op>),
}

/// What one log file holds.
#[derive(Debug, Default)]
pub struct LogFile {
    pub txns: Vec<Txn>,
    /// Where a partial last record (a torn write) was found, if any.
    pub torn_at: Option<u64>,
}

fn unsupported(what: &'static str, value: i32) -> DecodeError {
    DecodeError::Unsupported { what, value }
}

fn acl_list(r: &mut Reader<'_>) -> Result<Vec<Acl>, DecodeError> {
    Vec::<Acl>::decode(r)
}

/// Decodes one operation's record (`op` is its type), for `session_id`'s ephemerals.
fn decode_op(op: i32, session_id: i64, r: &mut Reader<'_>) -> Result<Op, DecodeError> {
    use OpCode::*;
    let code = OpCode::from_i32(op).ok_or_else(|| unsupported("transaction type", op))?;
    Ok(match code {
        CreateSession => Op::CreateSession { timeout_ms: r.i32()? },
        CloseSession => Op::CloseSession,
        Create | Create2 => {
            let (path, data, acl) = (Record::decode(r)?, Record::decode(r)?, acl_list(r)?);
            let ephemeral = r.bool()?;
            let parent_cversion = r.i32()?;
            let ephemeral_owner = if ephemeral { session_id } else { 0 };
            Op::Create { opcode: code, path, data, acl, ephemeral_owner, parent_cversion }
        }
        CreateContainer => Op::Create {
            opcode: code,
            path: Record::decode(r)?,
            data: Record::decode(r)?,
            acl: acl_list(r)?,
            ephemeral_owner: tree::owner::CONTAINER,
            parent_cversion: r.i32()?,
        },
        CreateTtl => {
            let (path, data, acl) = (Record::decode(r)?, Record::decode(r)?, acl_list(r)?);
            let parent_cversion = r.i32()?;
            let ttl = r.i64()?;
            Op::Create { opcode: code, path, data, acl, ephemeral_owner: tree::owner::ttl(ttl), parent_cversion }
        }
        Delete | DeleteContainer => Op::Delete { path: Record::decode(r)? },
        SetData | Reconfig => Op::SetData { path: Record::decode(r)?, data: Record::decode(r)?, version: r.i32()? },
        SetAcl => Op::SetAcl { path: Record::decode(r)?, acl: acl_list(r)?, version: r.i32()? },
        Check => Op::Check { path: Record::decode(r)?, version: r.i32()? },
        Error => Op::Error { err: r.i32()? },
        Multi => {
            let mut ops = Vec::new();
            for _ in 0..r.count()? {
                let sub = r.i32()?;
                let body = r.buffer()?.unwrap_or_default();
                // ZooKeeper's MultiTxn holds only these kinds.
                let allowed = OpCode::from_i32(sub).is_some_and(|c| {
                    matches!(
                        c,
                        Error
                            | Create
                            | Create2
                            | Delete
                            | DeleteContainer
                            | SetData
                            | Check
                            | CreateContainer
                            | CreateTtl
                    )
                });
                if !allowed {
                    return Err(unsupported("operation type in a multi", sub));
                }
                ops.push(decode_op(sub, session_id, &mut Reader::new(body))?);
            }
            Op::Multi(ops)
        }
        _ => return Err(unsupported("transaction type", op)),
    })
}

/// Decodes a log entry (`TxnHeader` and its record; a trailing `TxnDigest` is ignored).
pub fn decode_entry(entry: &[u8]) -> Result<Txn, DecodeError> {
    let r = &mut Reader::new(entry);
    let (session_id, cxid, zxid, time_ms, op) = (r.i64()?, r.i32()?, r.i64()?, r.i64()?, r.i32()?);
    Ok(Txn { session_id, cxid, zxid, time_ms, op: decode_op(op, session_id, r)? })
}

/// Parses a whole log file.
pub fn parse(bytes: &[u8]) -> Result<LogFile, Damage> {
    let mut header = Reader::new(bytes);
    if bytes.len() < HEADER_BYTES || header.i32() != Ok(MAGIC) {
        return Err(Damage::new(0, "not a ZooKeeper transaction log (no ZKLG header)"));
    }
    let version = header.i32().unwrap_or_default();
    if version != VERSION {
        return Err(Damage::new(4, format!("unsupported transaction log version {version}")));
    }
    let mut log = LogFile::default();
    let mut at = HEADER_BYTES;
    loop {
        let rest = &bytes[at..];
        let mut head = Reader::new(rest);
        let (checksum, length) = (head.i64().unwrap_or_default(), head.i32().unwrap_or_default());
        if rest.len() < 12 || length == 0 {
            // The written part ends here: the rest is preallocated zeros, after at most a
            // record header that a crash cut short.
            let header = rest.len().min(12);
            if rest[header..].iter().any(|b| *b != 0) {
                return Err(Damage::new(at as u64, "data after the end of the log"));
            }
            if rest[..header].iter().any(|b| *b != 0) {
                log.torn_at = Some(at as u64);
            }
            return Ok(log);
        }
        let end = 12usize.saturating_add(length.max(0) as usize);
        let whole = length > 0 && rest.len() > end && rest[end] == EOR;
        if !whole {
            // ZooKeeper stops at a partial record; a crash leaves one only at the end.
            let extent = if length > 0 { rest.len().min(end + 1) } else { 12 };
            if rest[extent..].iter().any(|b| *b != 0) {
                return Err(Damage::new(at as u64, "a malformed record in the middle of the log"));
            }
            log.torn_at = Some(at as u64);
            return Ok(log);
        }
        let entry = &rest[12..end];
        let computed = adler2::adler32_slice(entry);
        if checksum as u64 != computed as u64 {
            return Err(Damage::new(
                at as u64,
                format!("checksum mismatch (Adler-32 stored {checksum:#x}, computed {computed:#x})"),
            ));
        }
        let txn =
            decode_entry(entry).map_err(|e| Damage::new(at as u64, format!("the transaction does not decode: {e}")))?;
        if log.txns.last().is_some_and(|last| txn.zxid <= last.zxid) {
            return Err(Damage::new(at as u64, format!("zxid {:#x} out of order", txn.zxid)));
        }
        log.txns.push(txn);
        at += end + 1;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proto::jute::Writer;

    /// A log file holding `entries` (each a TxnHeader and record), preallocated with zeros.
    pub(crate) fn log_file(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut w = Vec::new();
        w.put_i32(MAGIC);
        w.put_i32(VERSION);
        w.put_i64(0);
        for entry in entries {
            w.put_i64(adler2::adler32_slice(entry) as i64);
            w.put_buffer(Some(entry));
            w.push(EOR);
        }
        w.resize(w.len() + 256, 0);
        w
    }

    pub(crate) fn header(session: i64, zxid: i64, time: i64, op: i32) -> Vec<u8> {
        let mut w = Vec::new();
        w.put_i64(session);
        w.put_i32(7);
        w.put_i64(zxid);
        w.put_i64(time);
        w.put_i32(op);
        w
    }

    pub(crate) fn create(session: i64, zxid: i64, path: &str, data: &[u8], ephemeral: bool, parent_cv: i32) -> Vec<u8> {
        let mut w = header(session, zxid, 1000 + zxid, OpCode::Create as i32);
        w.put_buffer(Some(path.as_bytes()));
        w.put_buffer(Some(data));
        vec![Acl::anyone(31)].encode(&mut w);
        w.put_bool(ephemeral);
        w.put_i32(parent_cv);
        // 3.8 appends a TxnDigest{version int, treeDigest long}; it is ignored.
        w.put_i32(2);
        w.put_i64(0x1234);
        w
    }

    #[test]
    fn records_decode_with_their_headers() {
        let mut session = header(0x55, 1, 900, OpCode::CreateSession as i32);
        session.put_i32(30_000);
        let bytes = log_file(&[session, create(0x55, 2, "/a", b"x", true, 1)]);
        let log = parse(&bytes).unwrap();
        assert_eq!(log.torn_at, None);
        assert_eq!(log.txns.len(), 2);
        assert_eq!(log.txns[0].op, Op::CreateSession { timeout_ms: 30_000 });
        assert_eq!(
            log.txns[1],
            Txn {
                session_id: 0x55,
                cxid: 7,
                zxid: 2,
                time_ms: 1002,
                op: Op::Create {
                    opcode: OpCode::Create,
                    path: "/a".into(),
                    data: Some(b"x".to_vec()),
                    acl: vec![Acl::anyone(31)],
                    ephemeral_owner: 0x55,
                    parent_cversion: 1
                }
            }
        );
    }

    #[test]
    fn multi_holds_its_operations() {
        let mut w = header(9, 3, 0, OpCode::Multi as i32);
        w.put_i32(2);
        let mut set = Vec::new();
        set.put_buffer(Some(b"/a"));
        set.put_buffer(None);
        set.put_i32(4);
        w.put_i32(OpCode::SetData as i32);
        w.put_buffer(Some(&set));
        w.put_i32(OpCode::Delete as i32);
        w.put_buffer(Some(b"\0\0\0\x02/b"));
        let txn = decode_entry(&w).unwrap();
        assert_eq!(
            txn.op,
            Op::Multi(vec![
                Op::SetData { path: "/a".into(), data: None, version: 4 },
                Op::Delete { path: "/b".into() }
            ])
        );
    }

    #[test]
    fn a_flipped_bit_is_a_checksum_error_naming_the_offset() {
        let mut bytes = log_file(&[create(1, 1, "/a", b"hello", false, 1), create(1, 2, "/b", b"", false, 2)]);
        bytes[HEADER_BYTES + 30] ^= 0x10;
        let err = parse(&bytes).unwrap_err();
        assert_eq!(err.offset, HEADER_BYTES as u64);
        assert!(err.reason.contains("checksum mismatch"), "{err:?}");
    }

    #[test]
    fn a_torn_last_record_ends_the_log_but_damage_before_data_is_refused() {
        let full = log_file(&[create(1, 1, "/a", b"hello", false, 1), create(1, 2, "/b", b"bye", false, 2)]);
        let first_end = HEADER_BYTES + 12 + create(1, 1, "/a", b"hello", false, 1).len() + 1;
        let written = full.iter().rposition(|b| *b != 0).unwrap() + 1;
        // Every cut inside the second record, the rest zeros: the first one survives.
        for cut in first_end + 1..written {
            let mut torn = full.clone();
            torn[cut..].iter_mut().for_each(|b| *b = 0);
            let log = parse(&torn).unwrap_or_else(|e| panic!("cut at {cut}: {e:?}"));
            assert_eq!(log.txns.len(), 1, "cut at {cut}");
            // The checksum's high bytes are zeros: a cut there leaves nothing to report.
            let kept = full[first_end..cut].iter().any(|b| *b != 0);
            assert_eq!(log.torn_at, kept.then_some(first_end as u64), "cut at {cut}");
        }
        // The first record's end marker lost, while the second is there: damage.
        let mut damaged = full.clone();
        damaged[first_end - 1] = 0;
        assert!(parse(&damaged).unwrap_err().reason.contains("malformed record"));
    }

    #[test]
    fn no_input_panics() {
        let full = log_file(&[create(1, 1, "/a", b"hello", false, 1), create(1, 2, "/b", b"bye", false, 2)]);
        for len in 0..full.len() {
            let _ = parse(&full[..len]);
            for bit in [0x01u8, 0x80] {
                let mut flipped = full.clone();
                flipped[len] ^= bit;
                let _ = parse(&flipped);
            }
        }
        assert!(parse(b"ZKSN\0\0\0\x02\0\0\0\0\0\0\0\0").unwrap_err().reason.contains("not a ZooKeeper"));
    }
}
