//! Crash tests with the real binary: a client writes continuously and records every write
//! the server acknowledged; the server is killed with SIGKILL at seeded random moments; after
//! each restart every acknowledged write is there with its data and version. Sessions
//! survive restarts with their ephemerals.

mod common;

use common::Server;
use proto::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A bare-protocol client: one request at a time, so "acknowledged" is exact.
struct Raw {
    stream: TcpStream,
    xid: i32,
    session_id: i64,
    passwd: Vec<u8>,
}

impl Raw {
    fn connect(server: &Server, session: Option<(i64, Vec<u8>)>) -> std::io::Result<(Raw, ConnectResponse)> {
        let mut stream = TcpStream::connect(server.address())?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let (session_id, passwd) = session.unwrap_or((0, vec![0; 16]));
        let request =
            ConnectRequest { timeout_ms: 20_000, session_id, passwd, read_only: Some(false), ..Default::default() };
        stream.write_all(&encode_record_frame(&request))?;
        let response = ConnectResponse::from_bytes(&read_frame(&mut stream)?).map_err(std::io::Error::other)?;
        let raw = Raw { stream, xid: 0, session_id: response.session_id, passwd: response.passwd.clone() };
        Ok((raw, response))
    }

    /// The reply header and body, or an IO error if the server died first.
    fn call(&mut self, request: Request) -> std::io::Result<(ReplyHeader, Vec<u8>)> {
        self.xid += 1;
        self.stream.write_all(&encode_request_frame(self.xid, &request))?;
        loop {
            let frame = read_frame(&mut self.stream)?;
            let mut r = Reader::new(&frame);
            let header = ReplyHeader::decode(&mut r).map_err(std::io::Error::other)?;
            if header.xid == self.xid {
                return Ok((header, r.rest().to_vec()));
            }
        }
    }
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut payload = vec![0; i32::from_be_bytes(len).max(0) as usize];
    s.read_exact(&mut payload)?;
    Ok(payload)
}

fn create(path: &str, data: &str, flags: i32) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(data.as_bytes().to_vec()),
        acl: vec![Acl::anyone(perms::ALL)],
        flags,
    })
}

fn get(raw: &mut Raw, path: &str) -> Option<(Vec<u8>, Stat)> {
    let (header, body) = raw.call(Request::GetData(PathWatchRequest { path: path.into(), watch: false })).unwrap();
    match Response::decode(OpCode::GetData, &body) {
        Ok(Response::Data(data, stat)) if header.err == 0 => Some((data.unwrap_or_default(), stat)),
        _ => None,
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    // Small snapCount: snapshots are written (and interrupted) during the crashes too.
    let mut server = Server::start("snapCount=100");
    let mut rng: u64 = 0xC0FFEE;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut raw, _) = Raw::connect(&server, None).unwrap();
    raw.call(create("/counter", "0", 0)).unwrap();
    let mut acked_creates: Vec<String> = Vec::new();
    let mut acked_version = 0;
    let mut n = 0;
    for round in 0..50 {
        // Write continuously; another thread kills the server at a random moment.
        let (mut raw, _) = Raw::connect(&server, None).unwrap();
        let kill_after = Duration::from_millis(5 + next() % 60);
        let pid = server.pid();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_after);
            std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "the server was never killed");
            n += 1;
            let path = format!("/k{n}");
            match raw.call(create(&path, &format!("v{n}"), 0)) {
                Ok((h, _)) if h.err == 0 => acked_creates.push(path),
                Ok((h, _)) => panic!("create failed with {}", h.err),
                Err(_) => break,
            }
            let data = format!("{}", acked_version + 1);
            let set = Request::SetData(SetDataRequest {
                path: "/counter".into(),
                data: Some(data.into_bytes()),
                version: -1,
            });
            match raw.call(set) {
                Ok((h, body)) if h.err == 0 => {
                    let Ok(Response::Stat(stat)) = Response::decode(OpCode::SetData, &body) else {
                        panic!("bad reply")
                    };
                    acked_version = stat.version;
                }
                Ok((h, _)) => panic!("setData failed with {}", h.err),
                Err(_) => break,
            }
        }
        killer.join().unwrap();
        server.restart();

        let (mut check, _) = Raw::connect(&server, None).unwrap();
        for path in &acked_creates {
            let (data, _) = get(&mut check, path).unwrap_or_else(|| panic!("round {round}: acknowledged {path} lost"));
            assert_eq!(data, format!("v{}", &path[2..]).into_bytes());
        }
        let (data, stat) = get(&mut check, "/counter").unwrap();
        // The write in flight at the kill may have become durable without its reply.
        assert!(
            stat.version == acked_version || stat.version == acked_version + 1,
            "round {round}: {} vs {acked_version}",
            stat.version
        );
        assert_eq!(String::from_utf8(data).unwrap(), stat.version.to_string(), "data and version agree");
        acked_version = stat.version;
    }
    assert!(acked_creates.len() > 100, "only {} writes acknowledged in 50 rounds", acked_creates.len());
}

#[test]
fn sessions_and_their_ephemerals_survive_a_restart() {
    let mut server = Server::start("");
    let (mut owner, response) = Raw::connect(&server, None).unwrap();
    // tickTime 200 ms: the 20 s asked for is clamped to maxSessionTimeout, 20 ticks.
    assert_eq!(response.timeout_ms, 4000);
    let (h, _) = owner.call(create("/lease", "me", 1)).unwrap();
    assert_eq!(h.err, 0);
    let (session_id, passwd) = (owner.session_id, owner.passwd.clone());
    // A second session that nobody resumes must expire after the restart.
    let (mut gone, _) = Raw::connect(&server, None).unwrap();
    gone.call(create("/gone", "", 1)).unwrap();

    server.kill();
    server.restart();
    let (mut back, response) = Raw::connect(&server, Some((session_id, passwd))).unwrap();
    assert_eq!((response.session_id, response.timeout_ms), (session_id, 4000), "the session is resumed");
    let (_, stat) = get(&mut back, "/lease").expect("the ephemeral survived");
    assert_eq!(stat.ephemeral_owner, session_id);
    assert!(get(&mut back, "/gone").is_some(), "an abandoned session gets its whole timeout after a restart");
    drop(gone);
    // The resumed session keeps pinging; the abandoned one expires after its timeout.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&mut back, "/gone").is_some() {
        assert!(Instant::now() < deadline, "the abandoned session never expired");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(get(&mut back, "/lease").is_some(), "the live session kept its ephemeral");
}
