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
//! * SIGINT / SIGTERM end the loop cleanly through a self-pipe;
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

extern "C" fn on_signal(_sig: libc::c_int) {
    let fd = SIGNAL_FD.load(AtomicOrdering::Relaxed);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a valid byte.
        unsafe {
            libc::write(fd, &b as *const u8 as *const libc::c_void, 1);
        }
    }
}

/// Create the self-pipe and route SIGINT/SIGTERM to it. Returns the read end.
fn install_signal_pipe() -> io::Result<i32> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    SIGNAL_FD.store(fds[1], AtomicOrdering::Relaxed);
    for sig in [libc::SIGINT, libc::SIGTERM] {
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
    udp_buf: Vec<u8>,
    listeners: Vec<Listener>,
    conns: Vec<Option<Conn>>,
    unix_path: Option<PathBuf>,
    signal_fd: i32,
    pending_reads: Vec<ConnId>,
    /// Connections with unread input while the engine pauses reading.
    paused_reads: Vec<ConnId>,
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
        let udp_send = match cfg.udp.send {
            Some(a) => Some(udp_socket(a, false)?),
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
            udp_buf: vec![0u8; 65536],
            listeners,
            conns: Vec::new(),
            unix_path: cfg.unix_path.clone(),
            signal_fd,
            pending_reads: Vec::new(),
            paused_reads: Vec::new(),
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

    /// Local addresses of the UDP receive sockets (useful with port 0).
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp.iter().filter_map(|(s, _)| s.local_addr().ok()).collect()
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

    /// Run until SIGINT/SIGTERM.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut stop = false;
        // When the last turn that had events ended (None: not since the
        // spin ran out).
        let mut last_busy: Option<Instant> = None;
        while !stop {
            let now = Instant::now();
            let deadline = match (self.engine.next_timeout(), self.engine.ordering_ref().next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let pending = !self.pending_reads.is_empty() || !self.udp_pending.is_empty();
            let timeout = poll_timeout(now, pending, last_busy, self.spin, deadline);
            if timeout != Some(Duration::ZERO) {
                last_busy = None;
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
                        unsafe { libc::read(self.signal_fd, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
                        stop = true;
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
                    Token(t) => self.accept(t - LISTENER_BASE),
                }
            }
            if !self.udp_pending.is_empty() {
                self.read_udp();
            }
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
            self.send_udp();
            if busy && !self.spin.is_zero() {
                last_busy = Some(now);
            }
        }
        Ok(())
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
            let port = *port;
            let mut more = true;
            for _ in 0..UDP_BUDGET {
                match sock.recv_from(&mut self.udp_buf) {
                    Ok((n, src)) => {
                        let now = Instant::now();
                        self.engine.ordering().on_datagram(now, port, src, &self.udp_buf[..n]);
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
    }

    /// Send what the ring queued. A full socket buffer drops the datagram
    /// (the ring recovers lost datagrams).
    fn send_udp(&mut self) {
        let Some(sock) = &self.udp_send else {
            while self.engine.ordering().poll_send().is_some() {}
            return;
        };
        while let Some(d) = self.engine.ordering().poll_send() {
            if let Err(e) = sock.send_to(&d.bytes, d.to) {
                tracing::debug!(target: "spread::network", "udp send to {}: {e}", d.to);
            }
        }
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
