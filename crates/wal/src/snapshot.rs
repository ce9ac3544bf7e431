//! Snapshot files (format in the crate docs): written chunk by chunk off the request path,
//! made visible atomically, verified completely before use.

use crate::disk::{Disk, DiskFile};
use crate::log::{io as io_error, WalError};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"WARRENSN";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 24;

pub fn snapshot_name(zxid: i64) -> String {
    format!("snapshot.{zxid:016x}")
}

/// Writes one snapshot under a temporary name; [`SnapshotWriter::finish`] publishes it.
pub struct SnapshotWriter<D: Disk> {
    disk: D,
    file: D::File,
    tmp: PathBuf,
    path: PathBuf,
    offset: u64,
    chunk_crcs: Vec<u8>,
    chunks: u64,
    unsynced_bytes: u64,
    /// zstd level, when chunks are compressed.
    zstd_level: Option<i32>,
}

/// The header's flags word: bit 0 set means every chunk body is zstd-compressed.
const FLAG_ZSTD: u32 = 1;

/// A snapshot is fsynced every this many bytes as it is written, so that the kernel never
/// holds hundreds of megabytes to write back at once, which would stall the log's fsyncs.
const SYNC_EVERY_BYTES: u64 = 4 << 20;

impl<D: Disk> SnapshotWriter<D> {
    /// An uncompressed snapshot.
    pub fn create(disk: D, dir: &Path, zxid: i64) -> Result<SnapshotWriter<D>, WalError> {
        Self::open(disk, dir, zxid, None)
    }

    /// A snapshot whose chunks are zstd-compressed at `level` (by the writer's thread, off
    /// the request path).
    pub fn create_zstd(disk: D, dir: &Path, zxid: i64, level: i32) -> Result<SnapshotWriter<D>, WalError> {
        Self::open(disk, dir, zxid, Some(level))
    }

    fn open(disk: D, dir: &Path, zxid: i64, zstd_level: Option<i32>) -> Result<SnapshotWriter<D>, WalError> {
        disk.create_dir_all(dir).map_err(io_error("creating", dir))?;
        let path = dir.join(snapshot_name(zxid));
        let tmp = crate::disk::temporary(&path);
        let mut file = disk.create(&tmp).map_err(io_error("creating", &tmp))?;
        let mut header = Vec::with_capacity(HEADER_BYTES);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_be_bytes());
        let flags = if zstd_level.is_some() { FLAG_ZSTD } else { 0 };
        header.extend_from_slice(&flags.to_be_bytes());
        header.extend_from_slice(&zxid.to_be_bytes());
        file.write_at(0, &header).map_err(io_error("writing", &tmp))?;
        Ok(SnapshotWriter {
            disk,
            file,
            tmp,
            path,
            offset: HEADER_BYTES as u64,
            chunk_crcs: Vec::new(),
            chunks: 0,
            unsynced_bytes: 0,
            zstd_level,
        })
    }

    pub fn write_chunk(&mut self, body: &[u8]) -> Result<(), WalError> {
        if body.is_empty() {
            return Ok(());
        }
        let compressed;
        let body = match self.zstd_level {
            Some(level) => {
                compressed = zstd::bulk::compress(body, level).map_err(io_error("compressing", &self.tmp))?;
                &compressed[..]
            }
            None => body,
        };
        let crc = crc32c::crc32c(body);
        let mut framed = Vec::with_capacity(8 + body.len());
        framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
        framed.extend_from_slice(&crc.to_be_bytes());
        framed.extend_from_slice(body);
        self.file.write_at(self.offset, &framed).map_err(io_error("writing", &self.tmp))?;
        self.offset += framed.len() as u64;
        self.unsynced_bytes += framed.len() as u64;
        if self.unsynced_bytes >= SYNC_EVERY_BYTES {
            self.file.sync().map_err(io_error("fsyncing", &self.tmp))?;
            self.unsynced_bytes = 0;
        }
        self.chunk_crcs.extend_from_slice(&crc.to_be_bytes());
        self.chunks += 1;
        Ok(())
    }

    /// Writes the end record, fsyncs, and renames the file into place (durably).
    pub fn finish(mut self) -> Result<(PathBuf, u64), WalError> {
        let mut end = Vec::with_capacity(16);
        end.extend_from_slice(&0u32.to_be_bytes());
        end.extend_from_slice(&crc32c::crc32c(&self.chunk_crcs).to_be_bytes());
        end.extend_from_slice(&self.chunks.to_be_bytes());
        self.file.write_at(self.offset, &end).map_err(io_error("writing", &self.tmp))?;
        self.file.sync().map_err(io_error("fsyncing", &self.tmp))?;
        self.disk.rename(&self.tmp, &self.path).map_err(io_error("renaming", &self.tmp))?;
        Ok((self.path, self.offset + end.len() as u64))
    }

    /// Gives up on this snapshot and removes its temporary file.
    pub fn abandon(self) {
        let _ = self.disk.remove(&self.tmp);
    }
}

/// Removes snapshots a crash interrupted (their temporary files).
pub fn remove_unfinished<D: Disk>(disk: &D, dir: &Path) -> Result<usize, WalError> {
    let names = match disk.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_error("listing", dir)(e)),
    };
    let unfinished: Vec<_> = names.iter().filter(|n| n.starts_with("snapshot.") && n.ends_with(".tmp")).collect();
    for name in &unfinished {
        let path = dir.join(name);
        disk.remove(&path).map_err(io_error("removing", &path))?;
    }
    Ok(unfinished.len())
}

/// Snapshots in `dir`, newest first.
pub fn list<D: Disk>(disk: &D, dir: &Path) -> Result<Vec<(i64, PathBuf)>, WalError> {
    let names = match disk.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("listing", dir)(e)),
    };
    let mut found: Vec<(i64, PathBuf)> = names
        .iter()
        .filter_map(|n| {
            let hex = n.strip_prefix("snapshot.")?;
            let zxid = (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten()?;
            Some((zxid as i64, dir.join(n)))
        })
        .collect();
    found.sort_by_key(|(zxid, _)| std::cmp::Reverse(*zxid));
    Ok(found)
}

/// A verified snapshot file in memory.
pub struct Snapshot {
    pub zxid: i64,
    bytes: Vec<u8>,
    chunks: Vec<std::ops::Range<usize>>,
    /// The chunks decompressed, when the file is compressed.
    decompressed: Option<Vec<Vec<u8>>>,
}

impl Snapshot {
    /// The chunk bodies, in order (uncompressed files: without copying them out of the file).
    pub fn chunks(&self) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        match &self.decompressed {
            Some(chunks) => Box::new(chunks.iter().map(Vec::as_slice)),
            None => Box::new(self.chunks.iter().map(|r| &self.bytes[r.clone()])),
        }
    }

    /// The whole file, as read.
    pub fn file(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole file, as read (what a leader sends a follower behind its log).
    pub fn into_file(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads and verifies a whole snapshot: its zxid and chunk bodies.
pub fn read<D: Disk>(disk: &D, path: &Path) -> Result<(i64, Vec<Vec<u8>>), WalError> {
    let snapshot = read_verified(disk, path)?;
    Ok((snapshot.zxid, snapshot.chunks().map(<[u8]>::to_vec).collect()))
}

/// Reads and verifies a whole snapshot, keeping its chunks in place.
pub fn read_verified<D: Disk>(disk: &D, path: &Path) -> Result<Snapshot, WalError> {
    verify(path, disk.read(path).map_err(io_error("reading", path))?)
}

/// Verifies the bytes of a snapshot file named `path` (read, or received from a leader).
pub fn verify(path: &Path, data: Vec<u8>) -> Result<Snapshot, WalError> {
    let corrupt = |offset: usize, reason: &str| WalError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        reason: reason.into(),
    };
    if data.len() < HEADER_BYTES || &data[..8] != MAGIC {
        return Err(corrupt(0, "not a Warren snapshot (bad header)"));
    }
    if u32::from_be_bytes([data[8], data[9], data[10], data[11]]) != VERSION {
        return Err(corrupt(8, "unsupported snapshot version"));
    }
    let flags = u32::from_be_bytes([data[12], data[13], data[14], data[15]]);
    if flags & !FLAG_ZSTD != 0 {
        return Err(corrupt(12, "unknown snapshot flags"));
    }
    let zxid = i64::from_be_bytes(data[16..24].try_into().map_err(|_| corrupt(16, "short header"))?);
    // The header is not under a checksum; the file name says the same zxid.
    let named = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("snapshot."));
    if named.and_then(|hex| u64::from_str_radix(hex, 16).ok()) != Some(zxid as u64) {
        return Err(corrupt(16, "header zxid does not match the file name"));
    }
    let mut chunks = Vec::new();
    let mut crcs = Vec::new();
    let mut at = HEADER_BYTES;
    loop {
        let head = data.get(at..at + 8).ok_or_else(|| corrupt(at, "truncated"))?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if len == 0 {
            let count = data.get(at + 8..at + 16).ok_or_else(|| corrupt(at, "truncated end record"))?;
            let count = u64::from_be_bytes(count.try_into().map_err(|_| corrupt(at, "truncated end record"))?);
            if crc != crc32c::crc32c(&crcs) || count != chunks.len() as u64 {
                return Err(corrupt(at, "end record does not match the chunks"));
            }
            let decompressed = if flags & FLAG_ZSTD != 0 {
                let decompress = |r: &std::ops::Range<usize>| {
                    zstd::stream::decode_all(&data[r.clone()])
                        .map_err(|e| corrupt(r.start, &format!("chunk does not decompress: {e}")))
                };
                Some(chunks.iter().map(decompress).collect::<Result<_, _>>()?)
            } else {
                None
            };
            return Ok(Snapshot { zxid, bytes: data, chunks, decompressed });
        }
        let body = data.get(at + 8..at + 8 + len).ok_or_else(|| corrupt(at, "truncated chunk"))?;
        if crc32c::crc32c(body) != crc {
            return Err(corrupt(at, "chunk checksum mismatch"));
        }
        crcs.extend_from_slice(&crc.to_be_bytes());
        chunks.push(at + 8..at + 8 + len);
        at += 8 + len;
    }
}

/// Sets a damaged snapshot aside as `<name>.broken`.
pub fn set_aside<D: Disk>(disk: &D, path: &Path) -> Result<PathBuf, WalError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let broken = path.with_file_name(format!("{name}.broken"));
    disk.rename(path, &broken).map_err(io_error("setting aside", path))?;
    Ok(broken)
}
