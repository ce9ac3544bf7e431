//! What the client's integration tests run against: the real `warren` binary and real
//! ZooKeeper 3.8 (each on a free loopback port with its own data directory and the same
//! `zoo.cfg`), and a TCP proxy that can cut connections.
//!
//! The `warren` binary is `$WARREN_BIN`, else `target/debug/warren` of this workspace
//! (`cargo test --workspace` builds it; alone, run `cargo build -p warren` first).
//! ZooKeeper is skipped, with the reason printed, when its jars or `java` are missing.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

/// Runs each `$body(address)` against a fresh server of each target, as the test
/// modules `$name::warren` and `$name::zookeeper` (the latter skipped if absent).
macro_rules! against_both {
    ($($name:ident => $body:path;)*) => {$(
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn warren() {
                let server = common::server_or_skip(common::Target::Warren).unwrap();
                $body(&server.address()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn zookeeper() {
                let Some(server) = common::server_or_skip(common::Target::ZooKeeper) else { return };
                $body(&server.address()).await;
            }
        }
    )*};
}

/// The two servers every test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Warren,
    ZooKeeper,
}

pub struct Server {
    child: Child,
    pub target: Target,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

const ZK_JARS: [&str; 3] =
    ["/usr/share/java/zookeeper.jar", "/usr/share/java/zookeeper-jute.jar", "/usr/share/java/slf4j-simple.jar"];

fn warren_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("WARREN_BIN") {
        return bin.into();
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target_dir.join("debug/warren")
}

impl Server {
    /// Starts a server of `target`, or returns why it cannot run here (ZooKeeper only:
    /// a missing Warren binary is a failure, not a skip).
    pub fn start(target: Target) -> Result<Server, String> {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nminSessionTimeout=400\n\
                 maxSessionTimeout=40000\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n\
                 admin.enableServer=false\nznode.container.checkIntervalMs=500\n",
                data.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = match target {
            Target::Warren => {
                let bin = warren_bin();
                assert!(bin.exists(), "{} not found: run `cargo build -p warren` (or set WARREN_BIN)", bin.display());
                let mut c = Command::new(bin);
                c.arg("server").arg(&cfg);
                c
            }
            Target::ZooKeeper => {
                if let Some(missing) = ZK_JARS.iter().find(|j| !Path::new(j).exists()) {
                    return Err(format!("{missing} is missing (apt-get install zookeeper)"));
                }
                if Command::new("java").arg("-version").stderr(Stdio::null()).status().is_err() {
                    return Err("java is not installed".into());
                }
                let mut c = Command::new("java");
                c.args(["-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
                    .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
                    .arg("-Dzookeeper.jmx.log4j.disable=true")
                    // ZooKeeper reads this only as a JVM property.
                    .arg("-Dznode.container.checkIntervalMs=500")
                    .args(["-cp", &ZK_JARS.join(":"), "org.apache.zookeeper.server.ZooKeeperServerMain"])
                    .arg(&cfg);
                c
            }
        };
        let child = command.stdout(log.try_clone().unwrap()).stderr(log).stdin(Stdio::null()).spawn().unwrap();
        let mut server = Server { child, target, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ruok = server.four_letter("ruok");
            if ruok == "imok" && !server.four_letter("srvr").contains("not currently serving") {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{target:?} exited with {status} during startup:\n{}", server.log());
            }
            assert!(Instant::now() < deadline, "{target:?} did not start:\n{}", server.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Sends a four-letter word and returns the whole answer ("" if the port is closed).
    pub fn four_letter(&self, word: &str) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        // A server still starting may accept and never answer.
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.write_all(word.as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server for a test, or prints why the target is skipped and returns `None`.
pub fn server_or_skip(target: Target) -> Option<Server> {
    // `RUST_LOG=client=debug` shows what the client does; test output stays captured.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    match Server::start(target) {
        Ok(server) => Some(server),
        // A skip must be asked for (as for the compatibility suite, with COMPAT_TARGETS
        // not naming the target): a silent pass would hide that the variant never ran.
        Err(reason) => {
            let wanted = std::env::var("COMPAT_TARGETS").unwrap_or_else(|_| "warren,zookeeper".into());
            let name = format!("{target:?}").to_lowercase();
            assert!(
                !wanted.split(',').any(|t| t.trim() == name),
                "the {target:?} variant cannot run: {reason} (set COMPAT_TARGETS to leave it out)"
            );
            println!("skipping the {target:?} variant (COMPAT_TARGETS): {reason}");
            None
        }
    }
}

/// What a [`Proxy`] does with its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    /// Connections stay open but nothing passes: a server that went silent.
    Frozen,
    /// Connections are cut and new ones refused: a server that went away.
    Paused,
}

/// A loopback TCP proxy in front of a server. `pause` cuts every proxied connection and
/// refuses new ones (accepts and closes them) until `resume`; `freeze` keeps them open
/// and silent.
pub struct Proxy {
    pub port: u16,
    /// Every pump and the acceptor watch it.
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, mode_rx) = watch::channel(Mode::Open);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                let mut mode = mode_rx.clone();
                let now = *mode.borrow();
                match now {
                    Mode::Paused => {
                        let _ = client.shutdown().await;
                    }
                    Mode::Frozen => {
                        tokio::spawn(async move {
                            let _ = mode.wait_for(|m| *m == Mode::Paused).await;
                            drop(client);
                        });
                    }
                    Mode::Open => {
                        let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else { continue };
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                                _ = mode.wait_for(|m| *m != Mode::Open) => {}
                            }
                            // Frozen: hold both sockets, silent, until paused. Dropping them
                            // closes them: the client sees its connection end.
                            let _ = mode.wait_for(|m| *m == Mode::Paused).await;
                        });
                    }
                }
            }
        });
        Proxy { port, mode, task }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pause(&self) {
        self.mode.send_replace(Mode::Paused);
    }

    pub fn freeze(&self) {
        self.mode.send_replace(Mode::Frozen);
    }

    pub fn resume(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.pause();
        self.task.abort();
    }
}

/// Polls `check` until it holds or `limit` passes.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
