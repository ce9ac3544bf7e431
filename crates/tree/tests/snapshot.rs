//! A snapshot taken a chunk at a time while transactions keep changing the tree holds
//! exactly the tree as it was when the snapshot began.

use proptest::prelude::*;
use tree::{owner, DataTree, Txn, TxnOp};

fn dump(tree: &DataTree) -> Vec<String> {
    tree.iter()
        .map(|(p, n)| format!("{p} {:?} {:?} {:?} {:?}", n.stat(), n.data(), n.acl(), n.meta().ephemeral_owner))
        .collect()
}

/// A transaction that fits the current tree, chosen by `pick`.
fn next_txn(tree: &DataTree, zxid: i64, pick: (u8, u16, u16)) -> Txn {
    let paths: Vec<String> = tree.iter().map(|(p, _)| p.to_owned()).filter(|p| !p.starts_with("/zookeeper")).collect();
    let at = |i: u16| paths[i as usize % paths.len()].clone();
    let op = match pick.0 % 4 {
        0 | 1 => {
            let parent = at(pick.1);
            // Names that end in '-' or '.' sort between a sibling and its children
            // ("/n1" < "/n1-" < "/n1/x"), which a loader must not trip over.
            let name = format!("n{}{}", pick.2 % 17, ["", "-", "."][pick.2 as usize / 17 % 3]);
            let path = if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") };
            let owner = if pick.2.is_multiple_of(7) { owner::CONTAINER } else { 0 };
            TxnOp::Create {
                path,
                data: Some(vec![pick.2 as u8; 3]),
                acl: tree::acl::open_acl(),
                ephemeral_owner: owner,
            }
        }
        2 => {
            let path = at(pick.1);
            match tree.node(&path) {
                Some(n) if n.meta().num_children == 0 && path != "/" => TxnOp::Delete { path },
                _ => TxnOp::Check { path },
            }
        }
        _ => {
            let path = at(pick.1);
            let version = tree.node(&path).map_or(0, |n| n.meta().version + 1);
            TxnOp::SetData { path, data: None, version }
        }
    };
    Txn { zxid, time_ms: 1000 + zxid, session_id: 0, cxid: 0, op }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chunked_snapshot_is_the_tree_at_its_zxid(
        before in prop::collection::vec(any::<(u8, u16, u16)>(), 0..60),
        during in prop::collection::vec((any::<(u8, u16, u16)>(), 1..4usize), 0..60),
    ) {
        let mut live = DataTree::new();
        let mut zxid = 0;
        for pick in before {
            zxid += 1;
            let txn = next_txn(&live, zxid, pick);
            live.apply(&txn);
        }
        let expected = dump(&live);
        live.begin_snapshot(zxid);
        let mut chunks = Vec::new();
        let mut done = false;
        for (pick, chunk_nodes) in during {
            zxid += 1;
            let txn = next_txn(&live, zxid, pick);
            live.apply(&txn);
            if !done {
                let (chunk, finished) = live.snapshot_chunk(chunk_nodes).unwrap();
                chunks.push(chunk);
                done = finished;
            }
        }
        while !done {
            let (chunk, finished) = live.snapshot_chunk(2).unwrap();
            chunks.push(chunk);
            done = finished;
        }
        prop_assert!(live.snapshot_in_progress().is_none());
        let loaded = DataTree::from_snapshot(chunks.iter().map(Vec::as_slice)).unwrap();
        prop_assert_eq!(dump(&loaded), expected);
    }
}

#[test]
fn damaged_chunks_are_errors_not_panics() {
    let mut tree = DataTree::new();
    tree.begin_snapshot(0);
    let (chunk, done) = tree.snapshot_chunk(100).unwrap();
    assert!(done);
    assert!(DataTree::from_snapshot([chunk.as_slice()]).is_ok());
    for cut in 0..chunk.len() {
        let _ = DataTree::from_snapshot([&chunk[..cut]]);
    }
    assert!(DataTree::from_snapshot([&chunk[..chunk.len() / 2]]).is_err());
}
