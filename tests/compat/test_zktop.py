"""zktop (Debian package `zktop`), the `top` of ZooKeeper operators, reads the server under
test: its own parser turns our `stat` output into a server with a version, a mode, latency,
counters and one entry per connection, for Warren exactly as for ZooKeeper."""
import importlib
import sys

from servers import missing

ZKTOP = "/usr/lib/python3/dist-packages"


def load_zktop():
    if ZKTOP not in sys.path:
        sys.path.append(ZKTOP)
    # zktop parses the command line into a module-level `options` as it is imported.
    argv, sys.argv = sys.argv, ["zktop"]
    try:
        return importlib.import_module("zktop")
    except ImportError:
        missing("zktop is not installed (apt-get install zktop)")
    finally:
        sys.argv = argv


def test_zktop_reads_the_server(server, zk, base):
    zktop = load_zktop()
    zk.create(base + "/x", b"data")
    zk.get(base + "/x")
    seen = zktop.ZKServer("%s:%d" % (server.host, server.port), 0)
    assert not seen.unavailable
    assert seen.version.startswith("3.8.")
    assert seen.mode == "standalone"
    assert int(seen.node_count) >= 5
    assert int(seen.received) > 0 and int(seen.sent) > 0
    assert seen.zxid.startswith("0x")
    assert len(seen.min_latency) > 0 and float(seen.avg_latency) >= 0.0
    # Our kazoo session is among the connections zktop lists, with its counters.
    assert any(int(s.recved) > 0 for s in seen.sessions), [vars(s) for s in seen.sessions]
