//! Parsing ZooKeeper connect strings: `host1:2181,host2:2181,[::1]:2181/chroot`.
//!
//! A host without a port gets 2181. Everything from the first `/` on is the chroot, and
//! it must be a valid path. Hosts are kept in the order given: the client tries them in
//! that order, starting again after the one it last used when it reconnects.

use crate::path::{validate_path, Chroot};
use crate::Error;

/// ZooKeeper's client port.
pub const DEFAULT_PORT: u16 = 2181;

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` pairs, ready for `TcpStream::connect` (IPv6 hosts keep their brackets).
    pub hosts: Vec<String>,
    /// The path prefix after the hosts, if any.
    pub chroot: Chroot,
}

impl ConnectString {
    /// Parses `host[:port],...[/chroot]`.
    pub fn parse(s: &str) -> Result<ConnectString, Error> {
        let bad = |why| Error::BadConnectString(s.to_owned(), why);
        let (hosts_part, chroot) = match s.find('/') {
            Some(i) => {
                let root = &s[i..];
                validate_path(root, false).map_err(|_| bad("the chroot is not a valid path"))?;
                (&s[..i], Chroot::new(Some(root)))
            }
            None => (s, Chroot::default()),
        };
        let mut hosts = Vec::new();
        for host in hosts_part.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            hosts.push(parse_host(host).ok_or_else(|| bad("a host is not host[:port]"))?);
        }
        if hosts.is_empty() {
            return Err(bad("no host"));
        }
        Ok(ConnectString { hosts, chroot })
    }
}

fn parse_host(host: &str) -> Option<String> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        // [v6] or [v6]:port
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse::<u16>().ok()?,
            None if after.is_empty() => DEFAULT_PORT,
            None => return None,
        };
        (format!("[{}]", &rest[..end]), port)
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name.to_owned(), port.parse::<u16>().ok()?),
            None => (host.to_owned(), DEFAULT_PORT),
        }
    };
    let unbracketed_colon = !name.starts_with('[') && name.contains(':');
    if name.is_empty() || name.contains(char::is_whitespace) || unbracketed_colon {
        return None;
    }
    Some(format!("{name}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ports_and_chroot() {
        let c = ConnectString::parse("h1:2182,h2, [::1]:2183/app/x").unwrap();
        assert_eq!(c.hosts, ["h1:2182", "h2:2181", "[::1]:2183"]);
        assert_eq!(c.chroot.prefix(), Some("/app/x"));
        let c = ConnectString::parse("127.0.0.1:2181/").unwrap();
        assert_eq!(c.chroot.prefix(), None);
    }

    #[test]
    fn rejects_nonsense() {
        for s in ["", "/app", "h:port", "h:1:2", "h1,h2/app/", "[::1", "h:99999"] {
            assert!(ConnectString::parse(s).is_err(), "{s:?}");
        }
    }
}
