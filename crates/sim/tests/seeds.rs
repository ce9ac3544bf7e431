//! CI's simulation run: 500 seeds through the safety and liveness phases; prints how often
//! each recovery path and each client path was reached, and fails with the seed to replay.

#[test]
fn five_hundred_seeds_keep_every_invariant() {
    let first: u64 = std::env::var("WARREN_SIM_FIRST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut total = sim::Coverage::default();
    for seed in first..first + 500 {
        // A peer's own assertion (a broken internal invariant) is a failure of this seed too.
        match std::panic::catch_unwind(|| sim::run(seed, &sim::Options::default())) {
            Ok(Ok(report)) => total.add(&report.coverage),
            Ok(Err(failure)) => panic!("{failure}"),
            Err(_) => panic!("seed {seed} panicked (replay: cargo run --release -p sim -- --seed {seed} --trace)"),
        }
    }
    println!("paths reached over 500 seeds: {total:?}");
    assert!(total.truncs > 0, "TRUNC was never reached: {total:?}");
    assert!(total.diffs > 0, "DIFF was never reached: {total:?}");
    assert!(total.snaps > 0, "SNAP was never reached: {total:?}");
    assert!(total.leader_crashes_mid_broadcast > 0, "no leader crashed mid-broadcast: {total:?}");
    assert!(total.restarts_with_uncommitted_log > 0, "no server returned with a longer log: {total:?}");
    assert!(total.epoch_rollovers > 0, "no epoch ran out of zxids: {total:?}");
    assert!(total.observer_deliveries > 0, "no observer applied a commit: {total:?}");
    assert!(total.acked_writes > 0, "no client write was acknowledged: {total:?}");
    assert!(total.syncs_answered > 0, "no sync was answered: {total:?}");
    assert!(total.reconnects > 0, "no session moved to a new connection: {total:?}");
    assert!(total.session_expiries > 0, "no session expired: {total:?}");
}

#[test]
fn a_seed_replays_exactly() {
    let options = sim::Options { trace: true, ..sim::Options::default() };
    let first = sim::run(42, &options);
    let second = sim::run(42, &options);
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
}

/// Seeds that found a bug once, each named for what it found.
#[test]
fn seeds_that_once_failed_pass() {
    // Epochs of a few zxids: a leader stepped down as soon as its zxids ran out, with its
    // last proposals uncommitted and their clients cut off, epoch after epoch, so that no
    // write was acknowledged after healing.
    let livelock_at_epoch_rollover = 101_328;
    match sim::run(livelock_at_epoch_rollover, &sim::Options::default()) {
        Ok(report) => assert!(report.coverage.epoch_rollovers > 0, "the seed still runs an epoch out"),
        Err(failure) => panic!("{failure}"),
    }
}
