//! One client connection: one task that reads frames, hands them to the driver, and writes
//! what the driver sends back, in order. It decides nothing about the protocol beyond
//! framing: a frame over `jute.maxbuffer` or a handshake that does not decode closes it.

use crate::driver::{Outbound, ToDriver};
use crate::metrics::Metrics;
use crate::Config;
use proto::{
    append_notification_frame, append_reply_frame, frame_length, ConnectRequest, Record, Request, RequestHeader,
};
use replica::{ConnId, Input};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Four-letter words ZooKeeper 3.8 knows; only these are recognised in place of a length.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dump", "envi", "ruok", "srst", "srvr", "stat", "wchs", "wchc", "wchp", "dirs", "mntr",
    "isro",
];

/// Replies and notifications queued for one connection before it counts as not reading.
const OUTBOUND_MESSAGES_MAX: usize = 100_000;

/// A connection that does not finish its handshake in this time is dropped, as in ZooKeeper.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn serve(
    mut stream: TcpStream,
    addr: SocketAddr,
    conn: ConnId,
    driver: mpsc::Sender<ToDriver>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let handshake =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, read_first_frame(&mut stream, &mut buf, &config, &metrics)).await;
    let first = match handshake {
        Ok(Ok(first)) => first,
        Ok(Err(reason)) => return tracing::debug!(%addr, reason, "connection closed before handshake"),
        Err(_) => return tracing::debug!(%addr, "handshake timed out"),
    };
    let request = match first {
        First::FourLetter(command) => return four_letter(stream, addr, command, driver).await,
        First::Connect(request) => request,
    };
    let (tx, mut rx) = mpsc::channel(OUTBOUND_MESSAGES_MAX);
    let (kill, killed) = oneshot::channel();
    let opened = driver.send(ToDriver::Open { conn, addr, tx, kill }).await.is_ok()
        && driver
            .send(ToDriver::Input(Input::Connect { conn, addr: addr.ip(), request }, Instant::now()))
            .await
            .is_ok();
    if opened {
        tokio::select! {
            result = pump(&mut stream, &mut buf, conn, &driver, &mut rx, &config, &metrics) => {
                if let Err(reason) = result {
                    tracing::debug!(%addr, conn = conn.0, reason, "connection closed");
                }
            }
            _ = killed => {}
        }
    }
    let _ = driver.send(ToDriver::Input(Input::Disconnected { conn }, Instant::now())).await;
}

enum First {
    FourLetter(&'static str),
    Connect(ConnectRequest),
}

async fn read_first_frame(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    config: &Config,
    metrics: &Metrics,
) -> Result<First, String> {
    while buf.len() < 4 {
        let n = stream.read_buf(buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        metrics.bytes_received.inc_by(n as u64);
    }
    if let Some(word) = FOUR_LETTER_WORDS.iter().find(|w| w.as_bytes() == &buf[..4]) {
        return Ok(First::FourLetter(word));
    }
    loop {
        match frame_length(buf, config.max_frame_bytes).map_err(|e| e.to_string())? {
            Some(n) => {
                let request = ConnectRequest::from_bytes(&buf[4..n]).map_err(|e| format!("bad handshake: {e}"))?;
                buf.drain(..n);
                return Ok(First::Connect(request));
            }
            None => {
                let n = stream.read_buf(buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed during handshake".into());
                }
                metrics.bytes_received.inc_by(n as u64);
            }
        }
    }
}

async fn four_letter(mut stream: TcpStream, addr: SocketAddr, command: &'static str, driver: mpsc::Sender<ToDriver>) {
    let (reply, answer) = oneshot::channel();
    if driver.send(ToDriver::FourLetter { command, addr, reply }).await.is_ok() {
        if let Ok(text) = answer.await {
            let _ = stream.write_all(text.as_bytes()).await;
        }
    }
    let _ = stream.shutdown().await;
}

/// Reads requests and writes replies until either side closes.
async fn pump(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    conn: ConnId,
    driver: &mpsc::Sender<ToDriver>,
    rx: &mut mpsc::Receiver<Outbound>,
    config: &Config,
    metrics: &Metrics,
) -> Result<(), String> {
    let (mut reader, mut writer) = stream.split();
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut outstanding = 0usize;
    loop {
        // Frames already buffered (pipelined behind the handshake, or read together) first;
        // they arrived together, and the buffer is compacted once after them.
        let arrived = Instant::now();
        let mut consumed = 0;
        while outstanding < config.max_outstanding_per_conn {
            let Some(n) = frame_length(&buf[consumed..], config.max_frame_bytes).map_err(|e| e.to_string())? else {
                break;
            };
            let payload = &buf[consumed + 4..consumed + n];
            let mut r = proto::Reader::new(payload);
            let header = RequestHeader::decode(&mut r).map_err(|e| format!("frame without a request header: {e}"))?;
            let request = Request::decode(header.opcode, r.rest());
            consumed += n;
            outstanding += 1;
            let input = Input::Request { conn, xid: header.xid, request };
            driver.send(ToDriver::Input(input, arrived)).await.map_err(|_| "server stopping")?;
        }
        buf.drain(..consumed);
        let can_read = outstanding < config.max_outstanding_per_conn;
        tokio::select! {
            message = rx.recv() => {
                let Some(message) = message else { return Ok(()) };
                let mut next = Some(message);
                let mut close = false;
                let (mut response_bytes, mut watch_bytes) = (0, 0);
                // Batch everything queued into one write.
                while let Some(message) = next.take() {
                    let before = out.len();
                    match message {
                        Outbound::Connected(response) => proto::append_frame(&mut out, |w| response.encode(w)),
                        // Sizes without the length prefix, as ZooKeeper counts them; the
                        // handshake's reply is not counted, as in ZooKeeper.
                        Outbound::Reply(header, body) => {
                            outstanding = outstanding.saturating_sub(1);
                            append_reply_frame(&mut out, &header, body.as_ref());
                            let size = out.len() - before - 4;
                            metrics.response_sizes.record(size);
                            response_bytes += size;
                        }
                        Outbound::Notify(event, path) => {
                            append_notification_frame(&mut out, event as i32, &path);
                            watch_bytes += out.len() - before - 4;
                        }
                        Outbound::Close => close = true,
                    }
                    if close || out.len() > 1 << 20 {
                        break;
                    }
                    next = rx.try_recv().ok();
                }
                // Counted when sent off, so a client that has its reply sees it counted.
                metrics.watch_bytes.inc_by(watch_bytes as u64);
                metrics.response_bytes.inc_by(response_bytes as u64);
                writer.write_all(&out).await.map_err(|e| e.to_string())?;
                out.clear();
                if close {
                    let _ = writer.shutdown().await;
                    return Ok(());
                }
            }
            read = reader.read_buf(buf), if can_read => {
                let n = read.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("closed by client".into());
                }
                metrics.bytes_received.inc_by(n as u64);
            }
        }
    }
}
