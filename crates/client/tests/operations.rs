//! Every operation of the client against the real `warren` binary and against real
//! ZooKeeper 3.8, with the same expectations: so the client is proven on ZooKeeper itself
//! and Warren is checked by the same assertions.
//!
//! Method: each test starts one server of its target and runs its steps in order under
//! a fresh base path.

#[macro_use]
mod common;

use client::{
    acls, perms, Acl, AddWatchMode, Client, CreateMode, Error, EventType, Id, KeeperState, Op, OpResult, ReadOp,
    ReadResult, SessionState, WatchedEvent, Watcher, WatcherType,
};
use std::time::Duration;

against_both! {
    create_modes_and_reads => create_modes_and_reads;
    writes_check_versions => writes_check_versions;
    multi_and_multi_read => multi_and_multi_read;
    acls_and_auth => acls_and_auth;
    chroot_is_transparent => chroot_is_transparent;
    watches_one_shot_persistent_and_removed => watches_one_shot_persistent_and_removed;
    pipelined_requests_are_matched_in_order => pipelined_requests_are_matched_in_order;
    close_ends_the_session => close_ends_the_session;
}

fn open() -> Vec<Acl> {
    acls::open_unsafe()
}

async fn create_modes_and_reads(address: &str) {
    let zk = Client::connect(address).await.unwrap();
    assert_eq!(zk.state(), SessionState::Connected);
    assert_ne!(zk.session_id(), 0);
    assert_eq!(zk.create("/ops", Some(b"root"), &open(), CreateMode::Persistent).await.unwrap(), "/ops");

    // Every create mode, with the opcode each needs.
    let (path, stat) = zk.create2("/ops/p", Some(b"x"), &open(), CreateMode::Persistent).await.unwrap();
    assert_eq!((path.as_str(), stat.version, stat.data_length, stat.ephemeral_owner), ("/ops/p", 0, 1, 0));
    let (_, stat) = zk.create2("/ops/e", None, &open(), CreateMode::Ephemeral).await.unwrap();
    assert_eq!(stat.ephemeral_owner, zk.session_id());
    let s1 = zk.create("/ops/s-", None, &open(), CreateMode::PersistentSequential).await.unwrap();
    let s2 = zk.create("/ops/s-", None, &open(), CreateMode::EphemeralSequential).await.unwrap();
    assert_eq!((s1.as_str(), s2.as_str()), ("/ops/s-0000000002", "/ops/s-0000000003"));
    let (_, stat) = zk.create2("/ops/c", None, &open(), CreateMode::Container).await.unwrap();
    // ZooKeeper keeps its container marker to itself: the Stat shows no owner.
    assert_eq!((stat.ephemeral_owner, stat.num_children), (0, 0));
    let ttl = CreateMode::PersistentWithTtl { ttl_ms: 60_000 };
    assert_eq!(zk.create("/ops/t", Some(b""), &open(), ttl).await.unwrap(), "/ops/t");
    let seq_ttl = CreateMode::PersistentSequentialWithTtl { ttl_ms: 60_000 };
    assert_eq!(zk.create("/ops/t-", None, &open(), seq_ttl).await.unwrap(), "/ops/t-0000000006");
    let bad_ttl = CreateMode::PersistentWithTtl { ttl_ms: 0 };
    assert_eq!(zk.create("/ops/t0", None, &open(), bad_ttl).await, Err(Error::BadArguments));

    // Creation errors, typed.
    assert_eq!(zk.create("/ops/p", None, &open(), CreateMode::Persistent).await, Err(Error::NodeExists));
    assert_eq!(zk.create("/ops/none/x", None, &open(), CreateMode::Persistent).await, Err(Error::NoNode));
    assert_eq!(zk.create("/ops/e/x", None, &open(), CreateMode::Persistent).await, Err(Error::NoChildrenForEphemerals));
    assert_eq!(zk.create("/ops/q", None, &[], CreateMode::Persistent).await, Err(Error::InvalidAcl));
    assert_eq!(
        zk.create("ops", None, &open(), CreateMode::Persistent).await,
        Err(Error::InvalidPath("Path must start with / character".into()))
    );

    // Reads: null data stays null, empty stays empty.
    assert_eq!(zk.get_data("/ops/p").await.unwrap().0.as_deref(), Some(&b"x"[..]));
    assert_eq!(zk.get_data("/ops/e").await.unwrap().0, None);
    assert_eq!(zk.get_data("/ops/t").await.unwrap().0, Some(vec![]));
    assert_eq!(zk.get_data("/ops/none").await, Err(Error::NoNode));
    assert_eq!(zk.exists("/ops/none").await, Ok(None));
    assert_eq!(zk.exists("/ops/p").await.unwrap().unwrap().data_length, 1);
    let mut children = zk.get_children("/ops").await.unwrap();
    children.sort();
    assert_eq!(children, ["c", "e", "p", "s-0000000002", "s-0000000003", "t", "t-0000000006"]);
    let (children2, stat) = zk.get_children2("/ops").await.unwrap();
    assert_eq!((children2.len(), stat.num_children), (7, 7));
    assert_eq!(zk.get_children("/ops/none").await, Err(Error::NoNode));
    zk.create("/ops/p/deep", None, &open(), CreateMode::Persistent).await.unwrap();
    assert_eq!(zk.get_all_children_number("/ops").await, Ok(8));
    let mut ephemerals = zk.get_ephemerals("/ops").await.unwrap();
    ephemerals.sort();
    assert_eq!(ephemerals, ["/ops/e", "/ops/s-0000000003"]);
    assert_eq!(zk.sync("/ops").await, Ok(()));
    let me = zk.who_am_i().await.unwrap();
    assert!(me.iter().any(|c| c.auth_scheme == "ip" && c.user == "127.0.0.1"), "{me:?}");
    zk.close().await.unwrap();
}

async fn writes_check_versions(address: &str) {
    let zk = Client::connect(address).await.unwrap();
    zk.create("/w", Some(b"0"), &open(), CreateMode::Persistent).await.unwrap();
    let stat = zk.set_data("/w", Some(b"1"), Some(0)).await.unwrap();
    assert_eq!(stat.version, 1);
    assert_eq!(zk.set_data("/w", Some(b"2"), Some(0)).await, Err(Error::BadVersion));
    assert_eq!(zk.set_data("/w", None, None).await.unwrap().version, 2);
    assert_eq!(zk.get_data("/w").await.unwrap().0, None);
    assert_eq!(zk.set_data("/none", None, None).await, Err(Error::NoNode));
    zk.create("/w/child", None, &open(), CreateMode::Persistent).await.unwrap();
    assert_eq!(zk.delete("/w", None).await, Err(Error::NotEmpty));
    assert_eq!(zk.delete("/w/child", Some(3)).await, Err(Error::BadVersion));
    zk.delete("/w/child", Some(0)).await.unwrap();
    zk.delete("/w", None).await.unwrap();
    assert_eq!(zk.delete("/w", None).await, Err(Error::NoNode));
    assert_eq!(zk.delete("/zookeeper", None).await, Err(Error::BadArguments));
}

async fn multi_and_multi_read(address: &str) {
    let zk = Client::connect(address).await.unwrap();
    let results = zk
        .multi(&[
            Op::Create { path: "/m".into(), data: Some(b"a".to_vec()), acl: open(), mode: CreateMode::Persistent },
            Op::Create { path: "/m/c".into(), data: None, acl: open(), mode: CreateMode::Container },
            Op::SetData { path: "/m".into(), data: Some(b"b".to_vec()), version: Some(0) },
            Op::Check { path: "/m".into(), version: 1 },
        ])
        .await
        .unwrap();
    assert_eq!(results[0], OpResult::Create { path: "/m".into(), stat: None });
    assert!(matches!(&results[1], OpResult::Create { path, stat: Some(_) } if path == "/m/c"));
    assert!(matches!(&results[2], OpResult::SetData { stat } if stat.version == 1));
    assert_eq!(results[3], OpResult::Check);

    // A failing op rolls the whole multi back and names itself.
    let failed = zk
        .multi(&[
            Op::Create { path: "/m/x".into(), data: None, acl: open(), mode: CreateMode::Persistent },
            Op::Delete { path: "/m".into(), version: Some(7) },
            Op::Delete { path: "/m/c".into(), version: None },
        ])
        .await;
    assert_eq!(failed, Err(Error::MultiFailed { index: 1, error: Box::new(Error::BadVersion) }));
    assert_eq!(zk.exists("/m/x").await, Ok(None));

    let reads = zk
        .multi_read(&[
            ReadOp::GetData { path: "/m".into() },
            ReadOp::GetChildren { path: "/none".into() },
            ReadOp::GetChildren { path: "/m".into() },
        ])
        .await
        .unwrap();
    assert!(matches!(&reads[0], ReadResult::Data { data: Some(d), stat } if d == b"b" && stat.version == 1));
    assert_eq!(reads[1], ReadResult::Error(Error::NoNode));
    assert_eq!(reads[2], ReadResult::Children { children: vec!["c".into()] });
}

async fn acls_and_auth(address: &str) {
    let zk = Client::connect(address).await.unwrap();
    // An `auth` ACL needs an authenticated identity.
    assert_eq!(zk.create("/a", None, &acls::creator_all(), CreateMode::Persistent).await, Err(Error::InvalidAcl));
    zk.add_auth("digest", b"alice:secret").await.unwrap();
    let me = zk.who_am_i().await.unwrap();
    assert!(me.iter().any(|c| c.auth_scheme == "digest" && c.user == "alice"), "{me:?}");
    zk.create("/a", Some(b"mine"), &acls::creator_all(), CreateMode::Persistent).await.unwrap();
    let (acl, stat) = zk.get_acl("/a").await.unwrap();
    assert_eq!(acl.len(), 1);
    assert_eq!((acl[0].perms, acl[0].id.scheme.as_str()), (perms::ALL, "digest"));
    assert_eq!(stat.aversion, 0);

    let other = Client::connect(address).await.unwrap();
    assert_eq!(other.get_data("/a").await, Err(Error::NoAuth));
    let read_only = vec![Acl { perms: perms::READ, id: Id { scheme: "world".into(), id: Some("anyone".into()) } }];
    assert_eq!(zk.set_acl("/a", &read_only, Some(5)).await, Err(Error::BadVersion));
    assert_eq!(zk.set_acl("/a", &read_only, Some(0)).await.unwrap().aversion, 1);
    assert_eq!(other.get_data("/a").await.unwrap().0.as_deref(), Some(&b"mine"[..]));
    assert_eq!(other.set_data("/a", None, None).await, Err(Error::NoAuth));

    // A rejected auth ends the client, as the server closes the connection.
    let bad = Client::connect(address).await.unwrap();
    assert_eq!(bad.add_auth("nosuchscheme", b"x").await, Err(Error::AuthFailed));
    assert_eq!(bad.state(), SessionState::AuthFailed);
    assert_eq!(bad.exists("/").await, Err(Error::AuthFailed));
}

async fn chroot_is_transparent(address: &str) {
    let root = Client::connect(address).await.unwrap();
    root.create("/app", None, &open(), CreateMode::Persistent).await.unwrap();
    let zk = Client::connect(&format!("{address}/app")).await.unwrap();
    assert_eq!(zk.chroot(), Some("/app"));
    assert_eq!(zk.create("/x", Some(b"1"), &open(), CreateMode::Persistent).await.unwrap(), "/x");
    assert_eq!(zk.create("/e-", None, &open(), CreateMode::EphemeralSequential).await.unwrap(), "/e-0000000001");
    assert_eq!(root.get_data("/app/x").await.unwrap().0.as_deref(), Some(&b"1"[..]));
    let mut children = zk.get_children("/").await.unwrap();
    children.sort();
    assert_eq!(children, ["e-0000000001", "x"]);
    assert_eq!(zk.get_ephemerals("/").await.unwrap(), ["/e-0000000001"]);
    let results = zk
        .multi(&[Op::Create { path: "/y".into(), data: None, acl: open(), mode: CreateMode::Persistent }])
        .await
        .unwrap();
    assert_eq!(results, [OpResult::Create { path: "/y".into(), stat: None }]);

    // Events name client paths.
    let (watcher, mut events) = Watcher::new();
    zk.get_data_watch("/x", &watcher).await.unwrap();
    zk.add_watch("/", AddWatchMode::PersistentRecursive, &watcher).await.unwrap();
    root.set_data("/app/x", Some(b"2"), None).await.unwrap();
    assert_eq!(next(&mut events).await, node_event(EventType::NodeDataChanged, "/x"));
    root.create("/app/z", None, &open(), CreateMode::Persistent).await.unwrap();
    assert_eq!(next(&mut events).await, node_event(EventType::NodeCreated, "/z"));
}

async fn watches_one_shot_persistent_and_removed(address: &str) {
    let zk = Client::connect(address).await.unwrap();
    let writer = Client::connect(address).await.unwrap();
    zk.create("/wa", Some(b""), &open(), CreateMode::Persistent).await.unwrap();

    // One shared watcher, two registrations on one path: one event, as in ZooKeeper.
    let (shared, mut shared_events) = Watcher::new();
    zk.get_data_watch("/wa", &shared).await.unwrap();
    zk.exists_watch("/wa", &shared).await.unwrap();
    // The writer's own watch event comes before its reply, so it is there at once.
    let (own, mut own_events) = Watcher::new();
    writer.exists_watch("/wa", &own).await.unwrap();
    writer.set_data("/wa", Some(b"1"), None).await.unwrap();
    assert_eq!(own_events.try_next(), Some(node_event(EventType::NodeDataChanged, "/wa")));
    assert_eq!(next(&mut shared_events).await, node_event(EventType::NodeDataChanged, "/wa"));
    // One-shot: a second change fires nothing.
    writer.set_data("/wa", Some(b"2"), None).await.unwrap();
    zk.sync("/wa").await.unwrap();
    assert_eq!(shared_events.try_next(), None);

    // Exist watch on a missing node, child watch, and a stream that ends after its one
    // registration fired because its watcher was dropped.
    let (w, mut created) = Watcher::new();
    assert_eq!(zk.exists_watch("/wa/n", &w).await, Ok(None));
    drop(w);
    let (child_watcher, mut child_events) = Watcher::new();
    zk.get_children_watch("/wa", &child_watcher).await.unwrap();
    writer.create("/wa/n", None, &open(), CreateMode::Persistent).await.unwrap();
    assert_eq!(next(&mut created).await, node_event(EventType::NodeCreated, "/wa/n"));
    assert_eq!(created.next().await, None);
    assert_eq!(next(&mut child_events).await, node_event(EventType::NodeChildrenChanged, "/wa"));

    // Persistent and recursive watches stay armed.
    let (p, mut persistent) = Watcher::new();
    zk.add_watch("/wa", AddWatchMode::Persistent, &p).await.unwrap();
    let (r, mut recursive) = Watcher::new();
    zk.add_watch("/wa", AddWatchMode::PersistentRecursive, &r).await.unwrap();
    writer.set_data("/wa", Some(b"3"), None).await.unwrap();
    writer.set_data("/wa", Some(b"4"), None).await.unwrap();
    writer.create("/wa/n/deep", None, &open(), CreateMode::Persistent).await.unwrap();
    for _ in 0..2 {
        assert_eq!(next(&mut persistent).await, node_event(EventType::NodeDataChanged, "/wa"));
        assert_eq!(next(&mut recursive).await, node_event(EventType::NodeDataChanged, "/wa"));
    }
    assert_eq!(next(&mut recursive).await, node_event(EventType::NodeCreated, "/wa/n/deep"));

    // checkWatches and removeWatches; removing tells the watcher; nothing left is NoWatcher.
    assert_eq!(zk.check_watches("/wa", WatcherType::Any).await, Ok(()));
    zk.remove_watches("/wa", WatcherType::Any, false).await.unwrap();
    assert_eq!(next(&mut persistent).await, node_event(EventType::PersistentWatchRemoved, "/wa"));
    assert_eq!(next(&mut recursive).await, node_event(EventType::PersistentWatchRemoved, "/wa"));
    assert_eq!(zk.remove_watches("/wa", WatcherType::Any, false).await, Err(Error::NoWatcher));
    assert_eq!(zk.check_watches("/wa", WatcherType::Data).await, Err(Error::NoWatcher));
    let (c, mut removed) = Watcher::new();
    zk.get_children_watch("/wa", &c).await.unwrap();
    zk.remove_watcher("/wa", &c, WatcherType::Children, false).await.unwrap();
    assert_eq!(next(&mut removed).await, node_event(EventType::ChildWatchRemoved, "/wa"));

    // Closing tells every remaining watcher and ends its stream.
    let (last, mut last_events) = Watcher::new();
    zk.exists_watch("/wa/none", &last).await.unwrap();
    drop(last);
    zk.close().await.unwrap();
    let closed = WatchedEvent { event_type: EventType::None, state: KeeperState::Closed, path: None };
    assert_eq!(next(&mut last_events).await, closed);
    assert_eq!(last_events.next().await, None);
}

async fn pipelined_requests_are_matched_in_order(address: &str) {
    let zk = Client::connect(address).await.unwrap();
    zk.create("/pipe", None, &open(), CreateMode::Persistent).await.unwrap();
    // Many requests in flight at once from many tasks; every reply must reach its caller.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let zk = zk.clone();
        tasks.spawn(async move {
            let path = format!("/pipe/n{i}");
            zk.create(&path, Some(i.to_string().as_bytes()), &acls::open_unsafe(), CreateMode::Persistent).await?;
            let (data, _) = zk.get_data(&path).await?;
            assert_eq!(data, Some(i.to_string().into_bytes()));
            zk.set_data(&path, Some(b"done"), Some(0)).await.map(|stat| stat.version)
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap(), Ok(1));
    }
    assert_eq!(zk.get_all_children_number("/pipe").await, Ok(200));
}

async fn close_ends_the_session(address: &str) {
    let zk = Client::connect(address).await.unwrap();
    let observer = Client::connect(address).await.unwrap();
    zk.create("/gone", None, &open(), CreateMode::Ephemeral).await.unwrap();
    let mut changes = zk.session_changes();
    zk.close().await.unwrap();
    assert_eq!(changes.borrow_and_update().state, SessionState::Closed);
    assert_eq!(observer.exists("/gone").await, Ok(None));
    assert_eq!(zk.exists("/").await, Err(Error::Closed));
    zk.close().await.unwrap();
}

async fn next(events: &mut client::WatchStream) -> WatchedEvent {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("no watch event within 10 s")
        .expect("the watch stream ended")
}

fn node_event(event_type: EventType, path: &str) -> WatchedEvent {
    WatchedEvent { event_type, state: KeeperState::SyncConnected, path: Some(path.into()) }
}
