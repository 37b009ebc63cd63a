//! A small LAN of network namespaces for ring tests: `n` "host"
//! namespaces, each with one veth interface whose peer is a port of a
//! bridge, on one IPv4 subnet with a broadcast address — the layout the
//! reference captures were recorded on (`shared/ref/pcap/README.md`,
//! "Setup"). The bridge lives in a namespace of its own (the "hub"), so the
//! test never adds an interface to the root namespace, and deleting the
//! namespaces (on drop, also after a panic) removes every link with them.
//!
//! Daemons run inside a host namespace ([`NsDaemon`]: the child enters it
//! with `setns(2)` before `exec`), clients connect from a short-lived thread
//! that enters it ([`Lan::connect`]); a socket stays in the namespace it was
//! made in. Names carry the test process's PID and a per-process counter;
//! namespaces left by an earlier run whose process is gone (it was killed
//! before its guards could run) are removed when the next LAN is made.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::frames::{self, Member};
use crate::net::Conn;
use crate::tempdir::TempDir;

/// Prefix of every namespace (and link) name made here: `rsn<pid>x<k>…`.
const PREFIX: &str = "rsn";

/// coreutils' `stdbuf` preload library (Debian path).
const STDBUF: &str = "/usr/libexec/coreutils/libstdbuf.so";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Runs `ip args…`; the error text on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`ip {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// `ip args…` output (empty on failure).
fn ip_out(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Why namespaces cannot be made here, if they cannot (not root, no
/// iproute2); `None` when they can be tried.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root".to_string());
    }
    match Command::new("ip").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => None,
        _ => Some("`ip` (iproute2) is not available".to_string()),
    }
}

/// Deletes namespaces of this module whose creating process no longer runs.
fn remove_stale() {
    for line in ip_out(&["netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let Some((pid, _)) = rest.split_once('x') else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// The namespaces of one LAN; all deleted on drop.
pub struct Lan {
    hub: String,
    hosts: Vec<String>,
    /// Every namespace made so far (deleted on drop, hosts first).
    made: Vec<String>,
    net: [u8; 3],
    bridge: String,
    /// A running `tcpdump` on the bridge ([`Lan::capture`]).
    capture: Option<Child>,
}

impl Lan {
    /// Makes `n` host namespaces on subnet `net.0/24` (host `i` has address
    /// `net.(i+1)`, broadcast `net.255`), all up and their bridge ports
    /// forwarding. Fails (undoing what it made) with the reason.
    pub fn create(n: usize, net: [u8; 3]) -> Result<Lan, String> {
        assert!((1..=200).contains(&n), "1..=200 hosts");
        remove_stale();
        let k = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{PREFIX}{}x{k}", std::process::id());
        let pid = std::process::id() % 10_000_000;
        let br = format!("rsbr{pid}");
        let mut lan =
            Lan { hub: format!("{tag}h"), hosts: Vec::new(), made: Vec::new(), net, bridge: br.clone(), capture: None };
        ip(&["netns", "add", &lan.hub])?;
        lan.made.push(lan.hub.clone());
        // Interface names (≤ 15 characters): the bridge and the hub-side
        // veth ends live in the hub namespace, the host side in its host.
        let hub = lan.hub.clone();
        // No multicast snooping: IPv6 segment multicast (`ff02::…`) reaches
        // every port at once, without waiting for MLD reports.
        ip(&[
            "-n",
            &hub,
            "link",
            "add",
            &br,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &hub, "link", "set", &br, "up"])?;
        for i in 0..n {
            let host = format!("{tag}n{}", i + 1);
            ip(&["netns", "add", &host])?;
            lan.made.push(host.clone());
            lan.hosts.push(host.clone());
            let hv = format!("rsh{pid}n{}", i + 1);
            let nv = format!("rse{pid}n{}", i + 1);
            ip(&["-n", &hub, "link", "add", &hv, "type", "veth", "peer", "name", &nv, "netns", &host])?;
            ip(&["-n", &hub, "link", "set", &hv, "master", &br])?;
            ip(&["-n", &hub, "link", "set", &hv, "up"])?;
            let a = format!("{}/24", lan.addr(i));
            let b = lan.broadcast().to_string();
            ip(&["-n", &host, "addr", "add", &a, "broadcast", &b, "dev", &nv])?;
            // and an IPv6 address, usable at once (no duplicate detection)
            let a6 = format!("{}/64", lan.addr6(i));
            ip(&["-n", &host, "addr", "add", &a6, "dev", &nv, "nodad"])?;
            ip(&["-n", &host, "link", "set", &nv, "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        lan.wait_ready(&br, Duration::from_secs(10))?;
        Ok(lan)
    }

    /// Waits (bounded) until every host interface has carrier and every
    /// bridge port forwards.
    fn wait_ready(&self, br: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let ports = ip_out(&["-n", &self.hub, "-o", "link", "show", "master", br]);
            let forwarding = Command::new("bridge")
                .args(["-n", &self.hub, "link", "show"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).matches("state forwarding").count())
                .unwrap_or(0);
            let carriers = self
                .hosts
                .iter()
                .filter(|h| ip_out(&["-n", h.as_str(), "-o", "link", "show", "up"]).contains("LOWER_UP"))
                .count();
            if ports.lines().count() == self.hosts.len()
                && forwarding == self.hosts.len()
                && carriers == self.hosts.len()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the LAN did not come up within {limit:?}: {forwarding} of {} bridge ports forwarding, \
                     {carriers} hosts with carrier",
                    self.hosts.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `tcpdump -i <bridge> -s 0 -U -w <pcap> udp` in the hub
    /// namespace (every datagram between the hosts crosses the bridge) and
    /// waits (bounded) until it listens; it is stopped when the LAN is
    /// dropped.
    pub fn capture(&mut self, pcap: &Path) -> Result<(), String> {
        let mut cmd = Command::new("tcpdump");
        cmd.args(["-i", &self.bridge, "-s", "0", "-U", "-w"])
            .arg(pcap)
            .arg("udp")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let f = std::fs::File::open(format!("/run/netns/{}", self.hub)).map_err(|e| format!("open hub: {e}"))?;
        let fd = f.as_raw_fd();
        // SAFETY: as in `enter_on_spawn`.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn tcpdump: {e}"))?;
        drop(f);
        let err = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.capture = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains("listening on") => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("tcpdump did not start listening: {e}")),
            }
        }
    }

    /// Host `i`'s address (`net.(i+1)`).
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], i as u8 + 1)
    }

    /// Cuts (`up` false) or restores host `i`'s link: its port on the
    /// bridge goes down or up, so the host keeps its interface and
    /// addresses but nothing gets through (a pulled cable).
    pub fn set_link(&self, i: usize, up: bool) -> Result<(), String> {
        let pid = std::process::id() % 10_000_000;
        let hv = format!("rsh{pid}n{}", i + 1);
        ip(&["-n", &self.hub, "link", "set", &hv, if up { "up" } else { "down" }])
    }

    /// Host `i`'s IPv6 address, `fd00:<net.0>:<net.1>:<net.2>::<i+1>` (hex)
    /// on a /64 (the same link as the IPv4 subnet).
    pub fn addr6(&self, i: usize) -> Ipv6Addr {
        let [a, b, c] = self.net;
        Ipv6Addr::new(0xfd00, a as u16, b as u16, c as u16, 0, 0, 0, i as u16 + 1)
    }

    /// The subnet's broadcast address (`net.255`).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], 255)
    }

    /// Host `i`'s namespace name.
    pub fn host(&self, i: usize) -> &str {
        &self.hosts[i]
    }

    /// The namespace holding the bridge (for a capture: `ip netns exec
    /// <hub> tcpdump -i <bridge>`).
    pub fn hub(&self) -> &str {
        &self.hub
    }

    fn ns_path(&self, i: usize) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.hosts[i]))
    }

    /// A TCP connection to `addr` made inside host `i`'s namespace (a
    /// thread enters it; the socket stays in it), bounded by `timeout`.
    pub fn connect(&self, i: usize, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        let path = self.ns_path(i);
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path)?;
            // SAFETY: setns(2) on a namespace file this thread opened; only
            // this short-lived thread changes its network namespace.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let s = TcpStream::connect_timeout(&addr, timeout)?;
            s.set_nodelay(true)?;
            Ok(s)
        })
        .join()
        .map_err(|_| io::Error::other("netns connect thread panicked"))?
    }

    /// Waits (bounded) until TCP `port` on the unspecified address can be
    /// bound in host `i`'s namespace WITHOUT `SO_REUSEADDR` — as the
    /// original binds its client port on an implicit interface
    /// (`SocketPortReuse = AUTO`), so a restart there fails while any socket
    /// of the port lingers (TIME_WAIT, FIN_WAIT2).
    pub fn wait_tcp_port_free(&self, i: usize, port: u16, limit: Duration) -> Result<(), String> {
        let path = self.ns_path(i);
        let host = self.hosts[i].clone();
        std::thread::spawn(move || {
            let f = std::fs::File::open(&path).map_err(|e| format!("open namespace: {e}"))?;
            // SAFETY: as in `connect`: this thread alone enters the namespace.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns: {}", io::Error::last_os_error()));
            }
            let deadline = Instant::now() + limit;
            loop {
                if crate::net::tcp_bindable([0, 0, 0, 0], port, false) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(format!("TCP port {port} in {host} stayed in use for {limit:?}"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .join()
        .map_err(|_| "port wait thread panicked".to_string())?
    }

    /// Makes `cmd`'s child enter host `i`'s namespace before it execs.
    fn enter_on_spawn(&self, i: usize, cmd: &mut Command) -> io::Result<std::fs::File> {
        let f = std::fs::File::open(self.ns_path(i))?;
        let fd = f.as_raw_fd();
        // SAFETY: the hook only calls setns(2), which is async-signal-safe,
        // on a descriptor that stays open until spawn returns (the caller
        // keeps `f`); it is close-on-exec, so the daemon does not inherit it.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        Ok(f)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        if let Some(mut c) = self.capture.take() {
            // SAFETY: kill(2) on the PID of our own, not yet reaped, child;
            // SIGINT makes tcpdump flush and close its file.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGINT);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.made.iter().rev() {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Starts daemon `d<i+1>` on host `i` of `lan` for every entry of `bins`
/// (its binary; `addrs[i]` its address) with `conf`, then waits (bounded by
/// `limit`) until each is in an operational ring.
pub fn start_ring(
    lan: &Lan,
    bins: &[&Path],
    addrs: &[SocketAddr],
    conf: &str,
    limit: Duration,
) -> Result<Vec<NsDaemon>, String> {
    let mut ds = Vec::new();
    for (i, (bin, addr)) in bins.iter().zip(addrs).enumerate() {
        let name = format!("d{}", i + 1);
        ds.push(NsDaemon::start(lan, i, bin, &name, *addr, conf).map_err(|e| format!("{name} starts: {e}"))?);
    }
    for d in &ds {
        d.wait_operational(lan, limit)?;
    }
    Ok(ds)
}

/// A member client `k<i>` of each daemon (TCP from inside its host), each
/// having sent a JOIN of `group`.
pub fn members_joined(lan: &Lan, ds: &[NsDaemon], group: &str, limit: Duration) -> Result<Vec<Member>, String> {
    let mut cs = Vec::new();
    for (i, d) in ds.iter().enumerate() {
        let s = lan.connect(d.host, d.addr, limit).map_err(|e| format!("connect {}: {e}", d.name))?;
        let mut c = Member::login(Conn::Tcp(s), &format!("k{i}"), limit);
        let f = frames::message(frames::JOIN_MESS, c.pg.as_bytes(), &[group.as_bytes()], 0, b"");
        c.c.write_all(&f).map_err(|e| format!("join: {e}"))?;
        cs.push(c);
    }
    Ok(cs)
}

/// A daemon running in a host namespace of a [`Lan`]; stopped by PID
/// (SIGTERM, then SIGKILL after 5 s) when dropped. Drop it before the LAN.
pub struct NsDaemon {
    child: Option<Child>,
    /// Host index in the LAN.
    pub host: usize,
    pub name: String,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
    dir: TempDir,
}

impl NsDaemon {
    /// Writes `conf` (`@RUN@` becomes a private run directory), starts
    /// `bin -n <name> -c <conf>` inside host `host`'s namespace and waits
    /// (bounded) until `addr` accepts TCP there.
    pub fn start(
        lan: &Lan,
        host: usize,
        bin: &Path,
        name: &str,
        addr: SocketAddr,
        conf: &str,
    ) -> Result<NsDaemon, String> {
        let dir = TempDir::new(&format!("ns{name}")).map_err(|e| format!("temp dir: {e}"))?;
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).map_err(|e| format!("run dir: {e}"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755));
        }
        let conf_path = dir.path().join("spread.conf");
        std::fs::write(&conf_path, conf.replace("@RUN@", &run.display().to_string()))
            .map_err(|e| format!("write conf: {e}"))?;
        let log_path = dir.path().join("daemon.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("log: {e}"))?;
        let mut cmd = Command::new(bin);
        cmd.arg("-n")
            .arg(name)
            .arg("-c")
            .arg(&conf_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        // The original buffers its stdout when it is a file and loses the
        // buffer when a fatal alarm aborts it: line-buffer it (coreutils'
        // stdbuf preload) where that is available.
        if Path::new(STDBUF).is_file() {
            cmd.env("LD_PRELOAD", STDBUF).env("_STDBUF_O", "L");
        }
        let ns = lan.enter_on_spawn(host, &mut cmd).map_err(|e| format!("open namespace: {e}"))?;
        let child = cmd.spawn().map_err(|e| format!("spawn {} in {}: {e}", bin.display(), lan.host(host)))?;
        drop(ns);
        let mut d = NsDaemon { child: Some(child), host, name: name.to_string(), addr, log_path, dir };
        d.wait_accepting(lan, Duration::from_secs(15))?;
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

    fn exited(&mut self) -> Option<String> {
        match self.child.as_mut()?.try_wait() {
            Ok(Some(st)) => Some(format!("daemon {} exited early ({st}); log:\n{}", self.name, self.log())),
            _ => None,
        }
    }

    /// Polls TCP connect (from inside the namespace) until the daemon
    /// accepts, bounded by `limit`.
    pub fn wait_accepting(&mut self, lan: &Lan, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        for _ in 0..10_000 {
            if let Some(e) = self.exited() {
                return Err(e);
            }
            if lan.connect(self.host, self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            // connect() to a port nobody listens on yet fails at once; pause
            // before the next attempt (the loop is bounded by the deadline)
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("daemon {} on {} did not accept within {limit:?}; log:\n{}", self.name, self.addr, self.log()))
    }

    /// A raw client of this daemon (TCP from inside its namespace).
    pub fn conn(&self, lan: &Lan) -> Result<Conn, String> {
        lan.connect(self.host, self.addr, Duration::from_secs(5))
            .map(Conn::Tcp)
            .map_err(|e| format!("connect to {} ({}): {e}", self.name, self.addr))
    }

    /// Waits until the daemon delivers group membership (a probe client
    /// joins a private group and waits for its view), i.e. it is in an
    /// operational ring.
    pub fn wait_operational(&self, lan: &Lan, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let mut c = self.conn(lan)?;
        let pg = frames::raw_handshake(&mut c, b"zzprobe", true, deadline)?;
        c.write_all(&frames::message(frames::JOIN_MESS, pg.as_bytes(), &[b"zz-probe-group"], 0, b""))
            .map_err(|e| format!("probe join: {e}"))?;
        let m = frames::read_msg(&mut c, deadline)
            .map_err(|e| format!("probe of {} waited for its membership: {e}; log:\n{}", self.name, self.log()))?;
        let h = frames::head(&m).ok_or("probe: short frame")?;
        if h.type_ & frames::REG_MEMB_MESS == 0 {
            return Err(format!("probe: expected a membership message, got type {:#x}", h.type_));
        }
        c.shutdown_both();
        Ok(())
    }

    /// Is the process still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL at once, and reap.
    pub fn kill_now(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL; reaps.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else { return };
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        // SAFETY: kill(2) on the PID of our own, not yet reaped, child.
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
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
