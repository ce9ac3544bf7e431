//! The only way this crate touches storage.

use std::io;
use std::path::{Path, PathBuf};

/// A directory tree of files with explicit durability points.
pub trait Disk: Send + 'static {
    type File: DiskFile;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`, in no particular order.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates `path` holding `contents`, atomically and durably: a temporary file, fsync,
    /// rename, fsync of the directory.
    fn write_atomic(&self, path: &Path, contents: &[u8]) -> io::Result<()>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens an existing file for writing in place.
    fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// Renames durably (the directory is fsynced).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes durably (the directory is fsynced), so that a removed segment cannot come
    /// back after a crash behind entries appended since.
    fn remove(&self, path: &Path) -> io::Result<()>;
}

pub trait DiskFile: Send + 'static {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes every write so far durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Truncates or extends (with zeros) to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsDisk;

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Where a file is written before it is renamed into place: its name plus `.tmp` (not
/// `with_extension`, which would make every `snapshot.<zxid>` the same `snapshot.tmp`).
pub(crate) fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}.tmp"))
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

impl Disk for OsDisk {
    type File = std::fs::File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        std::fs::read_dir(dir)?.map(|e| Ok(e?.file_name().to_string_lossy().into_owned())).collect()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn write_atomic(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let tmp = crate::disk::temporary(path);
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(contents)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        sync_dir(&parent(path))
    }

    fn create(&self, path: &Path) -> io::Result<Self::File> {
        std::fs::File::create(path)
    }

    fn open(&self, path: &Path) -> io::Result<Self::File> {
        std::fs::OpenOptions::new().write(true).open(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)?;
        sync_dir(&parent(to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)?;
        sync_dir(&parent(path))
    }
}

impl DiskFile for std::fs::File {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, bytes, offset)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }
}
