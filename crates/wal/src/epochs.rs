//! The ZAB epochs a server keeps across restarts, stored as ZooKeeper stores them: files
//! `acceptedEpoch` and `currentEpoch`, each holding its number in decimal text.

use crate::disk::Disk;
use crate::log::{io, WalError};
use std::path::Path;

const ACCEPTED: &str = "acceptedEpoch";
const CURRENT: &str = "currentEpoch";

/// The newest epoch this server accepted from a prospective leader, and the newest it
/// acknowledged as established (never above `accepted`). Both 0 on a server that never
/// took part in one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Epochs {
    pub accepted: u32,
    pub current: u32,
}

/// Reads the epochs kept in `dir`; a missing file reads as 0.
pub fn read<D: Disk>(disk: &D, dir: &Path) -> Result<Epochs, WalError> {
    let epochs =
        Epochs { accepted: read_one(disk, &dir.join(ACCEPTED))?, current: read_one(disk, &dir.join(CURRENT))? };
    // `write` never leaves this behind (ZooKeeper refuses to start on it too).
    if epochs.current > epochs.accepted {
        return Err(WalError::Corrupt {
            path: dir.join(CURRENT),
            offset: 0,
            reason: format!("current epoch {} is above the accepted epoch {}", epochs.current, epochs.accepted),
        });
    }
    Ok(epochs)
}

fn read_one<D: Disk>(disk: &D, path: &Path) -> Result<u32, WalError> {
    let bytes = match disk.read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io("reading", path)(e)),
    };
    // ZooKeeper writes no line end, but its reader takes one.
    let text = std::str::from_utf8(&bytes).ok().map(|t| t.trim_end_matches(['\n', '\r']));
    text.and_then(|t| t.parse().ok()).ok_or_else(|| WalError::Corrupt {
        path: path.to_owned(),
        offset: 0,
        reason: "not an epoch (a decimal number below 2^32)".into(),
    })
}

/// Keeps `epochs` in `dir`, each file replaced atomically and durably. `acceptedEpoch` is
/// written first, so that, as the accepted epoch never decreases, a crash between the two
/// cannot leave the current epoch above it.
pub fn write<D: Disk>(disk: &D, dir: &Path, epochs: Epochs) -> Result<(), WalError> {
    disk.create_dir_all(dir).map_err(io("creating", dir))?;
    for (name, epoch) in [(ACCEPTED, epochs.accepted), (CURRENT, epochs.current)] {
        let path = dir.join(name);
        disk.write_atomic(&path, epoch.to_string().as_bytes()).map_err(io("writing", &path))?;
    }
    Ok(())
}
