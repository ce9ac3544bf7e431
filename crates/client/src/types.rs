//! The values the client's API speaks in: create modes, watch events and session states,
//! multi operations and their results, and the usual ACLs.
//!
//! Names follow ZooKeeper's Java API (`CreateMode`, `WatchedEvent`, `KeeperState`,
//! `Op`, `OpResult`, `ZooDefs.Ids`) so that its documentation applies.

use proto::{perms, Acl, Id, Stat};
use std::fmt;

/// How a znode is created. TTL modes carry their time to live, so a TTL create without
/// one cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    /// Deleted by the server once its last child is gone.
    Container,
    /// Deleted by the server once unchanged and childless for `ttl_ms`.
    PersistentWithTtl {
        ttl_ms: i64,
    },
    PersistentSequentialWithTtl {
        ttl_ms: i64,
    },
}

impl CreateMode {
    /// The wire mode, whose flags and rules `proto` owns; the client's mode adds only the TTL.
    pub fn wire(self) -> proto::CreateMode {
        match self {
            CreateMode::Persistent => proto::CreateMode::Persistent,
            CreateMode::Ephemeral => proto::CreateMode::Ephemeral,
            CreateMode::PersistentSequential => proto::CreateMode::PersistentSequential,
            CreateMode::EphemeralSequential => proto::CreateMode::EphemeralSequential,
            CreateMode::Container => proto::CreateMode::Container,
            CreateMode::PersistentWithTtl { .. } => proto::CreateMode::PersistentWithTtl,
            CreateMode::PersistentSequentialWithTtl { .. } => proto::CreateMode::PersistentSequentialWithTtl,
        }
    }

    /// The `flags` field of the create request.
    pub fn flags(self) -> i32 {
        self.wire().flags()
    }

    /// The time to live of the TTL modes.
    pub fn ttl_ms(self) -> Option<i64> {
        match self {
            CreateMode::PersistentWithTtl { ttl_ms } | CreateMode::PersistentSequentialWithTtl { ttl_ms } => {
                Some(ttl_ms)
            }
            _ => None,
        }
    }

    /// Whether the server appends a sequence number to the name.
    pub fn is_sequential(self) -> bool {
        self.wire().is_sequential()
    }
}

/// `Watcher.Event.EventType`. `None` is a change of the session's state, not of a node;
/// the `*Removed` types are produced by this client when watches are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    None,
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
    DataWatchRemoved,
    ChildWatchRemoved,
    PersistentWatchRemoved,
}

impl EventType {
    /// The type of a `WatcherEvent.type` value.
    pub fn from_i32(v: i32) -> Option<EventType> {
        Some(match v {
            -1 => EventType::None,
            1 => EventType::NodeCreated,
            2 => EventType::NodeDeleted,
            3 => EventType::NodeDataChanged,
            4 => EventType::NodeChildrenChanged,
            5 => EventType::DataWatchRemoved,
            6 => EventType::ChildWatchRemoved,
            7 => EventType::PersistentWatchRemoved,
            _ => return None,
        })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// `Watcher.Event.KeeperState`: the session's state as a watch event reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeeperState {
    Disconnected,
    SyncConnected,
    AuthFailed,
    ConnectedReadOnly,
    Expired,
    Closed,
}

impl fmt::Display for KeeperState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One watch notification, or a session state change delivered to watchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The session's state (always SyncConnected for node events).
    pub state: KeeperState,
    /// The node, relative to the chroot; `None` for state changes.
    pub path: Option<String>,
}

/// Java's `WatchedEvent.toString()`, which `zkCli.sh` prints:
/// `WatchedEvent state:SyncConnected type:NodeDataChanged path:/x`.
impl fmt::Display for WatchedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WatchedEvent state:{} type:{} path:{}",
            self.state,
            self.event_type,
            self.path.as_deref().unwrap_or("null")
        )
    }
}

/// Where the client's session stands, as [`crate::Client::state`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Looking for a server: before the first session, or after a connection was lost
    /// (requests wait, the session may still be alive).
    Connecting,
    Connected,
    /// The server refused an auth packet; the client has stopped.
    AuthFailed,
    /// The server says the session is gone; the client has stopped.
    Expired,
    /// Closed by the caller; the client has stopped.
    Closed,
}

impl SessionState {
    /// Whether the client still serves requests (Java's `States.isAlive`).
    pub fn is_alive(self) -> bool {
        matches!(self, SessionState::Connecting | SessionState::Connected)
    }
}

/// Java's `ZooKeeper.States` names, which `zkCli.sh` shows in its prompt.
impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionState::Connecting => "CONNECTING",
            SessionState::Connected => "CONNECTED",
            SessionState::AuthFailed => "AUTH_FAILED",
            SessionState::Expired | SessionState::Closed => "CLOSED",
        })
    }
}

/// Which watches a removeWatches or checkWatches names (`Watcher.WatcherType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatcherType {
    Children = 1,
    Data = 2,
    Any = 3,
}

/// The mode of a watch set with addWatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddWatchMode {
    /// All event types on the path itself; stays armed.
    Persistent = 0,
    /// Created, deleted and data-changed on the path and every descendant; stays armed.
    PersistentRecursive = 1,
}

/// One operation of a [`crate::Client::multi`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        mode: CreateMode,
    },
    /// `version: None` deletes whatever the version.
    Delete {
        path: String,
        version: Option<i32>,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: Option<i32>,
    },
    /// Fails the multi unless the node's version is `version`.
    Check {
        path: String,
        version: i32,
    },
}

impl Op {
    /// The node the op acts on.
    pub fn path(&self) -> &str {
        match self {
            Op::Create { path, .. } | Op::Delete { path, .. } | Op::SetData { path, .. } | Op::Check { path, .. } => {
                path
            }
        }
    }
}

/// The result of one op of a successful multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The created path (relative to the chroot); the stat comes with container and TTL
    /// creates, which the server answers as create2.
    Create {
        path: String,
        stat: Option<Stat>,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
}

/// One read of a [`crate::Client::multi_read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    GetData { path: String },
    GetChildren { path: String },
}

/// The result of one read of a multiRead: reads succeed or fail one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    Data { data: Option<Vec<u8>>, stat: Stat },
    Children { children: Vec<String> },
    Error(crate::Error),
}

/// The ACLs of Java's `ZooDefs.Ids`.
pub mod acls {
    use super::*;

    /// `world:anyone` with every permission: `OPEN_ACL_UNSAFE`.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl { perms: perms::ALL, id: anyone() }]
    }

    /// `world:anyone` read only: `READ_ACL_UNSAFE`.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl { perms: perms::READ, id: anyone() }]
    }

    /// Every permission for whoever creates the node (`auth` scheme): `CREATOR_ALL_ACL`.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl { perms: perms::ALL, id: Id { scheme: "auth".into(), id: Some(String::new()) } }]
    }

    fn anyone() -> Id {
        Id { scheme: "world".into(), id: Some("anyone".into()) }
    }
}
