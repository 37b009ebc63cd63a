//! Raw client sockets (TCP or Unix) with deadline-bounded reads, for the
//! daemon-side replays and the hostile/fake daemons. Every blocking call here
//! ends by its deadline.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

/// A connected stream of either family.
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// How a read that wanted more bytes ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEnd {
    /// Orderly close (FIN) after the given bytes.
    Eof(Vec<u8>),
    /// Connection reset (RST) after the given bytes.
    Reset(Vec<u8>),
    /// Deadline passed after the given bytes.
    Timeout(Vec<u8>),
    /// Any other error.
    Error(String),
}

/// What was seen while waiting for the peer to close.
#[derive(Debug, PartialEq, Eq)]
pub enum CloseSeen {
    Fin,
    Rst,
    /// The peer sent bytes instead of closing (first bytes kept).
    Data(Vec<u8>),
    Timeout,
}

fn remaining(deadline: Instant) -> Option<Duration> {
    let now = Instant::now();
    if now >= deadline {
        None
    } else {
        Some((deadline - now).max(Duration::from_millis(1)))
    }
}

impl Conn {
    /// TCP connect to 127.0.0.1:port, bounded by `timeout`.
    pub fn tcp(port: u16, timeout: Duration) -> io::Result<Conn> {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_nodelay(true)?;
        Ok(Conn::Tcp(s))
    }

    /// Unix-domain connect to `path`.
    pub fn unix(path: &str) -> io::Result<Conn> {
        Ok(Conn::Unix(UnixStream::connect(path)?))
    }

    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_read_timeout(d),
            Conn::Unix(s) => s.set_read_timeout(d),
        }
    }

    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_write_timeout(d),
            Conn::Unix(s) => s.set_write_timeout(d),
        }
    }

    fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }

    /// Writes everything (bounded by a 10 s write timeout).
    pub fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.set_write_timeout(Some(Duration::from_secs(10)))?;
        match self {
            Conn::Tcp(s) => s.write_all(b),
            Conn::Unix(s) => s.write_all(b),
        }
    }

    /// Half-closes the sending side (the peer reads EOF).
    pub fn shutdown_write(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// Closes both directions.
    pub fn shutdown_both(&self) {
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(Shutdown::Both),
            Conn::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }

    /// Closes the connection with a reset (`SO_LINGER` 0): the peer's socket
    /// is gone at once instead of lingering in FIN_WAIT2 or TIME_WAIT (so a
    /// daemon killed first can bind its port again at once).
    pub fn close_with_reset(self) {
        let l = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: setsockopt(2) with a valid `linger` on the live descriptor.
        unsafe {
            libc::setsockopt(
                self.fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &l as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }

    pub fn fd(&self) -> RawFd {
        match self {
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Unix(s) => s.as_raw_fd(),
        }
    }

    /// Reads exactly `n` bytes before `deadline`.
    pub fn read_exact_by(&mut self, n: usize, deadline: Instant) -> Result<Vec<u8>, ReadEnd> {
        let mut out = vec![0u8; n];
        let mut got = 0;
        while got < n {
            let Some(rem) = remaining(deadline) else {
                out.truncate(got);
                return Err(ReadEnd::Timeout(out));
            };
            if let Err(e) = self.set_read_timeout(Some(rem)) {
                return Err(ReadEnd::Error(e.to_string()));
            }
            match self.read_some(&mut out[got..]) {
                Ok(0) => {
                    out.truncate(got);
                    return Err(ReadEnd::Eof(out));
                }
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    out.truncate(got);
                    return Err(ReadEnd::Reset(out));
                }
                Err(e) => return Err(ReadEnd::Error(e.to_string())),
            }
        }
        Ok(out)
    }

    /// Reads one whole client-protocol message from the daemon (48-byte
    /// header, groups, body; not for reject messages) before `deadline`.
    pub fn read_message_by(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadEnd> {
        let mut head = self.read_exact_by(48, deadline)?;
        let Some(rest) = crate::frames::rest_len(&head) else {
            return Err(ReadEnd::Error(format!("unsizable header {}", crate::hex::encode(&head))));
        };
        let tail = self.read_exact_by(rest, deadline)?;
        head.extend_from_slice(&tail);
        Ok(head)
    }

    /// Waits for the peer to close; reports FIN, RST, unexpected data, or a
    /// timeout.
    pub fn wait_close_by(&mut self, deadline: Instant) -> CloseSeen {
        let mut buf = [0u8; 256];
        loop {
            let Some(rem) = remaining(deadline) else { return CloseSeen::Timeout };
            if self.set_read_timeout(Some(rem)).is_err() {
                return CloseSeen::Rst;
            }
            match self.read_some(&mut buf) {
                Ok(0) => return CloseSeen::Fin,
                Ok(k) => return CloseSeen::Data(buf[..k].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return CloseSeen::Rst,
                Err(_) => return CloseSeen::Rst,
            }
        }
    }

    /// Bytes already waiting in the receive buffer (without blocking), or
    /// `None` if the peer has closed.
    pub fn pending_bytes(&self) -> Option<usize> {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into `n`; fd is a live socket.
        let r = unsafe { libc::ioctl(self.fd(), libc::FIONREAD, &mut n) };
        if r < 0 {
            None
        } else {
            Some(n.max(0) as usize)
        }
    }
}

/// Waits until `fd` is readable (or has an error/hangup) or the deadline passes.
pub fn poll_readable(fd: RawFd, deadline: Instant) -> bool {
    loop {
        let Some(rem) = remaining(deadline) else { return false };
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        let ms = rem.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms.max(1)) };
        if r > 0 {
            return true;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// A listening socket of either family (for fake daemons).
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, String),
}

impl Listener {
    /// Binds 127.0.0.1:port.
    pub fn tcp(port: u16) -> io::Result<Listener> {
        Ok(Listener::Tcp(TcpListener::bind(("127.0.0.1", port))?))
    }

    /// Binds the first free TCP port in `from..from + span` on 127.0.0.1
    /// (a socket of an earlier run may hold one for a while).
    pub fn tcp_near(from: u16, span: u16) -> io::Result<(Listener, u16)> {
        let mut last = None;
        for p in from..from.saturating_add(span) {
            match TcpListener::bind(("127.0.0.1", p)) {
                Ok(l) => return Ok((Listener::Tcp(l), p)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "empty port span")))
    }

    /// Binds a Unix socket at `path` (a stale file there is removed first).
    pub fn unix(path: &str) -> io::Result<Listener> {
        let _ = std::fs::remove_file(path);
        Ok(Listener::Unix(UnixListener::bind(path)?, path.to_string()))
    }

    fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    /// Accepts one connection before `deadline`.
    pub fn accept_by(&self, deadline: Instant) -> io::Result<Conn> {
        if !poll_readable(self.fd(), deadline) {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no client connected before the deadline"));
        }
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }
            Listener::Unix(l, _) => Ok(Conn::Unix(l.accept()?.0)),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p.as_str());
        }
    }
}

/// Can a fresh TCP socket bind `ip:port` (with `SO_REUSEADDR` when `reuse`,
/// as our daemon binds; without, as the original does when it binds the
/// any-address, so TIME_WAIT counts as busy)? The probe never listens: a
/// test process forks children from other threads, and a child holds copies
/// of the parent's descriptors until it execs; a probe *listener* caught in
/// such a copy would accept the next test's first connection in place of
/// its daemon, then reset it.
pub fn tcp_bindable(ip: [u8; 4], port: u16, reuse: bool) -> bool {
    // SAFETY: socket(2), setsockopt(2) with a live int, bind(2) with a fully
    // initialised sockaddr_in and its size, close(2) of the descriptor made here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return false;
        }
        if reuse {
            let one: libc::c_int = 1;
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip) },
            sin_zero: [0; 8],
        };
        let r = libc::bind(
            fd,
            &sin as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        libc::close(fd);
        r == 0
    }
}
