"""`warren shell` against zkCli.sh: the same command sequences run through `warren shell`
against the server under test and through zkCli.sh against a real ZooKeeper 3.8, and the
outputs must match.

Method: each sequence is fed on stdin (one JVM per sequence for zkCli.sh), under a root
path of its own, so both sides start from the same empty subtree. stdout and stderr are
compared separately, each after normalizing only what must differ between two servers
and two sessions: the server address, zxids, times, session ids (ephemeralOwner) and the
order of getEphemerals (a hash set's order in ZooKeeper).
Watch events are printed by zkCli.sh's event thread, at no fixed place among the command
output, so the `WATCHER::` blocks are taken out and compared as a sequence of their own.
"""
import itertools
import os
import re
import subprocess

import pytest

import clients
from servers import Server, missing, start_or_fail, target_unavailable_reason, warren_bin, zkcli_path

_seq = itertools.count()


@pytest.fixture(scope="module")
def reference():
    """A real ZooKeeper 3.8 for zkCli.sh, whatever the target is."""
    reason = target_unavailable_reason("zookeeper") or (None if zkcli_path() else "zkCli.sh not found")
    if reason:
        missing("no reference ZooKeeper for zkCli.sh: %s" % reason)
    s = Server("zookeeper")
    try:
        yield start_or_fail(s)
    finally:
        s.cleanup()


@pytest.fixture
def root(request, target):
    """A root path for one sequence, the same on both servers."""
    if not os.path.exists(warren_bin()):
        missing("Warren binary %s not found (cargo build, or set WARREN_BIN)" % warren_bin())
    name = re.sub(r"[^A-Za-z0-9]", "", request.node.originalname)[:40]
    return "/sh-%s-%s-%d" % (name, target, next(_seq))


def run_zkcli(server, lines, *args):
    return clients.run_zkcli(server, *args, timeout=120, input="".join(line + "\n" for line in lines))


def run_warren(server, lines, *args):
    return subprocess.run([warren_bin(), "shell", "-server", server.hostport] + list(args), input="".join(
        line + "\n" for line in lines), capture_output=True, text=True, timeout=120)


def normalize(text, server):
    """(text, events): the output with server-specific values replaced, and the watch
    events taken out in order."""
    # zkCli.sh's event thread prints "\nWATCHER::\n\nWatchedEvent ...\n" while the main
    # thread prints too, so the block's lines can interleave with a command's output: take
    # them out line by line (with the blank lines around them).
    # Blank lines are still compared by count: those beyond the two each block brings.
    events = [ln for ln in text.split("\n") if ln.startswith("WatchedEvent ")]
    blanks = sum(1 for ln in text.splitlines() if ln == "") - 2 * len(events)
    text = "".join(ln for ln in text.splitlines(True)
                   if ln.rstrip("\n") not in ("", "WATCHER::") and not ln.startswith("WatchedEvent "))
    text += "(%d other blank lines)\n" % blanks
    text = text.replace(server.hostport, "HOST")
    text = re.sub(r"(cZxid|mZxid|pZxid) = 0x[0-9a-f]+", r"\1 = ZXID", text)
    text = re.sub(r"(ctime|mtime) = [^\n]*", r"\1 = TIME", text)
    text = re.sub(r"ephemeralOwner = 0x(?!0\n)[0-9a-f]+", "ephemeralOwner = SESSION", text)
    # getEphemerals lists a hash set in ZooKeeper (warren shell sorts it); ls is sorted by both.
    text = re.sub(r"(?m)^\[(.+)\]$", lambda m: "[%s]" % ", ".join(sorted(m.group(1).split(", "))), text)
    # zkCli.sh's logging setup talks on stderr before anything else.
    text = "".join(ln for ln in text.splitlines(True) if not ln.startswith("SLF4J:"))
    return text, events


def compare(server, reference, lines, *args):
    """Runs `lines` both ways; asserts equal output; returns warren's result."""
    mine = run_warren(server, lines, *args)
    theirs = run_zkcli(reference, lines, *args)
    out, out_events = normalize(mine.stdout, server)
    ref_out, ref_events = normalize(theirs.stdout, reference)
    err, _ = normalize(mine.stderr, server)
    ref_err, _ = normalize(theirs.stderr, reference)
    assert out == ref_out, "stdout differs\n--- warren shell\n%s\n--- zkCli.sh\n%s" % (out, ref_out)
    assert err == ref_err, "stderr differs\n--- warren shell\n%s\n--- zkCli.sh\n%s" % (err, ref_err)
    assert out_events == ref_events
    return mine


def test_shell_create_get_set_ls_delete(server, reference, root):
    r = compare(server, reference, [
        "create %s" % root,
        "create %s/a hello" % root,
        "create %s/a again" % root,
        "create %s/n" % root,
        "get %s/a" % root,
        "get -s %s/a" % root,
        "get %s/n" % root,
        "ls %s" % root,
        "ls -s %s" % root,
        "stat %s/a" % root,
        "set %s/a v2" % root,
        "set -s %s/a v3" % root,
        "set -v 9 %s/a x" % root,
        "set -v 2 %s/a 'two words'" % root,
        "get %s/a" % root,
        "get %s/nope" % root,
        "stat %s/nope" % root,
        "set %s/nope x" % root,
        "create %s/n/x/y" % root,
        "create %s/n/x" % root,
        "create %s/n/x/y" % root,
        "ls -R %s" % root,
        "getAllChildrenNumber %s" % root,
        "delete %s/nope" % root,
        "delete %s" % root,
        "delete -v 3 %s/a" % root,
        "delete -v 3 %s/a" % root,
        "deleteall %s/n" % root,
        "ls %s" % root,
        "delete /zookeeper",
        "create rel",
        "create %s/" % root,
        "sync %s" % root,
    ])
    assert r.returncode == 1, "a failed command makes the batch fail"


def test_shell_node_modes(server, reference, root):
    compare(server, reference, [
        "create %s" % root,
        "create -e %s/e eph" % root,
        "create -s %s/s seq" % root,
        "create -s -e %s/se" % root,
        "create -c %s/c" % root,
        "create -t 60000 %s/ttl x" % root,
        "create -t 60000 -s %s/ttls x" % root,
        "create -c -e %s/bad" % root,
        "create -t abc %s/bad" % root,
        "create -t 100 -e %s/bad" % root,
        "create -t 100 -c %s/bad" % root,
        "create %s/e/child" % root,
        "ls %s" % root,
        "stat %s/e" % root,
        "getEphemerals %s" % root,
        "getEphemerals %s/nothing" % root,
        "deleteall -b x %s" % root,
        "deleteall -b 2 %s" % root,
        "ls %s" % root,
        "sync /",
    ])


def test_shell_acls_and_auth(server, reference, root):
    compare(server, reference, [
        "create %s" % root,
        "create %s/open x world:anyone:cdrwa,ip:127.0.0.1:r" % root,
        "getAcl %s/open" % root,
        "getAcl -s %s/open" % root,
        "setAcl %s/open world:anyone:cdr" % root,
        "setAcl -s %s/open world:anyone:cdrw" % root,
        "setAcl -v 9 %s/open world:anyone:cdrwa" % root,
        "setAcl %s/open world:anyone:xyz" % root,
        "create %s/bad x foo:bar" % root,
        "create %s/bad2 x world:anyone:cdrwa,oops" % root,
        "getAcl %s/bad2" % root,
        "create %s/locked x digest:alice:notahash:cdrwa" % root,
        "get %s/locked" % root,
        "getAcl %s/locked" % root,
        "setAcl -R %s world:anyone:cdra" % root,
        "getAcl %s/bad2" % root,
        "whoami",
        "addauth digest bob:secret",
        "whoami",
        "getAcl %s/nope" % root,
        "sync %s" % root,
    ])


def test_shell_watches(server, reference, root):
    compare(server, reference, [
        "create %s" % root,
        "create %s/w x" % root,
        "get -w %s/w" % root,
        "set %s/w y" % root,
        "set %s/w z" % root,
        "ls -w %s" % root,
        "create %s/w2" % root,
        "stat -w %s/new" % root,
        "create %s/new" % root,
        "get %s/w extra" % root,
        "delete %s/w" % root,
        "addWatch %s" % root,
        "create %s/w" % root,
        "set %s/w 1" % root,
        "addWatch -m BAD %s" % root,
        "removewatches %s" % root,
        "removewatches %s" % root,
        "removewatches %s/none -d" % root,
        "ls -w %s" % root,
        "removewatches %s -c" % root,
        # zkCli.sh checks printwatches when its event thread prints, not when the event
        # comes: a round trip lets that thread catch up before the switch.
        "sync %s" % root,
        "printwatches",
        "printwatches off",
        "get -w %s/w" % root,
        "set %s/w 2" % root,
        "sync %s" % root,
        "printwatches on",
        "printwatches",
        "sync %s" % root,
    ])


def test_shell_history_redo_close_connect(server, reference, root):
    host_lines = ["connect %s" % s.hostport for s in (server, reference)]
    # `connect` names each side's own server; otherwise the lines are the same.
    lines = [
        "create %s" % root,
        "ls %s" % root,
        "history",
        "redo 1",
        "redo 99",
        "redo 3",
        "history",
        "close",
        "ls %s" % root,
        "CONNECT",
        "ls %s" % root,
        "quit",
        "ls %s" % root,
    ]
    mine = run_warren(server, [host_lines[0] if ln == "CONNECT" else ln for ln in lines])
    theirs = run_zkcli(reference, [host_lines[1] if ln == "CONNECT" else ln for ln in lines])
    assert normalize(mine.stdout, server) == normalize(theirs.stdout, reference)
    assert normalize(mine.stderr, server)[0] == normalize(theirs.stderr, reference)[0]


def test_shell_usage_errors(server, reference, root):
    compare(server, reference, [
        "create %s" % root,
        "ls",
        "set %s" % root,
        "create",
        "ls -x %s" % root,
        "delete %s -v" % root,
        "getAllChildrenNumber",
        "sync",
        "addauth",
        "whoami",
        "config",
        "config -s",
        "config -c",
    ])


def test_shell_command_line_exit_status(server, reference, root):
    """One command on the command line: same output, and the exit status tells success."""
    for cmd, code in [(["create", root, "x"], 0), (["get", root], 0), (["get", root + "/nope"], 1),
                      (["ls"], 1), (["ls", "-s", root], 0), (["delete", root], 0)]:
        mine = run_warren(server, [], *cmd)
        theirs = run_zkcli(reference, [], *cmd)
        assert (mine.returncode, theirs.returncode) == (code, code), (cmd, mine.stderr, theirs.stderr)
        out, events = normalize(mine.stdout, server)
        ref_out, _ = normalize(theirs.stdout, reference)
        assert out == ref_out, cmd
        # Connected, and no Closed event at exit (zkCli.sh's event thread races its exit).
        assert events == ["WatchedEvent state:SyncConnected type:None path:null"], (cmd, events)
        assert normalize(mine.stderr, server)[0] == normalize(theirs.stderr, reference)[0], cmd
    mine = run_warren(server, [], "nosuchcommand")
    assert mine.returncode == 127
    assert "Command not found: Command not found nosuchcommand" in mine.stderr


def test_shell_batch_succeeds_only_if_every_command_does(server, root):
    ok = run_warren(server, ["create %s" % root, "ls %s" % root])
    assert ok.returncode == 0, ok.stderr
    bad = run_warren(server, ["get %s/nope" % root, "ls %s" % root])
    assert bad.returncode == 1
    assert "[]" in bad.stdout.splitlines()


def test_shell_interactive_through_a_pty(server, zk, root, tmp_path):
    """The interactive shell in a pseudo-terminal: prompt, type-ahead, a watch event printed
    while it waits at the prompt, tab completion of a znode path, history kept in a file."""
    import pty
    import select
    import time

    history = tmp_path / "history"
    env = dict(os.environ, TERM="xterm", WARREN_HISTORY=str(history))
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(warren_bin(), [warren_bin(), "shell", "-server", server.hostport], env)
    screen = []

    def wait_for(text, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", "".join(screen))
            if text in plain:
                return plain
            left = deadline - time.monotonic()
            assert left > 0, "no %r on the terminal; it shows:\n%s" % (text, plain)
            if select.select([fd], [], [], left)[0]:
                try:
                    screen.append(os.read(fd, 65536).decode("utf-8", "replace"))
                except OSError:
                    pass

    try:
        wait_for("[zk: %s(CONNECTED) 0] " % server.hostport)
        # Typed ahead: both lines run, in order.
        os.write(fd, ("create %s hello\rget -w %s\r" % (root, root)).encode())
        wait_for("Created %s" % root)
        wait_for("(CONNECTED) 2] ")
        zk.set(root, b"changed")
        wait_for("WatchedEvent state:SyncConnected type:NodeDataChanged path:%s" % root)
        zk.create(root + "/child", b"")
        os.write(fd, ("ls %s/chi\t" % root).encode())
        wait_for("ls %s/child" % root)
        os.write(fd, b"\r")
        wait_for("(CONNECTED) 3] ")
        os.write(fd, b"quit\r")
        _, status = os.waitpid(pid, 0)
        pid = None
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if pid is not None:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    lines = history.read_text().splitlines()
    assert "create %s hello" % root in lines and "quit" in lines, lines
