//! The mio driver: sockets and time in, engine actions out.
//!
//! * TCP listeners on every configured client address (SO_REUSEADDR, so a
//!   restarted daemon binds at once even with connections in TIME_WAIT) and
//!   the Unix socket `/tmp/<port>` (unlink, bind, chmod 0666; unlinked again
//!   on exit);
//! * reads go straight into the session's buffer (up to
//!   [`crate::engine::READ_CHUNK`] per call), writes gather many queued frames
//!   into one `writev`;
//! * edge-triggered readiness: a connection is read until `EAGAIN`, with a
//!   per-wakeup budget so one busy client cannot starve the others (the rest
//!   is resumed on the next loop turn);
//! * SIGINT / SIGTERM end the loop cleanly through a self-pipe; SIGHUP (like
//!   the monitor's RELOAD packet) asks the engine for a configuration reload,
//!   which the driver's [`Reloader`] reads once the engine says it is due;
//! * after a loop turn that had work, the loop keeps polling with a zero
//!   timeout for a short bounded time ([`DEFAULT_SPIN`], `SPREAD_POLL_SPIN_US`)
//!   before it blocks: a client's answer that arrives within that time is
//!   served without the daemon going to sleep and being woken again (on an
//!   otherwise idle multi-CPU host a wake-up costs tens of microseconds, and
//!   a round trip through the daemon has several). An idle daemon blocks.

use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::engine::monitor::{ControlOutcome, Monitor};
use crate::engine::ring::{Datagram, Port, Ring};
use crate::engine::{Accepted, Action, ConnId, ConnKind, Engine, Ordering, RingOfOne};

/// The daemon-to-daemon side of an ordering protocol, as the driver sees
/// it: datagrams and timers in, datagrams out. A ring of one has none.
pub trait RingNet {
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
    fn on_timer(&mut self, _now: Instant) {}
    fn on_datagram(&mut self, _now: Instant, _port: Port, _src: SocketAddr, _b: &[u8]) {}
    fn poll_send(&mut self) -> Option<Datagram> {
        None
    }
    /// A sent datagram's buffer, back for reuse.
    fn recycle(&mut self, _bytes: Vec<u8>) {}
    /// Serve the token socket before the data sockets (§4.9).
    fn token_first(&self) -> bool {
        false
    }
}

impl RingNet for RingOfOne {}

impl RingNet for Ring {
    fn next_deadline(&self) -> Option<Instant> {
        Ring::next_deadline(self)
    }
    fn on_timer(&mut self, now: Instant) {
        Ring::on_timer(self, now)
    }
    fn on_datagram(&mut self, now: Instant, port: Port, src: SocketAddr, b: &[u8]) {
        Ring::on_datagram(self, now, port, src, b)
    }
    fn poll_send(&mut self) -> Option<Datagram> {
        Ring::poll_send(self)
    }
    fn recycle(&mut self, bytes: Vec<u8>) {
        Ring::recycle(self, bytes)
    }
    fn token_first(&self) -> bool {
        self.token_has_priority()
    }
}

/// The daemon's UDP sockets (daemon spec §2.1).
#[derive(Clone, Debug, Default)]
pub struct UdpConfig {
    /// Receive sockets of port `P` (data, membership, hurry).
    pub data: Vec<SocketAddr>,
    /// More port-`P` receive sockets, bound with SO_REUSEADDR: the segment
    /// addresses of a shared segment when interfaces are listed (several
    /// daemons of one host may bind them).
    pub data_reuse: Vec<SocketAddr>,
    /// Receive sockets of port `P+1` (tokens).
    pub token: Vec<SocketAddr>,
    /// The send socket's address (`A:0`: receivers check the source IP).
    pub send: Option<SocketAddr>,
    /// IPv4 multicast groups to join on the data sockets, with the interface.
    pub multicast: Vec<(std::net::Ipv4Addr, std::net::Ipv4Addr)>,
    /// IPv6 multicast groups to join on the data sockets, with the interface
    /// index (the group's scope id, else this daemon's; 0 lets the kernel
    /// choose). The send socket's multicast interface is the first one.
    pub multicast_v6: Vec<(std::net::Ipv6Addr, u32)>,
    /// The status socket's address (`A:0`), from which monitor status
    /// replies are sent (daemon spec §8.4).
    pub status: Option<SocketAddr>,
}

/// Reads the configuration file again and checks it against the one in force
/// (see [`crate::engine::reload`]); `Err` says why it cannot be taken.
pub type Reloader = Box<dyn FnMut() -> Result<crate::engine::reload::Reload, String>>;

/// Why [`Driver::run`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// SIGINT or SIGTERM.
    Signal,
    /// A fatal condition (the monitor's kill): log it and stop as on any
    /// fatal error.
    Fatal(String),
}

/// Where to listen.
#[derive(Clone, Debug, Default)]
pub struct DriverConfig {
    pub tcp: Vec<SocketAddr>,
    /// Unix-domain socket path (`/tmp/<port>`), if any.
    pub unix_path: Option<PathBuf>,
    /// SO_REUSEADDR on the TCP listeners (`SocketPortReuse`): on unless the
    /// configuration says `OFF`, so that a restart binds at once even with
    /// connections in TIME_WAIT.
    pub no_port_reuse: bool,
    /// Daemon-to-daemon sockets (none for a ring of one).
    pub udp: UdpConfig,
    /// Where to serve the metrics endpoint (`MetricsAddress`; `None`: off).
    pub metrics: Option<SocketAddr>,
}

/// A non-blocking UDP socket bound to `a` (SO_BROADCAST on IPv4, large
/// buffers, SO_REUSEADDR when `reuse`).
fn udp_socket(a: SocketAddr, reuse: bool) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(a), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse {
        s.set_reuse_address(true)?;
    }
    if a.is_ipv4() {
        s.set_broadcast(true)?;
        s.set_multicast_ttl_v4(1)?;
    } else {
        s.set_multicast_hops_v6(1)?;
    }
    let _ = s.set_recv_buffer_size(UDP_BUFFER);
    let _ = s.set_send_buffer_size(UDP_BUFFER);
    s.bind(&a.into())?;
    s.set_nonblocking(true)?;
    Ok(UdpSocket::from_std(s.into()))
}

/// SO_RCVBUF / SO_SNDBUF of the daemon-to-daemon sockets.
const UDP_BUFFER: usize = 4 * 1024 * 1024;
/// Datagrams read per socket per loop turn before yielding.
const UDP_BUDGET: usize = 512;

/// A non-blocking TCP listener on `a`, with SO_REUSEADDR unless `no_reuse`;
/// `v6_only` when `0.0.0.0` is bound as well (else the two would collide).
fn tcp_listener(a: SocketAddr, no_reuse: bool, v6_only: bool) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(a), Type::STREAM, None)?;
    s.set_reuse_address(!no_reuse)?;
    if v6_only {
        s.set_only_v6(true)?;
    }
    s.bind(&a.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(TcpListener::from_std(s.into()))
}

const SIGNAL: Token = Token(0);
const LISTENER_BASE: usize = 1;
/// The metrics listener, then its scrape connections ([`crate::metrics`]).
const METRICS_BASE: usize = 1 << 18;
const UDP_BASE: usize = 1 << 19;
const CONN_BASE: usize = 1 << 20;
/// Reads per connection per wakeup before yielding to others.
const READ_BUDGET: usize = 8;
/// SO_SNDBUF / SO_RCVBUF of client connections.
const SOCKET_BUFFER: i32 = 200 * 1024;
/// Slices per writev (IOV_MAX is 1024 on Linux).
const MAX_IOV: usize = 1024;
/// How long the loop keeps polling without blocking after its last turn
/// with work.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);
/// Environment variable overriding [`DEFAULT_SPIN`], in microseconds (0 turns
/// the spin off; values are capped at [`MAX_SPIN`]).
pub const SPIN_ENV: &str = "SPREAD_POLL_SPIN_US";
/// Upper bound of the spin, whatever the environment says.
pub const MAX_SPIN: Duration = Duration::from_millis(10);

/// The spin time: `SPREAD_POLL_SPIN_US` if set and valid, else [`DEFAULT_SPIN`].
fn spin_from_env() -> Duration {
    std::env::var(SPIN_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|us| Duration::from_micros(us).min(MAX_SPIN))
        .unwrap_or(DEFAULT_SPIN)
}

/// The timeout of the next `poll`: zero while reads are pending or while the
/// spin after the last busy turn (`last_busy`) lasts, else until the engine's
/// next deadline (`None` = block until an event).
fn poll_timeout(
    now: Instant,
    pending_reads: bool,
    last_busy: Option<Instant>,
    spin: Duration,
    deadline: Option<Instant>,
) -> Option<Duration> {
    if pending_reads {
        return Some(Duration::ZERO);
    }
    if let Some(b) = last_busy {
        if now.saturating_duration_since(b) < spin {
            return Some(Duration::ZERO);
        }
    }
    deadline.map(|t| t.saturating_duration_since(now))
}

/// How long after a large release of memory the allocator is asked to
/// return it (at most one `malloc_trim` per this interval).
const TRIM_DELAY: Duration = Duration::from_secs(1);

/// Ask the allocator to return free memory to the system.
fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn fd(&self) -> i32 {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
    fn write_vectored(&mut self, b: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(b),
            Stream::Unix(s) => s.write_vectored(b),
        }
    }
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

struct Conn {
    id: ConnId,
    stream: Stream,
}

static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);

/// Byte written to the self-pipe for SIGINT/SIGTERM and for SIGHUP.
const SIG_STOP: u8 = 1;
const SIG_RELOAD: u8 = 2;

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_FD.load(AtomicOrdering::Relaxed);
    if fd >= 0 {
        let b = if sig == libc::SIGHUP { SIG_RELOAD } else { SIG_STOP };
        // SAFETY: write(2) is async-signal-safe; the buffer is a valid byte.
        unsafe {
            libc::write(fd, &b as *const u8 as *const libc::c_void, 1);
        }
    }
}

/// Create the self-pipe and route SIGINT/SIGTERM/SIGHUP to it. Returns the
/// read end.
fn install_signal_pipe() -> io::Result<i32> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    SIGNAL_FD.store(fds[1], AtomicOrdering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a plain handler is valid.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    Ok(fds[0])
}

fn set_sockopt(fd: i32, level: i32, name: i32, v: i32) {
    // SAFETY: v is a valid int for the duration of the call.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &v as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

/// Read buffers (`READ_CHUNK` = 128 KiB and more) are above glibc's initial
/// mmap threshold: each would be a fresh `mmap` whose pages fault in on the
/// first `recv` and go back to the kernel on `free`. Serve them from the heap
/// and keep up to `TRIM_THRESHOLD` of freed memory for reuse instead.
const MMAP_THRESHOLD: i32 = 4 * 1024 * 1024;
const TRIM_THRESHOLD: i32 = 32 * 1024 * 1024;

fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; no pointers involved.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Batched UDP I/O for the daemon-to-daemon sockets (Linux): many
/// datagrams per system call, without changing a byte of any datagram.
///
/// * Sending: everything the ring queued in one loop turn goes out in one
///   `sendmmsg`. First the data packets between two other datagrams
///   (tokens, membership, hurry: they stay where they are, and no data
///   packet moves across one) are grouped by destination, each
///   destination's in their order (the ring broadcasts packet by packet, so
///   destinations alternate: A1 B1 A2 B2 becomes A1 A2 B1 B2). A run of consecutive datagrams to one destination, all of
///   one size but the last (which may be shorter) and each at most
///   `MAX_PACKET_SIZE` (1472) bytes, is one message with the `UDP_SEGMENT`
///   control message (UDP GSO): the kernel builds, routes and hands down the
///   run once and cuts it into exactly those datagrams. Where GSO is
///   refused (old kernel, a device without checksum offload, a smaller MTU)
///   the run is sent datagram by datagram and GSO stays off.
/// * Receiving: `recvmmsg` into a set of 64 KiB buffers, and `UDP_GRO` on
///   the receive sockets: a run sent with GSO (on loopback), or merged by
///   the NIC's GRO, arrives as one buffer with its segment size, which is
///   split back into the datagrams.
mod udpio {
    use std::io;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

    use spread_wire::daemon::{
        order_of, CONTROL_TYPE, FORM_TYPE, HURRY_TYPE, MAX_PACKET_SIZE, MEMBERSHIP_TYPE, REGULAR_TYPE,
    };

    use crate::engine::ring::Datagram;

    const UDP_SEGMENT: libc::c_int = 103;
    const UDP_GRO: libc::c_int = 104;
    /// Most segments of one GSO send (the kernel's `UDP_MAX_SEGMENTS` is
    /// 64 on older kernels).
    const GSO_MAX_SEGS: usize = 64;
    /// Most payload bytes of one GSO send (below the 64 KiB IP limit).
    const GSO_MAX_BYTES: usize = 60_000;
    /// Messages per `sendmmsg` / `recvmmsg` (`UIO_MAXIOV` is 1024).
    const MAX_MSGS: usize = 1024;
    /// Receive buffers per `recvmmsg`.
    pub const RECV_BATCH: usize = 32;
    const RECV_BUF: usize = 65_536;

    /// Room for one control message with an int (aligned like `cmsghdr`).
    #[repr(C, align(8))]
    #[derive(Clone, Copy)]
    struct Cmsg([u8; 32]);

    fn raw_addr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: an all-zero sockaddr_storage is valid.
        let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match a {
            SocketAddr::V4(v4) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write(&mut st as *mut _ as *mut libc::sockaddr_in, sin) };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: v6.ip().octets() },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write(&mut st as *mut _ as *mut libc::sockaddr_in6, sin6) };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (st, len as libc::socklen_t)
    }

    fn from_raw(st: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
        match st.ss_family as libc::c_int {
            libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin = unsafe { &*(st as *const _ as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
            }
            libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let s = unsafe { &*(st as *const _ as *const libc::sockaddr_in6) };
                let ip = Ipv6Addr::from(s.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(ip, u16::from_be(s.sin6_port), s.sin6_flowinfo, s.sin6_scope_id)))
            }
            _ => None,
        }
    }

    /// Ask for GRO-merged receives on `fd` (best effort).
    pub fn enable_gro(fd: i32) -> bool {
        let one: libc::c_int = 1;
        // SAFETY: a valid int option value and its size.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_UDP,
                UDP_GRO,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        r == 0
    }

    /// A data packet (port P, a data service bit and nothing else of the
    /// kind)? Everything else is a barrier for [`group_by_destination`].
    pub fn is_data(b: &[u8]) -> bool {
        if b.len() > MAX_PACKET_SIZE {
            return false;
        }
        let Ok(order) = order_of(b) else { return false };
        let t = order.read_u32(&b[0..4]);
        t & REGULAR_TYPE != 0 && t & (CONTROL_TYPE | MEMBERSHIP_TYPE | HURRY_TYPE | FORM_TYPE) == 0
    }

    /// Reorder `ds` so that, between barriers (datagrams that are not
    /// [`is_data`]), the data packets to one destination are consecutive:
    /// destinations in the order of their first packet, each destination's
    /// packets in their order. Barriers keep their place and no data packet
    /// moves across one.
    pub fn group_by_destination(ds: &mut [Datagram], dests: &mut Vec<SocketAddr>) {
        let mut i = 0;
        while i < ds.len() {
            if !is_data(&ds[i].bytes) {
                i += 1;
                continue;
            }
            let start = i;
            dests.clear();
            let mut sorted = true;
            while i < ds.len() && is_data(&ds[i].bytes) {
                let to = ds[i].to;
                match dests.iter().position(|d| *d == to) {
                    Some(p) => sorted &= p + 1 == dests.len(),
                    None => dests.push(to),
                }
                i += 1;
            }
            if !sorted {
                // A stable sort: each destination's packets keep their order.
                ds[start..i].sort_by_key(|d| dests.iter().position(|x| *x == d.to).unwrap_or(usize::MAX));
            }
        }
    }

    /// One message of a send batch: datagrams `first .. first + count` of
    /// the batch, cut every `seg` bytes (GSO) when `count > 1`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Run {
        pub first: usize,
        pub count: usize,
        pub seg: usize,
    }

    /// Group `ds` into messages: with `gso`, runs of consecutive datagrams to
    /// one destination of one size (the last may be shorter), each at most
    /// `MAX_PACKET_SIZE` bytes, up to the GSO limits; else one per datagram.
    pub fn runs(ds: &[Datagram], gso: bool, out: &mut Vec<Run>) {
        out.clear();
        let mut i = 0;
        while i < ds.len() {
            let seg = ds[i].bytes.len();
            let mut count = 1;
            if gso && seg > 0 && seg <= MAX_PACKET_SIZE {
                let mut bytes = seg;
                while i + count < ds.len() && count < GSO_MAX_SEGS {
                    let d = &ds[i + count];
                    let l = d.bytes.len();
                    if d.to != ds[i].to || l == 0 || l > seg || bytes + l > GSO_MAX_BYTES {
                        break;
                    }
                    bytes += l;
                    count += 1;
                    if l < seg {
                        break;
                    }
                }
            }
            out.push(Run { first: i, count, seg });
            i += count;
        }
    }

    /// Reusable state of `sendmmsg`.
    pub struct Sender {
        gso: bool,
        dests: Vec<SocketAddr>,
        runs: Vec<Run>,
        iov: Vec<libc::iovec>,
        addrs: Vec<(libc::sockaddr_storage, libc::socklen_t)>,
        cmsgs: Vec<Cmsg>,
        hdrs: Vec<libc::mmsghdr>,
        /// System calls and messages (for tests and counters).
        pub calls: u64,
        pub gso_runs: u64,
    }

    impl Sender {
        pub fn new() -> Sender {
            Sender {
                gso: std::env::var_os("SPREAD_NO_UDP_GSO").is_none(),
                dests: Vec::new(),
                runs: Vec::new(),
                iov: Vec::new(),
                addrs: Vec::new(),
                cmsgs: Vec::new(),
                hdrs: Vec::new(),
                calls: 0,
                gso_runs: 0,
            }
        }

        #[cfg(test)]
        pub fn gso(&self) -> bool {
            self.gso
        }

        /// Send every datagram of `ds` on `fd` (grouped by destination
        /// first when GSO is on). A datagram the kernel refuses (full
        /// buffer, unreachable) is dropped, as a lost one would be.
        pub fn send_all(&mut self, fd: i32, ds: &mut [Datagram]) {
            if self.gso {
                group_by_destination(ds, &mut self.dests);
            }
            let ds = &*ds;
            let mut start = 0;
            // Bounded: each pass sends at least one datagram or drops it, or
            // turns GSO off (once).
            for _ in 0..ds.len() * 2 + 2 {
                if start >= ds.len() {
                    return;
                }
                start = self.send_from(fd, ds, start);
            }
        }

        /// Send `ds[start..]` in one `sendmmsg` (up to `MAX_MSGS` messages);
        /// returns where the next call must start.
        fn send_from(&mut self, fd: i32, ds: &[Datagram], start: usize) -> usize {
            let rest = &ds[start..];
            runs(rest, self.gso, &mut self.runs);
            self.runs.truncate(MAX_MSGS);
            let nruns = self.runs.len();
            let ndg: usize = self.runs.iter().map(|r| r.count).sum();
            self.iov.clear();
            self.addrs.clear();
            self.cmsgs.clear();
            self.hdrs.clear();
            for d in &rest[..ndg] {
                self.iov.push(libc::iovec { iov_base: d.bytes.as_ptr() as *mut libc::c_void, iov_len: d.bytes.len() });
            }
            for r in &self.runs {
                self.addrs.push(raw_addr(&rest[r.first].to));
                let mut c = Cmsg([0; 32]);
                if r.count > 1 {
                    // SAFETY: building a control message inside a buffer
                    // large enough for CMSG_SPACE(sizeof u16), through a
                    // msghdr that describes exactly that buffer.
                    unsafe {
                        let mut m: libc::msghdr = std::mem::zeroed();
                        m.msg_control = c.0.as_mut_ptr() as *mut libc::c_void;
                        m.msg_controllen = libc::CMSG_SPACE(2) as _;
                        let h = libc::CMSG_FIRSTHDR(&m);
                        (*h).cmsg_level = libc::SOL_UDP;
                        (*h).cmsg_type = UDP_SEGMENT;
                        (*h).cmsg_len = libc::CMSG_LEN(2) as _;
                        std::ptr::write_unaligned(libc::CMSG_DATA(h) as *mut u16, r.seg as u16);
                    }
                }
                self.cmsgs.push(c);
            }
            for k in 0..nruns {
                let r = self.runs[k];
                // SAFETY: an all-zero msghdr is valid; the pointers set below
                // point into vectors that are not touched until the call ends.
                let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
                m.msg_name = &mut self.addrs[k].0 as *mut libc::sockaddr_storage as *mut libc::c_void;
                m.msg_namelen = self.addrs[k].1;
                m.msg_iov = &mut self.iov[r.first] as *mut libc::iovec;
                m.msg_iovlen = r.count as _;
                if r.count > 1 {
                    m.msg_control = self.cmsgs[k].0.as_mut_ptr() as *mut libc::c_void;
                    // SAFETY: CMSG_SPACE is a pure size computation.
                    m.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as _;
                }
                self.hdrs.push(libc::mmsghdr { msg_hdr: m, msg_len: 0 });
            }
            self.calls += 1;
            // SAFETY: hdrs holds nruns valid mmsghdr whose buffers (the
            // datagrams, iov, addrs, cmsgs) outlive the call.
            let sent = unsafe { libc::sendmmsg(fd, self.hdrs.as_mut_ptr(), nruns as libc::c_uint, 0) };
            let err = io::Error::last_os_error();
            let sent = if sent < 0 { 0 } else { sent as usize };
            self.gso_runs += self.runs[..sent].iter().filter(|r| r.count > 1).count() as u64;
            let done: usize = self.runs[..sent].iter().map(|r| r.count).sum();
            if sent == nruns {
                return start + done;
            }
            // Message `sent` failed.
            let failed = self.runs[sent];
            if err.kind() == io::ErrorKind::Interrupted {
                return start + done;
            }
            let gso_refused = failed.count > 1
                && matches!(
                    err.raw_os_error(),
                    Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP | libc::EMSGSIZE)
                );
            if gso_refused {
                tracing::info!(target: "spread::network", "UDP GSO refused ({err}): sending datagrams one by one");
                self.gso = false;
                return start + done;
            }
            tracing::debug!(target: "spread::network", "udp send to {}: {err}", rest[failed.first].to);
            start + done + failed.count
        }
    }

    /// Reusable buffers of `recvmmsg`.
    pub struct Receiver {
        bufs: Vec<u8>,
        iov: Vec<libc::iovec>,
        addrs: Vec<libc::sockaddr_storage>,
        cmsgs: Vec<Cmsg>,
        hdrs: Vec<libc::mmsghdr>,
        got: usize,
    }

    impl Receiver {
        pub fn new() -> Receiver {
            Receiver {
                bufs: vec![0u8; RECV_BATCH * RECV_BUF],
                iov: Vec::with_capacity(RECV_BATCH),
                // SAFETY: all-zero sockaddr_storage values are valid.
                addrs: vec![unsafe { std::mem::zeroed() }; RECV_BATCH],
                cmsgs: vec![Cmsg([0; 32]); RECV_BATCH],
                hdrs: Vec::with_capacity(RECV_BATCH),
                got: 0,
            }
        }

        /// One `recvmmsg` on `fd`: the number of messages received.
        pub fn recv(&mut self, fd: i32) -> io::Result<usize> {
            self.got = 0;
            self.iov.clear();
            self.hdrs.clear();
            let base = self.bufs.as_mut_ptr();
            for k in 0..RECV_BATCH {
                // SAFETY: k * RECV_BUF + RECV_BUF <= bufs.len().
                let p = unsafe { base.add(k * RECV_BUF) };
                self.iov.push(libc::iovec { iov_base: p as *mut libc::c_void, iov_len: RECV_BUF });
            }
            for k in 0..RECV_BATCH {
                // SAFETY: an all-zero msghdr is valid; the pointers point
                // into this receiver's vectors, untouched during the call.
                let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
                m.msg_name = &mut self.addrs[k] as *mut libc::sockaddr_storage as *mut libc::c_void;
                m.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                m.msg_iov = &mut self.iov[k] as *mut libc::iovec;
                m.msg_iovlen = 1;
                m.msg_control = self.cmsgs[k].0.as_mut_ptr() as *mut libc::c_void;
                m.msg_controllen = std::mem::size_of::<Cmsg>() as _;
                self.hdrs.push(libc::mmsghdr { msg_hdr: m, msg_len: 0 });
            }
            // SAFETY: hdrs holds RECV_BATCH valid mmsghdr over our buffers.
            let n = unsafe {
                libc::recvmmsg(fd, self.hdrs.as_mut_ptr(), RECV_BATCH as libc::c_uint, 0, std::ptr::null_mut())
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            self.got = n as usize;
            Ok(self.got)
        }

        /// Message `k` of the last [`Receiver::recv`]: its source, its bytes
        /// and its GRO segment size (`None`: one datagram).
        pub fn message(&self, k: usize) -> Option<(SocketAddr, &[u8], Option<usize>)> {
            if k >= self.got {
                return None;
            }
            let h = &self.hdrs[k];
            let src = from_raw(&self.addrs[k], h.msg_hdr.msg_namelen)?;
            if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                return None;
            }
            let len = (h.msg_len as usize).min(RECV_BUF);
            let data = &self.bufs[k * RECV_BUF..k * RECV_BUF + len];
            let mut seg = None;
            // SAFETY: walking the control messages the kernel wrote, within
            // the length it reported in this message's header.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&h.msg_hdr);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO {
                        let dl = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                        let v = if dl >= 4 {
                            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32) as usize
                        } else {
                            std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const u16) as usize
                        };
                        if v > 0 && v < len {
                            seg = Some(v);
                        }
                    }
                    c = libc::CMSG_NXTHDR(&h.msg_hdr, c);
                }
            }
            Some((src, data, seg))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn dg(port: u16, len: usize) -> Datagram {
            Datagram { to: SocketAddr::from(([127, 0, 0, 1], port)), bytes: vec![len as u8; len] }
        }

        #[test]
        fn runs_group_same_destination_and_size() {
            let ds =
                vec![dg(1, 100), dg(1, 100), dg(1, 60), dg(1, 100), dg(2, 100), dg(2, 100), dg(2, 2000), dg(2, 2000)];
            let mut r = Vec::new();
            runs(&ds, true, &mut r);
            assert_eq!(
                r,
                vec![
                    Run { first: 0, count: 3, seg: 100 },
                    Run { first: 3, count: 1, seg: 100 },
                    Run { first: 4, count: 2, seg: 100 },
                    Run { first: 6, count: 1, seg: 2000 },
                    Run { first: 7, count: 1, seg: 2000 },
                ]
            );
            runs(&ds, false, &mut r);
            assert_eq!(r.len(), ds.len());
            let many: Vec<Datagram> = (0..200).map(|_| dg(1, 1472)).collect();
            runs(&many, true, &mut r);
            assert!(r.iter().all(|x| x.count * 1472 <= GSO_MAX_BYTES && x.count <= GSO_MAX_SEGS));
            assert_eq!(r.iter().map(|x| x.count).sum::<usize>(), 200);
        }

        fn packet(port: u16, ty: u32, tag: u8) -> Datagram {
            let mut b = Vec::new();
            spread_wire::Order::NATIVE.push_u32(&mut b, ty | 0x8000_0080);
            b.extend_from_slice(&[tag; 36]);
            Datagram { to: SocketAddr::from(([127, 0, 0, 1], port)), bytes: b }
        }

        #[test]
        fn data_is_grouped_by_destination_between_barriers() {
            use spread_wire::daemon::{AGREED_TYPE, ALIVE_TYPE, RELIABLE_TYPE};
            let token = |tag| packet(9, 0x0003_0000, tag);
            let mut ds = vec![
                packet(1, AGREED_TYPE, 1),
                packet(2, AGREED_TYPE, 2),
                packet(1, RELIABLE_TYPE, 3),
                packet(2, RELIABLE_TYPE, 4),
                packet(3, AGREED_TYPE, 5),
                packet(1, AGREED_TYPE, 6),
                token(7),
                packet(2, AGREED_TYPE, 8),
                packet(1, AGREED_TYPE, 9),
                packet(2, AGREED_TYPE, 10),
                packet(1, ALIVE_TYPE, 11),
                packet(1, AGREED_TYPE, 12),
            ];
            assert!(ds.iter().map(|d| &d.bytes[..]).filter(|b| is_data(b)).count() == 10);
            let mut dests = Vec::new();
            group_by_destination(&mut ds, &mut dests);
            let tags: Vec<u8> = ds.iter().map(|d| d.bytes[4]).collect();
            assert_eq!(tags, vec![1, 3, 6, 2, 4, 5, 7, 8, 10, 9, 11, 12]);
        }

        /// Datagrams sent in batches (with GSO where the kernel has it)
        /// arrive as the same datagrams, in order, whether the receiver
        /// asked for GRO or not.
        #[test]
        fn batches_arrive_as_the_same_datagrams() {
            for gro in [false, true] {
                let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                rx.set_nonblocking(true).unwrap();
                use std::os::fd::AsRawFd;
                // Room for the whole burst (the default buffer holds ~90).
                super::super::set_sockopt(rx.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20);
                if gro {
                    enable_gro(rx.as_raw_fd());
                }
                let to = rx.local_addr().unwrap();
                let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let mut ds: Vec<Datagram> = Vec::new();
                for k in 0..150usize {
                    let len = if k % 50 == 49 { 300 } else { 1472 };
                    let mut b = vec![0u8; len];
                    b[..8].copy_from_slice(&(k as u64).to_le_bytes());
                    ds.push(Datagram { to, bytes: b });
                }
                let mut s = Sender::new();
                s.send_all(tx.as_raw_fd(), &mut ds);
                let mut r = Receiver::new();
                let mut got: Vec<Vec<u8>> = Vec::new();
                for _ in 0..1000 {
                    if got.len() >= ds.len() {
                        break;
                    }
                    match r.recv(rx.as_raw_fd()) {
                        Ok(n) => {
                            for k in 0..n {
                                let (src, data, seg) = r.message(k).unwrap();
                                assert_eq!(src, tx.local_addr().unwrap());
                                match seg {
                                    Some(sz) => got.extend(data.chunks(sz).map(|c| c.to_vec())),
                                    None => got.push(data.to_vec()),
                                }
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(std::time::Duration::from_millis(1))
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                let key = |b: &Vec<u8>| (b.len(), b[..8].to_vec());
                let want: Vec<_> = ds.iter().map(|d| key(&d.bytes)).collect();
                let got_k: Vec<_> = got.iter().map(key).collect();
                assert_eq!(got_k, want, "gro {gro}, gso {}", s.gso());
                assert!(got.iter().zip(&ds).all(|(g, d)| *g == d.bytes));
                assert!(s.calls <= 3, "{} sendmmsg calls", s.calls);
                if s.gso() {
                    assert!(s.gso_runs >= 3, "{} GSO runs", s.gso_runs);
                }
            }
        }
    }
}

/// The running daemon: listeners, connections, the daemon-to-daemon
/// sockets and the engine.
pub struct Driver<O: Ordering + RingNet = RingOfOne> {
    poll: Poll,
    engine: Engine<O>,
    /// Receive sockets and the port each serves.
    udp: Vec<(UdpSocket, Port)>,
    /// Receive sockets with datagrams left after their budget.
    udp_pending: Vec<usize>,
    udp_send: Option<UdpSocket>,
    /// Batched receive and send state (see [`udpio`]).
    udp_rx: udpio::Receiver,
    udp_tx: udpio::Sender,
    /// The datagrams of one send batch (kept for its memory).
    udp_out: Vec<Datagram>,
    /// Sends monitor status replies.
    udp_status: Option<UdpSocket>,
    /// The metrics endpoint, when configured.
    metrics: Option<crate::metrics::Server>,
    /// Set when a fatal condition ends the loop.
    exit: Option<Exit>,
    /// Reads the configuration again when a reload is due.
    reloader: Option<Reloader>,
    listeners: Vec<Listener>,
    conns: Vec<Option<Conn>>,
    unix_path: Option<PathBuf>,
    signal_fd: i32,
    pending_reads: Vec<ConnId>,
    /// Connections with unread input while the engine pauses reading.
    paused_reads: Vec<ConnId>,
    /// Scratch for `resume_paced`.
    resumed: Vec<ConnId>,
    /// Zero-timeout polling after a turn with work (see the module docs).
    spin: Duration,
    /// The slice list of `writev`, kept empty between flushes so its memory
    /// is reused (see [`reuse_iov`]).
    iov_store: Vec<IoSlice<'static>>,
}

/// An empty `Vec<IoSlice>` of any lifetime, in the memory of `v`: mapping
/// the (cleared) vector's items into the same type collects in place, so
/// no allocation happens per flush.
fn reuse_iov<'a, 'b>(mut v: Vec<IoSlice<'a>>) -> Vec<IoSlice<'b>> {
    v.clear();
    v.into_iter().map(|_| IoSlice::new(&[])).collect()
}

impl<O: Ordering + RingNet> Driver<O> {
    /// Bind everything. Fails if a listener cannot be bound.
    pub fn bind(engine: Engine<O>, cfg: &DriverConfig) -> io::Result<Driver<O>> {
        tune_allocator();
        let poll = Poll::new()?;
        let mut listeners = Vec::new();
        for a in &cfg.tcp {
            let v4_any = cfg.tcp.iter().any(|x| x.is_ipv4() && x.ip().is_unspecified());
            let mut l = tcp_listener(*a, cfg.no_port_reuse, a.is_ipv6() && a.ip().is_unspecified() && v4_any)?;
            poll.registry().register(&mut l, Token(LISTENER_BASE + listeners.len()), Interest::READABLE)?;
            listeners.push(Listener::Tcp(l));
        }
        if let Some(p) = &cfg.unix_path {
            let _ = std::fs::remove_file(p);
            let mut l = UnixListener::bind(p)?;
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o666));
            poll.registry().register(&mut l, Token(LISTENER_BASE + listeners.len()), Interest::READABLE)?;
            listeners.push(Listener::Unix(l));
        }
        let mut udp = Vec::new();
        for (addrs, port, reuse) in [
            (&cfg.udp.data, Port::Data, false),
            (&cfg.udp.data_reuse, Port::Data, true),
            (&cfg.udp.token, Port::Token, false),
        ] {
            for a in addrs {
                let mut s = udp_socket(*a, reuse)?;
                udpio::enable_gro(s.as_raw_fd());
                poll.registry().register(&mut s, Token(UDP_BASE + udp.len()), Interest::READABLE)?;
                udp.push((s, port));
            }
        }
        for (group, iface) in &cfg.udp.multicast {
            for (s, port) in &udp {
                if *port == Port::Data {
                    if let Err(e) = s.join_multicast_v4(group, iface) {
                        tracing::warn!(target: "spread::network", "cannot join multicast group {group}: {e}");
                    }
                }
            }
        }
        for (group, ifindex) in &cfg.udp.multicast_v6 {
            for (s, port) in &udp {
                if *port == Port::Data {
                    if let Err(e) = s.join_multicast_v6(group, *ifindex) {
                        tracing::warn!(
                            target: "spread::network",
                            "cannot join multicast group {group} on interface {ifindex}: {e}"
                        );
                    }
                }
            }
        }
        let udp_send = match cfg.udp.send {
            Some(a) => Some(udp_socket(a, false)?),
            None => None,
        };
        if let (Some(s), Some((_, ifindex))) = (&udp_send, cfg.udp.multicast_v6.first()) {
            if *ifindex != 0 {
                let _ = socket2::SockRef::from(s).set_multicast_if_v6(*ifindex);
            }
        }
        let udp_status = match cfg.udp.status {
            Some(a) => Some(udp_socket(a, false)?),
            None => None,
        };
        let metrics = match cfg.metrics {
            Some(a) => Some(crate::metrics::Server::bind(a, poll.registry(), METRICS_BASE)?),
            None => None,
        };
        let signal_fd = install_signal_pipe()?;
        poll.registry().register(&mut SourceFd(&signal_fd), SIGNAL, Interest::READABLE)?;
        Ok(Driver {
            poll,
            engine,
            udp,
            udp_pending: Vec::new(),
            udp_send,
            udp_rx: udpio::Receiver::new(),
            udp_tx: udpio::Sender::new(),
            udp_out: Vec::new(),
            udp_status,
            metrics,
            exit: None,
            reloader: None,
            listeners,
            conns: Vec::new(),
            unix_path: cfg.unix_path.clone(),
            signal_fd,
            pending_reads: Vec::new(),
            paused_reads: Vec::new(),
            resumed: Vec::new(),
            spin: spin_from_env(),
            iov_store: Vec::with_capacity(64),
        })
    }

    /// Local addresses of the TCP listeners (useful with port 0).
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| match l {
                Listener::Tcp(t) => t.local_addr().ok(),
                Listener::Unix(_) => None,
            })
            .collect()
    }

    pub fn engine(&self) -> &Engine<O> {
        &self.engine
    }

    /// The metrics endpoint's address, when it is on (useful with port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|m| m.local_addr().ok())
    }

    /// Local addresses of the UDP receive sockets (useful with port 0).
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp.iter().filter_map(|(s, _)| s.local_addr().ok()).collect()
    }

    /// What reads the configuration again on a reload (SIGHUP, the monitor's
    /// RELOAD); without one a reload is refused.
    pub fn set_reloader(&mut self, r: Reloader) {
        self.reloader = Some(r);
    }

    /// Set the time the loop keeps polling without blocking after a turn with
    /// work (zero: block at once; capped at [`MAX_SPIN`]).
    pub fn set_spin(&mut self, spin: Duration) {
        self.spin = spin.min(MAX_SPIN);
    }

    /// The current spin time.
    pub fn spin(&self) -> Duration {
        self.spin
    }

    /// Run until SIGINT/SIGTERM or a fatal condition.
    pub fn run(mut self) -> io::Result<Exit> {
        let mut events = Events::with_capacity(1024);
        let mut stop = false;
        // When the last turn that had events ended (None: not since the
        // spin ran out).
        let mut last_busy: Option<Instant> = None;
        // When to hand freed memory back to the system (engine::queues).
        let mut trim_at: Option<Instant> = None;
        while !stop && self.exit.is_none() {
            self.resume_paced();
            let now = Instant::now();
            let deadline = [
                self.engine.next_timeout(),
                self.engine.ordering_ref().next_deadline(),
                trim_at,
                self.metrics.as_ref().and_then(|m| m.next_deadline()),
            ]
            .into_iter()
            .flatten()
            .min();
            let pending = !self.pending_reads.is_empty() || !self.udp_pending.is_empty();
            let timeout = poll_timeout(now, pending, last_busy, self.spin, deadline);
            if timeout != Some(Duration::ZERO) {
                last_busy = None;
            } else if !pending {
                // SAFETY: sched_yield has no arguments and no memory effects.
                unsafe { libc::sched_yield() };
            }
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let busy = !events.is_empty();
            for ev in events.iter() {
                match ev.token() {
                    SIGNAL => {
                        let mut b = [0u8; 64];
                        // SAFETY: reading into a local buffer of the given size.
                        let n = unsafe { libc::read(self.signal_fd, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
                        let got = &b[..n.max(0) as usize];
                        if got.contains(&SIG_RELOAD) {
                            tracing::info!(target: "spread::conf", print = true, event = "reload_requested",
                                trigger = "SIGHUP", "Received SIGHUP: re-reading the configuration");
                            self.engine.request_reload();
                        }
                        stop |= got.contains(&SIG_STOP);
                    }
                    Token(t) if (UDP_BASE..CONN_BASE).contains(&t) => {
                        if !self.udp_pending.contains(&(t - UDP_BASE)) {
                            self.udp_pending.push(t - UDP_BASE);
                        }
                    }
                    Token(t) if t >= CONN_BASE => {
                        let idx = t - CONN_BASE;
                        let Some(id) = self.conns.get(idx).and_then(|c| c.as_ref()).map(|c| c.id) else { continue };
                        if ev.is_writable() {
                            self.flush(id);
                        }
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.read(id);
                        }
                        self.drain_actions();
                    }
                    Token(t) if (METRICS_BASE..UDP_BASE).contains(&t) => self.metrics_event(Token(t)),
                    Token(t) => self.accept(t - LISTENER_BASE),
                }
            }
            if !self.udp_pending.is_empty() {
                self.read_udp();
            }
            self.resume_paced();
            if !self.paused_reads.is_empty() && !self.engine.reading_paused() {
                let mut p = std::mem::take(&mut self.paused_reads);
                self.pending_reads.append(&mut p);
            }
            if !self.pending_reads.is_empty() {
                let pending = std::mem::take(&mut self.pending_reads);
                for id in pending {
                    self.read(id);
                    self.drain_actions();
                }
            }
            let now = Instant::now();
            if self.engine.next_timeout().is_some_and(|t| t <= now) {
                self.engine.on_timeout(now);
                self.drain_actions();
            }
            if self.engine.ordering_ref().next_deadline().is_some_and(|t| t <= now) {
                self.engine.ordering().on_timer(now);
                self.engine.deliver_ready();
                self.drain_actions();
            }
            if let Some(m) = self.metrics.as_mut() {
                if m.next_deadline().is_some_and(|t| t <= now) {
                    m.on_timer(self.poll.registry(), now);
                }
            }
            if self.engine.reload_due() {
                self.reload();
            }
            self.send_udp();
            if trim_at.is_some_and(|t| t <= now) {
                trim_at = None;
                self.engine.memory_trimmed();
                return_free_memory();
            } else if trim_at.is_none() && self.engine.memory_released() >= crate::engine::queues::TRIM_MIN {
                trim_at = Some(now + TRIM_DELAY);
            }
            if busy && !self.spin.is_zero() {
                last_busy = Some(now);
            }
        }
        Ok(self.exit.take().unwrap_or(Exit::Signal))
    }

    /// A readiness event of the metrics endpoint: the figures are read from
    /// the engine only if a scrape asks for them now.
    fn metrics_event(&mut self, t: Token) {
        let Some(m) = self.metrics.as_mut() else { return };
        let engine = &self.engine;
        let mut render = |rss| crate::metrics::render(&crate::metrics::Snapshot::of(engine, rss));
        m.on_event(self.poll.registry(), t, Instant::now(), &mut render);
    }

    /// Re-read the configuration for the reload the engine says is due and
    /// hand it over, or tell the engine it was refused.
    fn reload(&mut self) {
        let outcome = match self.reloader.as_mut() {
            Some(r) => r(),
            None => Err("this daemon runs on its embedded default configuration: there is no file to re-read".into()),
        };
        match outcome {
            Ok(r) => {
                self.engine.apply_reload(Instant::now(), &r);
                self.drain_actions();
            }
            Err(why) => {
                tracing::error!(target: "spread::conf", print = true, event = "reload_refused", reason = %why,
                    "Configuration reload refused: {why}; the daemon keeps running on the configuration in force");
                self.engine.reload_refused();
            }
        }
    }

    /// Read the UDP sockets that signalled (data before token unless the
    /// ring asks for the token first), each up to its budget.
    fn read_udp(&mut self) {
        let mut pending = std::mem::take(&mut self.udp_pending);
        let token_first = self.engine.ordering_ref().token_first();
        pending.sort_by_key(|&i| {
            let is_token = self.udp.get(i).is_some_and(|(_, p)| *p == Port::Token);
            (is_token != token_first, i)
        });
        for i in pending {
            let Some((sock, port)) = self.udp.get(i) else { continue };
            let (fd, port) = (sock.as_raw_fd(), *port);
            let mut more = true;
            for _ in 0..UDP_BUDGET / udpio::RECV_BATCH {
                match self.udp_rx.recv(fd) {
                    Ok(n) => {
                        let now = Instant::now();
                        for k in 0..n {
                            let Some((src, data, seg)) = self.udp_rx.message(k) else { continue };
                            let sz = seg.unwrap_or(data.len()).max(1);
                            for d in data.chunks(sz) {
                                if port == Port::Data && Monitor::is_control(d) {
                                    match self.engine.on_control(now, src, d) {
                                        ControlOutcome::Done => {}
                                        ControlOutcome::Exit(msg) => self.exit = Some(Exit::Fatal(msg)),
                                        ControlOutcome::Reload => {
                                            tracing::info!(target: "spread::prot", print = true,
                                                "Prot_handle_conf_reload: the monitor at {src} asks for a configuration reload");
                                            self.engine.request_reload();
                                        }
                                    }
                                } else {
                                    self.engine.ordering().on_datagram(now, port, src, d);
                                }
                            }
                        }
                        if n < udpio::RECV_BATCH {
                            more = false;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        more = false;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::debug!(target: "spread::network", "udp receive: {e}");
                        more = false;
                        break;
                    }
                }
            }
            if more {
                self.udp_pending.push(i);
            }
        }
        self.engine.deliver_ready();
        self.drain_actions();
        self.send_udp();
        self.send_status_replies();
    }

    /// Send the monitor status replies the engine queued, from the status
    /// socket (or the send socket when there is none).
    fn send_status_replies(&mut self) {
        while let Some(d) = self.engine.poll_status_reply() {
            let Some(sock) = self.udp_status.as_ref().or(self.udp_send.as_ref()) else { continue };
            if let Err(e) = sock.send_to(&d.bytes, d.to) {
                tracing::debug!(target: "spread::status", "status reply to {}: {e}", d.to);
            }
        }
    }

    /// Send what the ring queued, batched (see [`udpio`]). A full socket
    /// buffer drops the datagram (the ring recovers lost datagrams).
    fn send_udp(&mut self) {
        let Some(sock) = &self.udp_send else {
            while self.engine.ordering().poll_send().is_some() {}
            return;
        };
        let fd = sock.as_raw_fd();
        let mut out = std::mem::take(&mut self.udp_out);
        out.clear();
        while let Some(d) = self.engine.ordering().poll_send() {
            out.push(d);
        }
        if !out.is_empty() {
            self.udp_tx.send_all(fd, &mut out);
        }
        for d in out.drain(..) {
            self.engine.ordering().recycle(d.bytes);
        }
        self.udp_out = out;
    }

    fn accept(&mut self, li: usize) {
        // Bounded: at most this many accepts per wakeup (edge-triggered, so
        // the listener is put back by a zero-timeout turn if more remain).
        for _ in 0..256 {
            let Some(l) = self.listeners.get(li) else { return };
            let (stream, kind, peer) = match l {
                Listener::Tcp(l) => match l.accept() {
                    Ok((s, a)) => {
                        let _ = s.set_nodelay(true);
                        set_sockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
                        (Stream::Tcp(s), ConnKind::Tcp, Some(a))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                },
                Listener::Unix(l) => match l.accept() {
                    Ok((s, _)) => (Stream::Unix(s), ConnKind::Unix, None),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                },
            };
            // Socket buffers as the original sets them (up to 200 KiB each):
            // room for bursts before a reader counts as slow.
            let fd = stream.fd();
            set_sockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, SOCKET_BUFFER);
            set_sockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, SOCKET_BUFFER);
            let now = Instant::now();
            // The socket descriptor is the session's mailbox, as in the original.
            match self.engine.accept_mailbox(now, kind, peer, fd) {
                Accepted::Rejected(bytes) => {
                    let mut s = stream;
                    let _ = s.write_vectored(&[IoSlice::new(&bytes)]);
                }
                Accepted::Conn(id) => {
                    let mut conn = Conn { id, stream };
                    let tok = Token(CONN_BASE + id.idx as usize);
                    if self
                        .poll
                        .registry()
                        .register(conn.stream.source(), tok, Interest::READABLE | Interest::WRITABLE)
                        .is_err()
                    {
                        self.engine.on_closed(now, id);
                        self.drain_actions();
                        continue;
                    }
                    let i = id.idx as usize;
                    if self.conns.len() <= i {
                        self.conns.resize_with(i + 1, || None);
                    }
                    self.conns[i] = Some(conn);
                    self.drain_actions();
                }
            }
        }
        // Budget used up: there may be more waiting.
        self.pending_accept(li);
    }

    fn pending_accept(&mut self, li: usize) {
        // Re-arm by reregistering: epoll reports the listener again if a
        // connection is still pending.
        if let Some(l) = self.listeners.get_mut(li) {
            let tok = Token(LISTENER_BASE + li);
            let _ = match l {
                Listener::Tcp(l) => self.poll.registry().reregister(l, tok, Interest::READABLE),
                Listener::Unix(l) => self.poll.registry().reregister(l, tok, Interest::READABLE),
            };
        }
    }

    fn conn_fd(&self, id: ConnId) -> Option<i32> {
        let c = self.conns.get(id.idx as usize)?.as_ref()?;
        (c.id == id).then(|| c.stream.fd())
    }

    /// Read from a connection until EAGAIN, EOF or the budget is spent.
    fn read(&mut self, id: ConnId) {
        let Some(fd) = self.conn_fd(id) else { return };
        for _ in 0..READ_BUDGET {
            if self.engine.reading_paused() {
                if !self.paused_reads.contains(&id) {
                    self.paused_reads.push(id);
                }
                return;
            }
            if self.engine.read_paused(id) {
                // A recipient of its messages is congested; the engine names
                // it in take_resumed when it may be read again.
                return;
            }
            let Some(buf) = self.engine.recv_buf(id) else { return };
            let spare = buf.spare_capacity_mut();
            let cap = spare.len();
            // SAFETY: recv writes at most `cap` bytes into the spare capacity,
            // and exactly the returned count is then marked initialised.
            let n = unsafe { libc::recv(fd, spare.as_mut_ptr() as *mut libc::c_void, cap, 0) };
            if n > 0 {
                let n = n as usize;
                // SAFETY: n ≤ cap bytes were just written by recv.
                unsafe { buf.set_len(buf.len() + n) };
                self.engine.on_received(Instant::now(), id);
                self.drain_actions();
                continue;
            }
            if n == 0 {
                self.engine.on_closed(Instant::now(), id);
                return;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return,
                io::ErrorKind::Interrupted => continue,
                _ => {
                    self.engine.on_closed(Instant::now(), id);
                    return;
                }
            }
        }
        self.pending_reads.push(id);
    }

    /// Senders whose pacing ended: parse the frames they have buffered,
    /// then read their sockets again (see `engine::pacing`).
    fn resume_paced(&mut self) {
        let mut ids = std::mem::take(&mut self.resumed);
        self.engine.take_resumed(&mut ids);
        for &id in &ids {
            if self.engine.read_paused(id) {
                continue;
            }
            self.engine.on_received(Instant::now(), id);
            self.drain_actions();
            if !self.pending_reads.contains(&id) {
                self.pending_reads.push(id);
            }
        }
        ids.clear();
        self.resumed = ids;
    }

    /// Write what the engine has queued for `id`.
    fn flush(&mut self, id: ConnId) {
        let idx = id.idx as usize;
        // Bounded: each turn writes up to MAX_IOV frames or stops.
        for _ in 0..64 {
            let Some(Some(conn)) = self.conns.get_mut(idx) else { return };
            if conn.id != id {
                return;
            }
            let mut iov: Vec<IoSlice<'_>> = reuse_iov(std::mem::take(&mut self.iov_store));
            let offered = self.engine.out_slices(id, &mut iov, MAX_IOV);
            if offered == 0 {
                self.iov_store = reuse_iov(iov);
                self.engine.set_write_blocked(id, false);
                return;
            }
            let r = conn.stream.write_vectored(&iov);
            self.iov_store = reuse_iov(iov);
            match r {
                Ok(n) => {
                    self.engine.on_written(id, n);
                    if n < offered {
                        self.engine.set_write_blocked(id, true);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.engine.set_write_blocked(id, true);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.engine.on_closed(Instant::now(), id);
                    return;
                }
            }
        }
    }

    fn drain_actions(&mut self) {
        // Bounded by what the engine queued: flushing never creates actions
        // except through on_closed, which only adds Close/Flush for others a
        // finite number of times.
        for _ in 0..1_000_000 {
            let Some(a) = self.engine.poll_action() else { return };
            match a {
                Action::Flush(id) => self.flush(id),
                Action::Close { id, linger } => self.close(id, &linger),
            }
        }
    }

    fn close(&mut self, id: ConnId, linger: &[bytes::Bytes]) {
        let idx = id.idx as usize;
        let Some(slot) = self.conns.get_mut(idx) else { return };
        if slot.as_ref().map(|c| c.id) != Some(id) {
            return;
        }
        let Some(mut conn) = slot.take() else { return };
        if !linger.is_empty() {
            let iov: Vec<IoSlice<'_>> = linger.iter().map(|b| IoSlice::new(b)).collect();
            let _ = conn.stream.write_vectored(&iov);
        }
        let _ = self.poll.registry().deregister(conn.stream.source());
        drop(conn);
        self.pending_reads.retain(|p| *p != id);
        self.paused_reads.retain(|p| *p != id);
    }
}

impl<O: Ordering + RingNet> Drop for Driver<O> {
    fn drop(&mut self) {
        if let Some(p) = &self.unix_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_only_follows_activity() {
        let t0 = Instant::now();
        let spin = Duration::from_micros(50);
        let us = Duration::from_micros;
        // Never busy: block (no deadline) or wait for the deadline.
        assert_eq!(poll_timeout(t0, false, None, spin, None), None);
        assert_eq!(poll_timeout(t0, false, None, spin, Some(t0 + us(700))), Some(us(700)));
        // Within the spin after a busy turn: zero.
        assert_eq!(poll_timeout(t0 + us(10), false, Some(t0), spin, None), Some(Duration::ZERO));
        assert_eq!(poll_timeout(t0 + us(49), false, Some(t0), spin, Some(t0 + us(5000))), Some(Duration::ZERO));
        // Spin over: block again.
        assert_eq!(poll_timeout(t0 + us(50), false, Some(t0), spin, None), None);
        assert_eq!(poll_timeout(t0 + us(60), false, Some(t0), spin, Some(t0 + us(100))), Some(us(40)));
        // Spin off: never zero unless reads are pending.
        assert_eq!(poll_timeout(t0, false, Some(t0), Duration::ZERO, None), None);
        assert_eq!(poll_timeout(t0, true, None, Duration::ZERO, None), Some(Duration::ZERO));
        // A deadline in the past: zero.
        assert_eq!(poll_timeout(t0 + us(10), false, None, spin, Some(t0)), Some(Duration::ZERO));
    }

    #[test]
    fn iov_memory_is_reused() {
        let data = vec![1u8; 10];
        let mut v: Vec<IoSlice<'static>> = Vec::with_capacity(64);
        let p = v.as_ptr() as usize;
        let mut w: Vec<IoSlice<'_>> = reuse_iov(std::mem::take(&mut v));
        w.push(IoSlice::new(&data));
        assert_eq!(w.as_ptr() as usize, p);
        v = reuse_iov(w);
        assert!(v.is_empty());
        assert_eq!(v.as_ptr() as usize, p);
        assert!(v.capacity() >= 64);
    }
}
