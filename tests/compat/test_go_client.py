"""The Go client (github.com/samuel/go-zookeeper, from Debian's
golang-github-samuel-go-zookeeper-dev), run unchanged against the server under test by
go/gozk.go: creates of each mode, reads, versioned sets, data and child watches, a multi
that commits and one that fails whole, its lock recipe taken in turn by two sessions, and
an ephemeral that goes when its session closes."""
import os
import shutil
import subprocess
import tempfile

import pytest

from servers import HERE, missing

GOPATH = "/usr/share/gocode"
STEPS = ["create and get", "set and watches", "multi", "lock", "ephemeral"]


@pytest.fixture(scope="session")
def gozk():
    if shutil.which("go") is None or not os.path.isdir(os.path.join(GOPATH, "src/github.com/samuel/go-zookeeper")):
        missing("the Go client is not installed (apt-get install golang-go golang-github-samuel-go-zookeeper-dev)")
    out = tempfile.mkdtemp(prefix="compat-go-")
    binary = os.path.join(out, "gozk")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOCACHE=os.path.join(out, "cache"))
    r = subprocess.run(["go", "build", "-o", binary, os.path.join(HERE, "go", "gozk.go")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, "go build failed:\n" + r.stdout + r.stderr
    yield binary
    shutil.rmtree(out, ignore_errors=True)


def test_go_client(server, base, gozk):
    r = subprocess.run([gozk, server.hostport, base], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split("\n")[:-1] == ["ok " + step for step in STEPS]
