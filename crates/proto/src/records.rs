//! Every client-visible Jute record of `zookeeper.jute`, field for field.

use crate::jute::{DecodeError, Element, Reader, Record, Writer};

/// Declares a record whose wire form is its fields in order.
macro_rules! record {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $(pub $field: $ty),* }

        impl Record for $name {
            fn decode(_r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($name { $($field: <$ty as Record>::decode(_r)?),* })
            }
            fn encode(&self, _w: &mut Vec<u8>) {
                $(Record::encode(&self.$field, _w);)*
            }
        }

        impl Element for $name {}
    };
}

record!(
    /// An authenticated identity or ACL subject. `id` is nullable: kazoo writes `""` as null.
    Id { scheme: String, id: Option<String> }
);
record!(Acl { perms: i32, id: Id });
record!(
    /// Node metadata; 68 bytes on the wire.
    Stat {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        data_length: i32,
        num_children: i32,
        pzxid: i64,
    }
);
impl Acl {
    /// `world:anyone` with `perms`; with `perms::ALL` it is ZooKeeper's `OPEN_ACL_UNSAFE`.
    pub fn anyone(perms: i32) -> Acl {
        Acl { perms, id: Id { scheme: "world".into(), id: Some("anyone".into()) } }
    }
}

record!(ClientInfo { auth_scheme: String, user: String });
record!(RequestHeader { xid: i32, opcode: i32 });
record!(ReplyHeader { xid: i32, zxid: i64, err: i32 });
record!(MultiHeader { opcode: i32, done: bool, err: i32 });
record!(WatcherEvent { event_type: i32, state: i32, path: String });
record!(ErrorResponse { err: i32 });
record!(AuthPacket { auth_type: i32, scheme: String, auth: Vec<u8> });
// Znode data is a nullable buffer: ZooKeeper keeps null apart from empty and returns it as null.
record!(CreateRequest { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32 });
record!(CreateTtlRequest { path: String, data: Option<Vec<u8>>, acl: Vec<Acl>, flags: i32, ttl: i64 });
record!(DeleteRequest { path: String, version: i32 });
record!(PathWatchRequest { path: String, watch: bool });
record!(SetDataRequest { path: String, data: Option<Vec<u8>>, version: i32 });
record!(PathRequest { path: String });
record!(SetAclRequest { path: String, acl: Vec<Acl>, version: i32 });
record!(CheckVersionRequest { path: String, version: i32 });
record!(ReconfigRequest {
    joining_servers: Option<String>,
    leaving_servers: Option<String>,
    new_members: Option<String>,
    cur_config_id: i64,
});
record!(
    /// checkWatches and removeWatches share this shape; `watcher_type` is a `WatcherType`.
    WatchesRequest { path: String, watcher_type: i32 }
);
record!(AddWatchRequest { path: String, mode: i32 });
record!(SetWatches {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
});
record!(SetWatches2 {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
    persistent_watches: Vec<String>,
    persistent_recursive_watches: Vec<String>,
});
record!(SaslToken { token: Option<Vec<u8>> });

/// The optional trailing byte of the handshake records.
fn read_only_byte(r: &mut Reader<'_>) -> Result<Option<bool>, DecodeError> {
    if r.remaining() > 0 {
        r.bool().map(Some)
    } else {
        Ok(None)
    }
}

/// The first frame of a connection. Old clients omit the trailing `read_only` byte, and
/// the reply must then omit it too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: Vec::<u8>::decode(r)?,
            read_only: read_only_byte(r)?,
        })
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i32(self.protocol_version);
        w.put_i64(self.last_zxid_seen);
        w.put_i32(self.timeout_ms);
        w.put_i64(self.session_id);
        self.passwd.encode(w);
        if let Some(read_only) = self.read_only {
            w.put_bool(read_only);
        }
    }
}

/// The server's answer to a [`ConnectRequest`]; `timeout_ms == 0` tells the client its
/// session is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.i32()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: Vec::<u8>::decode(r)?,
            read_only: read_only_byte(r)?,
        })
    }
    fn encode(&self, w: &mut Vec<u8>) {
        w.put_i32(self.protocol_version);
        w.put_i32(self.timeout_ms);
        w.put_i64(self.session_id);
        self.passwd.encode(w);
        if let Some(read_only) = self.read_only {
            w.put_bool(read_only);
        }
    }
}
