//! Starts the real `warren` binary on a free loopback port with its own data directory.
// Each test binary uses a different part of this helper.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub port: u16,
    /// The admin HTTP server's port (on 127.0.0.1), a free one per server so that tests
    /// running at once never meet on ZooKeeper's default 8080.
    pub admin_port: u16,
    /// The Prometheus provider's `/metrics` port, served once `extra` sets
    /// `metricsProvider.className` to ZooKeeper's Prometheus provider.
    pub metrics_port: u16,
    pub dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
}

impl Server {
    /// A server with a short tick (200 ms) so that session tests run fast; `extra` lines
    /// are appended to its `zoo.cfg` (and override what is set before them).
    pub fn start(extra: &str) -> Server {
        let server = Server::launch(tempfile::tempdir().unwrap(), extra);
        server.wait_ready();
        server
    }

    /// Member `id` of an ensemble whose `server.N` lines are `members`: its `myid` is
    /// written where ZooKeeper expects it. Not waited for: members start together.
    pub fn launch_member(id: u64, members: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data").join("myid"), id.to_string()).unwrap();
        Server::launch(dir, &format!("initLimit=10\nsyncLimit=5\n{members}"))
    }

    fn launch(dir: tempfile::TempDir, extra: &str) -> Server {
        let [port, admin_port, metrics_port] = free_ports();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nminSessionTimeout=400\n\
                 4lw.commands.whitelist=*\nznode.container.checkIntervalMs=200\npreAllocSize=1024\n\
                 admin.serverAddress=127.0.0.1\nadmin.serverPort={admin_port}\n\
                 metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={metrics_port}\n{extra}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = spawn(&cfg, dir.path());
        Server { child, port, admin_port, metrics_port, dir, cfg }
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.four_letter("ruok") != "imok" {
            assert!(Instant::now() < deadline, "server did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.cfg, self.dir.path());
        self.wait_ready();
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

/// A `zookeeper-client` session (4 s timeout) on the server.
pub async fn connect(server: &Server) -> zookeeper_client::Client {
    connect_to(&server.address()).await
}

/// A `zookeeper-client` session (4 s timeout) through a connect string.
pub async fn connect_to(hosts: &str) -> zookeeper_client::Client {
    zookeeper_client::Client::connector().session_timeout(Duration::from_secs(4)).connect(hosts).await.unwrap()
}

/// Create options for a persistent node open to anyone.
pub fn open() -> zookeeper_client::CreateOptions<'static> {
    zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())
}

/// A port free at the moment (the server binds it soon after).
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct ports free at the moment: all are held until all are chosen, so that the
/// system does not hand the same one out twice.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// `GET path` over HTTP/1.1 on 127.0.0.1:`port`: the status code, the headers (names in
/// lower case) and the body.
pub fn http_get(port: u16, path: &str) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| l.split_once(':').unwrap())
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    // The server sends whole bodies with a length, never chunked.
    let length: usize = headers.iter().find(|(k, _)| k == "content-length").unwrap().1.parse().unwrap();
    assert_eq!(body.len(), length, "body length");
    (status, headers, body.to_owned())
}

fn spawn(cfg: &std::path::Path, dir: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("server.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_warren")).arg("server").arg(cfg).stdout(Stdio::null()).stderr(log).spawn().unwrap()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
