"""Session handshake, timeouts, expiry, resume and close (protocol doc sections 4 and 13)."""
import queue
import time

import pytest
from kazoo.protocol.states import KazooState

import rawzk
from rawzk import Ev, Mode, Op, SYNC_CONNECTED


@pytest.mark.parametrize("requested,negotiated", [(100, 400), (400, 400), (5000, 5000),
                                                  (40000, 40000), (100000, 40000)])
def test_timeout_negotiation(server, requested, negotiated):
    with rawzk.RawClient(server.host, server.port) as c:
        resp = c.handshake(timeout=requested)
        assert resp["timeout"] == negotiated
        assert resp["protocol_version"] == 0
        assert resp["session_id"] != 0
        assert len(resp["passwd"]) == 16
        assert resp["read_only"] is False
        assert resp["length"] == 37


def test_session_ids_unique_and_kazoo_connects(kazoo_factory):
    a, b = kazoo_factory(), kazoo_factory(timeout=1.0)
    assert a.client_id[0] != b.client_id[0]
    assert a.client_id[0] != 0 and len(a.client_id[1]) == 16
    assert a.state == KazooState.CONNECTED and b.state == KazooState.CONNECTED


def test_old_client_handshake_without_readonly_byte(server):
    with rawzk.RawClient(server.host, server.port) as c:
        c.send_frame(rawzk.connect_req(timeout=5000, read_only=None))   # 44-byte request
        resp = rawzk.parse_connect_response(c.read_frame())
        assert resp["length"] == 36 and resp["read_only"] is None
        assert resp["timeout"] == 5000 and resp["session_id"] != 0
        # the session works normally afterwards
        assert c.sync("/").path() == "/"
        assert c.call(Op.CLOSE_SESSION).err == 0


def test_pipelined_requests_behind_connect(server):
    with rawzk.RawClient(server.host, server.port) as c:
        c.send_raw(rawzk.i32(45) + rawzk.connect_req(timeout=5000)
                   + rawzk.i32(8 + 6) + rawzk.i32(1) + rawzk.i32(Op.EXISTS) + rawzk.path_watch_req("/")
                   + rawzk.i32(8) + rawzk.i32(-2) + rawzk.i32(Op.PING))
        resp = rawzk.parse_connect_response(c.read_frame())
        assert resp["timeout"] == 5000
        r1, r2 = c.recv(), c.recv()
        assert r1.xid == 1 and r1.err == 0 and r1.stat().numChildren >= 1
        assert r2.xid == -2 and r2.err == 0


def test_resume_session_same_id_and_password(server, base):
    c1 = rawzk.connect(server, timeout_ms=6000)
    sid, pw = c1.session_id, c1.passwd
    assert c1.create(base + "/e", flags=Mode.EPHEMERAL).err == 0
    last = c1.last_zxid
    c1.close()
    with rawzk.RawClient(server.host, server.port) as c2:
        resp = c2.handshake(timeout=8000, session_id=sid, passwd=pw, last_zxid=last)
        # same id and password; the timeout is negotiated again
        assert (resp["session_id"], resp["passwd"], resp["timeout"]) == (sid, pw, 8000)
        assert c2.exists(base + "/e").stat().ephemeralOwner == sid
        rep = c2.call(Op.CLOSE_SESSION)
        assert rep.err == 0 and rep.body == b""
        assert c2.wait_closed(5) == []


def test_resume_with_wrong_password_is_refused(server, base):
    c1 = rawzk.connect(server, timeout_ms=10000)
    sid, pw = c1.session_id, c1.passwd
    assert c1.create(base + "/e", flags=Mode.EPHEMERAL).err == 0
    bad = bytes([pw[0] ^ 0xFF]) + pw[1:]
    with rawzk.RawClient(server.host, server.port) as c2:
        resp = c2.handshake(timeout=10000, session_id=sid, passwd=bad, last_zxid=c1.last_zxid)
        assert resp["timeout"] == 0 and resp["session_id"] == 0
        assert resp["passwd"] == b"\0" * 16 and resp["read_only"] is False
        assert c2.wait_closed(5) == []
    # the session itself is still alive (the password was wrong, nothing expired)
    with rawzk.connect(server) as w:
        assert w.exists(base + "/e").stat().ephemeralOwner == sid
    c1.close()


def test_resume_unknown_session_is_refused(server):
    with rawzk.RawClient(server.host, server.port) as c:
        resp = c.handshake(timeout=5000, session_id=0x7EADBEEF00001234, passwd=b"\x01" * 16)
        assert (resp["timeout"], resp["session_id"], resp["passwd"]) == (0, 0, b"\0" * 16)
        assert c.wait_closed(5) == []
    with rawzk.RawClient(server.host, server.port) as c:     # old-client form: no readOnly byte
        c.send_frame(rawzk.connect_req(timeout=5000, session_id=0x7EADBEEF00001234,
                                       passwd=b"\x01" * 16, read_only=None))
        resp = rawzk.parse_connect_response(c.read_frame())
        assert resp["length"] == 36 and resp["timeout"] == 0 and resp["session_id"] == 0


def test_last_zxid_ahead_is_closed_without_reply(server):
    with rawzk.connect(server) as w:
        current = w.sync("/").zxid
    with rawzk.RawClient(server.host, server.port) as c:
        c.send_frame(rawzk.connect_req(timeout=5000, last_zxid=current + 1000))
        assert c.wait_closed(5) == []
    # lastZxidSeen equal to the server's zxid is fine
    with rawzk.RawClient(server.host, server.port) as c:
        assert c.handshake(timeout=5000, last_zxid=current)["timeout"] == 5000


def test_silent_session_expires(server, kazoo_factory, base):
    """A silent session is expired after ~its timeout: its ephemerals are deleted, other
    clients' watches fire, its connection is closed without a word and it cannot resume."""
    watcher = kazoo_factory()
    events = queue.Queue()
    c = rawzk.connect(server, timeout_ms=400)
    assert c.session["timeout"] == 400
    e = base + "/eph"
    assert c.create(e, flags=Mode.EPHEMERAL).err == 0
    sid, pw = c.session_id, c.passwd
    assert watcher.exists(e, watch=lambda ev: events.put((ev.type, ev.path))) is not None
    watcher.get_children(base, watch=lambda ev: events.put((ev.type, ev.path)))
    t0 = time.monotonic()
    frames = c.wait_closed(10)      # nothing sent: the server must close after expiry
    elapsed = time.monotonic() - t0
    assert frames == []
    assert 0.2 < elapsed < 5.0, elapsed
    got = {events.get(timeout=5), events.get(timeout=5)}
    assert got == {("DELETED", e), ("CHILD", base)}
    assert watcher.exists(e) is None
    c.close()
    with rawzk.RawClient(server.host, server.port) as c2:
        resp = c2.handshake(timeout=5000, session_id=sid, passwd=pw)
        assert (resp["timeout"], resp["session_id"]) == (0, 0)
        assert c2.wait_closed(5) == []


def test_pings_keep_session_alive(server, base):
    with rawzk.connect(server, timeout_ms=800) as c:
        e = base + "/eph"
        assert c.create(e, flags=Mode.EPHEMERAL).err == 0
        end = time.monotonic() + 2.0      # well past the 800 ms timeout
        while time.monotonic() < end:
            rep = c.ping()
            assert rep.xid == rawzk.XID_PING and rep.err == 0 and rep.body == b""
            time.sleep(0.1)
        assert c.exists(e).stat().ephemeralOwner == c.session_id


def test_close_session(server, base):
    with rawzk.connect(server) as w:
        c = rawzk.connect(server)
        assert c.create(base + "/e1", flags=Mode.EPHEMERAL).err == 0
        assert c.create(base + "/e2-", flags=Mode.EPHEMERAL_SEQUENTIAL).err == 0
        assert sorted(w.get_children(base, watch=True).children()) == ["e1", "e2-0000000001"]
        rep = c.call(Op.CLOSE_SESSION)
        assert rep.err == 0 and rep.body == b"" and rep.zxid > 0
        assert c.wait_closed(5) == []
        c.close()
        # both ephemerals go in one transaction; one child event for the watcher
        assert w.next_event() == (Ev.CHILDREN_CHANGED, SYNC_CONNECTED, base)
        children, st = w.get_children2(base).children_stat()
        assert children == []
        assert st.pzxid == rep.zxid
        assert w.events == []


def test_kazoo_session_expired_on_refused_resume(server, kazoo_factory):
    """kazoo turns a timeOut-0 ConnectResponse into an expired session and then starts a
    new one (kazoo starts in state LOST, so no extra LOST transition is reported)."""
    from kazoo.client import KazooClient
    first = kazoo_factory()
    sid, pw = first.client_id
    first.stop()            # closeSession: the id can never be resumed
    states = []
    c = KazooClient(hosts=server.hostport, client_id=(sid, pw), timeout=5.0)
    c.add_listener(states.append)
    try:
        c.start(timeout=15)
        assert states == [KazooState.CONNECTED]
        assert c.client_id[0] not in (0, sid)
    finally:
        c.stop()
        c.close()


def test_max_client_cnxns(server_factory):
    """Connections beyond maxClientCnxns per client IP are closed immediately."""
    srv = server_factory({"maxClientCnxns": "3"})
    conns = [rawzk.connect(srv) for _ in range(3)]
    try:
        try:
            extra = rawzk.RawClient(srv.host, srv.port)
        except OSError:
            extra = None      # closed so fast that connect() itself saw EPIPE/ECONNRESET
        if extra is not None:
            with extra:
                try:
                    extra.send_frame(rawzk.connect_req(timeout=5000))
                except OSError:
                    pass
                assert extra.wait_closed(5) == []
        for c in conns:
            assert c.ping().err == 0
        conns.pop().close()
        deadline = time.monotonic() + 5
        while True:          # the freed slot becomes usable once the server noticed the close
            try:
                with rawzk.connect(srv) as again:
                    assert again.ping().err == 0
                break
            except (rawzk.Closed, OSError, AssertionError):
                assert time.monotonic() < deadline, "slot not freed"
                time.sleep(0.1)
    finally:
        for c in conns:
            c.close()
