//! Reading an Apache ZooKeeper 3.8 data directory (`version-2/`): its newest snapshot, then
//! the transactions logged after it, into ZooKeeper's state (tree, ACLs, Stats, sessions)
//! as it would be after a restart. Every checksum is verified; damage is an error that names
//! the file and offset, never skipped.
//!
//! Which files, as ZooKeeper's `FileTxnSnapLog.restore` picks them: the newest snapshot that
//! is complete (one cut short by a crash is skipped, as ZooKeeper skips it; one that is
//! complete but does not verify is refused), then the log file that starts at or before the
//! snapshot's zxid and every later one. Zxids must follow on without a gap (within an
//! epoch), so logs that were purged or kept elsewhere are noticed.

pub mod password;
pub mod snapshot;
pub mod state;
pub mod txnlog;

use state::State;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Damage found while parsing one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub offset: u64,
    pub reason: String,
}

impl Damage {
    pub fn new(offset: u64, reason: impl Into<String>) -> Damage {
        Damage { offset, reason: reason.into() }
    }
}

#[derive(Debug, Error)]
pub enum ZkError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: damaged at byte {offset}: {reason}", path.display())]
    Damaged { path: PathBuf, offset: u64, reason: String },
    #[error("{0}")]
    Unusable(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ZkError + '_ {
    move |source| ZkError::Io { path: path.to_owned(), source }
}

fn damaged(path: &Path) -> impl FnOnce(Damage) -> ZkError + '_ {
    move |d| ZkError::Damaged { path: path.to_owned(), offset: d.offset, reason: d.reason }
}

/// ZooKeeper's files named `<prefix>.<zxid in hex>[.<suffix>]` in `dir`, by zxid.
fn list(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf, Option<String>)>, ZkError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let name = entry.map_err(io(dir))?.file_name().to_string_lossy().into_owned();
        let mut parts = name.splitn(3, '.');
        if parts.next() != Some(prefix) {
            continue;
        }
        let Some(zxid) = parts.next().and_then(|hex| u64::from_str_radix(hex, 16).ok()) else { continue };
        found.push((zxid as i64, dir.join(&name), parts.next().map(str::to_owned)));
    }
    found.sort();
    Ok(found)
}

/// What an import read.
#[derive(Debug)]
pub struct Loaded {
    pub state: State,
    pub snapshot: PathBuf,
    pub snapshot_zxid: i64,
    pub logs: Vec<PathBuf>,
    pub txns: usize,
    /// Log files that ended in a torn (partial) record, with its offset.
    pub torn: Vec<(PathBuf, u64)>,
}

/// Whether `next` may follow `last`: the next counter of the same epoch, or a later epoch
/// (a new leader's first zxids skip ahead).
fn follows(last: i64, next: i64) -> bool {
    next == last + 1 || (next >> 32) > (last >> 32)
}

/// Loads ZooKeeper's state from the `version-2` directories holding its snapshots and logs.
pub fn load(snap_dir: &Path, log_dir: &Path) -> Result<Loaded, ZkError> {
    let snapshots = list(snap_dir, "snapshot")?;
    if snapshots.is_empty() {
        return Err(ZkError::Unusable(format!("no ZooKeeper snapshot (snapshot.*) in {}", snap_dir.display())));
    }
    let mut chosen = None;
    for (zxid, path, suffix) in snapshots.into_iter().rev() {
        let raw = std::fs::read(&path).map_err(io(&path))?;
        let bytes = match suffix.as_deref() {
            None => raw,
            // zookeeper.snapshot.compression.method=gz: Java's GZIPOutputStream, one member.
            Some("gz") => {
                let mut plain = Vec::new();
                match std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut plain) {
                    Ok(_) => plain,
                    // Cut short by a crash: ZooKeeper fails to read it and takes the previous one.
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Vec::new(),
                    Err(e) => return Err(ZkError::Damaged { path, offset: 0, reason: format!("gzip: {e}") }),
                }
            }
            Some(other) => {
                return Err(ZkError::Unusable(format!(
                    "{}: .{other} snapshots are not supported; restart ZooKeeper once with \
                     zookeeper.snapshot.compression.method unset (or gz) so that it writes one Warren reads",
                    path.display()
                )))
            }
        };
        if !snapshot::looks_complete(&bytes) {
            tracing::warn!(file = %path.display(), "incomplete snapshot skipped (ZooKeeper skips it too)");
            continue;
        }
        let state = snapshot::parse(&bytes, zxid).map_err(damaged(&path))?;
        chosen = Some((zxid, path, state));
        break;
    }
    let Some((snapshot_zxid, snapshot, mut state)) = chosen else {
        return Err(ZkError::Unusable(format!("no complete ZooKeeper snapshot in {}", snap_dir.display())));
    };
    tracing::info!(file = %snapshot.display(), zxid = format_args!("{snapshot_zxid:#x}"), nodes = state.nodes.len(), "read ZooKeeper snapshot");
    let all_logs = list(log_dir, "log")?;
    // Past its first snapshot ZooKeeper always has a log; none here means it is elsewhere,
    // and importing the snapshot alone would silently lose what came after it.
    if all_logs.is_empty() && snapshot_zxid != 0 {
        return Err(ZkError::Unusable(format!(
            "no ZooKeeper transaction logs (log.*) in {}: pass ZooKeeper's dataLogDir with --log-dir",
            log_dir.display()
        )));
    }
    // The last log starting at or before the snapshot holds its next transaction.
    let start = all_logs.iter().filter(|(z, _, _)| *z <= snapshot_zxid).map(|(z, _, _)| *z).max().unwrap_or(0);
    let mut loaded =
        Loaded { state: State::default(), snapshot, snapshot_zxid, logs: Vec::new(), txns: 0, torn: Vec::new() };
    for (_, path, _) in all_logs.into_iter().filter(|(z, _, _)| *z >= start) {
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let log = txnlog::parse(&bytes).map_err(damaged(&path))?;
        if let Some(offset) = log.torn_at {
            tracing::warn!(file = %path.display(), offset, "the log ends in a partial record (a write cut short by a crash); ZooKeeper ignores it too");
            loaded.torn.push((path.clone(), offset));
        }
        for txn in &log.txns {
            if txn.zxid <= state.zxid {
                continue;
            }
            if !follows(state.zxid, txn.zxid) {
                return Err(ZkError::Unusable(format!(
                    "{}: transactions {:#x} to {:#x} are missing (purged, or in another log directory: --log-dir)",
                    path.display(),
                    state.zxid + 1,
                    txn.zxid - 1
                )));
            }
            state.apply(txn);
            loaded.txns += 1;
        }
        loaded.logs.push(path);
    }
    loaded.state = state;
    Ok(loaded)
}

/// The `version-2` directory of a ZooKeeper data directory, or the directory itself when
/// it is one.
pub fn version_dir(dir: &Path) -> PathBuf {
    let inner = dir.join("version-2");
    if inner.is_dir() {
        inner
    } else {
        dir.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::txnlog::tests::{create, log_file};
    use super::*;

    fn dir_with(files: &[(&str, Vec<u8>)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("version-2");
        std::fs::create_dir(&v2).unwrap();
        for (name, bytes) in files {
            std::fs::write(v2.join(name), bytes).unwrap();
        }
        dir
    }

    #[test]
    fn the_newest_snapshot_and_the_logs_after_it() {
        let snap = snapshot::tests::snapshot_file();
        let dir = dir_with(&[
            ("snapshot.1", b"junk that is not a snapshot".to_vec()),
            ("snapshot.20", snap.clone()),
            // Incomplete: skipped as ZooKeeper skips it.
            ("snapshot.30", snap[..snap.len() - 3].to_vec()),
            ("log.1", log_file(&[create(1, 0x1f, "/old", b"", false, 1), create(1, 0x20, "/old2", b"", false, 2)])),
            ("log.21", log_file(&[create(1, 0x21, "/b", b"new", false, 5), create(1, 0x22, "/b/c", b"", false, 1)])),
        ]);
        let v2 = version_dir(dir.path());
        let loaded = load(&v2, &v2).unwrap();
        assert_eq!(loaded.snapshot_zxid, 0x20);
        assert_eq!(loaded.txns, 2);
        assert_eq!(loaded.state.zxid, 0x22);
        assert_eq!(loaded.logs, vec![v2.join("log.1"), v2.join("log.21")]);
        assert!(!loaded.state.nodes.contains_key("/old"), "transactions in the snapshot are not replayed");
        assert_eq!(loaded.state.nodes["/b"].data.as_deref(), Some(&b"new"[..]));
        assert_eq!(loaded.state.nodes["/"].meta.child_creates, 5);
    }

    /// `testdata/` was written by real ZooKeeper 3.8 (`testdata/make.py`), which also
    /// recorded what it served then: every node's data, Stat and ACL, its last zxid, and the
    /// id and password of the session that owns an ephemeral.
    #[test]
    fn a_real_zookeeper_directory_reads_as_zookeeper_served_it() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/zookeeper/testdata");
        let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
        let v2 = version_dir(&dir);
        let loaded = load(&v2, &v2).unwrap();
        assert_eq!(loaded.state.zxid, expected["last_zxid"].as_i64().unwrap());
        assert!(loaded.snapshot_zxid < loaded.state.zxid && loaded.txns > 0, "a snapshot and a log tail");
        let session = expected["session"][0].as_i64().unwrap();
        let password: String = password::session_password(session).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(password, expected["session"][1].as_str().unwrap(), "ZooKeeper's password for {session:#x}");
        let (tree, sessions) = loaded.state.into_warren().unwrap();
        assert!(sessions.iter().any(|s| s.0 == session && s.2 == 30_000), "{sessions:?}");
        let nodes = expected["nodes"].as_object().unwrap();
        assert_eq!(tree.node_count(), nodes.len());
        for (path, want) in nodes {
            let node = tree.node(path).unwrap_or_else(|| panic!("{path} missing"));
            let s = node.stat();
            let stat = [
                s.czxid,
                s.mzxid,
                s.ctime,
                s.mtime,
                s.version.into(),
                s.cversion.into(),
                s.aversion.into(),
                s.ephemeral_owner,
                s.data_length.into(),
                s.num_children.into(),
                s.pzxid,
            ];
            let want_stat: Vec<i64> = want["stat"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(stat.to_vec(), want_stat, "Stat of {path}");
            let data = node.data().map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>());
            assert_eq!(data.as_deref(), want["data"].as_str(), "data of {path}");
            let acl: Vec<serde_json::Value> = node
                .acl()
                .iter()
                .map(|a| serde_json::json!([a.perms, a.id.scheme, a.id.id.as_deref().unwrap_or("")]))
                .collect();
            assert_eq!(&serde_json::Value::from(acl), &want["acl"], "ACL of {path}");
        }
    }

    #[test]
    fn damage_to_real_files_is_refused_and_never_panics() {
        let v2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/zookeeper/testdata/version-2");
        for (name, is_snapshot) in [("snapshot.1b", true), ("log.17", false)] {
            let bytes = std::fs::read(v2.join(name)).unwrap();
            // What a file yields: its nodes, or its transactions.
            let parse = |b: &[u8]| match is_snapshot {
                true => snapshot::parse(b, 0x1b).map(|state| state.nodes.len()),
                false => txnlog::parse(b).map(|log| log.txns.len()),
            };
            let whole = parse(&bytes).unwrap();
            // The log's header holds an unchecked dbid (bytes 8 to 16), as in ZooKeeper.
            let checked = if is_snapshot { 0 } else { 16 };
            for i in 0..bytes.len() {
                let mut flipped = bytes.clone();
                flipped[i] ^= 0x20;
                let _ = parse(&bytes[..i]);
                // A log whose length field now runs past its end reads as a torn tail: fewer
                // transactions, as ZooKeeper would read it; anything else is refused.
                let read = parse(&flipped);
                assert!(i < checked || read.as_ref().map_or(true, |n| *n < whole), "{name}: flip at {i}: {read:?}");
            }
        }
    }

    #[test]
    fn logs_kept_elsewhere_are_asked_for() {
        let dir = dir_with(&[("snapshot.20", snapshot::tests::snapshot_file())]);
        let v2 = version_dir(dir.path());
        let err = load(&v2, &v2).unwrap_err().to_string();
        assert!(err.contains("--log-dir"), "{err}");
    }

    #[test]
    fn gzip_snapshots_are_read_and_snappy_ones_refused() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&snapshot::tests::snapshot_file()).unwrap();
        let gz = gz.finish().unwrap();
        let log = log_file(&[create(1, 0x21, "/b", b"", false, 5)]);
        let dir = dir_with(&[("snapshot.20.gz", gz.clone()), ("log.21", log.clone())]);
        let v2 = version_dir(dir.path());
        let loaded = load(&v2, &v2).unwrap();
        assert_eq!((loaded.snapshot_zxid, loaded.state.zxid, loaded.state.nodes.len()), (0x20, 0x21, 4));
        // A newer one cut short by a crash is skipped, as ZooKeeper skips it.
        std::fs::write(v2.join("snapshot.21.gz"), &gz[..gz.len() / 2]).unwrap();
        assert_eq!(load(&v2, &v2).unwrap().snapshot_zxid, 0x20);
        let dir = dir_with(&[("snapshot.20.snappy", gz), ("log.21", log)]);
        let v2 = version_dir(dir.path());
        assert!(load(&v2, &v2).unwrap_err().to_string().contains(".snappy snapshots are not supported"));
    }

    #[test]
    fn a_gap_after_the_snapshot_is_refused() {
        let dir = dir_with(&[
            ("snapshot.20", snapshot::tests::snapshot_file()),
            ("log.23", log_file(&[create(1, 0x23, "/b", b"", false, 5)])),
        ]);
        let v2 = version_dir(dir.path());
        let err = load(&v2, &v2).unwrap_err().to_string();
        assert!(err.contains("0x21 to 0x22 are missing"), "{err}");
    }

    #[test]
    fn a_damaged_snapshot_is_refused_with_its_name() {
        let mut snap = snapshot::tests::snapshot_file();
        snap[40] ^= 0x40;
        let dir = dir_with(&[("snapshot.20", snap)]);
        let v2 = version_dir(dir.path());
        let err = load(&v2, &v2).unwrap_err().to_string();
        assert!(err.contains("snapshot.20: damaged at byte"), "{err}");
    }
}
