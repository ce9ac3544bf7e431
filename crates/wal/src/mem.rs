//! An in-memory [`Disk`] with a fault model, for tests and the simulator: writes are
//! volatile until fsynced, a crash keeps only what was fsynced (optionally plus a torn part
//! of what was not), fsyncs and writes can be made to fail, and the disk can be stopped
//! after any number of changes (a crash in the middle of a multi-step operation).

use crate::disk::{Disk, DiskFile};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A change not yet fsynced.
#[derive(Debug, Clone)]
enum Unsynced {
    Write { offset: usize, bytes: Vec<u8> },
    SetLen(usize),
}

#[derive(Debug, Default, Clone)]
struct FileState {
    /// What survives a crash.
    durable: Vec<u8>,
    /// Changes since the last fsync, in order.
    unsynced: Vec<Unsynced>,
    /// What readers see now: `durable` with `unsynced` applied.
    current: Vec<u8>,
}

fn write_into(file: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if file.len() < end {
        file.resize(end, 0);
    }
    file[offset..end].copy_from_slice(bytes);
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<PathBuf, FileState>,
    fail_syncs: usize,
    /// Writes beyond this many bytes of file size fail with "no space left".
    space_bytes: Option<u64>,
    /// Changes the disk still takes before it fails them all (see [`MemDisk::stop_after`]).
    changes_left: Option<usize>,
}

impl State {
    /// Counts one change (a write, size change, fsync, creation, rename or removal).
    fn change(&mut self) -> io::Result<()> {
        match &mut self.changes_left {
            Some(0) => Err(io::Error::other("injected crash: the disk takes no more changes")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// Shared handle: clones see the same disk, as processes restarting on one machine do.
#[derive(Debug, Default, Clone)]
pub struct MemDisk {
    state: Arc<Mutex<State>>,
}

impl MemDisk {
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next `n` fsyncs fail.
    pub fn fail_syncs(&self, n: usize) {
        self.lock().fail_syncs = n;
    }

    /// Files may grow to at most `bytes` each; `None` lifts the limit.
    pub fn limit_space(&self, bytes: Option<u64>) {
        self.lock().space_bytes = bytes;
    }

    /// The disk takes `changes` more changes (writes, size changes, fsyncs, creations,
    /// renames, removals) and fails every later one, as if the machine died right there;
    /// [`MemDisk::crash`] then keeps what was durable, and lifts the limit.
    pub fn stop_after(&self, changes: usize) {
        self.lock().changes_left = Some(changes);
    }

    /// A power cut: every file falls back to what was fsynced.
    pub fn crash(&self) {
        let mut state = self.lock();
        state.changes_left = None;
        for f in state.files.values_mut() {
            f.unsynced.clear();
            f.current = f.durable.clone();
        }
    }

    /// A power cut in the middle of `path`'s unsynced writes: only their first `keep`
    /// bytes reached the disk (size changes before that point did too). Other files lose
    /// all their unsynced changes.
    pub fn crash_tearing(&self, path: &Path, keep: usize) {
        let mut state = self.lock();
        if let Some(f) = state.files.get_mut(path) {
            let mut budget = keep;
            for change in std::mem::take(&mut f.unsynced) {
                match change {
                    Unsynced::SetLen(len) => f.durable.resize(len, 0),
                    Unsynced::Write { offset, bytes } => {
                        let n = budget.min(bytes.len());
                        write_into(&mut f.durable, offset, &bytes[..n]);
                        budget -= n;
                    }
                }
                if budget == 0 {
                    break;
                }
            }
        }
        drop(state);
        self.crash();
    }

    /// Flips one bit of a file, durably (damage at rest).
    pub fn flip_bit(&self, path: &Path, offset: usize) {
        let mut state = self.lock();
        if let Some(f) = state.files.get_mut(path) {
            for bytes in [&mut f.durable, &mut f.current] {
                if let Some(b) = bytes.get_mut(offset) {
                    *b ^= 0x10;
                }
            }
        }
    }

    pub fn len(&self, path: &Path) -> Option<usize> {
        self.lock().files.get(path).map(|f| f.current.len())
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl Disk for MemDisk {
    type File = MemFile;

    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        Ok(state
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.lock().files.get(path).map(|f| f.current.clone()).ok_or_else(|| not_found(path))
    }

    fn write_atomic(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        state.change()?;
        if state.fail_syncs > 0 {
            state.fail_syncs -= 1;
            return Err(io::Error::other("injected fsync failure"));
        }
        if state.space_bytes.is_some_and(|max| contents.len() as u64 > max) {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"));
        }
        let file = FileState { durable: contents.to_vec(), unsynced: Vec::new(), current: contents.to_vec() };
        state.files.insert(path.to_owned(), file);
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<MemFile> {
        let mut state = self.lock();
        state.change()?;
        state.files.insert(path.to_owned(), FileState::default());
        Ok(MemFile { disk: self.clone(), path: path.to_owned() })
    }

    fn open(&self, path: &Path) -> io::Result<MemFile> {
        if !self.lock().files.contains_key(path) {
            return Err(not_found(path));
        }
        Ok(MemFile { disk: self.clone(), path: path.to_owned() })
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.change()?;
        let f = state.files.remove(from).ok_or_else(|| not_found(from))?;
        state.files.insert(to.to_owned(), f);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.change()?;
        state.files.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }
}

pub struct MemFile {
    disk: MemDisk,
    path: PathBuf,
}

impl DiskFile for MemFile {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.disk.lock();
        state.change()?;
        let end = offset as usize + bytes.len();
        if state.space_bytes.is_some_and(|max| end as u64 > max) {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"));
        }
        let f = state.files.get_mut(&self.path).ok_or_else(|| not_found(&self.path))?;
        write_into(&mut f.current, offset as usize, bytes);
        f.unsynced.push(Unsynced::Write { offset: offset as usize, bytes: bytes.to_vec() });
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.disk.lock();
        state.change()?;
        if state.fail_syncs > 0 {
            state.fail_syncs -= 1;
            return Err(io::Error::other("injected fsync failure"));
        }
        let f = state.files.get_mut(&self.path).ok_or_else(|| not_found(&self.path))?;
        f.durable = f.current.clone();
        f.unsynced.clear();
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.disk.lock();
        state.change()?;
        let f = state.files.get_mut(&self.path).ok_or_else(|| not_found(&self.path))?;
        f.current.resize(len as usize, 0);
        f.unsynced.push(Unsynced::SetLen(len as usize));
        Ok(())
    }
}
