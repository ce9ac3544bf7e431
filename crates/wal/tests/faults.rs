//! The log under the fault model of the crate docs, through `MemDisk`: torn writes at every
//! byte of the last batch, failed fsyncs, a full disk, bit flips at rest.

use std::path::{Path, PathBuf};
use wal::mem::MemDisk;
use wal::{Wal, WalError, WalOptions};

fn options() -> WalOptions {
    WalOptions { segment_bytes: 1 << 20, preallocate_bytes: 4096, force_sync: true }
}

fn dir() -> PathBuf {
    PathBuf::from("/data/log")
}

fn batch(first: i64, n: i64) -> Vec<(i64, Vec<u8>)> {
    (first..first + n).map(|z| (z, format!("txn {z}").into_bytes())).collect()
}

fn zxids(entries: &[(i64, Vec<u8>)]) -> Vec<i64> {
    entries.iter().map(|(z, _)| *z).collect()
}

fn only_segment(disk: &MemDisk) -> PathBuf {
    use wal::Disk;
    let names = disk.list(&dir()).unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    dir().join(&names[0])
}

#[test]
fn appended_batches_come_back_in_order() {
    let disk = MemDisk::new();
    let (mut wal, recovery) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
    assert!(recovery.entries.is_empty());
    wal.append(&batch(1, 3)).unwrap();
    wal.append(&batch(4, 1)).unwrap();
    drop(wal);
    disk.crash();
    let (_, recovery) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
    assert_eq!(zxids(&recovery.entries), [1, 2, 3, 4]);
    assert_eq!(recovery.entries[1].1, b"txn 2");
    assert_eq!(recovery.cut, None);
    let (_, after) = Wal::open(disk, &dir(), options(), 2).unwrap();
    assert_eq!(zxids(&after.entries), [3, 4], "entries up to the snapshot's zxid are skipped");
}

#[test]
fn repair_write_tear_last_at_every_byte() {
    let last = batch(3, 3);
    let batch_bytes = 12 + 4 + last.iter().map(|(_, p)| 12 + p.len()).sum::<usize>();
    for keep in 0..=batch_bytes {
        let disk = MemDisk::new();
        let (mut wal, _) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
        wal.append(&batch(1, 2)).unwrap();
        disk.fail_syncs(1);
        assert!(wal.append(&last).is_err(), "the fsync of the last batch fails");
        drop(wal);
        let segment = only_segment(&disk);
        disk.crash_tearing(&segment, keep);
        let (mut wal, recovery) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
        let expected: &[i64] = if keep == batch_bytes { &[1, 2, 3, 4, 5] } else { &[1, 2] };
        assert_eq!(zxids(&recovery.entries), expected, "keep {keep}");
        // The length prefix starts with zero bytes: a tear inside them leaves nothing to cut.
        if keep >= 4 && keep < batch_bytes {
            let cut = recovery.cut.expect("a torn write is reported");
            assert_eq!(cut.file, segment);
        }
        // The log takes new writes after the cut, and they survive the next restart.
        let next = recovery.last_zxid + 1;
        wal.append(&batch(next, 1)).unwrap();
        drop(wal);
        disk.crash();
        let (_, again) = Wal::open(disk, &dir(), options(), 0).unwrap();
        assert_eq!(*zxids(&again.entries).last().unwrap(), next, "keep {keep}");
        assert_eq!(again.cut, None);
    }
}

#[test]
fn failed_fsync_loses_only_the_failed_batch_and_never_revives_it() {
    let disk = MemDisk::new();
    let (mut wal, _) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
    wal.append(&batch(1, 2)).unwrap();
    disk.fail_syncs(1);
    assert!(matches!(wal.append(&batch(3, 2)), Err(WalError::Io { op: "fsyncing", .. })));
    wal.repair().unwrap();
    // The failed zxids are handed out again to new writes.
    wal.append(&[(3, b"new 3".to_vec())]).unwrap();
    drop(wal);
    disk.crash();
    let (_, recovery) = Wal::open(disk, &dir(), options(), 0).unwrap();
    assert_eq!(zxids(&recovery.entries), [1, 2, 3]);
    assert_eq!(recovery.entries[2].1, b"new 3");
}

#[test]
fn full_disk_fails_the_write_and_recovers_when_space_returns() {
    let disk = MemDisk::new();
    let (mut wal, _) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
    wal.append(&batch(1, 1)).unwrap();
    disk.limit_space(Some(64));
    let big: Vec<(i64, Vec<u8>)> = vec![(2, vec![7; 10_000])];
    let err = wal.append(&big).unwrap_err();
    assert!(err.to_string().contains("no space left"), "{err}");
    // Repair truncates, which needs no space.
    wal.repair().unwrap();
    disk.limit_space(None);
    wal.append(&big).unwrap();
    drop(wal);
    disk.crash();
    let (_, recovery) = Wal::open(disk, &dir(), options(), 0).unwrap();
    assert_eq!(zxids(&recovery.entries), [1, 2]);
}

#[test]
fn bit_flip_in_the_middle_is_an_error_naming_file_and_offset() {
    let disk = MemDisk::new();
    let (mut wal, _) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
    wal.append(&batch(1, 2)).unwrap();
    wal.append(&batch(3, 2)).unwrap();
    drop(wal);
    let segment = only_segment(&disk);
    disk.flip_bit(&segment, 24 + 12 + 4 + 3);
    let err = Wal::open(disk, &dir(), options(), 0).err().expect("damage is an error");
    match &err {
        WalError::Corrupt { path, offset, .. } => assert_eq!((path.as_path(), *offset), (segment.as_path(), 24)),
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("log.0000000000000001: damaged at byte 24"), "{err}");
}

#[test]
fn segments_roll_and_recovery_reads_them_all() {
    let disk = MemDisk::new();
    let small = WalOptions { segment_bytes: 200, ..options() };
    let (mut wal, _) = Wal::open(disk.clone(), &dir(), small.clone(), 0).unwrap();
    for z in 1..=20 {
        wal.append(&batch(z, 1)).unwrap();
    }
    drop(wal);
    use wal::Disk;
    assert!(disk.list(Path::new("/data/log")).unwrap().len() > 2);
    disk.crash();
    let (_, recovery) = Wal::open(disk, &dir(), small, 0).unwrap();
    assert_eq!(zxids(&recovery.entries), (1..=20).collect::<Vec<_>>());
}

#[test]
fn purge_keeps_the_newest_snapshots_and_the_log_they_need() {
    use wal::snapshot::SnapshotWriter;
    let disk = MemDisk::new();
    let snaps = PathBuf::from("/data/snapshot");
    let small = WalOptions { segment_bytes: 100, ..options() };
    let (mut wal, _) = Wal::open(disk.clone(), &dir(), small, 0).unwrap();
    for z in 1..=40 {
        wal.append(&batch(z, 1)).unwrap();
        if z % 10 == 0 {
            let mut w = SnapshotWriter::create(disk.clone(), &snaps, z).unwrap();
            w.write_chunk(b"state").unwrap();
            w.finish().unwrap();
        }
    }
    let purged = wal::purge(&disk, &snaps, &dir(), 3).unwrap();
    let kept: Vec<i64> = wal::snapshot::list(&disk, &snaps).unwrap().into_iter().map(|(z, _)| z).collect();
    assert_eq!(kept, [40, 30, 20]);
    assert_eq!(purged.snapshots.len(), 1);
    assert!(!purged.segments.is_empty());
    // What remains replays everything after the oldest kept snapshot.
    let (_, recovery) = Wal::open(disk.clone(), &dir(), options(), 20).unwrap();
    assert_eq!(zxids(&recovery.entries), (21..=40).collect::<Vec<_>>());
    let (_, all) = Wal::open(disk, &dir(), options(), 0).unwrap();
    assert!(all.entries[0].0 > 1 && all.entries[0].0 <= 21, "older segments are gone");
}

#[test]
fn a_snapshot_with_a_flipped_bit_does_not_verify() {
    use wal::snapshot::{read, SnapshotWriter};
    let disk = MemDisk::new();
    let snaps = PathBuf::from("/data/snapshot");
    let mut w = SnapshotWriter::create(disk.clone(), &snaps, 7).unwrap();
    w.write_chunk(b"sessions").unwrap();
    w.write_chunk(b"nodes nodes nodes").unwrap();
    let (path, _) = w.finish().unwrap();
    let (zxid, chunks) = read(&disk, &path).unwrap();
    assert_eq!((zxid, chunks.len()), (7, 2));
    for offset in 16..disk.len(&path).unwrap() {
        let copy = MemDisk::new();
        use wal::Disk;
        copy.write_atomic(&path, &disk.read(&path).unwrap()).unwrap();
        copy.flip_bit(&path, offset);
        assert!(read(&copy, &path).is_err(), "a flip at byte {offset} went unnoticed");
    }
}

#[test]
fn compressed_snapshots_round_trip_and_detect_damage() {
    use wal::snapshot::{read, SnapshotWriter};
    let disk = MemDisk::new();
    let snaps = PathBuf::from("/data/snapshot");
    let body = vec![b'z'; 100_000];
    let mut w = SnapshotWriter::create_zstd(disk.clone(), &snaps, 9, 1).unwrap();
    w.write_chunk(b"sessions").unwrap();
    w.write_chunk(&body).unwrap();
    let (path, bytes) = w.finish().unwrap();
    assert!(bytes < 1000, "{bytes} bytes: the chunks were compressed");
    let (zxid, chunks) = read(&disk, &path).unwrap();
    assert_eq!((zxid, chunks), (9, vec![b"sessions".to_vec(), body]));
    disk.flip_bit(&path, 40);
    assert!(read(&disk, &path).is_err());
}

#[test]
fn a_damaged_length_in_the_middle_is_an_error_not_a_torn_tail() {
    let disk = MemDisk::new();
    let (mut wal, _) = Wal::open(disk.clone(), &dir(), options(), 0).unwrap();
    for z in 1..=6 {
        wal.append(&batch(z, 1)).unwrap();
    }
    drop(wal);
    let segment = only_segment(&disk);
    // The second batch starts after the header and the first batch (12 + 4 + 12 + "txn 1").
    let second = 24 + 12 + 4 + 12 + 5;
    disk.flip_bit(&segment, second);
    match Wal::open(disk, &dir(), options(), 0) {
        Err(WalError::Corrupt { offset, .. }) => assert_eq!(offset, second as u64),
        Err(other) => panic!("unexpected {other}"),
        Ok((_, recovery)) => panic!("acknowledged writes cut as a torn tail: {:?}", recovery.cut),
    }
}
