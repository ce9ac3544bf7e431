//! The session tracker: ids, passwords, negotiated timeouts and deadlines.
//!
//! Deadlines are rounded up to the next multiple of the tick, as ZooKeeper's expiry
//! buckets do, so a silent session expires within one tick after its timeout.

use std::collections::BTreeMap;
use tree::ConnId;

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub passwd: [u8; 16],
    pub timeout_ms: i32,
    pub deadline_ms: i64,
    /// The connection currently bound to the session, if any.
    pub conn: Option<ConnId>,
    /// A close or expiry is in flight: the session takes no more requests.
    pub closing: bool,
}

#[derive(Debug)]
pub struct Sessions {
    sessions: BTreeMap<i64, Session>,
    next_id: i64,
    tick_ms: i64,
}

impl Sessions {
    /// Ids start from the server id and the start time, as in ZooKeeper, so that a
    /// restarted server does not hand out an id it issued before.
    pub fn new(server_id: u8, now_ms: i64, tick_ms: i64) -> Sessions {
        let time_bits = ((now_ms as u64) << 24) >> 8;
        Sessions {
            sessions: BTreeMap::new(),
            next_id: (((server_id as u64) << 56) | time_bits) as i64,
            tick_ms: tick_ms.max(1),
        }
    }

    pub fn create(&mut self, passwd: [u8; 16], timeout_ms: i32, now_ms: i64, conn: ConnId) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        let deadline_ms = deadline(now_ms, timeout_ms, self.tick_ms);
        self.sessions.insert(id, Session { id, passwd, timeout_ms, deadline_ms, conn: Some(conn), closing: false });
        id
    }

    /// A session known from the log after a restart: its clock starts again now, as in
    /// ZooKeeper, so that its client has the whole timeout to reconnect.
    pub fn restore(&mut self, id: i64, passwd: [u8; 16], timeout_ms: i32, now_ms: i64) {
        let deadline_ms = deadline(now_ms, timeout_ms, self.tick_ms);
        self.sessions.entry(id).or_insert(Session { id, passwd, timeout_ms, deadline_ms, conn: None, closing: false });
        // Ids issued by this server stay unique; ids from elsewhere (another server of an
        // ensemble, or imported from ZooKeeper) live under another prefix.
        if (id as u64) >> 56 == (self.next_id as u64) >> 56 {
            self.next_id = self.next_id.max(id);
        }
    }

    pub fn get(&self, id: i64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Session> {
        self.sessions.get_mut(&id)
    }

    /// Pushes the deadline out; every frame from the client does this.
    pub fn touch(&mut self, id: i64, now_ms: i64) {
        let tick = self.tick_ms;
        if let Some(s) = self.sessions.get_mut(&id) {
            s.deadline_ms = deadline(now_ms, s.timeout_ms, tick);
        }
    }

    /// A new leader: every session's clock starts again now, so that its client has the
    /// whole timeout to find the leader.
    pub fn renew_all(&mut self, now_ms: i64) {
        for s in self.sessions.values_mut() {
            s.deadline_ms = deadline(now_ms, s.timeout_ms, self.tick_ms);
        }
    }

    /// Closes that were in flight when the leader changed may never commit: the sessions
    /// take requests again until a close commits.
    pub fn reopen_all(&mut self) {
        self.sessions.values_mut().for_each(|s| s.closing = false);
    }

    /// Forgets every session (a snapshot from the leader replaces them).
    pub fn clear(&mut self) {
        self.sessions.clear();
    }

    pub fn remove(&mut self, id: i64) -> Option<Session> {
        self.sessions.remove(&id)
    }

    /// Sessions past their deadline that are not already closing.
    pub fn expired(&self, now_ms: i64) -> Vec<i64> {
        self.sessions.values().filter(|s| !s.closing && s.deadline_ms <= now_ms).map(|s| s.id).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// Expiry rounds up to the next tick boundary after the timeout, as ZooKeeper's buckets do.
fn deadline(now_ms: i64, timeout_ms: i32, tick_ms: i64) -> i64 {
    ((now_ms + timeout_ms as i64) / tick_ms + 1) * tick_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_the_tick() {
        let mut s = Sessions::new(1, 1_000_000, 2000);
        let id = s.create([0; 16], 4000, 1_000_100, ConnId(1));
        assert_eq!(id >> 56, 1);
        assert_eq!(s.get(id).unwrap().deadline_ms, 1_006_000);
        assert!(s.expired(1_005_999).is_empty());
        assert_eq!(s.expired(1_006_000), vec![id]);
        s.touch(id, 1_005_000);
        assert!(s.expired(1_006_000).is_empty());
    }
}
