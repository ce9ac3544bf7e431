//! The watch registry: which connection watches which path, and how.
//!
//! Watches belong to connections, not sessions (a reconnecting client re-registers them).
//! Standard data, exist and child watches fire once; persistent and persistent-recursive
//! watches stay until removed or until their connection closes. A connection holds at most
//! one watch of each kind on a path, so one change sends it at most one event.

use proto::EventType;
use std::collections::{BTreeMap, BTreeSet};

/// A client connection, as the watch registry and the replica name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKind {
    /// getData/exists: NodeCreated, NodeDataChanged, NodeDeleted of the path; one-shot.
    Data,
    /// getChildren: NodeChildrenChanged and NodeDeleted of the path; one-shot.
    Child,
    /// addWatch mode 0: every event of the exact path; stays armed.
    Persistent,
    /// addWatch mode 1: created, deleted and data events of the path and all descendants.
    PersistentRecursive,
}

#[derive(Debug, Default)]
pub struct Watches {
    by_path: [BTreeMap<String, BTreeSet<ConnId>>; 4],
    by_conn: BTreeMap<ConnId, BTreeSet<(WatchKind, String)>>,
}

impl Watches {
    fn table(&mut self, kind: WatchKind) -> &mut BTreeMap<String, BTreeSet<ConnId>> {
        &mut self.by_path[kind as usize]
    }

    pub fn add(&mut self, conn: ConnId, kind: WatchKind, path: &str) {
        self.table(kind).entry(path.to_owned()).or_default().insert(conn);
        self.by_conn.entry(conn).or_default().insert((kind, path.to_owned()));
    }

    pub fn contains(&self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        self.by_path[kind as usize].get(path).is_some_and(|s| s.contains(&conn))
    }

    /// Removes one watch; says whether it existed.
    pub fn remove(&mut self, conn: ConnId, kind: WatchKind, path: &str) -> bool {
        let table = self.table(kind);
        let Some(conns) = table.get_mut(path) else {
            return false;
        };
        let removed = conns.remove(&conn);
        if conns.is_empty() {
            table.remove(path);
        }
        if let Some(mine) = self.by_conn.get_mut(&conn) {
            mine.remove(&(kind, path.to_owned()));
            if mine.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
        removed
    }

    /// Forgets every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        for (kind, path) in self.by_conn.remove(&conn).unwrap_or_default() {
            let table = self.table(kind);
            if let Some(conns) = table.get_mut(&path) {
                conns.remove(&conn);
                if conns.is_empty() {
                    table.remove(&path);
                }
            }
        }
    }

    /// Takes (for one-shot kinds) or reads the watchers of `path` in `kind` into `into`.
    fn fire(&mut self, kind: WatchKind, path: &str, into: &mut BTreeSet<ConnId>) {
        let one_shot = matches!(kind, WatchKind::Data | WatchKind::Child);
        if one_shot {
            if let Some(conns) = self.table(kind).remove(path) {
                for conn in &conns {
                    if let Some(mine) = self.by_conn.get_mut(conn) {
                        mine.remove(&(kind, path.to_owned()));
                        if mine.is_empty() {
                            self.by_conn.remove(conn);
                        }
                    }
                }
                into.extend(conns);
            }
        } else if let Some(conns) = self.by_path[kind as usize].get(path) {
            into.extend(conns.iter().copied());
        }
    }

    /// The connections to notify of `event` on `path`, each once, in a stable order.
    pub fn trigger(&mut self, event: EventType, path: &str) -> BTreeSet<ConnId> {
        let mut conns = BTreeSet::new();
        match event {
            EventType::NodeCreated | EventType::NodeDataChanged => self.fire(WatchKind::Data, path, &mut conns),
            EventType::NodeDeleted => {
                self.fire(WatchKind::Data, path, &mut conns);
                self.fire(WatchKind::Child, path, &mut conns);
            }
            EventType::NodeChildrenChanged => self.fire(WatchKind::Child, path, &mut conns),
        }
        self.fire(WatchKind::Persistent, path, &mut conns);
        if event != EventType::NodeChildrenChanged && !self.by_path[WatchKind::PersistentRecursive as usize].is_empty()
        {
            for ancestor in crate::path::self_and_ancestors(path) {
                self.fire(WatchKind::PersistentRecursive, ancestor, &mut conns);
            }
        }
        conns
    }

    /// Total number of (connection, kind, path) watches.
    pub fn count(&self) -> usize {
        self.by_conn.values().map(BTreeSet::len).sum()
    }

    /// Distinct watched paths over all kinds.
    pub fn path_count(&self) -> usize {
        let mut paths: BTreeSet<&str> = BTreeSet::new();
        for table in &self.by_path {
            paths.extend(table.keys().map(String::as_str));
        }
        paths.len()
    }

    /// Each watching connection with its distinct watched paths (for `wchc`).
    pub fn by_conn(&self) -> impl Iterator<Item = (ConnId, BTreeSet<&str>)> {
        self.by_conn.iter().map(|(c, set)| (*c, set.iter().map(|(_, p)| p.as_str()).collect()))
    }

    /// Each watched path with its watching connections (for `wchp`).
    pub fn by_path(&self) -> BTreeMap<&str, BTreeSet<ConnId>> {
        let mut out: BTreeMap<&str, BTreeSet<ConnId>> = BTreeMap::new();
        for table in &self.by_path {
            for (path, conns) in table {
                out.entry(path).or_default().extend(conns.iter().copied());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::*;

    #[test]
    fn one_shot_and_persistent() {
        let mut w = Watches::default();
        let (a, b) = (ConnId(1), ConnId(2));
        w.add(a, WatchKind::Data, "/x");
        w.add(b, WatchKind::Persistent, "/x");
        assert_eq!(w.trigger(NodeDataChanged, "/x").into_iter().collect::<Vec<_>>(), [a, b]);
        assert_eq!(w.trigger(NodeDataChanged, "/x").into_iter().collect::<Vec<_>>(), [b]);
        assert_eq!(w.count(), 1);
    }

    #[test]
    fn recursive_ignores_child_events_and_deleted_fires_once() {
        let mut w = Watches::default();
        let a = ConnId(1);
        w.add(a, WatchKind::PersistentRecursive, "/r");
        assert_eq!(w.trigger(NodeCreated, "/r/a/b").len(), 1);
        assert!(w.trigger(NodeChildrenChanged, "/r/a").is_empty());
        w.add(a, WatchKind::Data, "/n");
        w.add(a, WatchKind::Child, "/n");
        assert_eq!(w.trigger(NodeDeleted, "/n").len(), 1);
        assert!(w.trigger(NodeDeleted, "/n").is_empty());
        w.remove_conn(a);
        assert_eq!(w.count(), 0);
        assert!(w.trigger(NodeCreated, "/r/c").is_empty());
    }
}
