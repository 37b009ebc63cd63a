//! Starting and stopping the daemons of a benchmark run: one single-daemon
//! configuration ([`Daemon::start`]) or a ring of several daemons on
//! loopback, each alone in its segment on its own port ([`RingDaemons`]).
//!
//! Every daemon is our child process: it is stopped by its PID (through
//! [`std::process::Child`]) when the guard is dropped, never by name.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Conn, Endpoint};

/// PIDs of the daemons currently running, for the signal handler.
#[allow(clippy::declare_interior_mutable_const)]
const NO_PID: AtomicI32 = AtomicI32::new(0);
static LIVE: [AtomicI32; 16] = [NO_PID; 16];

extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &LIVE {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe; the PID is a child of ours.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    // SAFETY: _exit(2) is async-signal-safe.
    unsafe { libc::_exit(128 + sig) }
}

/// On SIGINT/SIGTERM/SIGHUP stop our daemons before exiting (the original
/// daemon changes its uid, which clears a parent-death signal, so this is
/// the only way it goes away when spread-bench is interrupted).
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing a handler that only calls async-signal-safe functions.
        unsafe {
            libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
}

fn register(pid: u32) {
    for slot in &LIVE {
        if slot.compare_exchange(0, pid as i32, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            return;
        }
    }
}

fn unregister(pid: u32) {
    for slot in &LIVE {
        let _ = slot.compare_exchange(pid as i32, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// A running daemon we started.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub label: String,
}

/// The configuration text: one segment on loopback with one daemon named
/// `localhost`. `DaemonUser`/`DaemonGroup`/`RuntimeDir` matter only when the
/// daemon runs as root (the original insists on them then).
pub fn config_text(port: u16, runtime_dir: &Path) -> String {
    format!(
        "Spread_Segment 127.0.0.255:{port} {{\n\tlocalhost 127.0.0.1\n}}\n\
         DaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = {}\n\
         EventPriority = WARNING\n",
        runtime_dir.display()
    )
}

/// The configuration of a ring of daemons `b1`, `b2`, … on 127.0.0.1, one
/// segment each on `ports[i]` (daemon spec §2: each daemon alone in its
/// segment, the segments joined by unicast), default timeouts and windows.
/// The same text serves every daemon of the ring but `RuntimeDir`, which is
/// not part of the configuration hash.
pub fn ring_config_text(ports: &[u16], runtime_dir: &Path) -> String {
    let mut s = format!(
        "DaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = {}\nEventPriority = WARNING\n",
        runtime_dir.display()
    );
    for (i, p) in ports.iter().enumerate() {
        s.push_str(&format!("Spread_Segment 127.0.0.255:{p} {{\n\t{}\t127.0.0.1\n}}\n", ring_name(i)));
    }
    s
}

/// The daemon name of member `i` of a benchmark ring.
pub fn ring_name(i: usize) -> String {
    format!("b{}", i + 1)
}

/// True when nothing holds TCP `port` nor UDP `port` / `port + 1` on any
/// local address. The TCP probe binds without SO_REUSEADDR, so a socket in
/// TIME_WAIT on that port also counts as busy.
pub fn ports_free(port: u16) -> bool {
    let Some(next) = port.checked_add(1) else { return false };
    tcp_port_free(port)
        && std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok()
        && std::net::UdpSocket::bind(("0.0.0.0", next)).is_ok()
}

fn tcp_port_free(port: u16) -> bool {
    // SAFETY: plain socket/bind/close on a descriptor we own; the address
    // struct is fully initialised and its size is passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return false;
        }
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = port.to_be();
        sa.sin_addr = libc::in_addr { s_addr: 0 };
        let r = libc::bind(
            fd,
            &sa as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        libc::close(fd);
        r == 0
    }
}

/// The first `p` in `base, base + 2, …` below `base + span` with
/// [`ports_free`] (the Unix socket `/tmp/<p>` is the daemon's to replace).
pub fn pick_port(base: u16, span: u16) -> Option<u16> {
    pick_ports(base, span, 1).map(|v| v[0])
}

/// The first `n` such ports (see [`pick_port`]), or `None` if fewer are free.
pub fn pick_ports(base: u16, span: u16, n: usize) -> Option<Vec<u16>> {
    let v: Vec<u16> = (0..span / 2).map(|k| base.saturating_add(2 * k)).filter(|&p| ports_free(p)).take(n).collect();
    (v.len() == n).then_some(v)
}

impl Daemon {
    /// Start `binary -n localhost -c <dir>/spread.conf` and wait (bounded by
    /// `ready_timeout`) until a client session can be opened on TCP.
    pub fn start(label: &str, binary: &Path, port: u16, ready_timeout: Duration) -> io::Result<Daemon> {
        Daemon::start_wrapped(label, &[], binary, port, ready_timeout)
    }

    /// Like [`Daemon::start`], with a command prefix such as
    /// `perf record -e cpu-clock -g -o FILE --` (the prefix's process is the
    /// one we own; it is stopped with SIGTERM so that it can write its data).
    pub fn start_wrapped(
        label: &str,
        wrapper: &[String],
        binary: &Path,
        port: u16,
        ready_timeout: Duration,
    ) -> io::Result<Daemon> {
        Daemon::start_conf(label, wrapper, binary, "localhost", port, &|run| config_text(port, run), ready_timeout)
    }

    /// Start `binary -n <name> -c <dir>/spread.conf` with the configuration
    /// `conf(<runtime dir>)` (command prefix `wrapper`) and wait until
    /// 127.0.0.1:`port` accepts a session.
    pub fn start_conf(
        label: &str,
        wrapper: &[String],
        binary: &Path,
        name: &str,
        port: u16,
        conf: &dyn Fn(&Path) -> String,
        ready_timeout: Duration,
    ) -> io::Result<Daemon> {
        // The child runs in its own directory: a relative binary path must be
        // resolved here first.
        let binary = &binary.canonicalize().unwrap_or_else(|_| binary.to_path_buf());
        let dir = std::env::temp_dir().join(format!("spread-bench-{}-{port}", std::process::id()));
        let run = dir.join("run");
        fs::create_dir_all(&run)?;
        let conf_path = dir.join("spread.conf");
        fs::write(&conf_path, conf(&run))?;
        let log = fs::File::create(dir.join("daemon.log"))?;
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        // If spread-bench itself is killed, its daemons get SIGTERM from the
        // kernel instead of living on as orphans.
        // SAFETY: the hook runs in the forked child before exec and only calls
        // prctl(2), which is async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0);
                Ok(())
            });
        }
        let spawned = cmd
            .arg("-n")
            .arg(name)
            .arg("-c")
            .arg(&conf_path)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        register(child.id());
        let mut d = Daemon { child: Some(child), port, dir, label: label.to_string() };
        d.wait_ready(ready_timeout)?;
        Ok(d)
    }

    fn wait_ready(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let ep = Endpoint::tcp_loopback(self.port);
        let mut last = io::Error::new(io::ErrorKind::TimedOut, "daemon not ready");
        // Bounded: at most `timeout` and at most 2000 attempts.
        for attempt in 0..2000u32 {
            if let Some(c) = self.child.as_mut() {
                if let Some(st) = c.try_wait()? {
                    return Err(io::Error::other(format!(
                        "{} exited early ({st}); see {}",
                        self.label,
                        self.dir.join("daemon.log").display()
                    )));
                }
            }
            match Conn::connect(&ep, &format!("rdy{attempt}"), false, Duration::from_secs(2)) {
                Ok(c) => {
                    c.disconnect();
                    return Ok(());
                }
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                break;
            }
            // Retrying a refused connect: a short pause between attempts,
            // not a synchronisation sleep.
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::new(io::ErrorKind::TimedOut, format!("{} not ready on port {}: {last}", self.label, self.port)))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::tcp_loopback(self.port)
    }

    /// Is the process still alive?
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL now (a crash); the directory stays for a restart.
    pub fn kill_hard(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            unregister(c.id());
            let _ = fs::remove_file(format!("/tmp/{}", self.port));
        }
    }

    /// SIGTERM, then SIGKILL if the process is still there after 10 s.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(None) = c.try_wait() {
                // SAFETY: kill(2) on the PID of our own, not yet reaped child.
                unsafe {
                    libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                while let Ok(None) = c.try_wait() {
                    if Instant::now() > deadline {
                        let _ = c.kill();
                        break;
                    }
                    // Waiting for a child's exit: std has no timed wait.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let _ = c.wait();
            unregister(c.id());
            // The original leaves its Unix socket behind; the port is ours.
            let _ = fs::remove_file(format!("/tmp/{}", self.port));
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A ring of daemons of one binary on loopback, each alone in its segment
/// on its own port ([`ring_config_text`]).
pub struct RingDaemons {
    pub daemons: Vec<Daemon>,
    pub ports: Vec<u16>,
    label: String,
    binary: PathBuf,
    wrapper: Vec<String>,
    /// Configuration lines added to [`ring_config_text`].
    extra: String,
}

/// The group every daemon's probe client joins to see the ring formed.
const RING_PROBE_GROUP: &str = "bring-ready";

impl RingDaemons {
    /// Start one daemon per port (all of them before waiting for any, so the
    /// first membership round finds them all), then wait (bounded by
    /// `timeout`) until the ring is formed: a client on every daemon sees
    /// a group with one member per daemon.
    pub fn start(
        label: &str,
        wrapper: &[String],
        binary: &Path,
        ports: &[u16],
        timeout: Duration,
    ) -> io::Result<RingDaemons> {
        RingDaemons::start_with(label, wrapper, binary, ports, "", timeout)
    }

    /// [`RingDaemons::start`] with `extra` configuration lines (timeouts).
    pub fn start_with(
        label: &str,
        wrapper: &[String],
        binary: &Path,
        ports: &[u16],
        extra: &str,
        timeout: Duration,
    ) -> io::Result<RingDaemons> {
        let mut r = RingDaemons {
            daemons: Vec::new(),
            ports: ports.to_vec(),
            label: label.to_string(),
            binary: binary.to_path_buf(),
            wrapper: wrapper.to_vec(),
            extra: extra.to_string(),
        };
        for i in 0..ports.len() {
            let d = r.start_daemon(i, timeout)?;
            r.daemons.push(d);
        }
        r.wait_formed(timeout)?;
        Ok(r)
    }

    /// Start daemon `i` of the ring (again), waiting until it serves.
    pub fn start_daemon(&self, i: usize, timeout: Duration) -> io::Result<Daemon> {
        let conf = |run: &Path| format!("{}{}", ring_config_text(&self.ports, run), self.extra);
        Daemon::start_conf(
            &format!("{} {}", self.label, ring_name(i)),
            &self.wrapper,
            &self.binary,
            &ring_name(i),
            self.ports[i],
            &conf,
            timeout,
        )
    }

    /// Wait until a probe client on every daemon sees the probe group with
    /// one member per daemon (the ring is formed and delivers).
    pub fn wait_formed(&self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut probes = Vec::new();
        for (i, d) in self.daemons.iter().enumerate() {
            let mut c = Conn::connect(&d.endpoint(), &format!("rp{i}"), true, Duration::from_secs(5))?;
            c.join(RING_PROBE_GROUP)?;
            probes.push(c);
        }
        for c in probes.iter_mut() {
            c.wait_members_until(RING_PROBE_GROUP, self.daemons.len(), deadline).map_err(|e| {
                io::Error::other(format!("{}: the ring of {} did not form: {e}", self.label, self.daemons.len()))
            })?;
        }
        for c in probes {
            c.disconnect();
        }
        Ok(())
    }

    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.daemons.iter().map(|d| d.endpoint()).collect()
    }

    pub fn pids(&self) -> Vec<Option<u32>> {
        self.daemons.iter().map(|d| d.pid()).collect()
    }

    /// Are all daemons still running?
    pub fn alive(&mut self) -> bool {
        self.daemons.iter_mut().all(|d| d.alive())
    }

    /// Stop every daemon and start the ring again on the same ports.
    pub fn restart(&mut self, timeout: Duration) -> io::Result<()> {
        self.stop();
        let r = RingDaemons::start_with(&self.label, &self.wrapper, &self.binary, &self.ports, &self.extra, timeout)?;
        *self = r;
        Ok(())
    }

    pub fn stop(&mut self) {
        for d in &mut self.daemons {
            d.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ports_are_skipped() {
        // 25046..25049 belong to this crate's manual/profiling sub-range.
        let Some(p) = pick_port(25046, 4) else { return }; // both busy: nothing to check
        let hold = std::net::UdpSocket::bind(("0.0.0.0", p + 1));
        if hold.is_ok() {
            assert!(!ports_free(p), "UDP {} is held, {p} must count as busy", p + 1);
        }
        let tcp = std::net::TcpListener::bind(("127.0.0.1", p));
        if tcp.is_ok() {
            assert!(!ports_free(p));
        }
        assert!(!ports_free(u16::MAX));
    }
}
