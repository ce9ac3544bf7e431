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
    pub dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
}

impl Server {
    /// A server with a short tick (200 ms) so that session tests run fast; `extra` lines
    /// are appended to its `zoo.cfg`.
    pub fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=200\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nminSessionTimeout=400\n\
                 4lw.commands.whitelist=*\nznode.container.checkIntervalMs=200\npreAllocSize=1024\n{extra}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = spawn(&cfg, dir.path());
        let server = Server { child, port, dir, cfg };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
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
        let _ = s.write_all(word.as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }
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
