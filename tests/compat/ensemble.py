"""A replicated ensemble of servers under test (Warren or real ZooKeeper 3.8), as processes.

Every member is a `servers.Server` (own temp dir, client port and log) whose zoo.cfg adds
the same `server.N=127.0.0.1:<quorumPort>:<electionPort>[:observer]` lines; its dataDir
holds a `myid` file, and an observer's zoo.cfg also says `peerType=observer` (for both
targets: one zoo.cfg format). ZooKeeper runs such a zoo.cfg with QuorumPeerMain; Warren is
started as `warren server <zoo.cfg>` as always, and is expected to see the ensemble in it.
"""
import threading
import time

from servers import Server, ServerStartError, free_ports

# The whole answer of srvr, stat and mntr on a member that is not serving (no quorum,
# electing, syncing), as ZooKeeper 3.8 writes it.
NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n"

ZK_SERVER_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
ZK_QUORUM_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


class Member(Server):
    """One ensemble member: a Server with an id and a myid file."""

    def __init__(self, target, sid, overrides):
        super().__init__(target, overrides)
        self.sid = sid
        with open("%s/myid" % self.data_dir, "w") as f:
            f.write("%d\n" % sid)

    def command_line(self):
        cmd = super().command_line()
        if self.target == "zookeeper":
            cmd[cmd.index(ZK_SERVER_MAIN)] = ZK_QUORUM_MAIN
        return cmd

    def srvr(self, timeout=2.0):
        """The `srvr` answer, or None if the port does not answer (process down)."""
        try:
            return self.four_letter("srvr", timeout)
        except OSError:
            return None

    def srvr_fields(self):
        """{'Mode': 'follower', 'Zxid': '0x...', ...} while serving, else {}."""
        out = self.srvr()
        if not out or out == NOT_SERVING:
            return {}
        return dict(ln.split(": ", 1) for ln in out.splitlines() if ": " in ln)

    def mode(self):
        """'leader', 'follower', 'observer', ... while serving, else None."""
        return self.srvr_fields().get("Mode")

    def zxid(self):
        z = self.srvr_fields().get("Zxid")
        return int(z, 16) if z else None

    def mntr(self):
        """mntr as a dict of strings ({} if it does not answer with key/value lines)."""
        try:
            out = self.four_letter("mntr", 2.0)
        except OSError:
            return {}
        return dict(ln.split("\t", 1) for ln in out.splitlines() if "\t" in ln)

    def kill9(self):
        """SIGKILL: no shutdown hooks, sockets closed by the kernel."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None


class Ensemble:
    """`size` members of one target, ids 1..size; the last `observers` of them are observers.

    extra: zoo.cfg lines for every member (on top of servers.base_config()).
    per_member: sid -> zoo.cfg lines for that member alone (e.g. its admin port).
    """

    def __init__(self, target, size=3, observers=0, extra=None, per_member=None):
        self.target = target
        ports = free_ports(2 * size)
        ids = list(range(1, size + 1))
        self.observer_ids = set(ids[size - observers:]) if observers else set()
        lines = {}
        self.peer_ports = {}     # sid -> (quorumPort, electionPort)
        for n, sid in enumerate(ids):
            self.peer_ports[sid] = (ports[2 * n], ports[2 * n + 1])
            line = "127.0.0.1:%d:%d" % self.peer_ports[sid]
            if sid in self.observer_ids:
                line += ":observer"
            lines["server.%d" % sid] = line
        self.members = {}
        try:
            for sid in ids:
                cfg = dict(extra or {})
                cfg.update(per_member(sid) if per_member else {})
                if sid in self.observer_ids:
                    cfg["peerType"] = "observer"
                cfg.update(lines)
                self.members[sid] = Member(target, sid, cfg)
        except BaseException:
            self.cleanup()
            raise

    # ------------------------------------------------------------ addressing
    def __getitem__(self, sid):
        return self.members[sid]

    @property
    def ids(self):
        return sorted(self.members)

    def hosts(self, ids=None):
        """Connect string of the given members (default: all)."""
        return ",".join(self.members[i].hostport for i in (ids or self.ids))

    @property
    def hostport(self):
        """The connect string of all members (so an Ensemble passes for a server to run_zkcli)."""
        return self.hosts()

    def running(self):
        return [i for i in self.ids if self.members[i].alive()]

    def modes(self, ids=None):
        """{sid: mode or None} of the given (default: running) members."""
        return {i: self.members[i].mode() for i in (ids or self.running())}

    # ------------------------------------------------------------ process control
    def start(self, timeout=60.0):
        """Launch every member at once and wait until the ensemble serves."""
        for i in self.ids:
            self.members[i].launch()
        return self.wait_serving(timeout=timeout)

    def wait_serving(self, ids=None, timeout=60.0):
        """Wait until the given (default: running) members all serve, exactly one of them as
        leader, voters as follower and observers as observer; return the leader's id."""
        ids = list(ids or self.running())
        deadline = time.monotonic() + timeout
        modes = {}
        while True:
            for i in ids:
                m = self.members[i]
                if m.proc is not None and m.proc.poll() is not None:
                    raise ServerStartError("%s member %d exited with %s\n%s" % (
                        self.target, i, m.proc.returncode, m.log_tail()))
            modes = self.modes(ids)
            leaders = [i for i, mo in modes.items() if mo == "leader"]
            if len(leaders) == 1 and all(
                    mo == ("observer" if i in self.observer_ids else "follower")
                    for i, mo in modes.items() if i != leaders[0]):
                return leaders[0]
            if time.monotonic() > deadline:
                raise ServerStartError("%s ensemble did not serve within %.0fs: modes %r\n%s" % (
                    self.target, timeout, modes,
                    "\n".join(self.members[i].log_tail(15) for i in ids)))
            time.sleep(0.1)

    def leader(self, timeout=60.0):
        """Id of the leader among the running members, once they all serve."""
        return self.wait_serving(timeout=timeout)

    def followers(self, leader=None):
        leader = leader or self.leader()
        return [i for i in self.running() if i != leader and i not in self.observer_ids]

    def kill(self, sid):
        self.members[sid].kill9()

    def stop(self, sid):
        self.members[sid].stop()

    def restart(self, sid, wait=True, timeout=60.0):
        """Start a stopped member again (same dataDir) and, by default, wait until it serves."""
        m = self.members[sid]
        assert not m.alive(), "member %d is still running" % sid
        m.launch()
        if wait:
            return self.wait_serving(timeout=timeout)
        return None

    def heal(self, timeout=60.0):
        """Restart every member that is down; return the leader once all serve."""
        for i in self.ids:
            if not self.members[i].alive():
                self.members[i].launch()
        return self.wait_serving(self.ids, timeout=timeout)

    def wait_zxids_equal(self, ids=None, timeout=30.0):
        """Wait until the given (default: running) members serve and report the same srvr
        Zxid; return it."""
        ids = list(ids or self.running())
        deadline = time.monotonic() + timeout
        while True:
            zx = {i: self.members[i].zxid() for i in ids}
            if None not in zx.values() and len(set(zx.values())) == 1:
                return zx[ids[0]]
            if time.monotonic() > deadline:
                raise AssertionError("srvr Zxid differs (or not serving) after %.0fs: %r" % (
                    timeout, {i: (hex(z) if z is not None else None) for i, z in zx.items()}))
            time.sleep(0.1)

    def cleanup(self):
        """Kill every member (in parallel: JVM shutdowns are slow) and remove their dirs."""
        threads = [threading.Thread(target=m.kill9) for m in self.members.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for m in self.members.values():
            m.cleanup()
