// Line-driven wrapper around the stock ZooKeeper 3.8 Java client, used by the
// compatibility tests for the operations only the Java client sends
// (createContainer, createTTL, addWatch, removeWatches/checkWatches, multiRead,
// getEphemerals, getAllChildrenNumber, whoAmI, setWatches/setWatches2 on reconnect).
//
// Protocol: one command per stdin line, tokens separated by single spaces ("-" means
// empty data). Each command prints its result lines and then "@@DONE". Watch and
// connection-state events may be printed at any time as
//   EVENT <EventType> <KeeperState> <path>
// Results: "OK ...", "ERR <CodeName> <code>", "EXC <exception>".
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Stat;

public class ZkDriver {
    static ZooKeeper zk;
    static final Object OUT = new Object();

    static void out(String s) {
        synchronized (OUT) {
            System.out.println(s);
            System.out.flush();
        }
    }

    static final Watcher EVENTS = ZkDriver::printEvent;

    static void printEvent(WatchedEvent e) {
        out("EVENT " + e.getType() + " " + e.getState() + " " + e.getPath());
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            line = line.trim();
            if (line.isEmpty()) {
                continue;
            }
            String[] a = line.split(" ");
            if (a[0].equals("quit")) {
                break;
            }
            try {
                run(a);
            } catch (KeeperException ke) {
                out("ERR " + ke.code() + " " + ke.code().intValue());
            } catch (Exception ex) {
                out("EXC " + ex);
            }
            out("@@DONE");
        }
        if (zk != null) {
            zk.close();
        }
        System.exit(0);
    }

    static byte[] b(String s) {
        return s.equals("-") ? new byte[0] : s.getBytes(StandardCharsets.UTF_8);
    }

    static String s(byte[] d) {
        return d == null ? "<null>" : (d.length == 0 ? "-" : new String(d, StandardCharsets.UTF_8));
    }

    static String st(Stat s) {
        if (s == null) {
            return "null";
        }
        return "czxid=" + s.getCzxid() + " mzxid=" + s.getMzxid() + " ctime=" + s.getCtime()
            + " mtime=" + s.getMtime() + " version=" + s.getVersion() + " cversion=" + s.getCversion()
            + " aversion=" + s.getAversion() + " ephemeralOwner=" + s.getEphemeralOwner()
            + " dataLength=" + s.getDataLength() + " numChildren=" + s.getNumChildren()
            + " pzxid=" + s.getPzxid();
    }

    static void run(String[] a) throws Exception {
        switch (a[0]) {
        case "connect": {
            final Object lock = new Object();
            final boolean[] up = {false};
            zk = new ZooKeeper(a[1], Integer.parseInt(a[2]), e -> {
                printEvent(e);
                if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                    synchronized (lock) {
                        up[0] = true;
                        lock.notifyAll();
                    }
                }
            });
            synchronized (lock) {
                long end = System.currentTimeMillis() + 15000;
                while (!up[0] && System.currentTimeMillis() < end) {
                    lock.wait(100);
                }
            }
            if (!up[0]) {
                out("EXC not connected");
                break;
            }
            out("OK 0x" + Long.toHexString(zk.getSessionId()) + " " + zk.getSessionTimeout());
            break;
        }
        case "create": { // create <path> <data> <MODE> [ttl]  -> create2 / createContainer / createTTL
            CreateMode m = CreateMode.valueOf(a[3]);
            Stat stat = new Stat();
            long ttl = a.length > 4 ? Long.parseLong(a[4]) : -1;
            String p = zk.create(a[1], b(a[2]), ZooDefs.Ids.OPEN_ACL_UNSAFE, m, stat, ttl);
            out("OK " + p + " " + st(stat));
            break;
        }
        case "createplain": { // create without Stat -> opcode 1 (or 19 for CONTAINER)
            String p = zk.create(a[1], b(a[2]), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.valueOf(a[3]));
            out("OK " + p);
            break;
        }
        case "get": {
            Stat stat = new Stat();
            byte[] d = a[2].equals("1") ? zk.getData(a[1], EVENTS, stat) : zk.getData(a[1], false, stat);
            out("OK " + s(d) + " " + st(stat));
            break;
        }
        case "exists": {
            Stat stat = a[2].equals("1") ? zk.exists(a[1], EVENTS) : zk.exists(a[1], false);
            out("OK " + st(stat));
            break;
        }
        case "children": {
            List<String> c = a[2].equals("1") ? zk.getChildren(a[1], EVENTS) : zk.getChildren(a[1], false);
            out("OK " + String.join(",", c));
            break;
        }
        case "set":
            out("OK " + st(zk.setData(a[1], b(a[2]), Integer.parseInt(a[3]))));
            break;
        case "delete":
            zk.delete(a[1], Integer.parseInt(a[2]));
            out("OK");
            break;
        case "addwatch": // addwatch <path> PERSISTENT|PERSISTENT_RECURSIVE
            zk.addWatch(a[1], EVENTS, AddWatchMode.valueOf(a[2]));
            out("OK");
            break;
        case "removeall": // removeAllWatches -> opcode 18
            zk.removeAllWatches(a[1], Watcher.WatcherType.valueOf(a[2]), false);
            out("OK");
            break;
        case "removewatcher": // removeWatches(one watcher) -> opcode 17 (checkWatches)
            zk.removeWatches(a[1], EVENTS, Watcher.WatcherType.valueOf(a[2]), false);
            out("OK");
            break;
        case "whoami": {
            List<String> ids = new ArrayList<>();
            for (ClientInfo ci : zk.whoAmI()) {
                ids.add(ci.getAuthScheme() + "=" + ci.getUser());
            }
            out("OK " + String.join(",", ids));
            break;
        }
        case "ephemerals": {
            List<String> e = a.length > 1 ? zk.getEphemerals(a[1]) : zk.getEphemerals();
            out("OK " + String.join(",", e));
            break;
        }
        case "allchildren":
            out("OK " + zk.getAllChildrenNumber(a[1]));
            break;
        case "multiread": { // multiread get:/a children:/b ...   -> opcode 22
            List<Op> ops = new ArrayList<>();
            for (int i = 1; i < a.length; i++) {
                String[] kv = a[i].split(":", 2);
                ops.add(kv[0].equals("get") ? Op.getData(kv[1]) : Op.getChildren(kv[1]));
            }
            for (OpResult r : zk.multi(ops)) {
                if (r instanceof OpResult.GetDataResult) {
                    OpResult.GetDataResult g = (OpResult.GetDataResult) r;
                    out("R data " + s(g.getData()) + " version=" + g.getStat().getVersion());
                } else if (r instanceof OpResult.GetChildrenResult) {
                    out("R children " + String.join(",", ((OpResult.GetChildrenResult) r).getChildren()));
                } else if (r instanceof OpResult.ErrorResult) {
                    out("R error " + ((OpResult.ErrorResult) r).getErr());
                } else {
                    out("R other " + r.getType());
                }
            }
            out("OK");
            break;
        }
        case "auth":
            zk.addAuthInfo(a[1], b(a[2]));
            out("OK");
            break;
        case "sync": {
            final Object lock = new Object();
            final int[] rcs = {Integer.MIN_VALUE};
            zk.sync(a[1], (rc, path, ctx) -> {
                synchronized (lock) {
                    rcs[0] = rc;
                    lock.notifyAll();
                }
            }, null);
            synchronized (lock) {
                while (rcs[0] == Integer.MIN_VALUE) {
                    lock.wait();
                }
            }
            out("OK " + rcs[0]);
            break;
        }
        case "state":
            out("OK " + zk.getState());
            break;
        case "close":
            zk.close();
            zk = null;
            out("OK");
            break;
        default:
            out("EXC unknown command " + a[0]);
        }
    }
}
