//! The `spread.conf` grammar (§1.3) with the semantic checks of §1.4, written
//! as a recursive-descent parser that resolves the grammar's ambiguity the way
//! the original does (`STRING IPADDR` is always one daemon).

use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};

use super::hash::{self, SegmentText};
use super::lexer::{AddrTok, Kw, LexError, Lexer, Spanned, Tok};
use super::*;

/// Longest `RuntimeDir` value (MAXPATHLEN).
const MAX_PATH_LEN: usize = 4096;
/// Longest `DaemonUser`/`DaemonGroup` value.
const MAX_ID_NAME_LEN: usize = 32;
/// `MAX_AUTH_LIST_LEN` − 1: longest auth list kept.
const MAX_AUTH_LIST: usize = 89;
/// Longest kept `EventTimeStamp` format.
const MAX_TS_FORMAT: usize = 39;

/// Where the parser's tokens come from: the `spread.conf` scanner, or a
/// list built from another spelling of the same file (the TOML form).
pub(crate) enum Source<'a> {
    Text(Lexer<'a>),
    Tokens {
        toks: std::vec::IntoIter<Spanned>,
        /// Line of the last token handed out.
        line: u32,
        /// Line reported for end-of-file errors.
        eof_line: u32,
    },
}

impl Source<'_> {
    fn next_token(&mut self) -> Result<Option<Spanned>, LexError> {
        match self {
            Source::Text(lx) => lx.next_token(),
            Source::Tokens { toks, line, eof_line } => match toks.next() {
                Some(t) => {
                    *line = t.line;
                    Ok(Some(t))
                }
                None => {
                    *line = *eof_line;
                    Ok(None)
                }
            },
        }
    }

    fn line(&self) -> u32 {
        match self {
            Source::Text(lx) => lx.line(),
            Source::Tokens { line, .. } => *line,
        }
    }

    fn warnings(&self) -> &[(u32, String)] {
        match self {
            Source::Text(lx) => &lx.warnings,
            Source::Tokens { .. } => &[],
        }
    }
}

/// What the file wrote, beyond the values in [`Config`]: which parameter
/// keywords appeared and the `EventLogFile` text before `%h` expansion
/// (what `--convert-config` needs to spell the same file again).
#[derive(Clone, Debug, Default)]
pub(crate) struct Written {
    pub keywords: Vec<Kw>,
    pub event_log_file: Option<String>,
}

impl Written {
    pub fn has(&self, kw: Kw) -> bool {
        self.keywords.contains(&kw)
    }
}

struct P<'a> {
    lx: Source<'a>,
    written: Written,
    resolver: Resolver<'a>,
    peeked: Option<Spanned>,
    eof_line: u32,
    file: String,
    c: Config,
    prev_vids: Vec<u32>,
    // Timestamp state, as the original keeps it.
    ts_custom: Option<String>,
    ts_precise: bool,
    // Segment being built.
    seg_extra: Vec<AddrTok>,
    active: Option<IpVersion>,
    auth_configured: bool,
}

type R<T> = Result<T, ConfigError>;

/// Name → addresses, in the resolver's order.
pub type Resolver<'r> = &'r dyn Fn(&str) -> Result<Vec<IpAddr>, String>;

/// The system resolver (`getaddrinfo`).
pub fn system_resolver(name: &str) -> Result<Vec<IpAddr>, String> {
    (name, 0u16).to_socket_addrs().map(|it| it.map(|a| a.ip()).collect()).map_err(|e| e.to_string())
}

pub fn parse(text: &[u8], file: &str, previous: Option<&Config>, resolver: Resolver<'_>) -> R<Config> {
    parse_source(Source::Text(Lexer::new(text)), file, previous, resolver).map(|(c, _)| c)
}

/// [`parse`] from any token source, also returning what the file wrote.
pub(crate) fn parse_source(
    source: Source<'_>,
    file: &str,
    previous: Option<&Config>,
    resolver: Resolver<'_>,
) -> R<(Config, Written)> {
    let base = match previous {
        // A reload starts from the previous values of every parameter (the
        // original never resets its globals) but an empty daemon table.
        Some(prev) => {
            let mut c = prev.clone();
            c.file = file.to_string();
            c.segments.clear();
            c.daemons.clear();
            c.warnings.clear();
            c.unsupported.clear();
            c.hash_text.clear();
            c
        }
        None => fresh(file),
    };
    let mut p = P {
        lx: source,
        written: Written::default(),
        resolver,
        peeked: None,
        eof_line: 1,
        file: file.to_string(),
        active: previous.map(|c| c.active_ip_version),
        auth_configured: previous
            .is_some_and(|c| !c.auth.null_enabled || !c.auth.allowed.is_empty() || !c.auth.required.is_empty()),
        prev_vids: previous.map(|c| c.daemons.iter().map(|d| d.vid).collect()).unwrap_or_default(),
        c: base,
        ts_custom: previous.and_then(|c| c.ts_custom_state.clone()),
        ts_precise: previous.is_some_and(|c| c.event_timestamp.as_ref().is_some_and(|t| t.precise)),
        seg_extra: Vec::new(),
    };
    p.config()?;
    let mut warnings: Vec<String> = p.lx.warnings().iter().map(|(l, m)| format!("{}:{}: {}", p.file, l, m)).collect();
    warnings.append(&mut p.c.warnings);
    p.c.warnings = warnings;
    p.c.ts_custom_state = p.ts_custom.clone();

    // End-of-file checks and the hash.
    let acc_now = match previous {
        None => p.c.accelerated_ring_setting == Some(true),
        Some(prev) => p.c.accelerated_ring_setting.unwrap_or(prev.accel_after_init),
    };
    if p.c.segments.is_empty() {
        return Err(p.err_eof("no Spread_Segment in the file: at least one segment is required"));
    }
    if p.c.daemons.is_empty() {
        return Err(p.err_eof("no daemon is listed in any segment: at least one daemon is required"));
    }
    if p.c.personal_window > p.c.window {
        return Err(p.err_eof("PersonalWindow > Window: the personal window may not exceed the window"));
    }
    if acc_now && p.c.accelerated_window > p.c.personal_window {
        return Err(p.err_eof("AcceleratedWindow > PersonalWindow: with AcceleratedRing the accelerated window may not exceed the personal window"));
    }
    p.c.active_ip_version = p.active.unwrap_or(IpVersion::V4);
    let c = &mut p.c;
    let texts: Vec<SegmentText<'_>> = c
        .segments
        .iter()
        .map(|s| SegmentText {
            port: s.port,
            addrs: s.addrs.iter().map(SocketAddr::ip).collect(),
            daemons: s
                .daemons
                .iter()
                .map(|&i| (c.daemons[i].name_bytes.as_slice(), c.daemons[i].ip(), c.daemons[i].vid))
                .collect(),
        })
        .collect();
    let s = hash::conf_bytes(&texts, c.exclude_seg_addrs_from_hash, acc_now);
    drop(texts);
    c.hash = hash::conf_hash_of_bytes(&s);
    c.hash_text = String::from_utf8_lossy(&s).into_owned();
    c.accelerated_ring_in_use = acc_now;
    c.accel_after_init = match previous {
        None => c.accelerated_ring_setting.unwrap_or(!c.wide_area()),
        Some(_) => acc_now,
    };
    Ok((p.c, p.written))
}

fn fresh(file: &str) -> Config {
    Config {
        file: file.to_string(),
        segments: Vec::new(),
        daemons: Vec::new(),
        debug_flags: flags::DEFAULT,
        debug_flags_set: false,
        event_priority: Priority::Info,
        event_log_file: None,
        event_log_format: LogFormat::Text,
        event_timestamp: None,
        dangerous_monitor: false,
        socket_port_reuse: PortReuse::Auto,
        runtime_dir: DEFAULT_RUNTIME_DIR.to_string(),
        daemon_user: DEFAULT_USER.to_string(),
        daemon_group: DEFAULT_GROUP.to_string(),
        runtime_dir_set: false,
        daemon_user_set: false,
        daemon_group_set: false,
        max_session_messages: DEFAULT_MAX_SESSION_MESSAGES,
        max_session_bytes: crate::engine::queues::DEFAULT_MAX_SESSION_BYTES as u32,
        max_queued_bytes: crate::engine::queues::DEFAULT_MAX_QUEUED_BYTES as u32,
        auth: AuthSettings::default(),
        access_control_policy: "PERMIT".to_string(),
        active_ip_version: IpVersion::V4,
        window: DEFAULT_WINDOW,
        personal_window: DEFAULT_PERSONAL_WINDOW,
        accelerated_ring_setting: None,
        accelerated_window: DEFAULT_ACCELERATED_WINDOW,
        timeouts: TimeoutSettings::default(),
        wide_area_network_setting: None,
        exclude_seg_addrs_from_hash: false,
        ignore_multicast_join_errors: false,
        metrics_address: None,
        hash: 0,
        hash_text: String::new(),
        accelerated_ring_in_use: false,
        accel_after_init: false,
        ts_custom_state: None,
        warnings: Vec::new(),
        unsupported: Vec::new(),
    }
}

/// Host name for `%h`/`%H` in `EventLogFile`.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // when the name fits (we cut at the first NUL or the end anyway).
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `%h`/`%H` → host name; any other `%` sequence is kept.
pub fn expand_filename(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(ch) = it.next() {
        if ch == '%' && matches!(it.peek(), Some('h') | Some('H')) {
            it.next();
            out.push_str(&hostname());
        } else {
            out.push(ch);
        }
    }
    out
}

fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A segment warning as the original prints it (`PARSE_WARNING_STR`): at
/// the closing brace on 1-based line `line`.
fn original_warning(line: u32, what: &str) -> String {
    format!(
        "----------- Parse Warning------------------\nWarning on or before line {}\nOffending token: }}\nWarning type: {what}",
        line.saturating_sub(1)
    )
}

fn with_port(ip: IpAddr, port: u16, scope: u32) -> SocketAddr {
    match ip {
        IpAddr::V4(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
    }
}

fn set_port(a: &mut SocketAddr, port: u16) {
    a.set_port(port);
}

fn is_multicast(ip: &IpAddr) -> bool {
    ip.is_multicast()
}

impl<'a> P<'a> {
    fn err(&self, line: u32, msg: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.file, line, msg)
    }

    fn err_eof(&self, msg: &str) -> ConfigError {
        self.err(self.eof_line, msg)
    }

    fn lexerr(&self, e: LexError) -> ConfigError {
        self.err(e.line, e.message)
    }

    fn warn(&mut self, line: u32, msg: impl Into<String>) {
        let m = format!("{}:{}: {}", self.file, line, msg.into());
        self.c.warnings.push(m);
    }

    fn peek(&mut self) -> R<Option<&Spanned>> {
        if self.peeked.is_none() {
            match self.lx.next_token() {
                Ok(Some(t)) => self.peeked = Some(t),
                Ok(None) => self.eof_line = self.lx.line(),
                Err(e) => return Err(self.lexerr(e)),
            }
        }
        Ok(self.peeked.as_ref())
    }

    fn next(&mut self) -> R<Option<Spanned>> {
        self.peek()?;
        Ok(self.peeked.take())
    }

    fn syntax(&self, got: Option<&Spanned>, expected: &str) -> ConfigError {
        match got {
            Some(t) => {
                self.err(t.line, format!("syntax error: unexpected {}, expected {}", t.tok.describe(), expected))
            }
            None => self.err(self.eof_line, format!("syntax error: unexpected end of file, expected {expected}")),
        }
    }

    fn expect(&mut self, want: Tok, what: &str) -> R<Spanned> {
        match self.next()? {
            Some(t) if t.tok == want => Ok(t),
            other => Err(self.syntax(other.as_ref(), what)),
        }
    }

    fn config(&mut self) -> R<()> {
        let mut guard = 0usize;
        while let Some(t) = self.next()? {
            guard += 1;
            if guard > 10_000_000 {
                return Err(self.err(t.line, "configuration too long"));
            }
            match t.tok {
                Tok::Kw(Kw::Segment) => self.segment(t.line)?,
                Tok::Kw(k) if k != Kw::VirtualId => self.param(k, t.line)?,
                _ => return Err(self.syntax(Some(&t), "Spread_Segment or a parameter keyword")),
            }
        }
        Ok(())
    }

    fn value_eq(&mut self, what: &str) -> R<Spanned> {
        self.expect(Tok::Equals, "'='")?;
        match self.next()? {
            Some(t) => Ok(t),
            None => Err(self.syntax(None, what)),
        }
    }

    fn string_value(&mut self, kw: Kw) -> R<(String, u32)> {
        let t = self.value_eq("a string")?;
        match t.tok {
            Tok::Str(s) => Ok((String::from_utf8_lossy(&s).into_owned(), t.line)),
            _ => Err(self.syntax(Some(&t), &format!("a string value for {}", kw.text()))),
        }
    }

    fn number_value(&mut self, kw: Kw) -> R<(u32, u32)> {
        let t = self.value_eq("a number")?;
        match t.tok {
            Tok::Number(n) => Ok((n, t.line)),
            _ => Err(self.syntax(Some(&t), &format!("a number (at most 9 digits) for {}", kw.text()))),
        }
    }

    fn bool_value(&mut self, kw: Kw) -> R<bool> {
        let t = self.value_eq("true/false")?;
        match t.tok {
            Tok::Bool(b) => Ok(b),
            _ => Err(self.syntax(Some(&t), &format!("true/false/yes/no for {}", kw.text()))),
        }
    }

    fn positive(&self, kw: Kw, n: u32, line: u32) -> R<u32> {
        if n == 0 {
            Err(self.err(line, format!("{} must be greater than zero", kw.text())))
        } else {
            Ok(n)
        }
    }

    fn unsupported(&mut self, kw: Kw, line: u32, why: &str) {
        let m = format!("{}:{}: {} is accepted but not supported yet: {}", self.file, line, kw.text(), why);
        self.c.unsupported.push(m);
    }

    fn set_active(&mut self, v: IpVersion, line: u32) -> R<()> {
        match self.active {
            Some(a) if a != v => Err(self
                .err(line, "daemon address family differs from ActiveIPVersion (or from the first daemon's address)")),
            _ => {
                self.active = Some(v);
                Ok(())
            }
        }
    }

    fn param(&mut self, kw: Kw, line: u32) -> R<()> {
        if !self.written.has(kw) {
            self.written.keywords.push(kw);
        }
        match kw {
            Kw::DebugFlags => {
                self.expect(Tok::Equals, "'='")?;
                self.expect(Tok::OpenBrace, "'{'")?;
                let mut mask = flags::NONE;
                let mut guard = 0usize;
                loop {
                    guard += 1;
                    if guard > 1_000_000 {
                        return Err(self.err(line, "DebugFlags list too long"));
                    }
                    match self.next()? {
                        Some(Spanned { tok: Tok::CloseBrace, .. }) => break,
                        Some(Spanned { tok: Tok::Flag(m), .. }) => mask |= m,
                        Some(Spanned { tok: Tok::Bang, .. }) => match self.next()? {
                            Some(Spanned { tok: Tok::Flag(m), .. }) => mask &= !m,
                            other => return Err(self.syntax(other.as_ref(), "a debug flag name after '!'")),
                        },
                        other => return Err(self.syntax(other.as_ref(), "a debug flag name or '}'")),
                    }
                }
                self.c.debug_flags = mask;
                self.c.debug_flags_set = true;
            }
            Kw::EventPriority => {
                let t = self.value_eq("a priority")?;
                match t.tok {
                    Tok::Prio(p) => self.c.event_priority = p,
                    _ => return Err(self.syntax(Some(&t), "pDEBUG, INFO, WARNING, ERROR, CRITICAL or FATAL")),
                }
            }
            Kw::EventLogFile => {
                let (s, _) = self.string_value(kw)?;
                self.written.event_log_file = Some(s.clone());
                self.c.event_log_file = Some(cut_bytes(&expand_filename(&s), MAX_PATH_LEN - 1).to_string());
            }
            Kw::EventTimeStamp => {
                if matches!(self.peek()?, Some(Spanned { tok: Tok::Equals, .. })) {
                    let (s, _) = self.string_value(kw)?;
                    let f = cut_bytes(&s, MAX_TS_FORMAT).to_string();
                    self.ts_custom = Some(f.clone());
                    self.c.event_timestamp = Some(make_timestamp(Some(&f), self.ts_precise));
                } else {
                    self.c.event_timestamp = Some(make_timestamp(None, self.ts_precise));
                }
            }
            Kw::EventPreciseTimeStamp => {
                self.ts_precise = true;
                let custom = self.ts_custom.clone();
                self.c.event_timestamp = Some(make_timestamp(custom.as_deref(), true));
            }
            Kw::EventLogFormat => {
                let (s, l) = self.string_value(kw)?;
                self.c.event_log_format = match s.to_ascii_lowercase().as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err(self.err(l, format!("EventLogFormat must be text or json, not '{s}'"))),
                };
            }
            Kw::DangerousMonitor => {
                self.c.dangerous_monitor = self.bool_value(kw)?;
            }
            Kw::SocketPortReuse => {
                let t = self.value_eq("on/off/auto")?;
                self.c.socket_port_reuse = match t.tok {
                    Tok::Trival(1) => PortReuse::On,
                    Tok::Trival(0) => PortReuse::Off,
                    Tok::Trival(_) => PortReuse::Auto,
                    _ => return Err(self.syntax(Some(&t), "on, off or auto")),
                };
            }
            Kw::RuntimeDir | Kw::DaemonUser | Kw::DaemonGroup => {
                let (s, l) = self.string_value(kw)?;
                let max = if kw == Kw::RuntimeDir { MAX_PATH_LEN } else { MAX_ID_NAME_LEN };
                if s.is_empty() {
                    self.warn(l, format!("ignored empty {}", kw.text()));
                } else if s.len() > max {
                    return Err(self.err(l, format!("{} value too long (at most {max} characters)", kw.text())));
                } else {
                    match kw {
                        Kw::RuntimeDir => {
                            self.c.runtime_dir = s;
                            self.c.runtime_dir_set = true;
                        }
                        Kw::DaemonUser => {
                            self.c.daemon_user = s;
                            self.c.daemon_user_set = true;
                        }
                        _ => {
                            self.c.daemon_group = s;
                            self.c.daemon_group_set = true;
                        }
                    }
                }
            }
            Kw::AllowedAuthMethods | Kw::RequiredAuthMethods => {
                let (s, l) = self.string_value(kw)?;
                if !self.auth_configured {
                    self.c.auth.null_enabled = false;
                }
                self.auth_configured = true;
                let list = cut_bytes(&s, MAX_AUTH_LIST).to_string();
                for name in list.split(' ') {
                    if name.is_empty() {
                        continue;
                    }
                    let known = KNOWN_AUTH_METHODS.contains(&name);
                    if !known {
                        self.warn(l, format!("{}: unknown authentication method '{name}' ignored", kw.text()));
                        continue;
                    }
                    if kw == Kw::AllowedAuthMethods {
                        if name == "NULL" {
                            self.c.auth.null_enabled = true;
                        }
                        if !self.c.auth.allowed.iter().any(|a| a == name) {
                            self.c.auth.allowed.push(name.to_string());
                        }
                    } else if !self.c.auth.required.iter().any(|a| a == name) {
                        self.c.auth.required.push(name.to_string());
                    }
                }
            }
            Kw::AccessControlPolicy => {
                let (s, l) = self.string_value(kw)?;
                if cut_bytes(&s, 30) != "PERMIT" {
                    return Err(self.err(l, format!("unknown AccessControlPolicy '{s}': the only policy is PERMIT")));
                }
                self.c.access_control_policy = "PERMIT".to_string();
            }
            Kw::MaxSessionMessages => self.c.max_session_messages = self.number_value(kw)?.0,
            Kw::MaxSessionBytes => {
                let (n, l) = self.number_value(kw)?;
                self.c.max_session_bytes = self.positive(kw, n, l)?;
            }
            Kw::MaxQueuedBytes => {
                let (n, l) = self.number_value(kw)?;
                self.c.max_queued_bytes = self.positive(kw, n, l)?;
            }
            Kw::ActiveIpVersion => {
                let (s, l) = self.string_value(kw)?;
                let v = match s.as_str() {
                    "IPv4" => IpVersion::V4,
                    "IPv6" => IpVersion::V6,
                    _ => return Err(self.err(l, "ActiveIPVersion must be IPv4 or IPv6")),
                };
                if self.active.is_some_and(|a| a != v) {
                    return Err(self.err(
                        l,
                        "ActiveIPVersion already differently specified (by an earlier daemon address or setting)",
                    ));
                }
                self.active = Some(v);
            }
            Kw::Window => {
                let (n, l) = self.number_value(kw)?;
                self.c.window = self.positive(kw, n, l)?;
            }
            Kw::PersonalWindow => {
                let (n, l) = self.number_value(kw)?;
                self.c.personal_window = self.positive(kw, n, l)?;
            }
            Kw::AcceleratedRing => {
                let v = self.bool_value(kw)?;
                self.c.accelerated_ring_setting = Some(v);
                if v {
                    self.unsupported(
                        kw,
                        line,
                        "the accelerated ring protocol is not implemented (the value does enter the hash)",
                    );
                }
            }
            Kw::AcceleratedWindow => self.c.accelerated_window = self.number_value(kw)?.0,
            Kw::TokenTimeout
            | Kw::HurryTimeout
            | Kw::AliveTimeout
            | Kw::JoinTimeout
            | Kw::RepTimeout
            | Kw::SegTimeout
            | Kw::GatherTimeout
            | Kw::FormTimeout
            | Kw::LookupTimeout => {
                let (n, l) = self.number_value(kw)?;
                let n = self.positive(kw, n, l)?;
                let t = &mut self.c.timeouts;
                let slot = match kw {
                    Kw::TokenTimeout => &mut t.token,
                    Kw::HurryTimeout => &mut t.hurry,
                    Kw::AliveTimeout => &mut t.alive,
                    Kw::JoinTimeout => &mut t.join,
                    Kw::RepTimeout => &mut t.rep,
                    Kw::SegTimeout => &mut t.seg,
                    Kw::GatherTimeout => &mut t.gather,
                    Kw::FormTimeout => &mut t.form,
                    _ => &mut t.lookup,
                };
                *slot = Some(n);
            }
            Kw::WideAreaNetwork => self.c.wide_area_network_setting = Some(self.bool_value(kw)?),
            Kw::ExcludeSegAddrsFromHash => self.c.exclude_seg_addrs_from_hash = self.bool_value(kw)?,
            Kw::IgnoreMulticastJoinErrors => {
                self.c.ignore_multicast_join_errors = self.bool_value(kw)?;
                if self.c.ignore_multicast_join_errors {
                    self.unsupported(kw, line, "multicast segment addresses are not joined yet");
                }
            }
            Kw::MetricsAddress => {
                let t = self.value_eq("an address with a port")?;
                let a = match t.tok {
                    Tok::IpPort(a) if a.port != 0 => a,
                    _ => {
                        return Err(self.syntax(
                            Some(&t),
                            "an address with a port for MetricsAddress, such as 127.0.0.1:9464 or [::1]:9464",
                        ))
                    }
                };
                self.c.metrics_address = Some(match a.ip {
                    IpAddr::V4(ip) => SocketAddr::V4(SocketAddrV4::new(ip, a.port)),
                    IpAddr::V6(ip) => SocketAddr::V6(SocketAddrV6::new(ip, a.port, 0, a.scope_id)),
                });
            }
            Kw::Segment | Kw::VirtualId => unreachable!("handled by the caller"),
        }
        Ok(())
    }

    fn segment(&mut self, line: u32) -> R<()> {
        let first = match self.next()? {
            Some(Spanned { tok: Tok::IpAddr(a) | Tok::IpPort(a), .. }) => a,
            other => return Err(self.syntax(other.as_ref(), "a segment address")),
        };
        self.seg_extra.clear();
        loop {
            match self.next()? {
                Some(Spanned { tok: Tok::IpAddr(a), line: l }) => {
                    if self.seg_extra.len() + 1 >= MAX_ADDRS_SEGMENT {
                        return Err(self.err(l, "more than 5 addresses for one segment"));
                    }
                    self.seg_extra.push(a);
                }
                Some(Spanned { tok: Tok::OpenBrace, .. }) => break,
                other => return Err(self.syntax(other.as_ref(), "a further segment address (without port) or '{'")),
            }
        }
        let seg_index = self.c.segments.len();
        let first_proc = self.c.daemons.len();
        let mut guard = 0usize;
        loop {
            guard += 1;
            if guard > 1_000_000 {
                return Err(self.err(line, "segment too long"));
            }
            match self.peek()? {
                Some(Spanned { tok: Tok::CloseBrace, .. }) => {
                    self.next()?;
                    break;
                }
                _ => self.daemon(seg_index, first_proc)?,
            }
        }
        let end_line = self.lx.line();
        let port = if first.port == 0 { DEFAULT_PORT } else { first.port };
        if seg_index >= MAX_SEGMENTS {
            return Err(self.err(end_line, "more than 20 segments"));
        }
        let mut addrs = Vec::with_capacity(1 + self.seg_extra.len());
        let extra = std::mem::take(&mut self.seg_extra);
        for a in std::iter::once(&first).chain(extra.iter()) {
            let fam = IpVersion::of(&a.ip);
            if self.active != Some(fam) {
                return Err(self.err(
                    end_line,
                    format!("segment address {} does not match ActiveIPVersion (set it, or list a daemon, before an empty segment)", a.text),
                ));
            }
            if a.ip.is_unspecified() {
                return Err(self.err(end_line, format!("segment address {} is the unspecified address", a.text)));
            }
            // These two in the original's words, which operators' scripts
            // watch for (its line count starts at 0, and the token is the
            // segment's closing brace).
            // A TOML file's lines are given as they are (its tokens carry
            // the line of the `[[segment]]` header).
            let warn_line = if matches!(self.lx, Source::Tokens { .. }) { end_line + 1 } else { end_line };
            if fam == IpVersion::V6 && !is_multicast(&a.ip) {
                self.c.warnings.push(original_warning(
                    warn_line,
                    &format!("IPv6 segment configured with a non-multicast segment address {}!", a.ip),
                ));
            }
            if a.ip.is_loopback() {
                self.c.warnings.push(original_warning(
                    warn_line,
                    &format!("Segment configured with a loopback address {}!", a.ip),
                ));
            }
            addrs.push(with_port(a.ip, port, a.scope_id));
        }
        let procs: Vec<usize> = (first_proc..self.c.daemons.len()).collect();
        for &i in &procs {
            set_port(&mut self.c.daemons[i].addr, port);
            for ifc in &mut self.c.daemons[i].interfaces {
                set_port(&mut ifc.addr, port);
            }
            let me = &self.c.daemons[i];
            if let Some(j) =
                self.c.daemons[..i].iter().position(|o| o.addr.ip() == me.addr.ip() && o.addr.port() == port)
            {
                return Err(self.err(
                    end_line,
                    format!(
                        "address {1}:{port} of daemon '{0}' is not unique: daemon #{2} ('{3}') has it too",
                        me.name,
                        me.addr.ip(),
                        j,
                        self.c.daemons[j].name
                    ),
                ));
            }
        }
        self.c.segments.push(Segment { port, addrs, daemons: procs });
        Ok(())
    }

    fn daemon(&mut self, seg_index: usize, first_proc: usize) -> R<()> {
        // Daemonname := STRING IPADDR | STRING | IPADDR
        let t = self.next()?;
        let (name, addr, line) = match t {
            Some(Spanned { tok: Tok::Str(s), line }) => {
                let addr = match self.peek()? {
                    Some(Spanned { tok: Tok::IpAddr(_), .. }) => match self.next()? {
                        Some(Spanned { tok: Tok::IpAddr(a), .. }) => Some(a),
                        _ => None,
                    },
                    _ => None,
                };
                (Some(s), addr, line)
            }
            Some(Spanned { tok: Tok::IpAddr(a), line }) => (None, Some(a), line),
            other => return Err(self.syntax(other.as_ref(), "a daemon name and/or address, or '}'")),
        };
        let index = self.c.daemons.len();
        let mut d = self.name_and_addr(name, addr, line)?;
        d.seg_index = seg_index;
        d.index_in_seg = index - first_proc;

        // [ VirtualID = N ]
        if matches!(self.peek()?, Some(Spanned { tok: Tok::Kw(Kw::VirtualId), .. })) {
            self.next()?;
            let (n, l) = self.number_value(Kw::VirtualId)?;
            if n == 0 {
                return Err(self.err(l, "VirtualID must be greater than zero"));
            }
            d.vid = n;
            d.vid_explicit = true;
        }
        // [ { [M|C|D]* addr ... } ]
        if matches!(self.peek()?, Some(Spanned { tok: Tok::OpenBrace, .. })) {
            let open = self.next()?.map(|t| t.line).unwrap_or(line);
            let mut kinds = 0u8;
            let mut guard = 0usize;
            loop {
                guard += 1;
                if guard > 1_000_000 {
                    return Err(self.err(open, "interface block too long"));
                }
                match self.next()? {
                    Some(Spanned { tok: Tok::CloseBrace, line: l }) => {
                        if kinds != 0 {
                            return Err(self.syntax(
                                Some(&Spanned { tok: Tok::CloseBrace, line: l }),
                                "an interface address after its kind letters",
                            ));
                        }
                        break;
                    }
                    Some(Spanned { tok: Tok::IfKind(k), .. }) => kinds |= k,
                    Some(Spanned { tok: Tok::IpAddr(a), line: l }) => {
                        if d.interfaces.len() >= MAX_INTERFACES_PROC {
                            return Err(self.err(l, "more than 10 interfaces for one daemon"));
                        }
                        let k = if kinds == 0 { IfType::ALL } else { IfType(kinds) };
                        d.interfaces.push(Interface { addr: with_port(a.ip, 0, a.scope_id), kinds: k });
                        kinds = 0;
                    }
                    other => return Err(self.syntax(other.as_ref(), "M, C, D, an interface address or '}'")),
                }
            }
            if d.interfaces.is_empty() {
                return Err(self.err(open, "empty interface block: no actual interfaces listed"));
            }
            d.explicit_interfaces = true;
        }
        // [ ; ]
        if matches!(self.peek()?, Some(Spanned { tok: Tok::Semicolon, .. })) {
            self.next()?;
        }

        if index >= MAX_PROCS_RING {
            return Err(self.err(line, "more than 128 daemons in the configuration"));
        }
        if index - first_proc >= MAX_PROCS_SEGMENT {
            return Err(self.err(line, "more than 128 daemons in one segment"));
        }
        if d.vid == 0 {
            // A reload keeps whatever VID the previous load left in this slot.
            d.vid = match self.prev_vids.get(index) {
                Some(&v) if v != 0 => v,
                _ => hash::vid_of_bytes(&d.name_bytes),
            };
        }
        if let Some(o) = self.c.daemons.iter().find(|o| o.vid == d.vid) {
            return Err(self.err(
                line,
                format!(
                    "VirtualID {} of '{}' is also the VirtualID of '{}': give one of them an explicit, different VirtualID",
                    d.vid, d.name, o.name
                ),
            ));
        }
        if d.interfaces.is_empty() {
            d.interfaces.push(Interface { addr: d.addr, kinds: IfType(IfType::ALL.0 | IfType::ANY.0) });
        }
        let ok = d.interfaces.iter().any(|i| {
            let ip = i.addr.ip();
            (ip == d.ip() || (IpVersion::of(&ip) == IpVersion::of(&d.ip()) && ip.is_unspecified()))
                && (i.kinds.is_daemon() || i.kinds.is_any())
        });
        if !ok {
            return Err(self.err(line, "interface block has no daemon entry (D, or no letter) for the daemon's own address or the unspecified address"));
        }
        self.c.daemons.push(d);
        Ok(())
    }

    fn name_and_addr(&mut self, name: Option<Vec<u8>>, addr: Option<AddrTok>, line: u32) -> R<Daemon> {
        if let Some(n) = &name {
            if n.is_empty() {
                return Err(self.err(line, "empty daemon name"));
            }
            if n.ends_with(b";") {
                self.warn(
                    line,
                    "daemon name ends in ';' and keeps it: put white space before a ';' that separates two daemons",
                );
            }
        }
        let (ip, scope) = match (&addr, &name) {
            (Some(a), _) => {
                if a.ip.is_unspecified() {
                    return Err(self.err(line, "a daemon address may not be the unspecified address"));
                }
                (a.ip, a.scope_id)
            }
            (None, Some(n)) => (self.resolve(&String::from_utf8_lossy(n), line)?, 0),
            (None, None) => return Err(self.err(line, "a daemon needs a name, an address or both")),
        };
        self.set_active(IpVersion::of(&ip), line)?;
        if ip.is_multicast() {
            return Err(self.err(line, "a daemon address may not be a multicast address"));
        }
        // The name as the original stores it: at most 19 bytes; one taken
        // from the address text loses any "%interface" part.
        let mut nm: Vec<u8> = match (&name, &addr) {
            (Some(n), _) => n.clone(),
            (None, Some(a)) => a.text.as_bytes().to_vec(),
            (None, None) => Vec::new(),
        };
        nm.truncate(MAX_PROC_NAME - 1);
        if name.is_none() {
            if let Some(p) = nm.iter().position(|&b| b == b'%') {
                nm.truncate(p);
            }
        }
        if nm.is_empty() {
            return Err(self.err(line, "empty daemon name"));
        }
        let shown = String::from_utf8_lossy(&nm).into_owned();
        if let Some(j) = self.c.daemons.iter().position(|o| o.name_bytes == nm) {
            return Err(self.err(line, format!("daemon name '{shown}' is not unique: daemon #{j} has it too")));
        }
        Ok(Daemon {
            name: shown,
            name_bytes: nm,
            addr: with_port(ip, 0, scope),
            vid: 0,
            vid_explicit: false,
            interfaces: Vec::new(),
            explicit_interfaces: false,
            seg_index: 0,
            index_in_seg: 0,
            line,
        })
    }

    /// Name-only daemon entry: first address of the right family from the resolver.
    fn resolve(&self, name: &str, line: u32) -> R<IpAddr> {
        let addrs =
            (self.resolver)(name).map_err(|e| self.err(line, format!("cannot resolve daemon name '{name}': {e}")))?;
        for a in addrs {
            let fam = IpVersion::of(&a);
            if self.active.is_none() || self.active == Some(fam) {
                return Ok(a);
            }
        }
        Err(self.err(
            line,
            format!("the name '{name}' resolves to no address of the active IP version: write the address explicitly or set ActiveIPVersion"),
        ))
    }
}

/// Authentication method names this daemon registers: those of a 5.0.1
/// build with `ENABLE_PASSWORD` (the stock build lacks `PWORD` and ignores it
/// with a warning). `PERMIT` is an access-control policy, not a method.
pub const KNOWN_AUTH_METHODS: &[&str] = &["NULL", "IP", "PWORD"];

fn make_timestamp(custom: Option<&str>, precise: bool) -> Timestamp {
    let mut format = custom.unwrap_or(DEFAULT_TIMESTAMP_FORMAT).to_string();
    let mut precise = precise;
    if precise && !(format.ends_with("%s") || format.ends_with("%S")) {
        if format.len() + 3 <= MAX_TS_FORMAT {
            format.push_str(" %s");
        } else {
            precise = false;
        }
    }
    Timestamp { format, precise }
}
