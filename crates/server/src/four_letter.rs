//! Four-letter words in ZooKeeper 3.8's output formats, so that `zkServer.sh status`,
//! zktop, Prometheus exporters and kazoo's `server_version()` read Warren unchanged.

use crate::config::VERSION;
use crate::driver::{wall_ms, Driver};
use crate::stats::Latency;
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
fn dir_size(dir: &Path) -> u64 {
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

/// Java's `Date.toString()` form, in UTC: `Wed Nov 25 11:28:52 UTC 2026`.
fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        year
    )
}

impl Driver {
    pub(crate) fn four_letter(&mut self, command: &str, asker: SocketAddr) -> String {
        if !self.config.four_letter_whitelist.allows(command) {
            return format!("{command} is not executed because it is not in the whitelist.\n");
        }
        match command {
            "ruok" => "imok".into(),
            "isro" => "rw".into(),
            "srvr" => self.srvr(None),
            "stat" => self.srvr(Some(asker)),
            "cons" => self.cons(asker),
            "conf" => self.conf(),
            "envi" => self.envi(),
            "mntr" => self.mntr(),
            "wchs" => self.wchs(),
            "wchc" => self.wchc(),
            "wchp" => self.wchp(),
            "dirs" => format!(
                "datadir_size: {}\nlogdir_size: {}\n",
                dir_size(&self.config.data_dir),
                dir_size(&self.config.data_log_dir)
            ),
            "dump" => self.dump(),
            "crst" => {
                for c in self.conns.values_mut() {
                    c.stats.reset();
                }
                "Connection stats reset.\n".into()
            }
            "srst" => {
                self.latency = Latency::default();
                self.packets_received = 0;
                self.packets_sent = 0;
                "Server stats reset.\n".into()
            }
            _ => String::new(),
        }
    }

    fn srvr(&self, clients_for: Option<SocketAddr>) -> String {
        let mut s = format!("Zookeeper version: {VERSION}\n");
        if let Some(asker) = clients_for {
            s.push_str("Clients:\n");
            self.connection_lines(&mut s, asker, false);
            s.push('\n');
        }
        let l = &self.latency;
        let _ = write!(
            s,
            "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: {:#x}\nMode: standalone\nNode count: {}\n",
            l.min(),
            java_double(l.avg()),
            l.max(),
            self.packets_received,
            self.packets_sent,
            self.conns.len() + 1,
            self.replica.outstanding(),
            self.replica.applied_zxid(),
            self.replica.tree().node_count()
        );
        s
    }

    /// One line per connection, the asking four-letter connection included, as ZooKeeper.
    fn connection_lines(&self, s: &mut String, asker: SocketAddr, full: bool) {
        for (conn, c) in &self.conns {
            let st = &c.stats;
            let _ = write!(s, " /{}[1](queued={},recved={},sent={}", c.addr, st.queued(), st.received, st.sent);
            match self.replica.conn_session(*conn).filter(|_| full) {
                Some(session) => {
                    let timeout = self.replica.sessions().get(session).map_or(0, |x| x.timeout_ms);
                    let _ = writeln!(
                        s,
                        ",sid={session:#x},lop={},est={},to={timeout},lcxid={:#x},lzxid={:#x},lresp={},llat={},minlat={},avglat={},maxlat={})",
                        st.last_op,
                        st.established_ms,
                        st.last_xid,
                        st.last_zxid,
                        st.last_response_ms,
                        st.last_latency_ms,
                        st.latency.min(),
                        st.latency.avg().round() as u64,
                        st.latency.max()
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
        format!(
            "clientPort={}\nsecureClientPort=-1\ndataDir={}\ndataDirSize={}\ndataLogDir={}\ndataLogSize={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId={}\n",
            c.client_port,
            c.data_dir.display(),
            dir_size(&c.data_dir),
            c.data_log_dir.display(),
            dir_size(&c.data_log_dir),
            c.tick_ms,
            c.max_client_cnxns,
            c.min_session_timeout_ms,
            c.max_session_timeout_ms,
            c.server_id
        )
    }

    /// ZooKeeper's keys in ZooKeeper's order. The `java.*` ones have no meaning here and say
    /// `<NA>`, as ZooKeeper does for an unset property; memory is the process's resident size
    /// (`total`) and the machine's available and physical memory (`free`, `max`).
    fn envi(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            other => other,
        };
        let rows = [
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
        ];
        let mut s = String::from("Environment:\n");
        for (k, v) in rows {
            let _ = writeln!(s, "{k}={v}");
        }
        s
    }

    fn mntr(&self) -> String {
        let tree = self.replica.tree();
        let l = &self.latency;
        let mut rows: Vec<(&str, String)> = vec![
            ("version", VERSION.into()),
            ("server_state", "standalone".into()),
            ("avg_latency", java_double(l.avg())),
            ("max_latency", l.max().to_string()),
            ("min_latency", l.min().to_string()),
            ("packets_received", self.packets_received.to_string()),
            ("packets_sent", self.packets_sent.to_string()),
            ("num_alive_connections", (self.conns.len() + 1).to_string()),
            ("outstanding_requests", self.replica.outstanding().to_string()),
            ("znode_count", tree.node_count().to_string()),
            ("watch_count", tree.watches.count().to_string()),
            ("ephemerals_count", tree.ephemeral_count().to_string()),
            ("approximate_data_size", tree.approximate_data_size().to_string()),
            ("open_file_descriptor_count", open_fd_count().to_string()),
            ("max_file_descriptor_count", max_fd_count().to_string()),
            ("global_sessions", self.replica.sessions().len().to_string()),
            ("uptime", self.started.elapsed().as_millis().to_string()),
            // Warren's own: whether writes can be made durable, and why not.
            ("warren_log_healthy", u8::from(self.replica.log_healthy()).to_string()),
        ];
        if let Some(reason) = &self.log_error {
            rows.push(("warren_log_error", reason.clone()));
        }
        rows.iter().map(|(k, v)| format!("zk_{k}\t{v}\n")).collect()
    }

    fn session_of(&self, conn: replica::ConnId) -> i64 {
        self.replica.conn_session(conn).unwrap_or(0)
    }

    fn wchs(&self) -> String {
        let w = &self.replica.tree().watches;
        format!("{} connections watching {} paths\nTotal watches:{}\n", w.by_conn().count(), w.path_count(), w.count())
    }

    fn wchc(&self) -> String {
        let mut s = String::new();
        for (conn, paths) in self.replica.tree().watches.by_conn() {
            let _ = writeln!(s, "{:#x}", self.session_of(conn));
            for p in paths {
                let _ = writeln!(s, "\t{p}");
            }
        }
        s.push('\n');
        s
    }

    fn wchp(&self) -> String {
        let mut s = String::new();
        for (path, conns) in self.replica.tree().watches.by_path() {
            let _ = writeln!(s, "{path}");
            for conn in conns {
                let _ = writeln!(s, "\t{:#x}", self.session_of(conn));
            }
        }
        s.push('\n');
        s
    }

    fn dump(&self) -> String {
        let sessions = self.replica.sessions();
        let mut by_deadline: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for session in sessions.iter() {
            by_deadline.entry(session.deadline_ms).or_default().push(session.id);
        }
        let mut s = format!("SessionTracker dump:\nSession Sets ({})/({}):\n", by_deadline.len(), sessions.len());
        for (deadline, ids) in &by_deadline {
            let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(*deadline));
            for id in ids {
                let _ = writeln!(s, "\t{id:#x}");
            }
        }
        let ephemerals = self.replica.tree().ephemerals_by_session();
        let _ = writeln!(s, "ephemeral nodes dump:\nSessions with Ephemerals ({}):", ephemerals.len());
        for (session, paths) in ephemerals {
            let _ = writeln!(s, "{session:#x}:");
            for p in paths {
                let _ = writeln!(s, "\t{p}");
            }
        }
        let _ = writeln!(s, "Connections dump:\nConnections Sets (1)/({}):", self.conns.len());
        let _ = writeln!(s, "{} expire at {}:", self.conns.len(), java_date(wall_ms()));
        for (conn, c) in &self.conns {
            let _ = writeln!(s, "\tip: /{} sessionId: {:#x}", c.addr, self.session_of(*conn));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(0.2676), "0.2676");
        assert_eq!(java_date(1_795_606_132_000), "Wed Nov 25 11:28:52 UTC 2026");
    }
}
