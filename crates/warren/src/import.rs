//! `warren import-zookeeper`: moves an Apache ZooKeeper 3.8 data directory to Warren.
//!
//! ZooKeeper's state after its newest snapshot and the log after it (see [`crate::zookeeper`])
//! becomes one Warren snapshot at ZooKeeper's last zxid, written with the same code the
//! server uses, so Warren starts from it with the same tree, ACLs, Stats and sessions (with
//! ZooKeeper's session passwords, so clients resume their sessions), and its zxids carry on
//! from ZooKeeper's.

use crate::zookeeper;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// ZooKeeper's dataDir, or its version-2 directory.
    zk_data_dir: PathBuf,
    /// Warren's zoo.cfg, which says where to write (default: ./data).
    #[arg(long)]
    config: Option<PathBuf>,
    /// ZooKeeper's dataLogDir (or its version-2), when its logs are not beside the snapshots.
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

/// Nodes per snapshot chunk: large enough to amortize the chunk framing, small enough that
/// no chunk is huge.
const CHUNK_NODES: usize = 10_000;

/// Refuses a directory that already holds Warren files.
fn ensure_empty(dir: &Path) -> anyhow::Result<()> {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    if entries.next().is_some() {
        bail!("{} already holds Warren data; refusing to overwrite it (move it away to import again)", dir.display());
    }
    Ok(())
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let config = crate::data_tools::load_config(args.config.as_deref())?;
    let snapshot_dir = server::storage::snapshot_dir(&config);
    let log_dir = server::storage::log_dir(&config);
    ensure_empty(&snapshot_dir)?;
    ensure_empty(&log_dir)?;
    if !args.zk_data_dir.is_dir() {
        bail!("{} is not a directory", args.zk_data_dir.display());
    }
    let zk_snapshots = zookeeper::version_dir(&args.zk_data_dir);
    let zk_logs = zookeeper::version_dir(args.log_dir.as_deref().unwrap_or(&args.zk_data_dir));
    let loaded = zookeeper::load(&zk_snapshots, &zk_logs)?;
    let zxid = loaded.state.zxid;
    if let Some((p, czxid)) = loaded.state.created_after_last_zxid() {
        bail!(
            "node {p} was created at zxid {czxid:#x}, after the last logged transaction {zxid:#x}: the snapshot is \
             ahead of the logs (was the directory copied while ZooKeeper was running?)"
        );
    }
    let (nodes, sessions) = (loaded.state.nodes.len(), loaded.state.sessions.len());
    let (tree, sessions_list) =
        loaded.state.into_warren().context("the ZooKeeper tree does not fit Warren's (a node out of order)")?;

    let replica_config = replica::Config { server_id: config.server_id, tick_ms: config.tick_ms, ..Default::default() };
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let mut replica = replica::Replica::new(replica_config, now_ms, 0);
    replica.install(zxid, tree, &sessions_list);
    replica.begin_snapshot();
    let mut writer = wal::snapshot::SnapshotWriter::create(wal::OsDisk, &snapshot_dir, zxid)?;
    while let Some(part) = replica.snapshot_chunk(CHUNK_NODES) {
        if let Err(e) = writer.write_chunk(&part.bytes) {
            writer.abandon();
            return Err(e.into());
        }
        if part.last {
            break;
        }
    }
    let (path, bytes) = writer.finish()?;
    println!(
        "imported {nodes} znodes and {sessions} sessions at zxid {zxid:#x}: snapshot {} (zxid {:#x}) and {} later \
         transactions in {} log files",
        loaded.snapshot.display(),
        loaded.snapshot_zxid,
        loaded.txns,
        loaded.logs.len()
    );
    for (file, offset) in &loaded.torn {
        println!("note: {} ends in a partial record at byte {offset} (a write cut short; ignored)", file.display());
    }
    println!("wrote {} ({bytes} bytes); start Warren with the same configuration to serve it", path.display());
    Ok(())
}
