//! A full disk under the real binary: the log lives on a tiny tmpfs. A write that cannot
//! be made durable is answered with an error, the server stays up and says why in `mntr`,
//! reads go on, and once space is back writes are acknowledged again and survive a
//! restart. Needs root (to mount a tmpfs): without it the test fails, unless
//! `WARREN_SKIP_TMPFS=1` asks to skip it.

mod common;

use common::Server;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use zookeeper_client as zk;

/// A tmpfs of `kib` KiB at `dir`, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, kib: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mntr(server: &Server, key: &str) -> Option<String> {
    server.four_letter("mntr").lines().find_map(|l| l.strip_prefix(&format!("zk_{key}\t")).map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_fails_writes_with_an_error_and_recovers() {
    let scratch = tempfile::tempdir().unwrap();
    let disk = scratch.path().join("disk");
    let Some(_tmpfs) = Tmpfs::mount(&disk, 2048) else {
        // A skip must be asked for: a silent pass would hide that this never ran.
        assert!(
            std::env::var_os("WARREN_SKIP_TMPFS").is_some(),
            "mounting a tmpfs failed (it needs root); set WARREN_SKIP_TMPFS=1 to skip this test"
        );
        eprintln!("skipped (WARREN_SKIP_TMPFS): mounting a tmpfs needs root");
        return;
    };
    let server = Server::start(&format!("dataLogDir={}\npreAllocSize=64\nsnapCount=1000000", disk.display()));
    let client =
        zk::Client::connector().session_timeout(Duration::from_secs(10)).connect(&server.address()).await.unwrap();
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client.create("/kept", b"before", &open).await.unwrap();

    // Fill the disk: a ballast file, then writes until one cannot be logged.
    std::fs::write(disk.join("ballast"), vec![0u8; 1536 << 10]).unwrap();
    let big = vec![b'x'; 64 << 10];
    let mut acknowledged = 0;
    let failure = loop {
        match client.create(&format!("/n{acknowledged}"), &big, &open).await {
            Ok(_) => acknowledged += 1,
            Err(e) => break e,
        }
        assert!(acknowledged < 100, "the disk never filled");
    };
    assert!(!matches!(failure, zk::Error::ConnectionLoss | zk::Error::SessionExpired), "{failure:?}");
    assert_eq!(mntr(&server, "warren_log_healthy").as_deref(), Some("0"), "{}", server.four_letter("mntr"));
    let reason = mntr(&server, "warren_log_error").unwrap_or_default();
    assert!(reason.contains("space"), "mntr says why: {reason}");
    assert!(server.log().contains("the transaction log failed"), "{}", server.log());
    // Reads go on, and nothing written before is lost.
    assert_eq!(client.get_data("/kept").await.unwrap().0, b"before");

    // Space comes back: writes are acknowledged again.
    std::fs::remove_file(disk.join("ballast")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match client.create("/after", b"ok", &open).await {
            Ok(_) => break,
            Err(e) => assert!(std::time::Instant::now() < deadline, "writes never came back: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mntr(&server, "warren_log_healthy").as_deref(), Some("1"));
    drop(client);

    // Everything acknowledged survives a restart.
    let mut server = server;
    server.restart();
    let client =
        zk::Client::connector().session_timeout(Duration::from_secs(10)).connect(&server.address()).await.unwrap();
    for i in 0..acknowledged {
        assert_eq!(client.get_data(&format!("/n{i}")).await.unwrap().0.len(), big.len(), "/n{i}");
    }
    assert_eq!(client.get_data("/after").await.unwrap().0, b"ok");
}
