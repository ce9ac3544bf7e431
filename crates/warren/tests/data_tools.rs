//! The operator's tools on a real server's files: `warren log dump` prints every transaction
//! that was written, `warren snapshot dump` every node with its Stat, and `warren purge`
//! keeps the newest snapshots and the log they need. The dumps change nothing they read.

mod common;

use common::Server;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use zookeeper_client as zk;

fn warren(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warren")).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            // A snapshot being written is `<name>.tmp` until it is complete.
            name.starts_with(prefix) && !name.ends_with(".tmp")
        })
        .collect();
    names.sort();
    names
}

/// Writes a known history, with enough transactions for several snapshots.
async fn history(server: &Server) {
    let client = common::connect(server).await;
    let open = common::open();
    client.create("/dump", b"hello", &open).await.unwrap();
    client.create("/dump/child", b"", &open).await.unwrap();
    client.set_data("/dump", b"bye", None).await.unwrap();
    client.delete("/dump/child", None).await.unwrap();
    let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    client.create("/lease", b"", &ephemeral).await.unwrap();
    for i in 0..80 {
        client.create(&format!("/n{i:03}"), b"", &open).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn log_and_snapshot_dumps_show_what_was_written() {
    let mut server = Server::start("snapCount=20");
    history(&server).await;
    server.kill();
    let data = server.dir.path().join("data/warren");
    let log_dir = data.join("log");
    let before: Vec<Vec<u8>> = files(&log_dir, "log.").iter().map(|p| std::fs::read(p).unwrap()).collect();

    let text = stdout(&warren(&["log", "dump", log_dir.to_str().unwrap()]));
    let lines: Vec<&str> = text.lines().collect();
    let find = |needle: &str| {
        lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
    };
    let created = find(" create /dump persistent acl=[world:anyone=cdrwa] data=\"hello\"");
    let set = find(" setData /dump version=1 data=\"bye\"");
    let deleted = find(" delete /dump/child");
    assert!(find(" createSession timeout=4000ms") < created && created < set && set < deleted);
    assert!(lines[created].contains(" session 0x") && lines[created].contains(" zxid 0x2 "), "{}", lines[created]);
    assert!(find(" create /lease ephemeral=0x") > deleted);
    assert!(lines.last().unwrap().starts_with("# 86 transactions, zxid 0x1 to 0x56"), "{text}");
    // One segment alone.
    let first = &files(&log_dir, "log.")[0];
    let one = stdout(&warren(&["log", "dump", first.to_str().unwrap()]));
    assert!(one.contains(" create /dump persistent"), "{one}");

    let snapshots = files(&data.join("snapshot"), "snapshot.");
    assert!(snapshots.len() >= 3, "{snapshots:?}");
    let newest = snapshots.last().unwrap();
    let dump = stdout(&warren(&["snapshot", "dump", newest.to_str().unwrap()]));
    let header = dump.lines().next().unwrap();
    assert!(header.starts_with("# snapshot at zxid 0x") && header.ends_with(" sessions"), "{header}");
    let node = dump.lines().find(|l| l.starts_with("/dump ")).unwrap_or_else(|| panic!("{dump}"));
    assert!(
        node.contains(" czxid=0x2 mzxid=0x4 pzxid=0x5 ")
            && node
                .contains(" version=1 cversion=2 aversion=0 ephemeralOwner=0x0 dataLength=3 numChildren=0 persistent")
            && node.ends_with(" acl=[world:anyone=cdrwa] data=\"bye\""),
        "{node}"
    );
    let lease = dump.lines().find(|l| l.starts_with("/lease ")).unwrap();
    assert!(lease.contains(" ephemeral=0x"), "{lease}");
    assert!(dump.lines().any(|l| l.starts_with("session 0x") && l.ends_with(" timeout=4000ms")), "{dump}");

    let after: Vec<Vec<u8>> = files(&log_dir, "log.").iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(before == after, "the dump changed the log");
    let not_a_segment = warren(&["log", "dump", newest.to_str().unwrap()]);
    assert!(!not_a_segment.status.success());
    assert!(String::from_utf8_lossy(&not_a_segment.stderr).contains("not a Warren log segment"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_log_is_named_with_its_offset() {
    let mut server = Server::start("");
    history(&server).await;
    server.kill();
    let segment = files(&server.dir.path().join("data/warren/log"), "log.").remove(0);
    let mut bytes = std::fs::read(&segment).unwrap();
    // Inside the second batch's body (the first, the session's, ends at byte 100), with
    // batches after it: damage in the middle, not a torn tail.
    bytes[120] ^= 0x08;
    std::fs::write(&segment, bytes).unwrap();
    let out = warren(&["log", "dump", segment.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}: damaged at byte", segment.display())), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn purge_keeps_the_newest_snapshots_and_the_log_they_need() {
    let mut server = Server::start("snapCount=20");
    history(&server).await;
    server.kill();
    let cfg = server.dir.path().join("zoo.cfg");
    let snapshot_dir = server.dir.path().join("data/warren/snapshot");
    let taken = files(&snapshot_dir, "snapshot.");
    assert!(taken.len() >= 4, "{taken:?}");

    let refused = warren(&["purge", "-n", "2", cfg.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert_eq!(files(&snapshot_dir, "snapshot."), taken);

    let text = stdout(&warren(&["purge", "-n", "3", cfg.to_str().unwrap()]));
    assert_eq!(files(&snapshot_dir, "snapshot."), taken[taken.len() - 3..]);
    for gone in &taken[..taken.len() - 3] {
        assert!(text.contains(&format!("deleted {}", gone.display())), "{text}");
    }
    // What is left still recovers everything.
    server.restart();
    let client = common::connect(&server).await;
    let (data, stat) = client.get_data("/dump").await.unwrap();
    assert_eq!((data.as_slice(), stat.version), (&b"bye"[..], 1));
    assert!(client.check_stat("/n079").await.unwrap().is_some());
}
