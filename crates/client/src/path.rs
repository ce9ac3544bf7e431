//! Client-side path checks and the chroot.
//!
//! Paths are checked before they are sent, as ZooKeeper's Java client does, so a caller
//! gets the same message for the same mistake (`Path must start with / character`)
//! whichever server it talks to. A chroot (`host:port/app`) is prepended to every path
//! sent and stripped from every path received.

use crate::Error;

/// Checks `path` with the rules of Java's `PathUtils.validatePath`; a sequential create
/// is checked as if a digit followed, since the server appends the counter.
pub fn validate_path(path: &str, sequential: bool) -> Result<(), Error> {
    if sequential {
        return validate(&format!("{path}1"), path);
    }
    validate(path, path)
}

/// `shown` is the path as the caller wrote it, for the message.
fn validate(path: &str, shown: &str) -> Result<(), Error> {
    let fail = |m: &str| Err(Error::InvalidPath(m.to_owned()));
    if path.is_empty() {
        return fail("Path length must be > 0");
    }
    if !path.starts_with('/') {
        return fail("Path must start with / character");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return fail("Path must not end with / character");
    }
    // Java indexes UTF-16 code units; so does the position in its messages.
    let units: Vec<u16> = path.encode_utf16().collect();
    let is = |i: usize, c: char| units.get(i).is_some_and(|&u| u == c as u16);
    let ends_name = |i: usize| i + 1 == units.len() || is(i + 1, '/');
    let mut reason = None;
    for i in 1..units.len() {
        let (c, last) = (units[i], units[i - 1]);
        if c == 0 {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == b'/' as u16 && last == b'/' as u16 {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == b'.' as u16 && last == b'.' as u16 {
            if i >= 2 && is(i - 2, '/') && ends_name(i) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == b'.' as u16 {
            if is(i - 1, '/') && ends_name(i) {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if (0x01..=0x1f).contains(&c)
            || (0x7f..=0x9f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || (0xfff0..=0xffff).contains(&c)
        {
            reason = Some(format!("invalid character @{i}"));
        }
        if reason.is_some() {
            break;
        }
    }
    match reason {
        Some(reason) => Err(Error::InvalidPath(format!("Invalid path string \"{shown}\" caused by {reason}"))),
        None => Ok(()),
    }
}

/// The chroot of a connect string: a prefix on the server side of every path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chroot(Option<String>);

impl Chroot {
    /// `None` or `"/"` means no chroot.
    pub fn new(prefix: Option<&str>) -> Chroot {
        Chroot(prefix.filter(|p| *p != "/").map(str::to_owned))
    }

    /// The prefix, `None` for no chroot.
    pub fn prefix(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The server's path for a client path.
    pub fn to_server(&self, path: &str) -> String {
        match &self.0 {
            None => path.to_owned(),
            Some(root) if path == "/" => root.clone(),
            Some(root) => format!("{root}{path}"),
        }
    }

    /// The client's path for a server path; paths outside the chroot are left as they are
    /// (as Java's client does).
    pub fn to_client(&self, path: &str) -> String {
        match &self.0 {
            Some(root) if path == root => "/".to_owned(),
            Some(root) if path.strip_prefix(root.as_str()).is_some_and(|rest| rest.starts_with('/')) => {
                path[root.len()..].to_owned()
            }
            _ => path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(path: &str) -> String {
        match validate_path(path, false) {
            Err(Error::InvalidPath(m)) => m,
            other => panic!("{path:?}: {other:?}"),
        }
    }

    #[test]
    fn messages_are_javas() {
        assert!(validate_path("/", false).is_ok());
        assert!(validate_path("/a/b.c/..d", false).is_ok());
        assert!(validate_path("/a/", true).is_ok());
        assert_eq!(message("a"), "Path must start with / character");
        assert_eq!(message(""), "Path length must be > 0");
        assert_eq!(message("/a/"), "Path must not end with / character");
        assert_eq!(message("/a//b"), "Invalid path string \"/a//b\" caused by empty node name specified @3");
        assert_eq!(message("/a/../b"), "Invalid path string \"/a/../b\" caused by relative paths not allowed @4");
        assert_eq!(message("/a/."), "Invalid path string \"/a/.\" caused by relative paths not allowed @3");
        assert_eq!(message("/a\u{1}"), "Invalid path string \"/a\u{1}\" caused by invalid character @2");
        assert_eq!(message("/\u{0}"), "Invalid path string \"/\u{0}\" caused by null character not allowed @1");
    }

    #[test]
    fn chroot_maps_both_ways() {
        let c = Chroot::new(Some("/app"));
        assert_eq!(c.to_server("/"), "/app");
        assert_eq!(c.to_server("/x"), "/app/x");
        assert_eq!(c.to_client("/app"), "/");
        assert_eq!(c.to_client("/app/x"), "/x");
        assert_eq!(c.to_client("/other"), "/other");
        assert_eq!(c.to_client("/apple"), "/apple");
        assert_eq!(Chroot::new(Some("/")), Chroot::default());
    }
}
