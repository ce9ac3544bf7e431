import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.queue.SimpleDistributedQueue;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;

/**
 * Apache Curator's framework and recipes, run unchanged against a server: two clients
 * (two sessions) create with parents, run a transaction, take turns on a mutex, hand over
 * leadership, count with an optimistic atomic long, watch through a cache, pass items
 * through a queue, and see an ephemeral go with its session. Prints "ok <step>" per step;
 * any failure throws, and the JVM exits non-zero.
 *   java CuratorRecipes host:port /base/path
 */
public class CuratorRecipes {
    static void check(boolean holds, String what) {
        if (!holds) {
            throw new AssertionError(what);
        }
    }

    static CuratorFramework client(String connect) throws InterruptedException {
        CuratorFramework c = CuratorFrameworkFactory.newClient(connect, 10000, 5000, new RetryNTimes(10, 100));
        c.start();
        check(c.blockUntilConnected(10, TimeUnit.SECONDS), "connected");
        return c;
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String base = args[1];
        try (CuratorFramework a = client(connect); CuratorFramework b = client(connect)) {
            a.create().creatingParentsIfNeeded().forPath(base + "/x/y/z", "v".getBytes());
            check(new String(b.getData().forPath(base + "/x/y/z")).equals("v"), "data read by the other session");
            System.out.println("ok create with parents");

            CuratorOp create = a.transactionOp().create().forPath(base + "/t", "1".getBytes());
            CuratorOp set = a.transactionOp().setData().withVersion(0).forPath(base + "/x/y/z", "w".getBytes());
            List<CuratorTransactionResult> results = a.transaction().forOperations(create, set);
            check(results.size() == 2 && results.get(1).getResultStat().getVersion() == 1, "transaction results");
            check(new String(b.getData().forPath(base + "/x/y/z")).equals("w"), "transaction applied");
            System.out.println("ok transaction");

            InterProcessMutex lockA = new InterProcessMutex(a, base + "/lock");
            InterProcessMutex lockB = new InterProcessMutex(b, base + "/lock");
            check(lockA.acquire(10, TimeUnit.SECONDS), "a takes the lock");
            check(!lockB.acquire(300, TimeUnit.MILLISECONDS), "b waits while a holds it");
            lockA.release();
            check(lockB.acquire(10, TimeUnit.SECONDS), "b takes the lock once a releases it");
            lockB.release();
            System.out.println("ok mutex");

            LeaderLatch latchA = new LeaderLatch(a, base + "/leader", "a");
            LeaderLatch latchB = new LeaderLatch(b, base + "/leader", "b");
            latchA.start();
            check(latchA.await(10, TimeUnit.SECONDS), "a leads");
            latchB.start();
            long until = System.currentTimeMillis() + 10000;
            while (latchB.getParticipants().size() < 2 && System.currentTimeMillis() < until) {
                Thread.sleep(20);
            }
            check(latchB.getParticipants().size() == 2, "both take part");
            check(!latchB.hasLeadership() && latchB.getLeader().getId().equals("a"), "b follows a");
            latchA.close();
            check(latchB.await(10, TimeUnit.SECONDS), "b leads once a leaves");
            latchB.close();
            System.out.println("ok leader latch");

            List<Thread> threads = new ArrayList<>();
            List<Throwable> failures = new ArrayList<>();
            for (CuratorFramework c : new CuratorFramework[] {a, b}) {
                DistributedAtomicLong counter = new DistributedAtomicLong(c, base + "/counter", new RetryNTimes(100, 5));
                Thread t = new Thread(() -> {
                    try {
                        for (int i = 0; i < 25; i++) {
                            check(counter.increment().succeeded(), "increment");
                        }
                    } catch (Throwable e) {
                        synchronized (failures) {
                            failures.add(e);
                        }
                    }
                });
                threads.add(t);
                t.start();
            }
            for (Thread t : threads) {
                t.join();
            }
            check(failures.isEmpty(), "increments: " + failures);
            AtomicValue<Long> total = new DistributedAtomicLong(a, base + "/counter", new RetryNTimes(3, 5)).get();
            check(total.succeeded() && total.postValue() == 50, "50 increments counted, got " + total.postValue());
            System.out.println("ok atomic long");

            CountDownLatch created = new CountDownLatch(1);
            CountDownLatch changed = new CountDownLatch(1);
            try (CuratorCache cache = CuratorCache.build(a, base + "/watched")) {
                cache.listenable().addListener(CuratorCacheListener.builder()
                    .forCreates(node -> {
                        if (node.getPath().equals(base + "/watched/k")) {
                            created.countDown();
                        }
                    })
                    .forChanges((before, after) -> {
                        if (new String(after.getData()).equals("new")) {
                            changed.countDown();
                        }
                    })
                    .build());
                cache.start();
                b.create().creatingParentsIfNeeded().forPath(base + "/watched/k", "old".getBytes());
                check(created.await(10, TimeUnit.SECONDS), "the cache saw the create");
                b.setData().forPath(base + "/watched/k", "new".getBytes());
                check(changed.await(10, TimeUnit.SECONDS), "the cache saw the change");
            }
            System.out.println("ok cache");

            SimpleDistributedQueue producer = new SimpleDistributedQueue(a, base + "/queue");
            SimpleDistributedQueue consumer = new SimpleDistributedQueue(b, base + "/queue");
            producer.offer("one".getBytes());
            producer.offer("two".getBytes());
            check(new String(consumer.take()).equals("one") && new String(consumer.take()).equals("two"), "FIFO");
            System.out.println("ok queue");

            try (CuratorFramework c = client(connect)) {
                c.create().withMode(CreateMode.EPHEMERAL).forPath(base + "/eph");
                check(a.checkExists().forPath(base + "/eph").getEphemeralOwner()
                    == c.getZookeeperClient().getZooKeeper().getSessionId(), "owned by its session");
            }
            long deadline = System.currentTimeMillis() + 10000;
            while (a.checkExists().forPath(base + "/eph") != null && System.currentTimeMillis() < deadline) {
                Thread.sleep(50);
            }
            check(a.checkExists().forPath(base + "/eph") == null, "the ephemeral goes with its session");
            System.out.println("ok ephemeral");
        }
    }
}
