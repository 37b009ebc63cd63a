//! The metrics endpoint (`MetricsAddress`, an rspread extension; off unless
//! the configuration names an address).
//!
//! * The driver's mio loop serves it: one TCP listener on its own token and
//!   at most [`MAX_SCRAPES`] scrape connections at a time (one more is told
//!   `503` and closed). A request is read into at most [`MAX_REQUEST`] bytes
//!   and parsed with `httparse`; `GET /metrics` (or `HEAD`) is answered with
//!   the Prometheus text exposition format (version 0.0.4) as the
//!   `prometheus-client` crate encodes it, any other path with `404`, any
//!   other method with `405`, a request that does not parse with `400`, one
//!   that does not fit with `431`. Every answer closes the connection
//!   (`Connection: close`), and a connection not done [`SCRAPE_DEADLINE`]
//!   after its accept is closed: a slow or hostile scraper costs the daemon
//!   a slot for a few seconds and nothing else.
//! * The figures are read from the engine only when a scrape asks
//!   ([`Snapshot::of`], then [`render`] into a fresh registry): the message
//!   path pays only for the engine's plain integer counters
//!   ([`crate::engine::Stats`], [`crate::engine::ring::RingStats`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry as Metrics, Unit};

use crate::engine::{ClientQueues, Engine, Ordering, RingFigures, Stats, SERVICE_NAMES};

/// Scrape connections served at once.
pub const MAX_SCRAPES: usize = 8;
/// The most of a request that is read (request line and headers).
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a scrape connection may stay open, from its accept.
pub const SCRAPE_DEADLINE: Duration = Duration::from_secs(5);
/// Headers a request may have.
const MAX_HEADERS: usize = 64;
/// Accepts per listener wakeup.
const ACCEPT_BUDGET: usize = 64;

/// Everything a scrape reports, read from the engine at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub daemon: String,
    pub connections: usize,
    pub sessions: usize,
    pub groups: usize,
    pub local_memberships: usize,
    pub stats: Stats,
    pub queues: ClientQueues,
    /// Messages submitted to the ordering layer and not yet delivered.
    pub ordering_queue: usize,
    pub ring: RingFigures,
    /// Resident set size in bytes, when it could be read.
    pub rss: Option<u64>,
}

impl Snapshot {
    /// Read the figures of `engine` now (`rss` from [`Rss::read`]).
    pub fn of<O: Ordering>(engine: &Engine<O>, rss: Option<u64>) -> Snapshot {
        Snapshot {
            daemon: String::from_utf8_lossy(&engine.config().daemon_name).into_owned(),
            connections: engine.num_connections(),
            sessions: engine.num_sessions(),
            groups: engine.groups().num_groups(),
            local_memberships: engine.groups().local_memberships(),
            stats: engine.stats(),
            queues: engine.client_queues(),
            ordering_queue: engine.ordering_ref().pending(),
            ring: engine.ordering_ref().ring_figures(),
            rss,
        }
    }
}

type Labels = [(&'static str, &'static str); 1];

fn gauge(m: &mut Metrics, name: &str, help: &str, v: usize) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    m.register(name, help, g);
}

fn gauge_bytes(m: &mut Metrics, name: &str, help: &str, v: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    m.register_with_unit(name, help, Unit::Bytes, g);
}

fn counter(m: &mut Metrics, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    m.register(name, help, c);
}

fn per_service(v: &[u64; 6]) -> Family<Labels, Counter> {
    let f: Family<Labels, Counter> = Family::default();
    for (name, n) in SERVICE_NAMES.iter().zip(v) {
        f.get_or_create(&[("service", name)]).inc_by(*n);
    }
    f
}

/// The Prometheus text (version 0.0.4) of a snapshot: every metric with
/// its HELP and TYPE lines, names prefixed `spread_`.
pub fn render(s: &Snapshot) -> String {
    let mut m = Metrics::with_prefix("spread");
    m.register(
        "daemon",
        "This daemon: its name and the rspread version",
        Info::new(vec![("daemon", s.daemon.clone()), ("version", env!("CARGO_PKG_VERSION").to_string())]),
    );
    gauge(&mut m, "connections", "Client connections open, handshaking ones included", s.connections);
    gauge(&mut m, "sessions", "Client sessions connected (handshake completed)", s.sessions);
    gauge(&mut m, "groups", "Groups known to this daemon (with members on any daemon)", s.groups);
    gauge(
        &mut m,
        "group_members_local",
        "Group memberships of this daemon's sessions, over all groups",
        s.local_memberships,
    );
    counter(
        &mut m,
        "sessions_killed",
        "Sessions the daemon cut (slow readers, invalid messages)",
        s.stats.sessions_killed,
    );
    let st = &s.stats;
    m.register(
        "messages_received",
        "Data messages received from local clients, by service type",
        per_service(&st.received),
    );
    m.register_with_unit(
        "received",
        "Bytes of the data messages received from local clients (whole messages: header, group names, body), by service type",
        Unit::Bytes,
        per_service(&st.received_bytes),
    );
    m.register(
        "messages_delivered",
        "Data messages written to local clients (once per recipient), by service type",
        per_service(&st.delivered),
    );
    m.register_with_unit(
        "delivered",
        "Bytes of the data messages written to local clients (whole messages, once per recipient), by service type",
        Unit::Bytes,
        per_service(&st.delivered_bytes),
    );
    let q = &s.queues;
    gauge(&mut m, "client_queue_messages", "Messages queued for all sessions, not yet written", q.messages);
    gauge_bytes(&mut m, "client_queue", "Bytes queued for all sessions, not yet written", q.bytes as u64);
    gauge(&mut m, "client_queue_max_messages", "Messages queued for the one session with the most", q.max_messages);
    gauge_bytes(&mut m, "client_queue_max", "Bytes queued for the one session with the most", q.max_bytes as u64);
    gauge(
        &mut m,
        "ordering_queue_messages",
        "Messages waiting to be ordered (the ring's down queue)",
        s.ordering_queue,
    );
    let r = &s.ring;
    let states: Family<Labels, Gauge> = Family::default();
    for st in RingFigures::STATES {
        states.get_or_create(&[("state", st)]).set(i64::from(st == r.state));
    }
    m.register("ring_state", "Membership state of the ring protocol: 1 for the state this daemon is in", states);
    gauge(&mut m, "ring_members", "Daemons in the ring's regular configuration", r.members);
    counter(&mut m, "membership_changes", "Regular ring configurations installed", r.membership_changes);
    counter(
        &mut m,
        "token_rotations",
        "Regular tokens this daemon processed (one per rotation of the ring)",
        r.token_rotations,
    );
    counter(&mut m, "token_losses", "Token losses (each starts a membership round)", r.token_losses);
    counter(&mut m, "retransmissions", "Packets this daemon retransmitted on request", r.retransmissions);
    counter(&mut m, "ring_packets_sent", "Data packets sent to the other daemons", r.packets_sent);
    counter(&mut m, "ring_packets_received", "Data packets received from the other daemons", r.packets_received);
    counter(&mut m, "ring_packets_dropped", "Datagrams dropped by the receive checks", r.dropped);
    if let Some(rss) = s.rss {
        gauge_bytes(&mut m, "resident_memory", "Resident set size of the daemon process", rss);
    }
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_text::encode(&mut out, &m);
    out
}

/// The process's resident set size, from `/proc/self/statm` opened once
/// (so that it can still be read after the chroot of the privilege drop).
pub struct Rss {
    file: Option<File>,
    page: u64,
}

impl Rss {
    pub fn open() -> Rss {
        // SAFETY: sysconf has no memory effects.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Rss { file: File::open("/proc/self/statm").ok(), page: u64::try_from(page).unwrap_or(4096) }
    }

    /// Bytes resident now (`None` without procfs).
    pub fn read(&self) -> Option<u64> {
        let f = self.file.as_ref()?;
        let mut b = [0u8; 128];
        let n = f.read_at(&mut b, 0).ok()?;
        let text = std::str::from_utf8(&b[..n]).ok()?;
        let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * self.page)
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Not all of it has arrived yet.
    Partial,
    /// `GET /metrics` (`head`: `HEAD /metrics`).
    Metrics { head: bool },
    /// Another path.
    NotFound,
    /// Another method.
    BadMethod,
    /// Not HTTP/1.
    Bad,
    /// Too large (headers or size).
    TooLarge,
}

/// Parse what has arrived of a request.
pub fn parse_request(buf: &[u8]) -> Request {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST => Request::TooLarge,
        Ok(httparse::Status::Partial) => Request::Partial,
        Ok(httparse::Status::Complete(_)) => {
            let head = match req.method {
                Some("GET") => false,
                Some("HEAD") => true,
                _ => return Request::BadMethod,
            };
            let path = req.path.unwrap_or("");
            let path = path.split('?').next().unwrap_or("");
            if path == "/metrics" {
                Request::Metrics { head }
            } else {
                Request::NotFound
            }
        }
        Err(httparse::Error::TooManyHeaders) => Request::TooLarge,
        Err(_) => Request::Bad,
    }
}

/// A whole response: status line, headers, body (none for `head`).
fn response(status: &str, content_type: &str, body: &str, head: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        r.extend_from_slice(body.as_bytes());
    }
    r
}

fn plain(status: &str) -> Vec<u8> {
    response(status, "text/plain; charset=utf-8", &format!("{status}\n"), false)
}

/// The answer to a complete (or refused) request; `render` is called only
/// for a metrics request.
pub fn answer(req: Request, render: &mut dyn FnMut() -> String) -> Option<Vec<u8>> {
    Some(match req {
        Request::Partial => return None,
        Request::Metrics { head } => response("200 OK", prometheus_text::CONTENT_TYPE, &render(), head),
        Request::NotFound => plain("404 Not Found"),
        Request::BadMethod => {
            let mut r = plain("405 Method Not Allowed");
            // Room for the Allow header before the blank line.
            let at = r.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
            r.splice(at..at, b"\r\nAllow: GET, HEAD".iter().copied());
            r
        }
        Request::Bad => plain("400 Bad Request"),
        Request::TooLarge => plain("431 Request Header Fields Too Large"),
    })
}

enum Phase {
    /// Reading the request.
    Reading,
    /// Writing the response from `written`.
    Writing,
    /// Response written, write side shut: reading what the peer still
    /// sends until it closes (so that unread input does not turn the close
    /// into a reset that loses the response).
    Draining,
}

struct Scrape {
    stream: TcpStream,
    buf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    phase: Phase,
    deadline: Instant,
}

/// The endpoint: its listener and scrape connections, for the driver's
/// mio loop. Tokens `base` (the listener) to `base + MAX_SCRAPES`.
pub struct Server {
    listener: TcpListener,
    base: usize,
    scrapes: Vec<Option<Scrape>>,
    rss: Rss,
}

impl Server {
    /// Bind `addr` and register the listener as token `base`.
    pub fn bind(addr: SocketAddr, registry: &Registry, base: usize) -> io::Result<Server> {
        use socket2::{Domain, Socket, Type};
        let listen = || -> io::Result<TcpListener> {
            let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            if addr.is_ipv6() {
                s.set_only_v6(true)?;
            }
            s.bind(&addr.into())?;
            s.listen(64)?;
            s.set_nonblocking(true)?;
            let mut listener = TcpListener::from_std(s.into());
            registry.register(&mut listener, Token(base), Interest::READABLE)?;
            Ok(listener)
        };
        let listener = listen().map_err(|e| io::Error::new(e.kind(), format!("MetricsAddress {addr}: {e}")))?;
        Ok(Server { listener, base, scrapes: (0..MAX_SCRAPES).map(|_| None).collect(), rss: Rss::open() })
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether `t` is one of the endpoint's tokens.
    pub fn owns(&self, t: Token) -> bool {
        (self.base..=self.base + MAX_SCRAPES).contains(&t.0)
    }

    /// The earliest scrape deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.scrapes.iter().flatten().map(|s| s.deadline).min()
    }

    /// A readiness event on one of the endpoint's tokens; `render` gives
    /// the metrics text (from the resident set size it is handed) when a
    /// request asks for it.
    pub fn on_event(
        &mut self,
        registry: &Registry,
        t: Token,
        now: Instant,
        render: &mut dyn FnMut(Option<u64>) -> String,
    ) {
        if t.0 == self.base {
            self.accept(registry, now);
            return;
        }
        let k = t.0 - self.base - 1;
        let rss = &self.rss;
        let done = match self.scrapes.get_mut(k).and_then(Option::as_mut) {
            Some(s) => !s.progress(&mut || render(rss.read())),
            None => false,
        };
        if done {
            self.close(registry, k);
        }
    }

    /// Close the connections past their deadline.
    pub fn on_timer(&mut self, registry: &Registry, now: Instant) {
        for k in 0..self.scrapes.len() {
            if self.scrapes[k].as_ref().is_some_and(|s| s.deadline <= now) {
                self.close(registry, k);
            }
        }
    }

    fn close(&mut self, registry: &Registry, k: usize) {
        if let Some(mut s) = self.scrapes.get_mut(k).and_then(Option::take) {
            let _ = registry.deregister(&mut s.stream);
        }
    }

    fn accept(&mut self, registry: &Registry, now: Instant) {
        for _ in 0..ACCEPT_BUDGET {
            let mut stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let Some(k) = self.scrapes.iter().position(Option::is_none) else {
                // All slots busy: say so (best effort, never blocking) and
                // close; what already arrived of the request is read first,
                // so that the close is not a reset that loses the answer.
                let mut sink = [0u8; 2048];
                for _ in 0..MAX_REQUEST / sink.len() {
                    if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
                        break;
                    }
                }
                let _ = stream.write(&plain("503 Service Unavailable"));
                let _ = stream.shutdown(Shutdown::Write);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let tok = Token(self.base + 1 + k);
            if registry.register(&mut stream, tok, Interest::READABLE | Interest::WRITABLE).is_err() {
                continue;
            }
            self.scrapes[k] = Some(Scrape {
                stream,
                buf: Vec::new(),
                out: Vec::new(),
                written: 0,
                phase: Phase::Reading,
                deadline: now + SCRAPE_DEADLINE,
            });
        }
        // Budget spent: re-arm so that epoll reports what is still pending.
        let _ = registry.reregister(&mut self.listener, Token(self.base), Interest::READABLE);
    }
}

impl Scrape {
    /// Move the connection on as far as its socket allows; false when it
    /// is finished (close it).
    fn progress(&mut self, render: &mut dyn FnMut() -> String) -> bool {
        if let Phase::Reading = self.phase {
            let mut chunk = [0u8; 2048];
            // Bounded: at most MAX_REQUEST bytes are kept, and reading stops
            // once the request is complete or refused.
            loop {
                let room = MAX_REQUEST - self.buf.len();
                if room == 0 {
                    break;
                }
                match self.stream.read(&mut chunk[..room.min(2048)]) {
                    Ok(0) => return false,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
            match answer(parse_request(&self.buf), render) {
                None => return true,
                Some(out) => {
                    self.out = out;
                    self.buf = Vec::new();
                    self.phase = Phase::Writing;
                }
            }
        }
        if let Phase::Writing = self.phase {
            while self.written < self.out.len() {
                match self.stream.write(&self.out[self.written..]) {
                    Ok(0) => return false,
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
            let _ = self.stream.shutdown(Shutdown::Write);
            self.out = Vec::new();
            self.phase = Phase::Draining;
        }
        let mut sink = [0u8; 2048];
        // Bounded by the deadline: whatever the peer sends is discarded.
        loop {
            match self.stream.read(&mut sink) {
                Ok(0) => return false,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Request::Metrics { head: false });
        assert_eq!(parse_request(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Request::Metrics { head: false });
        assert_eq!(parse_request(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Request::Metrics { head: true });
        assert_eq!(parse_request(b"GET /metrics HTTP/1.1\r\nHost"), Request::Partial);
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"), Request::BadMethod);
        assert_eq!(parse_request(b"\x00\x01garbage\r\n\r\n"), Request::Bad);
        let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_REQUEST, b'a');
        assert_eq!(parse_request(&big), Request::TooLarge);
        let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
        for i in 0..100 {
            many.extend_from_slice(format!("X{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&many), Request::TooLarge);
    }

    #[test]
    fn answers() {
        let mut calls = 0;
        let mut r = || {
            calls += 1;
            "m 1\n".to_string()
        };
        let ok = String::from_utf8(answer(Request::Metrics { head: false }, &mut r).unwrap()).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(ok.contains("Content-Length: 4\r\nConnection: close\r\n\r\nm 1\n"));
        let head = String::from_utf8(answer(Request::Metrics { head: true }, &mut r).unwrap()).unwrap();
        assert!(head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        let nf = String::from_utf8(answer(Request::NotFound, &mut r).unwrap()).unwrap();
        assert!(nf.starts_with("HTTP/1.1 404 Not Found\r\n"));
        let m = String::from_utf8(answer(Request::BadMethod, &mut r).unwrap()).unwrap();
        assert!(m.contains("\r\nAllow: GET, HEAD\r\n\r\n405"), "{m}");
        assert!(answer(Request::Partial, &mut r).is_none());
        assert_eq!(calls, 2);
    }

    #[test]
    fn rendering() {
        let mut s = Snapshot {
            daemon: "d1".into(),
            connections: 3,
            sessions: 2,
            groups: 1,
            local_memberships: 2,
            stats: Stats::default(),
            queues: ClientQueues { messages: 5, bytes: 500, max_messages: 4, max_bytes: 400 },
            ordering_queue: 0,
            ring: RingFigures::alone(),
            rss: Some(4096),
        };
        s.stats.received[4] = 7;
        s.stats.received_bytes[4] = 700;
        s.stats.delivered[5] = 9;
        let t = render(&s);
        for line in [
            "# HELP spread_sessions Client sessions connected (handshake completed)",
            "# TYPE spread_sessions gauge",
            "spread_sessions 2",
            "spread_connections 3",
            "spread_groups 1",
            "spread_group_members_local 2",
            "spread_daemon_info{daemon=\"d1\",version=\"",
            "# TYPE spread_messages_received_total counter",
            "spread_messages_received_total{service=\"AGREED\"} 7",
            "spread_messages_received_total{service=\"SAFE\"} 0",
            "spread_received_bytes_total{service=\"AGREED\"} 700",
            "spread_messages_delivered_total{service=\"SAFE\"} 9",
            "spread_delivered_bytes_total{service=\"RELIABLE\"} 0",
            "spread_client_queue_messages 5",
            "spread_client_queue_bytes 500",
            "spread_client_queue_max_messages 4",
            "spread_client_queue_max_bytes 400",
            "spread_ring_state{state=\"OP\"} 1",
            "spread_ring_state{state=\"GATHER\"} 0",
            "spread_ring_members 1",
            "spread_membership_changes_total 0",
            "spread_token_rotations_total 0",
            "spread_retransmissions_total 0",
            "spread_resident_memory_bytes 4096",
        ] {
            assert!(t.lines().any(|l| l.starts_with(line)), "no line {line:?} in\n{t}");
        }
        // Every sample has HELP and TYPE lines before it.
        let helps = t.lines().filter(|l| l.starts_with("# HELP ")).count();
        let types = t.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(helps, types);
        assert!(helps >= 25, "{helps} metrics");
    }

    #[test]
    fn rss_is_read() {
        let r = Rss::open();
        if std::path::Path::new("/proc/self/statm").exists() {
            let v = r.read().expect("statm");
            assert!(v > 1 << 20, "{v}");
        }
    }
}
