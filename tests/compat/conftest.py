"""Fixtures for the ZooKeeper compatibility suite.

Every test runs once per target listed in COMPAT_TARGETS (default "warren,zookeeper"),
so each assertion is proven against real ZooKeeper 3.8 as well as checked on Warren.
"""
import itertools
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from kazoo.client import KazooClient  # noqa: E402

from clients import JavaClient, TcpProxy, compile_java, run_zkcli  # noqa: E402
from servers import Server, missing, start_or_fail, target_unavailable_reason, zkcli_path  # noqa: E402


def _targets():
    raw = os.environ.get("COMPAT_TARGETS", "warren,zookeeper")
    return [t.strip() for t in raw.split(",") if t.strip()]


TARGETS = _targets()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "only_target(name, reason): run this test only against the named target "
        "(warren or zookeeper); reason says why it is target-specific")


def pytest_collection_modifyitems(config, items):
    for item in items:
        m = item.get_closest_marker("only_target")
        if m is None or not hasattr(item, "callspec"):
            continue
        tgt = item.callspec.params.get("target")
        if tgt is not None and tgt != m.args[0]:
            item.add_marker(pytest.mark.skip(
                reason="%s-only: %s" % (m.args[0], m.kwargs.get("reason", ""))))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("setup", "call"):
        servers = []
        srv = getattr(item, "funcargs", {}).get("server")
        if srv is not None:
            servers.append(srv)
        servers += getattr(item, "_compat_servers", [])
        for s in servers:
            status = "running" if s.alive() else "NOT RUNNING (exit %s)" % s.proc.returncode
            rep.sections.append(("%s server on port %d: %s" % (s.target, s.port, status), s.log_tail()))


def _closed_after(build, close, made=None):
    """The body of a factory fixture: yields make(...) -> build(...), then closes all it made."""
    made = [] if made is None else made

    def make(*args, **kw):
        thing = build(*args, **kw)
        made.append(thing)
        return thing

    yield make
    for thing in made:
        close(thing)


# ------------------------------------------------------------------ servers
@pytest.fixture(scope="session", params=TARGETS)
def target(request):
    reason = target_unavailable_reason(request.param)
    if reason:
        missing("target %s: %s" % (request.param, reason))
    return request.param


@pytest.fixture(scope="session")
def server(target):
    """The shared server of this target (fresh data dir, started once per session)."""
    s = Server(target)
    try:
        yield start_or_fail(s)
    finally:
        s.cleanup()


@pytest.fixture
def new_server(request):
    """Make servers, not yet started: new_server(target, {"key": "value"}) overrides zoo.cfg
    lines (value None removes a line). They are cleaned up after the test, and a failing
    test reports their logs."""
    request.node._compat_servers = []
    yield from _closed_after(Server, Server.cleanup, request.node._compat_servers)


@pytest.fixture
def server_factory(target, new_server):
    """Start a private server of the current target: server_factory({"key": "value"})."""
    return lambda overrides=None: start_or_fail(new_server(target, overrides))


# ------------------------------------------------------------------ kazoo
def make_kazoo(server, timeout=10.0, **kw):
    c = KazooClient(hosts=server.hostport, timeout=timeout, **kw)
    c.start(timeout=15)
    return c


@pytest.fixture
def kazoo_factory(server):
    """kazoo_factory(**kw) -> a started KazooClient on the shared server (stopped at teardown)."""
    yield from _closed_after(lambda srv=None, **kw: make_kazoo(srv or server, **kw), _stop_kazoo)


def _stop_kazoo(c):
    try:
        c.stop()
        c.close()
    except Exception:
        pass


@pytest.fixture
def zk(kazoo_factory):
    """A fresh, connected kazoo client."""
    return kazoo_factory()


_seq = itertools.count()


@pytest.fixture
def base(zk, request):
    """A freshly created, unique persistent node for this test (e.g. /t-test_x_zookeeper-3)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:80]
    path = "/t-%s-%d" % (name, next(_seq))
    zk.create(path, b"")
    return path


# ------------------------------------------------------------------ other clients
@pytest.fixture(scope="session")
def java_classpath():
    cp, reason = compile_java("ZkDriver.java")
    if reason:
        missing(reason)
    return cp


@pytest.fixture
def java(java_classpath):
    """java() -> a JavaClient (stock ZooKeeper Java client in its own JVM)."""
    yield from _closed_after(lambda: JavaClient(java_classpath), JavaClient.close)


@pytest.fixture
def proxy_factory():
    yield from _closed_after(lambda server: TcpProxy(server.host, server.port), TcpProxy.close)


@pytest.fixture
def zkcli(server):
    if zkcli_path() is None:
        missing("zkCli.sh not found (install the zookeeper package or set ZKCLI)")

    def run(*args):
        return run_zkcli(server, *args)

    return run
