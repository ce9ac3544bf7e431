//! One Warren server's brain as a pure state machine: sessions, then the request pipeline
//! decode → prepare → log → apply → reply, with ZooKeeper's ordering rules.
//!
//! [`Replica::step`] takes an [`Input`] (a connection's handshake or request, a
//! disconnect, a tick, or "the log is durable up to zxid") and the wall-clock time, and
//! returns [`Output`]s (replies, watch notifications, connection closes, and transactions to
//! make durable). It owns the tree, the sessions and the connections' protocol state; it
//! does no IO, reads no clock and draws randomness only from the seed it was given, so a
//! simulator can drive it exactly as the tokio server does.
//!
//! Ordering: writes are prepared (and take their zxid) on arrival, and applied in zxid
//! order once [`Input::Persisted`] says they are durable. A connection's reads wait behind
//! its own unapplied writes, so every client sees its own writes, in order. Watch events of
//! a write are emitted before the write's reply, on every connection.

pub mod ensemble;
mod prep;
mod read;
pub mod session;
mod snapshot;

pub use ensemble::{Role, ToFollower, ToLeader};
pub use snapshot::SnapshotPart;

use prep::{Pending, Prep};
use proto::{
    ConnectRequest, ConnectResponse, DecodeRequestError, ErrorCode, EventType, OpCode, ReplyHeader, Request, Response,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use session::Sessions;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use tree::acl::AuthIds;
use tree::{owner, DataTree, OpResult, Txn, TxnOp};

pub use tree::ConnId;

/// The settings the pipeline needs, from `zoo.cfg`.
#[derive(Debug, Clone)]
pub struct Config {
    pub server_id: u8,
    pub tick_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// TTL nodes (`extendedTypesEnabled`); on by default in Warren.
    pub ttl_enabled: bool,
    /// `user:base64(sha1(user:password))` of the super user, if any.
    pub super_digest: Option<String>,
    /// How often containers and TTL nodes are checked for removal.
    pub container_check_interval_ms: i64,
    /// Transactions between snapshots, on average (ZooKeeper's `snapCount`).
    pub snap_count: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_id: 0,
            tick_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            ttl_enabled: true,
            super_digest: None,
            container_check_interval_ms: 60_000,
            snap_count: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The first frame of a connection.
    Connect {
        conn: ConnId,
        addr: IpAddr,
        request: ConnectRequest,
    },
    /// A later frame, decoded or not.
    Request {
        conn: ConnId,
        xid: i32,
        request: Result<Request, DecodeRequestError>,
    },
    Disconnected {
        conn: ConnId,
    },
    /// Time passed: expire sessions, remove containers and TTL nodes.
    Tick,
    /// Every transaction up to `zxid` is durable.
    Persisted {
        zxid: i64,
    },
    /// The log could not make the pending transactions durable: they fail, and writes are
    /// refused until [`Input::LogHealthy`].
    LogFailed,
    LogHealthy,
    /// The server's part in its ensemble changed (from ZAB). Any change ends every client
    /// connection, as in ZooKeeper: what was in flight may or may not commit, and a client
    /// learns which by reconnecting.
    RoleChanged(Role),
    /// In an ensemble: ZAB committed transaction `zxid` (in zxid order). It replaces
    /// [`Input::Persisted`], which only a standalone server gets. `txn` is needed only when
    /// another server prepared it: a leader commits its own from what it prepared
    /// ([`Replica::prepared_here`]), without decoding it again.
    Committed {
        zxid: i64,
        txn: Option<Txn>,
    },
    /// On the leader: a follower's message.
    FromFollower {
        from: u64,
        msg: ToLeader,
    },
    /// On a follower: the leader's message.
    FromLeader(ToFollower),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Connected {
        conn: ConnId,
        response: ConnectResponse,
    },
    Reply {
        conn: ConnId,
        header: ReplyHeader,
        body: Option<Response>,
    },
    Notify {
        conn: ConnId,
        event: EventType,
        path: String,
    },
    /// Close the connection once what was queued for it is written.
    Close {
        conn: ConnId,
    },
    /// Make this transaction durable, then answer with [`Input::Persisted`] (standalone);
    /// on a leader, hand it to ZAB, which answers with [`Input::Committed`].
    Append {
        txn: Txn,
    },
    /// On a follower: send this to the leader.
    ToLeader(ToLeader),
    /// On the leader: send this to follower `to`.
    ToFollower {
        to: u64,
        msg: ToFollower,
    },
}

/// A connection's request to resume a session, as negotiated.
#[derive(Debug)]
struct Resume {
    session_id: i64,
    passwd: Vec<u8>,
    timeout_ms: i32,
    read_only: Option<bool>,
}

/// Where the reply of a transaction goes.
#[derive(Debug)]
enum Origin {
    /// Session expiry, container and TTL removal.
    Server,
    Connect {
        conn: ConnId,
        read_only: Option<bool>,
    },
    Request {
        conn: ConnId,
        xid: i32,
        op: OpCode,
        sub_ops: Vec<OpCode>,
    },
}

#[derive(Debug)]
struct InFlight {
    txn: Txn,
    origin: Origin,
}

/// A connection's requests that wait for its earlier writes.
#[derive(Debug)]
enum Queued {
    Write {
        zxid: i64,
    },
    Read {
        xid: i32,
        request: Result<Request, DecodeRequestError>,
    },
    /// On a follower: a write handed to the leader; `reply` is set when it commits here.
    Forwarded {
        cxid: i32,
        op: OpCode,
        sub_ops: Vec<OpCode>,
        reply: Option<(i64, Result<Response, ErrorCode>)>,
    },
    /// On a follower: a sync, answered once this server has applied up to `until` (which
    /// the leader tells).
    Sync {
        xid: i32,
        path: String,
        until: Option<i64>,
    },
}

#[derive(Debug)]
struct Conn {
    auth: AuthIds,
    session_id: Option<i64>,
    queue: VecDeque<Queued>,
    /// Set once the connection was told to close: later input from it is ignored.
    closing: bool,
}

pub struct Replica {
    config: Config,
    tree: DataTree,
    sessions: Sessions,
    pending: Pending,
    /// The last zxid handed out (prepared).
    prepared_zxid: i64,
    /// The last zxid applied to the tree: what reads see.
    applied_zxid: i64,
    in_flight: VecDeque<InFlight>,
    conns: BTreeMap<ConnId, Conn>,
    rng: ChaCha8Rng,
    now_ms: i64,
    next_reap_ms: i64,
    out: Vec<Output>,
    log_healthy: bool,
    /// Bumped at every log failure; appends of an older generation are stale.
    log_generation: u64,
    txns_since_snapshot: u64,
    snapshot_threshold: u64,
    snapshot: Option<snapshot::SnapshotState>,
    role: Role,
    /// On a follower: new sessions waiting for their creation to commit, with their connection.
    connecting: BTreeMap<i64, (ConnId, Option<bool>)>,
    /// On a follower: sessions heard from since the last report to the leader.
    touched: BTreeSet<i64>,
    /// On a follower: connections waiting for this zxid to be applied (a sync, or the
    /// revalidation of a session).
    sync_waits: BTreeMap<i64, Vec<ConnId>>,
    /// On a follower: connections resuming a session this server does not know, waiting
    /// for the leader's answer.
    revalidating: BTreeMap<ConnId, Resume>,
}

impl Replica {
    pub fn new(config: Config, now_ms: i64, seed: u64) -> Replica {
        let mut replica = Replica {
            sessions: Sessions::new(config.server_id, now_ms, config.tick_ms),
            next_reap_ms: now_ms + config.container_check_interval_ms,
            config,
            tree: DataTree::new(),
            pending: Pending::default(),
            prepared_zxid: 0,
            applied_zxid: 0,
            in_flight: VecDeque::new(),
            conns: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ms,
            out: Vec::new(),
            log_healthy: true,
            log_generation: 0,
            txns_since_snapshot: 0,
            snapshot_threshold: u64::MAX,
            snapshot: None,
            role: Role::Standalone,
            connecting: BTreeMap::new(),
            touched: BTreeSet::new(),
            sync_waits: BTreeMap::new(),
            revalidating: BTreeMap::new(),
        };
        replica.snapshot_threshold = replica.next_snapshot_threshold();
        replica
    }

    /// Replays transactions read back from storage (after a restart), in zxid order.
    pub fn recover(&mut self, txns: impl IntoIterator<Item = Txn>) {
        for txn in txns {
            self.apply_txn(&txn);
        }
    }

    /// Whether the transaction `zxid` is the next of those this replica prepared itself
    /// (a leader's own): its commit needs no copy of the transaction.
    pub fn prepared_here(&self, zxid: i64) -> bool {
        self.in_flight.front().is_some_and(|f| f.txn.zxid == zxid)
    }

    /// The one place the state moves forward: applies a transaction to the tree and the
    /// sessions, in zxid order, and emits its watch events (before any reply to it).
    fn apply_txn(&mut self, txn: &Txn) -> OpResult {
        debug_assert!(txn.zxid > self.applied_zxid, "transactions apply in zxid order");
        let (result, events) = self.tree.apply(txn);
        self.applied_zxid = txn.zxid;
        self.prepared_zxid = self.prepared_zxid.max(txn.zxid);
        self.pending.retire(txn.zxid);
        self.session_effects(txn);
        for n in events {
            self.out.push(Output::Notify { conn: n.conn, event: n.event, path: n.path });
        }
        result
    }

    pub fn log_healthy(&self) -> bool {
        self.log_healthy
    }

    pub fn log_generation(&self) -> u64 {
        self.log_generation
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn applied_zxid(&self) -> i64 {
        self.applied_zxid
    }

    /// Writes prepared but not yet applied.
    pub fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The session a connection is bound to.
    pub fn conn_session(&self, conn: ConnId) -> Option<i64> {
        self.conns.get(&conn).and_then(|c| c.session_id)
    }

    /// Advances the machine by one input at wall-clock time `now_ms`.
    pub fn step(&mut self, now_ms: i64, input: Input) -> Vec<Output> {
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            Input::Connect { conn, addr, request } => self.connect(conn, addr, request),
            Input::Request { conn, xid, request } => self.request(conn, xid, request),
            Input::Disconnected { conn } => self.disconnected(conn),
            Input::Tick => self.tick(),
            Input::Persisted { zxid } => self.persisted(zxid),
            Input::LogFailed => self.log_failed(),
            Input::LogHealthy => self.log_healthy = true,
            Input::RoleChanged(role) => self.set_role(role),
            Input::Committed { zxid, txn } => self.committed(zxid, txn),
            Input::FromFollower { from, msg } => self.on_follower_message(from, msg),
            Input::FromLeader(ToFollower::Synced { session_id, cxid, zxid }) => self.synced(session_id, cxid, zxid),
            Input::FromLeader(ToFollower::Revalidated { conn, zxid }) => self.wait_applied(zxid, ConnId(conn)),
        }
        std::mem::take(&mut self.out)
    }

    fn reply(&mut self, conn: ConnId, xid: i32, zxid: i64, result: Result<Response, ErrorCode>) {
        let (err, body) = match result {
            Ok(body) => (0, Some(body)),
            Err(e) => (e as i32, None),
        };
        self.out.push(Output::Reply { conn, header: ReplyHeader { xid, zxid, err }, body });
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.closing {
                c.closing = true;
                self.out.push(Output::Close { conn });
            }
        }
    }

    fn connect(&mut self, conn: ConnId, addr: IpAddr, request: ConnectRequest) {
        self.conns.insert(
            conn,
            Conn { auth: AuthIds::for_address(addr), session_id: None, queue: VecDeque::new(), closing: false },
        );
        if !self.role.is_serving() {
            self.close(conn);
            return;
        }
        // A client must never see older state than it has seen: refuse silently, so that it
        // tries another server.
        if request.last_zxid_seen > self.applied_zxid {
            tracing::info!(
                conn = conn.0,
                last_zxid_seen = request.last_zxid_seen,
                zxid = self.applied_zxid,
                "refused client ahead of this server"
            );
            self.close(conn);
            return;
        }
        let timeout_ms =
            request.timeout_ms.clamp(self.config.min_session_timeout_ms, self.config.max_session_timeout_ms);
        let read_only = request.read_only.map(|_| false);
        if request.session_id == 0 && !self.log_healthy {
            // A new session is a write; the client will retry (or try another server).
            self.close(conn);
            return;
        }
        if request.session_id == 0 {
            let mut passwd = [0u8; 16];
            self.rng.fill_bytes(&mut passwd);
            let session_id = self.sessions.create(passwd, timeout_ms, self.now_ms, conn);
            self.bind(conn, session_id);
            tracing::info!(session = format_args!("{session_id:#x}"), timeout_ms, %addr, "session opened");
            if self.role == Role::Following {
                self.connecting.insert(session_id, (conn, read_only));
                self.out.push(Output::ToLeader(ToLeader::CreateSession { session_id, passwd, timeout_ms }));
                return;
            }
            let txn = self.next_txn(session_id, 0, TxnOp::CreateSession { timeout_ms, passwd });
            self.propose(txn, Origin::Connect { conn, read_only });
            return;
        }
        let session_id = request.session_id;
        if self.role == Role::Following && self.sessions.get(session_id).is_none() {
            // Perhaps created on another server and not applied here yet: the leader says how
            // far to catch up before deciding, as ZooKeeper's learners revalidate with it.
            let resume = Resume { session_id, passwd: request.passwd, timeout_ms, read_only };
            self.revalidating.insert(conn, resume);
            self.out.push(Output::ToLeader(ToLeader::Revalidate { session_id, conn: conn.0 }));
            return;
        }
        self.resume(conn, Resume { session_id, passwd: request.passwd, timeout_ms, read_only });
    }

    /// Binds a connection to the session it asks to resume, or refuses it.
    fn resume(&mut self, conn: ConnId, Resume { session_id, passwd, timeout_ms, read_only }: Resume) {
        let valid = match self.sessions.get_mut(session_id) {
            Some(s) if !s.closing && s.passwd[..] == passwd[..] => {
                s.timeout_ms = timeout_ms;
                Some((s.passwd, s.conn.replace(conn)))
            }
            _ => None,
        };
        match valid {
            Some((passwd, previous)) => {
                if let Some(old) = previous.filter(|old| *old != conn) {
                    self.close(old);
                }
                self.bind(conn, session_id);
                self.touch(session_id);
                let response =
                    ConnectResponse { protocol_version: 0, timeout_ms, session_id, passwd: passwd.to_vec(), read_only };
                self.out.push(Output::Connected { conn, response });
            }
            None => {
                let response = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: 0,
                    session_id: 0,
                    passwd: vec![0; 16],
                    read_only,
                };
                self.out.push(Output::Connected { conn, response });
                self.close(conn);
            }
        }
    }

    fn bind(&mut self, conn: ConnId, session_id: i64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session_id = Some(session_id);
        }
    }

    fn request(&mut self, conn: ConnId, xid: i32, request: Result<Request, DecodeRequestError>) {
        let Some(c) = self.conns.get(&conn).filter(|c| !c.closing) else {
            return;
        };
        let Some(session_id) = c.session_id else {
            return;
        };
        let queued = !c.queue.is_empty();
        self.touch(session_id);
        let closing = self.sessions.get(session_id).is_none_or(|s| s.closing);
        // The ping reply always carries xid -2, whatever the ping had.
        let xid = if matches!(request, Ok(Request::Ping)) { proto::xid::PING } else { xid };
        match request {
            // Auth and SASL are answered at once, as ZooKeeper's network layer does; the new
            // identity applies to the requests after it.
            Ok(Request::Auth(packet)) if !closing => self.auth(conn, xid, packet),
            Ok(Request::Sasl(_)) if !closing => self.reply(conn, xid, 0, Ok(Response::Sasl(None))),
            Ok(request) if request.is_write() && !closing && self.log_healthy => {
                self.write(conn, session_id, xid, request)
            }
            // A write whose body does not decode is still a (failed) transaction in ZooKeeper.
            Err(DecodeRequestError::Malformed { opcode, .. }) if opcode.is_write() && !closing && self.log_healthy => {
                if self.role == Role::Following {
                    return self.forward(conn, session_id, xid, Err(opcode));
                }
                let txn = self.next_txn(session_id, xid, TxnOp::Error { err: ErrorCode::MarshallingError });
                self.propose(txn, Origin::Request { conn, xid, op: opcode, sub_ops: Vec::new() });
            }
            // A follower's sync waits until it has applied what the leader had prepared.
            Ok(Request::Sync(r)) if !closing && self.role == Role::Following => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queue.push_back(Queued::Sync { xid, path: r.path, until: None });
                }
                self.out.push(Output::ToLeader(ToLeader::Sync { session_id, cxid: xid }));
            }
            // Everything else (reads, pings, watch requests, and refusals for a closing
            // session) waits for this connection's earlier writes, so replies keep request order.
            request if queued => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.queue.push_back(Queued::Read { xid, request });
                }
            }
            request => self.read(conn, xid, request),
        }
    }

    fn auth(&mut self, conn: ConnId, xid: i32, packet: proto::AuthPacket) {
        let super_digest = self.config.super_digest.clone();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match packet.scheme.as_str() {
            "digest" => {
                let digest = tree::acl::digest_id(&String::from_utf8_lossy(&packet.auth));
                if super_digest.as_deref() == Some(digest.as_str()) {
                    c.auth.add(tree::acl::id("super", ""));
                }
                c.auth.add(tree::acl::id("digest", &digest));
                self.reply(conn, xid, 0, Ok(Response::Empty));
            }
            // The address id is already there; asking for it again changes nothing.
            "ip" => self.reply(conn, xid, 0, Ok(Response::Empty)),
            scheme => {
                tracing::info!(conn = conn.0, scheme, "authentication failed: unknown scheme");
                self.reply(conn, xid, 0, Err(ErrorCode::AuthFailed));
                self.close(conn);
            }
        }
    }

    fn next_txn(&mut self, session_id: i64, cxid: i32, op: TxnOp) -> Txn {
        self.prepared_zxid += 1;
        Txn { zxid: self.prepared_zxid, time_ms: self.now_ms, session_id, cxid, op }
    }

    /// A client was heard from: on a follower the leader, which expires sessions, learns of
    /// it with the next report.
    fn touch(&mut self, session_id: i64) {
        self.sessions.touch(session_id, self.now_ms);
        if self.role == Role::Following {
            self.touched.insert(session_id);
        }
    }

    fn propose(&mut self, txn: Txn, origin: Origin) {
        if let Origin::Request { conn, .. } | Origin::Connect { conn, .. } = origin {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.queue.push_back(Queued::Write { zxid: txn.zxid });
            }
        }
        self.out.push(Output::Append { txn: txn.clone() });
        self.in_flight.push_back(InFlight { txn, origin });
    }

    fn write(&mut self, conn: ConnId, session_id: i64, xid: i32, request: Request) {
        if self.role == Role::Following {
            if let (Request::CloseSession, Some(s)) = (&request, self.sessions.get_mut(session_id)) {
                s.closing = true;
            }
            return self.forward(conn, session_id, xid, Ok(request));
        }
        // The identities are lent to the preparation, not copied: writes are the hot path.
        let Some(auth) = self.conns.get_mut(&conn).map(|c| std::mem::take(&mut c.auth)) else {
            return;
        };
        let op = self.prepare(session_id, &auth, &request);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.auth = auth;
        }
        let sub_ops = sub_ops(&request);
        let txn = self.next_txn(session_id, xid, op);
        self.propose(txn, Origin::Request { conn, xid, op: request.opcode(), sub_ops });
    }

    /// Validates a write against the tree and the writes prepared before it.
    fn prepare(&mut self, session_id: i64, auth: &AuthIds, request: &Request) -> TxnOp {
        if let Request::CloseSession = request {
            if let Some(s) = self.sessions.get_mut(session_id) {
                s.closing = true;
            }
            return self.close_session_op(session_id);
        }
        let mut prep = Prep::new(&self.tree, &mut self.pending, auth, session_id, self.config.ttl_enabled);
        let op = prep.request(request);
        prep.commit(self.prepared_zxid + 1);
        op
    }

    /// On a follower: hands a client's write to the leader; its reply waits in the
    /// connection's queue for the transaction to commit here.
    fn forward(&mut self, conn: ConnId, session_id: i64, xid: i32, request: Result<Request, OpCode>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let (op, subs) = match &request {
            Ok(request) => (request.opcode(), sub_ops(request)),
            Err(opcode) => (*opcode, Vec::new()),
        };
        c.queue.push_back(Queued::Forwarded { cxid: xid, op, sub_ops: subs, reply: None });
        let auth = c.auth.ids.clone();
        self.out.push(Output::ToLeader(ToLeader::Write { session_id, cxid: xid, auth, request }));
    }

    fn close_session_op(&mut self, session_id: i64) -> TxnOp {
        let auth = AuthIds::default();
        let mut prep = Prep::new(&self.tree, &mut self.pending, &auth, session_id, self.config.ttl_enabled);
        let ephemerals = prep.ephemerals_of(session_id);
        for p in &ephemerals {
            prep.remove(p);
        }
        prep.commit(self.prepared_zxid + 1);
        TxnOp::CloseSession { ephemerals }
    }

    fn persisted(&mut self, zxid: i64) {
        while self.in_flight.front().is_some_and(|f| f.txn.zxid <= zxid) {
            let Some(flight) = self.in_flight.pop_front() else {
                break;
            };
            self.apply(flight);
            self.txns_since_snapshot += 1;
        }
        self.maybe_begin_snapshot();
    }

    fn apply(&mut self, flight: InFlight) {
        let InFlight { txn, origin } = flight;
        let result = self.apply_txn(&txn);
        let conn = match origin {
            Origin::Server => return,
            Origin::Connect { conn, read_only } => {
                self.connected(conn, txn.session_id, read_only);
                conn
            }
            Origin::Request { conn, xid, op, sub_ops } => {
                if self.conns.get(&conn).is_some_and(|c| !c.closing) {
                    let reply = write_reply(op, &sub_ops, result);
                    self.reply(conn, xid, txn.zxid, reply);
                    if op == OpCode::CloseSession {
                        self.close(conn);
                    }
                }
                conn
            }
        };
        self.finish_write(conn, txn.zxid);
    }

    /// The reply to a new session, once its creation is applied.
    fn connected(&mut self, conn: ConnId, session_id: i64, read_only: Option<bool>) {
        if let Some(s) = self.sessions.get(session_id).filter(|_| self.conns.contains_key(&conn)) {
            let response = ConnectResponse {
                protocol_version: 0,
                timeout_ms: s.timeout_ms,
                session_id: s.id,
                passwd: s.passwd.to_vec(),
                read_only,
            };
            self.out.push(Output::Connected { conn, response });
        }
    }

    /// A connection's write was answered (or failed): what waited behind it goes next.
    fn finish_write(&mut self, conn: ConnId, zxid: i64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            let done = c.queue.pop_front();
            debug_assert!(matches!(done, Some(Queued::Write { zxid: z }) if z == zxid), "replies follow zxid order");
        }
        self.drain(conn);
    }

    /// Answers, in request order, what waited in a connection's queue and is now ready.
    fn drain(&mut self, conn: ConnId) {
        loop {
            let applied = self.applied_zxid;
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let ready = match c.queue.front() {
                Some(Queued::Read { .. }) => true,
                Some(Queued::Forwarded { reply, .. }) => reply.is_some(),
                Some(Queued::Sync { until, .. }) => until.is_some_and(|z| z <= applied),
                Some(Queued::Write { .. }) | None => false,
            };
            if !ready {
                return;
            }
            match c.queue.pop_front() {
                Some(Queued::Read { xid, request }) => self.read(conn, xid, request),
                Some(Queued::Forwarded { cxid, op, reply: Some((zxid, reply)), .. }) => {
                    self.reply(conn, cxid, zxid, reply);
                    if op == OpCode::CloseSession {
                        self.close(conn);
                    }
                }
                Some(Queued::Sync { xid, path, .. }) => self.reply(conn, xid, applied, Ok(Response::Path(path))),
                _ => return,
            }
        }
    }

    fn disconnected(&mut self, conn: ConnId) {
        self.revalidating.remove(&conn);
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.tree.watches.remove_conn(conn);
        if let Some(s) = c.session_id.and_then(|id| self.sessions.get_mut(id)) {
            if s.conn == Some(conn) {
                s.conn = None;
            }
        }
    }

    fn session_effects(&mut self, txn: &Txn) {
        match txn.op {
            TxnOp::CreateSession { timeout_ms, passwd } => {
                self.sessions.restore(txn.session_id, passwd, timeout_ms, self.now_ms);
            }
            TxnOp::CloseSession { .. } => {
                if let Some(s) = self.sessions.remove(txn.session_id) {
                    tracing::info!(session = format_args!("{:#x}", s.id), "session closed");
                }
            }
            _ => {}
        }
    }

    /// Every transaction not yet durable fails: its client gets an error (a new session's
    /// client is disconnected), and prepared state rolls back to the applied tree.
    fn log_failed(&mut self) {
        self.log_healthy = false;
        self.log_generation += 1;
        self.pending = Pending::default();
        self.prepared_zxid = self.applied_zxid;
        for InFlight { txn, origin } in std::mem::take(&mut self.in_flight) {
            if let TxnOp::CloseSession { .. } = txn.op {
                // The session lives on; a later close or expiry tries again.
                if let Some(s) = self.sessions.get_mut(txn.session_id) {
                    s.closing = false;
                }
            }
            match origin {
                Origin::Server => {}
                Origin::Connect { conn, .. } => {
                    self.sessions.remove(txn.session_id);
                    self.close(conn);
                    self.finish_write(conn, txn.zxid);
                }
                Origin::Request { conn, xid, .. } => {
                    self.reply(conn, xid, self.applied_zxid, Err(ErrorCode::SystemError));
                    self.finish_write(conn, txn.zxid);
                }
            }
        }
    }

    fn tick(&mut self) {
        if self.role == Role::Following && !self.touched.is_empty() {
            let sessions = std::mem::take(&mut self.touched).into_iter().collect();
            self.out.push(Output::ToLeader(ToLeader::Touch { sessions }));
        }
        // Expiry and reaping are writes: the leader's (or a standalone server's) alone, and
        // they wait for the log.
        if !matches!(self.role, Role::Standalone | Role::Leading { .. }) || !self.log_healthy {
            return;
        }
        for session_id in self.sessions.expired(self.now_ms) {
            let conn = self.sessions.get_mut(session_id).and_then(|s| {
                s.closing = true;
                s.conn
            });
            tracing::info!(session = format_args!("{session_id:#x}"), "session expired");
            // ZooKeeper closes an expired session's connection without a word.
            if let Some(conn) = conn {
                self.close(conn);
            }
            let op = self.close_session_op(session_id);
            let txn = self.next_txn(session_id, 0, op);
            self.propose(txn, Origin::Server);
        }
        if self.now_ms >= self.next_reap_ms {
            self.next_reap_ms = self.now_ms + self.config.container_check_interval_ms;
            self.reap();
        }
    }

    /// Deletes containers that had children and have none left, and childless TTL nodes
    /// not modified within their TTL: ZooKeeper's `ContainerManager`.
    fn reap(&mut self) {
        let now = self.now_ms;
        let candidates: Vec<String> = self
            .tree
            .containers()
            .chain(self.tree.ttl_nodes())
            .filter(|p| !self.pending.is_pending(p))
            .filter(|p| {
                self.tree.node(p).map(|n| n.meta()).is_some_and(|n| {
                    n.num_children == 0
                        && match owner::ttl_ms(n.ephemeral_owner) {
                            Some(ttl) => now - n.mtime > ttl,
                            None => n.child_creates > 0,
                        }
                })
            })
            .map(str::to_owned)
            .collect();
        for p in candidates {
            let auth = AuthIds::default();
            let mut prep = Prep::new(&self.tree, &mut self.pending, &auth, 0, true);
            prep.remove(&p);
            prep.commit(self.prepared_zxid + 1);
            let txn = self.next_txn(0, 0, TxnOp::Delete { path: p });
            self.propose(txn, Origin::Server);
        }
    }
}

/// The opcodes of a multi's operations (for the shape of its reply).
fn sub_ops(request: &Request) -> Vec<OpCode> {
    match request {
        Request::Multi(ops) => ops.iter().map(Request::opcode).collect(),
        _ => Vec::new(),
    }
}

/// The ensemble side of the pipeline: roles, commits from ZAB, and what followers and
/// the leader tell each other.
impl Replica {
    fn set_role(&mut self, role: Role) {
        if role == self.role {
            return;
        }
        tracing::info!(from = ?self.role, to = ?role, "role changed");
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn);
        }
        // What was in flight is now ZAB's to commit or drop; it comes back through
        // `Committed` if it commits.
        self.in_flight.clear();
        self.pending = Pending::default();
        // Sessions a follower created for clients but the leader never committed are void.
        for (session_id, _) in std::mem::take(&mut self.connecting) {
            self.sessions.remove(session_id);
        }
        self.touched.clear();
        self.sync_waits.clear();
        self.revalidating.clear();
        self.sessions.reopen_all();
        self.prepared_zxid = self.applied_zxid;
        if let Role::Leading { epoch } = role {
            // The leader's zxids are ZAB's: the epoch's counter starts again at 1.
            self.prepared_zxid = (epoch as i64) << 32;
            // Every session gets its whole timeout to find the new leader, as in ZooKeeper.
            self.sessions.renew_all(self.now_ms);
        }
        self.role = role;
    }

    fn committed(&mut self, zxid: i64, txn: Option<Txn>) {
        if self.prepared_here(zxid) {
            if let Some(flight) = self.in_flight.pop_front() {
                self.apply(flight);
            }
        } else if let Some(txn) = txn {
            self.apply_remote(txn);
        } else {
            debug_assert!(false, "commit {zxid:#x} came without its transaction");
            tracing::error!(zxid = format_args!("{zxid:#x}"), "a commit came without its transaction");
            return;
        }
        self.txns_since_snapshot += 1;
        self.maybe_begin_snapshot();
    }

    /// Applies a transaction another server prepared; if it came from one of this server's
    /// connections, that connection's reply is now ready.
    fn apply_remote(&mut self, txn: Txn) {
        let conn = self.sessions.get(txn.session_id).and_then(|s| s.conn);
        let result = self.apply_txn(&txn);
        if let TxnOp::CreateSession { .. } = txn.op {
            if let Some((conn, read_only)) = self.connecting.remove(&txn.session_id) {
                self.connected(conn, txn.session_id, read_only);
            }
        } else if let Some(conn) = conn {
            let waiting = self.conns.get_mut(&conn).and_then(|c| {
                c.queue.iter_mut().find_map(|q| match q {
                    Queued::Forwarded { cxid, op, sub_ops, reply: reply @ None } if *cxid == txn.cxid => {
                        Some((reply, *op, std::mem::take(sub_ops)))
                    }
                    _ => None,
                })
            });
            match waiting {
                Some((reply, op, sub_ops)) => {
                    *reply = Some((txn.zxid, write_reply(op, &sub_ops, result)));
                    self.drain(conn);
                }
                // Expired on the leader: ZooKeeper closes its connection without a word.
                None if matches!(txn.op, TxnOp::CloseSession { .. }) => self.close(conn),
                None => {}
            }
        }
        let applied = self.applied_zxid;
        while let Some(ready) = self.sync_waits.first_entry().filter(|e| *e.key() <= applied) {
            for conn in ready.remove() {
                self.caught_up(conn);
            }
        }
    }

    /// Lets `conn` go on once this server has applied up to `zxid`.
    fn wait_applied(&mut self, zxid: i64, conn: ConnId) {
        if zxid <= self.applied_zxid {
            self.caught_up(conn);
        } else {
            self.sync_waits.entry(zxid).or_default().push(conn);
        }
    }

    /// A connection's wait for the leader's point is over: a session it resumes is decided
    /// now, and a sync is answered.
    fn caught_up(&mut self, conn: ConnId) {
        if let Some(resume) = self.revalidating.remove(&conn) {
            self.resume(conn, resume);
        }
        self.drain(conn);
    }

    fn on_follower_message(&mut self, from: u64, msg: ToLeader) {
        if !matches!(self.role, Role::Leading { .. }) {
            return;
        }
        match msg {
            ToLeader::CreateSession { session_id, passwd, timeout_ms } => {
                let timeout_ms =
                    timeout_ms.clamp(self.config.min_session_timeout_ms, self.config.max_session_timeout_ms);
                let txn = self.next_txn(session_id, 0, TxnOp::CreateSession { timeout_ms, passwd });
                self.propose(txn, Origin::Server);
            }
            ToLeader::Write { session_id, cxid, auth, request } => {
                let live = self.sessions.get(session_id).is_some_and(|s| !s.closing);
                let op = match request {
                    Ok(request) if live => {
                        self.sessions.touch(session_id, self.now_ms);
                        self.prepare(session_id, &AuthIds { ids: auth }, &request)
                    }
                    Ok(_) => TxnOp::Error { err: ErrorCode::SessionExpired },
                    Err(_) => TxnOp::Error { err: ErrorCode::MarshallingError },
                };
                let txn = self.next_txn(session_id, cxid, op);
                self.propose(txn, Origin::Server);
            }
            ToLeader::Sync { session_id, cxid } => {
                let msg = ToFollower::Synced { session_id, cxid, zxid: self.last_prepared() };
                self.out.push(Output::ToFollower { to: from, msg });
            }
            ToLeader::Revalidate { session_id, conn } => {
                self.sessions.touch(session_id, self.now_ms);
                let msg = ToFollower::Revalidated { conn, zxid: self.last_prepared() };
                self.out.push(Output::ToFollower { to: from, msg });
            }
            ToLeader::Touch { sessions } => {
                for session_id in sessions {
                    self.sessions.touch(session_id, self.now_ms);
                }
            }
        }
    }

    /// The last zxid a transaction actually took: a new leader's `prepared_zxid` is its
    /// epoch's zero, which no transaction has, and a follower waiting for it would wait
    /// until the next write.
    fn last_prepared(&self) -> i64 {
        self.in_flight.back().map_or(self.applied_zxid, |f| f.txn.zxid)
    }

    fn synced(&mut self, session_id: i64, cxid: i32, zxid: i64) {
        let Some(conn) = self.sessions.get(session_id).and_then(|s| s.conn) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let waiting = c.queue.iter_mut().find_map(|q| match q {
            Queued::Sync { xid, until: until @ None, .. } if *xid == cxid => Some(until),
            _ => None,
        });
        if let Some(until) = waiting {
            *until = Some(zxid);
            self.wait_applied(zxid, conn);
        }
    }
}

/// The reply to a write from what applying it produced.
fn write_reply(op: OpCode, sub_ops: &[OpCode], result: OpResult) -> Result<Response, ErrorCode> {
    use proto::MultiResult;
    match result {
        OpResult::Failed(err) => Err(err),
        OpResult::Created { path, stat } => match op {
            OpCode::Create => Ok(Response::Path(path)),
            _ => Ok(Response::PathStat(path, stat)),
        },
        OpResult::Deleted | OpResult::Checked | OpResult::SessionClosed | OpResult::SessionCreated => {
            Ok(Response::Empty)
        }
        OpResult::DataSet { stat } | OpResult::AclSet { stat } => Ok(Response::Stat(stat)),
        OpResult::Multi(results) => Ok(Response::Multi(
            results
                .into_iter()
                .zip(sub_ops)
                .map(|(r, sub)| match r {
                    // Inside a multi, create2 is answered as a plain create (observed in 3.8).
                    OpResult::Created { path, stat } => match sub {
                        OpCode::Create | OpCode::Create2 => MultiResult::Create(path),
                        _ => MultiResult::Create2(path, stat),
                    },
                    OpResult::Deleted => MultiResult::Delete,
                    OpResult::DataSet { stat } => MultiResult::SetData(stat),
                    OpResult::Checked => MultiResult::Check,
                    OpResult::Failed(e) => MultiResult::Error(e as i32),
                    other => unreachable!("a multi holds only node operations, not {other:?}"),
                })
                .collect(),
        )),
    }
}
