//! The wire codec: every message comes back as it was sent, the bytes are pinned, and no
//! input makes decoding panic or allocate for more than it holds.

use proptest::prelude::*;
use zab::*;

/// Exhaustive, so that a new message cannot be left out of `every_variant_round_trips`.
fn variant(msg: &Message) -> usize {
    match msg {
        Message::Notification { .. } => 0,
        Message::FollowerInfo { .. } => 1,
        Message::LeaderInfo { .. } => 2,
        Message::AckEpoch { .. } => 3,
        Message::Trunc { .. } => 4,
        Message::Snap { .. } => 5,
        Message::Diff { .. } => 6,
        Message::NewLeader { .. } => 7,
        Message::AckNewLeader { .. } => 8,
        Message::UpToDate { .. } => 9,
        Message::Proposal { .. } => 10,
        Message::Ack { .. } => 11,
        Message::Commit { .. } => 12,
        Message::Ping { .. } => 13,
        Message::Relay { .. } => 14,
    }
}

fn round_trip(stream: (u64, u64), msg: &Message) {
    let frame = encode_frame(stream, msg);
    let (len, more) = frame_len(frame[..4].try_into().unwrap()).unwrap();
    assert!(!more);
    assert_eq!(len, frame.len() - 4, "{msg:?}");
    assert_eq!(decode_body(&frame[4..]), Ok((stream, msg.clone())));
}

fn body(stream: (u64, u64), msg: &Message) -> Vec<u8> {
    encode_frame(stream, msg).split_off(4)
}

#[test]
fn every_variant_round_trips() {
    let vote = |leader, zxid, epoch| Vote { leader: ServerId(leader), zxid, epoch };
    let entry = |zxid, data: &[u8]| Entry { zxid, data: data.to_vec() };
    let messages = vec![
        Message::Notification { vote: vote(1, zxid(2, 3), 2), state: PeerState::Looking, round: 4 },
        Message::Notification { vote: vote(u64::MAX, i64::MAX, u32::MAX), state: PeerState::Following, round: 0 },
        Message::Notification { vote: vote(0, i64::MIN, 0), state: PeerState::Leading, round: u64::MAX },
        Message::FollowerInfo { session: u64::MAX, accepted_epoch: u32::MAX, last_zxid: -1 },
        Message::LeaderInfo { epoch: 7 },
        Message::AckEpoch { session: 1, epoch: 2, current_epoch: 1, last_zxid: zxid(1, u32::MAX) },
        Message::Trunc { epoch: 3, zxid: 0 },
        Message::Snap { epoch: 3, zxid: zxid(2, 9), snapshot: Vec::new() },
        Message::Snap { epoch: 3, zxid: i64::MIN, snapshot: (0..=255).cycle().take(1 << 20).collect() },
        Message::Diff { epoch: 4, entries: Vec::new() },
        Message::Diff { epoch: 4, entries: vec![entry(zxid(4, 1), b""), entry(-5, b"x"), entry(i64::MAX, &[0; 300])] },
        Message::NewLeader { epoch: 4, zxid: zxid(4, 0) },
        Message::AckNewLeader { epoch: u32::MAX },
        Message::UpToDate { epoch: 4 },
        Message::Proposal { epoch: 4, entry: entry(zxid(4, 2), b"") },
        Message::Proposal { epoch: 4, entry: entry(zxid(4, 3), b"set /a 1") },
        Message::Ack { epoch: 4, zxid: zxid(4, 3) },
        Message::Commit { epoch: 4, zxid: i64::MIN },
        Message::Ping { epoch: 0 },
        Message::Relay { data: b"forwarded".to_vec() },
    ];
    let mut seen = [false; 15];
    for (i, msg) in messages.iter().enumerate() {
        seen[variant(msg)] = true;
        round_trip((i as u64, u64::MAX - i as u64), msg);
    }
    assert!(seen.iter().all(|s| *s), "a message variant is not tested: {seen:?}");
}

#[test]
fn the_bytes_are_pinned() {
    // Servers of different versions must understand each other: a change here is a protocol change.
    let ping = encode_frame((1, 2), &Message::Ping { epoch: 3 });
    assert_eq!(ping, [[0, 0, 0, 21].as_slice(), &1u64.to_be_bytes(), &2u64.to_be_bytes(), &[14, 0, 0, 0, 3]].concat());
    let diff = Message::Diff { epoch: 5, entries: vec![Entry { zxid: -2, data: vec![0xab, 0xcd] }] };
    let expected = [
        [0, 0, 0, 39].as_slice(),
        &[0; 8],
        &9u64.to_be_bytes(),
        &[7],
        &[0, 0, 0, 5],
        &[0, 0, 0, 1],
        &(-2i64).to_be_bytes(),
        &[0, 0, 0, 2, 0xab, 0xcd],
    ]
    .concat();
    assert_eq!(encode_frame((0, 9), &diff), expected);
    let notification = Message::Notification {
        vote: Vote { leader: ServerId(1), zxid: zxid(2, 3), epoch: 2 },
        state: PeerState::Leading,
        round: 6,
    };
    let expected = [
        [0, 0, 0, 46].as_slice(),
        &[0; 16],
        &[1],
        &1u64.to_be_bytes(),
        &[0, 0, 0, 2, 0, 0, 0, 3],
        &[0, 0, 0, 2],
        &[2],
        &6u64.to_be_bytes(),
    ]
    .concat();
    assert_eq!(encode_frame((0, 0), &notification), expected);
}

#[test]
fn frame_lengths_above_the_maximum_are_refused() {
    let prefix = |n: u32| n.to_be_bytes();
    assert_eq!(frame_len(prefix(0)), Ok((0, false)));
    assert_eq!(frame_len(prefix(MAX_FRAME as u32)), Ok((MAX_FRAME, false)));
    assert_eq!(frame_len(prefix(MAX_FRAME as u32 | MORE)), Ok((MAX_FRAME, true)));
    let too_large = WireError::FrameTooLarge { length: MAX_FRAME + 1, max: MAX_FRAME };
    assert_eq!(frame_len(prefix(MAX_FRAME as u32 + 1)), Err(too_large));
    assert!(frame_len(prefix(u32::MAX)).is_err());
}

/// A body of the given tag and fields, after a zero stream position.
fn raw(tag: u8, fields: &[&[u8]]) -> Vec<u8> {
    [[0; 16].as_slice(), &[tag], &fields.concat()].concat()
}

#[test]
fn counts_beyond_the_bytes_left_are_refused_before_allocating() {
    // Were the count trusted, this would reserve u32::MAX entries (over 100 GiB) and abort.
    let diff = raw(7, &[&[0, 0, 0, 1], &u32::MAX.to_be_bytes(), &[0; 12]]);
    assert_eq!(decode_body(&diff), Err(WireError::TooManyEntries { offset: 21, count: u32::MAX, available: 12 }));
    // Two empty entries take 24 bytes: a count of 2 fits, a count of 3 does not.
    let two = raw(7, &[&[0, 0, 0, 1], &[0, 0, 0, 2], &[0; 24]]);
    let empty = Entry { zxid: 0, data: Vec::new() };
    assert_eq!(decode_body(&two), Ok(((0, 0), Message::Diff { epoch: 1, entries: vec![empty.clone(), empty] })));
    let three = raw(7, &[&[0, 0, 0, 1], &[0, 0, 0, 3], &[0; 24]]);
    assert!(matches!(decode_body(&three), Err(WireError::TooManyEntries { count: 3, .. })));
    // A byte string's length is checked against what is there before anything is copied.
    // (A snapshot's length is a u64.)
    let snap = raw(6, &[&[0, 0, 0, 1], &[0; 8], &u64::MAX.to_be_bytes(), b"abc"]);
    assert_eq!(decode_body(&snap), Err(WireError::Truncated { offset: 37, needed: usize::MAX, available: 3 }));
    let relay = raw(15, &[&u32::MAX.to_be_bytes(), b"abc"]);
    assert_eq!(decode_body(&relay), Err(WireError::Truncated { offset: 21, needed: u32::MAX as usize, available: 3 }));
}

#[test]
fn unknown_tags_and_states_and_trailing_bytes_are_errors() {
    for tag in [0].into_iter().chain(16..=255) {
        assert_eq!(decode_body(&raw(tag, &[&[0; 64]])), Err(WireError::UnknownTag(tag)));
    }
    let notification = raw(1, &[&[0; 20], &[3], &[0; 8]]);
    assert_eq!(decode_body(&notification), Err(WireError::UnknownPeerState(3)));
    let mut ping = body((1, 1), &Message::Ping { epoch: 1 });
    ping.push(0);
    assert_eq!(decode_body(&ping), Err(WireError::TrailingBytes(1)));
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    (any::<i64>(), prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(zxid, data)| Entry { zxid, data })
}

fn arb_message() -> impl Strategy<Value = Message> {
    let state = prop_oneof![Just(PeerState::Looking), Just(PeerState::Following), Just(PeerState::Leading)];
    let vote = (any::<u64>(), any::<i64>(), any::<u32>()).prop_map(|(l, zxid, epoch)| Vote {
        leader: ServerId(l),
        zxid,
        epoch,
    });
    prop_oneof![
        (vote, state, any::<u64>()).prop_map(|(vote, state, round)| Message::Notification { vote, state, round }),
        (any::<u64>(), any::<u32>(), any::<i64>()).prop_map(|(session, accepted_epoch, last_zxid)| {
            Message::FollowerInfo { session, accepted_epoch, last_zxid }
        }),
        any::<u32>().prop_map(|epoch| Message::LeaderInfo { epoch }),
        (any::<u64>(), any::<u32>(), any::<u32>(), any::<i64>()).prop_map(
            |(session, epoch, current_epoch, last_zxid)| {
                Message::AckEpoch { session, epoch, current_epoch, last_zxid }
            }
        ),
        (any::<u32>(), any::<i64>()).prop_map(|(epoch, zxid)| Message::Trunc { epoch, zxid }),
        (any::<u32>(), any::<i64>(), prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(epoch, zxid, snapshot)| Message::Snap { epoch, zxid, snapshot }),
        (any::<u32>(), prop::collection::vec(arb_entry(), 0..5))
            .prop_map(|(epoch, entries)| Message::Diff { epoch, entries }),
        (any::<u32>(), any::<i64>()).prop_map(|(epoch, zxid)| Message::NewLeader { epoch, zxid }),
        any::<u32>().prop_map(|epoch| Message::AckNewLeader { epoch }),
        any::<u32>().prop_map(|epoch| Message::UpToDate { epoch }),
        (any::<u32>(), arb_entry()).prop_map(|(epoch, entry)| Message::Proposal { epoch, entry }),
        (any::<u32>(), any::<i64>()).prop_map(|(epoch, zxid)| Message::Ack { epoch, zxid }),
        (any::<u32>(), any::<i64>()).prop_map(|(epoch, zxid)| Message::Commit { epoch, zxid }),
        any::<u32>().prop_map(|epoch| Message::Ping { epoch }),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|data| Message::Relay { data }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn messages_round_trip(stream in any::<(u64, u64)>(), msg in arb_message()) {
        let frame = encode_frame(stream, &msg);
        prop_assert_eq!(frame_len(frame[..4].try_into().unwrap()), Ok((frame.len() - 4, false)));
        prop_assert_eq!(decode_body(&frame[4..]), Ok((stream, msg)));
    }

    #[test]
    fn every_truncation_of_a_body_is_an_error(stream in any::<(u64, u64)>(), msg in arb_message()) {
        let body = body(stream, &msg);
        for cut in 0..body.len() {
            prop_assert!(decode_body(&body[..cut]).is_err(), "a body cut at {} of {} decoded", cut, body.len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_body(&bytes);
    }

    #[test]
    fn damaged_bodies_never_panic(msg in arb_message(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        // Random bytes rarely get past the tag; a valid body with one byte changed reaches every field.
        let mut body = body((0, 0), &msg);
        let i = at.index(body.len());
        body[i] = byte;
        let _ = decode_body(&body);
    }
}

/// Splits frames into their bodies' pieces, checking each prefix.
fn join_frames(mut frames: &[u8]) -> Vec<Vec<u8>> {
    let mut bodies = vec![Vec::new()];
    while !frames.is_empty() {
        let (len, more) = frame_len(frames[..4].try_into().unwrap()).unwrap();
        check_body_growth(bodies.last().unwrap().len(), len).unwrap();
        bodies.last_mut().unwrap().extend_from_slice(&frames[4..4 + len]);
        frames = &frames[4 + len..];
        if !more {
            bodies.push(Vec::new());
        }
    }
    bodies.pop();
    bodies
}

#[test]
fn a_message_larger_than_a_frame_travels_in_several() {
    let snap = Message::Snap { epoch: 2, zxid: 9, snapshot: (0..100u8).collect() };
    let frames = encode_frames((1, 5), &snap, 16);
    // 16 + 1 + 4 + 8 + 8 + 100 = 137 bytes of body: 8 full frames and one of 9 bytes.
    assert_eq!(frames.len(), 137 + 9 * 4);
    let bodies = join_frames(&frames);
    assert_eq!(bodies.len(), 1);
    assert_eq!(decode_body(&bodies[0]), Ok(((1, 5), snap.clone())));
    // A body that fits is one frame, as before.
    assert_eq!(encode_frames((1, 5), &snap, 137), encode_frame((1, 5), &snap));
    assert_eq!(join_frames(&encode_frame((1, 5), &snap)), bodies);
}

#[test]
fn a_joined_body_is_bounded() {
    assert_eq!(check_body_growth(0, MAX_FRAME), Ok(()));
    assert_eq!(check_body_growth(MAX_BODY - 1, 1), Ok(()));
    let too_large = Err(WireError::BodyTooLarge { max: MAX_BODY });
    assert_eq!(check_body_growth(MAX_BODY, 1), too_large);
    assert_eq!(check_body_growth(usize::MAX, 1), too_large);
}
