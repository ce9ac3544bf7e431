"""Start/stop the servers under test (Warren or real ZooKeeper 3.8) with one zoo.cfg."""
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from rawzk import digest_id

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

SUPER_USER, SUPER_PASSWORD = "super", "secret"

# Keys ZooKeeper reads only as plain JVM system properties (ContainerManager uses
# Integer.getInteger("znode.container.checkIntervalMs")), not from zoo.cfg: an unknown
# zoo.cfg key becomes the system property "zookeeper.<key>", which nobody reads for these.
# For real ZooKeeper they are therefore also passed as -D<key>=<value>.
ZK_PLAIN_SYSPROPS = ("znode.container.checkIntervalMs", "znode.container.maxPerMinute",
                     "znode.container.maxNeverUsedIntervalMs", "jute.maxbuffer")



def missing(reason):
    """A tool a test needs is not installed: the test is skipped, or fails when
    COMPAT_REQUIRE_ALL is set (CI sets it, having installed everything)."""
    if os.environ.get("COMPAT_REQUIRE_ALL"):
        pytest.fail("%s (COMPAT_REQUIRE_ALL is set)" % reason)
    pytest.skip(reason)

def base_config():
    """The zoo.cfg settings shared by both targets (order preserved)."""
    return {
        "tickTime": "200",
        "initLimit": "10",
        "syncLimit": "5",
        "dataDir": None,      # filled in per server
        "clientPort": None,   # filled in per server
        "clientPortAddress": "127.0.0.1",
        "maxClientCnxns": "60",
        "minSessionTimeout": "400",
        "maxSessionTimeout": "40000",
        "4lw.commands.whitelist": "*",
        "extendedTypesEnabled": "true",
        "znode.container.checkIntervalMs": "500",
        "admin.enableServer": "false",
        "DigestAuthenticationProvider.superDigest": digest_id(SUPER_USER, SUPER_PASSWORD),
    }


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_ports(n):
    """n distinct free loopback ports (free_port() may hand out the same one twice)."""
    ports = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


def four_letter(host, port, cmd, timeout=5.0):
    """Send a 4lw command and return the whole text answer."""
    if isinstance(cmd, str):
        cmd = cmd.encode()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cmd)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out.decode("utf-8", "replace")


# ------------------------------------------------------------------ locating things
def warren_bin():
    return os.environ.get("WARREN_BIN") or os.path.join(REPO_ROOT, "target", "debug", "warren")


def zk_home_candidates():
    env = os.environ.get("ZK_HOME")
    out = [env] if env else []
    return out + ["/usr/share/zookeeper", "/opt/zookeeper"]


def zk_classpath():
    """Classpath with the ZooKeeper 3.8 server/client jars, or None if not installed."""
    env = os.environ.get("ZK_CLASSPATH")
    if env:
        return env
    if os.path.exists("/usr/share/java/zookeeper.jar"):
        # Debian: the jar's manifest Class-Path pulls in jute, netty, slf4j-api, jetty, ...
        # but not the servlet API, without which the AdminServer does not start (the
        # admin tests turn it on; base_config() keeps it off).
        jars = ["/usr/share/java/zookeeper.jar", "/usr/share/java/zookeeper-jute.jar",
                "/usr/share/java/servlet-api.jar"]
        return ":".join(j for j in jars if os.path.exists(j))
    for home in zk_home_candidates():
        jars = sorted(glob.glob(os.path.join(home, "lib", "*.jar")))
        jars += sorted(glob.glob(os.path.join(home, "zookeeper-*.jar")))
        if any("zookeeper" in os.path.basename(j) for j in jars):
            return ":".join(jars)
    return None


def slf4j_binding(kind):
    """Path of slf4j-simple/slf4j-nop (Debian layout), or None."""
    for p in ("/usr/share/java/slf4j-%s.jar" % kind,):
        if os.path.exists(p):
            return p
    return None


def zkcli_path():
    env = os.environ.get("ZKCLI")
    if env:
        return env
    for home in zk_home_candidates():
        p = os.path.join(home, "bin", "zkCli.sh")
        if os.path.exists(p):
            return p
    return None


# ------------------------------------------------------------------ server process
class ServerStartError(Exception):
    pass


class Server:
    """One server process with its own temp dir, zoo.cfg and port."""

    def __init__(self, target, overrides=None):
        self.target = target
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="compat-%s-" % target)
        self.data_dir = os.path.join(self.tmp, "data")
        os.makedirs(self.data_dir)
        cfg = base_config()
        cfg["dataDir"] = self.data_dir
        cfg["clientPort"] = str(self.port)
        for k, v in (overrides or {}).items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = str(v)
        self.cfg = cfg
        self.cfg_path = os.path.join(self.tmp, "zoo.cfg")
        with open(self.cfg_path, "w") as f:
            f.write("".join("%s=%s\n" % (k, v) for k, v in cfg.items()))
        self.log_path = os.path.join(self.tmp, "server.log")
        self.proc = None

    @property
    def hostport(self):
        return "%s:%d" % (self.host, self.port)

    def command_line(self):
        if self.target == "warren":
            return [warren_bin(), "server", self.cfg_path]
        cp = zk_classpath()
        simple = slf4j_binding("simple")
        if simple:
            cp += ":" + simple
        props = ["-D%s=%s" % (k, self.cfg[k]) for k in ZK_PLAIN_SYSPROPS if k in self.cfg]
        return (["java", "-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                 "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                 "-Dorg.slf4j.simpleLogger.logFile=System.err",
                 "-Dzookeeper.jmx.log4j.disable=true"]
                + props
                + ["-cp", cp, "org.apache.zookeeper.server.ZooKeeperServerMain", self.cfg_path])

    def start(self, timeout=30.0):
        self.launch()
        return self.wait_ready(timeout)

    def launch(self):
        """Start the process without waiting for it to serve (a restart appends to the log)."""
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command_line(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.tmp)

    def wait_ready(self, timeout=30.0):
        """Wait until the launched process answers ruok and serves; stop it and raise if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerStartError("%s exited with %s during startup\n%s" % (
                    self.target, self.proc.returncode, self.log_tail()))
            try:
                # ZooKeeper answers ruok before it serves requests; srvr says
                # "This ZooKeeper instance is not currently serving requests" until then.
                # (A server whose whitelist lacks ruok answers "ruok is not executed ...".)
                ruok = four_letter(self.host, self.port, "ruok", timeout=1.0)
                if ((ruok == "imok" or "not in the whitelist" in ruok)
                        and "not currently serving" not in four_letter(self.host, self.port, "srvr", 1.0)):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerStartError("%s did not answer ruok within %.0fs\n%s" % (
            self.target, timeout, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def four_letter(self, cmd, timeout=5.0):
        return four_letter(self.host, self.port, cmd, timeout)

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "--- %s log tail (%s) ---\n%s" % (
            self.target, self.log_path, "\n".join(text.splitlines()[-lines:]))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def cleanup(self):
        self.stop()
        if not os.environ.get("COMPAT_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


def start_or_fail(server):
    """Start a server or fail the test with its log; a test's fixture cleans it up either way."""
    import pytest

    try:
        server.start()
    except ServerStartError as e:
        pytest.fail(str(e), pytrace=False)
    return server


def target_unavailable_reason(target):
    """None if the target can be started, else a human-readable reason to skip."""
    if target == "warren":
        b = warren_bin()
        if not os.path.exists(b):
            return "Warren binary %s not found (build it with `cargo build`, or set WARREN_BIN)" % b
        return None
    if target == "zookeeper":
        if zk_classpath() is None:
            return ("ZooKeeper 3.8 jars not installed (apt-get install zookeeper, or set "
                    "ZK_CLASSPATH / ZK_HOME)")
        if shutil.which("java") is None:
            return "java not found: cannot run real ZooKeeper"
        return None
    return "unknown target %r (expected warren or zookeeper)" % target
