//! `cargo run --release -p sim -- --seed N [--count M] [--trace]`: runs the deterministic
//! ensemble simulator from the command line: one seed with its full trace, to replay a
//! failure, or many seeds. A developer's tool, so it lives here rather than in `warren`.

use anyhow::bail;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Run or replay seeds of the deterministic ensemble simulator")]
struct SimArgs {
    /// The (first) seed to run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many consecutive seeds to run.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Print every event of the run (for one seed).
    #[arg(long)]
    trace: bool,
}

fn main() -> anyhow::Result<()> {
    let args = SimArgs::parse();
    let options = sim::Options { trace: args.trace, ..sim::Options::default() };
    let mut total = sim::Coverage::default();
    for seed in args.seed..args.seed.saturating_add(args.count) {
        match sim::run(seed, &options) {
            Ok(report) => {
                for line in &report.trace {
                    println!("{line}");
                }
                if args.count == 1 {
                    println!("seed {seed}: ok {:?}", report.coverage);
                }
                total.add(&report.coverage);
            }
            Err(failure) => {
                for line in &failure.trace {
                    println!("{line}");
                }
                bail!("{failure}");
            }
        }
    }
    if args.count > 1 {
        println!("{} seeds from {}: ok; paths reached: {total:?}", args.count, args.seed);
    }
    Ok(())
}
