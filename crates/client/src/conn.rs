//! The connection task: the one owner of the socket, the requests in flight, the watch
//! registry and the session's identity.
//!
//! [`crate::Client`] handles send it [`Command`]s over a bounded channel, each with a
//! oneshot for the reply. The task writes each request as it comes (pipelining), keeps
//! the requests in flight in a FIFO and matches each reply to the oldest one by xid, as
//! ZooKeeper answers a connection's requests in order. Pings and auth replies carry
//! their own xids (-2, -4) and are not part of that FIFO, since servers answer them
//! ahead of slow requests.
//!
//! When the connection is lost, the requests in flight fail with ConnectionLoss (they may
//! or may not have been applied) and the task connects to the next host with the same
//! session id and password. Requests that arrive meanwhile wait, up to the session
//! timeout. On the new connection it first re-sends the auth packets, then re-registers
//! every watch with setWatches2 (relative to the last zxid it saw, so the server fires
//! what changed while the client was away), then sends the waiting requests.
//! The task ends when the session expires, auth fails or the client closes; every
//! waiting caller then gets that as its error.

use crate::connect_string::ConnectString;
use crate::types::{KeeperState, SessionState, WatcherType};
use crate::watch::{Kind, Registry, Watcher};
use crate::Error;
use proto::{
    append_request_frame, encode_record_frame, frame_length, xid, AuthPacket, ConnectRequest, ConnectResponse, OpCode,
    Reader, Record, ReplyHeader, Request, Response, WatcherEvent,
};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep, sleep_until, timeout, Instant};

/// What a handle asks of the task.
pub(crate) enum Command {
    Call(Call),
    /// An auth packet; remembered and re-sent on every later connection.
    Auth {
        packet: AuthPacket,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Close the session (closeSession), then stop.
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// One request with server paths, what to do to the registry when its reply comes, and
/// where the reply goes.
pub(crate) struct Call {
    pub request: Request,
    pub after: After,
    pub reply: oneshot::Sender<Result<Response, Error>>,
}

/// Registry changes that depend on a reply: ZooKeeper registers a watch only if the read
/// succeeded (or, for exists, found no node).
pub(crate) enum After {
    Nothing,
    Watch {
        path: String,
        watcher: Watcher,
        on_ok: Kind,
        on_no_node: Option<Kind>,
    },
    /// `local`: remove on this side even if the server cannot (Java's `local` flag).
    RemoveWatches {
        path: String,
        watcher_type: WatcherType,
        only: Option<Watcher>,
        local: bool,
    },
}

/// The session as the handles see it, published on a watch channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Where the session stands.
    pub state: SessionState,
    /// 0 until the first session is established.
    pub id: i64,
    /// The session's secret, which a resume must present.
    pub password: Vec<u8>,
    /// The timeout the server granted.
    pub timeout_ms: i32,
    /// The `host:port` of the current (or last) connection.
    pub host: Option<String>,
}

/// Knobs fixed at connect time.
pub(crate) struct Settings {
    pub connect: ConnectString,
    pub timeout_ms: i32,
    pub read_only: bool,
    pub max_frame: usize,
}

/// Why the task stops for good.
pub(crate) enum Stop {
    Expired,
    AuthFailed,
    Closed(Option<oneshot::Sender<()>>),
}

enum Outcome {
    /// The connection broke; the session may live on.
    Lost(String),
    Stop(Stop),
}

/// A request in flight.
struct Pending {
    xid: i32,
    opcode: OpCode,
    /// `None` for the task's own requests (setWatches2, closeSession).
    call: Option<Call>,
}

/// The state of one connection, dropped with it.
#[derive(Default)]
struct Live {
    pending: VecDeque<Pending>,
    auth_waiters: VecDeque<Option<oneshot::Sender<Result<(), Error>>>>,
    out: Vec<u8>,
    written: usize,
    /// Set once closeSession is sent: who waits for the close, and until when.
    closing: Option<(Option<oneshot::Sender<()>>, Instant)>,
}

/// Stop taking new requests while this many bytes wait to be written, so a fast caller
/// cannot grow the buffer without bound.
const OUT_HIGH_WATER: usize = 4 << 20;

pub(crate) struct Task {
    settings: Settings,
    commands: mpsc::Receiver<Command>,
    session: watch::Sender<Session>,
    session_id: i64,
    password: Vec<u8>,
    timeout_ms: i32,
    last_zxid: i64,
    next_xid: i32,
    /// The host in use, or the last one tried.
    host: usize,
    auths: Vec<AuthPacket>,
    registry: Registry,
    /// Commands that arrived while no connection was up.
    queued: VecDeque<Command>,
}

impl Task {
    pub fn new(
        settings: Settings,
        commands: mpsc::Receiver<Command>,
        session: watch::Sender<Session>,
        resume: Option<(i64, Vec<u8>)>,
    ) -> Task {
        let (session_id, password) = resume.unwrap_or((0, vec![0; 16]));
        Task {
            timeout_ms: settings.timeout_ms,
            settings,
            commands,
            session,
            session_id,
            password,
            last_zxid: 0,
            next_xid: 1,
            host: 0,
            auths: Vec::new(),
            registry: Registry::default(),
            queued: VecDeque::new(),
        }
    }

    fn publish(&self, state: SessionState) {
        let host = self.settings.connect.hosts.get(self.host).cloned();
        self.session.send_replace(Session {
            state,
            id: self.session_id,
            password: self.password.clone(),
            timeout_ms: self.timeout_ms,
            host,
        });
    }

    fn next_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        // Stay positive: negative xids are the protocol's special ones.
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        xid
    }

    fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1) as u64)
    }

    /// Finds a server that takes the session: hosts in turn from the one after the last,
    /// (from the first for a new client), with a growing pause after each full round.
    /// Commands that arrive meanwhile are queued; those that wait longer than the
    /// session timeout fail with ConnectionLoss, since the session is then most likely
    /// gone.
    pub async fn establish(&mut self, first: bool) -> Result<TcpStream, Stop> {
        let hosts = self.settings.connect.hosts.clone();
        let disconnected_at = Instant::now();
        let mut attempt_no: usize = 0;
        let (mut tried_in_round, mut rounds) = (0, 0u32);
        loop {
            if !first || attempt_no > 0 {
                self.host = (self.host + 1) % hosts.len();
            }
            attempt_no += 1;
            // Every host failed once: pause before the next round, longer each time.
            let pause = if tried_in_round == hosts.len() {
                tried_in_round = 0;
                rounds += 1;
                Duration::from_millis((100u64 << rounds.min(4)).min(1000))
            } else {
                Duration::ZERO
            };
            tried_in_round += 1;
            let host = hosts[self.host].clone();
            let request = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: self.last_zxid,
                timeout_ms: self.settings.timeout_ms,
                session_id: self.session_id,
                passwd: self.password.clone(),
                read_only: Some(self.settings.read_only),
            };
            // Java gives each host an equal share of the session timeout.
            let limit = (Duration::from_millis(self.settings.timeout_ms.max(0) as u64) / hosts.len() as u32)
                .max(Duration::from_secs(1));
            let max_frame = self.settings.max_frame;
            let attempt = async move {
                sleep(pause).await;
                handshake(&host, &request, limit, max_frame).await
            };
            tokio::pin!(attempt);
            let give_up_at = disconnected_at + self.session_timeout();
            let result = loop {
                tokio::select! {
                    result = &mut attempt => break result,
                    command = self.commands.recv() => match command {
                        None => return Err(Stop::Closed(None)),
                        Some(Command::Close { reply }) => return Err(Stop::Closed(Some(reply))),
                        Some(command) if Instant::now() >= give_up_at => fail_command(command, Error::ConnectionLoss),
                        Some(command) => self.queued.push_back(command),
                    },
                    _ = sleep_until(give_up_at), if !self.queued.is_empty() => {
                        for command in std::mem::take(&mut self.queued) {
                            fail_command(command, Error::ConnectionLoss);
                        }
                    }
                }
            };
            match result {
                Err(why) => tracing::debug!(host = %hosts[self.host], %why, "connection attempt failed"),
                Ok((_, response)) if response.timeout_ms <= 0 => return Err(Stop::Expired),
                Ok((stream, response)) => {
                    self.session_id = response.session_id;
                    self.password = response.passwd;
                    self.timeout_ms = response.timeout_ms;
                    tracing::debug!(host = %hosts[self.host], session = format_args!("0x{:x}", self.session_id),
                        timeout_ms = self.timeout_ms, "session established");
                    // Published here, before any handle can see the session in use.
                    self.publish(SessionState::Connected);
                    return Ok(stream);
                }
            }
        }
    }

    /// Serves connections until the session ends.
    pub async fn run(mut self, mut stream: TcpStream) {
        loop {
            let stop = match self.serve(stream).await {
                Outcome::Stop(stop) => stop,
                Outcome::Lost(why) => {
                    tracing::debug!(%why, "connection lost; reconnecting");
                    self.publish(SessionState::Connecting);
                    self.registry.broadcast(KeeperState::Disconnected, false);
                    match self.establish(false).await {
                        Ok(next) => {
                            stream = next;
                            continue;
                        }
                        Err(stop) => stop,
                    }
                }
            };
            self.finish(stop);
            return;
        }
    }

    /// Ends the task: everyone waiting learns why, every watcher gets the final event.
    fn finish(&mut self, stop: Stop) {
        let (state, keeper_state, error) = match &stop {
            Stop::Expired => (SessionState::Expired, KeeperState::Expired, Error::SessionExpired),
            Stop::AuthFailed => (SessionState::AuthFailed, KeeperState::AuthFailed, Error::AuthFailed),
            Stop::Closed(_) => (SessionState::Closed, KeeperState::Closed, Error::Closed),
        };
        tracing::debug!(?state, session = format_args!("0x{:x}", self.session_id), "client stopped");
        // The state goes out first, so a handle that finds the channel closed reads why.
        self.publish(state);
        self.registry.broadcast(keeper_state, true);
        self.commands.close();
        for command in std::mem::take(&mut self.queued) {
            fail_command(command, error.clone());
        }
        while let Ok(command) = self.commands.try_recv() {
            fail_command(command, error.clone());
        }
        if let Stop::Closed(Some(reply)) = stop {
            let _ = reply.send(());
        }
    }

    async fn serve(&mut self, mut stream: TcpStream) -> Outcome {
        let _ = stream.set_nodelay(true);
        let mut live = Live::default();
        self.registry.broadcast(KeeperState::SyncConnected, false);
        // Auth first: the re-registered watches and the waiting reads may need it.
        for packet in &self.auths {
            append_request_frame(&mut live.out, xid::AUTH, &Request::Auth(packet.clone()));
            live.auth_waiters.push_back(None);
        }
        for set_watches in self.registry.set_watches(&self.settings.connect.chroot, self.last_zxid) {
            let xid = self.next_xid();
            append_request_frame(&mut live.out, xid, &Request::SetWatches2(set_watches));
            live.pending.push_back(Pending { xid, opcode: OpCode::SetWatches2, call: None });
        }
        while let Some(command) = self.queued.pop_front() {
            self.submit(command, &mut live);
        }
        let outcome = self.serve_loop(&mut stream, &mut live).await;
        let error = match &outcome {
            Outcome::Lost(_) => Error::ConnectionLoss,
            Outcome::Stop(Stop::Expired) => Error::SessionExpired,
            Outcome::Stop(Stop::AuthFailed) => Error::AuthFailed,
            Outcome::Stop(Stop::Closed(_)) => Error::Closed,
        };
        for pending in live.pending.drain(..) {
            if let Some(call) = pending.call {
                self.fail_call(call, error.clone());
            }
        }
        for waiter in live.auth_waiters.drain(..).flatten() {
            let _ = waiter.send(Err(error.clone()));
        }
        match (outcome, live.closing.take()) {
            // A connection lost while closing ends the close: the server drops the
            // session either way.
            (Outcome::Lost(_), Some((reply, _))) => Outcome::Stop(Stop::Closed(reply)),
            (outcome, _) => outcome,
        }
    }

    async fn serve_loop(&mut self, stream: &mut TcpStream, live: &mut Live) -> Outcome {
        let (mut reader, mut writer) = stream.split();
        let session_timeout = self.session_timeout();
        // Java's client: silent for 2/3 of the timeout means dead; ping after 1/3 idle.
        let read_timeout = session_timeout * 2 / 3;
        let ping_every = session_timeout / 3;
        let mut inbuf: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut last_received = Instant::now();
        let mut last_sent = Instant::now();
        loop {
            // Room for a large read: a Vec grows by only 64 bytes when it is full.
            if inbuf.capacity() - inbuf.len() < 16 * 1024 {
                inbuf.reserve(64 * 1024);
            }
            let accepting = live.closing.is_none() && live.out.len() - live.written < OUT_HIGH_WATER;
            let close_deadline = live.closing.as_ref().map(|(_, at)| *at);
            tokio::select! {
                read = reader.read_buf(&mut inbuf) => match read {
                    Ok(0) => return Outcome::Lost("the server closed the connection".into()),
                    Err(e) => return Outcome::Lost(e.to_string()),
                    Ok(_) => {
                        last_received = Instant::now();
                        if let Err(outcome) = self.take_frames(&mut inbuf, live) {
                            return outcome;
                        }
                    }
                },
                written = writer.write(&live.out[live.written..]), if live.written < live.out.len() => match written {
                    Ok(n) => {
                        live.written += n;
                        if live.written == live.out.len() {
                            live.out.clear();
                            live.written = 0;
                        }
                    }
                    Err(e) => return Outcome::Lost(e.to_string()),
                },
                command = self.commands.recv(), if accepting => {
                    match command {
                        // Every handle is gone: close the session rather than leave it to expire.
                        None => self.begin_close(live, None),
                        Some(command) => self.submit(command, live),
                    }
                    last_sent = Instant::now();
                },
                _ = sleep_until(last_sent + ping_every) => {
                    append_request_frame(&mut live.out, xid::PING, &Request::Ping);
                    last_sent = Instant::now();
                },
                _ = sleep_until(last_received + read_timeout) => {
                    return Outcome::Lost(format!("nothing received for {} ms", read_timeout.as_millis()));
                },
                _ = sleep_until(close_deadline.unwrap_or_else(Instant::now)), if close_deadline.is_some() => {
                    let reply = live.closing.take().and_then(|(reply, _)| reply);
                    return Outcome::Stop(Stop::Closed(reply));
                },
            }
        }
    }

    /// Handles every whole frame in `inbuf` and keeps the partial rest.
    fn take_frames(&mut self, inbuf: &mut Vec<u8>, live: &mut Live) -> Result<(), Outcome> {
        let mut start = 0;
        let result = loop {
            match frame_length(&inbuf[start..], self.settings.max_frame) {
                Ok(Some(length)) => {
                    let frame = &inbuf[start + 4..start + length];
                    start += length;
                    if let Err(outcome) = self.on_frame(frame, live) {
                        break Err(outcome);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(Outcome::Lost(e.to_string())),
            }
        };
        inbuf.drain(..start);
        result
    }

    fn on_frame(&mut self, frame: &[u8], live: &mut Live) -> Result<(), Outcome> {
        let lost = |what: String| Outcome::Lost(what);
        let mut reader = Reader::new(frame);
        let header = ReplyHeader::decode(&mut reader).map_err(|e| lost(format!("bad reply header: {e}")))?;
        let body = reader.rest();
        match header.xid {
            xid::NOTIFICATION => {
                let event = WatcherEvent::from_bytes(body).map_err(|e| lost(format!("bad notification: {e}")))?;
                match crate::types::EventType::from_i32(event.event_type) {
                    Some(event_type) => {
                        let path = self.settings.connect.chroot.to_client(&event.path);
                        self.registry.notify(event_type, &path);
                    }
                    None => tracing::warn!(event.event_type, "unknown event type"),
                }
            }
            xid::PING => {}
            xid::AUTH => {
                let waiter = live.auth_waiters.pop_front().flatten();
                let result = match Error::from_code(header.err) {
                    None => Ok(()),
                    Some(e) => Err(e),
                };
                let failed = result == Err(Error::AuthFailed);
                if failed {
                    // Before the caller hears of it, so that it finds the client stopped.
                    self.publish(SessionState::AuthFailed);
                }
                if let Some(waiter) = waiter {
                    let _ = waiter.send(result);
                }
                if failed {
                    return Err(Outcome::Stop(Stop::AuthFailed));
                }
            }
            xid => {
                let Some(pending) = live.pending.pop_front() else {
                    return Err(lost(format!("reply with xid {xid} to no request")));
                };
                if pending.xid != xid {
                    // Replies come in request order; anything else means a broken stream.
                    return Err(lost(format!("xid out of order: got {xid}, expected {}", pending.xid)));
                }
                if header.zxid > 0 {
                    self.last_zxid = header.zxid;
                }
                match (pending.opcode, pending.call) {
                    (OpCode::CloseSession, _) => {
                        let reply = live.closing.take().and_then(|(reply, _)| reply);
                        return Err(Outcome::Stop(Stop::Closed(reply)));
                    }
                    (_, Some(call)) => self.complete(call, header.err, body),
                    (opcode, None) if header.err != 0 => tracing::warn!(?opcode, header.err, "request failed"),
                    (_, None) => {}
                }
            }
        }
        Ok(())
    }

    /// Answers a caller, after the registry changes its reply calls for.
    fn complete(&mut self, call: Call, err: i32, body: &[u8]) {
        let opcode = call.request.opcode();
        let mut result = match Error::from_code(err) {
            None => Response::decode(opcode, body).map_err(|e| Error::Protocol(format!("bad {opcode:?} reply: {e}"))),
            Some(e) => Err(e),
        };
        match call.after {
            After::Nothing => {}
            After::Watch { path, watcher, on_ok, on_no_node } => match (&result, on_no_node) {
                (Ok(_), _) => self.registry.add(on_ok, &path, &watcher),
                (Err(Error::NoNode), Some(kind)) => self.registry.add(kind, &path, &watcher),
                _ => {}
            },
            After::RemoveWatches { path, watcher_type, only, local } => {
                if result.is_ok() || local {
                    self.registry.remove(&path, watcher_type, only.as_ref());
                    result = Ok(Response::Empty);
                }
            }
        }
        let _ = call.reply.send(result);
    }

    fn fail_call(&mut self, call: Call, error: Error) {
        if let After::RemoveWatches { path, watcher_type, only, local: true } = &call.after {
            self.registry.remove(path, *watcher_type, only.as_ref());
            let _ = call.reply.send(Ok(Response::Empty));
            return;
        }
        let _ = call.reply.send(Err(error));
    }

    /// Writes a command's request into the outgoing buffer.
    fn submit(&mut self, command: Command, live: &mut Live) {
        match command {
            Command::Call(call) => {
                if let After::RemoveWatches { path, watcher_type, only, .. } = &call.after {
                    // Java's client answers NoWatcher itself when it holds no such watch.
                    if !self.registry.contains(path, *watcher_type, only.as_ref()) {
                        let _ = call.reply.send(Err(Error::NoWatcher));
                        return;
                    }
                }
                let xid = self.next_xid();
                append_request_frame(&mut live.out, xid, &call.request);
                live.pending.push_back(Pending { xid, opcode: call.request.opcode(), call: Some(call) });
            }
            Command::Auth { packet, reply } => {
                append_request_frame(&mut live.out, xid::AUTH, &Request::Auth(packet.clone()));
                live.auth_waiters.push_back(Some(reply));
                if !self.auths.contains(&packet) {
                    self.auths.push(packet);
                }
            }
            Command::Close { reply } => self.begin_close(live, Some(reply)),
        }
    }

    fn begin_close(&mut self, live: &mut Live, reply: Option<oneshot::Sender<()>>) {
        if live.closing.is_some() {
            // Already closing: the later caller is answered when the task stops anyway
            // (its sender drops then).
            return;
        }
        let xid = self.next_xid();
        append_request_frame(&mut live.out, xid, &Request::CloseSession);
        live.pending.push_back(Pending { xid, opcode: OpCode::CloseSession, call: None });
        let wait = self.session_timeout().min(Duration::from_secs(5));
        live.closing = Some((reply, Instant::now() + wait));
    }
}

fn fail_command(command: Command, error: Error) {
    match command {
        Command::Call(call) => {
            let _ = call.reply.send(Err(error));
        }
        Command::Auth { reply, .. } => {
            let _ = reply.send(Err(error));
        }
        Command::Close { reply } => {
            let _ = reply.send(());
        }
    }
}

/// Opens a TCP connection and exchanges ConnectRequest and ConnectResponse, within `limit`.
async fn handshake(
    host: &str,
    request: &ConnectRequest,
    limit: Duration,
    max_frame: usize,
) -> Result<(TcpStream, ConnectResponse), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(host).await.map_err(|e| format!("connect: {e}"))?;
        stream.write_all(&encode_record_frame(request)).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::with_capacity(64);
        loop {
            match frame_length(&buf, max_frame).map_err(|e| e.to_string())? {
                Some(length) => {
                    let response = ConnectResponse::from_bytes(&buf[4..length]).map_err(|e| e.to_string())?;
                    if buf.len() > length {
                        // A server sends nothing else before the client's first request.
                        return Err("unexpected bytes after the connect response".into());
                    }
                    return Ok((stream, response));
                }
                None => {
                    // A server that will not take us (it is behind our zxid, or full)
                    // closes without answering.
                    if stream.read_buf(&mut buf).await.map_err(|e| format!("read: {e}"))? == 0 {
                        return Err("closed during the handshake".into());
                    }
                }
            }
        }
    };
    timeout(limit, exchange).await.map_err(|_| format!("no answer within {} ms", limit.as_millis()))?
}
