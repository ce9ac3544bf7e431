//! Durability around the pure replica: recovery at start-up, and the disk thread that
//! writes the replica's transactions to the log with group commit.
//!
//! The disk thread takes every batch the driver has sent since its last fsync and writes
//! them as one log batch with one fsync, so concurrent writes share the cost of the fsync.
//! It reports `Logged(zxid)` after each fsync; the replica applies and answers writes only
//! then. If a write or fsync fails, it reports the failure (the replica fails the pending
//! writes and refuses new ones), repairs the log, and reports it healthy again.

use crate::driver::ToDriver;
use crate::metrics::Metrics;
use crate::Config;
use proto::Record;
use replica::{Replica, SnapshotPart};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;
use tree::Txn;
use wal::snapshot::{self, SnapshotWriter};
use wal::{Disk, OsDisk, Wal, WalError, WalOptions};

#[derive(Debug, Error)]
pub enum RecoverError {
    #[error("transaction log: {0}")]
    Wal(#[from] WalError),
    #[error("transaction log: entry {zxid:#x} does not decode: {reason}")]
    Decode { zxid: i64, reason: String },
    #[error("transaction log: the transactions between {after:#x} and {first:#x} are missing")]
    Gap { after: i64, first: i64 },
    #[error("reading the transaction log failed unexpectedly")]
    Panicked,
}

/// What a failed log must be able to write again before it takes writes.
const PROBE_BYTES: usize = 256 << 10;

/// Work for the disk thread, done in the order sent.
pub(crate) enum LogJob {
    /// Log entries, all prepared under one log generation.
    Append { generation: u64, entries: Vec<(i64, Vec<u8>)> },
    /// In an ensemble: the leader said to drop everything after `after`; `done` hears when
    /// that is durable.
    Truncate { after: i64, done: std::sync::mpsc::Sender<()> },
    /// In an ensemble: a snapshot from the leader at `after` replaces the whole log.
    Reset { after: i64 },
}

/// What recovery found: the log, opened for appending, and in an ensemble the entries
/// after the snapshot (they are ZAB's to commit, not yet applied) and the snapshot itself.
pub(crate) struct Recovered {
    pub wal: Wal<OsDisk>,
    pub unapplied: Vec<(i64, Vec<u8>)>,
    pub snapshot: Option<(i64, Vec<u8>)>,
}

pub fn log_dir(config: &Config) -> PathBuf {
    config.data_log_dir.join("warren").join("log")
}

pub fn snapshot_dir(config: &Config) -> PathBuf {
    state_dir(config).join("snapshot")
}

/// Warren's part of `dataDir`: snapshots, and in an ensemble the epoch files.
pub fn state_dir(config: &Config) -> PathBuf {
    config.data_dir.join("warren")
}

fn wal_options(config: &Config) -> WalOptions {
    WalOptions {
        force_sync: config.force_sync,
        preallocate_bytes: config.preallocate_bytes,
        segment_bytes: config.preallocate_bytes.max(1 << 20),
    }
}

/// Loads the newest snapshot that verifies (setting damaged ones aside), then replays the
/// log after it. In an ensemble the log is not replayed: it may hold proposals that were
/// never committed, which the leader may cut (TRUNC); ZAB delivers what commits.
pub(crate) fn recover(config: &Config, replica: &mut Replica) -> Result<Recovered, RecoverError> {
    let ensemble = config.ensemble.is_some();
    let started = Instant::now();
    snapshot::remove_unfinished(&OsDisk, &snapshot_dir(config))?;
    let snapshots = snapshot::list(&OsDisk, &snapshot_dir(config))?;
    let dir = log_dir(config);
    // The log is read on another core while the newest snapshot loads.
    let newest = snapshots.first().map_or(0, |(zxid, _)| *zxid);
    let reading = {
        let (dir, options) = (dir.clone(), wal_options(config));
        std::thread::spawn(move || Wal::open(OsDisk, &dir, options, newest))
    };
    let mut loaded_snapshot = None;
    for (zxid, path) in snapshots {
        let loaded = match snapshot::read_verified(&OsDisk, &path) {
            Ok(snapshot) => {
                replica.restore_snapshot(zxid, snapshot.chunks()).map(|()| snapshot).map_err(|e| e.to_string())
            }
            Err(WalError::Corrupt { offset, reason, .. }) => Err(format!("{reason} at byte {offset}")),
            Err(e) => return Err(e.into()),
        };
        match loaded {
            Ok(snapshot) => {
                tracing::info!(file = %path.display(), zxid = format_args!("{zxid:#x}"), nodes = replica.tree().node_count(), "loaded snapshot");
                // ZAB sends it to followers behind its log.
                loaded_snapshot = ensemble.then(|| (zxid, snapshot.into_file()));
                break;
            }
            Err(reason) => {
                let aside = snapshot::set_aside(&OsDisk, &path)?;
                tracing::error!(file = %path.display(), reason, renamed = %aside.display(), "damaged snapshot set aside; trying the previous one");
            }
        }
    }
    let snapshot_ms = started.elapsed().as_millis() as u64;
    let after = replica.applied_zxid();
    let (wal, recovery) = reading.join().map_err(|_| RecoverError::Panicked)??;
    // A damaged newest snapshot means replaying from an older point.
    let (wal, recovery) = if after == newest {
        (wal, recovery)
    } else {
        drop(wal);
        Wal::open(OsDisk, &dir, wal_options(config), after)?
    };
    // Each entry follows the one before it: the next zxid, or in an ensemble (whose log
    // spans epochs) the first of a later epoch.
    let mut previous = after;
    for &(zxid, _) in &recovery.entries {
        let next_epoch =
            ensemble && zab::epoch_of(zxid) > zab::epoch_of(previous) && zxid == zab::zxid(zab::epoch_of(zxid), 1);
        if zxid != previous + 1 && !next_epoch {
            return Err(RecoverError::Gap { after: previous, first: zxid });
        }
        previous = zxid;
    }
    let count = recovery.entries.len();
    if ensemble {
        tracing::info!(
            entries = count,
            zxid = format_args!("{:#x}", replica.applied_zxid()),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recovered the snapshot; the log waits for the ensemble"
        );
        return Ok(Recovered { wal, unapplied: recovery.entries, snapshot: loaded_snapshot });
    }
    let txns = recovery
        .entries
        .into_iter()
        .map(|(zxid, bytes)| Txn::from_bytes(&bytes).map_err(|e| RecoverError::Decode { zxid, reason: e.to_string() }))
        .collect::<Result<Vec<_>, _>>()?;
    replica.recover(txns);
    tracing::info!(
        transactions = count,
        zxid = format_args!("{:#x}", replica.applied_zxid()),
        sessions = replica.sessions().len(),
        snapshot_ms,
        elapsed_ms = started.elapsed().as_millis() as u64,
        dir = %dir.display(),
        "recovered"
    );
    if !config.force_sync {
        tracing::warn!(
            "forceSync=no: writes are acknowledged before they are on disk and may be lost in a power failure"
        );
    }
    Ok(Recovered { wal, unapplied: Vec::new(), snapshot: None })
}

/// Verifies a snapshot received from the leader and writes it into the snapshot directory.
pub(crate) fn install_snapshot(dir: &std::path::Path, zxid: i64, bytes: Vec<u8>) -> Result<snapshot::Snapshot, String> {
    let path = dir.join(snapshot::snapshot_name(zxid));
    let snapshot = snapshot::verify(&path, bytes).map_err(|e| e.to_string())?;
    OsDisk.create_dir_all(dir).map_err(|e| e.to_string())?;
    OsDisk.write_atomic(&path, snapshot.file()).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(snapshot)
}

/// Runs the disk thread until the driver goes away.
pub(crate) fn spawn_disk_thread(
    mut wal: Wal<OsDisk>,
    jobs: std::sync::mpsc::Receiver<LogJob>,
    driver: mpsc::Sender<ToDriver>,
    metrics: Arc<Metrics>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("warren-disk".into()).spawn(move || {
        // Jobs of this generation or older were prepared before a failure: they are void.
        let mut void_up_to: Option<u64> = None;
        let mut next: Option<LogJob> = None;
        while let Some(first) = next.take().or_else(|| jobs.recv().ok()) {
            let mut batch = Vec::new();
            let mut generation = 0;
            for job in std::iter::once(first).chain(std::iter::from_fn(|| jobs.try_recv().ok())) {
                match job {
                    LogJob::Append { generation: g, .. } if void_up_to.is_some_and(|void| g <= void) => {}
                    LogJob::Append { generation: g, entries } => {
                        generation = generation.max(g);
                        batch.extend(entries);
                    }
                    // The batch before it is written first.
                    other if !batch.is_empty() => {
                        next = Some(other);
                        break;
                    }
                    LogJob::Truncate { after, done } => {
                        cut(&mut wal, after, |w| w.truncate_after(after));
                        let _ = done.send(());
                    }
                    LogJob::Reset { after } => cut(&mut wal, after, |w| w.reset(after)),
                }
            }
            let Some(&(last, _)) = batch.last() else { continue };
            let started = Instant::now();
            let reply = match wal.append(&batch) {
                Ok(()) => {
                    metrics.observe_fsync(started.elapsed());
                    ToDriver::Logged { zxid: last }
                }
                Err(e) => {
                    tracing::error!(error = %e, "the transaction log failed: pending writes fail, new writes are refused");
                    void_up_to = Some(generation);
                    if driver.blocking_send(ToDriver::LogFailed { reason: e.to_string() }).is_err() {
                        return;
                    }
                    while let Err(e) = wal.repair() {
                        tracing::error!(error = %e, "repairing the transaction log failed; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    // Healthy only once a write of a batch's size goes through again.
                    let mut reported = false;
                    while let Err(e) = wal.probe(PROBE_BYTES) {
                        if !reported {
                            tracing::error!(error = %e, "the transaction log cannot write yet; writes are refused until it can");
                            reported = true;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    tracing::info!("the transaction log is healthy again");
                    ToDriver::LogHealthy
                }
            };
            if driver.blocking_send(reply).is_err() {
                return;
            }
        }
    })
}

/// Truncating or resetting the log for the leader: failing it would leave a history the
/// leader does not have, so the server leaves the ensemble instead.
fn cut(wal: &mut Wal<OsDisk>, after: i64, f: impl FnOnce(&mut Wal<OsDisk>) -> Result<(), WalError>) {
    match f(wal) {
        Ok(()) => tracing::info!(after = format_args!("{after:#x}"), "log cut for the leader"),
        Err(e) => {
            tracing::error!(error = %e, "cannot cut the log as the leader asks; leaving the ensemble");
            std::process::exit(1);
        }
    }
}

/// Snapshots are written at most this fast.
const SNAPSHOT_BYTES_PER_SECOND: u64 = 64 << 20;

/// Runs the snapshot thread: writes snapshot parts as they come, publishes each finished
/// snapshot, and purges old data when `autopurge.purgeInterval` says so. It never touches
/// the log's fsync path.
pub(crate) fn spawn_snapshot_thread(
    config: Arc<Config>,
    mut parts: mpsc::Receiver<SnapshotPart>,
    metrics: Arc<Metrics>,
    // In an ensemble: told of finished snapshots (see below).
    saved: Option<mpsc::Sender<ToDriver>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("warren-snapshot".into()).spawn(move || {
        let dir = snapshot_dir(&config);
        let mut writer: Option<(SnapshotWriter<OsDisk>, Instant)> = None;
        let mut last_purge = Instant::now();
        let mut written = 0u64;
        // ZAB's log is compacted to the snapshot before the newest, so that a follower a
        // little behind is still brought up by DIFF; only one further behind gets a SNAP.
        let mut previous: Option<(i64, PathBuf)> = None;
        while let Some(part) = parts.blocking_recv() {
            if part.first {
                if let Some((stale, _)) = writer.take() {
                    stale.abandon();
                }
                let created = if config.snapshot_zstd {
                    SnapshotWriter::create_zstd(OsDisk, &dir, part.zxid, 1)
                } else {
                    SnapshotWriter::create(OsDisk, &dir, part.zxid)
                };
                match created {
                    Ok(w) => writer = Some((w, Instant::now())),
                    Err(e) => tracing::error!(error = %e, "cannot start a snapshot"),
                }
            }
            let Some((w, started)) = writer.as_mut() else { continue };
            written += part.bytes.len() as u64;
            if part.first {
                written = part.bytes.len() as u64;
            }
            // Pace the snapshot so that it takes disk bandwidth (and, through the bounded
            // channel, the driver's time for serializing) from live writes only gently.
            let due = Duration::from_secs_f64(written as f64 / SNAPSHOT_BYTES_PER_SECOND as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            if let Err(e) = w.write_chunk(&part.bytes) {
                tracing::error!(error = %e, "snapshot failed");
                if let Some((w, _)) = writer.take() {
                    w.abandon();
                }
                continue;
            }
            if part.last {
                let Some((w, started)) = writer.take() else { continue };
                match w.finish() {
                    Ok((path, bytes)) => {
                        metrics.snapshot_time.observe(started.elapsed().as_secs_f64() * 1000.0);
                        tracing::info!(
                            file = %path.display(),
                            zxid = format_args!("{:#x}", part.zxid),
                            bytes,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "snapshot written"
                        );
                        if let (Some(driver), Some((zxid, older))) = (&saved, previous.replace((part.zxid, path))) {
                            match OsDisk.read(&older) {
                                Ok(bytes) => {
                                    let _ = driver.blocking_send(ToDriver::SnapshotSaved { zxid, bytes });
                                }
                                Err(e) => tracing::error!(error = %e, "cannot read back the snapshot"),
                            }
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "snapshot failed"),
                }
                let interval = Duration::from_secs(config.purge_interval_hours * 3600);
                if config.purge_interval_hours > 0 && last_purge.elapsed() >= interval {
                    last_purge = Instant::now();
                    purge(&config);
                }
            }
        }
    })
}

/// Deletes snapshots beyond `autopurge.snapRetainCount` and the log segments only they need.
pub fn purge(config: &Config) {
    match wal::purge(&OsDisk, &snapshot_dir(config), &log_dir(config), config.snap_retain_count) {
        Ok(purged) => {
            tracing::info!(snapshots = purged.snapshots.len(), segments = purged.segments.len(), "purged old data")
        }
        Err(e) => tracing::error!(error = %e, "purge failed"),
    }
}
