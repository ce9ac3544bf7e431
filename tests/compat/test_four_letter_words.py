"""Four-letter-word commands (protocol doc section 17): same structure as ZooKeeper 3.8's
output (keys, line shapes, order); values may differ."""
import re

import rawzk

VERSION_RE = re.compile(r"^3\.8\.\d+")

SRVR_KEYS = ["Zookeeper version", "Latency min/avg/max", "Received", "Sent", "Connections",
             "Outstanding", "Zxid", "Mode", "Node count"]
CONF_KEYS = ["clientPort", "secureClientPort", "dataDir", "dataDirSize", "dataLogDir", "dataLogSize",
             "tickTime", "maxClientCnxns", "minSessionTimeout", "maxSessionTimeout",
             "clientPortListenBacklog", "serverId"]
ENVI_KEYS = ["zookeeper.version", "host.name", "java.version", "java.vendor", "java.home",
             "java.class.path", "java.library.path", "java.io.tmpdir", "java.compiler", "os.name",
             "os.arch", "os.version", "user.name", "user.home", "user.dir", "os.memory.free",
             "os.memory.max", "os.memory.total"]
MNTR_CLASSIC = ["zk_version", "zk_server_state", "zk_avg_latency", "zk_max_latency", "zk_min_latency",
                "zk_packets_received", "zk_packets_sent", "zk_num_alive_connections",
                "zk_outstanding_requests", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
                "zk_approximate_data_size", "zk_open_file_descriptor_count",
                "zk_max_file_descriptor_count"]
CLIENT_RE = r" /127\.0\.0\.1:\d+\[[0-9a-f]+\]\(queued=\d+,recved=\d+,sent=\d+\)"
CONS_FULL_RE = (r" /127\.0\.0\.1:\d+\[[0-9a-f]+\]\(queued=\d+,recved=\d+,sent=\d+,sid=0x([0-9a-f]+),"
                r"lop=[A-Z]+,est=\d+,to=(\d+),lcxid=0x[0-9a-f]+,lzxid=0x[0-9a-f]+,lresp=\d+,"
                r"llat=\d+,minlat=\d+,avglat=\d+,maxlat=\d+\)")


def parse_srvr_lines(lines):
    out = {}
    for ln in lines:
        k, v = ln.split(": ", 1)
        out[k] = v
    return out


def check_srvr_block(lines):
    kv = parse_srvr_lines(lines)
    assert list(kv) == SRVR_KEYS
    assert VERSION_RE.match(kv["Zookeeper version"]), kv["Zookeeper version"]
    assert re.fullmatch(r"\d+/\d+(\.\d+)?/\d+", kv["Latency min/avg/max"])
    for k in ("Received", "Sent", "Connections", "Outstanding", "Node count"):
        assert re.fullmatch(r"\d+", kv[k]), (k, kv[k])
    assert re.fullmatch(r"0x[0-9a-f]+", kv["Zxid"])
    assert kv["Mode"] == "standalone"
    return kv


def test_ruok(server):
    assert server.four_letter("ruok") == "imok"


def test_srvr(server, zk, base):
    zk.create(base + "/n")
    out = server.four_letter("srvr")
    assert out.endswith("\n")
    kv = check_srvr_block(out[:-1].split("\n"))
    assert int(kv["Connections"]) >= 1
    assert int(kv["Node count"]) >= 6       # /, /zookeeper, quota, config, base, n
    with rawzk.connect(server) as c:
        assert int(kv["Zxid"], 16) <= c.sync("/").zxid


def test_stat(server, zk):
    out = server.four_letter("stat")
    lines = out.split("\n")
    assert VERSION_RE.match(lines[0].split(": ", 1)[1])
    assert lines[1] == "Clients:"
    i = 2
    while lines[i] != "":
        assert re.fullmatch(CLIENT_RE, lines[i]), lines[i]
        i += 1
    assert i >= 4       # the kazoo connection and this 4lw connection
    assert lines[-1] == ""
    check_srvr_block([lines[0]] + lines[i + 1:-1])


def test_cons(server, zk):
    out = server.four_letter("cons")
    assert out.endswith("\n\n")
    lines = out[:-2].split("\n")
    sids = []
    for ln in lines:
        m = re.fullmatch(CONS_FULL_RE, ln)
        if m:
            sids.append((int(m.group(1), 16), int(m.group(2))))
        else:
            assert re.fullmatch(CLIENT_RE, ln), ln
    assert (zk.client_id[0], 10000) in sids


def test_conf(server):
    out = server.four_letter("conf")
    assert out.endswith("\n")
    kv = dict(ln.split("=", 1) for ln in out[:-1].split("\n"))
    assert list(kv) == CONF_KEYS
    assert kv["clientPort"] == str(server.port)
    assert kv["secureClientPort"] == "-1"
    assert kv["tickTime"] == "200"
    assert kv["maxClientCnxns"] == "60"
    assert kv["minSessionTimeout"] == "400"
    assert kv["maxSessionTimeout"] == "40000"
    assert kv["serverId"] == "0"
    assert kv["dataDir"].startswith(server.data_dir)
    for k in ("dataDirSize", "dataLogSize", "clientPortListenBacklog"):
        assert re.fullmatch(r"-?\d+", kv[k]), k


def test_envi(server):
    out = server.four_letter("envi")
    lines = out.rstrip("\n").split("\n")
    assert lines[0] == "Environment:"
    keys = [ln.split("=", 1)[0] for ln in lines[1:]]
    assert keys == ENVI_KEYS
    kv = dict(ln.split("=", 1) for ln in lines[1:])
    assert VERSION_RE.match(kv["zookeeper.version"])
    for k in ("os.memory.free", "os.memory.max", "os.memory.total"):
        assert re.fullmatch(r"\d+MB", kv[k]), (k, kv[k])


def test_mntr(server, zk):
    out = server.four_letter("mntr")
    assert out.endswith("\n")
    lines = out[:-1].split("\n")
    kv = {}
    for ln in lines:
        k, v = ln.split("\t")
        assert re.fullmatch(r"zk_\S+", k), k
        kv[k] = v
    assert lines[0].startswith("zk_version\t") and lines[1] == "zk_server_state\tstandalone"
    assert VERSION_RE.match(kv["zk_version"])
    missing = [k for k in MNTR_CLASSIC if k not in kv]
    assert not missing, missing
    for k in MNTR_CLASSIC[3:]:
        if k != "zk_avg_latency":
            assert re.fullmatch(r"-?\d+", kv[k]), (k, kv[k])
    assert re.fullmatch(r"\d+(\.\d+)?", kv["zk_avg_latency"])
    assert int(kv["zk_num_alive_connections"]) >= 1
    assert int(kv["zk_znode_count"]) >= 4


def test_wchs_counts(server, kazoo_factory, base):
    c = kazoo_factory()
    c.create(base + "/a")
    c.create(base + "/b")
    c.get(base + "/a", watch=lambda e: None)
    c.exists(base + "/b", watch=lambda e: None)
    c.exists(base + "/missing", watch=lambda e: None)
    out = server.four_letter("wchs")
    m = re.fullmatch(r"(\d+) connections watching (\d+) paths\nTotal watches:(\d+)\n", out)
    assert m, repr(out)
    conns, paths, total = (int(x) for x in m.groups())
    assert conns >= 1 and paths >= 3 and total >= 3
    # exact per-session view: wchc lists this session's three watched paths
    out = server.four_letter("wchc")
    lines = out.split("\n")
    i = lines.index("0x%x" % c.client_id[0])
    mine = []
    for ln in lines[i + 1:]:
        if not ln.startswith("\t"):
            break
        mine.append(ln[1:])
    assert sorted(mine) == sorted([base + "/a", base + "/b", base + "/missing"])


def test_wchc_wchp(server):
    with rawzk.connect(server) as c:
        assert c.exists("/wch-missing-path", watch=True).err == rawzk.Err.NO_NODE
        sid = "0x%x" % c.session_id
        out = server.four_letter("wchc")
        blocks = out.split("\n")
        assert sid in blocks
        assert blocks[blocks.index(sid) + 1] == "\t/wch-missing-path"
        assert out.endswith("\n\n")
        out = server.four_letter("wchp")
        lines = out.split("\n")
        assert lines[lines.index("/wch-missing-path") + 1] == "\t" + sid


def test_isro_dirs_resets(server):
    assert server.four_letter("isro") == "rw"
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", server.four_letter("dirs"))
    assert server.four_letter("crst") == "Connection stats reset.\n"
    assert server.four_letter("srst") == "Server stats reset.\n"


def test_kazoo_command_and_server_version(zk):
    out = zk.command(b"srvr")
    assert out.startswith("Zookeeper version: 3.8.")
    assert zk.command(b"ruok") == "imok"
    version = zk.server_version()
    assert version[:2] == (3, 8)


def test_restricted_whitelist(server_factory):
    srv = server_factory({"4lw.commands.whitelist": "srvr,ruok,conf"})
    assert srv.four_letter("ruok") == "imok"
    assert srv.four_letter("srvr").startswith("Zookeeper version: 3.8.")
    assert srv.four_letter("conf").startswith("clientPort=%d\n" % srv.port)
    for cmd in ("stat", "mntr", "envi", "cons", "wchs", "dump", "isro"):
        assert srv.four_letter(cmd) == "%s is not executed because it is not in the whitelist.\n" % cmd


def test_default_whitelist_is_srvr_only(server_factory):
    srv = server_factory({"4lw.commands.whitelist": None})
    assert srv.four_letter("srvr").startswith("Zookeeper version: 3.8.")
    for cmd in ("ruok", "stat", "conf", "mntr"):
        assert srv.four_letter(cmd) == "%s is not executed because it is not in the whitelist.\n" % cmd


def test_dump(server, base):
    with rawzk.connect(server) as c:
        assert c.create(base + "/eph", flags=rawzk.Mode.EPHEMERAL).err == 0
        sid = "0x%x" % c.session_id
        out = server.four_letter("dump")
        lines = out.split("\n")
        assert lines[0] == "SessionTracker dump:"
        assert re.fullmatch(r"Session Sets \(\d+\)/\(\d+\):", lines[1]), lines[1]
        assert "ephemeral nodes dump:" in lines
        i = lines.index("ephemeral nodes dump:")
        assert re.fullmatch(r"Sessions with Ephemerals \(\d+\):", lines[i + 1])
        j = lines.index(sid + ":")
        assert j > i and lines[j + 1] == "\t" + base + "/eph"
        # the session appears (tab-indented) under an expiry bucket of the tracker
        assert "\t" + sid in lines[2:i]


def test_four_letters_only_first_on_fresh_connection(server):
    # after a handshake the same bytes are just a (huge) length: connection dropped
    with rawzk.connect(server) as c:
        c.send_raw(b"ruok")
        assert c.wait_closed(5) == []
    # an unknown 4-byte sequence on a fresh connection is a length too: no text at all
    assert server.four_letter("abcd") == ""
