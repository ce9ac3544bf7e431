"""Replicated ensembles as real processes: leader crash under load, minority loss, catch-up
of a follower by DIFF and by SNAP, ephemerals and session expiry across servers, quorum
loss, zkCli.sh across a leader change, an observer, and read-your-writes through a follower.

The same steps run against a real ZooKeeper 3.8 ensemble (QuorumPeerMain) and a Warren one
(`warren server <zoo.cfg>`): see ensemble.py for the configuration. Reads "through a
server" use a client connected to that server alone.
"""
import itertools
import json
import re
import threading
import time
import urllib.request

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (ConnectionClosedError, ConnectionLoss, NodeExistsError,
                              OperationTimeoutError, SessionExpiredError)
from kazoo.handlers.threading import KazooTimeoutError

import rawzk
from clients import run_zkcli
from conftest import _closed_after, _stop_kazoo
from ensemble import NOT_SERVING, Ensemble
from rawzk import Mode
from servers import ServerStartError, free_ports, missing, start_or_fail, zkcli_path

RETRYABLE = (ConnectionLoss, SessionExpiredError, ConnectionClosedError, OperationTimeoutError,
             KazooTimeoutError)
SRVR_KEYS = ["Zookeeper version", "Latency min/avg/max", "Received", "Sent", "Connections",
             "Outstanding", "Zxid", "Mode", "Node count"]
SNAP_COUNT = 100       # every member: snapshots (and log compaction) every ~100 transactions
_seq = itertools.count()


# ------------------------------------------------------------------ helpers
def wait_for(fn, timeout=20.0, what="condition", interval=0.1):
    """Poll fn() until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except RETRYABLE as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


def read_tree(client, root):
    """{child name: data} of root's children, read through this client's server."""
    names = client.get_children(root)
    asyncs = [(n, client.get_async("%s/%s" % (root, n))) for n in names]
    return {n: a.get(timeout=30)[0] for n, a in asyncs}


def write_many(client, root, count, prefix="n", start=0):
    """Create root/<prefix>-<i> = b"v<i>" for i in [start, start+count), pipelined; return
    the expected {name: data}."""
    want = {}
    for lo in range(start, start + count, 200):
        batch = []
        for i in range(lo, min(lo + 200, start + count)):
            name = "%s-%06d" % (prefix, i)
            want[name] = b"v%d" % i
            batch.append(client.create_async("%s/%s" % (root, name), want[name]))
        for a in batch:
            a.get(timeout=30)
    return want


class Writer(threading.Thread):
    """Creates root/n-000000, n-000001, ... one at a time, retrying a write whose outcome is
    unknown (connection loss, session expiry, timeout) until it is acknowledged or found to
    exist (NodeExists: an earlier, unacknowledged attempt committed). Stops only between
    writes, so afterwards exactly n-0 .. n-(next-1) must exist."""

    def __init__(self, client, root):
        super().__init__(daemon=True)
        self.client, self.root = client, root
        self.acked = []              # (index, monotonic time of the ack)
        self.unacked_present = []    # indexes found to exist on retry
        self.next = 0
        self.retries = 0
        self.failure = None
        self.halt = threading.Event()

    def acked_after(self, t):
        return sum(1 for _, at in self.acked if at > t)

    def run(self):
        try:
            while not self.halt.is_set():
                i = self.next
                path = "%s/n-%06d" % (self.root, i)
                deadline = time.monotonic() + 60
                while True:
                    try:
                        self.client.create_async(path, b"v%d" % i).get(timeout=5)
                        self.acked.append((i, time.monotonic()))
                        break
                    except NodeExistsError:
                        self.unacked_present.append(i)
                        break
                    except RETRYABLE:
                        self.retries += 1
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                self.next += 1
        except BaseException as e:  # reported by finish()
            self.failure = e

    def wait_acked(self, n, timeout=30.0):
        wait_for(lambda: len(self.acked) >= n or self.failure, timeout, "%d acknowledged writes" % n)
        assert self.failure is None, self.failure

    def finish(self):
        self.halt.set()
        self.join(90)
        assert not self.is_alive(), "writer did not stop"
        assert self.failure is None, repr(self.failure)
        return {"n-%06d" % i: b"v%d" % i for i in range(self.next)}


def check_agree(ens, kz, root, want, ids=None, sync=True):
    """Read root's children and their data through each given member directly."""
    for sid in ids or ens.running():
        c = kz(ens[sid].hostport)
        if sync:
            c.sync(root)
        got = read_tree(c, root)
        assert sorted(got) == sorted(want), "member %d: %d children, expected %d; missing %s, extra %s" % (
            sid, len(got), len(want), sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5])
        assert got == want, "member %d: data differs" % sid


def mntr_int(member, key):
    return int(member.mntr()[key])


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def kz():
    """kz(hosts, timeout=4.0) -> a started KazooClient (short session timeout, quick
    reconnects); all are stopped at teardown."""
    def make(hosts, timeout=4.0):
        c = KazooClient(hosts=hosts, timeout=timeout,
                        connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 0.5})
        try:
            c.start(timeout=30)
        except BaseException:
            _stop_kazoo(c)
            raise
        return c

    yield from _closed_after(make, _stop_kazoo)


@pytest.fixture(scope="module")
def trio_shared(target):
    """One 3-member ensemble per target, shared by the tests of this module."""
    e = Ensemble(target, 3, extra={"snapCount": SNAP_COUNT})
    try:
        start_or_fail(e)
        yield e
    finally:
        e.cleanup()


@pytest.fixture
def trio(trio_shared, request):
    """The shared 3-member ensemble with all members up and serving (a test that failed
    half-way may have left one down); its logs are attached to a failure report."""
    request.node._compat_servers = list(trio_shared.members.values())
    try:
        trio_shared.heal()
    except ServerStartError as e:
        pytest.fail(str(e), pytrace=False)
    return trio_shared


@pytest.fixture
def ensemble(target, request):
    """ensemble(size, observers=0, **kw) -> a started private Ensemble, killed at teardown."""
    made = []
    request.node._compat_servers = []

    def make(size, observers=0, **kw):
        e = Ensemble(target, size, observers, **kw)
        made.append(e)
        request.node._compat_servers += list(e.members.values())
        start_or_fail(e)
        return e

    yield make
    for e in made:
        e.cleanup()


@pytest.fixture
def root(request, target):
    name = re.sub(r"[^A-Za-z0-9]", "", request.node.originalname)[:40]
    return "/ens-%s-%s-%d" % (name, target, next(_seq))


# ------------------------------------------------------------------ 1. leader crash under load
def test_leader_killed_under_load(trio, kz, root):
    """kill -9 the leader while a client writes through all members: writes resume under a
    new leader, every acknowledged write survives on every member, and the old leader
    catches up when it comes back, as a follower."""
    e = trio
    old = e.leader()
    w = kz(e.hosts(), timeout=4.0)
    w.create(root)
    writer = Writer(w, root)
    writer.start()
    try:
        writer.wait_acked(20)
        e.kill(old)
        killed_at = time.monotonic()
        at_kill = len(writer.acked)
        new = e.leader(timeout=30)
        assert new != old and e[new].mode() == "leader"
        assert sorted(e.modes().values()) == ["follower", "leader"]
        wait_for(lambda: writer.acked_after(killed_at) >= 30 or writer.failure, 30,
                 "30 writes acknowledged after the leader died")
    finally:
        want = writer.finish()
    assert writer.acked_after(killed_at) >= 30
    assert len(writer.acked) >= at_kill + 30
    acked = {"n-%06d" % i for i, _ in writer.acked}
    assert acked <= set(want) and len(acked) + len(writer.unacked_present) == len(want)
    check_agree(e, kz, root, want)

    e.restart(old)
    assert e.leader() == new                 # an established leader keeps leading
    assert e[old].mode() == "follower"
    e.wait_zxids_equal()
    check_agree(e, kz, root, want, ids=[old], sync=False)


# ------------------------------------------------------------------ 2. five members, two lost
def test_five_members_lose_leader_and_follower(ensemble, kz, root):
    e = ensemble(5)
    old = e.leader()
    c = kz(e.hosts(), timeout=4.0)
    c.create(root)
    want = write_many(c, root, 20)
    lost = [old, e.followers(old)[0]]
    for sid in lost:
        e.kill(sid)
    rest = e.running()
    assert len(rest) == 3
    new = e.leader(timeout=30)
    assert new in rest
    assert sorted(e.modes().values()) == ["follower", "follower", "leader"]

    c3 = kz(e.hosts(rest), timeout=4.0)
    want.update(write_many(c3, root, 30, start=20))
    c3.set(root, b"three")
    check_agree(e, kz, root, want)

    for sid in lost:                        # both come back at once
        e.restart(sid, wait=False)
    assert e.wait_serving(e.ids) == new
    assert sorted(e.modes().values()) == ["follower"] * 4 + ["leader"]
    e.wait_zxids_equal()
    check_agree(e, kz, root, want, sync=False)
    for sid in e.ids:
        assert kz(e[sid].hostport).get(root)[0] == b"three"
    wait_for(lambda: e[new].mntr().get("zk_synced_followers") == "4", 10, "zk_synced_followers 4")
    m = e[new].mntr()
    assert (m["zk_server_state"], m["zk_peer_state"]) == ("leader", "leading - broadcast")
    assert (m["zk_learners"], m["zk_synced_observers"], m["zk_pending_syncs"]) == ("4", "0", "0")


# ------------------------------------------------------------------ 3. catch-up by DIFF and SNAP
@pytest.mark.parametrize("writes,how", [(50, "diff"), (1200, "snap")])
def test_follower_catches_up(trio, kz, root, writes, how):
    """A stopped follower misses `writes` writes. 50 are within the leader's recent
    committed log, so the leader sends a DIFF; 1200 are far beyond it (ZooKeeper keeps the
    last 500 proposals, zookeeper.commitLogCount; snapCount=100 compacts the log), so it
    sends a SNAP. Either way the follower serves everything, read through it directly."""
    e = trio
    leader = e.leader()
    behind = e.followers(leader)[0]
    c = kz(e[leader].hostport)
    c.create(root)
    want = write_many(c, root, 10, prefix="before")
    e.wait_zxids_equal()
    e.stop(behind)
    diffs, snaps = mntr_int(e[leader], "zk_diff_count"), mntr_int(e[leader], "zk_snap_count")
    want.update(write_many(c, root, writes))
    c.set(root, b"last")
    e.restart(behind)
    assert e.leader() == leader and e[behind].mode() == "follower"
    e.wait_zxids_equal()
    check_agree(e, kz, root, want, ids=[behind], sync=False)
    assert kz(e[behind].hostport).get(root)[0] == b"last"
    # The leader counts how it synchronized the learner (mntr zk_diff_count / zk_snap_count).
    counts = (mntr_int(e[leader], "zk_diff_count") - diffs, mntr_int(e[leader], "zk_snap_count") - snaps)
    assert counts == ((1, 0) if how == "diff" else (0, 1))


# ------------------------------------------------------------------ 4. ephemerals across members
def test_ephemeral_visible_everywhere_and_removed_on_close(trio, kz, root):
    e = trio
    a = e.followers()[0]
    others = [i for i in e.ids if i != a]
    kz(e.hosts()).create(root)
    owner = kz(e[a].hostport)
    owner.create(root + "/eph", b"mine", ephemeral=True)
    sid = owner.client_id[0]
    for i in others:
        c = kz(e[i].hostport)
        c.sync(root)
        data, st = c.get(root + "/eph")
        assert (data, st.ephemeralOwner) == (b"mine", sid)
    owner.stop()                             # closeSession: committed before stop returns
    for i in e.ids:
        c = kz(e[i].hostport)
        c.sync(root)
        assert c.exists(root + "/eph") is None, "member %d still has the ephemeral" % i
        assert c.get_children(root) == []


def test_silent_session_expires_on_every_member(trio, kz, root):
    """A raw session on member A that never pings: the ensemble expires it after its
    timeout, A closes the connection without a word, its ephemeral goes from every member,
    and the session cannot be resumed on another member."""
    e = trio
    a = e.followers()[0]
    kz(e.hosts()).create(root)
    watchers = {i: kz(e[i].hostport) for i in e.ids}
    raw = rawzk.connect(e[a], timeout_ms=1000)
    try:
        assert raw.session["timeout"] == 1000
        assert raw.create(root + "/eph", b"x", flags=Mode.EPHEMERAL).err == 0
        sid, pw = raw.session_id, raw.passwd
        for i, c in watchers.items():
            c.sync(root)
            assert c.exists(root + "/eph").ephemeralOwner == sid
        t0 = time.monotonic()
        assert raw.wait_closed(15) == []     # nothing sent, nothing received: closed at expiry
        assert 0.5 < time.monotonic() - t0 < 10
    finally:
        raw.close()
    for i, c in watchers.items():
        c.sync(root)
        assert c.exists(root + "/eph") is None, "member %d still has the ephemeral" % i
    b = [i for i in e.ids if i != a][0]
    with rawzk.RawClient(e[b].host, e[b].port) as c2:
        resp = c2.handshake(timeout=5000, session_id=sid, passwd=pw)
        assert (resp["timeout"], resp["session_id"]) == (0, 0)
        assert c2.wait_closed(5) == []


# ------------------------------------------------------------------ 5. quorum loss
def test_quorum_loss_stops_service_until_a_member_returns(trio, kz, root):
    e = trio
    leader = e.leader()
    f1, f2 = e.followers(leader)
    kz(e.hosts()).create(root, b"before")
    held = rawzk.connect(e[f2], timeout_ms=20000)     # an open session on the survivor
    try:
        e.kill(leader)
        e.kill(f1)
        survivor = e[f2]
        assert held.wait_closed(10) == []             # its connection is closed
        wait_for(lambda: survivor.srvr() == NOT_SERVING, 10, "srvr: not serving")
        # Exact ZooKeeper 3.8 answers of a member without a quorum: it still answers ruok,
        # srvr/stat/mntr say it does not serve, isro answers "null" (no server running; it
        # would be "ro" only with readonlymode.enabled).
        assert survivor.four_letter("ruok") == "imok"
        assert survivor.four_letter("stat") == NOT_SERVING
        assert survivor.four_letter("mntr") == NOT_SERVING
        assert survivor.four_letter("isro") == "null"
        # A new client gets no ConnectResponse: the connection is closed.
        with rawzk.RawClient(survivor.host, survivor.port) as c:
            c.send_frame(rawzk.connect_req(timeout=5000))
            assert c.wait_closed(10) == []
        time.sleep(1.0)                               # still not serving a while later
        assert survivor.srvr() == NOT_SERVING

        e.restart(f1)                                 # two of three: a quorum again
        assert sorted(e.modes().values()) == ["follower", "leader"]
        assert survivor.four_letter("isro") == "rw"
        c = kz(survivor.hostport)
        assert c.get(root)[0] == b"before"
        c.set(root, b"after")
        c.create(root + "/new", b"n")
        r = kz(e[f1].hostport)
        r.sync(root)
        assert r.get(root)[0] == b"after" and r.get_children(root) == ["new"]
    finally:
        held.close()


# ------------------------------------------------------------------ 6. zkCli.sh across a leader change
def test_zkcli_across_leader_change(trio, root):
    if zkcli_path() is None:
        missing("zkCli.sh not found (install the zookeeper package or set ZKCLI)")
    e = trio

    def cli(*args):
        r = run_zkcli(e, "-waitforconnection", "-timeout", "5000", *args)
        return r, r.stdout + r.stderr

    r, out = cli("create", root, "hello")
    assert r.returncode == 0 and "Created %s" % root in out, out
    old = e.leader()
    e.kill(old)
    assert e.leader(timeout=30) != old
    r, out = cli("get", root)
    assert r.returncode == 0 and "hello" in r.stdout.splitlines(), out
    r, out = cli("create", root + "/after", "world")
    assert r.returncode == 0 and "Created %s/after" % root in out, out
    r, out = cli("ls", root)
    assert r.returncode == 0 and "[after]" in r.stdout.splitlines(), out


# ------------------------------------------------------------------ 7. observer
def test_observer(ensemble, kz, root):
    """3 voters and an observer: srvr/mntr/conf of each role; writes through the observer
    commit and are read back everywhere; the voters carry on when the observer dies."""
    e = ensemble(4, observers=1)
    obs = 4
    leader = e.leader()
    assert e[obs].mode() == "observer"
    assert sorted(e.modes().values()) == ["follower", "follower", "leader", "observer"]
    # srvr: the same lines as standalone (test_four_letter_words.py) with the role in Mode;
    # the leader adds its proposal sizes (-1/-1/-1 until it has proposed anything).
    zxids = {}
    for sid in e.ids:
        out = e[sid].srvr()
        assert out.endswith("\n")
        kv = dict(ln.split(": ", 1) for ln in out[:-1].split("\n"))
        if sid == leader:
            assert list(kv) == SRVR_KEYS + ["Proposal sizes last/min/max"]
            assert kv["Proposal sizes last/min/max"] == "-1/-1/-1"
        else:
            assert list(kv) == SRVR_KEYS
        assert kv["Mode"] == ("leader" if sid == leader else "observer" if sid == obs else "follower")
        zxids[sid] = int(kv["Zxid"], 16)
    # Before any transaction, ZooKeeper's leader reports the zxid of its new epoch
    # (epoch << 32) as its Zxid; a learner reports 0x0 or, depending on how it was
    # synchronized, that same zxid.
    assert zxids[leader] >> 32 >= 1 and zxids[leader] & 0xFFFFFFFF == 0, hex(zxids[leader])
    assert all(z in (0, zxids[leader]) for z in zxids.values()), {i: hex(z) for i, z in zxids.items()}
    # conf: the standalone keys, then the quorum settings and the membership (roles spelt out).
    members = ["server.%d=127.0.0.1:%d:%d:%s" % ((sid,) + e.peer_ports[sid]
                                                 + ("observer" if sid == obs else "participant",))
               for sid in e.ids]
    for sid in e.ids:
        conf = e[sid].four_letter("conf")
        assert not conf.endswith("\n")
        tail = conf.split("\n")[conf.split("\n").index("clientPortListenBacklog=-1") + 1:]
        assert tail == ["serverId=%d" % sid, "initLimit=10", "syncLimit=5", "electionAlg=3",
                        "electionPort=%d" % e.peer_ports[sid][1], "quorumPort=%d" % e.peer_ports[sid][0],
                        "peerType=%d" % (sid == obs), "membership: "] + members + ["version=0"]
    m = e[obs].mntr()
    assert (m["zk_server_state"], m["zk_peer_state"]) == ("observer", "observing - broadcast")
    for f in e.followers(leader):
        m = e[f].mntr()
        assert (m["zk_server_state"], m["zk_peer_state"]) == ("follower", "following - broadcast")
    wait_for(lambda: e[leader].mntr().get("zk_synced_observers") == "1", 10, "zk_synced_observers 1")
    m = e[leader].mntr()
    assert (m["zk_server_state"], m["zk_peer_state"]) == ("leader", "leading - broadcast")
    assert (m["zk_learners"], m["zk_synced_followers"], m["zk_synced_non_voting_followers"],
            m["zk_pending_syncs"]) == ("3", "2", "0", "0")

    o = kz(e[obs].hostport)                  # writes through the observer commit
    o.create(root, b"o")
    want = write_many(o, root, 25)
    o.set(root, b"o2")
    assert o.get(root)[0] == b"o2"           # read-your-writes on the observer too
    check_agree(e, kz, root, want)

    e.kill(obs)                              # the voters carry on without it
    voters = kz(e.hosts([1, 2, 3]))
    want.update(write_many(voters, root, 10, start=25))
    check_agree(e, kz, root, want)
    assert e.leader() == leader
    wait_for(lambda: (e[leader].mntr().get("zk_synced_observers"), e[leader].mntr().get("zk_learners"))
             == ("0", "2"), 10, "zk_synced_observers 0, zk_learners 2")
    assert e[leader].mntr()["zk_synced_followers"] == "2"


# ------------------------------------------------------------------ 8. read-your-writes
def test_read_your_writes_through_follower(trio, kz, root):
    e = trio
    leader = e.leader()
    f1, f2 = e.followers(leader)
    mine = kz(e[f1].hostport)
    mine.create(root, b"0")
    other = kz(e[f2].hostport)
    at_leader = kz(e[leader].hostport)
    for i in range(1, 21):
        mine.set(root, b"%d" % i)
        mine.create("%s/c%02d" % (root, i), b"")
        data, st = mine.get(root)                    # at once, same session, no sync
        assert (data, st.version) == (b"%d" % i, i)
        assert len(mine.get_children(root)) == i
        reader = other if i % 2 else at_leader       # another member, after sync
        reader.sync(root)
        data, st = reader.get(root)
        assert (data, st.version, st.numChildren) == (b"%d" % i, i, i)


# ------------------------------------------------------------------ 9. admin server
def test_admin_commands_of_members(ensemble):
    """The AdminServer's leader, voting_view, zabstate and is_read_only on each member of a
    3-member ensemble, shaped as ZooKeeper 3.8's."""
    admin_ports = dict(zip((1, 2, 3), free_ports(3)))
    e = ensemble(3, per_member=lambda sid: {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                            "admin.serverPort": admin_ports[sid]})
    leader = e.leader()

    def get(sid, command):
        url = "http://127.0.0.1:%d/commands/%s" % (admin_ports[sid], command)
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())

    for sid in e.ids:
        assert get(sid, "leader") == {"is_leader": sid == leader, "leader_id": leader,
                                      "leader_ip": "127.0.0.1", "command": "leader", "error": None}
        assert get(sid, "is_read_only") == {"read_only": False, "command": "is_read_only", "error": None}
        view = get(sid, "voting_view")
        assert view == {"current_config": {
            str(m): {"server_addresses": ["127.0.0.1:%d" % e.peer_ports[m][0]],
                     "election_addresses": ["127.0.0.1:%d" % e.peer_ports[m][1]],
                     "client_address": e[m].hostport if m == sid else "",
                     "learner_type": "participant"} for m in e.ids},
            "command": "voting_view", "error": None}
        zab = get(sid, "zabstate")
        assert list(zab) == ["myid", "is_leader", "quorum_address", "election_address", "client_address",
                             "voting", "last_zxid", "zab_epoch", "zab_counter", "zabstate", "command", "error"]
        quorum = "127.0.0.1:%d" % e.peer_ports[sid][0]
        assert zab["quorum_address"]["all_addresses"] == [quorum]
        assert zab["quorum_address"]["wildcard_addresses"] == ["0.0.0.0:%d" % e.peer_ports[sid][0]]
        assert zab["election_address"]["one"] == "127.0.0.1:%d" % e.peer_ports[sid][1]
        assert (zab["myid"], zab["is_leader"], zab["client_address"], zab["voting"], zab["zabstate"]) == (
            sid, sid == leader, e[sid].hostport, True, "broadcast")
        assert int(zab["last_zxid"], 16) == (zab["zab_epoch"] << 32) | zab["zab_counter"]
    # Warren also serves /metrics on the admin port (ZooKeeper only with its Prometheus
    # provider, which Debian's package lacks): the leader's replication gauges.
    if e.target == "warren":
        url = "http://127.0.0.1:%d/metrics" % admin_ports[leader]
        wait_for(lambda: "\nsynced_followers 2" in urllib.request.urlopen(url, timeout=5).read().decode(),
                 10, "synced_followers 2 in /metrics")
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        for line in ("quorum_size 3", "learners 2", "pending_syncs 0"):
            assert "\n" + line in text, line
