//! The admin HTTP server and `/metrics` of the real binary: ZooKeeper's admin commands in
//! its JSON shape with the values known operations leave, and metrics that parse strictly as
//! Prometheus text format and move with the requests.

mod common;

use common::{connect, free_port, http_get, open, Server};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use zookeeper_client as zk;

// ------------------------------------------------------------------ Prometheus text format

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// One parsed exposition: the samples by name and labels, and the type of each family.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<(String, Labels), f64>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    /// The value of the sample `name` with exactly these labels.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    fn value(&self, name: &str) -> f64 {
        self.get(name, &[]).unwrap_or_else(|| panic!("no sample {name}"))
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    is_metric_name(s) && !s.contains(':')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
    }
}

/// Labels `{a="x",b="y"}` (a trailing comma is allowed by the format); returns them and the
/// rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = rest[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("label value must be quoted".into());
        }
        let mut value = String::new();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break eq + 1 + i + 1,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("newline in label value".into()),
                (_, c) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} twice"));
        }
        labels.push((name.to_owned(), value));
        rest = &rest[end..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("labels must be separated by commas".into());
        }
    }
}

/// The family a sample belongs to, given the families' types.
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if matches!(types.get(base).map(String::as_str), Some("histogram" | "summary")) {
                return base;
            }
        }
    }
    name
}

/// A strict parser of the Prometheus text exposition format 0.0.4: every line is a HELP or
/// TYPE comment or a sample; names, labels, escapes and values are checked; TYPE comes
/// before a family's samples; a family's lines are contiguous; no sample is repeated;
/// histogram buckets are cumulative and end at `+Inf` equal to `_count`.
fn parse_prometheus(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut helps = BTreeSet::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut enter = |family: &str, current: &mut Option<String>| -> Result<(), String> {
        if current.as_deref() != Some(family) {
            if let Some(done) = current.take() {
                finished.insert(done);
            }
            if finished.contains(family) {
                return Err(format!("family {family} is not contiguous"));
            }
            *current = Some(family.to_owned());
        }
        Ok(())
    };
    if !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    for (i, line) in text.lines().enumerate() {
        let fail = |e: String| format!("line {}: {e}: {line:?}", i + 1);
        if line.is_empty() {
            return Err(fail("empty line".into()));
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), _) => {
                    if !is_metric_name(name) || !helps.insert(name.to_owned()) {
                        return Err(fail("bad or repeated HELP".into()));
                    }
                    enter(name, &mut current).map_err(fail)?;
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !is_metric_name(name) {
                        return Err(fail("bad name".into()));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(fail(format!("unknown type {kind}")));
                    }
                    enter(name, &mut current).map_err(fail)?;
                    if out.types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(fail("repeated TYPE".into()));
                    }
                    if out.samples.keys().any(|(n, _)| family_of(n, &out.types) == name) {
                        return Err(fail("TYPE after samples".into()));
                    }
                }
                _ => {} // other comments are allowed
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| fail("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(fail("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(fail)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let mut fields =
            rest.strip_prefix(' ').ok_or_else(|| fail("expected a space before the value".into()))?.split(' ');
        let value = parse_value(fields.next().unwrap_or_default()).map_err(fail)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| fail("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(fail("trailing fields".into()));
        }
        let family = family_of(name, &out.types).to_owned();
        enter(&family, &mut current).map_err(fail)?;
        let kind = out.types.get(&family).map(String::as_str).unwrap_or("untyped");
        if kind == "counter" && value < 0.0 {
            return Err(fail("negative counter".into()));
        }
        if name.ends_with("_bucket") && kind == "histogram" && !labels.iter().any(|(k, _)| k == "le") {
            return Err(fail("bucket without le".into()));
        }
        if out.samples.insert((name.to_owned(), labels), value).is_some() {
            return Err(fail("repeated sample".into()));
        }
    }
    // Histograms: cumulative buckets ending at +Inf == _count, per label set.
    for (family, kind) in &out.types {
        if kind != "histogram" {
            continue;
        }
        let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for ((name, labels), value) in &out.samples {
            if *name == format!("{family}_bucket") {
                let le = labels.iter().find(|(k, _)| k == "le").unwrap();
                let rest: Vec<_> = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
                series.entry(rest).or_default().push((parse_value(&le.1)?, *value));
            }
        }
        if series.is_empty() {
            return Err(format!("histogram {family} has no buckets"));
        }
        for (labels, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(format!("{family}{labels:?}: buckets are not cumulative"));
            }
            let (le, last) = *buckets.last().unwrap();
            let count = out.samples.get(&(format!("{family}_count"), labels.clone()));
            if le != f64::INFINITY || count != Some(&last) {
                return Err(format!("{family}{labels:?}: the +Inf bucket is not _count"));
            }
            if !out.samples.contains_key(&(format!("{family}_sum"), labels.clone())) {
                return Err(format!("{family}{labels:?}: no _sum"));
            }
        }
    }
    Ok(out)
}

#[test]
fn the_parser_is_strict() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total 3\n# TYPE h histogram\n\
                h_bucket{le=\"1\",op=\"x\\\"y\"} 1\nh_bucket{le=\"+Inf\",op=\"x\\\"y\"} 2\nh_sum{op=\"x\\\"y\"} 3.5\n\
                h_count{op=\"x\\\"y\"} 2\n";
    let parsed = parse_prometheus(good).unwrap();
    assert_eq!(parsed.value("a_total"), 3.0);
    assert_eq!(parsed.get("h_count", &[("op", "x\"y")]), Some(2.0));
    for bad in [
        "a 1",                                                               // no final newline
        "a{b=\"1\" 1\n",                                                     // unterminated labels
        "a{b=1} 1\n",                                                        // unquoted label value
        "a one\n",                                                           // not a number
        "a 1\na 2\n",                                                        // repeated sample
        "a 1\nb 1\na{x=\"1\"} 1\n",                                          // family not contiguous
        "a 1\n# TYPE a gauge\n",                                             // TYPE after samples
        "# TYPE a countr\na 1\n",                                            // unknown type
        "# TYPE c counter\nc -1\n",                                          // negative counter
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", // +Inf != count
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "9a 1\n",
        "a{b=\"\\q\"} 1\n",
        "\n",
    ] {
        assert!(parse_prometheus(bad).is_err(), "accepted {bad:?}");
    }
}

fn scrape(port: u16) -> Exposition {
    let (status, headers, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    let content_type = &headers.iter().find(|(k, _)| k == "content-type").unwrap().1;
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    parse_prometheus(&body).unwrap_or_else(|e| panic!("{e}\n{body}"))
}

/// The per-operation latency count of `op`.
fn op_count(m: &Exposition, op: &str) -> f64 {
    m.get("warren_request_latency_ms_count", &[("op", op)]).unwrap_or_else(|| panic!("no histogram for {op}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_and_move_with_requests() {
    let server = Server::start(
        "snapCount=20\nmetricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
    );
    let metrics_port = server.metrics_port;
    let before = scrape(server.admin_port);
    for family in ["readlatency", "updatelatency", "fsynctime", "snapshottime", "warren_request_latency_ms"] {
        assert_eq!(before.types[family], "histogram", "{family}");
    }
    for family in ["bytes_received_count", "response_bytes", "watch_bytes"] {
        assert_eq!(before.types[family], "counter", "{family}");
    }
    assert_eq!(before.types["znode_count"], "gauge");
    assert_eq!(before.value("num_alive_connections"), 0.0);

    let client = connect(&server).await;
    client.create("/app", b"", &open()).await.unwrap();
    let (_, _, _watch) = client.get_and_watch_data("/app").await.unwrap();
    for i in 0..40 {
        client.create(&format!("/app/n{i}"), b"0123456789", &open()).await.unwrap();
    }
    for i in 0..5 {
        client.get_data(&format!("/app/n{i}")).await.unwrap();
    }
    client.set_data("/app", b"changed", None).await.unwrap(); // fires the data watch

    let after = scrape(server.admin_port);
    assert_eq!(after.value("znode_count") - before.value("znode_count"), 41.0);
    assert_eq!(after.value("num_alive_connections"), 1.0);
    assert_eq!(after.value("global_sessions"), 1.0);
    assert_eq!(after.value("outstanding_requests"), 0.0);
    assert!(after.value("approximate_data_size") >= 400.0);
    let creates = |m: &Exposition| op_count(m, "create") + op_count(m, "create2");
    assert_eq!(creates(&after) - creates(&before), 41.0);
    assert_eq!(op_count(&after, "getData") - op_count(&before, "getData"), 6.0);
    assert_eq!(op_count(&after, "setData") - op_count(&before, "setData"), 1.0);
    assert!(after.value("updatelatency_count") - before.value("updatelatency_count") >= 42.0);
    assert!(after.value("readlatency_count") - before.value("readlatency_count") >= 6.0);
    assert!(after.value("updatelatency_sum") > before.value("updatelatency_sum"));
    // Transactions (the session's and 42 writes) are fsynced (forceSync defaults to yes),
    // one batch at a time.
    let fsyncs = after.value("fsynctime_count") - before.value("fsynctime_count");
    assert!((1.0..=43.0).contains(&fsyncs), "{fsyncs} fsyncs");
    assert!(after.value("bytes_received_count") - before.value("bytes_received_count") > 40.0 * 20.0);
    assert!(after.value("response_bytes") - before.value("response_bytes") >= 47.0 * 16.0);
    assert!(after.value("watch_bytes") > 0.0, "the data watch fired");
    assert!(after.value("packets_received") - before.value("packets_received") >= 48.0);
    let (min, max) = (after.value("min_client_response_size"), after.value("max_client_response_size"));
    assert!(16.0 <= min && min <= max, "{min} {max}"); // at least a reply header

    // snapCount=20: the 42 writes started snapshots, which the snapshot thread times.
    let deadline = Instant::now() + Duration::from_secs(20);
    while scrape(server.admin_port).value("snapshottime_count") < 1.0 {
        assert!(Instant::now() < deadline, "no snapshot was timed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Every numeric mntr row is a metric too.
    let mntr = server.four_letter("mntr");
    let families: BTreeSet<String> = after.types.keys().cloned().collect();
    for line in mntr.lines() {
        let (key, value) = line.split_once('\t').unwrap();
        if value.parse::<f64>().is_ok() {
            let name = key.strip_prefix("zk_").unwrap();
            assert!(families.contains(name), "mntr's {name} is not in /metrics");
        }
    }

    // The Prometheus provider's own port serves /metrics and nothing else.
    let other = scrape(metrics_port);
    assert!(other.value("znode_count") >= after.value("znode_count"));
    assert_eq!(http_get(metrics_port, "/commands/ruok").0, 404);
}

// ------------------------------------------------------------------ admin commands

fn command(server: &Server, name: &str) -> serde_json::Map<String, Value> {
    let (status, headers, body) = http_get(server.admin_port, &format!("/commands/{name}"));
    assert_eq!(status, 200, "{name}: {body}");
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "application/json"), "{headers:?}");
    match serde_json::from_str(&body) {
        Ok(Value::Object(map)) => map,
        other => panic!("{name}: not a JSON object: {other:?}\n{body}"),
    }
}

fn keys(map: &serde_json::Map<String, Value>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

/// The keys of real ZooKeeper 3.8.0's answers (Debian's build, standalone), in its order.
const ZOOKEEPER_KEYS: &[(&str, &[&str])] = &[
    ("ruok", &["command", "error"]),
    (
        "configuration",
        &[
            "client_port",
            "data_dir",
            "data_log_dir",
            "tick_time",
            "max_client_cnxns",
            "min_session_timeout",
            "max_session_timeout",
            "server_id",
            "client_port_listen_backlog",
            "command",
            "error",
        ],
    ),
    ("connection_stat_reset", &["command", "error"]),
    ("connections", &["connections", "secure_connections", "command", "error"]),
    ("dirs", &["datadir_size", "logdir_size", "command", "error"]),
    ("dump", &["expiry_time_to_session_ids", "session_id_to_ephemeral_paths", "command", "error"]),
    ("get_trace_mask", &["tracemask", "command", "error"]),
    ("initial_configuration", &["initial_configuration", "command", "error"]),
    ("is_read_only", &["read_only", "command", "error"]),
    ("last_snapshot", &["zxid", "timestamp", "command", "error"]),
    ("leader", &["error", "command"]),
    ("server_stats", &["version", "read_only", "server_stats", "client_response", "node_count", "command", "error"]),
    ("stat_reset", &["command", "error"]),
    (
        "stats",
        &[
            "version",
            "read_only",
            "server_stats",
            "client_response",
            "node_count",
            "connections",
            "secure_connections",
            "command",
            "error",
        ],
    ),
    ("voting_view", &["current_config", "command", "error"]),
    ("watch_summary", &["num_connections", "num_paths", "num_total_watches", "command", "error"]),
    ("watches", &["session_id_to_watched_paths", "command", "error"]),
    ("watches_by_path", &["path_to_session_ids", "command", "error"]),
    ("zabstate", &["voting", "zabstate", "command", "error"]),
];

const SERVER_STATS_KEYS: &[&str] = &[
    "packets_sent",
    "packets_received",
    "fsync_threshold_exceed_count",
    "client_response_stats",
    "data_dir_size",
    "log_dir_size",
    "provider_null",
    "server_state",
    "last_processed_zxid",
    "outstanding_requests",
    "avg_latency",
    "max_latency",
    "min_latency",
    "num_alive_client_connections",
    "uptime",
    "auth_failed_count",
    "non_mtlsremote_conn_count",
    "non_mtlslocal_conn_count",
];

const CONNECTION_KEYS: &[&str] = &[
    "remote_socket_address",
    "interest_ops",
    "outstanding_requests",
    "packets_received",
    "packets_sent",
    "session_id",
    "last_operation",
    "established",
    "session_timeout",
    "last_cxid",
    "last_zxid",
    "last_response_time",
    "last_latency",
    "min_latency",
    "avg_latency",
    "max_latency",
];

#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_answer_in_zookeeper_shape() {
    let server = Server::start("snapCount=20");
    // Every command in ZooKeeper's key order, with the command's own name and no error.
    for (name, expected) in ZOOKEEPER_KEYS {
        let answer = command(&server, name);
        assert_eq!(keys(&answer), *expected, "{name}");
        assert_eq!(answer["command"], *name);
        if *name != "leader" {
            assert_eq!(answer["error"], Value::Null, "{name}");
        }
    }
    let nodes_before = command(&server, "srvr")["node_count"].as_u64().unwrap();

    let client = connect(&server).await;
    let session = client.session_id().0;
    client.create("/a", b"hello", &open()).await.unwrap();
    client.create("/a/e", b"x", &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())).await.unwrap();
    let (_, _, _data_watch) = client.get_and_watch_data("/a").await.unwrap();
    let (_, _exists_watch) = client.check_and_watch_stat("/b").await.unwrap();

    let srvr = command(&server, "srvr");
    assert_eq!(srvr["node_count"].as_u64().unwrap(), nodes_before + 2);
    assert_eq!(srvr["read_only"], false);
    assert!(srvr["version"].as_str().unwrap().starts_with("3.8."));
    let stats = srvr["server_stats"].as_object().unwrap();
    assert_eq!(keys(stats), SERVER_STATS_KEYS);
    assert_eq!(stats["num_alive_client_connections"], 1);
    assert_eq!(stats["server_state"], "standalone");
    assert_eq!(stats["outstanding_requests"], 0);
    // The handshake and four requests each way (and any ping since).
    assert!(stats["packets_received"].as_u64().unwrap() >= 5);
    assert!(stats["packets_sent"].as_u64().unwrap() >= 5);
    assert!(stats["last_processed_zxid"].as_i64().unwrap() >= 3);
    assert_eq!(stats["client_response_stats"]["min_buffer_size"], 16);
    assert_eq!(stats["client_response_stats"], srvr["client_response"]);
    assert_eq!(command(&server, "server_stats")["command"], "server_stats");

    let stat = command(&server, "stat");
    assert_eq!(stat["command"], "stats");
    let brief = stat["connections"][0].as_object().unwrap();
    assert_eq!(keys(brief), &CONNECTION_KEYS[..5]);

    let cons = command(&server, "cons");
    let conns = cons["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1);
    let conn = conns[0].as_object().unwrap();
    assert_eq!(keys(conn), CONNECTION_KEYS);
    assert_eq!(conn["session_id"], session);
    assert_eq!(conn["session_timeout"], 4000);
    assert!(conn["packets_received"].as_u64().unwrap() >= 5);
    assert!(["EXIS", "PING"].contains(&conn["last_operation"].as_str().unwrap()), "{conn:?}");
    assert!(conn["remote_socket_address"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(cons["secure_connections"], serde_json::json!([]));

    let monitor = command(&server, "mntr");
    assert_eq!(monitor["command"], "monitor");
    assert_eq!(monitor["znode_count"], srvr["node_count"]);
    assert_eq!(monitor["ephemerals_count"], 1);
    assert_eq!(monitor["global_sessions"], 1);
    assert_eq!(monitor["num_alive_connections"], 1);
    assert_eq!(monitor["server_state"], "standalone");
    assert!(monitor["avg_latency"].is_f64());
    assert!(monitor["bytes_received_count"].as_u64().unwrap() > 0);

    let sid = session.to_string();
    let watches = command(&server, "wchc");
    assert_eq!(watches["session_id_to_watched_paths"], serde_json::json!({ sid.clone(): ["/a", "/b"] }));
    let by_path = command(&server, "wchp");
    assert_eq!(by_path["path_to_session_ids"], serde_json::json!({ "/a": [session], "/b": [session] }));
    let summary = command(&server, "wchs");
    assert_eq!((summary["num_connections"].as_u64(), summary["num_paths"].as_u64()), (Some(1), Some(2)));
    let dump = command(&server, "dump");
    assert_eq!(dump["session_id_to_ephemeral_paths"], serde_json::json!({ sid: ["/a/e"] }));
    let expiry = dump["expiry_time_to_session_ids"].as_object().unwrap();
    assert_eq!(expiry.values().flat_map(|ids| ids.as_array().unwrap()).collect::<Vec<_>>(), [&Value::from(session)]);

    let conf = command(&server, "conf");
    assert_eq!(conf["client_port"], server.port);
    assert_eq!((conf["tick_time"].as_u64(), conf["min_session_timeout"].as_u64()), (Some(200), Some(400)));
    let icfg = command(&server, "icfg");
    assert!(icfg["initial_configuration"].as_str().unwrap().contains(&format!("clientPort={}\n", server.port)));
    let envi = command(&server, "envi");
    assert_eq!(envi["command"], "environment");
    assert!(envi["zookeeper.version"].as_str().unwrap().starts_with("3.8."));
    assert_eq!(command(&server, "isro")["read_only"], false);
    assert_eq!(command(&server, "gtmk")["tracemask"], 306);
    let zab = command(&server, "zabstate");
    assert_eq!((zab["voting"].as_bool(), zab["zabstate"].as_str()), (Some(false), Some("")));
    let lead = command(&server, "lead");
    assert_eq!((lead["command"].as_str(), lead["error"].as_str()), (Some("leader"), Some("server is not initialized")));

    // No snapshot yet; snapCount=20 writes make one.
    assert_eq!(command(&server, "lsnp")["zxid"], "ffffffffffffffff");
    for i in 0..40 {
        client.create(&format!("/a/n{i}"), b"", &open()).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let snapshot = loop {
        let lsnp = command(&server, "lsnp");
        if lsnp["zxid"] != "ffffffffffffffff" {
            break lsnp;
        }
        assert!(Instant::now() < deadline, "no snapshot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let zxid = i64::from_str_radix(snapshot["zxid"].as_str().unwrap(), 16).unwrap();
    assert!(zxid >= 20, "{snapshot:?}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now - snapshot["timestamp"].as_i64().unwrap()).abs() < 120, "{snapshot:?}");
    let dirs = command(&server, "dirs");
    assert!(dirs["datadir_size"].as_u64().unwrap() > 0 && dirs["logdir_size"].as_u64().unwrap() > 0);

    // Resets: connection stats forget the last operation; server stats start over.
    command(&server, "crst");
    let conn = command(&server, "cons")["connections"][0].clone();
    assert_eq!((conn["packets_received"].as_u64(), conn["last_operation"].as_str()), (Some(0), Some("NA")));
    command(&server, "srst");
    let stats = command(&server, "srvr")["server_stats"].clone();
    assert_eq!((stats["packets_received"].as_u64(), stats["packets_sent"].as_u64()), (Some(0), Some(0)));
    assert_eq!(stats["client_response_stats"]["max_buffer_size"], -1);
    drop(client);
}

#[test]
fn listing_unknown_commands_and_other_paths() {
    let server = Server::start("");
    let (status, headers, body) = http_get(server.admin_port, "/commands");
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/html")));
    for (name, _) in ZOOKEEPER_KEYS {
        assert!(body.contains(&format!("<a href=\"/commands/{name}\">{name}</a>\n<br/>\n")), "{name}: {body}");
    }
    assert_eq!(http_get(server.admin_port, "/commands/").2, body);
    let unknown = command(&server, "nope");
    assert_eq!(
        serde_json::to_value(&unknown).unwrap(),
        serde_json::json!({"command": "nope", "error": "Unknown command: nope"})
    );
    assert_eq!(keys(&unknown), ["command", "error"]);
    assert_eq!(http_get(server.admin_port, "/other").0, 404);
    // Only GET (and HEAD): ZooKeeper 3.8's AdminServer answers POST with 405 too.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.admin_port)).unwrap();
    s.write_all(b"POST /commands/ruok HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
}

#[test]
fn command_url_is_configurable_and_the_server_can_be_off() {
    let server = Server::start("admin.commandURL=/admin");
    assert_eq!(http_get(server.admin_port, "/admin/ruok").0, 200);
    assert_eq!(http_get(server.admin_port, "/commands/ruok").0, 404);
    drop(server);
    let server = Server::start("admin.enableServer=false");
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.admin_port)).is_err());
    assert_eq!(server.four_letter("ruok"), "imok");
}

#[test]
fn a_taken_admin_port_stops_start_up() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let client_port = loop {
        let p = free_port();
        if p != port {
            break p;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "dataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}\n",
            dir.path().join("data").display(),
            client_port
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren")).arg("server").arg(&cfg).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port} for the admin server")), "{stderr}");
}
