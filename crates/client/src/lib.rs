//! An async ZooKeeper client for tokio, built on Warren's `proto` crate.
//!
//! It speaks ZooKeeper 3.8's client protocol to any compatible server (Warren or
//! ZooKeeper itself): a connect string with several hosts and an optional chroot
//! (`h1:2181,h2:2181/app`), a session that survives reconnects within its timeout
//! (auth re-sent, watches re-registered with setWatches2), every operation of the
//! protocol, watches delivered as streams, errors that mirror ZooKeeper's codes, and any
//! number of requests in flight on one connection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), client::Error> {
//! use client::{acls, Client, CreateMode, Watcher};
//! let zk = Client::connect("127.0.0.1:2181/app").await?;
//! zk.create("/lock-", Some(b""), &acls::open_unsafe(), CreateMode::EphemeralSequential).await?;
//! let (watcher, mut events) = Watcher::new();
//! let children = zk.get_children_watch("/", &watcher).await?;
//! println!("{children:?}, then {:?}", events.next().await);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `conn`: the connection task, sole owner of the socket, the requests in flight,
//!   the watch registry and the session; handles talk to it over a channel.
//! - `watch`: [`Watcher`] and [`WatchStream`], and the registry that routes events.
//! - `types`: create modes, events, states, multi ops, ACL constants.
//! - `path`: client-side path checks and the chroot; `connect_string`: parsing.
//! - `error`: [`Error`], one variant per ZooKeeper code.

mod conn;
mod connect_string;
mod error;
mod path;
mod types;
mod watch;

pub use conn::Session;
pub use connect_string::{ConnectString, DEFAULT_PORT};
pub use error::Error;
pub use path::validate_path;
pub use proto::{perms, Acl, ClientInfo, Id, Stat};
pub use types::{
    acls, AddWatchMode, CreateMode, EventType, KeeperState, Op, OpResult, ReadOp, ReadResult, SessionState,
    WatchedEvent, WatcherType,
};
pub use watch::{WatchStream, Watcher};

use conn::{After, Call, Command, Settings, Task};
use path::Chroot;
use proto::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CreateRequest, CreateTtlRequest, DeleteRequest, MultiResult,
    PathRequest, PathWatchRequest, Request, Response, SetAclRequest, SetDataRequest, WatchesRequest,
};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch as state_channel};
use watch::Kind;

/// The path of the ensemble's configuration node, outside any chroot.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// How long requests may queue in the channel to the connection task before callers
/// wait; the task itself bounds what it buffers for the socket.
const COMMAND_QUEUE: usize = 1024;

/// Settings for a new client; [`Client::connect`] uses the defaults.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect_string: String,
    session_timeout: Duration,
    connect_timeout: Option<Duration>,
    read_only: bool,
    max_frame: usize,
    resume: Option<(i64, Vec<u8>)>,
    auth: Vec<(String, Vec<u8>)>,
}

impl ClientBuilder {
    /// Settings with the defaults, for `connect_string` (`host:port,...[/chroot]`).
    pub fn new(connect_string: &str) -> ClientBuilder {
        ClientBuilder {
            connect_string: connect_string.to_owned(),
            // zkCli.sh's default.
            session_timeout: Duration::from_secs(30),
            connect_timeout: None,
            read_only: false,
            // Above ZooKeeper's default jute.maxbuffer, since a reply to a node of the
            // largest size the server accepts is a little larger than that node.
            max_frame: 4 << 20,
            resume: None,
            auth: Vec::new(),
        }
    }

    /// The session timeout to ask for; the server clamps it into its own bounds.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long [`ClientBuilder::connect`] keeps trying before it gives up with
    /// ConnectionLoss; the session timeout by default.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Accept a read-only server (the `readOnly` flag of the handshake).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The largest frame accepted from a server.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Resume an existing session instead of creating one.
    pub fn resume(mut self, session_id: i64, password: Vec<u8>) -> Self {
        self.resume = Some((session_id, password));
        self
    }

    /// An auth packet sent as soon as the session is up (and after every reconnect).
    pub fn auth(mut self, scheme: &str, auth: &[u8]) -> Self {
        self.auth.push((scheme.to_owned(), auth.to_vec()));
        self
    }

    /// Connects to the first host that answers and establishes the session.
    ///
    /// # Errors
    /// `BadConnectString`; `ConnectionLoss` when no host gave a session within the connect
    /// timeout; `SessionExpired` when resuming a session that is gone; the auth's error.
    pub async fn connect(self) -> Result<Client, Error> {
        let connect = ConnectString::parse(&self.connect_string)?;
        let chroot = connect.chroot.clone();
        let timeout_ms = self.session_timeout.as_millis().min(i32::MAX as u128) as i32;
        let settings = Settings { connect, timeout_ms, read_only: self.read_only, max_frame: self.max_frame };
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let initial = Session { state: SessionState::Connecting, id: 0, password: Vec::new(), timeout_ms, host: None };
        let (session_tx, session_rx) = state_channel::channel(initial);
        let mut task = Task::new(settings, rx, session_tx, self.resume);
        let limit = self.connect_timeout.unwrap_or(self.session_timeout);
        let stream = match tokio::time::timeout(limit, task.establish(true)).await {
            Err(_) => return Err(Error::ConnectionLoss),
            Ok(Err(conn::Stop::Expired)) => return Err(Error::SessionExpired),
            Ok(Err(_)) => return Err(Error::Closed),
            Ok(Ok(stream)) => stream,
        };
        tokio::spawn(task.run(stream));
        let client = Client { tx, session: session_rx, chroot };
        for (scheme, auth) in &self.auth {
            client.add_auth(scheme, auth).await?;
        }
        Ok(client)
    }
}

/// A handle on one ZooKeeper session. Clones share the session; requests from all clones
/// go out on the one connection in the order they are made. When the last handle is
/// dropped, the session is closed.
#[derive(Debug, Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    session: state_channel::Receiver<Session>,
    chroot: Chroot,
}

impl Client {
    /// Connects with default settings (30 s session timeout).
    pub async fn connect(connect_string: &str) -> Result<Client, Error> {
        ClientBuilder::new(connect_string).connect().await
    }

    /// A builder for a client with other settings than the defaults.
    pub fn builder(connect_string: &str) -> ClientBuilder {
        ClientBuilder::new(connect_string)
    }

    /// The session as it stands now.
    pub fn session(&self) -> Session {
        self.session.borrow().clone()
    }

    /// The session id (what `ephemeralOwner` shows for this session's nodes).
    pub fn session_id(&self) -> i64 {
        self.session.borrow().id
    }

    /// The session's state now.
    pub fn state(&self) -> SessionState {
        self.session.borrow().state
    }

    /// A receiver that sees every change of the session's state.
    pub fn session_changes(&self) -> state_channel::Receiver<Session> {
        self.session.clone()
    }

    /// The chroot of the connect string, if any.
    pub fn chroot(&self) -> Option<&str> {
        self.chroot.prefix()
    }

    /// Sends one request and waits for its reply.
    async fn call(&self, request: Request, after: After) -> Result<Response, Error> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Call(Call { request, after, reply })).await.is_err() {
            return Err(self.stopped());
        }
        rx.await.unwrap_or_else(|_| Err(self.stopped()))
    }

    /// The error for a task that has stopped: why it stopped.
    fn stopped(&self) -> Error {
        match self.state() {
            SessionState::Expired => Error::SessionExpired,
            SessionState::AuthFailed => Error::AuthFailed,
            _ => Error::Closed,
        }
    }

    fn server_path(&self, path: &str) -> Result<String, Error> {
        validate_path(path, false)?;
        Ok(self.chroot.to_server(path))
    }

    fn path_watch(&self, path: &str, watch: bool) -> Result<PathWatchRequest, Error> {
        Ok(PathWatchRequest { path: self.server_path(path)?, watch })
    }

    fn watch_after(path: &str, watcher: &Watcher, on_ok: Kind, on_no_node: Option<Kind>) -> After {
        After::Watch { path: path.to_owned(), watcher: watcher.clone(), on_ok, on_no_node }
    }

    /// Creates a node and returns its path (with the sequence number, if sequential).
    /// Uses ZooKeeper's opcode for the mode: create, createContainer or createTTL.
    ///
    /// # Errors
    /// `NodeExists`, `NoNode` (no parent), `NoChildrenForEphemerals`, `InvalidAcl` (also
    /// for an empty `acl`, caught here as Java's client does), `NoAuth`, `InvalidPath`,
    /// `BadArguments` (bad TTL), `Unimplemented` (TTL nodes disabled).
    pub async fn create(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String, Error> {
        Ok(self.create_with(path, data, acl, mode, false).await?.0)
    }

    /// As [`Client::create`], and also returns the new node's Stat (create2).
    pub async fn create2(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat), Error> {
        match self.create_with(path, data, acl, mode, true).await? {
            (path, Some(stat)) => Ok((path, stat)),
            (_, None) => Err(Error::Protocol("create2 reply without a stat".into())),
        }
    }

    async fn create_with(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        want_stat: bool,
    ) -> Result<(String, Option<Stat>), Error> {
        validate_path(path, mode.is_sequential())?;
        if acl.is_empty() {
            return Err(Error::InvalidAcl);
        }
        let request = create_request(&self.chroot.to_server(path), data, acl, mode, want_stat);
        match self.call(request, After::Nothing).await? {
            Response::Path(created) => Ok((self.chroot.to_client(&created), None)),
            Response::PathStat(created, stat) => Ok((self.chroot.to_client(&created), Some(stat))),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes a node; `version: None` deletes whatever its version.
    ///
    /// # Errors
    /// `NoNode`, `BadVersion`, `NotEmpty`, `NoAuth`, `BadArguments` (a built-in node).
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<(), Error> {
        let request = Request::Delete(DeleteRequest { path: self.server_path(path)?, version: version.unwrap_or(-1) });
        self.call(request, After::Nothing).await.map(drop)
    }

    /// The node's Stat, or `None` if it does not exist.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, Error> {
        let request = Request::Exists(self.path_watch(path, false)?);
        stat_or_none(self.call(request, After::Nothing).await)
    }

    /// As [`Client::exists`], and leaves a watch: NodeCreated if the node does not exist,
    /// else NodeDataChanged or NodeDeleted.
    pub async fn exists_watch(&self, path: &str, watcher: &Watcher) -> Result<Option<Stat>, Error> {
        let request = Request::Exists(self.path_watch(path, true)?);
        let after = Self::watch_after(path, watcher, Kind::Data, Some(Kind::Exist));
        stat_or_none(self.call(request, after).await)
    }

    /// The node's data (`None` if it was created with null data) and Stat.
    pub async fn get_data(&self, path: &str) -> Result<(Option<Vec<u8>>, Stat), Error> {
        let request = Request::GetData(self.path_watch(path, false)?);
        data(self.call(request, After::Nothing).await?)
    }

    /// As [`Client::get_data`], and leaves a data watch (NodeDataChanged, NodeDeleted).
    pub async fn get_data_watch(&self, path: &str, watcher: &Watcher) -> Result<(Option<Vec<u8>>, Stat), Error> {
        let request = Request::GetData(self.path_watch(path, true)?);
        data(self.call(request, Self::watch_after(path, watcher, Kind::Data, None)).await?)
    }

    /// Sets the node's data if its version is `version` (`None`: any) and returns the new
    /// Stat.
    pub async fn set_data(&self, path: &str, data: Option<&[u8]>, version: Option<i32>) -> Result<Stat, Error> {
        let request = Request::SetData(SetDataRequest {
            path: self.server_path(path)?,
            data: data.map(<[u8]>::to_vec),
            version: version.unwrap_or(-1),
        });
        stat(self.call(request, After::Nothing).await?)
    }

    /// The node's ACL and Stat.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), Error> {
        let request = Request::GetAcl(PathRequest { path: self.server_path(path)? });
        match self.call(request, After::Nothing).await? {
            Response::Acl(acl, stat) => Ok((acl, stat)),
            other => Err(unexpected(other)),
        }
    }

    /// Sets the node's ACL if its ACL version is `version` (`None`: any).
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: Option<i32>) -> Result<Stat, Error> {
        if acl.is_empty() {
            return Err(Error::InvalidAcl);
        }
        let request = Request::SetAcl(SetAclRequest {
            path: self.server_path(path)?,
            acl: acl.to_vec(),
            version: version.unwrap_or(-1),
        });
        stat(self.call(request, After::Nothing).await?)
    }

    /// The names of the node's children, in the server's order.
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>, Error> {
        let request = Request::GetChildren(self.path_watch(path, false)?);
        children(self.call(request, After::Nothing).await?)
    }

    /// As [`Client::get_children`], and leaves a child watch (NodeChildrenChanged,
    /// NodeDeleted).
    pub async fn get_children_watch(&self, path: &str, watcher: &Watcher) -> Result<Vec<String>, Error> {
        let request = Request::GetChildren(self.path_watch(path, true)?);
        children(self.call(request, Self::watch_after(path, watcher, Kind::Child, None)).await?)
    }

    /// The children and the node's Stat (getChildren2).
    pub async fn get_children2(&self, path: &str) -> Result<(Vec<String>, Stat), Error> {
        let request = Request::GetChildren2(self.path_watch(path, false)?);
        children2(self.call(request, After::Nothing).await?)
    }

    /// As [`Client::get_children2`], and leaves a child watch.
    pub async fn get_children2_watch(&self, path: &str, watcher: &Watcher) -> Result<(Vec<String>, Stat), Error> {
        let request = Request::GetChildren2(self.path_watch(path, true)?);
        children2(self.call(request, Self::watch_after(path, watcher, Kind::Child, None)).await?)
    }

    /// How many nodes are below `path`, at any depth.
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32, Error> {
        let request = Request::GetAllChildrenNumber(PathRequest { path: self.server_path(path)? });
        match self.call(request, After::Nothing).await? {
            Response::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// This session's ephemeral nodes whose paths start with `prefix` (`/` for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let request = Request::GetEphemerals(PathRequest { path: self.server_path(prefix)? });
        let paths = children(self.call(request, After::Nothing).await?)?;
        Ok(paths.iter().map(|p| self.chroot.to_client(p)).collect())
    }

    /// Waits until the server has caught up with the leader (a no-op on a single server,
    /// but still ordered after this client's earlier requests).
    pub async fn sync(&self, path: &str) -> Result<(), Error> {
        let request = Request::Sync(PathRequest { path: self.server_path(path)? });
        self.call(request, After::Nothing).await.map(drop)
    }

    /// Applies `ops` atomically: all or nothing.
    ///
    /// # Errors
    /// `MultiFailed` with the index and error of the first op that failed.
    pub async fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>, Error> {
        let mut requests = Vec::with_capacity(ops.len());
        for op in ops {
            requests.push(self.op_request(op)?);
        }
        let results = match self.call(Request::Multi(requests), After::Nothing).await? {
            Response::Multi(results) => results,
            other => return Err(unexpected(other)),
        };
        // A failed multi answers an error result per op: 0 before the failing one, the
        // failing one's code, -2 after it.
        if let Some(index) = results.iter().position(|r| matches!(r, MultiResult::Error(code) if *code != 0)) {
            let MultiResult::Error(code) = results[index] else { unreachable!() };
            let error = Error::from_code(code).unwrap_or(Error::Unknown(code));
            return Err(Error::MultiFailed { index, error: Box::new(error) });
        }
        results
            .into_iter()
            .map(|result| match result {
                MultiResult::Create(path) => Ok(OpResult::Create { path: self.chroot.to_client(&path), stat: None }),
                MultiResult::Create2(path, stat) => {
                    Ok(OpResult::Create { path: self.chroot.to_client(&path), stat: Some(stat) })
                }
                MultiResult::Delete => Ok(OpResult::Delete),
                MultiResult::SetData(stat) => Ok(OpResult::SetData { stat }),
                MultiResult::Check => Ok(OpResult::Check),
                other => Err(Error::Protocol(format!("unexpected multi result {other:?}"))),
            })
            .collect()
    }

    fn op_request(&self, op: &Op) -> Result<Request, Error> {
        Ok(match op {
            Op::Create { path, data, acl, mode } => {
                validate_path(path, mode.is_sequential())?;
                create_request(&self.chroot.to_server(path), data.as_deref(), acl, *mode, false)
            }
            Op::Delete { path, version } => {
                Request::Delete(DeleteRequest { path: self.server_path(path)?, version: version.unwrap_or(-1) })
            }
            Op::SetData { path, data, version } => Request::SetData(SetDataRequest {
                path: self.server_path(path)?,
                data: data.clone(),
                version: version.unwrap_or(-1),
            }),
            Op::Check { path, version } => {
                Request::Check(CheckVersionRequest { path: self.server_path(path)?, version: *version })
            }
        })
    }

    /// Runs reads in one request (multiRead); each succeeds or fails on its own.
    pub async fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>, Error> {
        let mut requests = Vec::with_capacity(ops.len());
        for op in ops {
            requests.push(match op {
                ReadOp::GetData { path } => Request::GetData(self.path_watch(path, false)?),
                ReadOp::GetChildren { path } => Request::GetChildren(self.path_watch(path, false)?),
            });
        }
        let results = match self.call(Request::MultiRead(requests), After::Nothing).await? {
            Response::Multi(results) => results,
            other => return Err(unexpected(other)),
        };
        results
            .into_iter()
            .map(|result| match result {
                MultiResult::GetData(data, stat) => Ok(ReadResult::Data { data, stat }),
                MultiResult::GetChildren(children) => Ok(ReadResult::Children { children }),
                MultiResult::Error(code) => {
                    Ok(ReadResult::Error(Error::from_code(code).unwrap_or(Error::Unknown(code))))
                }
                other => Err(Error::Protocol(format!("unexpected multiRead result {other:?}"))),
            })
            .collect()
    }

    /// Sets a persistent watch on `path` (or on its whole subtree, recursively) that stays
    /// armed until removed. The node need not exist.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode, watcher: &Watcher) -> Result<(), Error> {
        let request = Request::AddWatch(AddWatchRequest { path: self.server_path(path)?, mode: mode as i32 });
        let kind = match mode {
            AddWatchMode::Persistent => Kind::Persistent,
            AddWatchMode::PersistentRecursive => Kind::PersistentRecursive,
        };
        self.call(request, Self::watch_after(path, watcher, kind, None)).await.map(drop)
    }

    /// Removes every watch of `watcher_type` this client holds on `path`, on the server
    /// (removeWatches) and here; each removed watcher gets a `*WatchRemoved` event.
    /// `local`: remove here even if the server cannot be asked or refuses.
    ///
    /// # Errors
    /// `NoWatcher` when this client holds no such watch (answered without the server).
    pub async fn remove_watches(&self, path: &str, watcher_type: WatcherType, local: bool) -> Result<(), Error> {
        let request =
            Request::RemoveWatches(WatchesRequest { path: self.server_path(path)?, watcher_type: watcher_type as i32 });
        let after = After::RemoveWatches { path: path.to_owned(), watcher_type, only: None, local };
        self.call(request, after).await.map(drop)
    }

    /// Removes one watcher's watches of `watcher_type` on `path`. As in Java's client the
    /// server is only asked whether the watch exists (checkWatches): other watchers of this
    /// client may still rely on the server-side watch.
    pub async fn remove_watcher(
        &self,
        path: &str,
        watcher: &Watcher,
        watcher_type: WatcherType,
        local: bool,
    ) -> Result<(), Error> {
        let request =
            Request::CheckWatches(WatchesRequest { path: self.server_path(path)?, watcher_type: watcher_type as i32 });
        let after = After::RemoveWatches { path: path.to_owned(), watcher_type, only: Some(watcher.clone()), local };
        self.call(request, after).await.map(drop)
    }

    /// Asks the server whether this connection holds a watch of `watcher_type` on `path`
    /// (checkWatches), changing nothing.
    pub async fn check_watches(&self, path: &str, watcher_type: WatcherType) -> Result<(), Error> {
        let request =
            Request::CheckWatches(WatchesRequest { path: self.server_path(path)?, watcher_type: watcher_type as i32 });
        self.call(request, After::Nothing).await.map(drop)
    }

    /// The identities this connection is authenticated as.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>, Error> {
        match self.call(Request::WhoAmI, After::Nothing).await? {
            Response::WhoAmI(ids) => Ok(ids),
            other => Err(unexpected(other)),
        }
    }

    /// Adds an identity (`digest`, `user:password`); it is re-sent after every reconnect.
    ///
    /// # Errors
    /// `AuthFailed` if the server rejects it, which also ends the client (the server
    /// closes the connection).
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<(), Error> {
        let packet = AuthPacket { auth_type: 0, scheme: scheme.to_owned(), auth: auth.to_vec() };
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Auth { packet, reply }).await.is_err() {
            return Err(self.stopped());
        }
        rx.await.unwrap_or_else(|_| Err(self.stopped()))
    }

    /// The ensemble's configuration (`/zookeeper/config`, outside the chroot).
    pub async fn get_config(&self, watcher: Option<&Watcher>) -> Result<(Option<Vec<u8>>, Stat), Error> {
        let request = Request::GetData(PathWatchRequest { path: CONFIG_NODE.to_owned(), watch: watcher.is_some() });
        let after = match watcher {
            // Registered under the server path: notifications come with it, and it lies
            // outside the chroot, so it is not rewritten either way.
            Some(w) => Self::watch_after(CONFIG_NODE, w, Kind::Data, None),
            None => After::Nothing,
        };
        data(self.call(request, after).await?)
    }

    /// Closes the session: the server deletes its ephemeral nodes at once. Every watcher
    /// gets a final Closed event. Closing a closed client does nothing.
    pub async fn close(&self) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Command::Close { reply }).await.is_err() {
            return Ok(());
        }
        let _ = rx.await;
        Ok(())
    }
}

fn create_request(server_path: &str, data: Option<&[u8]>, acl: &[Acl], mode: CreateMode, want_stat: bool) -> Request {
    let body = CreateRequest {
        path: server_path.to_owned(),
        data: data.map(<[u8]>::to_vec),
        acl: acl.to_vec(),
        flags: mode.flags(),
    };
    match mode {
        CreateMode::Container => Request::CreateContainer(body),
        CreateMode::PersistentWithTtl { ttl_ms } | CreateMode::PersistentSequentialWithTtl { ttl_ms } => {
            Request::CreateTtl(CreateTtlRequest {
                path: body.path,
                data: body.data,
                acl: body.acl,
                flags: body.flags,
                ttl: ttl_ms,
            })
        }
        _ if want_stat => Request::Create2(body),
        _ => Request::Create(body),
    }
}

fn unexpected(response: Response) -> Error {
    Error::Protocol(format!("unexpected reply {response:?}"))
}

fn stat(response: Response) -> Result<Stat, Error> {
    match response {
        Response::Stat(stat) => Ok(stat),
        other => Err(unexpected(other)),
    }
}

fn stat_or_none(result: Result<Response, Error>) -> Result<Option<Stat>, Error> {
    match result {
        Err(Error::NoNode) => Ok(None),
        result => stat(result?).map(Some),
    }
}

fn data(response: Response) -> Result<(Option<Vec<u8>>, Stat), Error> {
    match response {
        Response::Data(data, stat) => Ok((data, stat)),
        other => Err(unexpected(other)),
    }
}

fn children(response: Response) -> Result<Vec<String>, Error> {
    match response {
        Response::Children(children) => Ok(children),
        other => Err(unexpected(other)),
    }
}

fn children2(response: Response) -> Result<(Vec<String>, Stat), Error> {
    match response {
        Response::Children2(children, stat) => Ok((children, stat)),
        other => Err(unexpected(other)),
    }
}
