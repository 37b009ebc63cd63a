//! Group names, private names and private group names (`#user#daemon`).

use crate::consts::{MAX_GROUP_NAME, MAX_PRIVATE_NAME, MAX_PROC_NAME};

/// A 32-byte, NUL-padded name field as it travels on the wire.
pub type Name32 = [u8; MAX_GROUP_NAME];

/// Copy `s` into a NUL-padded 32-byte field, truncated to 31 bytes (the
/// library's `strncpy(buf, group, 31); buf[31] = 0`). Stops at an embedded NUL.
pub fn name32(s: &[u8]) -> Name32 {
    let mut out = [0u8; MAX_GROUP_NAME];
    let n = s.iter().position(|&c| c == 0).unwrap_or(s.len()).min(MAX_GROUP_NAME - 1);
    out[..n].copy_from_slice(&s[..n]);
    out
}

/// The bytes of a name field up to (not including) its first NUL.
pub fn name_bytes(f: &[u8]) -> &[u8] {
    let n = f.iter().position(|&c| c == 0).unwrap_or(f.len());
    &f[..n]
}

/// Client-side group name check of `SP_join`/`SP_leave`: length 1..=31 and every
/// byte in `'$'..='~'` (36..=126) taken as signed char.
pub fn valid_group_name(name: &[u8]) -> bool {
    let n = name_bytes(name);
    !n.is_empty() && n.len() < MAX_GROUP_NAME && n.iter().all(|&c| (36..=126).contains(&(c as i8 as i32)))
}

/// A character allowed in private and daemon names (`'#' < c <= '~'`).
#[inline]
pub fn valid_name_char(c: u8) -> bool {
    (0x24..=0x7e).contains(&c)
}

/// Split a private group name `#priv#proc` (at most 31 bytes, NUL-terminated or
/// not) into `(priv, proc)` with the daemon's rules (`groups.c:G_private_to_names`):
/// 1 ≤ |priv| ≤ 10, 1 ≤ |proc| ≤ 19, all characters 0x24..=0x7E.
pub fn parse_private_group(name: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = name_bytes(&name[..name.len().min(MAX_GROUP_NAME - 1)]);
    let rest = n.strip_prefix(b"#")?;
    let sep = rest.iter().position(|&c| c == b'#')?;
    let (p, d) = (&rest[..sep], &rest[sep + 1..]);
    let ok = |s: &[u8], max: usize| !s.is_empty() && s.len() <= max && s.iter().all(|&c| valid_name_char(c));
    if ok(p, MAX_PRIVATE_NAME) && ok(d, MAX_PROC_NAME - 1) {
        Some((p, d))
    } else {
        None
    }
}

/// Build `#priv#proc` into a 32-byte field (`snprintf` into 32 bytes: at most
/// 31 characters).
pub fn private_group(priv_name: &[u8], daemon: &[u8]) -> Name32 {
    let mut v = Vec::with_capacity(2 + priv_name.len() + daemon.len());
    v.push(b'#');
    v.extend_from_slice(priv_name);
    v.push(b'#');
    v.extend_from_slice(daemon);
    name32(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        assert!(valid_group_name(b"grp1"));
        assert!(!valid_group_name(b""));
        assert!(!valid_group_name(b"#priv"));
        assert!(!valid_group_name(b"a b"));
        assert!(!valid_group_name(&[b'a'; 32]));
        assert!(valid_group_name(&[b'a'; 31]));
        assert!(!valid_group_name(&[0xc3, 0xa9]));
    }

    #[test]
    fn private_groups() {
        assert_eq!(parse_private_group(b"#user1#localhost"), Some((&b"user1"[..], &b"localhost"[..])));
        assert_eq!(parse_private_group(&name32(b"#a#d1")), Some((&b"a"[..], &b"d1"[..])));
        assert_eq!(parse_private_group(b"user#d1"), None);
        assert_eq!(parse_private_group(b"##d1"), None);
        assert_eq!(parse_private_group(b"#abcdefghijk#d1"), None);
        assert_eq!(name_bytes(&private_group(b"alice", b"d1")), b"#alice#d1");
    }
}
