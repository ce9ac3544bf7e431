"""The ZooKeeper C client (libzookeeper-mt, through Debian's `zookeeper-bin` cli_mt in batch
mode, one session per command) against the server under test: creates of each mode, the
errors for an existing node, a missing parent and a non-empty delete, setData and getData
with their Stat, ls2, sync, and the ephemeral removed when the C client closes its session."""
import os
import re
import subprocess
import time

from servers import missing

CLI = "/usr/lib/zookeeper/bin/cli_mt"

# Lines about the session itself, which differ from run to run.
NOISE = re.compile(r"^(Batch mode:|Watcher SESSION_EVENT|Got a new session id|time = \d+ msec)")


def cli(server, command):
    if not os.path.exists(CLI):
        missing("the C client is not installed (apt-get install zookeeper-bin)")
    r = subprocess.run([CLI, "-h", server.hostport, "-c", command], capture_output=True, text=True, timeout=60)
    lines = [line.strip() for line in (r.stdout + r.stderr).splitlines()]
    return [line for line in lines if line and not NOISE.match(line)]


def test_c_client_creates_reads_and_deletes(server, zk, base):
    node = base + "/c"
    assert cli(server, "create %s" % node)[-2:] == ["[%s]: rc = 0" % node, "name = %s" % node]
    assert cli(server, "create %s" % node)[-1] == "[%s]: rc = -110" % node
    assert cli(server, "create %s/none/x" % base)[-1] == "[%s/none/x]: rc = -101" % base
    assert cli(server, "create +s %s/s-" % node)[-1] == "name = %s/s-0000000000" % node

    out = cli(server, "set %s world" % node)
    assert out[0] == "%s: rc = 0 Stat:" % node and "version=1\taversion=0" in out
    out = cli(server, "get %s" % node)
    assert out[:4] == ["%s: rc = 0" % node, "value_len = 5", "world", "Stat:"]
    stat = zk.exists(node)
    assert "czxid=%x" % stat.czxid in out and "mzxid=%x" % stat.mzxid in out
    assert cli(server, "get %s/none" % base)[0] == "%s/none: rc = -101" % base

    out = cli(server, "ls2 %s" % node)
    assert out[:2] == ["%s: rc = 0" % node, "s-0000000000"]
    assert cli(server, "sync %s" % node)[-2:] == ["[%s]: rc = 0" % node, "name = %s" % node]

    # The C client closes its session on exit, which removes its ephemeral.
    assert cli(server, "create +e %s/e" % node)[-1] == "name = %s/e" % node
    deadline = time.monotonic() + 10
    while zk.exists(node + "/e") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert zk.exists(node + "/e") is None

    assert cli(server, "delete %s" % node)[-1] == "%s: rc = -111" % node
    assert cli(server, "delete %s/s-0000000000" % node)[-1] == "%s/s-0000000000: rc = 0" % node
    assert cli(server, "delete %s" % node)[-1] == "%s: rc = 0" % node
    assert zk.exists(node) is None
