//! Bad input from the network closes only the connection that sent it: random and
//! truncated frames, oversized frames, garbage handshakes. The server keeps serving a live
//! session throughout. Seeded, so a failure replays.

mod common;

use common::Server;
use proto::{
    encode_record_frame, encode_request_frame, ConnectRequest, ConnectResponse, PathWatchRequest, Record, Request,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn handshake(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(server.address()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request =
        ConnectRequest { timeout_ms: 10_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() };
    s.write_all(&encode_record_frame(&request)).unwrap();
    let response = ConnectResponse::from_bytes(&read_frame(&mut s).unwrap()).unwrap();
    assert!(response.timeout_ms > 0);
    s
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut payload = vec![0; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut payload)?;
    Ok(payload)
}

/// The server closed the connection (EOF or reset), perhaps after some replies; false if
/// it is still open when the read times out.
fn closed(s: &mut TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn alive(s: &mut TcpStream, xid: i32) {
    s.write_all(&encode_request_frame(xid, &Request::Exists(PathWatchRequest { path: "/".into(), watch: false })))
        .unwrap();
    let reply = read_frame(s).unwrap();
    assert_eq!(i32::from_be_bytes([reply[0], reply[1], reply[2], reply[3]]), xid);
}

#[test]
fn garbage_closes_only_its_own_connection() {
    let server = Server::start("jute.maxbuffer=4096");
    let mut live = handshake(&server);
    let mut rng: u64 = 0x5EED;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..150 {
        let mut s = if round % 3 == 0 { TcpStream::connect(server.address()).unwrap() } else { handshake(&server) };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let len = (next() % 64) as usize;
        let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 {
            // A well-formed length around a random body: decoded, refused, the connection
            // may stay; it must not take the server down.
            let mut framed = ((len as i32) + 8).to_be_bytes().to_vec();
            framed.extend(((next() % 120) as i32).to_be_bytes());
            framed.extend((next() as i32 % 110).to_be_bytes());
            framed.extend(junk);
            junk = framed;
        }
        let _ = s.write_all(&junk);
        drop(s);
        if round % 10 == 0 {
            alive(&mut live, round + 1);
        }
    }
    alive(&mut live, 1000);

    // An oversized frame closes that connection without an answer.
    let mut big = handshake(&server);
    big.write_all(&8192i32.to_be_bytes()).unwrap();
    big.write_all(&[0u8; 8192]).unwrap();
    assert!(closed(&mut big));
    // A negative length too.
    let mut negative = handshake(&server);
    negative.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed(&mut negative));
    alive(&mut live, 1001);
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn truncated_body_is_a_marshalling_error_and_the_connection_stays() {
    let server = Server::start("");
    let mut s = handshake(&server);
    // getData whose path length says 100 bytes but only 3 follow.
    let mut frame = 15i32.to_be_bytes().to_vec();
    frame.extend(7i32.to_be_bytes());
    frame.extend(4i32.to_be_bytes());
    frame.extend(100i32.to_be_bytes());
    frame.extend(b"/ab");
    s.write_all(&frame).unwrap();
    let reply = read_frame(&mut s).unwrap();
    assert_eq!(reply.len(), 16, "error replies have no body");
    assert_eq!(i32::from_be_bytes([reply[0], reply[1], reply[2], reply[3]]), 7);
    assert_eq!(i32::from_be_bytes([reply[12], reply[13], reply[14], reply[15]]), -5);
    alive(&mut s, 8);
}
