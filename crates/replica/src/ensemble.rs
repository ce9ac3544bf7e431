//! What the replicas of an ensemble say to each other beside ZAB: a follower hands its
//! clients' writes, new sessions, syncs and session liveness to the leader, which prepares
//! them like its own; the leader answers a sync with how far the follower must apply.
//!
//! ZAB itself (`zab`) moves the prepared transactions; these messages only feed the leader's
//! pipeline, as ZooKeeper's learners forward requests to the leader's `PrepRequestProcessor`.

use proto::jute::{DecodeError, Reader, Record, Writer};
use proto::{DecodeRequestError, Id, OpCode, Request};

/// How this server takes part in serving clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No ensemble: a write is committed once it is durable here.
    Standalone,
    /// The established leader of `epoch`: prepares every write (its clients' and those
    /// forwarded to it) and hands it to ZAB; applies what ZAB commits.
    Leading { epoch: u32 },
    /// Synchronized with the leader (as a follower or an observer): forwards writes,
    /// answers reads, applies what ZAB commits.
    Following,
    /// Between leaders: serves nobody, so that no client sees a server that may be behind.
    Looking,
}

impl Role {
    pub fn is_serving(&self) -> bool {
        !matches!(self, Role::Looking)
    }
}

/// From a follower to its leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToLeader {
    /// A client opened a session on the follower, which chose its id and password.
    CreateSession { session_id: i64, passwd: [u8; 16], timeout_ms: i32 },
    /// A client's write, with the identities of its connection (for ACL checks). A write
    /// whose body did not decode travels as its opcode: it still takes a zxid.
    Write { session_id: i64, cxid: i32, auth: Vec<Id>, request: Result<Request, OpCode> },
    /// A client's sync: the leader answers with [`ToFollower::Synced`].
    Sync { session_id: i64, cxid: i32 },
    /// These sessions' clients were heard from on the follower since the last report.
    Touch { sessions: Vec<i64> },
    /// A client resumes on the follower (connection `conn`) a session the follower does not
    /// know: the leader answers with [`ToFollower::Revalidated`].
    Revalidate { session_id: i64, conn: u64 },
}

/// From the leader to a follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToFollower {
    /// The sync may be answered once the follower has applied up to `zxid`, everything the
    /// leader had prepared when the sync reached it.
    Synced { session_id: i64, cxid: i32, zxid: i64 },
    /// The session may be judged once the follower has applied up to `zxid`: if it lives,
    /// its creation is in there.
    Revalidated { conn: u64, zxid: i64 },
}

/// The input for a message ZAB relayed from server `from` (`zab::Output::Relayed`): the
/// leader hears its followers' [`ToLeader`], a follower its leader's [`ToFollower`].
pub fn relayed(role: Role, from: u64, data: &[u8]) -> Result<crate::Input, DecodeError> {
    let r = &mut Reader::new(data);
    let input = match role {
        Role::Leading { .. } => crate::Input::FromFollower { from, msg: ToLeader::decode(r)? },
        _ => crate::Input::FromLeader(ToFollower::decode(r)?),
    };
    match r.remaining() {
        0 => Ok(input),
        n => Err(DecodeError::Unsupported { what: "bytes after a relayed message", value: n as i32 }),
    }
}

const CREATE_SESSION: i32 = 1;
const WRITE: i32 = 2;
const MALFORMED_WRITE: i32 = 3;
const SYNC: i32 = 4;
const TOUCH: i32 = 5;
const SYNCED: i32 = 6;
const REVALIDATE: i32 = 7;
const REVALIDATED: i32 = 8;

fn unsupported(what: &'static str, value: i32) -> DecodeError {
    DecodeError::Unsupported { what, value }
}

impl Record for ToLeader {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.i32()?;
        Ok(match tag {
            CREATE_SESSION => {
                let session_id = r.i64()?;
                let passwd: Vec<u8> = Record::decode(r)?;
                let passwd = passwd.try_into().map_err(|_| unsupported("password length", -1))?;
                ToLeader::CreateSession { session_id, passwd, timeout_ms: r.i32()? }
            }
            WRITE | MALFORMED_WRITE => {
                let (session_id, cxid) = (r.i64()?, r.i32()?);
                let auth = Vec::<Id>::decode(r)?;
                let code = r.i32()?;
                let opcode = OpCode::from_i32(code).ok_or(unsupported("opcode", code))?;
                let request = if tag == WRITE {
                    let body = r.buffer()?.unwrap_or_default();
                    match Request::decode(code, body) {
                        Ok(request) => Ok(request),
                        Err(DecodeRequestError::Malformed { source, .. }) => return Err(source),
                        Err(DecodeRequestError::UnknownOpCode(code)) => return Err(unsupported("opcode", code)),
                    }
                } else {
                    Err(opcode)
                };
                ToLeader::Write { session_id, cxid, auth, request }
            }
            SYNC => ToLeader::Sync { session_id: r.i64()?, cxid: r.i32()? },
            TOUCH => ToLeader::Touch { sessions: Vec::decode(r)? },
            REVALIDATE => ToLeader::Revalidate { session_id: r.i64()?, conn: r.i64()? as u64 },
            other => return Err(unsupported("message to the leader", other)),
        })
    }

    fn encode(&self, w: &mut Vec<u8>) {
        match self {
            ToLeader::CreateSession { session_id, passwd, timeout_ms } => {
                w.put_i32(CREATE_SESSION);
                w.put_i64(*session_id);
                w.put_buffer(Some(passwd));
                w.put_i32(*timeout_ms);
            }
            ToLeader::Write { session_id, cxid, auth, request } => {
                w.put_i32(if request.is_ok() { WRITE } else { MALFORMED_WRITE });
                w.put_i64(*session_id);
                w.put_i32(*cxid);
                auth.encode(w);
                match request {
                    Ok(request) => {
                        w.put_i32(request.opcode() as i32);
                        // A Jute buffer is a length prefix and the bytes: the body is
                        // written in place rather than copied in.
                        proto::append_frame(w, |w| request.encode(w));
                    }
                    Err(opcode) => w.put_i32(*opcode as i32),
                }
            }
            ToLeader::Sync { session_id, cxid } => {
                w.put_i32(SYNC);
                w.put_i64(*session_id);
                w.put_i32(*cxid);
            }
            ToLeader::Touch { sessions } => {
                w.put_i32(TOUCH);
                sessions.encode(w);
            }
            ToLeader::Revalidate { session_id, conn } => {
                w.put_i32(REVALIDATE);
                w.put_i64(*session_id);
                w.put_i64(*conn as i64);
            }
        }
    }
}

impl Record for ToFollower {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.i32()? {
            SYNCED => Ok(ToFollower::Synced { session_id: r.i64()?, cxid: r.i32()?, zxid: r.i64()? }),
            REVALIDATED => Ok(ToFollower::Revalidated { conn: r.i64()? as u64, zxid: r.i64()? }),
            other => Err(unsupported("message to a follower", other)),
        }
    }

    fn encode(&self, w: &mut Vec<u8>) {
        match self {
            ToFollower::Synced { session_id, cxid, zxid } => {
                w.put_i32(SYNCED);
                w.put_i64(*session_id);
                w.put_i32(*cxid);
                w.put_i64(*zxid);
            }
            ToFollower::Revalidated { conn, zxid } => {
                w.put_i32(REVALIDATED);
                w.put_i64(*conn as i64);
                w.put_i64(*zxid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{CreateRequest, PathRequest};

    fn round_trip<T: Record + PartialEq + std::fmt::Debug>(value: T) {
        let mut bytes = Vec::new();
        value.encode(&mut bytes);
        let mut r = Reader::new(&bytes);
        assert_eq!(T::decode(&mut r).unwrap(), value);
        assert_eq!(r.remaining(), 0);
        for cut in 0..bytes.len() {
            assert!(T::decode(&mut Reader::new(&bytes[..cut])).is_err(), "a cut at {cut} decoded");
        }
    }

    #[test]
    fn messages_round_trip_and_truncations_fail() {
        round_trip(ToLeader::CreateSession { session_id: -7, passwd: [9; 16], timeout_ms: 4000 });
        let create = Request::Create(CreateRequest {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: tree::acl::open_acl(),
            flags: 1,
        });
        let auth = vec![tree::acl::id("ip", "127.0.0.1"), tree::acl::id("digest", "u:h")];
        round_trip(ToLeader::Write { session_id: 1, cxid: 2, auth: auth.clone(), request: Ok(create) });
        round_trip(ToLeader::Write { session_id: 1, cxid: 3, auth, request: Err(OpCode::SetData) });
        round_trip(ToLeader::Write {
            session_id: 1,
            cxid: 4,
            auth: vec![],
            request: Ok(Request::Sync(PathRequest { path: "/".into() })),
        });
        round_trip(ToLeader::Sync { session_id: 5, cxid: 6 });
        round_trip(ToLeader::Touch { sessions: vec![1, 2, 3] });
        round_trip(ToFollower::Synced { session_id: 5, cxid: 6, zxid: 0x1_0000_0002 });
        round_trip(ToLeader::Revalidate { session_id: 5, conn: u64::MAX });
        round_trip(ToFollower::Revalidated { conn: 9, zxid: 0x2_0000_0000 });
    }

    #[test]
    fn unknown_tags_are_errors() {
        let mut bytes = Vec::new();
        bytes.put_i32(99);
        assert!(ToLeader::decode(&mut Reader::new(&bytes)).is_err());
        assert!(ToFollower::decode(&mut Reader::new(&bytes)).is_err());
    }
}
