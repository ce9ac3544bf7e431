"""ACL schemes, permission checks, getACL masking, auth packets (protocol doc section 10)."""
import base64
import hashlib

import pytest
from kazoo.exceptions import AuthFailedError, InvalidACLError, NoAuthError
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, make_digest_acl

import rawzk
from rawzk import Err, Op, Perm, digest_id
from servers import SUPER_PASSWORD, SUPER_USER


def digest_b64(text):
    return base64.b64encode(hashlib.sha1(text.encode()).digest()).decode()


def test_digest_id_worked_example():
    assert digest_id("alice", "secret") == "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="


def test_world_is_default(zk, base):
    zk.create(base + "/n")
    assert zk.get_acls(base + "/n")[0] == OPEN_ACL_UNSAFE


def test_digest_acl_requires_auth(zk, kazoo_factory, base):
    p = base + "/secret"
    zk.add_auth("digest", "bob:pw")
    zk.create(p, b"hidden", acl=[make_digest_acl("bob", "pw", all=True)])
    zk.create(p + "/kid", b"")
    stranger = kazoo_factory()
    # exists is never ACL-checked
    assert stranger.exists(p).dataLength == 6
    for call in (lambda: stranger.get(p), lambda: stranger.get_children(p),
                 lambda: stranger.get_acls(p), lambda: stranger.set(p, b"x"),
                 lambda: stranger.create(p + "/new"), lambda: stranger.delete(p + "/kid")):
        with pytest.raises(NoAuthError):
            call()
    stranger.add_auth("digest", "bob:pw")
    assert stranger.get(p)[0] == b"hidden"
    stranger.set(p, b"mine")
    acls, _ = stranger.get_acls(p)
    assert acls == [ACL(31, Id("digest", digest_id("bob", "pw")))]
    # a wrong password gives a different id: still no access
    other = kazoo_factory()
    other.add_auth("digest", "bob:wrong")
    with pytest.raises(NoAuthError):
        other.get(p)


def test_set_acl_checks_admin_before_version(zk, kazoo_factory, base):
    p = base + "/n"
    zk.add_auth("digest", "bob:pw")
    zk.create(p, b"", acl=[make_digest_acl("bob", "pw", all=True),
                           ACL(Perm.READ, Id("world", "anyone"))])
    stranger = kazoo_factory()
    with pytest.raises(NoAuthError):           # not BadVersion: ADMIN is checked first
        stranger.set_acls(p, OPEN_ACL_UNSAFE, version=7)


def test_auth_scheme_expands_to_all_digest_ids(zk, kazoo_factory, base):
    zk.add_auth("digest", "alice:secret")
    zk.add_auth("digest", "carol:pa:ss")     # password may contain ':'
    p = base + "/n"
    zk.create(p, b"", acl=[ACL(Perm.ALL, Id("auth", ""))])
    acls, _ = zk.get_acls(p)
    assert sorted(acls) == sorted([ACL(31, Id("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")),
                                   ACL(31, Id("digest", digest_id("carol", "pa:ss")))])
    # setACL with `auth` too
    zk.set_acls(p, [ACL(Perm.READ | Perm.ADMIN, Id("auth", ""))])
    acls, st = zk.get_acls(p)
    assert st.aversion == 1
    assert {a.perms for a in acls} == {Perm.READ | Perm.ADMIN} and len(acls) == 2
    c = kazoo_factory()
    c.add_auth("digest", "carol:pa:ss")
    assert c.get(p)[0] == b""


def test_get_acl_masks_digest_without_admin(zk, kazoo_factory, base):
    p = base + "/n"
    zk.add_auth("digest", "bob:pw")
    zk.create(p, b"", acl=[make_digest_acl("bob", "pw", all=True),
                           ACL(Perm.READ, Id("world", "anyone"))])
    stranger = kazoo_factory()
    acls, _ = stranger.get_acls(p)
    assert sorted(acls) == sorted([ACL(31, Id("digest", "bob:x")), ACL(1, Id("world", "anyone"))])
    acls, _ = zk.get_acls(p)
    assert ACL(31, Id("digest", digest_id("bob", "pw"))) in acls
    # ADMIN alone (no READ) is enough for getACL, and shows the real ids
    q = base + "/admin-only"
    zk.create(q, b"", acl=[ACL(Perm.ADMIN, Id("world", "anyone")), make_digest_acl("bob", "pw", all=True)])
    acls, _ = stranger.get_acls(q)
    assert ACL(31, Id("digest", digest_id("bob", "pw"))) in acls


def test_ip_acls(zk, base):
    cases = [("127.0.0.1", True), ("127.0.0.0/8", True), ("127.0.0.1/32", True),
             ("10.0.0.0/8", False), ("10.1.2.3", False)]
    for i, (ident, allowed) in enumerate(cases):
        p = "%s/ip%d" % (base, i)
        zk.create(p, b"v", acl=[ACL(Perm.ALL, Id("ip", ident))])
        if allowed:
            assert zk.get(p)[0] == b"v", ident
        else:
            with pytest.raises(NoAuthError):
                zk.get(p)


def test_super_bypasses_everything(zk, kazoo_factory, base):
    p = base + "/locked"
    zk.add_auth("digest", "bob:pw")
    zk.create(p, b"x", acl=[make_digest_acl("bob", "pw", read=True)])
    zk.create(base + "/nothing", b"y", acl=[ACL(Perm.READ, Id("ip", "10.0.0.1"))])
    root = kazoo_factory()
    root.add_auth("digest", "%s:%s" % (SUPER_USER, SUPER_PASSWORD))
    assert root.get(p)[0] == b"x"
    root.set(p, b"changed")
    root.create(p + "/kid")
    root.set_acls(base + "/nothing", OPEN_ACL_UNSAFE)
    root.delete(p + "/kid")
    root.delete(p)
    assert root.get(base + "/nothing")[0] == b"y"
    # a wrong super password is just another digest id
    fake = kazoo_factory()
    fake.add_auth("digest", "%s:wrong" % SUPER_USER)
    with pytest.raises(NoAuthError):
        fake.set("/zookeeper/config", b"")


def test_invalid_acls_raw(server, base):
    with rawzk.connect(server) as c:
        bad = [[], [(31, "digest", "nocolon")], [(31, "bogus", "x")], [(31, "auth", "")],
               [(31, "auth", None)], [(31, "ip", "not-an-ip")], [(31, "world", "nobody")], None]
        for acl in bad:
            assert c.create(base + "/x", acl=acl).err == Err.INVALID_ACL, acl
        assert c.exists(base + "/x").err == Err.NO_NODE
        assert c.create(base + "/y").err == 0
        for acl in bad:
            assert c.set_acl(base + "/y", acl).err == Err.INVALID_ACL, acl
        # duplicates are removed
        assert c.create(base + "/dup", acl=rawzk.OPEN_ACL * 3).err == 0
        acls, _ = c.get_acl(base + "/dup").acl_stat()
        assert acls == rawzk.OPEN_ACL
        # digest auth itself never fails, even without a colon
        assert c.auth("digest", "nocolon").err == 0
        # after digest auth, `auth` works (and the ip id is not used for it)
        rep = c.auth("digest", "dave:pw")
        assert (rep.xid, rep.zxid, rep.err, rep.body) == (rawzk.XID_AUTH, 0, 0, b"")
        assert c.create(base + "/z", acl=[(31, "auth", None)]).err == 0
        acls, _ = c.get_acl(base + "/z").acl_stat()
        assert sorted(acls) == sorted([(31, "digest", digest_id("dave", "pw")),
                                       (31, "digest", "nocolon:" + digest_b64("nocolon"))])


def test_invalid_acl_kazoo(zk, base):
    with pytest.raises(InvalidACLError):
        zk.create(base + "/x", acl=[ACL(Perm.ALL, Id("auth", ""))])
    with pytest.raises(InvalidACLError):
        zk.create(base + "/x", acl=[ACL(Perm.ALL, Id("digest", "nocolon"))])


def test_auth_unknown_scheme_fails_and_closes(server):
    c = rawzk.connect(server)
    try:
        c.send(Op.AUTH, rawzk.auth_req("bogus", b"whatever"), xid=rawzk.XID_AUTH)
        frames = c.wait_closed(5)
        assert len(frames) == 1
        rep = rawzk.Reply(frames[0])
        assert (rep.xid, rep.zxid, rep.err, rep.body) == (rawzk.XID_AUTH, 0, Err.AUTH_FAILED, b"")
    finally:
        c.close()


def test_auth_unknown_scheme_kazoo(kazoo_factory):
    c = kazoo_factory()
    with pytest.raises(AuthFailedError):
        c.add_auth("bogus", "x")


def test_auth_is_per_connection(server, base):
    c1 = rawzk.connect(server)
    assert c1.auth("digest", "bob:pw").err == 0
    p = base + "/n"
    assert c1.create(p, b"v", acl=[(Perm.ALL, "digest", digest_id("bob", "pw"))]).err == 0
    assert c1.get_data(p).err == 0
    sid, pw, last = c1.session_id, c1.passwd, c1.last_zxid
    c1.close()
    with rawzk.RawClient(server.host, server.port) as c2:
        assert c2.handshake(session_id=sid, passwd=pw, last_zxid=last)["session_id"] == sid
        assert c2.get_data(p).err == Err.NO_AUTH     # same session, new connection: no auth
        assert c2.auth("digest", "bob:pw").err == 0
        assert c2.get_data(p).data_stat()[0] == b"v"
        assert c2.call(Op.CLOSE_SESSION).err == 0
