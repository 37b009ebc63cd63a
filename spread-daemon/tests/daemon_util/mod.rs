//! Helpers of the driver-level tests: run the built `spread` binary on a
//! private port with a temporary configuration, and talk to it with raw
//! clients over TCP and the Unix socket.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Raise this process's soft limit of open files to `n` (if the hard limit
/// allows): tests that hold a thousand sockets.
pub fn raise_fd_limit(n: libc::rlim_t) {
    // SAFETY: getrlimit/setrlimit on our own process with a valid struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < n && r.rlim_max >= n {
            r.rlim_cur = n;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// The tests of one binary take turns, so that the 997-session and
/// 200-client tests do not compete for descriptors and CPU with the others.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Daemon {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    pub log: mpsc::Receiver<String>,
    /// What it logged up to and including "serving clients".
    pub startup: Vec<String>,
}

pub fn conf_text(port: u16, extra: &str) -> String {
    format!(
        "Spread_Segment 127.0.0.255:{port} {{\n\td1\t127.0.0.1 {{\n\t\tD 127.0.0.1\n\t\tC 127.0.0.1\n\t}}\n}}\n{extra}"
    )
}

impl Daemon {
    /// Start `spread -n d1 -c <tmp>/spread.conf` and wait (bounded) until it
    /// reports its listeners.
    pub fn start(port: u16, extra: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("rspread-h5-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("spread.conf"), conf_text(port, extra)).unwrap();
        Daemon::start_in(port, dir)
    }

    pub fn start_in(port: u16, dir: PathBuf) -> Daemon {
        Daemon::start_named("d1", port, dir)
    }

    /// Start `spread -n <name> -c <dir>/spread.conf` (the file must exist)
    /// and wait (bounded) until it reports its listeners.
    pub fn start_named(name: &str, port: u16, dir: PathBuf) -> Daemon {
        Daemon::start_wrapped(&[], name, port, dir)
    }

    /// [`Daemon::start_named`] run through a wrapper command (`wrap` =
    /// e.g. `["ip", "netns", "exec", "ns1"]`, which execs the daemon: the
    /// child's PID is the daemon's).
    pub fn start_wrapped(wrap: &[&str], name: &str, port: u16, dir: PathBuf) -> Daemon {
        Daemon::start_file(wrap, name, port, dir, "spread.conf")
    }

    /// [`Daemon::start_wrapped`] with `-c <dir>/<file>` (e.g. a `.toml` file).
    pub fn start_file(wrap: &[&str], name: &str, port: u16, dir: PathBuf, file: &str) -> Daemon {
        let bin = env!("CARGO_BIN_EXE_spread");
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .args(["-n", name, "-c"])
            .arg(dir.join(file))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn spread");
        let (tx, rx) = mpsc::channel();
        for r in
            [Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stdout.take().unwrap())]
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines() {
                    let Ok(l) = line else { break };
                    if tx.send(l).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut d = Daemon { child: Some(child), port, dir, log: rx, startup: Vec::new() };
        d.startup = d.wait_log_lines("serving clients");
        d
    }

    /// Wait (bounded) for a log line containing `pat`.
    pub fn wait_log(&self, pat: &str) -> String {
        self.wait_log_lines(pat).pop().unwrap_or_default()
    }

    /// Wait (bounded) for a log line containing `pat`; every line read,
    /// that one last.
    pub fn wait_log_lines(&self, pat: &str) -> Vec<String> {
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(pat);
                    seen.push(l);
                    if hit {
                        return seen;
                    }
                }
                Err(e) => panic!("daemon on port {} never logged {pat:?}: {e}; it logged: {seen:?}", self.port),
            }
        }
    }

    /// Wait (bounded) until the daemon logs a ring of `n` daemons: its
    /// "Membership id is" line and then the configuration printout with `n`
    /// daemon lines ("\t\t<name> <addr> ID: <vid>"), as the original logs it.
    pub fn wait_ring_of(&self, n: usize) {
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        let mut seen = Vec::new();
        let mut count: Option<usize> = None;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(l) => {
                    if l.starts_with("Membership id is ( ") {
                        count = Some(0);
                    } else if let Some(c) = count.as_mut() {
                        if l.starts_with("\t\t") {
                            *c += 1;
                        } else if l == "====================" {
                            if *c == n {
                                return;
                            }
                            count = None;
                        }
                    }
                    seen.push(l);
                }
                Err(e) => panic!("daemon on port {} never logged a ring of {n}: {e}; it logged: {seen:?}", self.port),
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Send `sig` to the daemon and wait for it to exit (bounded).
    pub fn stop(&mut self, sig: i32) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = c.id() as i32;
        // SAFETY: kill(2) on the pid of a child this test started.
        unsafe { libc::kill(pid, sig) };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait());
        });
        match rx.recv_timeout(IO_TIMEOUT) {
            Ok(st) => st.unwrap(),
            Err(_) => {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("daemon did not exit after signal {sig}");
            }
        }
    }

    pub fn unix_path(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/{}", self.port))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A clean stop (it unlinks its Unix socket); SIGKILL if it hangs.
            let pid = self.pid();
            let c = self.child.take();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                if let Some(mut c) = c {
                    // SAFETY: kill(2) on the pid of a child this test started.
                    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
                    let _ = tx.send(c.wait());
                }
            });
            if rx.recv_timeout(IO_TIMEOUT).is_err() {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = std::fs::remove_file(self.unix_path());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A raw client session.
pub struct Client {
    pub s: Box<dyn RW>,
    pub pg: String,
    rbuf: Vec<u8>,
    rpos: usize,
}

pub trait RW: Read + Write + Send {}
impl<T: Read + Write + Send> RW for T {}

pub fn handshake(mut s: Box<dyn RW>, name: &str, membership: bool) -> Client {
    let mut req = vec![5, 0, 1, membership as u8, name.len() as u8];
    req.extend_from_slice(name.as_bytes());
    s.write_all(&req).unwrap();
    let mut list = [0u8; 6];
    s.read_exact(&mut list).unwrap();
    assert_eq!(&list, b"\x05NULL ");
    let mut c = [0u8; 90];
    c[..4].copy_from_slice(b"NULL");
    s.write_all(&c).unwrap();
    let mut acc = [0u8; 5];
    s.read_exact(&mut acc).unwrap();
    assert_eq!(&acc[..4], &[1, 5, 0, 1]);
    let mut pg = vec![0u8; acc[4] as usize];
    s.read_exact(&mut pg).unwrap();
    Client { s, pg: String::from_utf8(pg).unwrap(), rbuf: Vec::new(), rpos: 0 }
}

pub fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

pub fn unix(port: u16) -> UnixStream {
    let s = UnixStream::connect(format!("/tmp/{port}")).expect("connect unix");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

pub fn connect_tcp(port: u16, name: &str, membership: bool) -> Client {
    handshake(Box::new(tcp(port)), name, membership)
}

pub fn connect_unix(port: u16, name: &str, membership: bool) -> Client {
    handshake(Box::new(unix(port)), name, membership)
}

/// A client→daemon frame (little-endian, as an x86 library writes it).
pub fn frame(type_: u32, sender: &str, groups: &[&str], mess_type: i16, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(48 + 32 * groups.len() + body.len());
    v.extend_from_slice(&(type_ | 0x8000_0080).to_le_bytes());
    let mut s = [0u8; 32];
    s[..sender.len()].copy_from_slice(sender.as_bytes());
    v.extend_from_slice(&s);
    v.extend_from_slice(&(groups.len() as i32).to_le_bytes());
    let hint = ((((mess_type as i32) << 8) as u32) & 0x00ff_ff00) | 0x8000_0080;
    v.extend_from_slice(&hint.to_le_bytes());
    v.extend_from_slice(&(body.len() as i32).to_le_bytes());
    for g in groups {
        let mut n = [0u8; 32];
        n[..g.len()].copy_from_slice(g.as_bytes());
        v.extend_from_slice(&n);
    }
    v.extend_from_slice(body);
    v
}

/// A daemon→client message as read.
#[derive(Debug, Clone)]
pub struct Msg {
    pub type_: u32,
    pub sender: String,
    pub groups: Vec<String>,
    pub hint: u32,
    pub body: Vec<u8>,
    pub raw: Vec<u8>,
}

fn cstr(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

impl Client {
    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    pub fn join(&mut self, g: &str) {
        let f = frame(0x10000, &self.pg.clone(), &[g], 0, b"");
        self.send(&f);
    }

    pub fn mcast(&mut self, service: u32, groups: &[&str], mess_type: i16, body: &[u8]) {
        let f = frame(service, &self.pg.clone(), groups, mess_type, body);
        self.send(&f);
    }

    pub fn recv(&mut self) -> Msg {
        self.try_recv().expect("message")
    }

    /// Buffered exact read (large reads, like a real client library would do
    /// under load).
    fn fill(&mut self, out: &mut [u8]) -> std::io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            if self.rpos == self.rbuf.len() {
                self.rbuf.resize(256 * 1024, 0);
                let n = self.s.read(&mut self.rbuf)?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                self.rbuf.truncate(n);
                self.rpos = 0;
            }
            let k = (out.len() - done).min(self.rbuf.len() - self.rpos);
            out[done..done + k].copy_from_slice(&self.rbuf[self.rpos..self.rpos + k]);
            self.rpos += k;
            done += k;
        }
        Ok(())
    }

    pub fn try_recv(&mut self) -> std::io::Result<Msg> {
        let mut h = [0u8; 48];
        self.fill(&mut h)?;
        let type_ = u32::from_le_bytes(h[0..4].try_into().unwrap());
        let ng = i32::from_le_bytes(h[36..40].try_into().unwrap()) as usize;
        let hint = u32::from_le_bytes(h[40..44].try_into().unwrap());
        let dl = i32::from_le_bytes(h[44..48].try_into().unwrap()) as usize;
        let extra = if type_ & 0x0040_0000 != 0 { 4 } else { 0 };
        let mut rest = vec![0u8; extra + 32 * ng + dl];
        self.fill(&mut rest)?;
        let groups = (0..ng).map(|i| cstr(&rest[extra + 32 * i..extra + 32 * i + 32])).collect();
        let body = rest[extra + 32 * ng..].to_vec();
        let mut raw = h.to_vec();
        raw.extend_from_slice(&rest);
        Ok(Msg { type_, sender: cstr(&h[4..36]), groups, hint, body, raw })
    }
}

/// Read (bounded) until a regular membership of `group` with `n` members.
pub fn wait_members(c: &mut Client, group: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let m = c.recv();
        if m.type_ & spread_wire::consts::REG_MEMB_MESS != 0 && m.sender == group && m.groups.len() == n {
            return;
        }
    }
    panic!("no membership of {group} with {n} members");
}
