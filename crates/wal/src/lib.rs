//! Warren's storage: the write-ahead transaction log and the snapshot files, reached only
//! through the [`Disk`] trait so that tests can tear writes, fail fsyncs and fill the disk.
//!
//! This crate knows bytes and zxids, not transactions: callers hand it opaque payloads
//! keyed by zxid. It never panics on what it reads; damage is an error naming the file
//! and offset, except a torn tail, which is cut and reported.
//!
//! # Fault model
//!
//! A write that was not followed by a successful fsync may be lost, in whole or in part,
//! and its sectors may persist in any order. An fsynced write is never lost. Renames of
//! fsynced files are atomic once the directory is fsynced. Bits may flip at rest; every
//! record is checksummed so that this is detected, never served.
//!
//! # Log format
//!
//! The log is a sequence of segment files in one directory, named `log.<zxid>` after the
//! first zxid they hold (16 lowercase hex digits, so that names sort as zxids do).
//!
//! ```text
//! segment  = header batch* zero*
//! header   = magic "WARRENLG" | version u32 (1) | reserved u32 (0) | first zxid i64     (24 bytes)
//! batch    = length u32 | crc32c(length) u32 | crc32c(body) u32 | body                   (length = body bytes)
//! body     = count u32 | entry{count}
//! entry    = zxid i64 | length u32 | payload
//! ```
//!
//! All integers are big-endian. A batch is one group commit: everything written before one
//! fsync. Segments are preallocated (extended with zeros) so that appends do not change the
//! file size; a zero length marks the end of the written part.
//!
//! On recovery the first batch that is not whole and valid ends the log. If nothing but
//! zeros follows it, it was a torn write that was never acknowledged (acknowledgement waits
//! for the fsync): it is cut and reported. If anything else follows it, the log is damaged
//! in the middle, and recovery stops with an error naming the file and offset.
//!
//! # Snapshot format
//!
//! Snapshots live in their own directory, named `snapshot.<zxid>` after the last
//! transaction they contain (same hex form as log segments).
//!
//! ```text
//! snapshot = header chunk* end
//! header   = magic "WARRENSN" | version u32 (1) | flags u32 | zxid i64                      (24 bytes)
//! chunk    = length u32 (> 0) | crc32c(body) u32 | body
//! end      = 0 u32 | crc32c of the chunk checksums u32 | chunk count u64
//! ```
//!
//! Flags bit 0 means every chunk body is zstd-compressed (checksums cover the stored bytes).
//! Chunk bodies are opaque here (the replica's sessions, then the tree's nodes). A snapshot
//! is valid only if every chunk verifies and the end record matches; one that does not is
//! renamed `*.broken` (kept for inspection, never deleted) and the previous one is used.
//!
//! New files (segments, snapshots) are written under a temporary name, fsynced, renamed,
//! and the directory is fsynced, so a crash leaves either the whole file or none of it.

mod disk;
mod log;
pub mod mem;
mod purge;
pub mod snapshot;

pub use disk::{Disk, DiskFile, OsDisk};
pub use log::{Recovery, TailCut, Wal, WalError, WalOptions};
pub use purge::{purge, Purged};
