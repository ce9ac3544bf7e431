// The Go client (github.com/samuel/go-zookeeper, Debian's golang-github-samuel-go-zookeeper-dev)
// run unchanged against a server: two sessions create of each mode, read, set with versions,
// watch data and children, run a multi, take its lock recipe in turn, and see an ephemeral
// go with its session. Prints "ok <step>" per step; a failure exits non-zero.
//
//	gozk host:port /base/path
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/samuel/go-zookeeper/zk"
)

func check(holds bool, what string, args ...interface{}) {
	if !holds {
		fmt.Fprintf(os.Stderr, "FAILED: "+what+"\n", args...)
		os.Exit(1)
	}
}

func must(err error, what string) {
	check(err == nil, "%s: %v", what, err)
}

type quiet struct{}

func (quiet) Printf(string, ...interface{}) {}

func connect(server string) *zk.Conn {
	c, events, err := zk.Connect([]string{server}, 10*time.Second, zk.WithLogger(quiet{}))
	must(err, "connect")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if e.State == zk.StateHasSession {
				return c
			}
		case <-deadline:
			check(false, "no session within 10 s")
		}
	}
}

func event(ch <-chan zk.Event, want zk.EventType, path string) {
	select {
	case e := <-ch:
		check(e.Type == want && e.Path == path, "event %v on %s, got %v on %s", want, path, e.Type, e.Path)
	case <-time.After(10 * time.Second):
		check(false, "no %v event on %s", want, path)
	}
}

func main() {
	server, base := os.Args[1], os.Args[2]
	acl := zk.WorldACL(zk.PermAll)
	a, b := connect(server), connect(server)
	defer a.Close()
	defer b.Close()

	p, err := a.Create(base+"/n", []byte("hello"), 0, acl)
	must(err, "create")
	check(p == base+"/n", "created path %s", p)
	_, err = a.Create(base+"/n", nil, 0, acl)
	check(err == zk.ErrNodeExists, "second create: %v", err)
	seq, err := a.Create(base+"/n/s-", nil, zk.FlagSequence, acl)
	must(err, "sequential create")
	check(seq == base+"/n/s-0000000000", "sequential path %s", seq)
	data, stat, err := b.Get(base + "/n")
	must(err, "get")
	check(string(data) == "hello" && stat.Version == 0 && stat.NumChildren == 1, "get: %q %+v", data, stat)
	fmt.Println("ok create and get")

	_, stat, dataChanged, err := b.GetW(base + "/n")
	must(err, "getw")
	_, _, childrenChanged, err := b.ChildrenW(base + "/n")
	must(err, "childrenw")
	stat, err = a.Set(base+"/n", []byte("v2"), stat.Version)
	must(err, "set")
	check(stat.Version == 1, "version after set %d", stat.Version)
	_, err = a.Set(base+"/n", []byte("v3"), 0)
	check(err == zk.ErrBadVersion, "set with an old version: %v", err)
	event(dataChanged, zk.EventNodeDataChanged, base+"/n")
	// This client hands a data change to the path's child watchers too, and drops them.
	event(childrenChanged, zk.EventNodeDataChanged, base+"/n")
	_, _, childrenChanged, err = b.ChildrenW(base + "/n")
	must(err, "childrenw again")
	_, err = a.Create(base+"/n/c", nil, 0, acl)
	must(err, "create child")
	event(childrenChanged, zk.EventNodeChildrenChanged, base+"/n")
	fmt.Println("ok set and watches")

	_, err = a.Multi(
		&zk.CreateRequest{Path: base + "/m", Data: []byte("x"), Acl: acl},
		&zk.SetDataRequest{Path: base + "/n", Data: []byte("v4"), Version: 1},
	)
	must(err, "multi")
	_, err = a.Multi(
		&zk.CreateRequest{Path: base + "/m2", Acl: acl},
		&zk.CheckVersionRequest{Path: base + "/n", Version: 99},
	)
	check(err != nil, "a multi with a failing check fails")
	ok, _, err := b.Exists(base + "/m2")
	must(err, "exists")
	check(!ok, "a failed multi creates nothing")
	fmt.Println("ok multi")

	lockA, lockB := zk.NewLock(a, base+"/lock", acl), zk.NewLock(b, base+"/lock", acl)
	must(lockA.Lock(), "a locks")
	got := make(chan error, 1)
	go func() { got <- lockB.Lock() }()
	select {
	case <-got:
		check(false, "b took the lock while a held it")
	case <-time.After(300 * time.Millisecond):
	}
	must(lockA.Unlock(), "a unlocks")
	select {
	case err := <-got:
		must(err, "b locks")
	case <-time.After(10 * time.Second):
		check(false, "b never got the lock")
	}
	must(lockB.Unlock(), "b unlocks")
	fmt.Println("ok lock")

	c := connect(server)
	_, err = c.Create(base+"/eph", nil, zk.FlagEphemeral, acl)
	must(err, "ephemeral create")
	_, stat, err = a.Exists(base + "/eph")
	must(err, "exists ephemeral")
	check(stat.EphemeralOwner == c.SessionID(), "owner %x, session %x", stat.EphemeralOwner, c.SessionID())
	_, _, gone, err := a.ExistsW(base + "/eph")
	must(err, "existsw")
	c.Close()
	event(gone, zk.EventNodeDeleted, base+"/eph")
	fmt.Println("ok ephemeral")
}
