//! `warren bench`: a load generator for any ZooKeeper-compatible server, so that the same
//! command measures Warren and ZooKeeper side by side.
//!
//! It speaks the wire protocol directly (through `proto`), with no client library in the
//! way: each session is one connection that keeps a fixed number of requests in flight and
//! times each from write to reply. Latencies go into an HDR histogram.

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use proto::{
    encode_record_frame, encode_request_frame, ConnectRequest, ConnectResponse, CreateRequest, ErrorCode,
    PathWatchRequest, Record, ReplyHeader, Request, SetDataRequest,
};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// getData on random znodes.
    Read,
    /// setData on random znodes.
    Write,
    /// create of new sequential znodes.
    Create,
    /// getData and setData on random znodes, `--read-percent` of them reads.
    Mixed,
    /// multi of `--multi-ops` setData on random znodes (one transaction each).
    Multi,
    /// Watch fan-out: every session but one watches one znode, the last one sets it; an op
    /// is a notification delivered, timed from the write.
    Watch,
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// host:port of the server to measure; for an ensemble, a comma-separated list: the
    /// sessions are spread over the servers in turn.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub server: String,
    #[arg(long, value_enum, default_value = "read")]
    pub workload: Workload,
    /// Concurrent sessions, one connection each.
    #[arg(long, default_value_t = 16)]
    pub sessions: usize,
    /// Requests each session keeps in flight.
    #[arg(long, default_value_t = 8)]
    pub inflight: usize,
    /// Znodes the workload spreads over.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Bytes of data per znode.
    #[arg(long, default_value_t = 128)]
    pub size: usize,
    /// Measured seconds (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only create the znodes, then exit (to fill a server for restart and memory tests).
    #[arg(long)]
    pub fill_only: bool,
    /// Share of reads in the mixed workload.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub read_percent: u8,
    /// Operations per multi in the multi workload.
    #[arg(long, default_value_t = 4)]
    pub multi_ops: usize,
}

const ROOT: &str = "/warren-bench";

struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_xid: i32,
}

impl Session {
    async fn open(server: &str) -> anyhow::Result<Session> {
        let stream = TcpStream::connect(server).await.with_context(|| format!("connecting to {server}"))?;
        stream.set_nodelay(true)?;
        let (reader, mut writer) = stream.into_split();
        let request =
            ConnectRequest { timeout_ms: 30_000, passwd: vec![0; 16], read_only: Some(false), ..Default::default() };
        writer.write_all(&encode_record_frame(&request)).await?;
        let mut session = Session { reader: BufReader::new(reader), writer, next_xid: 1 };
        let response = ConnectResponse::from_bytes(&session.read_frame().await?)?;
        if response.timeout_ms <= 0 {
            bail!("{server} refused the session");
        }
        Ok(session)
    }

    async fn read_frame(&mut self) -> anyhow::Result<Vec<u8>> {
        let len = self.reader.read_i32().await?;
        if !(0..=proto::DEFAULT_MAX_FRAME as i32).contains(&len) {
            bail!("bad frame length {len}");
        }
        let mut payload = vec![0; len as usize];
        self.reader.read_exact(&mut payload).await?;
        Ok(payload)
    }

    fn frame(&mut self, request: &Request) -> Vec<u8> {
        self.next_xid += 1;
        encode_request_frame(self.next_xid, request)
    }

    /// Reads replies until the next one that is not a watch notification.
    async fn read_reply(&mut self) -> anyhow::Result<ReplyHeader> {
        loop {
            let header = ReplyHeader::from_bytes(&self.read_frame().await?)?;
            if header.xid != proto::xid::NOTIFICATION {
                return Ok(header);
            }
        }
    }

    /// Sends all requests pipelined and fails on any error other than `tolerated`.
    async fn call_all(&mut self, requests: &[Request], tolerated: ErrorCode) -> anyhow::Result<()> {
        let mut bytes = Vec::new();
        for r in requests {
            bytes.extend(self.frame(r));
        }
        self.writer.write_all(&bytes).await?;
        for _ in requests {
            let header = self.read_reply().await?;
            if header.err != 0 && header.err != tolerated as i32 {
                bail!("setup request failed with error {}", header.err);
            }
        }
        Ok(())
    }
}

/// Session `index`'s server from a comma-separated list (one server: always that one).
fn server_for(servers: &str, index: usize) -> &str {
    let list: Vec<&str> = servers.split(',').collect();
    list[index % list.len()]
}

fn node_path(i: usize) -> String {
    format!("{ROOT}/n{i:06}")
}

/// Creates the znodes (or resets their data if they exist).
async fn fill(args: &BenchArgs) -> anyhow::Result<()> {
    let mut s = Session::open(server_for(&args.server, 0)).await?;
    let create = |path: String, data: Vec<u8>| {
        Request::Create(CreateRequest {
            path,
            data: Some(data),
            acl: vec![proto::Acl::anyone(proto::perms::ALL)],
            flags: 0,
        })
    };
    s.call_all(&[create(ROOT.into(), vec![])], ErrorCode::NodeExists).await?;
    let data = vec![b'x'; args.size];
    for chunk in (0..args.nodes).collect::<Vec<_>>().chunks(256) {
        let creates: Vec<Request> = chunk.iter().map(|i| create(node_path(*i), data.clone())).collect();
        s.call_all(&creates, ErrorCode::NodeExists).await?;
    }
    Ok(())
}

/// One session's load: keeps `inflight` requests outstanding until `end`; records latencies
/// of replies received after `measure_from`.
async fn drive(
    args: BenchArgs,
    index: usize,
    seed: u64,
    measure_from: Instant,
    end: Instant,
    done: Arc<AtomicU64>,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut s = Session::open(server_for(&args.server, index)).await?;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut rng = seed | 1;
    let data = vec![b'y'; args.size];
    let mut next_request = |s: &mut Session| {
        // xorshift: cheap, and each session has its own stream.
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let path = node_path(next() as usize % args.nodes);
        let set = |path: String| Request::SetData(SetDataRequest { path, data: Some(data.clone()), version: -1 });
        let request = match args.workload {
            Workload::Read => Request::GetData(PathWatchRequest { path, watch: false }),
            Workload::Write => set(path),
            Workload::Mixed if next() % 100 < args.read_percent as u64 => {
                Request::GetData(PathWatchRequest { path, watch: false })
            }
            Workload::Mixed => set(path),
            Workload::Multi => {
                Request::Multi((0..args.multi_ops).map(|_| set(node_path(next() as usize % args.nodes))).collect())
            }
            Workload::Watch => unreachable!("the watch workload runs in fan_out"),
            Workload::Create => Request::Create(CreateRequest {
                path: format!("{ROOT}/c-"),
                data: Some(data.clone()),
                acl: vec![proto::Acl::anyone(proto::perms::ALL)],
                flags: proto::CreateMode::PersistentSequential.flags(),
            }),
        };
        s.frame(&request)
    };
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(args.inflight);
    let mut batch = Vec::new();
    for _ in 0..args.inflight {
        batch.extend(next_request(&mut s));
        sent.push_back(Instant::now());
    }
    s.writer.write_all(&batch).await?;
    let mut errors = 0;
    while let Some(started) = sent.pop_front() {
        let header = s.read_reply().await?;
        let now = Instant::now();
        if header.err != 0 {
            errors += 1;
        }
        if now >= measure_from {
            histogram.record((now - started).as_micros().max(1) as u64)?;
            done.fetch_add(1, Ordering::Relaxed);
        }
        if now < end {
            let frame = next_request(&mut s);
            s.writer.write_all(&frame).await?;
            sent.push_back(Instant::now());
        }
    }
    Ok((histogram, errors))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    fill(&args).await.context("creating the znodes")?;
    if args.fill_only {
        println!("{} znodes of {} bytes under {ROOT}", args.nodes, args.size);
        return Ok(());
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(1);
    let end = measure_from + Duration::from_secs(args.seconds);
    let done = Arc::new(AtomicU64::new(0));
    if args.workload == Workload::Watch {
        let progress =
            (!args.json && std::io::stderr().is_terminal()).then(|| progress(done.clone(), measure_from, end));
        let (histogram, errors) = fan_out(&args, measure_from, end, done).await?;
        if let Some(progress) = progress {
            progress.abort();
        }
        return report(&args, &histogram, errors, measure_from, end);
    }
    let tasks: Vec<_> = (0..args.sessions)
        .map(|i| {
            let seed = 0x9E37_79B9_7F4A_7C15 ^ ((i as u64 + 1) * 7919);
            tokio::spawn(drive(args.clone(), i, seed, measure_from, end, done.clone()))
        })
        .collect();
    let progress = (!args.json && std::io::stderr().is_terminal()).then(|| progress(done, measure_from, end));
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for task in tasks {
        let (h, e) = task.await??;
        histogram.add(h)?;
        errors += e;
    }
    if let Some(progress) = progress {
        progress.abort();
    }
    report(&args, &histogram, errors, measure_from, end)
}

fn report(
    args: &BenchArgs,
    histogram: &Histogram<u64>,
    errors: u64,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<()> {
    let measured = end.saturating_duration_since(measure_from).as_secs_f64();
    let ops = histogram.len() as f64 / measured;
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    if args.json {
        let report = serde_json::json!({
            "server": args.server, "workload": format!("{:?}", args.workload).to_lowercase(),
            "sessions": args.sessions, "inflight": args.inflight, "nodes": args.nodes, "size": args.size,
            "seconds": measured, "ops": histogram.len(), "errors": errors, "ops_per_sec": ops,
            "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99), "p999_ms": ms(0.999), "max_ms": histogram.max() as f64 / 1000.0,
        });
        println!("{report}");
    } else {
        println!(
            "{:?} on {}: {} sessions x {} in flight, {} znodes of {} bytes, {:.0} s\n{:.0} ops/s ({} ops, {} errors)\nlatency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            args.workload, args.server, args.sessions, args.inflight, args.nodes, args.size, measured, ops, histogram.len(), errors,
            ms(0.5), ms(0.9), ms(0.99), ms(0.999), histogram.max() as f64 / 1000.0
        );
        print_histogram(histogram);
    }
    Ok(())
}

/// Watch fan-out. Watchers arm a data watch, and after each notification re-arm it before
/// saying so; the writer sets the znode once every watcher has re-armed, so no event is
/// missed and each write's fan-out is timed whole.
async fn fan_out(
    args: &BenchArgs,
    measure_from: Instant,
    end: Instant,
    done: Arc<AtomicU64>,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let hot = node_path(0);
    let watchers = args.sessions.saturating_sub(1).max(1);
    let (armed_tx, mut armed) = tokio::sync::mpsc::unbounded_channel::<Option<Instant>>();
    let arm = |path: &str| Request::Exists(PathWatchRequest { path: path.to_owned(), watch: true });
    for watcher in 0..watchers {
        let (server, path, armed_tx) = (args.server.clone(), hot.clone(), armed_tx.clone());
        tokio::spawn(async move {
            let mut s = Session::open(server_for(&server, watcher)).await?;
            let request = arm(&path);
            s.call_all(std::slice::from_ref(&request), ErrorCode::Ok).await?;
            let _ = armed_tx.send(None);
            while Instant::now() < end {
                let frame = s.read_frame().await?;
                if ReplyHeader::from_bytes(&frame)?.xid != proto::xid::NOTIFICATION {
                    continue;
                }
                let arrived = Instant::now();
                s.call_all(std::slice::from_ref(&request), ErrorCode::Ok).await?;
                let _ = armed_tx.send(Some(arrived));
            }
            anyhow::Ok(())
        });
    }
    for _ in 0..watchers {
        armed.recv().await.context("a watcher failed to start")?;
    }
    let mut writer = Session::open(server_for(&args.server, 0)).await?;
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let data = vec![b'w'; args.size];
    while Instant::now() < end {
        let set = Request::SetData(SetDataRequest { path: hot.clone(), data: Some(data.clone()), version: -1 });
        let written = Instant::now();
        writer.call_all(&[set], ErrorCode::Ok).await?;
        for _ in 0..watchers {
            let arrived = tokio::time::timeout(Duration::from_secs(10), armed.recv())
                .await
                .context("a watcher missed a notification")?
                .flatten()
                .context("a watcher stopped")?;
            if written >= measure_from {
                histogram.record(arrived.saturating_duration_since(written).as_micros().max(1) as u64)?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok((histogram, 0))
}

/// A progress bar with the live rate, on stderr, while the measurement runs.
fn progress(done: Arc<AtomicU64>, from: Instant, end: Instant) -> tokio::task::JoinHandle<()> {
    let total = end.saturating_duration_since(from).as_millis() as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_millis(250));
        loop {
            ticker.tick().await;
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(from);
            bar.set_position(elapsed.as_millis() as u64);
            let seconds = elapsed.as_secs_f64();
            if seconds > 0.0 {
                bar.set_message(format!("{:.0} ops/s", done.load(Ordering::Relaxed) as f64 / seconds));
            }
            if now >= end {
                bar.finish_and_clear();
                return;
            }
        }
    })
}

/// Latency distribution in doubling buckets, as a bar chart.
fn print_histogram(histogram: &Histogram<u64>) {
    let total = histogram.len().max(1) as f64;
    println!("latency distribution:");
    let mut lower = 0u64;
    let mut upper = 100u64; // microseconds
    while lower <= histogram.max() {
        let count = histogram.count_between(lower, upper.saturating_sub(1));
        let share = count as f64 / total;
        if count > 0 {
            let bar = "#".repeat((share * 50.0).round() as usize);
            println!("  < {:>8.3} ms {:>6.2}% {bar}", upper as f64 / 1000.0, share * 100.0);
        }
        lower = upper;
        upper *= 2;
    }
}
