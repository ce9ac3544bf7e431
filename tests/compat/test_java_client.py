"""Operations only the stock Java client sends (createContainer, createTTL, addWatch,
removeWatches/checkWatches, multiRead, getEphemerals, getAllChildrenNumber, whoAmI,
setWatches/setWatches2 after a reconnect), driven through java/ZkDriver.java."""
import time

import pytest

from clients import parse_stat_kv
from servers import SUPER_PASSWORD, SUPER_USER


@pytest.fixture
def jzk(java, server):
    j = java()
    out = j.ok("connect %s 10000" % server.hostport)
    sid, timeout = out.split()
    assert sid.startswith("0x") and int(timeout) == 10000
    return j


def test_java_basic_ops(jzk, zk, base):
    out = jzk.ok("create %s/n hello PERSISTENT" % base)       # create2 (op 15)
    path, stat = out.split(" ", 1)
    st = parse_stat_kv(stat)
    assert path == base + "/n"
    assert st["czxid"] == st["mzxid"] == st["pzxid"] and st["dataLength"] == 5
    assert jzk.ok("createplain %s/s- - PERSISTENT_SEQUENTIAL" % base) == base + "/s-0000000001"
    data, stat = jzk.ok("get %s/n 0" % base).split(" ", 1)
    assert data == "hello" and parse_stat_kv(stat)["version"] == 0
    assert parse_stat_kv(jzk.ok("set %s/n v2 0" % base))["version"] == 1
    assert jzk.cmd("set %s/n v3 0" % base) == ["ERR BADVERSION -103"]
    assert sorted(jzk.ok("children %s 0" % base).split(",")) == ["n", "s-0000000001"]
    assert jzk.ok("sync %s" % base) == "0"
    assert jzk.ok("delete %s/n 1" % base) == ""
    assert jzk.cmd("delete %s/n -1" % base) == ["ERR NONODE -101"]
    assert jzk.ok("exists %s/n 0" % base) == "null"
    assert zk.get_children(base) == ["s-0000000001"]


def test_java_container_and_ttl(jzk, zk, base):
    out = jzk.ok("create %s/cont - CONTAINER" % base)          # op 19
    path, stat = out.split(" ", 1)
    assert path == base + "/cont" and parse_stat_kv(stat)["ephemeralOwner"] == 0
    out = jzk.ok("create %s/ttl - PERSISTENT_WITH_TTL 400" % base)    # op 21
    assert out.split(" ", 1)[0] == base + "/ttl"
    out = jzk.ok("create %s/ttls- - PERSISTENT_SEQUENTIAL_WITH_TTL 600000" % base)
    assert out.split(" ", 1)[0] == base + "/ttls-0000000002"
    jzk.ok("createplain %s/cont/kid - PERSISTENT" % base)
    jzk.ok("delete %s/cont/kid -1" % base)
    deadline = time.monotonic() + 10
    while (zk.exists(base + "/cont") or zk.exists(base + "/ttl")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert zk.exists(base + "/cont") is None, "container not reaped"
    assert zk.exists(base + "/ttl") is None, "ttl node not expired"
    assert zk.exists(base + "/ttls-0000000002") is not None


def test_java_multiread_ephemerals_allchildren(jzk, zk, base):
    zk.create(base + "/a", b"A")
    zk.create(base + "/a/k1")
    zk.create(base + "/a/k1/g")
    zk.create(base + "/a/k2")
    out = jzk.cmd("multiread get:%s/a children:%s/a get:%s/missing" % (base, base, base))
    assert out[0] == "R data A version=0"
    assert out[1].startswith("R children ") and sorted(out[1][11:].split(",")) == ["k1", "k2"]
    assert out[2] == "R error -101"
    assert out[-1] == "OK"
    assert jzk.ok("allchildren %s/a" % base) == "3"
    assert jzk.ok("allchildren %s/a/k2" % base) == "0"
    assert jzk.cmd("allchildren %s/none" % base) == ["ERR NONODE -101"]
    zk.create(base + "/not-mine", ephemeral=True)
    jzk.ok("createplain %s/e1 - EPHEMERAL" % base)
    jzk.ok("createplain %s/a/e2 - EPHEMERAL" % base)
    jzk.ok("createplain %s/ex- - EPHEMERAL_SEQUENTIAL" % base)
    mine = sorted(jzk.ok("ephemerals %s" % base).split(","))
    assert mine == sorted([base + "/e1", base + "/a/e2", base + "/ex-0000000003"])
    # plain string prefix match, not a path prefix
    assert sorted(jzk.ok("ephemerals %s/e" % base).split(",")) == [base + "/e1", base + "/ex-0000000003"]
    assert sorted(jzk.ok("ephemerals /").split(",")) == mine
    assert jzk.ok("ephemerals %s/zzz" % base) == ""


def test_java_whoami(jzk):
    assert jzk.ok("whoami") == "ip=127.0.0.1"
    jzk.ok("auth digest alice:secret")
    assert sorted(jzk.ok("whoami").split(",")) == ["digest=alice", "ip=127.0.0.1"]
    jzk.ok("auth digest %s:%s" % (SUPER_USER, SUPER_PASSWORD))
    # the super digest adds both the plain digest id and the special ("super", "") id
    assert sorted(jzk.ok("whoami").split(",")) == ["digest=alice", "digest=super", "ip=127.0.0.1", "super="]
    jzk.ok("auth digest alice:secret")      # ids are a set: no duplicate
    assert len(jzk.ok("whoami").split(",")) == 4


def test_java_persistent_watch(jzk, zk, base):
    p = base + "/pw"
    jzk.ok("addwatch %s PERSISTENT" % p)            # op 106 on a missing node
    zk.create(p, b"")
    zk.set(p, b"1")
    zk.set(p, b"2")                                # still armed
    zk.create(p + "/kid")
    zk.create(p + "/kid/grandkid")                 # exact path only: nothing
    zk.delete(p + "/kid/grandkid")
    zk.delete(p + "/kid")
    zk.delete(p)
    jzk.wait_event("NodeDeleted", p)
    assert jzk.node_events() == [("NodeCreated", p), ("NodeDataChanged", p), ("NodeDataChanged", p),
                                 ("NodeChildrenChanged", p), ("NodeChildrenChanged", p), ("NodeDeleted", p)]


def test_java_persistent_recursive_watch(jzk, zk, base):
    r = base + "/r"
    jzk.ok("addwatch %s PERSISTENT_RECURSIVE" % r)
    zk.create(r)
    zk.create(r + "/a")
    zk.create(r + "/a/b")
    zk.set(r + "/a/b", b"1")
    zk.delete(r + "/a/b")
    zk.create(base + "/outside")
    zk.set(r, b"x")
    jzk.wait_event("NodeDataChanged", r)
    assert jzk.node_events() == [("NodeCreated", r), ("NodeCreated", r + "/a"), ("NodeCreated", r + "/a/b"),
                                 ("NodeDataChanged", r + "/a/b"), ("NodeDeleted", r + "/a/b"),
                                 ("NodeDataChanged", r)]


def wchp_paths(server):
    return [ln for ln in server.four_letter("wchp").split("\n") if ln.startswith("/")]


def test_java_remove_watches(jzk, zk, server, base):
    p = base + "/w"
    zk.create(p)
    jzk.ok("addwatch %s PERSISTENT" % p)
    assert p in wchp_paths(server)
    # removing one watcher object: the client only asks checkWatches (op 17), the server
    # keeps its watch, the client drops it locally
    jzk.ok("removewatcher %s Any" % p)
    jzk.wait_event("PersistentWatchRemoved", p, timeout=5)
    assert p in wchp_paths(server)
    jzk.ok("addwatch %s PERSISTENT_RECURSIVE" % p)
    jzk.ok("get %s 1" % p)
    # removeAllWatches: removeWatches (op 18) removes them on the server
    jzk.ok("removeall %s Any" % p)
    assert p not in wchp_paths(server)
    zk.set(p, b"x")
    zk.create(p + "/kid")
    # a fresh one-shot watch on another node proves the event stream is flowing
    zk.create(base + "/sentinel")
    jzk.ok("get %s/sentinel 1" % base)
    zk.set(base + "/sentinel", b"1")
    jzk.wait_event("NodeDataChanged", base + "/sentinel")
    assert [e for e in jzk.node_events() if e[0] in ("NodeDataChanged", "NodeCreated")] == \
        [("NodeDataChanged", base + "/sentinel")]


def test_java_set_watches_after_reconnect(java, server, zk, base, proxy_factory):
    """The Java client re-registers its watches with setWatches (101) after reconnecting;
    changes missed while disconnected are reported right away."""
    proxy = proxy_factory(server)
    j = java()
    j.ok("connect %s 10000" % proxy.hostport)
    a, b, c, d = (base + "/" + n for n in "abcd")
    zk.create(a, b"1")
    zk.create(c)
    zk.create(d, b"1")
    j.ok("get %s 1" % a)
    assert j.ok("exists %s 1" % b) == "null"
    j.ok("children %s 1" % c)
    j.ok("get %s 1" % d)
    proxy.pause()
    disc = j.wait_state("Disconnected")
    zk.set(a, b"2")
    zk.create(b)
    zk.create(c + "/kid")
    proxy.resume()
    j.wait_state("SyncConnected", after=disc)
    j.ok("sync /")     # setWatches is sent before queued requests: after this it was processed
    j.wait_event("NodeDataChanged", a)
    j.wait_event("NodeCreated", b)
    j.wait_event("NodeChildrenChanged", c)
    # the watch on d was re-registered without an event
    zk.set(d, b"2")
    j.wait_event("NodeDataChanged", d)
    assert sorted(j.node_events()) == sorted([("NodeDataChanged", a), ("NodeCreated", b),
                                              ("NodeChildrenChanged", c), ("NodeDataChanged", d)])


def test_java_set_watches2_persistent_after_reconnect(java, server, zk, base, proxy_factory):
    """Persistent watches are re-registered with setWatches2 (105); no catch-up event."""
    proxy = proxy_factory(server)
    j = java()
    j.ok("connect %s 10000" % proxy.hostport)
    r = base + "/r"
    zk.create(r)
    j.ok("addwatch %s PERSISTENT_RECURSIVE" % r)
    proxy.pause()
    disc = j.wait_state("Disconnected")
    zk.set(r, b"missed")
    proxy.resume()
    j.wait_state("SyncConnected", after=disc)
    j.ok("sync /")     # setWatches is sent before queued requests: after this it was processed
    zk.create(r + "/x")
    zk.set(r + "/x", b"1")
    j.wait_event("NodeDataChanged", r + "/x")
    assert j.node_events() == [("NodeCreated", r + "/x"), ("NodeDataChanged", r + "/x")]
