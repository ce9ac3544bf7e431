//! Prepare: validate a write against the tree *plus* the writes already prepared but not
//! yet applied, in ZooKeeper 3.8's order (which decides which error wins), and turn it into
//! a transaction carrying its result. ZooKeeper's `PrepRequestProcessor`.

use proto::{perms, Acl, CreateMode, ErrorCode, OpCode, Request};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use tree::acl::{self, AuthIds};
use tree::{owner, path, DataTree, TxnOp};

/// What prepare needs to know of a node.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub version: i32,
    pub aversion: i32,
    pub child_creates: i32,
    pub num_children: i32,
    pub ephemeral_owner: i64,
    pub acl: Arc<[Acl]>,
}

impl NodeView {
    fn of(node: tree::NodeRef<'_>) -> NodeView {
        let meta = node.meta();
        NodeView {
            version: meta.version,
            aversion: meta.aversion,
            child_creates: meta.child_creates,
            num_children: meta.num_children as i32,
            ephemeral_owner: meta.ephemeral_owner,
            acl: node.acl().clone(),
        }
    }
}

/// Nodes as prepared writes will leave them, until those writes are applied
/// (ZooKeeper's outstanding changes). `None` means deleted.
#[derive(Debug, Default)]
pub struct Pending {
    changes: BTreeMap<String, (i64, Option<NodeView>)>,
    /// Each change's zxid and path in zxid order, so that retiring looks only at the
    /// changes it retires rather than at every pending one.
    order: VecDeque<(i64, String)>,
}

impl Pending {
    /// Forgets changes that the tree now reflects.
    pub fn retire(&mut self, applied_zxid: i64) {
        while self.order.front().is_some_and(|(zxid, _)| *zxid <= applied_zxid) {
            let Some((zxid, p)) = self.order.pop_front() else { break };
            // A later write to the same path keeps its own change.
            if self.changes.get(&p).is_some_and(|(latest, _)| *latest == zxid) {
                self.changes.remove(&p);
            }
        }
    }

    pub fn is_pending(&self, p: &str) -> bool {
        self.changes.contains_key(p)
    }
}

/// One write being prepared: reads go through its own changes, then the pending ones,
/// then the tree; its changes join the pending ones only if it succeeds.
pub struct Prep<'a> {
    pub tree: &'a DataTree,
    pub pending: &'a mut Pending,
    pub auth: &'a AuthIds,
    pub session_id: i64,
    pub ttl_enabled: bool,
    local: BTreeMap<String, Option<NodeView>>,
}

impl<'a> Prep<'a> {
    pub fn new(
        tree: &'a DataTree,
        pending: &'a mut Pending,
        auth: &'a AuthIds,
        session_id: i64,
        ttl_enabled: bool,
    ) -> Self {
        Prep { tree, pending, auth, session_id, ttl_enabled, local: BTreeMap::new() }
    }

    pub fn node(&self, p: &str) -> Option<NodeView> {
        if let Some(v) = self.local.get(p) {
            return v.clone();
        }
        if let Some((_, v)) = self.pending.changes.get(p) {
            return v.clone();
        }
        self.tree.node(p).map(NodeView::of)
    }

    fn set(&mut self, p: &str, v: Option<NodeView>) {
        self.local.insert(p.to_owned(), v);
    }

    /// Makes this write's changes pending under `zxid`.
    pub fn commit(self, zxid: i64) {
        debug_assert!(self.pending.order.back().is_none_or(|(last, _)| *last < zxid), "zxids are prepared in order");
        for (p, v) in self.local {
            self.pending.order.push_back((zxid, p.clone()));
            self.pending.changes.insert(p, (zxid, v));
        }
    }

    fn allows(&self, node: &NodeView, perm: i32) -> bool {
        acl::allows(&node.acl, perm, self.auth)
    }

    /// Prepares a whole write request. Failures become an `Error` transaction (or, for
    /// multi, a `Multi` of error results), which still takes a zxid.
    pub fn request(&mut self, request: &Request) -> TxnOp {
        match request {
            // A multi may hold only writes; ZooKeeper refuses it as a failed transaction.
            Request::Multi(ops) if ops.iter().any(|op| !op.is_write()) => {
                TxnOp::Error { err: ErrorCode::MarshallingError }
            }
            Request::Multi(ops) => {
                let mut txns = Vec::with_capacity(ops.len());
                for (k, op) in ops.iter().enumerate() {
                    match self.op(op) {
                        Ok(txn) => txns.push(txn),
                        Err(err) => {
                            self.local.clear();
                            let code = |i: usize| match i.cmp(&k) {
                                std::cmp::Ordering::Less => ErrorCode::Ok,
                                std::cmp::Ordering::Equal => err,
                                std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                            };
                            return TxnOp::Multi((0..ops.len()).map(|i| TxnOp::Error { err: code(i) }).collect());
                        }
                    }
                }
                TxnOp::Multi(txns)
            }
            // Reconfiguration is off, as in ZooKeeper by default; the refusal takes a zxid there too.
            Request::Reconfig(_) => TxnOp::Error { err: ErrorCode::ReconfigDisabled },
            _ => self.op(request).unwrap_or_else(|err| TxnOp::Error { err }),
        }
    }

    fn op(&mut self, request: &Request) -> Result<TxnOp, ErrorCode> {
        match request {
            Request::Create(r) | Request::Create2(r) => {
                self.create(request.opcode(), &r.path, &r.data, &r.acl, r.flags, -1)
            }
            Request::CreateContainer(r) => self.create(OpCode::CreateContainer, &r.path, &r.data, &r.acl, r.flags, -1),
            Request::CreateTtl(r) => self.create(OpCode::CreateTtl, &r.path, &r.data, &r.acl, r.flags, r.ttl),
            Request::Delete(r) => self.delete(&r.path, r.version),
            Request::SetData(r) => self.set_data(&r.path, &r.data, r.version),
            Request::SetAcl(r) => self.set_acl(&r.path, &r.acl, r.version),
            Request::Check(r) => self.check(&r.path, r.version),
            _ => Err(ErrorCode::MarshallingError),
        }
    }

    fn create(
        &mut self,
        op: OpCode,
        p: &str,
        data: &Option<Vec<u8>>,
        acl: &[Acl],
        flags: i32,
        ttl: i64,
    ) -> Result<TxnOp, ErrorCode> {
        let mode = CreateMode::from_flags(flags).ok_or(ErrorCode::BadArguments)?;
        // The opcode and the flag must agree (ZooKeeper 3.8 crashes on createTTL with a non-TTL flag).
        let paired = match op {
            OpCode::CreateContainer => mode == CreateMode::Container,
            OpCode::CreateTtl => mode.is_ttl(),
            _ => true,
        };
        if !paired {
            return Err(ErrorCode::BadArguments);
        }
        if mode.is_ttl() {
            if !self.ttl_enabled {
                return Err(ErrorCode::Unimplemented);
            }
            if !(1..=owner::TTL_MAX_MS).contains(&ttl) {
                return Err(ErrorCode::BadArguments);
            }
        }
        if !path::passes_cheap_check(p) {
            return Err(ErrorCode::BadArguments);
        }
        let acl = acl::fix_up(acl, self.auth)?;
        let parent_path = path::parent(p);
        let mut parent = self.node(parent_path).ok_or(ErrorCode::NoNode)?;
        if !self.allows(&parent, perms::CREATE) {
            return Err(ErrorCode::NoAuth);
        }
        let final_path = if mode.is_sequential() { format!("{p}{:010}", parent.child_creates) } else { p.to_owned() };
        if !path::is_valid(&final_path) {
            return Err(ErrorCode::BadArguments);
        }
        if self.node(&final_path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if owner::session(parent.ephemeral_owner).is_some() {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let ephemeral_owner = match mode {
            CreateMode::Ephemeral | CreateMode::EphemeralSequential => self.session_id,
            CreateMode::Container => owner::CONTAINER,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl => owner::ttl(ttl),
            CreateMode::Persistent | CreateMode::PersistentSequential => 0,
        };
        parent.child_creates = parent.child_creates.wrapping_add(1);
        parent.num_children += 1;
        self.set(parent_path, Some(parent));
        let view = NodeView {
            version: 0,
            aversion: 0,
            child_creates: 0,
            num_children: 0,
            ephemeral_owner,
            acl: acl.clone().into(),
        };
        self.set(&final_path, Some(view));
        Ok(TxnOp::Create { path: final_path, data: data.clone(), acl, ephemeral_owner })
    }

    fn delete(&mut self, p: &str, version: i32) -> Result<TxnOp, ErrorCode> {
        if !path::passes_cheap_check(p) || path::is_reserved(p) {
            return Err(ErrorCode::BadArguments);
        }
        let parent = self.node(path::parent(p)).ok_or(ErrorCode::NoNode)?;
        if !self.allows(&parent, perms::DELETE) {
            return Err(ErrorCode::NoAuth);
        }
        let node = self.node(p).ok_or(ErrorCode::NoNode)?;
        if version != -1 && version != node.version {
            return Err(ErrorCode::BadVersion);
        }
        if node.num_children > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove(p);
        Ok(TxnOp::Delete { path: p.to_owned() })
    }

    /// Records the deletion of a childless node in this write's view.
    pub fn remove(&mut self, p: &str) {
        let parent_path = path::parent(p);
        if let Some(mut parent) = self.node(parent_path) {
            parent.num_children -= 1;
            self.set(parent_path, Some(parent));
        }
        self.set(p, None);
    }

    fn existing(&self, p: &str, perm: i32) -> Result<NodeView, ErrorCode> {
        if !path::is_valid(p) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.node(p).ok_or(ErrorCode::NoNode)?;
        if !self.allows(&node, perm) {
            return Err(ErrorCode::NoAuth);
        }
        Ok(node)
    }

    fn set_data(&mut self, p: &str, data: &Option<Vec<u8>>, version: i32) -> Result<TxnOp, ErrorCode> {
        let mut node = self.existing(p, perms::WRITE)?;
        if version != -1 && version != node.version {
            return Err(ErrorCode::BadVersion);
        }
        node.version = node.version.wrapping_add(1);
        let version = node.version;
        self.set(p, Some(node));
        Ok(TxnOp::SetData { path: p.to_owned(), data: data.clone(), version })
    }

    fn set_acl(&mut self, p: &str, acl: &[Acl], version: i32) -> Result<TxnOp, ErrorCode> {
        if !path::is_valid(p) {
            return Err(ErrorCode::BadArguments);
        }
        let acl = acl::fix_up(acl, self.auth)?;
        let mut node = self.existing(p, perms::ADMIN)?;
        if version != -1 && version != node.aversion {
            return Err(ErrorCode::BadVersion);
        }
        node.aversion = node.aversion.wrapping_add(1);
        node.acl = acl.clone().into();
        let aversion = node.aversion;
        self.set(p, Some(node));
        Ok(TxnOp::SetAcl { path: p.to_owned(), acl, aversion })
    }

    fn check(&mut self, p: &str, version: i32) -> Result<TxnOp, ErrorCode> {
        let node = self.existing(p, perms::READ)?;
        if version != -1 && version != node.version {
            return Err(ErrorCode::BadVersion);
        }
        Ok(TxnOp::Check { path: p.to_owned() })
    }

    /// The ephemerals a session owns once every prepared write is applied.
    pub fn ephemerals_of(&self, session_id: i64) -> Vec<String> {
        let mut paths: std::collections::BTreeSet<String> =
            self.tree.ephemerals(session_id).map(str::to_owned).collect();
        paths.extend(self.pending.changes.keys().cloned());
        paths.retain(|p| self.node(p).is_some_and(|n| n.ephemeral_owner == session_id));
        paths.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::SetDataRequest;

    #[test]
    fn a_change_retires_when_its_own_write_is_applied_not_an_earlier_one() {
        let mut tree = DataTree::new();
        for (zxid, p) in [(1, "/a"), (2, "/b")] {
            let op = TxnOp::Create { path: p.into(), data: None, acl: acl::open_acl(), ephemeral_owner: 0 };
            tree.apply(&tree::Txn { zxid, time_ms: 0, session_id: 0, cxid: 0, op });
        }
        let auth = AuthIds::default();
        let mut pending = Pending::default();
        for (zxid, p) in [(3, "/a"), (4, "/b"), (5, "/a")] {
            let mut prep = Prep::new(&tree, &mut pending, &auth, 1, false);
            let set = Request::SetData(SetDataRequest { path: p.into(), data: None, version: -1 });
            assert!(matches!(prep.request(&set), TxnOp::SetData { .. }));
            prep.commit(zxid);
        }
        let version =
            |pending: &mut Pending, p: &str| Prep::new(&tree, pending, &auth, 1, false).node(p).unwrap().version;
        assert_eq!((version(&mut pending, "/a"), version(&mut pending, "/b")), (2, 1));
        pending.retire(3);
        assert!(pending.is_pending("/a"), "the write at 5 is not applied yet");
        assert_eq!(version(&mut pending, "/a"), 2);
        pending.retire(4);
        assert!(!pending.is_pending("/b") && pending.is_pending("/a"));
        pending.retire(5);
        assert!(!pending.is_pending("/a"));
        assert!(pending.order.is_empty());
    }
}
