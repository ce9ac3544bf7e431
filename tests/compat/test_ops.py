"""Every client operation: results, errors and Stat maintenance (protocol doc sections 5-9, 12)."""
import time

import pytest
from kazoo.exceptions import (BadArgumentsError, BadVersionError, NoAuthError,
                              NoChildrenForEphemeralsError, NodeExistsError, NoNodeError,
                              NotEmptyError, RolledBackError, RuntimeInconsistency)
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE

import rawzk
from rawzk import Err, Mode, Op


# ------------------------------------------------------------------ create
def test_create_all_flags(zk, base):
    sid = zk.client_id[0]
    assert zk.create(base + "/p", b"d") == base + "/p"
    assert zk.create(base + "/e", b"d", ephemeral=True) == base + "/e"
    s = zk.create(base + "/s-", b"d", sequence=True)
    es = zk.create(base + "/es-", b"d", ephemeral=True, sequence=True)
    # the sequence suffix is the parent's create counter, 10 digits: p=0, e=1, s=2, es=3
    assert s == base + "/s-0000000002"
    assert es == base + "/es-0000000003"
    assert zk.exists(base + "/p").ephemeralOwner == 0
    assert zk.exists(s).ephemeralOwner == 0
    assert zk.exists(base + "/e").ephemeralOwner == sid
    assert zk.exists(es).ephemeralOwner == sid
    assert sorted(zk.get_children(base)) == sorted(["p", "e", "s-0000000002", "es-0000000003"])


def test_create_raw_flags_and_create2(server, base):
    with rawzk.connect(server) as c:
        for flags, name in [(0, "/a"), (1, "/b"), (2, "/c-"), (3, "/d-")]:
            rep = c.create(base + name, b"x", flags=flags)
            assert rep.err == 0
        rep = c.create(base + "/two", b"hello", op=Op.CREATE2)
        assert rep.err == 0
        path, st = rep.path_stat()
        assert path == base + "/two"
        assert st.czxid == st.mzxid == st.pzxid == rep.zxid
        assert (st.version, st.cversion, st.aversion) == (0, 0, 0)
        assert st.dataLength == 5 and st.numChildren == 0 and st.ephemeralOwner == 0
        assert st.ctime == st.mtime > 0
        assert c.get_data(base + "/two").data_stat() == (b"hello", st)
        # invalid CreateMode flag
        assert c.create(base + "/f7", flags=7).err == Err.BAD_ARGUMENTS


def test_create2_via_kazoo_include_data(zk, base):
    path, st = zk.create(base + "/n", b"abc", include_data=True)
    assert path == base + "/n"
    data, st2 = zk.get(base + "/n")
    assert data == b"abc"
    assert st == st2
    assert st.czxid == st.mzxid == st.pzxid
    assert st.dataLength == 3 and st.version == 0


def test_create_errors(zk, base):
    zk.create(base + "/x")
    with pytest.raises(NodeExistsError):
        zk.create(base + "/x")
    with pytest.raises(NoNodeError):
        zk.create(base + "/missing/child")
    zk.create(base + "/eph", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(base + "/eph/child")


def test_create_root_and_bad_paths_raw(server, base):
    with rawzk.connect(server) as c:
        assert c.create("/").err == Err.NODE_EXISTS
        for bad in [base + "/.", base + "/..", base + "/", base + "/a\x01b",
                    "relative", "", base + "/x\x00y"]:
            assert c.create(bad).err == Err.BAD_ARGUMENTS, repr(bad)
        # parent "/base/" does not exist -> NoNode wins over the path syntax check
        assert c.create(base + "//x").err == Err.NO_NODE
        # a sequential create of "/base/" gets a valid name after the suffix is appended
        rep = c.create(base + "/", flags=Mode.PERSISTENT_SEQUENTIAL)
        assert rep.err == 0
        assert rep.path() == base + "/0000000000"
        # names made only of dots are fine except "." and ".."
        for ok in ["/...", "/.a", "/a."]:
            assert c.create(base + ok).err == 0, ok
        # setData/setACL apply the full path check
        assert c.set_data(base + "/./x", b"").err == Err.BAD_ARGUMENTS
        assert c.set_acl(base + "/", rawzk.OPEN_ACL).err == Err.BAD_ARGUMENTS
        # reads do not validate syntax: a malformed path is just missing
        assert c.get_data("relative").err == Err.NO_NODE
        assert c.get_children(base + "/./x").err == Err.NO_NODE
        assert c.exists("relative").err == Err.NO_NODE
        assert c.exists(base + "\x00").err == Err.BAD_ARGUMENTS
        # delete only checks for '/', NUL and the special paths
        assert c.delete("relative").err == Err.BAD_ARGUMENTS
        assert c.delete(base + "/./nothing").err == Err.NO_NODE


# ------------------------------------------------------------------ delete
def test_delete_errors_and_success(zk, base):
    zk.create(base + "/d/child", makepath=True)
    with pytest.raises(NoNodeError):
        zk.delete(base + "/nope")
    with pytest.raises(NotEmptyError):
        zk.delete(base + "/d")
    zk.set(base + "/d/child", b"v1")
    with pytest.raises(BadVersionError):
        zk.delete(base + "/d/child", version=0)
    zk.delete(base + "/d/child", version=1)
    zk.delete(base + "/d", version=0)
    assert zk.exists(base + "/d") is None


def test_special_paths(zk, server):
    with pytest.raises(BadArgumentsError):
        zk.delete("/zookeeper")
    with pytest.raises(NoAuthError):
        zk.set("/zookeeper/config", b"x")
    acls, st = zk.get_acls("/zookeeper/config")
    assert acls == [ACL(1, Id("world", "anyone"))]
    assert st.aversion == -1
    assert set(zk.get_children("/zookeeper")) >= {"quota", "config"}
    with rawzk.connect(server) as c:
        for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"]:
            assert c.delete(p).err == Err.BAD_ARGUMENTS, p
        assert c.set_data("/zookeeper/config", b"x").err == Err.NO_AUTH


# ------------------------------------------------------------------ exists / get / set
def test_exists(zk, base):
    assert zk.exists(base + "/none") is None
    zk.create(base + "/n", b"12345")
    st = zk.exists(base + "/n")
    assert st is not None and st.dataLength == 5


def test_get_set_data_versions(zk, base):
    p = base + "/n"
    zk.create(p, b"v0")
    data, st0 = zk.get(p)
    assert data == b"v0" and st0.version == 0
    st1 = zk.set(p, b"v1-longer")
    assert st1.version == 1
    assert st1.mzxid > st0.mzxid and st1.czxid == st0.czxid
    assert st1.dataLength == 9
    assert st1.mtime >= st1.ctime
    with pytest.raises(BadVersionError):
        zk.set(p, b"x", version=0)
    st2 = zk.set(p, b"v1-longer", version=1)  # same data still bumps the version
    assert st2.version == 2
    st3 = zk.set(p, b"", version=-1)
    assert st3.version == 3 and st3.dataLength == 0
    assert zk.get(p) == (b"", st3)
    with pytest.raises(NoNodeError):
        zk.get(base + "/none")
    with pytest.raises(NoNodeError):
        zk.set(base + "/none", b"")


def test_stat_maintenance_raw(server, base):
    """czxid/mzxid/pzxid/version/cversion/aversion/numChildren/dataLength rules (section 8.1)."""
    with rawzk.connect(server) as c:
        p = base + "/n"
        r1 = c.create(p, b"abc")
        z1 = r1.zxid
        data, st = c.get_data(p).data_stat()
        assert data == b"abc"
        assert st.czxid == st.mzxid == st.pzxid == z1
        assert (st.version, st.cversion, st.aversion, st.ephemeralOwner) == (0, 0, 0, 0)
        assert (st.dataLength, st.numChildren) == (3, 0)
        assert st.ctime == st.mtime
        assert abs(st.ctime - time.time() * 1000) < 60000     # ms since the epoch

        r2 = c.set_data(p, b"hello")
        z2 = r2.zxid
        assert z2 > z1
        st = r2.stat()
        assert st.mzxid == z2 and st.czxid == z1 and st.pzxid == z1
        assert st.version == 1 and st.dataLength == 5 and st.mtime >= st.ctime

        z3 = c.create(p + "/c1").zxid
        z4 = c.create(p + "/c2").zxid
        st = c.exists(p).stat()
        assert (st.numChildren, st.cversion, st.pzxid) == (2, 2, z4)
        assert st.mzxid == z2 and st.version == 1
        assert z4 > z3 > z2

        z5 = c.delete(p + "/c1").zxid
        st = c.exists(p).stat()
        assert (st.numChildren, st.cversion, st.pzxid) == (1, 3, z5)

        r6 = c.set_acl(p, rawzk.OPEN_ACL, version=0)
        assert r6.err == 0
        st = r6.stat()
        assert st.aversion == 1 and st.mzxid == z2 and st.version == 1 and st.pzxid == z5
        assert c.set_acl(p, rawzk.OPEN_ACL, version=0).err == Err.BAD_VERSION

        # getChildren2 / exists / getData all report the same Stat
        children, st_c = c.get_children2(p).children_stat()
        assert children == ["c2"]
        assert st_c == c.exists(p).stat() == c.get_data(p).data_stat()[1]


# ------------------------------------------------------------------ children
def test_get_children(zk, base):
    assert zk.get_children(base) == []
    for n in ["b", "a", "c"]:
        zk.create(base + "/" + n)
    assert sorted(zk.get_children(base)) == ["a", "b", "c"]
    children, st = zk.get_children(base, include_data=True)
    assert sorted(children) == ["a", "b", "c"]
    assert st.numChildren == 3 and st.cversion == 3
    with pytest.raises(NoNodeError):
        zk.get_children(base + "/none")


# ------------------------------------------------------------------ ACL get/set
def test_get_set_acl_versions(zk, base):
    p = base + "/n"
    zk.create(p, b"")
    acls, st = zk.get_acls(p)
    assert acls == OPEN_ACL_UNSAFE
    assert st.aversion == 0
    new = [ACL(31, Id("world", "anyone")), ACL(1, Id("ip", "10.1.2.3"))]
    st = zk.set_acls(p, new, version=0)
    assert st.aversion == 1 and st.version == 0
    assert sorted(zk.get_acls(p)[0]) == sorted(new)
    with pytest.raises(BadVersionError):
        zk.set_acls(p, OPEN_ACL_UNSAFE, version=0)
    st = zk.set_acls(p, OPEN_ACL_UNSAFE, version=-1)
    assert st.aversion == 2
    with pytest.raises(NoNodeError):
        zk.get_acls(base + "/none")


# ------------------------------------------------------------------ multi
def test_multi_success_kazoo(zk, base):
    t = zk.transaction()
    t.create(base + "/a", b"1")
    t.create(base + "/b", b"2")
    t.set_data(base + "/a", b"3")
    t.check(base + "/a", 1)
    t.delete(base + "/b")
    res = t.commit()
    assert res[0] == base + "/a" and res[1] == base + "/b"
    assert res[2].version == 1
    assert res[3] is True and res[4] is True
    data, st = zk.get(base + "/a")
    assert data == b"3"
    # all ops of one multi share one zxid
    assert st.czxid == st.mzxid
    assert zk.exists(base + "/b") is None


def test_multi_failure_rollback_kazoo(zk, base):
    zk.create(base + "/v", b"")
    t = zk.transaction()
    t.create(base + "/new", b"")
    t.check(base + "/v", 5)
    t.create(base + "/new2", b"")
    res = t.commit()
    assert isinstance(res[0], RolledBackError)
    assert isinstance(res[1], BadVersionError)
    assert isinstance(res[2], RuntimeInconsistency)
    assert zk.exists(base + "/new") is None
    assert zk.exists(base + "/new2") is None


def test_multi_raw_results(server, base):
    with rawzk.connect(server) as c:
        c.create(base + "/v", b"")
        # failure: header err 0, [0, -103, -2] as error results, nothing applied
        rep = c.multi([(Op.CREATE, rawzk.create_req(base + "/m1")),
                       (Op.CHECK, rawzk.check_req(base + "/v", 99)),
                       (Op.CREATE, rawzk.create_req(base + "/m2"))])
        assert rep.err == 0
        assert rep.multi_results() == [(Op.ERROR, 0, 0), (Op.ERROR, Err.BAD_VERSION, Err.BAD_VERSION),
                                       (Op.ERROR, Err.RUNTIME_INCONSISTENCY, Err.RUNTIME_INCONSISTENCY)]
        assert c.exists(base + "/m1").err == Err.NO_NODE

        # success with every write sub-op
        rep = c.multi([(Op.CREATE, rawzk.create_req(base + "/a", b"x")),
                       (Op.CREATE2, rawzk.create_req(base + "/b")),
                       (Op.CREATE_CONTAINER, rawzk.create_req(base + "/cont", flags=Mode.CONTAINER)),
                       (Op.CREATE_TTL, rawzk.create_ttl_req(base + "/ttl", ttl=600000)),
                       (Op.SET_DATA, rawzk.set_data_req(base + "/a", b"yy", 0)),
                       (Op.CHECK, rawzk.check_req(base + "/a", 1)),
                       (Op.DELETE, rawzk.delete_req(base + "/b", 0))])
        assert rep.err == 0
        z = rep.zxid
        res = rep.multi_results()
        assert [r[0] for r in res] == [Op.CREATE, Op.CREATE, Op.CREATE2, Op.CREATE2,
                                       Op.SET_DATA, Op.CHECK, Op.DELETE]
        assert all(r[1] == 0 for r in res)
        assert res[0][2] == base + "/a"
        assert res[1][2] == base + "/b"   # create2 inside multi is answered as a plain create
        assert res[2][2][0] == base + "/cont" and res[2][2][1].czxid == z
        assert res[3][2][0] == base + "/ttl" and res[3][2][1].ephemeralOwner == 0
        assert res[4][2].version == 1 and res[4][2].mzxid == z and res[4][2].czxid == z
        st = c.exists(base + "/a").stat()
        assert st.czxid == st.mzxid == z
        assert c.exists(base + "/b").err == Err.NO_NODE

        # a failing delete in the middle
        rep = c.multi([(Op.SET_DATA, rawzk.set_data_req(base + "/a", b"zz")),
                       (Op.DELETE, rawzk.delete_req(base + "/nope")),
                       (Op.SET_DATA, rawzk.set_data_req(base + "/a", b"zz"))])
        assert [r[1] for r in rep.multi_results()] == [0, Err.NO_NODE, Err.RUNTIME_INCONSISTENCY]
        assert c.get_data(base + "/a").data_stat()[0] == b"yy"

        # multi ops see the effects of earlier ops of the same multi
        rep = c.multi([(Op.CREATE, rawzk.create_req(base + "/p")),
                       (Op.CREATE, rawzk.create_req(base + "/p/q")),
                       (Op.DELETE, rawzk.delete_req(base + "/p/q")),
                       (Op.DELETE, rawzk.delete_req(base + "/p"))])
        assert [r[1] for r in rep.multi_results()] == [0, 0, 0, 0]


def test_multi_read_raw(server, base):
    with rawzk.connect(server) as c:
        c.create(base + "/a", b"data")
        c.create(base + "/a/k")
        rep = c.multi([(Op.GET_DATA, rawzk.path_watch_req(base + "/a")),
                       (Op.GET_DATA, rawzk.path_watch_req(base + "/none")),
                       (Op.GET_CHILDREN, rawzk.path_watch_req(base + "/a"))], op=Op.MULTI_READ)
        assert rep.err == 0
        res = rep.multi_results()
        assert res[0][0] == Op.GET_DATA and res[0][2][0] == b"data"
        assert res[1] == (Op.ERROR, Err.NO_NODE, Err.NO_NODE)
        assert res[2] == (Op.GET_CHILDREN, 0, ["k"])


def test_sequential_counter_rules(zk, base):
    p = base + "/q"
    zk.create(p)
    names = [zk.create(p + "/s-", sequence=True) for _ in range(3)]
    assert names == [p + "/s-%010d" % i for i in range(3)]
    zk.delete(names[-1])
    # the counter is not reused after a delete ...
    assert zk.create(p + "/s-", sequence=True) == p + "/s-0000000003"
    # ... and counts non-sequential creates too
    zk.create(p + "/plain")
    assert zk.create(p + "/x", sequence=True) == p + "/x0000000005"
    # consecutive numbers inside one multi
    t = zk.transaction()
    t.create(p + "/m-", sequence=True)
    t.create(p + "/m-", sequence=True)
    assert t.commit() == [p + "/m-0000000006", p + "/m-0000000007"]
    # the reported cversion is creates + deletes
    st = zk.exists(p)
    assert st.numChildren == 7 and st.cversion == 9


# ------------------------------------------------------------------ sync
def test_sync(zk, server, base):
    assert zk.sync(base) == base
    with rawzk.connect(server) as c:
        rep = c.sync("nopath")        # no validation at all, the path is echoed
        assert rep.err == 0 and rep.path() == "nopath"
        rep = c.sync(base)
        assert rep.err == 0 and rep.path() == base
