//! Watches as streams, and the client-side registry that routes notifications to them.
//!
//! A [`Watcher`] is the sending end of a [`WatchStream`]. Every watching call takes a
//! `&Watcher`, so one stream can collect the events of many watches (as Java's default
//! watcher does) or each watch can have its own. A stream ends once its `Watcher` is
//! dropped and none of its registrations is left: a one-shot watch whose `Watcher` was
//! dropped after registering yields its event and ends.
//!
//! The [`Registry`] is owned by the connection task alone. It mirrors the server's
//! tables (data, exist, child, persistent, persistent-recursive) so that the client can
//! re-register them after a reconnect, and turns each notification into the watchers to
//! wake, with the rules of Java's `ZKWatchManager.materialize`. The same watcher
//! registered twice on one path gets one event, as a Java `Watcher` in a set does.

use crate::path::Chroot;
use crate::types::{EventType, KeeperState, WatchedEvent, WatcherType};
use proto::SetWatches2;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Where watch events go; cheap to clone (clones feed the same stream).
#[derive(Debug, Clone)]
pub struct Watcher {
    // Unbounded: the connection task must never wait for a slow reader, and ZooKeeper
    // never drops an event; the reader decides how fast it drains.
    tx: mpsc::UnboundedSender<WatchedEvent>,
}

impl Watcher {
    /// A new watcher and the stream of its events.
    pub fn new() -> (Watcher, WatchStream) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Watcher { tx }, WatchStream { rx })
    }

    fn same(&self, other: &Watcher) -> bool {
        self.tx.same_channel(&other.tx)
    }

    pub(crate) fn send(&self, event: WatchedEvent) {
        // A dropped stream only means nobody listens any more.
        let _ = self.tx.send(event);
    }
}

/// The events of one [`Watcher`], in the order the server sent them.
#[derive(Debug)]
pub struct WatchStream {
    rx: mpsc::UnboundedReceiver<WatchedEvent>,
}

impl WatchStream {
    /// The next event; `None` once the watcher is dropped and has no registration left.
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        self.rx.recv().await
    }

    /// An event that has already arrived, without waiting.
    pub fn try_next(&mut self) -> Option<WatchedEvent> {
        self.rx.try_recv().ok()
    }
}

impl futures_core::Stream for WatchStream {
    type Item = WatchedEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// The tables of registered watches, keyed by client path (without the chroot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// getData, or exists on a node that exists.
    Data,
    /// exists on a node that does not exist.
    Exist,
    Child,
    Persistent,
    PersistentRecursive,
}

const KINDS: [Kind; 5] = [Kind::Data, Kind::Exist, Kind::Child, Kind::Persistent, Kind::PersistentRecursive];

/// Sorted maps, so that setWatches lists come out in a stable order.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    tables: [BTreeMap<String, Vec<Watcher>>; 5],
}

/// Roughly how many path bytes go into one setWatches2 request, as Java's client batches.
const SET_WATCHES_BATCH_BYTES: usize = 128 * 1024;

impl Registry {
    fn table(&mut self, kind: Kind) -> &mut BTreeMap<String, Vec<Watcher>> {
        &mut self.tables[kind as usize]
    }

    pub fn add(&mut self, kind: Kind, path: &str, watcher: &Watcher) {
        let list = self.table(kind).entry(path.to_owned()).or_default();
        if !list.iter().any(|w| w.same(watcher)) {
            list.push(watcher.clone());
        }
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.tables.iter().all(BTreeMap::is_empty)
    }

    /// Delivers a server notification and drops the one-shot watches it fired.
    pub fn notify(&mut self, event_type: EventType, path: &str) {
        let mut woken: Vec<Watcher> = Vec::new();
        let mut take = |table: &mut BTreeMap<String, Vec<Watcher>>| {
            woken.extend(table.remove(path).unwrap_or_default());
        };
        match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                take(self.table(Kind::Data));
                take(self.table(Kind::Exist));
            }
            EventType::NodeChildrenChanged => take(self.table(Kind::Child)),
            EventType::NodeDeleted => {
                take(self.table(Kind::Data));
                take(self.table(Kind::Exist));
                take(self.table(Kind::Child));
            }
            _ => {}
        }
        woken.extend(self.tables[Kind::Persistent as usize].get(path).into_iter().flatten().cloned());
        // Recursive watches see their subtree's node events, never NodeChildrenChanged.
        if event_type != EventType::NodeChildrenChanged {
            let recursive = &self.tables[Kind::PersistentRecursive as usize];
            for ancestor in ancestors(path) {
                woken.extend(recursive.get(ancestor).into_iter().flatten().cloned());
            }
        }
        let event = WatchedEvent { event_type, state: KeeperState::SyncConnected, path: Some(path.to_owned()) };
        for w in dedup(woken) {
            w.send(event.clone());
        }
    }

    /// Tells every watcher of a session state change, once each (Java delivers state
    /// events to all watchers). `clear` drops every registration: the session is over.
    pub fn broadcast(&mut self, state: KeeperState, clear: bool) {
        let all = dedup(self.tables.iter().flat_map(|t| t.values().flatten().cloned()).collect());
        let event = WatchedEvent { event_type: EventType::None, state, path: None };
        for w in all {
            w.send(event.clone());
        }
        if clear {
            *self = Registry::default();
        }
    }

    /// The tables a removal of `watcher_type` looks at, each with the event its removed
    /// watchers get. As in Java's 3.8 client, persistent watches go only with `Any`.
    fn removal_tables(watcher_type: WatcherType) -> &'static [(Kind, EventType)] {
        use EventType::*;
        match watcher_type {
            WatcherType::Children => &[(Kind::Child, ChildWatchRemoved)],
            WatcherType::Data => &[(Kind::Data, DataWatchRemoved), (Kind::Exist, DataWatchRemoved)],
            WatcherType::Any => &[
                (Kind::Child, ChildWatchRemoved),
                (Kind::Data, DataWatchRemoved),
                (Kind::Exist, DataWatchRemoved),
                (Kind::Persistent, PersistentWatchRemoved),
                (Kind::PersistentRecursive, PersistentWatchRemoved),
            ],
        }
    }

    /// Whether a removal of `watcher_type` (of `only` this watcher, or of all) on `path`
    /// would find anything here. Java's client answers NoWatcher without asking the server
    /// when it would not.
    pub fn contains(&self, path: &str, watcher_type: WatcherType, only: Option<&Watcher>) -> bool {
        Self::removal_tables(watcher_type).iter().any(|(kind, _)| {
            self.tables[*kind as usize].get(path).is_some_and(|list| match only {
                Some(w) => list.iter().any(|x| x.same(w)),
                None => !list.is_empty(),
            })
        })
    }

    /// Removes the watches a removeWatches named and tells each removed watcher.
    pub fn remove(&mut self, path: &str, watcher_type: WatcherType, only: Option<&Watcher>) {
        let mut told: Vec<(Watcher, EventType)> = Vec::new();
        for &(kind, event_type) in Self::removal_tables(watcher_type) {
            let table = self.table(kind);
            let Some(list) = table.get_mut(path) else { continue };
            let removed: Vec<Watcher> = match only {
                Some(w) => {
                    let (gone, kept) = list.drain(..).partition(|x| x.same(w));
                    *list = kept;
                    gone
                }
                None => std::mem::take(list),
            };
            if list.is_empty() {
                table.remove(path);
            }
            for w in removed {
                if !told.iter().any(|(x, t)| x.same(&w) && *t == event_type) {
                    told.push((w, event_type));
                }
            }
        }
        for (w, event_type) in told {
            w.send(WatchedEvent { event_type, state: KeeperState::SyncConnected, path: Some(path.to_owned()) });
        }
    }

    /// The setWatches2 requests that re-register everything after a reconnect, with
    /// server paths; `relative_zxid` lets the server fire what changed meanwhile.
    pub fn set_watches(&self, chroot: &Chroot, relative_zxid: i64) -> Vec<SetWatches2> {
        let mut batches = Vec::new();
        let mut current = SetWatches2 { relative_zxid, ..Default::default() };
        let mut bytes = 0;
        for kind in KINDS {
            for path in self.tables[kind as usize].keys() {
                // The config node lies outside any chroot (see `Client::get_config`).
                let path = if path == crate::CONFIG_NODE { path.clone() } else { chroot.to_server(path) };
                bytes += path.len();
                let list = match kind {
                    Kind::Data => &mut current.data_watches,
                    Kind::Exist => &mut current.exist_watches,
                    Kind::Child => &mut current.child_watches,
                    Kind::Persistent => &mut current.persistent_watches,
                    Kind::PersistentRecursive => &mut current.persistent_recursive_watches,
                };
                list.push(path);
                if bytes >= SET_WATCHES_BATCH_BYTES {
                    batches.push(std::mem::replace(&mut current, SetWatches2 { relative_zxid, ..Default::default() }));
                    bytes = 0;
                }
            }
        }
        if bytes > 0 {
            batches.push(current);
        }
        batches
    }
}

/// `path` and each of its ancestors up to `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            _ if current == "/" => None,
            Some(0) => Some("/"),
            Some(i) => Some(&current[..i]),
            None => None,
        };
        Some(current)
    })
}

fn dedup(watchers: Vec<Watcher>) -> Vec<Watcher> {
    let mut out: Vec<Watcher> = Vec::with_capacity(watchers.len());
    for w in watchers {
        if !out.iter().any(|x| x.same(&w)) {
            out.push(w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut WatchStream) -> Vec<(EventType, Option<String>)> {
        std::iter::from_fn(|| s.try_next()).map(|e| (e.event_type, e.path)).collect()
    }

    #[test]
    fn one_shot_watches_fire_once_and_dedup() {
        let mut r = Registry::default();
        let (w, mut s) = Watcher::new();
        r.add(Kind::Data, "/a", &w);
        r.add(Kind::Data, "/a", &w);
        r.add(Kind::Child, "/a", &w);
        r.notify(EventType::NodeDeleted, "/a");
        r.notify(EventType::NodeDeleted, "/a");
        assert_eq!(drain(&mut s), [(EventType::NodeDeleted, Some("/a".into()))]);
        assert!(r.is_empty());
    }

    #[test]
    fn recursive_watches_see_the_subtree_but_not_child_events() {
        let mut r = Registry::default();
        let (w, mut s) = Watcher::new();
        r.add(Kind::PersistentRecursive, "/a", &w);
        r.notify(EventType::NodeCreated, "/a/b/c");
        r.notify(EventType::NodeChildrenChanged, "/a/b");
        r.notify(EventType::NodeDataChanged, "/a");
        r.notify(EventType::NodeDataChanged, "/ab");
        assert_eq!(
            drain(&mut s),
            [(EventType::NodeCreated, Some("/a/b/c".into())), (EventType::NodeDataChanged, Some("/a".into()))]
        );
        assert!(!r.is_empty());
    }

    #[test]
    fn streams_end_when_the_watcher_and_its_registrations_are_gone() {
        let mut r = Registry::default();
        let (w, mut s) = Watcher::new();
        r.add(Kind::Exist, "/x", &w);
        drop(w);
        r.notify(EventType::NodeCreated, "/x");
        assert_eq!(s.try_next().map(|e| e.event_type), Some(EventType::NodeCreated));
        assert!(s.rx.try_recv().is_err_and(|e| e == mpsc::error::TryRecvError::Disconnected));
    }

    #[test]
    fn removal_tells_each_removed_watcher() {
        let mut r = Registry::default();
        let (w1, mut s1) = Watcher::new();
        let (w2, mut s2) = Watcher::new();
        r.add(Kind::Data, "/a", &w1);
        r.add(Kind::Child, "/a", &w2);
        assert!(r.contains("/a", WatcherType::Children, None));
        let (p, _ps) = Watcher::new();
        r.add(Kind::Persistent, "/p", &p);
        assert!(!r.contains("/p", WatcherType::Data, None) && r.contains("/p", WatcherType::Any, None));
        assert!(!r.contains("/a", WatcherType::Children, Some(&w1)));
        r.remove("/a", WatcherType::Any, Some(&w1));
        assert_eq!(drain(&mut s1), [(EventType::DataWatchRemoved, Some("/a".into()))]);
        assert!(drain(&mut s2).is_empty());
        r.remove("/a", WatcherType::Any, None);
        r.remove("/p", WatcherType::Any, None);
        assert_eq!(drain(&mut s2), [(EventType::ChildWatchRemoved, Some("/a".into()))]);
        assert!(r.is_empty());
    }

    #[test]
    fn set_watches_lists_server_paths() {
        let mut r = Registry::default();
        let (w, _s) = Watcher::new();
        r.add(Kind::Data, "/a", &w);
        r.add(Kind::Exist, "/b", &w);
        r.add(Kind::PersistentRecursive, "/", &w);
        r.add(Kind::Child, crate::CONFIG_NODE, &w);
        let batches = r.set_watches(&Chroot::new(Some("/app")), 7);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].relative_zxid, 7);
        assert_eq!(batches[0].data_watches, ["/app/a"]);
        assert_eq!(batches[0].exist_watches, ["/app/b"]);
        assert_eq!(batches[0].persistent_recursive_watches, ["/app"]);
        assert_eq!(batches[0].child_watches, [crate::CONFIG_NODE]);
        assert!(Registry::default().set_watches(&Chroot::default(), 0).is_empty());
    }

    #[test]
    fn ancestors_walk_up_to_root() {
        assert_eq!(ancestors("/a/b").collect::<Vec<_>>(), ["/a/b", "/a", "/"]);
        assert_eq!(ancestors("/").collect::<Vec<_>>(), ["/"]);
    }
}
