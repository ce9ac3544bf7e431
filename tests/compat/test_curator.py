"""Apache Curator 5.4 (Debian's libcurator-framework-java and libcurator-recipes-java), the
client most JVM services use, run unchanged against the server under test by
java/CuratorRecipes.java: create with parents, a transaction, a mutex taken in turn by two
sessions, a leader latch handed over, an optimistic atomic long under contention, a cache
that sees creates and changes, a queue, and an ephemeral that goes with its session."""
import subprocess

import pytest

from clients import compile_java
from servers import missing

JARS = ["/usr/share/java/%s.jar" % name for name in ("curator-client", "curator-framework", "curator-recipes", "guava")]
STEPS = ["create with parents", "transaction", "mutex", "leader latch", "atomic long", "cache", "queue", "ephemeral"]


@pytest.fixture(scope="session")
def curator_classpath():
    cp, reason = compile_java("CuratorRecipes.java", JARS)
    if reason:
        missing("Curator: %s (apt-get install libcurator-recipes-java)" % reason)
    return cp


def test_curator_recipes(server, base, curator_classpath):
    r = subprocess.run(["java", "-cp", curator_classpath, "CuratorRecipes", server.hostport, base],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split("\n")[:-1] == ["ok " + step for step in STEPS]
