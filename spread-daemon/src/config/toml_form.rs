//! The TOML form of the configuration (`docs/config.md`): every `spread.conf`
//! keyword under a snake_case key, segments as `[[segment]]` tables.
//!
//! A TOML file is not checked by a second copy of the rules: it is turned
//! into the very tokens the `spread.conf` scanner would have produced (each
//! with its TOML line) and fed to the same parser, so both forms go through
//! the same semantic checks, warnings, VIDs and configuration hash. Only the
//! TOML syntax and the value types are checked here.
//!
//! [`convert_bytes`] goes the other way: it parses a file (either form) and
//! writes the TOML that loads to the same [`Config`].

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned as S;

use super::lexer::{AddrTok, Kw, Lexer, Spanned, Tok};
use super::parser::{self, Resolver, Source, Written};
use super::{flags, Config, ConfigError, IfType, IpVersion, PortReuse, Priority};

/// Largest number a `spread.conf` number token can hold (nine digits).
const MAX_NUMBER: i64 = 999_999_999;

/// `spread.conf` keyword → TOML key, in the scanner's keyword order.
pub const KEYS: &[(&str, &str)] = &[
    ("Spread_Segment", "segment"),
    ("EventLogFile", "event_log_file"),
    ("EventTimeStamp", "event_timestamp"),
    ("EventPreciseTimeStamp", "event_precise_timestamp"),
    ("EventPriority", "event_priority"),
    ("EventLogFormat", "event_log_format"),
    ("DebugFlags", "debug_flags"),
    ("DangerousMonitor", "dangerous_monitor"),
    ("SocketPortReuse", "socket_port_reuse"),
    ("RuntimeDir", "runtime_dir"),
    ("DaemonUser", "daemon_user"),
    ("DaemonGroup", "daemon_group"),
    ("RequiredAuthMethods", "required_auth_methods"),
    ("AllowedAuthMethods", "allowed_auth_methods"),
    ("AccessControlPolicy", "access_control_policy"),
    ("MaxSessionMessages", "max_session_messages"),
    ("MaxSessionBytes", "max_session_bytes"),
    ("MaxQueuedBytes", "max_queued_bytes"),
    ("ActiveIPVersion", "active_ip_version"),
    ("Window", "window"),
    ("PersonalWindow", "personal_window"),
    ("AcceleratedRing", "accelerated_ring"),
    ("AcceleratedWindow", "accelerated_window"),
    ("TokenTimeout", "token_timeout"),
    ("HurryTimeout", "hurry_timeout"),
    ("AliveTimeout", "alive_timeout"),
    ("JoinTimeout", "join_timeout"),
    ("RepTimeout", "rep_timeout"),
    ("SegTimeout", "seg_timeout"),
    ("GatherTimeout", "gather_timeout"),
    ("FormTimeout", "form_timeout"),
    ("LookupTimeout", "lookup_timeout"),
    ("VirtualID", "virtual_id"),
    ("WideAreaNetwork", "wide_area_network"),
    ("ExcludeSegAddrsFromHash", "exclude_seg_addrs_from_hash"),
    ("IgnoreMulticastJoinErrors", "ignore_multicast_join_errors"),
    ("MetricsAddress", "metrics_address"),
];

/// The TOML key of a keyword.
fn key(kw: Kw) -> &'static str {
    let t = kw.text();
    KEYS.iter().find(|(k, _)| *k == t).map(|(_, v)| *v).unwrap_or("?")
}

type Str = Option<S<String>>;
type Num = Option<S<i64>>;
type Bool = Option<S<bool>>;
type List = Option<S<Vec<S<String>>>>;

/// The whole file. Field order = keyword order (tokens are generated in it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    event_log_file: Str,
    event_timestamp: Option<S<toml::Value>>,
    event_precise_timestamp: Bool,
    event_priority: Str,
    event_log_format: Str,
    debug_flags: List,
    dangerous_monitor: Bool,
    socket_port_reuse: Str,
    runtime_dir: Str,
    daemon_user: Str,
    daemon_group: Str,
    required_auth_methods: List,
    allowed_auth_methods: List,
    access_control_policy: Str,
    max_session_messages: Num,
    max_session_bytes: Num,
    max_queued_bytes: Num,
    active_ip_version: Str,
    window: Num,
    personal_window: Num,
    accelerated_ring: Bool,
    accelerated_window: Num,
    token_timeout: Num,
    hurry_timeout: Num,
    alive_timeout: Num,
    join_timeout: Num,
    rep_timeout: Num,
    seg_timeout: Num,
    gather_timeout: Num,
    form_timeout: Num,
    lookup_timeout: Num,
    wide_area_network: Bool,
    exclude_seg_addrs_from_hash: Bool,
    ignore_multicast_join_errors: Bool,
    metrics_address: Str,
    #[serde(default)]
    segment: Vec<S<SegmentT>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentT {
    port: Num,
    addresses: S<Vec<S<String>>>,
    #[serde(default)]
    daemon: Vec<S<DaemonT>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonT {
    name: Str,
    address: Str,
    virtual_id: Num,
    interface: Option<S<Vec<S<InterfaceT>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceT {
    address: S<String>,
    kinds: Str,
}

/// Byte offset → 1-based line and column.
struct Lines<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    fn line(&self, off: usize) -> u32 {
        self.starts.partition_point(|&s| s <= off) as u32
    }

    fn line_col(&self, off: usize) -> (u32, u32) {
        let off = off.min(self.text.len());
        let line = self.line(off);
        let start = self.starts[line as usize - 1];
        let col = self.text.get(start..off).map(|s| s.chars().count()).unwrap_or(off - start) + 1;
        (line, col as u32)
    }

    /// The last line with anything on it (end-of-file errors).
    fn last_line(&self) -> u32 {
        let end = self.text.trim_end().len();
        self.line(end.saturating_sub(1)).max(1)
    }
}

struct Gen<'t> {
    file: String,
    lines: Lines<'t>,
    toks: Vec<Spanned>,
}

type R<T> = Result<T, ConfigError>;

impl Gen<'_> {
    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> ConfigError {
        let (line, column) = self.lines.line_col(span.start);
        ConfigError { file: self.file.clone(), line, column, message: msg.into() }
    }

    fn line(&self, span: &Range<usize>) -> u32 {
        self.lines.line(span.start)
    }

    fn push(&mut self, tok: Tok, line: u32) {
        self.toks.push(Spanned { tok, line });
    }

    fn kw_eq(&mut self, kw: Kw, line: u32) {
        self.push(Tok::Kw(kw), line);
        self.push(Tok::Equals, line);
    }

    fn string(&mut self, kw: Kw, v: &Str) {
        if let Some(v) = v {
            let l = self.line(&v.span());
            self.kw_eq(kw, l);
            self.push(str_tok(v.get_ref()), l);
        }
    }

    fn number(&mut self, kw: Kw, v: &Num) -> R<()> {
        if let Some(v) = v {
            let n = self.number_tok(key(kw), v)?;
            let l = self.line(&v.span());
            self.kw_eq(kw, l);
            self.push(n, l);
        }
        Ok(())
    }

    fn number_tok(&self, what: &str, v: &S<i64>) -> R<Tok> {
        let n = *v.get_ref();
        if !(0..=MAX_NUMBER).contains(&n) {
            return Err(self.err(v.span(), format!("{what}: {n} is out of range (0 to {MAX_NUMBER})")));
        }
        Ok(Tok::Number(n as u32))
    }

    fn boolean(&mut self, kw: Kw, v: &Bool) {
        if let Some(v) = v {
            let l = self.line(&v.span());
            self.kw_eq(kw, l);
            self.push(Tok::Bool(*v.get_ref()), l);
        }
    }

    /// A flag keyword without a value, written for `key = true`.
    fn flag(&mut self, kw: Kw, v: &Bool) {
        if let Some(v) = v {
            if *v.get_ref() {
                let l = self.line(&v.span());
                self.push(Tok::Kw(kw), l);
            }
        }
    }

    fn choice<T: Copy>(&mut self, kw: Kw, v: &Str, table: &[(&str, T)], make: fn(T) -> Tok, nocase: bool) -> R<()> {
        if let Some(v) = v {
            let s = v.get_ref();
            let found = table.iter().find(|(n, _)| if nocase { n.eq_ignore_ascii_case(s) } else { n == s });
            let Some((_, t)) = found else {
                let names: Vec<String> = table.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                return Err(self.err(v.span(), format!("{}: \"{s}\" is not one of {}", key(kw), names.join(", "))));
            };
            let l = self.line(&v.span());
            self.kw_eq(kw, l);
            self.push(make(*t), l);
        }
        Ok(())
    }

    fn debug_flags(&mut self, v: &List) -> R<()> {
        let Some(v) = v else { return Ok(()) };
        let l = self.line(&v.span());
        self.kw_eq(Kw::DebugFlags, l);
        self.push(Tok::OpenBrace, l);
        for f in v.get_ref() {
            let fl = self.line(&f.span());
            let s = f.get_ref().trim();
            let (neg, name) = match s.strip_prefix('!') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, s),
            };
            let Some((_, mask)) = flags::NAMES.iter().find(|(n, _)| *n == name) else {
                let names: Vec<&str> = flags::NAMES.iter().map(|(n, _)| *n).collect();
                return Err(self.err(
                    f.span(),
                    format!(
                        "debug_flags: unknown flag \"{}\" (the names are {}, each may be preceded by '!')",
                        f.get_ref(),
                        names.join(", ")
                    ),
                ));
            };
            if neg {
                self.push(Tok::Bang, fl);
            }
            self.push(Tok::Flag(*mask), fl);
        }
        self.push(Tok::CloseBrace, l);
        Ok(())
    }

    fn auth(&mut self, kw: Kw, v: &List) -> R<()> {
        let Some(v) = v else { return Ok(()) };
        let mut names = Vec::new();
        for m in v.get_ref() {
            let s = m.get_ref();
            if s.is_empty() || s.contains(char::is_whitespace) {
                return Err(self.err(m.span(), format!("{}: \"{s}\" is not a method name", key(kw))));
            }
            names.push(s.as_str());
        }
        let l = self.line(&v.span());
        self.kw_eq(kw, l);
        self.push(Tok::Str(names.join(" ").into_bytes()), l);
        Ok(())
    }

    fn timestamp(&mut self, v: &Option<S<toml::Value>>) -> R<()> {
        let Some(v) = v else { return Ok(()) };
        let l = self.line(&v.span());
        match v.get_ref() {
            toml::Value::Boolean(false) => {}
            toml::Value::Boolean(true) => self.push(Tok::Kw(Kw::EventTimeStamp), l),
            toml::Value::String(s) => {
                self.kw_eq(Kw::EventTimeStamp, l);
                self.push(str_tok(s), l);
            }
            _ => {
                return Err(self.err(v.span(), "event_timestamp: expected true, false or a strftime format string"));
            }
        }
        Ok(())
    }

    /// One address as the scanner reads it: the whole text must be one
    /// address token (`port_ok`: `addr:port` is a different token, refused).
    fn address(&self, what: &str, v: &S<String>) -> R<AddrTok> {
        let s = v.get_ref();
        let mut lx = Lexer::new(s.as_bytes());
        let first = lx.next_token();
        let rest = lx.next_token();
        match (first, rest) {
            (Ok(Some(Spanned { tok: Tok::IpAddr(a), .. })), Ok(None)) if a.text == *s => Ok(a),
            (Ok(Some(Spanned { tok: Tok::IpPort(_), .. })), Ok(None)) => Err(self.err(
                v.span(),
                format!("{what}: \"{s}\" has a port: write the address alone (a segment's port is its `port` key)"),
            )),
            _ => Err(self.err(v.span(), format!("{what}: \"{s}\" is not an IPv4 or IPv6 address"))),
        }
    }

    /// `address:port` (`[v6]:port`): the scanner's address-with-port token.
    fn metrics_address(&mut self, v: &Str) -> R<()> {
        let Some(v) = v else { return Ok(()) };
        let s = v.get_ref();
        let mut lx = Lexer::new(s.as_bytes());
        let tok = match (lx.next_token(), lx.next_token()) {
            (Ok(Some(Spanned { tok: t @ Tok::IpPort(_), .. })), Ok(None)) => t,
            _ => {
                return Err(self.err(
                    v.span(),
                    format!("metrics_address: \"{s}\" is not an address with a port, such as \"127.0.0.1:9464\" or \"[::1]:9464\""),
                ))
            }
        };
        let l = self.line(&v.span());
        self.kw_eq(Kw::MetricsAddress, l);
        self.push(tok, l);
        Ok(())
    }

    fn segment(&mut self, seg: &S<SegmentT>) -> R<()> {
        let sl = self.line(&seg.span());
        let s = seg.get_ref();
        let port = match &s.port {
            Some(p) => {
                let n = *p.get_ref();
                if !(1..=65535).contains(&n) {
                    return Err(self.err(p.span(), format!("port: {n} is not a port number (1 to 65535)")));
                }
                n as u16
            }
            None => 0,
        };
        let addrs = s.addresses.get_ref();
        if addrs.is_empty() {
            return Err(self.err(s.addresses.span(), "addresses: a segment needs at least one address"));
        }
        self.push(Tok::Kw(Kw::Segment), sl);
        for (i, a) in addrs.iter().enumerate() {
            let mut t = self.address("addresses", a)?;
            let l = self.line(&a.span());
            if i == 0 && port != 0 {
                // The text as spread.conf writes it (messages quote it).
                t.text = match t.ip {
                    IpAddr::V4(_) => format!("{}:{port}", t.text),
                    IpAddr::V6(_) => format!("[{}]:{port}", t.text),
                };
                t.port = port;
                self.push(Tok::IpPort(t), l);
            } else {
                self.push(Tok::IpAddr(t), l);
            }
        }
        self.push(Tok::OpenBrace, sl);
        for d in &s.daemon {
            self.daemon(d)?;
        }
        // The parser reports the segment's checks at its closing brace.
        self.push(Tok::CloseBrace, sl);
        Ok(())
    }

    fn daemon(&mut self, d: &S<DaemonT>) -> R<()> {
        let dm = d.get_ref();
        // The daemon's line: that of its name (else its address), as the
        // line of its first token in spread.conf.
        let dl = match (&dm.name, &dm.address) {
            (Some(n), _) => self.line(&n.span()),
            (None, Some(a)) => self.line(&a.span()),
            (None, None) => return Err(self.err(d.span(), "daemon: a daemon needs a name, an address or both")),
        };
        if let Some(n) = &dm.name {
            self.push(str_tok(n.get_ref()), dl);
        }
        if let Some(a) = &dm.address {
            let t = self.address("address", a)?;
            self.push(Tok::IpAddr(t), dl);
        }
        if let Some(v) = &dm.virtual_id {
            let n = self.number_tok("virtual_id", v)?;
            let l = self.line(&v.span());
            self.kw_eq(Kw::VirtualId, l);
            self.push(n, l);
        }
        if let Some(list) = &dm.interface {
            let ll = self.line(&list.span());
            self.push(Tok::OpenBrace, ll);
            for i in list.get_ref() {
                let il = self.line(&i.span());
                let it = i.get_ref();
                if let Some(k) = &it.kinds {
                    let ks = k.get_ref();
                    if ks.is_empty() || !ks.chars().all(|c| matches!(c, 'M' | 'C' | 'D')) {
                        return Err(self.err(
                            k.span(),
                            format!(
                                "kinds: \"{ks}\" is not made of the letters M, C and D (leave kinds out for all three)"
                            ),
                        ));
                    }
                    for c in ks.chars() {
                        let bit = match c {
                            'M' => IfType::MONITOR.0,
                            'C' => IfType::CLIENT.0,
                            _ => IfType::DAEMON.0,
                        };
                        self.push(Tok::IfKind(bit), il);
                    }
                }
                let t = self.address("interface address", &it.address)?;
                self.push(Tok::IpAddr(t), il);
            }
            self.push(Tok::CloseBrace, ll);
        }
        // Ends the entry: a name-only daemon never takes the next entry's address.
        self.push(Tok::Semicolon, dl);
        Ok(())
    }

    fn file(&mut self, f: &File) -> R<()> {
        self.string(Kw::EventLogFile, &f.event_log_file);
        self.timestamp(&f.event_timestamp)?;
        self.flag(Kw::EventPreciseTimeStamp, &f.event_precise_timestamp);
        self.choice(Kw::EventPriority, &f.event_priority, PRIORITIES, Tok::Prio, false)?;
        self.string(Kw::EventLogFormat, &f.event_log_format);
        self.debug_flags(&f.debug_flags)?;
        self.boolean(Kw::DangerousMonitor, &f.dangerous_monitor);
        self.choice(Kw::SocketPortReuse, &f.socket_port_reuse, PORT_REUSE, Tok::Trival, true)?;
        self.string(Kw::RuntimeDir, &f.runtime_dir);
        self.string(Kw::DaemonUser, &f.daemon_user);
        self.string(Kw::DaemonGroup, &f.daemon_group);
        self.auth(Kw::RequiredAuthMethods, &f.required_auth_methods)?;
        self.auth(Kw::AllowedAuthMethods, &f.allowed_auth_methods)?;
        self.string(Kw::AccessControlPolicy, &f.access_control_policy);
        self.number(Kw::MaxSessionMessages, &f.max_session_messages)?;
        self.number(Kw::MaxSessionBytes, &f.max_session_bytes)?;
        self.number(Kw::MaxQueuedBytes, &f.max_queued_bytes)?;
        self.string(Kw::ActiveIpVersion, &f.active_ip_version);
        self.number(Kw::Window, &f.window)?;
        self.number(Kw::PersonalWindow, &f.personal_window)?;
        self.boolean(Kw::AcceleratedRing, &f.accelerated_ring);
        self.number(Kw::AcceleratedWindow, &f.accelerated_window)?;
        self.number(Kw::TokenTimeout, &f.token_timeout)?;
        self.number(Kw::HurryTimeout, &f.hurry_timeout)?;
        self.number(Kw::AliveTimeout, &f.alive_timeout)?;
        self.number(Kw::JoinTimeout, &f.join_timeout)?;
        self.number(Kw::RepTimeout, &f.rep_timeout)?;
        self.number(Kw::SegTimeout, &f.seg_timeout)?;
        self.number(Kw::GatherTimeout, &f.gather_timeout)?;
        self.number(Kw::FormTimeout, &f.form_timeout)?;
        self.number(Kw::LookupTimeout, &f.lookup_timeout)?;
        self.boolean(Kw::WideAreaNetwork, &f.wide_area_network);
        self.boolean(Kw::ExcludeSegAddrsFromHash, &f.exclude_seg_addrs_from_hash);
        self.boolean(Kw::IgnoreMulticastJoinErrors, &f.ignore_multicast_join_errors);
        self.metrics_address(&f.metrics_address)?;
        // Segments after every parameter: ActiveIPVersion is known before the
        // first segment wherever it was written.
        for s in &f.segment {
            self.segment(s)?;
        }
        Ok(())
    }
}

/// `EventPriority` names (`DEBUG` and the scanner's `pDEBUG` both work).
const PRIORITIES: &[(&str, Priority)] = &[
    ("DEBUG", Priority::Debug),
    ("pDEBUG", Priority::Debug),
    ("INFO", Priority::Info),
    ("WARNING", Priority::Warning),
    ("ERROR", Priority::Error),
    ("CRITICAL", Priority::Critical),
    ("FATAL", Priority::Fatal),
];

const PORT_REUSE: &[(&str, u8)] = &[("on", 1), ("off", 0), ("auto", 2)];

/// A string token: the scanner's copy stops at a NUL, and so does this one.
fn str_tok(s: &str) -> Tok {
    let b = s.as_bytes();
    let end = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    Tok::Str(b[..end].to_vec())
}

/// `true` when `path` names a TOML file (its name ends in `.toml`, any case).
pub fn is_toml_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

/// TOML text → the parser's tokens (or the first TOML error, with its line
/// and column).
fn tokens(text: &str, file: &str) -> R<(Vec<Spanned>, u32)> {
    let lines = Lines::new(text);
    let f: File = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let (line, column) = e.span().map(|s| lines.line_col(s.start)).unwrap_or((0, 0));
            let message = e.message().trim_end().replace("expected i64", "expected an integer");
            return Err(ConfigError { file: file.to_string(), line, column, message });
        }
    };
    let mut g = Gen { file: file.to_string(), lines, toks: Vec::new() };
    g.file(&f)?;
    let eof = g.lines.last_line();
    Ok((g.toks, eof))
}

fn parse_recorded(bytes: &[u8], file: &str, previous: Option<&Config>, resolver: Resolver<'_>) -> R<(Config, Written)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = Lines::new(&String::from_utf8_lossy(&bytes[..e.valid_up_to()])).line_col(e.valid_up_to());
        ConfigError { file: file.to_string(), line, column, message: "a TOML file must be UTF-8".to_string() }
    })?;
    let (toks, eof_line) = tokens(text, file)?;
    parser::parse_source(Source::Tokens { toks: toks.into_iter(), line: 1, eof_line }, file, previous, resolver)
}

pub(crate) fn parse_bytes(bytes: &[u8], file: &str, previous: Option<&Config>, resolver: Resolver<'_>) -> R<Config> {
    parse_recorded(bytes, file, previous, resolver).map(|(c, _)| c)
}

/// Parse the TOML form; `file_label` names it in messages.
pub fn parse_toml_str(text: &str, file_label: &str) -> R<Config> {
    parse_bytes(text.as_bytes(), file_label, None, &parser::system_resolver)
}

/// [`parse_toml_str`] with a given resolver for name-only daemons.
pub fn parse_toml_str_with_resolver(
    text: &str,
    file_label: &str,
    resolver: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
) -> R<Config> {
    parse_bytes(text.as_bytes(), file_label, None, resolver)
}

/// The TOML form read for a reload, with the rules of
/// [`super::parse_str_reload`].
pub fn parse_toml_str_reload(text: &str, file_label: &str, previous: &Config) -> R<Config> {
    parse_bytes(text.as_bytes(), file_label, Some(previous), &parser::system_resolver)
}

/// `spread --convert-config`: the TOML form of a configuration file
/// (`spread.conf` syntax, or TOML when [`is_toml_path`]).
pub fn convert_file(path: &Path) -> R<String> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ConfigError::new(&label, 0, format!("cannot read: {e}")))?;
    convert_bytes(&bytes, &label, &parser::system_resolver)
}

/// The TOML form of a configuration's text: `spread.conf` syntax, or TOML
/// when `file_label` ends in `.toml`. Name-only daemons are resolved with
/// `resolver` and written with their address.
pub fn convert_bytes(
    bytes: &[u8],
    file_label: &str,
    resolver: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
) -> R<String> {
    let (c, w) = if is_toml_path(Path::new(file_label)) {
        parse_recorded(bytes, file_label, None, resolver)?
    } else {
        parser::parse_source(Source::Text(Lexer::new(bytes)), file_label, None, resolver)?
    };
    emit(&c, &w, file_label)
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| q(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A debug mask as flag names: set bits, or `ALL` less the cleared ones.
fn flag_names(mask: u32) -> Vec<String> {
    let named: Vec<(&str, u32)> =
        flags::NAMES.iter().copied().filter(|&(_, m)| m != flags::ALL && m != flags::NONE).collect();
    let known = named.iter().fold(0, |a, (_, m)| a | m);
    if mask & !known != 0 {
        let mut v = vec!["ALL".to_string()];
        v.extend(named.iter().filter(|(_, m)| mask & m == 0).map(|(n, _)| format!("!{n}")));
        v
    } else {
        named.iter().filter(|(_, m)| mask & m != 0).map(|(n, _)| n.to_string()).collect()
    }
}

/// An address as the scanner reads it back (IPv6 scope as `%interface`).
fn addr_text(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => {
            let mut s = v6.ip().to_string();
            if s.contains('.') {
                // The scanner has no dotted tail: all eight groups in hex.
                let g = v6.ip().segments();
                s = g.iter().map(|x| format!("{x:x}")).collect::<Vec<_>>().join(":");
            }
            if v6.scope_id() != 0 {
                if let Some(n) = if_name(v6.scope_id()) {
                    s.push('%');
                    s.push_str(&n);
                }
            }
            s
        }
    }
}

fn if_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE + 1];
    // SAFETY: the buffer holds IF_NAMESIZE bytes as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}

fn kinds_text(k: IfType) -> String {
    let mut s = String::new();
    if k.is_monitor() {
        s.push('M');
    }
    if k.is_client() {
        s.push('C');
    }
    if k.is_daemon() {
        s.push('D');
    }
    s
}

/// The TOML that loads to `c`, given what its file wrote.
fn emit(c: &Config, w: &Written, label: &str) -> R<String> {
    let mut o = String::new();
    o.push_str("# The TOML form of the spread configuration (docs/config.md),\n");
    o.push_str(&format!("# converted from {label} by spread --convert-config.\n"));
    let mut params = String::new();
    for &(word, _) in KEYS {
        let kw = match super::lexer::KEYWORDS.iter().find(|(k, _)| *k == word) {
            Some(&(_, kw)) if w.has(kw) => kw,
            _ => continue,
        };
        let v = match kw {
            Kw::EventLogFile => q(w.event_log_file.as_deref().unwrap_or_default()),
            // A custom format, unless a bare EventTimeStamp came after it.
            Kw::EventTimeStamp => match &c.ts_custom_state {
                Some(f) if c.event_timestamp.as_ref().is_some_and(|t| t.format.starts_with(f.as_str())) => q(f),
                _ => "true".to_string(),
            },
            Kw::EventPreciseTimeStamp => "true".to_string(),
            Kw::EventLogFormat => q(match c.event_log_format {
                super::LogFormat::Text => "text",
                super::LogFormat::Json => "json",
            }),
            Kw::EventPriority => q(match c.event_priority {
                Priority::Debug => "DEBUG",
                Priority::Info => "INFO",
                Priority::Warning => "WARNING",
                Priority::Error => "ERROR",
                Priority::Critical => "CRITICAL",
                Priority::Fatal => "FATAL",
            }),
            Kw::DebugFlags => list(&flag_names(c.debug_flags)),
            Kw::DangerousMonitor => c.dangerous_monitor.to_string(),
            Kw::SocketPortReuse => q(match c.socket_port_reuse {
                PortReuse::On => "on",
                PortReuse::Off => "off",
                PortReuse::Auto => "auto",
            }),
            // An empty value was ignored (with a warning): write it again.
            Kw::RuntimeDir => q(if c.runtime_dir_set { &c.runtime_dir } else { "" }),
            Kw::DaemonUser => q(if c.daemon_user_set { &c.daemon_user } else { "" }),
            Kw::DaemonGroup => q(if c.daemon_group_set { &c.daemon_group } else { "" }),
            Kw::RequiredAuthMethods => list(&c.auth.required),
            Kw::AllowedAuthMethods => list(&c.auth.allowed),
            Kw::AccessControlPolicy => q(&c.access_control_policy),
            Kw::MaxSessionMessages => c.max_session_messages.to_string(),
            Kw::MaxSessionBytes => c.max_session_bytes.to_string(),
            Kw::MaxQueuedBytes => c.max_queued_bytes.to_string(),
            Kw::ActiveIpVersion => q(match c.active_ip_version {
                IpVersion::V4 => "IPv4",
                IpVersion::V6 => "IPv6",
            }),
            Kw::Window => c.window.to_string(),
            Kw::PersonalWindow => c.personal_window.to_string(),
            Kw::AcceleratedRing => c.accelerated_ring_setting.unwrap_or(false).to_string(),
            Kw::AcceleratedWindow => c.accelerated_window.to_string(),
            Kw::TokenTimeout => opt(c.timeouts.token),
            Kw::HurryTimeout => opt(c.timeouts.hurry),
            Kw::AliveTimeout => opt(c.timeouts.alive),
            Kw::JoinTimeout => opt(c.timeouts.join),
            Kw::RepTimeout => opt(c.timeouts.rep),
            Kw::SegTimeout => opt(c.timeouts.seg),
            Kw::GatherTimeout => opt(c.timeouts.gather),
            Kw::FormTimeout => opt(c.timeouts.form),
            Kw::LookupTimeout => opt(c.timeouts.lookup),
            Kw::WideAreaNetwork => c.wide_area_network_setting.unwrap_or(false).to_string(),
            Kw::ExcludeSegAddrsFromHash => c.exclude_seg_addrs_from_hash.to_string(),
            Kw::IgnoreMulticastJoinErrors => c.ignore_multicast_join_errors.to_string(),
            Kw::MetricsAddress => match &c.metrics_address {
                Some(a @ SocketAddr::V4(_)) => q(&format!("{}:{}", addr_text(a), a.port())),
                Some(a) => q(&format!("[{}]:{}", addr_text(a), a.port())),
                None => continue,
            },
            Kw::Segment | Kw::VirtualId => continue,
        };
        params.push_str(&format!("{} = {v}\n", key(kw)));
    }
    if !params.is_empty() {
        o.push('\n');
        o.push_str(&params);
    }
    for s in &c.segments {
        o.push_str("\n[[segment]]\n");
        o.push_str(&format!("port = {}\n", s.port));
        let addrs: Vec<String> = s.addrs.iter().map(addr_text).collect();
        o.push_str(&format!("addresses = {}\n", list(&addrs)));
        if s.daemons.is_empty() {
            continue;
        }
        o.push_str("daemon = [\n");
        for &i in &s.daemons {
            let d = &c.daemons[i];
            let addr = addr_text(&d.addr);
            // Only a name can give the unspecified address (written, it is
            // refused): such a daemon is written by its name alone again.
            let by_name = d.addr.ip().is_unspecified();
            let mut fields = Vec::new();
            if d.name_bytes != addr.as_bytes() || by_name {
                let name = std::str::from_utf8(&d.name_bytes).map_err(|_| {
                    ConfigError::new(
                        label,
                        d.line,
                        format!("daemon name '{}' is not valid UTF-8: TOML cannot spell it", d.name),
                    )
                })?;
                fields.push(format!("name = {}", q(name)));
            }
            if !by_name {
                fields.push(format!("address = {}", q(&addr)));
            }
            if d.vid_explicit {
                fields.push(format!("virtual_id = {}", d.vid));
            }
            if d.explicit_interfaces {
                let ifs: Vec<String> = d
                    .interfaces
                    .iter()
                    .map(|i| {
                        let a = q(&addr_text(&i.addr));
                        if i.kinds == IfType::ALL {
                            format!("{{ address = {a} }}")
                        } else {
                            format!("{{ address = {a}, kinds = {} }}", q(&kinds_text(i.kinds)))
                        }
                    })
                    .collect();
                fields.push(format!("interface = [{}]", ifs.join(", ")));
            }
            o.push_str(&format!("    {{ {} }},\n", fields.join(", ")));
        }
        o.push_str("]\n");
    }
    Ok(o)
}

fn opt(v: Option<u32>) -> String {
    v.unwrap_or(0).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_keyword_has_a_toml_key() {
        for (word, _) in super::super::lexer::KEYWORDS {
            let found = KEYS.iter().filter(|(k, _)| k == word).count();
            assert_eq!(found, 1, "{word}: add its TOML key to KEYS, File and docs/config.md");
        }
        assert_eq!(KEYS.len(), super::super::lexer::KEYWORDS.len());
    }

    #[test]
    fn lines_and_columns() {
        let l = Lines::new("ab\ncdé\n\nx\n  \n");
        assert_eq!(l.line_col(0), (1, 1));
        assert_eq!(l.line_col(3), (2, 1));
        assert_eq!(l.line_col(7), (2, 4));
        assert_eq!(l.line_col(9), (4, 1));
        assert_eq!(l.last_line(), 4);
    }

    #[test]
    fn debug_masks_as_names() {
        assert_eq!(flag_names(flags::DEFAULT), ["EXIT", "PRINT", "CONFIGURATION"]);
        assert_eq!(flag_names(flags::ALL), ["ALL"]);
        assert_eq!(flag_names(flags::ALL & !flags::EVENTS), ["ALL", "!EVENTS"]);
        assert!(flag_names(0).is_empty());
    }
}
