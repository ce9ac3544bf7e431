//! The transaction log: segments of checksummed batches (format in the crate docs).

use crate::disk::{Disk, DiskFile};
use std::path::{Path, PathBuf};
use thiserror::Error;

const MAGIC: &[u8; 8] = b"WARRENLG";
const VERSION: u32 = 1;
const HEADER_BYTES: u64 = 24;
/// Length, checksum of the length, checksum of the body.
const BATCH_HEADER_BYTES: usize = 12;
/// A batch larger than this is damage, not data.
const BATCH_BYTES_MAX: u32 = 256 << 20;

#[derive(Debug, Error)]
pub enum WalError {
    #[error("{op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{}: damaged at byte {offset}: {reason}", path.display())]
    Corrupt { path: PathBuf, offset: u64, reason: String },
}

pub(crate) fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WalError + 'a {
    move |source| WalError::Io { op, path: path.to_owned(), source }
}

#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment that has grown past this starts the next one (ZooKeeper's `preAllocSize`).
    pub segment_bytes: u64,
    /// Zeros written ahead of the data, so that appends do not change the file size.
    pub preallocate_bytes: u64,
    /// `forceSync=no` turns fsync off: faster, and not durable against power loss.
    pub force_sync: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_bytes: 64 << 20, preallocate_bytes: 64 << 20, force_sync: true }
    }
}

/// A torn write cut from the end of the log at recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCut {
    pub file: PathBuf,
    pub offset: u64,
    /// Non-zero bytes that were dropped.
    pub bytes: u64,
}

/// What recovery found: every entry after the requested zxid, in order.
#[derive(Debug, Default)]
pub struct Recovery {
    pub entries: Vec<(i64, Vec<u8>)>,
    pub cut: Option<TailCut>,
    /// The last zxid in the log (0 when empty).
    pub last_zxid: i64,
}

struct Segment<F> {
    file: F,
    path: PathBuf,
    /// Where the next batch goes.
    end: u64,
}

pub struct Wal<D: Disk> {
    disk: D,
    dir: PathBuf,
    options: WalOptions,
    segment: Option<Segment<D::File>>,
    last_zxid: i64,
}

pub fn segment_name(first_zxid: i64) -> String {
    format!("log.{first_zxid:016x}")
}

/// The first zxid a segment's file name says, if it is one (`log.<16 hex digits>`).
pub fn parse_segment_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix("log.")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok().map(|z| z as i64)).flatten()
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

fn encode_header(first_zxid: i64) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_BYTES as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_be_bytes());
    header.extend_from_slice(&0u32.to_be_bytes());
    header.extend_from_slice(&first_zxid.to_be_bytes());
    header
}

/// Encodes one batch (one group commit).
fn encode_batch<P: AsRef<[u8]>>(entries: &[(i64, P)]) -> Vec<u8> {
    let body_len: usize = 4 + entries.iter().map(|(_, p)| 12 + p.as_ref().len()).sum::<usize>();
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + body_len);
    let len = (body_len as u32).to_be_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::crc32c(&len).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (zxid, payload) in entries {
        out.extend_from_slice(&zxid.to_be_bytes());
        let payload = payload.as_ref();
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
    }
    let crc = crc32c::crc32c(&out[BATCH_HEADER_BYTES..]);
    out[8..12].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Splits a batch body already checked by its CRC into entries; `None` if its structure
/// is wrong.
fn split_body(body: &[u8]) -> Option<Vec<(i64, &[u8])>> {
    let count = be_u32(body.get(..4)?) as usize;
    let mut entries = Vec::with_capacity(count.min(body.len() / 12));
    let mut at = 4;
    for _ in 0..count {
        let head = body.get(at..at + 12)?;
        let (zxid, len) = (be_i64(head), be_u32(&head[8..]) as usize);
        entries.push((zxid, body.get(at + 12..at + 12 + len)?));
        at += 12 + len;
    }
    (at == body.len()).then_some(entries)
}

/// A whole, valid batch of a segment: where it starts, and its entries.
struct Batch<'a> {
    at: usize,
    entries: Vec<(i64, &'a [u8])>,
}

/// The index of the first non-zero byte; word at a time, since most of a segment is
/// preallocated zeros.
fn first_non_zero(bytes: &[u8]) -> Option<usize> {
    let words = bytes.chunks_exact(8);
    let tail_start = bytes.len() - words.remainder().len();
    let word = words.map(|w| u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]])).position(|w| w != 0);
    let from = word.map_or(tail_start, |i| i * 8);
    bytes[from..].iter().position(|b| *b != 0).map(|i| from + i)
}

/// How scanning one segment ended.
enum Scan {
    /// Only zeros (or nothing) after the last batch, which ends at `end`.
    Clean { end: u64 },
    /// A bad batch at `end` with only zeros after it: a torn, unacknowledged write.
    Torn { end: u64, bytes: u64 },
}

/// Reads a segment's valid batches into `batches`. Zxids must increase (not by one: ZAB's
/// jump at each new epoch) from `last_zxid`, the last one before this segment, which is
/// advanced.
fn scan_segment<'a>(
    path: &Path,
    data: &'a [u8],
    last_zxid: &mut i64,
    batches: &mut Vec<Batch<'a>>,
) -> Result<Scan, WalError> {
    let corrupt =
        |offset: u64, reason: &str| WalError::Corrupt { path: path.to_owned(), offset, reason: reason.to_owned() };
    if data.len() < HEADER_BYTES as usize || &data[..8] != MAGIC {
        return Err(corrupt(0, "not a Warren log segment (bad header)"));
    }
    if be_u32(&data[8..]) != VERSION {
        return Err(corrupt(8, "unsupported log version"));
    }
    let mut at = HEADER_BYTES as usize;
    loop {
        let rest = &data[at..];
        if rest.len() < BATCH_HEADER_BYTES || be_u32(rest) == 0 {
            // The written part ends here; what follows must be preallocated zeros.
            return match first_non_zero(rest) {
                None => Ok(Scan::Clean { end: at as u64 }),
                Some(i) if rest.len() >= BATCH_HEADER_BYTES => {
                    Err(corrupt((at + i) as u64, "data after the end of the log"))
                }
                Some(_) => Ok(Scan::Torn { end: at as u64, bytes: rest.iter().filter(|b| **b != 0).count() as u64 }),
            };
        }
        let len = be_u32(rest);
        // The length has its own checksum: a damaged length must not make the rest of the
        // log look like one torn batch.
        let header_valid = crc32c::crc32c(&rest[..4]) == be_u32(&rest[4..]) && len <= BATCH_BYTES_MAX;
        let whole = header_valid && rest.len() >= BATCH_HEADER_BYTES + len as usize;
        let valid = whole && {
            let body = &rest[BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + len as usize];
            crc32c::crc32c(body) == be_u32(&rest[8..])
        };
        if !valid {
            // Torn only if nothing was written after this batch's extent (its header, when
            // the header itself is incomplete).
            let extent = match (header_valid, whole) {
                (false, _) => BATCH_HEADER_BYTES,
                (true, true) => BATCH_HEADER_BYTES + len as usize,
                (true, false) => rest.len(),
            };
            if first_non_zero(&rest[extent..]).is_some() {
                return Err(corrupt(at as u64, "checksum mismatch in the middle of the log"));
            }
            let bytes = rest[..extent].iter().filter(|b| **b != 0).count() as u64;
            return Ok(Scan::Torn { end: at as u64, bytes });
        }
        let body = &rest[BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + len as usize];
        let entries = split_body(body).ok_or_else(|| corrupt(at as u64, "malformed batch"))?;
        for (zxid, _) in &entries {
            if *zxid <= *last_zxid {
                return Err(corrupt(at as u64, "zxids out of order"));
            }
            *last_zxid = *zxid;
        }
        batches.push(Batch { at, entries });
        at += BATCH_HEADER_BYTES + len as usize;
    }
}

/// The segments in `dir`, oldest first, with their first zxids.
pub fn list_segments<D: Disk>(disk: &D, dir: &Path) -> Result<Vec<(i64, PathBuf)>, WalError> {
    let names = match disk.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("listing", dir)(e)),
    };
    let mut segments: Vec<(i64, PathBuf)> =
        names.into_iter().filter_map(|name| parse_segment_name(&name).map(|z| (z, dir.join(name)))).collect();
    segments.sort();
    Ok(segments)
}

impl<D: Disk> Wal<D> {
    /// Opens the log in `dir` (creating it if needed) and reads every entry after
    /// `after_zxid`. A torn tail is cut; damage anywhere else is an error.
    pub fn open(disk: D, dir: &Path, options: WalOptions, after_zxid: i64) -> Result<(Wal<D>, Recovery), WalError> {
        disk.create_dir_all(dir).map_err(io("creating", dir))?;
        let segments = list_segments(&disk, dir)?;
        let (mut last_zxid, mut entries) = (0, Vec::new());
        let mut cut = None;
        let mut open_segment = None;
        let last = segments.len().saturating_sub(1);
        for (i, (_, path)) in segments.into_iter().enumerate() {
            let data = disk.read(&path).map_err(io("reading", &path))?;
            let mut batches = Vec::new();
            let scan = scan_segment(&path, &data, &mut last_zxid, &mut batches)?;
            // Entries a snapshot already holds are checked, not copied.
            let unapplied = batches.into_iter().flat_map(|b| b.entries).filter(|(zxid, _)| *zxid > after_zxid);
            entries.extend(unapplied.map(|(zxid, payload)| (zxid, payload.to_vec())));
            let end = match scan {
                Scan::Clean { end } => end,
                Scan::Torn { end, bytes } if i == last => {
                    let mut file = disk.open(&path).map_err(io("opening", &path))?;
                    file.set_len(end).map_err(io("cutting the torn tail of", &path))?;
                    file.sync().map_err(io("cutting the torn tail of", &path))?;
                    tracing::warn!(file = %path.display(), offset = end, bytes, "cut a torn write from the end of the log");
                    cut = Some(TailCut { file: path.clone(), offset: end, bytes });
                    end
                }
                Scan::Torn { end, .. } => {
                    return Err(WalError::Corrupt {
                        path,
                        offset: end,
                        reason: "damaged batch before the last segment".into(),
                    })
                }
            };
            if i == last && end == HEADER_BYTES {
                // Not a batch in it (a crash before its first fsync): it goes, as the next
                // zxid may be below its name, and no zxid in a segment may be.
                disk.remove(&path).map_err(io("removing", &path))?;
            } else if i == last && end < options.segment_bytes {
                // Appends continue in the last segment while it has room.
                let file = disk.open(&path).map_err(io("opening", &path))?;
                open_segment = Some(Segment { file, path, end });
            }
        }
        let wal = Wal { disk, dir: dir.to_owned(), options, segment: open_segment, last_zxid };
        Ok((wal, Recovery { entries, cut, last_zxid }))
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    fn roll(&mut self, first_zxid: i64) -> Result<(), WalError> {
        // Only the last segment may have a torn tail, even with fsync off.
        if let Some(old) = self.segment.as_mut() {
            old.file.sync().map_err(io("fsyncing", &old.path))?;
        }
        self.publish(self.dir.join(segment_name(first_zxid)), &encode_header(first_zxid))
    }

    /// Makes `contents` (a header and whole batches) the segment at `path`, atomically and
    /// durably, replacing any file there, and appends after them.
    fn publish(&mut self, path: PathBuf, contents: &[u8]) -> Result<(), WalError> {
        self.disk.write_atomic(&path, contents).map_err(io("writing", &path))?;
        let mut file = self.disk.open(&path).map_err(io("opening", &path))?;
        let end = contents.len() as u64;
        let preallocated = end.max(HEADER_BYTES + self.options.preallocate_bytes);
        file.set_len(preallocated).map_err(io("preallocating", &path))?;
        self.segment = Some(Segment { file, path, end });
        Ok(())
    }

    /// Durably removes every entry after `zxid` (a follower dropping what the leader does
    /// not have); appends continue after the last entry kept, which [`Wal::last_zxid`]
    /// then returns (0 if none is). A `zxid` at or after the last entry changes nothing.
    ///
    /// Segments that start after `zxid` are removed, newest first; then the segment
    /// holding the cut point, if it holds anything after `zxid`, is rewritten without it
    /// and atomically replaces the old one (a batch split by the cut is re-encoded with the
    /// entries up to `zxid`). So a crash, or an error, leaves either the result or the old
    /// log without some of its newest segments: a prefix of the old log, holding every
    /// entry up to `zxid`, which recovery reads as valid. Call it again after a restart or
    /// an error before appending.
    pub fn truncate_after(&mut self, zxid: i64) -> Result<(), WalError> {
        if zxid >= self.last_zxid {
            return Ok(());
        }
        // Its file is about to be removed or replaced; appends reopen the survivor.
        self.segment = None;
        for (first, path) in list_segments(&self.disk, &self.dir)?.into_iter().rev() {
            // A segment holds no zxid below its name, so those after `zxid` go whole.
            if first <= zxid {
                if let Some(last_kept) = self.cut_segment(path.clone(), zxid)? {
                    self.last_zxid = last_kept;
                    return Ok(());
                }
            }
            self.disk.remove(&path).map_err(io("removing", &path))?;
        }
        self.last_zxid = 0;
        Ok(())
    }

    /// Cuts the segment at `path` after `zxid` and appends after what it keeps: the last
    /// zxid kept, or `None` if it keeps nothing (and must go).
    fn cut_segment(&mut self, path: PathBuf, zxid: i64) -> Result<Option<i64>, WalError> {
        let data = self.disk.read(&path).map_err(io("reading", &path))?;
        let mut batches = Vec::new();
        let (end, clean) = match scan_segment(&path, &data, &mut 0, &mut batches)? {
            Scan::Clean { end } => (end, true),
            // A write that failed and was not repaired; nothing of it is kept.
            Scan::Torn { end, .. } => (end, false),
        };
        // Zxids increase through the segment (the scan checked), so what is kept is a prefix.
        let zxids = batches.iter().flat_map(|b| &b.entries).map(|(z, _)| *z);
        let Some(last_kept) = zxids.take_while(|z| *z <= zxid).last() else { return Ok(None) };
        let whole = batches.iter().take_while(|b| b.entries.iter().all(|(z, _)| *z <= zxid)).count();
        let (kept_bytes, split): (usize, Vec<(i64, &[u8])>) = match batches.get(whole) {
            None if clean => {
                let file = self.disk.open(&path).map_err(io("opening", &path))?;
                self.segment = Some(Segment { file, path, end });
                return Ok(Some(last_kept));
            }
            None => (end as usize, Vec::new()),
            Some(b) => (b.at, b.entries.iter().copied().take_while(|(z, _)| *z <= zxid).collect()),
        };
        // The whole batches are kept byte for byte. A crash before the rename leaves the old
        // file (and a temporary one, which is not a segment).
        let mut contents = data[..kept_bytes].to_vec();
        if !split.is_empty() {
            contents.extend_from_slice(&encode_batch(&split));
        }
        self.publish(path, &contents)?;
        Ok(Some(last_kept))
    }

    /// Discards the whole log, which a snapshot at `after_zxid` replaces (a follower that
    /// received the leader's snapshot): every segment is removed, newest first, the next
    /// append starts a new one, and [`Wal::last_zxid`] returns `after_zxid`.
    ///
    /// A crash or an error midway leaves the oldest segments, a prefix of the old log, and
    /// [`Wal::open`] with `after_zxid` skips what of it the snapshot holds. So that none of
    /// it can be replayed over the snapshot, a log that may hold entries after `after_zxid`
    /// must be cut with [`Wal::truncate_after`] before the snapshot is written.
    pub fn reset(&mut self, after_zxid: i64) -> Result<(), WalError> {
        // Every segment holds zxids above the minimum: all go, newest first.
        self.truncate_after(i64::MIN)?;
        self.last_zxid = after_zxid;
        Ok(())
    }

    /// Appends one batch and makes it durable (unless fsync is off). On error nothing of the
    /// batch counts: call [`Wal::repair`] before appending again.
    pub fn append(&mut self, entries: &[(i64, Vec<u8>)]) -> Result<(), WalError> {
        let Some((first, _)) = entries.first() else { return Ok(()) };
        if self.segment.as_ref().is_none_or(|s| s.end >= self.options.segment_bytes) {
            self.roll(*first)?;
        }
        let batch = encode_batch(entries);
        let force_sync = self.options.force_sync;
        let Some(segment) = self.segment.as_mut() else { unreachable!("rolled above") };
        segment.file.write_at(segment.end, &batch).map_err(io("writing", &segment.path))?;
        if force_sync {
            segment.file.sync().map_err(io("fsyncing", &segment.path))?;
        }
        segment.end += batch.len() as u64;
        self.last_zxid = entries.last().map_or(self.last_zxid, |(z, _)| *z);
        Ok(())
    }

    /// Checks that `bytes` can be written and made durable in the log's directory (a file
    /// written, fsynced and removed), so that a log that failed is not called healthy again
    /// while its disk is still full or failing.
    pub fn probe(&self, bytes: usize) -> Result<(), WalError> {
        let path = self.dir.join("probe");
        let written = self.disk.write_atomic(&path, &vec![0; bytes]).map_err(io("probing", &path));
        let _ = self.disk.remove(&path);
        written
    }

    /// After a failed append: removes whatever part of the failed batch reached the file
    /// and closes the segment, so that the failed entries can never reappear and the next
    /// append starts a fresh segment.
    pub fn repair(&mut self) -> Result<(), WalError> {
        if let Some(segment) = self.segment.as_mut() {
            if segment.end == HEADER_BYTES {
                // Nothing in it but the failed batch: it goes, as at recovery.
                self.disk.remove(&segment.path).map_err(io("repairing", &segment.path))?;
            } else {
                segment.file.set_len(segment.end).map_err(io("repairing", &segment.path))?;
                segment.file.sync().map_err(io("repairing", &segment.path))?;
            }
        }
        // Only once the file is clean: a failed repair keeps the segment for the next try.
        self.segment = None;
        Ok(())
    }
}
