//! `Peer::is_serving` in a small ensemble (three voters and an observer) on a lossless
//! network: a follower serves from UpToDate on, a leader once established, nobody while
//! looking; and a leader whose epoch runs out of zxids steps down only once its proposals
//! are committed.

use std::collections::{BTreeMap, VecDeque};
use zab::*;

const SYNC_LIMIT: u64 = 20;

struct Ensemble {
    peers: BTreeMap<ServerId, Peer>,
    inbox: VecDeque<(ServerId, Input)>,
    rejected: usize,
}

impl Ensemble {
    fn new(voters: &[u64], observers: &[u64]) -> Ensemble {
        Ensemble::with_counter_limit(voters, observers, u32::MAX)
    }

    fn with_counter_limit(voters: &[u64], observers: &[u64], counter_limit: u32) -> Ensemble {
        let voters: Vec<ServerId> = voters.iter().copied().map(ServerId).collect();
        let ids = voters.iter().copied().chain(observers.iter().copied().map(ServerId));
        let peers = ids
            .map(|id| {
                let config = Config {
                    id,
                    voters: voters.clone(),
                    init_limit: 40,
                    sync_limit: SYNC_LIMIT,
                    incarnation: 0,
                    counter_limit,
                };
                (id, Peer::new(config, Durable::default(), 0))
            })
            .collect();
        Ensemble { peers, inbox: VecDeque::new(), rejected: 0 }
    }

    /// Steps one peer, checking `is_serving` against the input, and queues what it sends;
    /// its appends are durable at once.
    fn step(&mut self, id: ServerId, input: Input) {
        let peer = self.peers.get_mut(&id).unwrap();
        let (before, up_to_date) =
            (peer.is_serving(), matches!(input, Input::Message { msg: Message::UpToDate { .. }, .. }));
        // A leader is established by a quorum's AckNewLeader once its own history is durable.
        let establishing =
            matches!(input, Input::Message { msg: Message::AckNewLeader { .. }, .. } | Input::Persisted { .. });
        for output in peer.step(input) {
            match output {
                Output::Send { to, stream, msg } => {
                    self.inbox.push_back((to, Input::Message { from: id, stream, msg }))
                }
                Output::Append { entries } => {
                    self.inbox.push_back((id, Input::Persisted { zxid: entries.last().unwrap().zxid }))
                }
                Output::Rejected { .. } => self.rejected += 1,
                _ => {}
            }
        }
        let peer = &self.peers[&id];
        match peer.state() {
            PeerState::Leading if peer.is_serving() && !before => {
                assert!(establishing, "s{} serves as leader before a quorum acknowledged it", id.0)
            }
            PeerState::Leading => {}
            PeerState::Following if peer.is_serving() && !before => {
                assert!(up_to_date, "s{} serves before UpToDate", id.0)
            }
            PeerState::Following => {}
            PeerState::Looking => assert!(!peer.is_serving()),
        }
    }

    fn tick(&mut self, id: ServerId) {
        self.step(id, Input::Tick);
    }

    fn deliver_all(&mut self) {
        while let Some((to, input)) = self.inbox.pop_front() {
            self.step(to, input);
        }
    }

    fn serving(&self) -> Vec<ServerId> {
        self.peers.iter().filter(|(_, p)| p.is_serving()).map(|(id, _)| *id).collect()
    }

    /// Ticks and delivers until every peer serves.
    fn settle(&mut self) -> Vec<ServerId> {
        let all: Vec<ServerId> = self.peers.keys().copied().collect();
        for _ in 0..100 {
            if self.serving() == all {
                break;
            }
            for id in all.clone() {
                self.tick(id);
            }
            self.deliver_all();
        }
        assert_eq!(self.serving(), all);
        all
    }
}

#[test]
fn peers_serve_once_synchronized_and_stop_when_looking() {
    let mut ensemble = Ensemble::new(&[1, 2, 3], &[4]);
    assert!(ensemble.serving().is_empty());
    let all = ensemble.settle();
    let leaders: Vec<ServerId> = all.iter().copied().filter(|id| ensemble.peers[id].is_established_leader()).collect();
    assert_eq!(leaders.len(), 1);

    // A follower that stops hearing from its leader looks again, and stops serving.
    let follower = *all.iter().find(|id| ensemble.peers[id].state() == PeerState::Following).unwrap();
    for _ in 0..=SYNC_LIMIT {
        ensemble.tick(follower);
    }
    assert_eq!(ensemble.peers[&follower].state(), PeerState::Looking);
    assert!(!ensemble.peers[&follower].is_serving());
}

#[test]
fn a_leader_out_of_zxids_steps_down_once_its_proposals_are_committed() {
    let mut ensemble = Ensemble::with_counter_limit(&[1, 2, 3], &[], 2);
    let all = ensemble.settle();
    let leader = *all.iter().find(|id| ensemble.peers[id].is_established_leader()).unwrap();
    let epoch = ensemble.peers[&leader].epoch();
    for data in [b"a", b"b", b"c"] {
        ensemble.step(leader, Input::Propose { data: data.to_vec() });
    }
    // The third has no zxid left: it is refused, and the first two are still in flight.
    assert_eq!(ensemble.rejected, 1);
    assert!(ensemble.peers[&leader].is_established_leader());
    let last = zxid(epoch, 2);
    while let Some((to, input)) = ensemble.inbox.pop_front() {
        ensemble.step(to, input);
        let peer = &ensemble.peers[&leader];
        if peer.state() == PeerState::Looking {
            assert_eq!(peer.delivered_zxid(), last, "it steps down right after committing its last zxid");
            return;
        }
        assert!(peer.delivered_zxid() < last, "committed {last:#x} and still leading");
    }
    panic!("the leader never stepped down");
}
