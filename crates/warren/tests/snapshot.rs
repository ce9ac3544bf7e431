//! Snapshots with the real binary: a restart loads the newest snapshot and replays the log
//! after it; a damaged snapshot is set aside as `.broken` and the previous one is used;
//! nothing is lost either way.

mod common;

use common::Server;
use zookeeper_client as zk;

async fn fill(server: &Server, count: usize) -> zk::Client {
    let client = common::connect(server).await;
    let open = common::open();
    for i in 0..count {
        client.create(&format!("/n{i:05}"), format!("v{i}").as_bytes(), &open).await.unwrap();
    }
    client
}

async fn check(server: &Server, count: usize) {
    let client = common::connect(server).await;
    let (children, _) = client.get_children("/").await.unwrap();
    assert_eq!(children.len(), count + 1, "every node is back (and /zookeeper)");
    for i in (0..count).step_by(97) {
        let (data, _) = client.get_data(&format!("/n{i:05}")).await.unwrap();
        assert_eq!(data, format!("v{i}").into_bytes());
    }
}

/// Finished snapshots (and `.broken` ones); one still being written is `.tmp` until done.
fn snapshots(server: &Server) -> Vec<String> {
    let dir = server.dir.path().join("data/warren/snapshot");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_from_snapshot_and_log_tail() {
    let mut server = Server::start("snapCount=200");
    fill(&server, 1000).await;
    let taken = snapshots(&server);
    assert!(taken.len() >= 3, "snapshots were taken: {taken:?}");
    server.restart();
    check(&server, 1000).await;
    assert!(server.log().contains("loaded snapshot"), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_snapshot_is_set_aside_and_the_previous_one_used() {
    let mut server = Server::start("snapCount=200");
    fill(&server, 600).await;
    server.kill();
    let newest = snapshots(&server).into_iter().rfind(|n| !n.ends_with(".broken")).unwrap();
    let path = server.dir.path().join("data/warren/snapshot").join(&newest);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    server.restart();
    assert!(snapshots(&server).contains(&format!("{newest}.broken")), "{:?}", snapshots(&server));
    assert!(server.log().contains("damaged snapshot set aside"), "{}", server.log());
    check(&server, 600).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zstd_compressed_snapshots_restore() {
    let mut server = Server::start("snapCount=200\nsnapshot.compression.method=zstd");
    fill(&server, 600).await;
    let dir = server.dir.path().join("data/warren/snapshot");
    let newest = snapshots(&server).into_iter().next_back().unwrap();
    let header = std::fs::read(dir.join(&newest)).unwrap();
    assert_eq!(header[12..16], [0, 0, 0, 1], "the zstd flag is set");
    server.restart();
    check(&server, 600).await;
}

/// "/svc/web-api" sorts between "/svc/web" and "/svc/web/x" ('-' comes before '/'): once
/// a snapshot loader lost "/svc/web" there and the server could not restart.
#[tokio::test(flavor = "multi_thread")]
async fn names_that_sort_inside_a_sibling_subtree_survive_a_restart() {
    let mut server = Server::start("snapCount=200");
    let client = common::connect(&server).await;
    let open = common::open();
    for p in ["/svc", "/svc/web", "/svc/web-api", "/svc/web.old", "/svc/web/x"] {
        client.create(p, b"", &open).await.unwrap();
    }
    for i in 0..600 {
        client.create(&format!("/svc/web/n{i:03}"), b"", &open).await.unwrap();
    }
    assert!(!snapshots(&server).is_empty(), "a snapshot was taken");
    server.restart();
    assert!(server.log().contains("loaded snapshot"), "{}", server.log());
    let client = common::connect(&server).await;
    let (mut children, _) = client.get_children("/svc").await.unwrap();
    children.sort();
    assert_eq!(children, ["web", "web-api", "web.old"]);
    assert_eq!(client.get_children("/svc/web").await.unwrap().0.len(), 601);
}
