//! An independent load generator, built on this crate instead of `warren bench`'s own
//! protocol code, to check the bench's numbers: the same workload (sessions x requests in
//! flight, getData or setData on random znodes of `/warren-bench`), counted by a different
//! code path. `scripts/bench-agreement` runs both against one server.
//!
//! `cargo run --release -p client --example load -- HOST:PORT read|write SESSIONS INFLIGHT NODES SECONDS`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let server = arg(0, "127.0.0.1:2181");
    let write = arg(1, "read") == "write";
    let (sessions, inflight): (usize, usize) = (arg(2, "16").parse()?, arg(3, "8").parse()?);
    let (nodes, seconds): (u64, u64) = (arg(4, "1000").parse()?, arg(5, "10").parse()?);
    let measure_from = Instant::now() + Duration::from_secs(1);
    let end = measure_from + Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let client = client::Client::connect(&server).await?;
        for i in 0..inflight {
            let (client, done) = (client.clone(), done.clone());
            let mut rng = (s * inflight + i + 1) as u64 * 0x2545_F491_4F6C_DD1D;
            tasks.push(tokio::spawn(async move {
                let data = vec![b'z'; 128];
                while Instant::now() < end {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let path = format!("/warren-bench/n{:06}", rng % nodes);
                    let ok = if write {
                        client.set_data(&path, Some(&data), None).await.is_ok()
                    } else {
                        client.get_data(&path).await.is_ok()
                    };
                    if ok && Instant::now() >= measure_from && Instant::now() < end {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await?;
    }
    let ops = done.load(Ordering::Relaxed);
    println!("{{\"ops\":{ops},\"ops_per_sec\":{}}}", ops as f64 / seconds as f64);
    Ok(())
}
