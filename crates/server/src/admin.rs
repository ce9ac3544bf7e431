//! The admin HTTP server, as ZooKeeper 3.8's AdminServer: `GET <admin.commandURL>` lists
//! the commands and `GET <admin.commandURL>/<name or alias>` answers one as JSON in
//! ZooKeeper's shape (its keys, in its order, with `"command"` and `"error"`). The same
//! server answers `GET /metrics` in Prometheus text format, and when `metricsProvider.className`
//! names ZooKeeper's Prometheus provider a second listener serves `/metrics` alone on
//! `metricsProvider.httpPort`, as that provider does.
//!
//! HTTP is hyper's HTTP/1.1 alone (see the crate manifest for why not axum). Everything
//! the driver owns is read by sending it a closure ([`ToDriver::Inspect`]) that runs the
//! same gathering functions as the four-letter words and answers on a oneshot channel, so
//! no lock is shared with the request path.

use crate::config::{AdminConfig, VERSION};
use crate::driver::{Driver, ToDriver};
use crate::four_letter::{self, ConnInfo, ServerStats, Stat, ZabView};
use crate::metrics::Metrics;
use crate::Config;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// ZooKeeper 3.8's admin commands that Warren answers: the name, then its aliases.
pub(crate) const COMMANDS: &[(&str, &[&str])] = &[
    ("configuration", &["conf", "config"]),
    ("connection_stat_reset", &["crst"]),
    ("connections", &["cons"]),
    ("dirs", &[]),
    ("dump", &[]),
    ("environment", &["env", "envi"]),
    ("get_trace_mask", &["gtmk"]),
    ("initial_configuration", &["icfg"]),
    ("is_read_only", &["isro"]),
    ("last_snapshot", &["lsnp"]),
    ("leader", &["lead"]),
    ("monitor", &["mntr"]),
    ("ruok", &[]),
    ("server_stats", &["srvr"]),
    ("stat_reset", &["srst"]),
    ("stats", &["stat"]),
    ("voting_view", &[]),
    ("watch_summary", &["wchs"]),
    ("watches", &["wchc"]),
    ("watches_by_path", &["wchp"]),
    ("zabstate", &[]),
];

/// ZooKeeper's default trace mask (client requests, server packets, sessions, warnings),
/// which `get_trace_mask` reports. Warren has no ZooTrace: what it logs is set by
/// `RUST_LOG`, so the mask is fixed and `set_trace_mask` is not offered.
const DEFAULT_TRACE_MASK: i64 = 306;

/// Why a command could not be answered.
const DRIVER_GONE: &str = "the server is shutting down";

/// The listeners, bound before recovery so that a port in use stops start-up at once (as
/// ZooKeeper exits when its AdminServer cannot start).
pub(crate) struct Listeners {
    admin: Option<(TcpListener, AdminConfig)>,
    metrics: Option<TcpListener>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {address} for the {what}: {source}")]
pub struct ListenError {
    what: &'static str,
    address: SocketAddr,
    source: std::io::Error,
}

pub(crate) async fn bind(config: &Config) -> Result<Listeners, ListenError> {
    let listen = |what, address| async move {
        TcpListener::bind(address).await.map_err(|source| ListenError { what, address, source })
    };
    let admin = match &config.admin {
        Some(admin) => Some((listen("admin server", admin.address).await?, admin.clone())),
        None => None,
    };
    let metrics = match config.metrics_address {
        Some(address) => Some(listen("Prometheus metrics", address).await?),
        None => None,
    };
    Ok(Listeners { admin, metrics })
}

impl Listeners {
    pub(crate) fn spawn(self, config: Arc<Config>, driver: mpsc::Sender<ToDriver>, metrics: Arc<Metrics>) {
        let admin = Admin { config, driver, metrics };
        if let Some((listener, settings)) = self.admin {
            tracing::info!(
                address = %listener.local_addr().map_or(settings.address, |a| a),
                command_url = %settings.command_url,
                "admin server listening"
            );
            tokio::spawn(serve(listener, admin.clone(), Some(settings.command_url)));
        }
        if let Some(listener) = self.metrics {
            tracing::info!(address = %listener.local_addr().map_or(String::new(), |a| a.to_string()), "serving /metrics");
            tokio::spawn(serve(listener, admin, None));
        }
    }
}

#[derive(Clone)]
struct Admin {
    config: Arc<Config>,
    driver: mpsc::Sender<ToDriver>,
    metrics: Arc<Metrics>,
}

/// Serves HTTP on `listener`: the commands under `command_url` (if any) and `/metrics`.
async fn serve(listener: TcpListener, admin: Admin, command_url: Option<String>) {
    let command_url: Arc<Option<String>> = Arc::new(command_url);
    loop {
        let (stream, peer) = crate::accept(&listener, "admin").await;
        let (admin, command_url) = (admin.clone(), command_url.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let (admin, command_url) = (admin.clone(), command_url.clone());
                async move { Ok::<_, Infallible>(admin.respond(&request, command_url.as_deref()).await) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                // An idle or slow client does not hold a task forever.
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "admin connection ended");
            }
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The name a command or alias stands for.
pub(crate) fn resolve(name: &str) -> Option<&'static str> {
    COMMANDS.iter().find(|(n, aliases)| *n == name || aliases.contains(&name)).map(|(n, _)| *n)
}

/// A JSON object from `json!({...})`.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl Admin {
    async fn respond(&self, request: &Request<Incoming>, command_url: Option<&str>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET is supported\n");
        }
        let path = request.uri().path();
        if path == "/metrics" {
            return match self.on_driver(|d| d.monitor(false)).await {
                Ok(rows) => reply(StatusCode::OK, prometheus::TEXT_FORMAT, self.metrics.render(&rows)),
                Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("{e}\n")),
            };
        }
        // `base` has no trailing slash (it is empty when `admin.commandURL` is `/`).
        if let Some(rest) = command_url.and_then(|base| path.strip_prefix(base)) {
            if rest.is_empty() || rest == "/" {
                return reply(StatusCode::OK, "text/html", self.listing(command_url.unwrap_or_default()));
            }
            if let Some(name) = rest.strip_prefix('/') {
                // As ZooKeeper: an unknown command is still a 200 with the error in the JSON.
                let body = serde_json::to_string_pretty(&Value::Object(self.command(name).await));
                return reply(StatusCode::OK, "application/json", body.unwrap_or_default());
            }
        }
        reply(StatusCode::NOT_FOUND, "text/plain", "not found\n")
    }

    /// The page `GET <commandURL>` shows: a link per command, as ZooKeeper's.
    fn listing(&self, base: &str) -> String {
        COMMANDS.iter().map(|(name, _)| format!("<a href=\"{base}/{name}\">{name}</a>\n<br/>\n")).collect()
    }

    /// Runs `f` on the driver and waits for its answer.
    async fn on_driver<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Driver) -> T + Send + 'static,
    ) -> Result<T, &'static str> {
        let (tx, rx) = oneshot::channel();
        let inspect = Box::new(move |driver: &mut Driver| {
            let _ = tx.send(f(driver));
        });
        self.driver.send(ToDriver::Inspect(inspect)).await.map_err(|_| DRIVER_GONE)?;
        rx.await.map_err(|_| DRIVER_GONE)
    }

    /// One command's JSON: its data, then `"command"` and `"error"` (null unless the data
    /// set it, in which case it stays where the data put it), in ZooKeeper's order.
    async fn command(&self, name: &str) -> Map<String, Value> {
        let Some(command) = resolve(name) else {
            return object(json!({ "command": name, "error": format!("Unknown command: {name}") }));
        };
        let mut out = self.data(command).await.unwrap_or_else(|e| object(json!({ "error": e })));
        out.insert("command".into(), Value::from(command));
        out.entry("error").or_insert(Value::Null);
        out
    }

    async fn data(&self, command: &'static str) -> Result<Map<String, Value>, &'static str> {
        let config = &self.config;
        Ok(match command {
            "ruok" => Map::new(),
            "server_stats" => {
                let stats = self.on_driver(|d| d.server_stats()).await?;
                self.server_stats(&stats)
            }
            "stats" => {
                let (stats, conns) = self.on_driver(|d| (d.server_stats(), d.connections(false))).await?;
                let mut out = self.server_stats(&stats);
                out.insert("connections".into(), conns.iter().map(connection).collect());
                out.insert("secure_connections".into(), json!([]));
                out
            }
            "connections" => {
                let conns = self.on_driver(|d| d.connections(true)).await?;
                object(json!({
                    "connections": conns.iter().map(connection).collect::<Vec<_>>(),
                    "secure_connections": [],
                }))
            }
            "connection_stat_reset" => {
                self.on_driver(|d| d.reset_connection_stats()).await?;
                Map::new()
            }
            "stat_reset" => {
                self.on_driver(|d| d.reset_server_stats()).await?;
                Map::new()
            }
            "monitor" => {
                let rows = self.on_driver(|d| d.monitor(false)).await?;
                rows.into_iter().map(|(k, v)| (k.to_owned(), stat_json(v))).collect()
            }
            "configuration" => object(json!({
                "client_port": config.client_port,
                "data_dir": config.data_dir.display().to_string(),
                "data_log_dir": config.data_log_dir.display().to_string(),
                "tick_time": config.tick_ms,
                "max_client_cnxns": config.max_client_cnxns,
                "min_session_timeout": config.min_session_timeout_ms,
                "max_session_timeout": config.max_session_timeout_ms,
                "server_id": config.server_id,
                "client_port_listen_backlog": -1,
            })),
            "initial_configuration" => {
                let text = config.source.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
                object(json!({ "initial_configuration": text }))
            }
            "dirs" => {
                let (data, log) = four_letter::dir_sizes(config);
                object(json!({ "datadir_size": data, "logdir_size": log }))
            }
            "environment" => {
                four_letter::environment().into_iter().map(|(k, v)| (k.to_owned(), Value::from(v))).collect()
            }
            "dump" => {
                let dump = self.on_driver(|d| d.session_dump()).await?;
                let expiry: Map<String, Value> =
                    dump.by_deadline.into_iter().map(|(at, ids)| (at.to_string(), Value::from(ids))).collect();
                let ephemerals: Map<String, Value> =
                    dump.ephemerals.into_iter().map(|(id, paths)| (id.to_string(), Value::from(paths))).collect();
                object(json!({ "expiry_time_to_session_ids": expiry, "session_id_to_ephemeral_paths": ephemerals }))
            }
            "watches" => {
                let watches = self.on_driver(|d| d.watches_by_session()).await?;
                let by_session: Map<String, Value> =
                    watches.into_iter().map(|(id, paths)| (id.to_string(), Value::from(paths))).collect();
                object(json!({ "session_id_to_watched_paths": by_session }))
            }
            "watches_by_path" => {
                let watches = self.on_driver(|d| d.watches_by_path()).await?;
                let by_path: Map<String, Value> =
                    watches.into_iter().map(|(path, ids)| (path, Value::from(ids))).collect();
                object(json!({ "path_to_session_ids": by_path }))
            }
            "watch_summary" => {
                let w = self.on_driver(|d| d.watch_summary()).await?;
                object(
                    json!({ "num_connections": w.connections, "num_paths": w.paths, "num_total_watches": w.watches }),
                )
            }
            "is_read_only" => object(json!({ "read_only": false })),
            "last_snapshot" => {
                let (zxid, timestamp) = last_snapshot(config);
                // ZooKeeper's form: the zxid in hex without `0x`, the time in seconds.
                object(json!({ "zxid": format!("{zxid:x}"), "timestamp": timestamp }))
            }
            "leader" | "voting_view" | "zabstate" if config.ensemble.is_some() => {
                let view = self.on_driver(|d| d.zab_view()).await?;
                self.ensemble_command(command, view)
            }
            // A standalone server has no leader, no voting view and no ZAB state; these are
            // ZooKeeper's answers for a standalone server.
            "leader" => object(json!({ "error": "server is not initialized" })),
            "voting_view" => object(json!({ "current_config": {} })),
            "zabstate" => object(json!({ "voting": false, "zabstate": "" })),
            "get_trace_mask" => object(json!({ "tracemask": DEFAULT_TRACE_MASK })),
            _ => unreachable!("every name of COMMANDS has its answer"),
        })
    }

    /// `leader`, `voting_view` and `zabstate` of an ensemble member, shaped as ZooKeeper
    /// 3.8's (observed from a live ensemble).
    fn ensemble_command(&self, command: &str, view: Option<ZabView>) -> Map<String, Value> {
        let config = &self.config;
        let (Some(ensemble), Some(view)) = (&config.ensemble, view) else { return Map::new() };
        let me = config.server_id as u64;
        let member = |id: u64| ensemble.member(id);
        let client_address = format!("{}:{}", config.client_port_address, config.client_port);
        match command {
            "leader" => match view.leader.filter(|_| view.serving) {
                Some(leader) => object(json!({
                    "is_leader": leader == me,
                    "leader_id": leader,
                    "leader_ip": member(leader).map_or("", |m| m.host.as_str()),
                })),
                None => object(json!({ "error": "server is not initialized" })),
            },
            "voting_view" => {
                let voters: Map<String, Value> = ensemble
                    .members
                    .iter()
                    .filter(|m| !m.observer)
                    .map(|m| {
                        let client = if m.id == me { client_address.clone() } else { String::new() };
                        let view = json!({
                            "server_addresses": [format!("{}:{}", m.host, m.quorum_port)],
                            "election_addresses": [format!("{}:{}", m.host, m.election_port)],
                            "client_address": client,
                            "learner_type": "participant",
                        });
                        (m.id.to_string(), view)
                    })
                    .collect();
                object(json!({ "current_config": voters }))
            }
            _ => {
                let own = member(me);
                let address = |port: u16| {
                    let host = own.map_or("", |m| m.host.as_str());
                    let one = format!("{host}:{port}");
                    json!({
                        "empty": false,
                        "all_addresses": [one],
                        "all_reachable_addresses": [one],
                        "one": one,
                        "reachable_address": one,
                        "wildcard_addresses": [format!("0.0.0.0:{port}")],
                        "all_ports": [port],
                        "all_host_strings": [host],
                        "all_reachable_addresses_or_all": [one],
                        "reachable_or_one": one,
                    })
                };
                let state = match (view.looking, view.serving) {
                    (true, _) => "election",
                    (false, true) => "broadcast",
                    (false, false) => "synchronization",
                };
                object(json!({
                    "myid": me,
                    "is_leader": view.serving && view.leader == Some(me),
                    "quorum_address": address(own.map_or(0, |m| m.quorum_port)),
                    "election_address": address(own.map_or(0, |m| m.election_port)),
                    "client_address": client_address,
                    "voting": !own.is_some_and(|m| m.observer),
                    "last_zxid": format!("{:#x}", view.last_zxid),
                    "zab_epoch": zab::epoch_of(view.last_zxid),
                    "zab_counter": view.last_zxid - zab::zxid(zab::epoch_of(view.last_zxid), 0),
                    "zabstate": state,
                }))
            }
        }
    }

    fn server_stats(&self, s: &ServerStats) -> Map<String, Value> {
        let (data_size, log_size) = four_letter::dir_sizes(&self.config);
        let (last, min, max) = self.metrics.response_sizes.get();
        let response = json!({ "last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max });
        object(json!({
            "version": VERSION,
            "read_only": false,
            "server_stats": {
                "packets_sent": s.packets_sent,
                "packets_received": s.packets_received,
                "fsync_threshold_exceed_count": self.metrics.fsync_threshold_exceeded.load(Ordering::Relaxed),
                "client_response_stats": response,
                "data_dir_size": data_size,
                "log_dir_size": log_size,
                "provider_null": false,
                "server_state": s.state,
                "last_processed_zxid": s.zxid,
                "outstanding_requests": s.outstanding,
                "avg_latency": s.latency.avg(),
                "max_latency": s.latency.max(),
                "min_latency": s.latency.min(),
                "num_alive_client_connections": s.connections,
                "uptime": s.uptime_ms,
                "auth_failed_count": s.auth_failed,
                // Warren has no TLS: every connection is a non-mTLS one, and ZooKeeper counts
                // only those made while client authentication is required.
                "non_mtlsremote_conn_count": 0,
                "non_mtlslocal_conn_count": 0,
            },
            "client_response": response,
            "node_count": s.node_count,
        }))
    }
}

/// A connection as ZooKeeper's `ServerCnxn.getConnectionInfo`: the brief form, plus the
/// session's details when it has one.
fn connection(c: &ConnInfo) -> Value {
    let mut out = object(json!({
        "remote_socket_address": c.addr.to_string(),
        // Java NIO's interest set: OP_READ (1) while the server reads from it.
        "interest_ops": if c.reading { 1 } else { 0 },
        "outstanding_requests": c.queued,
        "packets_received": c.received,
        "packets_sent": c.sent,
    }));
    if let Some(s) = &c.session {
        out.extend(object(json!({
            "session_id": s.id,
            "last_operation": s.last_op,
            "established": s.established_ms,
            "session_timeout": s.timeout_ms,
            "last_cxid": s.last_cxid,
            "last_zxid": s.last_zxid,
            "last_response_time": s.last_response_ms,
            "last_latency": s.last_latency_ms,
            "min_latency": s.min_latency,
            "avg_latency": s.avg_latency,
            "max_latency": s.max_latency,
        })));
    }
    Value::Object(out)
}

fn stat_json(v: Stat) -> Value {
    match v {
        Stat::Int(v) => Value::from(v),
        Stat::Float(v) => Value::from(v),
        Stat::Text(v) => Value::from(v),
    }
}

/// The zxid and modification time (seconds) of the newest snapshot; -1 and -1 when there
/// is none, as ZooKeeper answers.
fn last_snapshot(config: &Config) -> (i64, i64) {
    let dir = crate::storage::snapshot_dir(config);
    let newest = wal::snapshot::list(&wal::OsDisk, &dir).ok().and_then(|list| list.into_iter().next());
    match newest {
        Some((zxid, path)) => {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            let secs = modified.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(-1, |d| d.as_secs() as i64);
            (zxid, secs)
        }
        None => (-1, -1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_to_zookeeper_names() {
        assert_eq!(resolve("srvr"), Some("server_stats"));
        assert_eq!(resolve("stat"), Some("stats"));
        assert_eq!(resolve("mntr"), Some("monitor"));
        assert_eq!(resolve("config"), Some("configuration"));
        assert_eq!(resolve("monitor"), Some("monitor"));
        assert_eq!(resolve("nope"), None);
        // Names and aliases are unique, so every alias means one command.
        let mut all: Vec<&str> =
            COMMANDS.iter().flat_map(|(n, a)| std::iter::once(*n).chain(a.iter().copied())).collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
    }

    #[test]
    fn missing_snapshot_reads_as_zookeeper_says() {
        let dir = std::env::temp_dir().join(format!("warren-admin-test-{}", std::process::id()));
        let config = Config { data_dir: dir.clone(), data_log_dir: dir, ..Config::default() };
        assert_eq!(last_snapshot(&config), (-1, -1));
        assert_eq!(format!("{:x}", -1i64), "ffffffffffffffff");
    }
}
