//! Reads and connection-level requests, answered from the applied tree once the
//! connection's earlier writes are applied (ZooKeeper's `FinalRequestProcessor` for them).

use crate::{ConnId, Output, Replica};
use proto::{
    perms, AddWatchMode, ClientInfo, DecodeRequestError, ErrorCode, EventType, MultiResult, ReplyHeader, Request,
    Response, WatcherType,
};
use tree::acl;
use tree::WatchKind;

impl Replica {
    pub(crate) fn read(&mut self, conn: ConnId, xid: i32, request: Result<Request, DecodeRequestError>) {
        let zxid = self.applied_zxid;
        let session = self.conn_session(conn).and_then(|id| self.sessions.get(id));
        if session.is_none_or(|s| s.closing) {
            return self.reply(conn, xid, zxid, Err(ErrorCode::SessionExpired));
        }
        match request {
            Err(DecodeRequestError::UnknownOpCode(opcode)) => {
                tracing::debug!(conn = conn.0, opcode, "unknown opcode: closing the connection");
                self.reply(conn, xid, -1, Err(ErrorCode::Unimplemented));
                self.close(conn);
            }
            Err(DecodeRequestError::Malformed { .. }) => self.reply(conn, xid, zxid, Err(ErrorCode::MarshallingError)),
            // A multiRead holding writes is refused, as in 3.8: with an empty result list when
            // it holds only writes, without a body when it mixes reads and writes.
            Ok(Request::MultiRead(ops)) if ops.iter().any(Request::is_write) => {
                let header = ReplyHeader { xid, zxid, err: ErrorCode::MarshallingError as i32 };
                let body = ops.iter().all(Request::is_write).then_some(Response::Multi(Vec::new()));
                self.out.push(Output::Reply { conn, header, body });
            }
            Ok(request) => {
                let result = self.execute(conn, &request);
                self.reply(conn, xid, zxid, result);
            }
        }
    }

    fn auth_of(&self, conn: ConnId) -> acl::AuthIds {
        self.conns.get(&conn).map(|c| c.auth.clone()).unwrap_or_default()
    }

    fn readable(&self, conn: ConnId, p: &str, perm: i32) -> Result<tree::NodeRef<'_>, ErrorCode> {
        let node = self.tree.node(p).ok_or(ErrorCode::NoNode)?;
        let allowed = self.conns.get(&conn).is_some_and(|c| acl::allows(node.acl(), perm, &c.auth));
        if allowed {
            Ok(node)
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    fn notify_now(&mut self, conn: ConnId, event: EventType, path: &str) {
        self.out.push(Output::Notify { conn, event, path: path.to_owned() });
    }

    fn execute(&mut self, conn: ConnId, request: &Request) -> Result<Response, ErrorCode> {
        match request {
            Request::Exists(r) => {
                if r.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                // An exists watch is registered even when the node is missing: it waits for NodeCreated.
                if r.watch {
                    self.tree.watches.add(conn, WatchKind::Data, &r.path);
                }
                self.tree.node(&r.path).map(|n| Response::Stat(n.stat())).ok_or(ErrorCode::NoNode)
            }
            Request::GetData(r) => {
                let node = self.readable(conn, &r.path, perms::READ)?;
                let response = Response::Data(node.data().map(<[u8]>::to_vec), node.stat());
                if r.watch {
                    self.tree.watches.add(conn, WatchKind::Data, &r.path);
                }
                Ok(response)
            }
            Request::GetAcl(r) => {
                let node = self.readable(conn, &r.path, perms::READ | perms::ADMIN)?;
                let admin = acl::allows(node.acl(), perms::ADMIN, &self.auth_of(conn));
                let list = if admin { node.acl().to_vec() } else { acl::masked(node.acl()) };
                Ok(Response::Acl(list, node.stat()))
            }
            Request::GetChildren(r) | Request::GetChildren2(r) => {
                let node = self.readable(conn, &r.path, perms::READ)?;
                let children: Vec<String> =
                    self.tree.children(&r.path).unwrap_or_default().into_iter().map(str::to_owned).collect();
                let response = match request {
                    Request::GetChildren(_) => Response::Children(children),
                    _ => Response::Children2(children, node.stat()),
                };
                if r.watch {
                    self.tree.watches.add(conn, WatchKind::Child, &r.path);
                }
                Ok(response)
            }
            Request::GetAllChildrenNumber(r) => {
                self.readable(conn, &r.path, perms::READ)?;
                Ok(Response::Count(self.tree.descendant_count(&r.path).unwrap_or(0) as i32))
            }
            Request::GetEphemerals(r) => {
                let session = self.conn_session(conn).unwrap_or(0);
                let prefix = r.path.trim();
                let all = prefix.is_empty() || prefix == "/";
                let paths = self
                    .tree
                    .ephemerals(session)
                    .filter(|p| all || p.starts_with(&r.path))
                    .map(str::to_owned)
                    .collect();
                Ok(Response::Children(paths))
            }
            // Standalone sync has nothing to catch up with; it only keeps its place in order.
            Request::Sync(r) => Ok(Response::Path(r.path.clone())),
            Request::Ping => Ok(Response::Empty),
            Request::WhoAmI => {
                let auth = self.auth_of(conn);
                let mut ids: Vec<ClientInfo> = auth
                    .ids
                    .iter()
                    .map(|i| {
                        let id = i.id.as_deref().unwrap_or("");
                        let user = if i.scheme == "digest" { id.split(':').next().unwrap_or("") } else { id };
                        ClientInfo { auth_scheme: i.scheme.clone(), user: user.to_owned() }
                    })
                    .collect();
                ids.sort_by_key(|i| i.auth_scheme == "ip");
                Ok(Response::WhoAmI(ids))
            }
            Request::SetWatches(r) => {
                self.set_watches(
                    conn,
                    r.relative_zxid,
                    [&r.data_watches, &r.exist_watches, &r.child_watches, &vec![], &vec![]],
                );
                Ok(Response::Empty)
            }
            Request::SetWatches2(r) => {
                let lists = [
                    &r.data_watches,
                    &r.exist_watches,
                    &r.child_watches,
                    &r.persistent_watches,
                    &r.persistent_recursive_watches,
                ];
                self.set_watches(conn, r.relative_zxid, lists);
                Ok(Response::Empty)
            }
            Request::AddWatch(r) => {
                let kind = match AddWatchMode::from_i32(r.mode).ok_or(ErrorCode::MarshallingError)? {
                    AddWatchMode::Persistent => WatchKind::Persistent,
                    AddWatchMode::PersistentRecursive => WatchKind::PersistentRecursive,
                };
                self.tree.watches.add(conn, kind, &r.path);
                Ok(Response::ErrorBody(0))
            }
            Request::CheckWatches(r) | Request::RemoveWatches(r) => {
                let kinds = match WatcherType::from_i32(r.watcher_type).ok_or(ErrorCode::MarshallingError)? {
                    WatcherType::Children => {
                        &[WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive][..]
                    }
                    WatcherType::Data => &[WatchKind::Data, WatchKind::Persistent, WatchKind::PersistentRecursive][..],
                    WatcherType::Any => {
                        &[WatchKind::Data, WatchKind::Child, WatchKind::Persistent, WatchKind::PersistentRecursive][..]
                    }
                };
                let remove = matches!(request, Request::RemoveWatches(_));
                let mut found = false;
                for kind in kinds {
                    found |= if remove {
                        self.tree.watches.remove(conn, *kind, &r.path)
                    } else {
                        self.tree.watches.contains(conn, *kind, &r.path)
                    };
                }
                if found {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::MultiRead(ops) => {
                let results = ops
                    .iter()
                    .map(|op| match op {
                        Request::GetData(r) => self
                            .readable(conn, &r.path, perms::READ)
                            .map(|n| MultiResult::GetData(n.data().map(<[u8]>::to_vec), n.stat()))
                            .unwrap_or_else(|e| MultiResult::Error(e as i32)),
                        Request::GetChildren(r) => self
                            .readable(conn, &r.path, perms::READ)
                            .map(|_| {
                                MultiResult::GetChildren(
                                    self.tree
                                        .children(&r.path)
                                        .unwrap_or_default()
                                        .into_iter()
                                        .map(str::to_owned)
                                        .collect(),
                                )
                            })
                            .unwrap_or_else(|e| MultiResult::Error(e as i32)),
                        _ => MultiResult::Error(ErrorCode::MarshallingError as i32),
                    })
                    .collect();
                Ok(Response::Multi(results))
            }
            // Writes get here only while the log is failed: they cannot be made durable.
            _ if request.is_write() => Err(ErrorCode::SystemError),
            // Auth and SASL are answered before they get here.
            _ => Err(ErrorCode::MarshallingError),
        }
    }

    /// Re-registers a reconnected client's watches, first sending the events it missed
    /// since `relative_zxid` (those watches are then spent, not registered).
    fn set_watches(&mut self, conn: ConnId, relative_zxid: i64, lists: [&Vec<String>; 5]) {
        let [data, exist, child, persistent, recursive] = lists;
        for p in data {
            match self.tree.node(p).map(|n| n.meta().mzxid) {
                None => self.notify_now(conn, EventType::NodeDeleted, p),
                Some(mzxid) if mzxid > relative_zxid => self.notify_now(conn, EventType::NodeDataChanged, p),
                Some(_) => self.tree.watches.add(conn, WatchKind::Data, p),
            }
        }
        for p in exist {
            if self.tree.node(p).is_some() {
                self.notify_now(conn, EventType::NodeCreated, p);
            } else {
                self.tree.watches.add(conn, WatchKind::Data, p);
            }
        }
        for p in child {
            match self.tree.node(p).map(|n| n.meta().pzxid) {
                None => self.notify_now(conn, EventType::NodeDeleted, p),
                Some(pzxid) if pzxid > relative_zxid => self.notify_now(conn, EventType::NodeChildrenChanged, p),
                Some(_) => self.tree.watches.add(conn, WatchKind::Child, p),
            }
        }
        for p in persistent {
            self.tree.watches.add(conn, WatchKind::Persistent, p);
        }
        for p in recursive {
            self.tree.watches.add(conn, WatchKind::PersistentRecursive, p);
        }
    }
}
