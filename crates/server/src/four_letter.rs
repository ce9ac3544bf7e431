//! Four-letter words in ZooKeeper 3.8's output formats, so that `zkServer.sh status`,
//! zktop, Prometheus exporters and kazoo's `server_version()` read Warren unchanged.
//!
//! The data is gathered once, by the functions below that return plain values (most run on
//! the driver, which owns it), and rendered twice: as text here and as JSON by the admin
//! server (`admin`), which also turns `mntr`'s rows into Prometheus gauges.

use crate::config::{Config, VERSION};
use crate::driver::{wall_ms, Driver, Replication};
use crate::stats::Latency;
use replica::Role;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::Path;

/// A Java `double` as `Double.toString` prints the values ZooKeeper reports.
fn java_double(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Bytes in the regular files of a directory (not recursive, as ZooKeeper's `dirs`).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A `kB` field of a `/proc` file such as `/proc/meminfo`.
fn kib_field(file: &str, key: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Bytes of snapshots and of log segments: Warren's counterparts of the `version-2`
/// directories ZooKeeper measures for `dirs` and `conf`.
pub(crate) fn dir_sizes(config: &Config) -> (u64, u64) {
    (dir_size(&crate::storage::snapshot_dir(config)), dir_size(&crate::storage::log_dir(config)))
}

fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn max_fd_count() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(0)
}

/// One value of `mntr` (and of the admin server's `monitor`); numbers stay numbers in the
/// JSON and become gauges in Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stat {
    Int(i64),
    Float(f64),
    Text(String),
}

impl Stat {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Stat::Int(v) => Some(*v as f64),
            Stat::Float(v) => Some(*v),
            Stat::Text(_) => None,
        }
    }
}

impl std::fmt::Display for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stat::Int(v) => write!(f, "{v}"),
            Stat::Float(v) => f.write_str(&java_double(*v)),
            Stat::Text(v) => f.write_str(v),
        }
    }
}

/// What `srvr` reports.
#[derive(Debug, Clone)]
pub(crate) struct ServerStats {
    pub latency: Latency,
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Client connections, not counting the one asking.
    pub connections: usize,
    pub outstanding: usize,
    pub zxid: i64,
    pub node_count: usize,
    pub uptime_ms: u64,
    pub auth_failed: u64,
    /// `standalone`, `leader`, `follower`, `observer` (or `looking`).
    pub state: &'static str,
}

/// One client connection as `cons` shows it.
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub addr: SocketAddr,
    pub queued: usize,
    pub received: u64,
    pub sent: u64,
    /// Whether the server reads from it (it stops at `maxOutstandingPerConnection`).
    pub reading: bool,
    pub session: Option<SessionInfo>,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionInfo {
    pub id: i64,
    pub last_op: &'static str,
    pub established_ms: i64,
    pub timeout_ms: i32,
    pub last_cxid: i32,
    pub last_zxid: i64,
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub min_latency: u64,
    pub avg_latency: u64,
    pub max_latency: u64,
}

/// What `dump` reports: sessions by deadline, ephemerals by session, connections.
#[derive(Debug, Clone)]
pub(crate) struct SessionDump {
    pub session_count: usize,
    pub by_deadline: BTreeMap<i64, Vec<i64>>,
    pub ephemerals: Vec<(i64, Vec<String>)>,
    pub connections: Vec<(SocketAddr, i64)>,
}

/// What `wchs` reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WatchSummary {
    pub connections: usize,
    pub paths: usize,
    pub watches: usize,
}

/// `envi`'s rows: ZooKeeper's keys in ZooKeeper's order. The `java.*` ones have no meaning
/// here and say `<NA>`, as ZooKeeper does for an unset property; memory is the process's
/// resident size (`total`) and the machine's available and physical memory (`free`, `max`).
pub(crate) fn environment() -> Vec<(&'static str, String)> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        other => other,
    };
    vec![
        ("zookeeper.version", VERSION.to_owned()),
        ("host.name", host.trim().to_owned()),
        ("java.version", "<NA>".into()),
        ("java.vendor", "<NA>".into()),
        ("java.home", "<NA>".into()),
        ("java.class.path", "<NA>".into()),
        ("java.library.path", "<NA>".into()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", "<NA>".into()),
        ("os.name", "Linux".into()),
        ("os.arch", arch.into()),
        ("os.version", os_version.trim().to_owned()),
        ("user.name", env("USER")),
        ("user.home", env("HOME")),
        ("user.dir", cwd),
        ("os.memory.free", format!("{}MB", kib_field("/proc/meminfo", "MemAvailable:") / 1024)),
        ("os.memory.max", format!("{}MB", kib_field("/proc/meminfo", "MemTotal:") / 1024)),
        ("os.memory.total", format!("{}MB", kib_field("/proc/self/status", "VmRSS:") / 1024)),
    ]
}

/// Java's `Date.toString()` form, in UTC: `Wed Nov 25 11:28:52 UTC 2026` (ZooKeeper's `dump`,
/// zkCli.sh's `stat`).
pub fn java_date(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%a %b %d %H:%M:%S UTC %Y").to_string(),
        None => ms.to_string(),
    }
}

/// What the admin server's `leader` and `zabstate` report of an ensemble member.
pub(crate) struct ZabView {
    pub leader: Option<u64>,
    pub serving: bool,
    pub looking: bool,
    pub last_zxid: i64,
}

/// mntr's rows of an ensemble member, as ZooKeeper 3.8 names them.
fn replication_rows(role: Role, r: &Replication) -> Vec<(&'static str, Stat)> {
    let int = |v: u64| Stat::Int(v as i64);
    let peer_state = match role {
        Role::Leading { .. } => "leading - broadcast",
        Role::Following if r.peer.is_observer() => "observing - broadcast",
        Role::Following => "following - broadcast",
        _ => "looking",
    };
    let mut rows = vec![
        ("peer_state", Stat::Text(peer_state.into())),
        ("quorum_size", int(r.peer.voters() as u64)),
        ("diff_count", int(r.stats.syncs - r.stats.snaps)),
        ("snap_count", int(r.stats.snaps)),
    ];
    match role {
        Role::Leading { .. } => {
            let (learners, voters, observers) = r.peer.learners();
            let (last, min, max) = r.stats.proposal_sizes.get();
            let uptime = r.stats.leading_since.map_or(0, |t| t.elapsed().as_millis() as u64);
            rows.extend([
                ("learners", int(learners as u64)),
                ("synced_followers", int(voters as u64)),
                ("synced_non_voting_followers", int(0)),
                ("synced_observers", int(observers as u64)),
                // Syncs are answered as they come, never queued.
                ("pending_syncs", int(0)),
                ("leader_uptime", int(uptime)),
                ("last_proposal_size", Stat::Int(last)),
                ("min_proposal_size", Stat::Int(min)),
                ("max_proposal_size", Stat::Int(max)),
            ]);
        }
        Role::Following if r.peer.is_observer() => {
            rows.push(("observer_master_id", int(r.peer.leader().map_or(0, |l| l.0))));
        }
        _ => {}
    }
    rows
}

/// ZooKeeper's answer to most four-letter words between leaders.
pub(crate) const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

impl Driver {
    /// `Mode:` of srvr and stat, `server_state` of mntr and the admin server.
    pub(crate) fn server_state(&self) -> &'static str {
        match self.replica.role() {
            Role::Standalone => "standalone",
            Role::Leading { .. } => "leader",
            Role::Following if self.replication.as_ref().is_some_and(|r| r.peer.is_observer()) => "observer",
            Role::Following => "follower",
            Role::Looking => "looking",
        }
    }

    pub(crate) fn zab_view(&self) -> Option<ZabView> {
        let peer = &self.replication.as_ref()?.peer;
        Some(ZabView {
            leader: peer.leader().map(|l| l.0),
            serving: peer.is_serving(),
            looking: peer.state() == zab::PeerState::Looking,
            last_zxid: peer.last_zxid(),
        })
    }

    pub(crate) fn four_letter(&mut self, command: &str, asker: SocketAddr) -> String {
        if !self.config.four_letter_whitelist.allows(command) {
            return format!("{command} is not executed because it is not in the whitelist.\n");
        }
        if !self.replica.role().is_serving() && !matches!(command, "ruok" | "envi" | "isro") {
            return NOT_SERVING.into();
        }
        match command {
            "ruok" => "imok".into(),
            // ZooKeeper's answer while it has no server running (between leaders).
            "isro" if !self.replica.role().is_serving() => "null".into(),
            "isro" => "rw".into(),
            "srvr" => self.srvr(None),
            "stat" => self.srvr(Some(asker)),
            "cons" => self.cons(asker),
            "conf" => self.conf(),
            "envi" => envi(),
            "mntr" => self.monitor(true).iter().map(|(k, v)| format!("zk_{k}\t{v}\n")).collect(),
            "wchs" => {
                let w = self.watch_summary();
                format!("{} connections watching {} paths\nTotal watches:{}\n", w.connections, w.paths, w.watches)
            }
            "wchc" => self.wchc(),
            "wchp" => self.wchp(),
            "dirs" => {
                let (data, log) = dir_sizes(&self.config);
                format!("datadir_size: {data}\nlogdir_size: {log}\n")
            }
            "dump" => self.dump(),
            "crst" => {
                self.reset_connection_stats();
                "Connection stats reset.\n".into()
            }
            "srst" => {
                self.reset_server_stats();
                "Server stats reset.\n".into()
            }
            _ => String::new(),
        }
    }

    pub(crate) fn server_stats(&self) -> ServerStats {
        ServerStats {
            latency: self.latency.clone(),
            packets_received: self.packets_received,
            packets_sent: self.packets_sent,
            connections: self.conns.len(),
            outstanding: self.replica.outstanding(),
            // A new leader reports its epoch's first zxid before it has applied any, as
            // ZooKeeper's does.
            zxid: match self.replica.role() {
                Role::Leading { epoch } => self.replica.applied_zxid().max(zab::zxid(epoch, 0)),
                _ => self.replica.applied_zxid(),
            },
            node_count: self.replica.tree().node_count(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            auth_failed: self.auth_failed,
            state: self.server_state(),
        }
    }

    /// Every client connection; `with_sessions` adds the session details `cons` shows.
    pub(crate) fn connections(&self, with_sessions: bool) -> Vec<ConnInfo> {
        self.conns
            .iter()
            .map(|(conn, c)| {
                let st = &c.stats;
                let session = self.replica.conn_session(*conn).filter(|_| with_sessions).map(|id| SessionInfo {
                    id,
                    last_op: st.last_op,
                    established_ms: st.established_ms,
                    timeout_ms: self.replica.sessions().get(id).map_or(0, |x| x.timeout_ms),
                    last_cxid: st.last_xid,
                    last_zxid: st.last_zxid,
                    last_response_ms: st.last_response_ms,
                    last_latency_ms: st.last_latency_ms,
                    min_latency: st.latency.min(),
                    avg_latency: st.latency.avg().round() as u64,
                    max_latency: st.latency.max(),
                });
                ConnInfo {
                    addr: c.addr,
                    queued: st.queued(),
                    received: st.received,
                    sent: st.sent,
                    reading: st.queued() < self.config.max_outstanding_per_conn,
                    session,
                }
            })
            .collect()
    }

    /// `mntr`'s rows; `asker_is_client` counts the asking connection among the live ones,
    /// as ZooKeeper does for a four-letter word (an HTTP request is not a client connection).
    pub(crate) fn monitor(&self, asker_is_client: bool) -> Vec<(&'static str, Stat)> {
        let tree = self.replica.tree();
        let l = &self.latency;
        let int = |v: u64| Stat::Int(v as i64);
        let mut rows: Vec<(&'static str, Stat)> = vec![
            ("version", Stat::Text(VERSION.into())),
            ("server_state", Stat::Text(self.server_state().into())),
            ("avg_latency", Stat::Float(l.avg())),
            ("max_latency", int(l.max())),
            ("min_latency", int(l.min())),
            ("packets_received", int(self.packets_received)),
            ("packets_sent", int(self.packets_sent)),
            ("num_alive_connections", int((self.conns.len() + usize::from(asker_is_client)) as u64)),
            ("outstanding_requests", int(self.replica.outstanding() as u64)),
            ("znode_count", int(tree.node_count() as u64)),
            ("watch_count", int(tree.watches.count() as u64)),
            ("ephemerals_count", int(tree.ephemeral_count() as u64)),
            ("approximate_data_size", int(tree.approximate_data_size())),
            ("open_file_descriptor_count", int(open_fd_count() as u64)),
            ("max_file_descriptor_count", int(max_fd_count())),
            ("global_sessions", int(self.replica.sessions().len() as u64)),
            ("uptime", int(self.started.elapsed().as_millis() as u64)),
            ("auth_failed_count", int(self.auth_failed)),
        ];
        rows.extend(self.metrics.monitor_rows());
        if let Some(r) = &self.replication {
            rows.extend(replication_rows(self.replica.role(), r));
        }
        // Warren's own: whether writes can be made durable, and why not.
        rows.push(("warren_log_healthy", int(u64::from(self.replica.log_healthy()))));
        if let Some(reason) = &self.log_error {
            rows.push(("warren_log_error", Stat::Text(reason.clone())));
        }
        rows
    }

    pub(crate) fn reset_connection_stats(&mut self) {
        for c in self.conns.values_mut() {
            c.stats.reset();
        }
    }

    /// `srst`: latency, packet counts and response sizes start over, as ZooKeeper's
    /// `ServerStats.reset`.
    pub(crate) fn reset_server_stats(&mut self) {
        self.latency = Latency::default();
        self.packets_received = 0;
        self.packets_sent = 0;
        self.metrics.response_sizes.reset();
    }

    fn srvr(&self, clients_for: Option<SocketAddr>) -> String {
        let mut s = format!("Zookeeper version: {VERSION}\n");
        if let Some(asker) = clients_for {
            s.push_str("Clients:\n");
            self.connection_lines(&mut s, asker, false);
            s.push('\n');
        }
        let st = self.server_stats();
        let l = &st.latency;
        let _ = write!(
            s,
            "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: {:#x}\nMode: {}\nNode count: {}\n",
            l.min(),
            java_double(l.avg()),
            l.max(),
            st.packets_received,
            st.packets_sent,
            st.connections + 1,
            st.outstanding,
            st.zxid,
            self.server_state(),
            st.node_count
        );
        if let (Role::Leading { .. }, Some(r)) = (self.replica.role(), &self.replication) {
            let (last, min, max) = r.stats.proposal_sizes.get();
            let _ = writeln!(s, "Proposal sizes last/min/max: {last}/{min}/{max}");
        }
        s
    }

    /// One line per connection, the asking four-letter connection included, as ZooKeeper.
    fn connection_lines(&self, s: &mut String, asker: SocketAddr, full: bool) {
        for c in self.connections(full) {
            let _ = write!(s, " /{}[1](queued={},recved={},sent={}", c.addr, c.queued, c.received, c.sent);
            match c.session {
                Some(x) => {
                    let _ = writeln!(
                        s,
                        ",sid={:#x},lop={},est={},to={},lcxid={:#x},lzxid={:#x},lresp={},llat={},minlat={},avglat={},maxlat={})",
                        x.id,
                        x.last_op,
                        x.established_ms,
                        x.timeout_ms,
                        x.last_cxid,
                        x.last_zxid,
                        x.last_response_ms,
                        x.last_latency_ms,
                        x.min_latency,
                        x.avg_latency,
                        x.max_latency
                    );
                }
                None => s.push_str(")\n"),
            }
        }
        let _ = writeln!(s, " /{asker}[0](queued=0,recved=1,sent=0)");
    }

    fn cons(&self, asker: SocketAddr) -> String {
        let mut s = String::new();
        self.connection_lines(&mut s, asker, true);
        s.push('\n');
        s
    }

    fn conf(&self) -> String {
        let c = &self.config;
        let (data_size, log_size) = dir_sizes(c);
        let standalone = format!(
            "clientPort={}\nsecureClientPort=-1\ndataDir={}\ndataDirSize={}\ndataLogDir={}\ndataLogSize={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId={}\n",
            c.client_port,
            c.data_dir.display(),
            data_size,
            c.data_log_dir.display(),
            log_size,
            c.tick_ms,
            c.max_client_cnxns,
            c.min_session_timeout_ms,
            c.max_session_timeout_ms,
            c.server_id
        );
        let Some(ensemble) = &c.ensemble else { return standalone };
        // A member adds its quorum settings and the membership, roles spelt out, with no
        // line end after the last line, as ZooKeeper's QuorumPeer does.
        let own = ensemble.member(c.server_id as u64);
        let mut s = standalone;
        let _ = write!(
            s,
            "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\npeerType={}\nmembership: \n",
            ensemble.init_limit,
            ensemble.sync_limit,
            own.map_or(0, |m| m.election_port),
            own.map_or(0, |m| m.quorum_port),
            u8::from(own.is_some_and(|m| m.observer)),
        );
        for m in &ensemble.members {
            let role = if m.observer { "observer" } else { "participant" };
            let _ = writeln!(s, "server.{}={}:{}:{}:{role}", m.id, m.host, m.quorum_port, m.election_port);
        }
        s.push_str("version=0");
        s
    }

    fn session_of(&self, conn: replica::ConnId) -> i64 {
        self.replica.conn_session(conn).unwrap_or(0)
    }

    pub(crate) fn watch_summary(&self) -> WatchSummary {
        let w = &self.replica.tree().watches;
        WatchSummary { connections: w.by_conn().count(), paths: w.path_count(), watches: w.count() }
    }

    /// Each watching connection's session with its watched paths (`wchc`).
    pub(crate) fn watches_by_session(&self) -> Vec<(i64, Vec<String>)> {
        let watches = &self.replica.tree().watches;
        watches
            .by_conn()
            .map(|(conn, paths)| (self.session_of(conn), paths.into_iter().map(str::to_owned).collect()))
            .collect()
    }

    /// Each watched path with the sessions watching it (`wchp`).
    pub(crate) fn watches_by_path(&self) -> Vec<(String, Vec<i64>)> {
        let watches = &self.replica.tree().watches;
        watches
            .by_path()
            .into_iter()
            .map(|(path, conns)| (path.to_owned(), conns.into_iter().map(|c| self.session_of(c)).collect()))
            .collect()
    }

    fn wchc(&self) -> String {
        let mut s = String::new();
        for (session, paths) in self.watches_by_session() {
            let _ = writeln!(s, "{session:#x}");
            for p in paths {
                let _ = writeln!(s, "\t{p}");
            }
        }
        s.push('\n');
        s
    }

    fn wchp(&self) -> String {
        let mut s = String::new();
        for (path, sessions) in self.watches_by_path() {
            let _ = writeln!(s, "{path}");
            for session in sessions {
                let _ = writeln!(s, "\t{session:#x}");
            }
        }
        s.push('\n');
        s
    }

    pub(crate) fn session_dump(&self) -> SessionDump {
        let sessions = self.replica.sessions();
        let mut by_deadline: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for session in sessions.iter() {
            by_deadline.entry(session.deadline_ms).or_default().push(session.id);
        }
        let ephemerals = self.replica.tree().ephemerals_by_session();
        SessionDump {
            session_count: sessions.len(),
            by_deadline,
            ephemerals: ephemerals.iter().map(|(s, paths)| (*s, paths.iter().cloned().collect())).collect(),
            connections: self.conns.iter().map(|(conn, c)| (c.addr, self.session_of(*conn))).collect(),
        }
    }

    fn dump(&self) -> String {
        let d = self.session_dump();
        let mut s = format!("SessionTracker dump:\nSession Sets ({})/({}):\n", d.by_deadline.len(), d.session_count);
        for (deadline, ids) in &d.by_deadline {
            let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(*deadline));
            for id in ids {
                let _ = writeln!(s, "\t{id:#x}");
            }
        }
        let _ = writeln!(s, "ephemeral nodes dump:\nSessions with Ephemerals ({}):", d.ephemerals.len());
        for (session, paths) in &d.ephemerals {
            let _ = writeln!(s, "{session:#x}:");
            for p in paths {
                let _ = writeln!(s, "\t{p}");
            }
        }
        let _ = writeln!(s, "Connections dump:\nConnections Sets (1)/({}):", d.connections.len());
        let _ = writeln!(s, "{} expire at {}:", d.connections.len(), java_date(wall_ms()));
        for (addr, session) in &d.connections {
            let _ = writeln!(s, "\tip: /{addr} sessionId: {session:#x}");
        }
        s
    }
}

fn envi() -> String {
    let mut s = String::from("Environment:\n");
    for (k, v) in environment() {
        let _ = writeln!(s, "{k}={v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(0.2676), "0.2676");
        assert_eq!(java_date(1_795_606_132_000), "Wed Nov 25 11:28:52 UTC 2026");
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }
}
