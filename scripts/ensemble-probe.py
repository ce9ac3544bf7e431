"""Helpers for scripts/bench-ensemble-vs-zookeeper, for Warren and ZooKeeper alike.

  ensemble-probe.py wait HOSTS              until every server serves and one leads
  ensemble-probe.py failover HOSTS DATADIR  kill -9 the leader under writes; print the ms
                                            from the kill to the first committed write
"""
import os
import signal
import socket
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError


def mode(hostport):
    host, port = hostport.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1) as s:
            s.sendall(b"srvr")
            text = b""
            while chunk := s.recv(4096):
                text += chunk
    except OSError:
        return None
    for line in text.decode().splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):]
    return None


def wait(hosts, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        modes = [mode(h) for h in hosts]
        if None not in modes and modes.count("leader") == 1:
            return
        time.sleep(0.1)
    sys.exit(f"the ensemble {hosts} did not come up: {modes}")


def failover(hosts, datadir):
    client = KazooClient(hosts=",".join(hosts), timeout=4.0, connection_retry={"max_tries": -1, "delay": 0.01, "max_delay": 0.05})
    client.start(timeout=20)
    client.ensure_path("/failover")
    leader = next(i for i, h in enumerate(hosts, 1) if mode(h) == "leader")
    for _ in range(50):
        client.set("/failover", b"before")
    with open(os.path.join(datadir, str(leader), "pid")) as f:
        pid = int(f.read())
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while True:
        try:
            client.set("/failover", b"after")
            break
        except (KazooException, KazooTimeoutError):
            if time.monotonic() - killed > 60:
                sys.exit(f"no write committed within 60 s of killing the leader, server {leader}")
            time.sleep(0.005)
    print(round((time.monotonic() - killed) * 1000))
    client.stop()
    client.close()


if __name__ == "__main__":
    command, hosts = sys.argv[1], sys.argv[2].split(",")
    if command == "wait":
        wait(hosts)
    else:
        failover(hosts, sys.argv[3])
