//! The pipeline's ordering rules, driven input by input without any IO: replies in request
//! order per connection, watch events before the reply of the write that fired them, reads
//! behind the same connection's unapplied writes, zxids for failed writes, session expiry.

use proptest::prelude::*;
use proto::*;
use replica::{Config, ConnId, Input, Output, Replica};

const T0: i64 = 1_800_000_000_000;

struct Harness {
    replica: Replica,
    now: i64,
    /// Auto-persist every append (in-memory durability).
    auto_persist: bool,
}

impl Harness {
    fn new() -> Harness {
        let config =
            Config { tick_ms: 100, min_session_timeout_ms: 200, max_session_timeout_ms: 10_000, ..Config::default() };
        Harness { replica: Replica::new(config, T0, 7), now: T0, auto_persist: true }
    }

    fn step(&mut self, input: Input) -> Vec<Output> {
        let mut out = self.replica.step(self.now, input);
        if self.auto_persist {
            if let Some(zxid) =
                out.iter().filter_map(|o| if let Output::Append { txn } = o { Some(txn.zxid) } else { None }).max()
            {
                out.extend(self.replica.step(self.now, Input::Persisted { zxid }));
            }
        }
        out.retain(|o| !matches!(o, Output::Append { .. }));
        out
    }

    fn connect(&mut self, conn: u64) -> i64 {
        let request =
            ConnectRequest { timeout_ms: 1000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() };
        let out = self.step(Input::Connect { conn: ConnId(conn), addr: "127.0.0.1".parse().unwrap(), request });
        match &out[..] {
            [Output::Connected { response, .. }] => response.session_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn send(&mut self, conn: u64, xid: i32, request: Request) -> Vec<Output> {
        self.step(Input::Request { conn: ConnId(conn), xid, request: Ok(request) })
    }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create(CreateRequest { path: path.into(), data: Some(b"d".to_vec()), acl: tree::acl::open_acl(), flags })
}

fn reply_of(out: &[Output], want_xid: i32) -> &ReplyHeader {
    out.iter()
        .find_map(|o| match o {
            Output::Reply { header, .. } if header.xid == want_xid => Some(header),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reply to xid {want_xid} in {out:?}"))
}

#[test]
fn watch_event_precedes_the_reply_of_the_write_that_fired_it() {
    let mut h = Harness::new();
    h.connect(1);
    h.connect(2);
    h.send(1, 1, create("/w", 0));
    h.send(1, 2, Request::GetData(PathWatchRequest { path: "/w".into(), watch: true }));
    h.send(2, 1, Request::GetData(PathWatchRequest { path: "/w".into(), watch: true }));
    let out = h.send(1, 3, Request::SetData(SetDataRequest { path: "/w".into(), data: None, version: -1 }));
    let kinds: Vec<String> = out
        .iter()
        .map(|o| match o {
            Output::Notify { conn, event, .. } => format!("notify {} {event:?}", conn.0),
            Output::Reply { conn, header, .. } => format!("reply {} {}", conn.0, header.xid),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["notify 1 NodeDataChanged", "notify 2 NodeDataChanged", "reply 1 3"]);
    // One-shot: a second change notifies nobody.
    let out = h.send(1, 4, Request::SetData(SetDataRequest { path: "/w".into(), data: None, version: -1 }));
    assert!(out.iter().all(|o| !matches!(o, Output::Notify { .. })));
}

#[test]
fn failed_writes_take_a_zxid() {
    let mut h = Harness::new();
    h.connect(1);
    let ok = reply_of(&h.send(1, 1, create("/a", 0)), 1).zxid;
    let exists = reply_of(&h.send(1, 2, create("/a", 0)), 2).clone();
    assert_eq!((exists.err, exists.zxid), (ErrorCode::NodeExists as i32, ok + 1));
    let bad = reply_of(&h.send(1, 3, Request::Delete(DeleteRequest { path: "/a".into(), version: 9 })), 3).clone();
    assert_eq!((bad.err, bad.zxid), (ErrorCode::BadVersion as i32, ok + 2));
    let read =
        reply_of(&h.send(1, 4, Request::Exists(PathWatchRequest { path: "/nope".into(), watch: false })), 4).clone();
    assert_eq!((read.err, read.zxid), (ErrorCode::NoNode as i32, ok + 2), "reads carry the last applied zxid");
}

#[test]
fn reads_wait_for_the_same_connections_writes_only() {
    let mut h = Harness::new();
    h.connect(1);
    h.connect(2);
    h.auto_persist = false;
    let out = h.replica.step(h.now, Input::Request { conn: ConnId(1), xid: 1, request: Ok(create("/p", 0)) });
    let zxid = out.iter().find_map(|o| if let Output::Append { txn } = o { Some(txn.zxid) } else { None }).unwrap();
    let read = |path: &str| Ok(Request::Exists(PathWatchRequest { path: path.into(), watch: false }));
    assert!(h.replica.step(h.now, Input::Request { conn: ConnId(1), xid: 2, request: read("/p") }).is_empty());
    let other = h.replica.step(h.now, Input::Request { conn: ConnId(2), xid: 1, request: read("/p") });
    assert_eq!(reply_of(&other, 1).err, ErrorCode::NoNode as i32, "another connection reads the applied tree");
    let out = h.replica.step(h.now, Input::Persisted { zxid });
    let xids: Vec<(i32, i32)> = out
        .iter()
        .filter_map(|o| if let Output::Reply { header, .. } = o { Some((header.xid, header.err)) } else { None })
        .collect();
    assert_eq!(xids, [(1, 0), (2, 0)], "the read follows the write and sees it");
}

#[test]
fn an_expired_session_loses_its_ephemerals_in_one_transaction() {
    let mut h = Harness::new();
    let owner = h.connect(1);
    h.connect(2);
    h.send(1, 1, create("/e1", 1));
    h.send(1, 2, create("/e2", 1));
    h.send(2, 1, Request::Exists(PathWatchRequest { path: "/e1".into(), watch: true }));
    let before = h.replica.applied_zxid();
    // Client 2 keeps pinging; client 1 falls silent.
    for _ in 0..20 {
        h.now += 100;
        h.send(2, -2, Request::Ping);
        let out = h.step(Input::Tick);
        if out.iter().any(|o| matches!(o, Output::Close { conn } if conn.0 == 1)) {
            assert!(out.iter().any(|o| matches!(o, Output::Notify { conn, event: EventType::NodeDeleted, path } if conn.0 == 2 && path == "/e1")));
            assert!(
                !out.iter().any(|o| matches!(o, Output::Reply { conn, .. } if conn.0 == 1)),
                "no word to the expired client"
            );
            assert_eq!(h.replica.applied_zxid(), before + 1, "one transaction");
            assert!(h.replica.tree().node("/e2").is_none());
            assert!(h.replica.sessions().get(owner).is_none());
            return;
        }
    }
    panic!("session never expired");
}

#[derive(Debug, Clone)]
enum Action {
    Request(u64, Request),
    Disconnect(u64),
    Tick(i64),
    Persist,
}

fn arb_request() -> impl Strategy<Value = Request> {
    let path = prop::sample::select(vec!["/a", "/a/b", "/c", "/", "/zookeeper", "bad", "/a/"]).prop_map(String::from);
    prop_oneof![
        (path.clone(), 0..8i32).prop_map(|(p, flags)| Request::Create(CreateRequest {
            path: p,
            data: Some(vec![1]),
            acl: tree::acl::open_acl(),
            flags
        })),
        (path.clone(), -1..2i32).prop_map(|(p, version)| Request::Delete(DeleteRequest { path: p, version })),
        (path.clone(), -1..2i32).prop_map(|(p, version)| Request::SetData(SetDataRequest {
            path: p,
            data: Some(vec![2]),
            version
        })),
        (path.clone(), any::<bool>()).prop_map(|(p, watch)| Request::GetData(PathWatchRequest { path: p, watch })),
        (path.clone(), any::<bool>()).prop_map(|(p, watch)| Request::GetChildren(PathWatchRequest { path: p, watch })),
        (path.clone(), any::<bool>()).prop_map(|(p, watch)| Request::Exists(PathWatchRequest { path: p, watch })),
        (path.clone(), 0..3i32).prop_map(|(p, mode)| Request::AddWatch(AddWatchRequest { path: p, mode })),
        prop::collection::vec((path.clone(), 0..4i32), 0..4).prop_map(|ops| Request::Multi(
            ops.into_iter()
                .map(|(p, flags)| Request::Create(CreateRequest {
                    path: p,
                    data: None,
                    acl: tree::acl::open_acl(),
                    flags
                }))
                .collect()
        )),
        Just(Request::CloseSession),
        Just(Request::Ping),
    ]
}

fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (1..4u64, arb_request()).prop_map(|(c, r)| Action::Request(c, r)),
        1 => (1..4u64).prop_map(Action::Disconnect),
        1 => (0..500i64).prop_map(Action::Tick),
        2 => Just(Action::Persist),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any sequence of inputs: no panic, zxids handed out one by one, replies to each
    /// connection in the order of its requests.
    #[test]
    fn any_input_sequence_keeps_the_ordering_rules(actions in prop::collection::vec(arb_action(), 1..80)) {
        let mut h = Harness::new();
        h.auto_persist = false;
        let mut all = Vec::new();
        for c in 1..4 {
            let request = ConnectRequest { timeout_ms: 1000, passwd: vec![0; 16], read_only: None, ..Default::default() };
            all.extend(h.replica.step(h.now, Input::Connect { conn: ConnId(c), addr: "10.0.0.1".parse().unwrap(), request }));
        }
        let mut last_zxid = 3;
        let mut next_xid = [0i32; 4];
        let mut last_replied = [0i32; 4];
        for action in actions {
            let input = match action {
                Action::Request(c, r) => {
                    next_xid[c as usize] += 1;
                    let xid = if r == Request::Ping { -2 } else { next_xid[c as usize] };
                    Input::Request { conn: ConnId(c), xid, request: Ok(r) }
                }
                Action::Disconnect(c) => Input::Disconnected { conn: ConnId(c) },
                Action::Tick(ms) => { h.now += ms; Input::Tick }
                Action::Persist => Input::Persisted { zxid: last_zxid },
            };
            let out = h.replica.step(h.now, input);
            last_zxid = out.iter().fold(last_zxid, |z, o| if let Output::Append { txn } = o { txn.zxid } else { z });
            all.extend(out);
        }
        let mut appended = 0;
        for o in &all {
            match o {
                Output::Append { txn } => {
                    prop_assert_eq!(txn.zxid, appended + 1);
                    appended = txn.zxid;
                }
                Output::Reply { conn, header, .. } if header.xid > 0 => {
                    prop_assert!(header.xid > last_replied[conn.0 as usize], "reply {} after {}", header.xid, last_replied[conn.0 as usize]);
                    last_replied[conn.0 as usize] = header.xid;
                }
                _ => {}
            }
        }
        prop_assert!(h.replica.applied_zxid() <= appended);
    }
}

#[test]
fn a_failed_log_fails_pending_writes_and_refuses_new_ones_until_healthy() {
    let mut h = Harness::new();
    h.connect(1);
    h.auto_persist = false;
    let out = h.replica.step(h.now, Input::Request { conn: ConnId(1), xid: 1, request: Ok(create("/a", 0)) });
    assert!(out.iter().any(|o| matches!(o, Output::Append { .. })));
    let read = Ok(Request::Exists(PathWatchRequest { path: "/a".into(), watch: false }));
    assert!(h.replica.step(h.now, Input::Request { conn: ConnId(1), xid: 2, request: read.clone() }).is_empty());
    let out = h.replica.step(h.now, Input::LogFailed);
    let replies: Vec<(i32, i32)> = out
        .iter()
        .filter_map(|o| if let Output::Reply { header, .. } = o { Some((header.xid, header.err)) } else { None })
        .collect();
    assert_eq!(
        replies,
        [(1, ErrorCode::SystemError as i32), (2, ErrorCode::NoNode as i32)],
        "the write failed, the read saw no /a"
    );
    // While the log is failed, writes are refused in order and nothing is appended.
    let out = h.replica.step(h.now, Input::Request { conn: ConnId(1), xid: 3, request: Ok(create("/b", 0)) });
    assert!(!out.iter().any(|o| matches!(o, Output::Append { .. })));
    assert_eq!(reply_of(&out, 3).err, ErrorCode::SystemError as i32);
    h.replica.step(h.now, Input::LogHealthy);
    h.auto_persist = true;
    let out = h.send(1, 4, create("/b", 0));
    let header = reply_of(&out, 4);
    assert_eq!(header.err, 0);
    assert_eq!(header.zxid, 2, "the failed write's zxid is handed out again: it never became durable");
}

/// All of a snapshot's chunks, from `begin_snapshot` on.
fn snapshot_of(replica: &mut Replica) -> Vec<Vec<u8>> {
    replica.begin_snapshot();
    let mut chunks = Vec::new();
    while let Some(part) = replica.snapshot_chunk(1) {
        chunks.push(part.bytes);
        if part.last {
            break;
        }
    }
    chunks
}

#[test]
fn restoring_a_snapshot_ends_the_one_in_progress() {
    let mut leader = Harness::new();
    leader.connect(1);
    leader.send(1, 1, create("/a", 0));
    let zxid = leader.replica.applied_zxid();
    let theirs = snapshot_of(&mut leader.replica);

    let mut h = Harness::new();
    h.connect(1);
    h.send(1, 1, create("/b", 0));
    h.replica.begin_snapshot();
    assert!(h.replica.snapshot_chunk(1).is_some_and(|part| part.first));
    h.replica.restore_snapshot(zxid, theirs.iter().map(Vec::as_slice)).unwrap();
    assert!(!h.replica.snapshot_in_progress());
    // The next snapshot is whole, and of the restored state.
    let ours = snapshot_of(&mut h.replica);
    assert_eq!(ours, theirs);
}

#[test]
fn a_follower_forwards_a_new_session_and_leaves_it_out_of_snapshots_until_committed() {
    let mut h = Harness::new();
    h.step(Input::RoleChanged(replica::Role::Following));
    let request =
        ConnectRequest { timeout_ms: 1000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() };
    let out = h.step(Input::Connect { conn: ConnId(1), addr: "127.0.0.1".parse().unwrap(), request });
    let [Output::ToLeader(replica::ToLeader::CreateSession { session_id, .. })] = out[..] else {
        panic!("a follower hands a new session to the leader, and answers nothing yet: {out:?}")
    };
    // The sessions chunk (the first) lists no session: the creation is not committed.
    let sessions = snapshot_of(&mut h.replica).remove(0);
    assert_eq!(sessions, vec![0, 0, 0, 0]);
    let txn = tree::Txn {
        zxid: 0x1_0000_0001,
        time_ms: T0,
        session_id,
        cxid: 0,
        op: tree::TxnOp::CreateSession { timeout_ms: 1000, passwd: [0; 16] },
    };
    let out = h.step(Input::Committed { zxid: txn.zxid, txn: Some(txn) });
    assert!(
        matches!(&out[..], [Output::Connected { conn: ConnId(1), response }] if response.session_id == session_id),
        "{out:?}"
    );
    assert_ne!(snapshot_of(&mut h.replica).remove(0), vec![0, 0, 0, 0]);
}

#[test]
fn a_new_leader_answers_a_sync_with_a_zxid_a_transaction_took() {
    let mut h = Harness::new();
    h.step(Input::RoleChanged(replica::Role::Leading { epoch: 3 }));
    // No write yet in epoch 3: the follower must wait for nothing (its applied 0), not for
    // 0x300000000, which no transaction will ever have.
    let sync = replica::ToLeader::Sync { session_id: 7, cxid: 1 };
    let out = h.step(Input::FromFollower { from: 2, msg: sync });
    let msg = replica::ToFollower::Synced { session_id: 7, cxid: 1, zxid: 0 };
    assert_eq!(out, vec![Output::ToFollower { to: 2, msg }]);
    let revalidate = replica::ToLeader::Revalidate { session_id: 7, conn: 4 };
    let out = h.step(Input::FromFollower { from: 2, msg: revalidate });
    assert_eq!(out, vec![Output::ToFollower { to: 2, msg: replica::ToFollower::Revalidated { conn: 4, zxid: 0 } }]);
}
