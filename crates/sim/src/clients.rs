//! Simulated clients. Each holds at most one session at a time and one connection, to a
//! random server; it moves to another server when the connection closes or a request goes
//! unanswered for two thirds of the session timeout (ZooKeeper's read timeout); it writes,
//! reads, syncs and pings, and now and then closes its session, or abandons it for the
//! leader to expire. Between a client and its server nothing is lost or delayed: the
//! simulated network is the one between the servers.
//!
//! What a client is told is checked as it arrives: replies come in request order, their
//! zxids never go down (across reconnections too: a client tells each server the last zxid
//! it saw), a write acknowledged with success is the client's own transaction in the
//! committed history, and a session is said to be gone only if it is (closed, or closing).

use crate::{Failure, Sim, TICK_MS};
use proto::{
    ConnectRequest, ConnectResponse, CreateMode, CreateRequest, DeleteRequest, OpCode, PathRequest, PathWatchRequest,
    Record, ReplyHeader, Request, SetDataRequest,
};
use replica::ConnId;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use tree::Txn;
use zab::{ServerId, Zxid};

/// The paths clients write, few so that their writes collide (failed writes take zxids too),
/// nested so that ephemeral and container parents matter.
const PATHS: [&str; 6] = ["/a", "/b", "/a/x", "/a/y", "/b/x", "/c"];

/// Requests a client has in flight at most.
const PIPELINE: usize = 3;

pub(crate) struct Client {
    /// Id and password, once the ensemble created the session.
    session: Option<(i64, Vec<u8>)>,
    timeout_ms: i32,
    conn: Option<Connection>,
    /// The server of the last connection: the next one goes elsewhere.
    last_server: Option<ServerId>,
    /// The highest zxid a reply carried.
    last_zxid: Zxid,
    /// Xids go on across connections, as a ZooKeeper client's do, so that an old
    /// connection's write committing late never matches a new connection's request.
    next_xid: i32,
    /// The session's close was sent: no more requests on it, and the client forgets it when
    /// the connection ends, whether or not the close committed (the leader expires it if not).
    closing: bool,
}

struct Connection {
    id: ConnId,
    server: ServerId,
    /// The handshake was answered.
    open: bool,
    /// The server closed it; the replica hears at the client's next turn, as from a
    /// connection task.
    closed: bool,
    /// When the handshake or the last request was sent.
    last_sent: u64,
    /// Requests not yet answered, in the order sent: xid, opcode, tick.
    waiting: VecDeque<(i32, OpCode, u64)>,
}

impl Client {
    pub(crate) fn new(timeout_ms: i32) -> Client {
        Client { session: None, timeout_ms, conn: None, last_server: None, last_zxid: 0, next_xid: 0, closing: false }
    }

    fn session_id(&self) -> Option<i64> {
        self.session.as_ref().map(|(id, _)| *id)
    }

    fn lose_connection(&mut self) -> Option<Connection> {
        if std::mem::take(&mut self.closing) {
            self.session = None;
        }
        self.conn.take()
    }
}

impl Sim {
    /// Every client's turn, once a tick.
    pub(crate) fn clients_act(&mut self) -> Result<(), Failure> {
        for i in 0..self.clients.len() {
            self.client_acts(i)?;
        }
        Ok(())
    }

    fn client_acts(&mut self, i: usize) -> Result<(), Failure> {
        let tick = self.tick;
        let c = &self.clients[i];
        let patience = (c.timeout_ms as u64 * 2 / 3) / TICK_MS as u64;
        let Some(conn) = &c.conn else {
            return if self.chance(300) { self.connect(i) } else { Ok(()) };
        };
        let stale = conn.waiting.front().map_or(conn.last_sent, |(_, _, sent)| *sent);
        if conn.closed || ((!conn.open || !conn.waiting.is_empty()) && tick - stale > patience) {
            if !conn.closed {
                self.log(|| format!("c{i} gave up waiting"));
            }
            return self.hang_up(i);
        }
        if !conn.open || c.session.is_none() || c.closing {
            return Ok(());
        }
        let (idle, busy) = (tick - conn.last_sent, conn.waiting.len() >= PIPELINE);
        if self.chance(3) {
            // The application goes away without a word: the leader expires the session.
            self.log(|| format!("c{i} abandoned its session"));
            self.clients[i].session = None;
            self.hang_up(i)
        } else if self.chance(4) {
            self.clients[i].closing = true;
            self.send(i, Request::CloseSession)
        } else if !busy && self.chance(300) {
            let request = self.random_request(i);
            self.send(i, request)
        } else if idle >= patience / 2 {
            self.send(i, Request::Ping)
        } else {
            Ok(())
        }
    }

    /// Opens a connection to a random server (another than the last), offering the session
    /// if there is one. A server that is down refuses it: the client tries again later.
    fn connect(&mut self, i: usize) -> Result<(), Failure> {
        let last = self.clients[i].last_server;
        let candidates: Vec<ServerId> = self.ids.iter().copied().filter(|s| Some(*s) != last).collect();
        let server = candidates[self.below(candidates.len() as u64) as usize];
        if self.server(server).is_none() {
            return Ok(());
        }
        let (tick, id) = (self.tick, ConnId(self.next_conn));
        self.next_conn += 1;
        let c = &mut self.clients[i];
        let (session_id, passwd) = c.session.clone().unwrap_or((0, vec![0; 16]));
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: c.last_zxid,
            timeout_ms: c.timeout_ms,
            session_id,
            passwd,
            read_only: Some(false),
        };
        c.last_server = Some(server);
        c.conn = Some(Connection { id, server, open: false, closed: false, last_sent: tick, waiting: VecDeque::new() });
        self.log(|| format!("c{i} connects to s{} (session {session_id:#x})", server.0));
        let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1));
        self.replica_step(server, replica::Input::Connect { conn: id, addr, request })
    }

    /// Closes the client's side of its connection; the server hears of it at once.
    fn hang_up(&mut self, i: usize) -> Result<(), Failure> {
        let Some(conn) = self.clients[i].lose_connection() else { return Ok(()) };
        self.replica_step(conn.server, replica::Input::Disconnected { conn: conn.id })
    }

    fn send(&mut self, i: usize, request: Request) -> Result<(), Failure> {
        let tick = self.tick;
        let c = &mut self.clients[i];
        let Some(conn) = c.conn.as_mut() else { return Ok(()) };
        let xid = if let Request::Ping = request {
            proto::xid::PING
        } else {
            c.next_xid += 1;
            c.next_xid
        };
        let op = request.opcode();
        conn.waiting.push_back((xid, op, tick));
        conn.last_sent = tick;
        let (server, id) = (conn.server, conn.id);
        if op != OpCode::Ping {
            self.log(|| format!("c{i} -> s{}: {op:?} xid {xid}", server.0));
        }
        self.replica_step(server, replica::Input::Request { conn: id, xid, request: Ok(request) })
    }

    fn random_path(&mut self) -> String {
        PATHS[self.below(PATHS.len() as u64) as usize].to_owned()
    }

    fn random_request(&mut self, i: usize) -> Request {
        let data = Some(format!("c{i}@{}", self.tick).into_bytes());
        let path = self.random_path();
        let create =
            |path: String, flags: i32| CreateRequest { path, data: data.clone(), acl: tree::acl::open_acl(), flags };
        match self.below(12) {
            // Persistent, ephemeral, and their sequential forms.
            0..=2 => Request::Create(create(path, self.below(4) as i32)),
            3 => Request::CreateContainer(create(path, CreateMode::Container.flags())),
            4 | 5 => Request::SetData(SetDataRequest { path, data: data.clone(), version: self.below(3) as i32 - 1 }),
            6 => Request::Delete(DeleteRequest { path, version: -1 }),
            7 => {
                let (second, third) = (self.random_path(), self.random_path());
                Request::Multi(vec![
                    Request::Create(create(path, self.below(2) as i32)),
                    Request::SetData(SetDataRequest { path: second, data: data.clone(), version: -1 }),
                    Request::Delete(DeleteRequest { path: third, version: -1 }),
                ])
            }
            8 => Request::GetData(PathWatchRequest { path, watch: self.chance(500) }),
            9 => Request::Exists(PathWatchRequest { path, watch: self.chance(500) }),
            10 => Request::GetChildren(PathWatchRequest { path: "/".into(), watch: self.chance(500) }),
            _ => Request::Sync(PathRequest { path }),
        }
    }

    /// The client on this connection, unless it is gone or closed.
    fn client_on(&self, server: ServerId, conn: ConnId) -> Option<usize> {
        self.clients
            .iter()
            .position(|c| c.conn.as_ref().is_some_and(|k| k.id == conn && k.server == server && !k.closed))
    }

    /// The handshake's answer: the session taken over or created, or gone.
    pub(crate) fn connected(
        &mut self,
        server: ServerId,
        conn: ConnId,
        response: ConnectResponse,
    ) -> Result<(), Failure> {
        let Some(i) = self.client_on(server, conn) else { return Ok(()) };
        let c = &mut self.clients[i];
        if let Some(conn) = c.conn.as_mut() {
            conn.open = true;
        }
        match c.session_id() {
            // Closed, or closing: the server closes the connection next.
            Some(id) if response.session_id == 0 => {
                c.session = None;
                self.log(|| format!("c{i} was told its session {id:#x} is gone"));
                let Some(replica) = self.server(server).map(|s| &s.replica) else { return Ok(()) };
                let closing = replica.sessions().get(id).is_some_and(|s| s.closing);
                let closed = self.closed.get(&id).is_some_and(|z| *z <= replica.applied_zxid());
                if !closing && !closed {
                    let applied = replica.applied_zxid();
                    return Err(self.fail(format!(
                        "s{} at {applied:#x} told c{i} that session {id:#x} is gone, but it was neither closed nor closing",
                        server.0
                    )));
                }
            }
            Some(id) if id == response.session_id => {
                self.coverage.reconnects += 1;
                self.log(|| format!("c{i} resumed session {id:#x} on s{}", server.0));
            }
            Some(id) => {
                let got = response.session_id;
                return Err(self.fail(format!("c{i} asked s{} for session {id:#x} and got {got:#x}", server.0)));
            }
            None => {
                c.session = Some((response.session_id, response.passwd));
                self.log(|| format!("c{i} has a new session {:#x} on s{}", response.session_id, server.0));
            }
        }
        Ok(())
    }

    pub(crate) fn replied(&mut self, server: ServerId, conn: ConnId, header: ReplyHeader) -> Result<(), Failure> {
        let Some(i) = self.client_on(server, conn) else { return Ok(()) };
        let c = &mut self.clients[i];
        let expected = c.conn.as_mut().and_then(|k| k.waiting.pop_front());
        let Some((xid, op, _)) = expected.filter(|(xid, _, _)| *xid == header.xid) else {
            let expected = expected.map(|(xid, _, _)| xid);
            return Err(self.fail(format!("c{i} got a reply to xid {} while waiting for {expected:?}", header.xid)));
        };
        if header.zxid < c.last_zxid {
            let seen = c.last_zxid;
            return Err(self.fail(format!(
                "c{i} got zxid {:#x} from s{} after seeing {seen:#x} (reply to {op:?} xid {xid})",
                header.zxid, server.0
            )));
        }
        c.last_zxid = header.zxid;
        let session = c.session_id();
        if header.err != 0 {
            return Ok(());
        }
        match op {
            OpCode::Sync => self.coverage.syncs_answered += 1,
            OpCode::CloseSession => {
                self.clients[i].session = None;
                self.acknowledged(i, session, xid, header.zxid)?;
            }
            op if op.is_write() => self.acknowledged(i, session, xid, header.zxid)?,
            _ => {}
        }
        Ok(())
    }

    /// An acknowledged write is the client's own transaction in the committed history.
    fn acknowledged(&mut self, i: usize, session: Option<i64>, xid: i32, zxid: Zxid) -> Result<(), Failure> {
        let committed = self.history.binary_search_by_key(&zxid, |e| e.zxid).ok();
        let txn = committed.and_then(|at| Txn::from_bytes(&self.history[at].data).ok());
        if !txn.is_some_and(|t| Some(t.session_id) == session && t.cxid == xid) {
            return Err(self.fail(format!(
                "c{i}'s write xid {xid} was acknowledged at {zxid:#x}, which is not its transaction in the committed history"
            )));
        }
        self.coverage.acked_writes += 1;
        self.acked.push(zxid);
        Ok(())
    }

    pub(crate) fn closed_by_server(&mut self, server: ServerId, conn: ConnId) {
        if let Some(i) = self.client_on(server, conn) {
            if let Some(conn) = self.clients[i].conn.as_mut() {
                conn.closed = true;
            }
        }
    }

    /// A crashed server's connections are gone, and with them what was waiting on them.
    pub(crate) fn server_crashed(&mut self, server: ServerId) {
        for c in &mut self.clients {
            if c.conn.as_ref().is_some_and(|k| k.server == server) {
                c.lose_connection();
            }
        }
    }
}
