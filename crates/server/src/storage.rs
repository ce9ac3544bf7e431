//! Durability around the pure replica: recovery at start-up, and the disk thread that
//! writes the replica's transactions to the log with group commit.
//!
//! The disk thread takes every batch the driver has sent since its last fsync and writes
//! them as one log batch with one fsync, so concurrent writes share the cost of the fsync.
//! It reports `Logged(zxid)` after each fsync; the replica applies and answers writes only
//! then. If a write or fsync fails, it reports the failure (the replica fails the pending
//! writes and refuses new ones), repairs the log, and reports it healthy again.

use crate::driver::ToDriver;
use crate::Config;
use proto::Record;
use replica::Replica;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::mpsc;
use tree::Txn;
use wal::{OsDisk, Wal, WalError, WalOptions};

#[derive(Debug, Error)]
pub enum RecoverError {
    #[error("transaction log: {0}")]
    Wal(#[from] WalError),
    #[error("transaction log: entry {zxid:#x} does not decode: {reason}")]
    Decode { zxid: i64, reason: String },
}

/// Transactions for the disk thread, all prepared under one log generation.
pub(crate) struct LogJob {
    pub generation: u64,
    pub txns: Vec<Txn>,
}

pub(crate) fn log_dir(config: &Config) -> PathBuf {
    config.data_log_dir.join("warren").join("log")
}

fn wal_options(config: &Config) -> WalOptions {
    WalOptions {
        force_sync: config.force_sync,
        preallocate_bytes: config.preallocate_bytes,
        segment_bytes: config.preallocate_bytes.max(1 << 20),
    }
}

/// Reads the log and replays it into a fresh replica.
pub(crate) fn recover(config: &Config, replica: &mut Replica) -> Result<Wal<OsDisk>, RecoverError> {
    let started = Instant::now();
    let dir = log_dir(config);
    let (wal, recovery) = Wal::open(OsDisk, &dir, wal_options(config), 0)?;
    let count = recovery.entries.len();
    let txns = recovery
        .entries
        .into_iter()
        .map(|(zxid, bytes)| Txn::from_bytes(&bytes).map_err(|e| RecoverError::Decode { zxid, reason: e.to_string() }))
        .collect::<Result<Vec<_>, _>>()?;
    replica.recover(txns);
    if let Some(cut) = &recovery.cut {
        tracing::warn!(file = %cut.file.display(), offset = cut.offset, bytes = cut.bytes, "a torn write was cut from the log");
    }
    tracing::info!(
        transactions = count,
        zxid = format_args!("{:#x}", replica.applied_zxid()),
        sessions = replica.sessions().len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        dir = %dir.display(),
        "recovered"
    );
    if !config.force_sync {
        tracing::warn!(
            "forceSync=no: writes are acknowledged before they are on disk and may be lost in a power failure"
        );
    }
    Ok(wal)
}

/// Runs the disk thread until the driver goes away.
pub(crate) fn spawn_disk_thread(
    mut wal: Wal<OsDisk>,
    jobs: std::sync::mpsc::Receiver<LogJob>,
    driver: mpsc::Sender<ToDriver>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("warren-disk".into()).spawn(move || {
        // Jobs of this generation or older were prepared before a failure: they are void.
        let mut void_up_to: Option<u64> = None;
        while let Ok(first) = jobs.recv() {
            let mut batch = Vec::new();
            let mut generation = 0;
            for job in std::iter::once(first).chain(std::iter::from_fn(|| jobs.try_recv().ok())) {
                if void_up_to.is_some_and(|g| job.generation <= g) {
                    continue;
                }
                generation = generation.max(job.generation);
                batch.extend(job.txns.iter().map(|t| (t.zxid, t.to_bytes())));
            }
            let Some(&(last, _)) = batch.last() else { continue };
            let reply = match wal.append(&batch) {
                Ok(()) => ToDriver::Logged { zxid: last },
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
