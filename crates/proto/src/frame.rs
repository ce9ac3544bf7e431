//! Splitting a byte stream into frames: a big-endian `int32` length, then that many bytes.

use thiserror::Error;

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes.
pub const DEFAULT_MAX_FRAME: usize = 0xfffff;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// ZooKeeper closes the connection without answering.
    #[error("frame length {length} is outside 0..={max}")]
    BadLength { length: i64, max: usize },
}

/// The length of the first whole frame in `buf` (prefix included), `None` when more bytes are
/// needed. A payload of exactly `max` bytes is allowed, as in ZooKeeper (`len > maxbuffer` fails).
pub fn frame_length(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let length = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if length < 0 || length as usize > max {
        return Err(FrameError::BadLength { length: length as i64, max });
    }
    let total = 4 + length as usize;
    Ok((buf.len() >= total).then_some(total))
}

/// Appends one frame to `out`: a length prefix, then what `payload` writes.
pub fn append_frame(out: &mut Vec<u8>, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    payload(out);
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_zookeeper() {
        assert_eq!(frame_length(&[0, 0], 10), Ok(None));
        assert_eq!(frame_length(&[0, 0, 0, 2, 1], 10), Ok(None));
        assert_eq!(frame_length(&[0, 0, 0, 2, 1, 2, 3], 10), Ok(Some(6)));
        assert_eq!(frame_length(&[0, 0, 0, 10], 10), Ok(None));
        assert!(frame_length(&[0, 0, 0, 11], 10).is_err());
        assert!(frame_length(&[0xff, 0, 0, 0], 10).is_err());
    }
}
