//! Where to connect: the `spread_name` argument of `SP_connect`
//! (client spec §1.5 step 1–3).
//!
//! The original parses it with `sscanf(name, "%hu%s", &port, host)`; this is
//! a faithful re-implementation of what glibc does for that format, quirks
//! included: leading white space and a sign are accepted before the port, the
//! port wraps modulo 2^16, and white space may separate the port from `@host`.

use spread_wire::consts::{DEFAULT_SPREAD_PORT, ILLEGAL_SPREAD};

use crate::Code;

/// `MAXHOSTNAMELEN + 7` on Linux: names this long or longer are refused.
pub const MAX_SPREAD_NAME: usize = 64 + 7;

/// A parsed daemon address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Unix-domain socket `SP_UNIX_SOCKET "/" port`.
    Unix { port: u16, path: String },
    /// TCP to `host` (resolved later with getaddrinfo) on `port`.
    Tcp { port: u16, host: Vec<u8> },
}

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// What `sscanf(s, "%hu%s", ...)` yields: `None` for zero conversions or
/// input failure, `Some((port, None))` for one, `Some((port, Some(word)))` for two.
fn scan_hu_s(s: &[u8]) -> Option<(u16, Option<&[u8]>)> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        match v.checked_mul(10).and_then(|x| x.checked_add((s[i] - b'0') as u64)) {
            Some(x) => v = x,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return None;
    }
    // strtoul: ULONG_MAX on overflow (no negation), else the negated value wraps.
    let v = if overflow {
        u64::MAX
    } else if neg {
        v.wrapping_neg()
    } else {
        v
    };
    let port = v as u16;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    if i == s.len() {
        return Some((port, None));
    }
    let w0 = i;
    while i < s.len() && !is_c_space(s[i]) {
        i += 1;
    }
    Some((port, Some(&s[w0..i])))
}

/// Parse a spread name (`None` or empty = `"4803"`). Only the bytes up to the
/// first NUL count (it is a C string).
pub fn parse(name: Option<&[u8]>) -> Result<Target, Code> {
    let name = name.map(|n| &n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())]);
    let default = DEFAULT_SPREAD_PORT.to_string();
    let name: &[u8] = match name {
        None | Some(b"") => default.as_bytes(),
        Some(n) => n,
    };
    if name.len() >= MAX_SPREAD_NAME {
        return Err(ILLEGAL_SPREAD);
    }
    match scan_hu_s(name) {
        None => Err(ILLEGAL_SPREAD),
        Some((port, None)) => Ok(Target::Unix { port, path: format!("{}/{}", crate::SP_UNIX_SOCKET, port) }),
        Some((port, Some(word))) => match word.strip_prefix(b"@") {
            Some(host) => Ok(Target::Tcp { port, host: host.to_vec() }),
            None => Err(ILLEGAL_SPREAD),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(p: u16) -> Target {
        Target::Unix { port: p, path: format!("{}/{}", crate::SP_UNIX_SOCKET, p) }
    }
    fn tcp(p: u16, h: &str) -> Target {
        Target::Tcp { port: p, host: h.as_bytes().to_vec() }
    }

    #[test]
    fn forms() {
        assert_eq!(parse(None), Ok(unix(4803)));
        assert_eq!(parse(Some(b"")), Ok(unix(4803)));
        assert_eq!(parse(Some(b"4803")), Ok(unix(4803)));
        assert_eq!(parse(Some(b"  4803  ")), Ok(unix(4803)));
        assert_eq!(parse(Some(b"+4803")), Ok(unix(4803)));
        assert_eq!(parse(Some(b"-1")), Ok(unix(65535)));
        assert_eq!(parse(Some(b"70000")), Ok(unix(70000u32 as u16)));
        assert_eq!(parse(Some(b"99999999999999999999999")), Ok(unix(65535)));
        assert_eq!(parse(Some(b"4803@localhost")), Ok(tcp(4803, "localhost")));
        assert_eq!(parse(Some(b"4803 @host extra")), Ok(tcp(4803, "host")));
        assert_eq!(parse(Some(b"4803@")), Ok(tcp(4803, "")));
        assert_eq!(parse(Some(b"4803@::1")), Ok(tcp(4803, "::1")));
        assert_eq!(parse(Some(b"4803\0@x")), Ok(unix(4803)));
    }

    #[test]
    fn illegal() {
        for n in [&b"abc"[..], b"4803x", b"-", b"   ", b"@host", b"4803 x@host"] {
            assert_eq!(parse(Some(n)), Err(ILLEGAL_SPREAD), "{:?}", String::from_utf8_lossy(n));
        }
        let long = format!("4803@{}", "h".repeat(66));
        assert_eq!(long.len(), 71);
        assert_eq!(parse(Some(long.as_bytes())), Err(ILLEGAL_SPREAD));
        let ok = format!("4803@{}", "h".repeat(65));
        assert!(parse(Some(ok.as_bytes())).is_ok());
    }
}
