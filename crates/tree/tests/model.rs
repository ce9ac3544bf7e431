//! The tree against a plain model of ZooKeeper's rules (a map from path to data, ACL and
//! Stat fields, updated field by field): after every transaction of a random sequence, every
//! node's Stat, data and ACL, the children lists, the ephemerals and the data size agree.
//! The tree packs its nodes; the model keeps everything unpacked and obvious.

use proptest::prelude::*;
use proto::{perms, Acl, Stat};
use std::collections::BTreeMap;
use tree::{acl, owner, path, DataTree, Txn, TxnOp};

#[derive(Debug, Clone)]
struct ModelNode {
    data: Option<Vec<u8>>,
    acl: Vec<Acl>,
    stat: Stat,
    child_creates: i32,
    owner: i64,
}

#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, ModelNode>,
}

impl Model {
    fn of(tree: &DataTree) -> Model {
        let nodes = tree
            .iter()
            .map(|(p, n)| {
                let node = ModelNode {
                    data: n.data().map(<[u8]>::to_vec),
                    acl: n.acl().to_vec(),
                    stat: n.stat(),
                    child_creates: n.meta().child_creates,
                    owner: n.meta().ephemeral_owner,
                };
                (p.to_owned(), node)
            })
            .collect();
        Model { nodes }
    }

    fn parent_mut(&mut self, p: &str) -> &mut ModelNode {
        self.nodes.get_mut(path::parent(p)).expect("transactions fit the tree")
    }

    fn apply(&mut self, txn: &Txn) {
        let (zxid, time) = (txn.zxid, txn.time_ms);
        match &txn.op {
            TxnOp::Create { path: p, data, acl, ephemeral_owner } => {
                let parent = self.parent_mut(p);
                parent.child_creates += 1;
                parent.stat.num_children += 1;
                parent.stat.cversion = 2 * parent.child_creates - parent.stat.num_children;
                parent.stat.pzxid = zxid;
                let stat = Stat {
                    czxid: zxid,
                    mzxid: zxid,
                    pzxid: zxid,
                    ctime: time,
                    mtime: time,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: owner::session(*ephemeral_owner).unwrap_or(0),
                    data_length: data.as_ref().map_or(0, Vec::len) as i32,
                    num_children: 0,
                };
                let node =
                    ModelNode { data: data.clone(), acl: acl.clone(), stat, child_creates: 0, owner: *ephemeral_owner };
                self.nodes.insert(p.clone(), node);
            }
            TxnOp::Delete { path: p } => {
                self.nodes.remove(p);
                let parent = self.parent_mut(p);
                parent.stat.num_children -= 1;
                parent.stat.cversion = 2 * parent.child_creates - parent.stat.num_children;
                parent.stat.pzxid = zxid;
            }
            TxnOp::SetData { path: p, data, version } => {
                let node = self.nodes.get_mut(p).unwrap();
                node.data = data.clone();
                node.stat.data_length = data.as_ref().map_or(0, Vec::len) as i32;
                (node.stat.version, node.stat.mzxid, node.stat.mtime) = (*version, zxid, time);
            }
            TxnOp::SetAcl { path: p, acl, aversion } => {
                let node = self.nodes.get_mut(p).unwrap();
                (node.acl, node.stat.aversion) = (acl.clone(), *aversion);
            }
            _ => {}
        }
    }

    fn children(&self, p: &str) -> Vec<&str> {
        self.nodes.keys().filter(|k| k.as_str() != path::ROOT && path::parent(k) == p).map(|k| path::name(k)).collect()
    }
}

fn acl_of(pick: u16) -> Vec<Acl> {
    match pick % 3 {
        0 => acl::open_acl(),
        1 => vec![Acl { perms: perms::READ, id: acl::id("world", "anyone") }],
        _ => vec![Acl { perms: perms::ALL, id: acl::id("digest", &format!("u{}:h", pick % 5)) }],
    }
}

/// A transaction that fits the model's tree, chosen by `pick`.
fn next_op(model: &Model, pick: (u8, u16, u16)) -> TxnOp {
    let paths: Vec<&String> = model.nodes.keys().filter(|p| !p.starts_with("/zookeeper")).collect();
    let at = |i: u16| paths[i as usize % paths.len()].clone();
    let data = |i: u16| match i % 4 {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(vec![i as u8; (i % 300) as usize]),
    };
    match pick.0 % 5 {
        0 | 1 => {
            let p = path::join(&at(pick.1), &format!("n{}{}", pick.2 % 7, ["", "-", "."][pick.2 as usize / 7 % 3]));
            if model.nodes.contains_key(&p) {
                return TxnOp::Check { path: p };
            }
            let owner = match pick.2 % 5 {
                0 => 0x1234,
                1 => owner::CONTAINER,
                _ => 0,
            };
            TxnOp::Create { path: p, data: data(pick.2), acl: acl_of(pick.2), ephemeral_owner: owner }
        }
        2 => {
            let p = at(pick.1);
            match model.nodes.get(&p) {
                Some(n) if n.stat.num_children == 0 && p != path::ROOT => TxnOp::Delete { path: p },
                _ => TxnOp::Check { path: p },
            }
        }
        3 => {
            let p = at(pick.1);
            let version = model.nodes[&p].stat.version + 1;
            TxnOp::SetData { path: p, data: data(pick.2), version }
        }
        _ => {
            let p = at(pick.1);
            let aversion = model.nodes[&p].stat.aversion + 1;
            TxnOp::SetAcl { path: p, acl: acl_of(pick.2), aversion }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_tree_keeps_zookeepers_rules(picks in prop::collection::vec(any::<(u8, u16, u16)>(), 1..120)) {
        let mut tree = DataTree::new();
        let mut model = Model::of(&tree);
        for (i, pick) in picks.into_iter().enumerate() {
            let zxid = i as i64 + 1;
            let txn = Txn { zxid, time_ms: 1_000 + zxid * 7, session_id: 0, cxid: 0, op: next_op(&model, pick) };
            tree.apply(&txn);
            model.apply(&txn);

            prop_assert_eq!(tree.node_count(), model.nodes.len());
            for (p, want) in &model.nodes {
                let node = tree.node(p).unwrap();
                prop_assert_eq!(&node.stat(), &want.stat, "Stat of {}", p);
                prop_assert_eq!(node.data(), want.data.as_deref(), "data of {}", p);
                prop_assert_eq!(&node.acl().to_vec(), &want.acl, "ACL of {}", p);
                prop_assert_eq!(node.meta().ephemeral_owner, want.owner);
                prop_assert_eq!(tree.children(p).unwrap(), model.children(p), "children of {}", p);
            }
            let size: usize = model.nodes.iter().map(|(p, n)| p.len() + n.data.as_ref().map_or(0, Vec::len)).sum();
            prop_assert_eq!(tree.approximate_data_size(), size as u64);
            let ephemerals: Vec<&str> = tree.ephemerals(0x1234).collect();
            let want: Vec<&str> = model.nodes.iter().filter(|(_, n)| n.owner == 0x1234).map(|(p, _)| p.as_str()).collect();
            prop_assert_eq!(ephemerals, want);
        }
    }
}
