//! The operator's tools for Warren's own files: `warren log dump`, `warren snapshot dump`
//! (text, one transaction or node per line, like ZooKeeper's `TxnLogToolkit` and
//! `SnapshotFormatter`) and `warren purge` (ZooKeeper's `PurgeTxnLog`).
//!
//! The dumps never change what they read: log segments are copied into an in-memory disk
//! before the log's own recovery reads them, so a torn tail is reported, not cut.

use anyhow::{anyhow, bail, Context};
use proto::{Acl, Record};
use std::io::Write;
use std::path::{Path, PathBuf};
use tree::{owner, NodeRef, Txn, TxnOp};
use wal::Disk;

#[derive(clap::Args)]
pub struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(clap::Subcommand)]
enum LogCommand {
    /// Print every transaction of a log segment, or of every segment in a log directory.
    Dump {
        /// A segment (`log.<zxid>`) or a log directory (default: the configured one).
        path: Option<PathBuf>,
        /// The zoo.cfg whose log directory to read when no path is given.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(clap::Subcommand)]
enum SnapshotCommand {
    /// Print a snapshot's sessions and nodes.
    Dump {
        /// A snapshot file (`snapshot.<zxid>`).
        path: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct PurgeArgs {
    /// Snapshots to keep, newest first (at least 3, as ZooKeeper's PurgeTxnLog).
    #[arg(short = 'n', long = "count", default_value_t = 3)]
    count: usize,
    /// The zoo.cfg saying where the data is (default: ./data).
    config: Option<PathBuf>,
}

/// The given `zoo.cfg`, or the built-in default (standalone, data under `./data`).
pub(crate) fn load_config(path: Option<&Path>) -> anyhow::Result<server::Config> {
    Ok(match path {
        Some(path) => server::Config::load(path)?,
        None => server::Config::default(),
    })
}

pub fn log(args: LogArgs) -> anyhow::Result<()> {
    let LogCommand::Dump { path, config } = args.command;
    let path = match path {
        Some(path) => path,
        None => server::storage::log_dir(&load_config(config.as_deref())?),
    };
    dump_log(&path, &mut std::io::stdout().lock())
}

pub fn snapshot(args: SnapshotArgs) -> anyhow::Result<()> {
    let SnapshotCommand::Dump { path } = args.command;
    dump_snapshot(&path, &mut std::io::stdout().lock())
}

pub fn purge(args: PurgeArgs) -> anyhow::Result<()> {
    if args.count < 3 {
        bail!("-n must be at least 3: the newest snapshots are what recovery falls back on");
    }
    let config = load_config(args.config.as_deref())?;
    let (snapshots, logs) = (server::storage::snapshot_dir(&config), server::storage::log_dir(&config));
    let purged = wal::purge(&wal::OsDisk, &snapshots, &logs, args.count)?;
    for path in purged.snapshots.iter().chain(&purged.segments) {
        println!("deleted {}", path.display());
    }
    println!(
        "kept the {} newest snapshots in {}; deleted {} snapshots and {} log segments",
        args.count,
        snapshots.display(),
        purged.snapshots.len(),
        purged.segments.len()
    );
    Ok(())
}

/// Milliseconds since the epoch as ISO 8601 in UTC.
pub fn utc(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// Data as escaped text, cut after 64 bytes (with the full length said).
fn data(d: Option<&[u8]>) -> String {
    const SHOWN: usize = 64;
    match d {
        None => "null".into(),
        Some(b) if b.len() > SHOWN => format!("\"{}\"...({} bytes)", b[..SHOWN].escape_ascii(), b.len()),
        Some(b) => format!("\"{}\"", b.escape_ascii()),
    }
}

/// An ACL list as `scheme:id=perms`, perms in zkCli's letters.
fn acl(list: &[Acl]) -> String {
    let entries: Vec<String> = list
        .iter()
        .map(|a| {
            let p = crate::shell::perm_string(a.perms);
            format!("{}:{}={p}", a.id.scheme, a.id.id.as_deref().unwrap_or(""))
        })
        .collect();
    format!("[{}]", entries.join(","))
}

fn kind(ephemeral_owner: i64) -> String {
    if ephemeral_owner == owner::CONTAINER {
        "container".into()
    } else if let Some(ttl) = owner::ttl_ms(ephemeral_owner) {
        format!("ttl={ttl}ms")
    } else if let Some(session) = owner::session(ephemeral_owner) {
        format!("ephemeral=0x{session:x}")
    } else {
        "persistent".into()
    }
}

/// One operation as text (a multi lists its operations).
pub fn describe(op: &TxnOp) -> String {
    match op {
        TxnOp::CreateSession { timeout_ms, .. } => format!("createSession timeout={timeout_ms}ms"),
        TxnOp::CloseSession { ephemerals } => format!("closeSession ephemerals=[{}]", ephemerals.join(",")),
        TxnOp::Create { path, data: d, acl: a, ephemeral_owner } => {
            format!("create {path} {} acl={} data={}", kind(*ephemeral_owner), acl(a), data(d.as_deref()))
        }
        TxnOp::Delete { path } => format!("delete {path}"),
        TxnOp::SetData { path, data: d, version } => {
            format!("setData {path} version={version} data={}", data(d.as_deref()))
        }
        TxnOp::SetAcl { path, acl: a, aversion } => format!("setACL {path} aversion={aversion} acl={}", acl(a)),
        TxnOp::Check { path } => format!("check {path}"),
        TxnOp::Error { err } => format!("error {err:?}"),
        TxnOp::Multi(ops) => format!("multi [{}]", ops.iter().map(describe).collect::<Vec<_>>().join("; ")),
    }
}

/// One transaction as a line, like ZooKeeper's `TxnLogToolkit`.
pub fn txn_line(txn: &Txn) -> String {
    format!("{} session 0x{:x} zxid 0x{:x} {}", utc(txn.time_ms), txn.session_id, txn.zxid, describe(&txn.op))
}

/// Prints the transactions of a segment or of a log directory.
pub fn dump_log(path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    // A directory: the segments recovery reads (named `log.<16 hex digits>`).
    let files: Vec<PathBuf> = if path.is_dir() {
        wal::list_segments(&wal::OsDisk, path)?.into_iter().map(|(_, p)| p).collect()
    } else {
        vec![path.to_owned()]
    };
    let is_segment = |f: &PathBuf| f.file_name().and_then(|n| n.to_str()).and_then(wal::parse_segment_name).is_some();
    if let Some(other) = files.iter().find(|f| !is_segment(f)) {
        bail!("{}: not a Warren log segment (they are named log.<16 hex digits>)", other.display());
    }
    // The log's recovery reads a copy, so that it cuts nothing from the real files.
    let copy = wal::mem::MemDisk::new();
    let dir = Path::new("/log");
    let mut real = std::collections::BTreeMap::new();
    for file in &files {
        let name = file.file_name().ok_or_else(|| anyhow!("{} is not a file", file.display()))?;
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        copy.write_atomic(&dir.join(name), &bytes)?;
        real.insert(dir.join(name), file.clone());
    }
    let real_path = |p: &Path| real.get(p).cloned().unwrap_or_else(|| p.to_owned());
    let (_, recovery) = wal::Wal::open(copy, dir, wal::WalOptions::default(), 0).map_err(|e| match e {
        wal::WalError::Corrupt { path, offset, reason } => {
            anyhow!("{}: damaged at byte {offset}: {reason}", real_path(&path).display())
        }
        other => other.into(),
    })?;
    let mut undecodable = 0;
    for (zxid, bytes) in &recovery.entries {
        match Txn::from_bytes(bytes) {
            Ok(txn) => writeln!(out, "{}", txn_line(&txn))?,
            Err(e) => {
                undecodable += 1;
                writeln!(out, "# zxid 0x{zxid:x}: does not decode: {e}")?;
            }
        }
    }
    if let Some(cut) = &recovery.cut {
        writeln!(
            out,
            "# a torn write ({} bytes) follows at byte {} of {}; recovery cuts it",
            cut.bytes,
            cut.offset,
            real_path(&cut.file).display()
        )?;
    }
    match (recovery.entries.first(), recovery.entries.last()) {
        (Some((first, _)), Some((last, _))) => {
            writeln!(out, "# {} transactions, zxid 0x{first:x} to 0x{last:x}", recovery.entries.len())?
        }
        _ => writeln!(out, "# no transactions")?,
    }
    if undecodable > 0 {
        bail!("{undecodable} transactions do not decode");
    }
    Ok(())
}

/// One node as a line: path, the 11 Stat fields, its kind, ACL and data.
pub fn node_line(path: &str, node: NodeRef<'_>) -> String {
    let meta = node.meta();
    let s = meta.stat(node.data_len());
    format!(
        "{path} czxid=0x{:x} mzxid=0x{:x} pzxid=0x{:x} ctime={} mtime={} version={} cversion={} aversion={} \
         ephemeralOwner=0x{:x} dataLength={} numChildren={} {} acl={} data={}",
        s.czxid,
        s.mzxid,
        s.pzxid,
        utc(s.ctime),
        utc(s.mtime),
        s.version,
        s.cversion,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children,
        kind(meta.ephemeral_owner),
        acl(node.acl()),
        data(node.data())
    )
}

/// Prints a snapshot: a summary line, its sessions, then every node in path order.
pub fn dump_snapshot(path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let snapshot = wal::snapshot::read_verified(&wal::OsDisk, path)?;
    let zxid = snapshot.zxid;
    // The replica's own restore decodes the sessions chunk and the tree.
    let mut replica = replica::Replica::new(replica::Config::default(), 0, 0);
    replica
        .restore_snapshot(zxid, snapshot.chunks())
        .map_err(|e| anyhow!("{}: does not decode: {e}", path.display()))?;
    let tree = replica.tree();
    writeln!(
        out,
        "# snapshot at zxid 0x{zxid:x}: {} znodes, {} sessions",
        tree.node_count(),
        replica.sessions().len()
    )?;
    for s in replica.sessions().iter() {
        writeln!(out, "session 0x{:x} timeout={}ms", s.id, s.timeout_ms)?;
    }
    for (p, node) in tree.iter() {
        writeln!(out, "{}", node_line(p, node))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(utc(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn operations_as_text() {
        let create = TxnOp::Create {
            path: "/a".into(),
            data: Some(b"hi\n".to_vec()),
            acl: vec![Acl::anyone(proto::perms::READ | proto::perms::ADMIN)],
            ephemeral_owner: 0x1f,
        };
        assert_eq!(describe(&create), "create /a ephemeral=0x1f acl=[world:anyone=ra] data=\"hi\\n\"");
        let multi = TxnOp::Multi(vec![
            TxnOp::SetData { path: "/b".into(), data: None, version: 2 },
            TxnOp::Create {
                path: "/c".into(),
                data: Some(vec![0; 100]),
                acl: vec![],
                ephemeral_owner: owner::CONTAINER,
            },
        ]);
        let text = describe(&multi);
        assert!(
            text.starts_with("multi [setData /b version=2 data=null; create /c container acl=[] data=\"\\x00"),
            "{text}"
        );
        assert!(text.ends_with("...(100 bytes)]"), "{text}");
        let txn =
            Txn { zxid: 0x1_0000_0002, time_ms: 0, session_id: 0xab, cxid: 0, op: TxnOp::Check { path: "/x".into() } };
        assert_eq!(txn_line(&txn), "1970-01-01T00:00:00.000Z session 0xab zxid 0x100000002 check /x");
    }
}
