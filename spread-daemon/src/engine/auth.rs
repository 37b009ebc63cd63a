//! Authentication methods (NULL, IP, PWORD) and the access-control policy
//! (PERMIT), daemon side. Client spec §2.3–2.4, daemon spec §7.1.
//!
//! Methods are known in the original's registration order NULL, IP, PWORD; the
//! allowed list the daemon sends is the enabled ones in that order, each
//! followed by a space.

use std::net::SocketAddr;
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

/// One `spread.access_ip` rule: network address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRule {
    pub net: u32,
    pub prefix: u8,
}

impl IpRule {
    pub fn matches(&self, addr: u32) -> bool {
        let p = self.prefix.min(32) as u32;
        if p == 0 {
            return true;
        }
        let mask = if p == 32 { u32::MAX } else { !(u32::MAX >> p) };
        (addr & mask) == (self.net & mask)
    }
}

/// Parse the text of a `spread.access_ip` file: `#` comments, lines starting
/// with `unix` (rule 0.0.0.0/32), lines starting with `local` (127.0.0.0/8),
/// and `a.b.c.d[/prefix]`. Like the original, parsing stops at the first line
/// that has fewer than three dots; a line that does not parse is skipped
/// (the original exits the daemon there).
pub fn parse_access_ip(text: &str) -> Vec<IpRule> {
    let mut rules = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with("unix") {
            rules.push(IpRule { net: 0, prefix: 32 });
            continue;
        }
        if line.starts_with("local") {
            rules.push(IpRule { net: 127 << 24, prefix: 8 });
            continue;
        }
        if line.matches('.').count() < 3 {
            break;
        }
        let line = line.trim();
        let (addr, prefix) = match line.split_once('/') {
            Some((a, p)) => (a.trim(), p.trim().parse::<u8>().ok()),
            None => (line, Some(32)),
        };
        let parts: Vec<Option<u8>> = addr.split('.').map(|p| p.trim().parse::<u8>().ok()).collect();
        match (parts.as_slice(), prefix) {
            ([Some(a), Some(b), Some(c), Some(d)], Some(p)) if p <= 32 => {
                rules.push(IpRule { net: u32::from_be_bytes([*a, *b, *c, *d]), prefix: p })
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

    /// The IP method: only IPv4 peers are checked; anything else is denied.
    pub fn ip_allows(&self, peer: Option<SocketAddr>) -> bool {
        let Some(rules) = &self.ip_rules else { return false };
        let addr = match peer {
            Some(SocketAddr::V4(a)) => u32::from(*a.ip()),
            Some(SocketAddr::V6(a)) => match a.ip().to_ipv4_mapped() {
                Some(v4) => u32::from(v4),
                None => return false,
            },
            None => return false,
        };
        rules.iter().any(|r| r.matches(addr))
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
                IpRule { net: 127 << 24, prefix: 8 },
                IpRule { net: 0x0a01_0000, prefix: 16 },
                IpRule { net: 0xc0a8_0107, prefix: 32 },
                IpRule { net: 0, prefix: 32 }
            ]
        );
        let cfg = AuthConfig { enabled: vec![AuthMethod::Ip], ip_rules: Some(r), ..AuthConfig::default() };
        assert!(cfg.ip_allows(Some("127.0.0.1:5".parse().unwrap())));
        assert!(cfg.ip_allows(Some("10.1.200.3:5".parse().unwrap())));
        assert!(!cfg.ip_allows(Some("10.2.0.1:5".parse().unwrap())));
        assert!(!cfg.ip_allows(None));
        assert!(!cfg.ip_allows(Some("[::1]:5".parse().unwrap())));
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
