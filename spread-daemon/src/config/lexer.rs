//! Tokens of `spread.conf` with the original scanner's rules (§1.2): at each
//! position every rule is tried, the longest match wins and on equal length
//! the earlier rule wins; an IP rule whose text is not a valid address is
//! dropped (with a warning) and the next best match is used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::flags;
use super::Priority;

/// Parameter keywords (case-sensitive), in the scanner's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kw {
    Segment,
    EventLogFile,
    EventTimeStamp,
    EventPreciseTimeStamp,
    EventPriority,
    EventLogFormat,
    DebugFlags,
    DangerousMonitor,
    SocketPortReuse,
    RuntimeDir,
    DaemonUser,
    DaemonGroup,
    RequiredAuthMethods,
    AllowedAuthMethods,
    AccessControlPolicy,
    MaxSessionMessages,
    MaxSessionBytes,
    MaxQueuedBytes,
    ActiveIpVersion,
    Window,
    PersonalWindow,
    AcceleratedRing,
    AcceleratedWindow,
    TokenTimeout,
    HurryTimeout,
    AliveTimeout,
    JoinTimeout,
    RepTimeout,
    SegTimeout,
    GatherTimeout,
    FormTimeout,
    LookupTimeout,
    VirtualId,
    WideAreaNetwork,
    ExcludeSegAddrsFromHash,
    IgnoreMulticastJoinErrors,
    MetricsAddress,
}

pub const KEYWORDS: &[(&str, Kw)] = &[
    ("Spread_Segment", Kw::Segment),
    ("EventLogFile", Kw::EventLogFile),
    ("EventTimeStamp", Kw::EventTimeStamp),
    ("EventPreciseTimeStamp", Kw::EventPreciseTimeStamp),
    ("EventPriority", Kw::EventPriority),
    ("EventLogFormat", Kw::EventLogFormat),
    ("DebugFlags", Kw::DebugFlags),
    ("DangerousMonitor", Kw::DangerousMonitor),
    ("SocketPortReuse", Kw::SocketPortReuse),
    ("RuntimeDir", Kw::RuntimeDir),
    ("DaemonUser", Kw::DaemonUser),
    ("DaemonGroup", Kw::DaemonGroup),
    ("RequiredAuthMethods", Kw::RequiredAuthMethods),
    ("AllowedAuthMethods", Kw::AllowedAuthMethods),
    ("AccessControlPolicy", Kw::AccessControlPolicy),
    ("MaxSessionMessages", Kw::MaxSessionMessages),
    ("MaxSessionBytes", Kw::MaxSessionBytes),
    ("MaxQueuedBytes", Kw::MaxQueuedBytes),
    ("ActiveIPVersion", Kw::ActiveIpVersion),
    ("Window", Kw::Window),
    ("PersonalWindow", Kw::PersonalWindow),
    ("AcceleratedRing", Kw::AcceleratedRing),
    ("AcceleratedWindow", Kw::AcceleratedWindow),
    ("TokenTimeout", Kw::TokenTimeout),
    ("HurryTimeout", Kw::HurryTimeout),
    ("AliveTimeout", Kw::AliveTimeout),
    ("JoinTimeout", Kw::JoinTimeout),
    ("RepTimeout", Kw::RepTimeout),
    ("SegTimeout", Kw::SegTimeout),
    ("GatherTimeout", Kw::GatherTimeout),
    ("FormTimeout", Kw::FormTimeout),
    ("LookupTimeout", Kw::LookupTimeout),
    ("VirtualID", Kw::VirtualId),
    ("WideAreaNetwork", Kw::WideAreaNetwork),
    ("ExcludeSegAddrsFromHash", Kw::ExcludeSegAddrsFromHash),
    ("IgnoreMulticastJoinErrors", Kw::IgnoreMulticastJoinErrors),
    ("MetricsAddress", Kw::MetricsAddress),
];

impl Kw {
    pub fn text(self) -> &'static str {
        KEYWORDS.iter().find(|(_, k)| *k == self).map(|(s, _)| *s).unwrap_or("?")
    }
}

/// An address token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrTok {
    pub ip: IpAddr,
    /// 0 when no port was written.
    pub port: u16,
    /// IPv6 `%ifname` resolved with `if_nametoindex` (0 if absent/unknown).
    pub scope_id: u32,
    /// The lexeme as written (used as a daemon name for address-only entries).
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    OpenBrace,
    CloseBrace,
    Equals,
    Colon,
    Semicolon,
    Bang,
    Kw(Kw),
    Bool(bool),
    /// on = 1, off = 0, auto = 2.
    Trival(u8),
    /// Debug-flag mask token.
    Flag(u32),
    /// Interface letter M/C/D (its bit).
    IfKind(u8),
    Prio(Priority),
    IpAddr(AddrTok),
    IpPort(AddrTok),
    Number(u32),
    /// A string: raw bytes, cut at the first NUL like the original's copy.
    Str(Vec<u8>),
}

impl Tok {
    /// Short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::OpenBrace => "'{'".into(),
            Tok::CloseBrace => "'}'".into(),
            Tok::Equals => "'='".into(),
            Tok::Colon => "':'".into(),
            Tok::Semicolon => "';'".into(),
            Tok::Bang => "'!'".into(),
            Tok::Kw(k) => format!("'{}'", k.text()),
            Tok::Bool(b) => format!("'{}'", if *b { "true" } else { "false" }),
            Tok::Trival(v) => format!("'{}'", ["off", "on", "auto"].get(*v as usize).copied().unwrap_or("?")),
            Tok::Flag(m) => {
                let n = flags::NAMES.iter().find(|(_, v)| v == m).map(|(s, _)| *s).unwrap_or("?");
                format!("'{n}'")
            }
            Tok::IfKind(b) => format!(
                "'{}'",
                match b {
                    1 => "M",
                    2 => "C",
                    _ => "D",
                }
            ),
            Tok::Prio(p) => format!(
                "'{}'",
                match p {
                    Priority::Debug => "pDEBUG",
                    Priority::Info => "INFO",
                    Priority::Warning => "WARNING",
                    Priority::Error => "ERROR",
                    Priority::Critical => "CRITICAL",
                    Priority::Fatal => "FATAL",
                }
            ),
            Tok::IpAddr(a) | Tok::IpPort(a) => format!("'{}'", a.text),
            Tok::Number(n) => format!("'{n}'"),
            Tok::Str(s) => format!("'{}'", String::from_utf8_lossy(s)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned {
    pub tok: Tok,
    pub line: u32,
}

/// A fatal scanner error (port out of range).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub line: u32,
    pub message: String,
}

pub struct Lexer<'a> {
    b: &'a [u8],
    pos: usize,
    line: u32,
    pub warnings: Vec<(u32, String)>,
    /// For each position, the index of the next `\n`, `"` and `'` at or after
    /// it (or the input length): keeps scanning linear on hostile input.
    next_nl: Vec<usize>,
    next_dq: Vec<usize>,
    next_sq: Vec<usize>,
}

fn next_index(b: &[u8], c: u8) -> Vec<usize> {
    let mut v = vec![b.len(); b.len() + 1];
    for i in (0..b.len()).rev() {
        v[i] = if b[i] == c { i } else { v[i + 1] };
    }
    v
}

fn is_string_byte(c: u8) -> bool {
    !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | b'#' | b'{' | b'}' | b'[' | b']')
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

// Candidate rule numbers (smaller = earlier in the scanner).
const R_SINGLE: u8 = 1;
const R_BANG: u8 = 2;
const R_KEYWORD: u8 = 3;
const R_BOOL: u8 = 4;
const R_TRIVAL: u8 = 5;
const R_FLAG: u8 = 6;
const R_IFKIND: u8 = 7;
const R_PRIO: u8 = 8;
const R_IPV4: u8 = 9;
const R_IPV4PORT: u8 = 10;
const R_IPV6: u8 = 11;
const R_IPV6PORT: u8 = 12;
const R_NUMBER: u8 = 13;
const R_QSTRING: u8 = 14;
const R_STRING: u8 = 15;

impl<'a> Lexer<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Lexer {
            b,
            pos: 0,
            line: 1,
            warnings: Vec::new(),
            next_nl: next_index(b, b'\n'),
            next_dq: next_index(b, b'"'),
            next_sq: next_index(b, b'\''),
        }
    }

    pub fn line(&self) -> u32 {
        self.line
    }

    fn rest(&self) -> &'a [u8] {
        &self.b[self.pos..]
    }

    /// Length of `lit` if the input at `at` starts with it (optionally ignoring ASCII case).
    fn lit_at(&self, at: usize, lit: &str, nocase: bool) -> Option<usize> {
        let s = self.b.get(at..at + lit.len())?;
        let ok = if nocase { s.eq_ignore_ascii_case(lit.as_bytes()) } else { s == lit.as_bytes() };
        ok.then_some(lit.len())
    }

    fn digits_upto(&self, at: usize, max: usize) -> usize {
        let mut n = 0;
        while n < max && self.b.get(at + n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
        n
    }

    /// End of the longest `{ipv4addr}` match starting at `at`.
    fn ipv4_end(&self, at: usize) -> Option<usize> {
        let mut p = at;
        for i in 0..4 {
            if i > 0 {
                if self.b.get(p) != Some(&b'.') {
                    return None;
                }
                p += 1;
            }
            let n = self.digits_upto(p, 3);
            if n == 0 {
                return None;
            }
            p += n;
        }
        Some(p)
    }

    /// All ends of `{quad}` at `at` (1..=4 hex digits).
    fn quad_ends(&self, at: usize) -> Vec<usize> {
        let mut v = Vec::new();
        let mut n = 0;
        while n < 4 && self.b.get(at + n).copied().is_some_and(is_hex) {
            n += 1;
            v.push(at + n);
        }
        v
    }

    /// All ends of `quad(:quad){lo..=hi}` from every start in `starts`.
    fn quad_chain_ends(&self, starts: &[usize], lo: usize, hi: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut cur: Vec<usize> = Vec::new();
        for &s in starts {
            cur.extend(self.quad_ends(s));
        }
        cur.sort_unstable();
        cur.dedup();
        if lo == 0 {
            out.extend(&cur);
        }
        for k in 1..=hi {
            let mut next = Vec::new();
            for &e in &cur {
                if self.b.get(e) == Some(&b':') {
                    next.extend(self.quad_ends(e + 1));
                }
            }
            next.sort_unstable();
            next.dedup();
            if next.is_empty() {
                break;
            }
            if k >= lo {
                out.extend(&next);
            }
            cur = next;
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Ends of `{ipv6addr}` (without the `%if` suffix) starting at `at`.
    fn ipv6_core_ends(&self, at: usize) -> Vec<usize> {
        let mut ends = Vec::new();
        // quad(:quad){7}
        ends.extend(self.quad_chain_ends(&[at], 7, 7));
        // ((quad:){0,6}quad)? :: (quad(:quad){0,6})?
        let mut left = vec![at];
        left.extend(self.quad_chain_ends(&[at], 0, 6));
        for l in left {
            if self.b.get(l) == Some(&b':') && self.b.get(l + 1) == Some(&b':') {
                let after = l + 2;
                ends.push(after);
                ends.extend(self.quad_chain_ends(&[after], 0, 6));
            }
        }
        ends.sort_unstable();
        ends.dedup();
        ends
    }

    /// Ends of the full `{ipv6addr}` including an optional `%{string}`.
    fn ipv6_ends(&self, at: usize) -> Vec<usize> {
        let mut ends = self.ipv6_core_ends(at);
        let mut extra = Vec::new();
        for &e in &ends {
            if self.b.get(e) == Some(&b'%') {
                let mut p = e + 1;
                while self.b.get(p).copied().is_some_and(is_string_byte) {
                    p += 1;
                }
                if p > e + 1 {
                    extra.push(p);
                }
            }
        }
        ends.extend(extra);
        ends.sort_unstable();
        ends.dedup();
        ends
    }

    fn candidates(&self) -> Vec<(usize, u8)> {
        let at = self.pos;
        let c = self.b[at];
        let mut v: Vec<(usize, u8)> = Vec::new();
        if matches!(c, b'{' | b'}' | b'=' | b':' | b';') {
            v.push((1, R_SINGLE));
        }
        if c == b'!' {
            let p = self.next_nl[at + 1];
            if p > at + 1 {
                v.push((p - at, R_BANG));
            }
        }
        for (lit, _) in KEYWORDS {
            if let Some(n) = self.lit_at(at, lit, false) {
                v.push((n, R_KEYWORD));
            }
        }
        for lit in ["true", "yes", "false", "no"] {
            if let Some(n) = self.lit_at(at, lit, true) {
                v.push((n, R_BOOL));
            }
        }
        for lit in ["on", "off", "auto"] {
            if let Some(n) = self.lit_at(at, lit, true) {
                v.push((n, R_TRIVAL));
            }
        }
        for (lit, _) in flags::NAMES {
            if let Some(n) = self.lit_at(at, lit, false) {
                v.push((n, R_FLAG));
            }
        }
        if matches!(c, b'M' | b'C' | b'D') {
            v.push((1, R_IFKIND));
        }
        for lit in ["pDEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "FATAL"] {
            if let Some(n) = self.lit_at(at, lit, false) {
                v.push((n, R_PRIO));
            }
        }
        if let Some(e) = self.ipv4_end(at) {
            v.push((e - at, R_IPV4));
            if self.b.get(e) == Some(&b':') {
                let n = self.digits_upto(e + 1, 5);
                if n > 0 {
                    v.push((e + 1 + n - at, R_IPV4PORT));
                }
            }
        }
        if let Some(&e) = self.ipv6_ends(at).last() {
            v.push((e - at, R_IPV6));
        }
        if c == b'[' {
            let best = self
                .ipv6_ends(at + 1)
                .into_iter()
                .filter_map(|e| {
                    if self.b.get(e) == Some(&b']') && self.b.get(e + 1) == Some(&b':') {
                        let n = self.digits_upto(e + 2, 5);
                        (n > 0).then_some(e + 2 + n)
                    } else {
                        None
                    }
                })
                .max();
            if let Some(e) = best {
                v.push((e - at, R_IPV6PORT));
            }
        }
        let n = self.digits_upto(at, 9);
        if n > 0 {
            v.push((n, R_NUMBER));
        }
        if c == b'"' || c == b'\'' {
            let next = if c == b'"' { &self.next_dq } else { &self.next_sq };
            let close = next[at + 1];
            if close < self.b.len() {
                v.push((close - at + 1, R_QSTRING));
            }
        }
        let mut p = at;
        while self.b.get(p).copied().is_some_and(is_string_byte) {
            p += 1;
        }
        if p > at {
            v.push((p - at, R_STRING));
        }
        // Longest first; on equal length the earlier rule.
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        v
    }

    fn text(&self, len: usize) -> String {
        String::from_utf8_lossy(&self.b[self.pos..self.pos + len]).into_owned()
    }

    fn warn(&mut self, msg: String) {
        self.warnings.push((self.line, msg));
    }

    /// Builds the token for rule `rule` over `len` bytes; `Ok(None)` means the
    /// rule rejected the text (invalid address) and the next match is tried.
    fn build(&mut self, rule: u8, len: usize) -> Result<Option<Tok>, LexError> {
        let text = self.text(len);
        let t = match rule {
            R_SINGLE => match self.b[self.pos] {
                b'{' => Tok::OpenBrace,
                b'}' => Tok::CloseBrace,
                b'=' => Tok::Equals,
                b':' => Tok::Colon,
                _ => Tok::Semicolon,
            },
            R_BANG => Tok::Bang,
            R_KEYWORD => match KEYWORDS.iter().find(|(s, _)| *s == text) {
                Some((_, k)) => Tok::Kw(*k),
                None => return Ok(None),
            },
            R_BOOL => Tok::Bool(text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("yes")),
            R_TRIVAL => Tok::Trival(if text.eq_ignore_ascii_case("on") {
                1
            } else if text.eq_ignore_ascii_case("off") {
                0
            } else {
                2
            }),
            R_FLAG => match flags::NAMES.iter().find(|(s, _)| *s == text) {
                Some((_, m)) => Tok::Flag(*m),
                None => return Ok(None),
            },
            R_IFKIND => Tok::IfKind(match self.b[self.pos] {
                b'M' => 1,
                b'C' => 2,
                _ => 4,
            }),
            R_PRIO => Tok::Prio(match text.as_str() {
                "pDEBUG" => Priority::Debug,
                "INFO" => Priority::Info,
                "WARNING" => Priority::Warning,
                "ERROR" => Priority::Error,
                "CRITICAL" => Priority::Critical,
                _ => Priority::Fatal,
            }),
            R_IPV4 | R_IPV4PORT | R_IPV6 | R_IPV6PORT => {
                let v6 = matches!(rule, R_IPV6 | R_IPV6PORT);
                let has_port = matches!(rule, R_IPV4PORT | R_IPV6PORT);
                match self.parse_ip(&text, v6, has_port)? {
                    Some(a) => {
                        if has_port {
                            Tok::IpPort(a)
                        } else {
                            Tok::IpAddr(a)
                        }
                    }
                    None => {
                        self.warn(format!("potentially malformed IP address '{text}' scanned"));
                        return Ok(None);
                    }
                }
            }
            R_NUMBER => Tok::Number(text.parse().unwrap_or(0)),
            R_QSTRING => {
                // The original copies from after the opening quote up to the
                // first NUL and then drops the last byte (normally the closing
                // quote): with an embedded NUL that drops a content byte.
                let mut v = cut_nul(&self.b[self.pos + 1..self.pos + len]);
                v.pop();
                Tok::Str(v)
            }
            _ => Tok::Str(cut_nul(&self.b[self.pos..self.pos + len])),
        };
        Ok(Some(t))
    }

    fn parse_ip(&self, text: &str, v6: bool, has_port: bool) -> Result<Option<AddrTok>, LexError> {
        let mut addr = text;
        let mut port = 0u16;
        if has_port {
            let Some(colon) = text.rfind(':') else {
                return Err(LexError { line: self.line, message: "no ':' in an address with port".into() });
            };
            let p: u32 = text[colon + 1..].parse().unwrap_or(u32::MAX);
            if p > 65535 {
                return Err(LexError {
                    line: self.line,
                    message: format!("Port out of valid range (0..65535) in '{text}'"),
                });
            }
            port = p as u16;
            addr = &text[..colon];
            if v6 {
                addr = addr.trim_start_matches('[').trim_end_matches(']');
            }
        }
        let mut scope_id = 0;
        if v6 {
            if let Some(pct) = addr.find('%') {
                scope_id = if_index(&addr[pct + 1..]);
                addr = &addr[..pct];
            }
            match addr.parse::<Ipv6Addr>() {
                Ok(ip) => Ok(Some(AddrTok { ip: IpAddr::V6(ip), port, scope_id, text: text.to_string() })),
                Err(_) => Ok(None),
            }
        } else {
            match addr.parse::<Ipv4Addr>() {
                Ok(ip) => Ok(Some(AddrTok { ip: IpAddr::V4(ip), port, scope_id, text: text.to_string() })),
                Err(_) => Ok(None),
            }
        }
    }

    /// Next token, `Ok(None)` at end of input.
    pub fn next_token(&mut self) -> Result<Option<Spanned>, LexError> {
        let mut guard = 0usize;
        loop {
            guard += 1;
            if guard > self.b.len() + 2 {
                return Ok(None);
            }
            let Some(&c) = self.rest().first() else {
                return Ok(None);
            };
            match c {
                b' ' | b'\t' | b'\r' => {
                    self.pos += 1;
                    continue;
                }
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                    continue;
                }
                b'#' => {
                    self.pos = self.next_nl[self.pos];
                    continue;
                }
                _ => {}
            }
            let cands = self.candidates();
            for (len, rule) in cands {
                if let Some(tok) = self.build(rule, len)? {
                    let line = self.line;
                    // The '!' rule has trailing context: it competes with its
                    // whole match but consumes only the '!'.
                    let len = if rule == R_BANG { 1 } else { len };
                    let consumed = &self.b[self.pos..self.pos + len];
                    self.line += consumed.iter().filter(|&&x| x == b'\n').count() as u32;
                    self.pos += len;
                    return Ok(Some(Spanned { tok, line }));
                }
            }
            // No rule matches (e.g. a lone '[' or ']', a vertical tab): the
            // original scanner echoes the byte and goes on.
            self.warn(format!("stray character {:?} ignored", c as char));
            self.pos += 1;
        }
    }
}

fn cut_nul(b: &[u8]) -> Vec<u8> {
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    b[..end].to_vec()
}

fn if_index(name: &str) -> u32 {
    match std::ffi::CString::new(name) {
        // SAFETY: `n` is a valid NUL-terminated string for the call's duration.
        Ok(n) => unsafe { libc::if_nametoindex(n.as_ptr()) },
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> Tok {
        Tok::Str(s.as_bytes().to_vec())
    }

    fn toks(s: &str) -> Vec<Tok> {
        let mut l = Lexer::new(s.as_bytes());
        let mut v = Vec::new();
        while let Some(t) = l.next_token().unwrap() {
            v.push(t.tok);
        }
        v
    }

    #[test]
    fn longest_match_rules() {
        assert_eq!(toks("Window=160"), vec![st("Window=160")]);
        assert_eq!(toks("Window = 160"), vec![Tok::Kw(Kw::Window), Tok::Equals, Tok::Number(160)]);
        assert_eq!(toks("Windows"), vec![st("Windows")]);
        assert_eq!(toks("name;"), vec![st("name;")]);
        assert_eq!(toks(";"), vec![Tok::Semicolon]);
        assert_eq!(toks("1234567890"), vec![st("1234567890")]);
        assert_eq!(toks("123456789"), vec![Tok::Number(123_456_789)]);
        assert_eq!(toks("M C D"), vec![Tok::IfKind(1), Tok::IfKind(2), Tok::IfKind(4)]);
        assert_eq!(toks("Yes NO auto"), vec![Tok::Bool(true), Tok::Bool(false), Tok::Trival(2)]);
        assert_eq!(toks("\"a b\" 'c'"), vec![st("a b"), st("c")]);
        assert_eq!(toks("\"a\"b"), vec![st("\"a\"b")]);
        assert_eq!(toks("x # c\ny"), vec![st("x"), st("y")]);
        assert_eq!(toks("{ !DATA_LINK }"), vec![Tok::OpenBrace, Tok::Bang, Tok::Flag(0x2), Tok::CloseBrace]);
        assert_eq!(toks("!"), vec![st("!")]);
        assert_eq!(toks("\"ab\u{0}cd\" c\u{0}d"), vec![st("a"), st("c")]);
    }

    #[test]
    fn addresses() {
        match &toks("10.0.0.1")[0] {
            Tok::IpAddr(a) => assert_eq!(a.ip, "10.0.0.1".parse::<IpAddr>().unwrap()),
            t => panic!("{t:?}"),
        }
        match &toks("10.0.0.255:4803")[0] {
            Tok::IpPort(a) => assert_eq!(a.port, 4803),
            t => panic!("{t:?}"),
        }
        match &toks("[ff02::1:2:3]:5000")[0] {
            Tok::IpPort(a) => {
                assert_eq!(a.port, 5000);
                assert_eq!(a.ip, "ff02::1:2:3".parse::<IpAddr>().unwrap());
            }
            t => panic!("{t:?}"),
        }
        match &toks("::1")[0] {
            Tok::IpAddr(a) => assert_eq!(a.ip, "::1".parse::<IpAddr>().unwrap()),
            t => panic!("{t:?}"),
        }
        match &toks("fe80::1%nosuchif0")[0] {
            Tok::IpAddr(a) => {
                assert_eq!(a.scope_id, 0);
                assert_eq!(a.text, "fe80::1%nosuchif0");
            }
            t => panic!("{t:?}"),
        }
        // Invalid dotted quad: rejected, falls back to a string.
        assert_eq!(toks("256.1.1.1"), vec![st("256.1.1.1")]);
        assert_eq!(toks("10.0.0.1;"), vec![st("10.0.0.1;")]);
        let mut l = Lexer::new(b"1.2.3.4:99999");
        assert!(l.next_token().is_err());
    }

    #[test]
    fn lines() {
        let mut l = Lexer::new(b"a\n\"x\ny\"\nb");
        assert_eq!(l.next_token().unwrap().unwrap().line, 1);
        assert_eq!(l.next_token().unwrap().unwrap().line, 2);
        assert_eq!(l.next_token().unwrap().unwrap().line, 4);
    }
}
