//! Logging through `tracing`, set up from the configuration the way the
//! original's event log behaves:
//!
//! * **EventLogFile** — append to that file (`%h`/`%H` already expanded by the
//!   parser), which [`init`] makes the standard output and error of the
//!   process; otherwise standard output.
//! * **EventTimeStamp / EventPreciseTimeStamp** — each line starts with the
//!   local time formatted by the C library's `strftime` with the configured
//!   format (default `%m/%d/%y %H:%M:%S`), then `.uuuuuu` microseconds when
//!   precise, then one space. Without either keyword there is no timestamp.
//! * **EventPriority** — an event is written if its priority is at least the
//!   configured one *and* its debug flag is in the mask, or if it is an
//!   always-printed event (see below), or if its flag is EXIT.
//! * **DebugFlags** — the flag of an event comes from its `target`.
//!
//! Lines carry only the message (no level, no target), like the original.
//!
//! * **EventLogFormat = json** (ours) — one JSON object per event and line
//!   instead: `time` (UTC, RFC 3339 with microseconds), `level`, `priority`
//!   (the original's name), `flag` (the DebugFlags name), `target`,
//!   `message` (the text line's words), and the event's fields with their
//!   types. The same events are written as in text form.
//!
//! ## Structured events
//!
//! An event with a field named `event` (`"membership"`, `"session_rejected"`,
//! `"config_loaded"`, …) is one of the structured events: membership changes,
//! session rejections, configuration events. Its other fields are for the
//! JSON form; the text form writes its message only, in the original's words
//! where the original has the line. An event with a field named `text_only`
//! (the lines of the original's configuration printout that follow a
//! membership change) is left out of the JSON form, whose structured event
//! already carries what they say.
//!
//! ## Targets → DebugFlags
//!
//! | target (`spread::<name>`, optionally `::more`) | flag |
//! |---|---|
//! | `spread::exit` | EXIT |
//! | `spread::data_link` | DATA_LINK |
//! | `spread::memory` | MEMORY |
//! | `spread::events` | EVENTS |
//! | `spread::print`, `spread::system` | PRINT |
//! | `spread::network`, `spread::net` | NETWORK |
//! | `spread::prot`, `spread::protocol` | PROTOCOL |
//! | `spread::session`, `spread::sess` | SESSION |
//! | `spread::config`, `spread::conf` | CONFIGURATION |
//! | `spread::memb`, `spread::membership` | MEMBERSHIP |
//! | `spread::flow_control`, `spread::fc` | FLOW_CONTROL |
//! | `spread::status` | STATUS |
//! | `spread::debug` | DEBUG |
//! | `spread::groups` | GROUPS |
//! | `spread::skiplist` | SKIPLIST |
//! | `spread::acm` | ACM |
//! | `spread::security` | SECURITY |
//!
//! Any other target (for example a module path such as
//! `spread_daemon::engine::groups`) is matched by its path components against
//! the same names; if none matches, the event counts as PRINT.
//!
//! ## Levels → EventPriority
//!
//! `DEBUG` (and `TRACE`) → pDEBUG, `INFO` → INFO, `WARN` → WARNING,
//! `ERROR` → ERROR. An event with a field named `critical` has priority
//! CRITICAL; with a field named `print` or `fatal` it is always written (the
//! original's PRINT and FATAL priorities). These marker fields are not
//! printed. Examples:
//!
//! ```ignore
//! tracing::info!(target: "spread::config", "Hash value for this configuration is: {}", h);
//! tracing::error!(target: "spread::session", print = true, "always shown");
//! ```
//!
//! Filtering is decided per call site from static metadata, so a disabled
//! event costs one cached-interest check.
//!
//! A configuration reload ([`reconfigure`]) takes a new `DebugFlags` and
//! `EventPriority` at once (the call sites' cached interest is rebuilt) and,
//! when the new file names an `EventLogFile`, appends to that file from then
//! on, as the original does; timestamps stay as at start-up.

use std::ffi::CString;
use std::fmt::{self, Write as _};
use std::fs::OpenOptions;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::config::{flags, Config, LogFormat, Priority, Timestamp};

/// The levels of the process's logger, which a reload changes.
static LIVE_LEVELS: OnceLock<Arc<Levels>> = OnceLock::new();

/// `DebugFlags` and `EventPriority` in force.
#[derive(Debug)]
struct Levels {
    mask: AtomicU32,
    priority: AtomicU32,
}

impl Levels {
    fn of(config: &Config) -> Arc<Levels> {
        Arc::new(Levels {
            mask: AtomicU32::new(config.debug_flags),
            priority: AtomicU32::new(config.event_priority as u32),
        })
    }
}

/// A reloaded configuration (§1.9): its `DebugFlags` and `EventPriority`
/// from now on, and its `EventLogFile` if it names one (an error opening
/// it keeps the output in use and is returned).
pub fn reconfigure(config: &Config) -> Result<(), String> {
    if let Some(l) = LIVE_LEVELS.get() {
        l.mask.store(config.debug_flags, AtomicOrdering::Relaxed);
        l.priority.store(config.event_priority as u32, AtomicOrdering::Relaxed);
        tracing::callsite::rebuild_interest_cache();
    }
    match &config.event_log_file {
        Some(path) => redirect_std_streams(path),
        None => Ok(()),
    }
}

/// Keeps the logging set-up alive for the life of the process.
pub struct Guard {
    _private: (),
}

/// Install the global subscriber for this configuration. With EventLogFile
/// the file is opened for appending and becomes the process's standard output
/// *and* standard error (as in the original, so anything else printed lands
/// there too). Fails if the file cannot be opened or a global subscriber is
/// already installed.
pub fn init(config: &Config) -> Result<Guard, String> {
    if let Some(path) = &config.event_log_file {
        redirect_std_streams(path)?;
    }
    let levels = Levels::of(config);
    let _ = LIVE_LEVELS.set(levels.clone());
    let sub = tracing_subscriber::registry().with(spread_layer(config, levels, std::io::stdout));
    tracing::subscriber::set_global_default(sub).map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(Guard { _private: () })
}

/// Point file descriptors 1 and 2 at `path` (opened for appending).
fn redirect_std_streams(path: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::fd::AsRawFd;
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("failed to open log file ({path}): {e}"))?;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    for target in [1, 2] {
        // SAFETY: dup2 on a descriptor we own onto the standard descriptors.
        if unsafe { libc::dup2(f.as_raw_fd(), target) } < 0 {
            return Err(format!("failed to redirect output to {path}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The writer EventLogFile asks for: the file opened for appending, or stdout.
pub fn make_writer(config: &Config) -> Result<BoxMakeWriter, String> {
    match &config.event_log_file {
        Some(path) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("failed to open log file ({path}): {e}"))?;
            Ok(BoxMakeWriter::new(Mutex::new(f)))
        }
        None => Ok(BoxMakeWriter::new(std::io::stdout)),
    }
}

/// A subscriber for this configuration writing to `writer` (for tests and for
/// callers that want `tracing::subscriber::with_default`).
pub fn subscriber_with_writer<W>(config: &Config, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry().with(spread_layer(config, Levels::of(config), writer))
}

/// The formatting and filtering layer for this configuration.
fn spread_layer<S, W>(config: &Config, levels: Arc<Levels>, writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = SpreadFilter { levels };
    tracing_subscriber::fmt::layer()
        .event_format(SpreadFormat {
            timestamp: config.event_timestamp.as_ref().map(TimeFormat::new),
            json: config.event_log_format == LogFormat::Json,
        })
        .with_writer(writer)
        .with_filter(filter)
}

/// The debug flag an event target stands for (see the module table).
pub fn flag_of_target(target: &str) -> u32 {
    if let Some(rest) = target.strip_prefix("spread::") {
        let first = rest.split("::").next().unwrap_or("");
        if let Some(f) = flag_of_name(first) {
            return f;
        }
    }
    target.rsplit("::").find_map(flag_of_name).unwrap_or(flags::PRINT)
}

fn flag_of_name(n: &str) -> Option<u32> {
    Some(match n {
        "exit" => flags::EXIT,
        "data_link" => flags::DATA_LINK,
        "memory" => flags::MEMORY,
        "events" => flags::EVENTS,
        "print" | "system" => flags::PRINT,
        "network" | "net" => flags::NETWORK,
        "prot" | "protocol" => flags::PROTOCOL,
        "session" | "sess" | "sessions" => flags::SESSION,
        "config" | "conf" | "configuration" => flags::CONFIGURATION,
        "memb" | "membership" => flags::MEMBERSHIP,
        "flow_control" | "fc" => flags::FLOW_CONTROL,
        "status" => flags::STATUS,
        "debug" => flags::DEBUG,
        "groups" => flags::GROUPS,
        "skiplist" => flags::SKIPLIST,
        "acm" => flags::ACM,
        "security" => flags::SECURITY,
        _ => return None,
    })
}

/// Original priority of an event (1..7) from its level and marker fields.
pub fn priority_of(meta: &Metadata<'_>) -> u8 {
    let fields = meta.fields();
    if fields.field("fatal").is_some() {
        return 7;
    }
    if fields.field("print").is_some() {
        return 6;
    }
    if fields.field("critical").is_some() {
        return Priority::Critical as u8;
    }
    match *meta.level() {
        Level::ERROR => Priority::Error as u8,
        Level::WARN => Priority::Warning as u8,
        Level::INFO => Priority::Info as u8,
        _ => Priority::Debug as u8,
    }
}

/// The original's "is this event written" rule.
pub fn wanted(mask: u32, threshold: u8, flag: u32, priority: u8) -> bool {
    flag & flags::EXIT != 0 || priority >= 6 || (priority >= threshold && flag & mask != 0)
}

#[derive(Clone, Debug)]
struct SpreadFilter {
    levels: Arc<Levels>,
}

impl SpreadFilter {
    fn check(&self, meta: &Metadata<'_>) -> bool {
        if !meta.is_event() {
            return false;
        }
        let mask = self.levels.mask.load(AtomicOrdering::Relaxed);
        let priority = self.levels.priority.load(AtomicOrdering::Relaxed) as u8;
        wanted(mask, priority, flag_of_target(meta.target()), priority_of(meta))
    }
}

impl<S> Filter<S> for SpreadFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.check(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if self.check(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
}

/// strftime format prepared once.
#[derive(Clone, Debug)]
struct TimeFormat {
    format: Option<CString>,
    precise: bool,
}

impl TimeFormat {
    fn new(t: &Timestamp) -> Self {
        TimeFormat { format: CString::new(t.format.as_str()).ok(), precise: t.precise }
    }

    /// The stamp for `now`, or `None` when the format yields nothing.
    fn render(&self, now: SystemTime) -> Option<String> {
        let fmt = self.format.as_ref()?;
        let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs() as libc::time_t;
        // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call.
        let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
        let mut s = if ok {
            let mut buf = [0u8; 510];
            // SAFETY: buf is writable for its length, fmt is NUL-terminated, tm initialised.
            let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm) };
            if n == 0 {
                return None;
            }
            String::from_utf8_lossy(&buf[..n]).into_owned()
        } else {
            d.as_secs().to_string()
        };
        if self.precise {
            let _ = write!(s, ".{:06}", d.subsec_micros());
        }
        Some(s)
    }
}

struct SpreadFormat {
    timestamp: Option<TimeFormat>,
    json: bool,
}

/// Collects the message and any extra fields (except the priority markers).
struct MessageVisitor<'a> {
    out: &'a mut String,
    extra: String,
    /// The event has an `event` field: a structured event, whose other
    /// fields the text form leaves out.
    structured: bool,
}

impl Visit for MessageVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.out.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.out, "{value:?}");
            }
            "print" | "fatal" | "critical" | "text_only" => {}
            "event" => self.structured = true,
            name => {
                let _ = write!(self.extra, " {name}={value:?}");
            }
        }
    }
}

/// One log line for an event's fields (without timestamp), as written.
fn line_of(event: &Event<'_>) -> String {
    let mut msg = String::new();
    let mut v = MessageVisitor { out: &mut msg, extra: String::new(), structured: false };
    event.record(&mut v);
    let extra = if v.structured { String::new() } else { std::mem::take(&mut v.extra) };
    while msg.ends_with('\n') {
        msg.pop();
    }
    msg.push_str(&extra);
    msg
}

/// Collects an event's fields as JSON values (the priority markers left out).
struct JsonVisitor {
    map: serde_json::Map<String, serde_json::Value>,
}

impl JsonVisitor {
    fn put(&mut self, field: &Field, v: serde_json::Value) {
        match field.name() {
            "print" | "fatal" | "critical" => {}
            name => {
                self.map.insert(name.to_string(), v);
            }
        }
    }
}

impl Visit for JsonVisitor {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.trim_end_matches('\n').into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let s = format!("{value:?}");
        self.put(field, s.trim_end_matches('\n').into());
    }
}

/// The original's name of a priority (1..7).
fn priority_name(p: u8) -> &'static str {
    match p {
        1 => "DEBUG",
        2 => "INFO",
        3 => "WARNING",
        4 => "ERROR",
        5 => "CRITICAL",
        6 => "PRINT",
        _ => "FATAL",
    }
}

/// The `DebugFlags` name of a flag bit.
fn flag_name(f: u32) -> &'static str {
    flags::NAMES.iter().find(|(_, b)| *b == f).map(|(n, _)| *n).unwrap_or("PRINT")
}

/// `now` as RFC 3339 UTC with microseconds (`2026-12-08T01:02:03.456789Z`).
fn rfc3339_utc(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value for gmtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::gmtime_r(&secs, &mut tm).is_null() } {
        return format!("{}.{:06}", d.as_secs(), d.subsec_micros());
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        d.subsec_micros()
    )
}

/// One JSON line for an event (without the newline).
fn json_line_of(event: &Event<'_>, now: SystemTime) -> String {
    let meta = event.metadata();
    let mut v = JsonVisitor { map: serde_json::Map::new() };
    v.map.insert("time".into(), rfc3339_utc(now).into());
    v.map.insert("level".into(), meta.level().as_str().into());
    v.map.insert("priority".into(), priority_name(priority_of(meta)).into());
    v.map.insert("flag".into(), flag_name(flag_of_target(meta.target())).into());
    v.map.insert("target".into(), meta.target().into());
    event.record(&mut v);
    serde_json::Value::Object(v.map).to_string()
}

impl<S, N> FormatEvent<S, N> for SpreadFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        if self.json {
            if event.metadata().fields().field("text_only").is_some() {
                return Ok(());
            }
            writer.write_str(&json_line_of(event, SystemTime::now()))?;
            return writer.write_char('\n');
        }
        if let Some(ts) = self.timestamp.as_ref().and_then(|t| t.render(SystemTime::now())) {
            writer.write_str(&ts)?;
            writer.write_char(' ')?;
        }
        writer.write_str(&line_of(event))?;
        writer.write_char('\n')
    }
}

/// Log what the original logs when it has read its configuration: the file,
/// each segment's daemons and their VIDs, then the segment, the hash, then
/// every parser warning and every keyword that is accepted but not
/// supported yet. The file and the end are structured events
/// (`config_file`, `config_loaded`).
pub fn log_config_loaded(config: &Config) {
    tracing::info!(
        target: "spread::config",
        event = "config_file",
        file = %config.file,
        "Conf_load_conf_file: using file: {}",
        config.file
    );
    for (i, s) in config.segments.iter().enumerate() {
        for &p in &s.daemons {
            let Some(d) = config.daemons.get(p) else { continue };
            tracing::info!(target: "spread::config", "Configured daemon '{}' with IP '{}'", d.name, d.ip());
            if d.vid_explicit {
                tracing::info!(target: "spread::config", "Explicit virtual ID = '{}' for daemon '{}'", d.vid, d.name);
            } else {
                tracing::info!(target: "spread::config", "Auto-generated virtual ID = '{}' for daemon '{}'", d.vid, d.name);
            }
        }
        let first = s.addrs.first().map(|a| a.ip().to_string()).unwrap_or_default();
        tracing::info!(
            target: "spread::config",
            "Successfully configured Segment {} [{}]:{} with {} procs:",
            i,
            first,
            s.port,
            s.daemons.len()
        );
        for &p in &s.daemons {
            if let Some(d) = config.daemons.get(p) {
                tracing::info!(target: "spread::config", "\t{:>20}: {}", d.name, d.ip());
            }
        }
    }
    for w in &config.warnings {
        tracing::warn!(target: "spread::config", "{w}");
    }
    if config.daemon_user != crate::config::DEFAULT_USER {
        tracing::info!(target: "spread::config", "Set user name to '{}'", config.daemon_user);
    }
    if config.daemon_group != crate::config::DEFAULT_GROUP {
        tracing::info!(target: "spread::config", "Set group name to '{}'", config.daemon_group);
    }
    if config.runtime_dir != crate::config::DEFAULT_RUNTIME_DIR {
        tracing::info!(target: "spread::config", "Set runtime directory to '{}'", config.runtime_dir);
    }
    if config.debug_flags_set {
        tracing::warn!(target: "spread::config", "Set Alarm mask to: {:x}", config.debug_flags);
    }
    if config.dangerous_monitor {
        tracing::info!(target: "spread::config", print = true,
            "ENABLING Dangerous Monitor Commands! Make sure Spread network is secured");
    }
    tracing::info!(target: "spread::config", "Hash value for this configuration is: {}", config.hash);
    tracing::info!(
        target: "spread::config",
        event = "config_loaded",
        file = %config.file,
        hash = config.hash,
        daemons = config.daemons.len(),
        segments = config.segments.len(),
        warnings = config.warnings.len(),
        "Finished configuration file."
    );
    for u in &config.unsupported {
        tracing::warn!(target: "spread::config", print = true, "{u}");
    }
}

/// One daemon of a [`log_membership`] printout: name, address, VID, and
/// whether it is in the ring.
pub struct PrintedDaemon<'a> {
    pub name: &'a str,
    pub ip: std::net::IpAddr,
    pub vid: u32,
    pub member: bool,
}

/// What the original logs when a ring is installed (`Memb_regular`):
/// "Membership id is ( rep, time)", one structured event carrying the
/// members, then the configuration as `Conf_print` writes it (every segment
/// with its addresses and the members in it), which the JSON form leaves
/// out. `segments`: each segment's addresses and daemons in conf order.
pub fn log_membership(
    me: &str,
    id: (i32, i32),
    leader: bool,
    segments: &[(&[std::net::SocketAddr], Vec<PrintedDaemon<'_>>)],
) {
    let members: Vec<&PrintedDaemon<'_>> = segments.iter().flat_map(|(_, d)| d.iter()).filter(|d| d.member).collect();
    let vids: Vec<String> = members.iter().map(|d| d.vid.to_string()).collect();
    let names: Vec<&str> = members.iter().map(|d| d.name).collect();
    tracing::info!(
        target: "spread::print",
        event = "membership",
        ring_rep = id.0,
        ring_time = id.1,
        daemons = members.len(),
        vids = %vids.join(" "),
        names = %names.join(" "),
        leader,
        "Membership id is ( {}, {})",
        id.0,
        id.1
    );
    let mut lines = vec![
        "--------------------".to_string(),
        format!("Configuration at {me} is:"),
        format!("Num Segments {}", segments.len()),
    ];
    for (addrs, daemons) in segments {
        let present: Vec<&PrintedDaemon<'_>> = daemons.iter().filter(|d| d.member).collect();
        let mut l = format!("\t{}", present.len());
        for a in addrs.iter() {
            let _ = write!(l, "\t[{}]:{}", a.ip(), a.port());
        }
        lines.push(l);
        for d in present {
            lines.push(format!("\t\t{:<20}\t{}\tID: {:<16}", d.name, d.ip, d.vid));
        }
    }
    lines.push("====================".to_string());
    lines.push(String::new());
    for l in lines {
        tracing::info!(target: "spread::config", print = true, text_only = true, "{l}");
    }
}

/// [`log_membership`] for a daemon alone in its configuration (a ring of
/// one from the start, `RingOfOne`): what the original logs at start-up.
pub fn log_membership_alone(config: &Config, me: &crate::config::MeInfo, time: i32) {
    let segments: Vec<(&[std::net::SocketAddr], Vec<PrintedDaemon<'_>>)> = config
        .segments
        .iter()
        .map(|s| {
            let ds = s
                .daemons
                .iter()
                .filter_map(|&p| config.daemons.get(p).map(|d| (p, d)))
                .map(|(p, d)| PrintedDaemon { name: &d.name, ip: d.ip(), vid: d.vid, member: p == me.index })
                .collect();
            (s.addrs.as_slice(), ds)
        })
        .collect();
    log_membership(&me.daemon.name, (me.daemon.vid as i32, time), true, &segments);
}

/// Log which configured daemon this process is.
pub fn log_me(me: &crate::config::MeInfo) {
    let d = &me.daemon;
    tracing::info!(
        target: "spread::config",
        event = "config_me",
        name = %d.name,
        vid = d.vid,
        addr = %d.ip(),
        port = d.port(),
        "Conf_load_conf_file: My name: {}, id: {}, addr: {}, port: {}",
        d.name,
        d.vid,
        d.ip(),
        d.port()
    );
    for w in &me.warnings {
        tracing::warn!(target: "spread::config", "{w}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn conf(extra: &str) -> Config {
        let text = format!("Spread_Segment 127.0.0.255:27100 {{\n\tlh 127.0.0.1\n}}\n{extra}");
        crate::config::parse_str(&text, "t").unwrap()
    }

    fn run(c: &Config, f: impl FnOnce()) -> String {
        let cap = Capture::default();
        let sub = subscriber_with_writer(c, cap.clone());
        tracing::subscriber::with_default(sub, f);
        cap.text()
    }

    #[test]
    fn default_mask_and_priority() {
        let c = conf("");
        let out = run(&c, || {
            tracing::info!(target: "spread::config", "conf info");
            tracing::debug!(target: "spread::config", "conf debug");
            tracing::info!(target: "spread::session", "session info");
            tracing::error!(target: "spread::session", print = true, "always");
            tracing::warn!(target: "spread::exit", "exit flag");
        });
        assert_eq!(out, "conf info\nalways\nexit flag\n");
    }

    #[test]
    fn debug_flags_and_priority_filter() {
        let c = conf("DebugFlags = { ALL !CONFIGURATION }\nEventPriority = WARNING\n");
        let out = run(&c, || {
            tracing::info!(target: "spread::config", "no: conf masked");
            tracing::warn!(target: "spread::config", "no: conf masked warn");
            tracing::info!(target: "spread::groups", "no: below WARNING");
            tracing::warn!(target: "spread::groups", "groups warn");
            tracing::error!(target: "spread_daemon::engine::session", "session error");
            tracing::warn!(target: "spread::memb", x = 5, "with field");
        });
        assert_eq!(out, "groups warn\nsession error\nwith field x=5\n");
    }

    #[test]
    fn structured_events_print_their_message_only_in_text() {
        let c = conf("");
        let out = run(&c, || {
            tracing::info!(target: "spread::config", event = "config_loaded", hash = 7u32, "Finished configuration file.");
            tracing::info!(target: "spread::config", print = true, text_only = true, "printout line");
            tracing::info!(target: "spread::config", n = 3, "plain event keeps its field");
        });
        assert_eq!(out, "Finished configuration file.\nprintout line\nplain event keeps its field n=3\n");
    }

    #[test]
    fn json_form_one_object_per_line_with_typed_fields() {
        let c = conf("EventLogFormat = json\nEventTimeStamp\nDebugFlags = { ALL }\n");
        let out = run(&c, || {
            tracing::info!(
                target: "spread::session",
                event = "session_rejected",
                code = -6,
                reason = "REJECT_NOT_UNIQUE",
                ok = false,
                "Session from {} rejected",
                "127.0.0.1:9"
            );
            tracing::info!(target: "spread::config", print = true, text_only = true, "left out of JSON");
            tracing::error!(target: "spread::prot", fatal = true, "line \"quoted\"\n");
        });
        let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{out}");
        let e = &lines[0];
        assert_eq!(e["event"], "session_rejected");
        assert_eq!(e["code"], -6);
        assert_eq!(e["ok"], false);
        assert_eq!(e["reason"], "REJECT_NOT_UNIQUE");
        assert_eq!(e["message"], "Session from 127.0.0.1:9 rejected");
        assert_eq!(e["flag"], "SESSION");
        assert_eq!(e["priority"], "INFO");
        assert_eq!(e["level"], "INFO");
        assert_eq!(e["target"], "spread::session");
        let t = e["time"].as_str().unwrap();
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.ends_with('Z'));
        let f = &lines[1];
        assert_eq!(f["message"], "line \"quoted\"");
        assert_eq!(f["priority"], "FATAL");
        assert!(f.get("fatal").is_none(), "markers are not fields");
    }

    #[test]
    fn rfc3339_of_a_known_instant() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_796_692_976_000_042);
        assert_eq!(rfc3339_utc(t), "2026-12-08T01:22:56.000042Z");
    }

    #[test]
    fn fatal_priority_only_prints() {
        let c = conf("EventPriority = FATAL\nDebugFlags = { ALL }\n");
        let out = run(&c, || {
            tracing::error!(target: "spread::prot", "no");
            tracing::error!(target: "spread::prot", critical = true, "no either");
            tracing::info!(target: "spread::prot", print = true, "yes");
        });
        assert_eq!(out, "yes\n");
    }

    #[test]
    fn timestamps() {
        let c = conf("EventTimeStamp = \"<%Y>\"\n");
        let out = run(&c, || tracing::info!(target: "spread::config", "m"));
        assert!(out.starts_with('<') && out.ends_with("> m\n"), "{out:?}");
        assert_eq!(out.len(), "<2026> m\n".len());

        let c = conf("EventTimeStamp\nEventPreciseTimeStamp\n");
        let out = run(&c, || tracing::info!(target: "spread::config", "m"));
        // "mm/dd/yy HH:MM:SS.uuuuuu m"
        let b = out.as_bytes();
        assert_eq!(out.len(), 26 + 1, "{out:?}");
        assert_eq!((b[2], b[5], b[8], b[11], b[14], b[17]), (b'/', b'/', b' ', b':', b':', b'.'));
        assert!(out.ends_with(" m\n"));

        let c = conf("");
        let out = run(&c, || tracing::info!(target: "spread::config", "plain"));
        assert_eq!(out, "plain\n");
    }

    #[test]
    fn log_file_appends() {
        let path = std::env::temp_dir().join(format!("h4-log-{}.log", std::process::id()));
        std::fs::write(&path, "old\n").unwrap();
        let c = conf(&format!("EventLogFile = \"{}\"\n", path.display()));
        let w = make_writer(&c).unwrap();
        let sub = subscriber_with_writer(&c, w);
        tracing::subscriber::with_default(sub, || tracing::info!(target: "spread::config", "new"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\n");
        std::fs::remove_file(&path).unwrap();
        let bad = conf("EventLogFile = /nonexistent-dir-h4/x.log\n");
        assert!(make_writer(&bad).is_err());
    }

    #[test]
    fn target_mapping() {
        assert_eq!(flag_of_target("spread::session"), flags::SESSION);
        assert_eq!(flag_of_target("spread::groups::sync"), flags::GROUPS);
        assert_eq!(flag_of_target("spread::prot"), flags::PROTOCOL);
        assert_eq!(flag_of_target("spread::config"), flags::CONFIGURATION);
        assert_eq!(flag_of_target("spread_daemon::engine::groups"), flags::GROUPS);
        assert_eq!(flag_of_target("somewhere::else"), flags::PRINT);
    }

    #[test]
    fn config_summary_logged() {
        let c = conf("");
        let out = run(&c, || log_config_loaded(&c));
        assert!(out.contains("Configured daemon 'lh' with IP '127.0.0.1'\n"), "{out}");
        assert!(out.contains(&format!("Hash value for this configuration is: {}\n", c.hash)));
        assert!(out.starts_with("Conf_load_conf_file: using file: t\n"), "{out}");
        assert!(
            out.contains(
                "----------- Parse Warning------------------\nWarning on or before line 2\nOffending token: }\n\
                 Warning type: Segment configured with a loopback address 127.0.0.255!\n"
            ),
            "{out}"
        );
        let c = conf("DaemonUser = nobody\nDebugFlags = { PRINT EXIT CONFIGURATION MEMBERSHIP }\n");
        let me = c.find_me_among(None, &["127.0.0.1:0".parse().unwrap()]).unwrap();
        let out = run(&c, || {
            log_config_loaded(&c);
            log_me(&me);
        });
        assert!(out.contains("Set user name to 'nobody'\n"), "{out}");
        assert!(out.contains("Set Alarm mask to: 311\n"), "{out}");
        assert!(
            out.ends_with(&format!(
                "Conf_load_conf_file: My name: lh, id: {}, addr: 127.0.0.1, port: 27100\n",
                c.daemons[0].vid
            )),
            "{out}"
        );
    }
}
