//! Authentication methods (NULL, IP, PWORD) and the access-control policy
//! (PERMIT), daemon side. Client spec §2.3–2.4, daemon spec §7.1.
//!
//! Methods are known in the original's registration order NULL, IP, PWORD; the
//! allowed list the daemon sends is the enabled ones in that order, each
//! followed by a space.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// One authentication method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    Null,
    Ip,
    Pword,
}

impl AuthMethod {
    /// Registration order.
    pub const ALL: [AuthMethod; 3] = [AuthMethod::Null, AuthMethod::Ip, AuthMethod::Pword];

    pub fn name(self) -> &'static [u8] {
        match self {
            AuthMethod::Null => b"NULL",
            AuthMethod::Ip => b"IP",
            AuthMethod::Pword => b"PWORD",
        }
    }

    /// Exact (NUL-free) name match, as `strncmp(.., 30)` of a slot does.
    pub fn from_name(n: &[u8]) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.name() == n)
    }
}

/// One `spread.access_ip` rule: a network and its prefix length. IPv4 rules
/// are what the original knows; IPv6 rules are ours (the original's IP method
/// checks IPv4 peers only, daemon spec quirk 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpRule {
    V4 { net: u32, prefix: u8 },
    V6 { net: u128, prefix: u8 },
}

fn prefix_match(net: u128, addr: u128, prefix: u32, bits: u32) -> bool {
    let p = prefix.min(bits);
    if p == 0 {
        return true;
    }
    let shift = bits - p;
    (addr >> shift) == (net >> shift)
}

impl IpRule {
    /// Whether the rule admits `addr`. An IPv4-mapped IPv6 peer
    /// (`::ffff:a.b.c.d`, a client of a dual-stack listener) is an IPv4 peer.
    pub fn matches(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(a)),
            v4 => v4,
        };
        match (self, addr) {
            (IpRule::V4 { net, prefix }, IpAddr::V4(a)) => {
                prefix_match(*net as u128, u32::from(a) as u128, *prefix as u32, 32)
            }
            (IpRule::V6 { net, prefix }, IpAddr::V6(a)) => prefix_match(*net, u128::from(a), *prefix as u32, 128),
            _ => false,
        }
    }
}

/// Parse the text of a `spread.access_ip` file: `#` comments, lines starting
/// with `unix` (rule 0.0.0.0/32, which no peer matches, as in the original),
/// lines starting with `local` (127.0.0.0/8, and ours also `::1`), and
/// `a.b.c.d[/prefix]` (prefix default 32). Like the original, parsing stops
/// at the first line that has fewer than three dots, unless (ours) the line
/// is an IPv6 rule `addr[/prefix]` (prefix default 128). A line that does not
/// parse is skipped (the original exits the daemon there).
pub fn parse_access_ip(text: &str) -> Vec<IpRule> {
    let mut rules = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with("unix") {
            rules.push(IpRule::V4 { net: 0, prefix: 32 });
            continue;
        }
        if line.starts_with("local") {
            rules.push(IpRule::V4 { net: 127 << 24, prefix: 8 });
            rules.push(IpRule::V6 { net: 1, prefix: 128 });
            continue;
        }
        let t = line.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a.trim(), Some(p.trim())),
            None => (t, None),
        };
        if let Ok(a6) = addr.parse::<std::net::Ipv6Addr>() {
            match prefix.map_or(Some(128), |p| p.parse::<u8>().ok()) {
                // `::ffff:a.b.c.d/p` is the IPv4 rule a.b.c.d/(p-96): peers are compared as IPv4
                Some(p) if p >= 96 && a6.to_ipv4_mapped().is_some() => rules.push(IpRule::V4 {
                    net: u32::from(a6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)),
                    prefix: p - 96,
                }),
                Some(p) if p <= 128 => rules.push(IpRule::V6 { net: u128::from(a6), prefix: p }),
                _ => {}
            }
            continue;
        }
        if line.matches('.').count() < 3 {
            break;
        }
        let prefix = prefix.map_or(Some(32), |p| p.parse::<u8>().ok());
        let parts: Vec<Option<u8>> = addr.split('.').map(|p| p.trim().parse::<u8>().ok()).collect();
        match (parts.as_slice(), prefix) {
            ([Some(a), Some(b), Some(c), Some(d)], Some(p)) if p <= 32 => {
                rules.push(IpRule::V4 { net: u32::from_be_bytes([*a, *b, *c, *d]), prefix: p })
            }
            _ => continue,
        }
    }
    rules
}

/// Password check for PWORD: `(user, password) -> accepted`. The engine never
/// does crypto itself; `main.rs` plugs in the `crypt(3)` comparison against
/// `spread.access_pword`.
pub type PwordCheck = Arc<dyn Fn(&[u8], &[u8]) -> bool + Send + Sync>;

/// Authentication settings of the daemon.
#[derive(Clone)]
pub struct AuthConfig {
    /// Enabled methods (AllowedAuthMethods ∪ RequiredAuthMethods); default NULL.
    pub enabled: Vec<AuthMethod>,
    /// Methods every session must pass (RequiredAuthMethods).
    pub required: Vec<AuthMethod>,
    /// Rules of `spread.access_ip`; `None` when no file was found (IP then
    /// denies every session).
    pub ip_rules: Option<Vec<IpRule>>,
    /// PWORD verifier; `None` denies every PWORD attempt.
    pub pword: Option<PwordCheck>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { enabled: vec![AuthMethod::Null], required: Vec::new(), ip_rules: None, pword: None }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("enabled", &self.enabled)
            .field("required", &self.required)
            .field("ip_rules", &self.ip_rules)
            .field("pword", &self.pword.is_some())
            .finish()
    }
}

impl AuthConfig {
    pub fn is_enabled(&self, m: AuthMethod) -> bool {
        self.enabled.contains(&m)
    }

    /// The D→C allowed-methods list body (without the length byte).
    pub fn allowed_list(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for m in AuthMethod::ALL {
            if self.is_enabled(m) {
                v.extend_from_slice(m.name());
                v.push(b' ');
            }
        }
        v
    }

    /// Methods to run for a client's choice (`Acm_auth_create_sess_info`):
    /// `None` = deny (a requested method not enabled, or nothing to run).
    pub fn methods_for_choice(&self, requested: &[&[u8]]) -> Option<Vec<AuthMethod>> {
        let mut run = Vec::new();
        for r in requested {
            let m = AuthMethod::from_name(r)?;
            if !self.is_enabled(m) {
                return None;
            }
            run.push(m);
        }
        if run.is_empty() {
            return None;
        }
        for m in AuthMethod::ALL {
            if self.required.contains(&m) && !run.contains(&m) {
                run.push(m);
            }
        }
        Some(run)
    }

    /// The IP method: the peer's address against the rules. A Unix-socket
    /// client (no address) is denied, as in the original; IPv6 peers are
    /// checked against IPv6 rules (the original denies them all).
    pub fn ip_allows(&self, peer: Option<SocketAddr>) -> bool {
        let (Some(rules), Some(peer)) = (&self.ip_rules, peer) else { return false };
        rules.iter().any(|r| r.matches(peer.ip()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_ip_file() {
        let r = parse_access_ip("# c\nlocalhost\n10.1.0.0/16\n192.168.1.7\nunix\n");
        assert_eq!(
            r,
            vec![
                IpRule::V4 { net: 127 << 24, prefix: 8 },
                IpRule::V6 { net: 1, prefix: 128 },
                IpRule::V4 { net: 0x0a01_0000, prefix: 16 },
                IpRule::V4 { net: 0xc0a8_0107, prefix: 32 },
                IpRule::V4 { net: 0, prefix: 32 }
            ]
        );
        let cfg = AuthConfig { enabled: vec![AuthMethod::Ip], ip_rules: Some(r), ..AuthConfig::default() };
        assert!(cfg.ip_allows(Some("127.0.0.1:5".parse().unwrap())));
        assert!(cfg.ip_allows(Some("10.1.200.3:5".parse().unwrap())));
        assert!(!cfg.ip_allows(Some("10.2.0.1:5".parse().unwrap())));
        assert!(!cfg.ip_allows(None));
        assert!(cfg.ip_allows(Some("[::1]:5".parse().unwrap())), "local admits ::1");
        assert!(cfg.ip_allows(Some("[::ffff:10.1.2.3]:5".parse().unwrap())), "v4-mapped peers are IPv4");
        assert!(!cfg.ip_allows(Some("[::2]:5".parse().unwrap())));
    }

    #[test]
    fn access_ip_ipv6_rules() {
        // an IPv4-only file (all the original knows) denies every IPv6 peer
        let v4 = AuthConfig {
            enabled: vec![AuthMethod::Ip],
            ip_rules: Some(parse_access_ip("10.0.0.0/8\n")),
            ..AuthConfig::default()
        };
        assert!(!v4.ip_allows(Some("[fd00::1]:5".parse().unwrap())));
        let r = parse_access_ip("fd00:1::/32\n2001:db8::7\n10.0.0.0/8\nfe80::/200\nstop here\n192.168.0.1\n");
        assert_eq!(
            r,
            vec![
                IpRule::V6 { net: 0xfd00_0001 << 96, prefix: 32 },
                IpRule::V6 { net: u128::from("2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap()), prefix: 128 },
                IpRule::V4 { net: 0x0a00_0000, prefix: 8 },
            ],
            "a bad prefix is skipped; a line of neither kind ends the file, as in the original"
        );
        let cfg = AuthConfig { enabled: vec![AuthMethod::Ip], ip_rules: Some(r), ..AuthConfig::default() };
        assert!(cfg.ip_allows(Some("[fd00:1:ffff::9]:5".parse().unwrap())));
        assert!(!cfg.ip_allows(Some("[fd00:2::9]:5".parse().unwrap())));
        assert!(cfg.ip_allows(Some("[2001:db8::7]:5".parse().unwrap())));
        assert!(!cfg.ip_allows(Some("[2001:db8::8]:5".parse().unwrap())));
        assert!(cfg.ip_allows(Some("10.9.9.9:5".parse().unwrap())));
        assert!(!cfg.ip_allows(Some("192.168.0.1:5".parse().unwrap())));
        assert!(!cfg.ip_allows(Some("[::1]:5".parse().unwrap())));
        let m = parse_access_ip("::ffff:10.1.0.0/112\n");
        assert_eq!(m, vec![IpRule::V4 { net: 0x0a01_0000, prefix: 16 }]);
    }

    #[test]
    fn choice() {
        let c = AuthConfig::default();
        assert_eq!(c.allowed_list(), b"NULL ");
        assert_eq!(c.methods_for_choice(&[b"NULL"]), Some(vec![AuthMethod::Null]));
        assert_eq!(c.methods_for_choice(&[b"IP"]), None);
        assert_eq!(c.methods_for_choice(&[]), None);
        let c = AuthConfig {
            enabled: vec![AuthMethod::Null, AuthMethod::Ip],
            required: vec![AuthMethod::Ip],
            ..AuthConfig::default()
        };
        assert_eq!(c.allowed_list(), b"NULL IP ");
        assert_eq!(c.methods_for_choice(&[b"NULL"]), Some(vec![AuthMethod::Null, AuthMethod::Ip]));
    }
}
