//! The ZooKeeper client wire protocol as Warren speaks it: the Jute codec, every record,
//! requests decoded by opcode, reply bodies, and frame splitting.
//!
//! This crate is pure: bytes in, records out, and back. It knows nothing of sessions, the
//! tree or sockets. Decoding never panics on any input; a malformed body is a
//! [`DecodeError`], which the server turns into ZooKeeper's answer for it.
//! The formats follow Apache ZooKeeper 3.8 (`zookeeper.jute`); `tests/vectors.rs` checks
//! them byte for byte against captures of a real 3.8 server.

pub mod codes;
pub mod frame;
pub mod jute;
pub mod records;
pub mod request;
pub mod response;

pub use codes::{perms, xid, AddWatchMode, CreateMode, ErrorCode, EventType, OpCode, WatcherType};
pub use frame::{append_frame, frame_length, FrameError, DEFAULT_MAX_FRAME};
pub use jute::{DecodeError, Reader, Record};
pub use records::*;
pub use request::{append_request_frame, encode_request_frame, DecodeRequestError, Request};
pub use response::{
    append_notification_frame, append_reply_frame, encode_notification_frame, encode_record_frame, encode_reply_frame,
    MultiResult, Response,
};
