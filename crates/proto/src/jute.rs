//! Jute, the serialization ZooKeeper uses for every record on the wire and on disk.
//!
//! Records are plain concatenations of big-endian fields; buffers and strings carry an
//! `int` length where `-1` means null; vectors carry an `int` count.
//! Decoding never panics: every read is bounds-checked against the input slice.

use thiserror::Error;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("record truncated at byte {offset}: {needed} more bytes needed, {available} available")]
    Truncated { offset: usize, needed: usize, available: usize },
    #[error("invalid length {length} at byte {offset}")]
    BadLength { offset: usize, length: i32 },
    #[error("unsupported value {value} for {what}")]
    Unsupported { what: &'static str, value: i32 },
}

/// A cursor over one record's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unread rest of the input, consumed.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }

    fn take(&mut self, needed: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < needed {
            return Err(DecodeError::Truncated { offset: self.pos, needed, available: self.remaining() });
        }
        let bytes = &self.buf[self.pos..self.pos + needed];
        self.pos += needed;
        Ok(bytes)
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// Any non-zero byte is true, as in the Java reader.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length-prefixed byte run; `None` for the null length -1.
    pub fn buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let offset = self.pos;
        match self.i32()? {
            -1 => Ok(None),
            length if length < 0 => Err(DecodeError::BadLength { offset, length }),
            length => self.take(length as usize).map(Some),
        }
    }

    /// A UTF-8 string; invalid sequences are replaced as Java's decoder does.
    pub fn ustring(&mut self) -> Result<Option<String>, DecodeError> {
        Ok(self.buffer()?.map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    /// A vector count; null (-1) reads as empty.
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let offset = self.pos;
        match self.i32()? {
            -1 => Ok(0),
            length if length < 0 => Err(DecodeError::BadLength { offset, length }),
            // Each element takes at least one byte, so a count beyond the input is a lie.
            length if length as usize > self.remaining() => {
                Err(DecodeError::Truncated { offset, needed: length as usize, available: self.remaining() })
            }
            length => Ok(length as usize),
        }
    }
}

/// Writing Jute fields onto a byte vector.
pub trait Writer {
    fn put_i32(&mut self, v: i32);
    fn put_i64(&mut self, v: i64);
    fn put_bool(&mut self, v: bool);
    fn put_buffer(&mut self, v: Option<&[u8]>);
    fn put_count(&mut self, n: usize);
}

impl Writer for Vec<u8> {
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_bool(&mut self, v: bool) {
        self.push(v as u8);
    }
    fn put_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.put_i32(-1),
            Some(b) => {
                self.put_i32(b.len() as i32);
                self.extend_from_slice(b);
            }
        }
    }
    fn put_count(&mut self, n: usize) {
        self.put_i32(n as i32);
    }
}

/// A Jute record: decodes from and encodes to its wire form.
pub trait Record: Sized {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    fn encode(&self, w: &mut Vec<u8>);

    /// Decodes a whole record from a byte slice; trailing bytes are ignored as ZooKeeper does.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(&mut Reader::new(bytes))
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::new();
        self.encode(&mut w);
        w
    }
}

impl Record for i32 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.i32()
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i32(*self)
    }
}

impl Record for i64 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.i64()
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i64(*self)
    }
}

impl Record for bool {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.bool()
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_bool(*self)
    }
}

/// A ustring; null reads as empty and empty writes as length 0 (the Java client's form).
impl Record for String {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.ustring()?.unwrap_or_default())
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_buffer(Some(self.as_bytes()))
    }
}

/// A ustring whose null is kept distinct from empty.
impl Record for Option<String> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.ustring()
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_buffer(self.as_deref().map(str::as_bytes))
    }
}

/// A buffer whose null is kept distinct from empty.
impl Record for Option<Vec<u8>> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.buffer()?.map(<[u8]>::to_vec))
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_buffer(self.as_deref())
    }
}

/// A buffer; null reads as empty.
impl Record for Vec<u8> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.buffer()?.map(<[u8]>::to_vec).unwrap_or_default())
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_buffer(Some(self))
    }
}

/// A Jute vector of records; null reads as empty.
impl<T: Element> Record for Vec<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.count()?;
        (0..n).map(|_| T::decode(r)).collect()
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_count(self.len());
        for e in self {
            e.encode(w);
        }
    }
}

/// Records that may appear as elements of a Jute vector (everything but raw bytes, which
/// are buffers, not vectors).
pub trait Element: Record {}
impl Element for String {}
impl Element for i64 {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_reads_fail_without_panic() {
        let mut r = Reader::new(&[0, 0, 0, 5, b'a']);
        assert_eq!(r.buffer(), Err(DecodeError::Truncated { offset: 4, needed: 5, available: 1 }));
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xfe]).buffer().is_err());
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff]).buffer(), Ok(None));
        assert!(Reader::new(&[0, 0, 0, 100]).count().is_err());
    }

    #[test]
    fn strings_round_trip() {
        let s = "/a/ß".to_string();
        assert_eq!(String::from_bytes(&s.to_bytes()).unwrap(), s);
        assert_eq!(Option::<String>::None.to_bytes(), vec![0xff; 4]);
    }
}
