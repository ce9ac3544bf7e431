"""The stock zkCli.sh, run non-interactively (one command per JVM) against the server.
(zkCli 3.8 prints some results on stdout and others, e.g. "Created ...", on stderr.)"""


def test_zkcli_create_get_ls_delete(zkcli, zk, base):
    r = zkcli("create", base + "/cli", "hello")
    assert r.returncode == 0, r.stderr
    assert "Created %s/cli" % base in r.stdout + r.stderr
    r = zkcli("create", "-s", base + "/q", "x")
    assert r.returncode == 0 and "Created %s/q0000000001" % base in r.stdout + r.stderr

    r = zkcli("get", "-s", base + "/cli")
    assert r.returncode == 0, r.stderr
    lines = (r.stdout + r.stderr).splitlines()
    assert "hello" in lines
    kv = dict(ln.split(" = ", 1) for ln in lines if " = " in ln)
    st = zk.exists(base + "/cli")
    assert int(kv["cZxid"], 16) == st.czxid == int(kv["mZxid"], 16)
    assert kv["dataVersion"] == "0" and kv["dataLength"] == "5" and kv["numChildren"] == "0"
    assert kv["ephemeralOwner"] == "0x0" and kv["aclVersion"] == "0"

    r = zkcli("ls", base)
    assert r.returncode == 0
    assert "[cli, q0000000001]" in (r.stdout + r.stderr).splitlines()

    r = zkcli("delete", base + "/cli")
    assert r.returncode == 0, r.stderr
    assert zk.exists(base + "/cli") is None


def test_zkcli_errors(zkcli, base):
    r = zkcli("get", base + "/none")
    assert r.returncode != 0
    assert "Node does not exist: %s/none" % base in r.stdout + r.stderr
    r = zkcli("delete", "/zookeeper")
    assert r.returncode != 0
    assert "Arguments are not valid : /zookeeper" in r.stdout + r.stderr
