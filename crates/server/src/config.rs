//! `zoo.cfg`: read in two steps, as ZooKeeper's `QuorumPeerConfig` does. First the file
//! becomes `key=value` pairs with their line numbers (a line that is not one is an error
//! naming the file and line), then the pairs become a typed [`Config`] (a bad value is an
//! error naming its line). Unknown keys are logged and ignored, as ZooKeeper does.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The protocol version Warren serves, and its own version after it. Clients such as kazoo
/// parse the part before the first `-` to decide which features to use.
pub const VERSION: &str = concat!("3.8.0-warren-", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Line { path: PathBuf, line: usize, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Which four-letter words may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whitelist {
    All,
    Only(BTreeSet<String>),
}

impl Whitelist {
    pub fn allows(&self, command: &str) -> bool {
        match self {
            Whitelist::All => true,
            Whitelist::Only(set) => set.contains(command),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, if any.
    pub source: Option<PathBuf>,
    pub tick_ms: i64,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: u16,
    pub client_port_address: IpAddr,
    /// Connections per client address; 0 means no limit.
    pub max_client_cnxns: usize,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub four_letter_whitelist: Whitelist,
    /// `jute.maxbuffer`: the largest frame accepted.
    pub max_frame_bytes: usize,
    /// Requests a connection may have unanswered before the server stops reading from it.
    pub max_outstanding_per_conn: usize,
    pub super_digest: Option<String>,
    pub ttl_enabled: bool,
    pub container_check_interval_ms: i64,
    /// From `myid` in the data directory; 0 when standalone without one.
    pub server_id: u8,
    /// `forceSync`: fsync the log before acknowledging writes (on by default).
    pub force_sync: bool,
    /// `preAllocSize` (given in KiB): zeros written ahead in log segments.
    pub preallocate_bytes: u64,
    /// `snapCount`: transactions between snapshots, on average.
    pub snap_count: u64,
    /// `autopurge.snapRetainCount`: snapshots kept by purging (at least 3, as in ZooKeeper).
    pub snap_retain_count: usize,
    /// `autopurge.purgeInterval` in hours; 0 (the default) never purges automatically.
    pub purge_interval_hours: u64,
    /// `snapshot.compression.method`: compress snapshots with zstd.
    pub snapshot_zstd: bool,
    /// `logLevel` (Warren's own key): `info`, `debug`, or any `RUST_LOG` directive; the
    /// `RUST_LOG` environment variable wins over it.
    pub log_level: Option<String>,
    /// `admin.enableServer`, `admin.serverAddress`, `admin.serverPort`, `admin.commandURL`:
    /// ZooKeeper's AdminServer (on by default, as in ZooKeeper).
    pub admin: Option<AdminConfig>,
    /// Where `/metrics` is served besides the admin server: set when
    /// `metricsProvider.className` names ZooKeeper's Prometheus provider
    /// (`metricsProvider.httpHost`, default 0.0.0.0; `metricsProvider.httpPort`, default 7000).
    pub metrics_address: Option<SocketAddr>,
    /// Set when `server.N` lines name more than one server; this server is `server_id`.
    pub ensemble: Option<Ensemble>,
}

/// The admin HTTP server's address and the path its commands live under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub address: SocketAddr,
    /// `admin.commandURL`, `/commands` by default.
    pub command_url: String,
}

/// `metricsProvider.className` of ZooKeeper's Prometheus provider.
pub const PROMETHEUS_PROVIDER: &str = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

impl Default for Config {
    /// The built-in standalone default: 127.0.0.1:2181, data under `./data`.
    fn default() -> Self {
        Config {
            source: None,
            tick_ms: 2000,
            data_dir: PathBuf::from("data"),
            data_log_dir: PathBuf::from("data"),
            client_port: 2181,
            client_port_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            max_client_cnxns: 60,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            four_letter_whitelist: Whitelist::Only(BTreeSet::from(["srvr".to_owned()])),
            max_frame_bytes: proto::DEFAULT_MAX_FRAME,
            max_outstanding_per_conn: 1000,
            super_digest: None,
            ttl_enabled: true,
            container_check_interval_ms: 60_000,
            server_id: 0,
            force_sync: true,
            preallocate_bytes: 64 << 20,
            snap_count: 100_000,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            snapshot_zstd: false,
            log_level: None,
            // Loopback, like the client port of the built-in default.
            admin: Some(AdminConfig {
                address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
                command_url: "/commands".into(),
            }),
            metrics_address: None,
            ensemble: None,
        }
    }
}

/// One `key=value` line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// Splits a properties file into entries. `#` and `!` start comments; the separator is the
/// first `=` (or `:`), as in Java properties.
pub fn parse_entries(path: &Path, text: &str) -> Result<Vec<Entry>, ConfigError> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(sep) = line.find(['=', ':']) else {
            return Err(ConfigError::Line {
                path: path.into(),
                line: i + 1,
                message: format!("expected key=value, found {line:?}"),
            });
        };
        let (key, value) = (line[..sep].trim(), line[sep + 1..].trim());
        if key.is_empty() {
            return Err(ConfigError::Line { path: path.into(), line: i + 1, message: "empty key".into() });
        }
        entries.push(Entry { line: i + 1, key: key.to_owned(), value: value.to_owned() });
    }
    Ok(entries)
}

/// Keys ZooKeeper knows that this version accepts but does not act on yet.
const ACCEPTED_UNUSED: &[&str] = &[
    "peerType",
    "secureClientPort",
    "metricsProvider.exportJvmInfo",
    "standaloneEnabled",
    "reconfigEnabled",
    "globalOutstandingLimit",
    "clientPortListenBacklog",
    "quorumListenOnAllIPs",
    "audit.enable",
    "syncEnabled",
];

/// One `server.N` line: a member of the ensemble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub host: String,
    /// Followers reach the leader here (ZAB's ordered stream and forwarded requests).
    pub quorum_port: u16,
    /// Election notifications arrive here.
    pub election_port: u16,
    pub observer: bool,
}

/// The ensemble a server belongs to, from the `server.N` lines, `initLimit` and `syncLimit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensemble {
    pub members: Vec<Member>,
    /// Ticks a new leader has to synchronize a quorum.
    pub init_limit: u64,
    /// Ticks a follower may go unheard before the leader gives up on it (and the reverse).
    pub sync_limit: u64,
}

impl Ensemble {
    /// The member with this server id.
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// Reads a `server.N` value, `host:quorumPort:electionPort[:participant|:observer][;client]`.
fn parse_member(id: u64, value: &str) -> Option<Member> {
    let (server, client) = match value.split_once(';') {
        Some((server, client)) => (server, Some(client)),
        None => (value, None),
    };
    // An IPv6 host is bracketed: [::1]:2888:3888.
    let (host, rest) = match server.strip_prefix('[') {
        Some(v6) => v6.split_once("]:")?,
        None => server.split_once(':').filter(|(host, _)| !host.is_empty())?,
    };
    let mut parts = rest.split(':');
    let quorum_port = parts.next()?.parse::<u16>().ok()?;
    let election_port = parts.next()?.parse::<u16>().ok()?;
    let observer = match parts.next() {
        None | Some("participant") => false,
        Some("observer") => true,
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    if let Some(client) = client {
        client.rsplit(':').next()?.parse::<u16>().ok()?;
    }
    Some(Member { id, host: host.to_owned(), quorum_port, election_port, observer })
}

impl Config {
    /// Reads a `zoo.cfg` and the `myid` file of its data directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let mut config = Config::from_entries(path, &parse_entries(path, &text)?)?;
        config.source = Some(path.into());
        let myid = config.data_dir.join("myid");
        if let Ok(text) = std::fs::read_to_string(&myid) {
            config.server_id = text
                .trim()
                .parse()
                .map_err(|_| ConfigError::Invalid(format!("{}: expected a server id from 0 to 254", myid.display())))?;
        }
        if let Some(ensemble) = &config.ensemble {
            if ensemble.member(config.server_id as u64).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "{}: this server's id ({}) is not among the server.N lines of {}",
                    myid.display(),
                    config.server_id,
                    path.display()
                )));
            }
        }
        Ok(config)
    }

    pub fn from_entries(path: &Path, entries: &[Entry]) -> Result<Config, ConfigError> {
        let mut c = Config { client_port_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED), ..Config::default() };
        let (mut data_log_dir, mut min_timeout, mut max_timeout) = (None, None, None);
        let mut members: Vec<(Member, usize)> = Vec::new();
        let (mut init_limit, mut sync_limit) = (10, 5);
        let mut client_port = None;
        let (mut admin_enabled, mut admin_address, mut admin_port) = (true, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
        let mut command_url = "/commands".to_owned();
        let (mut metrics_provider, mut metrics_host, mut metrics_port) =
            (None, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7000);
        for e in entries {
            let bad = |what: &str| ConfigError::Line {
                path: path.into(),
                line: e.line,
                message: format!("{}: {what}, found {:?}", e.key, e.value),
            };
            let int = || e.value.parse::<i64>().map_err(|_| bad("expected an integer"));
            let positive = || int().ok().filter(|v| *v > 0).ok_or_else(|| bad("expected a positive number"));
            let boolean = || match e.value.to_ascii_lowercase().as_str() {
                "true" | "yes" => Ok(true),
                "false" | "no" => Ok(false),
                _ => Err(bad("expected true or false")),
            };
            // System properties may be written with or without their `zookeeper.` prefix.
            let key = e.key.strip_prefix("zookeeper.").unwrap_or(&e.key);
            match key {
                "tickTime" => {
                    c.tick_ms =
                        int().and_then(|v| if v > 0 { Ok(v) } else { Err(bad("expected a positive number")) })?
                }
                "dataDir" => c.data_dir = PathBuf::from(&e.value),
                "dataLogDir" => data_log_dir = Some(PathBuf::from(&e.value)),
                "clientPort" => client_port = Some(e.value.parse::<u16>().map_err(|_| bad("expected a port number"))?),
                "clientPortAddress" => {
                    c.client_port_address = e.value.parse().map_err(|_| bad("expected an IP address"))?
                }
                "maxClientCnxns" => {
                    c.max_client_cnxns = usize::try_from(int()?).map_err(|_| bad("expected a non-negative number"))?
                }
                "minSessionTimeout" => min_timeout = Some(int()? as i32),
                "maxSessionTimeout" => max_timeout = Some(int()? as i32),
                "4lw.commands.whitelist" => {
                    let words: BTreeSet<String> =
                        e.value.split(',').map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()).collect();
                    c.four_letter_whitelist = if words.contains("*") { Whitelist::All } else { Whitelist::Only(words) };
                }
                "jute.maxbuffer" => {
                    c.max_frame_bytes = usize::try_from(int()?).map_err(|_| bad("expected a positive number"))?
                }
                "DigestAuthenticationProvider.superDigest" => c.super_digest = Some(e.value.clone()),
                "extendedTypesEnabled" => c.ttl_enabled = boolean()?,
                "forceSync" => c.force_sync = boolean()?,
                "snapCount" => {
                    c.snap_count =
                        u64::try_from(int()?).ok().filter(|v| *v >= 2).ok_or_else(|| bad("expected at least 2"))?
                }
                "autopurge.snapRetainCount" => {
                    c.snap_retain_count = usize::try_from(int()?).map_err(|_| bad("expected a count"))?.max(3)
                }
                "logLevel" => c.log_level = Some(e.value.clone()),
                "snapshot.compression.method" => {
                    c.snapshot_zstd = match e.value.as_str() {
                        "" | "none" => false,
                        "zstd" => true,
                        // ZooKeeper's own methods; Warren's snapshots are its own format anyway.
                        "gz" | "snappy" => {
                            tracing::info!(line = e.line, method = %e.value, "snapshots are compressed with zstd instead");
                            true
                        }
                        _ => return Err(bad("expected zstd, gz, snappy or none")),
                    }
                }
                "autopurge.purgeInterval" => {
                    c.purge_interval_hours = u64::try_from(int()?).map_err(|_| bad("expected hours"))?
                }
                "preAllocSize" => c.preallocate_bytes = u64::try_from(int()?).map_err(|_| bad("expected KiB"))? * 1024,
                "znode.container.checkIntervalMs" => c.container_check_interval_ms = int()?.max(1),
                "maxOutstandingPerConnection" => c.max_outstanding_per_conn = positive()? as usize,
                "admin.enableServer" => admin_enabled = boolean()?,
                "admin.serverAddress" => admin_address = e.value.parse().map_err(|_| bad("expected an IP address"))?,
                "admin.serverPort" => admin_port = e.value.parse().map_err(|_| bad("expected a port number"))?,
                "admin.commandURL" => {
                    if !e.value.starts_with('/') {
                        return Err(bad("expected a path starting with /"));
                    }
                    command_url = e.value.trim_end_matches('/').to_owned();
                }
                "metricsProvider.className" => metrics_provider = Some(e.value.clone()),
                "metricsProvider.httpHost" => {
                    metrics_host = e.value.parse().map_err(|_| bad("expected an IP address"))?
                }
                "metricsProvider.httpPort" => {
                    metrics_port = e.value.parse().map_err(|_| bad("expected a port number"))?
                }
                "electionAlg" if e.value != "3" => {
                    return Err(bad("only 3, fast leader election, is supported (ZooKeeper dropped the others)"))
                }
                "electionAlg" => {}
                "initLimit" => init_limit = positive()? as u64,
                "syncLimit" => sync_limit = positive()? as u64,
                k if k.starts_with("server.") => {
                    let id = k["server.".len()..].parse::<u64>().map_err(|_| bad("expected server.<id>"))?;
                    let member = parse_member(id, &e.value).ok_or_else(|| {
                        bad("expected host:quorumPort:electionPort[:participant|:observer][;[clientAddress:]clientPort]")
                    })?;
                    if members.iter().any(|(m, _)| m.id == id) {
                        return Err(bad("this server id is listed twice"));
                    }
                    members.push((member, e.line));
                }
                k if ACCEPTED_UNUSED.contains(&k) => {
                    tracing::info!(key = %e.key, line = e.line, "setting accepted; standalone Warren does not use it yet")
                }
                _ => tracing::warn!(key = %e.key, line = e.line, "unknown setting ignored"),
            }
        }
        // One server line is a standalone server, as in ZooKeeper.
        if let [.., (_, line)] = members[..] {
            let voters = members.iter().filter(|(m, _)| !m.observer).count();
            if voters == 0 {
                return Err(ConfigError::Line {
                    path: path.into(),
                    line,
                    message: "an ensemble needs at least one voting server (not :observer)".into(),
                });
            }
            if members.len() > 1 {
                let members = members.into_iter().map(|(m, _)| m).collect();
                c.ensemble = Some(Ensemble { members, init_limit, sync_limit });
            }
        }
        c.client_port =
            client_port.ok_or_else(|| ConfigError::Invalid(format!("{}: clientPort is not set", path.display())))?;
        c.data_log_dir = data_log_dir.unwrap_or_else(|| c.data_dir.clone());
        c.admin =
            admin_enabled.then(|| AdminConfig { address: SocketAddr::new(admin_address, admin_port), command_url });
        c.metrics_address = match metrics_provider.as_deref() {
            Some(PROMETHEUS_PROVIDER) => Some(SocketAddr::new(metrics_host, metrics_port)),
            // ZooKeeper's default provider keeps its metrics for mntr and the admin server,
            // which Warren always does.
            None | Some("org.apache.zookeeper.metrics.impl.DefaultMetricsProvider") => None,
            Some(other) => {
                tracing::warn!(class = other, "metrics provider not available: metrics stay on the admin server");
                None
            }
        };
        c.min_session_timeout_ms = min_timeout.filter(|v| *v > 0).unwrap_or(2 * c.tick_ms as i32);
        c.max_session_timeout_ms = max_timeout.filter(|v| *v > 0).unwrap_or(20 * c.tick_ms as i32);
        if c.min_session_timeout_ms > c.max_session_timeout_ms {
            return Err(ConfigError::Invalid(format!(
                "{}: minSessionTimeout {} is larger than maxSessionTimeout {}",
                path.display(),
                c.min_session_timeout_ms,
                c.max_session_timeout_ms
            )));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let p = Path::new("zoo.cfg");
        Config::from_entries(p, &parse_entries(p, text)?)
    }

    #[test]
    fn reads_zookeeper_keys() {
        let c = load(
            "# comment\ntickTime=500\ndataDir=/tmp/x\nclientPort=2191\n4lw.commands.whitelist=ruok, srvr\n\
             zookeeper.DigestAuthenticationProvider.superDigest=super:abc\nextendedTypesEnabled=false\nsomething.else=1\nlogLevel=debug\n",
        )
        .unwrap();
        assert_eq!(c.tick_ms, 500);
        assert_eq!(c.client_port, 2191);
        assert_eq!(c.data_log_dir, PathBuf::from("/tmp/x"));
        assert_eq!((c.min_session_timeout_ms, c.max_session_timeout_ms), (1000, 10000));
        assert!(c.four_letter_whitelist.allows("ruok") && !c.four_letter_whitelist.allows("stat"));
        assert_eq!(c.super_digest.as_deref(), Some("super:abc"));
        assert!(!c.ttl_enabled);
        assert_eq!(c.log_level.as_deref(), Some("debug"));
        assert_eq!(c.client_port_address, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // ZooKeeper's defaults: the admin server on 0.0.0.0:8080, no separate metrics port.
        let admin = c.admin.unwrap();
        assert_eq!(admin.address, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(admin.command_url, "/commands");
        assert_eq!(c.metrics_address, None);
    }

    #[test]
    fn reads_admin_and_metrics_keys() {
        let c = load(
            "clientPort=2181\nadmin.serverAddress=127.0.0.1\nadmin.serverPort=9090\nadmin.commandURL=/admin/\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpPort=7001\n",
        )
        .unwrap();
        let admin = c.admin.unwrap();
        assert_eq!(admin.address, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(admin.command_url, "/admin");
        assert_eq!(c.metrics_address, Some("0.0.0.0:7001".parse().unwrap()));
        let c = load("clientPort=2181\nzookeeper.admin.enableServer=false\n").unwrap();
        assert_eq!(c.admin, None);
        // Only the Prometheus provider opens a port of its own.
        let c = load("clientPort=2181\nmetricsProvider.httpPort=7001\n").unwrap();
        assert_eq!(c.metrics_address, None);
        let e = load("clientPort=2181\nadmin.serverPort=http\n").unwrap_err().to_string();
        assert!(e.starts_with("zoo.cfg:2: admin.serverPort"), "{e}");
        let e = load("clientPort=2181\nadmin.commandURL=commands\n").unwrap_err().to_string();
        assert!(e.starts_with("zoo.cfg:2: admin.commandURL"), "{e}");
    }

    #[test]
    fn ensembles_are_read_and_bad_members_refused() {
        let one = load("clientPort=2181\nserver.1=localhost:2888:3888\n").unwrap();
        assert_eq!(one.client_port, 2181, "a single member runs standalone, as in ZooKeeper");
        assert!(one.ensemble.is_none());
        let three = load(
            "clientPort=2181\ninitLimit=7\nsyncLimit=3\nserver.1=a:2888:3888\nserver.2=b:2889:3889;2181\nserver.3=[::1]:2890:3890:observer\n",
        )
        .unwrap();
        let ensemble = three.ensemble.unwrap();
        assert_eq!((ensemble.init_limit, ensemble.sync_limit), (7, 3));
        assert_eq!(
            ensemble.members[2],
            Member { id: 3, host: "::1".into(), quorum_port: 2890, election_port: 3890, observer: true }
        );
        assert_eq!((ensemble.members[1].host.as_str(), ensemble.members[1].quorum_port), ("b", 2889));
        let e = load("clientPort=2181\nserver.1=a:2888:3888:observer\n").unwrap_err().to_string();
        assert!(e.starts_with("zoo.cfg:2:") && e.contains("voting"), "{e}");
        let e = load("clientPort=2181\nserver.1=a:2888:3888\nserver.1=b:2888:3888\n").unwrap_err().to_string();
        assert!(e.starts_with("zoo.cfg:3:") && e.contains("twice"), "{e}");
        let e = load("clientPort=2181\nserver.1=a:2888\n").unwrap_err().to_string();
        assert!(e.starts_with("zoo.cfg:2: server.1"), "{e}");
        let e = load("clientPort=2181\nserver.x=a:2888:3888\n").unwrap_err().to_string();
        assert!(e.contains("server.<id>"), "{e}");
        let e = load("clientPort=2181\nsyncLimit=0\n").unwrap_err().to_string();
        assert!(e.starts_with("zoo.cfg:2: syncLimit"), "{e}");
        let e = load("clientPort=2181\nelectionAlg=0\n").unwrap_err().to_string();
        assert!(e.starts_with("zoo.cfg:2: electionAlg"), "{e}");
        assert!(load("clientPort=2181\nelectionAlg=3\n").is_ok());
    }

    #[test]
    fn errors_name_the_line() {
        let e = load("clientPort=2181\ntickTime=abc\n").unwrap_err().to_string();
        assert!(e.starts_with("zoo.cfg:2: tickTime"), "{e}");
        let e = load("clientPort=2181\n\njust words\n").unwrap_err().to_string();
        assert!(e.starts_with("zoo.cfg:3: expected key=value"), "{e}");
        assert!(load("tickTime=2000\n").unwrap_err().to_string().contains("clientPort is not set"));
    }
}
