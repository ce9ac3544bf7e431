//! Purging old data: keep the newest snapshots and the log segments needed to replay
//! from the oldest of them; delete the rest (ZooKeeper's `PurgeTxnLog`).

use crate::disk::Disk;
use crate::log::{io, list_segments, WalError};
use crate::snapshot;
use std::path::{Path, PathBuf};

/// What a purge deleted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub snapshots: Vec<PathBuf>,
    pub segments: Vec<PathBuf>,
}

/// Keeps the `retain` newest snapshots (at least one) and the log segments that hold any
/// transaction after the oldest of them. With no snapshot, nothing is deleted.
pub fn purge<D: Disk>(disk: &D, snapshot_dir: &Path, log_dir: &Path, retain: usize) -> Result<Purged, WalError> {
    let snapshots = snapshot::list(disk, snapshot_dir)?;
    let mut purged = Purged::default();
    let Some(&(oldest_kept, _)) = snapshots.get(retain.max(1) - 1).or(snapshots.last()) else { return Ok(purged) };
    for (_, path) in snapshots.iter().skip(retain.max(1)) {
        disk.remove(path).map_err(io("removing", path))?;
        purged.snapshots.push(path.clone());
    }
    // A segment holds zxids from its own first up to the next segment's first, exclusive,
    // so it holds none after the snapshot if the next starts at most one past it. Nothing
    // assumes the zxids in between are all there: they jump at each new epoch. (Saturating:
    // the snapshot's zxid comes from a file name.)
    let segments = list_segments(disk, log_dir)?;
    for pair in segments.windows(2) {
        let (_, path) = &pair[0];
        let (next_first, _) = pair[1];
        if next_first <= oldest_kept.saturating_add(1) {
            disk.remove(path).map_err(io("removing", path))?;
            purged.segments.push(path.clone());
        }
    }
    Ok(purged)
}
