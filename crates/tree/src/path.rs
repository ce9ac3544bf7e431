//! Znode path rules (ZooKeeper's `PathUtils.validatePath`) and path arithmetic.

/// The nodes every tree has; none of them may be deleted.
pub const ROOT: &str = "/";
pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

/// The full validity check create (after the sequence suffix), setData, setACL and check apply.
pub fn is_valid(path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    if path == "/" {
        return true;
    }
    if path.ends_with('/') {
        return false;
    }
    for component in path[1..].split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return false;
        }
    }
    // ZooKeeper checks UTF-16 code units, so every character outside the BMP (a surrogate
    // pair there) is rejected as well.
    !path.chars().any(|c| {
        let c = c as u32;
        c == 0
            || (0x01..=0x1f).contains(&c)
            || (0x7f..=0x9f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || c >= 0xfff0
    })
}

/// `/`, or `/`-separated non-empty names: what any stored node's path must be, whatever
/// version of the rules above it was created under.
pub fn is_well_formed(path: &str) -> bool {
    path == ROOT || (path.starts_with('/') && !path.ends_with('/') && !path.contains("//"))
}

/// The cheap check create and delete run first: a `/` somewhere and no NUL.
pub fn passes_cheap_check(path: &str) -> bool {
    path.contains('/') && !path.contains('\0')
}

/// Nodes that cannot be deleted.
pub fn is_reserved(path: &str) -> bool {
    matches!(path, ROOT | ZOOKEEPER | QUOTA | CONFIG)
}

/// The parent of a path that contains a `/`: everything before the last one, or `/`.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => ROOT,
        Some(i) => &path[..i],
    }
}

/// The last component (empty for `/`).
pub fn name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// `parent` joined with a child `name`.
pub fn join(parent: &str, name: &str) -> String {
    if parent == ROOT {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The path itself, then each ancestor up to `/`.
pub fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = (current != ROOT && current.starts_with('/')).then(|| parent(current));
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_matches_zookeeper() {
        for ok in ["/", "/a", "/a/b", "/...", "/.a", "/a.", "/a b", "/ä"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/a/..",
            "/a\0",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{e000}",
            "/😀",
            "/\u{fff0}",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn parents_and_ancestors() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(parent("/a/"), "/a");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(self_and_ancestors("/a/b").collect::<Vec<_>>(), ["/a/b", "/a", "/"]);
        assert_eq!(self_and_ancestors("/").collect::<Vec<_>>(), ["/"]);
    }
}
