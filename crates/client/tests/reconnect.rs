//! Sessions across broken connections, against the real `warren` binary and real
//! ZooKeeper 3.8: a TCP proxy between client and server is cut, and the client must
//! keep its session, its ephemeral nodes, its auth and its watches (a watch set before
//! the cut fires for a change made while it was away), fail over to the next address of
//! its connect string, and report an expired session as expired.

#[macro_use]
mod common;

use client::{
    acls, AddWatchMode, Client, CreateMode, Error, EventType, KeeperState, SessionState, WatchStream, WatchedEvent,
    Watcher,
};
use common::{eventually, Proxy};
use std::time::Duration;

against_both! {
    session_ephemerals_auth_and_watches_survive_a_cut => survive_a_cut;
    fails_over_to_the_next_address => fails_over;
    expired_session_is_reported => expired_session_is_reported;
    pings_keep_an_idle_session_alive => pings_keep_an_idle_session_alive;
    a_silent_server_is_left_for_the_next_address => a_silent_server_is_left;
}

const LONG: Duration = Duration::from_secs(15);

async fn survive_a_cut(address: &str) {
    let proxy = Proxy::start(address.to_owned()).await;
    let zk = Client::builder(&proxy.address()).session_timeout(Duration::from_secs(8)).connect().await.unwrap();
    let direct = Client::connect(address).await.unwrap();
    let open = acls::open_unsafe();
    zk.add_auth("digest", b"bob:pw").await.unwrap();
    zk.create("/r", Some(b"0"), &open, CreateMode::Persistent).await.unwrap();
    zk.create("/r/eph", None, &open, CreateMode::Ephemeral).await.unwrap();
    let (w, mut events) = Watcher::new();
    zk.get_data_watch("/r", &w).await.unwrap();
    assert_eq!(zk.exists_watch("/r/new", &w).await, Ok(None));
    let (r, mut recursive) = Watcher::new();
    zk.add_watch("/r", AddWatchMode::PersistentRecursive, &r).await.unwrap();
    let id = zk.session_id();

    proxy.pause();
    eventually(LONG, "the client to notice the cut", || zk.state() == SessionState::Connecting).await;
    assert_eq!(next(&mut events).await, state_event(KeeperState::Disconnected));
    // Changes made while the client is away; and a request that waits for the reconnect.
    direct.set_data("/r", Some(b"1"), None).await.unwrap();
    direct.create("/r/new", None, &open, CreateMode::Persistent).await.unwrap();
    let waiting = tokio::spawn({
        let zk = zk.clone();
        async move { zk.get_data("/r").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    proxy.resume();

    assert_eq!(waiting.await.unwrap().unwrap().0.as_deref(), Some(&b"1"[..]));
    assert_eq!(zk.state(), SessionState::Connected);
    assert_eq!(zk.session_id(), id);
    // setWatches2 with the last zxid seen: the server fires what changed meanwhile.
    assert_eq!(next(&mut events).await, state_event(KeeperState::SyncConnected));
    let mut fired = vec![next(&mut events).await, next(&mut events).await];
    fired.sort_by_key(|e| e.path.clone());
    assert_eq!(fired, [node_event(EventType::NodeDataChanged, "/r"), node_event(EventType::NodeCreated, "/r/new")]);
    // The ephemeral node and the auth are still the session's.
    assert_eq!(direct.exists("/r/eph").await.unwrap().unwrap().ephemeral_owner, id);
    let me = zk.who_am_i().await.unwrap();
    assert!(me.iter().any(|c| c.auth_scheme == "digest" && c.user == "bob"), "{me:?}");
    // The recursive watch was re-registered and is still armed. (It also saw the
    // catch-up events for /r and /r/new, which Java's client hands it too.)
    direct.create("/r/after", None, &open, CreateMode::Persistent).await.unwrap();
    let after = node_event(EventType::NodeCreated, "/r/after");
    while next_node_event(&mut recursive).await != after {}
}

async fn fails_over(address: &str) {
    let first = Proxy::start(address.to_owned()).await;
    let second = Proxy::start(address.to_owned()).await;
    let connect = format!("{},{}", first.address(), second.address());
    let zk = Client::builder(&connect).session_timeout(Duration::from_secs(8)).connect().await.unwrap();
    assert_eq!(zk.session().host, Some(first.address()));
    zk.create("/f", None, &acls::open_unsafe(), CreateMode::Ephemeral).await.unwrap();
    let id = zk.session_id();

    // The first address goes away for good: the client moves to the second.
    first.pause();
    eventually(LONG, "the client to reach the second address", || {
        let s = zk.session();
        s.state == SessionState::Connected && s.host == Some(second.address())
    })
    .await;
    assert_eq!(zk.session_id(), id);
    assert_eq!(zk.exists("/f").await.unwrap().unwrap().ephemeral_owner, id);
}

async fn a_silent_server_is_left(address: &str) {
    let first = Proxy::start(address.to_owned()).await;
    let second = Proxy::start(address.to_owned()).await;
    let connect = format!("{},{}", first.address(), second.address());
    let zk = Client::builder(&connect).session_timeout(Duration::from_secs(3)).connect().await.unwrap();
    let id = zk.session_id();
    // The first server stops answering but keeps the connection open: only the read
    // timeout (2/3 of the session timeout) can tell, well before the session expires.
    first.freeze();
    // Let the proxy's pumps see the switch before the request goes out.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    let stat = zk.exists("/").await;
    assert_eq!(stat, Err(Error::ConnectionLoss), "the request in flight on the dead connection");
    assert!(started.elapsed() < Duration::from_secs(3), "detected after {:?}", started.elapsed());
    eventually(LONG, "the client to reach the second address", || {
        let s = zk.session();
        s.state == SessionState::Connected && s.host == Some(second.address())
    })
    .await;
    assert_eq!(zk.session_id(), id);
    assert!(zk.exists("/").await.unwrap().is_some());
}

async fn expired_session_is_reported(address: &str) {
    let proxy = Proxy::start(address.to_owned()).await;
    let zk = Client::builder(&proxy.address()).session_timeout(Duration::from_millis(1000)).connect().await.unwrap();
    let direct = Client::connect(address).await.unwrap();
    zk.create("/x", None, &acls::open_unsafe(), CreateMode::Ephemeral).await.unwrap();
    let (w, mut events) = Watcher::new();
    zk.exists_watch("/y", &w).await.unwrap();
    drop(w);
    let session = zk.session();

    // Away for longer than the session timeout: the server expires the session.
    proxy.pause();
    let deadline = tokio::time::Instant::now() + LONG;
    while direct.exists("/x").await != Ok(None) {
        assert!(tokio::time::Instant::now() < deadline, "the server did not expire the session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.resume();
    eventually(LONG, "the client to learn of the expiry", || zk.state() == SessionState::Expired).await;
    assert_eq!(zk.exists("/").await, Err(Error::SessionExpired));
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(LONG, events.next()).await.unwrap() {
        seen.push(event);
    }
    assert_eq!(seen.last(), Some(&state_event(KeeperState::Expired)), "{seen:?}");

    // Resuming the dead session is refused the same way.
    let resumed = Client::builder(address).resume(session.id, session.password).connect().await;
    assert_eq!(resumed.err(), Some(Error::SessionExpired));
}

async fn pings_keep_an_idle_session_alive(address: &str) {
    let zk = Client::builder(address).session_timeout(Duration::from_millis(2000)).connect().await.unwrap();
    zk.create("/idle", None, &acls::open_unsafe(), CreateMode::Ephemeral).await.unwrap();
    let mut changes = zk.session_changes();
    changes.borrow_and_update();
    // Two and a half session timeouts without a request: only pings keep the session.
    let changed = tokio::time::timeout(Duration::from_millis(5000), changes.changed()).await;
    assert!(changed.is_err(), "the session changed while idle: {:?}", zk.session());
    assert_eq!(zk.exists("/idle").await.unwrap().unwrap().ephemeral_owner, zk.session_id());
}

async fn next(events: &mut WatchStream) -> WatchedEvent {
    tokio::time::timeout(LONG, events.next()).await.expect("no watch event in time").expect("the stream ended")
}

/// The next event about a node, skipping session state changes.
async fn next_node_event(events: &mut WatchStream) -> WatchedEvent {
    loop {
        let event = next(events).await;
        if event.event_type != EventType::None {
            return event;
        }
    }
}

fn node_event(event_type: EventType, path: &str) -> WatchedEvent {
    WatchedEvent { event_type, state: KeeperState::SyncConnected, path: Some(path.into()) }
}

fn state_event(state: KeeperState) -> WatchedEvent {
    WatchedEvent { event_type: EventType::None, state, path: None }
}
