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
//! first zxid they hold (16 lowercase hex digits, so that names sort as zxids do). Zxids
//! increase through the log, but not by one: ZAB's `epoch << 32 | counter` jumps at each
//! new epoch. A segment holds no zxid below its name and none from the next segment's name
//! on; purging and truncation rely on that alone. So a segment left without a batch (a
//! crash or a failed write right after it was started) is removed by recovery and by
//! repair: the next zxid may be below its name.
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
//! A follower cuts the end of its log ([`Wal::truncate_after`]): the segments after the cut
//! are removed, newest first, then the segment holding it is rewritten with the batches
//! before it byte for byte and, if the cut splits a batch, that batch re-encoded with the
//! entries it keeps; the rewrite replaces the old segment atomically. A crash midway thus
//! leaves a prefix of the old log that holds every entry up to the cut, never a hole. A
//! follower sent a snapshot instead discards its whole log ([`Wal::reset`]), newest segment
//! first.
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
//! New and rewritten files (segments, snapshots) are written under a temporary name,
//! fsynced, renamed, and the directory is fsynced, so a crash leaves either the whole file
//! or none of it. Removals fsync the directory too.
//!
//! # Epochs
//!
//! A ZAB server's accepted and current epochs ([`epochs`]) are kept as ZooKeeper keeps
//! them: files `acceptedEpoch` and `currentEpoch` holding the number in decimal text (no
//! line end), each replaced atomically, `acceptedEpoch` first.

mod disk;
pub mod epochs;
mod log;
pub mod mem;
mod purge;
pub mod snapshot;

pub use disk::{Disk, DiskFile, OsDisk};
pub use log::{list_segments, parse_segment_name, Recovery, TailCut, Wal, WalError, WalOptions};
pub use purge::{purge, Purged};
