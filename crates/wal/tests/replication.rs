//! What ZAB replication needs of the log, through `MemDisk`: zxids that jump at each new
//! epoch, a follower cutting its log or discarding it for a snapshot (with a crash after
//! every change either makes), and the epochs kept across restarts.

use std::path::{Path, PathBuf};
use wal::epochs::{self, Epochs};
use wal::mem::MemDisk;
use wal::{Disk, Wal, WalError, WalOptions};

fn dir() -> PathBuf {
    PathBuf::from("/data/log")
}

/// Two batches to a segment, so that the history below spans three segments.
fn options() -> WalOptions {
    WalOptions { segment_bytes: 120, preallocate_bytes: 256, force_sync: true }
}

fn zxid(epoch: i64, counter: i64) -> i64 {
    epoch << 32 | counter
}

fn entry(z: i64) -> (i64, Vec<u8>) {
    (z, format!("txn {z:x}").into_bytes())
}

/// Epochs 1, 2 and 4, in batches of three, two of which straddle an epoch change.
fn history() -> Vec<(i64, Vec<u8>)> {
    let epoch = |e, n| (1..=n).map(move |c| entry(zxid(e, c)));
    epoch(1, 7).chain(epoch(2, 5)).chain(epoch(4, 6)).collect()
}

fn zxids(entries: &[(i64, Vec<u8>)]) -> Vec<i64> {
    entries.iter().map(|(z, _)| *z).collect()
}

fn segments(disk: &MemDisk) -> Vec<String> {
    let mut names: Vec<String> = disk.list(&dir()).unwrap().into_iter().filter(|n| !n.ends_with(".tmp")).collect();
    names.sort();
    names
}

/// A disk holding `history()`, durably.
fn logged() -> MemDisk {
    let disk = MemDisk::new();
    let (mut wal, _) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
    for batch in history().chunks(3) {
        wal.append(batch).unwrap();
    }
    assert_eq!(segments(&disk), ["log.0000000100000001", "log.0000000100000007", "log.0000000400000001"]);
    disk
}

fn reopen(disk: &MemDisk) -> (Wal<MemDisk>, Vec<(i64, Vec<u8>)>) {
    let (wal, recovery) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
    assert_eq!(recovery.cut, None);
    (wal, recovery.entries)
}

/// Every cut worth trying: before everything, at each entry (inside batches, at their
/// ends, at segment ends), between epochs, at and past the end.
fn cuts() -> Vec<i64> {
    let mut cuts = vec![0, 5, zxid(3, 0), zxid(4, 0), i64::MAX];
    cuts.extend(zxids(&history()));
    cuts
}

#[test]
fn recovery_and_purge_take_zxids_that_jump_at_each_epoch() {
    use wal::snapshot::SnapshotWriter;
    let disk = logged();
    let (_, entries) = reopen(&disk);
    assert_eq!(entries, history());
    let (_, after) = Wal::open(disk.clone(), &dir(), options(), zxid(1, 7)).unwrap();
    assert_eq!(zxids(&after.entries), zxids(&history()[7..]));
    assert_eq!(after.last_zxid, zxid(4, 6));

    let snaps = PathBuf::from("/data/snapshot");
    let snapshot = |z| {
        let mut w = SnapshotWriter::create(disk.clone(), &snaps, z).unwrap();
        w.write_chunk(b"state").unwrap();
        w.finish().unwrap();
    };
    // Inside the first segment: nothing goes.
    snapshot(zxid(1, 5));
    assert!(wal::purge(&disk, &snaps, &dir(), 1).unwrap().segments.is_empty());
    // At the end of epoch 2, the last entry of the second segment: the first goes. The
    // second stays, as its successor starts at epoch 4 and it might hold anything before.
    snapshot(zxid(2, 5));
    let purged = wal::purge(&disk, &snaps, &dir(), 1).unwrap();
    assert_eq!(purged.segments, [dir().join("log.0000000100000001")]);
    let (_, after) = Wal::open(disk, &dir(), options(), zxid(2, 5)).unwrap();
    assert_eq!(zxids(&after.entries), zxids(&history()[12..]));
}

#[test]
fn truncate_keeps_exactly_the_entries_up_to_the_cut() {
    for cut in cuts() {
        let disk = logged();
        let (mut wal, _) = reopen(&disk);
        wal.truncate_after(cut).unwrap();
        let kept: Vec<_> = history().into_iter().filter(|(z, _)| *z <= cut).collect();
        let last = kept.last().map_or(0, |(z, _)| *z);
        assert_eq!(wal.last_zxid(), last, "cut {cut:#x}");
        // Appends continue after the cut, in a new epoch, and everything survives a crash.
        let next = entry(zxid(9, 1));
        wal.append(std::slice::from_ref(&next)).unwrap();
        disk.crash();
        let (wal, entries) = reopen(&disk);
        assert_eq!(entries, [kept, vec![next]].concat(), "cut {cut:#x}");
        assert_eq!(wal.last_zxid(), zxid(9, 1));
    }
}

#[test]
fn truncate_leaves_whole_batches_byte_for_byte_and_splits_the_cut_one() {
    let disk = logged();
    let first = dir().join("log.0000000100000001");
    let before = disk.read(&first).unwrap();
    let (mut wal, _) = reopen(&disk);
    // Inside the second batch: the first stays as it was, the second keeps two entries.
    wal.truncate_after(zxid(1, 5)).unwrap();
    assert_eq!(segments(&disk), ["log.0000000100000001"]);
    let after = disk.read(&first).unwrap();
    let first_batch = 24 + 12 + 4 + history()[..3].iter().map(|(_, p)| 12 + p.len()).sum::<usize>();
    assert_eq!(after[..first_batch], before[..first_batch]);
    assert_ne!(after[..first_batch + 12], before[..first_batch + 12], "the split batch is re-encoded");
    let (_, entries) = reopen(&disk);
    assert_eq!(entries, history()[..5]);
}

#[test]
fn truncate_at_or_past_the_end_changes_nothing() {
    let disk = logged();
    let (mut wal, _) = reopen(&disk);
    // Any change would fail.
    disk.stop_after(0);
    wal.truncate_after(zxid(4, 6)).unwrap();
    wal.truncate_after(zxid(5, 0)).unwrap();
    assert_eq!(wal.last_zxid(), zxid(4, 6));
    disk.crash();
    assert_eq!(reopen(&disk).1, history());
}

/// `entries` must be the first `n` entries of the history for some `n >= at_least`.
fn assert_prefix(entries: &[(i64, Vec<u8>)], at_least: usize, context: &str) {
    let history = history();
    assert!(entries.len() >= at_least && entries.len() <= history.len(), "{context}: {:x?}", zxids(entries));
    assert_eq!(entries, &history[..entries.len()], "{context}");
}

#[test]
fn a_crash_at_any_point_of_a_truncate_leaves_a_prefix_holding_the_cut() {
    for cut in cuts() {
        let kept = history().iter().filter(|(z, _)| *z <= cut).count();
        for changes in 0.. {
            let disk = logged();
            let (mut wal, _) = reopen(&disk);
            disk.stop_after(changes);
            let done = wal.truncate_after(cut).is_ok();
            drop(wal);
            disk.crash();
            let context = format!("cut {cut:#x} after {changes} changes");
            let (mut wal, entries) = reopen(&disk);
            if done {
                assert_eq!(entries, history()[..kept], "{context}");
                break;
            }
            assert_prefix(&entries, kept, &context);
            // Done again after the restart, it completes.
            wal.truncate_after(cut).unwrap();
            disk.crash();
            assert_eq!(reopen(&disk).1, history()[..kept], "{context}, then again");
        }
    }
}

#[test]
fn truncate_does_not_launder_damage_in_what_it_keeps() {
    let disk = logged();
    let (mut wal, _) = reopen(&disk);
    // A bit of the first batch flips at rest; the cut is in the second.
    disk.flip_bit(&dir().join("log.0000000100000001"), 24 + 12 + 4 + 3);
    assert!(matches!(wal.truncate_after(zxid(1, 5)), Err(WalError::Corrupt { offset: 24, .. })));
    assert!(matches!(Wal::open(disk, &dir(), options(), 0), Err(WalError::Corrupt { offset: 24, .. })));
}

#[test]
fn a_segment_left_without_a_batch_goes_as_the_next_zxid_may_be_below_its_name() {
    for restart in [false, true] {
        let disk = logged();
        // A proposal of epoch 6 starts a segment, and never reaches the disk: the machine
        // dies before the fsync, or the disk is full.
        let mut wal = if restart {
            let no_fsync = WalOptions { force_sync: false, ..options() };
            let (mut wal, _) = Wal::open(disk.clone(), &dir(), no_fsync, 0).unwrap();
            wal.append(&[entry(zxid(6, 1))]).unwrap();
            drop(wal);
            disk.crash();
            reopen(&disk).0
        } else {
            let (mut wal, _) = reopen(&disk);
            disk.limit_space(Some(1000));
            assert!(wal.append(&[(zxid(6, 1), vec![6; 2000])]).is_err());
            wal.repair().unwrap();
            disk.limit_space(None);
            wal
        };
        // A leader whose history goes on in epoch 5 instead.
        wal.append(&[entry(zxid(5, 1))]).unwrap();
        wal.append(&[entry(zxid(7, 1))]).unwrap();
        let expected = ["log.0000000100000001", "log.0000000100000007", "log.0000000400000001", "log.0000000500000001"];
        assert_eq!(segments(&disk), expected, "restart {restart}");
        wal.truncate_after(zxid(5, 1)).unwrap();
        drop(wal);
        disk.crash();
        assert_eq!(reopen(&disk).1, [history(), vec![entry(zxid(5, 1))]].concat(), "restart {restart}");
    }
}

#[test]
fn reset_discards_the_log_for_a_snapshot() {
    let disk = logged();
    let (mut wal, _) = reopen(&disk);
    let snapshot = zxid(5, 3);
    wal.reset(snapshot).unwrap();
    assert_eq!(wal.last_zxid(), snapshot);
    assert!(segments(&disk).is_empty());
    let (_, recovery) = Wal::open(disk.clone(), &dir(), options(), snapshot).unwrap();
    assert!(recovery.entries.is_empty());
    // The next append starts a segment of its own.
    wal.append(&[entry(zxid(5, 4)), entry(zxid(5, 5))]).unwrap();
    assert_eq!(segments(&disk), ["log.0000000500000004"]);
    disk.crash();
    let (_, recovery) = Wal::open(disk, &dir(), options(), snapshot).unwrap();
    assert_eq!(zxids(&recovery.entries), [zxid(5, 4), zxid(5, 5)]);
}

#[test]
fn a_crash_at_any_point_of_a_reset_leaves_a_prefix() {
    for changes in 0.. {
        let disk = logged();
        let (mut wal, _) = reopen(&disk);
        disk.stop_after(changes);
        let done = wal.reset(zxid(5, 0)).is_ok();
        drop(wal);
        disk.crash();
        let (_, entries) = reopen(&disk);
        if done {
            assert!(entries.is_empty());
            break;
        }
        assert_prefix(&entries, 0, &format!("after {changes} changes"));
    }
}

#[test]
fn epochs_are_zero_until_written_then_kept_as_zookeeper_keeps_them() {
    let disk = MemDisk::new();
    let data = Path::new("/data");
    assert_eq!(epochs::read(&disk, data).unwrap(), Epochs::default());
    epochs::write(&disk, data, Epochs { accepted: 3, current: 2 }).unwrap();
    disk.crash();
    assert_eq!(disk.read(&data.join("acceptedEpoch")).unwrap(), b"3");
    assert_eq!(disk.read(&data.join("currentEpoch")).unwrap(), b"2");
    assert_eq!(epochs::read(&disk, data).unwrap(), Epochs { accepted: 3, current: 2 });
    // A crash between the two files: the accepted epoch is written first.
    disk.stop_after(1);
    assert!(epochs::write(&disk, data, Epochs { accepted: 4, current: 4 }).is_err());
    disk.crash();
    assert_eq!(epochs::read(&disk, data).unwrap(), Epochs { accepted: 4, current: 2 });
    // ZooKeeper's reader takes a line end; so does this one.
    disk.write_atomic(&data.join("currentEpoch"), b"4\n").unwrap();
    assert_eq!(epochs::read(&disk, data).unwrap(), Epochs { accepted: 4, current: 4 });
}

#[test]
fn epoch_files_that_do_not_parse_are_errors_naming_the_file() {
    let data = Path::new("/data");
    let bad: [&[u8]; 7] = [b"", b"three", b"-1", b" 5", b"4294967296", b"5\n6", &[0xff, b'5']];
    for contents in bad {
        let disk = MemDisk::new();
        epochs::write(&disk, data, Epochs { accepted: 1, current: 1 }).unwrap();
        disk.write_atomic(&data.join("acceptedEpoch"), contents).unwrap();
        let err = epochs::read(&disk, data).expect_err("does not parse");
        assert!(err.to_string().starts_with("/data/acceptedEpoch: "), "{contents:?}: {err}");
    }
    let disk = MemDisk::new();
    disk.write_atomic(&data.join("currentEpoch"), b"2").unwrap();
    let err = epochs::read(&disk, data).expect_err("current above accepted");
    assert!(err.to_string().contains("currentEpoch"), "{err}");
}
