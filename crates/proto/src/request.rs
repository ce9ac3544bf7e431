//! Requests (client to server) and their bodies, decoded by opcode.

use crate::codes::OpCode;
use crate::jute::{DecodeError, Reader, Record};
use crate::records::*;
use thiserror::Error;

/// A decoded request body. The variant is the opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    Check(CheckVersionRequest),
    /// Sub-requests as decoded; which kinds are allowed is the server's decision.
    Multi(Vec<Request>),
    MultiRead(Vec<Request>),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchesRequest),
    RemoveWatches(WatchesRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    Sasl(SaslToken),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

/// Why a request frame could not become a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeRequestError {
    /// ZooKeeper answers Unimplemented and closes the connection.
    #[error("unknown opcode {0}")]
    UnknownOpCode(i32),
    /// ZooKeeper answers MarshallingError and keeps the connection.
    #[error("malformed {opcode:?} request: {source}")]
    Malformed { opcode: OpCode, source: DecodeError },
}

impl Request {
    pub fn opcode(&self) -> OpCode {
        use Request::*;
        match self {
            Create(_) => OpCode::Create,
            Create2(_) => OpCode::Create2,
            CreateContainer(_) => OpCode::CreateContainer,
            CreateTtl(_) => OpCode::CreateTtl,
            Delete(_) => OpCode::Delete,
            Exists(_) => OpCode::Exists,
            GetData(_) => OpCode::GetData,
            SetData(_) => OpCode::SetData,
            GetAcl(_) => OpCode::GetAcl,
            SetAcl(_) => OpCode::SetAcl,
            GetChildren(_) => OpCode::GetChildren,
            GetChildren2(_) => OpCode::GetChildren2,
            Sync(_) => OpCode::Sync,
            Ping => OpCode::Ping,
            Check(_) => OpCode::Check,
            Multi(_) => OpCode::Multi,
            MultiRead(_) => OpCode::MultiRead,
            Reconfig(_) => OpCode::Reconfig,
            CheckWatches(_) => OpCode::CheckWatches,
            RemoveWatches(_) => OpCode::RemoveWatches,
            Auth(_) => OpCode::Auth,
            SetWatches(_) => OpCode::SetWatches,
            SetWatches2(_) => OpCode::SetWatches2,
            Sasl(_) => OpCode::Sasl,
            GetEphemerals(_) => OpCode::GetEphemerals,
            GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            AddWatch(_) => OpCode::AddWatch,
            WhoAmI => OpCode::WhoAmI,
            CloseSession => OpCode::CloseSession,
        }
    }

    /// Whether the request changes the tree (and so becomes a transaction).
    pub fn is_write(&self) -> bool {
        self.opcode().is_write()
    }

    /// Decodes the body that follows a request header with `opcode`.
    pub fn decode(opcode: i32, body: &[u8]) -> Result<Request, DecodeRequestError> {
        let op = OpCode::from_i32(opcode).ok_or(DecodeRequestError::UnknownOpCode(opcode))?;
        let mut r = Reader::new(body);
        Self::decode_op(op, &mut r).map_err(|source| match source {
            DecodeError::Unsupported { what: "opcode", value } => DecodeRequestError::UnknownOpCode(value),
            source => DecodeRequestError::Malformed { opcode: op, source },
        })
    }

    fn decode_op(op: OpCode, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
        use Request as R;
        Ok(match op {
            OpCode::Create => R::Create(Record::decode(r)?),
            OpCode::Create2 => R::Create2(Record::decode(r)?),
            OpCode::CreateContainer => R::CreateContainer(Record::decode(r)?),
            OpCode::CreateTtl => R::CreateTtl(Record::decode(r)?),
            OpCode::Delete => R::Delete(Record::decode(r)?),
            OpCode::Exists => R::Exists(Record::decode(r)?),
            OpCode::GetData => R::GetData(Record::decode(r)?),
            OpCode::SetData => R::SetData(Record::decode(r)?),
            OpCode::GetAcl => R::GetAcl(Record::decode(r)?),
            OpCode::SetAcl => R::SetAcl(Record::decode(r)?),
            OpCode::GetChildren => R::GetChildren(Record::decode(r)?),
            OpCode::GetChildren2 => R::GetChildren2(Record::decode(r)?),
            OpCode::Sync => R::Sync(Record::decode(r)?),
            OpCode::Ping => R::Ping,
            OpCode::Check => R::Check(Record::decode(r)?),
            OpCode::Multi => R::Multi(decode_multi(r)?),
            OpCode::MultiRead => R::MultiRead(decode_multi(r)?),
            OpCode::Reconfig => R::Reconfig(Record::decode(r)?),
            OpCode::CheckWatches => R::CheckWatches(Record::decode(r)?),
            OpCode::RemoveWatches => R::RemoveWatches(Record::decode(r)?),
            OpCode::Auth => R::Auth(Record::decode(r)?),
            OpCode::SetWatches => R::SetWatches(Record::decode(r)?),
            OpCode::SetWatches2 => R::SetWatches2(Record::decode(r)?),
            OpCode::Sasl => R::Sasl(Record::decode(r)?),
            OpCode::GetEphemerals => R::GetEphemerals(Record::decode(r)?),
            OpCode::GetAllChildrenNumber => R::GetAllChildrenNumber(Record::decode(r)?),
            OpCode::AddWatch => R::AddWatch(Record::decode(r)?),
            OpCode::WhoAmI => R::WhoAmI,
            OpCode::CloseSession => R::CloseSession,
            // Internal or server-only opcodes are not requests a client may send.
            OpCode::Notification | OpCode::DeleteContainer | OpCode::CreateSession | OpCode::Error => {
                return Err(DecodeError::Unsupported { what: "opcode", value: op as i32 })
            }
        })
    }

    /// Encodes the body (without the request header).
    pub fn encode(&self, w: &mut Vec<u8>) {
        use Request::*;
        match self {
            Create(b) | Create2(b) | CreateContainer(b) => b.encode(w),
            CreateTtl(b) => b.encode(w),
            Delete(b) => b.encode(w),
            Exists(b) | GetData(b) | GetChildren(b) | GetChildren2(b) => b.encode(w),
            SetData(b) => b.encode(w),
            GetAcl(b) | Sync(b) | GetEphemerals(b) | GetAllChildrenNumber(b) => b.encode(w),
            SetAcl(b) => b.encode(w),
            Check(b) => b.encode(w),
            Multi(ops) | MultiRead(ops) => encode_multi(ops, w),
            Reconfig(b) => b.encode(w),
            CheckWatches(b) | RemoveWatches(b) => b.encode(w),
            Auth(b) => b.encode(w),
            SetWatches(b) => b.encode(w),
            SetWatches2(b) => b.encode(w),
            Sasl(b) => b.encode(w),
            AddWatch(b) => b.encode(w),
            Ping | WhoAmI | CloseSession => {}
        }
    }

    /// The path the request names, if it names one.
    pub fn path(&self) -> Option<&str> {
        use Request::*;
        Some(match self {
            Create(b) | Create2(b) | CreateContainer(b) => &b.path,
            CreateTtl(b) => &b.path,
            Delete(b) => &b.path,
            Exists(b) | GetData(b) | GetChildren(b) | GetChildren2(b) => &b.path,
            SetData(b) => &b.path,
            GetAcl(b) | Sync(b) | GetEphemerals(b) | GetAllChildrenNumber(b) => &b.path,
            SetAcl(b) => &b.path,
            Check(b) => &b.path,
            CheckWatches(b) | RemoveWatches(b) => &b.path,
            AddWatch(b) => &b.path,
            _ => return None,
        })
    }
}

/// Sub-operations are `MultiHeader` + body, ended by a header with `done` set.
fn decode_multi(r: &mut Reader<'_>) -> Result<Vec<Request>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let header = MultiHeader::decode(r)?;
        if header.done {
            return Ok(ops);
        }
        let op = match OpCode::from_i32(header.opcode) {
            Some(
                op @ (OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::SetData
                | OpCode::Check
                | OpCode::GetData
                | OpCode::GetChildren),
            ) => op,
            _ => return Err(DecodeError::Unsupported { what: "multi sub-operation", value: header.opcode }),
        };
        ops.push(Request::decode_op(op, r)?);
    }
}

fn encode_multi(ops: &[Request], w: &mut Vec<u8>) {
    for op in ops {
        MultiHeader { opcode: op.opcode() as i32, done: false, err: -1 }.encode(w);
        op.encode(w);
    }
    MultiHeader { opcode: -1, done: true, err: -1 }.encode(w);
}

/// Encodes a whole request frame: length, header, body.
pub fn encode_request_frame(xid: i32, request: &Request) -> Vec<u8> {
    let mut w = Vec::new();
    append_request_frame(&mut w, xid, request);
    w
}

/// Appends a whole request frame to `out` (a connection's output buffer), in place.
pub fn append_request_frame(out: &mut Vec<u8>, xid: i32, request: &Request) {
    crate::frame::append_frame(out, |w| {
        RequestHeader { xid, opcode: request.opcode() as i32 }.encode(w);
        request.encode(w);
    });
}
