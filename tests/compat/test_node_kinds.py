"""Ephemeral, sequential, container and TTL nodes (protocol doc sections 8.2-8.4)."""
import time

import pytest
from kazoo.exceptions import NoChildrenForEphemeralsError

import rawzk
from rawzk import Err, Mode, Op


def wait_until(pred, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def test_ephemeral_removed_at_session_close(zk, kazoo_factory, base):
    other = kazoo_factory()
    other.create(base + "/e", b"x", ephemeral=True)
    other.create(base + "/es-", b"x", ephemeral=True, sequence=True)
    st = zk.exists(base + "/e")
    assert st.ephemeralOwner == other.client_id[0]
    with pytest.raises(NoChildrenForEphemeralsError):
        other.create(base + "/e/child")
    other.stop()   # closeSession: ephemerals are removed in the same transaction
    assert zk.get_children(base) == []


def test_ephemeral_survives_reconnect_of_same_session(server, base):
    c1 = rawzk.connect(server, timeout_ms=10000)
    assert c1.create(base + "/e", flags=Mode.EPHEMERAL).err == 0
    sid, pw, last = c1.session_id, c1.passwd, c1.last_zxid
    c1.close()   # drop the TCP connection without closeSession
    with rawzk.RawClient(server.host, server.port) as c2:
        resp = c2.handshake(timeout=10000, session_id=sid, passwd=pw, last_zxid=last)
        assert resp["session_id"] == sid and resp["passwd"] == pw and resp["timeout"] == 10000
        st = c2.exists(base + "/e").stat()
        assert st.ephemeralOwner == sid
        assert c2.call(Op.CLOSE_SESSION).err == 0
    with rawzk.connect(server) as c3:
        assert c3.exists(base + "/e").err == Err.NO_NODE


def test_container_reaped_only_after_use(server, base):
    """A container is deleted by the server once its last child is gone; a container that
    never had a child survives (checkIntervalMs=500)."""
    with rawzk.connect(server) as c:
        rep = c.create(base + "/used", flags=Mode.CONTAINER, op=Op.CREATE_CONTAINER)
        assert rep.err == 0
        path, st = rep.path_stat()
        assert path == base + "/used"
        assert st.ephemeralOwner == 0   # the container marker is not shown
        assert c.create(base + "/unused", flags=Mode.CONTAINER, op=Op.CREATE_CONTAINER).err == 0
        # containers can hold ephemerals and persistent children
        assert c.create(base + "/used/kid").err == 0
        assert c.create(base + "/used/eph", flags=Mode.EPHEMERAL).err == 0
        # a container with children is not touched
        time.sleep(1.2)
        assert c.exists(base + "/used").err == 0
        # watch the container to see the server's delete as an ordinary event
        assert c.exists(base + "/used", watch=True).err == 0
        assert c.delete(base + "/used/kid").err == 0
        assert c.delete(base + "/used/eph").err == 0
        wait_until(lambda: c.exists(base + "/used").err == Err.NO_NODE, timeout=10,
                   what="used container to be reaped")
        assert (rawzk.Ev.DELETED, rawzk.SYNC_CONNECTED, base + "/used") in c.events
        # the pass that reaped /used also saw /unused: never-used containers survive
        assert c.exists(base + "/unused").err == 0


def test_ttl_nodes(server, base):
    with rawzk.connect(server) as c:
        rep = c.create_ttl(base + "/short", ttl=300, data=b"t")
        assert rep.err == 0
        path, st = rep.path_stat()
        assert path == base + "/short" and st.ephemeralOwner == 0   # TTL marker hidden
        rep = c.create_ttl(base + "/seq-", ttl=300, flags=Mode.PERSISTENT_SEQUENTIAL_WITH_TTL)
        assert rep.err == 0 and rep.path_stat()[0] == base + "/seq-0000000001"
        # a TTL node with a child is not deleted
        assert c.create_ttl(base + "/parent", ttl=300).err == 0
        assert c.create(base + "/parent/kid").err == 0
        # a long TTL survives
        assert c.create_ttl(base + "/long", ttl=600000).err == 0
        wait_until(lambda: c.exists(base + "/short").err == Err.NO_NODE, timeout=10,
                   what="TTL node to expire")
        wait_until(lambda: c.exists(base + "/seq-0000000001").err == Err.NO_NODE, timeout=5,
                   what="sequential TTL node to expire")
        assert c.exists(base + "/parent").err == 0
        assert c.exists(base + "/long").err == 0


def test_ttl_bad_values(server, base):
    with rawzk.connect(server) as c:
        assert c.create_ttl(base + "/z", ttl=0).err == Err.BAD_ARGUMENTS
        assert c.create_ttl(base + "/z", ttl=-5).err == Err.BAD_ARGUMENTS
        assert c.create_ttl(base + "/z", ttl=(1 << 40)).err == Err.BAD_ARGUMENTS
        assert c.create_ttl(base + "/z", ttl=(1 << 40) - 1).err == 0


@pytest.mark.only_target("warren", reason="quirk Q2: ZooKeeper 3.8.0 shuts down (and poisons "
                         "its data dir) on createTTL with a non-TTL flag; Warren must answer -8")
def test_mismatched_opcode_and_flags_rejected(server, base):
    with rawzk.connect(server) as c:
        assert c.call(Op.CREATE_TTL, rawzk.create_ttl_req(base + "/a", flags=0, ttl=-1)).err == Err.BAD_ARGUMENTS
        assert c.call(Op.CREATE_TTL, rawzk.create_ttl_req(base + "/b", flags=4, ttl=-1)).err == Err.BAD_ARGUMENTS
        assert c.create(base + "/c", flags=0, op=Op.CREATE_CONTAINER).err == Err.BAD_ARGUMENTS
        assert c.exists(base + "/a").err == Err.NO_NODE
        assert c.exists(base + "/c").err == Err.NO_NODE


def test_ttl_unimplemented_when_disabled(server_factory):
    """With extendedTypesEnabled=false (ZooKeeper's default) TTL creates answer Unimplemented."""
    srv = server_factory({"extendedTypesEnabled": "false"})
    with rawzk.connect(srv) as c:
        assert c.create_ttl("/ttl", ttl=1000).err == Err.UNIMPLEMENTED
        assert c.create_ttl("/ttl-", ttl=1000, flags=Mode.PERSISTENT_SEQUENTIAL_WITH_TTL).err == Err.UNIMPLEMENTED
        assert c.exists("/ttl").err == Err.NO_NODE
        # the connection stays usable and containers still work
        assert c.create("/cont", flags=Mode.CONTAINER, op=Op.CREATE_CONTAINER).err == 0
