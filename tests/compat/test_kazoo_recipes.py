"""kazoo's high-level recipes (lock, counter, election, data/children watchers): the mix
of sequential ephemerals, versioned writes and watches real applications depend on."""
import queue
import threading
import time

from kazoo.recipe.watchers import ChildrenWatch, DataWatch


def wait_contenders(recipe, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        c = recipe.contenders()
        if len(c) >= n or time.monotonic() > deadline:
            return c
        time.sleep(0.05)


def test_lock_is_exclusive_and_handed_over(kazoo_factory, base):
    a, b = kazoo_factory(), kazoo_factory()
    la, lb = a.Lock(base + "/lock", "a"), b.Lock(base + "/lock", "b")
    assert la.acquire(timeout=5)
    assert not lb.acquire(blocking=False)
    got = threading.Event()

    def wait_b():
        if lb.acquire(timeout=10):
            got.set()

    t = threading.Thread(target=wait_b)
    t.start()
    assert wait_contenders(la, 2) == ["a", "b"]      # in sequence-number order
    assert not got.wait(0.3)
    la.release()
    assert got.wait(10), "waiting contender did not get the lock after release"
    t.join(5)
    assert lb.contenders() == ["b"]
    lb.release()
    assert a.get_children(base + "/lock") == []


def test_counter_is_atomic(kazoo_factory, base):
    clients = [kazoo_factory() for _ in range(3)]
    counters = [c.Counter(base + "/counter") for c in clients]

    def bump(ctr):
        for _ in range(20):
            ctr += 1

    threads = [threading.Thread(target=bump, args=(ctr,)) for ctr in counters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert clients[0].Counter(base + "/counter").value == 60


def test_election_leader_changes_on_session_close(kazoo_factory, base):
    a, b = kazoo_factory(), kazoo_factory()
    leaders = queue.Queue()
    stop_a = threading.Event()

    def lead_a():
        leaders.put("a")
        stop_a.wait(10)

    ea, eb = a.Election(base + "/election", "a"), b.Election(base + "/election", "b")
    def run_a():
        try:
            ea.run(lead_a)
        except Exception:      # a's session is closed under it on purpose
            pass

    ta = threading.Thread(target=run_a, daemon=True)
    ta.start()
    assert leaders.get(timeout=5) == "a"
    tb = threading.Thread(target=eb.run, args=(lambda: leaders.put("b"),), daemon=True)
    tb.start()
    assert wait_contenders(eb, 2) == ["a", "b"]
    a.stop()                       # session closed: a's ephemeral goes, b is elected
    assert leaders.get(timeout=10) == "b"
    stop_a.set()


def test_data_and_children_watch_recipes(zk, kazoo_factory, base):
    data_q, child_q = queue.Queue(), queue.Queue()
    p = base + "/watched"
    DataWatch(zk, p, func=lambda data, stat: data_q.put(data))
    ChildrenWatch(zk, base, func=lambda children: child_q.put(sorted(children)))
    assert data_q.get(timeout=5) is None            # missing node
    assert child_q.get(timeout=5) == []
    other = kazoo_factory()
    other.create(p, b"1")
    assert data_q.get(timeout=5) == b"1"
    assert child_q.get(timeout=5) == ["watched"]
    other.set(p, b"2")
    assert data_q.get(timeout=5) == b"2"
    other.create(base + "/second")
    assert child_q.get(timeout=5) == ["second", "watched"]
    other.delete(p)
    assert data_q.get(timeout=5) is None
    assert child_q.get(timeout=5) == ["second"]
