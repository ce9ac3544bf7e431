//! A three-server Warren ensemble driven by a third-party Rust client (the
//! `zookeeper-client` crate) through a connect string of all servers: the leader is killed
//! with SIGKILL under writes, a new leader serves, nothing acknowledged is lost, and the old
//! leader comes back as a follower with the same data.

mod common;

use common::{free_ports, Server};
use std::time::{Duration, Instant};
use zookeeper_client as zk;

fn mode(server: &Server) -> Option<String> {
    server.four_letter("srvr").lines().find_map(|l| l.strip_prefix("Mode: ").map(str::to_owned))
}

fn zxid(server: &Server) -> Option<String> {
    server.four_letter("srvr").lines().find_map(|l| l.strip_prefix("Zxid: ").map(str::to_owned))
}

/// Waits until the running members serve with exactly one leader; returns its index.
fn leader(members: &[Server], running: &[usize]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let modes: Vec<Option<String>> = running.iter().map(|&i| mode(&members[i])).collect();
        let leaders: Vec<usize> =
            running.iter().zip(&modes).filter(|(_, m)| m.as_deref() == Some("leader")).map(|(i, _)| *i).collect();
        if leaders.len() == 1 && modes.iter().all(|m| matches!(m.as_deref(), Some("leader" | "follower"))) {
            return leaders[0];
        }
        assert!(Instant::now() < deadline, "no single leader among {running:?}: {modes:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Creates `/e/n<i>`, retrying while the ensemble fails over; NodeExists means an earlier
/// attempt committed without its answer arriving.
async fn create(client: &zk::Client, i: usize) {
    let options = common::open();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.create(&format!("/e/n{i:04}"), format!("v{i}").as_bytes(), &options).await {
            Ok(_) | Err(zk::Error::NodeExists) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "write {i} never went through: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_dies_under_writes_and_nothing_acknowledged_is_lost() {
    let ports: [u16; 6] = free_ports();
    let lines: String =
        (0..3).map(|i| format!("server.{}=127.0.0.1:{}:{}\n", i + 1, ports[2 * i], ports[2 * i + 1])).collect();
    let mut members: Vec<Server> = (0..3).map(|i| Server::launch_member(i as u64 + 1, &lines)).collect();
    members.iter().for_each(Server::wait_ready);
    let old = leader(&members, &[0, 1, 2]);

    let hosts = members.iter().map(Server::address).collect::<Vec<_>>().join(",");
    let client = common::connect_to(&hosts).await;
    client.create("/e", b"", &common::open()).await.unwrap();
    for i in 0..50 {
        create(&client, i).await;
    }
    members[old].kill();
    for i in 50..100 {
        create(&client, i).await;
    }
    let survivors: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let new = leader(&members, &survivors);
    assert_ne!(new, old, "a surviving server leads");

    // Every acknowledged write, read through each survivor directly.
    let want: Vec<String> = (0..100).map(|i| format!("n{i:04}")).collect();
    for &i in &survivors {
        let direct = zk::Client::connect(&members[i].address()).await.unwrap();
        direct.sync("/e").await.unwrap();
        let mut children = direct.list_children("/e").await.unwrap();
        children.sort();
        assert_eq!(children, want, "server {}", i + 1);
        assert_eq!(direct.get_data("/e/n0077").await.unwrap().0, b"v77");
    }

    // The old leader returns as a follower and catches up.
    members[old].restart();
    assert_eq!(leader(&members, &[0, 1, 2]), new, "the established leader stays");
    let deadline = Instant::now() + Duration::from_secs(30);
    while zxid(&members[old]) != zxid(&members[new]) {
        assert!(Instant::now() < deadline, "the old leader did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let direct = zk::Client::connect(&members[old].address()).await.unwrap();
    let mut children = direct.list_children("/e").await.unwrap();
    children.sort();
    assert_eq!(children, want);
}
