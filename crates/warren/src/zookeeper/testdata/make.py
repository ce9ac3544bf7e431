"""Makes the real-ZooKeeper fixture the importer's unit tests read: starts ZooKeeper 3.8
(tests/compat/servers.py) with a small snapCount, writes a known history, records what
ZooKeeper serves (every node's data, Stat and ACL, the last zxid, the live session's id and
password) in expected.json, stops it (SIGTERM) and copies version-2/, with the logs'
preallocated zeros trimmed. Run from the repository root:

    python3 crates/warren/src/zookeeper/testdata/make.py
"""
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "..", "tests", "compat"))

import rawzk  # noqa: E402
from rawzk import Mode, Op, Perm, digest_id  # noqa: E402
from servers import SUPER_PASSWORD, SUPER_USER, Server  # noqa: E402


def ok(rep):
    assert rep.err == 0, rep
    return rep


def main():
    zk = Server("zookeeper", {"snapCount": "10"})
    zk.start()
    try:
        c = rawzk.connect(zk, timeout_ms=30000)
        ok(c.create("/fixture", b"first"))
        ok(c.create("/fixture/null", None))
        ok(c.create("/fixture/acl", b"alice's", acl=[(Perm.ALL, "digest", digest_id("alice", "pw")),
                                                       (Perm.READ, "ip", "127.0.0.0/8")]))
        for _ in range(3):
            ok(c.create("/fixture/seq-", b"", flags=Mode.PERSISTENT_SEQUENTIAL))
        ok(c.delete("/fixture/seq-0000000003"))
        ok(c.create("/fixture/box", b"", flags=Mode.CONTAINER, op=Op.CREATE_CONTAINER))
        ok(c.create("/fixture/box/in", b"x"))
        ok(c.create_ttl("/fixture/ttl", 86400000, b"t"))
        live = rawzk.connect(zk, timeout_ms=30000)
        ok(live.create("/fixture/eph", b"mine", flags=Mode.EPHEMERAL))
        for i in range(12):
            ok(c.set_data("/fixture", b"set %d" % i))
        ok(c.create("/fixture/tail", b"after the snapshot"))
        ok(c.set_acl("/fixture/tail", [(Perm.READ, "world", "anyone")]))
        ok(c.call(Op.CLOSE_SESSION))
        nodes = {}
        with rawzk.connect(zk) as w:
            ok(w.auth("digest", "%s:%s" % (SUPER_USER, SUPER_PASSWORD)))
            stack = ["/"]
            while stack:
                p = stack.pop()
                data, stat = ok(w.get_data(p)).data_stat()
                acl, _ = ok(w.get_acl(p)).acl_stat()
                nodes[p] = {"data": None if data is None else data.hex(), "stat": list(stat),
                            "acl": [list(a) for a in acl]}
                stack += [p.rstrip("/") + "/" + n for n in ok(w.get_children(p)).children()]
            ok(w.call(Op.CLOSE_SESSION))
        last = int(re.search(r"Zxid: (0x[0-9a-f]+)", zk.four_letter("srvr")).group(1), 16)
        expected = {"last_zxid": last, "session": [live.session_id, live.passwd.hex()], "nodes": nodes}
    finally:
        zk.stop()
    out = os.path.join(HERE, "version-2")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    src = os.path.join(zk.data_dir, "version-2")
    for name in sorted(os.listdir(src)):
        with open(os.path.join(src, name), "rb") as f:
            data = f.read()
        if name.startswith("log."):
            data = data.rstrip(b"\0")
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    zk.cleanup()


if __name__ == "__main__":
    main()
