"""Moving from ZooKeeper to Warren: real ZooKeeper 3.8 is filled with a known tree, stopped
(SIGTERM), its data directory imported with `warren import-zookeeper`, and Warren must serve
the same tree: every node's data, all 11 Stat fields and ACL, the same last zxid, and the
live session that owns ephemerals, which resumes with the password ZooKeeper gave it.

ZooKeeper runs with a small snapCount, so the import reads a snapshot *and* the log after it.
Not parametrized by target: it needs both servers, and is skipped when either is missing.
"""
import glob
import os
import re
import subprocess

import pytest

import rawzk
from rawzk import Mode, Op, Perm, RawClient, check_req, create_req, digest_id, set_data_req
from servers import SUPER_PASSWORD, SUPER_USER, start_or_fail, target_unavailable_reason, warren_bin

SNAP_COUNT = 20
SESSION_MS = 30000
DIGEST_ACL = [(Perm.ALL, "digest", digest_id("alice", "wonderland")), (Perm.READ, "world", "anyone")]
IP_ACL = [(Perm.ALL, "ip", "127.0.0.1"), (Perm.READ | Perm.WRITE, "ip", "10.0.0.0/8")]


def _skip_reason():
    targets = [t.strip() for t in os.environ.get("COMPAT_TARGETS", "warren,zookeeper").split(",")]
    for target in ("zookeeper", "warren"):
        if target not in targets:
            return "needs both servers; COMPAT_TARGETS leaves out %s" % target
        reason = target_unavailable_reason(target)
        if reason:
            return "needs both servers; %s" % reason
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def ok(rep):
    assert rep.err == 0, rep
    return rep


def super_client(server):
    c = rawzk.connect(server)
    ok(c.auth("digest", "%s:%s" % (SUPER_USER, SUPER_PASSWORD)))
    return c


def snapshot(server):
    """Every node: path -> (data, Stat, ACL list, children), read as the super user."""
    out = {}
    with super_client(server) as c:
        stack = ["/"]
        while stack:
            path = stack.pop()
            data, stat = ok(c.get_data(path)).data_stat()
            acl, acl_stat = ok(c.get_acl(path)).acl_stat()
            assert acl_stat == stat
            children = sorted(ok(c.get_children(path)).children())
            out[path] = (data, stat, acl, children)
            stack += [(path.rstrip("/") + "/" + name) for name in children]
        c.call(Op.CLOSE_SESSION)
    return out


def zxid_of(server):
    m = re.search(r"Zxid: (0x[0-9a-f]+)", server.four_letter("srvr"))
    assert m, server.four_letter("srvr")
    return int(m.group(1), 16)


def zk_files(directory, prefix):
    names = glob.glob(os.path.join(directory, "version-2", prefix + ".*"))
    return sorted(int(os.path.basename(n).split(".")[1], 16) for n in names)


def fill(zk):
    """The known tree. Returns the live session (id, password) and the paths it owns."""
    c = rawzk.connect(zk, timeout_ms=SESSION_MS)
    ok(c.auth("digest", "alice:wonderland"))
    ok(c.create("/app", b"the app"))
    ok(c.create("/app/empty", b""))
    ok(c.create("/app/null", None))
    ok(c.create("/app/small", b"x"))
    ok(c.create("/app/big", bytes(range(256)) * 800))
    ok(c.create("/app/versions", b"v0"))
    for i in range(1, 5):
        ok(c.set_data("/app/versions", b"v%d" % i))
    ok(c.set_acl("/app/small", [(Perm.READ | Perm.WRITE, "world", "anyone")]))
    ok(c.create("/app/queue", b""))
    for i in range(6):
        ok(c.create("/app/queue/item-", b"%d" % i, flags=Mode.PERSISTENT_SEQUENTIAL))
    # Deleted children: cversion and numChildren part ways.
    ok(c.delete("/app/queue/item-0000000001"))
    ok(c.delete("/app/queue/item-0000000004"))
    ok(c.create("/app/container", b"box", flags=Mode.CONTAINER, op=Op.CREATE_CONTAINER))
    ok(c.create("/app/container/child", b"in the box"))
    ok(c.create_ttl("/app/ttl", 3600 * 1000, b"lives an hour"))
    ok(c.create("/secure", b"for alice", acl=DIGEST_ACL))
    ok(c.create("/iponly", b"from here", acl=IP_ACL))
    ok(c.multi([(Op.CREATE, create_req("/app/multi", b"m")), (Op.SET_DATA, set_data_req("/app/multi", b"m2"))]))
    # A failed multi takes a zxid and changes nothing.
    failed = c.multi([(Op.CREATE, create_req("/app/nope", b"")), (Op.CHECK, check_req("/app", 99))])
    assert [err for _, err, _ in failed.multi_results()][-1] == rawzk.Err.BAD_VERSION

    # A session that ends: its ephemeral goes with it.
    gone = rawzk.connect(zk, timeout_ms=SESSION_MS)
    ok(gone.create("/app/gone", b"", flags=Mode.EPHEMERAL))
    ok(gone.call(Op.CLOSE_SESSION))
    gone.close()

    # The live session, still connected when ZooKeeper stops.
    live = rawzk.connect(zk, timeout_ms=SESSION_MS)
    ok(live.create("/app/live", b"held", flags=Mode.EPHEMERAL))
    owned = ["/app/live", ok(live.create("/app/queue/eph-", b"", flags=Mode.EPHEMERAL_SEQUENTIAL)).path()]

    # Enough writes for several snapshots.
    ok(c.create("/bulk", b""))
    for i in range(3 * SNAP_COUNT):
        ok(c.create("/bulk/n%03d" % i, b"%d" % i))
    for i in range(0, 3 * SNAP_COUNT, 7):
        ok(c.set_data("/bulk/n%03d" % i, b"changed"))
    for i in range(0, 3 * SNAP_COUNT, 5):
        ok(c.delete("/bulk/n%03d" % i))

    # A tail after the last snapshot, with every kind of change in it.
    for attempt in range(2 * SNAP_COUNT):
        ok(c.set_data("/app/versions", b"tail %d" % attempt))
        ok(c.create("/app/queue/item-", b"tail", flags=Mode.PERSISTENT_SEQUENTIAL))
        ok(c.delete("/bulk/n%03d" % (3 * SNAP_COUNT - 1 - attempt)))
        ok(c.set_acl("/iponly", IP_ACL, version=attempt))
        last = c.last_zxid
        snaps = zk_files(zk.data_dir, "snapshot")
        if snaps and 0 < max(snaps) < last - 3:
            break
    ok(c.call(Op.CLOSE_SESSION))
    c.close()
    return live, owned


@pytest.mark.parametrize("separate_log_dir,gzip", [(False, False), (True, False), (False, True)],
                         ids=["logs-beside", "dataLogDir", "gzip-snapshots"])
def test_import_serves_the_same_tree_stats_acls_and_sessions(new_server, tmp_path, separate_log_dir, gzip):
    overrides = {"snapCount": SNAP_COUNT}
    if separate_log_dir:
        overrides["dataLogDir"] = str(tmp_path / "zk-log")
    if gzip:
        # Becomes the system property zookeeper.snapshot.compression.method.
        overrides["snapshot.compression.method"] = "gz"
    zk = start_or_fail(new_server("zookeeper", overrides))
    live, owned = fill(zk)
    sid, passwd = live.session_id, live.passwd
    before = snapshot(zk)
    last_zxid = zxid_of(zk)
    assert before["/app/live"][1].ephemeralOwner == sid
    zk.stop()   # SIGTERM, as an operator stops it
    live.close()

    snaps, logs = zk_files(zk.data_dir, "snapshot"), zk_files(zk.cfg.get("dataLogDir", zk.data_dir), "log")
    if gzip:
        assert glob.glob(os.path.join(zk.data_dir, "version-2", "snapshot.*.gz")), "ZooKeeper wrote gzip snapshots"
    assert len(snaps) >= 3 and len(logs) >= 3, (snaps, logs)
    assert 0 < max(snaps) < last_zxid, "the import must replay a log tail after the snapshot"

    warren = new_server("warren")
    command = [warren_bin(), "import-zookeeper", zk.data_dir, "--config", warren.cfg_path]
    if separate_log_dir:
        # Without the log directory the import refuses rather than lose the log tail.
        alone = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert alone.returncode != 0 and "--log-dir" in alone.stderr, alone.stderr
        command += ["--log-dir", zk.cfg["dataLogDir"]]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "at zxid %#x" % last_zxid in run.stdout, run.stdout
    # A second import onto the same data is refused.
    again = subprocess.run([warren_bin(), "import-zookeeper", zk.data_dir, "--config", warren.cfg_path],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr, again.stderr

    start_or_fail(warren)
    assert zxid_of(warren) == last_zxid
    after = snapshot(warren)
    assert sorted(after) == sorted(before)
    for path in sorted(before):
        assert after[path] == before[path], "%s\n  zookeeper: %r\n  warren:    %r" % (path, before[path], after[path])
    assert before["/app/queue"][1].cversion != before["/app/queue"][1].numChildren
    assert before["/app/null"][0] is None and before["/app/empty"][0] == b""

    # The live session resumes on Warren with ZooKeeper's password; a wrong one is refused.
    with RawClient(warren.host, warren.port) as bad:
        wrong = bytes([passwd[0] ^ 1]) + passwd[1:]
        assert bad.handshake(timeout=SESSION_MS, session_id=sid, passwd=wrong)["session_id"] == 0
    with RawClient(warren.host, warren.port) as again:
        resp = again.handshake(timeout=SESSION_MS, session_id=sid, passwd=passwd, last_zxid=last_zxid)
        assert (resp["session_id"], resp["passwd"]) == (sid, passwd) and resp["timeout"] > 0
        for path in owned:
            assert ok(again.exists(path)).stat().ephemeralOwner == sid
        # Sequence numbers carry on where ZooKeeper's would.
        queue = before["/app/queue"][1]
        created = ok(again.create("/app/queue/item-", b"", flags=Mode.PERSISTENT_SEQUENTIAL)).path()
        assert created == "/app/queue/item-%010d" % ((queue.cversion + queue.numChildren) // 2)
        assert again.last_zxid > last_zxid
        ok(again.call(Op.CLOSE_SESSION))
    with super_client(warren) as c:
        for path in owned:
            assert c.exists(path).err == rawzk.Err.NO_NODE
