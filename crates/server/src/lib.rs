//! The tokio shell around the pure [`replica`]: it reads `zoo.cfg`, accepts connections,
//! runs one task per connection and one driver task that owns the replica, and answers
//! four-letter words. It holds no protocol decisions of its own.
//!
//! Tasks: the accept loop (owns the per-address connection counts), one task per
//! connection (framing, encoding, back-pressure), and the driver (owns the replica, the
//! connection registry and the statistics). They talk only through channels. The admin
//! HTTP server (`admin`) reads the driver's state through the driver's channel too, and
//! `metrics` holds the Prometheus metrics, all atomics, counted where things happen.

mod admin;
pub mod config;
mod conn;
mod driver;
mod four_letter;
mod metrics;
mod quorum;
mod stats;
pub mod storage;

pub use admin::ListenError;
pub use config::{Config, ConfigError, VERSION};
pub use four_letter::java_date;
pub use storage::RecoverError;

use rand_core::RngCore;
use replica::ConnId;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Recover(#[from] RecoverError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Listen(#[from] ListenError),
}

/// The next connection on `listener` (`what` names it in the log). A failed accept, usually
/// for want of file descriptors, is logged and tried again after a pause, never in a spin.
pub(crate) async fn accept(
    listener: &TcpListener,
    what: &'static str,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!(error = %e, what, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Recovers the data from disk, then serves clients on `listener` until `shutdown` completes.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    let config = Arc::new(config);
    let http = admin::bind(&config).await?;
    let metrics = Arc::new(metrics::Metrics::new());
    let replica_config = replica::Config {
        server_id: config.server_id,
        tick_ms: config.tick_ms,
        min_session_timeout_ms: config.min_session_timeout_ms,
        max_session_timeout_ms: config.max_session_timeout_ms,
        ttl_enabled: config.ttl_enabled,
        super_digest: config.super_digest.clone(),
        container_check_interval_ms: config.container_check_interval_ms,
        snap_count: config.snap_count,
    };
    let mut replica = replica::Replica::new(replica_config, driver::wall_ms(), rand_core::OsRng.next_u64());
    let recovering = config.clone();
    let (replica, recovered) = tokio::task::spawn_blocking(move || {
        storage::recover(&recovering, &mut replica).map(|recovered| (replica, recovered))
    })
    .await
    .map_err(std::io::Error::other)??;
    let storage::Recovered { wal, unapplied, snapshot } = recovered;
    let (driver_tx, driver_rx) = mpsc::channel(4096);
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    storage::spawn_disk_thread(wal, log_rx, driver_tx.clone(), metrics.clone())?;
    let (snapshot_tx, snapshot_rx) = mpsc::channel(4);
    let saved = config.ensemble.as_ref().map(|_| driver_tx.clone());
    storage::spawn_snapshot_thread(config.clone(), snapshot_rx, metrics.clone(), saved)?;
    let mut driver = driver::Driver::new(config.clone(), replica, log_tx, metrics.clone());
    if let Some(ensemble) = &config.ensemble {
        let epochs = wal::epochs::read(&wal::OsDisk, &storage::state_dir(&config)).map_err(std::io::Error::other)?;
        let durable = zab::Durable {
            accepted_epoch: epochs.accepted,
            current_epoch: epochs.current,
            snapshot,
            log: unapplied.into_iter().map(|(zxid, data)| zab::Entry { zxid, data }).collect(),
        };
        let zab_config = zab::Config {
            id: zab::ServerId(config.server_id as u64),
            voters: ensemble.members.iter().filter(|m| !m.observer).map(|m| zab::ServerId(m.id)).collect(),
            init_limit: ensemble.init_limit,
            sync_limit: ensemble.sync_limit,
            // Different at every start, so that peers tell this run's stream from the last.
            incarnation: driver::wall_ms() as u64,
            counter_limit: u32::MAX - 1,
        };
        tracing::info!(
            id = config.server_id,
            members = ensemble.members.len(),
            accepted_epoch = epochs.accepted,
            current_epoch = epochs.current,
            last_zxid = format_args!("{:#x}", durable.log.last().map_or(driver.replica.applied_zxid(), |e| e.zxid)),
            "joining the ensemble"
        );
        let peer = zab::Peer::new(zab_config, durable, driver.replica.applied_zxid());
        let links = quorum::start(config.server_id as u64, ensemble, driver_tx.clone()).await?;
        driver.start_replication(driver::Replication {
            peer,
            links,
            newest_link: Default::default(),
            stats: Default::default(),
        });
    }
    tokio::spawn(driver.run(driver_rx, snapshot_tx));
    http.spawn(config.clone(), driver_tx.clone(), metrics.clone());
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<IpAddr>();
    let mut per_address: HashMap<IpAddr, usize> = HashMap::new();
    let mut next_conn = 0u64;
    tracing::info!(address = %listener.local_addr()?, version = VERSION, "serving clients");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            (stream, addr) = accept(&listener, "client") => {
                let count = per_address.entry(addr.ip()).or_default();
                if config.max_client_cnxns > 0 && *count >= config.max_client_cnxns {
                    tracing::warn!(%addr, limit = config.max_client_cnxns, "too many connections from one address: closed");
                    continue;
                }
                *count += 1;
                next_conn += 1;
                let (driver, config, closed) = (driver_tx.clone(), config.clone(), closed_tx.clone());
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    conn::serve(stream, addr, ConnId(next_conn), driver, config, metrics).await;
                    let _ = closed.send(addr.ip());
                });
            }
            Some(ip) = closed_rx.recv() => {
                if let Some(count) = per_address.get_mut(&ip) {
                    *count -= 1;
                    if *count == 0 {
                        per_address.remove(&ip);
                    }
                }
            }
            _ = &mut shutdown => return Ok(()),
        }
    }
}
