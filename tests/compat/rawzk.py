"""A tiny hand-written ZooKeeper wire client for the compatibility tests.

It gives byte-level control that no client library offers: arbitrary xids and
opcodes, truncated or oversized frames, old-style ConnectRequests, and the exact
order in which replies and watch notifications arrive on a connection.

Encoding follows /work/shared/zk-protocol.md sections 1-3 (Jute: big-endian
ints/longs, length-prefixed buffers/strings with -1 = null, vectors with a count).
"""
import base64
import hashlib
import socket
import struct
import time
from collections import namedtuple

MAX_BUFFER = 0xFFFFF  # jute.maxbuffer default


class Op:
    NOTIFICATION = 0
    CREATE = 1
    DELETE = 2
    EXISTS = 3
    GET_DATA = 4
    SET_DATA = 5
    GET_ACL = 6
    SET_ACL = 7
    GET_CHILDREN = 8
    SYNC = 9
    PING = 11
    GET_CHILDREN2 = 12
    CHECK = 13
    MULTI = 14
    CREATE2 = 15
    RECONFIG = 16
    CHECK_WATCHES = 17
    REMOVE_WATCHES = 18
    CREATE_CONTAINER = 19
    DELETE_CONTAINER = 20
    CREATE_TTL = 21
    MULTI_READ = 22
    AUTH = 100
    SET_WATCHES = 101
    SASL = 102
    GET_EPHEMERALS = 103
    GET_ALL_CHILDREN_NUMBER = 104
    SET_WATCHES2 = 105
    ADD_WATCH = 106
    WHO_AM_I = 107
    CLOSE_SESSION = -11
    ERROR = -1


class Err:
    OK = 0
    RUNTIME_INCONSISTENCY = -2
    MARSHALLING = -5
    UNIMPLEMENTED = -6
    BAD_ARGUMENTS = -8
    NO_NODE = -101
    NO_AUTH = -102
    BAD_VERSION = -103
    NO_CHILDREN_FOR_EPHEMERALS = -108
    NODE_EXISTS = -110
    NOT_EMPTY = -111
    SESSION_EXPIRED = -112
    INVALID_ACL = -114
    AUTH_FAILED = -115
    NO_WATCHER = -121
    RECONFIG_DISABLED = -123


class Ev:
    CREATED = 1
    DELETED = 2
    DATA_CHANGED = 3
    CHILDREN_CHANGED = 4


class Perm:
    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


class Mode:  # CreateMode flags
    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6


XID_NOTIFICATION = -1
XID_PING = -2
XID_AUTH = -4
SYNC_CONNECTED = 3

OPEN_ACL = [(Perm.ALL, "world", "anyone")]

Stat = namedtuple("Stat", "czxid mzxid ctime mtime version cversion aversion "
                          "ephemeralOwner dataLength numChildren pzxid")


def digest_id(user, password):
    """user:BASE64(SHA1("user:password")) as stored in digest ACLs."""
    raw = ("%s:%s" % (user, password)).encode()
    return "%s:%s" % (user, base64.b64encode(hashlib.sha1(raw).digest()).decode())


# ------------------------------------------------------------------ encoding
def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def buf(b):
    return i32(-1) if b is None else i32(len(b)) + bytes(b)


def ustr(s):
    return i32(-1) if s is None else buf(s.encode("utf-8"))


def ustr_vec(items):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(ustr(s) for s in items)


def acl_vec(acls):
    if acls is None:
        return i32(-1)
    out = i32(len(acls))
    for perms, scheme, ident in acls:
        out += i32(perms) + ustr(scheme) + ustr(ident)
    return out


def connect_req(timeout=10000, session_id=0, passwd=b"\0" * 16, last_zxid=0,
                read_only=False, protocol_version=0):
    """ConnectRequest payload; read_only=None omits the trailing byte (old client)."""
    p = i32(protocol_version) + i64(last_zxid) + i32(timeout) + i64(session_id) + buf(passwd)
    if read_only is not None:
        p += boolean(read_only)
    return p


def create_req(path, data=b"", acl=OPEN_ACL, flags=0):
    return ustr(path) + buf(data) + acl_vec(acl) + i32(flags)


def create_ttl_req(path, data=b"", acl=OPEN_ACL, flags=Mode.PERSISTENT_WITH_TTL, ttl=1000):
    return create_req(path, data, acl, flags) + i64(ttl)


def delete_req(path, version=-1):
    return ustr(path) + i32(version)


def path_watch_req(path, watch=False):
    """exists / getData / getChildren / getChildren2 request."""
    return ustr(path) + boolean(watch)


def path_req(path):
    """getACL / sync / getAllChildrenNumber / getEphemerals request."""
    return ustr(path)


def set_data_req(path, data, version=-1):
    return ustr(path) + buf(data) + i32(version)


def set_acl_req(path, acl, version=-1):
    return ustr(path) + acl_vec(acl) + i32(version)


def check_req(path, version):
    return ustr(path) + i32(version)


def path_int_req(path, value):
    """checkWatches / removeWatches (path, WatcherType) and addWatch (path, mode)."""
    return ustr(path) + i32(value)


def multi_header(op_type, done, err):
    return i32(op_type) + boolean(done) + i32(err)


def multi_req(ops):
    """ops: list of (opcode, body_bytes)."""
    out = b""
    for op, body in ops:
        out += multi_header(op, False, -1) + body
    return out + multi_header(-1, True, -1)


def set_watches_req(rel_zxid, data=(), exist=(), child=()):
    return i64(rel_zxid) + ustr_vec(list(data)) + ustr_vec(list(exist)) + ustr_vec(list(child))


def set_watches2_req(rel_zxid, data=(), exist=(), child=(), persistent=(), recursive=()):
    return (set_watches_req(rel_zxid, data, exist, child)
            + ustr_vec(list(persistent)) + ustr_vec(list(recursive)))


def auth_req(scheme, auth):
    if isinstance(auth, str):
        auth = auth.encode()
    return i32(0) + ustr(scheme) + buf(auth)


# ------------------------------------------------------------------ decoding
class Reader:
    def __init__(self, data):
        self.d = bytes(data)
        self.o = 0

    def _take(self, fmt, n):
        if self.o + n > len(self.d):
            raise ValueError("truncated record at offset %d" % self.o)
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += n
        return v

    def int(self):
        return self._take(">i", 4)

    def long(self):
        return self._take(">q", 8)

    def bool(self):
        v = self._take(">B", 1)
        return v != 0

    def buffer(self):
        n = self.int()
        if n == -1:
            return None
        if n < 0 or self.o + n > len(self.d):
            raise ValueError("bad buffer length %d" % n)
        v = self.d[self.o:self.o + n]
        self.o += n
        return v

    def ustring(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8")

    def vector(self, fn):
        n = self.int()
        if n == -1:
            return None
        return [fn() for _ in range(n)]

    def stat(self):
        return Stat(self.long(), self.long(), self.long(), self.long(), self.int(),
                    self.int(), self.int(), self.long(), self.int(), self.int(), self.long())

    def acl(self):
        return (self.int(), self.ustring(), self.ustring())

    def remaining(self):
        return len(self.d) - self.o

    def done(self):
        if self.o != len(self.d):
            raise ValueError("%d trailing bytes: %s" % (len(self.d) - self.o, self.d[self.o:].hex()))


def parse_connect_response(payload):
    r = Reader(payload)
    out = dict(length=len(payload), protocol_version=r.int(), timeout=r.int(),
               session_id=r.long(), passwd=r.buffer(), read_only=None)
    if r.remaining():
        out["read_only"] = r.bool()
    r.done()
    return out


class Reply:
    """One server frame after the handshake: ReplyHeader + body bytes."""

    def __init__(self, payload):
        if len(payload) < 16:
            raise ValueError("short reply frame: %s" % payload.hex())
        self.payload = payload
        self.xid, self.zxid, self.err = struct.unpack_from(">iqi", payload, 0)
        self.body = payload[16:]

    @property
    def is_event(self):
        return self.xid == XID_NOTIFICATION

    def reader(self):
        return Reader(self.body)

    def decode(self, read):
        """read(reader) over the whole body; trailing bytes are an error."""
        r = self.reader()
        value = read(r)
        r.done()
        return value

    def event(self):
        """(type, state, path) of a notification."""
        return self.decode(lambda r: (r.int(), r.int(), r.ustring()))

    # typed body decoders (only meaningful when err == 0)
    def path(self):
        return self.decode(Reader.ustring)

    def path_stat(self):
        return self.decode(lambda r: (r.ustring(), r.stat()))

    def stat(self):
        return self.decode(Reader.stat)

    def data_stat(self):
        return self.decode(lambda r: (r.buffer(), r.stat()))

    def children(self):
        return self.decode(lambda r: r.vector(r.ustring))

    def children_stat(self):
        return self.decode(lambda r: (r.vector(r.ustring), r.stat()))

    def acl_stat(self):
        return self.decode(lambda r: (r.vector(r.acl), r.stat()))

    def multi_results(self):
        """List of (type, err, value) for a multi / multiRead reply body."""
        r = self.reader()
        out = []
        while True:
            t, done, err = r.int(), r.bool(), r.int()
            if done:
                if (t, err) != (-1, -1):
                    raise ValueError("bad multi end marker %r" % ((t, err),))
                break
            if t == Op.ERROR:
                val = r.int()
            elif t == Op.CREATE:
                val = r.ustring()
            elif t == Op.CREATE2:
                val = (r.ustring(), r.stat())
            elif t == Op.SET_DATA:
                val = r.stat()
            elif t in (Op.DELETE, Op.CHECK):
                val = None
            elif t == Op.GET_DATA:
                val = (r.buffer(), r.stat())
            elif t == Op.GET_CHILDREN:
                val = r.vector(r.ustring)
            else:
                raise ValueError("unexpected multi result type %d" % t)
            out.append((t, err, val))
        r.done()
        return out

    def __repr__(self):
        return "Reply(xid=%d, zxid=%d, err=%d, body=%s)" % (
            self.xid, self.zxid, self.err, self.body.hex())


class Closed(Exception):
    """The server closed the connection."""


class RawClient:
    """One TCP connection. Nothing is sent implicitly (no pings, no auth)."""

    def __init__(self, host, port, timeout=5.0):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:     # the server may already have closed it (e.g. maxClientCnxns)
            pass
        self.timeout = timeout
        self.xid = 0
        self.events = []         # notifications collected while waiting in call()
        self.session = None      # parsed ConnectResponse
        self.last_zxid = 0
        self._buf = b""

    # -- context manager
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- bytes
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.send_raw(i32(len(payload)) + payload)

    def _fill(self, n, deadline):
        while len(self._buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no data from server within timeout")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no data from server within timeout")
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                raise Closed("connection closed by server (%d bytes pending)" % len(self._buf))
            self._buf += chunk

    def read_frame(self, timeout=None):
        """Next frame payload. Raises Closed on EOF, TimeoutError on silence."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(4, deadline)
        (n,) = struct.unpack(">i", self._buf[:4])
        if n < 0 or n > 16 * 1024 * 1024:
            raise ValueError("insane frame length %d from server" % n)
        self._fill(4 + n, deadline)
        payload = self._buf[4:4 + n]
        self._buf = self._buf[4 + n:]
        return payload

    def wait_closed(self, timeout=None):
        """Read until the server closes; return the frames received before that.
        Raises TimeoutError if the connection is still open after `timeout`."""
        frames = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                frames.append(self.read_frame(max(0.0, deadline - time.monotonic())))
            except Closed:
                return frames

    def is_open_after(self, seconds=0.3):
        """True if nothing (no data, no EOF) arrives within `seconds`."""
        try:
            self.read_frame(seconds)
        except TimeoutError:
            return True
        except Closed:
            return False
        raise AssertionError("unexpected frame while checking that the connection stays open")

    # -- session
    def handshake(self, timeout=10000, session_id=0, passwd=b"\0" * 16, last_zxid=0,
                  read_only=False):
        self.send_frame(connect_req(timeout, session_id, passwd, last_zxid, read_only))
        self.session = parse_connect_response(self.read_frame())
        return self.session

    @property
    def session_id(self):
        return self.session["session_id"]

    @property
    def passwd(self):
        return self.session["passwd"]

    # -- requests
    def next_xid(self):
        self.xid += 1
        return self.xid

    def send(self, op, body=b"", xid=None):
        if xid is None:
            xid = self.next_xid()
        self.send_frame(i32(xid) + i32(op) + body)
        return xid

    def recv(self, timeout=None):
        rep = Reply(self.read_frame(timeout))
        if rep.zxid > 0 and not rep.is_event:
            self.last_zxid = max(self.last_zxid, rep.zxid)
        return rep

    def next_event(self, timeout=None):
        """Next notification (type, state, path): first those collected by call(),
        then from the wire (a non-notification frame here is an error)."""
        if self.events:
            return self.events.pop(0)
        rep = self.recv(timeout)
        if not rep.is_event:
            raise AssertionError("expected a notification, got %r" % rep)
        return rep.event()

    def call(self, op, body=b"", xid=None, timeout=None):
        """Send one request and return its reply; notifications seen meanwhile
        are appended to self.events."""
        xid = self.send(op, body, xid)
        want = XID_PING if op == Op.PING else xid
        while True:
            rep = self.recv(timeout)
            if rep.is_event and want != XID_NOTIFICATION:
                self.events.append(rep.event())
                continue
            if rep.xid != want:
                raise AssertionError("reply xid %d while waiting for %d" % (rep.xid, want))
            return rep

    # -- convenience wrappers (all return Reply)
    def create(self, path, data=b"", acl=OPEN_ACL, flags=0, op=Op.CREATE):
        return self.call(op, create_req(path, data, acl, flags))

    def create_ttl(self, path, ttl, data=b"", flags=Mode.PERSISTENT_WITH_TTL, acl=OPEN_ACL):
        return self.call(Op.CREATE_TTL, create_ttl_req(path, data, acl, flags, ttl))

    def delete(self, path, version=-1):
        return self.call(Op.DELETE, delete_req(path, version))

    def exists(self, path, watch=False):
        return self.call(Op.EXISTS, path_watch_req(path, watch))

    def get_data(self, path, watch=False):
        return self.call(Op.GET_DATA, path_watch_req(path, watch))

    def set_data(self, path, data, version=-1):
        return self.call(Op.SET_DATA, set_data_req(path, data, version))

    def get_children(self, path, watch=False):
        return self.call(Op.GET_CHILDREN, path_watch_req(path, watch))

    def get_children2(self, path, watch=False):
        return self.call(Op.GET_CHILDREN2, path_watch_req(path, watch))

    def get_acl(self, path):
        return self.call(Op.GET_ACL, path_req(path))

    def set_acl(self, path, acl, version=-1):
        return self.call(Op.SET_ACL, set_acl_req(path, acl, version))

    def sync(self, path):
        return self.call(Op.SYNC, path_req(path))

    def multi(self, ops, op=Op.MULTI):
        return self.call(op, multi_req(ops))

    def add_watch(self, path, mode):
        return self.call(Op.ADD_WATCH, path_int_req(path, mode))

    def auth(self, scheme, credential):
        return self.call(Op.AUTH, auth_req(scheme, credential), xid=XID_AUTH)

    def ping(self, xid=XID_PING):
        return self.call(Op.PING, b"", xid=xid)


def connect(server, timeout_ms=10000, **kw):
    """RawClient with a completed new-session handshake."""
    c = RawClient(server.host, server.port)
    resp = c.handshake(timeout=timeout_ms, **kw)
    assert resp["timeout"] > 0 and resp["session_id"] != 0, resp
    return c
