"""The admin HTTP server (ZooKeeper's AdminServer, admin.serverPort): the same commands and
aliases, JSON with the same keys in the same order, and the same values after the same
operations. Each test runs against both targets; the last one starts both and compares
their answers key by key.

The shared servers run with admin.enableServer=false (servers.py); these tests start their
own with the admin server on a free loopback port."""
import json
import os
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient

from servers import free_port, start_or_fail, target_unavailable_reason

# Commands and aliases both servers answer, with ZooKeeper 3.8's name for each.
ALIASES = {
    "ruok": "ruok", "conf": "configuration", "config": "configuration", "cons": "connections",
    "crst": "connection_stat_reset", "dirs": "dirs", "dump": "dump", "envi": "environment",
    "env": "environment", "gtmk": "get_trace_mask", "icfg": "initial_configuration",
    "isro": "is_read_only", "lsnp": "last_snapshot", "lead": "leader", "mntr": "monitor",
    "srvr": "server_stats", "srst": "stat_reset", "stat": "stats", "voting_view": "voting_view",
    "wchs": "watch_summary", "wchc": "watches", "wchp": "watches_by_path", "zabstate": "zabstate",
}

# Maps whose keys are data (session ids, paths, times), not field names.
DATA_KEYED = {"expiry_time_to_session_ids", "session_id_to_ephemeral_paths",
              "session_id_to_watched_paths", "path_to_session_ids"}

# mntr keys every ZooKeeper monitoring tool reads.
MONITOR_CORE = ["version", "server_state", "avg_latency", "max_latency", "min_latency",
                "packets_received", "packets_sent", "num_alive_connections", "outstanding_requests",
                "znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
                "open_file_descriptor_count", "max_file_descriptor_count", "global_sessions", "uptime"]


def admin_overrides():
    return {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
            "admin.serverPort": free_port()}


def get(server, path):
    url = "http://127.0.0.1:%s%s" % (server.cfg["admin.serverPort"], path)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def command(server, name):
    status, content_type, body = get(server, "/commands/" + name)
    assert status == 200, (name, body)
    assert content_type.startswith("application/json"), content_type
    return json.loads(body, object_pairs_hook=lambda pairs: dict(pairs))


def shape(value, key=None):
    """Nested key paths in order; data-keyed maps and lists are reduced to their first item."""
    if isinstance(value, dict):
        if key in DATA_KEYED:
            items = list(value.values())[:1]
            return ["<key>"] + [p for v in items for p in shape(v)]
        out = []
        for k, v in value.items():
            out.append(k)
            out += ["%s.%s" % (k, p) for p in shape(v, k)]
        return out
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return ["[]." + p for p in shape(value[0])]
    return []


def prepare(server):
    """The same state on either server: one session with an ephemeral and two data watches."""
    zk = KazooClient(hosts=server.hostport, timeout=10.0)
    zk.start(timeout=15)
    zk.create("/a", b"hello")
    zk.create("/a/e", b"x", ephemeral=True)
    zk.get("/a", watch=lambda e: None)
    zk.exists("/b", watch=lambda e: None)
    return zk


@pytest.fixture
def admin_server(server_factory):
    return server_factory(admin_overrides())


def test_command_list(admin_server):
    status, _, body = get(admin_server, "/commands")
    assert status == 200
    for name in set(ALIASES.values()):
        assert '<a href="/commands/%s">%s</a>' % (name, name) in body


def test_aliases_and_unknown_commands(admin_server):
    for alias, name in ALIASES.items():
        answer = command(admin_server, alias)
        assert answer["command"] == name, alias
        if name != "leader":
            assert answer["error"] is None, (alias, answer)
    assert command(admin_server, "nope") == {"command": "nope", "error": "Unknown command: nope"}
    assert get(admin_server, "/nothing-here")[0] == 404


def test_values_after_operations(admin_server):
    zk = prepare(admin_server)
    try:
        sid = zk.client_id[0]
        srvr = command(admin_server, "srvr")
        assert srvr["read_only"] is False and srvr["version"].startswith("3.8.")
        stats = srvr["server_stats"]
        assert stats["server_state"] == "standalone"
        assert stats["num_alive_client_connections"] == 1
        assert stats["outstanding_requests"] == 0
        assert stats["last_processed_zxid"] >= 3
        assert stats["client_response_stats"]["min_buffer_size"] == 16  # exists of a missing node
        assert stats["client_response_stats"] == srvr["client_response"]

        cons = command(admin_server, "cons")["connections"]
        assert len(cons) == 1
        assert cons[0]["session_id"] == sid
        assert cons[0]["remote_socket_address"].startswith("127.0.0.1:")
        assert cons[0]["session_timeout"] == 10000

        mntr = command(admin_server, "mntr")
        assert mntr["ephemerals_count"] == 1
        assert mntr["global_sessions"] == 1
        assert mntr["num_alive_connections"] == 1
        assert mntr["watch_count"] == 2
        assert mntr["znode_count"] == srvr["node_count"]

        assert command(admin_server, "wchc")["session_id_to_watched_paths"] == {str(sid): ["/a", "/b"]}
        assert command(admin_server, "wchp")["path_to_session_ids"] == {"/a": [sid], "/b": [sid]}
        wchs = command(admin_server, "wchs")
        assert (wchs["num_connections"], wchs["num_paths"], wchs["num_total_watches"]) == (1, 2, 2)
        dump = command(admin_server, "dump")
        assert dump["session_id_to_ephemeral_paths"] == {str(sid): ["/a/e"]}
        assert [i for ids in dump["expiry_time_to_session_ids"].values() for i in ids] == [sid]

        conf = command(admin_server, "conf")
        assert conf["client_port"] == admin_server.port
        assert (conf["tick_time"], conf["min_session_timeout"]) == (200, 400)
        assert "clientPort=%d\n" % admin_server.port in command(admin_server, "icfg")["initial_configuration"]
        assert command(admin_server, "isro")["read_only"] is False
        assert command(admin_server, "zabstate") == {"voting": False, "zabstate": "", "command": "zabstate",
                                                     "error": None}
        assert command(admin_server, "lead")["error"] == "server is not initialized"
        assert command(admin_server, "voting_view")["current_config"] == {}

        command(admin_server, "crst")
        conn = command(admin_server, "cons")["connections"][0]
        assert (conn["packets_received"], conn["last_operation"], conn["last_cxid"]) == (0, "NA", -1)
        command(admin_server, "srst")
        stats = command(admin_server, "srvr")["server_stats"]
        assert (stats["packets_received"], stats["packets_sent"]) == (0, 0)
        assert stats["client_response_stats"]["max_buffer_size"] == -1
    finally:
        zk.stop()
        zk.close()


def _both():
    targets = [t.strip() for t in os.environ.get("COMPAT_TARGETS", "warren,zookeeper").split(",")]
    for t in ("warren", "zookeeper"):
        if t not in targets:
            pytest.skip("needs both targets: COMPAT_TARGETS leaves out %s" % t)
        reason = target_unavailable_reason(t)
        if reason:
            pytest.skip("needs both targets: %s" % reason)


def test_warren_answers_with_zookeepers_keys(new_server):
    """Both servers side by side, the same operations, every command's keys compared."""
    _both()
    clients = []
    try:
        zk_server, warren = (start_or_fail(new_server(t, admin_overrides())) for t in ("zookeeper", "warren"))
        for s in (zk_server, warren):
            clients.append(prepare(s))
        zk_list, warren_list = get(zk_server, "/commands")[2], get(warren, "/commands")[2]
        assert set(warren_list.split()) <= set(zk_list.split())
        for name in sorted(set(ALIASES.values())):
            theirs, ours = command(zk_server, name), command(warren, name)
            if name == "monitor":
                ours_zk = [k for k in ours if not k.startswith("warren_")]
                assert set(ours_zk) <= set(theirs), set(ours_zk) - set(theirs)
                for k in MONITOR_CORE:
                    assert k in ours and k in theirs, k
                    assert type(ours[k]) is type(theirs[k]), (k, ours[k], theirs[k])
            elif name == "environment":
                assert list(ours) == list(theirs)
            else:
                # Top-level keys come in a fixed order (a LinkedHashMap in ZooKeeper); nested
                # objects such as server_stats are Java beans, whose key order Jackson takes
                # from reflection and which changes between ZooKeeper runs.
                assert list(ours) == list(theirs), (name, ours, theirs)
                assert sorted(shape(ours)) == sorted(shape(theirs)), (name, ours, theirs)
    finally:
        for c in clients:
            c.stop()
            c.close()
