//! Reply bodies (server to client) and whole reply frames.

use crate::codes::{OpCode, STATE_SYNC_CONNECTED};
use crate::frame::append_frame;
use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::records::*;

/// A reply body for an `err == 0` reply. Error replies have no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// delete, ping, auth, setWatches, checkWatches, removeWatches, check, closeSession.
    Empty,
    /// create, sync.
    Path(String),
    /// create2, createContainer, createTTL.
    PathStat(String, Stat),
    /// exists, setData, setACL.
    Stat(Stat),
    /// getData (and reconfig).
    Data(Option<Vec<u8>>, Stat),
    Acl(Vec<Acl>, Stat),
    /// getChildren, getEphemerals.
    Children(Vec<String>),
    Children2(Vec<String>, Stat),
    Multi(Vec<MultiResult>),
    /// getAllChildrenNumber.
    Count(i32),
    /// addWatch answers an `ErrorResponse` body of 0.
    ErrorBody(i32),
    WhoAmI(Vec<ClientInfo>),
    Sasl(Option<Vec<u8>>),
}

/// One result inside a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetData(Option<Vec<u8>>, Stat),
    GetChildren(Vec<String>),
    /// A failed or rolled-back op: 0 for ops before the failing one, -2 after it.
    Error(i32),
}

impl MultiResult {
    fn opcode(&self) -> i32 {
        match self {
            MultiResult::Create(_) => OpCode::Create as i32,
            MultiResult::Create2(..) => OpCode::Create2 as i32,
            MultiResult::Delete => OpCode::Delete as i32,
            MultiResult::SetData(_) => OpCode::SetData as i32,
            MultiResult::Check => OpCode::Check as i32,
            MultiResult::GetData(..) => OpCode::GetData as i32,
            MultiResult::GetChildren(_) => OpCode::GetChildren as i32,
            MultiResult::Error(_) => OpCode::Error as i32,
        }
    }
}

impl Response {
    pub fn encode(&self, w: &mut Vec<u8>) {
        match self {
            Response::Empty => {}
            Response::Path(p) => p.encode(w),
            Response::PathStat(p, s) => {
                p.encode(w);
                s.encode(w)
            }
            Response::Stat(s) => s.encode(w),
            Response::Data(d, s) => {
                d.encode(w);
                s.encode(w)
            }
            Response::Acl(a, s) => {
                a.encode(w);
                s.encode(w)
            }
            Response::Children(c) => c.encode(w),
            Response::Children2(c, s) => {
                c.encode(w);
                s.encode(w)
            }
            Response::Multi(results) => {
                for res in results {
                    let err = if let MultiResult::Error(e) = res { *e } else { 0 };
                    MultiHeader { opcode: res.opcode(), done: false, err }.encode(w);
                    match res {
                        MultiResult::Create(p) => p.encode(w),
                        MultiResult::Create2(p, s) => {
                            p.encode(w);
                            s.encode(w)
                        }
                        MultiResult::SetData(s) => s.encode(w),
                        MultiResult::GetData(d, s) => {
                            d.encode(w);
                            s.encode(w)
                        }
                        MultiResult::GetChildren(c) => c.encode(w),
                        MultiResult::Error(e) => w.put_i32(*e),
                        MultiResult::Delete | MultiResult::Check => {}
                    }
                }
                MultiHeader { opcode: -1, done: true, err: -1 }.encode(w);
            }
            Response::Count(n) => w.put_i32(*n),
            Response::ErrorBody(e) => w.put_i32(*e),
            Response::WhoAmI(ids) => ids.encode(w),
            Response::Sasl(token) => token.encode(w),
        }
    }

    /// Decodes the body of a successful reply to a request with `opcode`.
    pub fn decode(opcode: OpCode, body: &[u8]) -> Result<Response, DecodeError> {
        let r = &mut Reader::new(body);
        Ok(match opcode {
            OpCode::Create => Response::Path(Record::decode(r)?),
            OpCode::Sync => Response::Path(Record::decode(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::PathStat(Record::decode(r)?, Record::decode(r)?)
            }
            OpCode::Exists | OpCode::SetData | OpCode::SetAcl => Response::Stat(Record::decode(r)?),
            OpCode::GetData | OpCode::Reconfig => Response::Data(Record::decode(r)?, Record::decode(r)?),
            OpCode::GetAcl => Response::Acl(Record::decode(r)?, Record::decode(r)?),
            OpCode::GetChildren | OpCode::GetEphemerals => Response::Children(Record::decode(r)?),
            OpCode::GetChildren2 => Response::Children2(Record::decode(r)?, Record::decode(r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(decode_multi_results(r)?),
            OpCode::GetAllChildrenNumber => Response::Count(r.i32()?),
            OpCode::AddWatch => Response::ErrorBody(r.i32()?),
            OpCode::WhoAmI => Response::WhoAmI(Record::decode(r)?),
            OpCode::Sasl => Response::Sasl(Record::decode(r)?),
            _ => Response::Empty,
        })
    }
}

fn decode_multi_results(r: &mut Reader<'_>) -> Result<Vec<MultiResult>, DecodeError> {
    let mut results = Vec::new();
    loop {
        let h = MultiHeader::decode(r)?;
        if h.done {
            return Ok(results);
        }
        results.push(match OpCode::from_i32(h.opcode) {
            Some(OpCode::Create) => MultiResult::Create(Record::decode(r)?),
            Some(OpCode::Create2) => MultiResult::Create2(Record::decode(r)?, Record::decode(r)?),
            Some(OpCode::Delete) => MultiResult::Delete,
            Some(OpCode::SetData) => MultiResult::SetData(Record::decode(r)?),
            Some(OpCode::Check) => MultiResult::Check,
            Some(OpCode::GetData) => MultiResult::GetData(Record::decode(r)?, Record::decode(r)?),
            Some(OpCode::GetChildren) => MultiResult::GetChildren(Record::decode(r)?),
            Some(OpCode::Error) => MultiResult::Error(r.i32()?),
            _ => return Err(DecodeError::Unsupported { what: "multi result", value: h.opcode }),
        });
    }
}

/// A whole reply frame. Error replies carry no body, except where ZooKeeper sends one
/// anyway (pass `Some` body with a non-zero `err` for those).
pub fn encode_reply_frame(header: &ReplyHeader, body: Option<&Response>) -> Vec<u8> {
    let mut w = Vec::new();
    append_reply_frame(&mut w, header, body);
    w
}

/// [`encode_reply_frame`] onto the end of an output buffer, without a copy.
pub fn append_reply_frame(out: &mut Vec<u8>, header: &ReplyHeader, body: Option<&Response>) {
    append_frame(out, |w| {
        header.encode(w);
        if let Some(body) = body {
            body.encode(w);
        }
    })
}

/// A watch notification frame: header `xid -1, zxid -1, err 0`, then the event.
pub fn encode_notification_frame(event_type: i32, path: &str) -> Vec<u8> {
    let mut w = Vec::new();
    append_notification_frame(&mut w, event_type, path);
    w
}

/// [`encode_notification_frame`] onto the end of an output buffer.
pub fn append_notification_frame(out: &mut Vec<u8>, event_type: i32, path: &str) {
    append_frame(out, |w| {
        ReplyHeader { xid: crate::codes::xid::NOTIFICATION, zxid: -1, err: 0 }.encode(w);
        w.put_i32(event_type);
        w.put_i32(STATE_SYNC_CONNECTED);
        w.put_buffer(Some(path.as_bytes()));
    })
}

/// Any record as a frame (used for the connect request and response).
pub fn encode_record_frame(record: &impl Record) -> Vec<u8> {
    let mut w = Vec::new();
    append_frame(&mut w, |w| record.encode(w));
    w
}
