//! How [`Message`]s travel between servers: length-prefixed frames of big-endian
//! fixed-width fields.
//!
//! A message's body is the sender's stream position (incarnation, sequence; see
//! [`crate::Output::Send`]), a one-byte tag naming the message, then its fields in
//! declaration order. Byte strings are a `u32` length and the bytes (a snapshot's, a `u64`
//! length); lists of entries a `u32` count and the entries.
//!
//! A body travels in frames: a `u32` prefix, then up to [`MAX_FRAME`] bytes of the body.
//! The prefix is the frame's length, with [`MORE`] set on every frame of a body but its
//! last, so a body larger than one frame (a big snapshot, a long DIFF) is split and the
//! receiver joins the pieces.

use crate::message::{Entry, Message, PeerState, ServerId, Vote};
use thiserror::Error;

/// The largest frame: a corrupt prefix cannot make the receiver allocate more at once.
pub const MAX_FRAME: usize = 1 << 30;

/// Set in a frame's prefix when more frames of the same body follow.
pub const MORE: u32 = 1 << 31;

/// The largest body a receiver joins from frames: far above any snapshot a server holds in
/// memory, and bounded so that a stream of corrupt frames cannot grow one without end.
pub const MAX_BODY: usize = 1 << 36;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("frame length {length} is above the maximum of {max}")]
    FrameTooLarge { length: usize, max: usize },
    #[error("a message of more than {max} bytes")]
    BodyTooLarge { max: usize },
    #[error("body truncated at byte {offset}: {needed} more bytes needed, {available} available")]
    Truncated { offset: usize, needed: usize, available: usize },
    #[error("{count} entries at byte {offset} cannot fit in the {available} bytes left")]
    TooManyEntries { offset: usize, count: u32, available: usize },
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    #[error("unknown peer state {0}")]
    UnknownPeerState(u8),
    #[error("{0} bytes after the end of the message")]
    TrailingBytes(usize),
}

// Tags are part of the protocol between servers: never renumber one.
const NOTIFICATION: u8 = 1;
const FOLLOWER_INFO: u8 = 2;
const LEADER_INFO: u8 = 3;
const ACK_EPOCH: u8 = 4;
const TRUNC: u8 = 5;
const SNAP: u8 = 6;
const DIFF: u8 = 7;
const NEW_LEADER: u8 = 8;
const ACK_NEW_LEADER: u8 = 9;
const UP_TO_DATE: u8 = 10;
const PROPOSAL: u8 = 11;
const ACK: u8 = 12;
const COMMIT: u8 = 13;
const PING: u8 = 14;
const RELAY: u8 = 15;

/// The smallest encoded entry (zxid and an empty payload's length), to check a count
/// against the bytes left before allocating for it.
const MIN_ENTRY: usize = 8 + 4;

/// A message's frames, ready to write.
///
/// # Panics
///
/// If a byte string other than a snapshot exceeds `u32::MAX`, which has no encoding: that
/// is beyond what a server should send.
pub fn encode_frame(stream: (u64, u64), msg: &Message) -> Vec<u8> {
    encode_frames(stream, msg, MAX_FRAME)
}

/// [`encode_frame`] with frames of at most `max_frame` bytes (tests use small ones).
///
/// # Panics
///
/// If `max_frame` is 0 or above [`MAX_FRAME`].
pub fn encode_frames(stream: (u64, u64), msg: &Message, max_frame: usize) -> Vec<u8> {
    assert!((1..=MAX_FRAME).contains(&max_frame), "frames of {max_frame} bytes");
    let mut out = vec![0; 4];
    out.extend_from_slice(&stream.0.to_be_bytes());
    out.extend_from_slice(&stream.1.to_be_bytes());
    encode_message(&mut out, msg);
    let body = out.len() - 4;
    if body <= max_frame {
        out[..4].copy_from_slice(&(body as u32).to_be_bytes());
        return out;
    }
    let mut frames = Vec::with_capacity(body + 4 * body.div_ceil(max_frame));
    let mut pieces = out[4..].chunks(max_frame).peekable();
    while let Some(piece) = pieces.next() {
        let more = if pieces.peek().is_some() { MORE } else { 0 };
        frames.extend_from_slice(&(piece.len() as u32 | more).to_be_bytes());
        frames.extend_from_slice(piece);
    }
    frames
}

fn encode_message(out: &mut Vec<u8>, msg: &Message) {
    let u32 = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_be_bytes());
    let u64 = |out: &mut Vec<u8>, v: u64| out.extend_from_slice(&v.to_be_bytes());
    let i64 = |out: &mut Vec<u8>, v: i64| out.extend_from_slice(&v.to_be_bytes());
    let bytes = |out: &mut Vec<u8>, v: &[u8]| {
        let len = u32::try_from(v.len()).expect("a byte string longer than u32::MAX");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(v);
    };
    let entry = |out: &mut Vec<u8>, e: &Entry| {
        i64(out, e.zxid);
        bytes(out, &e.data);
    };
    match msg {
        Message::Notification { vote, state, round } => {
            out.push(NOTIFICATION);
            u64(out, vote.leader.0);
            i64(out, vote.zxid);
            u32(out, vote.epoch);
            out.push(match state {
                PeerState::Looking => 0,
                PeerState::Following => 1,
                PeerState::Leading => 2,
            });
            u64(out, *round);
        }
        Message::FollowerInfo { session, accepted_epoch, last_zxid } => {
            out.push(FOLLOWER_INFO);
            u64(out, *session);
            u32(out, *accepted_epoch);
            i64(out, *last_zxid);
        }
        Message::LeaderInfo { epoch } => {
            out.push(LEADER_INFO);
            u32(out, *epoch);
        }
        Message::AckEpoch { session, epoch, current_epoch, last_zxid } => {
            out.push(ACK_EPOCH);
            u64(out, *session);
            u32(out, *epoch);
            u32(out, *current_epoch);
            i64(out, *last_zxid);
        }
        Message::Trunc { epoch, zxid } => {
            out.push(TRUNC);
            u32(out, *epoch);
            i64(out, *zxid);
        }
        Message::Snap { epoch, zxid, snapshot } => {
            out.push(SNAP);
            u32(out, *epoch);
            i64(out, *zxid);
            u64(out, snapshot.len() as u64);
            out.extend_from_slice(snapshot);
        }
        Message::Diff { epoch, entries } => {
            out.push(DIFF);
            u32(out, *epoch);
            let count = u32::try_from(entries.len()).expect("more than u32::MAX entries");
            u32(out, count);
            for e in entries {
                entry(out, e);
            }
        }
        Message::NewLeader { epoch, zxid } => {
            out.push(NEW_LEADER);
            u32(out, *epoch);
            i64(out, *zxid);
        }
        Message::AckNewLeader { epoch } => {
            out.push(ACK_NEW_LEADER);
            u32(out, *epoch);
        }
        Message::UpToDate { epoch } => {
            out.push(UP_TO_DATE);
            u32(out, *epoch);
        }
        Message::Proposal { epoch, entry: e } => {
            out.push(PROPOSAL);
            u32(out, *epoch);
            entry(out, e);
        }
        Message::Ack { epoch, zxid } => {
            out.push(ACK);
            u32(out, *epoch);
            i64(out, *zxid);
        }
        Message::Commit { epoch, zxid } => {
            out.push(COMMIT);
            u32(out, *epoch);
            i64(out, *zxid);
        }
        Message::Ping { epoch } => {
            out.push(PING);
            u32(out, *epoch);
        }
        Message::Relay { data } => {
            out.push(RELAY);
            bytes(out, data);
        }
    }
}

/// The length a frame's prefix announces, refused above [`MAX_FRAME`] before the receiver
/// allocates for it, and whether more frames of the same body follow.
pub fn frame_len(prefix: [u8; 4]) -> Result<(usize, bool), WireError> {
    let prefix = u32::from_be_bytes(prefix);
    let length = (prefix & !MORE) as usize;
    if length > MAX_FRAME {
        return Err(WireError::FrameTooLarge { length, max: MAX_FRAME });
    }
    Ok((length, prefix & MORE != 0))
}

/// Checks that a body joined from frames may grow by `length` more bytes.
pub fn check_body_growth(joined: usize, length: usize) -> Result<(), WireError> {
    match joined.checked_add(length) {
        Some(total) if total <= MAX_BODY => Ok(()),
        _ => Err(WireError::BodyTooLarge { max: MAX_BODY }),
    }
}

/// A body (without its length prefix): the stream position and the message. Any input
/// gives a value or an error, never a panic: the bytes come from the network.
pub fn decode_body(body: &[u8]) -> Result<((u64, u64), Message), WireError> {
    let mut r = Reader { buf: body, pos: 0 };
    let stream = (r.u64()?, r.u64()?);
    let msg = match r.u8()? {
        NOTIFICATION => {
            let vote = Vote { leader: ServerId(r.u64()?), zxid: r.i64()?, epoch: r.u32()? };
            let state = match r.u8()? {
                0 => PeerState::Looking,
                1 => PeerState::Following,
                2 => PeerState::Leading,
                other => return Err(WireError::UnknownPeerState(other)),
            };
            Message::Notification { vote, state, round: r.u64()? }
        }
        FOLLOWER_INFO => Message::FollowerInfo { session: r.u64()?, accepted_epoch: r.u32()?, last_zxid: r.i64()? },
        LEADER_INFO => Message::LeaderInfo { epoch: r.u32()? },
        ACK_EPOCH => {
            Message::AckEpoch { session: r.u64()?, epoch: r.u32()?, current_epoch: r.u32()?, last_zxid: r.i64()? }
        }
        TRUNC => Message::Trunc { epoch: r.u32()?, zxid: r.i64()? },
        SNAP => {
            let (epoch, zxid) = (r.u32()?, r.i64()?);
            let len = usize::try_from(r.u64()?).unwrap_or(usize::MAX);
            Message::Snap { epoch, zxid, snapshot: r.take(len)?.to_vec() }
        }
        DIFF => {
            let epoch = r.u32()?;
            let offset = r.pos;
            let count = r.u32()?;
            let available = r.remaining();
            if count as usize > available / MIN_ENTRY {
                return Err(WireError::TooManyEntries { offset, count, available });
            }
            let mut entries = Vec::with_capacity(count as usize);
            for _ in 0..count {
                entries.push(r.entry()?);
            }
            Message::Diff { epoch, entries }
        }
        NEW_LEADER => Message::NewLeader { epoch: r.u32()?, zxid: r.i64()? },
        ACK_NEW_LEADER => Message::AckNewLeader { epoch: r.u32()? },
        UP_TO_DATE => Message::UpToDate { epoch: r.u32()? },
        PROPOSAL => Message::Proposal { epoch: r.u32()?, entry: r.entry()? },
        ACK => Message::Ack { epoch: r.u32()?, zxid: r.i64()? },
        COMMIT => Message::Commit { epoch: r.u32()?, zxid: r.i64()? },
        PING => Message::Ping { epoch: r.u32()? },
        RELAY => Message::Relay { data: r.bytes()? },
        other => return Err(WireError::UnknownTag(other)),
    };
    match r.remaining() {
        0 => Ok((stream, msg)),
        extra => Err(WireError::TrailingBytes(extra)),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, needed: usize) -> Result<&'a [u8], WireError> {
        let available = self.remaining();
        if needed > available {
            return Err(WireError::Truncated { offset: self.pos, needed, available });
        }
        let taken = &self.buf[self.pos..self.pos + needed];
        self.pos += needed;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        self.array().map(u64::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, WireError> {
        self.array().map(i64::from_be_bytes)
    }

    /// The length is checked against the bytes present (in `take`) before anything is copied.
    fn bytes(&mut self) -> Result<Vec<u8>, WireError> {
        let len = self.u32()? as usize;
        self.take(len).map(<[u8]>::to_vec)
    }

    fn entry(&mut self) -> Result<Entry, WireError> {
        Ok(Entry { zxid: self.i64()?, data: self.bytes()? })
    }
}
