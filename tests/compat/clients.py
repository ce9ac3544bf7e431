"""Third-party client drivers for the tests: the stock Java client (through
java/ZkDriver.java), zkCli.sh, and a TCP proxy that can cut connections."""
import os
import queue
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from servers import HERE, slf4j_binding, zk_classpath, zkcli_path

def compile_java(source, extra_jars=()):
    """Compile java/<source> into a temp dir against the ZooKeeper jars and `extra_jars`;
    return (classpath to run it, None) or (None, the reason it cannot be)."""
    cp = zk_classpath()
    if cp is None:
        return None, "ZooKeeper jars not installed (needed for the Java client)"
    if shutil.which("javac") is None or shutil.which("java") is None:
        return None, "javac/java not found"
    missing = [j for j in extra_jars if not os.path.exists(j)]
    if missing:
        return None, "not installed: %s" % ", ".join(missing)
    cp = ":".join([cp, *extra_jars])
    out = tempfile.mkdtemp(prefix="compat-java-")
    r = subprocess.run(["javac", "-nowarn", "-d", out, "-cp", cp, os.path.join(HERE, "java", source)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("javac failed:\n%s%s" % (r.stdout, r.stderr))
    run_cp = out + ":" + cp
    nop = slf4j_binding("nop")
    if nop:
        run_cp += ":" + nop
    return run_cp, None


class JavaClient:
    """One stock ZooKeeper Java client in its own JVM, driven line by line."""

    def __init__(self, classpath):
        self.log = tempfile.NamedTemporaryFile(prefix="compat-javaclient-", suffix=".log", delete=False)
        self.p = subprocess.Popen(
            ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
             "-cp", classpath, "ZkDriver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        self.events = []           # (type, state, path) strings, in arrival order
        self.cond = threading.Condition()
        self.replies = queue.Queue()
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()

    def _reader(self):
        for line in self.p.stdout:
            line = line.rstrip("\n")
            if line.startswith("EVENT "):
                parts = line.split(" ", 3)
                with self.cond:
                    self.events.append((parts[1], parts[2], parts[3]))
                    self.cond.notify_all()
            else:
                self.replies.put(line)
        self.replies.put(None)

    def cmd(self, line, timeout=30):
        """Run one command; return its output lines (without @@DONE)."""
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                ln = self.replies.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError("java client: no answer to %r; got %r\n%s" % (line, out, self.stderr_tail()))
            if ln is None:
                raise RuntimeError("java client exited during %r; got %r\n%s" % (line, out, self.stderr_tail()))
            if ln == "@@DONE":
                return out
            out.append(ln)

    def ok(self, line, timeout=30):
        """Run a command that must succeed; return the text after "OK"."""
        out = self.cmd(line, timeout)
        oks = [ln for ln in out if ln == "OK" or ln.startswith("OK ")]
        assert oks, "java client %r failed: %r" % (line, out)
        return oks[-1][3:]

    def node_events(self):
        """Events that are not connection-state changes: list of (type, path)."""
        with self.cond:
            return [(t, p) for (t, s, p) in self.events if t != "None"]

    def wait_for(self, pred, timeout=10.0, what="event"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, ev in enumerate(self.events):
                    if pred(ev):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("java client: timed out waiting for %s; events: %r" % (what, self.events))
                self.cond.wait(left)

    def wait_event(self, etype, path, timeout=10.0):
        return self.wait_for(lambda ev: ev[0] == etype and ev[2] == path, timeout,
                             "%s %s" % (etype, path))

    def wait_state(self, state, after=0, timeout=15.0):
        """Index of the first connection-state event `state` at index >= after."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(after, len(self.events)):
                    t, s, _ = self.events[i]
                    if t == "None" and s == state:
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("java client: no %s state; events: %r" % (state, self.events))
                self.cond.wait(left)

    def stderr_tail(self, n=30):
        try:
            with open(self.log.name, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return ""

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except (OSError, ValueError):
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


def parse_stat_kv(text):
    """'czxid=1 mzxid=2 ...' -> dict of ints (ignores tokens without '=')."""
    out = {}
    for tok in text.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                out[k] = int(v)
            except ValueError:
                out[k] = v
    return out


def run_zkcli(server, *args, timeout=60, input=None):
    """Run `zkCli.sh -server host:port args...`, with `input` on stdin if given; return
    CompletedProcess (text)."""
    cli = zkcli_path()
    env = dict(os.environ)
    env.setdefault("CLIENT_JVMFLAGS", "-Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    stdin = subprocess.DEVNULL if input is None else None
    return subprocess.run([cli, "-server", server.hostport] + list(args), capture_output=True,
                          text=True, timeout=timeout, env=env, stdin=stdin, input=input)


class TcpProxy:
    """Loopback TCP proxy in front of a server. `pause()` cuts every proxied
    connection and refuses new ones (accepts and closes them) until `resume()`."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.hostport = "127.0.0.1:%d" % self.port
        self.paused = False
        self.pairs = []
        self.lock = threading.Lock()
        self.stopped = False
        self.accepted = 0
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while not self.stopped:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.setblocking(True)
            with self.lock:
                if self.paused or self.stopped:
                    c.close()
                    continue
                try:
                    u = socket.create_connection(self.target, timeout=5)
                    u.settimeout(None)
                except OSError:
                    c.close()
                    continue
                self.accepted += 1
                self.pairs.append((c, u))
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        socks = [a, b]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 0.5)
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("eof")
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass

    def drop_all(self):
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for c, u in pairs:
            for s in (c, u):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def pause(self):
        with self.lock:
            self.paused = True
        self.drop_all()

    def resume(self):
        with self.lock:
            self.paused = False

    def close(self):
        self.stopped = True
        self.drop_all()
        try:
            self.lsock.close()
        except OSError:
            pass
