//! `warren shell`: ZooKeeper's `zkCli.sh`, on the `client` crate.
//!
//! Same command names, flags, messages and output streams as zkCli.sh 3.8 (results on
//! stdout; "Created", errors and usage on stderr; watch events as `WATCHER::` blocks), so
//! scripts written for one work with the other. Three ways to run it:
//! - a command on the command line: runs it, exit status 0 on success, 1 on failure,
//!   127 for an unknown command;
//! - commands on stdin when stdin is not a terminal: runs each line; the exit status is
//!   0 if every command succeeded, else that of the last failure (zkCli.sh reports only
//!   the last command's; a script wants to know of any failure);
//! - interactively, with line editing, history kept in `~/.warren_history`, and tab
//!   completion of command names and znode paths (rustyline).
//!
//! One tokio runtime runs the client; the main thread reads lines and runs each command
//! to completion. Watch events and session changes are printed by a printer task as they
//! arrive; after each command the main thread has the printer flush what already came,
//! so a command's own events are printed before the next command runs.

use client::{
    acls, perms, Acl, AddWatchMode, Client, CreateMode, Error, EventType, Id, KeeperState, Op, Session, SessionState,
    Stat, WatchStream, WatchedEvent, Watcher, WatcherType,
};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::Helper;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// zkCli.sh's exit codes.
const EXIT_OK: i32 = 0;
const EXIT_ERROR: i32 = 1;
const EXIT_NOT_FOUND: i32 = 127;

/// The commands and their usage lines, as zkCli.sh lists them.
const COMMANDS: &[(&str, &str)] = &[
    (
        "addWatch",
        "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
    ),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("config", "[-c] [-w] [-s]"),
    ("connect", "host:port"),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("get", "[-s] [-w] path"),
    ("getAcl", "[-s] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "path"),
    ("history", ""),
    ("ls", "[-s] [-w] [-R] path"),
    ("printwatches", "on|off"),
    ("quit", ""),
    ("redo", "cmdno"),
    ("removewatches", "path [-c|-d|-a] [-l]"),
    ("set", "[-s] [-v version] path data"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("version", ""),
    ("whoami", ""),
];

/// A failed command: the message zkCli.sh prints on stderr, and its exit code.
struct CliError {
    message: String,
    code: i32,
}

impl CliError {
    fn new(message: impl Into<String>) -> CliError {
        CliError { message: message.into(), code: EXIT_ERROR }
    }

    /// A command line that does not parse: its usage line.
    fn usage(command: &str) -> CliError {
        CliError::new(usage_line(command))
    }
}

type CliResult = Result<(), CliError>;

fn usage_line(command: &str) -> String {
    let options = COMMANDS.iter().find(|(name, _)| *name == command).map_or("", |(_, o)| o);
    format!("{command} {options}")
}

/// zkCli.sh's message for a failed ZooKeeper call on `path` (its `CliWrapperException`).
fn keeper_error(error: &Error, path: &str) -> CliError {
    let error = match error {
        Error::MultiFailed { error, .. } => error,
        other => other,
    };
    let prefix = match error {
        Error::NoNode => "Node does not exist: ",
        Error::NoChildrenForEphemerals => "Ephemerals cannot have children: ",
        Error::NodeExists => "Node already exists: ",
        Error::NotEmpty => "Node not empty: ",
        Error::NotReadOnly => "Not a read-only call: ",
        Error::InvalidAcl => "Acl is not valid : ",
        Error::NoAuth => "Insufficient permission : ",
        Error::BadArguments => "Arguments are not valid : ",
        Error::BadVersion => "version No is not valid : ",
        Error::QuotaExceeded => "Quota has exceeded : ",
        Error::InvalidPath(message) => return CliError::new(message.clone()),
        other => return CliError::new(other.keeper_message(Some(path))),
    };
    CliError::new(format!("{prefix}{path}"))
}

/// Splits a line as zkCli.sh does: words, or whole `"..."` / `'...'` strings.
fn split_line(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
        let end = match quote.and_then(|q| rest[1..].find(q).map(|i| i + 2)) {
            Some(end) => {
                words.push(rest[1..end - 1].to_owned());
                end
            }
            None => {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                words.push(rest[..end].to_owned());
                end
            }
        };
        rest = rest[end..].trim_start();
    }
    words
}

/// Options parsed the way commons-cli does for zkCli.sh: `-s -w`, `-sw`, `-v 3`, `-v3`,
/// anywhere on the line. `spec` lists each option letter and whether it takes a value.
struct Parsed {
    options: HashMap<char, String>,
    /// The command name and its positional arguments.
    args: Vec<String>,
}

impl Parsed {
    fn has(&self, option: char) -> bool {
        self.options.contains_key(&option)
    }

    fn value(&self, option: char) -> Option<&str> {
        self.options.get(&option).map(String::as_str)
    }
}

fn parse_options(words: &[String], spec: &[(char, bool)]) -> Result<Parsed, CliError> {
    let unrecognized = |w: &str| {
        CliError::new(format!("org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {w}"))
    };
    let takes_value = |c: char| spec.iter().find(|(o, _)| *o == c).map(|(_, v)| *v);
    let mut parsed = Parsed { options: HashMap::new(), args: vec![words[0].clone()] };
    let mut i = 1;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        let Some(flags) = word.strip_prefix('-').filter(|f| !f.is_empty()) else {
            parsed.args.push(word.clone());
            continue;
        };
        for (at, c) in flags.char_indices() {
            match takes_value(c) {
                None => return Err(unrecognized(word)),
                Some(false) => {
                    parsed.options.insert(c, String::new());
                }
                Some(true) => {
                    let attached = &flags[at + c.len_utf8()..];
                    let value = if !attached.is_empty() {
                        attached.to_owned()
                    } else if i < words.len() && !words[i].starts_with('-') {
                        i += 1;
                        words[i - 1].clone()
                    } else {
                        return Err(CliError::new(format!(
                            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {c}"
                        )));
                    };
                    parsed.options.insert(c, value);
                    break;
                }
            }
        }
    }
    Ok(parsed)
}

/// `scheme:id:perm[,...]`, with zkCli's messages (on stderr) for the parts it skips.
fn parse_acl(text: &str) -> Vec<Acl> {
    let mut acl = Vec::new();
    // Java's split drops trailing empty parts.
    let parts: Vec<&str> = text.split(',').collect();
    let keep = parts.iter().rposition(|p| !p.is_empty()).map_or(0, |i| i + 1);
    for part in &parts[..keep] {
        let (Some(first), Some(last)) = (part.find(':'), part.rfind(':')) else {
            eprintln!("{part} does not have the form scheme:id:perm");
            continue;
        };
        if first == last {
            eprintln!("{part} does not have the form scheme:id:perm");
            continue;
        }
        let mut bits = 0;
        for c in part[last + 1..].chars() {
            bits |= match c {
                'r' => perms::READ,
                'w' => perms::WRITE,
                'c' => perms::CREATE,
                'd' => perms::DELETE,
                'a' => perms::ADMIN,
                other => {
                    eprintln!("Unknown perm type: {other}");
                    0
                }
            };
        }
        let id = Id { scheme: part[..first].to_owned(), id: Some(part[first + 1..last].to_owned()) };
        acl.push(Acl { perms: bits, id });
    }
    acl
}

/// `cdrwa` letters in ZooKeeper's order (`ZKUtil.getPermString`).
pub(crate) fn perm_string(bits: i32) -> String {
    [(perms::CREATE, 'c'), (perms::DELETE, 'd'), (perms::READ, 'r'), (perms::WRITE, 'w'), (perms::ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, c)| c)
        .collect()
}

/// zkCli.sh's `StatPrinter`.
fn stat_text(stat: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\ndataVersion = {}\n\
         aclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}\n",
        stat.czxid,
        server::java_date(stat.ctime),
        stat.mzxid,
        server::java_date(stat.mtime),
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children
    )
}

fn print_stat(stat: &Stat) {
    print!("{}", stat_text(stat));
}

/// How zkCli.sh prints data: the bytes as a (lossy) string, or `null`.
fn data_text(data: &Option<Vec<u8>>) -> String {
    data.as_ref().map_or_else(|| "null".to_owned(), |d| String::from_utf8_lossy(d).into_owned())
}

/// The client part of a `/zookeeper/config` text (`ConfigUtils.getClientConfigStr`):
/// the version and the client addresses of the servers.
fn client_config(config: &str) -> String {
    let mut version = "";
    let mut servers = Vec::new();
    for line in config.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        match key.trim() {
            "version" => version = value.trim(),
            k if k.starts_with("server.") => {
                if let Some((_, client)) = value.split_once(';') {
                    servers.push(client.trim().to_owned());
                }
            }
            _ => {}
        }
    }
    format!("{version} {}", servers.join(","))
}

/// A `WATCHER::` block as zkCli.sh prints it.
fn watcher_block(event: &WatchedEvent) -> String {
    format!("\nWATCHER::\n\n{event}\n")
}

fn state_event(state: KeeperState) -> WatchedEvent {
    WatchedEvent { event_type: EventType::None, state, path: None }
}

/// What the printer task is told by the main thread.
enum Control {
    /// Print every event that has already arrived, then answer.
    Flush(oneshot::Sender<()>),
    /// Follow this client's session changes (`None`: stop following).
    Follow(Option<watch::Receiver<Session>>),
}

/// Writes a block of output at once, so that it does not interleave with other output.
fn print_block(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The printer task: watch events of the shell's one watcher, and session changes of the
/// current client, as they arrive.
///
/// While a line is being edited, an event is printed where the cursor is, as zkCli.sh
/// does. (rustyline's external printer would redraw the prompt, but with it rustyline
/// leaves pasted input unprocessed until the next key press.)
async fn printer(
    mut events: WatchStream,
    mut control: mpsc::UnboundedReceiver<Control>,
    print_watches: Arc<AtomicBool>,
) {
    let mut session: Option<watch::Receiver<Session>> = None;
    let mut last_state = SessionState::Connected;
    let show = |event: WatchedEvent| {
        if print_watches.load(Ordering::Relaxed) {
            print_block(&watcher_block(&event));
        }
    };
    loop {
        let changed = async {
            match session.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Control first: a `Follow(None)` sent before a close must win over the
            // Closed state that close then publishes, or Closed would print twice.
            biased;
            command = control.recv() => match command {
                Some(Control::Flush(done)) => {
                    while let Some(event) = events.try_next() {
                        if event.event_type != EventType::None {
                            show(event);
                        }
                    }
                    let _ = done.send(());
                }
                Some(Control::Follow(rx)) => {
                    last_state = rx.as_ref().map_or(SessionState::Closed, |rx| rx.borrow().state);
                    session = rx;
                }
                None => return,
            },
            event = events.next() => match event {
                // State changes come from the session channel, once per client.
                Some(event) if event.event_type == EventType::None => {}
                Some(event) => show(event),
                None => return,
            },
            alive = changed => {
                if !alive {
                    session = None;
                    continue;
                }
                let state = session.as_mut().map_or(last_state, |rx| rx.borrow_and_update().state);
                let keeper = match (last_state, state) {
                    (SessionState::Connecting, SessionState::Connected) => Some(KeeperState::SyncConnected),
                    (SessionState::Connected, SessionState::Connecting) => Some(KeeperState::Disconnected),
                    (_, SessionState::Expired) => Some(KeeperState::Expired),
                    (_, SessionState::AuthFailed) => Some(KeeperState::AuthFailed),
                    (_, SessionState::Closed) => Some(KeeperState::Closed),
                    _ => None,
                };
                last_state = state;
                if let Some(keeper) = keeper {
                    show(state_event(keeper));
                }
            },
        }
    }
}

/// The shell's state: zkCli.sh's `ZooKeeperMain`.
struct Shell {
    client: Option<Client>,
    /// The current client, for the completer on the editor's thread.
    current: watch::Sender<Option<Client>>,
    host: String,
    timeout: Duration,
    read_only: bool,
    /// The one watcher every `-w` registers, as zkCli.sh's default watcher.
    watcher: Watcher,
    control: mpsc::UnboundedSender<Control>,
    print_watches: Arc<AtomicBool>,
    history: BTreeMap<usize, String>,
    count: usize,
}

/// The result of one line: its exit code, and whether the shell should stop.
struct Outcome {
    code: i32,
    quit: bool,
}

impl Shell {
    fn alive(&self) -> Option<&Client> {
        self.client.as_ref().filter(|c| c.state().is_alive())
    }

    /// Opens a session with `host`, closing the current one; prints the events zkCli.sh
    /// prints for both.
    async fn connect(&mut self, host: &str) {
        self.close().await;
        self.host = host.to_owned();
        let connected = Client::builder(host).session_timeout(self.timeout).read_only(self.read_only).connect().await;
        match connected {
            Ok(client) => {
                if self.print_watches.load(Ordering::Relaxed) {
                    print!("{}", watcher_block(&state_event(KeeperState::SyncConnected)));
                }
                let _ = self.control.send(Control::Follow(Some(client.session_changes())));
                self.current.send_replace(Some(client.clone()));
                self.client = Some(client);
            }
            Err(e) => eprintln!("Unable to connect to {host}: {e}"),
        }
    }

    /// Closes the session, if one is open, and prints the Closed event.
    async fn close(&mut self) {
        let Some(client) = self.client.take() else { return };
        self.current.send_replace(None);
        // The printer stops following first: the Closed event is printed here, in order.
        let _ = self.control.send(Control::Follow(None));
        let was_alive = client.state().is_alive();
        let _ = client.close().await;
        if was_alive && self.print_watches.load(Ordering::Relaxed) {
            print!("{}", watcher_block(&state_event(KeeperState::Closed)));
        }
    }

    /// Waits until the printer has printed every event that has already arrived.
    async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.control.send(Control::Flush(done)).is_ok() {
            let _ = wait.await;
        }
        let _ = std::io::stdout().flush();
    }

    /// Runs one line as zkCli.sh's `executeLine` does: numbered into the history, then run.
    async fn execute_line(&mut self, line: &str) -> Outcome {
        let words = split_line(line);
        if words.is_empty() {
            return Outcome { code: EXIT_OK, quit: false };
        }
        self.history.insert(self.count, line.to_owned());
        let outcome = self.execute(words).await;
        self.count += 1;
        outcome
    }

    async fn execute(&mut self, words: Vec<String>) -> Outcome {
        let result = self.dispatch(&words).await;
        self.flush().await;
        match result {
            Ok(quit) => Outcome { code: EXIT_OK, quit },
            Err(e) => {
                let _ = std::io::stdout().flush();
                if !e.message.is_empty() {
                    eprintln!("{}", e.message);
                }
                Outcome { code: e.code, quit: false }
            }
        }
    }

    /// Runs a command; `Ok(true)` means quit.
    async fn dispatch(&mut self, words: &[String]) -> Result<bool, CliError> {
        let command = words[0].as_str();
        match command {
            "quit" => {
                self.close().await;
                return Ok(true);
            }
            "redo" if words.len() >= 2 => {
                let index = parse_java_int(&words[1])
                    .filter(|i| *i >= 0 && (*i as usize) < self.count)
                    .ok_or_else(|| CliError::new("Command index out of range"))?;
                let line = self.history[&(index as usize)].clone();
                let redone = split_line(&line);
                if redone[0] == "redo" {
                    return Err(CliError::new("No redoing redos"));
                }
                self.history.insert(self.count, line);
                return Box::pin(self.dispatch(&redone)).await;
            }
            "history" => {
                for i in self.count.saturating_sub(10)..=self.count {
                    println!("{i} - {}", self.history.get(&i).map_or("null", String::as_str));
                }
                return Ok(false);
            }
            "printwatches" => {
                match words.get(1) {
                    None => println!(
                        "printwatches is {}",
                        if self.print_watches.load(Ordering::Relaxed) { "on" } else { "off" }
                    ),
                    Some(arg) => self.print_watches.store(arg == "on", Ordering::Relaxed),
                }
                return Ok(false);
            }
            "connect" => {
                let host = words.get(1).cloned().unwrap_or_else(|| self.host.clone());
                self.connect(&host).await;
            }
            _ if !COMMANDS.iter().any(|(name, _)| *name == command) => {
                print_usage();
                return Err(CliError {
                    message: format!("Command not found: Command not found {command}"),
                    code: EXIT_NOT_FOUND,
                });
            }
            _ => {}
        }
        let Some(zk) = self.alive().cloned() else {
            println!("Not connected");
            // zkCli.sh exits 0 here; a script is better told that nothing ran.
            return Err(CliError { message: String::new(), code: EXIT_ERROR });
        };
        match command {
            "connect" | "redo" => Ok(()),
            "ls" => self.ls(&zk, words).await,
            "get" => self.get(&zk, words).await,
            "set" => set(&zk, words).await,
            "create" => create(&zk, words).await,
            "delete" => delete(&zk, words).await,
            "deleteall" => deleteall(&zk, words).await,
            "stat" => self.stat(&zk, words).await,
            "getAcl" => get_acl(&zk, words).await,
            "setAcl" => set_acl(&zk, words).await,
            "addauth" => add_auth(&zk, words).await,
            "addWatch" => self.add_watch(&zk, words).await,
            "removewatches" => remove_watches(&zk, words).await,
            "sync" => sync(&zk, words).await,
            "whoami" => who_am_i(&zk).await,
            "version" => {
                println!("ZooKeeper CLI version: {}", server::VERSION);
                Ok(())
            }
            "getEphemerals" => get_ephemerals(&zk, words).await,
            "getAllChildrenNumber" => get_all_children_number(&zk, words).await,
            "config" => self.config(&zk, words).await,
            "close" => {
                self.close().await;
                Ok(())
            }
            _ => unreachable!("every listed command is handled"),
        }
        .map(|()| false)
    }

    /// `ls [-s] [-w] [-R] path`.
    async fn ls(&self, zk: &Client, words: &[String]) -> CliResult {
        let mut p = parse_options(words, &[('s', false), ('w', false), ('R', false)])?;
        deprecated_watch(&mut p, "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.");
        let path = p.args.get(1).ok_or_else(|| CliError::usage("ls"))?.clone();
        let watcher = p.has('w').then_some(&self.watcher);
        if p.has('R') {
            return visit_subtree(zk, &path, watcher, Visit::Print).await;
        }
        let (mut children, stat) = match (watcher, p.has('s')) {
            (Some(w), true) => zk.get_children2_watch(&path, w).await.map(|(c, s)| (c, Some(s))),
            (Some(w), false) => zk.get_children_watch(&path, w).await.map(|c| (c, None)),
            (None, true) => zk.get_children2(&path).await.map(|(c, s)| (c, Some(s))),
            (None, false) => zk.get_children(&path).await.map(|c| (c, None)),
        }
        .map_err(|e| keeper_error(&e, &path))?;
        children.sort();
        println!("[{}]", children.join(", "));
        if let Some(stat) = stat {
            print_stat(&stat);
        }
        Ok(())
    }

    /// `get [-s] [-w] path`.
    async fn get(&self, zk: &Client, words: &[String]) -> CliResult {
        let mut p = parse_options(words, &[('s', false), ('w', false)])?;
        deprecated_watch(&mut p, "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.");
        let path = p.args.get(1).ok_or_else(|| CliError::usage("get"))?.clone();
        let (data, stat) = match p.has('w') {
            true => zk.get_data_watch(&path, &self.watcher).await,
            false => zk.get_data(&path).await,
        }
        .map_err(|e| keeper_error(&e, &path))?;
        println!("{}", data_text(&data));
        if p.has('s') {
            print_stat(&stat);
        }
        Ok(())
    }

    /// `stat [-w] path`.
    async fn stat(&self, zk: &Client, words: &[String]) -> CliResult {
        let mut p = parse_options(words, &[('w', false)])?;
        deprecated_watch(&mut p, "'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.");
        let path = p.args.get(1).ok_or_else(|| CliError::usage("stat"))?.clone();
        let stat = match p.has('w') {
            true => zk.exists_watch(&path, &self.watcher).await,
            false => zk.exists(&path).await,
        }
        .map_err(|e| keeper_error(&e, &path))?;
        print_stat(&stat.ok_or_else(|| keeper_error(&Error::NoNode, &path))?);
        Ok(())
    }

    /// `addWatch [-m mode] path`.
    async fn add_watch(&self, zk: &Client, words: &[String]) -> CliResult {
        let p = parse_options(words, &[('m', true)])?;
        let path = p.args.get(1).ok_or_else(|| CliError::usage("addWatch"))?;
        let mode = match p.value('m') {
            None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
            Some("PERSISTENT") => AddWatchMode::Persistent,
            Some(_) => return Err(CliError::usage("addWatch")),
        };
        zk.add_watch(path, mode, &self.watcher).await.map_err(|e| keeper_error(&e, path))
    }

    /// `config [-c] [-w] [-s]`.
    async fn config(&self, zk: &Client, words: &[String]) -> CliResult {
        let p = parse_options(words, &[('c', false), ('w', false), ('s', false)])?;
        let watcher = p.has('w').then_some(&self.watcher);
        let (data, stat) = zk.get_config(watcher).await.map_err(|e| keeper_error(&e, client::CONFIG_NODE))?;
        match (&data, p.has('c')) {
            (None, _) => println!("null"),
            (Some(d), true) => println!("{}", client_config(&String::from_utf8_lossy(d))),
            (Some(d), false) => println!("{}", String::from_utf8_lossy(d)),
        }
        if p.has('s') {
            print_stat(&stat);
        }
        Ok(())
    }
}

/// Java's `Integer.decode`: decimal, `0x` hex, or `0` octal, with a sign.
fn parse_java_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(hex) = digits.strip_prefix('#') {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if negative { -value } else { value })
}

/// The old `cmd path watch` form: a third word sets the watch, with a warning.
fn deprecated_watch(p: &mut Parsed, warning: &str) {
    if p.args.len() > 2 {
        p.args.truncate(2);
        eprintln!("{warning}");
        p.options.insert('w', String::new());
    }
}

/// What `ls -R` and `setAcl -R` do at each node of a subtree.
enum Visit<'a> {
    Print,
    /// zkCli.sh prints each failure's message with no line end and carries on.
    SetAcl(&'a [Acl], Option<i32>),
}

impl Visit<'_> {
    async fn apply(&self, zk: &Client, path: &str) {
        match self {
            Visit::Print => println!("{path}"),
            Visit::SetAcl(acl, version) => {
                if let Err(e) = zk.set_acl(path, acl, *version).await {
                    print!("{}", e.keeper_message(Some(path)));
                }
            }
        }
    }
}

/// Walks a subtree as zkCli.sh's `ZKUtil.visitSubTreeDFS`: the node, then each node's
/// children (sorted) before their own subtrees. A failure names the node it hit.
async fn visit_subtree(zk: &Client, path: &str, watcher: Option<&Watcher>, visit: Visit<'_>) -> CliResult {
    match watcher {
        Some(w) => zk.get_data_watch(path, w).await,
        None => zk.get_data(path).await,
    }
    .map_err(|e| keeper_error(&e, path))?;
    visit.apply(zk, path).await;
    let mut stack = vec![path.to_owned()];
    while let Some(node) = stack.pop() {
        let children = match watcher {
            Some(w) => zk.get_children_watch(&node, w).await,
            None => zk.get_children(&node).await,
        };
        let mut children = match children {
            Ok(children) => children,
            // Deleted meanwhile: nothing below it to visit.
            Err(Error::NoNode) => continue,
            Err(e) => return Err(keeper_error(&e, &node)),
        };
        children.sort();
        let paths: Vec<String> = children.iter().map(|c| tree::path::join(&node, c)).collect();
        for child in &paths {
            visit.apply(zk, child).await;
        }
        stack.extend(paths.into_iter().rev());
    }
    Ok(())
}

/// `set [-s] [-v version] path data`.
async fn set(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[('s', false), ('v', true)])?;
    let (Some(path), Some(data)) = (p.args.get(1), p.args.get(2)) else {
        return Err(CliError::usage("set"));
    };
    let version = version_option(&p)?;
    let stat = zk.set_data(path, Some(data.as_bytes()), version).await.map_err(|e| keeper_error(&e, path))?;
    if p.has('s') {
        print_stat(&stat);
    }
    Ok(())
}

/// `-v version`; zkCli.sh dies on a non-number, this prints its parse error instead.
fn version_option(p: &Parsed) -> Result<Option<i32>, CliError> {
    match p.value('v') {
        None => Ok(None),
        Some(v) => v
            .parse::<i32>()
            .map(Some)
            .map_err(|_| CliError::new(format!("java.lang.NumberFormatException: For input string: \"{v}\""))),
    }
}

/// `create [-s] [-e] [-c] [-t ttl] path [data] [acl]`.
async fn create(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[('e', false), ('s', false), ('c', false), ('t', true)])?;
    let (ephemeral, sequential, container) = (p.has('e'), p.has('s'), p.has('c'));
    if container && (ephemeral || sequential) {
        return Err(CliError::new(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    let ttl = match p.value('t') {
        None => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| CliError::new("-t argument must be a long value"))?),
    };
    if ttl.is_some() && ephemeral {
        return Err(CliError::new("TTLs cannot be used with Ephemeral znodes"));
    }
    if ttl.is_some() && container {
        return Err(CliError::new("TTLs cannot be used with Container znodes"));
    }
    let mode = match (ephemeral, sequential, container, ttl) {
        (_, _, true, _) => CreateMode::Container,
        (true, true, ..) => CreateMode::EphemeralSequential,
        (true, false, ..) => CreateMode::Ephemeral,
        (false, true, _, Some(ttl_ms)) => CreateMode::PersistentSequentialWithTtl { ttl_ms },
        (false, true, _, None) => CreateMode::PersistentSequential,
        (false, false, _, Some(ttl_ms)) => CreateMode::PersistentWithTtl { ttl_ms },
        (false, false, _, None) => CreateMode::Persistent,
    };
    let path = p.args.get(1).ok_or_else(|| CliError::usage("create"))?;
    let data = p.args.get(2).map(String::as_bytes);
    let acl = p.args.get(3).map_or_else(acls::open_unsafe, |text| parse_acl(text));
    if acl.is_empty() {
        // Java's client refuses an empty ACL list itself, with no path in the message.
        eprintln!("{}", Error::InvalidAcl.keeper_message(None));
        return Err(CliError::new("Acl is not valid : null"));
    }
    let created = zk.create(path, data, &acl, mode).await.map_err(|e| keeper_error(&e, path))?;
    eprintln!("Created {created}");
    Ok(())
}

/// `delete [-v version] path`.
async fn delete(zk: &Client, words: &[String]) -> CliResult {
    let mut p = parse_options(words, &[('v', true)])?;
    if p.args.len() > 2 {
        eprintln!("'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.");
        let version = p.args.remove(2);
        p.options.insert('v', version);
    }
    let path = p.args.get(1).ok_or_else(|| CliError::usage("delete"))?;
    let version = version_option(&p)?;
    zk.delete(path, version).await.map_err(|e| keeper_error(&e, path))
}

/// `deleteall path [-b batch size]`: the subtree, deepest nodes first, in multis of
/// `batch size` deletes (1000 by default), as zkCli.sh's `ZKUtil.deleteRecursive`.
async fn deleteall(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[('b', true)])?;
    let path = p.args.get(1).ok_or_else(|| CliError::usage("deleteall"))?;
    let batch = match p.value('b') {
        None => 1000,
        Some(b) => b.parse::<i32>().map_err(|_| CliError::new("-b argument must be an int value"))?.max(1) as usize,
    };
    client::validate_path(path, false).map_err(|e| keeper_error(&e, path))?;
    // Breadth first, as ZKUtil.listSubTreeBFS; then deleted from the end.
    let mut tree = vec![path.clone()];
    let mut i = 0;
    while i < tree.len() {
        match zk.get_children(&tree[i]).await {
            Ok(children) => {
                let parent = tree[i].clone();
                tree.extend(children.iter().map(|c| tree::path::join(&parent, c)));
            }
            // Deleted meanwhile by someone else: nothing below it either.
            Err(Error::NoNode) if i > 0 => {}
            Err(e) => return Err(keeper_error(&e, &tree[i])),
        }
        i += 1;
    }
    tree.reverse();
    for chunk in tree.chunks(batch) {
        let ops: Vec<Op> = chunk.iter().map(|node| Op::Delete { path: node.clone(), version: None }).collect();
        if zk.multi(&ops).await.is_err() {
            println!("Failed to delete some node(s) in the subtree!");
            break;
        }
    }
    Ok(())
}

/// `getAcl [-s] path`.
async fn get_acl(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[('s', false)])?;
    let path = p.args.get(1).ok_or_else(|| CliError::usage("getAcl"))?;
    let (acl, stat) = zk.get_acl(path).await.map_err(|e| keeper_error(&e, path))?;
    for entry in &acl {
        println!("'{},'{}", entry.id.scheme, entry.id.id.as_deref().unwrap_or(""));
        println!(": {}", perm_string(entry.perms));
    }
    if p.has('s') {
        print_stat(&stat);
    }
    Ok(())
}

/// `setAcl [-s] [-v version] [-R] path acl`.
async fn set_acl(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[('s', false), ('v', true), ('R', false)])?;
    let (Some(path), Some(acl_text)) = (p.args.get(1), p.args.get(2)) else {
        return Err(CliError::usage("setAcl"));
    };
    let acl = parse_acl(acl_text);
    let version = version_option(&p)?;
    if p.has('R') {
        return visit_subtree(zk, path, None, Visit::SetAcl(&acl, version)).await;
    }
    let stat = zk.set_acl(path, &acl, version).await.map_err(|e| keeper_error(&e, path))?;
    if p.has('s') {
        print_stat(&stat);
    }
    Ok(())
}

/// `addauth scheme auth`.
async fn add_auth(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[])?;
    let scheme = p.args.get(1).ok_or_else(|| CliError::usage("addauth"))?;
    let auth = p.args.get(2).map_or(&b""[..], |a| a.as_bytes());
    // The server's refusal ends the session; the AuthFailed event tells of it.
    zk.add_auth(scheme, auth).await.map_err(|e| CliError::new(e.keeper_message(None)))
}

/// `removewatches path [-c|-d|-a] [-l]`.
async fn remove_watches(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[('c', false), ('d', false), ('a', false), ('l', false)])?;
    let path = p.args.get(1).ok_or_else(|| CliError::usage("removewatches"))?;
    let watcher_type = if p.has('c') {
        WatcherType::Children
    } else if p.has('d') {
        WatcherType::Data
    } else {
        WatcherType::Any
    };
    zk.remove_watches(path, watcher_type, p.has('l')).await.map_err(|e| CliError::new(e.keeper_message(Some(path))))
}

/// `sync path`.
async fn sync(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[])?;
    let path = p.args.get(1).ok_or_else(|| CliError::usage("sync"))?;
    match zk.sync(path).await {
        Ok(()) => println!("Sync is OK"),
        Err(Error::InvalidPath(message)) => return Err(CliError::new(message)),
        Err(e) => println!("Sync has failed. rc={}", e.code()),
    }
    Ok(())
}

/// `whoami`.
async fn who_am_i(zk: &Client) -> CliResult {
    let ids = zk.who_am_i().await.map_err(|e| CliError::new(e.keeper_message(None)))?;
    println!("Auth scheme: User");
    for id in ids {
        println!("{}: {}", id.auth_scheme, id.user);
    }
    Ok(())
}

/// `getEphemerals [path]`.
async fn get_ephemerals(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[])?;
    let path = p.args.get(1).map_or("/", String::as_str);
    let mut ephemerals = zk.get_ephemerals(path).await.map_err(|e| keeper_error(&e, path))?;
    // Sorted: ZooKeeper lists them in its hash set's order, which means nothing.
    ephemerals.sort();
    println!("[{}]", ephemerals.join(", "));
    Ok(())
}

/// `getAllChildrenNumber path`.
async fn get_all_children_number(zk: &Client, words: &[String]) -> CliResult {
    let p = parse_options(words, &[])?;
    let path = p.args.get(1).ok_or_else(|| CliError::usage("getAllChildrenNumber"))?;
    println!("{}", zk.get_all_children_number(path).await.map_err(|e| keeper_error(&e, path))?);
    Ok(())
}

fn print_usage() {
    eprintln!("ZooKeeper -server host:port -client-configuration properties-file cmd args");
    for (name, options) in COMMANDS {
        eprintln!("\t{name} {options}");
    }
}

/// Tab completion: command names for the first word, znode paths for words that start
/// with `/` (the children of the typed parent, from the current session).
struct Completion {
    current: watch::Receiver<Option<Client>>,
    runtime: tokio::runtime::Handle,
}

impl Completer for Completion {
    type Candidate = String;

    fn complete(&self, line: &str, pos: usize, _: &rustyline::Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        let start = line[..pos].rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if start == 0 {
            let names = COMMANDS.iter().filter(|(n, _)| n.starts_with(word)).map(|(n, _)| format!("{n} "));
            return Ok((start, names.collect()));
        }
        if !word.starts_with('/') {
            return Ok((start, Vec::new()));
        }
        let Some(zk) = self.current.borrow().clone() else { return Ok((start, Vec::new())) };
        let split = word.rfind('/').unwrap_or(0);
        let (parent, prefix) = (if split == 0 { "/" } else { &word[..split] }, &word[split + 1..]);
        let lookup = async { tokio::time::timeout(Duration::from_secs(2), zk.get_children(parent)).await };
        let mut children = match self.runtime.block_on(lookup) {
            Ok(Ok(children)) => children,
            _ => return Ok((start, Vec::new())),
        };
        children.sort();
        let candidates =
            children.iter().filter(|c| c.starts_with(prefix)).map(|c| tree::path::join(parent, c)).collect();
        Ok((start, candidates))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// The shell's own flags, before the command: `-server`, `-timeout`, `-r`, as zkCli.sh's.
struct Options {
    server: String,
    timeout_ms: u64,
    read_only: bool,
    command: Vec<String>,
}

fn parse_arguments(args: Vec<String>) -> Result<Options, String> {
    let mut options =
        Options { server: "localhost:2181".into(), timeout_ms: 30_000, read_only: false, command: Vec::new() };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-server" => options.server = args.next().ok_or("Error: no argument found for option -server")?,
            "-timeout" => {
                let value = args.next().ok_or("Error: no argument found for option -timeout")?;
                options.timeout_ms = value.parse().map_err(|_| format!("Error: bad timeout {value}"))?;
            }
            "-r" => options.read_only = true,
            // zkCli.sh's client configuration file has nothing this shell reads.
            "-client-configuration" => {
                args.next();
            }
            other if other.starts_with('-') => {}
            _ => {
                options.command.push(arg);
                options.command.extend(args.by_ref());
            }
        }
    }
    Ok(options)
}

fn history_file() -> Option<PathBuf> {
    std::env::var_os("WARREN_HISTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".warren_history")))
}

/// Runs the shell with the arguments after `warren shell`; returns the exit status.
pub fn run(args: Vec<String>) -> anyhow::Result<i32> {
    if args.first().is_some_and(|a| a == "-h" || a == "--help") {
        eprintln!("warren shell [-server host:port,...[/chroot]] [-timeout ms] [-r] [cmd args]");
        print_usage();
        return Ok(EXIT_OK);
    }
    let options = match parse_arguments(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return Ok(EXIT_ERROR);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let interactive = options.command.is_empty() && std::io::stdin().is_terminal();
    let mut editor = if interactive {
        // Tab lists the candidates, as JLine does in zkCli.sh (rustyline's default cycles).
        let config = rustyline::Config::builder().completion_type(rustyline::CompletionType::List).build();
        let mut editor = rustyline::Editor::<Completion, rustyline::history::DefaultHistory>::with_config(config)?;
        if let Some(file) = history_file() {
            let _ = editor.load_history(&file);
        }
        Some(editor)
    } else {
        None
    };
    let (watcher, events) = Watcher::new();
    let (control, control_rx) = mpsc::unbounded_channel();
    let print_watches = Arc::new(AtomicBool::new(true));
    runtime.spawn(printer(events, control_rx, print_watches.clone()));
    let (current, current_rx) = watch::channel(None);
    let mut shell = Shell {
        client: None,
        current,
        host: options.server.clone(),
        timeout: Duration::from_millis(options.timeout_ms),
        read_only: options.read_only,
        watcher,
        control,
        print_watches,
        history: BTreeMap::new(),
        count: 0,
    };

    println!("Connecting to {}", options.server);
    if !options.command.is_empty() {
        runtime.block_on(shell.connect(&options.server));
        let outcome = runtime.block_on(shell.execute(options.command));
        // zkCli.sh leaves its session to expire; closing it frees its ephemerals at once
        // (quietly: zkCli.sh prints no Closed event here).
        shell.print_watches.store(false, Ordering::Relaxed);
        runtime.block_on(shell.close());
        return Ok(outcome.code);
    }
    println!("Welcome to ZooKeeper!");
    println!("JLine support is {}", if interactive { "enabled" } else { "disabled" });
    runtime.block_on(shell.connect(&options.server));

    let mut status = EXIT_OK;
    match editor.as_mut() {
        Some(editor) => {
            editor.set_helper(Some(Completion { current: current_rx, runtime: runtime.handle().clone() }));
            loop {
                let state = shell.client.as_ref().map_or(SessionState::Closed, Client::state);
                let prompt = format!("[zk: {}({}) {}] ", shell.host, state, shell.count);
                let line = match editor.readline(&prompt) {
                    Ok(line) => line,
                    Err(ReadlineError::Interrupted) => continue,
                    Err(_) => break,
                };
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(file) = history_file() {
                        // Written after every line, so a killed shell keeps its history.
                        let _ = editor.save_history(&file);
                    }
                }
                if runtime.block_on(shell.execute_line(&line)).quit {
                    break;
                }
            }
        }
        None => {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let outcome = runtime.block_on(shell.execute_line(&line));
                if outcome.code != EXIT_OK {
                    status = outcome.code;
                }
                if outcome.quit {
                    break;
                }
            }
        }
    }
    // At the end of its input zkCli.sh just exits, without the Closed event; so does
    // this shell, though it closes the session rather than leave it to expire.
    shell.print_watches.store(false, Ordering::Relaxed);
    runtime.block_on(shell.close());
    let _ = std::io::stdout().flush();
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_line(line)
    }

    #[test]
    fn lines_split_like_zkcli() {
        assert_eq!(words("  create /a 'hello world' \"x y\"  "), ["create", "/a", "hello world", "x y"]);
        assert_eq!(words("set /a a\"b"), ["set", "/a", "a\"b"]);
        assert!(words("   ").is_empty());
    }

    #[test]
    fn options_parse_like_commons_cli() {
        let p = parse_options(&words("ls -sw /a"), &[('s', false), ('w', false), ('R', false)]).ok().unwrap();
        assert!(p.has('s') && p.has('w') && !p.has('R'));
        assert_eq!(p.args, ["ls", "/a"]);
        let p = parse_options(&words("set /a x -v 3"), &[('s', false), ('v', true)]).ok().unwrap();
        assert_eq!((p.value('v'), p.args.len()), (Some("3"), 3));
        let p = parse_options(&words("set -v3 /a x"), &[('s', false), ('v', true)]).ok().unwrap();
        assert_eq!(p.value('v'), Some("3"));
        let e = parse_options(&words("ls -x /"), &[('s', false)]).err().unwrap();
        assert_eq!(e.message, "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x");
        let e = parse_options(&words("delete /a -v"), &[('v', true)]).err().unwrap();
        assert!(e.message.ends_with("Missing argument for option: v"));
    }

    #[test]
    fn acls_parse_like_zkcli() {
        let acl = parse_acl("world:anyone:cdrwa,digest:u:h:r,");
        assert_eq!(acl.len(), 2);
        assert_eq!((acl[0].perms, acl[1].id.id.as_deref()), (perms::ALL, Some("u:h")));
        assert!(parse_acl("foo").is_empty());
        assert_eq!(perm_string(perms::ALL), "cdrwa");
        assert_eq!(perm_string(perms::READ | perms::ADMIN), "ra");
    }

    #[test]
    fn client_config_lists_client_addresses() {
        let text = "server.1=h1:2888:3888:participant;0.0.0.0:2181\nserver.2=h2:2888:3888;h2:2182\nversion=10000000b";
        assert_eq!(client_config(text), "10000000b 0.0.0.0:2181,h2:2182");
        assert_eq!(client_config(""), " ");
    }

    #[test]
    fn java_ints_decode() {
        assert_eq!(parse_java_int("12"), Some(12));
        assert_eq!(parse_java_int("0x1f"), Some(31));
        assert_eq!(parse_java_int("010"), Some(8));
        assert_eq!(parse_java_int("abc"), None);
    }
}
