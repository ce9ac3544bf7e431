//! ACL evaluation as ZooKeeper 3.8 does it: the schemes `world`, `auth`, `digest`, `ip` and
//! `super`, the fix-up of ACL lists on create and setACL, and getACL's masking.

use base64::Engine;
use proto::{perms, Acl, ErrorCode, Id};
use sha1::{Digest, Sha1};
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Who a connection is: its authenticated ids (`ip:<address>` always, digests as added).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthIds {
    pub ids: Vec<Id>,
}

impl AuthIds {
    pub fn for_address(addr: IpAddr) -> AuthIds {
        AuthIds { ids: vec![id("ip", &addr.to_string())] }
    }

    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|i| i.scheme == "super")
    }

    pub fn add(&mut self, new: Id) {
        if !self.ids.contains(&new) {
            self.ids.push(new);
        }
    }
}

pub fn id(scheme: &str, id: &str) -> Id {
    Id { scheme: scheme.to_owned(), id: Some(id.to_owned()) }
}

/// `world:anyone` with every permission: ZooKeeper's OPEN_ACL_UNSAFE.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl::anyone(perms::ALL)]
}

fn id_str(id: &Id) -> &str {
    id.id.as_deref().unwrap_or("")
}

/// The digest id of a `user:password` auth string: `user:base64(sha1(user:password))`.
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// Java's `String.split(":")` drops trailing empty parts; a digest id has exactly two.
fn is_valid_digest(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// Parses `address[/bits]`; `None` when either part is malformed.
fn parse_ip_pattern(pattern: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match pattern.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (pattern, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse::<u32>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((addr, bits))
}

fn ip_matches(pattern: &str, client: &str) -> bool {
    let (Some((net, bits)), Ok(client)) = (parse_ip_pattern(pattern), client.parse::<IpAddr>()) else {
        return false;
    };
    let (net, client, width) = match (net, client) {
        (IpAddr::V4(n), IpAddr::V4(c)) => (u32::from(n) as u128, u32::from(c) as u128, 32),
        (IpAddr::V6(n), IpAddr::V6(c)) => (u128::from(n), u128::from(c), 128),
        _ => return false,
    };
    let full: u128 = if width == 128 { !0 } else { (1u128 << width) - 1 };
    let shift = width - bits;
    let mask = if shift >= 128 { 0 } else { (!0u128 << shift) & full };
    net & mask == client & mask
}

/// Whether `auth` may do `perm` on a node whose ACL is `acl`.
pub fn allows(acl: &[Acl], perm: i32, auth: &AuthIds) -> bool {
    if auth.is_super() || acl.is_empty() {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        let (scheme, wanted) = (a.id.scheme.as_str(), id_str(&a.id));
        if scheme == "world" && wanted == "anyone" {
            return true;
        }
        auth.ids.iter().filter(|mine| mine.scheme == scheme).any(|mine| match scheme {
            "ip" => ip_matches(wanted, id_str(mine)),
            _ => id_str(mine) == wanted,
        })
    })
}

/// Turns a requested ACL list into the stored one, or says why it is invalid.
pub fn fix_up(requested: &[Acl], auth: &AuthIds) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(requested.len());
    for a in requested {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for a in unique {
        let wanted = id_str(&a.id);
        match a.id.scheme.as_str() {
            "world" if wanted == "anyone" => fixed.push(a.clone()),
            "auth" => {
                let mut any = false;
                // Only real authentications count: not the address, not the internal super id.
                for mine in auth.ids.iter().filter(|i| i.scheme == "digest") {
                    fixed.push(Acl { perms: a.perms, id: mine.clone() });
                    any = true;
                }
                if !any {
                    return Err(ErrorCode::InvalidAcl);
                }
            }
            "digest" if is_valid_digest(wanted) => fixed.push(a.clone()),
            "ip" if parse_ip_pattern(wanted).is_some() => fixed.push(a.clone()),
            _ => return Err(ErrorCode::InvalidAcl),
        }
    }
    let mut deduped: Vec<Acl> = Vec::with_capacity(fixed.len());
    for a in fixed {
        if !deduped.contains(&a) {
            deduped.push(a);
        }
    }
    Ok(deduped)
}

/// getACL without ADMIN shows digest ids as `user:x`.
pub fn masked(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| match a.id.scheme.as_str() {
            "digest" => {
                let user = id_str(&a.id).split(':').next().unwrap_or("");
                Acl { perms: a.perms, id: id("digest", &format!("{user}:x")) }
            }
            _ => a.clone(),
        })
        .collect()
}

/// An ACL list's id in the tree's [`AclCache`].
pub(crate) type AclId = u32;

/// Interns ACL lists so that the million znodes sharing one ACL share one list and keep
/// only its 4-byte id, as ZooKeeper's `ReferenceCountedACLCache` keeps a long per node.
/// Lists are counted by the nodes that use them; one no node uses any more is dropped by
/// [`AclCache::purge_unused`] (and its id reused), which the tree calls only while no
/// snapshot is in progress, since a snapshot's pre-images may still name it.
#[derive(Debug, Default)]
pub(crate) struct AclCache {
    lists: Vec<Interned>,
    ids: BTreeMap<Vec<AclKey>, AclId>,
    /// Lists whose count fell to 0 since the last purge.
    unused: Vec<AclId>,
    free: Vec<AclId>,
    /// The list interned last: most creates repeat it, and comparing it costs no allocation.
    last: Option<AclId>,
}

#[derive(Debug)]
struct Interned {
    acl: Arc<[Acl]>,
    nodes: u32,
}

/// `Acl` is not `Ord`; this is its ordered form for the cache.
type AclKey = (i32, String, Option<String>);

fn key(acl: &[Acl]) -> Vec<AclKey> {
    acl.iter().map(|a| (a.perms, a.id.scheme.clone(), a.id.id.clone())).collect()
}

impl AclCache {
    /// The id of `acl`, counted once more.
    pub fn intern(&mut self, acl: &[Acl]) -> AclId {
        if let Some(id) = self.last.filter(|&id| *self.lists[id as usize].acl == *acl) {
            self.add_use(id);
            return id;
        }
        let id = match self.ids.entry(key(acl)) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let interned = Interned { acl: Arc::from(acl), nodes: 0 };
                let id = match self.free.pop() {
                    Some(id) => {
                        self.lists[id as usize] = interned;
                        id
                    }
                    None => {
                        self.lists.push(interned);
                        (self.lists.len() - 1) as AclId
                    }
                };
                *e.insert(id)
            }
        };
        self.add_use(id);
        self.last = Some(id);
        id
    }

    /// Counts one more node using `id`.
    pub fn add_use(&mut self, id: AclId) {
        self.lists[id as usize].nodes += 1;
    }

    /// Counts one node fewer using `id`.
    pub fn release(&mut self, id: AclId) {
        let list = &mut self.lists[id as usize];
        list.nodes -= 1;
        if list.nodes == 0 {
            self.unused.push(id);
        }
    }

    pub fn get(&self, id: AclId) -> &Arc<[Acl]> {
        &self.lists[id as usize].acl
    }

    /// Drops the lists that no node uses any more.
    pub fn purge_unused(&mut self) {
        for id in std::mem::take(&mut self.unused) {
            let list = &mut self.lists[id as usize];
            let key = key(&list.acl);
            // Skipped: interned again since, or already purged (an id can fall to 0 twice).
            if list.nodes > 0 || self.ids.get(&key) != Some(&id) {
                continue;
            }
            self.ids.remove(&key);
            list.acl = Arc::from([]);
            self.free.push(id);
            if self.last == Some(id) {
                self.last = None;
            }
        }
    }

    /// How many lists are interned.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        assert_eq!(digest_id("alice:secret"), "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");
    }

    #[test]
    fn ip_patterns() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("127.0.0.0/8", "127.9.9.9"));
        assert!(!ip_matches("10.0.0.0/8", "127.0.0.1"));
        assert!(ip_matches("0.0.0.0/0", "1.2.3.4"));
        assert!(ip_matches("::1", "::1"));
        assert!(!ip_matches("::1", "127.0.0.1"));
        assert!(!ip_matches("bogus", "127.0.0.1"));
    }

    #[test]
    fn fix_up_rules() {
        let mut auth = AuthIds::for_address("127.0.0.1".parse().unwrap());
        let with = |scheme: &str, i: Option<&str>| {
            vec![Acl { perms: 31, id: Id { scheme: scheme.into(), id: i.map(Into::into) } }]
        };
        assert_eq!(fix_up(&[], &auth), Err(ErrorCode::InvalidAcl));
        assert_eq!(fix_up(&with("auth", None), &auth), Err(ErrorCode::InvalidAcl));
        assert_eq!(fix_up(&with("digest", Some("nocolon")), &auth), Err(ErrorCode::InvalidAcl));
        assert_eq!(fix_up(&with("bogus", Some("x")), &auth), Err(ErrorCode::InvalidAcl));
        assert_eq!(fix_up(&with("world", Some("someone")), &auth), Err(ErrorCode::InvalidAcl));
        assert!(fix_up(&with("ip", Some("10.0.0.0/8")), &auth).is_ok());
        auth.add(id("digest", &digest_id("alice:secret")));
        assert_eq!(
            fix_up(&with("auth", Some("")), &auth).unwrap(),
            with("digest", Some("alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="))
        );
        assert_eq!(masked(&with("digest", Some("alice:abc"))), with("digest", Some("alice:x")));
    }

    #[test]
    fn checks() {
        let auth = AuthIds::for_address("127.0.0.1".parse().unwrap());
        let acl = vec![Acl { perms: perms::READ, id: id("ip", "127.0.0.0/8") }];
        assert!(allows(&acl, perms::READ, &auth));
        assert!(!allows(&acl, perms::WRITE, &auth));
        assert!(allows(&[], perms::WRITE, &auth));
        let mut root = auth.clone();
        root.add(id("super", ""));
        assert!(allows(&acl, perms::WRITE, &root));
    }
}
