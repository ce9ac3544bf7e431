//! Warren driven by a third-party Rust client, the `zookeeper-client` crate (kezhuw),
//! against the real binary: operations, node kinds, watches, multi, ACLs and a lock recipe.

mod common;

use common::{connect, open, Server};
use std::time::Duration;
use zookeeper_client as zk;

#[tokio::test(flavor = "multi_thread")]
async fn data_operations_and_one_shot_watches() {
    let server = Server::start("");
    let client = connect(&server).await;

    let (_, exists_watch) = client.check_and_watch_stat("/app").await.unwrap();
    let (stat, _) = client.create("/app", b"v1", &open()).await.unwrap();
    assert_eq!(stat.version, 0);
    assert_eq!(stat.data_length, 2);
    let event = exists_watch.changed().await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeCreated, "/app"));

    let (data, stat2) = client.get_data("/app").await.unwrap();
    assert_eq!((data.as_slice(), stat2), (&b"v1"[..], stat));
    let stat3 = client.set_data("/app", b"v2", Some(0)).await.unwrap();
    assert_eq!(stat3.version, 1);
    assert!(stat3.mzxid > stat3.czxid);
    assert!(matches!(client.set_data("/app", b"x", Some(0)).await, Err(zk::Error::BadVersion)));

    let (_, _, child_watch) = client.get_and_watch_children("/app").await.unwrap();
    let seq = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let (_, first) = client.create("/app/job-", b"", &seq).await.unwrap();
    let (_, second) = client.create("/app/job-", b"", &seq).await.unwrap();
    assert_eq!(second.into_i64(), first.into_i64() + 1);
    let event = child_watch.changed().await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeChildrenChanged, "/app"));

    let (children, stat) = client.get_children("/app").await.unwrap();
    assert_eq!(children.len(), 2);
    assert_eq!((stat.num_children, stat.cversion), (2, 2));
    assert_eq!(client.count_descendants_number("/").await.unwrap(), 6);
    assert!(matches!(client.delete("/app", None).await, Err(zk::Error::NotEmpty)));
    assert!(matches!(client.get_data("/missing").await, Err(zk::Error::NoNode)));
    client.sync("/app").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_is_atomic() {
    let server = Server::start("");
    let client = connect(&server).await;
    client.create("/m", b"", &open()).await.unwrap();

    let mut writer = client.new_multi_writer();
    writer.add_create("/m/a", b"a", &open()).unwrap();
    writer.add_set_data("/m", b"changed", Some(0)).unwrap();
    writer.add_check_version("/m", 1).unwrap();
    writer.commit().await.unwrap();
    assert_eq!(client.get_data("/m").await.unwrap().0, b"changed");

    let mut failing = client.new_multi_writer();
    failing.add_create("/m/b", b"", &open()).unwrap();
    failing.add_delete("/m/a", Some(7)).unwrap();
    let err = failing.commit().await.unwrap_err();
    assert!(matches!(err, zk::MultiWriteError::OperationFailed { index: 1, source: zk::Error::BadVersion }), "{err:?}");
    assert!(client.check_stat("/m/b").await.unwrap().is_none(), "a failed multi leaves nothing behind");

    let mut reader = client.new_multi_reader();
    reader.add_get_data("/m/a").unwrap();
    reader.add_get_children("/nope").unwrap();
    let results = reader.commit().await.unwrap();
    assert!(matches!(&results[0], zk::MultiReadResult::Data { data, .. } if data == b"a"));
    assert!(matches!(&results[1], zk::MultiReadResult::Error { err: zk::Error::NoNode }));
}

#[tokio::test(flavor = "multi_thread")]
async fn ephemerals_go_with_their_session_and_persistent_watches_stay() {
    let server = Server::start("");
    let watcher_client = connect(&server).await;
    watcher_client.create("/e", b"", &open()).await.unwrap();
    let mut recursive = watcher_client.watch("/e", zk::AddWatchMode::PersistentRecursive).await.unwrap();

    let owner = connect(&server).await;
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    let (stat, _) = owner.create("/e/lease", b"", &eph).await.unwrap();
    assert_eq!(stat.ephemeral_owner, owner.session_id().0);
    assert_eq!(owner.list_ephemerals("/").await.unwrap(), vec!["/e/lease".to_owned()]);
    assert!(matches!(owner.create("/e/lease/child", b"", &open()).await, Err(zk::Error::NoChildrenForEphemerals)));

    let event = recursive.changed().await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeCreated, "/e/lease"));
    drop(owner);
    let event = recursive.changed().await;
    assert_eq!((event.event_type, event.path.as_str()), (zk::EventType::NodeDeleted, "/e/lease"));
    assert!(watcher_client.check_stat("/e/lease").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_and_ttl_nodes_are_reaped() {
    let server = Server::start("");
    let client = connect(&server).await;
    let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
    client.create("/c", b"", &container).await.unwrap();
    client.create("/never-used", b"", &container).await.unwrap();
    client.create("/c/x", b"", &open()).await.unwrap();
    client.delete("/c/x", None).await.unwrap();
    let ttl = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()).with_ttl(Duration::from_millis(300));
    client.create("/ttl", b"", &ttl).await.unwrap();
    let (_, stat) = client.get_data("/ttl").await.unwrap();
    assert_eq!(stat.ephemeral_owner, 0, "the TTL mark is not shown to clients");

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while client.check_stat("/c").await.unwrap().is_some() || client.check_stat("/ttl").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "container or TTL node not removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(client.check_stat("/never-used").await.unwrap().is_some(), "a never-used container stays");
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_acls_and_auth() {
    let server = Server::start("");
    let alice = connect(&server).await;
    alice.auth("digest".into(), b"alice:secret".to_vec()).await.unwrap();
    let creator_only = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    alice.create("/private", b"s", &creator_only).await.unwrap();
    let (acl, _) = alice.get_acl("/private").await.unwrap();
    assert_eq!(acl[0].scheme(), "digest");
    assert_eq!(acl[0].id(), "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");

    let stranger = connect(&server).await;
    assert!(matches!(stranger.get_data("/private").await, Err(zk::Error::NoAuth)));
    assert!(matches!(stranger.create("/nope", b"", &creator_only).await, Err(zk::Error::InvalidAcl)));
    let users = alice.list_auth_users().await.unwrap();
    assert!(users.iter().any(|u| u.scheme() == "digest" && u.user() == "alice"), "{users:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_recipe_excludes() {
    let server = Server::start("");
    let a = connect(&server).await;
    let b = connect(&server).await;
    let options = || {
        zk::LockOptions::new(zk::Acls::anyone_all())
            .with_ancestor_options(zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()))
            .unwrap()
    };
    let held = a.lock(zk::LockPrefix::new_curator("/locks/job", "lock-").unwrap(), b"", options()).await.unwrap();
    let contender = tokio::spawn(async move {
        let lock = b.lock(zk::LockPrefix::new_curator("/locks/job", "lock-").unwrap(), b"", options()).await.unwrap();
        lock.lock_path().to_owned()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!contender.is_finished(), "the second client waits while the first holds the lock");
    let first_path = held.lock_path().to_owned();
    drop(held);
    let second_path = tokio::time::timeout(Duration::from_secs(5), contender).await.unwrap().unwrap();
    assert_ne!(first_path, second_path);
}
