//! Starting our `spread` daemon for a test: temporary config, log file,
//! waiting (bounded) until it accepts clients, and stopping it by PID when
//! the guard is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::frames;
use crate::net::Conn;
use crate::paths::spread_binary;
use crate::tempdir::TempDir;

/// A running daemon; killed (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub name: String,
    pub port: u16,
    pub conf_path: PathBuf,
    pub log_path: PathBuf,
    dir: TempDir,
}

/// A one-daemon config on 127.0.0.1 with the client/data port `port` (the
/// token port is `port + 1`, the Unix socket `/tmp/<port>`). `extra` lines
/// (e.g. `MaxSessionMessages = 5`) are appended.
pub fn single_conf(name: &str, port: u16, run_dir: &Path, extra: &str) -> String {
    format!(
        "Spread_Segment 127.0.0.255:{port} {{\n\t{name}\t127.0.0.1 {{\n\t\tD 127.0.0.1\n\t\tC 127.0.0.1\n\t}}\n}}\n\
         DaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = {}\n{extra}\n",
        run_dir.display()
    )
}

/// The recorded config with the recorded port replaced by `port` and the
/// `<RUNTIME_DIR>` placeholder by `run_dir`.
pub fn rewrite_recorded_conf(conf: &str, recorded_port: u16, port: u16, run_dir: &Path) -> String {
    conf.replace(&recorded_port.to_string(), &port.to_string()).replace("<RUNTIME_DIR>", &run_dir.display().to_string())
}

/// Short membership timeouts (all nine: the original wants every one set
/// when any is), the privilege settings the original insists on as root,
/// and `RuntimeDir = @RUN@` (which [`Daemon`] replaces).
pub const FAST_RING: &str = "TokenTimeout = 1000\nHurryTimeout = 200\nAliveTimeout = 100\nJoinTimeout = 100\n\
RepTimeout = 300\nSegTimeout = 200\nGatherTimeout = 500\nFormTimeout = 500\nLookupTimeout = 2000\n\
DaemonUser = nobody\nDaemonGroup = nogroup\nRuntimeDir = @RUN@\n";

/// A ring on loopback: [`FAST_RING`], then one one-daemon segment per port,
/// its daemon named `<prefix><k>` (k from 1) on 127.0.0.1.
pub fn loopback_ring_conf(ports: &[u16], prefix: &str) -> String {
    let mut s = String::from(FAST_RING);
    for (i, p) in ports.iter().enumerate() {
        s.push_str(&format!("Spread_Segment 127.0.0.255:{p} {{\n\t{prefix}{}\t127.0.0.1\n}}\n", i + 1));
    }
    s
}

/// Waits until TCP `port` and UDP `port`, `port + 1` can be bound on
/// 127.0.0.1 (bounded).
pub fn wait_ports_free(port: u16, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let tcp = crate::net::tcp_bindable([127, 0, 0, 1], port, true);
        let u1 = std::net::UdpSocket::bind(("127.0.0.1", port));
        let u2 = std::net::UdpSocket::bind(("127.0.0.1", port.wrapping_add(1)));
        if tcp && u1.is_ok() && u2.is_ok() {
            return Ok(());
        }
        drop((u1, u2));
        if Instant::now() >= deadline {
            return Err(format!("port {port} (or {}) stayed in use for {limit:?}", port.wrapping_add(1)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The first port among `base`, `base + 2`, …, `base + 8` whose TCP/UDP
/// port and UDP `port + 1` are free (a client socket of another test may sit
/// on one in TIME_WAIT for a minute). Falls back to waiting up to 65 s for `base`.
pub fn free_port_near(base: u16) -> Result<u16, String> {
    for k in 0..5u16 {
        let p = base + 2 * k;
        if wait_ports_free(p, Duration::from_millis(0)).is_ok() {
            return Ok(p);
        }
    }
    wait_ports_free(base, Duration::from_secs(65)).map(|_| base)
}

/// Ports for a ring of `n` daemons, `gap` apart, as in [`free_port_near`]:
/// the first of `base`, `base + 2`, …, `base + 8` at which all `n` are free
/// (another program may hold one), else `base` after waiting for each
/// (up to 65 s).
pub fn free_ring_ports(base: u16, n: usize, gap: u16) -> Result<Vec<u16>, String> {
    let at = |b: u16| (0..n as u16).map(|i| b + gap * i).collect::<Vec<u16>>();
    for k in 0..5u16 {
        let ports = at(base + 2 * k);
        if ports.iter().all(|&p| wait_ports_free(p, Duration::from_millis(0)).is_ok()) {
            return Ok(ports);
        }
    }
    let ports = at(base);
    for &p in &ports {
        wait_ports_free(p, Duration::from_secs(65))?;
    }
    Ok(ports)
}

impl Daemon {
    /// Writes `conf` (use [`Daemon::run_dir_for`]-style paths: the text may
    /// contain `@RUN@`, replaced by the private run directory), starts
    /// `spread -n <name> -c <conf>` and waits until 127.0.0.1:`port` accepts.
    pub fn start(name: &str, port: u16, conf: &str) -> Result<Daemon, String> {
        Daemon::start_bin(&spread_binary(), name, port, conf)
    }

    /// [`Daemon::start`] with another daemon binary (the original's, for
    /// interop runs).
    pub fn start_bin(bin: &Path, name: &str, port: u16, conf: &str) -> Result<Daemon, String> {
        Daemon::start_with_files(bin, name, port, conf, &[])
    }

    /// [`Daemon::start_bin`] with `files` (name, text) written into the
    /// daemon's working directory first (`spread.access_ip`, say).
    pub fn start_with_files(
        bin: &Path,
        name: &str,
        port: u16,
        conf: &str,
        files: &[(&str, &str)],
    ) -> Result<Daemon, String> {
        let dir = TempDir::new(&format!("d{port}")).map_err(|e| format!("temp dir: {e}"))?;
        for (f, text) in files {
            std::fs::write(dir.path().join(f), text).map_err(|e| format!("write {f}: {e}"))?;
        }
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).map_err(|e| format!("run dir: {e}"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755));
        }
        let conf = conf.replace("@RUN@", &run.display().to_string());
        let conf_path = dir.path().join("spread.conf");
        std::fs::write(&conf_path, conf).map_err(|e| format!("write conf: {e}"))?;
        let log_path = dir.path().join("daemon.log");
        // our port range only: a stale Unix socket from an earlier run is ours
        let _ = std::fs::remove_file(format!("/tmp/{port}"));
        // A socket of an earlier run may still hold a port briefly: wait
        // (bounded) until the client and token ports are free.
        wait_ports_free(port, Duration::from_secs(2))?;
        let log = std::fs::File::create(&log_path).map_err(|e| format!("log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("log: {e}"))?;
        let child = Command::new(bin)
            .arg("-n")
            .arg(name)
            .arg("-c")
            .arg(&conf_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let mut d = Daemon { child: Some(child), name: name.to_string(), port, conf_path, log_path, dir };
        d.wait_accepting(Duration::from_secs(15))?;
        Ok(d)
    }

    /// Starts a one-daemon ring named `name` on the first free port near
    /// `base` (see [`free_port_near`]) with `extra` config lines, and waits
    /// until it is operational.
    pub fn start_single(name: &str, base: u16, extra: &str) -> Result<Daemon, String> {
        let port = free_port_near(base)?;
        Self::start_single_exact(name, port, extra)
    }

    /// As [`Daemon::start_single`] on exactly `port`.
    pub fn start_single_exact(name: &str, port: u16, extra: &str) -> Result<Daemon, String> {
        let conf = single_conf(name, port, Path::new("@RUN@"), extra);
        let mut d = Daemon::start(name, port, &conf)?;
        if let Err(e) = d.wait_operational(Duration::from_secs(20)) {
            return Err(d.exited().unwrap_or(e));
        }
        Ok(d)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The private directory (config, log, run dir).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Unix socket path of this daemon.
    pub fn unix_path(&self) -> String {
        format!("/tmp/{}", self.port)
    }

    /// `"<port>@127.0.0.1"`, the library's spread_name for this daemon.
    pub fn spread_name(&self) -> String {
        format!("{}@127.0.0.1", self.port)
    }

    fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(st)) => Some(format!("daemon exited early ({st}); log:\n{}", self.log())),
            _ => None,
        }
    }

    /// Polls TCP connect until the daemon accepts (bounded).
    pub fn wait_accepting(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut tries = 0u32;
        loop {
            if let Some(e) = self.exited() {
                return Err(e);
            }
            if let Ok(c) = Conn::tcp(self.port, Duration::from_millis(200)) {
                drop(c);
                return Ok(());
            }
            tries += 1;
            if Instant::now() >= deadline || tries > 10_000 {
                return Err(format!(
                    "daemon on port {} did not accept within {limit:?}; log:\n{}",
                    self.port,
                    self.log()
                ));
            }
            // connect() to a closed port fails at once; wait a little before
            // polling again (bounded by the deadline above)
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the daemon delivers group membership: a raw probe client
    /// joins a private probe group and waits for its REG_MEMB message, then
    /// disconnects. Ensures the ring is formed before a test starts.
    pub fn wait_operational(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut c = Conn::tcp(self.port, Duration::from_secs(2))
            .map_err(|e| format!("probe connect to port {}: {e}; log:\n{}", self.port, self.log()))?;
        let pg = frames::raw_handshake(&mut c, b"zzprobe", true, deadline)
            .map_err(|e| format!("probe handshake on port {}: {e}; log:\n{}", self.port, self.log()))?;
        c.write_all(&frames::message(frames::JOIN_MESS, pg.as_bytes(), &[b"zz-probe-group"], 0, b""))
            .map_err(|e| format!("probe join: {e}"))?;
        let m = frames::read_msg(&mut c, deadline)
            .map_err(|e| format!("probe waited for its membership: {e}; log:\n{}", self.log()))?;
        let h = frames::head(&m).ok_or("probe: short frame")?;
        if h.type_ & frames::REG_MEMB_MESS == 0 {
            return Err(format!("probe: expected a membership message, got type {:#x}", h.type_));
        }
        let _ = c.write_all(&frames::message(frames::KILL_MESS, pg.as_bytes(), &[pg.as_bytes()], 0, b""));
        c.shutdown_write();
        let _ = c.wait_close_by(Instant::now() + Duration::from_secs(5));
        Ok(())
    }

    /// Sends `sig` to the daemon process.
    pub fn signal(&self, sig: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain kill(2) on the PID of our own child.
            unsafe {
                libc::kill(pid as libc::pid_t, sig);
            }
        }
    }

    /// Is the process still running?
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the daemon: SIGTERM, wait up to 5 s, then SIGKILL and reap.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        // SAFETY: kill(2) on our own child's PID.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    /// Kills at once (SIGKILL) and reaps.
    pub fn kill_now(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(format!("/tmp/{}", self.port));
    }
}
