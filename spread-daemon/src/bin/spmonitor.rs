//! `spmonitor`: the monitor program ([`spread_daemon::monitor`]) on
//! stdin/stdout and one UDP socket, in a single-threaded poll loop.

use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::time::Instant;

use spread_daemon::cli::exit_fatal;
use spread_daemon::config::{Config, MeInfo};
use spread_daemon::monitor::options::{self, Options};
use spread_daemon::monitor::{Io, LineBuffer, Monitor, Stop};

struct Term {
    input: LineBuffer,
    out: std::io::StdoutLock<'static>,
    sock: UdpSocket,
    opts: Options,
}

impl Term {
    /// One `read(2)` from stdin into the line buffer (blocking unless poll
    /// said it is readable).
    fn fill(&mut self) {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a local buffer of the given length.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            self.input.push(&buf[..n as usize]);
        } else if n == 0 {
            self.input.set_eof();
        } else {
            let e = std::io::Error::last_os_error();
            if !matches!(e.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock) {
                self.input.set_eof();
            }
        }
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

impl Io for Term {
    fn read_line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(l) = self.input.take() {
                return l;
            }
            self.flush();
            self.fill();
        }
    }

    fn print(&mut self, text: &[u8]) {
        let _ = self.out.write_all(text);
    }

    fn send(&mut self, to: SocketAddr, packet: &[u8]) {
        // Errors are not reported, as the original's are not (they are
        // logged at a level its monitor does not print).
        if let Err(e) = self.sock.send_to(packet, to) {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                wait_fd(self.sock.as_raw_fd(), libc::POLLOUT, 100);
                let _ = self.sock.send_to(packet, to);
            }
        }
    }

    fn load_config(&mut self, previous: &Config) -> Result<(Config, MeInfo), String> {
        options::load_config(&self.opts, Some(previous))
    }
}

fn wait_fd(fd: i32, events: libc::c_short, ms: i32) {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

fn strerror(errno: i32) -> String {
    // SAFETY: strerror returns a NUL-terminated static string (or NULL).
    let p = unsafe { libc::strerror(errno) };
    if p.is_null() {
        return format!("error {errno}");
    }
    // SAFETY: non-NULL result of strerror.
    unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The monitor's socket on `<my address>:<port>`, broadcast allowed, as the
/// original opens its channel (no SO_REUSEADDR: a second monitor on the same
/// port fails).
fn open_socket(addr: SocketAddr) -> Result<UdpSocket, String> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None)
        .map_err(|e| format!("DL_init_channel_gen: socket error ({}: {})!\n", e.raw_os_error().unwrap_or(0), e))?;
    if addr.is_ipv4() {
        let _ = s.set_broadcast(true);
    }
    s.bind(&addr.into()).map_err(|e| {
        let errno = e.raw_os_error().unwrap_or(0);
        format!(
            "DL_init_channel_gen: bind error ({errno}: {}) for [{}]:{}; probably already running!\n",
            strerror(errno),
            addr.ip(),
            addr.port()
        )
    })?;
    let s: UdpSocket = s.into();
    let _ = s.set_nonblocking(true);
    Ok(s)
}

fn main() {
    let mut argv = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let exe = argv.next().unwrap_or_else(|| "spmonitor".to_string());
    let args: Vec<String> = argv.collect();
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(options::banner().as_bytes());
    let opts = match options::parse(&exe, &args) {
        Ok(o) => o,
        Err(msg) => exit_fatal(&msg),
    };
    let (conf, me) = match options::load_config(&opts, None) {
        Ok(x) => x,
        Err(msg) => exit_fatal(&msg),
    };
    let mut bind = me.daemon.addr;
    bind.set_port(opts.port);
    let sock = match open_socket(bind) {
        Ok(s) => s,
        Err(msg) => exit_fatal(&msg),
    };
    let mut monitor = Monitor::new(conf, &me, opts.port, opts.interval);
    let mut io = Term { input: LineBuffer::default(), out, sock, opts };
    monitor.print_menu(&mut io);
    let stop = run(&mut monitor, &mut io);
    io.flush();
    match stop {
        Stop::Bye => std::process::exit(0),
        Stop::Fatal(msg) => exit_fatal(&msg),
    }
}

fn run(monitor: &mut Monitor, io: &mut Term) -> Stop {
    let sock_fd = io.sock.as_raw_fd();
    let mut buf = vec![0u8; 65_536];
    loop {
        monitor.on_timers(Instant::now(), io);
        io.flush();
        let timeout = if io.input.ready() {
            0
        } else {
            match monitor.next_deadline() {
                None => -1,
                Some(t) => {
                    let d = t.saturating_duration_since(Instant::now());
                    // round up so that the timer is due when poll returns
                    (d.as_micros().div_ceil(1000)).min(i32::MAX as u128) as i32
                }
            }
        };
        let mut fds = [
            libc::pollfd { fd: if io.input.is_eof() { -1 } else { 0 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sock_fd, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: two valid pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Stop::Fatal(format!("spmonitor: poll: {}\n", std::io::Error::last_os_error()));
        }
        if fds[1].revents != 0 {
            loop {
                match io.sock.recv_from(&mut buf) {
                    Ok((n, _)) => monitor.receive(&buf[..n], io),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
        if fds[0].revents != 0 && !io.input.ready() {
            io.fill();
        }
        if io.input.ready() {
            if let Err(stop) = monitor.user_command(Instant::now(), io) {
                return stop;
            }
        }
    }
}
