"""Standard watches and notification ordering (protocol doc sections 11 and 15)."""
import queue

import rawzk
from rawzk import Err, Ev, Op, SYNC_CONNECTED


class Events:
    """Collects kazoo watch callbacks."""

    def __init__(self):
        self.q = queue.Queue()

    def __call__(self, event):
        self.q.put((event.type, event.path))

    def get(self, timeout=5.0):
        return self.q.get(timeout=timeout)

    def none_within(self, seconds=0.3):
        try:
            ev = self.q.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError("unexpected event %r" % (ev,))


def test_data_watch_one_shot(zk, kazoo_factory, base):
    p = base + "/n"
    zk.create(p, b"1")
    ev = Events()
    zk.get(p, watch=ev)
    other = kazoo_factory()
    other.set(p, b"2")
    assert ev.get() == ("CHANGED", p)
    other.set(p, b"3")          # one-shot: not re-armed
    ev.none_within(0.4)
    zk.get(p, watch=ev)
    other.delete(p)
    assert ev.get() == ("DELETED", p)


def test_exists_watch_on_missing_node(zk, kazoo_factory, base):
    p = base + "/later"
    ev = Events()
    assert zk.exists(p, watch=ev) is None    # registers a watch although NoNode
    kazoo_factory().create(p, b"")
    assert ev.get() == ("CREATED", p)


def test_child_watch(zk, kazoo_factory, base):
    ev = Events()
    assert zk.get_children(base, watch=ev) == []
    other = kazoo_factory()
    other.create(base + "/c1")
    assert ev.get() == ("CHILD", base)
    zk.get_children(base, watch=ev)
    other.delete(base + "/c1")
    assert ev.get() == ("CHILD", base)
    zk.get_children(base, watch=ev)
    other.set(base, b"data change is not a child change")
    ev.none_within(0.3)
    other.delete(base)
    assert ev.get() == ("DELETED", base)


def test_getdata_on_missing_node_sets_no_watch(server, base):
    with rawzk.connect(server) as c, rawzk.connect(server) as w:
        assert c.get_data(base + "/x", watch=True).err == Err.NO_NODE
        assert c.get_children(base + "/x", watch=True).err == Err.NO_NODE
        assert w.create(base + "/x").err == 0
        # no NodeCreated for getData/getChildren watches: the next frame is the ping reply
        assert c.ping().xid == rawzk.XID_PING
        assert c.events == []


def test_notification_before_own_write_reply(server, base):
    """The writer sees the event for its own write before the write's reply."""
    with rawzk.connect(server) as c:
        p = base + "/n"
        assert c.create(p, b"a").err == 0
        assert c.get_data(p, watch=True).err == 0
        xid = c.send(Op.SET_DATA, rawzk.set_data_req(p, b"b"))
        first = c.recv()
        second = c.recv()
        assert first.is_event and first.zxid == -1 and first.err == 0
        assert first.event() == (Ev.DATA_CHANGED, SYNC_CONNECTED, p)
        assert (second.xid, second.err) == (xid, 0)
        # child + node events of a create, then of a delete
        assert c.get_children(base, watch=True).err == 0
        assert c.exists(p + "/k", watch=True).err == Err.NO_NODE
        xid = c.send(Op.CREATE, rawzk.create_req(p + "/k"))
        frames = [c.recv() for _ in range(2)]
        assert frames[0].is_event and frames[0].event() == (Ev.CREATED, SYNC_CONNECTED, p + "/k")
        assert frames[1].xid == xid
        assert c.delete(p + "/k").err == 0
        assert c.events == []
        assert c.get_data(p, watch=True).err == 0
        assert c.get_children(p, watch=True).err == 0
        xid = c.send(Op.DELETE, rawzk.delete_req(p))
        frames = [c.recv() for _ in range(3)]
        # one NodeDeleted for the data+child watch of this connection, then the parent's event
        assert [f.event() for f in frames[:2]] == [(Ev.DELETED, SYNC_CONNECTED, p),
                                                    (Ev.CHILDREN_CHANGED, SYNC_CONNECTED, base)]
        assert frames[2].xid == xid and frames[2].err == 0
        assert c.is_open_after(0.3)   # and nothing else (no duplicate NodeDeleted)


def test_notification_before_later_reply_on_other_connection(server, base):
    with rawzk.connect(server) as writer, rawzk.connect(server) as watcher:
        p = base + "/n"
        assert writer.create(p, b"a").err == 0
        assert watcher.get_data(p, watch=True).err == 0
        assert watcher.exists(p, watch=True).err == 0     # same entry: one event only
        assert writer.set_data(p, b"b").err == 0
        xid = watcher.send(Op.GET_DATA, rawzk.path_watch_req(p))
        first, second = watcher.recv(), watcher.recv()
        assert first.is_event and first.event() == (Ev.DATA_CHANGED, SYNC_CONNECTED, p)
        assert second.xid == xid and second.data_stat()[0] == b"b"
        assert watcher.is_open_after(0.3)


def test_multi_events_before_multi_reply(server, base):
    with rawzk.connect(server) as c:
        a, b = base + "/a", base + "/b"
        c.create(a)
        c.create(b)
        assert c.get_data(a, watch=True).err == 0
        assert c.get_data(b, watch=True).err == 0
        xid = c.send(Op.MULTI, rawzk.multi_req([(Op.SET_DATA, rawzk.set_data_req(a, b"1")),
                                                (Op.SET_DATA, rawzk.set_data_req(b, b"1"))]))
        frames = [c.recv() for _ in range(3)]
        assert [f.event() for f in frames[:2]] == [(Ev.DATA_CHANGED, SYNC_CONNECTED, a),
                                                    (Ev.DATA_CHANGED, SYNC_CONNECTED, b)]
        assert frames[2].xid == xid and frames[2].err == 0


def test_failed_multi_fires_nothing(server, base):
    with rawzk.connect(server) as c:
        a = base + "/a"
        c.create(a)
        assert c.get_data(a, watch=True).err == 0
        rep = c.multi([(Op.SET_DATA, rawzk.set_data_req(a, b"1")),
                       (Op.CHECK, rawzk.check_req(a, 42))])
        assert rep.err == 0 and rep.multi_results()[1][1] == Err.BAD_VERSION
        assert c.events == []
        assert c.is_open_after(0.3)


def test_close_session_events_before_reply(server, base):
    with rawzk.connect(server) as watcher:
        c = rawzk.connect(server)
        e = base + "/eph"
        assert c.create(e, flags=rawzk.Mode.EPHEMERAL).err == 0
        assert c.exists(e, watch=True).err == 0
        assert watcher.exists(e, watch=True).err == 0
        assert watcher.get_children(base, watch=True).err == 0
        xid = c.send(Op.CLOSE_SESSION)
        frames = c.wait_closed(5)
        replies = [rawzk.Reply(f) for f in frames]
        assert len(replies) == 2, replies
        assert replies[0].event() == (Ev.DELETED, SYNC_CONNECTED, e)
        assert replies[1].xid == xid and replies[1].err == 0 and replies[1].body == b""
        c.close()
        got = [watcher.next_event() for _ in range(2)]
        assert got == [(Ev.DELETED, SYNC_CONNECTED, e), (Ev.CHILDREN_CHANGED, SYNC_CONNECTED, base)]


def test_watches_are_per_connection(server, base):
    """A watch set on one connection is gone when that connection closes, even though the
    session lives on (kazoo never re-registers; the Java client uses setWatches)."""
    p = base + "/n"
    c1 = rawzk.connect(server)
    c1.create(p, b"")
    assert c1.get_data(p, watch=True).err == 0
    sid, pw, last = c1.session_id, c1.passwd, c1.last_zxid
    c1.close()
    with rawzk.RawClient(server.host, server.port) as c2, rawzk.connect(server) as w:
        assert c2.handshake(session_id=sid, passwd=pw, last_zxid=last)["session_id"] == sid
        assert w.set_data(p, b"x").err == 0
        assert w.get_data(p).err == 0
        assert c2.ping().xid == rawzk.XID_PING
        assert c2.events == []


def test_set_watches_raw_catch_up(server, base):
    """setWatches (101): missed changes are notified immediately, before the reply."""
    with rawzk.connect(server) as w, rawzk.connect(server) as c:
        for n in ["d", "c", "same"]:
            assert w.create(base + "/" + n, b"").err == 0
        rel = w.last_zxid
        assert w.set_data(base + "/d", b"changed").err == 0
        assert w.create(base + "/c/kid").err == 0
        assert w.create(base + "/born").err == 0
        xid = c.send(Op.SET_WATCHES, rawzk.set_watches_req(
            rel, data=[base + "/d", base + "/gone", base + "/same"],
            exist=[base + "/born", base + "/still-missing"],
            child=[base + "/c", base + "/same"]))
        frames = []
        while True:
            f = c.recv()
            frames.append(f)
            if not f.is_event:
                break
        assert frames[-1].xid == xid and frames[-1].err == 0 and frames[-1].body == b""
        events = sorted(f.event() for f in frames[:-1])
        assert events == sorted([(Ev.DATA_CHANGED, SYNC_CONNECTED, base + "/d"),
                                 (Ev.DELETED, SYNC_CONNECTED, base + "/gone"),
                                 (Ev.CREATED, SYNC_CONNECTED, base + "/born"),
                                 (Ev.CHILDREN_CHANGED, SYNC_CONNECTED, base + "/c")])
        # the unchanged ones were registered
        assert w.set_data(base + "/same", b"1").err == 0
        assert w.create(base + "/still-missing").err == 0
        assert w.create(base + "/same/kid").err == 0
        got = [c.next_event() for _ in range(3)]
        assert got == [(Ev.DATA_CHANGED, SYNC_CONNECTED, base + "/same"),
                       (Ev.CREATED, SYNC_CONNECTED, base + "/still-missing"),
                       (Ev.CHILDREN_CHANGED, SYNC_CONNECTED, base + "/same")]


def test_add_watch_raw_and_remove_watches(server, base):
    with rawzk.connect(server) as c, rawzk.connect(server) as w:
        p, sentinel = base + "/p", base + "/sentinel"
        w.create(sentinel)
        rep = c.add_watch(p, 0)
        assert rep.err == 0 and rep.body == b"\0\0\0\0"
        assert c.add_watch(p, 2).err == Err.MARSHALLING
        assert c.call(Op.CHECK_WATCHES, rawzk.path_int_req(p, 3)).err == 0
        assert w.create(p).err == 0
        assert w.set_data(p, b"1").err == 0
        assert w.set_data(p, b"2").err == 0
        assert w.create(p + "/kid").err == 0
        assert w.create(p + "/kid/grandkid").err == 0     # not seen by a non-recursive watch
        assert w.delete(p + "/kid/grandkid").err == 0
        assert w.set_data(sentinel, b"").err == 0
        assert c.get_data(sentinel, watch=True).err == 0
        assert w.set_data(sentinel, b"x").err == 0
        got = [c.next_event() for _ in range(5)]
        assert got == [(Ev.CREATED, SYNC_CONNECTED, p), (Ev.DATA_CHANGED, SYNC_CONNECTED, p),
                       (Ev.DATA_CHANGED, SYNC_CONNECTED, p), (Ev.CHILDREN_CHANGED, SYNC_CONNECTED, p),
                       (Ev.DATA_CHANGED, SYNC_CONNECTED, sentinel)]
        # removeWatches(Any) removes it; a second removal finds nothing
        assert c.call(Op.REMOVE_WATCHES, rawzk.path_int_req(p, 3)).err == 0
        assert c.call(Op.REMOVE_WATCHES, rawzk.path_int_req(p, 3)).err == Err.NO_WATCHER
        assert c.call(Op.CHECK_WATCHES, rawzk.path_int_req(p, 3)).err == Err.NO_WATCHER
        assert c.call(Op.CHECK_WATCHES, rawzk.path_int_req(base + "/never", 2)).err == Err.NO_WATCHER
        assert c.get_data(sentinel, watch=True).err == 0
        assert w.set_data(p, b"3").err == 0
        assert w.set_data(sentinel, b"y").err == 0
        assert c.next_event() == (Ev.DATA_CHANGED, SYNC_CONNECTED, sentinel)
        assert c.events == []

        # recursive: created/deleted/changed for the whole subtree, never NodeChildrenChanged
        r = base + "/r"
        assert c.add_watch(r, 1).err == 0
        for step in (lambda: w.create(r), lambda: w.create(r + "/a"), lambda: w.create(r + "/a/b"),
                     lambda: w.set_data(r + "/a/b", b"1"), lambda: w.delete(r + "/a/b")):
            assert step().err == 0
        got = [c.next_event()[::2] for _ in range(5)]
        assert got == [(Ev.CREATED, r), (Ev.CREATED, r + "/a"), (Ev.CREATED, r + "/a/b"),
                       (Ev.DATA_CHANGED, r + "/a/b"), (Ev.DELETED, r + "/a/b")]
        # child-type removal only touches the child table; data-type removes the recursive watch
        assert c.call(Op.REMOVE_WATCHES, rawzk.path_int_req(r, 2)).err == 0
        assert c.is_open_after(0.2)
