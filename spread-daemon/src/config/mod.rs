//! `spread.conf`: the 5.0.1 grammar, defaults, validation, VirtualIDs and the
//! configuration hash (daemon spec §1).
//!
//! * [`parse_str`] / [`load`] build a [`Config`] from the original file format;
//! * [`default_config`] is what `spread` runs when no file is found: the
//!   sample's minimal file, one daemon `localhost` on 127.0.0.1, port 4803;
//! * [`Config::find_me`] picks the daemon this process is (by `-n` or by a
//!   local address);
//! * [`Config::hash`] and [`Daemon::vid`] are byte-exact with 5.0.1;
//! * [`parse_str_reload`] and [`reload_outcome`] reproduce what a RELOAD does
//!   (§1.9), including the slot-VID and accelerated-ring quirks;
//! * [`parse_str_with_resolver`] with [`offline_resolver`] parses without any
//!   name-service traffic (tests).
//! * [`parse_toml_str`] and [`load`] of a `.toml` file read the TOML form
//!   (`toml_form.rs`, `docs/config.md`) through the same parser;
//!   [`convert_file`] writes a file's TOML form (`spread --convert-config`).
//!
//! `tests/config_diff.rs` holds 137 files whose outcome, VIDs and hash were
//! recorded from the 5.0.1 daemon; this parser agrees on all of them.
//!
//! Known differences from 5.0.1:
//! * line numbers in messages are 1-based and count newlines inside quoted
//!   strings (the original's start at 0 and skip those);
//! * parser warnings are collected in [`Config::warnings`] instead of printed;
//!   a stray `[`, `]`, vertical tab or form feed is skipped with a warning
//!   (the original echoes it to its output);
//! * a reload keeps the previous values of parameters the new file does not
//!   set, like the original, but the caller decides what to re-apply.

pub mod hash;
mod lexer;
mod local;
mod parser;
mod reload;
mod toml_form;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

pub use local::local_addresses;
pub use reload::{check as check_reload, reload_outcome, Accepted as ReloadAccepted, ReloadOutcome};
pub use toml_form::{
    convert_bytes, convert_file, is_toml_path, parse_toml_str, parse_toml_str_reload, parse_toml_str_with_resolver,
    KEYS as TOML_KEYS,
};

/// `DEFAULT_SPREAD_PORT`.
pub const DEFAULT_PORT: u16 = 4803;
/// `MAX_PROC_NAME` (20, so 19 usable bytes).
pub const MAX_PROC_NAME: usize = 20;
pub const MAX_SEGMENTS: usize = 20;
pub const MAX_PROCS_SEGMENT: usize = 128;
pub const MAX_PROCS_RING: usize = 128;
pub const MAX_ADDRS_SEGMENT: usize = 5;
pub const MAX_INTERFACES_PROC: usize = 10;
pub const DEFAULT_WINDOW: u32 = 160;
pub const DEFAULT_PERSONAL_WINDOW: u32 = 20;
pub const DEFAULT_ACCELERATED_WINDOW: u32 = 15;
pub const DEFAULT_MAX_SESSION_MESSAGES: u32 = 1000;
/// `SP_RUNTIME_DIR`.
pub const DEFAULT_RUNTIME_DIR: &str = "/var/run/spread";
/// `SP_USER` / `SP_GROUP`.
pub const DEFAULT_USER: &str = "spread";
pub const DEFAULT_GROUP: &str = "spread";
/// The log timestamp format used when `EventTimeStamp` has no value.
pub const DEFAULT_TIMESTAMP_FORMAT: &str = "%m/%d/%y %H:%M:%S";

/// The text of [`default_config`]: the minimal file of the original sample.
pub const DEFAULT_CONFIG_TEXT: &str = "Spread_Segment 127.0.0.255:4803 {\n\tlocalhost\t127.0.0.1\n}\n";

/// Debug-flag (alarm type) mask bits, as written in `DebugFlags = { … }`.
pub mod flags {
    pub const EXIT: u32 = 0x1;
    pub const DATA_LINK: u32 = 0x2;
    pub const MEMORY: u32 = 0x4;
    pub const EVENTS: u32 = 0x8;
    pub const PRINT: u32 = 0x10;
    pub const NETWORK: u32 = 0x20;
    pub const PROTOCOL: u32 = 0x40;
    pub const SESSION: u32 = 0x80;
    pub const CONFIGURATION: u32 = 0x100;
    pub const MEMBERSHIP: u32 = 0x200;
    pub const FLOW_CONTROL: u32 = 0x400;
    pub const STATUS: u32 = 0x800;
    pub const DEBUG: u32 = 0x1000;
    pub const GROUPS: u32 = 0x2000;
    pub const SKIPLIST: u32 = 0x20_0000;
    pub const ACM: u32 = 0x40_0000;
    pub const SECURITY: u32 = 0x80_0000;
    pub const ALL: u32 = 0xffff_ffff;
    pub const NONE: u32 = 0;
    /// The mask in force when the file has no `DebugFlags`: the library's
    /// initial PRINT|EXIT plus CONFIGURATION added by the daemon's `main`.
    pub const DEFAULT: u32 = PRINT | EXIT | CONFIGURATION;

    /// Keyword → bit, in the lexer's order.
    pub const NAMES: &[(&str, u32)] = &[
        ("ALL", ALL),
        ("EXIT", EXIT),
        ("DATA_LINK", DATA_LINK),
        ("MEMORY", MEMORY),
        ("EVENTS", EVENTS),
        ("PRINT", PRINT),
        ("NETWORK", NETWORK),
        ("PROTOCOL", PROTOCOL),
        ("SESSION", SESSION),
        ("CONFIGURATION", CONFIGURATION),
        ("MEMBERSHIP", MEMBERSHIP),
        ("FLOW_CONTROL", FLOW_CONTROL),
        ("STATUS", STATUS),
        ("DEBUG", DEBUG),
        ("GROUPS", GROUPS),
        ("SKIPLIST", SKIPLIST),
        ("ACM", ACM),
        ("SECURITY", SECURITY),
        ("NONE", NONE),
    ];
}

/// How the event log is written (`EventLogFormat`, ours; not in 5.0.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// The original's lines (the default).
    #[default]
    Text,
    /// One JSON object per event and line, for log shippers.
    Json,
}

/// `EventPriority` levels (1..6 as written; 7 is the internal FATAL level).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Debug = 1,
    Info = 2,
    Warning = 3,
    Error = 4,
    Critical = 5,
    /// `FATAL` in the file maps to 6, which is the always-printed level.
    Fatal = 6,
}

/// `SocketPortReuse`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PortReuse {
    /// SO_REUSEADDR only for listeners bound to a specific address.
    #[default]
    Auto,
    On,
    Off,
}

/// `ActiveIPVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpVersion {
    V4,
    V6,
}

impl IpVersion {
    pub fn of(ip: &IpAddr) -> IpVersion {
        match ip {
            IpAddr::V4(_) => IpVersion::V4,
            IpAddr::V6(_) => IpVersion::V6,
        }
    }
}

/// Interface kinds of an interface block entry (bit set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IfType(pub u8);

impl IfType {
    pub const MONITOR: IfType = IfType(0x1);
    pub const CLIENT: IfType = IfType(0x2);
    pub const DAEMON: IfType = IfType(0x4);
    /// An entry with no letter: all three kinds.
    pub const ALL: IfType = IfType(0x7);
    /// Set only on the implicit interface (no block): bind the unspecified address.
    pub const ANY: IfType = IfType(0x8);

    pub fn is_monitor(self) -> bool {
        self.0 & 0x1 != 0
    }
    pub fn is_client(self) -> bool {
        self.0 & 0x2 != 0
    }
    pub fn is_daemon(self) -> bool {
        self.0 & 0x4 != 0
    }
    pub fn is_any(self) -> bool {
        self.0 & 0x8 != 0
    }
}

/// One entry of a daemon's interface block (or the implicit one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Address with the segment port (IPv6: scope id from `%if` if given).
    pub addr: SocketAddr,
    pub kinds: IfType,
}

/// One configured daemon ("proc").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    /// The name as text (see [`Daemon::name_bytes`] for the exact bytes).
    pub name: String,
    /// The name exactly as the original keeps it: at most 19 bytes, what the
    /// VID and the configuration hash are computed from. Equal to
    /// `name.as_bytes()` for every name that is valid UTF-8 after the cut.
    pub name_bytes: Vec<u8>,
    /// Address with the segment's port.
    pub addr: SocketAddr,
    pub vid: u32,
    /// `VirtualID = N` was written.
    pub vid_explicit: bool,
    /// Never empty: without a block, one implicit entry `ALL|ANY` on `addr`.
    pub interfaces: Vec<Interface>,
    /// `true` when the file had an interface block.
    pub explicit_interfaces: bool,
    pub seg_index: usize,
    pub index_in_seg: usize,
    /// Line (1-based) where the entry was written.
    pub line: u32,
}

impl Daemon {
    pub fn ip(&self) -> IpAddr {
        self.addr.ip()
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    /// Port of the token channel (`port + 1`).
    pub fn token_port(&self) -> u16 {
        self.addr.port().wrapping_add(1)
    }
}

/// One `Spread_Segment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub port: u16,
    /// 1..=5 segment (broadcast/multicast) addresses, all with `port`.
    pub addrs: Vec<SocketAddr>,
    /// Proc indexes (into [`Config::daemons`]) in listing order.
    pub daemons: Vec<usize>,
}

/// Membership timeouts in milliseconds (§1.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub token: u32,
    pub hurry: u32,
    pub alive: u32,
    pub join: u32,
    pub rep: u32,
    pub seg: u32,
    pub gather: u32,
    pub form: u32,
    pub lookup: u32,
}

impl Timeouts {
    pub const LAN: Timeouts = Timeouts {
        token: 1250,
        hurry: 500,
        alive: 250,
        join: 250,
        rep: 625,
        seg: 500,
        gather: 1250,
        form: 1250,
        lookup: 30000,
    };
    pub const WAN: Timeouts = Timeouts {
        token: 5000,
        hurry: 1500,
        alive: 250,
        join: 250,
        rep: 1250,
        seg: 500,
        gather: 2500,
        form: 2500,
        lookup: 45000,
    };
}

/// The nine timeout keywords as written (each `None` when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TimeoutSettings {
    pub token: Option<u32>,
    pub hurry: Option<u32>,
    pub alive: Option<u32>,
    pub join: Option<u32>,
    pub rep: Option<u32>,
    pub seg: Option<u32>,
    pub gather: Option<u32>,
    pub form: Option<u32>,
    pub lookup: Option<u32>,
}

impl TimeoutSettings {
    fn all(&self) -> [Option<u32>; 9] {
        [self.token, self.hurry, self.alive, self.join, self.rep, self.seg, self.gather, self.form, self.lookup]
    }
    pub fn any_set(&self) -> bool {
        self.all().iter().any(Option::is_some)
    }
    pub fn all_set(&self) -> bool {
        self.all().iter().all(Option::is_some)
    }
}

/// Log timestamp settings (`EventTimeStamp`, `EventPreciseTimeStamp`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// strftime format, at most 39 bytes; for a precise stamp it already ends
    /// in `%s`/`%S` (a ` %s` was appended if it fitted).
    pub format: String,
    /// Append `.uuuuuu` microseconds.
    pub precise: bool,
}

/// Authentication settings (`AllowedAuthMethods`, `RequiredAuthMethods`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    /// `true` until the first `AllowedAuthMethods`/`RequiredAuthMethods`.
    pub null_enabled: bool,
    /// Names listed in `AllowedAuthMethods` (as written, in order).
    pub allowed: Vec<String>,
    /// Names listed in `RequiredAuthMethods`.
    pub required: Vec<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings { null_enabled: true, allowed: Vec::new(), required: Vec::new() }
    }
}

/// A parsed configuration, every parameter with its 5.0.1 default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// File label used in messages.
    pub file: String,
    pub segments: Vec<Segment>,
    /// All daemons in conf order (index = proc index).
    pub daemons: Vec<Daemon>,

    /// `DebugFlags` mask; [`flags::DEFAULT`] when absent.
    pub debug_flags: u32,
    /// `true` if the file had a `DebugFlags` line.
    pub debug_flags_set: bool,
    pub event_priority: Priority,
    /// `EventLogFile` after `%h`/`%H` expansion; `None` = stdout.
    pub event_log_file: Option<String>,
    pub event_timestamp: Option<Timestamp>,
    /// `EventLogFormat` (ours; not in 5.0.1): the original's text lines, or
    /// one JSON object per line for log shippers.
    pub event_log_format: LogFormat,
    pub dangerous_monitor: bool,
    pub socket_port_reuse: PortReuse,
    pub runtime_dir: String,
    pub daemon_user: String,
    pub daemon_group: String,
    /// `RuntimeDir` / `DaemonUser` / `DaemonGroup` were written in the file
    /// (the privilege drop is strict only for values given explicitly).
    pub runtime_dir_set: bool,
    pub daemon_user_set: bool,
    pub daemon_group_set: bool,
    pub max_session_messages: u32,
    /// `MaxSessionBytes` (ours; not in 5.0.1): a session's queue bound in
    /// bytes (`engine::queues`).
    pub max_session_bytes: u32,
    /// `MaxQueuedBytes` (ours): all sessions' queues together, in bytes.
    pub max_queued_bytes: u32,
    pub auth: AuthSettings,
    pub access_control_policy: String,
    pub active_ip_version: IpVersion,
    pub window: u32,
    pub personal_window: u32,
    /// `AcceleratedRing` as written (`None` = absent).
    pub accelerated_ring_setting: Option<bool>,
    pub accelerated_window: u32,
    pub timeouts: TimeoutSettings,
    /// `WideAreaNetwork` as written (`None` = absent).
    pub wide_area_network_setting: Option<bool>,
    pub exclude_seg_addrs_from_hash: bool,
    pub ignore_multicast_join_errors: bool,
    /// `MetricsAddress` (ours; not in 5.0.1): where the Prometheus metrics
    /// endpoint listens (`crate::metrics`); `None`: no endpoint.
    pub metrics_address: Option<SocketAddr>,

    /// The configuration hash (§1.7).
    pub hash: u32,
    /// The text that was hashed (without its NUL).
    pub hash_text: String,
    /// The ring protocol run (and hashed): accelerated only if
    /// `AcceleratedRing = true` was written (first load; see §1.8, §1.9).
    pub accelerated_ring_in_use: bool,
    /// The accelerated flag after the original's `Memb_init` defaulting; it
    /// is what a reload without the keyword inherits.
    pub(crate) accel_after_init: bool,
    /// A custom `EventTimeStamp` format seen so far (reload keeps it).
    pub(crate) ts_custom_state: Option<String>,
    /// Parser warnings (the original prints them and goes on).
    pub warnings: Vec<String>,
    /// Keywords that parsed but whose feature this daemon does not implement
    /// yet; the caller must log them at start-up.
    pub unsupported: Vec<String>,
}

/// An error in a configuration: displays as `<file>:<line>: <message>`
/// (or `<file>: <message>` when no line applies; `<file>:<line>:<column>:`
/// for TOML syntax errors, which know the column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 = no particular line.
    pub line: u32,
    /// 1-based, in characters; 0 = not known (every `spread.conf` error).
    pub column: u32,
    pub message: String,
}

impl ConfigError {
    pub fn new(file: impl Into<String>, line: u32, message: impl Into<String>) -> Self {
        ConfigError { file: file.into(), line, column: 0, message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 && self.column > 0 {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        } else if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Who this daemon is, as chosen by [`Config::find_me`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeInfo {
    /// Proc index in conf order.
    pub index: usize,
    /// The daemon entry; for IPv6 its address carries the scope id found on
    /// the local interface list (when the file gave none), and so do its
    /// local interface addresses.
    pub daemon: Daemon,
    /// Configured interfaces of this daemon that are not addresses of this
    /// machine (the original warns and goes on).
    pub warnings: Vec<String>,
}

/// Read and parse a configuration file: the TOML form when the name ends in
/// `.toml` ([`is_toml_path`], `docs/config.md`), else `spread.conf` syntax.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ConfigError::new(&label, 0, format!("cannot read: {e}")))?;
    if is_toml_path(path) {
        return toml_form::parse_bytes(&bytes, &label, None, &parser::system_resolver);
    }
    parse_bytes(&bytes, &label)
}

/// Read `path` again for a reload (§1.9): parsed as the original re-parses,
/// on top of `previous` (see [`parse_str_reload`]); a `.toml` file as its
/// TOML form, with the same reload rules.
pub fn load_reload(path: &Path, previous: &Config) -> Result<Config, ConfigError> {
    let label = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ConfigError::new(&label, 0, format!("cannot read: {e}")))?;
    if is_toml_path(path) {
        return toml_form::parse_bytes(&bytes, &label, Some(previous), &parser::system_resolver);
    }
    parser::parse(&bytes, &label, Some(previous), &parser::system_resolver)
}

/// Parse configuration bytes (names keep their exact bytes, UTF-8 or not).
pub fn parse_bytes(bytes: &[u8], file_label: &str) -> Result<Config, ConfigError> {
    parser::parse(bytes, file_label, None, &parser::system_resolver)
}

/// Parse configuration text; `file_label` names it in messages.
pub fn parse_str(text: &str, file_label: &str) -> Result<Config, ConfigError> {
    parser::parse(text.as_bytes(), file_label, None, &parser::system_resolver)
}

/// [`parse_str`] with a given name resolver for name-only daemon entries
/// (tests and tools that must not query DNS).
pub fn parse_str_with_resolver(
    text: &str,
    file_label: &str,
    resolver: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>,
) -> Result<Config, ConfigError> {
    parser::parse(text.as_bytes(), file_label, None, resolver)
}

/// A resolver without any network traffic: numeric host strings exactly as
/// the C library's `getaddrinfo` reads them (so `127.1` or `127.000.0.1`
/// work as they do for the original), and `localhost` (127.0.0.1, then ::1);
/// every other name fails.
pub fn offline_resolver(name: &str) -> Result<Vec<IpAddr>, String> {
    if let Some(v) = local::numeric_host(name) {
        return Ok(v);
    }
    if name == "localhost" {
        Ok(vec![IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)])
    } else {
        Err("Name or service not known".to_string())
    }
}

/// Parse a configuration for a reload, reproducing the 5.0.1 quirks (§1.9):
/// a daemon without an explicit `VirtualID` keeps the VID the previous load
/// stored in the same table slot, and when `AcceleratedRing` is absent the
/// protocol (and hash) follow the `!WideAreaNetwork` default that the first
/// start-up applied after hashing.
pub fn parse_str_reload(text: &str, file_label: &str, previous: &Config) -> Result<Config, ConfigError> {
    parser::parse(text.as_bytes(), file_label, Some(previous), &parser::system_resolver)
}

/// The embedded default: [`DEFAULT_CONFIG_TEXT`] (one segment 127.0.0.255,
/// one daemon `localhost` on 127.0.0.1, port 4803).
pub fn default_config() -> Config {
    match parser::parse(DEFAULT_CONFIG_TEXT.as_bytes(), "<default>", None, &offline_resolver) {
        Ok(c) => c,
        // The embedded text is fixed and covered by tests.
        Err(e) => unreachable!("embedded default configuration does not parse: {e}"),
    }
}

impl Config {
    /// The configuration hash carried in every daemon packet.
    pub fn hash(&self) -> u32 {
        self.hash
    }

    /// Proc index of the daemon with this VID.
    pub fn index_by_vid(&self, vid: u32) -> Option<usize> {
        self.daemons.iter().position(|d| d.vid == vid)
    }

    /// Proc index of the daemon with this name (exact match of the bytes).
    pub fn index_by_name(&self, name: &str) -> Option<usize> {
        self.index_by_name_bytes(name.as_bytes())
    }

    /// Proc index of the daemon whose stored name bytes are `name`.
    pub fn index_by_name_bytes(&self, name: &[u8]) -> Option<usize> {
        self.daemons.iter().position(|d| d.name_bytes == name)
    }

    pub fn daemon_by_vid(&self, vid: u32) -> Option<&Daemon> {
        self.daemons.iter().find(|d| d.vid == vid)
    }

    /// `Wide_network`: `WideAreaNetwork` if written, else more than one segment.
    pub fn wide_area(&self) -> bool {
        self.wide_area_network_setting.unwrap_or(self.segments.len() > 1)
    }

    /// The ring protocol actually run at first start-up: accelerated only if
    /// `AcceleratedRing = true` was written (§1.8 quirk). Matches the hash text.
    pub fn accelerated_ring(&self) -> bool {
        self.accelerated_ring_in_use
    }

    /// The membership timeouts in force: the nine configured values, or the
    /// LAN/WAN defaults when none is set. Setting only some is an error.
    pub fn membership_timeouts(&self) -> Result<Timeouts, ConfigError> {
        let t = &self.timeouts;
        if !t.any_set() {
            return Ok(if self.wide_area() { Timeouts::WAN } else { Timeouts::LAN });
        }
        match (t.token, t.hurry, t.alive, t.join, t.rep, t.seg, t.gather, t.form, t.lookup) {
            (Some(token), Some(hurry), Some(alive), Some(join), Some(rep), Some(seg), Some(gather), Some(form), Some(lookup)) => {
                Ok(Timeouts { token, hurry, alive, join, rep, seg, gather, form, lookup })
            }
            _ => Err(ConfigError::new(
                &self.file,
                0,
                "membership timeouts: either all nine (Token, Hurry, Alive, Join, Rep, Seg, Gather, Form, Lookup) or none must be set",
            )),
        }
    }

    /// Pick the daemon this process is (§1.5), using this machine's addresses.
    pub fn find_me(&self, name: Option<&str>) -> Result<MeInfo, ConfigError> {
        let locals = local_addresses()
            .map_err(|e| ConfigError::new(&self.file, 0, format!("cannot list this machine's addresses: {e}")))?;
        self.find_me_among(name, &locals)
    }

    /// [`Config::find_me`] against a given list of local addresses (IPv6 entries
    /// may carry their interface's scope id).
    pub fn find_me_among(&self, name: Option<&str>, locals: &[SocketAddr]) -> Result<MeInfo, ConfigError> {
        if locals.is_empty() {
            return Err(ConfigError::new(&self.file, 0, "this machine has no IPv4/IPv6 address"));
        }
        let index = match name {
            Some(n) => {
                // The original cuts the -n value to 19 bytes before looking it up.
                let cut = &n.as_bytes()[..n.len().min(MAX_PROC_NAME - 1)];
                let n = String::from_utf8_lossy(cut);
                self.index_by_name_bytes(cut).ok_or_else(|| {
                    ConfigError::new(&self.file, 0, format!("no daemon named '{n}' in the configuration"))
                })?
            }
            None => self.daemons.iter().position(|d| locals.iter().any(|l| l.ip() == d.ip())).ok_or_else(|| {
                ConfigError::new(
                    &self.file,
                    0,
                    "no configured daemon has an address of this machine (use -n to choose one)",
                )
            })?,
        };
        let mut daemon = self.daemons[index].clone();
        let local = locals.iter().find(|l| l.ip() == daemon.ip()).ok_or_else(|| {
            ConfigError::new(
                &self.file,
                0,
                format!(
                    "daemon '{}' has address {}, which is not an address of this machine",
                    daemon.name,
                    daemon.ip()
                ),
            )
        })?;
        let mut scope = 0;
        if let (SocketAddr::V6(mine), SocketAddr::V6(l)) = (&mut daemon.addr, local) {
            if mine.scope_id() == 0 {
                mine.set_scope_id(l.scope_id());
            }
            scope = mine.scope_id();
        }
        let mut warnings = Vec::new();
        for ifc in &mut daemon.interfaces {
            let ip = ifc.addr.ip();
            if ip.is_unspecified() || ip.is_multicast() {
                continue;
            }
            match locals.iter().find(|l| l.ip() == ip) {
                None => warnings.push(format!("configured interface {ip} is not an address of this machine")),
                Some(l) => {
                    if let (SocketAddr::V6(a), SocketAddr::V6(l)) = (&mut ifc.addr, l) {
                        if a.scope_id() == 0 {
                            a.set_scope_id(if l.scope_id() != 0 { l.scope_id() } else { scope });
                        }
                    }
                }
            }
        }
        Ok(MeInfo { index, daemon, warnings })
    }

    /// IPv6 only: give every daemon address the scope id of this daemon's
    /// address (used for all unicast sends) and each address of this daemon's
    /// segment that has none the same scope id, as the original does after
    /// finding itself. Scope ids never enter the hash.
    pub fn apply_scope_ids(&mut self, me: &MeInfo) {
        let SocketAddr::V6(mine) = me.daemon.addr else { return };
        let scope = mine.scope_id();
        for d in &mut self.daemons {
            if let SocketAddr::V6(a) = &mut d.addr {
                a.set_scope_id(scope);
            }
        }
        if let Some(seg) = self.segments.get_mut(me.daemon.seg_index) {
            for a in &mut seg.addrs {
                if let SocketAddr::V6(a) = a {
                    if a.scope_id() == 0 {
                        a.set_scope_id(scope);
                    }
                }
            }
        }
        if let Some(d) = self.daemons.get_mut(me.index) {
            d.interfaces = me.daemon.interfaces.clone();
        }
    }
}
